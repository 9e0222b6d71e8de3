//! The running shells of one build and how a resolved command is run in them: the engine's
//! microsteps and the drivers' operations both go through `Contexts::run`.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use super::prompt;
use super::shell::{Context, ContextError};
use crate::diag::error::{CommandFailure, Diagnostic, Error, Result};
use crate::diag::source::Span;
use crate::output::Output;
use crate::plan::{ContextSpec, Plan, Resolved};
use crate::recipe::Ctx;

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
    /// The build dir, where `local` runs.
    pub dir: PathBuf,
    /// A terminal is attached: a breakpoint asks instead of stopping.
    pub interactive: bool,
    /// For clearing the status line while a breakpoint asks.
    output: Arc<Output>,
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
        let dir = crate::recipe::paths::absolute(build_dir);
        std::fs::create_dir_all(&dir).map_err(|e| Error::io("cannot create build dir", &dir, e))?;
        let shells = Ctx::ALL
            .iter()
            .map(|ctx| {
                let spec = specs.get(ctx).cloned().unwrap_or_default();
                (
                    *ctx,
                    Context::new(*ctx, spec, dir.clone(), errexit, Arc::clone(output)),
                )
            })
            .collect();
        Ok(Contexts {
            shells,
            dir,
            interactive: false,
            output: Arc::clone(output),
        })
    }

    pub fn get(&mut self, ctx: Ctx) -> &mut Context {
        self.shells
            .get_mut(&ctx)
            .expect("every context is configured by the plan")
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
                let r = self
                    .get(*ctx)
                    .run(cmd)
                    .map_err(|e| context_fail(slug, cmd, span, e))?;
                if r.status != 0 {
                    return Err(failure(slug, *ctx, r.status, cmd, r.tail, span));
                }
                Ok(())
            }
            Resolved::Pipe { from, to, span } => {
                let spool = tempfile::tempfile().map_err(|e| {
                    Fail::Fatal(Error::io(
                        "cannot create a pipe buffer",
                        std::env::temp_dir(),
                        e,
                    ))
                })?;
                let copy = spool.try_clone().map_err(|e| {
                    Fail::Fatal(Error::io(
                        "cannot create a pipe buffer",
                        std::env::temp_dir(),
                        e,
                    ))
                })?;
                let r = self
                    .get(from.0)
                    .capture(&from.1, copy)
                    .map_err(|e| context_fail(slug, &from.1, span, e))?;
                if r.status != 0 {
                    return Err(failure(slug, from.0, r.status, &from.1, r.tail, span));
                }
                let r = self
                    .get(to.0)
                    .feed(&to.1, spool)
                    .map_err(|e| context_fail(slug, &to.1, span, e))?;
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
            Resolved::Breakpoint(message) if self.interactive => {
                let text = format!(
                    "Breakpoint in {slug}{}",
                    message
                        .as_ref()
                        .map(|m| format!(": {m}"))
                        .unwrap_or_default()
                );
                let output = Arc::clone(&self.output);
                let answer = output.suspend(|| {
                    prompt::choose(&text, &[("c", "continue"), ("a", "abort the build")])
                });
                match answer.as_deref() {
                    Some("c") => Ok(()),
                    _ => Err(Fail::Fatal(Error::Breakpoint(Box::new(Diagnostic::new(
                        format!("aborted at a breakpoint in {slug}"),
                    ))))),
                }
            }
            Resolved::Breakpoint(message) => Err(Fail::Fatal(Error::Breakpoint(Box::new(
                Diagnostic::new(format!(
                    "breakpoint in {slug}{}",
                    message
                        .as_ref()
                        .map(|m| format!(": {m}"))
                        .unwrap_or_default()
                ))
                .hint(
                    "without a terminal cairn stops at a breakpoint; remove it to build unattended",
                ),
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
