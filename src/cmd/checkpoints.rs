//! `cairn checkpoints` (and `build -l`): what the driver holds for this recipe, and `--prune`.

use std::sync::Arc;

use crate::cli::RecipeArgs;
use crate::diag::error::{Diagnostic, Error, Result};
use crate::driver::Op;
use crate::exec::contexts::Contexts;
use crate::output::{Event, Format, Output};
use crate::plan::Plan;
use crate::plan::id::short;
use crate::state::StateDb;
use crate::store::{self, Listed, Store};

pub fn run(
    args: &RecipeArgs,
    prune: bool,
    keep_cost: Option<f64>,
    json: bool,
    color: bool,
) -> Result<()> {
    let plan = super::load_plan(args, true)?;
    let format = if json { Format::Json } else { Format::Human };
    let output = Arc::new(Output::new(format, color));
    list(&plan, &output, prune, keep_cost, json)
}

/// Lists the checkpoints; `prune` deletes the stale ones and, with `keep_cost`, the valid ones
/// this build dir made that save less than that many seconds of re-run.
pub fn list(
    plan: &Plan,
    output: &Arc<Output>,
    prune: bool,
    keep_cost: Option<f64>,
    json: bool,
) -> Result<()> {
    let driver = store::require_driver(plan)?;
    // Pruning deletes, so it must not race a build; listing only reads.
    let _lock = if prune {
        Some(crate::state::lock::acquire(&plan.build_dir)?)
    } else {
        None
    };
    let db = match prune {
        false => StateDb::open_for_reading(&plan.build_dir)?,
        true => None,
    };
    let db = match db {
        Some(db) => db,
        None => StateDb::open(&plan.build_dir)?,
    };
    let mut contexts = Contexts::new(plan, output)?;
    let store = Store::open(driver, &db, &mut contexts, output, prune)?;
    let rows = store::listing(plan, &store.existing, &db)?;
    if prune {
        // A saving that was never recorded (a checkpoint made by an older cairn) is not "less".
        let cheap = |r: &Listed| {
            r.valid && r.made_here && keep_cost.is_some_and(|k| r.saves.is_some_and(|s| s < k))
        };
        if !store.driver.driver.has(Op::Delete)
            && rows
                .iter()
                .any(|r| (!r.valid && r.created_at.is_some()) || cheap(r))
        {
            contexts.stop_all();
            return Err(Error::checkpoint(
                Diagnostic::new(format!(
                    "checkpoint driver `{}` has no `delete` operation: stale checkpoints cannot be pruned",
                    store.driver.name()
                ))
                .hint("add a `delete` operation to the driver, or remove every checkpoint with `cairn clear`"),
            ));
        }
        // Only what this build dir made: a store shared with other recipes or build dirs
        // holds their checkpoints too, which this database never recorded.
        let foreign = rows
            .iter()
            .filter(|r| !r.valid && r.created_at.is_none())
            .count();
        for row in rows.iter().filter(|r| !r.valid && r.created_at.is_some()) {
            store.driver.run(&mut contexts, Op::Delete, &row.id)?;
            db.forget_checkpoint(&row.id)?;
            output.message(format!(
                "Deleted stale checkpoint {} ({})",
                short(&row.id),
                row.slug
            ));
        }
        for row in rows.iter().filter(|r| cheap(r)) {
            store.driver.run(&mut contexts, Op::Delete, &row.id)?;
            db.forget_checkpoint(&row.id)?;
            output.message(format!(
                "Deleted checkpoint {} ({}): it saves {:.2}s of re-run, less than --keep-cost",
                short(&row.id),
                row.slug,
                row.saves.unwrap_or_default()
            ));
        }
        if foreign > 0 {
            output.message(format!(
                "Kept {foreign} checkpoint(s) this build dir did not make (another recipe's or \
                 build dir's, in a shared store); prune them from the build dir that made them"
            ));
        }
        let kept: Vec<_> = rows
            .into_iter()
            .filter(|r| (r.valid || r.created_at.is_none()) && !cheap(r))
            .collect();
        print_listing(&plan.recipe.name, &kept, json);
    } else {
        print_listing(&plan.recipe.name, &rows, json);
    }
    contexts.stop_all();
    Ok(())
}

fn print_listing(recipe: &str, rows: &[Listed], json: bool) {
    if json {
        for r in rows {
            crate::output::schema::write(&Event::Checkpoint(crate::output::CheckpointRow {
                id: r.id.clone(),
                slug: r.slug.clone(),
                created_at: r.created_at,
                duration: r.duration,
                valid: r.valid,
                size: r.size,
                saves: r.saves,
                apply: r.apply,
                made_here: r.made_here,
            }));
        }
        return;
    }
    if rows.is_empty() {
        println!("No checkpoints are available for the recipe '{recipe}'");
        return;
    }
    println!("The following checkpoints are available for the recipe '{recipe}':");
    let secs = |v: Option<f64>| v.map(|d| format!("{d:.2}s")).unwrap_or_else(|| "?".into());
    println!(
        "{:<12} | {:<19} | {:>9} | {:>8} | {:>8} | {:<5} | STEP",
        "ID", "CREATED", "SIZE", "CREATE", "SAVES", "STATE"
    );
    println!("{}", "-".repeat(100));
    for r in rows {
        println!(
            "{:<12} | {:<19} | {:>9} | {:>8} | {:>8} | {:<5} | {}",
            short(&r.id),
            r.created_at
                .map(crate::output::time::format_time)
                .unwrap_or_else(|| "?".into()),
            crate::store::size::human(r.size),
            secs(r.duration),
            secs(r.saves),
            if r.valid { "valid" } else { "stale" },
            r.slug
        );
    }
}
