//! Regression tests for the hostile review (docs/safety.md, "Hostile input"): cairn runs as
//! root in shared workspaces, so every path and value is treated as hostile. Every test here
//! keeps its victims inside its own temporary directory.

use std::fs;
use std::os::unix::fs::{MetadataExt, PermissionsExt, symlink};

use crate::common::{Test, is_root, require_backend};

/// A checkpointed recipe with two microsteps writing into `rootfs`.
const TWO: &str = r#"
    checkpoint: copy
    global:
      rootfs: "{{build_dir}}/rootfs"
    bootstrap:
      - s:
          - a:
              - exec_local: mkdir -p "{{rootfs}}" && echo a > "{{rootfs}}/a"
          - b:
              - exec_local: echo b > "{{rootfs}}/b"
"#;

fn victim(t: &Test) -> std::path::PathBuf {
    let v = t.path().join("precious.conf");
    fs::write(&v, "important\n").unwrap();
    v
}

#[test]
fn a_lock_file_that_is_a_symlink_is_refused_and_its_target_untouched() {
    let t = Test::new().file("recipe.yaml", TWO);
    let v = victim(&t);
    fs::create_dir_all(t.path().join("b/.cairn")).unwrap();
    symlink(&v, t.path().join("b/.cairn/lock")).unwrap();
    for args in [
        &["build", "recipe.yaml", "-c", "-b", "b"][..],
        &["clear", "recipe.yaml", "-b", "b"][..],
        &["checkpoints", "recipe.yaml", "-b", "b", "--prune"][..],
        &["rollback", "recipe.yaml", "-b", "b", "--full"][..],
    ] {
        let run = t.cairn(args);
        run.code(4)
            .stderr_has("refusing to use")
            .stderr_has("symbolic link");
        assert_eq!(fs::read_to_string(&v).unwrap(), "important\n", "{run}");
    }
    assert!(!t.exists("b/rootfs"), "nothing ran");
}

#[test]
fn a_dangling_lock_symlink_does_not_create_its_target() {
    let t = Test::new().file("recipe.yaml", TWO);
    fs::create_dir_all(t.path().join("b/.cairn")).unwrap();
    symlink(
        t.path().join("created-by-cairn"),
        t.path().join("b/.cairn/lock"),
    )
    .unwrap();
    t.cairn(&["build", "recipe.yaml", "-b", "b"])
        .code(4)
        .stderr_has("symbolic link");
    assert!(!t.exists("created-by-cairn"));
}

#[test]
fn a_hard_linked_lock_file_is_refused_and_its_other_name_untouched() {
    let t = Test::new().file("recipe.yaml", TWO);
    let v = victim(&t);
    fs::create_dir_all(t.path().join("b/.cairn")).unwrap();
    fs::hard_link(&v, t.path().join("b/.cairn/lock")).unwrap();
    t.cairn(&["build", "recipe.yaml", "-b", "b"])
        .code(4)
        .stderr_has("hard link");
    assert_eq!(fs::read_to_string(&v).unwrap(), "important\n");
}

#[test]
fn a_state_db_that_is_a_symlink_is_refused_and_its_target_untouched() {
    for name in ["state.db", "state.db-wal", "state.db-shm"] {
        let t = Test::new().file("recipe.yaml", TWO);
        let v = t.path().join("empty-target");
        fs::write(&v, "").unwrap();
        fs::create_dir_all(t.path().join("b/.cairn")).unwrap();
        symlink(&v, t.path().join("b/.cairn").join(name)).unwrap();
        for args in [
            &["build", "recipe.yaml", "-b", "b"][..],
            &["plan", "recipe.yaml", "-b", "b"][..],
            &["checkpoints", "recipe.yaml", "-b", "b"][..],
        ] {
            let run = t.cairn(args);
            if name != "state.db" && args[0] != "build" {
                // The read-only commands look at the database only when there is one.
                continue;
            }
            run.code(4).stderr_has("symbolic link");
            assert_eq!(fs::read(&v).unwrap(), b"", "{name}: {run}");
        }
        assert!(!t.exists("b/rootfs"), "{name}: nothing ran");
    }
}

#[test]
fn a_cairn_dir_that_is_a_symlink_is_refused() {
    let t = Test::new().file("recipe.yaml", TWO);
    fs::create_dir_all(t.path().join("elsewhere")).unwrap();
    fs::create_dir_all(t.path().join("b")).unwrap();
    symlink(t.path().join("elsewhere"), t.path().join("b/.cairn")).unwrap();
    t.cairn(&["build", "recipe.yaml", "-b", "b"])
        .code(4)
        .stderr_has("symbolic link");
    assert_eq!(fs::read_dir(t.path().join("elsewhere")).unwrap().count(), 0);
}

#[test]
fn the_cairn_dir_is_private_and_the_state_db_0600() {
    let t = Test::new().file("recipe.yaml", TWO);
    t.cairn(&["build", "recipe.yaml", "-c", "-b", "b"])
        .success();
    let mode = |p: &str| fs::metadata(t.path().join(p)).unwrap().mode() & 0o777;
    assert_eq!(mode("b/.cairn"), 0o700);
    assert_eq!(mode("b/.cairn/state.db"), 0o600);
    assert_eq!(mode("b/.cairn/lock"), 0o600);
    // An older cairn left them world-readable: the next run narrows them.
    fs::set_permissions(t.path().join("b/.cairn"), fs::Permissions::from_mode(0o755)).unwrap();
    fs::set_permissions(
        t.path().join("b/.cairn/state.db"),
        fs::Permissions::from_mode(0o644),
    )
    .unwrap();
    t.cairn(&["build", "recipe.yaml", "-c", "-b", "b"])
        .success();
    assert_eq!(mode("b/.cairn"), 0o700);
    assert_eq!(mode("b/.cairn/state.db"), 0o600);
}

#[test]
fn a_build_dir_reached_through_a_symlink_still_works() {
    let t = Test::new().file("recipe.yaml", TWO);
    fs::create_dir_all(t.path().join("real")).unwrap();
    symlink(t.path().join("real"), t.path().join("b")).unwrap();
    t.cairn(&["build", "recipe.yaml", "-c", "-b", "b"])
        .success();
    assert!(t.exists("real/.cairn/state.db"));
    t.cairn(&["build", "recipe.yaml", "-c", "-b", "b"])
        .success()
        .stdout_has("Using checkpoint");
}

#[test]
fn prune_deletes_only_checkpoints_this_build_dir_made() {
    let other = TWO.replace("echo b >", "echo other-b >");
    let t = Test::new()
        .file("recipe.yaml", TWO)
        .file("other.yaml", &other);
    let store = t.path().join("shared").display().to_string();
    let g = format!("store={store}");
    t.cairn(&["build", "recipe.yaml", "-c", "-b", "bA", "-g", &g])
        .success();
    t.cairn(&["build", "other.yaml", "-c", "-b", "bB", "-g", &g])
        .success();
    let before: Vec<_> = fs::read_dir(t.path().join("shared"))
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    // a is shared by both recipes; b differs: 3 checkpoints.
    assert_eq!(before.len(), 3, "{before:?}");
    // A change that makes recipe.yaml's own b stale.
    t.rewrite("recipe.yaml", &TWO.replace("echo b >", "echo new-b >"));
    let run = t.cairn(&[
        "checkpoints",
        "recipe.yaml",
        "-b",
        "bA",
        "-g",
        &g,
        "--prune",
    ]);
    run.success()
        .stdout_has("Deleted stale checkpoint")
        .stdout_has("Kept 1 checkpoint(s) this build dir did not make");
    assert_eq!(
        run.stdout.matches("Deleted stale checkpoint").count(),
        1,
        "{run}"
    );
    // other.yaml's checkpoints are all still there and still used.
    t.cairn(&["build", "other.yaml", "-c", "-b", "bB", "-g", &g])
        .success()
        .stdout_lacks("Running the step");
}

/// Mounts `dir` read-only on itself (a bind mount), for the read-only build dir tests.
struct ReadOnly(std::path::PathBuf);

impl ReadOnly {
    fn new(dir: &std::path::Path) -> Option<ReadOnly> {
        let ok = |args: &[&str]| {
            std::process::Command::new("mount")
                .args(args)
                .status()
                .is_ok_and(|s| s.success())
        };
        let d = dir.to_str()?;
        if !ok(&["--bind", d, d]) {
            return None;
        }
        let ro = ReadOnly(dir.to_path_buf());
        ok(&["-o", "remount,bind,ro", d]).then_some(ro)
    }
}

impl Drop for ReadOnly {
    fn drop(&mut self) {
        let _ = std::process::Command::new("umount").arg(&self.0).status();
    }
}

#[test]
#[ignore = "needs root, for a read-only bind mount; run with --include-ignored"]
fn checkpoints_and_plan_work_on_a_read_only_build_dir() {
    if !require_backend("root, for a read-only bind mount", is_root()) {
        return;
    }
    let t = Test::new().file("recipe.yaml", TWO);
    t.cairn(&["build", "recipe.yaml", "-c", "-b", "b"])
        .success();
    let listed = t.cairn(&["checkpoints", "recipe.yaml", "-b", "b"]);
    listed.success();
    let planned = t.cairn(&["plan", "recipe.yaml", "-b", "b"]);
    planned.success();
    let Some(_ro) = ReadOnly::new(&t.path().join("b")) else {
        assert!(
            require_backend("a read-only bind mount", false),
            "mount failed"
        );
        return;
    };
    let run = t.cairn(&["checkpoints", "recipe.yaml", "-b", "b"]);
    run.success();
    assert_eq!(run.stdout, listed.stdout);
    let run = t.cairn(&["plan", "recipe.yaml", "-b", "b"]);
    run.success();
    assert_eq!(run.stdout, planned.stdout);
    assert!(run.stdout.contains("use checkpoint"), "{run}");
}

// ---- signals and leftovers ----

const SLEEPER: &str = r#"
    setup:
      - work:
          - one:
              - on_setup_clean:
                  - exec_local: echo clean >> clean.log
              - exec_local: |
                  echo $$ > shell.pid
                  touch started
                  sleep 30
"#;

/// A cairn started in the background, killed (with its whole tree) when the test ends.
struct Running {
    child: std::process::Child,
    pids: Vec<i32>,
}

impl Running {
    fn start(t: &Test, args: &[&str]) -> Running {
        let child = std::process::Command::new(env!("CARGO_BIN_EXE_cairn"))
            .current_dir(t.path())
            .args(args)
            .env("NO_COLOR", "1")
            .stdin(std::process::Stdio::null())
            .stdout(std::process::Stdio::null())
            .stderr(fs::File::create(t.path().join("bg.stderr")).unwrap())
            .spawn()
            .unwrap();
        let started = t.build_dir("recipe").join("started");
        let begin = std::time::Instant::now();
        while !started.exists() {
            assert!(begin.elapsed().as_secs() < 30, "the build never started");
            std::thread::sleep(std::time::Duration::from_millis(20));
        }
        let shell: i32 = t.built("shell.pid").trim().parse().unwrap();
        Running {
            child,
            pids: vec![shell],
        }
    }

    fn signal(&self, sig: nix::sys::signal::Signal) {
        nix::sys::signal::kill(nix::unistd::Pid::from_raw(self.child.id() as i32), sig).unwrap();
    }

    fn wait(&mut self) -> Option<i32> {
        let begin = std::time::Instant::now();
        loop {
            if let Some(s) = self.child.try_wait().unwrap() {
                return s.code();
            }
            assert!(begin.elapsed().as_secs() < 20, "cairn did not end");
            std::thread::sleep(std::time::Duration::from_millis(20));
        }
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        for p in &self.pids {
            // The shell leads its group: the group goes with it.
            let _ = nix::sys::signal::killpg(
                nix::unistd::Pid::from_raw(*p),
                nix::sys::signal::Signal::SIGKILL,
            );
        }
    }
}

fn alive(pid: i32) -> bool {
    // A zombie no longer counts.
    fs::read_to_string(format!("/proc/{pid}/stat")).is_ok_and(|s| {
        s.rsplit(')')
            .next()
            .is_some_and(|r| !r.trim_start().starts_with('Z'))
    })
}

fn gone_within(pid: i32, secs: u64) -> bool {
    let begin = std::time::Instant::now();
    while alive(pid) {
        if begin.elapsed().as_secs() >= secs {
            return false;
        }
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    true
}

fn last_run_status(t: &Test) -> String {
    let db = rusqlite::Connection::open(t.build_dir("recipe").join(".cairn/state.db")).unwrap();
    db.query_row(
        "SELECT status FROM runs ORDER BY id DESC LIMIT 1",
        [],
        |r| r.get(0),
    )
    .unwrap()
}

#[test]
fn sighup_and_sigquit_end_a_build_like_sigterm() {
    use nix::sys::signal::Signal;
    for (sig, code) in [(Signal::SIGHUP, 129), (Signal::SIGQUIT, 131)] {
        let t = Test::new().file("recipe.yaml", SLEEPER);
        let mut bg = Running::start(&t, &["build", "recipe.yaml"]);
        bg.signal(sig);
        assert_eq!(bg.wait(), Some(code), "{sig}: {}", t.read("bg.stderr"));
        assert!(
            t.read("bg.stderr").contains("cairn resume recipe.yaml"),
            "{}",
            t.read("bg.stderr")
        );
        assert!(
            gone_within(bg.pids[0], 5),
            "{sig}: the command's shell survived"
        );
        assert_eq!(last_run_status(&t), "interrupted", "{sig}");
        assert_eq!(t.built("clean.log"), "clean\n", "{sig}: clean hooks ran");
    }
}

#[test]
fn leftovers_of_a_sigkilled_run_are_refused_then_killed_with_yes() {
    let t = Test::new().file("recipe.yaml", SLEEPER);
    let mut bg = Running::start(&t, &["build", "recipe.yaml"]);
    bg.signal(nix::sys::signal::Signal::SIGKILL);
    bg.wait();
    let shell = bg.pids[0];
    assert!(alive(shell), "the killed cairn's shell runs on");
    let run = t.cairn(&["build", "recipe.yaml"]);
    run.code(5)
        .stderr_has("processes an earlier cairn started")
        .stderr_has(&format!("group {shell}: {shell} bash"))
        .stderr_has("--yes");
    assert!(alive(shell), "refusing kills nothing");
    // A rollback refuses too: it would race the leftovers as much.
    t.cairn(&["rollback", "recipe.yaml", "--full"]).code(5);
    // With --yes, they are killed first and the build resumes.
    t.rewrite("recipe.yaml", &SLEEPER.replace("sleep 30", "true"));
    let run = t.cairn(&["build", "recipe.yaml", "--yes"]);
    run.success()
        .stderr_has(&format!("killing process group {shell}"));
    assert!(gone_within(shell, 2));
    // A run that ended cleanly leaves nothing behind to refuse.
    t.cairn(&["build", "recipe.yaml"]).success();
}

// ---- values in shell text ----

/// The shipped hello recipe and its steps, copied into the test's tree.
fn hello() -> Test {
    let t = Test::new();
    crate::common::copy_tree(&crate::common::repo_root().join("recipes"), t.path());
    t
}

/// Every regular file under `dir`, relative, with its content.
fn files(dir: &std::path::Path) -> Vec<(String, Vec<u8>)> {
    let mut out: Vec<_> = walkdir::WalkDir::new(dir)
        .sort_by_file_name()
        .into_iter()
        .flatten()
        .filter(|e| e.file_type().is_file())
        .map(|e| {
            (
                e.path().strip_prefix(dir).unwrap().display().to_string(),
                fs::read(e.path()).unwrap(),
            )
        })
        .collect();
    out.sort();
    out
}

#[test]
fn a_build_dir_with_shell_metacharacters_is_used_exactly() {
    let t = hello();
    let odd = "b/x$y \"q\" `touch PWNED` \\ it's";
    // What `$y` (empty) would make of it, with a victim inside.
    fs::create_dir_all(t.path().join("b/x/rootfs")).unwrap();
    fs::write(t.path().join("b/x/rootfs/victim"), "keep").unwrap();
    t.cairn(&["build", "hello.yaml", "-c", "-b", odd]).success();
    assert_eq!(t.read("b/x/rootfs/victim"), "keep");
    assert_eq!(fs::read_dir(t.path().join("b/x")).unwrap().count(), 1);
    assert!(!t.exists("PWNED") && !t.exists("b/PWNED"));
    let dir = t.path().join(odd);
    assert_eq!(
        t.read(&format!("{odd}/rootfs/etc/motd")),
        "Hello from hello\n"
    );
    assert!(dir.join("hello.tar.gz").is_file());
    assert!(
        t.read(&format!("{odd}/build.log"))
            .contains("setup finished for hello")
    );
    // Its checkpoints are in its own store, and a rebuild from one gives the same rootfs.
    let before = files(&dir.join("rootfs"));
    assert_eq!(
        fs::read_dir(dir.join("checkpoints/copy")).unwrap().count(),
        8
    );
    t.cairn(&[
        "build",
        "hello.yaml",
        "-b",
        odd,
        "-F",
        "setup/add_user/passwd",
    ])
    .success()
    .stdout_has("Using checkpoint");
    assert_eq!(files(&dir.join("rootfs")), before);
    // And clear removes that store, nothing else.
    t.cairn(&["clear", "hello.yaml", "-b", odd]).success();
    assert!(!dir.join("checkpoints/copy").exists());
    assert_eq!(t.read("b/x/rootfs/victim"), "keep");
}

#[test]
fn a_store_value_with_quotes_is_taken_literally() {
    let t = hello();
    fs::create_dir_all(t.path().join("victim2")).unwrap();
    fs::write(t.path().join("victim2/file"), "keep").unwrap();
    let store = format!(
        "store={}/bq/checkpoints/copy\" \"{}/victim2",
        t.path().display(),
        t.path().display()
    );
    t.cairn(&["build", "hello.yaml", "-c", "-b", "bq", "-g", &store])
        .success();
    let literal = t.path().join(format!(
        "bq/checkpoints/copy\" \"{}/victim2",
        t.path().display()
    ));
    assert_eq!(fs::read_dir(&literal).unwrap().count(), 8);
    t.cairn(&["clear", "hello.yaml", "-b", "bq", "-g", &store])
        .success();
    assert!(!literal.exists());
    assert_eq!(t.read("victim2/file"), "keep");
}

#[test]
fn a_non_hex_checkpoint_id_in_the_state_db_never_reaches_the_driver() {
    let t = Test::new().file("recipe.yaml", TWO);
    t.cairn(&["build", "recipe.yaml", "-c", "-b", "b"])
        .success();
    fs::create_dir_all(t.path().join("VICTIM")).unwrap();
    fs::write(t.path().join("VICTIM/file"), "keep").unwrap();
    let db = rusqlite::Connection::open(t.path().join("b/.cairn/state.db")).unwrap();
    db.execute(
        "UPDATE checkpoints SET id = '../../../VICTIM', ready = 0 WHERE rowid = (SELECT min(rowid) FROM checkpoints)",
        [],
    )
    .unwrap();
    drop(db);
    t.cairn(&["build", "recipe.yaml", "-c", "-b", "b"])
        .code(4)
        .stderr_has("refusing to pass \"../../../VICTIM\" to checkpoint driver `copy` (delete)");
    assert_eq!(t.read("VICTIM/file"), "keep");
}

#[test]
fn the_printed_resume_command_can_be_pasted_into_a_shell() {
    let t = Test::new().file(
        "recipe.yaml",
        r#"
        setup:
          - s:
              - flaky:
                  - exec_local: test -e {{sh build_dir}}/ok || { touch {{sh build_dir}}/ok; exit 1; }
              - last:
                  - exec_local: touch {{sh build_dir}}/done
        "#,
    );
    let odd = "b/x$y `touch PWNED` it's";
    let run = t.cairn(&["build", "recipe.yaml", "-b", odd]);
    run.code(1);
    let all = format!("{}{}", run.stdout, run.stderr);
    let line = all
        .lines()
        .find_map(|l| l.find("cairn resume ").map(|i| &l[i..]))
        .unwrap_or_else(|| panic!("no resume command\n{run}"));
    let bin = std::path::Path::new(env!("CARGO_BIN_EXE_cairn"))
        .parent()
        .unwrap();
    let path = format!(
        "{}:{}",
        bin.display(),
        std::env::var("PATH").unwrap_or_default()
    );
    let status = std::process::Command::new("sh")
        .args(["-c", line])
        .current_dir(t.path())
        .env("PATH", path)
        .env("NO_COLOR", "1")
        .stdin(std::process::Stdio::null())
        .status()
        .unwrap();
    assert!(status.success(), "{line}");
    assert!(t.path().join(odd).join("done").exists(), "{line}");
    assert!(!t.exists("PWNED") && !t.exists("b/PWNED"));
}

#[test]
fn a_driver_operation_past_its_timeout_is_killed_with_a_clear_error() {
    let t = Test::new()
        .file(
            "hang.yaml",
            r#"
            variables:
              store: "{{build_dir}}/store"
            create:
              - exec_local: mkdir -p {{sh store}}/{{sh checkpoint_id}}
            apply:
              - exec_local: "true"
            list:
              - timeout: 1
              - exec_local: echo $$ > {{sh build_dir}}/list.pid; sleep 300
            "#,
        )
        .file(
            "recipe.yaml",
            &TWO.replace("checkpoint: copy", "checkpoint: ./hang.yaml"),
        );
    let begin = std::time::Instant::now();
    let run = t.cairn(&["build", "recipe.yaml", "-c"]);
    run.code(4)
        .stderr_has("checkpoint driver `hang` timed out in `list`: it was still running after 1 s")
        .stderr_has("- timeout:");
    assert!(begin.elapsed().as_secs() < 30, "{run}");
    let pid: i32 = t.built("list.pid").trim().parse().unwrap();
    assert!(gone_within(pid, 5), "the timed-out shell survived");
    assert!(
        !t.exists("build/recipe/rootfs"),
        "nothing ran after the failed list"
    );
}

// ---- secrets ----

#[test]
fn secrets_are_masked_everywhere_cairn_writes_or_prints_but_commands_get_them() {
    let t = Test::new().file(
        "recipe.yaml",
        r#"
        checkpoint: copy
        global:
          rootfs: "{{build_dir}}/rootfs"
          db_password: "hunter2-RECIPE-SECRET"
          api_key: "key-DECLARED-SECRET"
          secret: [api_key]
        setup:
          - s:
              - use:
                  - rollback:
                      - exec_local: printf '%s %s' {{sh db_password}} {{sh cli_token}} > {{sh build_dir}}/undone
                  - exec_local: mkdir -p {{sh rootfs}} && printf '%s %s %s' {{sh db_password}} {{sh api_key}} {{sh cli_token}} > {{sh build_dir}}/got
              - fail:
                  - exec_local: echo "connecting with {{db_password}}"; curl_fake --token {{sh cli_token}} {{sh api_key}}
        "#,
    );
    let values = [
        "hunter2-RECIPE-SECRET",
        "key-DECLARED-SECRET",
        "CLI-SECRET-TOKEN",
    ];
    let g = ["-g", "cli_token=CLI-SECRET-TOKEN"];
    let clean = |what: &str, text: &str| {
        for v in values {
            assert!(!text.contains(v), "{what} shows {v}:\n{text}");
        }
    };
    let mut args = vec!["build", "recipe.yaml", "-c", "--json"];
    args.extend(g);
    let run = t.cairn(&args);
    run.code(1);
    clean("stdout (JSON)", &run.stdout);
    clean("stderr", &run.stderr);
    assert!(run.stderr.contains("***"), "{run}");
    // The commands got the real values.
    assert_eq!(
        t.built("got"),
        "hunter2-RECIPE-SECRET key-DECLARED-SECRET CLI-SECRET-TOKEN"
    );
    // Human output, info, plan --explain, graph.
    let mut human = vec!["build", "recipe.yaml", "-c"];
    human.extend(g);
    for args in [
        human.clone(),
        vec!["info", "recipe.yaml", g[0], g[1]],
        vec!["plan", "recipe.yaml", "--explain", g[0], g[1]],
        vec!["plan", "recipe.yaml", "--commands", g[0], g[1]],
        vec!["graph", "recipe.yaml", "--format", "json", g[0], g[1]],
    ] {
        let run = t.cairn(&args);
        clean(&args.join(" "), &format!("{}{}", run.stdout, run.stderr));
    }
    let info = t.cairn(&["info", "recipe.yaml", g[0], g[1]]);
    assert!(info.stdout.contains("db_password: ***"), "{info}");
    assert!(info.stdout.contains("cli_token: ***"), "{info}");
    // Nothing under .cairn keeps a value, and the rollback still runs with them.
    for entry in walkdir::WalkDir::new(t.build_dir("recipe").join(".cairn")) {
        let entry = entry.unwrap();
        if entry.file_type().is_file() {
            let bytes = fs::read(entry.path()).unwrap();
            clean(
                &entry.path().display().to_string(),
                &String::from_utf8_lossy(&bytes),
            );
        }
    }
    let mut rb = vec!["rollback", "recipe.yaml", "--full"];
    rb.extend(g);
    t.cairn(&rb).success();
    assert_eq!(t.built("undone"), "hunter2-RECIPE-SECRET CLI-SECRET-TOKEN");
}

#[test]
fn graph_labels_with_quotes_and_newlines_add_no_statements() {
    let t = Test::new().file(
        "recipe.yaml",
        r#"
        setup:
          - "s\"]; evil [label=\"x":
              - "<script>m\nclick A \"javascript:alert(1)\"":
                  - exec_local: "true"
        "#,
    );
    let dot = t.cairn(&["graph", "recipe.yaml", "--format", "dot"]);
    dot.success();
    // One cluster and one node, nothing else: the quotes stayed inside their labels.
    assert_eq!(dot.stdout.lines().count(), 8, "{dot}");
    assert!(
        dot.stdout
            .contains(r#"label="setup/s\"]; evil [label=\"x";"#),
        "{dot}"
    );
    assert!(
        dot.stdout
            .contains(r#"<script>m\nclick A \"javascript:alert(1)\"\n"#),
        "{dot}"
    );
    let mermaid = t.cairn(&["graph", "recipe.yaml", "--format", "mermaid"]);
    mermaid.success();
    assert!(!mermaid.stdout.contains("<script>"), "{mermaid}");
    assert!(
        !mermaid
            .stdout
            .lines()
            .any(|l| l.trim_start().starts_with("click")),
        "{mermaid}"
    );
    assert!(
        mermaid
            .stdout
            .contains("#lt;script#gt;m click A #quot;javascript:alert(1)#quot;"),
        "{mermaid}"
    );
}

// ---- validation ----

#[test]
fn build_dry_run_honours_from_checkpoint_and_refuses_an_unknown_one() {
    let t = Test::new().file("recipe.yaml", TWO);
    t.cairn(&["build", "recipe.yaml", "-c"]).success();
    let plan = t.cairn(&["build", "recipe.yaml", "-n", "-F", "bootstrap/s/a"]);
    plan.success();
    let actions: Vec<&str> = plan
        .stdout
        .lines()
        .map(|l| l.split_whitespace().nth(2).unwrap_or(""))
        .collect();
    assert_eq!(actions, ["use", "run"], "{plan}");
    let real = t.cairn(&["build", "recipe.yaml", "-F", "bootstrap/s/a"]);
    real.success();
    assert_eq!(real.steps(), ["bootstrap/s/a", "bootstrap/s/b"], "{real}");
    for junk in ["zzzz", "../../etc", "bootstrap/s/nope", "ffffffffffff"] {
        let dry = t.cairn(&["build", "recipe.yaml", "-n", "-F", junk]);
        dry.code(4)
            .stderr_has(&format!("no checkpoint matches `{junk}`"));
        // The dry run and the build resolve `-F` by one rule: the same refusal, word for word.
        let real = t.cairn(&["build", "recipe.yaml", "-F", junk]);
        real.code(4);
        assert_eq!(dry.stderr, real.stderr, "{junk}");
    }
}

#[test]
fn an_unreadable_step_directory_is_an_error_not_skipped() {
    if !require_backend(
        "root, to run cairn as nobody",
        is_root() && crate::common::have_program("setpriv"),
    ) {
        return;
    }
    let t = Test::new()
        .file("ur/steps2/r.yaml", "bootstrap:\n  - st\n")
        .file(
            "ur/steps2/steps/bootstrap/st.yaml",
            "- m:\n    - exec_local: echo RIGHT-STEP-FILE\n",
        )
        .file(
            "ur/steps/bootstrap/st.yaml",
            "- m:\n    - exec_local: echo WRONG-STEP-FILE-FROM-PARENT-DIR\n",
        );
    let mode = |p: &str, m: u32| {
        fs::set_permissions(t.path().join(p), fs::Permissions::from_mode(m)).unwrap()
    };
    mode("", 0o755);
    fs::create_dir_all(t.path().join("b")).unwrap();
    mode("b", 0o777);
    mode("ur/steps2/steps/bootstrap", 0o000);
    let out = std::process::Command::new("setpriv")
        .args(["--reuid=65534", "--regid=65534", "--clear-groups", "--"])
        .arg(env!("CARGO_BIN_EXE_cairn"))
        .args(["build", "ur/steps2/r.yaml", "-b", "b/x"])
        .current_dir(t.path())
        .env("NO_COLOR", "1")
        .env("HOME", t.path().join("b"))
        .output()
        .unwrap();
    mode("ur/steps2/steps/bootstrap", 0o755);
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(3), "{stdout}{stderr}");
    assert!(stderr.contains("cannot look for step `st`"), "{stderr}");
    assert!(stderr.contains("Permission denied"), "{stderr}");
    assert!(!stdout.contains("WRONG-STEP-FILE"), "{stdout}");
}

#[test]
fn a_command_printing_a_huge_line_runs_in_bounded_memory() {
    if !require_backend("prlimit", crate::common::have_program("prlimit")) {
        return;
    }
    let t = Test::new().file(
        "recipe.yaml",
        r#"
        setup:
          - s:
              - flood:
                  - exec_local: head -c 700000000 /dev/zero; echo done
              - after:
                  - exec_local: touch {{sh build_dir}}/after
        "#,
    );
    // 512 MiB of address space: holding the 700 MB line would abort cairn.
    let status = std::process::Command::new("prlimit")
        .arg("--as=536870912")
        .arg(env!("CARGO_BIN_EXE_cairn"))
        .args(["build", "recipe.yaml"])
        .current_dir(t.path())
        .env("NO_COLOR", "1")
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .stderr(fs::File::create(t.path().join("stderr")).unwrap())
        .status()
        .unwrap();
    assert!(status.success(), "{status:?}\n{}", t.read("stderr"));
    assert!(t.exists("build/recipe/after"));
}

#[test]
fn a_driver_with_an_unknown_variable_is_refused_before_the_first_microstep() {
    let t = Test::new()
        .file(
            "bad.yaml",
            r#"
            create:
              - exec_local: touch {{sh build_dir}}/{{sh nosuchvar}}
            apply:
              - exec_local: "true"
            list:
              - exec_local: "true"
            "#,
        )
        .file(
            "recipe.yaml",
            &TWO.replace("checkpoint: copy", "checkpoint: ./bad.yaml"),
        );
    t.cairn(&["build", "recipe.yaml", "-c"])
        .code(3)
        .stderr_has("unknown variable `nosuchvar`")
        .stderr_has("bad.yaml:2:");
    assert!(!t.exists("build/recipe/rootfs"), "microstep a ran");
}

#[test]
fn driver_check_refuses_a_target_that_is_not_empty() {
    let t = Test::new().file("important/a.txt", "keep\n");
    let driver = crate::common::repo_root().join("drivers/copy.yaml");
    t.cairn(&[
        "driver",
        "check",
        &driver.display().to_string(),
        "--target",
        "important",
    ])
    .code(2)
    .stderr_has("--target important is not empty");
    assert_eq!(t.read("important/a.txt"), "keep\n");
    assert_eq!(fs::read_dir(t.path().join("important")).unwrap().count(), 1);
}
