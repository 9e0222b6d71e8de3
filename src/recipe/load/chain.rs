//! The files of a recipe: the recipe and the parents it `extend`s, the tree's dialect, and
//! sections spliced down the chain at `@base`.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use indexmap::IndexMap;

use super::globals::global_value;
use super::render::render_load_time;
use super::values::{check_keys, scalar_text};
use crate::diag::error::{Diagnostic, Error, Result};
use crate::diag::source::{SourceFile, Span};
use crate::recipe::dialect::Dialect;
use crate::recipe::model::{Global, Text};
use crate::recipe::paths::absolute;
use crate::yaml::{Node, read_yaml};

const RECIPE_KEYS: [&str; 8] = [
    "env",
    "extend",
    "checkpoint",
    "global",
    "aliases",
    "bootstrap",
    "setup",
    "export",
];

/// One file of the extend chain, root-most first once the chain is loaded.
pub(super) struct RawRecipe {
    pub(super) path: PathBuf,
    pub(super) root: Node,
}

impl RawRecipe {
    pub(super) fn dir(&self) -> &Path {
        self.path.parent().unwrap_or(Path::new("."))
    }
}

/// What the command line adds to loading: `-g` values, which `extend` and `include_steps`
/// paths may use.
#[derive(Debug, Clone, Copy, Default)]
pub struct LoadOptions<'a> {
    pub cli_globals: &'a [(String, String)],
    /// `--dialect`: every file of the tree in this dialect. None: Kameleon's when any recipe
    /// of the extend chain shows its markers, else cairn's.
    pub dialect: Option<Dialect>,
}

pub fn recipe_name(path: &Path) -> String {
    path.file_stem()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_else(|| "recipe".into())
}

pub(super) fn description_of(file: &Arc<SourceFile>) -> Option<String> {
    file.text
        .lines()
        .take_while(|l| l.starts_with('#'))
        .find_map(|l| {
            let rest = l.trim_start_matches('#').trim();
            rest.strip_prefix("DESCRIPTION:")
                .map(|d| d.trim().to_string())
        })
}

pub(super) fn load_chain(path: &Path, opts: &LoadOptions<'_>) -> Result<Vec<RawRecipe>> {
    let mut chain: Vec<RawRecipe> = Vec::new();
    let mut next = Some((path.to_path_buf(), None::<Span>));
    while let Some((path, from)) = next.take() {
        if !path.is_file() {
            let d = match &from {
                Some(span) => {
                    Diagnostic::at(span, format!("parent recipe {} not found", path.display()))
                }
                None => Diagnostic::new(format!("recipe {} not found", path.display())),
            };
            return Err(d
                .hint("the path is relative to the recipe that names it")
                .into());
        }
        let canonical = path
            .canonicalize()
            .map_err(|e| Error::io("cannot read", &path, e))?;
        if let Some(first) = chain
            .iter()
            .position(|r| r.path.canonicalize().ok().as_deref() == Some(canonical.as_path()))
        {
            let cycle: Vec<String> = chain[first..]
                .iter()
                .map(|r| r.path.display().to_string())
                .chain(std::iter::once(path.display().to_string()))
                .collect();
            let span = from.unwrap_or_else(|| Span::synthetic("extend"));
            return Err(Diagnostic::at(&span, "`extend` makes a cycle")
                .note(cycle.join(" -> "))
                .hint("a recipe cannot extend itself, directly or through its parents")
                .into());
        }
        let root = read_yaml(&path, "cannot read recipe", opts.dialect)?;
        root.map("a recipe")?;
        check_keys(&root, &RECIPE_KEYS, "recipe")?;
        let raw = RawRecipe { path, root };
        // Kameleon writes `extend: ""` for "no parent".
        if let Some(ext) = raw
            .root
            .get("extend")
            .filter(|e| !e.is_null() && e.as_str() != Some(""))
        {
            ext.str("`extend`")?;
            // The parent's path may use the globals of this recipe and of the recipes that
            // extend it, a child's value winning (a child choosing `backend: docker` picks its
            // grandparent's `extend: ../backend/$${backend}`, as Kameleon picks it), and `-g`.
            let mut known: IndexMap<String, Global> = IndexMap::new();
            for r in std::iter::once(&raw).chain(chain.iter().rev()) {
                if let Some(g) = r.root.get("global") {
                    for (k, v) in g.map("`global`")? {
                        if let (Some(key), Ok(value)) =
                            (k.as_str(), global_value(k.as_str().unwrap_or(""), v))
                        {
                            known.insert(
                                key.to_string(),
                                Global {
                                    name: key.to_string(),
                                    value,
                                    span: k.span.clone(),
                                    shadowed: Vec::new(),
                                },
                            );
                        }
                    }
                }
            }
            let name = render_now(&scalar_text(ext, "`extend`")?, &known, &raw, opts)?;
            let mut parent = raw.path.parent().unwrap_or(Path::new(".")).join(name);
            if parent.extension().is_none() {
                parent.set_extension("yaml");
            }
            next = Some((parent, Some(ext.span.clone())));
        }
        chain.push(raw);
    }
    chain.reverse();
    Ok(chain)
}

/// Resolves a value while loading (an `extend` or `include_steps` path), from the globals
/// known so far and the command line.
pub(super) fn render_now(
    text: &Text,
    globals: &IndexMap<String, Global>,
    recipe: &RawRecipe,
    opts: &LoadOptions<'_>,
) -> Result<String> {
    let name = recipe_name(&recipe.path);
    let dir = absolute(recipe.dir()).display().to_string();
    let dialect = recipe.root.span.file.dialect;
    render_load_time(text, &name, &dir, globals, opts.cli_globals, dialect, None)
}

/// A section's items after `@base` splicing down the chain. A child that leaves a section out
/// keeps its parent's.
pub(super) fn section_items<'a>(chain: &'a [RawRecipe], section: &str) -> Result<Vec<&'a Node>> {
    let mut items: Vec<&Node> = Vec::new();
    for raw in chain {
        let Some(node) = raw.root.get(section) else {
            continue;
        };
        let mut next = Vec::new();
        for item in node.seq(&format!("section `{section}`"))? {
            if item.as_str() == Some("@base") {
                next.extend(items.iter().copied());
            } else {
                next.push(item);
            }
        }
        items = next;
    }
    Ok(items)
}

/// Reads every recipe of `chain` in the tree's dialect; returns that dialect and the one the
/// tree's other files are read in (None: each by its own markers).
pub(super) fn in_tree_dialect(
    chain: &mut [RawRecipe],
    opts: &LoadOptions<'_>,
) -> Result<(Dialect, Option<Dialect>)> {
    // A Kameleon recipe often has no `$${` of its own (`extend: debian-base` and a few plain
    // globals): the tree is Kameleon's when any recipe of its chain is.
    let dialect = opts.dialect.unwrap_or(
        if chain
            .iter()
            .any(|r| r.root.span.file.dialect == Dialect::Kameleon)
        {
            Dialect::Kameleon
        } else {
            Dialect::Native
        },
    );
    // How the tree's other files are read: a Kameleon tree (or `--dialect`) decides for all of
    // them; a tree whose recipes show no Kameleon marker lets a file with markers of its own
    // (a Kameleon alias or step library used from a plain recipe) be read as Kameleon's.
    let files = opts
        .dialect
        .or((dialect == Dialect::Kameleon).then_some(Dialect::Kameleon));
    for raw in chain.iter_mut() {
        let file = &raw.root.span.file;
        if file.dialect != dialect {
            let again = SourceFile::new(&file.path, file.text.clone(), dialect);
            raw.root = crate::yaml::parse(&again)?;
        }
    }
    Ok((dialect, files))
}
