//! `cairn build` and `cairn resume`: plan, notice an interrupted run, pick where to start (a
//! checkpoint, or the microsteps an earlier run completed), run the rest, record everything.

use std::sync::Arc;
use std::time::Instant;

use crate::cli::{BuildArgs, MicrostepCheckpoints, RecipeArgs};
use crate::diag::error::{Diagnostic, Error, Result};
use crate::engine::resume::{interrupted_run, mark_done, refuse_drift};
use crate::engine::{Engine, Outcome, Settings};
use crate::exec::contexts::Contexts;
use crate::exec::{prompt, signals};
use crate::output::schema::RunOutcome;
use crate::output::{Event, Format, Output};
use crate::plan::Plan;
use crate::plan::id::short;
use crate::plan::policy::Policy;
use crate::plan::schedule::{self, Action};
use crate::state::lock;
use crate::state::{RunStatus, StateDb};
use crate::store::{self, Store};

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
        microstep_checkpoints: None,
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
    crate::engine::share::check_urls(&urls)?;
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
            .filter(|m| schedule::checkpointable(m))
        {
            if args.json {
                output.emit(Event::Checkpoint(crate::output::CheckpointRow {
                    id: ms.id.clone(),
                    slug: ms.slug.clone(),
                    created_at: None,
                    duration: None,
                    valid: true,
                    size: None,
                    saves: None,
                    apply: None,
                    made_here: false,
                }));
            } else {
                println!("{} | {}", short(&ms.id), ms.slug);
            }
        }
        return Ok(());
    }
    if args.list_checkpoints {
        return super::checkpoints::list(&plan, &output, false, None, args.json);
    }
    if args.dry_run {
        let records = if checkpointing && !args.fresh {
            super::plan::recorded(&plan)?
        } else {
            Vec::new()
        };
        let ready = records.iter().map(|r| r.id.as_str()).collect();
        // `-F` decides where the build resumes; the dry run shows that plan, or refuses as
        // the build would.
        let actions = match &args.from_checkpoint {
            Some(wanted) => {
                schedule::actions(&plan, true, Some(dry_run_from(&plan, &ready, wanted)?))
            }
            None => schedule::dry_run_actions(&plan, &ready, checkpointing),
        };
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
                    // Rollback plans without checkpointing, as `cairn rollback` does.
                    let plan = super::load_plan(&args.recipe, false)?;
                    let output = Arc::new(Output::new(Format::Human, color));
                    let again = format!("cairn rollback {}", args.recipe.recipe.display());
                    return crate::engine::rollback::run(&plan, None, false, &again, &output);
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
        let mut actions = schedule::actions(&plan, checkpointing, None);
        mark_done(&plan, &mut actions, &db, args.force)?;
        Some(actions)
    } else {
        None
    };

    let window = (
        args.begin_checkpoint
            .as_deref()
            .map(|b| plan.find(b, "--begin-checkpoint"))
            .transpose()?,
        args.end_checkpoint
            .as_deref()
            .map(|e| plan.find(e, "--end-checkpoint"))
            .transpose()?,
    );
    let policy = crate::plan::policy::chosen(
        &plan,
        args.microstep_checkpoints.map(|m| match m {
            MicrostepCheckpoints::All => Policy::All,
            MicrostepCheckpoints::First => Policy::First,
            MicrostepCheckpoints::Auto => Policy::Auto,
        }),
    )?;
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
        policy,
        interactive,
        resume_hint: resume_hint(&args.recipe, &plan),
    };
    let mut engine = Engine::new(Arc::clone(&output), contexts, &db, run_id, None, settings);
    if let Some(url) = &args.cache_to {
        engine.pusher = crate::engine::share::Pusher::start(url, &plan, &output);
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
        // A full disk stopped the run where it was: the next build resumes it.
        Err(Error::Interrupted { .. } | Error::NoSpace(_)) => RunStatus::Interrupted,
        Err(_) => RunStatus::Failed,
    };
    // When this write fails too (the disk is still full), the run stays recorded as running,
    // which the next start reports as interrupted: the error that ended the run is the one
    // to show.
    let ended = db.end_run(run_id, status);
    if result.is_ok() {
        ended?;
    }
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
        let driver = store::require_driver(plan)?;
        engine.store = Some(Store::open(
            driver,
            db,
            &mut engine.contexts,
            &engine.output,
            true,
        )?);
        engine.load_policy_inputs()?;
    }
    if let Some(store) = engine.store.as_mut()
        && !args.fresh
    {
        crate::engine::share::pull(
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
        None => schedule::actions(plan, checkpointing, resume),
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
                actions = schedule::actions(plan, checkpointing, None);
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

fn resume_hint(args: &RecipeArgs, plan: &Plan) -> String {
    let mut hint = format!(
        "cairn resume {} -b {}",
        crate::vars::template::shell_word(&args.recipe.display().to_string()),
        crate::vars::template::shell_word(&plan.build_dir.display().to_string())
    );
    for (k, v) in &args.globals {
        hint.push_str(&format!(
            " -g {}",
            crate::exec::shell::quote(&format!("{k}={v}"))
        ));
    }
    hint
}

/// The microstep `-F` names, among the checkpoints the state database knows were finished.
fn dry_run_from(
    plan: &Plan,
    ready: &std::collections::BTreeSet<&str>,
    wanted: &str,
) -> Result<usize> {
    let exists = |id: &str| ready.contains(id);
    let named: Vec<_> = plan
        .microsteps
        .iter()
        .filter(|ms| {
            schedule::checkpointable(ms)
                && (ms.slug == wanted || (wanted.len() >= 4 && ms.id.starts_with(wanted)))
        })
        .collect();
    let found = match (wanted, named.as_slice()) {
        ("last", _) => schedule::resume_point(plan, exists),
        (_, [one]) => Some(one.index).filter(|_| exists(&one.id)),
        (_, [_, _, ..]) => {
            return Err(Error::checkpoint(
                Diagnostic::new(format!("checkpoint prefix `{wanted}` is ambiguous"))
                    .hint("give more characters of the ID"),
            ));
        }
        _ => None,
    };
    found.ok_or_else(|| {
        Error::checkpoint(
            Diagnostic::new(format!("no checkpoint matches `{wanted}`"))
                .hint("`cairn checkpoints RECIPE` lists the checkpoints that exist"),
        )
    })
}
