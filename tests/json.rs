//! `--json` as a contract: every stream a command writes is checked line by line against
//! docs/json.md (each event documented, each field present with its documented type, nothing
//! undocumented), starts with `start` and ends with `end`, and every failure carries an `error`
//! event with its exit code.

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use cairn::output::schema::{DocType, parse_doc};
use serde_json::Value;

use crate::common::Test;

fn schema() -> BTreeMap<String, BTreeMap<String, DocType>> {
    parse_doc(include_str!("../docs/json.md"))
}

/// Checks a whole stream against the documented schema and returns its events.
#[track_caller]
fn check_stream(stdout: &str, code: Option<i32>) -> Vec<Value> {
    let schema = schema();
    let events: Vec<Value> = stdout
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("not JSON ({e}): {l}")))
        .collect();
    assert!(!events.is_empty(), "no events");
    for e in &events {
        let kind = e["event"].as_str().expect("every event has a type");
        let fields = schema
            .get(kind)
            .unwrap_or_else(|| panic!("event `{kind}` is not in docs/json.md: {e}"));
        let obj = e.as_object().unwrap();
        for (k, v) in obj {
            let ty = fields
                .get(k)
                .unwrap_or_else(|| panic!("`{kind}.{k}` is not in docs/json.md: {e}"));
            assert!(ty.admits(v), "`{kind}.{k}` = {v} is not {ty:?}");
        }
        for k in fields.keys() {
            assert!(
                obj.contains_key(k),
                "`{kind}` lacks the documented `{k}`: {e}"
            );
        }
    }
    assert_eq!(events[0]["event"], "start");
    assert_eq!(events[0]["schema_version"], 1);
    let last = events.last().unwrap();
    assert_eq!(last["event"], "end", "the stream ends with `end`");
    assert_eq!(last["exit_code"].as_i64().map(|c| c as i32), code);
    let errors: Vec<&Value> = events.iter().filter(|e| e["event"] == "error").collect();
    if code == Some(0) {
        assert!(errors.is_empty(), "{errors:?}");
    } else {
        assert_eq!(errors.len(), 1, "one error event");
        assert_eq!(
            events[events.len() - 2]["event"],
            "error",
            "error comes just before end"
        );
        assert_eq!(errors[0]["exit_code"].as_i64().map(|c| c as i32), code);
    }
    let times: Vec<f64> = events.iter().map(|e| e["time"].as_f64().unwrap()).collect();
    assert!(times.windows(2).all(|w| w[0] <= w[1]), "times go forward");
    events
}

fn of<'a>(events: &'a [Value], kind: &str) -> Vec<&'a Value> {
    events.iter().filter(|e| e["event"] == kind).collect()
}

fn statuses(events: &[Value]) -> Vec<(String, String)> {
    of(events, "microstep_end")
        .iter()
        .map(|e| {
            (
                e["slug"].as_str().unwrap().to_string(),
                e["status"].as_str().unwrap().to_string(),
            )
        })
        .collect()
}

/// A recipe with the copy driver whose second microstep prints `greeting`.
fn checkpointed(greeting: &str) -> String {
    format!(
        r#"
        checkpoint: copy
        global:
          rootfs: "{{{{build_dir}}}}/rootfs"
          greeting: {greeting}
        setup:
          - s:
              - make:
                  - exec_local: mkdir -p "{{{{rootfs}}}}" && echo one > "{{{{rootfs}}}}/one"
              - greet:
                  - exec_local: echo "{{{{greeting}}}}"
        "#
    )
}

#[test]
fn build_then_rebuild_after_a_change() {
    let t = Test::new().file("recipe.yaml", &checkpointed("hello"));
    let run = t.cairn(&["build", "recipe.yaml", "-c", "--json"]);
    run.success();
    let events = check_stream(&run.stdout, Some(0));
    assert_eq!(events[0]["command"], "build");
    assert_eq!(
        statuses(&events),
        [
            ("setup/s/make".to_string(), "completed".to_string()),
            ("setup/s/greet".into(), "completed".into())
        ]
    );
    assert_eq!(of(&events, "checkpoint_create_start").len(), 2);
    assert_eq!(of(&events, "checkpoint_created").len(), 2);
    let summary = of(&events, "summary")[0];
    assert_eq!(
        (summary["ran"].as_i64(), summary["restored"].as_i64()),
        (Some(2), Some(0))
    );
    assert_eq!(summary["checkpoints_created"], 2);
    // The copy driver's store is measured: each checkpoint holds at least the one file.
    let sizes: Vec<u64> = of(&events, "checkpoint_created")
        .iter()
        .map(|e| e["size"].as_u64().expect("a size for the copy driver"))
        .collect();
    assert!(sizes.iter().all(|s| *s > 0), "{sizes:?}");
    assert_eq!(
        summary["checkpoints_size"].as_u64(),
        Some(sizes.iter().sum())
    );
    assert_eq!(of(&events, "run_end")[0]["status"], "succeeded");
    let output: Vec<&str> = of(&events, "output")
        .iter()
        .map(|e| e["line"].as_str().unwrap())
        .collect();
    assert_eq!(output, ["hello"]);

    // Unchanged: everything is restored from the newest checkpoint.
    let run = t.cairn(&["build", "recipe.yaml", "-c", "--json"]);
    let events = check_stream(&run.stdout, Some(0));
    assert!(
        statuses(&events).iter().all(|(_, s)| s == "restored"),
        "{run}"
    );
    assert_eq!(of(&events, "checkpoint_applied").len(), 1);

    // A changed variable re-runs the microstep that uses it, after the first one's checkpoint.
    t.rewrite("recipe.yaml", &checkpointed("bonjour"));
    let run = t.cairn(&["build", "recipe.yaml", "-c", "--json"]);
    let events = check_stream(&run.stdout, Some(0));
    assert_eq!(
        statuses(&events),
        [
            ("setup/s/make".to_string(), "restored".to_string()),
            ("setup/s/greet".into(), "completed".into())
        ]
    );
    let starts: Vec<&str> = of(&events, "microstep_start")
        .iter()
        .map(|e| e["action"].as_str().unwrap())
        .collect();
    assert_eq!(starts, ["use_checkpoint", "run"]);
    let summary = of(&events, "summary")[0];
    assert_eq!(
        (summary["ran"].as_i64(), summary["restored"].as_i64()),
        (Some(1), Some(1))
    );
    assert_eq!(summary["checkpoints_applied"], 1);
}

#[test]
fn a_failure_ends_with_its_error_event() {
    let t = Test::new().file(
        "recipe.yaml",
        r#"
        setup:
          - s:
              - ok:
                  - exec_local: "true"
              - bad:
                  - exec_local: echo about to fail; exit 7
              - never:
                  - exec_local: "true"
        "#,
    );
    let run = t.cairn(&["build", "recipe.yaml", "--json"]);
    run.code(1);
    let events = check_stream(&run.stdout, Some(1));
    assert_eq!(
        statuses(&events),
        [
            ("setup/s/ok".to_string(), "completed".to_string()),
            ("setup/s/bad".into(), "failed".into())
        ]
    );
    assert_eq!(of(&events, "microstep_end")[1]["exit_status"], 7);
    let summary = of(&events, "summary")[0];
    assert_eq!(summary["failed_microstep"], "setup/s/bad");
    assert_eq!(summary["exit_status"], 7);
    assert!(
        summary["resume"]
            .as_str()
            .unwrap()
            .starts_with("cairn resume recipe.yaml")
    );
    assert_eq!(of(&events, "run_end")[0]["status"], "failed");
    assert_eq!(of(&events, "run_end")[0]["exit_code"], 1);
    let error = of(&events, "error")[0];
    assert_eq!(error["kind"], "command_failed");
    assert_eq!(error["microstep"], "setup/s/bad");
    assert_eq!(error["context"], "local");
    assert_eq!(error["exit_status"], 7);
    assert!(error["file"].as_str().unwrap().ends_with("recipe.yaml"));
    assert_eq!(error["line"], 6);
    assert!(error["column"].as_i64().unwrap() > 0);
    assert!(
        error["notes"]
            .as_array()
            .unwrap()
            .iter()
            .any(|n| n == "[local] about to fail"),
        "the last lines of output: {error}"
    );
    assert!(
        error["resume"]
            .as_str()
            .unwrap()
            .starts_with("cairn resume recipe.yaml")
    );
    // The person still reads the diagnostic on stderr.
    run.stderr_has("microstep setup/s/bad failed");
}

/// Runs cairn with its stdout read line by line as it comes.
struct Live {
    child: Child,
    lines: mpsc::Receiver<String>,
    seen: Vec<String>,
}

impl Live {
    fn start(t: &Test, args: &[&str]) -> Live {
        let mut child = Command::new(assert_cmd::cargo::cargo_bin("cairn"))
            .current_dir(t.path())
            .args(args)
            .env("NO_COLOR", "1")
            .env("XDG_CONFIG_HOME", t.path().join(".config"))
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("start cairn");
        let (tx, lines) = mpsc::channel();
        let out = child.stdout.take().unwrap();
        std::thread::spawn(move || {
            for line in BufReader::new(out).lines().map_while(Result::ok) {
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        Live {
            child,
            lines,
            seen: Vec::new(),
        }
    }

    /// Waits for a line containing `needle`.
    fn wait_for(&mut self, needle: &str) {
        let deadline = Instant::now() + Duration::from_secs(30);
        while !self.seen.iter().any(|l| l.contains(needle)) {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.lines.recv_timeout(left) {
                Ok(l) => self.seen.push(l),
                Err(_) => {
                    let _ = self.child.kill();
                    panic!("no line with {needle:?}: {:#?}", self.seen);
                }
            }
        }
    }

    fn signal(&self, signal: nix::sys::signal::Signal) {
        nix::sys::signal::kill(nix::unistd::Pid::from_raw(self.child.id() as i32), signal)
            .expect("send a signal");
    }

    /// The rest of stdout and the exit code.
    fn finish(mut self) -> (String, Option<i32>) {
        let status = self.child.wait().expect("wait for cairn");
        self.seen.extend(self.lines.iter());
        (self.seen.join("\n"), status.code())
    }
}

const SLOW: &str = r#"
    setup:
      - s:
          - first:
              - exec_local: "true"
          - slow:
              - exec_local: echo started; sleep 30
"#;

#[test]
fn an_interrupted_run_reports_the_signal_and_how_to_resume() {
    use nix::sys::signal::Signal;
    for (signal, code) in [(Signal::SIGINT, 130), (Signal::SIGTERM, 143)] {
        let t = Test::new().file("recipe.yaml", SLOW);
        let mut live = Live::start(&t, &["build", "recipe.yaml", "--json", "-y"]);
        live.wait_for("\"line\":\"started\"");
        live.signal(signal);
        let (stdout, got) = live.finish();
        assert_eq!(got, Some(code), "{stdout}");
        let events = check_stream(&stdout, Some(code));
        assert_eq!(of(&events, "run_end")[0]["status"], "interrupted");
        let error = of(&events, "error")[0];
        assert_eq!(error["kind"], "interrupted");
        assert!(
            error["resume"]
                .as_str()
                .unwrap()
                .starts_with("cairn resume recipe.yaml"),
            "{error}"
        );
        let summary = of(&events, "summary")[0];
        assert_eq!(summary["ran"], 1, "only `first` completed: {summary}");
    }
}

#[test]
fn every_exit_code_has_its_error_event() {
    let failing = Test::new().file(
        "recipe.yaml",
        "setup:\n  - s:\n      - m:\n          - exec_local: exit 3\n",
    );
    let run = failing.cairn(&["build", "recipe.yaml", "--json"]);
    let e = check_stream(&run.stdout, Some(1));
    assert_eq!(of(&e, "error")[0]["kind"], "command_failed");

    // 2: clap refuses the command line; the stream still comes, as `other`.
    let run = failing.cairn(&["build", "recipe.yaml", "--json", "--no-such-flag"]);
    run.code(2);
    let e = check_stream(&run.stdout, Some(2));
    assert_eq!(of(&e, "error")[0]["kind"], "usage");
    assert!(
        of(&e, "error")[0]["message"]
            .as_str()
            .unwrap()
            .contains("--no-such-flag")
    );

    // 3: a bad recipe, with its place.
    let bad = Test::new().file(
        "recipe.yaml",
        "setup:\n  - s:\n      - m:\n          - exec_locl: x\n",
    );
    for args in [
        &["build", "recipe.yaml", "--json"][..],
        &["plan", "recipe.yaml", "--json"],
        &["checkpoints", "recipe.yaml", "--json"],
        &["graph", "recipe.yaml", "--format", "json"],
        &["resume", "recipe.yaml", "--json"],
    ] {
        let run = bad.cairn(args);
        run.code(3);
        let e = check_stream(&run.stdout, Some(3));
        let error = of(&e, "error")[0];
        assert_eq!(error["kind"], "bad_input", "{args:?}");
        assert!(error["file"].as_str().unwrap().ends_with("recipe.yaml"));
        assert_eq!(
            (error["line"].as_i64(), error["column"].as_i64()),
            (Some(4), Some(13)),
            "{error}"
        );
        assert!(error["hint"].is_string(), "{error}");
    }

    // 4: a checkpoint that does not exist.
    let t = Test::new().file("recipe.yaml", &checkpointed("hi"));
    let run = t.cairn(&["build", "recipe.yaml", "-F", "deadbeef", "--json"]);
    run.code(4);
    let e = check_stream(&run.stdout, Some(4));
    assert_eq!(of(&e, "error")[0]["kind"], "checkpoint");

    // 5: the build dir is locked by a running build.
    let t = Test::new().file("recipe.yaml", SLOW);
    let mut holder = Live::start(&t, &["build", "recipe.yaml", "-y", "--json"]);
    holder.wait_for("\"line\":\"started\"");
    let run = t.cairn(&["build", "recipe.yaml", "--json"]);
    run.code(5);
    let e = check_stream(&run.stdout, Some(5));
    assert_eq!(of(&e, "error")[0]["kind"], "locked");
    holder.signal(nix::sys::signal::Signal::SIGTERM);
    let (_, code) = holder.finish();
    assert_eq!(code, Some(143));
}

#[test]
fn every_command_with_json_writes_the_envelope() {
    let t = Test::new().file("recipe.yaml", &checkpointed("hi"));
    t.cairn(&["build", "recipe.yaml", "-c"]).success();
    for (args, command, kind) in [
        (
            &["plan", "recipe.yaml", "--json"][..],
            "plan",
            "plan_microstep",
        ),
        (
            &["plan", "recipe.yaml", "--json", "--explain"],
            "plan",
            "explain",
        ),
        (
            &["build", "recipe.yaml", "--dry-run", "--json"],
            "build",
            "plan_microstep",
        ),
        (
            &["build", "recipe.yaml", "-l", "--json"],
            "build",
            "checkpoint",
        ),
        (
            &["build", "recipe.yaml", "-l", "--dry-run", "--json"],
            "build",
            "checkpoint",
        ),
        (
            &["checkpoints", "recipe.yaml", "--json"],
            "checkpoints",
            "checkpoint",
        ),
        (
            &["graph", "recipe.yaml", "--format", "json"],
            "graph",
            "graph",
        ),
        (&["resume", "recipe.yaml", "--json"], "resume", "run_end"),
    ] {
        let run = t.cairn(args);
        run.success();
        let e = check_stream(&run.stdout, Some(0));
        assert_eq!(e[0]["command"], command, "{args:?}");
        assert!(!of(&e, kind).is_empty(), "{args:?} has no `{kind}`\n{run}");
    }
}
