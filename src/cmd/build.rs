//! `cairn build` and `cairn resume`: plan, notice an interrupted run, pick where to start (a
//! checkpoint, or the microsteps an earlier run completed), run the rest, record everything.

use std::sync::Arc;
use std::time::Instant;

use crate::build::{Action, Contexts, Engine, Outcome, Settings};
use crate::checkpoint::{self, Store};
use crate::checkpoint_id::short;
use crate::cli::{BuildArgs, MicrostepCheckpoints, RecipeArgs};
use crate::error::{Diagnostic, Error, Result};
use crate::output::schema::RunOutcome;
use crate::output::{Event, Format, Output};
use crate::plan::Plan;
use crate::state::{RunStatus, StateDb, StepStatus};
use crate::{lock, prompt, signals, state_files};

pub fn resume(recipe: RecipeArgs, json: bool, yes: bool, force: bool, color: bool) -> Result<()> {
    let args = BuildArgs {
        recipe,
        dry_run: false,
        json,
        enable_checkpoint: false,
        from_checkpoint: None,
        fresh: false,
        begin_checkpoint: None,
        end_checkpoint: None,
        microstep_checkpoints: MicrostepCheckpoints::All,
        list_checkpoints: false,
        yes,
        restart: false,
        force,
        resume: true,
        cache_to: None,
        cache_from: Vec::new(),
    };
    run(&args, color)
}

pub fn run(args: &BuildArgs, color: bool) -> Result<()> {
    let mut checkpointing = args.enable_checkpoint
        || args.from_checkpoint.is_some()
        || args.list_checkpoints
        || args.cache_to.is_some()
        || !args.cache_from.is_empty();
    let urls: Vec<&str> = args
        .cache_to
        .iter()
        .chain(&args.cache_from)
        .map(String::as_str)
        .collect();
    crate::share::check_urls(&urls)?;
    let mut plan = super::load_plan(&args.recipe, checkpointing)?;
    let format = if args.json {
        Format::Json
    } else {
        Format::Human
    };
    let output = Arc::new(Output::new(format, color));

    if args.list_checkpoints && args.dry_run {
        for ms in plan
            .microsteps
            .iter()
            .filter(|m| checkpoint::checkpointable(m))
        {
            if args.json {
                output.emit(Event::Checkpoint(crate::output::CheckpointRow {
                    id: ms.id.clone(),
                    slug: ms.slug.clone(),
                    created_at: None,
                    duration: None,
                    valid: true,
                }));
            } else {
                println!("{} | {}", short(&ms.id), ms.slug);
            }
        }
        return Ok(());
    }
    if args.list_checkpoints {
        return super::checkpoints::list(&plan, &output, false, args.json);
    }
    if args.dry_run {
        let records = if checkpointing && !args.fresh {
            super::plan::recorded(&plan)?
        } else {
            Vec::new()
        };
        let actions = super::plan::dry_run_actions(&plan, &records, checkpointing);
        super::plan::print_plan(&plan, &actions, args.json);
        return Ok(());
    }

    signals::install().map_err(|e| Error::Other(format!("cannot install signal handlers: {e}")))?;
    let _lock = lock::acquire_killing_leftovers(&plan.build_dir, args.yes)?;
    let db = StateDb::open(&plan.build_dir)?;
    let interactive = prompt::allowed(args.yes);

    let mut resuming = args.resume;
    if let Some(summary) = interrupted_run(&db)? {
        output.warning(summary);
        if args.resume {
            // `cairn resume` was asked for exactly this.
        } else if args.restart {
            output.message("Starting over (--restart).");
        } else if interactive {
            match prompt::choose(
                "The last run was interrupted. What now?",
                &[
                    ("r", "resume it"),
                    ("s", "start over"),
                    ("b", "roll back everything it did"),
                ],
            )
            .as_deref()
            {
                Some("s") => {}
                Some("b") => {
                    drop(_lock);
                    return super::rollback::run(&args.recipe, None, false, color);
                }
                // Ctrl+C at the question: nothing was started, nothing is recorded.
                None if signals::interrupted().is_some() => {
                    return Err(Error::Interrupted {
                        signal: signals::interrupted().unwrap_or(2),
                        resume: resume_hint(&args.recipe, &plan),
                    });
                }
                _ => resuming = true,
            }
        } else {
            output.message("Resuming it (use --restart to start over).");
            resuming = true;
        }
    }
    let has_driver = plan.recipe.checkpoint.is_some();
    if resuming && has_driver && !checkpointing {
        checkpointing = true;
        plan = super::load_plan(&args.recipe, checkpointing)?;
    }
    let installer_resume = resuming && !has_driver;
    // Installer-mode resume decides what is done, and refuses when state files drifted, before
    // the run is recorded: a refused resume is no run, so the next build still sees the
    // interrupted one (and `build --force` resumes it instead of starting over).
    let done = if installer_resume {
        let mut actions = checkpoint::actions(&plan, checkpointing, None);
        mark_done(&plan, &mut actions, &db, args.force)?;
        Some(actions)
    } else {
        None
    };

    let window = (
        args.begin_checkpoint
            .as_deref()
            .map(|b| find_in_plan(&plan, b, "--begin-checkpoint"))
            .transpose()?,
        args.end_checkpoint
            .as_deref()
            .map(|e| find_in_plan(&plan, e, "--end-checkpoint"))
            .transpose()?,
    );
    let recipe_file = plan
        .recipe
        .path
        .file_name()
        .map(|f| f.to_string_lossy().into_owned())
        .unwrap_or_default();
    let argv: Vec<String> = std::env::args().collect();
    let run_id = db.begin_run(&plan.recipe.path.display().to_string(), &argv.join(" "))?;
    output.emit(Event::RunStart {
        run_id,
        recipe: recipe_file.clone(),
        build_dir: plan.build_dir.display().to_string(),
        microsteps: plan.microsteps.len(),
    });
    let started = Instant::now();
    crate::output::schema::set_resume(resume_hint(&args.recipe, &plan));
    let mut contexts = Contexts::new(&plan, &output)?;
    contexts.interactive = interactive;
    let settings = Settings {
        window,
        first_only: args.microstep_checkpoints == MicrostepCheckpoints::First,
        interactive,
        resume_hint: resume_hint(&args.recipe, &plan),
    };
    let mut engine = Engine::new(Arc::clone(&output), contexts, &db, run_id, None, settings);
    if let Some(url) = &args.cache_to {
        engine.pusher = crate::share::Pusher::start(url, &plan, &output);
    }
    let result = execute(args, &mut plan, &mut engine, checkpointing, done);
    // A failed build still pushes the checkpoints it completed.
    if let Some(pusher) = engine.pusher.take() {
        // The uploads' own status line (bytes and rate) replaces the build's.
        output.stop_progress();
        pusher.finish(
            !matches!(result, Err(Error::Interrupted { .. })) && signals::interrupted().is_none(),
        );
    }
    // A signal that broke something outside a microstep's commands (opening the checkpoint
    // store, applying a checkpoint) surfaces as that operation's failure: it is an interruption.
    let result = match (result, signals::interrupted()) {
        (Err(e), Some(signal)) if !matches!(e, Error::Interrupted { .. }) => {
            engine.output.warning(format!("interrupted: {e}"));
            Err(Error::Interrupted {
                signal,
                resume: engine.settings.resume_hint.clone(),
            })
        }
        (result, _) => result,
    };
    engine.contexts.stop_all();
    let status = match &result {
        Ok(()) => RunStatus::Succeeded,
        Err(Error::Interrupted { .. }) => RunStatus::Interrupted,
        Err(_) => RunStatus::Failed,
    };
    db.end_run(run_id, status)?;
    let (outcome, exit_code) = match &result {
        Ok(()) => (RunOutcome::Succeeded, 0),
        Err(e @ Error::Interrupted { .. }) => (RunOutcome::Interrupted, e.exit_code()),
        Err(e) => (RunOutcome::Failed, e.exit_code()),
    };
    let resume = (outcome != RunOutcome::Succeeded).then(|| engine.settings.resume_hint.clone());
    output.summary(started.elapsed(), resume);
    output.emit(Event::RunEnd {
        run_id,
        recipe: recipe_file,
        status: outcome,
        duration: started.elapsed().as_secs_f64(),
        exit_code,
    });
    output.stop_progress();
    result
}

fn execute(
    args: &BuildArgs,
    plan: &mut Plan,
    engine: &mut Engine<'_>,
    checkpointing: bool,
    done: Option<Vec<Action>>,
) -> Result<()> {
    let db = engine.db;
    if checkpointing {
        let driver = checkpoint::require_driver(plan)?;
        engine.store = Some(Store::open(
            driver,
            db,
            &mut engine.contexts,
            &engine.output,
            true,
        )?);
    }
    if let Some(store) = engine.store.as_mut()
        && !args.fresh
    {
        crate::share::pull(
            &args.cache_from,
            plan,
            store,
            &mut engine.contexts,
            &engine.output,
        );
    }
    let resume = match &engine.store {
        None => None,
        Some(_) if args.fresh => None,
        Some(s) => match &args.from_checkpoint {
            Some(wanted) => Some(s.resolve(plan, wanted)?),
            None => s.newest_valid(plan),
        },
    };
    let mut actions = match done {
        Some(actions) => actions,
        None => checkpoint::actions(plan, checkpointing, resume),
    };
    start_progress(plan, &actions, engine, checkpointing);
    if let (Some(store), Some(r)) = (&engine.store, resume) {
        store.apply(&mut engine.contexts, &plan.microsteps[r], &engine.output)?;
        // Checked after the apply, which restores the state files inside the checkpoint's
        // target: what can have drifted is outside it.
        refuse_drift(
            plan,
            &actions,
            Action::UseCheckpoint,
            db,
            args.force,
            "--fresh",
        )?;
    }
    let mut from = 0;
    loop {
        match engine.run(plan, &actions, from)? {
            Outcome::Finished => return Ok(()),
            Outcome::Reload(slug) => {
                *plan = super::load_plan(&args.recipe, checkpointing)?;
                let Some(ms) = plan.microsteps.iter().find(|m| m.slug == slug) else {
                    return Err(Error::from(Diagnostic::new(format!(
                        "after the reload, the recipe has no microstep {slug} to retry"
                    ))));
                };
                engine.output.message(format!(
                    " --> Reloaded {}; retrying {slug}",
                    plan.recipe.path.display()
                ));
                from = ms.index;
                actions = checkpoint::actions(plan, checkpointing, None);
            }
        }
    }
}

/// The live status line, with the time each microstep that will run took when it last
/// completed in this build dir (and its checkpoint's creation, when this build makes them).
fn start_progress(plan: &Plan, actions: &[Action], engine: &Engine<'_>, checkpointing: bool) {
    let db = engine.db;
    let mut history: std::collections::HashMap<String, f64> = std::collections::HashMap::new();
    if let Ok(recorded) = db.recorded_durations() {
        for r in recorded {
            let e = history.entry(r.slug).or_insert(0.0);
            *e = e.max(r.seconds);
        }
    }
    if checkpointing && let Ok(creates) = db.last_create_durations() {
        for (slug, d) in creates {
            if let Some(e) = history.get_mut(&slug) {
                *e += d;
            }
        }
    }
    let slugs: Vec<&str> = plan.microsteps.iter().map(|m| m.slug.as_str()).collect();
    let runs: Vec<bool> = actions.iter().map(|a| *a == Action::Run).collect();
    engine.output.start_progress(&slugs, &runs, &history);
}

/// Installer-mode resume: the microsteps an earlier run completed with the same ID are not run
/// again, up to the first one that is not recorded as completed (where the last run stopped);
/// from there on everything runs, since a completion recorded before an earlier microstep ran
/// again may have been undone by it. Refused when the files they recorded changed since.
fn mark_done(plan: &Plan, actions: &mut [Action], db: &StateDb, force: bool) -> Result<()> {
    let completed = db.completed_ids()?;
    for ms in &plan.microsteps {
        if actions[ms.index] != Action::Run {
            continue;
        }
        if !completed.contains(&ms.id) {
            break;
        }
        actions[ms.index] = Action::Done;
    }
    refuse_drift(plan, actions, Action::Done, db, force, "--restart")
}

/// Refuses to build on the microsteps marked `relied` (done earlier, or covered by the applied
/// checkpoint) when a file in their `state_files:` changed since they completed, naming it.
fn refuse_drift(
    plan: &Plan,
    actions: &[Action],
    relied: Action,
    db: &StateDb,
    force: bool,
    over: &str,
) -> Result<()> {
    if force {
        return Ok(());
    }
    let slugs: Vec<&str> = plan
        .microsteps
        .iter()
        .filter(|ms| actions[ms.index] == relied)
        .map(|ms| ms.slug.as_str())
        .collect();
    let recorded: Vec<_> = db
        .state_files()?
        .into_iter()
        .filter(|(slug, _, _)| slugs.contains(&slug.as_str()))
        .collect();
    let drifted = state_files::drifted(&recorded);
    if !drifted.is_empty() {
        let list: Vec<String> = drifted
            .iter()
            .map(|(slug, path)| format!("{path} (recorded by {slug})"))
            .collect();
        return Err(Error::checkpoint(
            Diagnostic::new("state files changed since the microsteps that wrote them completed; resuming could build on a changed system")
                .note(format!("changed:\n{}", list.join("\n")))
                .hint(format!("check the files, then resume with --force, or start over with {over}")),
        ));
    }
    Ok(())
}

/// Marks runs a killed cairn left "running" as interrupted, and describes the last run if it
/// was interrupted.
fn interrupted_run(db: &StateDb) -> Result<Option<String>> {
    for r in db.unfinished_runs()? {
        db.end_run(r.id, RunStatus::Interrupted)?;
    }
    let Some(last) = db.last_run()? else {
        return Ok(None);
    };
    if last.status != RunStatus::Interrupted {
        return Ok(None);
    }
    let steps = db.steps_of_run(last.id)?;
    let completed = steps
        .iter()
        .filter(|s| s.status == StepStatus::Completed)
        .count();
    let last_done = steps
        .iter()
        .rev()
        .find(|s| matches!(s.status, StepStatus::Completed | StepStatus::Cached));
    let running = steps
        .iter()
        .rev()
        .find(|s| matches!(s.status, StepStatus::Started | StepStatus::Interrupted));
    Ok(Some(format!(
        "run #{} (started {}) was interrupted: {completed} microstep(s) completed{}{}",
        last.id,
        checkpoint::format_time(last.started_at),
        last_done
            .map(|s| format!(", the last {}", s.slug))
            .unwrap_or_default(),
        running
            .map(|s| format!("; it was running {}", s.slug))
            .unwrap_or_default(),
    )))
}

fn resume_hint(args: &RecipeArgs, plan: &Plan) -> String {
    let mut hint = format!(
        "cairn resume {} -b {}",
        args.recipe.display(),
        plan.build_dir.display()
    );
    for (k, v) in &args.globals {
        hint.push_str(&format!(
            " -g {}",
            crate::context::quote(&format!("{k}={v}"))
        ));
    }
    hint
}

/// A microstep named by ID prefix or slug, for the checkpoint window.
pub fn find_in_plan(plan: &Plan, wanted: &str, flag: &str) -> Result<usize> {
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
