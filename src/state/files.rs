//! `state_files:` checksums: what a microstep left on the system, recorded after it so a resume
//! can tell when someone changed those files since.

use std::path::{Path, PathBuf};

use crate::plan::id::hash_path;

/// Expands `~/`, makes a path absolute against `base`, and expands globs.
fn expand(pattern: &str, base: &Path) -> Vec<PathBuf> {
    let pattern = match (pattern.strip_prefix("~/"), std::env::var_os("HOME")) {
        (Some(rest), Some(home)) => PathBuf::from(home).join(rest),
        _ => PathBuf::from(pattern),
    };
    let full = if pattern.is_absolute() {
        pattern
    } else {
        base.join(pattern)
    };
    let text = full.display().to_string();
    if !text.contains(['*', '?', '[']) {
        return vec![full];
    }
    let mut found: Vec<PathBuf> = glob::glob(&text)
        .map(|paths| paths.filter_map(|p| p.ok()).collect())
        .unwrap_or_default();
    found.sort();
    if found.is_empty() {
        found.push(full);
    }
    found
}

/// (path, digest) for every file a microstep's patterns name; missing files get a digest too.
pub fn checksums(patterns: &[String], base: &Path) -> Vec<(String, String)> {
    patterns
        .iter()
        .flat_map(|p| expand(p, base))
        .map(|path| {
            let digest = hash_path(&path).unwrap_or_else(|e| format!("unreadable: {e}"));
            (path.display().to_string(), digest)
        })
        .collect()
}

/// The recorded files whose content differs now.
pub fn drifted(recorded: &[(String, String, String)]) -> Vec<(String, String)> {
    recorded
        .iter()
        .filter(|(_, path, digest)| {
            let now = hash_path(Path::new(path)).unwrap_or_else(|e| format!("unreadable: {e}"));
            &now != digest
        })
        .map(|(slug, path, _)| (slug.clone(), path.clone()))
        .collect()
}
