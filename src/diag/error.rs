//! Error types and their rendering. Every error is rendered once, at the top, with the place in
//! the user's file that caused it; the exit code says which kind of failure it was.

use std::fmt::Write as _;
use std::io;
use std::path::PathBuf;

use colored::Colorize;

use crate::diag::source::Span;

/// Exit codes are part of the contract (docs/cli.md): scripts branch on them.
pub mod exit {
    pub const OK: i32 = 0;
    pub const COMMAND_FAILED: i32 = 1;
    pub const USAGE: i32 = 2;
    pub const BAD_INPUT: i32 = 3;
    pub const CHECKPOINT: i32 = 4;
    pub const LOCKED: i32 = 5;
    pub const INTERRUPTED: i32 = 130;
    pub const TERMINATED: i32 = 143;
}

/// A message about a place in a file: what is wrong there, and what to do about it.
#[derive(Debug, Clone)]
pub struct Diagnostic {
    pub message: String,
    pub span: Option<Span>,
    pub hint: Option<String>,
    pub notes: Vec<String>,
}

impl Diagnostic {
    pub fn new(message: impl Into<String>) -> Diagnostic {
        Diagnostic {
            message: message.into(),
            span: None,
            hint: None,
            notes: Vec::new(),
        }
    }

    pub fn at(span: &Span, message: impl Into<String>) -> Diagnostic {
        Diagnostic {
            span: Some(span.clone()),
            ..Diagnostic::new(message)
        }
    }

    pub fn hint(mut self, hint: impl Into<String>) -> Diagnostic {
        self.hint = Some(hint.into());
        self
    }

    pub fn note(mut self, note: impl Into<String>) -> Diagnostic {
        self.notes.push(note.into());
        self
    }

    fn render(&self, out: &mut String, color: bool) {
        let paint = |s: &str, f: fn(&str) -> colored::ColoredString| {
            if color {
                f(s).to_string()
            } else {
                s.to_string()
            }
        };
        let _ = writeln!(
            out,
            "{} {}",
            paint("error:", |s| s.red().bold()),
            paint(&self.message, |s| s.bold())
        );
        if let Some(span) = &self.span {
            if span.is_synthetic() {
                let _ = writeln!(out, "  --> {span}");
            } else {
                let gutter = span.line.to_string().len();
                let pad = " ".repeat(gutter);
                let _ = writeln!(out, "{pad}--> {span}");
                if let Some(line) = span.file.line(span.line) {
                    let _ = writeln!(out, "{pad} |");
                    let _ = writeln!(out, "{} | {}", span.line, line);
                    let lead: String = line
                        .chars()
                        .take(span.col.saturating_sub(1))
                        .map(|c| if c == '\t' { '\t' } else { ' ' })
                        .collect();
                    let carets = "^".repeat(span.len.max(1));
                    let _ = writeln!(out, "{pad} | {lead}{}", paint(&carets, |s| s.red().bold()));
                }
            }
        }
        for note in &self.notes {
            for (i, line) in note.lines().enumerate() {
                let lead = if i == 0 { "  = note: " } else { "          " };
                let _ = writeln!(out, "{lead}{line}");
            }
        }
        if let Some(hint) = &self.hint {
            let _ = writeln!(out, "  = {} {hint}", paint("hint:", |s| s.cyan().bold()));
        }
    }
}

/// The bytes an unprivileged writer can still use on the file system holding `dir`.
pub fn free_bytes(dir: &std::path::Path) -> Option<u64> {
    let st = nix::sys::statvfs::statvfs(dir).ok()?;
    Some(st.blocks_available() as u64 * st.fragment_size() as u64)
}

/// Whether a command's last lines of output say that it ran out of disk space.
pub fn says_disk_full(tail: &[String]) -> bool {
    tail.iter().any(|l| l.contains("No space left on device"))
}

/// What cairn knows about a command that failed, to tell the user where and why.
#[derive(Debug, Clone)]
pub struct CommandFailure {
    pub slug: String,
    pub context: String,
    pub status: i32,
    pub command: String,
    pub tail: Vec<String>,
    pub span: Option<Span>,
}

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("{}", .0.message)]
    BadInput(Box<Diagnostic>),
    #[error("{0}")]
    Usage(String),
    #[error("microstep {} failed", .0.slug)]
    CommandFailed(Box<CommandFailure>),
    #[error("{}", .0.message)]
    Checkpoint(Box<Diagnostic>),
    #[error("{}", .0.message)]
    Breakpoint(Box<Diagnostic>),
    #[error("{}", .0.message)]
    Verify(Box<Diagnostic>),
    #[error("interrupted")]
    Interrupted { signal: i32, resume: String },
    #[error("{}", .0.message)]
    Locked(Box<Diagnostic>),
    /// The disk filled up under something cairn itself was writing (its state database, a
    /// checkpoint it copies): one error naming what and where, whatever the layer.
    #[error("{}", .0.message)]
    NoSpace(Box<Diagnostic>),
    #[error("{what} {}: {source}", .path.display())]
    Io {
        what: &'static str,
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    /// The state database failed (`state::StateError`, boxed so this lowest layer need not
    /// know the database).
    #[error(transparent)]
    State(Box<dyn std::error::Error + Send + Sync>),
    #[error("{0}")]
    Other(String),
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

impl From<Diagnostic> for Error {
    fn from(d: Diagnostic) -> Error {
        Error::BadInput(Box::new(d))
    }
}

impl Error {
    pub fn io(what: &'static str, path: impl Into<PathBuf>, source: io::Error) -> Error {
        let path = path.into();
        if source.raw_os_error() == Some(nix::libc::ENOSPC) {
            return Error::no_space(&format!("{} ({what})", path.display()), &path);
        }
        Error::Io { what, path, source }
    }

    /// A full disk while cairn wrote `what` at `path`.
    pub fn no_space(what: &str, path: &std::path::Path) -> Error {
        let dir = path.parent().unwrap_or(path);
        let mut d = Diagnostic::new(format!("no space left on device: cannot write {what}"));
        if let Some(free) = free_bytes(dir) {
            d = d.note(format!(
                "the file system holding {} has {free} bytes free",
                dir.display()
            ));
        }
        Error::NoSpace(Box::new(d.hint(format!(
            "free space there (`df -h {}`); nothing half-written was kept, and the next \
             `cairn build` reports this run as interrupted and resumes it where it stopped \
             (`--restart` starts over)",
            dir.display()
        ))))
    }

    /// Adds a note to an error that carries a diagnostic (what happened before it).
    pub fn with_note(self, note: String) -> Error {
        match self {
            Error::NoSpace(d) => Error::NoSpace(Box::new(d.note(note))),
            e => e,
        }
    }

    pub fn checkpoint(d: Diagnostic) -> Error {
        Error::Checkpoint(Box::new(d))
    }

    pub fn exit_code(&self) -> i32 {
        match self {
            Error::BadInput(_) => exit::BAD_INPUT,
            Error::Usage(_) => exit::USAGE,
            Error::CommandFailed(_)
            | Error::Breakpoint(_)
            | Error::Verify(_)
            | Error::Io { .. }
            | Error::Other(_) => exit::COMMAND_FAILED,
            Error::Checkpoint(_) | Error::State(_) | Error::NoSpace(_) => exit::CHECKPOINT,
            Error::Locked(_) => exit::LOCKED,
            Error::Interrupted { signal, .. } => 128 + signal,
        }
    }

    pub fn render(&self, color: bool) -> String {
        let mut out = String::new();
        match self {
            Error::BadInput(d)
            | Error::Checkpoint(d)
            | Error::Locked(d)
            | Error::NoSpace(d)
            | Error::Breakpoint(d)
            | Error::Verify(d) => d.render(&mut out, color),
            Error::CommandFailed(f) => {
                let mut d = Diagnostic::new(format!(
                    "microstep {} failed: command in context `{}` exited with status {}",
                    f.slug, f.context, f.status
                ));
                d.span = f.span.clone();
                let cmd: Vec<String> = f.command.lines().map(|l| format!("> {l}")).collect();
                d.notes
                    .push(format!("the command was:\n{}", cmd.join("\n")));
                if !f.tail.is_empty() {
                    d.notes
                        .push(format!("its last lines of output:\n{}", f.tail.join("\n")));
                }
                if says_disk_full(&f.tail) {
                    d.hint = Some(
                        "the disk is full: free space, then run the `To resume:` command above \
                         to run this microstep again"
                            .into(),
                    );
                }
                d.render(&mut out, color);
            }
            Error::Interrupted { resume, .. } => {
                let _ = writeln!(out, "interrupted; to resume, run: {resume}");
            }
            other => Diagnostic::new(other.to_string()).render(&mut out, color),
        }
        crate::diag::secrets::redact(&out)
    }
}
