//! Checkpoint drivers: YAML files of operations that snapshot and restore build state. cairn
//! knows nothing of filesystems or hypervisors; it renders a driver's commands with the
//! checkpoint's ID and runs them through the same contexts as recipe commands.

pub mod builtin;
pub mod conformance;

use std::collections::BTreeMap;
use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use indexmap::IndexMap;

use crate::diag::error::{Diagnostic, Error, Result};
use crate::diag::source::{Dialect, SourceFile, Span};
use crate::diag::suggest::unknown;
use crate::exec::contexts::{Contexts, Fail};
use crate::plan::{Resolved, resolve_commands};
use crate::recipe::load::commands::CommandParser;
use crate::recipe::load::scalar_text;
use crate::recipe::{Command, Ctx, Text};
use crate::vars::{Mode, Origin, Resolver, Scope};
use crate::yaml::read_yaml;

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Op {
    Enabled,
    Create,
    Apply,
    List,
    Delete,
    Clear,
    Verify,
    /// For `cairn driver check` on targets that are not directories: change the target
    /// (`{{check_round}}` is A, then B).
    Mutate,
    /// For `cairn driver check`: print a line that identifies the target's content.
    Fingerprint,
    /// Write checkpoint `{{checkpoint_id}}` to `{{export_file}}`, whole, or as a delta against
    /// `{{parent_id}}` when one is offered (then writing that ID to `{{export_file}}.base`).
    Export,
    /// Make checkpoint `{{checkpoint_id}}` from `{{import_file}}` (a delta against
    /// `{{parent_id}}` when that is set), never listing it half-made.
    Import,
    /// Optional: print the size of checkpoint `{{checkpoint_id}}` in bytes.
    Size,
}

impl Op {
    pub const ALL: [Op; 12] = [
        Op::Enabled,
        Op::Create,
        Op::Apply,
        Op::List,
        Op::Delete,
        Op::Clear,
        Op::Verify,
        Op::Mutate,
        Op::Fingerprint,
        Op::Export,
        Op::Import,
        Op::Size,
    ];
    pub const REQUIRED: [Op; 3] = [Op::Create, Op::Apply, Op::List];

    pub fn name(self) -> &'static str {
        match self {
            Op::Enabled => "enabled",
            Op::Create => "create",
            Op::Apply => "apply",
            Op::List => "list",
            Op::Delete => "delete",
            Op::Clear => "clear",
            Op::Verify => "verify",
            Op::Mutate => "mutate",
            Op::Fingerprint => "fingerprint",
            Op::Export => "export",
            Op::Import => "import",
            Op::Size => "size",
        }
    }
}

impl fmt::Display for Op {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

const OTHER_KEYS: [&str; 3] = ["description", "requires", "variables"];

#[derive(Debug, Clone)]
pub struct Driver {
    pub name: String,
    pub path: PathBuf,
    pub description: Option<String>,
    pub requires: Vec<String>,
    pub variables: IndexMap<String, Text>,
    /// A Kameleon checkpoint file: `enabled?` failing means "not ready yet" (nothing to list,
    /// nothing to create now), not an error, as Kameleon reads it.
    pub kameleon: bool,
    ops: BTreeMap<Op, Vec<Command>>,
    /// `- timeout: SECONDS` in an operation's list: how long it may run before it is killed.
    timeouts: BTreeMap<Op, std::time::Duration>,
}

impl Driver {
    /// Reads a driver file in `dialect` (None: the one its markers show). The built-in drivers
    /// are native whatever is asked.
    pub fn load(path: &Path, dialect: Option<Dialect>) -> Result<Driver> {
        Driver::load_with(path, dialect, &crate::recipe::alias::Aliases::default())
    }

    /// A driver whose operations may call the recipe's aliases, as Kameleon's may.
    pub fn load_with(
        path: &Path,
        dialect: Option<Dialect>,
        aliases: &crate::recipe::alias::Aliases,
    ) -> Result<Driver> {
        let root = match builtin::text(path) {
            Some(text) => {
                crate::yaml::parse(&SourceFile::new(path, text.to_string(), Dialect::Native))?
            }
            None => read_yaml(path, "cannot read driver file", dialect)?,
        };
        let entries = root.map("a driver file")?;
        let no_aliases = crate::recipe::alias::Aliases::default();
        let mut driver = Driver {
            name: path
                .file_stem()
                .map(|s| s.to_string_lossy().into_owned())
                .unwrap_or_default(),
            path: path.to_path_buf(),
            description: None,
            requires: Vec::new(),
            variables: IndexMap::new(),
            kameleon: root.span.file.dialect == Dialect::Kameleon,
            ops: BTreeMap::new(),
            timeouts: BTreeMap::new(),
        };
        for (k, v) in entries {
            let key = k.str("a key")?;
            let key = if key == "enabled?" { "enabled" } else { key };
            match key {
                "description" => driver.description = Some(v.str("`description`")?.to_string()),
                "requires" => {
                    for r in v.seq("`requires`")? {
                        driver
                            .requires
                            .push(r.str("a required program")?.to_string());
                    }
                }
                "variables" => {
                    for (name, value) in v.map("`variables`")? {
                        let name = name.str("a variable name")?.to_string();
                        let text = scalar_text(value, &format!("variable `{name}`"))?;
                        driver.variables.insert(name, text);
                    }
                }
                op => {
                    let Some(op) = Op::ALL.into_iter().find(|o| o.name() == op) else {
                        let mut known: Vec<&str> = Op::ALL.iter().map(|o| o.name()).collect();
                        known.extend(OTHER_KEYS);
                        return Err(unknown(&k.span, "driver operation", op, &known).into());
                    };
                    let mut items = Vec::new();
                    for item in v.seq(&format!("operation `{op}`"))? {
                        match item.single_entry() {
                            Some((k, t)) if k.as_str() == Some("timeout") => {
                                driver.timeouts.insert(op, timeout(t)?);
                            }
                            _ => items.push(item.clone()),
                        }
                    }
                    // Only a Kameleon driver calls the recipe's aliases, as Kameleon's
                    // checkpoint steps do; a native driver's commands are its own.
                    let aliases = if driver.kameleon {
                        aliases
                    } else {
                        &no_aliases
                    };
                    let cmds = CommandParser::for_driver(aliases).parse(&items)?;
                    driver.ops.insert(op, cmds);
                }
            }
        }
        for op in Op::REQUIRED {
            if !driver.ops.contains_key(&op) {
                return Err(Diagnostic::at(
                    &Span::new(&root.span.file, 1, 1, 1),
                    format!("driver has no `{op}` operation"),
                )
                .hint(format!(
                    "every driver needs {}",
                    Op::REQUIRED.map(|o| format!("`{o}`")).join(", ")
                ))
                .into());
            }
        }
        if driver.ops.contains_key(&Op::Export) != driver.ops.contains_key(&Op::Import) {
            let (has, lacks) = if driver.ops.contains_key(&Op::Export) {
                (Op::Export, Op::Import)
            } else {
                (Op::Import, Op::Export)
            };
            return Err(Diagnostic::at(
                &Span::new(&root.span.file, 1, 1, 1),
                format!("driver has `{has}` but no `{lacks}`"),
            )
            .hint("a checkpoint exported on one machine must be importable on another: give both, or neither")
            .into());
        }
        Ok(driver)
    }

    pub fn has(&self, op: Op) -> bool {
        self.ops.contains_key(&op)
    }
}

/// Where a driver named in a recipe is looked for, in order.
pub fn search_dirs(recipe_dirs: &[PathBuf], step_dirs: &[PathBuf]) -> Vec<PathBuf> {
    let mut dirs = Vec::new();
    for d in recipe_dirs {
        dirs.push(d.join("drivers"));
    }
    for d in step_dirs.iter().chain(
        recipe_dirs
            .iter()
            .map(|r| r.join("steps"))
            .collect::<Vec<_>>()
            .iter(),
    ) {
        let k = d.join("checkpoints");
        if !dirs.contains(&k) {
            dirs.push(k);
        }
    }
    if let Some(config) = std::env::var_os("XDG_CONFIG_HOME")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".config")))
    {
        dirs.push(config.join("cairn").join("drivers"));
    }
    dirs.extend(shipped_dirs());
    dirs
}

/// Where packaged drivers may be: `CAIRN_DRIVER_PATH`, then next to the installed binary
/// (`../share/cairn/drivers`). The shipped drivers are built in (`builtin`) and come after.
pub fn shipped_dirs() -> Vec<PathBuf> {
    let mut dirs = Vec::new();
    if let Some(p) = std::env::var_os("CAIRN_DRIVER_PATH") {
        dirs.extend(std::env::split_paths(&p));
    }
    if let Ok(exe) = std::env::current_exe()
        && let Some(bin) = exe.parent()
    {
        dirs.push(bin.join("../share/cairn/drivers"));
    }
    dirs
}

/// Finds the driver a recipe's `checkpoint:` names: a path (relative to the recipe), or a name
/// looked up in the search directories.
pub fn find(spec: &Text, recipe_dirs: &[PathBuf], step_dirs: &[PathBuf]) -> Result<PathBuf> {
    let name = spec.text.as_str();
    if name.contains('/') {
        let base = recipe_dirs.first().cloned().unwrap_or_default();
        let path = base.join(name);
        if path.is_file() {
            return Ok(path);
        }
        return Err(Diagnostic::at(
            &spec.span,
            format!("driver file {} not found", path.display()),
        )
        .into());
    }
    let file = if name.ends_with(".yaml") {
        name.to_string()
    } else {
        format!("{name}.yaml")
    };
    let dirs = search_dirs(recipe_dirs, step_dirs);
    for d in &dirs {
        let p = d.join(&file);
        if p.is_file() {
            return Ok(p);
        }
    }
    let stem = file.strip_suffix(".yaml").unwrap_or(&file);
    let built_in = builtin::path(stem);
    if builtin::text(&built_in).is_some() {
        return Ok(built_in);
    }
    let searched: Vec<String> = dirs
        .iter()
        .map(|d| d.join(&file).display().to_string())
        .collect();
    Err(Diagnostic::at(&spec.span, format!("checkpoint driver `{name}` not found"))
        .note(format!("searched:\n{}", searched.join("\n")))
        .hint("shipped drivers: copy, hardlink, reflink; or write drivers/<name>.yaml next to the recipe")
        .into())
}

/// A driver bound to one build: its variables resolved against the recipe's globals.
pub struct BoundDriver {
    pub driver: Driver,
    scope: Arc<Scope>,
}

impl BoundDriver {
    /// Driver variables sit above built-ins and below the recipe's globals, which override them
    /// (`Origin::Driver`'s place in the precedence).
    pub fn bind(driver: Driver, globals: &Arc<Scope>) -> BoundDriver {
        let mut scope = Scope::child(Arc::clone(globals));
        for (name, text) in &driver.variables {
            scope.set(name, text.clone(), Origin::Driver);
        }
        BoundDriver {
            driver,
            scope: Arc::new(scope),
        }
    }

    pub fn name(&self) -> &str {
        &self.driver.name
    }

    /// The operation's commands, rendered for one checkpoint (or, for `mutate`, one round).
    pub fn commands(&self, op: Op, checkpoint_id: &str) -> Result<Vec<Resolved>> {
        self.commands_with(op, checkpoint_id, &[])
    }

    /// Like `commands`, with the variables only some operations see (`export_file`,
    /// `import_file`, `parent_id`).
    pub fn commands_with(
        &self,
        op: Op,
        checkpoint_id: &str,
        extra: &[(&str, &str)],
    ) -> Result<Vec<Resolved>> {
        // An ID reaches shell text (`rm -rf {{sh store}}/{{sh checkpoint_id}}`): whatever a
        // state database or a driver's `list` says, only hex ever gets there.
        let parent = extra
            .iter()
            .find(|(k, _)| *k == "parent_id")
            .map(|(_, v)| *v);
        let bad = [Some(checkpoint_id).filter(|_| op != Op::Mutate), parent]
            .into_iter()
            .flatten()
            .find(|id| !id.is_empty() && !is_id(id));
        if let Some(checkpoint_id) = bad {
            return Err(Error::checkpoint(
                Diagnostic::new(format!(
                    "refusing to pass {checkpoint_id:?} to checkpoint driver `{}` ({op}): a checkpoint ID is 12 to 40 lowercase hex digits",
                    self.driver.name
                ))
                .hint("the state database may have been edited or damaged; `cairn clear` starts afresh"),
            ));
        }
        let Some(cmds) = self.driver.ops.get(&op) else {
            return Ok(Vec::new());
        };
        let mut scope = Scope::child(Arc::clone(&self.scope));
        for (name, value) in extra {
            scope.set(
                name,
                Text::new(*value, Span::synthetic("checkpoint")),
                Origin::Operation,
            );
        }
        let name = if op == Op::Mutate {
            "check_round"
        } else {
            "checkpoint_id"
        };
        // Kameleon's drivers get its 12-character `@microstep_id`.
        let value = if self.driver.kameleon && op != Op::Mutate {
            crate::plan::id::short(checkpoint_id)
        } else {
            checkpoint_id
        };
        scope.set(
            name,
            Text::new(value, Span::synthetic("checkpoint")),
            Origin::Operation,
        );
        let r = Resolver::new(&scope);
        resolve_commands(&r, cmds, Mode::Run)
    }

    /// Renders every operation once, so that an unknown variable in one is reported (exit 3)
    /// before the build runs anything, not when the operation is first needed.
    pub fn validate(&self) -> Result<()> {
        const STAND_IN: &str = "0123456789abcdef0123456789abcdef01234567";
        let extra = [
            ("export_file", "/dev/null"),
            ("import_file", "/dev/null"),
            ("parent_id", ""),
        ];
        for op in Op::ALL {
            let id = if op == Op::Mutate { "A" } else { STAND_IN };
            self.commands_with(op, id, &extra)?;
        }
        Ok(())
    }

    /// A driver variable's value, for messages (`target`, say).
    pub fn variable(&self, name: &str) -> Option<String> {
        let r = Resolver::new(&self.scope);
        r.value(name, Mode::Run).ok().flatten()
    }

    /// Runs an operation. Failures are checkpoint errors (exit 4) naming the driver and op.
    pub fn run(&self, contexts: &mut Contexts, op: Op, checkpoint_id: &str) -> Result<()> {
        self.run_with(contexts, op, checkpoint_id, &[])
    }

    /// Runs `f` under the operation's `timeout:`; past it, the operation's processes are
    /// killed and the result is a timeout error, whatever `f` made of the dead shell.
    fn timed<T>(
        &self,
        contexts: &mut Contexts,
        op: Op,
        f: impl FnOnce(&mut Contexts) -> Result<T>,
    ) -> Result<T> {
        let limit = self.driver.timeouts.get(&op).copied();
        let dog = Watchdog::start(limit);
        let result = f(contexts);
        if dog.fired() {
            drop(dog);
            contexts.stop_all();
            let secs = limit.map(|l| l.as_secs_f64()).unwrap_or_default();
            return Err(Error::checkpoint(
                Diagnostic::new(format!(
                    "checkpoint driver `{}` timed out in `{op}`: it was still running after {secs} s, so cairn killed it",
                    self.driver.name
                ))
                .hint(format!(
                    "find out what `{op}` waits for (a lock, a network mount, a prompt), or raise its `- timeout:` in {}",
                    self.driver.path.display()
                )),
            ));
        }
        result
    }

    /// Runs an operation with extra variables (see `commands_with`).
    pub fn run_with(
        &self,
        contexts: &mut Contexts,
        op: Op,
        checkpoint_id: &str,
        extra: &[(&str, &str)],
    ) -> Result<()> {
        let cmds = self.commands_with(op, checkpoint_id, extra)?;
        let label = format!("driver {} ({op})", self.driver.name);
        self.timed(contexts, op, |contexts| {
            contexts
                .run_all(&label, &cmds)
                .map_err(|f| self.failed(op, f))
        })
    }

    /// The operation as host shell scripts, to run away from the build's contexts (an export
    /// on the upload thread); None when a command needs a context or is not a plain command.
    pub fn host_scripts(
        &self,
        op: Op,
        checkpoint_id: &str,
        extra: &[(&str, &str)],
    ) -> Result<Option<Vec<String>>> {
        let cmds = self.commands_with(op, checkpoint_id, extra)?;
        Ok(cmds
            .into_iter()
            .map(|c| match c {
                Resolved::Exec {
                    ctx: Ctx::Local,
                    cmd,
                    ..
                } => Some(cmd),
                _ => None,
            })
            .collect())
    }

    fn failed(&self, op: Op, f: Fail) -> Error {
        match f {
            Fail::Command(c) => {
                let mut d = Diagnostic::new(format!(
                    "checkpoint driver `{}` failed in `{op}`: command in context `{}` exited with status {}",
                    self.driver.name, c.context, c.status
                ))
                .note(format!("the command was:\n> {}", c.command.lines().collect::<Vec<_>>().join("\n> ")));
                if !c.tail.is_empty() {
                    d = d.note(format!("its last lines of output:\n{}", c.tail.join("\n")));
                }
                if crate::diag::error::says_disk_full(&c.tail) {
                    d = d.hint(
                        "the disk is full: free space where the driver writes its checkpoints, \
                         then run the build again; a checkpoint whose creation failed is never \
                         used, and the next build makes it again",
                    );
                }
                d.span = c.span;
                Error::checkpoint(d)
            }
            Fail::Fatal(e) => e,
        }
    }

    /// Whether the driver can work here; the error says why not.
    pub fn enabled(&self, contexts: &mut Contexts) -> Result<()> {
        for r in &self.driver.requires {
            if which(r).is_none() {
                return Err(Error::checkpoint(
                    Diagnostic::new(format!(
                        "checkpoint driver `{}` needs `{r}`, which is not installed",
                        self.driver.name
                    ))
                    .hint(format!(
                        "install {r}, or choose another driver with `checkpoint:`"
                    )),
                ));
            }
        }
        if self.driver.has(Op::Enabled) {
            self.run(contexts, Op::Enabled, "").map_err(|e| match e {
                Error::Checkpoint(mut d) => {
                    d.message = format!(
                        "checkpoint driver `{}` cannot work here: its `enabled` check failed",
                        self.driver.name
                    );
                    Error::Checkpoint(d)
                }
                other => other,
            })?;
        }
        Ok(())
    }

    /// The IDs the driver says exist: every line of `list` output that is a hex ID.
    pub fn list(&self, contexts: &mut Contexts) -> Result<Vec<String>> {
        let text = self.capture(contexts, Op::List, "")?;
        Ok(text
            .lines()
            .map(str::trim)
            .filter(|l| is_id(l))
            .map(str::to_string)
            .collect())
    }

    /// Runs an operation made of exec commands and returns their standard output.
    pub fn capture(&self, contexts: &mut Contexts, op: Op, checkpoint_id: &str) -> Result<String> {
        self.timed(contexts, op, |contexts| {
            self.capture_untimed(contexts, op, checkpoint_id)
        })
    }

    fn capture_untimed(
        &self,
        contexts: &mut Contexts,
        op: Op,
        checkpoint_id: &str,
    ) -> Result<String> {
        let cmds = self.commands(op, checkpoint_id)?;
        let mut out = String::new();
        for cmd in &cmds {
            let Resolved::Exec { ctx, cmd, span } = cmd else {
                return Err(Diagnostic::new(format!(
                    "driver `{}`: `{op}` must be exec commands",
                    self.driver.name
                ))
                .into());
            };
            let (r, text) = contexts
                .get(*ctx)
                .capture_text(cmd)
                .map_err(|e| Error::checkpoint(Diagnostic::new(e.to_string())))?;
            if r.status != 0 {
                let fail = crate::diag::error::CommandFailure {
                    slug: String::new(),
                    context: ctx.to_string(),
                    status: r.status,
                    command: cmd.clone(),
                    tail: r.tail,
                    span: Some(span.clone()),
                };
                return Err(self.failed(op, Fail::Command(Box::new(fail))));
            }
            out.push_str(&text);
        }
        Ok(out)
    }

    pub fn ctx_used(&self) -> Vec<Ctx> {
        let mut v: Vec<Ctx> = Vec::new();
        for cmds in self.driver.ops.values() {
            for c in cmds {
                if let Command::Exec { ctx, .. } = c
                    && !v.contains(ctx)
                {
                    v.push(*ctx);
                }
            }
        }
        v
    }
}

/// Where an `export` says which checkpoint its delta is against: `<export_file>.base`.
pub fn base_marker(file: &Path) -> PathBuf {
    let mut s = file.as_os_str().to_owned();
    s.push(".base");
    PathBuf::from(s)
}

/// `timeout: SECONDS`, a positive number (fractions allowed).
fn timeout(v: &crate::yaml::Node) -> Result<std::time::Duration> {
    let secs = v
        .as_str()
        .and_then(|t| t.trim().parse::<f64>().ok())
        .filter(|s| s.is_finite() && *s > 0.0 && *s < 1e9);
    match secs {
        Some(s) => Ok(std::time::Duration::from_secs_f64(s)),
        None => Err(
            Diagnostic::at(&v.span, "`timeout` must be a number of seconds")
                .hint("write `- timeout: 600` as an item of the operation's list")
                .into(),
        ),
    }
}

/// Kills the build's processes when an operation outlives its `timeout:`; dropped when the
/// operation ends first.
struct Watchdog {
    stop: Option<std::sync::mpsc::Sender<()>>,
    fired: std::sync::Arc<std::sync::atomic::AtomicBool>,
}

impl Watchdog {
    fn start(limit: Option<std::time::Duration>) -> Watchdog {
        let fired = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
        let Some(limit) = limit else {
            return Watchdog { stop: None, fired };
        };
        let (tx, rx) = std::sync::mpsc::channel::<()>();
        let flag = fired.clone();
        std::thread::spawn(move || {
            if rx.recv_timeout(limit) == Err(std::sync::mpsc::RecvTimeoutError::Timeout) {
                flag.store(true, std::sync::atomic::Ordering::SeqCst);
                crate::exec::process::signal_all(crate::exec::process::Signal::SIGTERM);
                if rx.recv_timeout(std::time::Duration::from_secs(2))
                    == Err(std::sync::mpsc::RecvTimeoutError::Timeout)
                {
                    crate::exec::process::signal_all(crate::exec::process::Signal::SIGKILL);
                }
            }
        });
        Watchdog {
            stop: Some(tx),
            fired,
        }
    }

    fn fired(&self) -> bool {
        self.fired.load(std::sync::atomic::Ordering::SeqCst)
    }
}

impl Drop for Watchdog {
    fn drop(&mut self) {
        if let Some(tx) = self.stop.take() {
            let _ = tx.send(());
        }
    }
}

pub fn is_id(s: &str) -> bool {
    (12..=40).contains(&s.len())
        && s.bytes()
            .all(|b| b.is_ascii_hexdigit() && !b.is_ascii_uppercase())
}

pub fn which(program: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .chain(["/sbin", "/usr/sbin"].map(PathBuf::from))
        .map(|d| d.join(program))
        .find(|p| p.is_file())
}
