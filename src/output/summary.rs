//! The end-of-build summary, counted from the events of the run as they pass.

use super::event::{Event, Summary};
use super::schema::MicrostepStatus;

#[derive(Debug, Default)]
pub struct Tally {
    s: Summary,
    sized: bool,
}

impl Tally {
    pub fn observe(&mut self, event: &Event) {
        let s = &mut self.s;
        match event {
            Event::MicrostepEnd {
                status,
                duration,
                exit_status,
                slug,
                ..
            } => match status {
                MicrostepStatus::Completed => {
                    s.ran += 1;
                    s.command_time += duration;
                }
                MicrostepStatus::Failed => {
                    s.ran += 1;
                    s.failed += 1;
                    s.command_time += duration;
                    s.failed_microstep = Some(slug.clone());
                    s.exit_status = *exit_status;
                }
                MicrostepStatus::Restored => s.restored += 1,
                MicrostepStatus::Skipped => s.skipped += 1,
                MicrostepStatus::Done => s.done += 1,
            },
            Event::CheckpointCreated { duration, size, .. } => {
                s.checkpoints_created += 1;
                s.checkpoint_time += duration;
                // A microstep's duration includes the checkpoint made after it.
                s.command_time -= duration;
                if let Some(n) = size {
                    self.sized = true;
                    *s.checkpoints_size.get_or_insert(0) += n;
                }
            }
            Event::CheckpointApplied { duration, .. } => {
                s.checkpoints_applied += 1;
                s.checkpoint_time += duration;
            }
            _ => {}
        }
    }

    pub fn summary(&self, duration: f64, resume: Option<String>) -> Summary {
        let mut s = self.s.clone();
        s.duration = duration;
        s.command_time = s.command_time.max(0.0);
        s.resume = resume;
        if !self.sized {
            s.checkpoints_size = None;
        }
        s
    }
}

/// `1.5 KiB`, `20.0 MiB`: sizes as people read them.
pub fn bytes(n: u64) -> String {
    let units = ["B", "KiB", "MiB", "GiB", "TiB"];
    let mut v = n as f64;
    let mut i = 0;
    while v >= 1024.0 && i < units.len() - 1 {
        v /= 1024.0;
        i += 1;
    }
    if i == 0 {
        format!("{n} B")
    } else {
        format!("{v:.1} {}", units[i])
    }
}

/// Seconds as Kameleon prints them: two decimals under ten, none above.
pub fn secs(d: f64) -> String {
    if d < 10.0 {
        format!("{d:.2}")
    } else {
        format!("{d:.0}")
    }
}

/// The summary as lines for people.
pub fn lines(s: &Summary) -> Vec<String> {
    let mut out = Vec::new();
    let mut counts = vec![
        format!("{} ran", s.ran),
        format!("{} restored from a checkpoint", s.restored),
        format!("{} skipped", s.skipped),
    ];
    if s.done > 0 {
        counts.push(format!("{} done by an earlier run", s.done));
    }
    out.push(format!("Summary: microsteps: {}", counts.join(", ")));
    let mut cp = format!("{} checkpoint(s) created", s.checkpoints_created);
    if let Some(size) = s.checkpoints_size {
        cp.push_str(&format!(" ({})", bytes(size)));
    }
    if s.checkpoints_applied > 0 {
        cp.push_str(&format!(", {} applied", s.checkpoints_applied));
    }
    out.push(format!(
        "         {cp}; {} secs in commands, {} secs in checkpoints",
        secs(s.command_time),
        secs(s.checkpoint_time)
    ));
    if let Some(slug) = &s.failed_microstep {
        out.push(match s.exit_status {
            Some(code) => format!("Failed: {slug} (exit status {code})"),
            None => format!("Failed: {slug}"),
        });
    }
    if let Some(resume) = &s.resume {
        out.push(format!("To resume: {resume}"));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn end(slug: &str, status: MicrostepStatus, duration: f64, exit: Option<i32>) -> Event {
        Event::MicrostepEnd {
            order: 1,
            slug: slug.into(),
            step: "s".into(),
            id: "i".into(),
            status,
            duration,
            exit_status: exit,
        }
    }

    #[test]
    fn counts_and_times_come_from_the_events() {
        let mut t = Tally::default();
        t.observe(&Event::CheckpointApplied {
            slug: "a".into(),
            id: "i".into(),
            duration: 0.5,
        });
        t.observe(&end("a", MicrostepStatus::Restored, 0.0, None));
        t.observe(&Event::CheckpointCreated {
            slug: "b".into(),
            id: "i".into(),
            duration: 1.0,
            size: Some(2048),
        });
        t.observe(&end("b", MicrostepStatus::Completed, 3.0, Some(0)));
        t.observe(&end("c", MicrostepStatus::Failed, 1.0, Some(2)));
        let s = t.summary(5.0, Some("cairn resume r.yaml".into()));
        assert_eq!((s.ran, s.restored, s.failed), (2, 1, 1));
        assert_eq!((s.checkpoints_created, s.checkpoints_applied), (1, 1));
        assert_eq!(s.checkpoints_size, Some(2048));
        assert_eq!(s.command_time, 3.0, "the create is not command time");
        assert_eq!(s.checkpoint_time, 1.5);
        assert_eq!(s.failed_microstep.as_deref(), Some("c"));
        assert_eq!(
            lines(&s),
            [
                "Summary: microsteps: 2 ran, 1 restored from a checkpoint, 0 skipped",
                "         1 checkpoint(s) created (2.0 KiB), 1 applied; 3.00 secs in commands, 1.50 secs in checkpoints",
                "Failed: c (exit status 2)",
                "To resume: cairn resume r.yaml",
            ]
        );
    }
}
