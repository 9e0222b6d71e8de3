//! `cairn cache ls` and `cairn cache prune`: what an object store of shared checkpoints holds,
//! and trimming it without breaking the deltas the kept checkpoints need.

use std::collections::BTreeSet;

use crate::diag::error::{Error, Result};
use crate::store::remote::{Entry, Remote, human_bytes, short};

fn open(url: &str) -> Result<Remote> {
    crate::engine::share::check_urls(&[url])?;
    Remote::open(url).map_err(|e| Error::Other(e.to_string()))
}

pub fn ls(url: &str, recipe: Option<&str>, json: bool) -> Result<()> {
    let remote = open(url)?;
    let (entries, orphans, warnings) = remote.scan().map_err(|e| Error::Other(e.to_string()))?;
    for w in warnings {
        eprintln!("warning: {w}");
    }
    let rows: Vec<&Entry> = entries
        .iter()
        .filter(|e| recipe.is_none_or(|r| e.manifest.recipe == r))
        .collect();
    if json {
        for e in &rows {
            println!(
                "{}",
                serde_json::to_string(&e.manifest).map_err(|e| Error::Other(e.to_string()))?
            );
        }
        return Ok(());
    }
    if rows.is_empty() {
        println!(
            "No checkpoints{} in {}",
            recipe
                .map(|r| format!(" of recipe '{r}'"))
                .unwrap_or_default(),
            remote.shown()
        );
    } else {
        println!(
            "{:<12}  {:<16}  {:>9}  {:<20}  {:<20}  STEP",
            "ID", "RECIPE", "SIZE", "KIND", "PUSHED"
        );
        for e in &rows {
            let m = &e.manifest;
            let kind = match &m.base {
                Some(b) => format!("delta on {}", short(b)),
                None => format!("whole ({})", m.driver),
            };
            println!(
                "{:<12}  {:<16}  {:>9}  {:<20}  {:<20}  {}",
                short(&m.id),
                m.recipe,
                human_bytes(m.size),
                kind,
                m.created,
                m.slug
            );
        }
    }
    if !orphans.is_empty() {
        let bytes: u64 = orphans.iter().map(|o| o.size).sum();
        println!(
            "{} object(s) ({}) that no manifest names: uploads that never finished; `cairn cache prune` removes them",
            orphans.len(),
            human_bytes(bytes)
        );
    }
    Ok(())
}

/// Orphans younger than this may be an upload in progress, whose manifest is still to come.
const ORPHAN_GRACE_SECS: i64 = 3600;

pub fn prune(
    url: &str,
    keep_last: Option<usize>,
    older_than: Option<f64>,
    dry_run: bool,
) -> Result<()> {
    if older_than.is_some_and(|d| d.is_nan() || d < 0.0) {
        return Err(Error::Usage(
            "--older-than takes a number of days, 0 or more".into(),
        ));
    }
    let remote = open(url)?;
    let (entries, orphans, warnings) = remote.scan().map_err(|e| Error::Other(e.to_string()))?;
    for w in warnings {
        eprintln!("warning: {w}");
    }
    let now = crate::output::time::now();
    let mut keep: BTreeSet<String> = BTreeSet::new();
    if let Some(n) = keep_last {
        let recipes: BTreeSet<&str> = entries.iter().map(|e| e.manifest.recipe.as_str()).collect();
        for r in recipes {
            // `entries` is oldest first.
            let of: Vec<&Entry> = entries.iter().filter(|e| e.manifest.recipe == r).collect();
            for e in of.iter().rev().take(n) {
                keep.insert(e.manifest.id.clone());
            }
        }
    }
    if let Some(days) = older_than {
        let cutoff = now - days * 86_400.0;
        for e in &entries {
            if e.manifest.created_unix >= cutoff {
                keep.insert(e.manifest.id.clone());
            }
        }
    }
    // A kept delta needs its base, and that base its own.
    loop {
        let bases: Vec<String> = entries
            .iter()
            .filter(|e| keep.contains(&e.manifest.id))
            .filter_map(|e| e.manifest.base.clone())
            .filter(|b| !keep.contains(b))
            .collect();
        if bases.is_empty() {
            break;
        }
        keep.extend(bases);
    }
    let verb = if dry_run { "Would delete" } else { "Deleted" };
    let mut deleted = 0usize;
    let mut bytes = 0u64;
    for e in entries.iter().filter(|e| !keep.contains(&e.manifest.id)) {
        let m = &e.manifest;
        if !dry_run {
            remote.delete(m).map_err(|e| Error::Other(e.to_string()))?;
        }
        println!(
            "{verb} {} ({} {}, {}, pushed {})",
            short(&m.id),
            m.recipe,
            m.slug,
            human_bytes(m.size),
            m.created
        );
        deleted += 1;
        bytes += m.size;
    }
    for o in orphans
        .iter()
        .filter(|o| now as i64 - o.modified_unix > ORPHAN_GRACE_SECS)
    {
        if !dry_run {
            remote
                .delete_orphan(o)
                .map_err(|e| Error::Other(e.to_string()))?;
        }
        println!(
            "{verb} {} (no manifest names it, {})",
            o.path,
            human_bytes(o.size)
        );
        deleted += 1;
        bytes += o.size;
    }
    println!(
        "{} {deleted} object(s), {}; kept {} checkpoint(s) in {}",
        if dry_run { "Would free" } else { "Freed" },
        human_bytes(bytes),
        keep.len(),
        remote.shown()
    );
    Ok(())
}
