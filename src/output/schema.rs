//! The `--json` contract: the schema version, the enumerations that stand where prose used to
//! (actions, statuses, error kinds), and the one writer every command's JSON goes through, so
//! that every stream starts with a `start` event and ends with an `end` event. docs/json.md
//! documents each event and field; a test holds the two together.

use std::io::Write;
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, Ordering};

use serde::Serialize;

use crate::error::Error;

/// Raised when an event or field is removed or changes meaning; adding one keeps it.
pub const SCHEMA_VERSION: u32 = 1;

/// The command a stream comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum CommandName {
    Build,
    Resume,
    Plan,
    Checkpoints,
    Graph,
    Other,
}

/// How a microstep ended in a build.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum MicrostepStatus {
    /// Its commands ran and succeeded.
    Completed,
    /// A command failed (or a `verify` check did not match).
    Failed,
    /// Covered by the checkpoint that was applied: not run.
    Restored,
    /// Not run by its `on_checkpoint` policy.
    Skipped,
    /// Installer-mode resume: an earlier run completed it with the same ID.
    Done,
}

/// How a run ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum RunOutcome {
    Succeeded,
    Failed,
    Interrupted,
}

/// Which kind of failure an `error` event reports; each has its exit code (docs/cli.md).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ErrorKind {
    CommandFailed,
    Verify,
    Breakpoint,
    Usage,
    BadInput,
    Checkpoint,
    State,
    Locked,
    Interrupted,
    Io,
    Other,
}

impl ErrorKind {
    pub fn of(e: &Error) -> ErrorKind {
        match e {
            Error::CommandFailed(_) => ErrorKind::CommandFailed,
            Error::Verify(_) => ErrorKind::Verify,
            Error::Breakpoint(_) => ErrorKind::Breakpoint,
            Error::Usage(_) => ErrorKind::Usage,
            Error::BadInput(_) => ErrorKind::BadInput,
            Error::Checkpoint(_) => ErrorKind::Checkpoint,
            Error::State(_) => ErrorKind::State,
            Error::Locked(_) => ErrorKind::Locked,
            Error::Interrupted { .. } => ErrorKind::Interrupted,
            Error::Io { .. } => ErrorKind::Io,
            Error::Other(_) => ErrorKind::Other,
        }
    }
}

/// The fields of an `error` event, read from an error.
#[derive(Debug, Clone, Serialize)]
pub struct ErrorFields {
    pub exit_code: i32,
    pub kind: ErrorKind,
    pub message: String,
    pub file: Option<String>,
    pub line: Option<usize>,
    pub column: Option<usize>,
    pub hint: Option<String>,
    pub notes: Vec<String>,
    /// The microstep whose command failed.
    pub microstep: Option<String>,
    pub context: Option<String>,
    /// The failed command's exit status.
    pub exit_status: Option<i32>,
    /// The command that resumes the build.
    pub resume: Option<String>,
}

impl ErrorFields {
    pub fn of(e: &Error, resume: Option<String>) -> ErrorFields {
        let mut f = ErrorFields {
            exit_code: e.exit_code(),
            kind: ErrorKind::of(e),
            message: e.to_string(),
            file: None,
            line: None,
            column: None,
            hint: None,
            notes: Vec::new(),
            microstep: None,
            context: None,
            exit_status: None,
            resume,
        };
        let diagnostic = match e {
            Error::BadInput(d)
            | Error::Checkpoint(d)
            | Error::Locked(d)
            | Error::Breakpoint(d)
            | Error::Verify(d) => Some(d),
            _ => None,
        };
        let span = match e {
            Error::CommandFailed(c) => c.span.as_ref(),
            _ => diagnostic.and_then(|d| d.span.as_ref()),
        };
        if let Some(span) = span.filter(|s| !s.is_synthetic()) {
            f.file = Some(span.path().display().to_string());
            f.line = Some(span.line);
            f.column = Some(span.col);
        }
        if let Some(d) = diagnostic {
            f.hint = d.hint.clone();
            f.notes = d.notes.clone();
        }
        match e {
            Error::CommandFailed(c) => {
                f.message = format!(
                    "microstep {} failed: command in context `{}` exited with status {}",
                    c.slug, c.context, c.status
                );
                f.microstep = Some(c.slug.clone());
                f.context = Some(c.context.clone());
                f.exit_status = Some(c.status);
                f.notes = c.tail.clone();
            }
            Error::Interrupted { resume, .. } => {
                f.resume = Some(resume.clone());
            }
            _ => {}
        }
        f
    }
}

/// Whether this process writes JSON events, and whether its `start` event is out.
static ENABLED: AtomicBool = AtomicBool::new(false);
static STARTED: AtomicBool = AtomicBool::new(false);
static COMMAND: Mutex<CommandName> = Mutex::new(CommandName::Other);
/// One line at a time, whichever thread writes.
static LINE: Mutex<()> = Mutex::new(());

/// Called once by main when the command line asked for JSON.
pub fn enable(command: CommandName) {
    *COMMAND.lock().unwrap_or_else(|p| p.into_inner()) = command;
    ENABLED.store(true, Ordering::SeqCst);
}

pub fn enabled() -> bool {
    ENABLED.load(Ordering::SeqCst)
}

pub fn command() -> CommandName {
    *COMMAND.lock().unwrap_or_else(|p| p.into_inner())
}

/// Writes one event object, with its `time`, after the stream's `start` event.
pub fn write(mut object: serde_json::Map<String, serde_json::Value>) {
    let _guard = LINE.lock().unwrap_or_else(|p| p.into_inner());
    let mut out = std::io::stdout().lock();
    if !STARTED.swap(true, Ordering::SeqCst) && object.get("event").is_none_or(|e| e != "start") {
        let _ = writeln!(out, "{}", start_line());
    }
    object.insert("time".into(), serde_json::json!(crate::checkpoint::now()));
    let _ = writeln!(out, "{}", serde_json::Value::Object(object));
    let _ = out.flush();
}

fn start_line() -> serde_json::Value {
    serde_json::json!({
        "event": "start",
        "schema_version": SCHEMA_VERSION,
        "cairn_version": env!("CARGO_PKG_VERSION"),
        "command": command(),
        "time": crate::checkpoint::now(),
    })
}
