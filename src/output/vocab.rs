//! The vocabulary of the `--json` contract: the schema version and the enumerations that stand
//! where prose used to (commands, statuses, outcomes, error kinds). Both the events and the
//! writer use it; it uses neither.

use serde::Serialize;

use crate::diag::error::Error;

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
    NoSpace,
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
            Error::NoSpace(_) => ErrorKind::NoSpace,
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
            | Error::NoSpace(d)
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
