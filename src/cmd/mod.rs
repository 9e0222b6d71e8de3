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
        if crate::diag::secrets::is_secret_name(k, &[]) {
            crate::diag::secrets::register(k, v);
        }
    }
    let recipe = crate::recipe::load::load_with(
        &args.recipe,
        &crate::recipe::load::LoadOptions {
            cli_globals: &args.globals,
            dialect: args.dialect,
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
    register_secrets(&plan);
    if plan.microsteps.is_empty() {
        // Checked last, so that whatever else is wrong with the file is what is reported.
        let path = &plan.recipe.path;
        let file = crate::yaml::read(path, "cannot read recipe", None)?;
        return Err(crate::diag::error::Diagnostic::at(
            &crate::diag::source::Span::new(&file, 1, 1, 1),
            format!("{} has no steps: there is nothing to build", path.display()),
        )
        .hint("add a section (`bootstrap:`, `setup:` or `export:`) with at least one step; an empty or cut-off file looks like this too")
        .into());
    }
    Ok(plan)
}

/// Registers the secret variables of a planned recipe: `global.secret` and the names that
/// look secret, among the globals and `-g` values, resolved.
fn register_secrets(plan: &crate::plan::Plan) {
    let declared: Vec<String> = plan
        .recipe
        .globals
        .values()
        .filter(|g| g.name == "secret")
        .flat_map(|g| match &g.value {
            crate::recipe::model::GlobalValue::List(items) => {
                items.iter().map(|t| t.text.clone()).collect::<Vec<_>>()
            }
            crate::recipe::model::GlobalValue::Text(t) => t
                .text
                .split([',', ' '])
                .filter(|s| !s.is_empty())
                .map(str::to_string)
                .collect(),
            crate::recipe::model::GlobalValue::Map(_) => Vec::new(),
        })
        .collect();
    let resolver = crate::vars::Resolver::new(&plan.global_scope);
    let names: Vec<String> = plan
        .global_scope
        .iter()
        .map(|(n, _)| n.to_string())
        .filter(|n| crate::diag::secrets::is_secret_name(n, &declared))
        .collect();
    for name in names {
        if let Ok(Some(value)) = resolver.value(&name, crate::vars::Mode::Run) {
            crate::diag::secrets::register(&name, &value);
        }
    }
}
