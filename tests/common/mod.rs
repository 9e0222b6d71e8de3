//! A small builder for end-to-end tests, in the style of casey/just's: describe a recipe tree,
//! run the real `cairn` binary in it, and look at what it printed and what it left behind.
//!
//! ```ignore
//! let out = Test::new()
//!     .file("recipe.yaml", "setup: ...")
//!     .file("steps/setup/x.yaml", "- m: ...")
//!     .args(&["build", "recipe.yaml", "-g", "a=b"])
//!     .run();
//! out.success();
//! ```

#![allow(dead_code)]

pub mod loopfs;
pub mod seaweed;

use std::fmt;
use std::fs;
use std::path::{Path, PathBuf};

use assert_cmd::Command;
use tempfile::TempDir;

/// A recipe tree in a temporary directory, and the command line to run in it.
pub struct Test {
    dir: TempDir,
    args: Vec<String>,
    env: Vec<(String, String)>,
    stdin: Vec<u8>,
    current_dir: Option<PathBuf>,
}

impl Default for Test {
    fn default() -> Self {
        Test::new()
    }
}

impl Test {
    pub fn new() -> Test {
        Test {
            dir: tempfile::Builder::new()
                .prefix("cairn-test-")
                .tempdir()
                .expect("create a temporary directory"),
            args: Vec::new(),
            env: Vec::new(),
            stdin: Vec::new(),
            current_dir: None,
        }
    }

    /// Writes `contents` (unindented, see [`unindent`]) to `path` under the tree, creating
    /// directories on the way.
    pub fn file(self, path: &str, contents: &str) -> Test {
        self.write(path, unindent(contents).as_bytes());
        self
    }

    /// Writes bytes as they are.
    pub fn bytes(self, path: &str, contents: &[u8]) -> Test {
        self.write(path, contents);
        self
    }

    fn write(&self, path: &str, contents: &[u8]) {
        let full = self.dir.path().join(path);
        if let Some(parent) = full.parent() {
            fs::create_dir_all(parent).expect("create directories");
        }
        fs::write(&full, contents).unwrap_or_else(|e| panic!("write {}: {e}", full.display()));
    }

    pub fn args(mut self, args: &[&str]) -> Test {
        self.args.extend(args.iter().map(|a| a.to_string()));
        self
    }

    pub fn arg(mut self, arg: impl Into<String>) -> Test {
        self.args.push(arg.into());
        self
    }

    pub fn env(mut self, key: &str, value: &str) -> Test {
        self.env.push((key.to_string(), value.to_string()));
        self
    }

    /// Runs the command in another directory than the tree (the tree stays the test's).
    pub fn current_dir(mut self, dir: impl Into<PathBuf>) -> Test {
        self.current_dir = Some(dir.into());
        self
    }

    /// The root of the tree.
    pub fn path(&self) -> &Path {
        self.dir.path()
    }

    /// Runs the binary and returns what it did; the tree stays for inspection.
    pub fn run(&self) -> Run {
        let mut cmd = Command::cargo_bin("cairn").expect("the cairn binary is built");
        cmd.current_dir(self.current_dir.as_deref().unwrap_or(self.dir.path()))
            .args(&self.args)
            .env("NO_COLOR", "1")
            .env("XDG_CONFIG_HOME", self.dir.path().join(".config"))
            .env_remove("RUST_LOG")
            // No terminal: stdin is an empty pipe, as in CI.
            .write_stdin(self.stdin.clone())
            .timeout(std::time::Duration::from_secs(60));
        for (k, v) in &self.env {
            cmd.env(k, v);
        }
        let output = cmd.output().expect("run cairn");
        Run {
            args: self.args.clone(),
            root: self.dir.path().to_path_buf(),
            stdout: String::from_utf8_lossy(&output.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
            code: output.status.code(),
        }
    }

    /// The default build dir of a recipe named `recipe`: `./build/<recipe>`.
    pub fn build_dir(&self, recipe: &str) -> PathBuf {
        self.dir.path().join("build").join(recipe)
    }

    /// A file under the tree, as text; panics if it is missing.
    pub fn read(&self, path: &str) -> String {
        let full = self.dir.path().join(path);
        fs::read_to_string(&full).unwrap_or_else(|e| panic!("read {}: {e}", full.display()))
    }

    /// A file under the tree, as bytes; panics if it is missing.
    pub fn read_bytes(&self, path: &str) -> Vec<u8> {
        let full = self.dir.path().join(path);
        fs::read(&full).unwrap_or_else(|e| panic!("read {}: {e}", full.display()))
    }

    /// A file the build of `recipe.yaml` left in its default build dir, `build/recipe/<path>`.
    pub fn built(&self, path: &str) -> String {
        self.read(&format!("build/recipe/{path}"))
    }

    /// The lines of a file in the default build dir of `recipe.yaml`.
    pub fn built_lines(&self, path: &str) -> Vec<String> {
        self.built(path).lines().map(str::to_string).collect()
    }

    pub fn exists(&self, path: &str) -> bool {
        self.dir.path().join(path).exists()
    }
}

/// What one run of the binary did.
pub struct Run {
    pub args: Vec<String>,
    pub root: PathBuf,
    pub stdout: String,
    pub stderr: String,
    pub code: Option<i32>,
}

impl fmt::Display for Run {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "cairn {}\nexit code: {:?}\n--- stdout ---\n{}--- stderr ---\n{}",
            self.args.join(" "),
            self.code,
            self.stdout,
            self.stderr
        )
    }
}

impl Run {
    /// Asserts the exit code, showing everything the run printed when it differs.
    #[track_caller]
    pub fn code(&self, expected: i32) -> &Run {
        assert_eq!(self.code, Some(expected), "unexpected exit code\n{self}");
        self
    }

    #[track_caller]
    pub fn success(&self) -> &Run {
        self.code(0)
    }

    #[track_caller]
    pub fn stdout_has(&self, needle: &str) -> &Run {
        assert!(
            self.stdout.contains(needle),
            "stdout lacks {needle:?}\n{self}"
        );
        self
    }

    #[track_caller]
    pub fn stdout_lacks(&self, needle: &str) -> &Run {
        assert!(
            !self.stdout.contains(needle),
            "stdout has {needle:?}\n{self}"
        );
        self
    }

    #[track_caller]
    pub fn stderr_has(&self, needle: &str) -> &Run {
        assert!(
            self.stderr.contains(needle),
            "stderr lacks {needle:?}\n{self}"
        );
        self
    }

    /// The `Step N : slug` lines, as slugs in the order they were printed.
    pub fn steps(&self) -> Vec<String> {
        self.stdout
            .lines()
            .filter_map(|l| l.strip_prefix("Step "))
            .filter_map(|l| l.split_once(" : ").map(|(_, slug)| slug.to_string()))
            .collect()
    }

    /// Stderr with the tree's path (as given and canonical) replaced by `[TMP]`, for snapshots.
    pub fn normalized_stderr(&self) -> String {
        normalize(&self.stderr, &self.root)
    }
}

/// Replaces every spelling of `root` in `text` by `[TMP]`.
pub fn normalize(text: &str, root: &Path) -> String {
    let mut out = text.to_string();
    let mut spellings = vec![root.display().to_string()];
    if let Ok(c) = root.canonicalize() {
        spellings.push(c.display().to_string());
    }
    spellings.sort_by_key(|s| std::cmp::Reverse(s.len()));
    for s in spellings {
        out = out.replace(&s, "[TMP]");
    }
    out
}

/// Strips the common leading indentation of the non-blank lines and a leading newline, so
/// recipes can be written indented inside raw strings.
pub fn unindent(text: &str) -> String {
    let text = text.strip_prefix('\n').unwrap_or(text);
    let indent = text
        .lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| l.len() - l.trim_start_matches(' ').len())
        .min()
        .unwrap_or(0);
    let mut out = String::with_capacity(text.len());
    for line in text.split_inclusive('\n') {
        // Blank lines, and the indentation before a closing quote, keep nothing but their end.
        if line.trim().is_empty() {
            out.push_str(if line.ends_with('\n') { "\n" } else { "" });
        } else {
            out.push_str(&line[indent..]);
        }
    }
    out
}

/// The 12 lowercase hex characters of a shown checkpoint ID.
pub fn is_short_id(s: &str) -> bool {
    s.len() == 12
        && s.bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
}

/// The root of the repository, for the shipped recipes.
pub fn repo_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

// ---- helpers for the checkpoint and driver tests ----

impl Test {
    /// Runs the binary in the tree with `args` instead of the builder's, so one tree can see a
    /// sequence of commands (build, rebuild, list, ...).
    pub fn cairn(&self, args: &[&str]) -> Run {
        let mut cmd = Command::cargo_bin("cairn").expect("the cairn binary is built");
        cmd.current_dir(self.current_dir.as_deref().unwrap_or(self.dir.path()))
            .args(args)
            .env("NO_COLOR", "1")
            .env("XDG_CONFIG_HOME", self.dir.path().join(".config"))
            .env_remove("RUST_LOG")
            .write_stdin(self.stdin.clone())
            .timeout(std::time::Duration::from_secs(60));
        for (k, v) in &self.env {
            cmd.env(k, v);
        }
        let output = cmd.output().expect("run cairn");
        Run {
            args: args.iter().map(|a| a.to_string()).collect(),
            root: self.dir.path().to_path_buf(),
            stdout: String::from_utf8_lossy(&output.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
            code: output.status.code(),
        }
    }

    /// Rewrites a file of the tree after the builder is made (an input that changes).
    pub fn rewrite(&self, path: &str, contents: &str) {
        self.write(path, unindent(contents).as_bytes());
    }
}

/// Whether a test that needs a backend (root, a tool, a kernel feature) can run. When it cannot,
/// the test prints why and should return early, unless `CAIRN_REQUIRE_BACKENDS=1` is set (CI
/// with every backend installed), where a missing backend fails the test instead.
#[track_caller]
pub fn require_backend(name: &str, available: bool) -> bool {
    if available {
        return true;
    }
    if std::env::var("CAIRN_REQUIRE_BACKENDS").is_ok_and(|v| v == "1") {
        panic!("backend `{name}` is not available here, and CAIRN_REQUIRE_BACKENDS=1 requires it");
    }
    eprintln!(
        "skipping: backend `{name}` is not available here (set CAIRN_REQUIRE_BACKENDS=1 to make this a failure)"
    );
    false
}

/// Whether `program` is on PATH (or in /sbin, /usr/sbin, where mkfs and losetup live).
pub fn have_program(program: &str) -> bool {
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .chain(["/sbin", "/usr/sbin"].map(PathBuf::from))
        .any(|d| d.join(program).is_file())
}

/// Whether the tests run as root (loop mounts need it).
pub fn is_root() -> bool {
    // The second field of `Uid:` is the effective UID.
    fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines().find_map(|l| {
                l.strip_prefix("Uid:")
                    .map(|r| r.split_whitespace().nth(1) == Some("0"))
            })
        })
        .unwrap_or(false)
}

// ---- helpers for the fixture-tree tests (Kameleon's corpus) ----

impl Test {
    /// A test whose tree starts as a copy of `tests/fixtures/<dir>`, so a build never writes
    /// into the repository.
    pub fn fixture(dir: &str) -> Test {
        let t = Test::new();
        copy_tree(
            &repo_root().join("tests").join("fixtures").join(dir),
            t.path(),
        );
        t
    }
}

/// Copies a directory tree, files with their permissions.
pub fn copy_tree(from: &Path, to: &Path) {
    fs::create_dir_all(to).unwrap_or_else(|e| panic!("create {}: {e}", to.display()));
    let entries = fs::read_dir(from).unwrap_or_else(|e| panic!("read {}: {e}", from.display()));
    for entry in entries {
        let entry = entry.expect("a directory entry");
        let target = to.join(entry.file_name());
        if entry.file_type().expect("a file type").is_dir() {
            copy_tree(&entry.path(), &target);
        } else {
            fs::copy(entry.path(), &target)
                .unwrap_or_else(|e| panic!("copy {}: {e}", entry.path().display()));
        }
    }
}

/// The events of type `kind` in a `--json` stream (docs/json.md), after checking that every
/// line is one JSON object.
pub fn json_events(stdout: &str, kind: &str) -> Vec<serde_json::Value> {
    stdout
        .lines()
        .map(|l| {
            serde_json::from_str::<serde_json::Value>(l)
                .unwrap_or_else(|e| panic!("not JSON ({e}): {l}"))
        })
        .filter(|v| v["event"] == kind)
        .collect()
}
