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

use crate::cli::RecipeArgs;
use crate::diag::error::Result;
use crate::engine::session::Target;
use crate::plan::Plan;

/// The recipe named on the command line.
pub fn target(args: &RecipeArgs) -> Target<'_> {
    Target {
        recipe: &args.recipe,
        globals: &args.globals,
        dialect: args.dialect,
        build_dir: args.build_dir.as_deref(),
    }
}

/// Loads and plans the recipe named on the command line.
pub fn load_plan(args: &RecipeArgs, checkpointing: bool) -> Result<Plan> {
    target(args).plan(checkpointing)
}
