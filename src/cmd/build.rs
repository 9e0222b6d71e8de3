//! `cairn build`: plan, pick the checkpoint to resume from, run the rest, record everything.

use std::sync::Arc;
use std::time::Instant;

use crate::build::{Action, Build};
use crate::checkpoint::{self, Store};
use crate::checkpoint_id::short;
use crate::cli::{BuildArgs, MicrostepCheckpoints};
use crate::error::{Diagnostic, Error, Result};
use crate::output::{Event, Format, Output};
use crate::plan::Plan;
use crate::state::{RunStatus, StateDb, StepStatus};

pub fn run(args: &BuildArgs, color: bool) -> Result<()> {
    let checkpointing = args.enable_checkpoint || args.from_checkpoint.is_some() || args.list_checkpoints;
    let plan = super::load_plan(&args.recipe, checkpointing)?;
    let format = if args.json { Format::Json } else { Format::Human };
    let output = Arc::new(Output::new(format, color));

    if args.list_checkpoints && args.dry_run {
        for ms in plan.microsteps.iter().filter(|m| checkpoint::checkpointable(m)) {
            println!("{} | {}", short(&ms.id), ms.slug);
        }
        return Ok(());
    }
    if args.list_checkpoints {
        return super::checkpoints::list(&plan, &output, false, args.json);
    }
    if args.dry_run {
        let records = if checkpointing && !args.fresh { super::plan::recorded(&plan)? } else { Vec::new() };
        let actions = super::plan::dry_run_actions(&plan, &records, checkpointing);
        super::plan::print_plan(&plan, &actions, args.json);
        return Ok(());
    }

    let window = (
        args.begin_checkpoint.as_deref().map(|b| find_in_plan(&plan, b, "--begin-checkpoint")).transpose()?,
        args.end_checkpoint.as_deref().map(|e| find_in_plan(&plan, e, "--end-checkpoint")).transpose()?,
    );
    let db = StateDb::open(&plan.build_dir)?;
    let recipe_file = plan
        .recipe
        .path
        .file_name()
        .map(|f| f.to_string_lossy().into_owned())
        .unwrap_or_default();
    let run_id = db.begin_run(&plan.recipe.path.display().to_string(), &std::env::args().collect::<Vec<_>>().join(" "))?;
    output.emit(Event::RunStart {
        recipe: recipe_file.clone(),
        build_dir: plan.build_dir.display().to_string(),
        microsteps: plan.microsteps.len(),
    });
    let started = Instant::now();
    let mut build = Build::new(&plan, Arc::clone(&output), Vec::new())?;
    let result = execute(args, &plan, &db, run_id, &mut build, checkpointing, window);
    build.contexts.stop_all();
    db.end_run(run_id, if result.is_ok() { RunStatus::Succeeded } else { RunStatus::Failed })?;
    output.emit(Event::RunEnd {
        recipe: recipe_file,
        status: if result.is_ok() { "succeeded" } else { "failed" }.to_string(),
        duration: started.elapsed().as_secs_f64(),
    });
    result
}

fn execute(
    args: &BuildArgs,
    plan: &Plan,
    db: &StateDb,
    run_id: i64,
    build: &mut Build<'_>,
    checkpointing: bool,
    window: (Option<usize>, Option<usize>),
) -> Result<()> {
    let output = Arc::clone(&build.output);
    let mut store = if checkpointing {
        let driver = checkpoint::require_driver(plan)?;
        Some(Store::open(driver, db, &mut build.contexts, &output)?)
    } else {
        None
    };
    let resume = match &store {
        None => None,
        Some(_) if args.fresh => None,
        Some(s) => match &args.from_checkpoint {
            Some(wanted) => Some(s.resolve(plan, wanted)?),
            None => s.newest_valid(plan),
        },
    };
    build.actions = checkpoint::actions(plan, checkpointing, resume);
    if let (Some(store), Some(r)) = (&store, resume) {
        store.apply(&mut build.contexts, &plan.microsteps[r], &output)?;
    }

    let mut checkpointed_steps: Vec<(String, String)> = Vec::new();
    for ms in &plan.microsteps {
        let action = build.actions[ms.index];
        let t = Instant::now();
        build.start_event(ms, action);
        let seq = ms.index as i64;
        match action {
            Action::UseCheckpoint | Action::Skip => {
                db.step_started(run_id, seq, &ms.slug, &ms.id)?;
                let status = if action == Action::Skip { StepStatus::Skipped } else { StepStatus::Cached };
                db.step_finished(run_id, seq, status, None, None)?;
                build.end_event(ms, if action == Action::Skip { "skipped" } else { "cached" }, t);
                continue;
            }
            Action::Run => {}
        }
        db.step_started(run_id, seq, &ms.slug, &ms.id)?;
        if let Err(e) = build.run_microstep(ms) {
            let code = match &e {
                Error::CommandFailed(f) => Some(f.status),
                _ => None,
            };
            db.step_finished(run_id, seq, StepStatus::Failed, code, Some(&e.to_string()))?;
            build.end_event(ms, "failed", t);
            return Err(e);
        }
        db.step_finished(run_id, seq, StepStatus::Completed, Some(0), None)?;
        if let Some(store) = store.as_mut() {
            let in_window = window.0.is_none_or(|b| ms.index >= b) && window.1.is_none_or(|e| ms.index <= e);
            let step_key = (ms.section.clone(), ms.step.clone());
            let first_only = args.microstep_checkpoints == MicrostepCheckpoints::First && checkpointed_steps.contains(&step_key);
            if checkpoint::checkpointable(ms) && in_window && !first_only {
                store.create(&mut build.contexts, plan, ms, &output)?;
                checkpointed_steps.push(step_key);
            }
        }
        build.end_event(ms, "completed", t);
    }
    Ok(())
}

/// A microstep named by ID prefix or slug, for the checkpoint window.
fn find_in_plan(plan: &Plan, wanted: &str, flag: &str) -> Result<usize> {
    plan.microsteps
        .iter()
        .find(|ms| ms.slug == wanted || (wanted.len() >= 4 && ms.id.starts_with(wanted)))
        .map(|ms| ms.index)
        .ok_or_else(|| {
            Error::checkpoint(
                Diagnostic::new(format!("{flag} `{wanted}` names no microstep of this recipe"))
                    .hint("give a slug (section/step/microstep) or an ID prefix from `cairn build --dry-run`"),
            )
        })
}
