//! `cairn report`: the HTML page of a build dir's runs, checked in its data and rendered by a
//! real headless Chromium, for recipes/hello.yaml rebuilt after a change and for a build of
//! 10,000 microsteps.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Instant;

use serde_json::Value;

use crate::common::{Test, copy_tree, have_program, repo_root, require_backend};

/// The JSON document the page draws from.
fn data_of(html: &str) -> Value {
    let start = html
        .find(r#"<script id="data" type="application/json">"#)
        .expect("the page embeds its data");
    let rest = &html[start..];
    let open = rest.find('>').unwrap() + 1;
    let close = rest.find("</script>").unwrap();
    serde_json::from_str(&rest[open..close]).expect("the embedded data is JSON")
}

/// Nothing in the page may come from elsewhere: no URL, no external script, style or image.
fn assert_self_contained(html: &str) {
    for needle in ["http://", "https://", "<link", " src=", "@import", "url("] {
        assert!(!html.contains(needle), "the report refers to {needle:?}");
    }
}

fn chromium_args(profile: &Path) -> Vec<String> {
    [
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-quic",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
    ]
    .iter()
    .map(|s| s.to_string())
    .chain([format!("--user-data-dir={}", profile.display())])
    .collect()
}

/// Where screenshots are kept after the test, to be looked at.
fn shots_dir() -> PathBuf {
    let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("report-screenshots");
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// Renders `page` in a fresh headless Chromium: a screenshot (kept under the target dir) and
/// the DOM after the page's script ran. Returns the DOM and the wall time of the screenshot.
fn render(page: &Path, shot: &str, scratch: &Path) -> (String, f64) {
    let url = format!("file://{}", page.display());
    let png = shots_dir().join(shot);
    let _ = std::fs::remove_file(&png);
    let started = Instant::now();
    let out = Command::new("chromium")
        .args(chromium_args(&scratch.join("profile-shot")))
        .args(["--window-size=1280,1400", "--hide-scrollbars"])
        .arg(format!("--screenshot={}", png.display()))
        .arg(&url)
        .output()
        .expect("run chromium");
    let wall = started.elapsed().as_secs_f64();
    assert!(
        out.status.success(),
        "chromium failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let size = std::fs::metadata(&png).map(|m| m.len()).unwrap_or(0);
    assert!(
        size > 10_000,
        "no real screenshot at {} ({size} bytes)",
        png.display()
    );
    let out = Command::new("chromium")
        .args(chromium_args(&scratch.join("profile-dom")))
        .arg("--dump-dom")
        .arg(&url)
        .output()
        .expect("run chromium");
    assert!(out.status.success());
    (String::from_utf8_lossy(&out.stdout).into_owned(), wall)
}

/// The milliseconds the page recorded from navigation start to drawn.
fn open_ms(dom: &str) -> f64 {
    let at = dom
        .find("data-open-ms=\"")
        .expect("the page's script ran to the end");
    let rest = &dom[at + 14..];
    rest[..rest.find('"').unwrap()].parse().unwrap()
}

/// recipes/hello.yaml built, changed, rebuilt, and its report written to report.html; the
/// page's data checked.
fn hello_report() -> Test {
    let t = Test::new();
    copy_tree(&repo_root().join("recipes"), &t.path().join("recipes"));
    t.cairn(&["build", "recipes/hello.yaml", "-c"]).success();
    let recipe = t.read("recipes/hello.yaml");
    t.rewrite(
        "recipes/hello.yaml",
        &recipe.replace("greeting: \"Hello from", "greeting: \"Hi from"),
    );
    t.cairn(&["build", "recipes/hello.yaml", "-c"]).success();
    t.cairn(&["report", "recipes/hello.yaml", "-o", "report.html"])
        .success()
        .stdout_has("report.html");
    let html = t.read("report.html");
    assert_self_contained(&html);
    let data = data_of(&html);
    let runs = data["runs"].as_array().unwrap();
    assert_eq!(runs.len(), 2);
    assert_eq!(runs[0]["status"], "succeeded");
    assert!(runs[0]["changed"].is_null(), "nothing came before run 1");
    assert_eq!(runs[0]["counts"]["ran"], 8);
    // The second run applied the checkpoint before the change and ran the rest.
    let second = &runs[1];
    let changed = &second["changed"];
    assert_eq!(changed["slug"], "setup/greeting/write_motd");
    let reasons: Vec<&str> = changed["reasons"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r.as_str().unwrap())
        .collect();
    assert!(
        reasons.contains(&r#"variable `greeting`: "Hello from hello" -> "Hi from hello""#),
        "{reasons:?}"
    );
    assert_eq!(second["counts"]["restored"], 5);
    assert_eq!(second["counts"]["ran"], 3);
    let slugs = data["slugs"].as_array().unwrap();
    let why: Vec<(String, String)> = second["steps"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|s| s[2] == "ran")
        .map(|s| {
            (
                slugs[s[1].as_u64().unwrap() as usize]
                    .as_str()
                    .unwrap()
                    .to_string(),
                s[6].as_str().unwrap().to_string(),
            )
        })
        .collect();
    assert_eq!(
        why[0],
        ("setup/greeting/write_motd".into(), "id_changed".into())
    );
    assert!(why.iter().all(|(_, r)| r == "id_changed"), "{why:?}");
    let ops: Vec<&str> = second["ops"]
        .as_array()
        .unwrap()
        .iter()
        .map(|o| o[0].as_str().unwrap())
        .collect();
    assert_eq!(
        ops.first(),
        Some(&"apply"),
        "the resume applied a checkpoint"
    );
    assert_eq!(ops.iter().filter(|o| **o == "create").count(), 3);

    t
}

#[test]
fn report_of_hello_rebuilt_after_a_change() {
    hello_report();
}

#[test]
#[ignore = "needs chromium; run with --include-ignored"]
fn report_of_hello_rendered_by_chromium() {
    if !require_backend("chromium", have_program("chromium")) {
        return;
    }
    let t = hello_report();
    let (dom, _) = render(&t.path().join("report.html"), "hello.png", t.path());
    assert!(dom.contains("Changed since the run before"), "{dom}");
    assert!(dom.contains("Run #2") && dom.contains("Run #1"));
    assert!(dom.contains("Slowest microsteps"));
    assert!(
        dom.contains("Slowest steps of the last run (6 steps)"),
        "{dom}"
    );
}

/// What two builds of a 10,000-microstep recipe record, written straight into the state
/// database (building it twice through cairn takes minutes on a loaded machine): the first ran
/// everything, the second restored the first 7,000 and failed at microstep 9,000.
fn record_big_history(build_dir: &Path, slugs: &[String], ids: &[String]) {
    drop(cairn::state::StateDb::open(build_dir).unwrap());
    let mut conn = rusqlite::Connection::open(build_dir.join(".cairn/state.db")).unwrap();
    let tx = conn.transaction().unwrap();
    let t0 = 1_800_000_000.0;
    for (run, (start, fail)) in [(0usize, None), (7000usize, Some(9000usize))]
        .into_iter()
        .enumerate()
    {
        let run_id = run as i64 + 1;
        let began = t0 + run as f64 * 10_000.0;
        let mut t = began;
        tx.execute(
            "INSERT INTO runs (id, recipe, started_at, status, pid, args)
             VALUES (?1, 'big.yaml', ?2, 'running', 1, 'cairn build big.yaml -c')",
            rusqlite::params![run_id, began],
        )
        .unwrap();
        let mut seqs = 0..slugs.len();
        let mut status = "succeeded";
        for seq in seqs.by_ref() {
            let (what, took) = if seq < start {
                ("cached", 0.0)
            } else if Some(seq) == fail {
                status = "failed";
                ("failed", 2.0)
            } else {
                ("completed", 0.05 + (seq % 97) as f64 * 0.01)
            };
            tx.execute(
                "INSERT INTO steps (run_id, seq, slug, checkpoint_id, status, started_at, ended_at, exit_status)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
                rusqlite::params![run_id, seq as i64, slugs[seq], ids[seq], what, t, t + took,
                    (what == "failed").then_some(2)],
            )
            .unwrap();
            t += took;
            if what == "completed" && seq % 10 == 0 {
                tx.execute(
                    "INSERT INTO checkpoint_ops (run_id, op, checkpoint_id, slug, started_at, duration, size)
                     VALUES (?1, 'create', ?2, ?3, ?4, 0.3, 1048576)",
                    rusqlite::params![run_id, ids[seq], slugs[seq], t],
                )
                .unwrap();
                tx.execute(
                    "INSERT OR REPLACE INTO checkpoints (id, slug, driver, created_at, duration, manifest, ready)
                     VALUES (?1, ?2, 'copy', ?3, 0.3, '{}', 1)",
                    rusqlite::params![ids[seq], slugs[seq], t],
                )
                .unwrap();
                t += 0.3;
            }
            if what == "failed" {
                break;
            }
        }
        tx.execute(
            "UPDATE runs SET ended_at = ?2, status = ?3 WHERE id = ?1",
            rusqlite::params![run_id, t, status],
        )
        .unwrap();
    }
    tx.commit().unwrap();
}

/// A 10,000-microstep recipe with two runs recorded, and its report written to big.html; the
/// page's data checked.
fn big_report() -> Test {
    let mut recipe = String::from("setup:\n");
    for s in 0..100 {
        recipe.push_str(&format!("  - step{s}:\n"));
        for m in 0..100 {
            recipe.push_str(&format!(
                "      - m{m}:\n          - exec_local: \"true\"\n"
            ));
        }
    }
    let t = Test::new().file("big.yaml", &recipe);
    // The slugs and IDs the recipe really has, from the dry run.
    let plan = t.cairn(&["build", "big.yaml", "--dry-run"]);
    plan.success();
    let (mut slugs, mut ids) = (Vec::new(), Vec::new());
    for line in plan.stdout.lines() {
        let words: Vec<&str> = line.split_whitespace().collect();
        ids.push(words[1].to_string());
        slugs.push(words.last().unwrap().to_string());
    }
    assert_eq!(slugs.len(), 10_000);
    record_big_history(&t.build_dir("big"), &slugs, &ids);

    t.cairn(&["report", "big.yaml", "-o", "big.html"]).success();
    let html = t.read("big.html");
    assert_self_contained(&html);
    assert!(
        html.len() < 4_000_000,
        "the page stays small: {} bytes",
        html.len()
    );
    let data = data_of(&html);
    let runs = data["runs"].as_array().unwrap();
    assert_eq!(runs[0]["counts"]["ran"], 10_000);
    assert_eq!(runs[1]["counts"]["restored"], 7_000);
    assert_eq!(runs[1]["counts"]["failed"], 1);
    assert_eq!(data["slowest"].as_array().unwrap().len(), 25);

    t
}

#[test]
fn report_of_ten_thousand_microsteps_stays_small() {
    big_report();
}

#[test]
#[ignore = "needs chromium; run with --include-ignored"]
fn report_of_ten_thousand_microsteps_stays_readable() {
    if !require_backend("chromium", have_program("chromium")) {
        return;
    }
    let t = big_report();
    let (dom, wall) = render(&t.path().join("big.html"), "ten-thousand.png", t.path());
    // Only the first page of the 1,000 checkpoints is in the page until asked for.
    assert!(
        dom.contains("Checkpoints (1000)"),
        "every checkpoint is counted"
    );
    assert!(dom.contains("show more"));
    assert!(
        dom.contains("Slowest steps of the last run (91 steps)"),
        "steps aggregated"
    );
    assert!(dom.matches("<tr>").count() < 400, "rows are paged");
    assert!(
        dom.contains("setup/step90/m0 (exit status 2)"),
        "the failure is named"
    );
    // Recorded in docs/benchmarks.md, not asserted: timing depends on the machine's load.
    eprintln!(
        "10,000-microstep report: opened and drawn in {:.0} ms (page's own clock), screenshot in {wall:.2} s",
        open_ms(&dom)
    );
}
