//! `cairn build`.

use std::sync::Arc;
use std::time::Instant;

use crate::build::{Action, Build};
use crate::cli::BuildArgs;
use crate::error::Result;
use crate::output::{Event, Format, Output};
use crate::recipe::OnCheckpoint;

pub fn run(args: &BuildArgs, color: bool) -> Result<()> {
    let checkpointing = args.enable_checkpoint || args.from_checkpoint.is_some();
    let plan = super::load_plan(&args.recipe, checkpointing)?;
    let actions: Vec<Action> = plan
        .microsteps
        .iter()
        .map(|ms| match ms.on_checkpoint {
            OnCheckpoint::Skip if checkpointing => Action::Skip,
            OnCheckpoint::Only if !checkpointing => Action::Skip,
            _ => Action::Run,
        })
        .collect();
    if args.dry_run {
        super::plan::print_plan(&plan, &actions, args.json);
        return Ok(());
    }
    let format = if args.json { Format::Json } else { Format::Human };
    let output = Arc::new(Output::new(format, color));
    let recipe_file = plan
        .recipe
        .path
        .file_name()
        .map(|f| f.to_string_lossy().into_owned())
        .unwrap_or_default();
    output.emit(Event::RunStart {
        recipe: recipe_file.clone(),
        build_dir: plan.build_dir.display().to_string(),
        microsteps: plan.microsteps.len(),
    });
    let started = Instant::now();
    let mut build = Build::new(&plan, Arc::clone(&output), actions.clone())?;
    let result = (|| -> Result<()> {
        for (ms, action) in plan.microsteps.iter().zip(&actions) {
            let t = Instant::now();
            build.start_event(ms, *action);
            if *action == Action::Run {
                if let Err(e) = build.run_microstep(ms) {
                    build.end_event(ms, "failed", t);
                    return Err(e);
                }
                build.end_event(ms, "completed", t);
            } else {
                build.end_event(ms, "skipped", t);
            }
        }
        Ok(())
    })();
    build.contexts.stop_all();
    output.emit(Event::RunEnd {
        recipe: recipe_file,
        status: if result.is_ok() { "succeeded" } else { "failed" }.to_string(),
        duration: started.elapsed().as_secs_f64(),
    });
    result
}
