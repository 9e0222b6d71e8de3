//! Aliases: named command lists with positional arguments `@1 @2 ...`, expanded where they are
//! called, recursively, before any variable is resolved.

use std::path::{Path, PathBuf};

use indexmap::IndexMap;

use super::dialect::{Dialect, kameleon_chomp};
use crate::diag::error::{Diagnostic, Result};
use crate::yaml::read_yaml;
use crate::yaml::{Node, Value};

const MAX_DEPTH: usize = 32;

#[derive(Debug, Clone)]
struct Alias {
    body: Vec<Node>,
    arity: usize,
}

#[derive(Debug, Clone, Default)]
pub struct Aliases {
    defs: IndexMap<String, Alias>,
}

impl Aliases {
    /// `aliases:` is a mapping of definitions, a file name, or a list of file names. Files are
    /// looked up in `steps/aliases/` next to the recipe, then next to it.
    pub fn add_from(
        &mut self,
        node: &Node,
        recipe_dir: &Path,
        step_dirs: &[PathBuf],
        dialect: Option<Dialect>,
    ) -> Result<()> {
        match &node.value {
            Value::Map(_) => self.add_defs(node),
            Value::Seq(items) => {
                for item in items {
                    self.add_from(item, recipe_dir, step_dirs, dialect)?;
                }
                Ok(())
            }
            Value::Scalar(_) => {
                let name = node.str("`aliases`")?;
                let candidates: Vec<PathBuf> = step_dirs
                    .iter()
                    .map(|d| d.join("aliases").join(name))
                    .chain([
                        recipe_dir.join("steps").join("aliases").join(name),
                        recipe_dir.join(name),
                    ])
                    .collect();
                let Some(path) = candidates.iter().find(|p| p.is_file()) else {
                    let searched: Vec<String> =
                        candidates.iter().map(|p| p.display().to_string()).collect();
                    return Err(Diagnostic::at(
                        &node.span,
                        format!("alias file `{name}` not found"),
                    )
                    .note(format!("searched:\n{}", searched.join("\n")))
                    .into());
                };
                let root = read_yaml(path, "cannot read alias file", dialect)?;
                self.add_defs(&root)
            }
        }
    }

    fn add_defs(&mut self, node: &Node) -> Result<()> {
        for (k, v) in node.map("an aliases mapping")? {
            let name = k.str("an alias name")?.to_string();
            let body = v.seq(&format!("alias `{name}`"))?.to_vec();
            let arity = body.iter().map(max_placeholder).max().unwrap_or(0);
            self.defs.insert(name, Alias { body, arity });
        }
        Ok(())
    }

    pub fn names(&self) -> impl Iterator<Item = &str> {
        self.defs.keys().map(String::as_str)
    }

    /// The commands an alias call stands for, or None when `name` is no alias.
    pub fn expand(
        &self,
        name: &str,
        key: &Node,
        args: &Node,
        depth: usize,
    ) -> Result<Option<Vec<Node>>> {
        let Some(alias) = self.defs.get(name) else {
            return Ok(None);
        };
        if depth >= MAX_DEPTH {
            return Err(
                Diagnostic::at(&key.span, format!("alias `{name}` expands into itself"))
                    .hint("an alias may call other aliases, but not in a loop")
                    .into(),
            );
        }
        let mut given: Vec<String> = match &args.value {
            _ if args.is_null() => Vec::new(),
            Value::Scalar(s) => vec![s.text.clone()],
            Value::Seq(items) => items
                .iter()
                .map(|i| i.str("an alias argument").map(str::to_string))
                .collect::<std::result::Result<_, _>>()?,
            Value::Map(_) => {
                return Err(args
                    .wrong_kind("alias arguments", "a string or a list of strings")
                    .into());
            }
        };
        if given.len() != alias.arity {
            let wanted: Vec<String> = (1..=alias.arity).map(|i| format!("@{i}")).collect();
            return Err(Diagnostic::at(
                &key.span,
                format!(
                    "alias `{name}` takes {} argument{}, but {} given",
                    alias.arity,
                    if alias.arity == 1 { "" } else { "s" },
                    given.len()
                ),
            )
            .hint(if alias.arity == 0 {
                format!("call it as `{name}:` with no value")
            } else {
                format!("call it as `{name}: [{}]`", wanted.join(", "))
            })
            .into());
        }
        // Either side in Kameleon's syntax means a Kameleon tree.
        let kameleon = key.span.file.dialect == Dialect::Kameleon
            || alias
                .body
                .first()
                .is_some_and(|n| n.span.file.dialect == Dialect::Kameleon);
        if kameleon && let Some(last) = given.last_mut() {
            let chomped = kameleon_chomp(last).len();
            last.truncate(chomped);
        }
        Ok(Some(
            alias
                .body
                .iter()
                .map(|n| substitute(n, &given, kameleon))
                .collect(),
        ))
    }
}

fn max_placeholder(node: &Node) -> usize {
    match &node.value {
        Value::Scalar(s) => placeholders(&s.text).max().unwrap_or(0),
        Value::Seq(items) => items.iter().map(max_placeholder).max().unwrap_or(0),
        Value::Map(entries) => entries
            .iter()
            .map(|(_, v)| max_placeholder(v))
            .max()
            .unwrap_or(0),
    }
}

fn placeholders(text: &str) -> impl Iterator<Item = usize> + '_ {
    text.match_indices('@').filter_map(|(i, _)| {
        let digits: String = text[i + 1..]
            .chars()
            .take_while(char::is_ascii_digit)
            .collect();
        digits.parse().ok().filter(|n| *n > 0)
    })
}

fn substitute(node: &Node, args: &[String], kameleon: bool) -> Node {
    let value = match &node.value {
        Value::Scalar(s) => Value::Scalar(crate::yaml::Scalar {
            text: if kameleon {
                substitute_in_turn(&s.text, args)
            } else {
                substitute_text(&s.text, args)
            },
            plain: s.plain,
        }),
        Value::Seq(items) => Value::Seq(
            items
                .iter()
                .map(|n| substitute(n, args, kameleon))
                .collect(),
        ),
        Value::Map(entries) => Value::Map(
            entries
                .iter()
                .map(|(k, v)| (k.clone(), substitute(v, args, kameleon)))
                .collect(),
        ),
    };
    Node {
        value,
        span: node.span.clone(),
    }
}

/// Kameleon's substitution: `@1` everywhere, then `@2` everywhere, and so on, so an `@2` that
/// argument 1 brought in is replaced too (and, with ten arguments or more, `@10` is read as
/// `@1` then `0`, as Kameleon reads it).
fn substitute_in_turn(text: &str, args: &[String]) -> String {
    let mut out = text.to_string();
    for (i, arg) in args.iter().enumerate() {
        out = out.replace(&format!("@{}", i + 1), arg);
    }
    out
}

/// Replaces each `@N` by the Nth argument in one pass, so that an argument's own text (which
/// may hold `@1`) is never substituted again, and `@12` is never read as `@1` then `2`.
fn substitute_text(text: &str, args: &[String]) -> String {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(at) = rest.find('@') {
        out.push_str(&rest[..at]);
        let after = &rest[at + 1..];
        let digits = after.len() - after.trim_start_matches(|c: char| c.is_ascii_digit()).len();
        let n: Option<usize> = after[..digits].parse().ok();
        match n.and_then(|n| args.get(n.checked_sub(1)?)) {
            Some(arg) => out.push_str(arg),
            None => out.push_str(&rest[at..at + 1 + digits]),
        }
        rest = &after[digits..];
    }
    out.push_str(rest);
    out
}
