//! Files found along the step search path for what a recipe names: `env` scripts, and
//! Kameleon's `$${kameleon_data_dir}` data files.

use std::path::PathBuf;

use indexmap::IndexMap;

use super::render::render_load_time;
use super::search::find_in;
use super::values::text_list;
use crate::diag::error::{Diagnostic, Result};
use crate::recipe::dialect::Dialect;
use crate::recipe::model::{Global, StepVars, Text};
use crate::recipe::paths::absolute;
use crate::yaml::Node;

/// `env:`: scripts from `<steps dir>/env/`, each the first found.
pub(super) fn env_files(node: &Node, step_dirs: &[PathBuf]) -> Result<Vec<PathBuf>> {
    let mut env_files = Vec::new();
    for f in text_list(node, "`env`")? {
        env_files.push(find_in(step_dirs, "env", &f)?);
    }
    Ok(env_files)
}

/// Where Kameleon's `$${kameleon_data_dir}/path` is looked for, and what the path may use.
#[derive(Debug, Clone, Copy)]
pub(super) struct DataFiles<'a> {
    /// Searched in order for `data/<path>`; the first one's parent is the recipe's directory.
    pub(super) step_dirs: &'a [PathBuf],
    pub(super) recipe_name: &'a str,
    pub(super) recipe_dir: &'a str,
    /// The globals, `-g` (read in the tree's `dialect`) and the variables of the step being
    /// read: a data path may use them (`$${kameleon_data_dir}/preseed/$${distrib}.cfg`).
    pub(super) globals: Option<&'a IndexMap<String, Global>>,
    pub(super) cli_globals: &'a [(String, String)],
    pub(super) dialect: Dialect,
    pub(super) step: Option<&'a StepVars>,
}

impl DataFiles<'static> {
    /// Outside a recipe (a driver file): no steps directory and no recipe variables, so a
    /// data path is found nowhere, and the error lists no place searched.
    pub(super) fn none() -> Self {
        DataFiles {
            step_dirs: &[],
            recipe_name: "",
            recipe_dir: "",
            globals: None,
            cli_globals: &[],
            dialect: Dialect::Native,
            step: None,
        }
    }
}

impl DataFiles<'_> {
    /// Replaces each `$${kameleon_data_dir}/path` in `text` by the first `data/path` found in
    /// the steps directories. A path below the recipe's directory is written relative to
    /// `recipe_dir`, which checkpoint IDs hash by name, so IDs do not depend on where the
    /// recipes live.
    pub(super) fn resolve(&self, text: &mut Text) -> Result<()> {
        const VAR: &str = "{{kameleon_data_dir}}";
        let no_globals = IndexMap::new();
        let mut out = String::new();
        let mut rest = text.text.as_str();
        while let Some(at) = rest.find(VAR) {
            out.push_str(&rest[..at]);
            let after = &rest[at + VAR.len()..];
            let end = after
                .find(|c: char| {
                    c.is_whitespace() || matches!(c, '"' | '\'' | ';' | ')' | '|' | '&' | '>' | '<')
                })
                .unwrap_or(after.len());
            // The path may use variables (`$${kameleon_data_dir}/preseed/$${distrib}.cfg`), as
            // Kameleon resolves them before looking the file up.
            let raw = Text::new(after[..end].to_string(), text.span.clone());
            let rendered = render_load_time(
                &raw,
                self.recipe_name,
                self.recipe_dir,
                self.globals.unwrap_or(&no_globals),
                self.cli_globals,
                self.dialect,
                self.step,
            )?;
            let rel = rendered.trim_start_matches('/');
            let candidates: Vec<PathBuf> = self
                .step_dirs
                .iter()
                .map(|d| d.join("data").join(rel))
                .collect();
            let Some(found) = candidates.iter().find(|p| p.exists()) else {
                let searched: Vec<String> =
                    candidates.iter().map(|p| p.display().to_string()).collect();
                return Err(Diagnostic::at(
                    &text.span.locate("kameleon_data_dir"),
                    format!("data file `{rel}` not found"),
                )
                .note(format!("searched:\n{}", searched.join("\n")))
                .into());
            };
            let abs = absolute(found);
            let recipe_dir = self
                .step_dirs
                .first()
                .and_then(|d| d.parent())
                .map(absolute);
            match recipe_dir.as_ref().and_then(|r| abs.strip_prefix(r).ok()) {
                Some(inside) => out.push_str(&format!("{{{{recipe_dir}}}}/{}", inside.display())),
                None => out.push_str(&abs.display().to_string()),
            }
            rest = &after[end..];
        }
        if !out.is_empty() || text.text.contains(VAR) {
            out.push_str(rest);
            text.text = out;
        }
        Ok(())
    }
}
