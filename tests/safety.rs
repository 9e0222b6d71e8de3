//! Installer-grade safety (contract section 6): signals, crash detection and resume, the
//! rollback journal, atomic microsteps, state files, verification, the build lock and the
//! failure prompt. Every test drives the real binary, some of them in the background so it can
//! be signalled or killed mid-command, some on a pseudo-terminal so it may ask.

use std::collections::BTreeMap;
use std::fs::{self, File};
use std::io::{Read, Write};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::sleep;
use std::time::{Duration, Instant};

use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;

use crate::common::{Run, Test, repo_root};

// ---- helpers: cairn in the background, on a terminal, and what it leaves behind ----

fn cairn_bin() -> &'static str {
    env!("CARGO_BIN_EXE_cairn")
}

/// The environment variable that marks every process a test started, so a test can kill what
/// a SIGKILLed cairn left running (cairn's next run does not: see docs/safety.md).
const TAG: &str = "CAIRN_SAFETY_TEST_TAG";

fn new_tag() -> String {
    static N: AtomicUsize = AtomicUsize::new(0);
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default()
        .as_nanos();
    format!(
        "{}-{}-{nanos}",
        std::process::id(),
        N.fetch_add(1, Ordering::SeqCst)
    )
}

/// The live processes carrying `tag` in their environment.
fn tagged(tag: &str) -> Vec<i32> {
    let needle = format!("{TAG}={tag}");
    let mut found = Vec::new();
    for entry in fs::read_dir("/proc").into_iter().flatten().flatten() {
        let Some(pid) = entry
            .file_name()
            .to_str()
            .and_then(|s| s.parse::<i32>().ok())
        else {
            continue;
        };
        if pid == std::process::id() as i32 {
            continue;
        }
        let Ok(env) = fs::read(entry.path().join("environ")) else {
            continue;
        };
        if env.split(|b| *b == 0).any(|var| var == needle.as_bytes()) && alive(pid) {
            found.push(pid);
        }
    }
    found
}

/// SIGKILLs every process carrying `tag` in its environment, until none is left.
fn kill_tagged(tag: &str) {
    for _ in 0..100 {
        let found = tagged(tag);
        if found.is_empty() {
            return;
        }
        for pid in found {
            let _ = kill(Pid::from_raw(pid), Signal::SIGKILL);
        }
        sleep(Duration::from_millis(20));
    }
    panic!("processes tagged {tag} survive SIGKILL");
}

/// Whether a process exists and is not a zombie.
fn alive(pid: i32) -> bool {
    match fs::read_to_string(format!("/proc/{pid}/stat")) {
        // The state follows the parenthesised command name.
        Ok(stat) => {
            stat.rsplit_once(')')
                .and_then(|(_, rest)| rest.split_whitespace().next())
                != Some("Z")
        }
        Err(_) => false,
    }
}

/// Waits up to `limit` for a process to be gone.
fn gone_within(pid: i32, limit: Duration) -> bool {
    let start = Instant::now();
    while alive(pid) {
        if start.elapsed() > limit {
            return false;
        }
        sleep(Duration::from_millis(20));
    }
    true
}

/// A cairn running in the background: its output goes to files, since a process a killed
/// cairn left behind could hold a pipe open for ever.
struct Bg {
    child: Child,
    tag: String,
    logs: tempfile::TempDir,
    args: Vec<String>,
    root: PathBuf,
    status: Option<ExitStatus>,
}

impl Bg {
    fn spawn(dir: &Path, args: &[&str], env: &[(&str, &str)]) -> Bg {
        let logs = tempfile::Builder::new()
            .prefix("cairn-logs-")
            .tempdir()
            .unwrap();
        let tag = new_tag();
        let mut cmd = Command::new(cairn_bin());
        cmd.current_dir(dir)
            .args(args)
            .env("NO_COLOR", "1")
            .env("XDG_CONFIG_HOME", dir.join(".config"))
            .env_remove("RUST_LOG")
            .env(TAG, &tag)
            .stdin(Stdio::null())
            .stdout(File::create(logs.path().join("stdout")).unwrap())
            .stderr(File::create(logs.path().join("stderr")).unwrap());
        for (k, v) in env {
            cmd.env(k, v);
        }
        let child = cmd.spawn().expect("start cairn");
        Bg {
            child,
            tag,
            logs,
            args: args.iter().map(|a| a.to_string()).collect(),
            root: dir.to_path_buf(),
            status: None,
        }
    }

    fn pid(&self) -> i32 {
        self.child.id() as i32
    }

    fn signal(&self, signal: Signal) {
        // A cairn that already exited (and is not reaped yet) ignores it.
        let _ = kill(Pid::from_raw(self.pid()), signal);
    }

    /// The exit status, if cairn ends within `limit`.
    fn wait_for_exit(&mut self, limit: Duration) -> Option<ExitStatus> {
        let start = Instant::now();
        loop {
            if let Some(s) = self.child.try_wait().expect("wait for cairn") {
                self.status = Some(s);
                return Some(s);
            }
            if start.elapsed() > limit {
                return None;
            }
            sleep(Duration::from_millis(10));
        }
    }

    fn running(&mut self) -> bool {
        self.status.is_none() && self.child.try_wait().expect("wait for cairn").is_none()
    }

    /// What it printed so far, and its exit code once it ended.
    fn output(&self) -> Run {
        let read = |name: &str| fs::read_to_string(self.logs.path().join(name)).unwrap_or_default();
        Run {
            args: self.args.clone(),
            root: self.root.clone(),
            stdout: read("stdout"),
            stderr: read("stderr"),
            code: self.status.and_then(|s| s.code()),
        }
    }

    /// Waits for `path` to appear (the command reached the point the test wants).
    #[track_caller]
    fn wait_for_file(&mut self, path: &Path) {
        let start = Instant::now();
        while !path.exists() {
            if !self.running() {
                panic!(
                    "cairn ended before {} appeared\n{}",
                    path.display(),
                    self.output()
                );
            }
            if start.elapsed() > Duration::from_secs(30) {
                panic!(
                    "{} did not appear within 30 s\n{}",
                    path.display(),
                    self.output()
                );
            }
            sleep(Duration::from_millis(10));
        }
    }

    /// Waits for the end (at most `limit`) and returns what it did.
    #[track_caller]
    fn finish(&mut self, limit: Duration) -> Run {
        if self.wait_for_exit(limit).is_none() {
            panic!("cairn still runs after {limit:?}\n{}", self.output());
        }
        self.output()
    }

    /// SIGKILLs cairn and everything it started.
    fn kill_all(&mut self) {
        self.signal(Signal::SIGKILL);
        let _ = self.wait_for_exit(Duration::from_secs(10));
        kill_tagged(&self.tag);
    }
}

impl Drop for Bg {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        kill_tagged(&self.tag);
    }
}

/// A cairn whose stdin, stdout and stderr are a pseudo-terminal, so it may ask questions.
struct Term {
    child: Child,
    tag: String,
    keyboard: File,
    screen: Arc<Mutex<Vec<u8>>>,
}

impl Term {
    fn spawn(dir: &Path, args: &[&str]) -> Term {
        let pty = nix::pty::openpty(None, None).expect("open a pseudo-terminal");
        let tag = new_tag();
        let mut cmd = Command::new(cairn_bin());
        cmd.current_dir(dir)
            .args(args)
            .env("NO_COLOR", "1")
            .env("XDG_CONFIG_HOME", dir.join(".config"))
            .env_remove("RUST_LOG")
            .env(TAG, &tag)
            .stdin(Stdio::from(pty.slave.try_clone().unwrap()))
            .stdout(Stdio::from(pty.slave.try_clone().unwrap()))
            .stderr(Stdio::from(pty.slave));
        let child = cmd.spawn().expect("start cairn");
        // Our copies of the terminal's slave side go with the command, so reading the master
        // ends when cairn does.
        drop(cmd);
        let keyboard = File::from(pty.master);
        let mut display = keyboard.try_clone().unwrap();
        let screen = Arc::new(Mutex::new(Vec::new()));
        let shown = Arc::clone(&screen);
        std::thread::spawn(move || {
            let mut buf = [0u8; 4096];
            while let Ok(n) = display.read(&mut buf) {
                if n == 0 {
                    break;
                }
                shown.lock().unwrap().extend_from_slice(&buf[..n]);
            }
        });
        Term {
            child,
            tag,
            keyboard,
            screen,
        }
    }

    fn screen(&self) -> String {
        String::from_utf8_lossy(&self.screen.lock().unwrap()).replace('\r', "")
    }

    /// Waits until the screen shows `needle` `count` times.
    #[track_caller]
    fn wait_for_text(&mut self, needle: &str, count: usize) {
        let start = Instant::now();
        while self.screen().matches(needle).count() < count {
            if let Ok(Some(status)) = self.child.try_wait() {
                sleep(Duration::from_millis(200));
                panic!(
                    "cairn ended ({status}) before showing {needle:?}\n{}",
                    self.screen()
                );
            }
            if start.elapsed() > Duration::from_secs(30) {
                panic!(
                    "cairn did not show {needle:?} within 30 s\n{}",
                    self.screen()
                );
            }
            sleep(Duration::from_millis(10));
        }
    }

    fn type_line(&mut self, line: &str) {
        self.keyboard
            .write_all(format!("{line}\n").as_bytes())
            .unwrap();
        self.keyboard.flush().unwrap();
    }

    /// Waits for the end; the exit code and everything the terminal showed.
    #[track_caller]
    fn finish(&mut self) -> (Option<i32>, String) {
        let start = Instant::now();
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                // Let the reader drain what is left on the terminal.
                sleep(Duration::from_millis(100));
                return (status.code(), self.screen());
            }
            if start.elapsed() > Duration::from_secs(30) {
                panic!("cairn did not end within 30 s\n{}", self.screen());
            }
            sleep(Duration::from_millis(10));
        }
    }
}

impl Drop for Term {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        kill_tagged(&self.tag);
    }
}

/// The latest record of a microstep in the state database: (status, detail).
fn latest_step(build_dir: &Path, slug: &str) -> (String, Option<String>) {
    let db = rusqlite::Connection::open(build_dir.join(".cairn/state.db")).unwrap();
    db.query_row(
        "SELECT status, detail FROM steps WHERE slug = ?1 ORDER BY id DESC LIMIT 1",
        [slug],
        |r| Ok((r.get(0)?, r.get(1)?)),
    )
    .unwrap_or_else(|e| panic!("no record of {slug}: {e}"))
}

/// Every file, directory and symlink under `dir`: relative path → type, permission bits and
/// contents (times and owners left out). Names in `skip` at the top are left out.
fn tree(dir: &Path, skip: &[&str]) -> BTreeMap<String, String> {
    let mut out = BTreeMap::new();
    for entry in walkdir::WalkDir::new(dir).min_depth(1).sort_by_file_name() {
        let entry = entry.unwrap();
        let rel = entry
            .path()
            .strip_prefix(dir)
            .unwrap()
            .display()
            .to_string();
        if skip
            .iter()
            .any(|s| rel == *s || rel.starts_with(&format!("{s}/")))
        {
            continue;
        }
        let meta = entry.path().symlink_metadata().unwrap();
        let mode = meta.permissions().mode() & 0o7777;
        let what = if meta.file_type().is_symlink() {
            format!("link -> {}", fs::read_link(entry.path()).unwrap().display())
        } else if meta.is_dir() {
            format!("dir {mode:o}")
        } else {
            format!(
                "file {mode:o} {:?}",
                String::from_utf8_lossy(&fs::read(entry.path()).unwrap())
            )
        };
        out.insert(rel, what);
    }
    out
}

/// A tarball's member list (sorted) and its extracted tree.
fn tarball(path: &Path) -> (Vec<String>, BTreeMap<String, String>) {
    let list = Command::new("tar")
        .arg("-tzf")
        .arg(path)
        .output()
        .expect("run tar");
    assert!(
        list.status.success(),
        "tar -t {}: {}",
        path.display(),
        String::from_utf8_lossy(&list.stderr)
    );
    let mut names: Vec<String> = String::from_utf8_lossy(&list.stdout)
        .lines()
        .map(str::to_string)
        .collect();
    names.sort();
    let into = tempfile::tempdir().unwrap();
    let x = Command::new("tar")
        .arg("-xzf")
        .arg(path)
        .arg("-C")
        .arg(into.path())
        .output()
        .expect("run tar");
    assert!(
        x.status.success(),
        "tar -x {}: {}",
        path.display(),
        String::from_utf8_lossy(&x.stderr)
    );
    (names, tree(into.path(), &[]))
}

/// The `cairn resume ...` command an interrupted cairn printed.
fn printed_resume_command(run: &Run) -> Vec<String> {
    let line = run
        .stderr
        .lines()
        .find_map(|l| {
            l.split_once("to resume, run: ")
                .map(|(_, cmd)| cmd.to_string())
        })
        .unwrap_or_else(|| panic!("no resume command printed\n{run}"));
    let words: Vec<String> = line.split_whitespace().map(str::to_string).collect();
    assert_eq!(words.first().map(String::as_str), Some("cairn"), "{line}");
    assert_eq!(words.get(1).map(String::as_str), Some("resume"), "{line}");
    words[1..].to_vec()
}

/// Warnings and messages may go to either stream: these look at both.
trait Said {
    fn said(&self, needle: &str) -> &Self;
    fn never_said(&self, needle: &str) -> &Self;
}

impl Said for Run {
    #[track_caller]
    fn said(&self, needle: &str) -> &Run {
        assert!(
            self.stdout.contains(needle) || self.stderr.contains(needle),
            "no {needle:?} in its output\n{self}"
        );
        self
    }

    #[track_caller]
    fn never_said(&self, needle: &str) -> &Run {
        assert!(
            !self.stdout.contains(needle) && !self.stderr.contains(needle),
            "{needle:?} in its output\n{self}"
        );
        self
    }
}

const SECONDS_5: Duration = Duration::from_secs(5);

// ---- Ctrl+C and SIGTERM ----

/// A recipe whose second microstep runs `sleep 30` in the foreground (unless `go` exists),
/// after writing the sleep's pid and a marker; each microstep writes a file of its own, and the
/// setup clean hook appends to clean.log.
fn sleeper() -> Test {
    Test::new().file(
        "recipe.yaml",
        r#"
        setup:
          - work:
              - one:
                  - on_setup_clean:
                      - exec_local: echo clean >> clean.log
                  - exec_local: echo one > one.txt
              - two:
                  - exec_local: |
                      if [ ! -e go ]; then
                        sh -c 'echo $$ > sleep.pid && touch started && exec sleep 30'
                      fi
                      echo two > two.txt
              - three:
                  - exec_local: echo three > three.txt
        "#,
    )
}

#[test]
fn sigint_mid_command_stops_the_group_records_interrupted_cleans_and_prints_resume() {
    let t = sleeper();
    let build = t.build_dir("recipe");
    let mut bg = Bg::spawn(t.path(), &["build", "recipe.yaml"], &[]);
    bg.wait_for_file(&build.join("started"));
    let sleep_pid: i32 = fs::read_to_string(build.join("sleep.pid"))
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    assert!(alive(sleep_pid));
    let sent = Instant::now();
    bg.signal(Signal::SIGINT);
    let run = bg.finish(Duration::from_secs(20));
    run.code(130);
    assert!(
        sent.elapsed() < SECONDS_5,
        "took {:?} to stop\n{run}",
        sent.elapsed()
    );
    assert_eq!(
        latest_step(&build, "setup/work/two").0,
        "interrupted",
        "{run}"
    );
    assert_eq!(latest_step(&build, "setup/work/one").0, "completed");
    assert!(
        gone_within(sleep_pid, Duration::from_secs(3)),
        "the sleep (pid {sleep_pid}) survived\n{run}"
    );
    assert_eq!(
        t.read("build/recipe/clean.log"),
        "clean\n",
        "the clean hook did not run\n{run}"
    );
    assert!(
        !t.exists("build/recipe/three.txt"),
        "it went on after the signal\n{run}"
    );
    let resume = printed_resume_command(&run);

    // The printed command resumes; the build then holds what an uninterrupted one does.
    fs::write(build.join("go"), "").unwrap();
    let words: Vec<&str> = resume.iter().map(String::as_str).collect();
    let resumed = t.cairn(&words);
    resumed.success().stdout_has("Already done");
    assert_eq!(
        resumed.steps(),
        [
            "setup/work/one",
            "setup/work/two",
            "setup/work/three",
            "setup/_clean_setup/_clean_0_one"
        ]
    );

    let whole = sleeper().file("build/recipe/go", "");
    whole.cairn(&["build", "recipe.yaml"]).success();
    let skip = [".cairn", "clean.log", "sleep.pid", "started"];
    assert_eq!(tree(&build, &skip), tree(&whole.build_dir("recipe"), &skip));
}

#[test]
fn sigterm_mid_command_exits_143_and_records_interrupted() {
    let t = sleeper();
    let build = t.build_dir("recipe");
    let mut bg = Bg::spawn(t.path(), &["build", "recipe.yaml"], &[]);
    bg.wait_for_file(&build.join("started"));
    let sleep_pid: i32 = fs::read_to_string(build.join("sleep.pid"))
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    bg.signal(Signal::SIGTERM);
    let run = bg.finish(Duration::from_secs(20));
    run.code(143).stderr_has("cairn resume recipe.yaml");
    assert_eq!(
        latest_step(&build, "setup/work/two").0,
        "interrupted",
        "{run}"
    );
    assert!(
        gone_within(sleep_pid, Duration::from_secs(3)),
        "the sleep survived\n{run}"
    );
    assert_eq!(t.read("build/recipe/clean.log"), "clean\n");
}

#[test]
fn second_sigint_kills_a_command_that_ignores_the_first_and_the_record_is_still_written() {
    let t = Test::new().file(
        "recipe.yaml",
        r#"
        setup:
          - work:
              - one:
                  - on_setup_clean:
                      - exec_local: echo clean >> clean.log
                  - exec_local: echo one > one.txt
              - stubborn:
                  - exec_local: |
                      trap 'echo ignoring SIGINT' INT
                      echo $BASHPID > loop.pid
                      # By the shell itself: a `touch` still running when the signal comes
                      # dies of it, and errexit would end the command for that, not the signal.
                      : > started
                      while :; do sleep 0.1 || true; done
        "#,
    );
    let build = t.build_dir("recipe");
    // A grace period longer than the test: only the second signal can end the command.
    let mut bg = Bg::spawn(
        t.path(),
        &["build", "recipe.yaml"],
        &[("CAIRN_GRACE_MS", "120000")],
    );
    bg.wait_for_file(&build.join("started"));
    let loop_pid: i32 = fs::read_to_string(build.join("loop.pid"))
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    bg.signal(Signal::SIGINT);
    sleep(Duration::from_millis(1500));
    assert!(
        bg.running(),
        "the first SIGINT ended a command that ignores it\n{}",
        bg.output()
    );
    assert!(alive(loop_pid));
    let sent = Instant::now();
    bg.signal(Signal::SIGINT);
    let run = bg.finish(Duration::from_secs(20));
    run.code(130)
        .stdout_has("ignoring SIGINT")
        .stderr_has("cairn resume");
    assert!(
        sent.elapsed() < SECONDS_5,
        "the second SIGINT took {:?}\n{run}",
        sent.elapsed()
    );
    assert_eq!(
        latest_step(&build, "setup/work/stubborn").0,
        "interrupted",
        "{run}"
    );
    assert!(
        gone_within(loop_pid, Duration::from_secs(3)),
        "the command survived\n{run}"
    );
}

#[test]
fn clean_hooks_after_ctrl_c_are_not_cut_short_by_the_grace_period() {
    let t = Test::new().file(
        "recipe.yaml",
        r#"
        setup:
          - work:
              - one:
                  - on_setup_clean:
                      - exec_local: sleep 1.5 && echo clean >> clean.log
                  - exec_local: touch started && sleep 30
        "#,
    );
    let build = t.build_dir("recipe");
    let mut bg = Bg::spawn(
        t.path(),
        &["build", "recipe.yaml"],
        &[("CAIRN_GRACE_MS", "300")],
    );
    bg.wait_for_file(&build.join("started"));
    bg.signal(Signal::SIGINT);
    let run = bg.finish(Duration::from_secs(20));
    run.code(130);
    assert_eq!(
        t.read("build/recipe/clean.log"),
        "clean\n",
        "the clean hook was killed\n{run}"
    );
}

#[test]
fn ctrl_c_while_a_checkpoint_is_created_is_an_interruption() {
    let t = Test::new()
        .file(
            "drivers/slow.yaml",
            r#"
            description: a driver whose create takes long
            enabled:
              - exec_local: "true"
            create:
              - exec_local: touch "{{build_dir}}/creating" && sleep 30
            apply:
              - exec_local: "true"
            list:
              - exec_local: "true"
            delete:
              - exec_local: "true"
            "#,
        )
        .file(
            "recipe.yaml",
            r#"
            checkpoint: slow
            setup:
              - work:
                  - one:
                      - on_setup_clean:
                          - exec_local: echo clean >> clean.log
                      - exec_local: echo one > one.txt
                  - two:
                      - exec_local: echo two > two.txt
            "#,
        );
    let build = t.build_dir("recipe");
    let mut bg = Bg::spawn(t.path(), &["build", "recipe.yaml", "-c"], &[]);
    bg.wait_for_file(&build.join("creating"));
    bg.signal(Signal::SIGINT);
    let run = bg.finish(Duration::from_secs(20));
    run.code(130).stderr_has("cairn resume recipe.yaml");
    assert_eq!(t.read("build/recipe/clean.log"), "clean\n", "{run}");
    assert!(!t.exists("build/recipe/two.txt"));
    let db = rusqlite::Connection::open(build.join(".cairn/state.db")).unwrap();
    let status: String = db
        .query_row(
            "SELECT status FROM runs ORDER BY id DESC LIMIT 1",
            [],
            |r| r.get(0),
        )
        .unwrap();
    assert_eq!(status, "interrupted");
}

#[test]
fn ctrl_c_at_the_failure_prompt_ends_the_build_as_interrupted() {
    let t = flaky(0);
    let mut term = Term::spawn(t.path(), &["build", "recipe.yaml"]);
    term.wait_for_text("Choice (", 1);
    let sent = Instant::now();
    let _ = kill(Pid::from_raw(term.child.id() as i32), Signal::SIGINT);
    let (code, screen) = term.finish();
    assert_eq!(code, Some(130), "{screen}");
    assert!(sent.elapsed() < SECONDS_5, "{:?}", sent.elapsed());
    assert!(screen.contains("cairn resume recipe.yaml"), "{screen}");
    assert!(!t.exists("build/recipe/next.txt"));
    // The microstep failed before the question: that record stays.
    assert_eq!(
        latest_step(&t.build_dir("recipe"), "setup/work/flaky").0,
        "failed"
    );
}

#[test]
fn an_interrupted_atomic_microstep_is_undone() {
    let t = Test::new();
    let out = t.path().join("outside");
    fs::create_dir_all(&out).unwrap();
    let t = t.file(
        "recipe.yaml",
        &r#"
        setup:
          - work:
              - risky:
                  - atomic: true
                  - rollback:
                      - exec_local: rm -f @OUT@/created
                  - exec_local: touch @OUT@/created && touch started && sleep 30
        "#
        .replace("@OUT@", &out.display().to_string()),
    );
    let build = t.build_dir("recipe");
    let mut bg = Bg::spawn(t.path(), &["build", "recipe.yaml"], &[]);
    bg.wait_for_file(&build.join("started"));
    bg.signal(Signal::SIGINT);
    let run = bg.finish(Duration::from_secs(20));
    run.code(130);
    assert!(!out.join("created").exists(), "{run}");
    let (status, detail) = latest_step(&build, "setup/work/risky");
    assert_eq!(status, "interrupted");
    assert!(
        detail
            .unwrap_or_default()
            .contains("atomic: undone by its rollback commands")
    );
}

// ---- a killed cairn ----

/// One microstep done, the second blocks on `go` after logging each start to two.log.
fn blocker() -> Test {
    Test::new().file(
        "recipe.yaml",
        r#"
        setup:
          - work:
              - one:
                  - exec_local: echo run >> one.log
              - two:
                  - exec_local: |
                      echo run >> two.log
                      touch started
                      while [ ! -e go ]; do sleep 0.05; done
                      rm -f started
              - three:
                  - exec_local: echo run >> three.log
        "#,
    )
}

/// Starts `cairn build`, waits until it blocks in `two`, SIGKILLs it and what it started.
fn kill_during_two(t: &Test) {
    let build = t.build_dir("recipe");
    let _ = fs::remove_file(build.join("go"));
    let _ = fs::remove_file(build.join("started"));
    let mut bg = Bg::spawn(t.path(), &["build", "recipe.yaml"], &[]);
    bg.wait_for_file(&build.join("started"));
    bg.kill_all();
    assert_eq!(
        bg.status.and_then(|s| s.code()),
        None,
        "cairn was not killed\n{}",
        bg.output()
    );
    fs::write(build.join("go"), "").unwrap();
}

#[test]
fn sigkill_is_detected_by_the_next_build_which_resumes_without_a_terminal_or_with_yes() {
    let t = blocker();
    let lines = |f: &str| t.read(&format!("build/recipe/{f}")).lines().count();

    kill_during_two(&t);
    // The killed run still says "running" (started) for two.
    assert_eq!(
        latest_step(&t.build_dir("recipe"), "setup/work/two").0,
        "started"
    );
    // No terminal: the next build says what happened and resumes.
    let run = t.cairn(&["build", "recipe.yaml"]);
    run.success();
    let all = format!("{}{}", run.stdout, run.stderr);
    for needle in [
        "was interrupted",
        "the last setup/work/one",
        "it was running setup/work/two",
        "Resuming it",
    ] {
        assert!(all.contains(needle), "no {needle:?}\n{run}");
    }
    assert_eq!(
        (lines("one.log"), lines("two.log"), lines("three.log")),
        (1, 2, 1),
        "{run}"
    );

    // With --yes, too.
    kill_during_two(&t);
    let run = t.cairn(&["build", "recipe.yaml", "--yes"]);
    run.success()
        .said("it was running setup/work/two")
        .said("Resuming it");
    assert_eq!(
        (lines("one.log"), lines("two.log"), lines("three.log")),
        (2, 4, 2),
        "{run}"
    );
}

#[test]
fn sigkill_then_restart_starts_over() {
    let t = blocker();
    kill_during_two(&t);
    let run = t.cairn(&["build", "recipe.yaml", "--restart"]);
    run.success().said("was interrupted").said("Starting over");
    run.stdout_lacks("Already done");
    assert_eq!(t.read("build/recipe/one.log"), "run\nrun\n", "{run}");
    assert_eq!(t.read("build/recipe/three.log"), "run\n");
}

#[test]
fn interrupted_run_on_a_terminal_asks_resume_restart_or_roll_back() {
    let t = blocker();
    kill_during_two(&t);
    let mut term = Term::spawn(t.path(), &["build", "recipe.yaml"]);
    term.wait_for_text("Choice (", 1);
    let shown = term.screen();
    for needle in [
        "it was running setup/work/two",
        "resume it",
        "start over",
        "roll back",
    ] {
        assert!(shown.contains(needle), "no {needle:?}\n{shown}");
    }
    term.type_line("s");
    let (code, screen) = term.finish();
    assert_eq!(code, Some(0), "{screen}");
    assert_eq!(t.read("build/recipe/one.log"), "run\nrun\n", "{screen}");
}

#[test]
fn interrupted_run_on_a_terminal_can_be_rolled_back_or_resumed() {
    let t = Test::new();
    let out = t.path().join("outside");
    fs::create_dir_all(&out).unwrap();
    let t = t.file(
        "recipe.yaml",
        &r#"
        setup:
          - work:
              - first:
                  - rollback:
                      - exec_local: rm -f @OUT@/first && echo first >> @OUT@/order.log
                  - exec_local: touch @OUT@/first
              - two:
                  - rollback:
                      - exec_local: rm -f @OUT@/two && echo two >> @OUT@/order.log
                  - exec_local: |
                      touch @OUT@/two started
                      while [ ! -e go ]; do sleep 0.05; done
                      rm -f started
        "#
        .replace("@OUT@", &out.display().to_string()),
    );
    // Roll back: both journaled microsteps are undone, the interrupted one first.
    kill_during_two(&t);
    let mut term = Term::spawn(t.path(), &["build", "recipe.yaml"]);
    term.wait_for_text("Choice (", 1);
    term.type_line("b");
    let (code, screen) = term.finish();
    assert_eq!(code, Some(0), "{screen}");
    assert_eq!(t.read("outside/order.log"), "two\nfirst\n", "{screen}");
    assert!(!out.join("first").exists() && !out.join("two").exists());
    // Nothing is left to resume: the next build starts afresh without a word about it.
    let next = t.cairn(&["build", "recipe.yaml"]);
    next.success().never_said("was interrupted");
    assert!(out.join("first").exists() && out.join("two").exists());

    // Resume: the completed microstep is not run again.
    kill_during_two(&t);
    let mut term = Term::spawn(t.path(), &["build", "recipe.yaml"]);
    term.wait_for_text("Choice (", 1);
    term.type_line("r");
    let (code, screen) = term.finish();
    assert_eq!(code, Some(0), "{screen}");
    assert!(
        screen.contains("setup/work/first\n --> Already done"),
        "{screen}"
    );
    assert!(out.join("first").exists() && out.join("two").exists());
}

/// A small LCG (Knuth's MMIX constants): reproducible random delays without another crate.
struct Lcg(u64);

impl Lcg {
    fn below(&mut self, n: u64) -> u64 {
        self.0 = self
            .0
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        (self.0 >> 33) % n
    }
}

#[test]
fn sigkill_at_30_random_moments_then_resume_gives_the_clean_build_and_a_sound_database() {
    let root = repo_root();
    let work = tempfile::Builder::new()
        .prefix("cairn-crash-")
        .tempdir()
        .unwrap();
    let clean = work.path().join("clean");
    let crashed = work.path().join("crashed");
    let build_args = |dir: &Path| -> Vec<String> {
        [
            "build",
            "recipes/hello.yaml",
            "-c",
            "-b",
            &dir.display().to_string(),
            "--yes",
        ]
        .map(String::from)
        .to_vec()
    };
    let run_to_end = |args: &[String]| -> Run {
        let strs: Vec<&str> = args.iter().map(String::as_str).collect();
        let mut bg = Bg::spawn(&root, &strs, &[]);
        bg.finish(Duration::from_secs(60))
    };
    let timed = Instant::now();
    run_to_end(&build_args(&clean)).success();
    // Kills land anywhere in a from-scratch build, however fast this machine makes it.
    let span = (timed.elapsed().as_millis() as u64).clamp(60, 2_000);
    let expected_rootfs = tree(&clean.join("rootfs"), &[]);
    let expected_tarball = tarball(&clean.join("hello.tar.gz"));

    let seed = std::env::var("CAIRN_CRASH_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(20_240_611u64);
    eprintln!("crash loop seed {seed} (set CAIRN_CRASH_SEED to replay)");
    let mut rng = Lcg(seed);
    let (mut killed, mut finished) = (0, 0);
    for round in 0..30 {
        let delay = rng.below(span);
        let args = build_args(&crashed);
        let strs: Vec<&str> = args.iter().map(String::as_str).collect();
        let mut bg = Bg::spawn(&root, &strs, &[]);
        sleep(Duration::from_millis(delay));
        bg.kill_all();
        let run = bg.output();
        match run.code {
            None => killed += 1,
            Some(0) => {
                // It finished first: check it, then drop the checkpoints so that the next
                // rounds crash all over a build again.
                finished += 1;
                assert_eq!(
                    tree(&crashed.join("rootfs"), &[]),
                    expected_rootfs,
                    "round {round} (seed {seed})\n{run}"
                );
                assert_eq!(
                    tarball(&crashed.join("hello.tar.gz")),
                    expected_tarball,
                    "round {round} (seed {seed})"
                );
                let clear = [
                    "clear",
                    "recipes/hello.yaml",
                    "-b",
                    &crashed.display().to_string(),
                ]
                .map(String::from);
                run_to_end(&clear).success();
            }
            Some(_) => panic!(
                "round {round} (seed {seed}, killed after {delay} ms) failed on its own\n{run}"
            ),
        }
    }
    eprintln!("crash loop: {killed} runs killed, {finished} finished first");
    assert!(
        killed >= 15,
        "only {killed} of 30 runs were killed mid-build: the delays miss the build"
    );

    let last = run_to_end(&build_args(&crashed));
    last.success().stdout_has("Successfully built 'hello.yaml'");
    assert_eq!(
        tree(&crashed.join("rootfs"), &[]),
        expected_rootfs,
        "seed {seed}\n{last}"
    );
    assert_eq!(
        tarball(&crashed.join("hello.tar.gz")),
        expected_tarball,
        "seed {seed}"
    );
    let db = rusqlite::Connection::open(crashed.join(".cairn/state.db")).unwrap();
    let check: String = db
        .query_row("PRAGMA integrity_check", [], |r| r.get(0))
        .unwrap();
    assert_eq!(check, "ok");
    let unfinished: i64 = db
        .query_row(
            "SELECT COUNT(*) FROM runs WHERE status = 'running'",
            [],
            |r| r.get(0),
        )
        .unwrap();
    assert_eq!(unfinished, 0, "a killed run is still marked running");
}

#[test]
fn sigint_at_random_moments_exits_130_leaves_no_process_and_resume_gives_the_clean_build() {
    use std::os::unix::process::ExitStatusExt;
    let root = repo_root();
    let work = tempfile::Builder::new()
        .prefix("cairn-sigint-")
        .tempdir()
        .unwrap();
    let clean = work.path().join("clean");
    let interrupted = work.path().join("interrupted");
    let build = |dir: &Path| -> Bg {
        let dir = dir.display().to_string();
        let args = ["build", "recipes/hello.yaml", "-c", "-b", &dir, "--yes"];
        Bg::spawn(&root, &args, &[])
    };
    let timed = Instant::now();
    build(&clean).finish(Duration::from_secs(60)).success();
    // Signals land anywhere in a from-scratch build, however fast this machine makes it.
    let span = (timed.elapsed().as_millis() as u64).clamp(60, 2_000);

    let seed = std::env::var("CAIRN_CRASH_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(4_242u64);
    eprintln!("SIGINT loop seed {seed} (set CAIRN_CRASH_SEED to replay)");
    let mut rng = Lcg(seed);
    let mut interrupts = 0;
    for round in 0..20 {
        let delay = rng.below(span);
        let mut bg = build(&interrupted);
        sleep(Duration::from_millis(delay));
        bg.signal(Signal::SIGINT);
        let status = bg
            .wait_for_exit(Duration::from_secs(20))
            .unwrap_or_else(|| panic!("round {round}: still running\n{}", bg.output()));
        let run = bg.output();
        match (status.code(), status.signal()) {
            (Some(130), _) => {
                interrupts += 1;
                run.stderr_has("to resume, run: cairn resume");
            }
            (Some(0), _) => {
                // Finished before the signal: start the next round from scratch, or every
                // later build would only use its checkpoints and end at once.
                let dir = interrupted.display().to_string();
                let clear = ["clear", "recipes/hello.yaml", "-b", &dir];
                Bg::spawn(&root, &clear, &[])
                    .finish(Duration::from_secs(30))
                    .success();
            }
            // Before its handlers are installed, cairn dies of SIGINT like any program: it has
            // started nothing yet.
            (None, Some(2)) => {}
            _ => panic!("round {round} (seed {seed}, SIGINT after {delay} ms): {status}\n{run}"),
        }
        // Everything it started ended with it.
        let start = Instant::now();
        while !tagged(&bg.tag).is_empty() && start.elapsed() < Duration::from_secs(3) {
            sleep(Duration::from_millis(20));
        }
        assert!(
            tagged(&bg.tag).is_empty(),
            "round {round} (seed {seed}): processes survive cairn\n{run}"
        );
        if interrupted.join(".cairn/state.db").exists() {
            let db = rusqlite::Connection::open(interrupted.join(".cairn/state.db")).unwrap();
            let running: i64 = db
                .query_row(
                    "SELECT COUNT(*) FROM runs WHERE status = 'running'",
                    [],
                    |r| r.get(0),
                )
                .unwrap();
            assert_eq!(
                running, 0,
                "round {round} (seed {seed}): a run was left running\n{run}"
            );
        }
    }
    assert!(interrupts >= 5, "only {interrupts} runs were interrupted");
    let last = build(&interrupted).finish(Duration::from_secs(60));
    last.success();
    assert_eq!(
        tree(&interrupted.join("rootfs"), &[]),
        tree(&clean.join("rootfs"), &[]),
        "seed {seed}"
    );
    assert_eq!(
        tarball(&interrupted.join("hello.tar.gz")),
        tarball(&clean.join("hello.tar.gz")),
        "seed {seed}"
    );
}

// ---- installer-mode resume ----

#[test]
fn installer_resume_skips_completed_microsteps_with_the_same_id_and_reruns_the_interrupted_one() {
    let t = blocker();
    let build = t.build_dir("recipe");
    let mut bg = Bg::spawn(t.path(), &["build", "recipe.yaml"], &[]);
    bg.wait_for_file(&build.join("started"));
    bg.signal(Signal::SIGINT);
    bg.finish(Duration::from_secs(20)).code(130);
    fs::write(build.join("go"), "").unwrap();

    let run = t.cairn(&["resume", "recipe.yaml"]);
    run.success();
    assert!(
        run.stdout
            .contains("Step 1 : setup/work/one\n --> Already done"),
        "{run}"
    );
    assert_eq!(
        t.read("build/recipe/one.log"),
        "run\n",
        "one ran again\n{run}"
    );
    assert_eq!(
        t.read("build/recipe/two.log"),
        "run\nrun\n",
        "two was not re-run\n{run}"
    );
    assert_eq!(t.read("build/recipe/three.log"), "run\n");

    // A microstep whose ID changed since it completed runs again.
    let _ = fs::remove_file(build.join("go"));
    let mut bg = Bg::spawn(t.path(), &["build", "recipe.yaml"], &[]);
    bg.wait_for_file(&build.join("started"));
    bg.signal(Signal::SIGINT);
    bg.finish(Duration::from_secs(20)).code(130);
    fs::write(build.join("go"), "").unwrap();
    t.rewrite(
        "recipe.yaml",
        &t.read("recipe.yaml")
            .replace("echo run >> one.log", "echo run again >> one.log"),
    );
    let run = t.cairn(&["resume", "recipe.yaml"]);
    run.success().stdout_lacks("Already done");
    assert_eq!(
        t.read("build/recipe/one.log"),
        "run\nrun\nrun again\n",
        "{run}"
    );
}

// ---- rollback ----

/// Three microsteps create files in `outside/` (not in any rootfs); their rollback commands
/// remove them and log their names to `outside/order.log`.
fn three_undoable(rollback_first: &str) -> Test {
    let t = Test::new();
    let out = t.path().join("outside");
    fs::create_dir_all(&out).unwrap();
    let step = |name: &str, undo: &str| {
        format!(
            "
              - {name}:
                  - rollback:
                      - exec_local: {undo}
                  - exec_local: touch @OUT@/{name}
"
        )
    };
    let recipe = format!(
        "setup:\n  - work:{}{}{}",
        step("first", rollback_first),
        step(
            "second",
            "rm @OUT@/second && echo second >> @OUT@/order.log"
        ),
        step("third", "rm @OUT@/third && echo third >> @OUT@/order.log"),
    );
    t.file(
        "recipe.yaml",
        &recipe.replace("@OUT@", &out.display().to_string()),
    )
}

fn present(t: &Test) -> Vec<String> {
    ["first", "second", "third"]
        .into_iter()
        .filter(|f| t.exists(&format!("outside/{f}")))
        .map(String::from)
        .collect()
}

fn order(t: &Test) -> Vec<String> {
    if !t.exists("outside/order.log") {
        return Vec::new();
    }
    t.read("outside/order.log")
        .lines()
        .map(str::to_string)
        .collect()
}

#[test]
fn rollback_dry_run_then_to_a_slug_then_full_undoes_newest_first_and_rebuilds_what_it_undid() {
    let t = three_undoable("rm @OUT@/first && echo first >> @OUT@/order.log");
    t.cairn(&["build", "recipe.yaml"]).success();
    assert_eq!(present(&t), ["first", "second", "third"]);

    let dry = t.cairn(&["rollback", "recipe.yaml", "--full", "--dry-run"]);
    dry.success()
        .said("Would roll back setup/work/third")
        .said("nothing was changed");
    assert_eq!(present(&t), ["first", "second", "third"], "{dry}");
    assert!(order(&t).is_empty(), "{dry}");

    let to = t.cairn(&["rollback", "recipe.yaml", "--to", "setup/work/first"]);
    to.success();
    assert_eq!(present(&t), ["first"], "{to}");
    assert_eq!(order(&t), ["third", "second"], "{to}");

    // The next run does the rolled-back microsteps again, and only them.
    let again = t.cairn(&["resume", "recipe.yaml"]);
    again.success();
    assert!(
        again.stdout.contains("setup/work/first\n --> Already done"),
        "{again}"
    );
    assert_eq!(present(&t), ["first", "second", "third"], "{again}");

    let full = t.cairn(&["rollback", "recipe.yaml", "--full"]);
    full.success();
    assert!(present(&t).is_empty(), "{full}");
    assert_eq!(
        order(&t),
        ["third", "second", "third", "second", "first"],
        "{full}"
    );

    // Nothing is left to undo, and a build does everything again.
    t.cairn(&["rollback", "recipe.yaml", "--full"])
        .success()
        .said("Nothing to roll back");
    t.cairn(&["build", "recipe.yaml"]).success();
    assert_eq!(present(&t), ["first", "second", "third"]);
}

#[test]
fn rollback_undoes_a_microstep_once_even_after_it_ran_in_several_builds() {
    let t = three_undoable("rm @OUT@/first && echo first >> @OUT@/order.log");
    t.cairn(&["build", "recipe.yaml"]).success();
    t.cairn(&["build", "recipe.yaml"]).success();
    let dry = t.cairn(&["rollback", "recipe.yaml", "--full", "--dry-run"]);
    dry.success();
    let said = format!("{}{}", dry.stdout, dry.stderr);
    assert_eq!(said.matches("Would roll back").count(), 3, "{dry}");
    let full = t.cairn(&["rollback", "recipe.yaml", "--full"]);
    full.success();
    assert!(present(&t).is_empty(), "{full}");
    assert_eq!(order(&t), ["third", "second", "first"], "{full}");
    t.cairn(&["rollback", "recipe.yaml", "--full"])
        .success()
        .said("Nothing to roll back");
}

#[test]
fn a_failing_rollback_command_stops_the_rollback_and_keeps_the_rest_journaled() {
    let t = three_undoable("echo first >> @OUT@/order.log && false");
    t.cairn(&["build", "recipe.yaml"]).success();
    let run = t.cairn(&["rollback", "recipe.yaml", "--full"]);
    run.code(1)
        .stderr_has("rolling back setup/work/first failed");
    assert_eq!(order(&t), ["third", "second", "first"], "{run}");
    assert_eq!(present(&t), ["first"]);
    // Still journaled: the next rollback tries it again, and only it.
    let dry = t.cairn(&["rollback", "recipe.yaml", "--full", "--dry-run"]);
    dry.success()
        .said("Would roll back setup/work/first")
        .never_said("setup/work/second");
}

// ---- atomic microsteps ----

#[test]
fn atomic_failure_runs_its_rollback_commands_at_once() {
    let t = Test::new();
    let out = t.path().join("outside");
    fs::create_dir_all(&out).unwrap();
    let t = t.file(
        "recipe.yaml",
        &r#"
        setup:
          - work:
              - risky:
                  - atomic: true
                  - rollback:
                      - exec_local: rm -f @OUT@/created
                  - exec_local: touch @OUT@/created
                  - exec_local: exit 4
              - after:
                  - exec_local: touch @OUT@/after
        "#
        .replace("@OUT@", &out.display().to_string()),
    );
    let run = t.cairn(&["build", "recipe.yaml"]);
    run.code(1).said("Undoing setup/work/risky");
    assert!(
        !out.join("created").exists(),
        "the atomic microstep was not undone\n{run}"
    );
    assert!(!out.join("after").exists());
    let (status, detail) = latest_step(&t.build_dir("recipe"), "setup/work/risky");
    assert_eq!(status, "failed");
    assert!(
        detail
            .as_deref()
            .unwrap_or("")
            .contains("atomic: undone by its rollback commands"),
        "{detail:?}"
    );
    // Undone already: nothing is left for `cairn rollback`.
    t.cairn(&["rollback", "recipe.yaml", "--full"])
        .success()
        .said("Nothing to roll back");
}

#[test]
fn atomic_failure_without_rollback_commands_applies_the_previous_checkpoint() {
    let t = Test::new().file(
        "recipe.yaml",
        r#"
        checkpoint: copy
        global:
          rootfs: "{{build_dir}}/rootfs"
        setup:
          - work:
              - first:
                  - exec_local: mkdir -p "{{rootfs}}" && echo before > "{{rootfs}}/a"
              - risky:
                  - atomic: true
                  - exec_local: echo changed > "{{rootfs}}/a" && touch "{{rootfs}}/b"
                  - exec_local: exit 3
        "#,
    );
    let build = t.build_dir("recipe");
    let run = t.cairn(&["build", "recipe.yaml", "-c"]);
    run.code(1);
    assert_eq!(
        tree(&build.join("rootfs"), &[]).keys().collect::<Vec<_>>(),
        ["a"],
        "{run}"
    );
    assert_eq!(t.read("build/recipe/rootfs/a"), "before\n", "{run}");
    let (status, detail) = latest_step(&build, "setup/work/risky");
    assert_eq!(status, "failed");
    let detail = detail.unwrap_or_default();
    assert!(
        detail.contains("atomic: undone by applying checkpoint")
            && detail.contains("setup/work/first"),
        "{detail}"
    );
}

// ---- state files ----

#[test]
fn resume_refuses_when_a_state_file_changed_naming_it_until_force() {
    let t = Test::new();
    let conf = t.path().join("outside/app.conf");
    fs::create_dir_all(conf.parent().unwrap()).unwrap();
    let t = t.file(
        "recipe.yaml",
        &r#"
        setup:
          - work:
              - configure:
                  - state_files:
                      - @CONF@
                  - exec_local: echo setting=1 > @CONF@
              - install:
                  - exec_local: |
                      touch started
                      while [ ! -e go ]; do sleep 0.05; done
                      echo installed > installed.txt
        "#
        .replace("@CONF@", &conf.display().to_string()),
    );
    let build = t.build_dir("recipe");
    let mut bg = Bg::spawn(t.path(), &["build", "recipe.yaml"], &[]);
    bg.wait_for_file(&build.join("started"));
    // Recorded right after the microstep that wrote it.
    let db = rusqlite::Connection::open(build.join(".cairn/state.db")).unwrap();
    let recorded: String = db
        .query_row(
            "SELECT slug FROM state_files WHERE path = ?1",
            [conf.display().to_string()],
            |r| r.get(0),
        )
        .unwrap();
    assert_eq!(recorded, "setup/work/configure");
    bg.signal(Signal::SIGINT);
    bg.finish(Duration::from_secs(20)).code(130);

    fs::write(&conf, "setting=2\n").unwrap();
    fs::write(build.join("go"), "").unwrap();
    let conf_name = conf.display().to_string();
    // `resume`, and a `build` that resumes the interrupted run on its own, both refuse.
    for args in [["resume", "recipe.yaml"], ["build", "recipe.yaml"]] {
        let refused = t.cairn(&args);
        refused
            .code(4)
            .stderr_has(&conf_name)
            .stderr_has("setup/work/configure")
            .stderr_has("--force");
        assert!(!build.join("installed.txt").exists(), "{refused}");
    }
    // A refused resume is no run: the next build still sees the interrupted one.
    let forced = t.cairn(&["build", "recipe.yaml", "--force"]);
    forced.success().said("was interrupted");
    assert!(
        forced
            .stdout
            .contains("setup/work/configure\n --> Already done"),
        "{forced}"
    );
    assert_eq!(
        t.read("outside/app.conf"),
        "setting=2\n",
        "the edited file was overwritten\n{forced}"
    );
    assert!(build.join("installed.txt").exists());
}

#[test]
fn resume_with_force_proceeds_past_a_changed_state_file() {
    let t = Test::new();
    let conf = t.path().join("outside/app.conf");
    fs::create_dir_all(conf.parent().unwrap()).unwrap();
    let t = t.file(
        "recipe.yaml",
        &r#"
        setup:
          - work:
              - configure:
                  - state_files: ["@DIR@/*.conf"]
                  - exec_local: echo setting=1 > @DIR@/app.conf
              - install:
                  - exec_local: |
                      touch started
                      while [ ! -e go ]; do sleep 0.05; done
                      echo installed > installed.txt
        "#
        .replace("@DIR@", &conf.parent().unwrap().display().to_string()),
    );
    let build = t.build_dir("recipe");
    let mut bg = Bg::spawn(t.path(), &["build", "recipe.yaml"], &[]);
    bg.wait_for_file(&build.join("started"));
    bg.signal(Signal::SIGTERM);
    bg.finish(Duration::from_secs(20)).code(143);
    fs::write(&conf, "edited\n").unwrap();
    fs::write(build.join("go"), "").unwrap();
    t.cairn(&["resume", "recipe.yaml"])
        .code(4)
        .stderr_has(&conf.display().to_string());
    let forced = t.cairn(&["resume", "recipe.yaml", "--force"]);
    forced.success();
    assert!(build.join("installed.txt").exists(), "{forced}");
    assert_eq!(t.read("outside/app.conf"), "edited\n");
}

#[test]
fn resuming_from_a_checkpoint_refuses_when_a_state_file_outside_it_changed() {
    let t = Test::new();
    let conf = t.path().join("outside/app.conf");
    fs::create_dir_all(conf.parent().unwrap()).unwrap();
    let t = t.file(
        "recipe.yaml",
        &r#"
        checkpoint: copy
        global:
          rootfs: "{{build_dir}}/rootfs"
        setup:
          - work:
              - configure:
                  - state_files: ["@CONF@", "{{rootfs}}/etc/app.conf"]
                  - exec_local: |
                      mkdir -p "{{rootfs}}/etc"
                      echo inside=1 > "{{rootfs}}/etc/app.conf"
                      echo setting=1 > @CONF@
              - install:
                  - exec_local: |
                      echo broken > "{{rootfs}}/etc/app.conf"
                      touch started
                      while [ ! -e go ]; do sleep 0.05; done
                      echo installed > installed.txt
        "#
        .replace("@CONF@", &conf.display().to_string()),
    );
    let build = t.build_dir("recipe");
    let mut bg = Bg::spawn(t.path(), &["build", "recipe.yaml", "-c"], &[]);
    bg.wait_for_file(&build.join("started"));
    bg.signal(Signal::SIGINT);
    bg.finish(Duration::from_secs(20)).code(130);
    fs::write(build.join("go"), "").unwrap();

    // Inside the checkpoint's target, the apply restores the file: no drift.
    let resumed = t.cairn(&["resume", "recipe.yaml"]);
    resumed.success();
    assert!(build.join("installed.txt").exists(), "{resumed}");

    // Outside it, a change is drift.
    fs::remove_file(build.join("installed.txt")).unwrap();
    fs::write(&conf, "edited\n").unwrap();
    t.rewrite(
        "recipe.yaml",
        &t.read("recipe.yaml")
            .replace("installed >", "installed again >"),
    );
    let refused = t.cairn(&["build", "recipe.yaml", "-c"]);
    refused
        .code(4)
        .stderr_has(&conf.display().to_string())
        .stderr_has("--force");
    assert!(!build.join("installed.txt").exists(), "{refused}");
    t.cairn(&["build", "recipe.yaml", "-c", "--force"])
        .success();
    assert_eq!(t.read("build/recipe/installed.txt"), "installed again\n");
}

// ---- verify ----

fn verified(expect: &str) -> Test {
    Test::new().file(
        "recipe.yaml",
        &r#"
        setup:
          - work:
              - greet:
                  - exec_local: echo hello > greeting.txt
                  - verify:
                      - cmd: cat greeting.txt
                        expect: "@EXPECT@"
                        context: local
              - after:
                  - exec_local: touch after.txt
        "#
        .replace("@EXPECT@", expect),
    )
}

#[test]
fn verify_mismatch_fails_the_microstep_showing_expected_and_got() {
    let t = verified("world");
    let run = t.cairn(&["build", "recipe.yaml"]);
    run.code(1)
        .stderr_has("verification of setup/work/greet failed")
        .stderr_has("\"world\"")
        .stderr_has("\"hello\"");
    assert_eq!(
        latest_step(&t.build_dir("recipe"), "setup/work/greet").0,
        "failed"
    );
    assert!(!t.exists("build/recipe/after.txt"), "{run}");
}

#[test]
fn verify_match_passes() {
    let t = verified("hell");
    t.cairn(&["build", "recipe.yaml"]).success();
    assert_eq!(
        latest_step(&t.build_dir("recipe"), "setup/work/greet").0,
        "completed"
    );
    assert!(t.exists("build/recipe/after.txt"));
}

// ---- the lock ----

#[test]
fn a_second_cairn_on_the_same_build_dir_stops_at_once_naming_the_holder() {
    let t = blocker();
    let build = t.build_dir("recipe");
    let mut first = Bg::spawn(t.path(), &["build", "recipe.yaml"], &[]);
    first.wait_for_file(&build.join("started"));
    let holder = format!("pid {}", first.pid());
    for args in [
        &["build", "recipe.yaml"][..],
        &["resume", "recipe.yaml"],
        &["rollback", "recipe.yaml", "--full"],
    ] {
        let started = Instant::now();
        let second = t.cairn(args);
        second.code(5).stderr_has(&holder).stderr_has("in use");
        assert!(
            started.elapsed() < SECONDS_5,
            "{:?}\n{second}",
            started.elapsed()
        );
    }
    fs::write(build.join("go"), "").unwrap();
    first.finish(Duration::from_secs(20)).success();
    assert_eq!(
        t.read("build/recipe/one.log"),
        "run\n",
        "the locked-out build ran something"
    );
    // Free again.
    t.cairn(&["build", "recipe.yaml"]).success();
}

#[test]
fn clear_and_prune_wait_their_turn_while_listing_only_reads() {
    let t = Test::new().file(
        "recipe.yaml",
        r#"
        checkpoint: copy
        global:
          rootfs: "{{build_dir}}/rootfs"
        setup:
          - work:
              - one:
                  - exec_local: mkdir -p "{{rootfs}}" && echo one > "{{rootfs}}/one"
              - two:
                  - exec_local: |
                      touch started
                      while [ ! -e go ]; do sleep 0.05; done
        "#,
    );
    let build = t.build_dir("recipe");
    let mut first = Bg::spawn(t.path(), &["build", "recipe.yaml", "-c"], &[]);
    first.wait_for_file(&build.join("started"));
    let holder = format!("pid {}", first.pid());
    for args in [
        &["clear", "recipe.yaml"][..],
        &["checkpoints", "recipe.yaml", "--prune"],
    ] {
        t.cairn(args).code(5).stderr_has(&holder);
    }
    // Listing reads while the build runs, and sees the checkpoint it made.
    t.cairn(&["checkpoints", "recipe.yaml"])
        .success()
        .stdout_has("setup/work/one");
    fs::write(build.join("go"), "").unwrap();
    first.finish(Duration::from_secs(20)).success();
    t.cairn(&["clear", "recipe.yaml"]).success();
    t.cairn(&["checkpoints", "recipe.yaml"])
        .success()
        .stdout_lacks("setup/work/one");
}

// ---- the failure prompt ----

/// `flaky` fails until its counter reaches `succeed_at` (0: always fails); `next` follows.
fn flaky(succeed_at: u32) -> Test {
    Test::new().file(
        "recipe.yaml",
        &r#"
        setup:
          - work:
              - flaky:
                  - exec_local: |
                      n=$(cat counter 2>/dev/null || echo 0)
                      n=$((n + 1))
                      echo $n > counter
                      [ @AT@ -gt 0 ] && [ $n -ge @AT@ ]
              - next:
                  - exec_local: touch next.txt
        "#
        .replace("@AT@", &succeed_at.to_string()),
    )
}

#[test]
fn failure_prompt_retry_runs_the_microstep_again() {
    let t = flaky(2);
    let mut term = Term::spawn(t.path(), &["build", "recipe.yaml"]);
    term.wait_for_text("Choice (", 1);
    assert!(
        term.screen().contains("Microstep setup/work/flaky failed"),
        "{}",
        term.screen()
    );
    term.type_line("r");
    let (code, screen) = term.finish();
    assert_eq!(code, Some(0), "{screen}");
    assert_eq!(t.read("build/recipe/counter"), "2\n");
    assert!(t.exists("build/recipe/next.txt"), "{screen}");
    assert_eq!(
        latest_step(&t.build_dir("recipe"), "setup/work/flaky").0,
        "completed"
    );
}

#[test]
fn failure_prompt_continue_goes_on_with_the_next_microstep() {
    let t = flaky(0);
    let mut term = Term::spawn(t.path(), &["build", "recipe.yaml"]);
    term.wait_for_text("Choice (", 1);
    term.type_line("c");
    let (code, screen) = term.finish();
    assert_eq!(code, Some(0), "{screen}");
    assert_eq!(t.read("build/recipe/counter"), "1\n");
    assert!(t.exists("build/recipe/next.txt"), "{screen}");
    assert_eq!(
        latest_step(&t.build_dir("recipe"), "setup/work/flaky").0,
        "failed"
    );
}

#[test]
fn failure_prompt_abort_stops_with_exit_1() {
    let t = flaky(0);
    let mut term = Term::spawn(t.path(), &["build", "recipe.yaml"]);
    term.wait_for_text("Choice (", 1);
    term.type_line("a");
    let (code, screen) = term.finish();
    assert_eq!(code, Some(1), "{screen}");
    assert!(!t.exists("build/recipe/next.txt"), "{screen}");
    assert_eq!(screen.matches("Choice (").count(), 1, "{screen}");
}

#[test]
fn failure_prompt_reload_rereads_the_recipe_and_retries() {
    let t = flaky(0);
    let mut term = Term::spawn(t.path(), &["build", "recipe.yaml"]);
    term.wait_for_text("Choice (", 1);
    t.rewrite(
        "recipe.yaml",
        &t.read("recipe.yaml")
            .replace("[ 0 -gt 0 ]", "echo fixed > fixed.txt; [ 1 -gt 0 ]"),
    );
    term.type_line("l");
    let (code, screen) = term.finish();
    assert_eq!(code, Some(0), "{screen}");
    assert!(screen.contains("Reloaded"), "{screen}");
    assert_eq!(t.read("build/recipe/fixed.txt"), "fixed\n");
    assert_eq!(t.read("build/recipe/counter"), "2\n");
    assert!(t.exists("build/recipe/next.txt"), "{screen}");
}

#[test]
fn without_a_terminal_a_failure_aborts_without_asking() {
    let t = flaky(2);
    let run = t.cairn(&["build", "recipe.yaml"]);
    run.code(1).stderr_has("microstep setup/work/flaky failed");
    assert!(
        !run.stdout.contains("Choice (") && !run.stderr.contains("Choice ("),
        "{run}"
    );
    assert_eq!(t.read("build/recipe/counter"), "1\n");
    assert!(!t.exists("build/recipe/next.txt"));
}

#[test]
fn with_yes_a_failure_on_a_terminal_aborts_without_asking() {
    let t = flaky(2);
    let mut term = Term::spawn(t.path(), &["build", "recipe.yaml", "--yes"]);
    let (code, screen) = term.finish();
    assert_eq!(code, Some(1), "{screen}");
    assert!(!screen.contains("Choice ("), "{screen}");
}
