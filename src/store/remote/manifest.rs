//! The small JSON document that describes one checkpoint in a store. It is written after its
//! blob, so a manifest that exists names a blob that was complete when it was written.

use serde::{Deserialize, Serialize};

/// Bumped when a field changes meaning; a reader skips manifests of a format it does not know.
pub const FORMAT: u32 = 1;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Manifest {
    pub format: u32,
    pub recipe: String,
    pub slug: String,
    pub id: String,
    /// The checkpoint this one follows in the recipe's ID chain.
    pub parent: Option<String>,
    /// The checkpoint the blob is a delta against (`btrfs send -p`, `zfs send -i`); the blob
    /// can only be imported where that one exists. None for a whole export.
    pub base: Option<String>,
    pub driver: String,
    /// The blob's object name, relative to the checkpoint's directory in the store.
    pub blob: String,
    pub sha256: String,
    pub size: u64,
    /// RFC 3339, UTC.
    pub created: String,
    /// Seconds since 1970, with the fraction (orders checkpoints pushed in the same second).
    pub created_unix: f64,
    pub cairn_version: String,
}

impl Manifest {
    pub fn parse(bytes: &[u8]) -> Result<Manifest, String> {
        let m: Manifest =
            serde_json::from_slice(bytes).map_err(|e| format!("not a cairn manifest: {e}"))?;
        if m.format != FORMAT {
            return Err(format!(
                "manifest format {} (this cairn reads {FORMAT})",
                m.format
            ));
        }
        if !is_full_id(&m.id)
            || m.parent.as_deref().is_some_and(|p| !is_full_id(p))
            || m.base.as_deref().is_some_and(|p| !is_full_id(p))
        {
            return Err("a checkpoint ID in the manifest is not 40 lowercase hex digits".into());
        }
        // The blob name becomes part of an object path and a local file name: keep it plain.
        if m.blob.is_empty()
            || m.blob.len() > 100
            || !m
                .blob
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'.' || b == b'_')
            || m.blob.starts_with('.')
        {
            return Err("the manifest's blob name is not a plain file name".into());
        }
        if m.sha256.len() != 64 || !m.sha256.bytes().all(|b| b.is_ascii_hexdigit()) {
            return Err("the manifest's sha256 is not 64 hex digits".into());
        }
        Ok(m)
    }

    pub fn to_json(&self) -> String {
        serde_json::to_string_pretty(self).unwrap_or_default() + "\n"
    }
}

pub fn is_full_id(s: &str) -> bool {
    s.len() == 40
        && s.bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
}

/// `1970-01-01T00:00:00Z` for a Unix time in seconds.
pub fn rfc3339(t: i64) -> String {
    let days = t.div_euclid(86_400);
    let rem = t.rem_euclid(86_400);
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}Z",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> Manifest {
        Manifest {
            format: FORMAT,
            recipe: "debian".into(),
            slug: "setup/a/one".into(),
            id: "a".repeat(40),
            parent: Some("b".repeat(40)),
            base: None,
            driver: "copy".into(),
            blob: "blob-1-2.tar.zst".into(),
            sha256: "0".repeat(64),
            size: 12,
            created: rfc3339(1_764_000_000),
            created_unix: 1_764_000_000.5,
            cairn_version: "0.1.0".into(),
        }
    }

    #[test]
    fn a_manifest_reads_back_what_was_written() {
        let m = sample();
        assert_eq!(Manifest::parse(m.to_json().as_bytes()).unwrap(), m);
    }

    #[test]
    fn a_manifest_naming_a_path_or_a_bad_id_is_refused() {
        for bad in [
            Manifest {
                blob: "../../etc/passwd".into(),
                ..sample()
            },
            Manifest {
                blob: ".hidden".into(),
                ..sample()
            },
            Manifest {
                id: "A".repeat(40),
                ..sample()
            },
            Manifest {
                base: Some("x".into()),
                ..sample()
            },
            Manifest {
                sha256: "zz".into(),
                ..sample()
            },
            Manifest {
                format: 99,
                ..sample()
            },
        ] {
            assert!(
                Manifest::parse(bad.to_json().as_bytes()).is_err(),
                "{bad:?}"
            );
        }
        assert!(Manifest::parse(b"{").is_err());
    }

    #[test]
    fn times_are_rfc3339_utc() {
        assert_eq!(rfc3339(0), "1970-01-01T00:00:00Z");
        assert_eq!(rfc3339(951_782_400), "2000-02-29T00:00:00Z");
        assert_eq!(rfc3339(1_764_633_599), "2025-12-01T23:59:59Z");
    }
}
