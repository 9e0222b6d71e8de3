//! `cairn info`: what a recipe is made of, without running anything.

use crate::cli::RecipeArgs;
use crate::diag::error::Result;
use crate::plan::resolved_globals;

pub fn run(args: &RecipeArgs) -> Result<()> {
    let plan = super::load_plan(args, false)?;
    let r = &plan.recipe;
    println!("Recipe:      {}", r.path.display());
    if let Some(d) = &r.description {
        println!("Description: {d}");
    }
    println!("Build dir:   {}", plan.build_dir.display());
    if !r.parents.is_empty() {
        println!("Parents:");
        for p in &r.parents {
            println!("  {}", p.display());
        }
    }
    println!("Step files:");
    for f in &r.step_files {
        println!("  {}", f.display());
    }
    println!(
        "Checkpoint driver: {}",
        r.checkpoint.as_ref().map_or("(none)", |t| t.text.as_str())
    );
    println!("Contexts:");
    for (ctx, spec) in &plan.contexts {
        println!("  {ctx}: {}", spec.cmd.as_deref().unwrap_or("bash"));
    }
    println!("Globals:");
    for (name, (value, origin)) in resolved_globals(&plan)? {
        let value = crate::diag::secrets::shown_value(&name, &value, &[]);
        println!(
            "  {name}: {value}  ({})",
            serde_json::to_string(&origin)
                .unwrap_or_default()
                .trim_matches('"')
        );
    }
    println!("Microsteps: {}", plan.microsteps.len());
    Ok(())
}
