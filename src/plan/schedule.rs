//! What a build does with each microstep (run it, use a checkpoint, skip it) and the plan
//! queries the engine and the commands share.

use std::collections::BTreeSet;

use super::id::short;
use super::{Plan, PlannedMicrostep};
use crate::diag::error::{Diagnostic, Error, Result};
use crate::recipe::OnCheckpoint;

/// How one microstep is handled in this build; its JSON name is part of docs/json.md.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Action {
    Run,
    /// Covered by the checkpoint that is applied.
    UseCheckpoint,
    /// Not run: `on_checkpoint: skip` with checkpoints on, or `only` with them off.
    Skip,
    /// Installer-mode resume: recorded as completed with the same ID by an earlier run.
    Done,
}

impl Action {
    pub fn describe(self) -> &'static str {
        match self {
            Action::Run => "Running the step...",
            Action::UseCheckpoint => "Using checkpoint",
            Action::Skip => "Skipping the step",
            Action::Done => "Already done (recorded as completed)",
        }
    }

    pub fn short(self) -> &'static str {
        match self {
            Action::Run => "run",
            Action::UseCheckpoint => "use checkpoint",
            Action::Skip => "skip",
            Action::Done => "done",
        }
    }
}

/// Whether a microstep's state is saved after it runs, by its own policy.
pub fn checkpointable(ms: &PlannedMicrostep) -> bool {
    matches!(
        ms.on_checkpoint,
        OnCheckpoint::UseCache | OnCheckpoint::Only
    )
}

/// How each microstep is handled when resuming after the microstep at `resume` (if any).
pub fn actions(plan: &Plan, checkpointing: bool, resume: Option<usize>) -> Vec<Action> {
    plan.microsteps
        .iter()
        .map(|ms| match ms.on_checkpoint {
            OnCheckpoint::Skip if checkpointing => Action::Skip,
            OnCheckpoint::Only if !checkpointing => Action::Skip,
            OnCheckpoint::Redo => Action::Run,
            _ if resume.is_some_and(|r| ms.index <= r) => Action::UseCheckpoint,
            _ => Action::Run,
        })
        .collect()
}

/// The microstep a build resumes after: the latest checkpointable microstep, in recipe order,
/// whose checkpoint exists. The one rule the build, `plan`, `plan --explain`, `resume` and
/// `rollback` share.
pub fn resume_point(plan: &Plan, exists: impl Fn(&str) -> bool) -> Option<usize> {
    plan.microsteps
        .iter()
        .rev()
        .find(|ms| checkpointable(ms) && exists(&ms.id))
        .map(|ms| ms.index)
}

/// Resolves `-F`: an ID prefix (4+ hex characters), a slug, or `last`, to the microstep to
/// resume after, among the checkpoints that exist. The build (with the driver's list) and its
/// dry run (with the state database's) both ask here, so they cannot disagree.
pub fn from_checkpoint(plan: &Plan, existing: &[String], wanted: &str) -> Result<usize> {
    let exists = |id: &str| existing.iter().any(|e| e == id);
    if wanted == "last" {
        return resume_point(plan, exists)
            .ok_or_else(|| unknown(plan, &exists, "no checkpoint of this recipe exists"));
    }
    if wanted.len() >= 4 && wanted.bytes().all(|b| b.is_ascii_hexdigit()) {
        let matches: Vec<&String> = existing.iter().filter(|e| e.starts_with(wanted)).collect();
        match matches.as_slice() {
            [] => {}
            [one] => {
                return plan
                    .microsteps
                    .iter()
                    .find(|ms| &ms.id == *one)
                    .map(|ms| ms.index)
                    .ok_or_else(|| {
                        Error::checkpoint(
                            Diagnostic::new(format!(
                                "checkpoint {} is stale: the recipe changed before it",
                                short(one)
                            ))
                            .hint("run `cairn plan --explain` to see what changed, or build with -c to resume from the newest valid checkpoint"),
                        )
                    });
            }
            many => {
                let list: Vec<&str> = many.iter().map(|m| short(m)).collect();
                return Err(Error::checkpoint(
                    Diagnostic::new(format!(
                        "checkpoint prefix `{wanted}` is ambiguous: it matches {}",
                        list.join(", ")
                    ))
                    .hint("give more characters of the ID"),
                ));
            }
        }
    }
    if let Some(ms) = plan.microsteps.iter().find(|ms| ms.slug == wanted) {
        if exists(&ms.id) {
            return Ok(ms.index);
        }
        return Err(unknown(
            plan,
            &exists,
            &format!("microstep {wanted} has no valid checkpoint"),
        ));
    }
    Err(unknown(
        plan,
        &exists,
        &format!("no checkpoint matches `{wanted}`"),
    ))
}

/// An unresolvable `-F`, with the checkpoints that can be named.
fn unknown(plan: &Plan, exists: &dyn Fn(&str) -> bool, message: &str) -> Error {
    let rows: Vec<String> = plan
        .microsteps
        .iter()
        .filter(|ms| exists(&ms.id))
        .map(|ms| format!("{} | {}", short(&ms.id), ms.slug))
        .collect();
    let d = if rows.is_empty() {
        Diagnostic::new(message)
            .note("this recipe has no checkpoints yet: build it with -c to create them")
    } else {
        Diagnostic::new(message).note(format!("the checkpoints that exist:\n{}", rows.join("\n")))
    };
    Error::checkpoint(d.hint("give an ID prefix of 4+ characters, a slug, or `last`"))
}

/// What a build would do, given the IDs of the checkpoints that exist.
pub fn dry_run_actions(plan: &Plan, ready: &BTreeSet<&str>, checkpointing: bool) -> Vec<Action> {
    let resume = resume_point(plan, |id| ready.contains(id)).filter(|_| checkpointing);
    actions(plan, checkpointing, resume)
}

impl Plan {
    /// A microstep named by ID prefix or slug, for the checkpoint window.
    pub fn find(&self, wanted: &str, flag: &str) -> Result<usize> {
        self.microsteps
            .iter()
            .find(|ms| ms.slug == wanted || (wanted.len() >= 4 && ms.id.starts_with(wanted)))
            .map(|ms| ms.index)
            .ok_or_else(|| {
                Error::checkpoint(
                    Diagnostic::new(format!("{flag} `{wanted}` names no microstep of this recipe"))
                        .hint("give a slug (section/step/microstep) or an ID prefix from `cairn build --dry-run`"),
                )
            })
    }
}
