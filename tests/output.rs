//! What a build prints: Kameleon's rhythm for people, JSON lines for programs, and the plan of
//! a dry run.

use serde_json::Value;

use crate::common::{Test, is_short_id};

const RECIPE: &str = r#"
    global:
      in_context:
        cmd: bash
        workdir: "{{build_dir}}"
    setup:
      - s:
          - m:
              - exec_local: echo hello from local; echo warning from local >&2
              - exec_in: echo hello from in
          - touch:
              - exec_local: touch made
"#;

fn test() -> Test {
    Test::new().file("recipe.yaml", RECIPE)
}

#[test]
fn human_output_names_each_microstep_and_prefixes_context_output() {
    let t = test().args(&["build", "recipe.yaml"]);
    let run = t.run();
    run.success()
        .stdout_has("Step 1 : setup/s/m\n --> Running the step...\n")
        .stdout_has("Step 2 : setup/s/touch\n")
        .stdout_has("[local] hello from local\n")
        .stdout_has("[local] warning from local\n")
        .stdout_has("[in] hello from in\n")
        .stdout_has("Successfully built 'recipe.yaml'\n");
    // Output lines come between their microstep's header and the next one.
    let header_1 = run.stdout.find("Step 1 : ").unwrap();
    let header_2 = run.stdout.find("Step 2 : ").unwrap();
    let line = run.stdout.find("[in] hello from in").unwrap();
    assert!(header_1 < line && line < header_2, "{run}");
    assert!(
        !run.stdout.contains("\x1b["),
        "no colour without a terminal\n{run}"
    );
    assert!(t.exists("build/recipe/made"));
}

#[test]
fn json_output_is_one_event_per_line() {
    let t = test().args(&["build", "recipe.yaml", "--json"]);
    let run = t.run();
    run.success();
    let events: Vec<Value> = run
        .stdout
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("not JSON: {l:?}: {e}\n{run}")))
        .collect();
    let kind = |e: &Value| e["event"].as_str().unwrap_or_default().to_string();
    let times: Vec<f64> = events
        .iter()
        .map(|e| {
            e["time"]
                .as_f64()
                .unwrap_or_else(|| panic!("no time in {e}"))
        })
        .collect();
    assert!(
        times.windows(2).all(|w| w[0] <= w[1]),
        "times go forward: {times:?}"
    );

    assert_eq!(kind(&events[0]), "start");
    assert_eq!(events[0]["schema_version"], 1);
    let first = &events[1];
    assert_eq!(kind(first), "run_start");
    assert_eq!(first["recipe"], "recipe.yaml");
    assert_eq!(first["microsteps"], 2);

    assert_eq!(kind(events.last().unwrap()), "end");
    let last = &events[events.len() - 2];
    assert_eq!(kind(last), "run_end");
    assert_eq!(last["status"], "succeeded");
    assert!(last["duration"].as_f64().is_some());

    let starts: Vec<&Value> = events
        .iter()
        .filter(|e| kind(e) == "microstep_start")
        .collect();
    let ends: Vec<&Value> = events
        .iter()
        .filter(|e| kind(e) == "microstep_end")
        .collect();
    let slugs = |v: &[&Value]| -> Vec<String> {
        v.iter()
            .map(|e| e["slug"].as_str().unwrap().to_string())
            .collect()
    };
    assert_eq!(slugs(&starts), ["setup/s/m", "setup/s/touch"]);
    assert_eq!(slugs(&ends), ["setup/s/m", "setup/s/touch"]);
    for (start, end) in starts.iter().zip(&ends) {
        let id = start["id"].as_str().unwrap();
        assert_eq!(id.len(), 40, "the full SHA-1 in JSON");
        assert!(id.bytes().all(|b| b.is_ascii_hexdigit()));
        assert_eq!(end["id"], start["id"]);
        assert_eq!(end["status"], "completed");
        assert!(end["duration"].as_f64().is_some());
    }
    assert_ne!(starts[0]["id"], starts[1]["id"]);

    let outputs: Vec<(String, String, String)> = events
        .iter()
        .filter(|e| kind(e) == "output")
        .map(|e| {
            (
                e["context"].as_str().unwrap().to_string(),
                e["stream"].as_str().unwrap().to_string(),
                e["line"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    for expected in [
        ("local", "stdout", "hello from local"),
        ("local", "stderr", "warning from local"),
        ("in", "stdout", "hello from in"),
    ] {
        let expected = (expected.0.into(), expected.1.into(), expected.2.into());
        assert!(outputs.contains(&expected), "{expected:?} missing\n{run}");
    }
    // Each output event lies between its microstep's start and end.
    let position = |pred: &dyn Fn(&Value) -> bool| events.iter().position(pred).unwrap();
    let in_line = position(&|e| e["line"] == "hello from in");
    let first_end = position(&|e| kind(e) == "microstep_end");
    assert!(in_line < first_end);
}

#[test]
fn json_output_reports_a_failure() {
    let t = Test::new()
        .file(
            "recipe.yaml",
            r#"
            setup:
              - s:
                  - bad:
                      - exec_local: exit 2
                  - never:
                      - exec_local: "true"
            "#,
        )
        .args(&["build", "recipe.yaml", "--json"]);
    let run = t.run();
    run.code(1);
    let events: Vec<Value> = run
        .stdout
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let end = events
        .iter()
        .find(|e| e["event"] == "microstep_end")
        .unwrap();
    assert_eq!(end["slug"], "setup/s/bad");
    assert_eq!(end["status"], "failed");
    assert!(!run.stdout.contains("setup/s/never"), "{run}");
    let kinds: Vec<&str> = events
        .iter()
        .map(|e| e["event"].as_str().unwrap())
        .collect();
    assert_eq!(
        kinds[kinds.len() - 4..],
        ["summary", "run_end", "error", "end"]
    );
    let run_end = &events[events.len() - 3];
    assert_eq!(run_end["status"], "failed");
    assert_eq!(run_end["exit_code"], 1);
    assert_eq!(events.last().unwrap()["exit_code"], 1);
}

#[test]
fn dry_run_prints_slugs_and_ids_and_runs_nothing() {
    let t = test().args(&["build", "recipe.yaml", "--dry-run"]);
    let run = t.run();
    run.success();
    let rows: Vec<Vec<&str>> = run
        .stdout
        .lines()
        .map(|l| l.split_whitespace().collect())
        .collect();
    assert_eq!(rows.len(), 2, "{run}");
    for (row, slug) in rows.iter().zip(["setup/s/m", "setup/s/touch"]) {
        assert!(
            row.iter().any(|w| is_short_id(w)),
            "no 12-hex ID in {row:?}"
        );
        assert_eq!(row.last(), Some(&slug));
    }
    run.stdout_lacks("hello from");
    assert!(!t.exists("build"), "a dry run creates nothing");

    // The short form, too.
    let t = test().args(&["build", "-n", "recipe.yaml"]);
    t.run().success().stdout_has("setup/s/touch");
    assert!(!t.exists("build"));
}

#[test]
fn dry_run_ids_are_the_ids_the_build_uses() {
    let t = test().args(&["build", "recipe.yaml", "--dry-run"]);
    let planned: Vec<String> = t
        .run()
        .stdout
        .lines()
        .filter_map(|l| {
            l.split_whitespace()
                .find(|w| is_short_id(w))
                .map(str::to_string)
        })
        .collect();
    let t = test().args(&["build", "recipe.yaml", "--json"]);
    let built: Vec<String> = t
        .run()
        .stdout
        .lines()
        .map(|l| serde_json::from_str::<Value>(l).unwrap())
        .filter(|e| e["event"] == "microstep_start")
        .map(|e| e["id"].as_str().unwrap()[..12].to_string())
        .collect();
    assert_eq!(planned.len(), 2);
    assert_eq!(planned, built);
}

#[test]
fn ids_change_from_the_changed_microstep_on() {
    let ids = |cmd: &str| -> Vec<String> {
        Test::new()
            .file(
                "recipe.yaml",
                &format!(
                    r#"
                    setup:
                      - s:
                          - a:
                              - exec_local: echo a
                          - b:
                              - exec_local: {cmd}
                          - c:
                              - exec_local: echo c
                    "#
                ),
            )
            .args(&["build", "recipe.yaml", "--dry-run"])
            .run()
            .stdout
            .lines()
            .filter_map(|l| {
                l.split_whitespace()
                    .find(|w| is_short_id(w))
                    .map(str::to_string)
            })
            .collect()
    };
    let before = ids("echo b");
    let after = ids("echo B");
    assert_eq!(before.len(), 3);
    assert_eq!(before[0], after[0]);
    assert_ne!(before[1], after[1]);
    assert_ne!(before[2], after[2]);
}

#[test]
fn every_build_ends_with_a_summary() {
    let t = Test::new().file(
        "recipe.yaml",
        r#"
        checkpoint: copy
        global:
          rootfs: "{{build_dir}}/rootfs"
        setup:
          - s:
              - make:
                  - exec_local: mkdir -p "{{rootfs}}" && head -c 10000 /dev/zero > "{{rootfs}}/f"
              - other:
                  - exec_local: "true"
        "#,
    );
    let run = t.cairn(&["build", "recipe.yaml", "-c"]);
    run.success()
        .stdout_has("\nSummary: microsteps: 2 ran, 0 restored from a checkpoint, 0 skipped\n");
    let line = run
        .stdout
        .lines()
        .find(|l| l.starts_with("         2 checkpoint(s) created ("))
        .unwrap_or_else(|| panic!("no checkpoint line\n{run}"));
    assert!(
        line.contains(" KiB); ") && line.contains(" secs in commands, "),
        "{line}"
    );
    // The summary comes before Kameleon's last two lines.
    let tail: Vec<&str> = run.stdout.lines().rev().take(2).collect();
    assert_eq!(tail[1], "Successfully built 'recipe.yaml'");
    assert!(tail[0].starts_with("Total duration : "));

    let run = t.cairn(&["build", "recipe.yaml", "-c"]);
    run.success()
        .stdout_has("\nSummary: microsteps: 0 ran, 2 restored from a checkpoint, 0 skipped\n")
        .stdout_has("         0 checkpoint(s) created, 1 applied; ");

    t.rewrite(
        "recipe.yaml",
        "setup:\n  - s:\n      - m:\n          - exec_local: exit 9\n",
    );
    let run = t.cairn(&["build", "recipe.yaml"]);
    run.code(1)
        .stdout_has(" --> setup/s/m failed (exit status 9)\n")
        .stdout_has("\nFailed: setup/s/m (exit status 9)\nTo resume: cairn resume recipe.yaml -b ")
        .stdout_has("\nBuild of 'recipe.yaml' failed\nTotal duration : ");
}
