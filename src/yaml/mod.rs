//! YAML loading into a tree where every node remembers where it came from, so the recipe loader
//! can point at the exact key or value that is wrong. Scalars keep their text and whether they
//! were plain: the two dialects read plain scalars differently (YAML 1.1 `yes`/`0755` in
//! Kameleon's), so typing them is left to the reader.

mod lines;
pub mod yaml11;

use std::collections::HashMap;
use std::path::Path;
use std::sync::Arc;

use saphyr_parser::{Event, Parser, ScalarStyle};

use crate::diag::error::{Diagnostic, Error};
use crate::diag::source::{Dialect, SourceFile, Span};
use lines::LineStarts;

#[derive(Debug, Clone)]
pub struct Node {
    pub value: Value,
    pub span: Span,
}

#[derive(Debug, Clone)]
pub enum Value {
    Scalar(Scalar),
    Seq(Vec<Node>),
    Map(Vec<(Node, Node)>),
}

#[derive(Debug, Clone)]
pub struct Scalar {
    pub text: String,
    /// A plain (unquoted, non-block) scalar: only these can be null, booleans or numbers.
    pub plain: bool,
}

impl Node {
    pub fn kind(&self) -> &'static str {
        match &self.value {
            Value::Scalar(_) if self.is_null() => "nothing",
            Value::Scalar(_) => "a scalar",
            Value::Seq(_) => "a list",
            Value::Map(_) => "a mapping",
        }
    }

    pub fn is_null(&self) -> bool {
        matches!(&self.value, Value::Scalar(s) if s.plain && matches!(s.text.as_str(), "" | "~" | "null" | "Null" | "NULL"))
    }

    pub fn as_scalar(&self) -> Option<&Scalar> {
        match &self.value {
            Value::Scalar(s) if !self.is_null() => Some(s),
            _ => None,
        }
    }

    pub fn as_str(&self) -> Option<&str> {
        self.as_scalar().map(|s| s.text.as_str())
    }

    pub fn str(&self, what: &str) -> Result<&str, Diagnostic> {
        self.as_str()
            .ok_or_else(|| self.wrong_kind(what, "a string"))
    }

    pub fn seq(&self, what: &str) -> Result<&[Node], Diagnostic> {
        match &self.value {
            Value::Seq(items) => Ok(items),
            _ if self.is_null() => Ok(&[]),
            _ => Err(self.wrong_kind(what, "a list")),
        }
    }

    pub fn map(&self, what: &str) -> Result<&[(Node, Node)], Diagnostic> {
        match &self.value {
            Value::Map(entries) => Ok(entries),
            _ if self.is_null() => Ok(&[]),
            _ => Err(self.wrong_kind(what, "a mapping")),
        }
    }

    /// A mapping of exactly one entry, the shape of `- name: value` items in recipes.
    pub fn single_entry(&self) -> Option<(&Node, &Node)> {
        match &self.value {
            Value::Map(entries) if entries.len() == 1 => Some((&entries[0].0, &entries[0].1)),
            _ => None,
        }
    }

    pub fn get(&self, key: &str) -> Option<&Node> {
        match &self.value {
            Value::Map(entries) => entries
                .iter()
                .find(|(k, _)| k.as_str() == Some(key))
                .map(|(_, v)| v),
            _ => None,
        }
    }

    pub fn wrong_kind(&self, what: &str, expected: &str) -> Diagnostic {
        Diagnostic::at(
            &self.span,
            format!("{what} must be {expected}, but this is {}", self.kind()),
        )
    }

    /// Where `needle` appears in this node's source text, for errors about a part of a value.
    pub fn locate(&self, needle: &str) -> Span {
        self.span.locate(needle)
    }
}

/// Nesting deeper than this is refused: no recipe needs it, and the recipe loader and the
/// tree's own drop recurse once per level.
pub const MAX_DEPTH: usize = 128;
/// Files larger than this are refused before they are read.
pub const MAX_FILE_BYTES: u64 = 64 << 20;
/// Aliases may copy at most this many nodes, or ten per node the file itself spells out,
/// whichever is more: enough for any sharing a recipe does, far from a "billion laughs".
const MIN_ALIAS_BUDGET: usize = 10_000;
const ALIAS_BUDGET_PER_EVENT: usize = 10;

/// Reads a YAML file for parsing: refused (exit 3, with a position) when it is too large, not a
/// regular file, unreadable or not UTF-8.
/// `dialect` None: the one the file's own markers show (`recipe::dialect::detect`).
pub fn read(
    path: &Path,
    what: &str,
    dialect: Option<Dialect>,
) -> Result<Arc<SourceFile>, Diagnostic> {
    use std::io::Read;
    let at_file = || {
        Span::new(
            &SourceFile::new(path, String::new(), Dialect::Native),
            1,
            1,
            1,
        )
    };
    let cannot = |e: std::io::Error| {
        Diagnostic::at(&at_file(), format!("{what} {}: {e}", path.display()))
            .hint("check that the file exists and that cairn may read it")
    };
    // Looked at before it is opened: opening a FIFO would wait for a writer for ever.
    if !std::fs::metadata(path).map_err(cannot)?.is_file() {
        return Err(Diagnostic::at(
            &at_file(),
            format!("{what} {}: it is not a regular file", path.display()),
        ));
    }
    let mut file = std::fs::File::open(path).map_err(cannot)?;
    let meta = file.metadata().map_err(cannot)?;
    if !meta.is_file() {
        return Err(Diagnostic::at(
            &at_file(),
            format!("{what} {}: it is not a regular file", path.display()),
        ));
    }
    if meta.len() > MAX_FILE_BYTES {
        return Err(too_large(&at_file(), path, meta.len()));
    }
    let mut bytes = Vec::with_capacity(meta.len() as usize);
    (&mut file)
        .take(MAX_FILE_BYTES + 1)
        .read_to_end(&mut bytes)
        .map_err(cannot)?;
    if bytes.len() as u64 > MAX_FILE_BYTES {
        return Err(too_large(&at_file(), path, bytes.len() as u64));
    }
    match String::from_utf8(bytes) {
        Ok(text) => {
            let dialect = dialect.unwrap_or_else(|| crate::diag::source::detect(&text));
            Ok(SourceFile::new(path, text, dialect))
        }
        Err(e) => {
            let good = e.utf8_error().valid_up_to();
            let bytes = e.into_bytes();
            let before = String::from_utf8_lossy(&bytes[..good]);
            let line = before.matches('\n').count() + 1;
            let col = before.rsplit('\n').next().map_or(0, |l| l.chars().count()) + 1;
            let shown = SourceFile::new(
                path,
                String::from_utf8_lossy(&bytes).into_owned(),
                Dialect::Native,
            );
            Err(Diagnostic::at(
                &Span::new(&shown, line, col, 1),
                format!(
                    "{} is not valid UTF-8 (byte 0x{:02x})",
                    path.display(),
                    bytes[good]
                ),
            )
            .hint(
                "recipes and drivers are UTF-8 text; convert the file (iconv) or remove the byte",
            ))
        }
    }
}

fn too_large(at: &Span, path: &Path, len: u64) -> Diagnostic {
    Diagnostic::at(
        at,
        format!(
            "{} is too large: {len} bytes, more than the {} MiB cairn reads",
            path.display(),
            MAX_FILE_BYTES >> 20
        ),
    )
    .hint("split it into step files, or keep large data in files a microstep reads")
}

/// Reads and parses a YAML file; `what` says what it is for in an error.
pub fn read_yaml(path: &Path, what: &'static str, dialect: Option<Dialect>) -> Result<Node, Error> {
    let file = read(path, what, dialect)?;
    Ok(parse(&file)?)
}

pub fn parse(file: &Arc<SourceFile>) -> Result<Node, Diagnostic> {
    let mut builder = Builder {
        yaml11: file.dialect == Dialect::Kameleon,
        anchors: HashMap::new(),
        stack: Vec::new(),
        root: None,
        done: false,
        events: 0,
        copied: 0,
    };
    let mut parser = Parser::new_from_str(&file.text);
    let lines = LineStarts::new(&file.text);
    while let Some(event) = parser.next_event() {
        let (event, span) = event.map_err(|e| {
            let (line, col) = lines.at(e.marker());
            let d = Diagnostic::at(
                &error_span(file, line, col, e.info()),
                format!("this is not valid YAML: {}", e.info()),
            );
            // An unclosed `[` or `{` is reported where the parser gives up, often lines later:
            // name the bracket too.
            match builder.open_flow() {
                Some((open, close, at)) => d
                    .note(format!("the `{open}` opened at {at} is still open here"))
                    .hint(format!(
                        "close it with `{close}`, or check the commas and quoting inside it"
                    )),
                None => d.hint("check the indentation and quoting around this place"),
            }
        })?;
        let at = span_of(file, &lines, &span);
        builder.event(event, at)?;
    }
    Ok(builder.root.unwrap_or_else(|| Node {
        value: Value::Scalar(Scalar {
            text: String::new(),
            plain: true,
        }),
        span: Span::new(file, 1, 1, 1),
    }))
}

/// Where a parse error is shown. The parser reports a misplaced `- item` at the token after the
/// dash, and a tab in the indentation just after the tab; the dash or the tab is what is out of
/// place, so the caret goes there.
fn error_span(file: &Arc<SourceFile>, line: usize, col: usize, info: &str) -> Span {
    let before: Vec<char> = file
        .line(line)
        .map(|l| l.chars().take(col.saturating_sub(1)).collect())
        .unwrap_or_default();
    let item: String = before.iter().collect::<String>().trim_end().to_string();
    let item_len = item.chars().count();
    if before.len() > item_len && item.trim_start() == "-" {
        return Span::new(file, line, item_len, 1);
    }
    if info.contains("tab") {
        let tabs = before.iter().rev().take_while(|c| **c == '\t').count();
        if tabs > 0 {
            return Span::new(file, line, before.len() - tabs + 1, 1);
        }
    }
    Span::new(file, line, col, 1)
}

fn span_of(file: &Arc<SourceFile>, lines: &LineStarts, span: &saphyr_parser::Span) -> Span {
    let ((line, col), (end_line, end_col)) = (lines.at(&span.start), lines.at(&span.end));
    let len = if end_line == line {
        end_col.saturating_sub(col).max(1)
    } else {
        1
    };
    Span::new(file, line, col, len)
}

/// A collection being read, with what the limits need: how many nodes it holds so far
/// (aliases count what they copy) and how deep its deepest child is.
struct Frame {
    kind: FrameKind,
    span: Span,
    anchor: usize,
    size: usize,
    depth: usize,
}

enum FrameKind {
    Seq(Vec<Node>),
    /// Entries a later duplicate key replaced (Kameleon's files) are `None`; `keys` finds an
    /// earlier key in constant time, so a mapping of n keys loads in O(n).
    Map {
        entries: Vec<Option<(Node, Node)>>,
        keys: HashMap<String, usize>,
        pending: Option<Node>,
    },
}

/// An anchored node, with its size and depth for the limits.
struct Anchored {
    node: Node,
    size: usize,
    depth: usize,
}

struct Builder {
    /// Plain values are typed as YAML 1.1, as Kameleon's parser types them.
    yaml11: bool,
    anchors: HashMap<usize, Anchored>,
    stack: Vec<Frame>,
    root: Option<Node>,
    /// The first document is complete: anything but an empty document after it is an error.
    done: bool,
    /// Events read, and nodes aliases copied: the alias budget.
    events: usize,
    copied: usize,
}

impl Builder {
    /// The innermost collection being read, when it is a flow one (`[...]` or `{...}`): its
    /// opening and closing brackets and where it opens.
    fn open_flow(&self) -> Option<(char, char, Span)> {
        let span = &self.stack.last()?.span;
        let open = span
            .file
            .line(span.line)?
            .chars()
            .nth(span.col.checked_sub(1)?)?;
        let close = match open {
            '[' => ']',
            '{' => '}',
            _ => return None,
        };
        Some((open, close, span.clone()))
    }

    fn too_deep(&self, span: &Span) -> Diagnostic {
        Diagnostic::at(
            span,
            format!("this is nested more than {MAX_DEPTH} levels deep"),
        )
        .hint("no recipe needs this much nesting; flatten it (a step file or an alias per level)")
    }

    /// A node of a later document: refused, unless the document is empty (a trailing `---`).
    fn second_document(&self, span: &Span) -> Diagnostic {
        Diagnostic::at(span, "a second YAML document (after `---`) in one file")
            .hint("a recipe, step or driver file holds one document: remove the `---` line and merge the two, or move the second into a file of its own")
    }

    fn open(&mut self, kind: FrameKind, span: Span, anchor: usize) -> Result<(), Diagnostic> {
        if self.done {
            return Err(self.second_document(&span));
        }
        if self.stack.len() >= MAX_DEPTH {
            return Err(self.too_deep(&span));
        }
        self.stack.push(Frame {
            kind,
            span,
            anchor,
            size: 1,
            depth: 1,
        });
        Ok(())
    }

    fn event(&mut self, event: Event<'_>, span: Span) -> Result<(), Diagnostic> {
        self.events += 1;
        match event {
            Event::Scalar(text, style, anchor, tag) => {
                if self.done {
                    let empty = style == ScalarStyle::Plain && matches!(&*text, "" | "~" | "null");
                    return if empty && self.stack.is_empty() {
                        Ok(())
                    } else {
                        Err(self.second_document(&span))
                    };
                }
                let forced_string = tag.as_ref().is_some_and(|t| t.suffix == "str");
                let node = Node {
                    value: Value::Scalar(Scalar {
                        text: text.into_owned(),
                        plain: style == ScalarStyle::Plain && !forced_string,
                    }),
                    span,
                };
                self.push(node, anchor, 1, 0)
            }
            Event::Alias(id) => {
                if self.done {
                    return Err(self.second_document(&span));
                }
                let Some(a) = self.anchors.get(&id) else {
                    return Err(Diagnostic::at(
                        &span,
                        "this alias names an anchor that is not defined",
                    ));
                };
                let (size, depth) = (a.size, a.depth);
                if self.stack.len() + depth > MAX_DEPTH {
                    return Err(self.too_deep(&span));
                }
                self.copied = self.copied.saturating_add(size);
                let budget =
                    MIN_ALIAS_BUDGET.max(self.events.saturating_mul(ALIAS_BUDGET_PER_EVENT));
                if self.copied > budget {
                    return Err(Diagnostic::at(
                        &span,
                        format!("aliases here expand to more than {budget} nodes"),
                    )
                    .note("each `*alias` copies what its anchor names; anchors that alias each other multiply (a \"billion laughs\")")
                    .hint("use fewer nested aliases, or write the values out"));
                }
                let node = Node {
                    span,
                    ..a.node.clone()
                };
                self.push(node, 0, size, depth)
            }
            Event::SequenceStart(anchor, _) => self.open(FrameKind::Seq(Vec::new()), span, anchor),
            Event::MappingStart(anchor, _) => self.open(
                FrameKind::Map {
                    entries: Vec::new(),
                    keys: HashMap::new(),
                    pending: None,
                },
                span,
                anchor,
            ),
            Event::SequenceEnd | Event::MappingEnd => {
                let Some(frame) = self.stack.pop() else {
                    return Ok(());
                };
                // Shrunk: a tree of ten thousand microsteps otherwise keeps up to half of its
                // lists' memory as spare capacity while it is loaded.
                let value = match frame.kind {
                    FrameKind::Seq(mut items) => {
                        items.shrink_to_fit();
                        Value::Seq(items)
                    }
                    FrameKind::Map { entries, .. } => {
                        let mut entries: Vec<(Node, Node)> =
                            entries.into_iter().flatten().collect();
                        entries.shrink_to_fit();
                        Value::Map(entries)
                    }
                };
                let node = Node {
                    value,
                    span: frame.span,
                };
                self.push(node, frame.anchor, frame.size, frame.depth)
            }
            Event::DocumentEnd => {
                if self.root.is_some() {
                    self.done = true;
                }
                Ok(())
            }
            _ => Ok(()),
        }
    }

    fn push(
        &mut self,
        mut node: Node,
        anchor: usize,
        size: usize,
        depth: usize,
    ) -> Result<(), Diagnostic> {
        let is_key = matches!(
            self.stack.last(),
            Some(Frame {
                kind: FrameKind::Map { pending: None, .. },
                ..
            })
        );
        if self.yaml11
            && !is_key
            && let Value::Scalar(s) = &mut node.value
            && s.plain
            && let Some(typed) = yaml11::yaml11_plain(&s.text)
        {
            s.text = typed;
        }
        if anchor != 0 {
            self.anchors.insert(
                anchor,
                Anchored {
                    node: node.clone(),
                    size,
                    depth,
                },
            );
        }
        let Some(frame) = self.stack.last_mut() else {
            self.root = Some(node);
            return Ok(());
        };
        frame.size = frame.size.saturating_add(size);
        frame.depth = frame.depth.max(depth + 1);
        match &mut frame.kind {
            FrameKind::Seq(items) => items.push(node),
            FrameKind::Map {
                entries,
                keys,
                pending,
            } => match pending.take() {
                None => {
                    let Some(name) = node
                        .as_scalar()
                        .map(|s| s.text.clone())
                        .or_else(|| matches!(node.value, Value::Scalar(_)).then(String::new))
                    else {
                        return Err(Diagnostic::at(
                            &node.span,
                            "a mapping key must be a plain string",
                        ));
                    };
                    // A null key (`~:` or `:`) is no name; it never equals another key.
                    if node.as_str().is_some()
                        && let Some(&first) = keys.get(&name)
                    {
                        // Kameleon's parser kept the last of duplicate keys, and its public
                        // recipes rely on it; cairn's own files get an error instead.
                        if self.yaml11 {
                            entries[first] = None;
                        } else {
                            let at = entries[first]
                                .as_ref()
                                .map(|(k, _)| k.span.to_string())
                                .unwrap_or_default();
                            return Err(Diagnostic::at(
                                &node.span,
                                format!("duplicate key `{name}`"),
                            )
                            .note(format!("first defined at {at}"))
                            .hint("YAML keeps only one of them; remove or rename one"));
                        }
                    }
                    if node.as_str().is_some() {
                        keys.insert(name, entries.len());
                    }
                    *pending = Some(node);
                }
                Some(key) => entries.push(Some((key, node))),
            },
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn load(text: &str) -> Result<Node, Diagnostic> {
        parse(&SourceFile::new(
            "t.yaml",
            text.to_string(),
            crate::diag::source::detect(text),
        ))
    }

    #[test]
    fn spans_point_at_values() {
        let root = load("a: 1\nlist:\n  - x: \"hi\"\n").unwrap();
        let x = &root.get("list").unwrap().seq("list").unwrap()[0];
        let v = x.get("x").unwrap();
        assert_eq!((v.span.line, v.span.col), (3, 8));
        assert_eq!(v.as_str(), Some("hi"));
        assert!(!v.as_scalar().unwrap().plain);
    }

    #[test]
    fn duplicate_keys_are_rejected() {
        let err = load("a: 1\na: 2\n").unwrap_err();
        assert!(err.message.contains("duplicate key `a`"));
        assert_eq!(err.span.unwrap().line, 2);
    }

    #[test]
    fn kameleon_files_keep_the_last_duplicate_key() {
        let file = SourceFile::new(
            "k.yaml",
            "a: $${x}\nb: 1\na: 2\n".to_string(),
            Dialect::Kameleon,
        );
        let root = parse(&file).unwrap();
        assert_eq!(root.get("a").and_then(Node::as_str), Some("2"));
        assert_eq!(root.map("m").unwrap().len(), 2);
    }

    #[test]
    fn bad_yaml_has_a_position() {
        let err = load("a: [1, 2\nb: 3\n").unwrap_err();
        assert!(err.message.contains("not valid YAML"));
        assert!(err.span.unwrap().line >= 1);
    }

    #[test]
    fn aliases_resolve() {
        let root = load("a: &x {k: v}\nb: *x\n").unwrap();
        assert_eq!(root.get("b").unwrap().get("k").unwrap().as_str(), Some("v"));
    }

    #[test]
    fn locate_finds_text_in_a_block() {
        let root = load("cmd: |\n  echo one\n  echo {{two}}\n").unwrap();
        let span = root.get("cmd").unwrap().locate("{{two}}");
        assert_eq!((span.line, span.col, span.len), (3, 8, 7));
    }

    #[test]
    fn deep_block_nesting_is_refused_with_a_position() {
        let mut text = String::from("x:\n");
        for i in 0..300 {
            text.push_str(&" ".repeat(2 + 2 * i));
            text.push_str("-\n");
        }
        let err = load(&text).unwrap_err();
        assert!(
            err.message.contains("nested more than 128 levels"),
            "{}",
            err.message
        );
        assert_eq!(err.span.unwrap().line, 129);
        let mut dashes = String::from("x:\n  ");
        dashes.push_str(&"- ".repeat(100_000));
        dashes.push_str("x\n");
        assert!(
            load(&dashes)
                .unwrap_err()
                .message
                .contains("nested more than")
        );
    }

    #[test]
    fn nesting_up_to_the_limit_loads() {
        let text = format!(
            "{}x{}",
            "[".repeat(MAX_DEPTH - 1),
            "]".repeat(MAX_DEPTH - 1)
        );
        let mut node = &load(&text).unwrap();
        let mut levels = 0;
        while let Value::Seq(items) = &node.value {
            node = &items[0];
            levels += 1;
        }
        assert_eq!(levels, MAX_DEPTH - 1);
    }

    #[test]
    fn aliases_cannot_nest_past_the_depth_limit() {
        let mut text = String::from("a0: &a0 [x]\n");
        for i in 1..200 {
            text.push_str(&format!("a{i}: &a{i} [[[*a{}]]]\n", i - 1));
        }
        let err = load(&text).unwrap_err();
        assert!(err.message.contains("nested more than"), "{}", err.message);
    }

    #[test]
    fn billion_laughs_is_refused_quickly_even_unused() {
        let mut text = String::from(
            "global:\n  a: &a [\"lol\",\"lol\",\"lol\",\"lol\",\"lol\",\"lol\",\"lol\",\"lol\",\"lol\"]\n",
        );
        let names = ["a", "b", "c", "d", "e", "f", "g", "h", "i"];
        for w in names.windows(2) {
            let refs = vec![format!("*{}", w[0]); 9].join(",");
            text.push_str(&format!("  {}: &{} [{refs}]\n", w[1], w[1]));
        }
        let err = load(&text).unwrap_err();
        assert!(
            err.message.contains("aliases here expand to more than"),
            "{}",
            err.message
        );
        assert!(err.span.unwrap().line >= 4);
    }

    #[test]
    fn ordinary_sharing_through_aliases_loads() {
        let mut text = String::from("base: &b {a: 1, b: 2, c: [1, 2, 3]}\n");
        for i in 0..500 {
            text.push_str(&format!("k{i}: *b\n"));
        }
        assert_eq!(load(&text).unwrap().map("m").unwrap().len(), 501);
    }

    #[test]
    fn a_second_document_is_refused_but_a_trailing_marker_is_not() {
        let err = load("a: 1\n---\nb: 2\n").unwrap_err();
        assert!(
            err.message.contains("second YAML document"),
            "{}",
            err.message
        );
        assert_eq!(err.span.unwrap().line, 3);
        assert!(load("a: 1\n---\n").is_ok());
        assert!(load("a: 1\n...\n").is_ok());
        assert!(load("---\na: 1\n...\n").is_ok());
    }

    #[test]
    fn many_keys_load_and_duplicates_are_still_found() {
        let mut text = String::new();
        for i in 0..50_000 {
            text.push_str(&format!("k{i}: {i}\n"));
        }
        assert_eq!(load(&text).unwrap().map("m").unwrap().len(), 50_000);
        text.push_str("k17: again\n");
        let err = load(&text).unwrap_err();
        assert!(err.message.contains("duplicate key `k17`"));
        assert!(err.notes[0].contains(":18:"), "{:?}", err.notes);
    }

    #[test]
    fn kameleon_duplicates_keep_the_last_in_its_place() {
        let file = SourceFile::new(
            "k.yaml",
            "a: $${x}\nb: 1\na: 2\nc: 3\na: 4\n".to_string(),
            Dialect::Kameleon,
        );
        let root = parse(&file).unwrap();
        let keys: Vec<_> = root
            .map("m")
            .unwrap()
            .iter()
            .map(|(k, v)| format!("{}={}", k.as_str().unwrap(), v.as_str().unwrap()))
            .collect();
        assert_eq!(keys, ["b=1", "c=3", "a=4"]);
    }

    #[test]
    fn invalid_utf8_is_refused_with_its_line_and_column() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("bad.yaml");
        std::fs::write(&path, b"a: 1\nb: ok \xff\xfe\n").unwrap();
        let err = read(&path, "cannot read recipe", None).unwrap_err();
        assert!(
            err.message.contains("not valid UTF-8 (byte 0xff)"),
            "{}",
            err.message
        );
        let span = err.span.unwrap();
        assert_eq!((span.line, span.col), (2, 7));
    }

    #[test]
    fn files_over_the_size_limit_are_refused_before_reading() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("big.yaml");
        let f = std::fs::File::create(&path).unwrap();
        f.set_len(MAX_FILE_BYTES + 1).unwrap();
        let err = read(&path, "cannot read recipe", None).unwrap_err();
        assert!(err.message.contains("too large"), "{}", err.message);
        let err = read(dir.path(), "cannot read recipe", None).unwrap_err();
        assert!(
            err.message.contains("not a regular file"),
            "{}",
            err.message
        );
    }
}
