//! `cairn rollback`: replay the rollback journal (see `engine::rollback`).

use std::sync::Arc;

use crate::cli::RecipeArgs;
use crate::diag::error::{Error, Result};
use crate::output::{Format, Output};

pub fn run(args: &RecipeArgs, to: Option<&str>, dry_run: bool, color: bool) -> Result<()> {
    let plan = super::load_plan(args, false)?;
    let output = Arc::new(Output::new(Format::Human, color));
    crate::exec::signals::install()
        .map_err(|e| Error::Other(format!("cannot install signal handlers: {e}")))?;
    let again = format!(
        "cairn rollback {}",
        crate::vars::template::shell_word(&args.recipe.display().to_string())
    );
    crate::engine::rollback::run(&plan, to, dry_run, &again, &output)
}
