//! What the user sees: one stream of events, shown either in Kameleon's rhythm for people (with
//! a live status line on a terminal and a summary at the end) or as one JSON object per line for
//! programs (docs/json.md). Context output lines are events too, so the two views never disagree
//! about what happened.

pub mod color;
pub mod event;
pub mod progress;
pub mod report;
pub mod schema;
pub mod summary;
pub mod time;
pub mod units;
pub mod vocab;

use std::io::Write;
use std::sync::{Mutex, OnceLock};
use std::time::Duration;

use colored::Colorize;

pub use event::{CheckpointRow, Event, Stream};

use crate::recipe::Ctx;
use progress::{Activity, Estimates, Progress};
use schema::MicrostepStatus;
use summary::Tally;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    Human,
    Json,
    /// Nothing but warnings: for commands that print a report of their own.
    Quiet,
}

/// What the command line said about output, for every `Output` of the process.
#[derive(Debug, Clone, Copy, Default)]
pub struct Settings {
    pub colors: color::Colors,
    /// `-q`: errors and the summary only.
    pub quiet: bool,
}

static SETTINGS: OnceLock<Settings> = OnceLock::new();

/// Called once by main.
pub fn configure(settings: Settings) {
    let _ = SETTINGS.set(settings);
}

pub fn settings() -> Settings {
    SETTINGS.get().copied().unwrap_or_default()
}

#[derive(Default)]
struct State {
    tally: Tally,
    progress: Option<Progress>,
}

pub struct Output {
    format: Format,
    color: bool,
    color_err: bool,
    quiet: bool,
    state: Mutex<State>,
}

impl Output {
    pub fn new(format: Format, color: bool) -> Output {
        let s = settings();
        Output {
            format,
            color,
            color_err: s.colors.stderr,
            quiet: s.quiet,
            state: Mutex::new(State::default()),
        }
    }

    pub fn format(&self) -> Format {
        self.format
    }

    pub fn color(&self) -> bool {
        self.color
    }

    /// Whether stderr is coloured (errors shown during a build).
    pub fn color_err(&self) -> bool {
        self.color_err
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Shows the live status line when stdout is a terminal and people read the output.
    /// `runs[i]` says whether microstep i will run; `history` holds how long each slug took.
    pub fn start_progress(
        &self,
        slugs: &[&str],
        runs: &[bool],
        history: &std::collections::HashMap<String, f64>,
    ) {
        if self.format != Format::Human || self.quiet {
            return;
        }
        let estimates = Estimates::new(slugs, runs, history);
        let p = Progress::new(slugs.len(), estimates);
        if !p.is_hidden() {
            self.lock().progress = Some(p);
        }
    }

    pub fn stop_progress(&self) {
        if let Some(p) = self.lock().progress.take() {
            p.finish();
        }
    }

    /// Runs `f` (a prompt, a message printed outside the event stream) with the status line
    /// cleared, so the two never mix.
    pub fn suspend<R>(&self, f: impl FnOnce() -> R) -> R {
        let state = self.lock();
        match &state.progress {
            Some(p) => p.suspend(f),
            None => {
                drop(state);
                f()
            }
        }
    }

    /// What the current microstep is doing, for the status line.
    pub fn activity(&self, activity: Activity) {
        if let Some(p) = &self.lock().progress {
            p.activity(activity);
        }
    }

    pub fn line(&self, ctx: Ctx, stream: Stream, line: &str) {
        self.emit(Event::Output {
            context: ctx,
            stream,
            line: line.to_string(),
        });
    }

    pub fn message(&self, text: impl Into<String>) {
        self.emit(Event::Message { text: text.into() });
    }

    pub fn warning(&self, text: impl Into<String>) {
        self.emit(Event::Warning { text: text.into() });
    }

    /// An event for JSON readers only: a person already got it as a warning.
    pub fn emit_json_only(&self, event: Event) {
        if self.format == Format::Json {
            self.emit(event);
        }
    }

    /// The end-of-build summary, from what this output saw of the run.
    pub fn summary(&self, duration: Duration, resume: Option<String>) {
        let s = self.lock().tally.summary(duration.as_secs_f64(), resume);
        self.emit(Event::Summary(s));
    }

    pub fn emit(&self, event: Event) {
        let mut state = self.lock();
        state.tally.observe(&event);
        if let Some(p) = &state.progress {
            follow(p, &event);
        }
        if self.format == Format::Json {
            drop(state);
            schema::write(&event);
            return;
        }
        let shown = match self.format {
            Format::Quiet => matches!(event, Event::Warning { .. }),
            _ if self.quiet => matches!(event, Event::Summary(_)),
            _ => true,
        };
        if !shown {
            return;
        }
        // Warnings are for the person, not for a pipe reading the build's output.
        let to_stderr = matches!(event, Event::Warning { .. });
        let color = if to_stderr {
            self.color_err
        } else {
            self.color
        };
        let mut text = Vec::new();
        let _ = human(&mut text, &event, color);
        if text.is_empty() {
            return;
        }
        let text = crate::diag::secrets::redact(&String::from_utf8_lossy(&text)).into_bytes();
        let write = || {
            if to_stderr {
                let mut err = std::io::stderr().lock();
                let _ = err.write_all(&text);
                let _ = err.flush();
            } else {
                let mut out = std::io::stdout().lock();
                let _ = out.write_all(&text);
                let _ = out.flush();
            }
        };
        match &state.progress {
            Some(p) => p.suspend(write),
            None => write(),
        }
    }
}

/// Moves the status line along with the build.
fn follow(p: &Progress, event: &Event) {
    match event {
        Event::MicrostepStart {
            order,
            slug,
            action,
            ..
        } => {
            let activity = match action {
                crate::plan::schedule::Action::Run => Activity::Running,
                crate::plan::schedule::Action::UseCheckpoint => Activity::Restoring,
                crate::plan::schedule::Action::Skip | crate::plan::schedule::Action::Done => {
                    Activity::Skipping
                }
            };
            p.microstep(*order, slug, activity);
        }
        Event::CheckpointApplyStart { slug, .. } => p.applying(slug),
        Event::CheckpointCreateStart { .. } => p.activity(Activity::CreatingCheckpoint),
        Event::CheckpointUploadStart { .. } => p.activity(Activity::Uploading),
        Event::RunEnd { .. } => p.finish(),
        _ => {}
    }
}

fn paint(color: bool, s: &str, f: impl Fn(&str) -> colored::ColoredString) -> String {
    if color {
        f(s).to_string()
    } else {
        s.to_string()
    }
}

/// Kameleon's rhythm: `Step N : slug`, ` --> what`, `[ctx] line`, `Step X took`.
fn human(out: &mut impl Write, event: &Event, color: bool) -> std::io::Result<()> {
    let paint = |s: &str, f: fn(&str) -> colored::ColoredString| paint(color, s, f);
    match event {
        Event::MicrostepStart {
            order,
            slug,
            action,
            ..
        } => {
            writeln!(
                out,
                "{}",
                paint(&format!("Step {order} : {slug}"), |s| s.bold())
            )?;
            writeln!(out, " --> {}", action.describe())
        }
        Event::Output {
            context,
            stream,
            line,
        } => {
            let prefix = format!("[{context}]");
            let prefix = match stream {
                Stream::Stdout => paint(&prefix, |s| s.dimmed()),
                Stream::Stderr => paint(&prefix, |s| s.yellow()),
            };
            writeln!(out, "{prefix} {line}")
        }
        Event::StepEnd { step, duration, .. } => {
            writeln!(out, "Step {step} took: {} secs", summary::secs(*duration))
        }
        Event::CheckpointCreateStart { id, .. } => writeln!(
            out,
            " --> Creating checkpoint : {}",
            paint(crate::plan::id::short(id), |s| s.cyan())
        ),
        Event::CheckpointApplyStart { id, slug } => writeln!(
            out,
            " --> Applying checkpoint : {} ({slug})",
            paint(crate::plan::id::short(id), |s| s.cyan())
        ),
        Event::CheckpointUploadStart { id, .. } => writeln!(
            out,
            " --> Uploading checkpoint : {}",
            paint(crate::plan::id::short(id), |s| s.cyan())
        ),
        Event::CheckpointUploaded {
            id,
            slug,
            store,
            present: true,
            ..
        } => writeln!(
            out,
            " --> Checkpoint {} ({slug}) is already in {store}",
            paint(crate::plan::id::short(id), |s| s.cyan())
        ),
        Event::CheckpointUploaded {
            id,
            slug,
            store,
            bytes,
            duration,
            base,
            ..
        } => writeln!(
            out,
            " --> Pushed checkpoint {} ({slug}) to {store}: {}",
            paint(crate::plan::id::short(id), |s| s.cyan()),
            transfer(*bytes, base, *duration)
        ),
        Event::CheckpointDownloaded {
            id,
            slug,
            store,
            bytes,
            duration,
            base,
        } => writeln!(
            out,
            " --> Downloaded checkpoint {} ({slug}) from {store}: {}",
            paint(crate::plan::id::short(id), |s| s.cyan()),
            transfer(*bytes, base, *duration)
        ),
        Event::MicrostepEnd {
            status: MicrostepStatus::Failed,
            slug,
            exit_status,
            ..
        } => match exit_status {
            Some(code) => writeln!(out, " --> {slug} failed (exit status {code})"),
            None => writeln!(out, " --> {slug} failed"),
        },
        Event::Message { text } => writeln!(out, "{text}"),
        Event::Warning { text } => {
            writeln!(out, "{} {text}", paint("warning:", |s| s.yellow().bold()))
        }
        Event::Summary(s) => {
            for line in summary::lines(s) {
                writeln!(out, "{line}")?;
            }
            Ok(())
        }
        Event::RunEnd {
            recipe,
            status,
            duration,
            ..
        } => {
            match status {
                schema::RunOutcome::Succeeded => writeln!(
                    out,
                    "{}",
                    paint(&format!("Successfully built '{recipe}'"), |s| s
                        .green()
                        .bold())
                )?,
                schema::RunOutcome::Failed => writeln!(
                    out,
                    "{}",
                    paint(&format!("Build of '{recipe}' failed"), |s| s.red().bold())
                )?,
                schema::RunOutcome::Interrupted => writeln!(
                    out,
                    "{}",
                    paint(&format!("Build of '{recipe}' interrupted"), |s| s
                        .yellow()
                        .bold())
                )?,
            }
            writeln!(out, "Total duration : {} secs", summary::secs(*duration))
        }
        // Events of other commands, which print their own tables, and of the JSON envelope.
        Event::Start { .. }
        | Event::RunStart { .. }
        | Event::CheckpointApplied { .. }
        | Event::CheckpointCreated { .. }
        | Event::CheckpointUploadFailed { .. }
        | Event::CheckpointDownloadFailed { .. }
        | Event::MicrostepEnd { .. }
        | Event::PlanMicrostep { .. }
        | Event::Explain { .. }
        | Event::PlanCommands { .. }
        | Event::PlanDriver { .. }
        | Event::Checkpoint(_)
        | Event::Graph { .. }
        | Event::Error(_)
        | Event::End { .. } => Ok(()),
    }
}

/// `, a delta against 3f2a9c1b0d4e` for an upload or download that is one.
/// What an upload or a download moved: "1.0 MiB, a delta against abc in 0.50 secs (2.0 MB/s)".
fn transfer(bytes: u64, base: &Option<String>, duration: f64) -> String {
    format!(
        "{}{} in {} secs ({})",
        units::human_bytes(bytes),
        delta(base),
        summary::secs(duration),
        units::human_rate(bytes, duration)
    )
}

fn delta(base: &Option<String>) -> String {
    base.as_ref()
        .map(|b| format!(", a delta against {}", crate::plan::id::short(b)))
        .unwrap_or_default()
}

pub fn duration_secs(d: Duration) -> f64 {
    d.as_secs_f64()
}
