//! YAML loading into a tree where every node remembers where it came from, so the recipe loader
//! can point at the exact key or value that is wrong. Scalars keep their text and whether they
//! were plain: the two dialects read plain scalars differently (YAML 1.1 `yes`/`0755` in
//! Kameleon's), so typing them is left to the reader.

use std::collections::HashMap;
use std::sync::Arc;

use saphyr_parser::{Event, Parser, ScalarStyle};

use crate::error::Diagnostic;
use crate::source::{SourceFile, Span};

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

pub fn parse(file: &Arc<SourceFile>) -> Result<Node, Diagnostic> {
    let mut builder = Builder {
        yaml11: file.dialect == crate::recipe::dialect::Dialect::Kameleon,
        anchors: HashMap::new(),
        stack: Vec::new(),
        root: None,
    };
    let mut parser = Parser::new_from_str(&file.text);
    while let Some(event) = parser.next_event() {
        let (event, span) = event.map_err(|e| {
            let m = e.marker();
            let d = Diagnostic::at(
                &error_span(file, m.line(), m.col() + 1, e.info()),
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
        let at = span_of(file, &span);
        if builder.event(event, at)? {
            break;
        }
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

fn span_of(file: &Arc<SourceFile>, span: &saphyr_parser::Span) -> Span {
    let (s, e) = (span.start, span.end);
    let len = if e.line() == s.line() {
        e.col().saturating_sub(s.col()).max(1)
    } else {
        1
    };
    Span::new(file, s.line(), s.col() + 1, len)
}

enum Frame {
    Seq(Vec<Node>, Span, usize),
    Map(Vec<(Node, Node)>, Option<Node>, Span, usize),
}

struct Builder {
    /// Plain values are typed as YAML 1.1, as Kameleon's parser types them.
    yaml11: bool,
    anchors: HashMap<usize, Node>,
    stack: Vec<Frame>,
    root: Option<Node>,
}

impl Builder {
    /// The innermost collection being read, when it is a flow one (`[...]` or `{...}`): its
    /// opening and closing brackets and where it opens.
    fn open_flow(&self) -> Option<(char, char, Span)> {
        let span = match self.stack.last()? {
            Frame::Seq(_, span, _) | Frame::Map(_, _, span, _) => span,
        };
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

    /// Feeds one event; true once the first document is complete.
    fn event(&mut self, event: Event<'_>, span: Span) -> Result<bool, Diagnostic> {
        match event {
            Event::Scalar(text, style, anchor, tag) => {
                let forced_string = tag.as_ref().is_some_and(|t| t.suffix == "str");
                let node = Node {
                    value: Value::Scalar(Scalar {
                        text: text.into_owned(),
                        plain: style == ScalarStyle::Plain && !forced_string,
                    }),
                    span,
                };
                self.push(node, anchor)
            }
            Event::Alias(id) => {
                let node = self.anchors.get(&id).cloned().ok_or_else(|| {
                    Diagnostic::at(&span, "this alias names an anchor that is not defined")
                })?;
                self.push(Node { span, ..node }, 0)
            }
            Event::SequenceStart(anchor, _) => {
                self.stack.push(Frame::Seq(Vec::new(), span, anchor));
                Ok(false)
            }
            Event::MappingStart(anchor, _) => {
                self.stack.push(Frame::Map(Vec::new(), None, span, anchor));
                Ok(false)
            }
            Event::SequenceEnd => match self.stack.pop() {
                Some(Frame::Seq(items, span, anchor)) => self.push(
                    Node {
                        value: Value::Seq(items),
                        span,
                    },
                    anchor,
                ),
                _ => Ok(false),
            },
            Event::MappingEnd => match self.stack.pop() {
                Some(Frame::Map(entries, _, span, anchor)) => self.push(
                    Node {
                        value: Value::Map(entries),
                        span,
                    },
                    anchor,
                ),
                _ => Ok(false),
            },
            Event::DocumentEnd => Ok(self.root.is_some()),
            _ => Ok(false),
        }
    }

    fn push(&mut self, mut node: Node, anchor: usize) -> Result<bool, Diagnostic> {
        let is_key = matches!(self.stack.last(), Some(Frame::Map(_, None, ..)));
        if self.yaml11
            && !is_key
            && let Value::Scalar(s) = &mut node.value
            && s.plain
            && let Some(typed) = crate::recipe::dialect::yaml11_plain(&s.text)
        {
            s.text = typed;
        }
        if anchor != 0 {
            self.anchors.insert(anchor, node.clone());
        }
        match self.stack.last_mut() {
            None => {
                self.root = Some(node);
                Ok(false)
            }
            Some(Frame::Seq(items, ..)) => {
                items.push(node);
                Ok(false)
            }
            Some(Frame::Map(entries, pending, ..)) => {
                match pending.take() {
                    None => {
                        if !matches!(node.value, Value::Scalar(_)) {
                            return Err(Diagnostic::at(
                                &node.span,
                                "a mapping key must be a plain string",
                            ));
                        }
                        let same = |k: &Node| k.as_str().is_some() && k.as_str() == node.as_str();
                        // Kameleon's parser kept the last of duplicate keys, and its public
                        // recipes rely on it; cairn's own files get an error instead.
                        if self.yaml11 {
                            entries.retain(|(k, _)| !same(k));
                        }
                        if let Some((first, _)) = entries.iter().find(|(k, _)| same(k)) {
                            return Err(Diagnostic::at(
                                &node.span,
                                format!("duplicate key `{}`", node.as_str().unwrap_or_default()),
                            )
                            .note(format!("first defined at {}", first.span))
                            .hint("YAML keeps only one of them; remove or rename one"));
                        }
                        *pending = Some(node);
                    }
                    Some(key) => entries.push((key, node)),
                }
                Ok(false)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn load(text: &str) -> Result<Node, Diagnostic> {
        parse(&SourceFile::new("t.yaml", text.to_string()))
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
        let file = SourceFile::new("k.yaml", "a: $${x}\nb: 1\na: 2\n".to_string());
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
}
