//! A build session: from a recipe named on the command line to a recorded run. Notices an
//! interrupted run and decides what to do about it, picks where to start (a checkpoint, or the
//! microsteps an earlier run completed), runs the rest with the engine, and records the end.
//! `cmd/` parses arguments into a [`Target`] and a [`Request`] and calls [`build`].

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Instant;

use crate::diag::error::{Diagnostic, Error, Result};
use crate::diag::source::Dialect;
use crate::engine::resume::{interrupted_run, mark_done, refuse_drift};
use crate::engine::{Engine, Outcome, Settings};
use crate::exec::contexts::Contexts;
use crate::exec::{prompt, signals};
use crate::output::schema::RunOutcome;
use crate::output::{Event, Format, Output};
use crate::plan::policy::Policy;
use crate::plan::schedule::{self, Action};
use crate::plan::{Plan, PlanOptions};
use crate::state::lock;
use crate::state::{RunStatus, StateDb};
use crate::store::{self, Store};

/// The recipe a command works on: the file, its `-g` values, dialect and build dir.
pub struct Target<'a> {
    pub recipe: &'a Path,
    pub globals: &'a [(String, String)],
    pub dialect: Option<Dialect>,
    pub build_dir: Option<&'a Path>,
}

/// What `cairn build` (or `resume`) was asked to do.
pub struct Request<'a> {
    pub checkpointing: bool,
    pub from_checkpoint: Option<&'a str>,
    pub fresh: bool,
    /// `cairn resume`: resume an interrupted run without asking.
    pub resume: bool,
    pub restart: bool,
    pub yes: bool,
    pub force: bool,
    pub begin: Option<&'a str>,
    pub end: Option<&'a str>,
    /// `--microstep-checkpoints`, when given; the recipe's `checkpoint_policy` otherwise.
    pub policy: Option<Policy>,
    pub cache_to: Option<&'a str>,
    pub cache_from: &'a [String],
    pub color: bool,
}

impl Target<'_> {
    /// Loads and plans the recipe.
    pub fn plan(&self, checkpointing: bool) -> Result<Plan> {
        // Before anything can fail and print them.
        for (k, v) in self.globals {
            if crate::diag::secrets::is_secret_name(k, &[]) {
                crate::diag::secrets::register(k, v);
            }
        }
        let recipe = crate::recipe::load::load_with(
            self.recipe,
            &crate::recipe::load::LoadOptions {
                cli_globals: self.globals,
                dialect: self.dialect,
            },
        )?;
        let build_dir: PathBuf = self
            .build_dir
            .map(Path::to_path_buf)
            .unwrap_or_else(|| crate::plan::default_build_dir(&recipe));
        let plan = crate::plan::plan(
            recipe,
            &PlanOptions {
                cli_globals: self.globals,
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

    /// The command that resumes this build, for messages.
    pub fn resume_hint(&self, plan: &Plan) -> String {
        let mut hint = format!(
            "cairn resume {} -b {}",
            crate::vars::template::shell_word(&self.recipe.display().to_string()),
            crate::vars::template::shell_word(&plan.build_dir.display().to_string())
        );
        for (k, v) in self.globals {
            hint.push_str(&format!(
                " -g {}",
                crate::exec::shell::quote(&format!("{k}={v}"))
            ));
        }
        hint
    }
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

/// Runs the build of `plan` (planned from `target` with `req.checkpointing`) and records it.
pub fn build(
    target: &Target<'_>,
    req: &Request<'_>,
    mut plan: Plan,
    output: Arc<Output>,
) -> Result<()> {
    let mut checkpointing = req.checkpointing;
    signals::install().map_err(|e| Error::Other(format!("cannot install signal handlers: {e}")))?;
    let _lock = lock::acquire_killing_leftovers(&plan.build_dir, req.yes)?;
    let db = StateDb::open(&plan.build_dir)?;
    let interactive = prompt::allowed(req.yes);

    let mut resuming = req.resume;
    if let Some(summary) = interrupted_run(&db)? {
        output.warning(summary);
        if req.resume {
            // `cairn resume` was asked for exactly this.
        } else if req.restart {
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
                    let plan = target.plan(false)?;
                    let output = Arc::new(Output::new(Format::Human, req.color));
                    let again = format!("cairn rollback {}", target.recipe.display());
                    return crate::engine::rollback::run(&plan, None, false, &again, &output);
                }
                // Ctrl+C at the question: nothing was started, nothing is recorded.
                None if signals::interrupted().is_some() => {
                    return Err(Error::Interrupted {
                        signal: signals::interrupted().unwrap_or(2),
                        resume: target.resume_hint(&plan),
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
        plan = target.plan(checkpointing)?;
    }
    let installer_resume = resuming && !has_driver;
    // Installer-mode resume decides what is done, and refuses when state files drifted, before
    // the run is recorded: a refused resume is no run, so the next build still sees the
    // interrupted one (and `build --force` resumes it instead of starting over).
    let done = if installer_resume {
        let mut actions = schedule::actions(&plan, checkpointing, None);
        mark_done(&plan, &mut actions, &db, req.force)?;
        Some(actions)
    } else {
        None
    };

    let window = (
        req.begin
            .map(|b| plan.find(b, "--begin-checkpoint"))
            .transpose()?,
        req.end
            .map(|e| plan.find(e, "--end-checkpoint"))
            .transpose()?,
    );
    let policy = crate::plan::policy::chosen(&plan, req.policy)?;
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
    crate::output::schema::set_resume(target.resume_hint(&plan));
    let mut contexts = Contexts::new(&plan, &output)?;
    contexts.interactive = interactive;
    let settings = Settings {
        window,
        policy,
        interactive,
        resume_hint: target.resume_hint(&plan),
    };
    let mut engine = Engine::new(Arc::clone(&output), contexts, &db, run_id, None, settings);
    if let Some(url) = req.cache_to {
        engine.pusher = crate::engine::share::Pusher::start(url, &plan, &output);
    }
    let result = execute(target, req, &mut plan, &mut engine, checkpointing, done);
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
    target: &Target<'_>,
    req: &Request<'_>,
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
        && !req.fresh
    {
        crate::engine::share::pull(
            req.cache_from,
            plan,
            store,
            &mut engine.contexts,
            &engine.output,
        );
    }
    let resume = match &engine.store {
        None => None,
        Some(_) if req.fresh => None,
        Some(s) => match req.from_checkpoint {
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
            req.force,
            "--fresh",
        )?;
    }
    let mut from = 0;
    loop {
        match engine.run(plan, &actions, from)? {
            Outcome::Finished => return Ok(()),
            Outcome::Reload(slug) => {
                *plan = target.plan(checkpointing)?;
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
