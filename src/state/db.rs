//! The build directory's state database, `<build_dir>/.cairn/state.db`.
//!
//! It holds what no checkpoint driver can know: which runs happened, what each
//! microstep did, which checkpoints were fully created, the rollback journal
//! and the checksums of state files. Every public write is one committed
//! transaction, so a cairn killed at any instant leaves the database
//! consistent and the next start can see exactly where it stopped.

use std::collections::HashSet;
use std::path::{Path, PathBuf};

use std::time::Duration;

use crate::output::time::now;

use rusqlite::{Connection, Row, Transaction, TransactionBehavior, params};

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

use super::records::*;

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

/// What a write statement records, for the error that says the disk is full.
fn written(sql: &str) -> &'static str {
    let table = [
        "INSERT OR REPLACE INTO ",
        "INSERT INTO ",
        "UPDATE ",
        "DELETE FROM ",
    ]
    .iter()
    .find_map(|verb| sql.trim_start().strip_prefix(verb))
    .and_then(|rest| {
        rest.split(|c: char| !c.is_ascii_alphanumeric() && c != '_')
            .next()
    });
    match table {
        Some("runs") => "the run record",
        Some("steps") => "the microstep record",
        Some("journal") => "the rollback journal",
        Some("state_files") => "the state files' checksums",
        Some(t) if t.starts_with("checkpoint") => "the checkpoint record",
        _ => "a record",
    }
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

    /// Checkpoints the state database knows were finished; empty when the build dir is new.
    pub fn finished_checkpoints(build_dir: &Path) -> Result<Vec<CheckpointRecord>> {
        let Some(db) = StateDb::open_for_reading(build_dir)? else {
            return Ok(Vec::new());
        };
        Ok(db.checkpoints()?.into_iter().filter(|r| r.ready).collect())
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
        self.create_schema()
            .map_err(|e| e.writing("the schema (a new build dir)"))
    }

    fn create_schema(&self) -> Result<()> {
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
        stmt.execute(params)
            .at(&self.path)
            .map_err(|e| e.writing(written(sql)))
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
        self.replace_state_files(checkpoint_id, slug, files)
            .map_err(|e| e.writing("the state files' checksums"))
    }

    fn replace_state_files(
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
mod tests;
