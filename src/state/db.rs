//! The build directory's state database, `<build_dir>/.cairn/state.db`.
//!
//! It holds what no checkpoint driver can know: which runs happened, what each
//! microstep did, which checkpoints were fully created, the rollback journal
//! and the checksums of state files. Every public write is one committed
//! transaction, so a cairn killed at any instant leaves the database
//! consistent and the next start can see exactly where it stopped.

use std::collections::HashSet;
use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::time::Duration;

use crate::output::time::now;
use rusqlite::types::{FromSql, FromSqlError, FromSqlResult, ToSqlOutput, ValueRef};
use rusqlite::{Connection, Row, ToSql, Transaction, TransactionBehavior, params};

const SCHEMA_VERSION: i64 = 1;
const BUSY_TIMEOUT: Duration = Duration::from_secs(5);

// Column names equal the record fields: rows are read by name.
const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS runs (
    id INTEGER PRIMARY KEY AUTOINCREMENT, recipe TEXT NOT NULL, started_at REAL NOT NULL,
    ended_at REAL, status TEXT NOT NULL, pid INTEGER NOT NULL, args TEXT NOT NULL);
-- `id` is the insertion order, which decides which record of a checkpoint ID
-- is the latest: wall-clock time can go backwards between runs.
CREATE TABLE IF NOT EXISTS steps (
    id INTEGER PRIMARY KEY AUTOINCREMENT, run_id INTEGER NOT NULL REFERENCES runs(id),
    seq INTEGER NOT NULL, slug TEXT NOT NULL, checkpoint_id TEXT NOT NULL,
    status TEXT NOT NULL, started_at REAL NOT NULL, ended_at REAL, exit_status INTEGER,
    detail TEXT, UNIQUE (run_id, seq));
CREATE INDEX IF NOT EXISTS steps_by_checkpoint ON steps (checkpoint_id, id);
-- No foreign key on `parent`: a driver may prune a parent its children outlive.
CREATE TABLE IF NOT EXISTS checkpoints (
    id TEXT PRIMARY KEY, slug TEXT NOT NULL, parent TEXT, driver TEXT NOT NULL,
    created_at REAL NOT NULL, duration REAL, manifest TEXT NOT NULL,
    ready INTEGER NOT NULL DEFAULT 0);
CREATE TABLE IF NOT EXISTS journal (
    seq INTEGER PRIMARY KEY AUTOINCREMENT, run_id INTEGER NOT NULL REFERENCES runs(id),
    slug TEXT NOT NULL, checkpoint_id TEXT NOT NULL, commands TEXT NOT NULL,
    rolled_back INTEGER NOT NULL DEFAULT 0, recorded_at REAL NOT NULL);
CREATE INDEX IF NOT EXISTS journal_pending ON journal (rolled_back, seq);
CREATE TABLE IF NOT EXISTS state_files (
    id INTEGER PRIMARY KEY AUTOINCREMENT, checkpoint_id TEXT NOT NULL, slug TEXT NOT NULL,
    path TEXT NOT NULL, sha1 TEXT NOT NULL);
CREATE INDEX IF NOT EXISTS state_files_by_checkpoint ON state_files (checkpoint_id);
CREATE INDEX IF NOT EXISTS state_files_by_path ON state_files (path, id);
-- What a checkpoint costs and saves, beside `checkpoints.duration` (its create time): kept in
-- their own table so that older build dirs gain them without a migration.
CREATE TABLE IF NOT EXISTS checkpoint_costs (
    id TEXT PRIMARY KEY, size INTEGER, saves REAL, apply_duration REAL, applied_at REAL);
-- Why each microstep of a run got, or did not get, a checkpoint, for `plan --explain`.
CREATE TABLE IF NOT EXISTS checkpoint_decisions (
    run_id INTEGER NOT NULL REFERENCES runs(id), seq INTEGER NOT NULL,
    checkpoint_id TEXT NOT NULL, slug TEXT NOT NULL, policy TEXT NOT NULL,
    decision TEXT NOT NULL, saves REAL, cost REAL, detail TEXT NOT NULL,
    PRIMARY KEY (run_id, seq));
CREATE INDEX IF NOT EXISTS decisions_by_checkpoint ON checkpoint_decisions (checkpoint_id, run_id);
-- Every create and apply of a checkpoint, per run, for the report's timelines:
-- `checkpoints` keeps only the latest creation of an ID, `checkpoint_costs` the latest apply.
CREATE TABLE IF NOT EXISTS checkpoint_ops (
    id INTEGER PRIMARY KEY AUTOINCREMENT, run_id INTEGER, op TEXT NOT NULL,
    checkpoint_id TEXT NOT NULL, slug TEXT NOT NULL, started_at REAL NOT NULL,
    duration REAL NOT NULL, size INTEGER);
";

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
}

pub type Result<T> = std::result::Result<T, StateError>;

impl From<StateError> for crate::Error {
    fn from(e: StateError) -> crate::Error {
        crate::Error::State(Box::new(e))
    }
}

/// Attaches the database path to SQLite errors, since a bare "database is
/// locked" does not say which build directory is at fault.
trait AtPath<T> {
    fn at(self, path: &Path) -> Result<T>;
}

impl<T> AtPath<T> for rusqlite::Result<T> {
    fn at(self, path: &Path) -> Result<T> {
        self.map_err(|source| StateError::Sqlite {
            path: path.to_path_buf(),
            source,
        })
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
            fn from_row(row: &Row<'_>) -> rusqlite::Result<Self> {
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

/// Rejects malformed JSON when it is written: finding out while rolling back
/// or restoring would be far too late.
fn check_json(what: &'static str, text: &str) -> Result<()> {
    serde_json::from_str::<serde::de::IgnoredAny>(text)
        .map(|_| ())
        .map_err(|source| StateError::BadJson { what, source })
}

/// SQLite with `NOFOLLOW` refuses a path with a link anywhere in it, so it is given the
/// resolved directory: links the user chose (a build dir reached through one) are fine, a
/// link planted as the database file is not.
fn real_path(dir: &Path) -> Result<PathBuf> {
    std::fs::canonicalize(dir).map_err(|source| StateError::Io {
        path: dir.to_path_buf(),
        source,
    })
}

fn nofollow() -> rusqlite::OpenFlags {
    rusqlite::OpenFlags::default() | rusqlite::OpenFlags::SQLITE_OPEN_NOFOLLOW
}

fn uri_escape(path: &Path) -> String {
    use std::os::unix::ffi::OsStrExt;
    let mut out = String::new();
    for &b in path.as_os_str().as_bytes() {
        if b.is_ascii_alphanumeric() || b"/-_.~".contains(&b) {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// Turns "the UPDATE matched no row" into `missing`.
fn one_row(changed: usize, missing: impl FnOnce() -> StateError) -> Result<()> {
    if changed == 0 { Err(missing()) } else { Ok(()) }
}

pub struct StateDb {
    conn: Connection,
    path: PathBuf,
}

impl StateDb {
    pub fn open(build_dir: &Path) -> Result<StateDb> {
        let dir = crate::state::lock::private_dir(build_dir)?;
        let path = dir.join("state.db");
        for side in ["state.db-wal", "state.db-shm"] {
            crate::state::lock::check_private_file(&dir.join(side))?;
        }
        // Created here, 0600 and without following a link, rather than by SQLite; SQLite
        // gives its -wal and -shm files the database's mode.
        drop(crate::state::lock::open_private_file(&path)?);
        let conn =
            Connection::open_with_flags(real_path(&dir)?.join("state.db"), nofollow()).at(&path)?;
        let db = StateDb { conn, path };
        db.configure()?;
        db.migrate()?;
        Ok(db)
    }

    /// For commands that only read (`checkpoints`, `plan`): `None` when the build dir has no
    /// database yet, and a read-only build dir (or file system) still works.
    pub fn open_for_reading(build_dir: &Path) -> Result<Option<StateDb>> {
        let dir = build_dir.join(".cairn");
        let path = dir.join("state.db");
        if std::fs::symlink_metadata(&path).is_err() {
            return Ok(None);
        }
        if rustix::fs::access(&dir, rustix::fs::Access::WRITE_OK).is_ok() {
            return StateDb::open(build_dir).map(Some);
        }
        let meta = std::fs::symlink_metadata(&dir).map_err(|source| StateError::Io {
            path: dir.clone(),
            source,
        })?;
        if meta.file_type().is_symlink() {
            return Err(StateError::Unsafe {
                path: dir,
                why: "it is a symbolic link".into(),
            });
        }
        for side in ["state.db", "state.db-wal", "state.db-shm"] {
            crate::state::lock::check_private_file(&dir.join(side))?;
        }
        // Nobody can write here, so nothing can change under us: `immutable` lets SQLite
        // read a WAL database without creating its -shm file.
        let uri = format!(
            "file:{}?immutable=1",
            uri_escape(&real_path(&dir)?.join("state.db"))
        );
        let flags = rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY
            | rusqlite::OpenFlags::SQLITE_OPEN_URI
            | rusqlite::OpenFlags::SQLITE_OPEN_NOFOLLOW
            | rusqlite::OpenFlags::SQLITE_OPEN_NO_MUTEX;
        let conn = Connection::open_with_flags(uri, flags).at(&path)?;
        Ok(Some(StateDb { conn, path }))
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    fn configure(&self) -> Result<()> {
        let (c, p) = (&self.conn, &self.path);
        // First, so that the pragmas below wait for a concurrent opener.
        c.busy_timeout(BUSY_TIMEOUT).at(p)?;
        let mode: String = c
            .pragma_update_and_check(None, "journal_mode", "WAL", |r| r.get(0))
            .at(p)?;
        if !mode.eq_ignore_ascii_case("wal") {
            return Err(StateError::NotWal {
                found: mode,
                path: p.clone(),
            });
        }
        // WAL's default NORMAL may lose the last commits on power loss; an
        // installer must never forget that it already ran a step.
        c.pragma_update(None, "synchronous", "FULL").at(p)?;
        c.pragma_update(None, "foreign_keys", "ON").at(p)
    }

    fn migrate(&self) -> Result<()> {
        // A write transaction, so two cairns opening a fresh build dir do not
        // both decide to create the schema.
        let tx = self.write_tx()?;
        let found: i64 = tx
            .pragma_query_value(None, "user_version", |r| r.get(0))
            .at(&self.path)?;
        if found > SCHEMA_VERSION {
            return Err(StateError::NewerSchema {
                found,
                path: self.path.clone(),
            });
        }
        tx.execute_batch(SCHEMA).at(&self.path)?;
        if found < SCHEMA_VERSION {
            tx.pragma_update(None, "user_version", SCHEMA_VERSION)
                .at(&self.path)?;
        }
        tx.commit().at(&self.path)
    }

    /// Multi-statement writes take the write lock up front: under WAL a
    /// deferred transaction that later needs to write fails with SQLITE_BUSY
    /// at once instead of honouring the busy timeout.
    fn write_tx(&self) -> Result<Transaction<'_>> {
        Transaction::new_unchecked(&self.conn, TransactionBehavior::Immediate).at(&self.path)
    }

    fn execute(&self, sql: &str, params: impl rusqlite::Params) -> Result<usize> {
        let mut stmt = self.conn.prepare_cached(sql).at(&self.path)?;
        stmt.execute(params).at(&self.path)
    }

    fn query<T>(
        &self,
        sql: &str,
        params: impl rusqlite::Params,
        map: impl FnMut(&Row<'_>) -> rusqlite::Result<T>,
    ) -> Result<Vec<T>> {
        let mut stmt = self.conn.prepare_cached(sql).at(&self.path)?;
        let rows = stmt.query_map(params, map).at(&self.path)?;
        rows.collect::<rusqlite::Result<Vec<T>>>().at(&self.path)
    }

    // ---- runs ----

    /// Starts a run marked Running, with this process's pid.
    pub fn begin_run(&self, recipe: &str, args: &str) -> Result<i64> {
        self.execute(
            "INSERT INTO runs (recipe, started_at, status, pid, args) VALUES (?1, ?2, ?3, ?4, ?5)",
            params![
                recipe,
                now(),
                RunStatus::Running,
                std::process::id(),
                crate::diag::secrets::redact(args)
            ],
        )?;
        Ok(self.conn.last_insert_rowid())
    }

    pub fn end_run(&self, run: i64, status: RunStatus) -> Result<()> {
        let sql = "UPDATE runs SET status = ?2, ended_at = ?3 WHERE id = ?1";
        let n = self.execute(sql, params![run, status, now()])?;
        one_row(n, || StateError::NoSuchRun(run))
    }

    pub fn run(&self, run: i64) -> Result<Option<RunRecord>> {
        let sql = "SELECT * FROM runs WHERE id = ?1";
        Ok(self.query(sql, [run], RunRecord::from_row)?.pop())
    }

    /// The run with the highest id.
    pub fn last_run(&self) -> Result<Option<RunRecord>> {
        let sql = "SELECT * FROM runs ORDER BY id DESC LIMIT 1";
        Ok(self.query(sql, [], RunRecord::from_row)?.pop())
    }

    /// Runs still marked Running (a killed cairn never ended them), newest first.
    pub fn unfinished_runs(&self) -> Result<Vec<RunRecord>> {
        let sql = "SELECT * FROM runs WHERE status = ?1 ORDER BY id DESC";
        self.query(sql, [RunStatus::Running], RunRecord::from_row)
    }

    // ---- microstep records ----

    /// Recording the same `(run, seq)` again replaces the earlier record, so a
    /// step retried within one run becomes the latest record of its ID.
    pub fn step_started(&self, run: i64, seq: i64, slug: &str, checkpoint_id: &str) -> Result<()> {
        self.execute(
            "INSERT OR REPLACE INTO steps (run_id, seq, slug, checkpoint_id, status, started_at)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
            params![run, seq, slug, checkpoint_id, StepStatus::Started, now()],
        )
        .map(drop)
    }

    pub fn step_finished(
        &self,
        run: i64,
        seq: i64,
        status: StepStatus,
        exit_status: Option<i32>,
        detail: Option<&str>,
    ) -> Result<()> {
        let sql = "UPDATE steps SET status = ?3, ended_at = ?4, exit_status = ?5, detail = ?6
                   WHERE run_id = ?1 AND seq = ?2";
        let detail = detail.map(crate::diag::secrets::redact);
        let n = self.execute(sql, params![run, seq, status, now(), exit_status, detail])?;
        one_row(n, || StateError::NoSuchStep { run, seq })
    }

    /// Ordered by seq.
    pub fn steps_of_run(&self, run: i64) -> Result<Vec<StepRecord>> {
        let sql = "SELECT * FROM steps WHERE run_id = ?1 ORDER BY seq";
        self.query(sql, [run], StepRecord::from_row)
    }

    /// For installer-mode resume: the checkpoint IDs whose latest record,
    /// across all runs of this build dir, is Completed.
    ///
    /// Cached and Skipped records do not count: they say a run relied on the
    /// step's effect, not that it changed it, and counting them would make a
    /// resumed run forget every step it skipped. A later Started, Failed,
    /// Interrupted or RolledBack record means the effect may be partial or
    /// gone, so the step must run again.
    pub fn completed_ids(&self) -> Result<HashSet<String>> {
        // SQLite takes bare columns from the row that supplied MAX(id).
        let latest = self.query(
            "SELECT checkpoint_id, status, MAX(id) FROM steps
             WHERE status NOT IN (?1, ?2) GROUP BY checkpoint_id",
            params![StepStatus::Cached, StepStatus::Skipped],
            |r| Ok((r.get::<_, String>(0)?, r.get::<_, StepStatus>(1)?)),
        )?;
        Ok(latest
            .into_iter()
            .filter(|(_, status)| *status == StepStatus::Completed)
            .map(|(id, _)| id)
            .collect())
    }

    /// Marks the latest record of `checkpoint_id` RolledBack; a no-op when the
    /// ID was never recorded.
    pub fn mark_rolled_back(&self, checkpoint_id: &str) -> Result<()> {
        self.execute(
            "UPDATE steps SET status = ?2, ended_at = COALESCE(ended_at, ?3)
             WHERE id = (SELECT MAX(id) FROM steps WHERE checkpoint_id = ?1)",
            params![checkpoint_id, StepStatus::RolledBack, now()],
        )
        .map(drop)
    }

    // ---- checkpoint index ----

    /// Upserts `rec` with `ready = false`, whatever `rec.ready` says; called
    /// before the driver's create runs.
    pub fn checkpoint_creating(&self, rec: &CheckpointRecord) -> Result<()> {
        check_json("checkpoint manifest", &rec.manifest)?;
        let sql = "INSERT INTO checkpoints
                 (id, slug, parent, driver, created_at, duration, manifest, ready)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, 0)
             ON CONFLICT (id) DO UPDATE SET slug = excluded.slug, parent = excluded.parent,
                 driver = excluded.driver, created_at = excluded.created_at,
                 duration = excluded.duration, manifest = excluded.manifest, ready = 0";
        let values = params![
            rec.id,
            rec.slug,
            rec.parent,
            rec.driver,
            rec.created_at,
            rec.duration,
            crate::diag::secrets::redact(&rec.manifest)
        ];
        self.execute(sql, values).map(drop)
    }

    pub fn checkpoint_ready(&self, id: &str, duration: f64) -> Result<()> {
        let sql = "UPDATE checkpoints SET ready = 1, duration = ?2 WHERE id = ?1";
        let n = self.execute(sql, params![id, duration])?;
        one_row(n, || StateError::NoSuchCheckpoint(id.to_owned()))
    }

    /// Ordered by created_at.
    pub fn checkpoints(&self) -> Result<Vec<CheckpointRecord>> {
        let sql = "SELECT * FROM checkpoints ORDER BY created_at, rowid";
        self.query(sql, [], CheckpointRecord::from_row)
    }

    pub fn checkpoint(&self, id: &str) -> Result<Option<CheckpointRecord>> {
        let sql = "SELECT * FROM checkpoints WHERE id = ?1";
        Ok(self.query(sql, [id], CheckpointRecord::from_row)?.pop())
    }

    /// Checkpoints whose creation never finished (cairn died mid-create): the
    /// engine deletes them through the driver at the next start.
    pub fn unfinished_checkpoints(&self) -> Result<Vec<CheckpointRecord>> {
        let sql = "SELECT * FROM checkpoints WHERE ready = 0 ORDER BY created_at, rowid";
        self.query(sql, [], CheckpointRecord::from_row)
    }

    /// A no-op for an unknown ID, so cleanup can be repeated after a crash.
    pub fn forget_checkpoint(&self, id: &str) -> Result<()> {
        self.execute("DELETE FROM checkpoint_costs WHERE id = ?1", [id])?;
        self.execute("DELETE FROM checkpoints WHERE id = ?1", [id])
            .map(drop)
    }

    pub fn forget_all_checkpoints(&self) -> Result<()> {
        self.execute("DELETE FROM checkpoint_costs", [])?;
        self.execute("DELETE FROM checkpoints", []).map(drop)
    }

    // ---- checkpoint costs and the policy's decisions ----

    /// Records, once a checkpoint is made, its size and the re-run time it saves; replaces what
    /// an earlier checkpoint of the same ID recorded, except its apply time.
    pub fn checkpoint_made(&self, id: &str, size: Option<i64>, saves: Option<f64>) -> Result<()> {
        self.execute(
            "INSERT INTO checkpoint_costs (id, size, saves) VALUES (?1, ?2, ?3)
             ON CONFLICT (id) DO UPDATE SET size = excluded.size, saves = excluded.saves",
            params![id, size, saves],
        )
        .map(drop)
    }

    pub fn checkpoint_applied(&self, id: &str, duration: f64) -> Result<()> {
        self.execute(
            "INSERT INTO checkpoint_costs (id, apply_duration, applied_at) VALUES (?1, ?2, ?3)
             ON CONFLICT (id) DO UPDATE SET apply_duration = excluded.apply_duration,
                 applied_at = excluded.applied_at",
            params![id, duration, now()],
        )
        .map(drop)
    }

    pub fn checkpoint_costs(&self) -> Result<Vec<CheckpointCost>> {
        self.query(
            "SELECT * FROM checkpoint_costs ORDER BY id",
            [],
            CheckpointCost::from_row,
        )
    }

    /// The latest finished creation's duration with `driver`: what `auto` takes a checkpoint
    /// to cost before this run measured one.
    pub fn latest_create_cost(&self, driver: &str) -> Result<Option<f64>> {
        let sql = "SELECT duration FROM checkpoints
                   WHERE ready = 1 AND driver = ?1 AND duration IS NOT NULL
                   ORDER BY created_at DESC, rowid DESC LIMIT 1";
        Ok(self.query(sql, [driver], |r| r.get(0))?.pop())
    }

    /// The latest apply's duration with `driver`.
    pub fn latest_apply_cost(&self, driver: &str) -> Result<Option<f64>> {
        let sql = "SELECT c.apply_duration FROM checkpoint_costs c
                   JOIN checkpoints k ON k.id = c.id
                   WHERE k.driver = ?1 AND c.apply_duration IS NOT NULL
                   ORDER BY c.applied_at DESC LIMIT 1";
        Ok(self.query(sql, [driver], |r| r.get(0))?.pop())
    }

    /// For each checkpoint ID, how long its microstep took the last time it completed.
    pub fn recorded_durations(&self) -> Result<Vec<RecordedDuration>> {
        // SQLite takes bare columns from the row that supplied MAX(id).
        self.query(
            "SELECT checkpoint_id, slug, ended_at - started_at, MAX(id) FROM steps
             WHERE status = ?1 AND ended_at IS NOT NULL GROUP BY checkpoint_id",
            [StepStatus::Completed],
            |r| {
                Ok(RecordedDuration {
                    checkpoint_id: r.get(0)?,
                    slug: r.get(1)?,
                    seconds: r.get::<_, f64>(2)?.max(0.0),
                })
            },
        )
    }

    pub fn record_decision(&self, rec: &DecisionRecord) -> Result<()> {
        self.execute(
            "INSERT OR REPLACE INTO checkpoint_decisions
                 (run_id, seq, checkpoint_id, slug, policy, decision, saves, cost, detail)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)",
            params![
                rec.run_id,
                rec.seq,
                rec.checkpoint_id,
                rec.slug,
                rec.policy,
                rec.decision,
                rec.saves,
                rec.cost,
                rec.detail
            ],
        )
        .map(drop)
    }

    /// The latest decision recorded for each checkpoint ID.
    pub fn latest_decisions(&self) -> Result<Vec<DecisionRecord>> {
        self.query(
            "SELECT d.* FROM checkpoint_decisions d
             WHERE d.run_id = (SELECT MAX(run_id) FROM checkpoint_decisions e
                               WHERE e.checkpoint_id = d.checkpoint_id)
             ORDER BY d.run_id, d.seq",
            [],
            DecisionRecord::from_row,
        )
    }

    /// Records a create or apply that finished, against the run in progress if there is one.
    pub fn record_checkpoint_op(
        &self,
        op: &str,
        checkpoint_id: &str,
        slug: &str,
        started_at: f64,
        duration: f64,
        size: Option<i64>,
    ) -> Result<()> {
        self.execute(
            "INSERT INTO checkpoint_ops
                 (run_id, op, checkpoint_id, slug, started_at, duration, size)
             VALUES ((SELECT MAX(id) FROM runs WHERE status = ?1), ?2, ?3, ?4, ?5, ?6, ?7)",
            params![
                RunStatus::Running,
                op,
                checkpoint_id,
                slug,
                started_at,
                duration,
                size
            ],
        )
        .map(drop)
    }

    /// Ordered by when they happened.
    pub fn checkpoint_ops(&self) -> Result<Vec<CheckpointOp>> {
        let sql = "SELECT * FROM checkpoint_ops ORDER BY id";
        self.query(sql, [], CheckpointOp::from_row)
    }

    // ---- history, for reports and estimates ----

    /// Every run, oldest first.
    pub fn runs(&self) -> Result<Vec<RunRecord>> {
        self.query("SELECT * FROM runs ORDER BY id", [], RunRecord::from_row)
    }

    /// Every microstep record of every run, ordered by run then seq.
    pub fn all_steps(&self) -> Result<Vec<StepRecord>> {
        let sql = "SELECT * FROM steps ORDER BY run_id, seq";
        self.query(sql, [], StepRecord::from_row)
    }

    /// Seconds the last create of a checkpoint after each slug took.
    pub fn last_create_durations(&self) -> Result<std::collections::HashMap<String, f64>> {
        let rows = self.query(
            "SELECT slug, duration, MAX(id) FROM checkpoint_ops WHERE op = 'create' GROUP BY slug",
            [],
            |r| Ok((r.get::<_, String>(0)?, r.get::<_, f64>(1)?)),
        )?;
        Ok(rows.into_iter().collect())
    }

    // ---- rollback journal ----

    /// Written BEFORE the microstep runs; returns the entry's seq.
    pub fn journal_append(
        &self,
        run: i64,
        slug: &str,
        checkpoint_id: &str,
        commands_json: &str,
    ) -> Result<i64> {
        check_json("rollback commands", commands_json)?;
        self.execute(
            "INSERT INTO journal (run_id, slug, checkpoint_id, commands, recorded_at)
             VALUES (?1, ?2, ?3, ?4, ?5)",
            params![
                run,
                slug,
                checkpoint_id,
                crate::diag::secrets::seal(commands_json),
                now()
            ],
        )?;
        Ok(self.conn.last_insert_rowid())
    }

    /// Entries not yet rolled back, newest first.
    pub fn journal_pending(&self) -> Result<Vec<JournalEntry>> {
        let sql = "SELECT * FROM journal WHERE rolled_back = 0 ORDER BY seq DESC";
        let mut entries = self.query(sql, [], JournalEntry::from_row)?;
        for e in &mut entries {
            e.commands = crate::diag::secrets::unseal(&e.commands);
        }
        Ok(entries)
    }

    pub fn journal_mark_rolled_back(&self, seq: i64) -> Result<()> {
        let n = self.execute("UPDATE journal SET rolled_back = 1 WHERE seq = ?1", [seq])?;
        one_row(n, || StateError::NoSuchJournalEntry(seq))
    }

    // ---- state files ----

    /// Replaces every row previously recorded for `checkpoint_id`; `files` are
    /// `(path, sha1 hex or "missing")`.
    pub fn record_state_files(
        &self,
        checkpoint_id: &str,
        slug: &str,
        files: &[(String, String)],
    ) -> Result<()> {
        let p = &self.path;
        let tx = self.write_tx()?;
        tx.execute(
            "DELETE FROM state_files WHERE checkpoint_id = ?1",
            [checkpoint_id],
        )
        .at(p)?;
        {
            let sql =
                "INSERT INTO state_files (checkpoint_id, slug, path, sha1) VALUES (?1, ?2, ?3, ?4)";
            let mut insert = tx.prepare_cached(sql).at(p)?;
            for (path, sha1) in files {
                insert
                    .execute(params![checkpoint_id, slug, path, sha1])
                    .at(p)?;
            }
        }
        tx.commit().at(p)
    }

    /// `(slug, path, sha1)`: the latest record per path, ordered by path.
    pub fn state_files(&self) -> Result<Vec<(String, String, String)>> {
        // SQLite takes bare columns from the row that supplied MAX(id).
        self.query(
            "SELECT slug, path, sha1, MAX(id) FROM state_files GROUP BY path ORDER BY path",
            [],
            |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
        )
    }

    /// The text of `PRAGMA integrity_check`: `"ok"` for a healthy database,
    /// otherwise one problem per line.
    pub fn integrity_check(&self) -> Result<String> {
        let lines: Vec<String> = self.query("PRAGMA integrity_check", [], |r| r.get(0))?;
        Ok(lines.join("\n"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tempfile::TempDir;

    const A: &str = "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa";
    const B: &str = "bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb";
    const C: &str = "cccccccccccccccccccccccccccccccccccccccc";

    fn fresh() -> (TempDir, StateDb) {
        let dir = tempfile::tempdir().unwrap();
        let db = StateDb::open(dir.path()).unwrap();
        (dir, db)
    }

    fn checkpoint(id: &str, created_at: f64) -> CheckpointRecord {
        CheckpointRecord {
            id: id.to_owned(),
            slug: format!("slug-{}", &id[..1]),
            parent: None,
            driver: "dir".to_owned(),
            created_at,
            duration: None,
            manifest: r#"{"files":3}"#.to_owned(),
            ready: true,
        }
    }

    #[test]
    fn creates_db_under_dot_cairn_with_wal_and_version() {
        let (dir, db) = fresh();
        assert_eq!(db.path(), dir.path().join(".cairn/state.db"));
        assert!(db.path().is_file());
        let raw = Connection::open(db.path()).unwrap();
        let mode: String = raw
            .pragma_query_value(None, "journal_mode", |r| r.get(0))
            .unwrap();
        assert_eq!(mode, "wal");
        let version: i64 = raw
            .pragma_query_value(None, "user_version", |r| r.get(0))
            .unwrap();
        assert_eq!(version, SCHEMA_VERSION);
        assert_eq!(db.integrity_check().unwrap(), "ok");
    }

    #[test]
    fn status_text_matches_serde_and_round_trips() {
        for s in RunStatus::ALL {
            assert_eq!(serde_json::to_value(s).unwrap(), s.as_str());
            assert_eq!(s.as_str().parse::<RunStatus>().unwrap(), *s);
        }
        for s in StepStatus::ALL {
            assert_eq!(serde_json::to_value(s).unwrap(), s.as_str());
            assert_eq!(s.as_str().parse::<StepStatus>().unwrap(), *s);
        }
        assert!(matches!(
            "bogus".parse::<StepStatus>(),
            Err(StateError::UnknownStatus { .. })
        ));
    }

    #[test]
    fn run_lifecycle() {
        let (_dir, db) = fresh();
        assert!(db.last_run().unwrap().is_none());
        let run = db.begin_run("debian.yaml", r#"["build"]"#).unwrap();
        let rec = db.run(run).unwrap().unwrap();
        assert_eq!(rec.status, RunStatus::Running);
        assert_eq!(rec.pid, std::process::id());
        assert_eq!(rec.recipe, "debian.yaml");
        assert!(rec.ended_at.is_none() && rec.started_at > 0.0);

        db.step_started(run, 0, "bootstrap", A).unwrap();
        db.step_started(run, 1, "install", B).unwrap();
        db.step_finished(run, 1, StepStatus::Failed, Some(2), Some("apt failed"))
            .unwrap();
        db.step_finished(run, 0, StepStatus::Completed, Some(0), None)
            .unwrap();
        let steps = db.steps_of_run(run).unwrap();
        assert_eq!(steps.len(), 2);
        assert_eq!((steps[0].seq, steps[0].status), (0, StepStatus::Completed));
        assert_eq!(steps[1].status, StepStatus::Failed);
        assert_eq!(steps[1].exit_status, Some(2));
        assert_eq!(steps[1].detail.as_deref(), Some("apt failed"));
        assert!(steps[1].ended_at.is_some());

        db.end_run(run, RunStatus::Failed).unwrap();
        let rec = db.last_run().unwrap().unwrap();
        assert_eq!((rec.id, rec.status), (run, RunStatus::Failed));
        assert!(rec.ended_at.is_some());
        assert!(db.unfinished_runs().unwrap().is_empty());

        assert!(matches!(
            db.end_run(run + 10, RunStatus::Succeeded),
            Err(StateError::NoSuchRun(_))
        ));
        assert!(matches!(
            db.step_finished(run, 9, StepStatus::Completed, None, None),
            Err(StateError::NoSuchStep { seq: 9, .. })
        ));
        assert!(matches!(
            db.step_started(run + 10, 0, "x", A),
            Err(StateError::Sqlite { .. })
        ));
    }

    #[test]
    fn killed_run_is_unfinished_after_reopen() {
        let dir = tempfile::tempdir().unwrap();
        let (first, second) = {
            let db = StateDb::open(dir.path()).unwrap();
            let first = db.begin_run("r.yaml", "").unwrap();
            let second = db.begin_run("r.yaml", "").unwrap();
            db.step_started(second, 0, "bootstrap", A).unwrap();
            (first, second)
        };
        let db = StateDb::open(dir.path()).unwrap();
        let ids: Vec<i64> = db.unfinished_runs().unwrap().iter().map(|r| r.id).collect();
        assert_eq!(ids, vec![second, first]);
        assert_eq!(
            db.steps_of_run(second).unwrap()[0].status,
            StepStatus::Started
        );
        db.end_run(second, RunStatus::Interrupted).unwrap();
        let ids: Vec<i64> = db.unfinished_runs().unwrap().iter().map(|r| r.id).collect();
        assert_eq!(ids, vec![first]);
    }

    #[test]
    fn completed_ids_latest_record_decides() {
        let (_dir, db) = fresh();
        let r1 = db.begin_run("r.yaml", "").unwrap();
        for (seq, id) in [A, B, C].into_iter().enumerate() {
            db.step_started(r1, seq as i64, "s", id).unwrap();
            db.step_finished(r1, seq as i64, StepStatus::Completed, Some(0), None)
                .unwrap();
        }
        let all: HashSet<String> = [A, B, C].into_iter().map(String::from).collect();
        assert_eq!(db.completed_ids().unwrap(), all);

        db.mark_rolled_back(B).unwrap();
        // A resumed run that skipped A keeps it completed.
        let r2 = db.begin_run("r.yaml", "").unwrap();
        db.step_started(r2, 0, "s", A).unwrap();
        db.step_finished(r2, 0, StepStatus::Skipped, None, None)
            .unwrap();
        // C re-run and killed midway: its effect may be partial.
        db.step_started(r2, 2, "s", C).unwrap();
        let ids = db.completed_ids().unwrap();
        assert_eq!(ids, [A.to_owned()].into_iter().collect());
        assert_eq!(
            db.steps_of_run(r1).unwrap()[1].status,
            StepStatus::RolledBack
        );

        // Completing B again after its rollback restores it.
        db.step_started(r2, 1, "s", B).unwrap();
        db.step_finished(r2, 1, StepStatus::Completed, Some(0), None)
            .unwrap();
        assert!(db.completed_ids().unwrap().contains(B));
        db.mark_rolled_back("0000000000000000000000000000000000000000")
            .unwrap();
    }

    #[test]
    fn checkpoint_creating_then_ready() {
        let (_dir, db) = fresh();
        db.checkpoint_creating(&checkpoint(B, 20.0)).unwrap();
        db.checkpoint_creating(&checkpoint(A, 10.0)).unwrap();
        let unfinished: Vec<String> = db
            .unfinished_checkpoints()
            .unwrap()
            .into_iter()
            .map(|c| c.id)
            .collect();
        assert_eq!(unfinished, vec![A, B]);
        assert!(!db.checkpoint(A).unwrap().unwrap().ready);

        db.checkpoint_ready(A, 1.5).unwrap();
        let a = db.checkpoint(A).unwrap().unwrap();
        assert!(a.ready);
        assert_eq!(a.duration, Some(1.5));
        assert_eq!(a.manifest, r#"{"files":3}"#);
        let unfinished = db.unfinished_checkpoints().unwrap();
        assert_eq!(unfinished.len(), 1);
        assert_eq!(unfinished[0].id, B);
        let order: Vec<String> = db
            .checkpoints()
            .unwrap()
            .into_iter()
            .map(|c| c.id)
            .collect();
        assert_eq!(order, vec![A, B]);

        // Re-creating a ready checkpoint makes it unfinished again.
        db.checkpoint_creating(&checkpoint(A, 30.0)).unwrap();
        assert_eq!(db.unfinished_checkpoints().unwrap().len(), 2);

        db.forget_checkpoint(B).unwrap();
        db.forget_checkpoint(B).unwrap();
        assert!(db.checkpoint(B).unwrap().is_none());
        assert!(matches!(
            db.checkpoint_ready(B, 1.0),
            Err(StateError::NoSuchCheckpoint(_))
        ));
        db.forget_all_checkpoints().unwrap();
        assert!(db.checkpoints().unwrap().is_empty());

        let mut bad = checkpoint(C, 1.0);
        bad.manifest = "not json".to_owned();
        assert!(matches!(
            db.checkpoint_creating(&bad),
            Err(StateError::BadJson { .. })
        ));
    }

    #[test]
    fn journal_newest_first_and_marking() {
        let (_dir, db) = fresh();
        let run = db.begin_run("r.yaml", "").unwrap();
        let s1 = db.journal_append(run, "one", A, r#"["rm -f /a"]"#).unwrap();
        let s2 = db.journal_append(run, "two", B, r#"["rm -f /b"]"#).unwrap();
        let s3 = db.journal_append(run, "three", C, "[]").unwrap();
        let seqs: Vec<i64> = db
            .journal_pending()
            .unwrap()
            .iter()
            .map(|e| e.seq)
            .collect();
        assert_eq!(seqs, vec![s3, s2, s1]);

        db.journal_mark_rolled_back(s3).unwrap();
        let pending = db.journal_pending().unwrap();
        assert_eq!(pending.len(), 2);
        assert_eq!(
            (
                pending[0].seq,
                pending[0].slug.as_str(),
                pending[0].checkpoint_id.as_str()
            ),
            (s2, "two", B)
        );
        assert_eq!(pending[0].commands, r#"["rm -f /b"]"#);
        assert!(!pending[0].rolled_back && pending[0].run_id == run);

        assert!(matches!(
            db.journal_mark_rolled_back(s3 + 100),
            Err(StateError::NoSuchJournalEntry(_))
        ));
        assert!(matches!(
            db.journal_append(run, "bad", A, "{"),
            Err(StateError::BadJson { .. })
        ));
    }

    #[test]
    fn state_files_latest_per_path() {
        let (_dir, db) = fresh();
        let files = |v: &[(&str, &str)]| -> Vec<(String, String)> {
            v.iter()
                .map(|(p, s)| (p.to_string(), s.to_string()))
                .collect()
        };
        db.record_state_files(A, "one", &files(&[("/etc/a", "11"), ("/etc/b", "22")]))
            .unwrap();
        db.record_state_files(B, "two", &files(&[("/etc/b", "33"), ("/etc/c", "missing")]))
            .unwrap();
        let row =
            |slug: &str, path: &str, sha: &str| (slug.to_owned(), path.to_owned(), sha.to_owned());
        assert_eq!(
            db.state_files().unwrap(),
            vec![
                row("one", "/etc/a", "11"),
                row("two", "/etc/b", "33"),
                row("two", "/etc/c", "missing")
            ]
        );
        // Re-recording A replaces its old rows and is now the latest for /etc/b.
        db.record_state_files(A, "one", &files(&[("/etc/b", "44")]))
            .unwrap();
        assert_eq!(
            db.state_files().unwrap(),
            vec![row("one", "/etc/b", "44"), row("two", "/etc/c", "missing")]
        );
    }

    #[test]
    fn checkpoint_costs_and_cost_estimates() {
        let (_dir, db) = fresh();
        assert_eq!(db.latest_create_cost("dir").unwrap(), None);
        db.checkpoint_creating(&checkpoint(A, 10.0)).unwrap();
        // An unfinished creation's time is not a cost.
        assert_eq!(db.latest_create_cost("dir").unwrap(), None);
        db.checkpoint_ready(A, 0.5).unwrap();
        db.checkpoint_creating(&checkpoint(B, 20.0)).unwrap();
        db.checkpoint_ready(B, 1.5).unwrap();
        assert_eq!(db.latest_create_cost("dir").unwrap(), Some(1.5));
        assert_eq!(db.latest_create_cost("copy").unwrap(), None);

        db.checkpoint_made(A, Some(4096), Some(3.25)).unwrap();
        assert_eq!(db.latest_apply_cost("dir").unwrap(), None);
        db.checkpoint_applied(A, 0.75).unwrap();
        db.checkpoint_applied(B, 0.25).unwrap();
        assert_eq!(db.latest_apply_cost("dir").unwrap(), Some(0.25));
        // Re-making A keeps its apply time, replaces size and saving.
        db.checkpoint_made(A, None, Some(1.0)).unwrap();
        let costs = db.checkpoint_costs().unwrap();
        assert_eq!(costs.len(), 2);
        assert_eq!(
            (costs[0].id.as_str(), costs[0].size, costs[0].saves),
            (A, None, Some(1.0))
        );
        assert_eq!(costs[0].apply_duration, Some(0.75));
        assert_eq!(costs[1].saves, None);

        db.forget_checkpoint(A).unwrap();
        assert_eq!(db.checkpoint_costs().unwrap().len(), 1);
        db.forget_all_checkpoints().unwrap();
        assert!(db.checkpoint_costs().unwrap().is_empty());
    }

    #[test]
    fn recorded_durations_and_decisions_latest_wins() {
        let (_dir, db) = fresh();
        let r1 = db.begin_run("r.yaml", "").unwrap();
        db.step_started(r1, 0, "s/a", A).unwrap();
        db.step_finished(r1, 0, StepStatus::Completed, Some(0), None)
            .unwrap();
        db.step_started(r1, 1, "s/b", B).unwrap();
        db.step_finished(r1, 1, StepStatus::Failed, Some(1), None)
            .unwrap();
        let d = db.recorded_durations().unwrap();
        assert_eq!(d.len(), 1);
        assert_eq!(
            (d[0].checkpoint_id.as_str(), d[0].slug.as_str()),
            (A, "s/a")
        );
        assert!(d[0].seconds >= 0.0);

        let decision = |run, seq, id: &str, what: &str| DecisionRecord {
            run_id: run,
            seq,
            checkpoint_id: id.to_owned(),
            slug: format!("s/{seq}"),
            policy: "auto".into(),
            decision: what.into(),
            saves: Some(0.5),
            cost: None,
            detail: format!("{what} in {run}"),
        };
        db.record_decision(&decision(r1, 0, A, "made")).unwrap();
        db.record_decision(&decision(r1, 1, B, "not_worth"))
            .unwrap();
        let r2 = db.begin_run("r.yaml", "").unwrap();
        db.record_decision(&decision(r2, 1, B, "made")).unwrap();
        let latest = db.latest_decisions().unwrap();
        let got: Vec<(&str, &str)> = latest
            .iter()
            .map(|d| (d.checkpoint_id.as_str(), d.decision.as_str()))
            .collect();
        assert_eq!(got, vec![(A, "made"), (B, "made")]);
        assert_eq!(latest[1].detail, format!("made in {r2}"));
    }

    #[test]
    fn history_for_reports_and_estimates() {
        let (_dir, db) = fresh();
        db.record_checkpoint_op("apply", A, "one", 1.0, 0.5, None)
            .unwrap();
        let r1 = db.begin_run("r.yaml", "").unwrap();
        db.step_started(r1, 0, "one", A).unwrap();
        db.step_finished(r1, 0, StepStatus::Completed, Some(0), None)
            .unwrap();
        db.record_checkpoint_op("create", A, "one", 2.0, 1.5, Some(4096))
            .unwrap();
        db.end_run(r1, RunStatus::Succeeded).unwrap();
        let ops = db.checkpoint_ops().unwrap();
        assert_eq!(ops.len(), 2);
        assert_eq!(ops[0].run_id, None, "no run was going on");
        assert_eq!(ops[1].run_id, Some(r1));
        assert_eq!((ops[1].op.as_str(), ops[1].size), ("create", Some(4096)));
        assert_eq!(db.runs().unwrap().len(), 1);
        assert_eq!(db.all_steps().unwrap().len(), 1);
        assert_eq!(db.last_create_durations().unwrap()["one"], 1.5);
    }

    #[test]
    fn reopen_keeps_data() {
        let dir = tempfile::tempdir().unwrap();
        let run = {
            let db = StateDb::open(dir.path()).unwrap();
            let run = db.begin_run("r.yaml", "--x").unwrap();
            db.end_run(run, RunStatus::Succeeded).unwrap();
            db.checkpoint_creating(&checkpoint(A, 1.0)).unwrap();
            db.checkpoint_ready(A, 2.0).unwrap();
            db.journal_append(run, "one", A, "[]").unwrap();
            db.record_state_files(A, "one", &[("/f".into(), "missing".into())])
                .unwrap();
            run
        };
        let db = StateDb::open(dir.path()).unwrap();
        let rec = db.run(run).unwrap().unwrap();
        assert_eq!(
            (rec.status, rec.args.as_str()),
            (RunStatus::Succeeded, "--x")
        );
        assert!(db.checkpoint(A).unwrap().unwrap().ready);
        assert_eq!(db.journal_pending().unwrap().len(), 1);
        assert_eq!(db.state_files().unwrap().len(), 1);
        assert_eq!(db.begin_run("r.yaml", "").unwrap(), run + 1);
    }

    #[test]
    fn newer_schema_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(".cairn/state.db");
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        Connection::open(&path)
            .unwrap()
            .pragma_update(None, "user_version", 99)
            .unwrap();
        match StateDb::open(dir.path()) {
            Err(e @ StateError::NewerSchema { found: 99, .. }) => {
                assert!(e.to_string().contains("state.db"), "{e}");
            }
            other => panic!("expected NewerSchema, got {:?}", other.map(|_| ())),
        }
        let version: i64 = Connection::open(&path)
            .unwrap()
            .pragma_query_value(None, "user_version", |r| r.get(0))
            .unwrap();
        assert_eq!(version, 99);
    }

    #[test]
    fn two_handles_share_the_wal_db() {
        let dir = tempfile::tempdir().unwrap();
        let a = StateDb::open(dir.path()).unwrap();
        let b = StateDb::open(dir.path()).unwrap();
        let run = a.begin_run("r.yaml", "").unwrap();
        assert_eq!(b.run(run).unwrap().unwrap().status, RunStatus::Running);
        let seq = b.journal_append(run, "one", A, "[]").unwrap();
        b.record_state_files(A, "one", &[("/f".into(), "11".into())])
            .unwrap();
        assert_eq!(a.journal_pending().unwrap()[0].seq, seq);
        a.record_state_files(B, "two", &[("/f".into(), "22".into())])
            .unwrap();
        assert_eq!(b.state_files().unwrap()[0].2, "22");
        b.end_run(run, RunStatus::Succeeded).unwrap();
        assert!(a.unfinished_runs().unwrap().is_empty());
        assert_eq!(a.integrity_check().unwrap(), "ok");
    }
}
