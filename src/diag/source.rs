//! Every loaded file's text, kept so that any span renders as `file:line:col` with the offending
//! line under it, long after the loader that read it is gone.

use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// Which syntax a file is read in: cairn's, or Kameleon's (`$${var}`, YAML 1.1 scalars). A
/// recipe tree has one (see `recipe::dialect`); the loader passes it to every file it reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Dialect {
    #[default]
    Native,
    Kameleon,
}

/// The dialect a text's markers show; the loader asks it of the recipe files only, and the
/// answer holds for the whole tree (`recipe::load::LoadOptions::dialect`).
pub fn detect(text: &str) -> Dialect {
    let bytes = text.as_bytes();
    let kameleon_var = bytes.windows(3).any(|w| {
        w[0] == b'$' && w[1] == b'$' && (w[2] == b'{' || w[2].is_ascii_alphabetic() || w[2] == b'_')
    });
    let driver = text
        .lines()
        .any(|l| l.trim_start().starts_with("enabled?:"));
    if kameleon_var || driver || text.contains("@microstep_id") {
        Dialect::Kameleon
    } else {
        Dialect::Native
    }
}

#[derive(Debug)]
pub struct SourceFile {
    pub path: PathBuf,
    pub text: String,
    /// How the file's strings and scalars are read: cairn's syntax or Kameleon's.
    pub dialect: Dialect,
}

impl SourceFile {
    pub fn new(path: impl Into<PathBuf>, text: String, dialect: Dialect) -> Arc<SourceFile> {
        Arc::new(SourceFile {
            path: path.into(),
            text,
            dialect,
        })
    }

    pub fn line(&self, line: usize) -> Option<&str> {
        self.text.lines().nth(line.checked_sub(1)?)
    }
}

/// A place in a loaded file. Lines and columns are 1-based, as editors show them.
#[derive(Clone)]
pub struct Span {
    pub file: Arc<SourceFile>,
    pub line: usize,
    pub col: usize,
    /// How many characters to underline; at least one is always drawn.
    pub len: usize,
}

impl Span {
    pub fn new(file: &Arc<SourceFile>, line: usize, col: usize, len: usize) -> Span {
        Span {
            file: Arc::clone(file),
            line,
            col,
            len,
        }
    }

    /// A span for text the user typed on the command line or that cairn made up itself.
    pub fn synthetic(what: &str) -> Span {
        let file = SourceFile::new(format!("<{what}>"), String::new(), Dialect::Native);
        Span {
            file,
            line: 0,
            col: 0,
            len: 0,
        }
    }

    pub fn is_synthetic(&self) -> bool {
        self.line == 0
    }

    pub fn path(&self) -> &Path {
        &self.file.path
    }

    /// Where `needle` first appears at or after this span, for errors about a part of a value
    /// (a variable inside a multi-line command, say). Falls back to the span itself.
    pub fn locate(&self, needle: &str) -> Span {
        if self.is_synthetic() || needle.is_empty() {
            return self.clone();
        }
        for (i, line) in self
            .file
            .text
            .lines()
            .enumerate()
            .skip(self.line - 1)
            .take(400)
        {
            let from = if i + 1 == self.line {
                line.char_indices()
                    .nth(self.col.saturating_sub(1))
                    .map_or(line.len(), |(b, _)| b)
            } else {
                0
            };
            if let Some(pos) = line.get(from..).and_then(|rest| rest.find(needle)) {
                let col = line[..from + pos].chars().count() + 1;
                return Span::new(&self.file, i + 1, col, needle.chars().count());
            }
        }
        self.clone()
    }

    /// The span of a sub-string that starts `offset` characters into a single-line scalar.
    pub fn shifted(&self, offset: usize, len: usize) -> Span {
        Span {
            file: Arc::clone(&self.file),
            line: self.line,
            col: self.col + offset,
            len,
        }
    }
}

impl Default for Span {
    /// Commands read back from the state database have no file to point at.
    fn default() -> Span {
        Span::synthetic("journal")
    }
}

impl fmt::Debug for Span {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{self}")
    }
}

impl fmt::Display for Span {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.is_synthetic() {
            write!(f, "{}", self.file.path.display())
        } else {
            write!(f, "{}:{}:{}", self.file.path.display(), self.line, self.col)
        }
    }
}

/// Paths in messages are shown relative to the working directory when they are below it, so
/// that errors read the same on every machine and in snapshot tests.
pub fn display_path(path: &Path) -> String {
    if let Ok(cwd) = std::env::current_dir()
        && let Ok(rel) = path.strip_prefix(&cwd)
    {
        return rel.display().to_string();
    }
    path.display().to_string()
}
