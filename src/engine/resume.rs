//! Resuming a build: what an interrupted run left, installer-mode "already done" marks, and
//! the refusal to build on state files that changed since they were recorded.

use crate::diag::error::{Diagnostic, Error, Result};
use crate::plan::Plan;
use crate::plan::schedule::Action;
use crate::state::files as state_files;
use crate::state::{RunStatus, StateDb, StepStatus};

/// Installer-mode resume: the microsteps an earlier run completed with the same ID are not run
/// again, up to the first one that is not recorded as completed (where the last run stopped);
/// from there on everything runs, since a completion recorded before an earlier microstep ran
/// again may have been undone by it. Refused when the files they recorded changed since.
pub fn mark_done(plan: &Plan, actions: &mut [Action], db: &StateDb, force: bool) -> Result<()> {
    let completed = db.completed_ids()?;
    for ms in &plan.microsteps {
        if actions[ms.index] != Action::Run {
            continue;
        }
        if !completed.contains(&ms.id) {
            break;
        }
        actions[ms.index] = Action::Done;
    }
    refuse_drift(plan, actions, Action::Done, db, force, "--restart")
}

/// Refuses to build on the microsteps marked `relied` (done earlier, or covered by the applied
/// checkpoint) when a file in their `state_files:` changed since they completed, naming it.
pub fn refuse_drift(
    plan: &Plan,
    actions: &[Action],
    relied: Action,
    db: &StateDb,
    force: bool,
    over: &str,
) -> Result<()> {
    if force {
        return Ok(());
    }
    let slugs: Vec<&str> = plan
        .microsteps
        .iter()
        .filter(|ms| actions[ms.index] == relied)
        .map(|ms| ms.slug.as_str())
        .collect();
    let recorded: Vec<_> = db
        .state_files()?
        .into_iter()
        .filter(|(slug, _, _)| slugs.contains(&slug.as_str()))
        .collect();
    let drifted = state_files::drifted(&recorded);
    if !drifted.is_empty() {
        let list: Vec<String> = drifted
            .iter()
            .map(|(slug, path)| format!("{path} (recorded by {slug})"))
            .collect();
        return Err(Error::checkpoint(
            Diagnostic::new("state files changed since the microsteps that wrote them completed; resuming could build on a changed system")
                .note(format!("changed:\n{}", list.join("\n")))
                .hint(format!("check the files, then resume with --force, or start over with {over}")),
        ));
    }
    Ok(())
}

/// Marks runs a killed cairn left "running" as interrupted, and describes the last run if it
/// was interrupted.
pub fn interrupted_run(db: &StateDb) -> Result<Option<String>> {
    for r in db.unfinished_runs()? {
        db.end_run(r.id, RunStatus::Interrupted)?;
    }
    let Some(last) = db.last_run()? else {
        return Ok(None);
    };
    if last.status != RunStatus::Interrupted {
        return Ok(None);
    }
    let steps = db.steps_of_run(last.id)?;
    let completed = steps
        .iter()
        .filter(|s| s.status == StepStatus::Completed)
        .count();
    let last_done = steps
        .iter()
        .rev()
        .find(|s| matches!(s.status, StepStatus::Completed | StepStatus::Cached));
    let running = steps
        .iter()
        .rev()
        .find(|s| matches!(s.status, StepStatus::Started | StepStatus::Interrupted));
    Ok(Some(format!(
        "run #{} (started {}) was interrupted: {completed} microstep(s) completed{}{}",
        last.id,
        crate::output::time::format_time(last.started_at),
        last_done
            .map(|s| format!(", the last {}", s.slug))
            .unwrap_or_default(),
        running
            .map(|s| format!("; it was running {}", s.slug))
            .unwrap_or_default(),
    )))
}
