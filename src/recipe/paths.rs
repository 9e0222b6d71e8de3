//! Paths in recipes: made absolute the way Kameleon makes them, so built-ins such as
//! `recipe_dir` agree with Kameleon's.

use std::path::{Path, PathBuf};

/// `path` made absolute and cleaned as Ruby's `File.expand_path` cleans it (`.` and `..`
/// resolved by name, no trailing `/`), so a recipe named `recipe.yaml` or `./recipe.yaml` gets
/// the same `recipe_dir`, and no `//` appears in paths built from it.
pub fn absolute(path: &Path) -> PathBuf {
    use std::path::Component;
    let joined = if path.is_absolute() {
        path.to_path_buf()
    } else {
        match std::env::current_dir() {
            Ok(d) => d.join(path),
            Err(_) => return path.to_path_buf(),
        }
    };
    let mut out = PathBuf::new();
    for c in joined.components() {
        match c {
            Component::CurDir => {}
            Component::ParentDir => {
                if !out.pop() {
                    out.push(c);
                }
            }
            other => out.push(other),
        }
    }
    out
}
