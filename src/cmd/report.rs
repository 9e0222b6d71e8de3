//! `cairn report RECIPE [-o FILE]`: the build dir's runs as one self-contained HTML file.

use std::path::PathBuf;

use crate::cli::RecipeArgs;
use crate::diag::error::{Diagnostic, Error, Result};
use crate::state::StateDb;

pub fn run(args: &RecipeArgs, out: Option<PathBuf>) -> Result<()> {
    let plan = super::load_plan(args, true)?;
    if !plan.build_dir.join(".cairn").join("state.db").exists() {
        return Err(Error::checkpoint(
            Diagnostic::new(format!(
                "build dir {} has no state database: nothing was built there yet",
                plan.build_dir.display()
            ))
            .hint("build the recipe first, or name its build dir with -b"),
        ));
    }
    let db = StateDb::open(&plan.build_dir)?;
    let title = plan
        .recipe
        .path
        .file_name()
        .map(|f| f.to_string_lossy().into_owned())
        .unwrap_or_default();
    let html = crate::output::report::render(&db, Some(&plan), &title)?;
    let path = out.unwrap_or_else(|| plan.build_dir.join("report.html"));
    // Written whole under a temporary name, so a reader never opens half a report.
    let tmp = path.with_extension("html.tmp");
    std::fs::write(&tmp, html).map_err(|e| Error::io("cannot write the report", &tmp, e))?;
    std::fs::rename(&tmp, &path).map_err(|e| Error::io("cannot write the report", &path, e))?;
    println!("{}", path.display());
    Ok(())
}
