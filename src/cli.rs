//! The command line, as the contract names it: Kameleon's option names first, so its users'
//! fingers keep working.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand, ValueEnum};

#[derive(Debug, Parser)]
#[command(
    name = "cairn",
    version,
    about = "Build appliances, root filesystems and images in checkpointed steps"
)]
pub struct Cli {
    /// Never colour the output (the same as --color never)
    #[arg(long, global = true)]
    pub no_color: bool,
    /// Colour each stream that is a terminal (auto: unless NO_COLOR is set; CLICOLOR_FORCE
    /// forces it), always, or never
    #[arg(
        long,
        global = true,
        value_enum,
        default_value = "auto",
        value_name = "WHEN"
    )]
    pub color: crate::output::color::ColorChoice,
    /// Print only errors and the end-of-build summary
    #[arg(short = 'q', long, global = true)]
    pub quiet: bool,
    /// Read every recipe, step and driver file as this dialect instead of detecting it per file
    #[arg(long, global = true, value_enum, default_value = "auto")]
    pub dialect: DialectArg,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum GraphFormat {
    Dot,
    Mermaid,
    Json,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum DialectArg {
    /// Kameleon's syntax where a file uses it ($${var}, enabled?, @microstep_id), cairn's elsewhere
    Auto,
    /// cairn's syntax: handlebars {{var}}
    Native,
    /// Kameleon's syntax: $${var}; {{ is literal text
    Kameleon,
}

#[derive(Debug, Args, Clone)]
pub struct RecipeArgs {
    /// The recipe file
    pub recipe: PathBuf,
    /// Set or override a global: KEY=VALUE (or KEY:VALUE); repeatable
    #[arg(short = 'g', long = "global", value_name = "KEY=VALUE", value_parser = parse_global)]
    pub globals: Vec<(String, String)>,
    /// The build dir (default: ./build/<recipe name>)
    #[arg(short = 'b', long, value_name = "DIR")]
    pub build_dir: Option<PathBuf>,
    /// The global `--dialect`, copied here after parsing (`Command::recipe_args_mut`); None
    /// lets the recipe's extend chain decide.
    #[arg(skip)]
    pub dialect: Option<crate::diag::source::Dialect>,
}

impl Command {
    /// The recipe arguments of a command that loads a recipe.
    pub fn recipe_args_mut(&mut self) -> Option<&mut RecipeArgs> {
        match self {
            Command::Build(args) => Some(&mut args.recipe),
            Command::Info { recipe }
            | Command::Plan { recipe, .. }
            | Command::Checkpoints { recipe, .. }
            | Command::Clear { recipe }
            | Command::Resume { recipe, .. }
            | Command::Rollback { recipe, .. }
            | Command::Graph { recipe, .. }
            | Command::Report { recipe, .. } => Some(recipe),
            _ => None,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum MicrostepCheckpoints {
    /// Only the first microstep run in each step gets a checkpoint
    First,
    /// One checkpoint after every microstep
    All,
    /// A checkpoint only where the re-run time it saves exceeds its create + apply time
    Auto,
}

#[derive(Debug, Args)]
pub struct BuildArgs {
    #[command(flatten)]
    pub recipe: RecipeArgs,
    /// Print the plan (slug, ID, action) and run nothing
    #[arg(short = 'n', long)]
    pub dry_run: bool,
    /// One JSON object per event on stdout
    #[arg(long)]
    pub json: bool,
    /// Create a checkpoint after each microstep, and resume from the newest valid one
    #[arg(short = 'c', long)]
    pub enable_checkpoint: bool,
    /// Resume from this checkpoint: an ID prefix (4+ chars), a slug, or `last`; implies -c
    #[arg(short = 'F', long, value_name = "ID|SLUG|last")]
    pub from_checkpoint: Option<String>,
    /// With -c: create checkpoints, but apply none (build from scratch)
    #[arg(long, conflicts_with = "from_checkpoint")]
    pub fresh: bool,
    /// Create checkpoints from this microstep on (ID, slug)
    #[arg(short = 'B', long, value_name = "ID|SLUG")]
    pub begin_checkpoint: Option<String>,
    /// Create checkpoints up to this microstep (ID, slug)
    #[arg(short = 'E', long, value_name = "ID|SLUG")]
    pub end_checkpoint: Option<String>,
    /// Checkpoint every microstep (all), only the first one run in each step (first), or where
    /// it pays (auto) [default: global.checkpoint_policy, else all]
    #[arg(long, value_enum)]
    pub microstep_checkpoints: Option<MicrostepCheckpoints>,
    /// List this recipe's checkpoints (with --dry-run: the IDs a build would create)
    #[arg(short = 'l', long, visible_alias = "checkpoints")]
    pub list_checkpoints: bool,
    /// Never prompt (also when stdin is not a terminal)
    #[arg(short = 'y', long, visible_alias = "script")]
    pub yes: bool,
    /// After an interrupted run, start over instead of resuming
    #[arg(long)]
    pub restart: bool,
    /// Resume even when state files changed since they were recorded
    #[arg(long)]
    pub force: bool,
    /// Continue the last run (set by `cairn resume`)
    #[arg(skip)]
    pub resume: bool,
    /// Push each checkpoint to this object store as it is created (s3://BUCKET/PREFIX or
    /// file:///PATH); implies -c. A store that fails is a warning, never a failed build
    #[arg(long, value_name = "URL")]
    pub cache_to: Option<String>,
    /// Before resuming, fetch the newest checkpoint of this recipe from these stores when it is
    /// newer than the newest one here; repeatable, implies -c
    #[arg(long, value_name = "URL")]
    pub cache_from: Vec<String>,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Build a recipe
    Build(BuildArgs),
    /// Show a recipe's parents, step files, driver and resolved globals
    Info {
        #[command(flatten)]
        recipe: RecipeArgs,
    },
    /// Show what a build would do; --explain says why a microstep's ID changed
    Plan {
        #[command(flatten)]
        recipe: RecipeArgs,
        /// Name the first microstep whose ID changed since the newest checkpoint, and what changed
        #[arg(long)]
        explain: bool,
        /// One JSON object per microstep
        #[arg(long)]
        json: bool,
        /// Under each microstep, every resolved command with its kind and context; then the
        /// driver's resolved operations
        #[arg(long)]
        commands: bool,
    },
    /// List a recipe's checkpoints
    Checkpoints {
        #[command(flatten)]
        recipe: RecipeArgs,
        /// Delete the stale ones through the driver
        #[arg(long)]
        prune: bool,
        /// With --prune: also delete the checkpoints this build dir made that save less than
        /// SECONDS of re-run time
        #[arg(long, value_name = "SECONDS", requires = "prune", value_parser = parse_seconds)]
        keep_cost: Option<f64>,
        #[arg(long)]
        json: bool,
    },
    /// Delete every checkpoint of a recipe (driver `clear`)
    Clear {
        #[command(flatten)]
        recipe: RecipeArgs,
    },
    /// Continue the last run: from the newest valid checkpoint when a driver is set, otherwise
    /// skipping the microsteps recorded as completed
    Resume {
        #[command(flatten)]
        recipe: RecipeArgs,
        /// One JSON object per event on stdout
        #[arg(long)]
        json: bool,
        /// Never prompt
        #[arg(short = 'y', long, visible_alias = "script")]
        yes: bool,
        /// Resume even when state files changed since they were recorded
        #[arg(long)]
        force: bool,
    },
    /// Replay the rollback journal newest first, then apply the target's checkpoint
    Rollback {
        #[command(flatten)]
        recipe: RecipeArgs,
        /// Roll back everything after this microstep (slug or ID prefix)
        #[arg(
            long,
            value_name = "ID|SLUG",
            conflicts_with = "full",
            required_unless_present = "full"
        )]
        to: Option<String>,
        /// Roll back every journaled microstep
        #[arg(long)]
        full: bool,
        /// Print what would be rolled back and change nothing
        #[arg(short = 'n', long)]
        dry_run: bool,
    },
    /// The plan as a graph: microsteps grouped by step, each after the one its ID chains on
    Graph {
        #[command(flatten)]
        recipe: RecipeArgs,
        #[arg(long, value_enum, default_value = "dot")]
        format: GraphFormat,
    },
    /// Write an HTML report of the build dir's runs: timelines, what ran and why, checkpoint costs
    Report {
        #[command(flatten)]
        recipe: RecipeArgs,
        /// Where to write it (default: <build dir>/report.html)
        #[arg(short = 'o', long, value_name = "FILE")]
        output: Option<PathBuf>,
    },
    /// Print a shell completion script: `cairn completions bash > /etc/bash_completion.d/cairn`
    Completions {
        #[arg(value_enum)]
        shell: clap_complete::Shell,
    },
    /// Print the man page (roff): `cairn man | man -l -`
    Man,
    /// Find checkpoint drivers, and check one you wrote
    #[command(subcommand)]
    Driver(DriverCommand),
    /// Inspect and trim an object store of shared checkpoints (see --cache-to)
    #[command(subcommand)]
    Cache(CacheCommand),
    /// Send one command to a QEMU monitor socket and print its reply (used by the qemu driver;
    /// exits 4 with the reply on stderr when QEMU answers `Error:`)
    #[command(hide = true)]
    QemuMonitor {
        /// The socket of `-monitor unix:PATH,server,nowait`
        socket: PathBuf,
        /// The monitor command, e.g. `savevm 3f2a9c1b0d4e` (words are joined with spaces)
        #[arg(required = true, trailing_var_arg = true, allow_hyphen_values = true)]
        command: Vec<String>,
        /// Seconds to wait for the reply (a savevm under TCG can take a while)
        #[arg(long, default_value_t = 600)]
        timeout: u64,
    },
    /// Copy directory SRC to DST (which must not exist) as `cp -a` does, hard-linking from
    /// PREV each regular file provably unchanged since PREV was made (used by the hardlink
    /// driver; docs/drivers.md). Writes DST/../.NAME.created, which must move with DST
    #[command(hide = true)]
    SnapshotTree {
        /// The directory to copy
        src: PathBuf,
        /// The new directory
        dst: PathBuf,
        /// An earlier snapshot made by this command, next to its .NAME.created record
        #[arg(long, value_name = "PREV")]
        link_dest: Option<PathBuf>,
    },
}

#[derive(Debug, Subcommand)]
pub enum CacheCommand {
    /// List the checkpoints in a store: ID, recipe, step, size, whether a delta, when pushed
    Ls {
        /// The store: s3://BUCKET/PREFIX or file:///PATH
        url: String,
        /// Only this recipe's checkpoints (its name)
        recipe: Option<String>,
        /// One JSON object per checkpoint
        #[arg(long)]
        json: bool,
    },
    /// Delete checkpoints from a store, keeping the bases the kept ones' deltas need
    Prune {
        /// The store: s3://BUCKET/PREFIX or file:///PATH
        url: String,
        /// Keep the newest N checkpoints of each recipe
        #[arg(
            long,
            value_name = "N",
            required_unless_present = "older_than",
            conflicts_with = "older_than"
        )]
        keep_last: Option<usize>,
        /// Delete checkpoints pushed more than DAYS days ago
        #[arg(long, value_name = "DAYS")]
        older_than: Option<f64>,
        /// Say what would be deleted, delete nothing
        #[arg(short = 'n', long)]
        dry_run: bool,
    },
}

#[derive(Debug, Subcommand)]
pub enum DriverCommand {
    /// Every driver cairn can find: name, file, whether `enabled` passes here, description
    List,
    /// Validate a driver file and run the conformance scenario against a scratch target
    Check {
        /// The driver file
        file: PathBuf,
        /// Use this target instead of a scratch directory cairn makes
        #[arg(long, value_name = "PATH")]
        target: Option<PathBuf>,
        /// Set a driver variable: KEY=VALUE; repeatable
        #[arg(short = 'g', long = "global", value_name = "KEY=VALUE", value_parser = parse_global)]
        globals: Vec<(String, String)>,
    },
}

impl Cli {
    /// Which command writes JSON, if the command line asked for JSON.
    pub fn json(&self) -> Option<crate::output::schema::CommandName> {
        use crate::output::schema::CommandName as N;
        match &self.command {
            Command::Build(a) if a.json => Some(N::Build),
            Command::Resume { json: true, .. } => Some(N::Resume),
            Command::Plan { json: true, .. } => Some(N::Plan),
            Command::Checkpoints { json: true, .. } => Some(N::Checkpoints),
            Command::Graph {
                format: GraphFormat::Json,
                ..
            } => Some(N::Graph),
            _ => None,
        }
    }
}

/// Whether raw arguments that clap refused asked for JSON, so that the usage error is reported
/// in the stream a program expects.
pub fn asks_for_json(args: &[std::ffi::OsString]) -> bool {
    args.iter()
        .zip(args.iter().skip(1).map(Some).chain([None]))
        .any(|(a, next)| {
            a == "--json"
                || a == "--format=json"
                || (a == "--format" && next.is_some_and(|n| n == "json"))
        })
}

fn parse_global(s: &str) -> Result<(String, String), String> {
    let at = match (s.find('='), s.find(':')) {
        (Some(e), Some(c)) => e.min(c),
        (Some(e), None) => e,
        (None, Some(c)) => c,
        (None, None) => return Err(format!("`{s}` is not KEY=VALUE (or KEY:VALUE)")),
    };
    let (k, v) = (&s[..at], &s[at + 1..]);
    if k.is_empty() {
        return Err(format!("`{s}` has an empty key"));
    }
    Ok((k.to_string(), v.to_string()))
}

fn parse_seconds(s: &str) -> Result<f64, String> {
    match s.parse::<f64>() {
        Ok(v) if v.is_finite() && v >= 0.0 => Ok(v),
        _ => Err(format!(
            "`{s}` is not a number of seconds (0 or more, e.g. 2.5)"
        )),
    }
}
