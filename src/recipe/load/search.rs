//! The step search path: the `steps/` directories of the chain where step, alias, data, env
//! and global files are looked for, and how one file is found along it.

use std::path::PathBuf;

use super::chain::RawRecipe;
use crate::diag::error::{Diagnostic, Result};
use crate::diag::source::Span;
use crate::recipe::model::Text;
use crate::recipe::paths::absolute;

/// Where steps, aliases, data, env files and Kameleon drivers are looked for: `steps/` (and
/// Kameleon's `.steps/`) next to the recipe, then next to each parent, nearest first; for a
/// recipe below the working directory, also in the directories between, as Kameleon does.
pub(super) fn step_dirs(chain: &[RawRecipe]) -> Vec<PathBuf> {
    let cwd = std::env::current_dir().ok();
    let mut dirs: Vec<PathBuf> = Vec::new();
    let mut push = |d: PathBuf, always: bool| {
        if (always || d.is_dir()) && !dirs.contains(&d) {
            dirs.push(d);
        }
    };
    for raw in chain.iter().rev() {
        let dir = raw.dir().to_path_buf();
        push(dir.join("steps"), true);
        push(dir.join(".steps"), false);
        let abs = absolute(&dir);
        if let Some(cwd) = &cwd
            && abs.starts_with(cwd)
        {
            for anc in abs.ancestors().skip(1) {
                if !anc.starts_with(cwd) {
                    break;
                }
                push(anc.join("steps"), false);
                push(anc.join(".steps"), false);
            }
        }
    }
    dirs
}

/// A file in `<steps dir>/<kind>/`, the first found.
pub(super) fn find_in(step_dirs: &[PathBuf], kind: &str, name: &Text) -> Result<PathBuf> {
    let candidates: Vec<PathBuf> = step_dirs
        .iter()
        .map(|d| d.join(kind).join(&name.text))
        .collect();
    candidates
        .iter()
        .find(|p| p.is_file())
        .cloned()
        .ok_or_else(|| {
            let searched: Vec<String> =
                candidates.iter().map(|p| p.display().to_string()).collect();
            Diagnostic::at(&name.span, format!("{kind} file `{}` not found", name.text))
                .note(format!("searched:\n{}", searched.join("\n")))
                .into()
        })
}

/// A step's file: `<steps dir>/<section>/<name>.yaml`, then `<steps dir>/<name>.yaml`, each
/// first under every `include_steps` subdirectory, for each steps dir in turn.
pub(super) fn find_step_file(
    step_dirs: &[PathBuf],
    include_steps: &[String],
    section: &str,
    name: &str,
    span: &Span,
) -> Result<PathBuf> {
    let mut searched = Vec::new();
    let prefixes: Vec<&str> = include_steps
        .iter()
        .map(String::as_str)
        .chain(std::iter::once(""))
        .collect();
    for dir in step_dirs {
        for prefix in &prefixes {
            for candidate in [
                dir.join(section).join(prefix).join(format!("{name}.yaml")),
                dir.join(prefix).join(format!("{name}.yaml")),
            ] {
                // Only "not there" moves on to the next place: a directory cairn may not
                // read could hold the step, and a same-named file further on would then
                // run in its place.
                match std::fs::metadata(&candidate) {
                    Ok(m) if m.is_file() => return Ok(candidate),
                    Ok(_) => {}
                    Err(e)
                        if matches!(
                            e.kind(),
                            std::io::ErrorKind::NotFound | std::io::ErrorKind::NotADirectory
                        ) => {}
                    Err(e) => {
                        return Err(Diagnostic::at(
                            span,
                            format!("cannot look for step `{name}` at {}: {e}", candidate.display()),
                        )
                        .hint("make the directory readable (and searchable) by the user running cairn")
                        .into());
                    }
                }
                searched.push(candidate.display().to_string());
            }
        }
    }
    Err(Diagnostic::at(span, format!("step `{name}` not found"))
        .note(format!("searched:\n{}", searched.join("\n")))
        .hint(format!(
            "create steps/{section}/{name}.yaml next to the recipe, or write the step inline as `{name}: [ - microstep: [...] ]`"
        ))
        .into())
}
