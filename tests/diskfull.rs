//! A full disk under the build dir (docs/safety.md): one clear error naming what cairn was
//! writing and where, a state database that stays consistent, and a next build that says what
//! happened and resumes once there is room again.

use crate::common::loopfs::Tmpfs;
use crate::common::{Test, is_root, require_backend};

/// The second microstep fills the file system, unless `../freed` exists beside the build dir.
const FILL: &str = r#"
    setup:
      - s:
          - a:
              - exec_local: echo a > a
          - fill:
              - exec_local: "[ -e ../freed ] || cat /dev/zero > filler"
          - c:
              - exec_local: echo c > c
"#;

fn runs(db: &std::path::Path) -> Vec<(i64, String)> {
    let db = rusqlite::Connection::open(db).unwrap();
    let mut stmt = db
        .prepare("SELECT id, status FROM runs ORDER BY id")
        .unwrap();
    stmt.query_map([], |r| Ok((r.get(0)?, r.get(1)?)))
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap()
}

#[test]
#[ignore = "needs root, to mount a small tmpfs; run with --include-ignored"]
fn a_full_disk_is_one_clear_error_and_the_next_build_resumes_once_there_is_room() {
    if !require_backend("tmpfs (root)", is_root()) {
        return;
    }
    let fs = match Tmpfs::new("diskfull", 1 << 20) {
        Ok(fs) => fs,
        Err(why) => {
            assert!(require_backend(&format!("tmpfs ({why})"), false));
            return;
        }
    };
    let t = Test::new().file("recipe.yaml", FILL);
    let b = fs.mnt().join("b");
    let b_arg = b.display().to_string();
    let db = b.join(".cairn/state.db");
    let build = || t.cairn(&["build", "recipe.yaml", "-b", &b_arg]);

    let run = build();
    run.code(4)
        .stderr_has(&format!(
            "error: no space left on device: cannot write the microstep record to the state database {}\n",
            db.display()
        ))
        .stderr_has(&format!(
            "note: the file system holding {} has 0 bytes free",
            b.join(".cairn").display()
        ))
        .stderr_has(
            "note: before that, microstep setup/s/fill failed: command in context `local` exited with status 1, its last line of output: [local] cat: write error: No space left on device",
        )
        .stderr_has("hint: free space there")
        .stderr_has("the next `cairn build` reports this run as interrupted and resumes it where it stopped")
        .stdout_has("To resume: cairn resume recipe.yaml");
    // One error, not one per layer.
    let errors = run.stderr.lines().filter(|l| l.starts_with("error:"));
    assert_eq!(errors.count(), 1, "{run}");
    assert_eq!(
        std::fs::read_to_string(b.join("a")).unwrap(),
        "a\n",
        "{run}"
    );

    // Still full: the next build says what the last one left, then stops at its first write
    // without running anything.
    let interrupted = "warning: run #1 (started ";
    let what = "was interrupted: 1 microstep(s) completed, the last setup/s/a; it was running setup/s/fill";
    let run = build();
    run.code(4)
        .stderr_has(interrupted)
        .stderr_has(what)
        .stderr_has(
            "error: no space left on device: cannot write the run record to the state database",
        );
    assert!(run.steps().is_empty(), "{run}");

    // Room again: the next build reports the interrupted run and resumes it where it stopped.
    std::fs::remove_file(b.join("filler")).unwrap();
    std::fs::write(fs.mnt().join("freed"), "").unwrap();
    let run = build();
    run.success()
        .stderr_has(interrupted)
        .stderr_has(what)
        .stdout_has("Resuming it")
        .stdout_has("Step 1 : setup/s/a\n --> Already done (recorded as completed)");
    assert_eq!(
        run.steps(),
        ["setup/s/a", "setup/s/fill", "setup/s/c"],
        "{run}"
    );
    assert_eq!(std::fs::read_to_string(b.join("c")).unwrap(), "c\n");
    // The full disk left no half-written record: run 1 interrupted, the resuming run succeeded.
    assert_eq!(
        runs(&db),
        [(1, "interrupted".to_string()), (2, "succeeded".to_string())]
    );
    let db = rusqlite::Connection::open(&db).unwrap();
    let check: String = db
        .query_row("PRAGMA integrity_check", [], |r| r.get(0))
        .unwrap();
    assert_eq!(check, "ok");
}

/// `/dev/full` answers every write with ENOSPC, as a full disk does.
#[test]
fn a_command_that_runs_out_of_space_is_told_to_free_space_and_resume() {
    let t = Test::new()
        .file(
            "recipe.yaml",
            r#"
            setup:
              - s:
                  - m:
                      - exec_local: echo data > /dev/full
            "#,
        )
        .args(&["build", "recipe.yaml"]);
    let run = t.run();
    run.code(1)
        .stderr_has("error: microstep setup/s/m failed: command in context `local` exited with status 1")
        .stderr_has("No space left on device")
        .stderr_has("hint: the disk is full: free space, then run the `To resume:` command above to run this microstep again")
        .stdout_has("To resume: cairn resume recipe.yaml");
}

#[test]
#[ignore = "needs root, to mount a small tmpfs; run with --include-ignored"]
fn a_checkpoint_store_that_fills_up_is_a_clear_driver_error_and_the_next_build_makes_it() {
    if !require_backend("tmpfs (root)", is_root()) {
        return;
    }
    let fs = match Tmpfs::new("diskfull", 256 << 10) {
        Ok(fs) => fs,
        Err(why) => {
            assert!(require_backend(&format!("tmpfs ({why})"), false));
            return;
        }
    };
    let t = Test::new().file(
        "recipe.yaml",
        r#"
        checkpoint: copy
        global:
          rootfs: "{{build_dir}}/rootfs"
        setup:
          - s:
              - big:
                  - exec_local: mkdir -p rootfs && head -c 1048576 /dev/urandom > rootfs/big
        "#,
    );
    let store = fs.mnt().join("store").display().to_string();
    let build = || {
        t.cairn(&[
            "build",
            "recipe.yaml",
            "-c",
            "-g",
            &format!("store={store}"),
        ])
    };
    let run = build();
    run.code(4)
        .stderr_has("error: checkpoint driver `copy` failed in `create`")
        .stderr_has("No space left on device")
        .stderr_has("hint: the disk is full: free space where the driver writes its checkpoints, then run the build again; a checkpoint whose creation failed is never used, and the next build makes it again");

    crate::common::loopfs::sh(
        "mount",
        &["-o", "remount,size=4m", &fs.mnt().display().to_string()],
    )
    .unwrap();
    let run = build();
    run.success();
    let listed = t.cairn(&[
        "checkpoints",
        "recipe.yaml",
        "-g",
        &format!("store={store}"),
    ]);
    listed.success().stdout_has("setup/s/big");
    // The half-made copy is gone; the one checkpoint holds the whole file.
    let made: Vec<_> = std::fs::read_dir(fs.mnt().join("store"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    assert_eq!(made.len(), 1, "{made:?}");
    assert_eq!(
        std::fs::metadata(made[0].join("big")).unwrap().len(),
        1 << 20
    );
}
