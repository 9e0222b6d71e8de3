//! Unit tests of `state::db`.

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
