//! `cairn clear`: delete every checkpoint through the driver, then run the clean hooks.

use std::sync::Arc;

use crate::cli::RecipeArgs;
use crate::diag::error::Result;
use crate::driver::Op;
use crate::exec::contexts::Contexts;
use crate::output::{Format, Output};
use crate::plan::HookKind;
use crate::state::StateDb;
use crate::store;

pub fn run(args: &RecipeArgs, color: bool) -> Result<()> {
    let plan = super::load_plan(args, true)?;
    let output = Arc::new(Output::new(Format::Human, color));
    let driver = store::require_driver(&plan)?;
    crate::exec::signals::install()
        .map_err(|e| crate::Error::Other(format!("cannot install signal handlers: {e}")))?;
    let _lock = crate::state::lock::acquire(&plan.build_dir)?;
    let db = StateDb::open(&plan.build_dir)?;
    let mut contexts = Contexts::new(&plan, &output)?;
    driver.run(&mut contexts, Op::Clear, "")?;
    db.forget_all_checkpoints()?;
    output.message(format!("Removed all checkpoints of '{}'", plan.recipe.name));
    // Clean hooks undo what a build may have left set up (mounts, processes); a failure here is
    // reported, not fatal, as after a failed build.
    for ms in plan
        .microsteps
        .iter()
        .filter(|m| m.hook == Some(HookKind::SectionClean))
    {
        if let Err(fail) = contexts.run_all(&ms.slug, &ms.commands) {
            let e: crate::Error = fail.into();
            output.warning(format!("clean hook {} failed: {e}", ms.slug));
        }
    }
    contexts.stop_all();
    Ok(())
}
