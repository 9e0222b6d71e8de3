//! The events of a command's output: what the human view prints and what `--json` writes, one
//! definition for both. docs/json.md documents every variant and field; `samples()` holds one
//! of each so that a test can compare the two.

use serde::Serialize;

use super::vocab::{CommandName, ErrorFields, MicrostepStatus, RunOutcome};
use crate::plan::schedule::Action;
use crate::recipe::Ctx;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Stream {
    Stdout,
    Stderr,
}

/// A checkpoint as `cairn checkpoints` lists it.
#[derive(Debug, Clone, Serialize)]
pub struct CheckpointRow {
    pub id: String,
    pub slug: String,
    pub created_at: Option<f64>,
    pub duration: Option<f64>,
    pub valid: bool,
    /// Bytes, when known.
    pub size: Option<i64>,
    /// Seconds of re-run it saved when it was made.
    pub saves: Option<f64>,
    /// Seconds its latest apply took.
    pub apply: Option<f64>,
    /// This build dir's state database records making it.
    pub made_here: bool,
}

/// The end-of-build summary.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Summary {
    pub ran: usize,
    pub restored: usize,
    pub skipped: usize,
    pub done: usize,
    pub failed: usize,
    pub checkpoints_created: usize,
    pub checkpoints_size: Option<u64>,
    pub checkpoints_applied: usize,
    pub command_time: f64,
    pub checkpoint_time: f64,
    pub duration: f64,
    pub failed_microstep: Option<String>,
    pub exit_status: Option<i32>,
    pub resume: Option<String>,
}

#[derive(Debug, Clone, Serialize)]
#[serde(tag = "event", rename_all = "snake_case")]
pub enum Event {
    Start {
        schema_version: u32,
        cairn_version: String,
        command: CommandName,
    },
    RunStart {
        run_id: i64,
        recipe: String,
        build_dir: String,
        microsteps: usize,
    },
    MicrostepStart {
        order: usize,
        slug: String,
        id: String,
        action: Action,
    },
    Output {
        context: Ctx,
        stream: Stream,
        line: String,
    },
    CheckpointApplyStart {
        slug: String,
        id: String,
    },
    CheckpointApplied {
        slug: String,
        id: String,
        duration: f64,
    },
    CheckpointCreateStart {
        slug: String,
        id: String,
    },
    CheckpointCreated {
        slug: String,
        id: String,
        duration: f64,
        size: Option<u64>,
    },
    CheckpointUploadStart {
        slug: String,
        id: String,
    },
    CheckpointUploaded {
        slug: String,
        id: String,
        duration: f64,
        /// The store, as its URL (never a credential).
        store: String,
        bytes: u64,
        /// The checkpoint the upload is a delta against (`btrfs send -p`), if any.
        base: Option<String>,
        /// The store had the checkpoint already: nothing was uploaded.
        present: bool,
    },
    MicrostepEnd {
        order: usize,
        slug: String,
        step: String,
        id: String,
        status: MicrostepStatus,
        duration: f64,
        exit_status: Option<i32>,
    },
    /// Every microstep of a step is done (Kameleon's "Step X took").
    StepEnd {
        section: String,
        step: String,
        duration: f64,
    },
    Message {
        text: String,
    },
    Warning {
        text: String,
    },
    Summary(Summary),
    RunEnd {
        run_id: i64,
        recipe: String,
        status: RunOutcome,
        duration: f64,
        exit_code: i32,
    },
    PlanMicrostep {
        order: usize,
        slug: String,
        id: String,
        action: Action,
    },
    Explain {
        lines: Vec<String>,
    },
    /// `plan --commands`: a microstep with its resolved commands.
    PlanCommands {
        order: usize,
        slug: String,
        id: String,
        action: Action,
        hook: Option<crate::plan::HookKind>,
        commands: serde_json::Value,
        rollback: serde_json::Value,
    },
    /// `plan --commands`: the driver's operations.
    PlanDriver {
        name: String,
        path: String,
        operations: serde_json::Map<String, serde_json::Value>,
    },
    Checkpoint(CheckpointRow),
    Graph {
        recipe: String,
        nodes: Vec<serde_json::Value>,
        edges: Vec<serde_json::Value>,
    },
    Error(ErrorFields),
    End {
        exit_code: i32,
    },
    /// A checkpoint could not be pushed (the build goes on; a warning says why).
    CheckpointUploadFailed {
        slug: String,
        id: String,
        store: String,
        /// Not tried: the store failed earlier in the build.
        skipped: bool,
        message: String,
    },
    /// `--cache-from`: a checkpoint downloaded and checked against its manifest.
    CheckpointDownloaded {
        slug: String,
        id: String,
        store: String,
        bytes: u64,
        duration: f64,
        base: Option<String>,
    },
    /// `--cache-from`: a checkpoint that could not be downloaded, did not match its manifest or
    /// could not be imported; it is not applied.
    CheckpointDownloadFailed {
        slug: String,
        id: String,
        store: String,
        message: String,
    },
}

impl Event {
    /// Its position in the list of variants; a new variant does not compile until it is named
    /// here, which is the reminder to add it to `samples()` and to docs/json.md.
    pub fn variant(&self) -> usize {
        match self {
            Event::Start { .. } => 0,
            Event::RunStart { .. } => 1,
            Event::MicrostepStart { .. } => 2,
            Event::Output { .. } => 3,
            Event::CheckpointApplyStart { .. } => 4,
            Event::CheckpointApplied { .. } => 5,
            Event::CheckpointCreateStart { .. } => 6,
            Event::CheckpointCreated { .. } => 7,
            Event::CheckpointUploadStart { .. } => 8,
            Event::CheckpointUploaded { .. } => 9,
            Event::MicrostepEnd { .. } => 10,
            Event::StepEnd { .. } => 11,
            Event::Message { .. } => 12,
            Event::Warning { .. } => 13,
            Event::Summary(_) => 14,
            Event::RunEnd { .. } => 15,
            Event::PlanMicrostep { .. } => 16,
            Event::Explain { .. } => 17,
            Event::Checkpoint(_) => 18,
            Event::Graph { .. } => 19,
            Event::Error(_) => 20,
            Event::End { .. } => 21,
            Event::PlanCommands { .. } => 22,
            Event::PlanDriver { .. } => 23,
            Event::CheckpointUploadFailed { .. } => 24,
            Event::CheckpointDownloaded { .. } => 25,
            Event::CheckpointDownloadFailed { .. } => 26,
        }
    }

    pub const VARIANTS: usize = 27;

    /// One of each event, for the test that holds docs/json.md to the code.
    #[doc(hidden)]
    pub fn samples() -> Vec<Event> {
        let s = || "x".to_string();
        vec![
            Event::Start {
                schema_version: super::vocab::SCHEMA_VERSION,
                cairn_version: s(),
                command: CommandName::Build,
            },
            Event::RunStart {
                run_id: 1,
                recipe: s(),
                build_dir: s(),
                microsteps: 1,
            },
            Event::MicrostepStart {
                order: 1,
                slug: s(),
                id: s(),
                action: Action::Run,
            },
            Event::Output {
                context: Ctx::Local,
                stream: Stream::Stdout,
                line: s(),
            },
            Event::CheckpointApplyStart { slug: s(), id: s() },
            Event::CheckpointApplied {
                slug: s(),
                id: s(),
                duration: 1.0,
            },
            Event::CheckpointCreateStart { slug: s(), id: s() },
            Event::CheckpointCreated {
                slug: s(),
                id: s(),
                duration: 1.0,
                size: Some(1),
            },
            Event::CheckpointUploadStart { slug: s(), id: s() },
            Event::CheckpointUploaded {
                slug: s(),
                id: s(),
                duration: 1.0,
                store: s(),
                bytes: 1,
                base: None,
                present: false,
            },
            Event::MicrostepEnd {
                order: 1,
                slug: s(),
                step: s(),
                id: s(),
                status: MicrostepStatus::Completed,
                duration: 1.0,
                exit_status: Some(0),
            },
            Event::StepEnd {
                section: s(),
                step: s(),
                duration: 1.0,
            },
            Event::Message { text: s() },
            Event::Warning { text: s() },
            Event::Summary(Summary::default()),
            Event::RunEnd {
                run_id: 1,
                recipe: s(),
                status: RunOutcome::Succeeded,
                duration: 1.0,
                exit_code: 0,
            },
            Event::PlanMicrostep {
                order: 1,
                slug: s(),
                id: s(),
                action: Action::Run,
            },
            Event::Explain { lines: vec![s()] },
            Event::Checkpoint(CheckpointRow {
                id: s(),
                slug: s(),
                created_at: None,
                duration: None,
                valid: true,
                size: None,
                saves: None,
                apply: None,
                made_here: false,
            }),
            Event::Graph {
                recipe: s(),
                nodes: Vec::new(),
                edges: Vec::new(),
            },
            Event::Error(ErrorFields::of(
                &crate::diag::error::Error::Other(s()),
                None,
            )),
            Event::End { exit_code: 0 },
            Event::PlanCommands {
                order: 1,
                slug: s(),
                id: s(),
                action: Action::Run,
                hook: Some(crate::plan::HookKind::StepClean),
                commands: serde_json::json!([]),
                rollback: serde_json::json!([]),
            },
            Event::PlanDriver {
                name: s(),
                path: s(),
                operations: serde_json::Map::new(),
            },
            Event::CheckpointUploadFailed {
                slug: s(),
                id: s(),
                store: s(),
                skipped: false,
                message: s(),
            },
            Event::CheckpointDownloaded {
                slug: s(),
                id: s(),
                store: s(),
                bytes: 1,
                duration: 1.0,
                base: None,
            },
            Event::CheckpointDownloadFailed {
                slug: s(),
                id: s(),
                store: s(),
                message: s(),
            },
        ]
    }
}
