//! `cairn checkpoints` (and `build -l`): what the driver holds for this recipe, and `--prune`.

use std::sync::Arc;

use crate::build::Contexts;
use crate::checkpoint::{self, Store};
use crate::checkpoint_id::short;
use crate::cli::RecipeArgs;
use crate::driver::Op;
use crate::error::{Diagnostic, Error, Result};
use crate::output::{Format, Output};
use crate::plan::Plan;
use crate::state::StateDb;

pub fn run(args: &RecipeArgs, prune: bool, json: bool, color: bool) -> Result<()> {
    let plan = super::load_plan(args, true)?;
    let format = if json { Format::Json } else { Format::Human };
    let output = Arc::new(Output::new(format, color));
    list(&plan, &output, prune, json)
}

pub fn list(plan: &Plan, output: &Arc<Output>, prune: bool, json: bool) -> Result<()> {
    let driver = checkpoint::require_driver(plan)?;
    // Pruning deletes, so it must not race a build; listing only reads.
    let _lock = if prune {
        Some(crate::lock::acquire(&plan.build_dir)?)
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
    let rows = checkpoint::listing(plan, &store.existing, &db)?;
    if prune {
        if !store.driver.driver.has(Op::Delete)
            && rows.iter().any(|r| !r.valid && r.created_at.is_some())
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
        if foreign > 0 {
            output.message(format!(
                "Kept {foreign} checkpoint(s) this build dir did not make (another recipe's or \
                 build dir's, in a shared store); prune them from the build dir that made them"
            ));
        }
        let kept: Vec<_> = rows
            .into_iter()
            .filter(|r| r.valid || r.created_at.is_none())
            .collect();
        checkpoint::print_listing(&plan.recipe.name, &kept, json);
    } else {
        checkpoint::print_listing(&plan.recipe.name, &rows, json);
    }
    contexts.stop_all();
    Ok(())
}
