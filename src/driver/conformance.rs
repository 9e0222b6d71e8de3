//! `cairn driver check`'s conformance scenario, which every shipped driver passes: create A,
//! change, create B, apply A (content as at A), apply B, list shows both, delete A, clear. Also
//! what `cairn driver list` shows: the drivers found, and whether each is usable here.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Instant;

use crate::diag::error::{Error, Result};
use crate::diag::source::Span;
use crate::driver::{BoundDriver, Driver, Op};
use crate::exec::contexts::Contexts;
use crate::output::{Format, Output};
use crate::plan::id as checkpoint_id;
use crate::recipe::Text;
use crate::vars::{Origin, Scope};

/// A scope like a recipe's for a driver used outside any recipe: the built-ins of a build in
/// the scratch dir, `rootfs` and `target` as globals, and `-g` values.
fn scratch_scope(build_dir: &Path, target: &Path, globals: &[(String, String)]) -> Arc<Scope> {
    let mut scope = crate::plan::builtins("driver-check", build_dir, build_dir, true);
    for name in ["rootfs", "target"] {
        scope.set(
            name,
            Text::new(
                target.display().to_string(),
                Span::synthetic("driver check"),
            ),
            Origin::Global,
        );
    }
    scope.set_command_line(globals, crate::recipe::dialect::Dialect::Native);
    Arc::new(scope)
}

fn scratch_dir() -> Result<tempfile::TempDir> {
    tempfile::Builder::new()
        .prefix("cairn-driver-")
        .tempdir()
        .map_err(|e| Error::io("cannot create a scratch directory", std::env::temp_dir(), e))
}

/// Every driver `cairn driver list` shows: files in the search path from `cwd` first, then the
/// shipped ones no file overrides, by name.
pub fn available(cwd: PathBuf) -> BTreeMap<String, PathBuf> {
    let mut seen: BTreeMap<String, PathBuf> = BTreeMap::new();
    for dir in crate::driver::search_dirs(&[cwd], &[]) {
        let Ok(entries) = std::fs::read_dir(&dir) else {
            continue;
        };
        let mut files: Vec<PathBuf> = entries
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| p.extension().is_some_and(|x| x == "yaml"))
            .collect();
        files.sort();
        for f in files {
            let name = f
                .file_stem()
                .map(|s| s.to_string_lossy().into_owned())
                .unwrap_or_default();
            seen.entry(name).or_insert(f);
        }
    }
    for (name, _) in crate::driver::builtin::DRIVERS {
        seen.entry(name.to_string())
            .or_insert_with(|| crate::driver::builtin::path(name));
    }
    seen
}

/// Whether the driver's `enabled` operation passes on this machine, run in a scratch dir.
pub fn enabled_here(driver: Driver) -> Result<bool> {
    let scratch = scratch_dir()?;
    let target = scratch.path().join("rootfs");
    let _ = std::fs::create_dir_all(&target);
    let bound = BoundDriver::bind(driver, &scratch_scope(scratch.path(), &target, &[]));
    let output = Arc::new(Output::new(Format::Quiet, false));
    let mut contexts = Contexts::with_specs(&BTreeMap::new(), scratch.path(), true, &output)?;
    let enabled = bound.enabled(&mut contexts).is_ok();
    contexts.stop_all();
    Ok(enabled)
}

/// One operation of the scenario: whether it did what it must, how long it took, and what
/// it found.
pub struct Row {
    pub op: String,
    pub ok: bool,
    pub secs: f64,
    pub detail: String,
}

/// The scenario's outcome: every operation run, and the first that failed with why.
pub struct Report {
    pub name: String,
    pub rows: Vec<Row>,
    pub failure: Option<(String, String)>,
}

/// Runs the scenario on the driver in `file`, in `target` (an empty directory, or a scratch
/// one when None).
pub fn check(file: &Path, target: Option<&Path>, globals: &[(String, String)]) -> Result<Report> {
    let driver = Driver::load(file, None)?;
    let name = driver.name.clone();
    let scratch = scratch_dir()?;
    let target = match target {
        // The check writes and deletes files in the target: never in one that holds any.
        Some(t) if std::fs::read_dir(t).is_ok_and(|mut d| d.next().is_some()) => {
            return Err(Error::Usage(format!(
                "--target {} is not empty: `driver check` writes, changes and deletes files in its target; give it an empty directory (a fresh subvolume or dataset on the real backend)",
                t.display()
            )));
        }
        Some(t) => crate::recipe::paths::absolute(t),
        None => {
            let t = scratch.path().join("target");
            std::fs::create_dir_all(&t).map_err(|e| Error::io("cannot create", &t, e))?;
            t
        }
    };
    let bound = BoundDriver::bind(driver, &scratch_scope(scratch.path(), &target, globals));
    bound.validate()?;
    let output = Arc::new(Output::new(Format::Quiet, false));
    let mut contexts = Contexts::with_specs(&BTreeMap::new(), scratch.path(), true, &output)?;
    let mut rows: Vec<Row> = Vec::new();
    let result = scenario(&bound, &mut contexts, &target, &mut rows);
    contexts.stop_all();
    Ok(Report {
        name,
        rows,
        failure: result.err(),
    })
}

/// What the target holds: a tree digest for a directory, or the driver's own `fingerprint`
/// output for targets that are not directories (a VM's disk).
fn fingerprint(
    bound: &BoundDriver,
    contexts: &mut Contexts,
    target: &Path,
) -> std::result::Result<String, String> {
    if bound.driver.has(Op::Fingerprint) {
        return bound
            .capture(contexts, Op::Fingerprint, "")
            .map_err(|e| e.to_string());
    }
    checkpoint_id::hash_path(target).map_err(|e| e.to_string())
}

fn change(
    bound: &BoundDriver,
    contexts: &mut Contexts,
    target: &Path,
    round: &str,
) -> std::result::Result<(), String> {
    if bound.driver.has(Op::Mutate) {
        return bound
            .run(contexts, Op::Mutate, round)
            .map_err(|e| e.to_string());
    }
    let w = |p: &str, text: &str| {
        std::fs::write(target.join(p), text).map_err(|e| format!("writing {p}: {e}"))
    };
    match round {
        "A" => {
            std::fs::create_dir_all(target.join("dir")).map_err(|e| e.to_string())?;
            let _ = std::fs::remove_file(target.join("link"));
            w("a.txt", "state A\n")?;
            w("dir/b.txt", "only in A\n")?;
            std::os::unix::fs::symlink("a.txt", target.join("link")).map_err(|e| e.to_string())?;
        }
        _ => {
            w("a.txt", "state B, longer than A\n")?;
            std::fs::remove_file(target.join("dir/b.txt")).map_err(|e| e.to_string())?;
            w("c.txt", "only in B\n")?;
        }
    }
    Ok(())
}

type Failure = (String, String);

fn scenario(
    bound: &BoundDriver,
    contexts: &mut Contexts,
    target: &Path,
    rows: &mut Vec<Row>,
) -> std::result::Result<(), Failure> {
    let id_a = checkpoint_id::chain("", "cairn driver check A");
    let id_b = checkpoint_id::chain("", "cairn driver check B");
    let mut step = |op: &str,
                    f: &mut dyn FnMut() -> std::result::Result<String, String>|
     -> std::result::Result<(), Failure> {
        let t = Instant::now();
        let r = f();
        let secs = t.elapsed().as_secs_f64();
        let (ok, detail) = match &r {
            Ok(d) => (true, d.clone()),
            Err(e) => (false, e.lines().next().unwrap_or_default().to_string()),
        };
        rows.push(Row {
            op: op.to_string(),
            ok,
            secs,
            detail,
        });
        r.map(|_| ()).map_err(|e| (op.to_string(), e))
    };
    let run = |op: Op, id: &str, contexts: &mut Contexts| {
        bound.run(contexts, op, id).map_err(|e| e.render(false))
    };
    let list = |contexts: &mut Contexts| bound.list(contexts).map_err(|e| e.render(false));

    step("enabled", &mut || {
        run(Op::Enabled, "", contexts).map(|_| String::new())
    })?;
    let mut state_a = String::new();
    step("change (A)", &mut || {
        change(bound, contexts, target, "A")?;
        state_a = fingerprint(bound, contexts, target)?;
        Ok(String::new())
    })?;
    step("create A", &mut || {
        run(Op::Create, &id_a, contexts).map(|_| checkpoint_id::short(&id_a).to_string())
    })?;
    let mut state_b = String::new();
    step("change (B)", &mut || {
        change(bound, contexts, target, "B")?;
        state_b = fingerprint(bound, contexts, target)?;
        if state_b == state_a {
            return Err("the change left the target as it was".into());
        }
        Ok(String::new())
    })?;
    step("create B", &mut || {
        run(Op::Create, &id_b, contexts).map(|_| checkpoint_id::short(&id_b).to_string())
    })?;
    for (label, id, want) in [("apply A", &id_a, &state_a), ("apply B", &id_b, &state_b)] {
        step(label, &mut || {
            run(Op::Apply, id, contexts)?;
            contexts.stop_all();
            let got = fingerprint(bound, contexts, target)?;
            if &got != want {
                return Err(format!(
                    "after `apply` the target differs from the checkpoint ({} expected, {} found)",
                    short_fp(want),
                    short_fp(&got)
                ));
            }
            Ok("content matches".into())
        })?;
    }
    step("list", &mut || {
        let ids = list(contexts)?;
        let has = |id: &str| ids.iter().any(|l| id.starts_with(l.as_str()));
        if !has(&id_a) || !has(&id_b) {
            return Err(format!(
                "`list` must show both checkpoints; it printed {} ID(s)",
                ids.len()
            ));
        }
        Ok("shows A and B".into())
    })?;
    if bound.driver.has(Op::Export) {
        let dir = contexts.dir.clone();
        let file_a = dir.join("check-A.export");
        let file_b = dir.join("check-B.export");
        let export = |id: &str, parent: &str, file: &Path, contexts: &mut Contexts| {
            let _ = std::fs::remove_file(file);
            let base_file = crate::driver::base_marker(file);
            let _ = std::fs::remove_file(&base_file);
            let f = file.display().to_string();
            bound
                .run_with(
                    contexts,
                    Op::Export,
                    id,
                    &[("export_file", &f), ("parent_id", parent)],
                )
                .map_err(|e| e.render(false))?;
            let size = std::fs::metadata(file)
                .map_err(|_| format!("`export` wrote no file {f}"))?
                .len();
            let base = match std::fs::read_to_string(&base_file) {
                Ok(b) => Some(b.trim().to_string()),
                Err(_) => None,
            };
            if base.as_deref().is_some_and(|b| b != parent) {
                return Err(String::from(
                    "`export` wrote a delta against a checkpoint it was not offered",
                ));
            }
            Ok::<_, String>((size, base))
        };
        let mut base_b = None;
        step("export A", &mut || {
            let (size, base) = export(&id_a, "", &file_a, contexts)?;
            if base.is_some() {
                return Err("`export` wrote a delta although no parent was offered".into());
            }
            Ok(format!("{size} bytes"))
        })?;
        step("export B", &mut || {
            let (size, base) = export(&id_b, &id_a, &file_b, contexts)?;
            base_b = base;
            Ok(match &base_b {
                Some(_) => format!("{size} bytes, a delta against A"),
                None => format!("{size} bytes, whole"),
            })
        })?;
        let import = |label: &str,
                      id: &str,
                      file: &Path,
                      base: &str,
                      want: &str,
                      contexts: &mut Contexts| {
            if bound.driver.has(Op::Delete) {
                run(Op::Delete, id, contexts)?;
                if list(contexts)?.iter().any(|l| l == id) {
                    return Err(format!("{label} is still listed after `delete`"));
                }
            }
            let f = file.display().to_string();
            bound
                .run_with(
                    contexts,
                    Op::Import,
                    id,
                    &[("import_file", &f), ("parent_id", base)],
                )
                .map_err(|e| e.render(false))?;
            if !list(contexts)?.iter().any(|l| l == id) {
                return Err(format!("{label} is not listed after `import`"));
            }
            run(Op::Apply, id, contexts)?;
            contexts.stop_all();
            let got = fingerprint(bound, contexts, target)?;
            if got != want {
                return Err(format!(
                    "after `import` and `apply` the target differs from the checkpoint ({} expected, {} found)",
                    short_fp(want),
                    short_fp(&got)
                ));
            }
            Ok("content matches".to_string())
        };
        step("import B", &mut || {
            import(
                "B",
                &id_b,
                &file_b,
                base_b.as_deref().unwrap_or(""),
                &state_b,
                contexts,
            )
        })?;
        step("import A", &mut || {
            import("A", &id_a, &file_a, "", &state_a, contexts)
        })?;
        let _ = std::fs::remove_file(&file_a);
        let _ = std::fs::remove_file(&file_b);
    }
    if bound.driver.has(Op::Delete) {
        step("delete A", &mut || {
            run(Op::Delete, &id_a, contexts)?;
            let ids = list(contexts)?;
            let has = |id: &str| ids.iter().any(|l| l == id);
            if has(&id_a) {
                return Err("A is still listed after `delete`".into());
            }
            if !has(&id_b) {
                return Err("`delete` of A removed B too".into());
            }
            Ok("A gone, B kept".into())
        })?;
    }
    if bound.driver.has(Op::Clear) {
        step("clear", &mut || {
            run(Op::Clear, "", contexts)?;
            let ids = list(contexts)?;
            if !ids.is_empty() {
                return Err(format!(
                    "{} checkpoint(s) still listed after `clear`",
                    ids.len()
                ));
            }
            Ok("nothing listed".into())
        })?;
    }
    Ok(())
}

fn short_fp(s: &str) -> &str {
    s.get(..12).unwrap_or(s)
}
