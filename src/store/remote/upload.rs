//! The background worker of `--cache-to`: checkpoints are exported and uploaded one after
//! another on their own thread while the build goes on with the next microsteps. A failing
//! store never fails the build: the worker reports, and after a failure of the store itself
//! skips what is left rather than waiting on a dead server once per checkpoint.

use std::io::IsTerminal;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc;
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use super::{Manifest, Pushed, Remote, human_bytes, human_rate, short};

/// Writes the checkpoint to the file, as a whole or (when given a base the store holds) as a
/// delta against that base; returns the base it used, if any.
pub type Export = Box<dyn FnOnce(&Path, Option<&str>) -> Result<Option<String>, String> + Send>;

pub struct Job {
    /// The manifest to write: `blob` holds the blob's file name suffix (`.tar.zst`).
    pub draft: Manifest,
    /// Where the export is written, removed after the upload.
    pub file: PathBuf,
    pub export: Export,
}

/// What the worker did, as it happens.
#[derive(Debug, Clone)]
pub enum Report {
    /// The export is done and its upload begins.
    Started {
        store: String,
        id: String,
        slug: String,
    },
    Uploaded {
        store: String,
        id: String,
        slug: String,
        bytes: u64,
        seconds: f64,
        base: Option<String>,
    },
    AlreadyThere {
        store: String,
        id: String,
        slug: String,
    },
    Failed {
        store: String,
        id: String,
        slug: String,
        message: String,
    },
    Skipped {
        store: String,
        id: String,
        slug: String,
    },
}

pub type Reporter = Arc<dyn Fn(Report) + Send + Sync>;

#[derive(Default)]
struct Current {
    label: String,
    total: u64,
    started: Option<Instant>,
}

pub struct Uploader {
    tx: Option<mpsc::Sender<Job>>,
    handle: Option<JoinHandle<()>>,
    done: Arc<AtomicU64>,
    current: Arc<Mutex<Current>>,
    queued: u64,
}

impl Uploader {
    pub fn start(remote: Remote, report: Reporter) -> Uploader {
        let (tx, rx) = mpsc::channel::<Job>();
        let done = Arc::new(AtomicU64::new(0));
        let current = Arc::new(Mutex::new(Current::default()));
        let progress = Arc::clone(&current);
        let finished = Arc::clone(&done);
        let bytes_now = Arc::new(AtomicU64::new(0));
        let handle = std::thread::Builder::new()
            .name("cairn-upload".into())
            .spawn(move || {
                let store = remote.shown().to_string();
                let mut pushed: Vec<String> = Vec::new();
                let mut broken = false;
                for job in rx {
                    let id = job.draft.id.clone();
                    let slug = job.draft.slug.clone();
                    if broken {
                        let _ = std::fs::remove_file(&job.file);
                        report(Report::Skipped {
                            store: store.clone(),
                            id,
                            slug,
                        });
                        finished.fetch_add(1, Ordering::SeqCst);
                        continue;
                    }
                    let started = |id: &str, slug: &str| {
                        report(Report::Started {
                            store: store.clone(),
                            id: id.to_string(),
                            slug: slug.to_string(),
                        })
                    };
                    let outcome =
                        run_job(&remote, job, &mut pushed, &progress, &bytes_now, &started);
                    let r = match outcome {
                        Ok(Some((t, base))) => Report::Uploaded {
                            store: store.clone(),
                            id,
                            slug,
                            bytes: t.bytes,
                            seconds: t.seconds,
                            base,
                        },
                        Ok(None) => Report::AlreadyThere {
                            store: store.clone(),
                            id,
                            slug,
                        },
                        Err((message, store_failed)) => {
                            broken |= store_failed;
                            Report::Failed {
                                store: store.clone(),
                                id,
                                slug,
                                message,
                            }
                        }
                    };
                    report(r);
                    if let Ok(mut c) = progress.lock() {
                        *c = Current::default();
                    }
                    finished.fetch_add(1, Ordering::SeqCst);
                }
            })
            .ok();
        Uploader {
            tx: Some(tx),
            handle,
            done,
            current,
            queued: 0,
        }
    }

    pub fn push(&mut self, job: Job) {
        if let Some(tx) = &self.tx
            && tx.send(job).is_ok()
        {
            self.queued += 1;
        }
    }

    /// Waits for every queued upload. On a terminal, a status line shows the one in flight
    /// with bytes and rate.
    pub fn finish(mut self, live: bool) {
        self.tx = None;
        let Some(handle) = self.handle.take() else {
            return;
        };
        let tty = live && std::io::stderr().is_terminal();
        let mut shown = false;
        while !handle.is_finished() {
            std::thread::sleep(Duration::from_millis(200));
            if !tty {
                continue;
            }
            let line = match self.current.lock() {
                Ok(c) if !c.label.is_empty() => {
                    let secs = c.started.map_or(0.0, |s| s.elapsed().as_secs_f64());
                    format!(
                        "Uploading checkpoints ({} of {} done): {} {} ({})",
                        self.done.load(Ordering::SeqCst),
                        self.queued,
                        c.label,
                        human_bytes(c.total),
                        human_rate(c.total, secs)
                    )
                }
                _ => continue,
            };
            eprint!("\r\x1b[2K{line}");
            shown = true;
        }
        if shown {
            eprint!("\r\x1b[2K");
        }
        let _ = handle.join();
    }
}

type JobResult = Result<Option<(super::Transfer, Option<String>)>, (String, bool)>;

/// One checkpoint: export (a delta when the store has its parent), upload. The bool of an error
/// says whether the store failed (as opposed to the export).
fn run_job(
    remote: &Remote,
    job: Job,
    pushed: &mut Vec<String>,
    current: &Arc<Mutex<Current>>,
    bytes_now: &Arc<AtomicU64>,
    started: &dyn Fn(&str, &str),
) -> JobResult {
    let Job {
        mut draft,
        file,
        export,
    } = job;
    let cleanup = |r| {
        let _ = std::fs::remove_file(&file);
        r
    };
    if let Ok(mut c) = current.lock() {
        c.label = format!("{} ({}) exporting", short(&draft.id), draft.slug);
        c.started = Some(Instant::now());
        c.total = 0;
    }
    match remote.manifest(&draft.id) {
        Ok(Some(_)) => return cleanup(Ok(None)),
        Ok(None) => {}
        Err(e) => return cleanup(Err((e.message, true))),
    }
    let parent_there = match &draft.parent {
        Some(p) if pushed.contains(p) => true,
        Some(p) => matches!(remote.manifest(p), Ok(Some(_))),
        None => false,
    };
    let base_offer = draft.parent.clone().filter(|_| parent_there);
    let base = match export(&file, base_offer.as_deref()) {
        Ok(b) => b,
        Err(e) => return cleanup(Err((format!("export failed: {e}"), false))),
    };
    // A driver may only base a delta on what it was offered.
    if base.is_some() && base != base_offer {
        return cleanup(Err((
            "the export claims a base it was not offered".into(),
            false,
        )));
    }
    draft.base = base.clone();
    if let Ok(mut c) = current.lock() {
        c.label = format!("{} ({})", short(&draft.id), draft.slug);
        c.started = Some(Instant::now());
    }
    let id = draft.id.clone();
    started(&draft.id, &draft.slug);
    let progress = |n: u64| {
        bytes_now.store(n, Ordering::Relaxed);
        if let Ok(mut c) = current.lock() {
            c.total = n;
        }
    };
    match remote.push(&file, draft, &progress) {
        Ok(Pushed::Uploaded(t)) => {
            pushed.push(id);
            cleanup(Ok(Some((t, base))))
        }
        Ok(Pushed::AlreadyThere) => {
            pushed.push(id);
            cleanup(Ok(None))
        }
        Err(e) => cleanup(Err((e.message, true))),
    }
}
