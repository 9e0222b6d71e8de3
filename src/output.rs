//! What the user sees: one stream of events, shown either in Kameleon's rhythm for people or as
//! one JSON object per line for programs. Context output lines are events too, so the two views
//! never disagree about what happened.

pub mod color;
pub mod progress;
pub mod report;
pub mod schema;

use std::io::Write;
use std::sync::Mutex;
use std::time::Duration;

use colored::Colorize;

use crate::recipe::Ctx;

#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Stream {
    Stdout,
    Stderr,
}

#[derive(Debug, Clone, serde::Serialize)]
#[serde(tag = "event", rename_all = "snake_case")]
pub enum Event {
    RunStart {
        recipe: String,
        build_dir: String,
        microsteps: usize,
    },
    MicrostepStart {
        order: usize,
        slug: String,
        id: String,
        action: String,
    },
    Output {
        context: Ctx,
        stream: Stream,
        line: String,
    },
    MicrostepEnd {
        order: usize,
        slug: String,
        step: String,
        id: String,
        status: String,
        duration: f64,
    },
    /// Every microstep of a step is done (Kameleon's "Step X took").
    StepEnd {
        section: String,
        step: String,
        duration: f64,
    },
    CheckpointCreated {
        slug: String,
        id: String,
        duration: f64,
    },
    CheckpointApplied {
        slug: String,
        id: String,
    },
    Message {
        text: String,
    },
    Warning {
        text: String,
    },
    RunEnd {
        recipe: String,
        status: String,
        duration: f64,
    },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    Human,
    Json,
    /// Nothing but warnings: for commands that print a report of their own.
    Quiet,
}

pub struct Output {
    format: Format,
    color: bool,
    lock: Mutex<()>,
}

fn secs(d: f64) -> String {
    if d < 10.0 {
        format!("{d:.2}")
    } else {
        format!("{d:.0}")
    }
}

impl Output {
    pub fn new(format: Format, color: bool) -> Output {
        Output {
            format,
            color,
            lock: Mutex::new(()),
        }
    }

    pub fn format(&self) -> Format {
        self.format
    }

    pub fn color(&self) -> bool {
        self.color
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

    pub fn emit(&self, event: Event) {
        let _guard = self.lock.lock().unwrap_or_else(|p| p.into_inner());
        // Warnings are for the person, not for a pipe reading the build's output.
        if let (Event::Warning { .. }, Format::Human | Format::Quiet) = (&event, self.format) {
            let mut err = std::io::stderr().lock();
            let _ = self.human(&mut err, &event);
            return;
        }
        let mut out = std::io::stdout().lock();
        let _ = match self.format {
            // Every event carries the time it happened, so a reader can time what lies
            // between two events (an apply, say) without timestamping lines itself.
            Format::Json => match serde_json::to_value(&event) {
                Ok(serde_json::Value::Object(mut map)) => {
                    map.insert("time".into(), serde_json::json!(crate::checkpoint::now()));
                    writeln!(out, "{}", serde_json::Value::Object(map))
                }
                _ => Ok(()),
            },
            Format::Human => self.human(&mut out, &event),
            Format::Quiet => match &event {
                Event::Warning { .. } => self.human(&mut out, &event),
                _ => Ok(()),
            },
        };
        let _ = out.flush();
    }

    fn paint(&self, s: &str, f: impl Fn(&str) -> colored::ColoredString) -> String {
        if self.color {
            f(s).to_string()
        } else {
            s.to_string()
        }
    }

    fn human(&self, out: &mut impl Write, event: &Event) -> std::io::Result<()> {
        match event {
            Event::RunStart { .. } => Ok(()),
            Event::MicrostepStart {
                order,
                slug,
                action,
                ..
            } => {
                writeln!(
                    out,
                    "{}",
                    self.paint(&format!("Step {order} : {slug}"), |s| s.bold())
                )?;
                writeln!(out, " --> {action}")
            }
            Event::Output {
                context,
                stream,
                line,
            } => {
                let prefix = format!("[{context}]");
                let prefix = match stream {
                    Stream::Stdout => self.paint(&prefix, |s| s.dimmed()),
                    Stream::Stderr => self.paint(&prefix, |s| s.yellow()),
                };
                writeln!(out, "{prefix} {line}")
            }
            Event::MicrostepEnd { .. } => Ok(()),
            Event::StepEnd { step, duration, .. } => {
                writeln!(out, "Step {step} took: {} secs", secs(*duration))
            }
            Event::CheckpointCreated { id, .. } => writeln!(
                out,
                " --> Creating checkpoint : {}",
                self.paint(crate::checkpoint_id::short(id), |s| s.cyan())
            ),
            Event::CheckpointApplied { id, slug } => writeln!(
                out,
                " --> Applying checkpoint : {} ({slug})",
                self.paint(crate::checkpoint_id::short(id), |s| s.cyan())
            ),
            Event::Message { text } => writeln!(out, "{text}"),
            Event::Warning { text } => writeln!(
                out,
                "{} {text}",
                self.paint("warning:", |s| s.yellow().bold())
            ),
            Event::RunEnd {
                recipe,
                status,
                duration,
            } => {
                if status == "succeeded" {
                    writeln!(
                        out,
                        "{}",
                        self.paint(&format!("Successfully built '{recipe}'"), |s| s
                            .green()
                            .bold())
                    )?;
                }
                writeln!(out, "Total duration : {} secs", secs(*duration))
            }
        }
    }
}

pub fn duration_secs(d: Duration) -> f64 {
    d.as_secs_f64()
}
