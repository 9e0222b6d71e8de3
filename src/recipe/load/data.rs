//! Files found along the step search path for what a recipe names: `env` scripts, and
//! Kameleon's `$${kameleon_data_dir}` data files.

use std::path::PathBuf;

use super::render::render_load_time;
use super::search::find_in;
use super::step::StepLoader;
use super::values::text_list;
use crate::diag::error::{Diagnostic, Result};
use crate::recipe::model::Text;
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

impl StepLoader {
    /// Kameleon's `$${kameleon_data_dir}/path`: the first `data/path` found in the steps
    /// directories. A path below the recipe's directory is written relative to `recipe_dir`,
    /// which checkpoint IDs hash by name, so IDs do not depend on where the recipes live.
    pub(super) fn data(&self, text: &mut Text) -> Result<()> {
        const VAR: &str = "{{kameleon_data_dir}}";
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
                &self.recipe_name,
                &self.recipe_dir,
                &self.globals,
                &self.cli_globals,
                self.dialect,
                Some(&self.current),
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
