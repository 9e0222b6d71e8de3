//! Store URLs (`s3://bucket/prefix`, `file:///path`) and the AWS settings an S3 store takes from
//! the standard environment variables and the shared config and credentials files.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// A parsed store URL. `shown` is what messages print: never a credential.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StoreUrl {
    S3 {
        bucket: String,
        prefix: String,
        shown: String,
    },
    File {
        path: PathBuf,
        shown: String,
    },
}

impl StoreUrl {
    pub fn parse(url: &str) -> Result<StoreUrl, String> {
        if let Some(rest) = url.strip_prefix("s3://") {
            let (authority, prefix) = rest.split_once('/').unwrap_or((rest, ""));
            // `s3://KEY:SECRET@bucket` is no form cairn reads; refuse it without echoing it.
            if authority.contains('@') {
                return Err("an s3:// URL must not carry credentials (use AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, or ~/.aws/credentials)".into());
            }
            if authority.is_empty() {
                return Err(format!("`{url}` names no bucket (s3://BUCKET/PREFIX)"));
            }
            let prefix = prefix.trim_matches('/').to_string();
            if prefix.split('/').any(|p| p == "." || p == "..") {
                return Err(format!("`{url}`: a prefix may not contain `.` or `..`"));
            }
            let shown = if prefix.is_empty() {
                format!("s3://{authority}")
            } else {
                format!("s3://{authority}/{prefix}")
            };
            return Ok(StoreUrl::S3 {
                bucket: authority.to_string(),
                prefix,
                shown,
            });
        }
        if let Some(rest) = url.strip_prefix("file://") {
            if !rest.starts_with('/') {
                return Err(format!(
                    "`{url}` is not an absolute file URL (file:///absolute/path)"
                ));
            }
            return Ok(StoreUrl::File {
                path: PathBuf::from(rest),
                shown: url.to_string(),
            });
        }
        Err(format!(
            "`{url}` is not a store URL: use s3://BUCKET/PREFIX or file:///PATH"
        ))
    }

    pub fn shown(&self) -> &str {
        match self {
            StoreUrl::S3 { shown, .. } | StoreUrl::File { shown, .. } => shown,
        }
    }
}

/// Settings read from `~/.aws/config` and `~/.aws/credentials` for the profile in use
/// (`AWS_PROFILE`, else `default`), in the object_store's key names. Environment variables win
/// over them; the caller applies these only where the environment sets nothing.
pub fn aws_file_settings(env: &dyn Fn(&str) -> Option<String>) -> BTreeMap<String, String> {
    let home = env("HOME").map(PathBuf::from);
    let profile = env("AWS_PROFILE").unwrap_or_else(|| "default".into());
    let config = env("AWS_CONFIG_FILE")
        .map(PathBuf::from)
        .or_else(|| home.as_ref().map(|h| h.join(".aws/config")));
    let credentials = env("AWS_SHARED_CREDENTIALS_FILE")
        .map(PathBuf::from)
        .or_else(|| home.as_ref().map(|h| h.join(".aws/credentials")));
    let mut out = BTreeMap::new();
    // In the config file a profile is `[profile NAME]`, except `[default]`.
    let section = if profile == "default" {
        "default".to_string()
    } else {
        format!("profile {profile}")
    };
    if let Some(p) = config {
        for (k, v) in ini_section(&p, &section) {
            out.insert(k, v);
        }
    }
    // The credentials file names sections by the bare profile name, and wins for keys.
    if let Some(p) = credentials {
        for (k, v) in ini_section(&p, &profile) {
            out.insert(k, v);
        }
    }
    out.into_iter()
        .filter_map(|(k, v)| {
            let key = match k.as_str() {
                "aws_access_key_id" => "aws_access_key_id",
                "aws_secret_access_key" => "aws_secret_access_key",
                "aws_session_token" => "aws_session_token",
                "region" => "aws_region",
                "endpoint_url" => "aws_endpoint",
                _ => return None,
            };
            Some((key.to_string(), v))
        })
        .collect()
}

/// The `key = value` lines of one `[section]` of an INI file; nothing when it is unreadable.
fn ini_section(path: &Path, section: &str) -> Vec<(String, String)> {
    let Ok(text) = std::fs::read_to_string(path) else {
        return Vec::new();
    };
    let mut inside = false;
    let mut out = Vec::new();
    for line in text.lines() {
        let line = line.trim();
        if line.starts_with('#') || line.starts_with(';') || line.is_empty() {
            continue;
        }
        if let Some(name) = line.strip_prefix('[').and_then(|l| l.strip_suffix(']')) {
            inside = name.trim() == section;
            continue;
        }
        if inside && let Some((k, v)) = line.split_once('=') {
            out.push((k.trim().to_ascii_lowercase(), v.trim().to_string()));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn s3_urls_keep_bucket_and_prefix() {
        assert_eq!(
            StoreUrl::parse("s3://ci-cache/cairn/debian/").unwrap(),
            StoreUrl::S3 {
                bucket: "ci-cache".into(),
                prefix: "cairn/debian".into(),
                shown: "s3://ci-cache/cairn/debian".into()
            }
        );
        assert_eq!(
            StoreUrl::parse("s3://b").unwrap().shown(),
            "s3://b",
            "a bucket alone is a store"
        );
    }

    #[test]
    fn bad_urls_are_refused_without_echoing_credentials() {
        let e = StoreUrl::parse("s3://AKIA:hunter2@bucket/x").unwrap_err();
        assert!(!e.contains("hunter2"), "{e}");
        assert!(StoreUrl::parse("s3:///x").is_err());
        assert!(StoreUrl::parse("s3://b/../x").is_err());
        assert!(StoreUrl::parse("file://relative").is_err());
        assert!(StoreUrl::parse("/just/a/path").is_err());
        assert!(StoreUrl::parse("http://example.com/b").is_err());
    }

    #[test]
    fn file_urls_are_absolute_paths() {
        assert_eq!(
            StoreUrl::parse("file:///srv/cache").unwrap(),
            StoreUrl::File {
                path: PathBuf::from("/srv/cache"),
                shown: "file:///srv/cache".into()
            }
        );
    }

    #[test]
    fn aws_files_give_the_profile_s_settings_credentials_file_winning() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir(dir.path().join(".aws")).unwrap();
        std::fs::write(
            dir.path().join(".aws/config"),
            "[default]\nregion = eu-west-1\n[profile ci]\nregion = us-east-2\nendpoint_url = http://127.0.0.1:9000\naws_access_key_id = FROMCONFIG\n",
        )
        .unwrap();
        std::fs::write(
            dir.path().join(".aws/credentials"),
            "[default]\naws_access_key_id = D\n[ci]\naws_access_key_id = CI\naws_secret_access_key = S3CRET\n",
        )
        .unwrap();
        let home = dir.path().display().to_string();
        let env = |profile: Option<&'static str>| {
            let home = home.clone();
            move |k: &str| match k {
                "HOME" => Some(home.clone()),
                "AWS_PROFILE" => profile.map(str::to_string),
                _ => None,
            }
        };
        let ci = aws_file_settings(&env(Some("ci")));
        assert_eq!(ci["aws_region"], "us-east-2");
        assert_eq!(ci["aws_endpoint"], "http://127.0.0.1:9000");
        assert_eq!(ci["aws_access_key_id"], "CI");
        assert_eq!(ci["aws_secret_access_key"], "S3CRET");
        let default = aws_file_settings(&env(None));
        assert_eq!(default["aws_region"], "eu-west-1");
        assert_eq!(default["aws_access_key_id"], "D");
        assert!(!default.contains_key("aws_secret_access_key"));
    }
}
