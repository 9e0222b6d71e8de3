//! What the state database stores, as Rust types: its errors, the statuses it keeps as text, and
//! one record type per table row.

use std::path::{Path, PathBuf};
use std::str::FromStr;

use rusqlite::types::{FromSql, FromSqlError, FromSqlResult, ToSqlOutput, ValueRef};
use rusqlite::{Row, ToSql};

/// The version of the schema this cairn writes and reads.
pub const SCHEMA_VERSION: i64 = 1;

#[derive(Debug, thiserror::Error)]
pub enum StateError {
    #[error("state database {}: {source}", path.display())]
    Sqlite {
        path: PathBuf,
        source: rusqlite::Error,
    },
    #[error("cannot create {}: {source}", path.display())]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error(
        "state database {} has schema version {found}, newer than the {SCHEMA_VERSION} this \
         cairn understands: use a newer cairn or a fresh build directory",
        path.display()
    )]
    NewerSchema { found: i64, path: PathBuf },
    #[error(
        "state database {}: SQLite would not switch to WAL (journal mode {found:?}); \
         is the build directory on a network file system?",
        path.display()
    )]
    NotWal { found: String, path: PathBuf },
    #[error(
        "refusing to use {}: {why}; cairn never reads or writes its state through a link or \
         a directory someone else controls (remove it if you did not make it)",
        path.display()
    )]
    Unsafe { path: PathBuf, why: String },
    #[error("unknown {kind} {value:?} in the state database")]
    UnknownStatus { kind: &'static str, value: String },
    #[error("{what} is not valid JSON: {source}")]
    BadJson {
        what: &'static str,
        source: serde_json::Error,
    },
    #[error("no run {0} in the state database")]
    NoSuchRun(i64),
    #[error("no microstep {seq} recorded for run {run}")]
    NoSuchStep { run: i64, seq: i64 },
    #[error("no checkpoint {0} in the state database")]
    NoSuchCheckpoint(String),
    #[error("no rollback journal entry {0}")]
    NoSuchJournalEntry(i64),
    /// The file system holding the database is full: SQLite rolled the write back, so the
    /// database holds what it held before it.
    #[error("no space left on device: cannot write {what} to the state database {}", path.display())]
    DiskFull { path: PathBuf, what: &'static str },
}

impl StateError {
    /// Names what was being written when the disk filled up.
    pub(super) fn writing(self, what: &'static str) -> StateError {
        match self {
            StateError::DiskFull { path, .. } => StateError::DiskFull { path, what },
            e => e,
        }
    }
}

pub type Result<T> = std::result::Result<T, StateError>;

impl From<StateError> for crate::Error {
    fn from(e: StateError) -> crate::Error {
        match e {
            StateError::DiskFull { path, what } => crate::Error::no_space(
                &format!("{what} to the state database {}", path.display()),
                &path,
            ),
            e => crate::Error::State(Box::new(e)),
        }
    }
}

/// Attaches the database path to SQLite errors, since a bare "database is
/// locked" does not say which build directory is at fault.
pub(super) trait AtPath<T> {
    fn at(self, path: &Path) -> Result<T>;
}

impl<T> AtPath<T> for rusqlite::Result<T> {
    fn at(self, path: &Path) -> Result<T> {
        self.map_err(|source| {
            if disk_full(&source, path) {
                return StateError::DiskFull {
                    path: path.to_path_buf(),
                    what: "a record",
                };
            }
            StateError::Sqlite {
                path: path.to_path_buf(),
                source,
            }
        })
    }
}

/// SQLite says SQLITE_FULL when a write finds no room; a failed write or sync can also come
/// back as a plain I/O error, which is a full disk when the file system has no space left.
fn disk_full(e: &rusqlite::Error, path: &Path) -> bool {
    match e.sqlite_error_code() {
        Some(rusqlite::ErrorCode::DiskFull) => true,
        Some(rusqlite::ErrorCode::SystemIoFailure) => path
            .parent()
            .and_then(crate::diag::error::free_bytes)
            .is_some_and(|free| free == 0),
        _ => false,
    }
}

/// Status enums are stored as their serde names so the database reads the
/// same as JSON output.
macro_rules! stored_enum {
    ($name:ident, $kind:literal { $($variant:ident => $text:literal),+ $(,)? }) => {
        #[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
        #[serde(rename_all = "snake_case")]
        pub enum $name { $($variant),+ }

        impl $name {
            pub const ALL: &[$name] = &[$($name::$variant),+];

            pub fn as_str(self) -> &'static str {
                match self { $($name::$variant => $text),+ }
            }
        }

        impl FromStr for $name {
            type Err = StateError;

            fn from_str(s: &str) -> Result<Self> {
                match s {
                    $($text => Ok($name::$variant),)+
                    other => {
                        let value = other.to_owned();
                        Err(StateError::UnknownStatus { kind: $kind, value })
                    }
                }
            }
        }

        impl std::fmt::Display for $name {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str(self.as_str())
            }
        }

        impl ToSql for $name {
            fn to_sql(&self) -> rusqlite::Result<ToSqlOutput<'_>> {
                Ok(self.as_str().into())
            }
        }

        impl FromSql for $name {
            fn column_result(value: ValueRef<'_>) -> FromSqlResult<Self> {
                value.as_str()?.parse().map_err(FromSqlError::other)
            }
        }
    };
}

stored_enum!(RunStatus, "run status" {
    Running => "running",
    Succeeded => "succeeded",
    Failed => "failed",
    Interrupted => "interrupted",
    RolledBack => "rolled_back",
});

stored_enum!(StepStatus, "step status" {
    Started => "started",
    Completed => "completed",
    Failed => "failed",
    Interrupted => "interrupted",
    Cached => "cached",
    Skipped => "skipped",
    RolledBack => "rolled_back",
});

/// Declares a record struct whose fields are read from the same-named columns.
macro_rules! record {
    ($name:ident { $($(#[$doc:meta])* $field:ident: $ty:ty),+ $(,)? }) => {
        #[derive(Debug, Clone, serde::Serialize)]
        pub struct $name { $($(#[$doc])* pub $field: $ty),+ }

        impl $name {
            pub(super) fn from_row(row: &Row<'_>) -> rusqlite::Result<Self> {
                Ok($name { $($field: row.get(stringify!($field))?),+ })
            }
        }
    };
}

record!(RunRecord {
    id: i64,
    recipe: String,
    started_at: f64,
    ended_at: Option<f64>,
    status: RunStatus,
    pid: u32,
    args: String,
});

record!(StepRecord {
    run_id: i64,
    seq: i64,
    slug: String,
    checkpoint_id: String,
    status: StepStatus,
    started_at: f64,
    ended_at: Option<f64>,
    exit_status: Option<i32>,
    detail: Option<String>,
});

record!(CheckpointRecord {
    id: String,
    slug: String,
    parent: Option<String>,
    driver: String,
    created_at: f64,
    duration: Option<f64>,
    /// JSON text.
    manifest: String,
    ready: bool,
});

record!(CheckpointCost {
    id: String,
    /// Bytes, as the driver reported or as measured in its store; None when unknown.
    size: Option<i64>,
    /// The re-run time the checkpoint saved when it was made: the microsteps since the
    /// checkpoint before it, in seconds.
    saves: Option<f64>,
    /// The latest apply's duration.
    apply_duration: Option<f64>,
    applied_at: Option<f64>,
});

record!(DecisionRecord {
    run_id: i64,
    seq: i64,
    checkpoint_id: String,
    slug: String,
    policy: String,
    /// The policy's word: made, measure, exists, not_worth, flag, window, not_first.
    decision: String,
    saves: Option<f64>,
    cost: Option<f64>,
    /// The sentence `plan --explain` shows.
    detail: String,
});

/// A microstep's latest completed run in this build dir.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct RecordedDuration {
    pub checkpoint_id: String,
    pub slug: String,
    pub seconds: f64,
}

record!(CheckpointOp {
    /// The run that was going on; None for an apply outside a build (rollback).
    run_id: Option<i64>,
    /// `create` or `apply`.
    op: String,
    checkpoint_id: String,
    slug: String,
    started_at: f64,
    duration: f64,
    /// Bytes, when the driver's store could be measured.
    size: Option<i64>,
});

record!(JournalEntry {
    seq: i64,
    run_id: i64,
    slug: String,
    checkpoint_id: String,
    /// JSON text.
    commands: String,
    rolled_back: bool,
    recorded_at: f64,
});
