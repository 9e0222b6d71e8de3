//! Checkpoint IDs: a SHA-1 chain. Each microstep's ID covers the previous ID and its own
//! canonical inputs (resolved commands, declared input files), so a change anywhere changes that
//! microstep's ID and every later one, and nothing before it.

use std::io::Read;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::Path;

use sha1::{Digest, Sha1};

const DOMAIN: &[u8] = b"cairn-ckpt-v1\0";

/// The ID before the first microstep.
pub const ROOT: &str = "";

pub const SHORT: usize = 12;

pub fn chain(previous: &str, canonical: &str) -> String {
    let mut h = Sha1::new();
    h.update(DOMAIN);
    h.update(previous.as_bytes());
    h.update(b"\0");
    h.update(canonical.as_bytes());
    hex::encode(h.finalize())
}

pub fn short(id: &str) -> &str {
    id.get(..SHORT).unwrap_or(id)
}

/// A digest of a file or directory tree: relative names in sorted order, file types, permission
/// bits, contents and symlink targets. Owners and times are left out, so a fresh checkout of
/// the same files gives the same digest.
pub fn hash_path(path: &Path) -> std::io::Result<String> {
    let mut h = Sha1::new();
    if std::fs::symlink_metadata(path).is_err() {
        h.update(b"missing\0");
        return Ok(hex::encode(h.finalize()));
    }
    let walker = walkdir::WalkDir::new(path)
        .sort_by_file_name()
        .follow_links(false)
        .same_file_system(true);
    for entry in walker {
        let entry = entry.map_err(std::io::Error::other)?;
        let rel = entry.path().strip_prefix(path).unwrap_or(entry.path());
        let meta = entry.metadata().map_err(std::io::Error::other)?;
        h.update(rel.as_os_str().as_encoded_bytes());
        h.update(b"\0");
        let kind: &[u8] = if meta.is_dir() {
            b"d"
        } else if meta.file_type().is_symlink() {
            b"l"
        } else {
            b"f"
        };
        h.update(kind);
        h.update(format!("{:o}\0", meta.permissions().mode() & 0o7777).as_bytes());
        if meta.file_type().is_symlink() {
            let target = std::fs::read_link(entry.path())?;
            h.update(target.as_os_str().as_encoded_bytes());
        } else if meta.is_file() {
            h.update(meta.size().to_le_bytes());
            let mut f = std::fs::File::open(entry.path())?;
            let mut buf = vec![0u8; 64 * 1024];
            loop {
                let n = f.read(&mut buf)?;
                if n == 0 {
                    break;
                }
                h.update(&buf[..n]);
            }
        }
        h.update(b"\0");
    }
    Ok(hex::encode(h.finalize()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn chain_depends_on_both_parts() {
        let a = chain(ROOT, "x");
        assert_eq!(a.len(), 40);
        assert_ne!(chain(&a, "y"), chain(ROOT, "y"));
        assert_ne!(chain(&a, "y"), chain(&a, "z"));
        assert_eq!(chain(&a, "y"), chain(&a, "y"));
    }

    #[test]
    fn tree_digest_sees_content_names_and_modes() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("a"), "1").unwrap();
        let d1 = hash_path(dir.path()).unwrap();
        std::fs::write(dir.path().join("a"), "2").unwrap();
        let d2 = hash_path(dir.path()).unwrap();
        assert_ne!(d1, d2);
        std::fs::set_permissions(dir.path().join("a"), std::fs::Permissions::from_mode(0o755))
            .unwrap();
        assert_ne!(hash_path(dir.path()).unwrap(), d2);
        let missing = hash_path(&dir.path().join("nope")).unwrap();
        assert_ne!(missing, d1);
    }
}
