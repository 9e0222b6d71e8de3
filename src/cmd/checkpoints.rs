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
    let db = StateDb::open(&plan.build_dir)?;
    let mut contexts = Contexts::new(plan, output)?;
    let store = Store::open(driver, &db, &mut contexts, output, prune)?;
    let rows = checkpoint::listing(plan, &store.existing, &db)?;
    if prune {
        if !store.driver.driver.has(Op::Delete) && rows.iter().any(|r| !r.valid) {
            contexts.stop_all();
            return Err(Error::checkpoint(
                Diagnostic::new(format!(
                    "checkpoint driver `{}` has no `delete` operation: stale checkpoints cannot be pruned",
                    store.driver.name()
                ))
                .hint("add a `delete` operation to the driver, or remove every checkpoint with `cairn clear`"),
            ));
        }
        for row in rows.iter().filter(|r| !r.valid) {
            store.driver.run(&mut contexts, Op::Delete, &row.id)?;
            db.forget_checkpoint(&row.id)?;
            output.message(format!(
                "Deleted stale checkpoint {} ({})",
                short(&row.id),
                row.slug
            ));
        }
        let kept: Vec<_> = rows.into_iter().filter(|r| r.valid).collect();
        checkpoint::print_listing(&plan.recipe.name, &kept, json);
    } else {
        checkpoint::print_listing(&plan.recipe.name, &rows, json);
    }
    contexts.stop_all();
    Ok(())
}
