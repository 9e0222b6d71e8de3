//! The recipe as loaded: files merged, aliases expanded, hooks gathered, but no variable
//! resolved yet. Every string that can hold a variable is a `Text` that remembers its place.

use std::fmt;
use std::path::PathBuf;

use indexmap::IndexMap;

use crate::diag::source::Span;

/// A template string from a file, with the place it came from.
#[derive(Debug, Clone)]
pub struct Text {
    pub text: String,
    pub span: Span,
}

impl Text {
    pub fn new(text: impl Into<String>, span: Span) -> Text {
        Text {
            text: text.into(),
            span,
        }
    }
}

#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize, serde::Deserialize,
)]
#[serde(rename_all = "lowercase")]
pub enum Ctx {
    Local,
    Out,
    In,
}

impl Ctx {
    pub const ALL: [Ctx; 3] = [Ctx::Local, Ctx::Out, Ctx::In];

    pub fn name(self) -> &'static str {
        match self {
            Ctx::Local => "local",
            Ctx::Out => "out",
            Ctx::In => "in",
        }
    }

    pub fn from_exec_key(key: &str) -> Option<Ctx> {
        match key {
            "exec_local" => Some(Ctx::Local),
            "exec_out" => Some(Ctx::Out),
            "exec_in" => Some(Ctx::In),
            _ => None,
        }
    }

    pub fn from_name(name: &str) -> Option<Ctx> {
        Ctx::ALL.into_iter().find(|c| c.name() == name)
    }
}

impl fmt::Display for Ctx {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

#[derive(Debug, Clone)]
pub enum Command {
    Exec {
        ctx: Ctx,
        cmd: Text,
    },
    /// Standard output of `from` becomes standard input of `to`, across contexts.
    Pipe {
        from: (Ctx, Text),
        to: (Ctx, Text),
    },
    Rescue {
        body: Box<Command>,
        rescue: Box<Command>,
    },
    Test {
        cond: Box<Command>,
        then: Box<Command>,
        otherwise: Option<Box<Command>>,
    },
    Group(Vec<Command>),
    Breakpoint {
        message: Option<Text>,
        span: Span,
    },
    ReloadContext {
        ctx: Ctx,
        span: Span,
    },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum OnCheckpoint {
    /// Run unless a checkpoint covers it; take a checkpoint after it.
    #[default]
    UseCache,
    /// Run, but never take a checkpoint after it.
    Disabled,
    /// Always run, even under a checkpoint; it does not advance the ID chain.
    Redo,
    /// Never run when checkpointing is on; it does not advance the ID chain.
    Skip,
    /// Run only when checkpointing is on.
    Only,
}

impl OnCheckpoint {
    pub const NAMES: [&'static str; 5] = ["use_cache", "disabled", "redo", "skip", "only"];

    pub fn parse(s: &str) -> Option<OnCheckpoint> {
        Some(match s {
            "use_cache" => OnCheckpoint::UseCache,
            "disabled" => OnCheckpoint::Disabled,
            "redo" => OnCheckpoint::Redo,
            "skip" => OnCheckpoint::Skip,
            "only" => OnCheckpoint::Only,
            _ => return None,
        })
    }

    /// Redo and skip microsteps leave the ID chain where it was, so toggling them never
    /// invalidates the checkpoints after them.
    pub fn advances_chain(self) -> bool {
        !matches!(self, OnCheckpoint::Redo | OnCheckpoint::Skip)
    }
}

#[derive(Debug, Clone)]
pub struct Verify {
    pub ctx: Ctx,
    pub cmd: Text,
    pub expect: Text,
}

#[derive(Debug, Clone)]
pub struct Microstep {
    pub name: String,
    pub span: Span,
    pub commands: Vec<Command>,
    pub on_checkpoint: OnCheckpoint,
    pub inputs: Vec<Text>,
    pub rollback: Vec<Command>,
    pub atomic: bool,
    pub state_files: Vec<Text>,
    pub verify: Vec<Verify>,
}

impl Microstep {
    pub fn new(name: impl Into<String>, span: Span) -> Microstep {
        Microstep {
            name: name.into(),
            span,
            commands: Vec::new(),
            on_checkpoint: OnCheckpoint::default(),
            inputs: Vec::new(),
            rollback: Vec::new(),
            atomic: false,
            state_files: Vec::new(),
            verify: Vec::new(),
        }
    }
}

/// A variable as written: its name, its template and where it was set.
#[derive(Debug, Clone)]
pub struct Var {
    pub name: String,
    pub value: Text,
}

/// The variables a step brings: its defaults and the arguments of the call that names it.
#[derive(Debug, Clone, Default)]
pub struct StepVars {
    pub defaults: IndexMap<String, Var>,
    pub args: IndexMap<String, Var>,
}

#[derive(Debug, Clone)]
pub struct Step {
    pub name: String,
    pub span: Span,
    /// The step file, or None for a step written inline in the recipe.
    pub file: Option<PathBuf>,
    pub vars: StepVars,
    pub init: Vec<Microstep>,
    pub microsteps: Vec<Microstep>,
    pub clean: Vec<Microstep>,
}

#[derive(Debug, Clone)]
pub struct Section {
    pub name: String,
    /// `on_<section>_init` hooks in declaration order; each runs with the variables of the step
    /// that declared it.
    pub init: Vec<Hook>,
    pub steps: Vec<Step>,
    /// `on_<section>_clean` hooks, already in the order they run: newest declaration first.
    pub clean: Vec<Hook>,
}

/// A section-level hook: a microstep that borrows the variables of the step declaring it.
#[derive(Debug, Clone)]
pub struct Hook {
    pub microstep: Microstep,
    /// The step that declared the hook, whose variables it runs with.
    pub step: String,
    pub vars: StepVars,
}

#[derive(Debug, Clone)]
pub enum GlobalValue {
    Text(Text),
    Map(IndexMap<String, Text>),
    List(Vec<Text>),
}

#[derive(Debug, Clone)]
pub struct Global {
    pub name: String,
    pub value: GlobalValue,
    pub span: Span,
    /// Values this one overrides (a parent recipe's, an included file's), lowest first: a
    /// value that names its own variable builds on them (`path: "{{path}}:/opt/bin"`).
    pub shadowed: Vec<Text>,
}

pub const SECTIONS: [&str; 3] = ["bootstrap", "setup", "export"];

#[derive(Debug, Clone)]
pub struct Recipe {
    pub path: PathBuf,
    pub name: String,
    pub description: Option<String>,
    /// The dialect of the recipe file itself, which sets defaults such as errexit.
    pub dialect: super::dialect::Dialect,
    /// Where steps, aliases, data, env files and Kameleon drivers are looked for.
    pub step_dirs: Vec<PathBuf>,
    /// `env:` scripts, sourced into every context's shell when it starts.
    pub env_files: Vec<PathBuf>,
    /// Parent recipes, nearest first.
    pub parents: Vec<PathBuf>,
    pub step_files: Vec<PathBuf>,
    pub globals: IndexMap<String, Global>,
    pub checkpoint: Option<Text>,
    pub sections: Vec<Section>,
    /// The recipe's aliases, which a Kameleon driver's operations may call too.
    pub aliases: super::alias::Aliases,
}
