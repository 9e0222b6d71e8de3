//! The live status line of a build on a terminal: `[k/N] slug`, the time spent in the current
//! microstep, what cairn is doing there, and the time left as estimated from the durations
//! recorded by earlier runs of the same build dir. It is drawn by indicatif below the build's
//! lines, cleared while a line is printed (so it never mixes with command output), and hidden
//! when stdout is not a terminal: logs keep Kameleon's rhythm, line by line.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressState, ProgressStyle};

/// What the current microstep is doing, as the status line says it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Activity {
    Running,
    CreatingCheckpoint,
    ApplyingCheckpoint,
    Uploading,
    Restoring,
    Skipping,
}

impl Activity {
    pub fn label(self) -> &'static str {
        match self {
            Activity::Running => "running",
            Activity::CreatingCheckpoint => "creating checkpoint",
            Activity::ApplyingCheckpoint => "applying checkpoint",
            Activity::Uploading => "uploading",
            Activity::Restoring => "restored",
            Activity::Skipping => "skipped",
        }
    }
}

/// Expected seconds per microstep of this plan (None: no earlier run says), for the estimate.
#[derive(Debug, Clone, Default)]
pub struct Estimates {
    pub expected: Vec<Option<f64>>,
}

impl Estimates {
    /// `history` maps a slug to how long it took when it last completed; `runs[i]` says whether
    /// microstep i will run (restored and skipped ones take no time worth counting).
    pub fn new(slugs: &[&str], runs: &[bool], history: &HashMap<String, f64>) -> Estimates {
        Estimates {
            expected: slugs
                .iter()
                .zip(runs)
                .map(|(slug, run)| {
                    if *run {
                        history.get(*slug).copied()
                    } else {
                        Some(0.0)
                    }
                })
                .collect(),
        }
    }

    /// Seconds expected after microstep `index` (0-based); None when no microstep ahead that
    /// will run has a recorded duration.
    fn after(&self, index: usize) -> Option<f64> {
        let ahead = self.expected.get(index + 1..).unwrap_or_default();
        if ahead.iter().any(|e| e.is_some_and(|s| s > 0.0)) || ahead.iter().all(Option::is_some) {
            Some(ahead.iter().flatten().sum())
        } else {
            None
        }
    }

    fn of(&self, index: usize) -> Option<f64> {
        self.expected.get(index).copied().flatten()
    }

    fn known(&self) -> bool {
        self.expected.iter().any(|e| e.is_some_and(|s| s > 0.0))
    }
}

struct Live {
    activity: Activity,
    since: Instant,
    /// Seconds expected for the microsteps after the current one.
    ahead: Option<f64>,
    /// Seconds expected for the current one.
    current: Option<f64>,
}

pub struct Progress {
    bar: ProgressBar,
    live: Arc<Mutex<Live>>,
    estimates: Estimates,
}

/// `m:ss`, or `h:mm:ss` past an hour.
pub fn clock(secs: f64) -> String {
    let s = secs.max(0.0).round() as u64;
    if s >= 3600 {
        format!("{}:{:02}:{:02}", s / 3600, s / 60 % 60, s % 60)
    } else {
        format!("{}:{:02}", s / 60, s % 60)
    }
}

impl Progress {
    /// A status line on stdout if stdout is a terminal; otherwise one that draws nothing.
    pub fn new(total: usize, estimates: Estimates) -> Progress {
        Progress::with_target(total, estimates, ProgressDrawTarget::stdout())
    }

    pub fn hidden() -> Progress {
        Progress::with_target(0, Estimates::default(), ProgressDrawTarget::hidden())
    }

    fn with_target(total: usize, estimates: Estimates, target: ProgressDrawTarget) -> Progress {
        let live = Arc::new(Mutex::new(Live {
            activity: Activity::Running,
            since: Instant::now(),
            ahead: None,
            current: None,
        }));
        let (a, b) = (Arc::clone(&live), Arc::clone(&live));
        let style = ProgressStyle::with_template("[{pos}/{len}] {wide_msg} {t} {act}")
            .unwrap_or_else(|_| ProgressStyle::default_spinner())
            .with_key(
                "t",
                move |_: &ProgressState, w: &mut dyn std::fmt::Write| {
                    let live = a.lock().unwrap_or_else(|p| p.into_inner());
                    let _ = write!(w, "{}", clock(live.since.elapsed().as_secs_f64()));
                },
            )
            .with_key(
                "act",
                move |_: &ProgressState, w: &mut dyn std::fmt::Write| {
                    let live = b.lock().unwrap_or_else(|p| p.into_inner());
                    let _ = write!(w, "{}", live.activity.label());
                    if let Some(left) = left(&live) {
                        let _ = write!(w, ", ~{} left", clock(left));
                    }
                },
            );
        let bar = ProgressBar::with_draw_target(Some(total as u64), target).with_style(style);
        if !bar.is_hidden() {
            bar.enable_steady_tick(Duration::from_millis(250));
        }
        Progress {
            bar,
            live,
            estimates,
        }
    }

    pub fn is_hidden(&self) -> bool {
        self.bar.is_hidden()
    }

    pub fn has_estimate(&self) -> bool {
        self.estimates.known()
    }

    /// Microstep `order` (1-based) begins.
    pub fn microstep(&self, order: usize, slug: &str, activity: Activity) {
        {
            let mut live = self.live.lock().unwrap_or_else(|p| p.into_inner());
            live.activity = activity;
            live.since = Instant::now();
            let index = order.saturating_sub(1);
            // Without any earlier run, a "0:00 left" at the last microstep would be a guess.
            live.ahead = self
                .estimates
                .after(index)
                .filter(|_| self.estimates.known());
            live.current = self.estimates.of(index);
        }
        self.bar.set_position(order as u64);
        self.bar.set_message(slug.to_string());
    }

    /// A checkpoint is applied before any microstep runs: name it while that lasts.
    pub fn applying(&self, slug: &str) {
        {
            let mut live = self.live.lock().unwrap_or_else(|p| p.into_inner());
            live.activity = Activity::ApplyingCheckpoint;
            live.since = Instant::now();
        }
        if self.bar.position() == 0 {
            self.bar.set_message(format!("checkpoint after {slug}"));
        }
        self.bar.tick();
    }

    pub fn activity(&self, activity: Activity) {
        self.live.lock().unwrap_or_else(|p| p.into_inner()).activity = activity;
        self.bar.tick();
    }

    /// Runs `f` (which prints) with the line cleared, then draws it again.
    pub fn suspend<R>(&self, f: impl FnOnce() -> R) -> R {
        self.bar.suspend(f)
    }

    pub fn finish(&self) {
        self.bar.finish_and_clear();
    }
}

fn left(live: &Live) -> Option<f64> {
    let ahead = live.ahead?;
    let current = live
        .current
        .map(|c| (c - live.since.elapsed().as_secs_f64()).max(0.0))
        .unwrap_or(0.0);
    Some(ahead + current)
}

impl Drop for Progress {
    fn drop(&mut self) {
        self.bar.finish_and_clear();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn estimate_sums_what_will_run_after_the_current_microstep() {
        let history: HashMap<String, f64> =
            [("a".to_string(), 2.0), ("b".into(), 3.0), ("c".into(), 5.0)].into();
        let e = Estimates::new(&["a", "b", "c", "d"], &[true, false, true, true], &history);
        assert_eq!(e.expected, vec![Some(2.0), Some(0.0), Some(5.0), None]);
        assert_eq!(e.after(0), Some(5.0));
        assert_eq!(e.after(2), None, "only an unknown microstep is left");
        assert_eq!(e.after(3), Some(0.0));
        let none = Estimates::new(&["x", "y"], &[true, true], &HashMap::new());
        assert!(!none.known());
        assert_eq!(none.after(0), None);
    }

    #[test]
    fn clock_reads_like_a_stopwatch() {
        assert_eq!(clock(0.4), "0:00");
        assert_eq!(clock(62.0), "1:02");
        assert_eq!(clock(3725.0), "1:02:05");
    }
}
