//! `cairn plan`: the dry run.

use crate::build::Action;
use crate::checkpoint_id::short;
use crate::cli::RecipeArgs;
use crate::error::Result;
use crate::plan::Plan;

pub fn run(args: &RecipeArgs, _explain: bool, json: bool) -> Result<()> {
    let plan = super::load_plan(args, false)?;
    let actions = vec![Action::Run; plan.microsteps.len()];
    print_plan(&plan, &actions, json);
    Ok(())
}

pub fn print_plan(plan: &Plan, actions: &[Action], json: bool) {
    for (ms, action) in plan.microsteps.iter().zip(actions) {
        let what = match action {
            Action::Run => "run",
            Action::UseCheckpoint => "use checkpoint",
            Action::Skip => "skip",
        };
        if json {
            let v = serde_json::json!({"order": ms.index + 1, "slug": ms.slug, "id": ms.id, "action": what});
            println!("{v}");
        } else {
            println!("{:>3}  {}  {:<15} {}", ms.index + 1, short(&ms.id), what, ms.slug);
        }
    }
}
