//! How big a checkpoint is: what its driver's optional `size` operation prints, or else what
//! is allocated under `<store>/<id>` when the driver keeps each checkpoint as a directory there
//! (copy, hardlink, reflink, btrfs).

use std::collections::HashSet;
use std::os::unix::fs::MetadataExt;
use std::path::Path;

/// Bytes allocated to everything under `dir` (st_blocks × 512, as `du` counts), each inode
/// once; None when `dir` is not a directory. Data shared with other checkpoints (hard links
/// from outside, reflinked extents, btrfs snapshots) is counted as if it were this one's alone.
pub fn allocated(dir: &Path) -> Option<u64> {
    let meta = std::fs::symlink_metadata(dir).ok()?;
    if !meta.is_dir() {
        return None;
    }
    let mut seen = HashSet::new();
    let mut total = 0u64;
    for entry in walkdir::WalkDir::new(dir).follow_links(false) {
        // A file removed mid-walk is simply not counted.
        let Ok(entry) = entry else { continue };
        let Ok(m) = entry.metadata() else { continue };
        if m.nlink() > 1 && !m.is_dir() && !seen.insert((m.dev(), m.ino())) {
            continue;
        }
        total = total.saturating_add(m.blocks().saturating_mul(512));
    }
    Some(total)
}

/// Reads the `size` operation's output: the first whitespace-separated word of its first
/// non-empty line, a number of bytes.
pub fn parse_reported(output: &str) -> Option<u64> {
    output
        .lines()
        .find(|l| !l.trim().is_empty())?
        .split_whitespace()
        .next()?
        .parse()
        .ok()
}

/// "1.4 MiB", "512 B", "?" for people.
pub fn human(bytes: Option<i64>) -> String {
    let Some(b) = bytes else {
        return "?".into();
    };
    let units = ["B", "KiB", "MiB", "GiB", "TiB"];
    let mut v = b as f64;
    let mut u = 0;
    while v >= 1024.0 && u + 1 < units.len() {
        v /= 1024.0;
        u += 1;
    }
    if u == 0 {
        format!("{b} B")
    } else {
        format!("{v:.1} {}", units[u])
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_blocks_and_hard_links_once() {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path().join("ckpt");
        std::fs::create_dir_all(d.join("sub")).unwrap();
        std::fs::write(d.join("a"), vec![1u8; 100_000]).unwrap();
        let one = allocated(&d).unwrap();
        assert!(one >= 100_000, "{one}");
        std::fs::hard_link(d.join("a"), d.join("sub/b")).unwrap();
        assert_eq!(allocated(&d).unwrap(), one);
        std::fs::write(d.join("sub/c"), vec![2u8; 50_000]).unwrap();
        assert!(allocated(&d).unwrap() >= one + 50_000);
        std::os::unix::fs::symlink("/nonexistent", d.join("link")).unwrap();
        assert!(allocated(&d).is_some());
        assert_eq!(allocated(&d.join("a")), None);
        assert_eq!(allocated(&dir.path().join("missing")), None);
    }

    #[test]
    fn reported_sizes() {
        assert_eq!(parse_reported("\n 4096\tckpt\n"), Some(4096));
        assert_eq!(parse_reported("lots"), None);
        assert_eq!(parse_reported(""), None);
    }

    #[test]
    fn human_sizes() {
        assert_eq!(human(None), "?");
        assert_eq!(human(Some(512)), "512 B");
        assert_eq!(human(Some(1536)), "1.5 KiB");
        assert_eq!(human(Some(3 << 20)), "3.0 MiB");
    }
}
