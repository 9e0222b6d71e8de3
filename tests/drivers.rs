//! Checkpoint drivers: every shipped driver passes `cairn driver check` where its backend
//! exists, a broken or malformed driver is caught with a clear error, and the hardlink driver
//! shares unchanged files between checkpoints without ever letting one checkpoint's content
//! leak into another.

use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::process::Command;

use crate::common::loopfs::LoopFs;
use crate::common::{Run, Test, have_program, repo_root, require_backend};

fn shipped(name: &str) -> String {
    repo_root()
        .join("drivers")
        .join(format!("{name}.yaml"))
        .display()
        .to_string()
}

/// The rows of a conformance report: (operation, result).
fn rows(run: &Run) -> Vec<(String, String)> {
    let mut lines = run
        .stdout
        .lines()
        .skip_while(|l| !l.starts_with("OPERATION"));
    lines.next();
    lines
        .take_while(|l| l.len() > 21 && !l.starts_with("driver `"))
        .map(|l| (l[..14].trim().to_string(), l[15..21].trim().to_string()))
        .collect()
}

const SCENARIO: [&str; 10] = [
    "enabled",
    "change (A)",
    "create A",
    "change (B)",
    "create B",
    "apply A",
    "apply B",
    "list",
    "delete A",
    "clear",
];

/// A driver with `export` and `import` (every shipped one that is a directory) has them checked
/// after `list`: export A whole, B offered A as its base, import B, then A, each applied and
/// compared.
const SHARING: [&str; 4] = ["export A", "export B", "import B", "import A"];

#[track_caller]
fn assert_passes(run: &Run) {
    run.success().stdout_has("passes");
    let rows = rows(run);
    let ops: Vec<&str> = rows.iter().map(|(op, _)| op.as_str()).collect();
    let mut scenario: Vec<&str> = SCENARIO.to_vec();
    let at = scenario.iter().position(|o| *o == "list").expect("list") + 1;
    scenario.splice(at..at, SHARING);
    assert_eq!(
        ops, scenario,
        "every operation of the scenario is checked, sharing included\n{run}"
    );
    assert!(
        rows.iter().all(|(_, result)| result == "pass"),
        "every row passes\n{run}"
    );
}

#[test]
fn the_copy_driver_passes_its_conformance_check() {
    let t = Test::new();
    assert_passes(&t.cairn(&["driver", "check", &shipped("copy")]));
}

#[test]
#[ignore = "needs rsync; run with --include-ignored"]
fn the_hardlink_driver_passes_its_conformance_check() {
    if !require_backend("rsync", have_program("rsync")) {
        return;
    }
    let t = Test::new();
    assert_passes(&t.cairn(&["driver", "check", &shipped("hardlink")]));
}

/// A loop-mounted XFS with reflinks. XFS wants 300 MiB at least; the image is sparse.
fn loop_xfs() -> Result<LoopFs, String> {
    LoopFs::new("xfs", &["mkfs.xfs", "-q", "-m", "reflink=1"], 320 << 20)
}

#[test]
#[ignore = "needs reflink (a loop-mounted XFS with reflink=1); run with --include-ignored"]
fn the_reflink_driver_passes_its_conformance_check_on_a_reflink_xfs() {
    let fs = loop_xfs();
    if let Err(why) = &fs {
        eprintln!("no reflink XFS: {why}");
    }
    if !require_backend("reflink (a loop-mounted XFS with reflink=1)", fs.is_ok()) {
        return;
    }
    let fs = fs.unwrap();
    let mnt = fs.mnt();
    let t = Test::new();
    let run = t.cairn(&[
        "driver",
        "check",
        &shipped("reflink"),
        "--target",
        &mnt.join("t").display().to_string(),
        "-g",
        &format!("store={}", mnt.join("store").display()),
    ]);
    assert_passes(&run);
}

/// Whether `dir`'s filesystem can share extents (then the next test has nothing to show).
fn reflinks_work_in(dir: &Path) -> bool {
    std::fs::write(dir.join("probe"), "probe").unwrap();
    let ok = Command::new("cp")
        .args(["--reflink=always", "probe", "probe.copy"])
        .current_dir(dir)
        .output()
        .is_ok_and(|o| o.status.success());
    let _ = std::fs::remove_file(dir.join("probe"));
    let _ = std::fs::remove_file(dir.join("probe.copy"));
    ok
}

#[test]
fn the_reflink_driver_is_not_enabled_without_reflink_support() {
    let t = Test::new();
    if reflinks_work_in(t.path()) {
        eprintln!("skipping: the temporary directory's filesystem has reflinks");
        return;
    }
    let target = t.path().join("target").display().to_string();
    let store = format!("store={}", t.path().join("store").display());
    let run = t.cairn(&[
        "driver",
        "check",
        &shipped("reflink"),
        "--target",
        &target,
        "-g",
        &store,
    ]);
    run.code(4)
        .stderr_has("`enabled`")
        .stderr_has("no reflink support");
    assert_eq!(
        rows(&run),
        vec![("enabled".to_string(), "FAIL".to_string())],
        "{run}"
    );

    // A build with it stops before running anything, with the same reason.
    let t = t.file(
        "recipe.yaml",
        r#"
        checkpoint: reflink
        global:
          rootfs: "{{build_dir}}/rootfs"
        setup:
          - s:
              - m:
                  - exec_local: mkdir -p "{{rootfs}}" && touch ran
        "#,
    );
    let run = t.cairn(&["build", "recipe.yaml", "-c"]);
    run.code(4).stderr_has("no reflink support");
    assert!(!t.exists("build/recipe/ran"), "nothing ran\n{run}");
}

#[test]
fn a_driver_whose_apply_does_nothing_fails_the_check_at_apply_a() {
    let t = Test::new().file(
        "broken.yaml",
        r#"
        variables:
          store: "{{build_dir}}/store"
        create:
          - exec_local: mkdir -p "{{store}}" && cp -a "{{target}}" "{{store}}/{{checkpoint_id}}"
        apply:
          - exec_local: "true"
        list:
          - exec_local: ls -1 "{{store}}"
        "#,
    );
    let run = t.cairn(&["driver", "check", "broken.yaml"]);
    run.code(4)
        .stderr_has("fails the conformance check at `apply A`")
        .stderr_has("differs");
    let rows = rows(&run);
    assert_eq!(
        rows.last(),
        Some(&("apply A".to_string(), "FAIL".to_string())),
        "{run}"
    );
    assert!(
        rows[..rows.len() - 1].iter().all(|(_, r)| r == "pass"),
        "{run}"
    );
}

#[test]
fn a_driver_file_with_an_unknown_operation_is_a_driver_error() {
    let t = Test::new().file(
        "odd.yaml",
        r#"
        create:
          - exec_local: "true"
        apply:
          - exec_local: "true"
        list:
          - exec_local: "true"
        snapshot:
          - exec_local: "true"
        "#,
    );
    let run = t.cairn(&["driver", "check", "odd.yaml"]);
    run.code(3)
        .stderr_has("unknown driver operation `snapshot`")
        .stderr_has("odd.yaml:7:1");
    assert!(rows(&run).is_empty(), "nothing is run\n{run}");
}

#[test]
fn a_driver_file_without_list_is_a_driver_error() {
    let t = Test::new().file(
        "nolist.yaml",
        r#"
        create:
          - exec_local: "true"
        apply:
          - exec_local: "true"
        "#,
    );
    let run = t.cairn(&["driver", "check", "nolist.yaml"]);
    run.code(3)
        .stderr_has("no `list` operation")
        .stderr_has("nolist.yaml:1:1");

    // The same file named by a recipe stops the build the same way.
    let t = t.file(
        "recipe.yaml",
        r#"
        checkpoint: ./nolist.yaml
        setup:
          - s:
              - m:
                  - exec_local: touch ran
        "#,
    );
    let run = t.cairn(&["build", "recipe.yaml", "-c"]);
    run.code(3)
        .stderr_has("no `list` operation")
        .stderr_has("nolist.yaml:1:1");
    assert!(!t.exists("build/recipe/ran"));
}

/// Driver operations are read by the recipe's command parser, but only a Kameleon driver may
/// call the recipe's aliases: in a native driver a recipe alias is an unknown command, reported
/// at its place in the driver file before anything runs.
#[test]
fn a_native_driver_cannot_call_the_recipes_aliases() {
    let t = Test::new()
        .file(
            "own.yaml",
            r#"
            create:
              - exec_local: "true"
            apply:
              - exec_local: "true"
            list:
              - mark: []
            "#,
        )
        .file(
            "recipe.yaml",
            r#"
            checkpoint: ./own.yaml
            aliases:
              mark:
                - exec_local: touch marked
            setup:
              - s:
                  - m:
                      - mark: []
                      - exec_local: touch ran
            "#,
        );
    let run = t.cairn(&["build", "recipe.yaml", "-c"]);
    run.code(3)
        .stderr_has("unknown command `mark`")
        .stderr_has("own.yaml:6:5");
    assert!(!t.exists("build/recipe/ran"), "nothing runs\n{run}");
    assert!(!t.exists("build/recipe/marked"), "nothing runs\n{run}");
}

/// Two microsteps on the hardlink driver: the first makes three files, the second changes one
/// of them in place (an append writes into the file's inode).
fn hardlink_recipe() -> Test {
    Test::new().file(
        "recipe.yaml",
        r#"
        checkpoint: hardlink
        global:
          rootfs: "{{build_dir}}/rootfs"
          note: first
        setup:
          - s:
              - make:
                  - exec_local: mkdir -p "{{rootfs}}/sub" && echo a > "{{rootfs}}/a" && echo b > "{{rootfs}}/b" && echo c > "{{rootfs}}/sub/c"
              - change:
                  - exec_local: echo "changed {{note}}" >> "{{rootfs}}/b"
        "#,
    )
}

/// The full IDs of the checkpoints listed for the recipe, in listing order, with validity.
fn full_ids(t: &Test, extra: &[&str]) -> Vec<(String, bool)> {
    let mut args = vec!["checkpoints", "recipe.yaml", "--json"];
    args.extend(extra);
    let run = t.cairn(&args);
    run.success();
    crate::common::json_events(&run.stdout, "checkpoint")
        .iter()
        .map(|v| {
            (
                v["id"].as_str().unwrap().to_string(),
                v["valid"].as_bool().unwrap(),
            )
        })
        .collect()
}

fn ino(path: &Path) -> u64 {
    std::fs::symlink_metadata(path)
        .unwrap_or_else(|e| panic!("{}: {e}", path.display()))
        .ino()
}

#[test]
#[ignore = "needs rsync; run with --include-ignored"]
fn hardlink_checkpoints_share_the_inodes_of_unchanged_files() {
    if !require_backend("rsync", have_program("rsync")) {
        return;
    }
    let t = hardlink_recipe();
    t.cairn(&["build", "recipe.yaml", "-c"]).success();
    let ids = full_ids(&t, &[]);
    assert_eq!(ids.len(), 2);
    let store = t.build_dir("recipe").join("checkpoints/hardlink");
    let (one, two) = (store.join(&ids[0].0), store.join(&ids[1].0));
    assert_eq!(
        ino(&one.join("a")),
        ino(&two.join("a")),
        "an unchanged file is shared"
    );
    assert_eq!(
        ino(&one.join("sub/c")),
        ino(&two.join("sub/c")),
        "an unchanged file in a subdirectory is shared"
    );
    assert_ne!(
        ino(&one.join("b")),
        ino(&two.join("b")),
        "the changed file is not"
    );
    assert_eq!(std::fs::read_to_string(one.join("b")).unwrap(), "b\n");
    assert_eq!(
        std::fs::read_to_string(two.join("b")).unwrap(),
        "b\nchanged first\n"
    );
    // The workspace shares nothing with the checkpoints: writing into it cannot change them.
    let rootfs = t.build_dir("recipe").join("rootfs");
    for f in ["a", "b", "sub/c"] {
        assert_ne!(ino(&rootfs.join(f)), ino(&two.join(f)), "{f}");
    }
}

#[test]
#[ignore = "needs rsync; run with --include-ignored"]
fn applying_an_older_hardlink_checkpoint_keeps_the_newer_ones() {
    if !require_backend("rsync", have_program("rsync")) {
        return;
    }
    let t = hardlink_recipe();
    t.cairn(&["build", "recipe.yaml", "-c"]).success();
    let first = full_ids(&t, &[]);
    let store = t.build_dir("recipe").join("checkpoints/hardlink");

    // Same recipe, from the first checkpoint: the second microstep runs again on the applied
    // state, and both checkpoints are still there.
    let run = t.cairn(&["build", "recipe.yaml", "-F", "setup/s/make"]);
    run.success().stdout_has("Applying checkpoint");
    assert_eq!(full_ids(&t, &[]), first);
    assert_eq!(t.built("rootfs/b"), "b\nchanged first\n");

    // A changed second microstep: the first checkpoint is applied, the second microstep appends
    // to `b` in the workspace, and the older second checkpoint is kept (stale), untouched.
    let run = t.cairn(&["build", "recipe.yaml", "-c", "-g", "note=second"]);
    run.success().stdout_has("Applying checkpoint");
    assert_eq!(t.built("rootfs/b"), "b\nchanged second\n");
    let now = full_ids(&t, &["-g", "note=second"]);
    assert_eq!(now.len(), 3, "{now:?}");
    assert!(
        now.contains(&(first[1].0.clone(), false)),
        "the newer checkpoint is still listed: {now:?}"
    );
    assert_eq!(
        std::fs::read_to_string(store.join(&first[0].0).join("b")).unwrap(),
        "b\n"
    );
    assert_eq!(
        std::fs::read_to_string(store.join(&first[1].0).join("b")).unwrap(),
        "b\nchanged first\n"
    );

    // And it can still be applied.
    let run = t.cairn(&["build", "recipe.yaml", "-F", "last"]);
    run.success();
    assert_eq!(t.built("rootfs/b"), "b\nchanged first\n");
}

#[test]
#[ignore = "needs rsync; run with --include-ignored"]
fn hardlink_checkpoints_see_a_change_that_keeps_size_and_mtime() {
    if !require_backend("rsync", have_program("rsync")) {
        return;
    }
    // Each microstep rewrites `f` with as many bytes and the same mtime, as an archive
    // extraction or `cp -p` can; the third first records what it found.
    let t = Test::new().file(
        "recipe.yaml",
        r#"
        checkpoint: hardlink
        global:
          rootfs: "{{build_dir}}/rootfs"
        setup:
          - s:
              - one:
                  - exec_local: mkdir -p "{{rootfs}}" && echo aaaa > "{{rootfs}}/f" && touch -d @1000000000 "{{rootfs}}/f"
              - two:
                  - exec_local: echo bbbb > "{{rootfs}}/f" && touch -d @1000000000 "{{rootfs}}/f"
              - three:
                  - exec_local: cat "{{rootfs}}/f" >> "{{build_dir}}/found" && echo cccc > "{{rootfs}}/f" && touch -d @1000000000 "{{rootfs}}/f"
        "#,
    );
    t.cairn(&["build", "recipe.yaml", "-c"]).success();
    let ids = full_ids(&t, &[]);
    let store = t.build_dir("recipe").join("checkpoints/hardlink");
    let content = |i: usize| std::fs::read_to_string(store.join(&ids[i].0).join("f")).unwrap();
    assert_eq!(
        (
            content(0).as_str(),
            content(1).as_str(),
            content(2).as_str()
        ),
        ("aaaa\n", "bbbb\n", "cccc\n")
    );

    // Applying the second checkpoint over a workspace holding `cccc` restores `bbbb`.
    let run = t.cairn(&["build", "recipe.yaml", "-F", "setup/s/two"]);
    run.success();
    assert_eq!(
        t.built("found"),
        "bbbb\nbbbb\n",
        "what the third microstep found, in each build\n{run}"
    );
}

#[test]
#[ignore = "needs rsync; run with --include-ignored"]
fn hardlink_checkpoints_link_only_files_that_did_not_change() {
    if !require_backend("rsync", have_program("rsync")) {
        return;
    }
    // The first microstep makes the files; the second rewrites `same` with as many bytes and
    // the same mtime, deletes `gone`, renames `dir`, and changes only the mode of `mode`.
    let t = Test::new().file(
        "recipe.yaml",
        r#"
        checkpoint: hardlink
        global:
          rootfs: "{{build_dir}}/rootfs"
        setup:
          - s:
              - make:
                  - exec_local: |
                      mkdir -p "{{rootfs}}/dir/sub"
                      cd "{{rootfs}}"
                      echo aaaa > same && touch -d @1000000000 same
                      echo keep > keep
                      echo gone > gone
                      echo inner > dir/inner
                      echo deeper > dir/sub/deeper
                      echo mode > mode && chmod 644 mode
              - change:
                  - exec_local: |
                      cd "{{rootfs}}"
                      echo bbbb > same && touch -d @1000000000 same
                      rm gone
                      mv dir moved
                      chmod 600 mode
        "#,
    );
    t.cairn(&["build", "recipe.yaml", "-c"]).success();
    let ids = full_ids(&t, &[]);
    assert_eq!(ids.len(), 2);
    let store = t.build_dir("recipe").join("checkpoints/hardlink");
    let (one, two) = (store.join(&ids[0].0), store.join(&ids[1].0));
    let read =
        |p: PathBuf| std::fs::read_to_string(&p).unwrap_or_else(|e| panic!("{}: {e}", p.display()));
    let mode = |p: PathBuf| std::fs::metadata(p).unwrap().mode() & 0o7777;

    // Content changed, size and mtime restored: copied, not linked.
    assert_ne!(ino(&one.join("same")), ino(&two.join("same")));
    assert_eq!(
        (read(one.join("same")), read(two.join("same"))),
        ("aaaa\n".to_string(), "bbbb\n".to_string())
    );
    // Unchanged: the same inode.
    assert_eq!(ino(&one.join("keep")), ino(&two.join("keep")));
    // Deleted: absent from the second, still in the first.
    assert!(!two.join("gone").exists());
    assert_eq!(read(one.join("gone")), "gone\n");
    // Renamed directory: present under its new name with its contents, gone under the old one.
    assert!(!two.join("dir").exists());
    assert_eq!(read(two.join("moved/inner")), "inner\n");
    assert_eq!(read(two.join("moved/sub/deeper")), "deeper\n");
    assert_eq!(read(one.join("dir/inner")), "inner\n");
    // Mode only: an inode of its own; the older checkpoint keeps its mode.
    assert_ne!(ino(&one.join("mode")), ino(&two.join("mode")));
    assert_eq!(
        (mode(one.join("mode")), mode(two.join("mode"))),
        (0o644, 0o600)
    );

    // The record of each checkpoint sits beside it, and is not listed.
    assert!(store.join(format!(".{}.created", ids[0].0)).is_file());
    assert!(store.join(format!(".{}.created", ids[1].0)).is_file());

    // Applying the first checkpoint restores its content, modes and names exactly.
    let run = t.cairn(&["build", "recipe.yaml", "-F", "setup/s/make"]);
    run.success();
    assert_eq!(ids, full_ids(&t, &[]), "both checkpoints are kept");
    assert_eq!(
        read(two.join("same")),
        "bbbb\n",
        "the newer one is untouched"
    );
}

#[test]
fn snapshot_tree_refuses_a_destination_that_exists() {
    let t = Test::new().file("src/f", "f\n").file("dst/mine", "mine\n");
    let run = t.cairn(&["snapshot-tree", "src", "dst"]);
    run.code(2).stderr_has("dst already exists");
    assert_eq!(t.read("dst/mine"), "mine\n");
    t.cairn(&["snapshot-tree", "src", "copy"]).success();
    assert_eq!(t.read("copy/f"), "f\n");
    assert!(t.exists(".copy.created"));
}
