//! Rollback: replay the rollback journal newest first (wpkg's order: undo C, then B,
//! then A), mark what was undone so the next build runs it again, then apply the target's
//! checkpoint when a driver holds one.

use std::sync::Arc;

use crate::diag::error::{Error, Result};
use crate::exec::contexts::Contexts;
use crate::output::Output;
use crate::plan::id::short;
use crate::plan::{Plan, Resolved};
use crate::state::lock;
use crate::state::{RunStatus, StateDb};
use crate::store::{self, Store};

/// Rolls back the journaled microsteps after `to` (every one when None). The caller has
/// installed the signal handlers; `again` is the command that runs this rollback again
/// (without `--to`/`--full`), printed when a signal stops it.
pub fn run(
    plan: &Plan,
    to: Option<&str>,
    dry_run: bool,
    again: &str,
    output: &Arc<Output>,
) -> Result<()> {
    let _lock = lock::acquire(&plan.build_dir)?;
    let db = StateDb::open(&plan.build_dir)?;
    let target = to.map(|t| plan.find(t, "--to")).transpose()?;
    let index_of = |slug: &str| {
        plan.microsteps
            .iter()
            .find(|m| m.slug == slug)
            .map(|m| m.index)
    };
    let selected: Vec<_> = db
        .journal_pending()?
        .into_iter()
        .filter(|e| match (target, index_of(&e.slug)) {
            (None, _) => true,
            (Some(t), Some(i)) => i > t,
            (Some(_), None) => true,
        })
        .collect();
    let prefix = if dry_run {
        "Would roll back"
    } else {
        "Rolling back"
    };
    if selected.is_empty() {
        output.message("Nothing to roll back: no journaled microstep after the target.");
    }
    let mut contexts = Contexts::new(plan, output)?;
    // A microstep that ran in several builds is journaled once per run, but its effect is there
    // once: replaying the same rollback commands again would undo nothing, or fail. Only the
    // newest entry runs; the older copies are marked undone with it.
    let mut replayed: Vec<(&str, &str)> = Vec::new();
    for entry in &selected {
        let key = (entry.slug.as_str(), entry.commands.as_str());
        if replayed.contains(&key) {
            if !dry_run {
                db.journal_mark_rolled_back(entry.seq)?;
            }
            continue;
        }
        replayed.push(key);
        output.message(format!(
            "{prefix} {} ({})",
            entry.slug,
            short(&entry.checkpoint_id)
        ));
        if dry_run {
            continue;
        }
        let cmds: Vec<Resolved> = serde_json::from_str(&entry.commands)
            .map_err(|e| Error::Other(format!("journal entry {} is unreadable: {e}", entry.seq)))?;
        let result = contexts.run_all(&entry.slug, &cmds);
        // Interrupted: this entry and the older ones stay journaled; running the same
        // rollback again continues where this one stopped.
        if let Some(signal) = crate::exec::signals::interrupted() {
            contexts.stop_all();
            let mut resume = again.to_string();
            match to {
                Some(t) => {
                    resume.push_str(&format!(" --to {}", crate::vars::template::shell_word(t)))
                }
                None => resume.push_str(" --full"),
            }
            return Err(Error::Interrupted { signal, resume });
        }
        if let Err(fail) = result {
            contexts.stop_all();
            let e: Error = fail.into();
            return Err(Error::Other(format!(
                "rolling back {} failed; it and the entries before it stay in the journal: {e}",
                entry.slug
            )));
        }
        db.journal_mark_rolled_back(entry.seq)?;
        db.mark_rolled_back(&entry.checkpoint_id)?;
    }
    if !dry_run && target.is_none() {
        // Everything the interrupted run did is undone: there is nothing left to resume, and
        // the next build should not offer to.
        if let Some(last) = db.last_run()?
            && last.status == RunStatus::Interrupted
        {
            db.end_run(last.id, RunStatus::RolledBack)?;
        }
    }
    if !dry_run {
        for ms in plan
            .microsteps
            .iter()
            .filter(|m| target.is_none_or(|t| m.index > t))
        {
            db.mark_rolled_back(&ms.id)?;
        }
    }
    if let Some(t) = target
        && plan.recipe.checkpoint.is_some()
    {
        let ms = &plan.microsteps[t];
        let driver = store::require_driver(plan)?;
        let store = Store::open(driver, &db, &mut contexts, output, true)?;
        if store.exists(&ms.id) {
            if dry_run {
                output.message(format!(
                    "Would apply checkpoint {} ({})",
                    short(&ms.id),
                    ms.slug
                ));
            } else {
                store.apply(&mut contexts, ms, output)?;
            }
        } else if !dry_run {
            output.warning(format!("no checkpoint of {} exists to apply", ms.slug));
        }
    }
    contexts.stop_all();
    if dry_run {
        output.message("Dry run: nothing was changed.");
    }
    Ok(())
}
