//! `--cache-to` and `--cache-from`: the build's side of sharing checkpoints through an object
//! store (the store itself is `crate::store::remote`). Nothing here fails a build: a store that cannot
//! be reached, a blob that does not match its manifest, an export or import that fails are
//! warnings naming the store, and the build goes on with what it has here.

use std::io::IsTerminal;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Instant;

use crate::diag::error::{Error, Result};
use crate::driver::Op;
use crate::exec::contexts::Contexts;
use crate::output::time::now;
use crate::output::{Event, Output};
use crate::plan::schedule::checkpointable;
use crate::plan::{Plan, PlannedMicrostep};
use crate::state::CheckpointRecord;
use crate::store::Store;
use crate::store::remote::upload::{Job, Report, Uploader};
use crate::store::remote::{Manifest, Remote, human_bytes, human_rate, manifest, short};

/// Refuses a malformed store URL before anything runs (a usage error); whether the store
/// answers is only known later, and is a warning then.
pub fn check_urls(urls: &[&str]) -> Result<()> {
    for u in urls {
        crate::store::remote::StoreUrl::parse(u).map_err(|e| {
            Error::Usage(format!(
                "{e} (e.g. s3://my-bucket/cairn or file:///srv/cairn-cache)"
            ))
        })?;
    }
    Ok(())
}

/// Where exports and downloads are spooled: in the build dir, on the disk the build uses.
fn spool(plan: &Plan) -> PathBuf {
    crate::recipe::paths::absolute(&plan.build_dir)
        .join(".cairn")
        .join("cache")
}

/// The newest checkpoint that exists before `ms` in the plan: the parent of its checkpoint,
/// and what an incremental export is a delta against.
fn parent_of(store: &Store<'_>, plan: &Plan, ms: &PlannedMicrostep) -> Option<String> {
    plan.microsteps[..ms.index]
        .iter()
        .rev()
        .find(|m| checkpointable(m) && store.exists(&m.id))
        .map(|m| m.id.clone())
}

/// Pushes each checkpoint as it is created, on a worker thread.
pub struct Pusher {
    uploader: Option<Uploader>,
    dir: PathBuf,
    recipe: String,
    output: Arc<Output>,
    warned: bool,
}

impl Pusher {
    /// None when there is nothing to push to, or the store cannot be opened (said as a warning).
    pub fn start(url: &str, plan: &Plan, output: &Arc<Output>) -> Option<Pusher> {
        let remote = match Remote::open(url) {
            Ok(r) => r,
            Err(e) => {
                output.warning(format!("{e}; checkpoints will not be pushed"));
                return None;
            }
        };
        let out = Arc::clone(output);
        let uploader = Uploader::start(remote, Arc::new(move |r| report_upload(&out, r)));
        Some(Pusher {
            uploader: Some(uploader),
            dir: spool(plan),
            recipe: plan.recipe.name.clone(),
            output: Arc::clone(output),
            warned: false,
        })
    }

    /// Queues the checkpoint just created after `ms`. The export runs on the worker when all
    /// its commands are host commands; otherwise here, in the build's contexts, whole.
    pub fn created(
        &mut self,
        store: &Store<'_>,
        contexts: &mut Contexts,
        plan: &Plan,
        ms: &PlannedMicrostep,
    ) {
        let driver = &store.driver;
        if !driver.driver.has(Op::Export) {
            if !self.warned {
                self.output.warning(format!(
                    "checkpoint driver `{}` has no `export` operation: its checkpoints cannot be pushed",
                    driver.name()
                ));
                self.warned = true;
            }
            return;
        }
        if let Err(e) = std::fs::create_dir_all(&self.dir) {
            self.output.warning(format!(
                "cannot push checkpoint {}: cannot create {}: {e}",
                short(&ms.id),
                self.dir.display()
            ));
            return;
        }
        let file = self.dir.join(format!("{}.export", ms.id));
        let f = file.display().to_string();
        let parent = parent_of(store, plan, ms);
        let t = now();
        let draft = Manifest {
            format: manifest::FORMAT,
            recipe: self.recipe.clone(),
            slug: ms.slug.clone(),
            id: ms.id.clone(),
            parent: parent.clone(),
            base: None,
            driver: driver.name().to_string(),
            blob: ".export".into(),
            sha256: String::new(),
            size: 0,
            created: manifest::rfc3339(t as i64),
            created_unix: t,
            cairn_version: env!("CARGO_PKG_VERSION").into(),
        };
        let scripts = |parent: &str| {
            driver.host_scripts(
                Op::Export,
                &ms.id,
                &[("export_file", &f), ("parent_id", parent)],
            )
        };
        let job = match (scripts(""), parent.as_deref().map(scripts).transpose()) {
            (Ok(Some(whole)), Ok(delta)) => {
                let delta = delta.flatten();
                let cwd = contexts.dir.clone();
                let export: crate::store::remote::upload::Export =
                    Box::new(move |file: &Path, offer: Option<&str>| {
                        let scripts = match (offer, delta) {
                            (Some(_), Some(d)) => d,
                            _ => whole,
                        };
                        run_host(&scripts, &cwd)?;
                        read_base(file)
                    });
                Job {
                    draft,
                    file,
                    export,
                }
            }
            (Ok(None), _) => {
                // Commands in the recipe's contexts: export now, whole, then upload later.
                let r = driver.run_with(
                    contexts,
                    Op::Export,
                    &ms.id,
                    &[("export_file", &f), ("parent_id", "")],
                );
                if let Err(e) = r {
                    self.output.warning(format!(
                        "cannot push checkpoint {} ({}): its export failed: {}",
                        short(&ms.id),
                        ms.slug,
                        e.to_string().lines().next().unwrap_or_default()
                    ));
                    let _ = std::fs::remove_file(&file);
                    return;
                }
                Job {
                    draft,
                    file,
                    export: Box::new(|file: &Path, _| read_base(file).map(|_| None)),
                }
            }
            (Err(e), _) | (_, Err(e)) => {
                self.output
                    .warning(format!("cannot push checkpoint {}: {e}", short(&ms.id)));
                return;
            }
        };
        if let Some(u) = self.uploader.as_mut() {
            u.push(job);
        }
    }

    /// Waits for the uploads still queued (unless the build was interrupted: then they are
    /// abandoned, and the next build pushes again).
    pub fn finish(mut self, wait: bool) {
        if let Some(u) = self.uploader.take() {
            if wait {
                u.finish(true);
            } else {
                self.output
                    .warning("interrupted: checkpoints not yet pushed are left unpushed");
            }
        }
    }
}

/// Runs scripts in the host shell the way a context runs a command: `set -e -o pipefail`.
fn run_host(scripts: &[String], cwd: &Path) -> std::result::Result<(), String> {
    for s in scripts {
        let out = std::process::Command::new("bash")
            .arg("-c")
            .arg(format!("set -e -o pipefail\n{s}"))
            .current_dir(cwd)
            .stdin(std::process::Stdio::null())
            .output()
            .map_err(|e| format!("cannot run bash: {e}"))?;
        if !out.status.success() {
            let err = String::from_utf8_lossy(&out.stderr);
            let tail: Vec<&str> = err.lines().rev().take(3).collect();
            return Err(format!(
                "exited with {}: {}",
                out.status,
                tail.into_iter().rev().collect::<Vec<_>>().join(" / ")
            ));
        }
    }
    Ok(())
}

/// The base an export says its delta is against (`<file>.base`), removing the marker.
fn read_base(file: &Path) -> std::result::Result<Option<String>, String> {
    let marker = crate::driver::base_marker(file);
    let base = std::fs::read_to_string(&marker)
        .ok()
        .map(|s| s.trim().to_string());
    let _ = std::fs::remove_file(&marker);
    Ok(base.filter(|b| !b.is_empty()))
}

fn report_upload(output: &Output, r: Report) {
    match r {
        Report::Started { store: _, id, slug } => {
            output.emit_json_only(Event::CheckpointUploadStart { slug, id })
        }
        Report::Uploaded {
            store,
            id,
            slug,
            bytes,
            seconds,
            base,
        } => output.emit(Event::CheckpointUploaded {
            slug,
            id,
            duration: seconds,
            store,
            bytes,
            base,
            present: false,
        }),
        Report::AlreadyThere { store, id, slug } => output.emit(Event::CheckpointUploaded {
            slug,
            id,
            duration: 0.0,
            store,
            bytes: 0,
            base: None,
            present: true,
        }),
        Report::Failed {
            store,
            id,
            slug,
            message,
        } => {
            output.warning(format!(
                "could not push checkpoint {} ({slug}) to {store}: {message}",
                short(&id)
            ));
            output.emit_json_only(Event::CheckpointUploadFailed {
                slug,
                id,
                store,
                skipped: false,
                message,
            });
        }
        Report::Skipped { store, id, slug } => {
            let message = format!("store {store} failed earlier in this build");
            output.warning(format!(
                "not pushing checkpoint {} ({slug}): {message}",
                short(&id)
            ));
            output.emit_json_only(Event::CheckpointUploadFailed {
                slug,
                id,
                store,
                skipped: true,
                message,
            });
        }
    }
}

/// `--cache-from`: finds the newest checkpoint of the plan that the stores have and that is
/// newer than the newest one here, downloads it (and the checkpoints its delta needs), checks
/// it against its manifest and imports it, so the resume that follows starts there. A
/// checkpoint that fails any of that is reported and never applied; the next older one is
/// tried.
pub fn pull(
    urls: &[String],
    plan: &Plan,
    store: &mut Store<'_>,
    contexts: &mut Contexts,
    output: &Output,
) {
    if urls.is_empty() {
        return;
    }
    if !store.driver.driver.has(Op::Import) {
        output.warning(format!(
            "checkpoint driver `{}` has no `import` operation: --cache-from cannot use the stores",
            store.driver.name()
        ));
        return;
    }
    let mut remotes: Vec<Remote> = Vec::new();
    for u in urls {
        match Remote::open(u) {
            Ok(r) => remotes.push(r),
            Err(e) => output.warning(format!("{e}; not using it")),
        }
    }
    let local = store.newest_valid(plan);
    let candidates: Vec<&PlannedMicrostep> = plan
        .microsteps
        .iter()
        .rev()
        .filter(|ms| checkpointable(ms) && local.is_none_or(|l| ms.index > l))
        .collect();
    let dir = spool(plan);
    let mut dead = vec![false; remotes.len()];
    for ms in candidates {
        for (i, remote) in remotes.iter().enumerate() {
            if dead[i] {
                continue;
            }
            let m = match remote.manifest(&ms.id) {
                Ok(Some(m)) => m,
                Ok(None) => continue,
                Err(e) => {
                    output.warning(format!("{e}; not using it"));
                    dead[i] = true;
                    continue;
                }
            };
            if m.driver != store.driver.name() {
                output.warning(format!(
                    "checkpoint {} ({}) in {} was made by driver `{}`, this build uses `{}`: not using it",
                    short(&m.id),
                    ms.slug,
                    remote.shown(),
                    m.driver,
                    store.driver.name()
                ));
                continue;
            }
            match fetch_and_import(remote, &m, plan, store, contexts, output, &dir, 0) {
                Ok(()) => {
                    output.message(format!(
                        " --> Resuming from checkpoint {} ({}) of {}",
                        short(&m.id),
                        ms.slug,
                        remote.shown()
                    ));
                    return;
                }
                Err(why) => output.warning(format!(
                    "not using checkpoint {} ({}) from {}: {why}",
                    short(&m.id),
                    ms.slug,
                    remote.shown()
                )),
            }
        }
    }
}

/// Downloads, verifies and imports one checkpoint, first the one its delta is against when
/// that is not here.
#[allow(clippy::too_many_arguments)]
fn fetch_and_import(
    remote: &Remote,
    m: &Manifest,
    plan: &Plan,
    store: &mut Store<'_>,
    contexts: &mut Contexts,
    output: &Output,
    dir: &Path,
    depth: usize,
) -> std::result::Result<(), String> {
    if let Some(base) = &m.base
        && !store.exists(base)
    {
        if depth > 1000 {
            return Err("its chain of deltas is too long".into());
        }
        let bm = remote
            .manifest(base)
            .map_err(|e| e.to_string())?
            .ok_or_else(|| {
                format!(
                    "it is a delta against {}, which the store does not have",
                    short(base)
                )
            })?;
        fetch_and_import(remote, &bm, plan, store, contexts, output, dir, depth + 1)
            .map_err(|e| format!("the checkpoint its delta needs, {}: {e}", short(base)))?;
    }
    std::fs::create_dir_all(dir).map_err(|e| format!("cannot create {}: {e}", dir.display()))?;
    let file = dir.join(format!("{}.import", m.id));
    let tty = std::io::stderr().is_terminal() && output.format() == crate::output::Format::Human;
    let started = Instant::now();
    let last = std::sync::Mutex::new(Instant::now());
    let progress = |n: u64| {
        if !tty {
            return;
        }
        if let Ok(mut l) = last.lock()
            && l.elapsed().as_millis() >= 200
        {
            *l = Instant::now();
            eprint!(
                "\r\x1b[2KDownloading checkpoint {}: {} of {} ({})",
                short(&m.id),
                human_bytes(n),
                human_bytes(m.size),
                human_rate(n, started.elapsed().as_secs_f64())
            );
        }
    };
    let fetched = remote.fetch(m, &file, &progress);
    if tty {
        eprint!("\r\x1b[2K");
    }
    let t = match fetched {
        Ok(t) => t,
        Err(e) => {
            output.emit_json_only(Event::CheckpointDownloadFailed {
                slug: m.slug.clone(),
                id: m.id.clone(),
                store: remote.shown().into(),
                message: e.message.clone(),
            });
            return Err(e.message);
        }
    };
    output.emit(Event::CheckpointDownloaded {
        slug: m.slug.clone(),
        id: m.id.clone(),
        store: remote.shown().into(),
        bytes: t.bytes,
        duration: t.seconds,
        base: m.base.clone(),
    });
    let result = import(m, &file, plan, store, contexts);
    let _ = std::fs::remove_file(&file);
    if let Err(why) = &result {
        output.emit_json_only(Event::CheckpointDownloadFailed {
            slug: m.slug.clone(),
            id: m.id.clone(),
            store: remote.shown().into(),
            message: why.clone(),
        });
    }
    result
}

/// Imports a verified blob through the driver, recorded like a create: an import cut short
/// is cleaned up at the next start, and never applied.
fn import(
    m: &Manifest,
    file: &Path,
    plan: &Plan,
    store: &mut Store<'_>,
    contexts: &mut Contexts,
) -> std::result::Result<(), String> {
    let started = Instant::now();
    let slug = plan
        .microsteps
        .iter()
        .find(|ms| ms.id == m.id)
        .map_or_else(|| m.slug.clone(), |ms| ms.slug.clone());
    let manifest = plan
        .microsteps
        .iter()
        .find(|ms| ms.id == m.id)
        .and_then(|ms| serde_json::to_string(&ms.manifest).ok())
        .unwrap_or_else(|| "{}".into());
    store
        .db
        .checkpoint_creating(&CheckpointRecord {
            id: m.id.clone(),
            slug,
            parent: m.parent.clone(),
            driver: store.driver.name().to_string(),
            created_at: now(),
            duration: None,
            manifest,
            ready: false,
        })
        .map_err(|e| e.to_string())?;
    let f = file.display().to_string();
    let base = m.base.clone().unwrap_or_default();
    let r = store.driver.run_with(
        contexts,
        Op::Import,
        &m.id,
        &[("import_file", &f), ("parent_id", &base)],
    );
    if let Err(e) = r {
        if store.driver.driver.has(Op::Delete) {
            let _ = store.driver.run(contexts, Op::Delete, &m.id);
            let _ = store.db.forget_checkpoint(&m.id);
        }
        return Err(format!(
            "its import failed: {}",
            e.to_string().lines().next().unwrap_or_default()
        ));
    }
    store
        .db
        .checkpoint_ready(&m.id, started.elapsed().as_secs_f64())
        .map_err(|e| e.to_string())?;
    if !store.exists(&m.id) {
        store.existing.push(m.id.clone());
    }
    Ok(())
}
