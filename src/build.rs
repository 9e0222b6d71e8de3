//! The engine loop: for each planned microstep, decide (run, use a checkpoint, skip), run its
//! commands in their contexts, and report. Clean hooks run at the end of their step or section,
//! and again after a failure so nothing stays mounted or running.

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;
use std::time::Instant;

use crate::context::{Context, ContextError};
use crate::error::{CommandFailure, Diagnostic, Error, Result};
use crate::output::{Event, Output};
use crate::plan::{ContextSpec, HookKind, Plan, PlannedMicrostep, Resolved};
use crate::recipe::Ctx;
use crate::source::Span;

/// Why a command did not succeed: a failure that `rescue` and `test` may catch, or an error
/// that ends the build whatever the recipe says.
pub enum Fail {
    Command(Box<CommandFailure>),
    Fatal(Error),
}

impl From<Fail> for Error {
    fn from(f: Fail) -> Error {
        match f {
            Fail::Command(c) => Error::CommandFailed(c),
            Fail::Fatal(e) => e,
        }
    }
}

/// The running shells of one build, started on first use.
pub struct Contexts {
    shells: BTreeMap<Ctx, Context>,
}

impl Contexts {
    pub fn new(plan: &Plan, output: &Arc<Output>) -> Result<Contexts> {
        Contexts::with_specs(&plan.contexts, &plan.build_dir, plan.errexit, output)
    }

    pub fn with_specs(
        specs: &BTreeMap<Ctx, ContextSpec>,
        build_dir: &Path,
        errexit: bool,
        output: &Arc<Output>,
    ) -> Result<Contexts> {
        let dir = crate::plan::absolute(build_dir);
        std::fs::create_dir_all(&dir).map_err(|e| Error::io("cannot create build dir", &dir, e))?;
        let shells = Ctx::ALL
            .iter()
            .map(|ctx| {
                let spec = specs.get(ctx).cloned().unwrap_or_default();
                (*ctx, Context::new(*ctx, spec, dir.clone(), errexit, Arc::clone(output)))
            })
            .collect();
        Ok(Contexts { shells })
    }

    pub fn get(&mut self, ctx: Ctx) -> &mut Context {
        self.shells.get_mut(&ctx).expect("every context is configured by the plan")
    }

    pub fn stop_all(&mut self) {
        for c in self.shells.values_mut() {
            c.stop();
        }
    }

    /// Process groups of the running shells, for signal forwarding.
    pub fn pgids(&self) -> Vec<i32> {
        self.shells.values().filter_map(Context::pgid).collect()
    }

    /// Runs a list of resolved commands for one microstep (or driver operation).
    pub fn run_all(&mut self, slug: &str, cmds: &[Resolved]) -> std::result::Result<(), Fail> {
        for c in cmds {
            self.run(slug, c)?;
        }
        Ok(())
    }

    pub fn run(&mut self, slug: &str, cmd: &Resolved) -> std::result::Result<(), Fail> {
        match cmd {
            Resolved::Exec { ctx, cmd, span } => {
                let r = self.get(*ctx).run(cmd).map_err(|e| context_fail(slug, cmd, span, e))?;
                if r.status != 0 {
                    return Err(failure(slug, *ctx, r.status, cmd, r.tail, span));
                }
                Ok(())
            }
            Resolved::Pipe { from, to, span } => {
                let spool = tempfile::tempfile()
                    .map_err(|e| Fail::Fatal(Error::io("cannot create a pipe buffer", std::env::temp_dir(), e)))?;
                let copy = spool
                    .try_clone()
                    .map_err(|e| Fail::Fatal(Error::io("cannot create a pipe buffer", std::env::temp_dir(), e)))?;
                let r = self.get(from.0).capture(&from.1, copy).map_err(|e| context_fail(slug, &from.1, span, e))?;
                if r.status != 0 {
                    return Err(failure(slug, from.0, r.status, &from.1, r.tail, span));
                }
                let r = self.get(to.0).feed(&to.1, spool).map_err(|e| context_fail(slug, &to.1, span, e))?;
                if r.status != 0 {
                    return Err(failure(slug, to.0, r.status, &to.1, r.tail, span));
                }
                Ok(())
            }
            Resolved::Rescue(body, rescue) => match self.run(slug, body) {
                Err(Fail::Command(_)) => self.run(slug, rescue),
                other => other,
            },
            Resolved::Test(cond, then, otherwise) => match self.run(slug, cond) {
                Ok(()) => self.run(slug, then),
                Err(Fail::Command(_)) => match otherwise {
                    Some(o) => self.run(slug, o),
                    None => Ok(()),
                },
                Err(fatal) => Err(fatal),
            },
            Resolved::Group(cmds) => self.run_all(slug, cmds),
            Resolved::Breakpoint(message) => Err(Fail::Fatal(Error::Breakpoint(Box::new(
                Diagnostic::new(format!(
                    "breakpoint in {slug}{}",
                    message.as_ref().map(|m| format!(": {m}")).unwrap_or_default()
                ))
                .hint("without a terminal cairn stops at a breakpoint; remove it to build unattended"),
            )))),
            Resolved::ReloadContext(ctx) => {
                self.get(*ctx).stop();
                Ok(())
            }
        }
    }
}

fn failure(slug: &str, ctx: Ctx, status: i32, cmd: &str, tail: Vec<String>, span: &Span) -> Fail {
    Fail::Command(Box::new(CommandFailure {
        slug: slug.to_string(),
        context: ctx.to_string(),
        status,
        command: cmd.to_string(),
        tail,
        span: Some(span.clone()),
    }))
}

fn context_fail(slug: &str, cmd: &str, span: &Span, e: ContextError) -> Fail {
    let (ctx, tail) = match &e {
        ContextError::Died { ctx, tail, .. } => (*ctx, tail.clone()),
        ContextError::Spawn { ctx, .. } | ContextError::Io { ctx, .. } => (*ctx, Vec::new()),
    };
    let mut tail = tail;
    tail.push(e.to_string());
    failure(slug, ctx, 255, cmd, tail, span)
}

/// How one microstep is handled in this build.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    Run,
    /// Covered by the checkpoint that is applied.
    UseCheckpoint,
    /// Not run: `on_checkpoint: skip` with checkpoints on, or `only` with them off.
    Skip,
}

impl Action {
    pub fn describe(self) -> &'static str {
        match self {
            Action::Run => "Running the step...",
            Action::UseCheckpoint => "Using checkpoint",
            Action::Skip => "Skipping the step",
        }
    }
}

pub struct Build<'a> {
    pub plan: &'a Plan,
    pub output: Arc<Output>,
    pub contexts: Contexts,
    pub actions: Vec<Action>,
}

impl<'a> Build<'a> {
    pub fn new(plan: &'a Plan, output: Arc<Output>, actions: Vec<Action>) -> Result<Build<'a>> {
        let contexts = Contexts::new(plan, &output)?;
        Ok(Build {
            plan,
            output,
            contexts,
            actions,
        })
    }

    /// Runs one microstep's commands; on failure, its clean hooks and those of the sections
    /// still open run before the error is returned.
    pub fn run_microstep(&mut self, ms: &PlannedMicrostep) -> Result<()> {
        match self.contexts.run_all(&ms.slug, &ms.commands) {
            Ok(()) => Ok(()),
            Err(fail) => {
                self.clean_after_failure(ms);
                Err(fail.into())
            }
        }
    }

    pub fn start_event(&self, ms: &PlannedMicrostep, action: Action) {
        self.output.emit(Event::MicrostepStart {
            order: ms.index + 1,
            slug: ms.slug.clone(),
            id: ms.id.clone(),
            action: action.describe().to_string(),
        });
    }

    pub fn end_event(&self, ms: &PlannedMicrostep, status: &str, started: Instant) {
        self.output.emit(Event::MicrostepEnd {
            order: ms.index + 1,
            slug: ms.slug.clone(),
            step: ms.step.clone(),
            id: ms.id.clone(),
            status: status.to_string(),
            duration: started.elapsed().as_secs_f64(),
        });
    }

    /// The clean hooks that still have work to do after `failed`: its own step's, and every
    /// section-level one not yet run. Their failures are warnings: cleaning goes on.
    pub fn clean_after_failure(&mut self, failed: &PlannedMicrostep) {
        let pending: Vec<&PlannedMicrostep> = self.plan.microsteps[failed.index + 1..]
            .iter()
            .filter(|m| match m.hook {
                Some(HookKind::StepClean) => m.section == failed.section && m.step == failed.step,
                Some(HookKind::SectionClean) => true,
                _ => false,
            })
            .filter(|m| self.actions.get(m.index) != Some(&Action::Skip))
            .collect();
        for ms in pending {
            self.output.message(format!(" --> Cleaning after failure: {}", ms.slug));
            for cmd in &ms.commands {
                if let Err(fail) = self.contexts.run(&ms.slug, cmd) {
                    let e: Error = fail.into();
                    self.output.warning(format!("clean hook {} failed: {e}", ms.slug));
                }
            }
        }
    }
}
