//! `global.include_steps`: subdirectories of each steps directory searched for a step file
//! before the directory itself.

use indexmap::IndexMap;

use super::chain::{LoadOptions, RawRecipe, render_now};
use crate::diag::error::{Diagnostic, Result};
use crate::recipe::model::{Global, GlobalValue, Text};

/// The subdirectories `include_steps` names, rendered with the globals and `-g`.
pub(super) fn include_steps(
    globals: &IndexMap<String, Global>,
    child: &RawRecipe,
    opts: &LoadOptions<'_>,
) -> Result<Vec<String>> {
    Ok(match globals.get("include_steps") {
        None => Vec::new(),
        Some(g) => {
            let items: Vec<&Text> = match &g.value {
                GlobalValue::Text(t) => vec![t],
                GlobalValue::List(l) => l.iter().collect(),
                GlobalValue::Map(_) => {
                    return Err(Diagnostic::at(
                        &g.span,
                        "`include_steps` must be a list of directories",
                    )
                    .into());
                }
            };
            let mut out = Vec::new();
            for t in items {
                out.push(render_now(t, globals, child, opts)?);
            }
            out
        }
    })
}
