//! The engine loop: for each planned microstep, decide (run, use a checkpoint, skip), run its
//! commands in their contexts, and report. Clean hooks run at the end of their step or section,
//! and again after a failure so nothing stays mounted or running.

pub mod resume;
pub mod rollback;
pub mod session;
pub mod share;

use std::sync::Arc;
use std::time::Instant;

use crate::diag::error::{Diagnostic, Error, Result};
use crate::exec::contexts::Contexts;
use crate::exec::{prompt, signals};
use crate::output::schema::MicrostepStatus;
use crate::output::{Event, Output};
use crate::plan::policy::{Decider, Facts, Policy};
use crate::plan::schedule::{self, Action};
use crate::plan::{HookKind, Plan, PlannedMicrostep, Resolved};
use crate::recipe::Ctx;
use crate::state::files as state_files;
use crate::state::{StateDb, StepStatus};
use crate::store::Store;

/// What the engine needs to know beyond the plan.
pub struct Settings {
    pub window: (Option<usize>, Option<usize>),
    /// Where checkpoints are made: all, first, auto.
    pub policy: Policy,
    /// A terminal is attached and prompts are allowed.
    pub interactive: bool,
    /// The command that resumes this build, printed when it is interrupted.
    pub resume_hint: String,
}

/// What a run of the engine ended with, short of an error.
pub enum Outcome {
    Finished,
    /// The user chose "reload": re-read the recipe and go on from this slug.
    Reload(String),
}

pub struct Engine<'a> {
    pub output: Arc<Output>,
    pub contexts: Contexts,
    pub db: &'a StateDb,
    pub run_id: i64,
    pub store: Option<Store<'a>>,
    pub settings: Settings,
    /// `--cache-to`: pushes each checkpoint as it is created.
    pub pusher: Option<crate::engine::share::Pusher>,
    decider: Decider,
    /// How long each checkpoint ID's microstep took when it last completed before this run:
    /// `auto` takes a microstep to take the longer of that and what it just took.
    earlier: std::collections::HashMap<String, f64>,
    journaled: Vec<String>,
    /// The step being run and when it began, for "Step X took".
    current_step: Option<((String, String), Instant)>,
}

impl<'a> Engine<'a> {
    pub fn new(
        output: Arc<Output>,
        contexts: Contexts,
        db: &'a StateDb,
        run_id: i64,
        store: Option<Store<'a>>,
        settings: Settings,
    ) -> Engine<'a> {
        let decider = Decider::new(settings.policy, Default::default());
        Engine {
            output,
            contexts,
            db,
            run_id,
            store,
            settings,
            pusher: None,
            decider,
            earlier: Default::default(),
            journaled: Vec::new(),
            current_step: None,
        }
    }

    /// Loads what the checkpoint policy needs from earlier runs: the driver's costs and the
    /// microsteps' durations. Called once the store is open, before anything runs.
    pub fn load_policy_inputs(&mut self) -> Result<()> {
        if let Some(store) = &self.store {
            self.decider.costs = store.costs()?;
        }
        self.earlier = self
            .db
            .recorded_durations()?
            .into_iter()
            .map(|d| (d.checkpoint_id, d.seconds))
            .collect();
        Ok(())
    }

    /// Runs the plan from microstep `from` on.
    pub fn run(&mut self, plan: &Plan, actions: &[Action], from: usize) -> Result<Outcome> {
        for ms in &plan.microsteps[from..] {
            self.check_signal(plan, ms, None)?;
            self.enter_step(ms);
            let action = actions[ms.index];
            let t = Instant::now();
            self.start_event(ms, action);
            let seq = ms.index as i64;
            if action != Action::Run {
                self.db.step_started(self.run_id, seq, &ms.slug, &ms.id)?;
                let status = match action {
                    Action::UseCheckpoint => StepStatus::Cached,
                    _ => StepStatus::Skipped,
                };
                self.db
                    .step_finished(self.run_id, seq, status, None, Some(action.short()))?;
                let status = match action {
                    Action::UseCheckpoint => MicrostepStatus::Restored,
                    Action::Done => MicrostepStatus::Done,
                    _ => MicrostepStatus::Skipped,
                };
                self.end_event(ms, status, None, t);
                continue;
            }
            if let Some(outcome) = self.run_one(plan, ms, t)? {
                return Ok(outcome);
            }
        }
        self.finish_step();
        Ok(Outcome::Finished)
    }

    fn enter_step(&mut self, ms: &PlannedMicrostep) {
        let key = (ms.section.clone(), ms.step.clone());
        if self.current_step.as_ref().is_some_and(|(k, _)| *k == key) {
            return;
        }
        self.finish_step();
        self.current_step = Some((key, Instant::now()));
    }

    fn finish_step(&mut self) {
        if let Some(((section, step), started)) = self.current_step.take() {
            self.output.emit(Event::StepEnd {
                section,
                step,
                duration: started.elapsed().as_secs_f64(),
            });
        }
    }

    /// One microstep, with its journal, verification, state files, checkpoint and, on failure,
    /// atomic undo and the prompt. Some(outcome) ends the run early.
    fn run_one(
        &mut self,
        plan: &Plan,
        ms: &PlannedMicrostep,
        t: Instant,
    ) -> Result<Option<Outcome>> {
        let seq = ms.index as i64;
        loop {
            if !ms.rollback.is_empty() && !self.journaled.contains(&ms.id) {
                let json =
                    serde_json::to_string(&ms.rollback).map_err(|e| Error::Other(e.to_string()))?;
                self.db
                    .journal_append(self.run_id, &ms.slug, &ms.id, &json)?;
                self.journaled.push(ms.id.clone());
            }
            self.db.step_started(self.run_id, seq, &ms.slug, &ms.id)?;
            let ran = Instant::now();
            let result = self
                .contexts
                .run_all(&ms.slug, &ms.commands)
                .map_err(Error::from)
                .and_then(|()| self.verify(ms))
                .and_then(|()| self.record_state_files(ms));
            let error = match result {
                Ok(()) => {
                    let recorded = self.db.step_finished(
                        self.run_id,
                        seq,
                        StepStatus::Completed,
                        Some(0),
                        None,
                    );
                    if let Err(e) = recorded {
                        // A full disk: the microstep stays recorded as started, so the next
                        // build runs it again.
                        self.clean_after_failure(plan, ms);
                        return Err(Error::from(e).with_note(format!(
                            "{} had completed; it is not recorded as done and will run again",
                            ms.slug
                        )));
                    }
                    let took = ran.elapsed().as_secs_f64();
                    if let Err(e) = self.maybe_checkpoint(plan, ms, took) {
                        // Ctrl+C while the driver saves the state is an interruption, not a
                        // driver failure; either way the clean hooks run.
                        self.check_signal(plan, ms, None)?;
                        self.clean_after_failure(plan, ms);
                        return Err(e);
                    }
                    self.end_event(ms, MicrostepStatus::Completed, Some(0), t);
                    return Ok(None);
                }
                Err(e) => e,
            };
            self.check_signal(plan, ms, Some(seq))?;
            let code = match &error {
                Error::CommandFailed(f) => Some(f.status),
                _ => None,
            };
            let exit_status = code;
            let mut detail = error.to_string();
            if ms.atomic {
                detail = format!("{detail}; {}", self.undo(plan, ms));
            }
            let recorded =
                self.db
                    .step_finished(self.run_id, seq, StepStatus::Failed, code, Some(&detail));
            if let Err(e) = recorded {
                self.end_event(ms, MicrostepStatus::Failed, exit_status, t);
                self.clean_after_failure(plan, ms);
                let before = match &error {
                    Error::CommandFailed(f) => format!(
                        "before that, microstep {} failed: command in context `{}` exited with \
                         status {}{}",
                        f.slug,
                        f.context,
                        f.status,
                        f.tail
                            .last()
                            .map(|l| format!(", its last line of output: {l}"))
                            .unwrap_or_default()
                    ),
                    other => format!("before that: {other}"),
                };
                return Err(Error::from(e).with_note(before));
            }
            if self.settings.interactive {
                let output = Arc::clone(&self.output);
                // The status line stays cleared while the person reads and answers.
                let choice = output.suspend(|| {
                    eprint!("{}", error.render(output.color_err()));
                    self.ask_after_failure(ms)
                });
                match choice? {
                    Choice::Retry => continue,
                    Choice::Continue => {
                        self.end_event(ms, MicrostepStatus::Failed, exit_status, t);
                        return Ok(None);
                    }
                    Choice::Reload => return Ok(Some(Outcome::Reload(ms.slug.clone()))),
                    Choice::Abort => {}
                }
            }
            self.end_event(ms, MicrostepStatus::Failed, exit_status, t);
            // Ctrl+C at the prompt ends the build as interrupted.
            self.check_signal(plan, ms, None)?;
            self.clean_after_failure(plan, ms);
            return Err(error);
        }
    }

    /// Ends the run when a signal arrived: the microstep is recorded as interrupted (if `seq`
    /// names one that started), clean hooks run, and the error carries the resume command.
    fn check_signal(&mut self, plan: &Plan, ms: &PlannedMicrostep, seq: Option<i64>) -> Result<()> {
        let Some(signal) = signals::interrupted() else {
            return Ok(());
        };
        // The interrupted command's group is gone by now (its shell was stopped): what runs
        // from here (undo, clean hooks) is not cut short by the grace period, only by a
        // second signal.
        signals::disarm_grace();
        if let Some(seq) = seq {
            let mut detail = "interrupted by a signal".to_string();
            // All or nothing: an interrupted atomic microstep is undone like a failed one.
            if ms.atomic {
                detail = format!("{detail}; {}", self.undo(plan, ms));
            }
            self.db.step_finished(
                self.run_id,
                seq,
                StepStatus::Interrupted,
                None,
                Some(&detail),
            )?;
        }
        self.output
            .warning(format!("interrupted during {}", ms.slug));
        self.clean_after_failure(plan, ms);
        Err(Error::Interrupted {
            signal,
            resume: self.settings.resume_hint.clone(),
        })
    }

    fn verify(&mut self, ms: &PlannedMicrostep) -> Result<()> {
        for check in &ms.verify {
            let (r, got) = self
                .contexts
                .get(check.ctx)
                .capture_text(&check.cmd)
                .map_err(|e| Error::Other(e.to_string()))?;
            if r.status != 0 || !got.contains(&check.expect) {
                let d = Diagnostic::at(&ms.span, format!("verification of {} failed", ms.slug))
                    .note(format!("command: {}", check.cmd))
                    .note(format!("expected output containing: {:?}", check.expect))
                    .note(format!(
                        "got (exit status {}): {:?}",
                        r.status,
                        got.trim_end()
                    ));
                return Err(Error::Verify(Box::new(d)));
            }
        }
        Ok(())
    }

    fn record_state_files(&mut self, ms: &PlannedMicrostep) -> Result<()> {
        if ms.state_files.is_empty() {
            return Ok(());
        }
        let files = state_files::checksums(&ms.state_files, &self.contexts.dir);
        self.db.record_state_files(&ms.id, &ms.slug, &files)?;
        Ok(())
    }

    /// Asks the policy whether to checkpoint after `ms`, which took `took` seconds, creates
    /// the checkpoint if so, and records the decision (except under `all`, where it is always
    /// "made" when allowed).
    fn maybe_checkpoint(&mut self, plan: &Plan, ms: &PlannedMicrostep, took: f64) -> Result<()> {
        let Some(store) = self.store.as_mut() else {
            return Ok(());
        };
        let (begin, end) = self.settings.window;
        let in_window = begin.is_none_or(|b| ms.index >= b) && end.is_none_or(|e| ms.index <= e);
        let earlier = self.earlier.get(&ms.id).copied().unwrap_or(0.0);
        let decision = self.decider.after(&Facts {
            on_checkpoint: ms.on_checkpoint,
            in_window,
            step: (&ms.section, &ms.step),
            duration: Some(took.max(earlier)),
            exists: store.exists(&ms.id),
            before_atomic: plan
                .microsteps
                .get(ms.index + 1)
                .is_some_and(|next| next.atomic && next.rollback.is_empty()),
        });
        if decision.makes()
            && let Some(created) =
                store.create(&mut self.contexts, plan, ms, &self.output, decision.saves())?
        {
            self.decider.made((&ms.section, &ms.step), created);
            if let Some(pusher) = self.pusher.as_mut() {
                pusher.created(store, &mut self.contexts, plan, ms);
            }
        }
        if self.settings.policy != Policy::All {
            self.db.record_decision(&crate::state::DecisionRecord {
                run_id: self.run_id,
                seq: ms.index as i64,
                checkpoint_id: ms.id.clone(),
                slug: ms.slug.clone(),
                policy: self.settings.policy.name().to_string(),
                decision: decision.kind().to_string(),
                saves: decision.saves(),
                cost: decision.cost(),
                detail: decision.describe(),
            })?;
        }
        Ok(())
    }

    /// Undoes a failed atomic microstep: its rollback commands, or else the checkpoint before
    /// it. Says which, for the record.
    fn undo(&mut self, plan: &Plan, ms: &PlannedMicrostep) -> String {
        if !ms.rollback.is_empty() {
            self.output.message(format!(
                " --> Undoing {} with its rollback commands",
                ms.slug
            ));
            return match self.contexts.run_all(&ms.slug, &ms.rollback) {
                Ok(()) => {
                    if let Ok(entries) = self.db.journal_pending()
                        && let Some(e) = entries
                            .iter()
                            .find(|e| e.slug == ms.slug && e.run_id == self.run_id)
                    {
                        let _ = self.db.journal_mark_rolled_back(e.seq);
                    }
                    "atomic: undone by its rollback commands".into()
                }
                Err(f) => {
                    let e: Error = f.into();
                    self.output
                        .warning(format!("rollback of {} failed: {e}", ms.slug));
                    format!("atomic: its rollback commands failed: {e}")
                }
            };
        }
        let Some(store) = self.store.as_ref() else {
            return "atomic: nothing to undo with (no rollback commands, no checkpoint driver)"
                .into();
        };
        let previous = plan.microsteps[..ms.index]
            .iter()
            .rev()
            .find(|m| schedule::checkpointable(m) && store.exists(&m.id));
        match previous {
            None => "atomic: nothing to undo with (no checkpoint before it)".into(),
            Some(prev) => match store.apply(&mut self.contexts, prev, &self.output) {
                Ok(()) => format!(
                    "atomic: undone by applying checkpoint {} ({})",
                    crate::plan::id::short(&prev.id),
                    prev.slug
                ),
                Err(e) => format!(
                    "atomic: applying checkpoint {} failed: {e}",
                    crate::plan::id::short(&prev.id)
                ),
            },
        }
    }

    fn ask_after_failure(&mut self, ms: &PlannedMicrostep) -> Result<Choice> {
        loop {
            let answer = prompt::choose(
                &format!("Microstep {} failed. What now?", ms.slug),
                &[
                    ("r", "retry the microstep"),
                    ("c", "continue with the next microstep"),
                    ("a", "abort the build"),
                    ("s", "open a shell in the failing context"),
                    ("l", "reload the recipe from disk and retry the microstep"),
                ],
            );
            match answer.as_deref() {
                Some("r") => return Ok(Choice::Retry),
                Some("c") => return Ok(Choice::Continue),
                Some("l") => return Ok(Choice::Reload),
                Some("s") => {
                    let ctx = failing_context(ms);
                    let cmd = self.contexts.get(ctx).interactive_command();
                    eprintln!(
                        "Opening `{cmd}` in the {ctx} context; exit the shell to come back here."
                    );
                    let _ = duct::cmd!("bash", "-c", &cmd)
                        .dir(&self.contexts.dir)
                        .unchecked()
                        .run();
                }
                _ => return Ok(Choice::Abort),
            }
        }
    }

    pub fn start_event(&self, ms: &PlannedMicrostep, action: Action) {
        self.output.emit(Event::MicrostepStart {
            order: ms.index + 1,
            slug: ms.slug.clone(),
            id: ms.id.clone(),
            action,
        });
    }

    pub fn end_event(
        &self,
        ms: &PlannedMicrostep,
        status: MicrostepStatus,
        exit_status: Option<i32>,
        started: Instant,
    ) {
        self.output.emit(Event::MicrostepEnd {
            order: ms.index + 1,
            slug: ms.slug.clone(),
            step: ms.step.clone(),
            id: ms.id.clone(),
            status,
            duration: started.elapsed().as_secs_f64(),
            exit_status,
        });
    }

    /// The clean hooks that still have work to do after `failed`: its own step's, and every
    /// section-level one not yet run. Their failures are warnings: cleaning goes on.
    pub fn clean_after_failure(&mut self, plan: &Plan, failed: &PlannedMicrostep) {
        let pending: Vec<&PlannedMicrostep> = plan.microsteps[failed.index + 1..]
            .iter()
            .filter(|m| match m.hook {
                Some(HookKind::StepClean) => m.section == failed.section && m.step == failed.step,
                Some(HookKind::SectionClean) => true,
                _ => false,
            })
            .collect();
        for ms in pending {
            self.output
                .message(format!(" --> Cleaning after failure: {}", ms.slug));
            for cmd in &ms.commands {
                if let Err(fail) = self.contexts.run(&ms.slug, cmd) {
                    let e: Error = fail.into();
                    self.output
                        .warning(format!("clean hook {} failed: {e}", ms.slug));
                }
            }
        }
    }
}

enum Choice {
    Retry,
    Continue,
    Abort,
    Reload,
}

/// The context of a microstep's first command, where a debugging shell is most useful.
fn failing_context(ms: &PlannedMicrostep) -> Ctx {
    fn first(cmds: &[Resolved]) -> Option<Ctx> {
        cmds.iter().find_map(|c| match c {
            Resolved::Exec { ctx, .. } => Some(*ctx),
            Resolved::Pipe { to, .. } => Some(to.0),
            Resolved::Group(g) => first(g),
            Resolved::Rescue(a, _) | Resolved::Test(a, _, _) => first(std::slice::from_ref(a)),
            _ => None,
        })
    }
    first(&ms.commands).unwrap_or(Ctx::Local)
}
