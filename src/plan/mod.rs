//! From a loaded recipe to the ordered list of microsteps a build runs, every command resolved
//! and every checkpoint ID computed. Planning is pure: it reads input files but starts no
//! process, so dry runs, `plan --explain` and ID listings are cheap.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use indexmap::IndexMap;

pub mod explain;
pub mod id;
pub mod policy;
pub mod schedule;

use crate::diag::error::{Diagnostic, Error, Result};
use crate::diag::source::Span;
use crate::plan::id as checkpoint_id;
use crate::recipe::dialect::Dialect;
use crate::recipe::{
    Command, Ctx, GlobalValue, Microstep, OnCheckpoint, Recipe, Section, Step, StepVars, Text,
};
use crate::vars::{Mode, Origin, Resolver, Scope};

/// A command with every variable resolved.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Resolved {
    Exec {
        ctx: Ctx,
        cmd: String,
        #[serde(skip)]
        span: Span,
    },
    Pipe {
        from: (Ctx, String),
        to: (Ctx, String),
        #[serde(skip)]
        span: Span,
    },
    Rescue(Box<Resolved>, Box<Resolved>),
    Test(Box<Resolved>, Box<Resolved>, Option<Box<Resolved>>),
    Group(Vec<Resolved>),
    Breakpoint(Option<String>),
    ReloadContext(Ctx),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum HookKind {
    SectionInit,
    StepInit,
    StepClean,
    SectionClean,
}

#[derive(Debug, Clone)]
pub struct Check {
    pub ctx: Ctx,
    pub cmd: String,
    pub expect: String,
}

/// What a checkpoint ID was computed from, kept with each checkpoint so `plan --explain` can say
/// what changed.
#[derive(Debug, Clone, Default, serde::Serialize, serde::Deserialize, PartialEq)]
pub struct Manifest {
    pub commands: String,
    pub vars: BTreeMap<Arc<str>, Arc<str>>,
    pub inputs: BTreeMap<String, String>,
}

#[derive(Debug, Clone)]
pub struct PlannedMicrostep {
    pub index: usize,
    pub section: String,
    pub step: String,
    pub name: String,
    pub slug: String,
    pub span: Span,
    pub hook: Option<HookKind>,
    pub commands: Vec<Resolved>,
    pub rollback: Vec<Resolved>,
    pub verify: Vec<Check>,
    pub on_checkpoint: OnCheckpoint,
    pub atomic: bool,
    pub state_files: Vec<String>,
    pub id: String,
    pub manifest: Manifest,
}

#[derive(Debug, Clone, Default)]
pub struct ContextSpec {
    /// The command that starts the context's shell; None for a plain local bash.
    pub cmd: Option<String>,
    pub workdir: Option<String>,
    pub interactive_cmd: Option<String>,
    /// Scripts sourced into the shell when it starts (`env:` files).
    pub env: Vec<String>,
}

pub struct Plan {
    pub recipe: Recipe,
    pub build_dir: PathBuf,
    pub errexit: bool,
    pub contexts: BTreeMap<Ctx, ContextSpec>,
    /// Built-ins, globals and command-line values: the scope driver operations render in, and
    /// the parent of every step's.
    pub global_scope: Arc<Scope>,
    pub microsteps: Vec<PlannedMicrostep>,
}

pub struct PlanOptions<'a> {
    pub cli_globals: &'a [(String, String)],
    pub build_dir: &'a Path,
    pub checkpointing: bool,
}

pub fn default_build_dir(recipe: &Recipe) -> PathBuf {
    PathBuf::from("build").join(&recipe.name)
}

pub fn plan(recipe: Recipe, opts: &PlanOptions<'_>) -> Result<Plan> {
    let global_scope = Arc::new(global_scope(&recipe, opts)?);
    let resolver = Resolver::new(&global_scope);

    // Kameleon ran commands without errexit, and its recipes are written for that.
    let errexit = match resolver.value("shell_errexit", Mode::Run)? {
        None => recipe.dialect == Dialect::Native,
        Some(v) => !matches!(v.trim(), "false" | "no" | "off" | "0"),
    };
    let mut contexts = BTreeMap::new();
    for ctx in [Ctx::Out, Ctx::In] {
        let key = format!("{ctx}_context");
        let mut spec = ContextSpec::default();
        if let Some(g) = recipe.globals.get(&key) {
            let GlobalValue::Map(map) = &g.value else {
                return Err(
                    Diagnostic::at(&g.span, format!("`{key}` must be a mapping"))
                        .hint(format!(
                            "{key}: {{ cmd: \"chroot {{{{rootfs}}}} bash\", workdir: / }}"
                        ))
                        .into(),
                );
            };
            for (k, v) in map {
                let value = resolver.render(v, Mode::Run)?;
                match k.as_str() {
                    "cmd" => spec.cmd = Some(value),
                    "workdir" => spec.workdir = Some(value),
                    "interactive_cmd" => spec.interactive_cmd = Some(value),
                    // Kameleon's polipo cache settings: accepted, unused.
                    "proxy_cache" => {}
                    _ if recipe.dialect == Dialect::Kameleon => {}
                    other => {
                        return Err(crate::diag::suggest::unknown(
                            &v.span,
                            &format!("key of `{key}`"),
                            other,
                            &["cmd", "workdir", "interactive_cmd"],
                        )
                        .into());
                    }
                }
            }
        }
        contexts.insert(ctx, spec);
    }
    contexts.insert(Ctx::Local, ContextSpec::default());
    let mut env = Vec::new();
    for f in &recipe.env_files {
        // Read as a recipe file is: bounded, a regular file only (`env: /dev/zero` must not
        // fill memory), and not UTF-8 is an error with a position.
        env.push(
            crate::yaml::read(f, "cannot read env file", None)?
                .text
                .clone(),
        );
    }
    for (ctx, spec) in contexts.iter_mut() {
        spec.env = env.clone();
        // Kameleon's shells define helpers (`fail`, `__download`, ...) its recipes call.
        if recipe.dialect == Dialect::Kameleon {
            spec.env.insert(
                0,
                include_str!("../recipe/kameleon_bashrc.sh").replace("@CONTEXT@", ctx.name()),
            );
        }
    }

    let mut planner = Planner {
        globals: &resolver,
        global_scope: &global_scope,
        recipe_dir: recipe.path.parent().unwrap_or(Path::new(".")).to_path_buf(),
        previous: checkpoint_id::ROOT.to_string(),
        out: Vec::new(),
        slugs: Default::default(),
    };
    for section in &recipe.sections {
        planner.section(section)?;
    }
    let microsteps = planner.out;
    drop(resolver);
    Ok(Plan {
        recipe,
        build_dir: opts.build_dir.to_path_buf(),
        errexit,
        contexts,
        global_scope,
        microsteps,
    })
}

fn kameleon_uuid(build_dir: &str) -> String {
    let h = checkpoint_id::chain("kameleon-uuid", build_dir);
    format!(
        "{}-{}-{}-{}-{}",
        &h[0..8],
        &h[8..12],
        &h[12..16],
        &h[16..20],
        &h[20..32]
    )
}

/// The built-in variables of a build (lowest precedence): the scope of a recipe's globals,
/// and of a driver checked outside any recipe, start from these.
pub fn builtins(
    recipe_name: &str,
    recipe_dir: &Path,
    build_dir: &Path,
    checkpointing: bool,
) -> Scope {
    let mut scope = Scope::default();
    let recipe_dir = crate::recipe::paths::absolute(recipe_dir)
        .display()
        .to_string();
    let build_dir = crate::recipe::paths::absolute(build_dir)
        .display()
        .to_string();
    let exe = std::env::current_exe().unwrap_or_else(|_| "cairn".into());
    // Kameleon's built-ins, so its recipes and step libraries resolve unchanged. The UUID is
    // derived from the build dir: stable across rebuilds of one build dir, and hashed by name.
    let uuid = kameleon_uuid(&build_dir);
    let short_uuid = uuid.rsplit('-').next().unwrap_or_default().to_string();
    for (name, value) in [
        ("recipe_name", recipe_name.to_string()),
        ("recipe_dir", recipe_dir.clone()),
        ("build_dir", build_dir.clone()),
        ("checkpointing_enabled", checkpointing.to_string()),
        ("cairn_version", env!("CARGO_PKG_VERSION").to_string()),
        ("cairn_exe", exe.display().to_string()),
        ("kameleon_recipe_name", recipe_name.to_string()),
        ("kameleon_recipe_dir", recipe_dir),
        ("kameleon_cwd", build_dir),
        ("kameleon_short_uuid", short_uuid),
        ("kameleon_uuid", uuid),
        ("persistent_cache", "false".to_string()),
        ("proxy_local", String::new()),
        ("proxy_out", String::new()),
        ("proxy_in", String::new()),
    ] {
        scope.set_builtin(name, value);
    }
    for name in [
        "recipe_dir",
        "build_dir",
        "cairn_exe",
        "kameleon_recipe_dir",
        "kameleon_cwd",
        "kameleon_uuid",
        "kameleon_short_uuid",
    ] {
        scope.mark_volatile(name);
    }
    scope
}

fn global_scope(recipe: &Recipe, opts: &PlanOptions<'_>) -> Result<Scope> {
    let recipe_dir = recipe.path.parent().unwrap_or(Path::new("."));
    let mut scope = builtins(&recipe.name, recipe_dir, opts.build_dir, opts.checkpointing);
    scope.set_globals(&recipe.globals);
    scope.set_command_line(opts.cli_globals, recipe.dialect);
    if let Some(g) = recipe.globals.get("volatile") {
        let names: Vec<&Text> = match &g.value {
            GlobalValue::List(l) => l.iter().collect(),
            GlobalValue::Text(t) => vec![t],
            GlobalValue::Map(_) => {
                return Err(
                    Diagnostic::at(&g.span, "`volatile` must be a list of variable names").into(),
                );
            }
        };
        for n in names {
            scope.mark_volatile(&n.text);
        }
    }
    Ok(scope)
}

struct Planner<'a> {
    /// The globals' resolver, parent of every step's: a global is resolved once per plan.
    globals: &'a Resolver<'a>,
    global_scope: &'a Arc<Scope>,
    recipe_dir: PathBuf,
    previous: String,
    out: Vec<PlannedMicrostep>,
    slugs: std::collections::HashSet<String>,
}

impl Planner<'_> {
    fn section(&mut self, section: &Section) -> Result<()> {
        let init_step = format!("_init_{}", section.name);
        for hook in &section.init {
            let scope = self.step_scope(&hook.vars);
            let r = Resolver::with_parent(&scope, self.globals);
            self.microstep(
                &section.name,
                &init_step,
                &r,
                &hook.microstep,
                Some(HookKind::SectionInit),
            )?;
        }
        for step in &section.steps {
            self.step(&section.name, step)?;
        }
        let clean_step = format!("_clean_{}", section.name);
        for hook in &section.clean {
            let scope = self.step_scope(&hook.vars);
            let r = Resolver::with_parent(&scope, self.globals);
            self.microstep(
                &section.name,
                &clean_step,
                &r,
                &hook.microstep,
                Some(HookKind::SectionClean),
            )?;
        }
        Ok(())
    }

    /// A step's variables over the globals, shared (not copied) by every microstep of it.
    fn step_scope(&self, vars: &StepVars) -> Scope {
        let mut scope = Scope::child(Arc::clone(self.global_scope));
        scope.set_step(vars);
        scope
    }

    fn step(&mut self, section: &str, step: &Step) -> Result<()> {
        let scope = self.step_scope(&step.vars);
        let r = Resolver::with_parent(&scope, self.globals);
        for ms in &step.init {
            self.microstep(section, &step.name, &r, ms, Some(HookKind::StepInit))?;
        }
        for ms in &step.microsteps {
            self.microstep(section, &step.name, &r, ms, None)?;
        }
        for ms in &step.clean {
            self.microstep(section, &step.name, &r, ms, Some(HookKind::StepClean))?;
        }
        Ok(())
    }

    fn microstep(
        &mut self,
        section: &str,
        step: &str,
        r: &Resolver<'_>,
        ms: &Microstep,
        hook: Option<HookKind>,
    ) -> Result<()> {
        // What an earlier microstep of the step used is not what this one used.
        r.take_used();
        let commands = resolve_commands(r, &ms.commands, Mode::Run)?;
        let hashed = resolve_commands(r, &ms.commands, Mode::Hash)?;
        let rollback = resolve_commands(r, &ms.rollback, Mode::Run)?;
        let mut verify = Vec::new();
        for v in &ms.verify {
            verify.push(Check {
                ctx: v.ctx,
                cmd: r.render(&v.cmd, Mode::Run)?,
                expect: r.render(&v.expect, Mode::Run)?,
            });
        }
        let mut state_files = Vec::new();
        for s in &ms.state_files {
            state_files.push(r.render(s, Mode::Run)?);
        }
        let mut inputs = BTreeMap::new();
        for input in &ms.inputs {
            let shown = r.render(input, Mode::Hash)?;
            let path = self.recipe_dir.join(r.render(input, Mode::Run)?);
            let digest = checkpoint_id::hash_path(&path).map_err(|e| {
                Error::from(Diagnostic::at(
                    &input.span,
                    format!("cannot read input {}: {e}", path.display()),
                ))
            })?;
            inputs.insert(shown, digest);
        }
        let vars_used = r.take_used();

        let commands_json =
            serde_json::to_string(&hashed).map_err(|e| Error::Other(e.to_string()))?;
        let inputs_json =
            serde_json::to_string(&inputs).map_err(|e| Error::Other(e.to_string()))?;
        let canonical = format!("{commands_json}\0{inputs_json}");
        let id = checkpoint_id::chain(&self.previous, &canonical);
        if ms.on_checkpoint.advances_chain() {
            self.previous = id.clone();
        }
        let slug = self.unique_slug(format!("{section}/{step}/{}", ms.name));
        self.out.push(PlannedMicrostep {
            index: self.out.len(),
            section: section.to_string(),
            step: step.to_string(),
            name: ms.name.clone(),
            slug,
            span: ms.span.clone(),
            hook,
            commands,
            rollback,
            verify,
            on_checkpoint: ms.on_checkpoint,
            atomic: ms.atomic,
            state_files,
            id,
            manifest: Manifest {
                commands: commands_json,
                vars: vars_used,
                inputs,
            },
        });
        Ok(())
    }
}

impl Planner<'_> {
    /// Kameleon's slug for a microstep whose name is taken: the second `name%1`, the third
    /// `name%2`, so `-l`, `-F` and plans can name each one.
    fn unique_slug(&mut self, slug: String) -> String {
        let unique = if self.slugs.contains(&slug) {
            (1..)
                .map(|n| format!("{slug}%{n}"))
                .find(|s| !self.slugs.contains(s))
                .unwrap_or(slug)
        } else {
            slug
        };
        self.slugs.insert(unique.clone());
        unique
    }
}

pub fn resolve_commands(r: &Resolver<'_>, cmds: &[Command], mode: Mode) -> Result<Vec<Resolved>> {
    cmds.iter().map(|c| resolve(r, c, mode)).collect()
}

/// A command's text resolved; a Kameleon one as Kameleon would run it.
fn render_command(r: &Resolver<'_>, cmd: &Text, mode: Mode) -> Result<String> {
    let out = r.render(cmd, mode)?;
    Ok(if cmd.span.file.dialect == Dialect::Kameleon {
        crate::recipe::dialect::kameleon_plain_trim(&cmd.text, out)
    } else {
        out
    })
}

fn resolve(r: &Resolver<'_>, cmd: &Command, mode: Mode) -> Result<Resolved> {
    Ok(match cmd {
        Command::Exec { ctx, cmd } => Resolved::Exec {
            ctx: *ctx,
            cmd: render_command(r, cmd, mode)?,
            span: cmd.span.clone(),
        },
        Command::Pipe { from, to } => Resolved::Pipe {
            from: (from.0, render_command(r, &from.1, mode)?),
            to: (to.0, render_command(r, &to.1, mode)?),
            span: from.1.span.clone(),
        },
        Command::Rescue { body, rescue } => Resolved::Rescue(
            Box::new(resolve(r, body, mode)?),
            Box::new(resolve(r, rescue, mode)?),
        ),
        Command::Test {
            cond,
            then,
            otherwise,
        } => Resolved::Test(
            Box::new(resolve(r, cond, mode)?),
            Box::new(resolve(r, then, mode)?),
            otherwise
                .as_ref()
                .map(|o| resolve(r, o, mode))
                .transpose()?
                .map(Box::new),
        ),
        Command::Group(cmds) => Resolved::Group(resolve_commands(r, cmds, mode)?),
        Command::Breakpoint { message, .. } => {
            Resolved::Breakpoint(message.as_ref().map(|m| r.render(m, mode)).transpose()?)
        }
        Command::ReloadContext { ctx, .. } => Resolved::ReloadContext(*ctx),
    })
}

/// Every global resolved, for `cairn info`.
pub fn resolved_globals(plan: &Plan) -> Result<IndexMap<String, (String, Origin)>> {
    let r = Resolver::new(&plan.global_scope);
    let mut out = IndexMap::new();
    for (name, b) in plan.global_scope.iter() {
        // By name, so a value that names its own variable (`x: "$${x} b"`) builds on the
        // value it overrides once, as commands see it.
        let value = r.value(name, Mode::Run)?.unwrap_or_default();
        out.insert(name.to_string(), (value, b.origin));
    }
    Ok(out)
}
