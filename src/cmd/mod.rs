//! One module per subcommand; each turns parsed arguments into calls on the library.

pub mod build;
pub mod cache;
pub mod checkpoints;
pub mod clear;
pub mod driver;
pub mod graph;
pub mod info;
pub mod plan;
pub mod qemu_monitor;
pub mod report;
pub mod rollback;
pub mod snapshot_tree;

use std::path::PathBuf;

use crate::cli::RecipeArgs;
use crate::diag::error::Result;
use crate::plan::{Plan, PlanOptions};

/// Loads and plans the recipe named on the command line.
pub fn load_plan(args: &RecipeArgs, checkpointing: bool) -> Result<Plan> {
    // Before anything can fail and print them.
    for (k, v) in &args.globals {
        if crate::secrets::is_secret_name(k, &[]) {
            crate::secrets::register(k, v);
        }
    }
    let recipe = crate::recipe::load::load_with(
        &args.recipe,
        &crate::recipe::load::LoadOptions {
            cli_globals: &args.globals,
        },
    )?;
    let build_dir: PathBuf = args
        .build_dir
        .clone()
        .unwrap_or_else(|| crate::plan::default_build_dir(&recipe));
    let plan = crate::plan::plan(
        recipe,
        &PlanOptions {
            cli_globals: &args.globals,
            build_dir: &build_dir,
            checkpointing,
        },
    )?;
    crate::secrets::register_plan(&plan);
    Ok(plan)
}
