//! The live status line: on a terminal (a pseudo-terminal here), `[k/N] slug`, the time in the
//! microstep, what it is doing and, once an earlier run recorded durations, the time left; it
//! never shares a line with command output and is gone at the end. Piped, none of it appears.

use std::fs::File;
use std::io::Read;
use std::process::{Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use crate::common::Test;

const RECIPE: &str = r#"
    setup:
      - s:
          - a:
              - exec_local: echo hello from a; sleep 1
          - b:
              - exec_local: sleep 1.5; echo hello from b
          - c:
              - exec_local: echo hello from c
"#;

/// Runs cairn on a 40x120 pseudo-terminal; returns the exit code and the raw bytes it drew.
fn on_terminal(t: &Test, args: &[&str]) -> (Option<i32>, String) {
    let size = nix::pty::Winsize {
        ws_row: 40,
        ws_col: 120,
        ws_xpixel: 0,
        ws_ypixel: 0,
    };
    let pty = nix::pty::openpty(Some(&size), None).expect("open a pseudo-terminal");
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_cairn"));
    cmd.current_dir(t.path())
        .args(args)
        .env("NO_COLOR", "1")
        .env("TERM", "xterm")
        .env("XDG_CONFIG_HOME", t.path().join(".config"))
        .stdin(Stdio::null())
        .stdout(Stdio::from(pty.slave.try_clone().unwrap()))
        .stderr(Stdio::from(pty.slave));
    let mut child = cmd.spawn().expect("start cairn");
    drop(cmd);
    let screen = Arc::new(Mutex::new(Vec::new()));
    let shown = Arc::clone(&screen);
    let mut master = File::from(pty.master);
    let reader = std::thread::spawn(move || {
        let mut buf = [0u8; 4096];
        while let Ok(n) = master.read(&mut buf) {
            if n == 0 {
                break;
            }
            shown.lock().unwrap().extend_from_slice(&buf[..n]);
        }
    });
    let start = Instant::now();
    let status = loop {
        if let Some(s) = child.try_wait().unwrap() {
            break s;
        }
        if start.elapsed() > Duration::from_secs(60) {
            let _ = child.kill();
            panic!("cairn did not end within 60 s");
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    // The reader ends when the last copy of the terminal's slave side closes.
    let _ = reader.join();
    let raw = String::from_utf8_lossy(&screen.lock().unwrap()).into_owned();
    (status.code(), raw)
}

/// What a terminal shows after `raw`: enough of VT100 for indicatif's drawing (carriage
/// return, newline, erase line, cursor up, cursor to column).
fn render(raw: &str) -> Vec<String> {
    let mut lines: Vec<Vec<char>> = vec![Vec::new()];
    let (mut row, mut col) = (0usize, 0usize);
    let mut chars = raw.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '\r' => col = 0,
            '\n' => {
                row += 1;
                col = 0;
                if lines.len() <= row {
                    lines.push(Vec::new());
                }
            }
            '\x1b' => {
                if chars.peek() != Some(&'[') {
                    continue;
                }
                chars.next();
                let mut arg = String::new();
                let mut cmd = ' ';
                for d in chars.by_ref() {
                    if d.is_ascii_alphabetic() {
                        cmd = d;
                        break;
                    }
                    arg.push(d);
                }
                let n: usize = arg.trim_start_matches('?').parse().unwrap_or(1).max(1);
                match cmd {
                    'K' if arg == "2" => lines[row].clear(),
                    'K' => lines[row].truncate(col),
                    'A' => row = row.saturating_sub(n),
                    'B' => row += n,
                    'G' => col = n - 1,
                    'J' => {
                        lines[row].truncate(col);
                        lines.truncate(row + 1);
                    }
                    _ => {}
                }
                while lines.len() <= row {
                    lines.push(Vec::new());
                }
            }
            c => {
                let line = &mut lines[row];
                while line.len() < col {
                    line.push(' ');
                }
                if col < line.len() {
                    line[col] = c;
                } else {
                    line.push(c);
                }
                col += 1;
            }
        }
    }
    lines
        .into_iter()
        .map(|l| l.into_iter().collect::<String>().trim_end().to_string())
        .collect()
}

fn status_lines(raw: &str) -> Vec<String> {
    // Every state the line was drawn in, as the bytes show them.
    raw.split(['\r', '\n'])
        .map(|s| s.replace("\x1b[2K", "").replace("\x1b[K", ""))
        .filter(|s| s.starts_with('[') && s.contains("/3] "))
        .map(|s| s.trim_end().to_string())
        .collect()
}

#[test]
fn a_terminal_shows_the_status_line_and_then_the_time_left() {
    let t = Test::new().file("recipe.yaml", RECIPE);
    let (code, raw) = on_terminal(&t, &["build", "recipe.yaml"]);
    assert_eq!(code, Some(0), "{raw}");
    let drawn = status_lines(&raw);
    assert!(
        drawn
            .iter()
            .any(|l| l.starts_with("[1/3] setup/s/a") && l.contains("running")),
        "the first microstep's line: {drawn:#?}"
    );
    assert!(
        drawn
            .iter()
            .any(|l| l.starts_with("[2/3] setup/s/b") && l.contains(" 0:0")),
        "the second, with its time: {drawn:#?}"
    );
    assert!(
        !drawn.iter().any(|l| l.contains("left")),
        "no estimate without an earlier run: {drawn:#?}"
    );
    let screen = render(&raw);
    assert!(
        screen.iter().all(|l| !l.contains("/3] ")),
        "the status line is gone at the end:\n{}",
        screen.join("\n")
    );
    for needle in [
        "[local] hello from a",
        "[local] hello from b",
        "[local] hello from c",
    ] {
        assert!(
            screen.iter().any(|l| l == needle),
            "{needle:?} on a line of its own:\n{}",
            screen.join("\n")
        );
    }
    assert!(screen.iter().any(|l| l == "Step 2 : setup/s/b"));
    assert!(
        screen
            .iter()
            .any(|l| l.starts_with("Summary: microsteps: 3 ran"))
    );

    // The second run knows how long each microstep took.
    let (code, raw) = on_terminal(&t, &["build", "recipe.yaml"]);
    assert_eq!(code, Some(0), "{raw}");
    let drawn = status_lines(&raw);
    let with_estimate: Vec<&String> = drawn.iter().filter(|l| l.contains(" left")).collect();
    assert!(
        with_estimate
            .iter()
            .any(|l| l.starts_with("[1/3] setup/s/a") && l.contains("running, ~0:0")),
        "an estimate from the first run: {drawn:#?}"
    );
}

#[test]
fn piped_output_has_no_status_line() {
    let t = Test::new().file("recipe.yaml", RECIPE);
    let run = t.cairn(&["build", "recipe.yaml"]);
    run.success()
        .stdout_lacks("[1/3]")
        .stdout_lacks("\x1b[")
        .stdout_lacks(" left")
        .stdout_has("Step 1 : setup/s/a\n --> Running the step...\n[local] hello from a\n");
    assert!(!run.stderr.contains("[1/3]"), "{run}");
}

#[test]
fn quiet_prints_the_summary_and_errors_only() {
    let t = Test::new().file("recipe.yaml", RECIPE);
    let (code, raw) = on_terminal(&t, &["-q", "build", "recipe.yaml"]);
    assert_eq!(code, Some(0));
    let screen: Vec<String> = render(&raw).into_iter().filter(|l| !l.is_empty()).collect();
    assert_eq!(screen.len(), 2, "{screen:#?}");
    assert!(
        screen[0].starts_with("Summary: microsteps: 3 ran"),
        "{screen:#?}"
    );
    assert!(!raw.contains("/3] "), "no status line with -q");

    let failing = Test::new().file(
        "recipe.yaml",
        "setup:\n  - s:\n      - m:\n          - exec_local: echo noise; exit 4\n",
    );
    let run = failing.cairn(&["build", "recipe.yaml", "--quiet"]);
    run.code(1).stdout_lacks("noise").stdout_lacks("Step 1");
    run.stdout_has("Failed: setup/s/m (exit status 4)\n")
        .stdout_has("To resume: cairn resume recipe.yaml")
        .stderr_has("error: microstep setup/s/m failed");
}

#[test]
fn colour_is_decided_per_stream() {
    let failing = Test::new().file(
        "recipe.yaml",
        "setup:\n  - s:\n      - m:\n          - exec_local: exit 4\n",
    );
    // NO_COLOR is set by the harness: auto means none, always beats it.
    let run = failing.cairn(&["build", "recipe.yaml"]);
    assert!(
        !run.stdout.contains("\x1b[") && !run.stderr.contains("\x1b["),
        "{run}"
    );
    let run = failing.cairn(&["build", "recipe.yaml", "--color", "always"]);
    assert!(run.stdout.contains("\x1b[1mStep 1"), "{run}");
    assert!(run.stderr.contains("\x1b[1;31merror:"), "{run}");
    let run = failing.cairn(&["build", "recipe.yaml", "--color=always", "--no-color"]);
    assert!(
        !run.stdout.contains("\x1b[") && !run.stderr.contains("\x1b["),
        "--no-color wins"
    );
    // CLICOLOR_FORCE colours pipes when NO_COLOR is not set.
    let run = Command::new(env!("CARGO_BIN_EXE_cairn"))
        .current_dir(failing.path())
        .args(["build", "recipe.yaml"])
        .env_remove("NO_COLOR")
        .env("CLICOLOR_FORCE", "1")
        .env("XDG_CONFIG_HOME", failing.path().join(".config"))
        .stdin(Stdio::null())
        .output()
        .unwrap();
    assert!(String::from_utf8_lossy(&run.stdout).contains("\x1b["));
    assert!(String::from_utf8_lossy(&run.stderr).contains("\x1b["));
    // On a terminal with stdout piped, only stderr is coloured.
    let size = nix::pty::Winsize {
        ws_row: 40,
        ws_col: 120,
        ws_xpixel: 0,
        ws_ypixel: 0,
    };
    let pty = nix::pty::openpty(Some(&size), None).unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_cairn"))
        .current_dir(failing.path())
        .args(["build", "recipe.yaml"])
        .env_remove("NO_COLOR")
        .env_remove("CLICOLOR_FORCE")
        .env("XDG_CONFIG_HOME", failing.path().join(".config"))
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::from(pty.slave))
        .output()
        .unwrap();
    let mut err = String::new();
    let mut master = File::from(pty.master);
    // The slave side is closed once cairn is gone; read what it wrote.
    let mut buf = [0u8; 65536];
    if let Ok(n) = master.read(&mut buf) {
        err.push_str(&String::from_utf8_lossy(&buf[..n]));
    }
    assert!(
        !String::from_utf8_lossy(&out.stdout).contains("\x1b["),
        "stdout is a pipe"
    );
    assert!(
        err.contains("\x1b[1;31merror:"),
        "stderr is a terminal: {err:?}"
    );
}
