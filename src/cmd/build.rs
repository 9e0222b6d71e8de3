//! `cairn build` and `cairn resume`: plan, notice an interrupted run, pick where to start (a
//! checkpoint, or the microsteps an earlier run completed), run the rest, record everything.

use std::sync::Arc;

use crate::cli::{BuildArgs, MicrostepCheckpoints, RecipeArgs};
use crate::diag::error::Result;
use crate::engine::session::{self, Request};
use crate::output::{Event, Format, Output};
use crate::plan::id::short;
use crate::plan::policy::Policy;
use crate::plan::schedule;

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
    let checkpointing = args.enable_checkpoint
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
    let plan = super::load_plan(&args.recipe, checkpointing)?;
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
            crate::state::StateDb::finished_checkpoints(&plan.build_dir)?
        } else {
            Vec::new()
        };
        let ready: Vec<String> = records.into_iter().map(|r| r.id).collect();
        // `-F` decides where the build resumes; the dry run shows that plan, or refuses as
        // the build would, by the same rule.
        let actions = match &args.from_checkpoint {
            Some(wanted) => schedule::actions(
                &plan,
                true,
                Some(schedule::from_checkpoint(&plan, &ready, wanted)?),
            ),
            None => schedule::dry_run_actions(
                &plan,
                &ready.iter().map(String::as_str).collect(),
                checkpointing,
            ),
        };
        super::plan::print_plan(&plan, &actions, args.json);
        return Ok(());
    }

    let target = super::target(&args.recipe);
    let request = Request {
        checkpointing,
        from_checkpoint: args.from_checkpoint.as_deref(),
        fresh: args.fresh,
        resume: args.resume,
        restart: args.restart,
        yes: args.yes,
        force: args.force,
        begin: args.begin_checkpoint.as_deref(),
        end: args.end_checkpoint.as_deref(),
        policy: args.microstep_checkpoints.map(|m| match m {
            MicrostepCheckpoints::All => Policy::All,
            MicrostepCheckpoints::First => Policy::First,
            MicrostepCheckpoints::Auto => Policy::Auto,
        }),
        cache_to: args.cache_to.as_deref(),
        cache_from: &args.cache_from,
        color,
    };
    session::build(&target, &request, plan, output)
}
