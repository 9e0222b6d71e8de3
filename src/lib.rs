//! cairn: build appliances, root filesystems and images in checkpointed steps.
//!
//! Data flows one way: `recipe` loads files into a model, `plan` resolves variables and computes
//! checkpoint IDs, `engine` runs the plan through `exec` shells and `driver` operations, and
//! `state` records what happened. Modules import only downward; docs/architecture.md lists the
//! layers and tests/layers.rs checks that no import cycle appears.

pub mod cli;
pub mod cmd;
pub mod diag;
pub mod driver;
pub mod engine;
pub mod exec;
#[doc(hidden)]
pub mod fuzzing;
pub mod output;
pub mod plan;
pub mod qemu;
pub mod recipe;
pub mod snapshot;
pub mod state;
pub mod store;
pub mod vars;
pub mod yaml;

pub use diag::error::{Error, Result};

pub fn run(cli: cli::Cli) -> Result<()> {
    use cli::Command;
    let color = output::settings().colors.stdout;
    let mut cli = cli;
    if let Some(args) = cli.command.recipe_args_mut() {
        args.dialect = match cli.dialect {
            cli::DialectArg::Auto => None,
            cli::DialectArg::Native => Some(recipe::dialect::Dialect::Native),
            cli::DialectArg::Kameleon => Some(recipe::dialect::Dialect::Kameleon),
        };
    }
    match cli.command {
        Command::Build(args) => cmd::build::run(&args, color),
        Command::Resume {
            recipe,
            json,
            yes,
            force,
        } => cmd::build::resume(recipe, json, yes, force, color),
        Command::Rollback {
            recipe,
            to,
            full: _,
            dry_run,
        } => cmd::rollback::run(&recipe, to.as_deref(), dry_run, color),
        Command::Info { recipe } => cmd::info::run(&recipe),
        Command::Plan {
            recipe,
            explain,
            json,
            commands,
        } => cmd::plan::run(&recipe, explain, json, commands),
        Command::Checkpoints {
            recipe,
            prune,
            keep_cost,
            json,
        } => cmd::checkpoints::run(&recipe, prune, keep_cost, json, color),
        Command::Clear { recipe } => cmd::clear::run(&recipe, color),
        Command::Graph { recipe, format } => cmd::graph::run(&recipe, format),
        Command::Report { recipe, output } => cmd::report::run(&recipe, output),
        Command::Completions { shell } => {
            let mut command = <cli::Cli as clap::CommandFactory>::command();
            clap_complete::generate(shell, &mut command, "cairn", &mut std::io::stdout());
            Ok(())
        }
        Command::Man => {
            let command = <cli::Cli as clap::CommandFactory>::command();
            clap_mangen::Man::new(command)
                .render(&mut std::io::stdout())
                .map_err(|e| Error::Other(format!("cannot write the man page: {e}")))
        }
        Command::Driver(cli::DriverCommand::List) => cmd::driver::list(),
        Command::Cache(cli::CacheCommand::Ls { url, recipe, json }) => {
            cmd::cache::ls(&url, recipe.as_deref(), json)
        }
        Command::Cache(cli::CacheCommand::Prune {
            url,
            keep_last,
            older_than,
            dry_run,
        }) => cmd::cache::prune(&url, keep_last, older_than, dry_run),
        Command::Driver(cli::DriverCommand::Check {
            file,
            target,
            globals,
        }) => cmd::driver::check(&file, target.as_deref(), &globals),
        Command::QemuMonitor {
            socket,
            command,
            timeout,
        } => cmd::qemu_monitor::run(&socket, &command, std::time::Duration::from_secs(timeout)),
        Command::SnapshotTree {
            src,
            dst,
            link_dest,
        } => cmd::snapshot_tree::run(&src, &dst, link_dest.as_deref()),
    }
}
