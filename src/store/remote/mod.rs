//! Checkpoints shared through an object store (S3 or a shared filesystem), with the
//! object_store crate. The async runtime lives in here: callers see blocking calls.
//!
//! Layout under the store's prefix, per checkpoint ID:
//!
//! ```text
//! <id>/manifest.json     the Manifest, written last with put-if-absent
//! <id>/<blob>            the driver's export, named uniquely per upload
//! ```
//!
//! The blob is written first and the manifest last, so a manifest names a complete blob; two
//! runners pushing the same ID write two blobs and one manifest wins, the other blob is left
//! for `cairn cache prune`.

pub mod manifest;
pub mod upload;
pub mod url;

use std::io::Write;
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use futures::StreamExt;
use object_store::aws::AmazonS3Builder;
use object_store::local::LocalFileSystem;
use object_store::path::Path as ObjPath;
use object_store::{
    ClientOptions, ObjectStore, ObjectStoreExt, PutMode, PutOptions, PutPayload, RetryConfig,
    WriteMultipart,
};
use sha2::{Digest, Sha256};

pub use manifest::Manifest;
pub use url::StoreUrl;

/// Parts of a multipart upload, and how many are in flight at once.
const PART: usize = 16 << 20;
const PARALLEL_PARTS: usize = 4;
const MAX_MANIFEST: u64 = 64 << 10;

/// What went wrong with a store, said with its URL and never a credential.
#[derive(Debug, Clone)]
pub struct CacheError {
    pub store: String,
    pub message: String,
}

impl std::fmt::Display for CacheError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "store {}: {}", self.store, self.message)
    }
}

impl std::error::Error for CacheError {}

/// An open store.
pub struct Remote {
    url: StoreUrl,
    store: Arc<dyn ObjectStore>,
    prefix: ObjPath,
    rt: tokio::runtime::Runtime,
    /// Values that must never appear in a message: the secret key and session token in use.
    secrets: Vec<String>,
}

/// A checkpoint found in a store, with when its manifest was written.
#[derive(Debug, Clone)]
pub struct Entry {
    pub manifest: Manifest,
}

/// An object under the prefix that no manifest names (a blob whose upload never finished
/// with a manifest, or a manifest that lost the race for its ID).
#[derive(Debug, Clone)]
pub struct Orphan {
    pub path: String,
    pub size: u64,
    pub modified_unix: i64,
}

/// What a store holds: its checkpoints (oldest first), the objects no manifest names, and a
/// warning per manifest that could not be read.
pub type Scan = (Vec<Entry>, Vec<Orphan>, Vec<String>);

#[derive(Debug)]
pub struct Transfer {
    pub bytes: u64,
    pub seconds: f64,
}

#[derive(Debug)]
pub enum Pushed {
    /// Uploaded blob and manifest.
    Uploaded(Transfer),
    /// The store already has a manifest for this ID (another runner pushed it first).
    AlreadyThere,
}

impl Remote {
    pub fn open(url: &str) -> Result<Remote, CacheError> {
        let parsed = StoreUrl::parse(url).map_err(|message| CacheError {
            store: "?".into(),
            message,
        })?;
        let fail = |message: String| CacheError {
            store: parsed.shown().to_string(),
            message,
        };
        // One thread drives a transfer: the body's chunks, the hashing and the connection tasks
        // stay on it, instead of hopping between the caller and worker threads per chunk.
        let rt = tokio::runtime::Builder::new_current_thread()
            .thread_name("cairn-cache")
            .enable_all()
            .build()
            .map_err(|e| fail(format!("cannot start the I/O runtime: {e}")))?;
        let mut secrets = Vec::new();
        let (store, prefix): (Arc<dyn ObjectStore>, ObjPath) = match &parsed {
            StoreUrl::File { path, .. } => {
                std::fs::create_dir_all(path)
                    .map_err(|e| fail(format!("cannot create {}: {e}", path.display())))?;
                let fs = LocalFileSystem::new_with_prefix(path)
                    .map_err(|e| fail(format!("cannot open {}: {e}", path.display())))?;
                (Arc::new(fs), ObjPath::default())
            }
            StoreUrl::S3 { bucket, prefix, .. } => {
                let env = |k: &str| std::env::var(k).ok().filter(|v| !v.is_empty());
                let mut b = AmazonS3Builder::from_env().with_bucket_name(bucket);
                // The shared config files fill in what the environment leaves unset.
                for (key, value) in url::aws_file_settings(&env) {
                    let env_names: &[&str] = match key.as_str() {
                        "aws_access_key_id" => &["AWS_ACCESS_KEY_ID"],
                        "aws_secret_access_key" => &["AWS_SECRET_ACCESS_KEY"],
                        "aws_session_token" => &["AWS_SESSION_TOKEN"],
                        "aws_region" => &["AWS_REGION", "AWS_DEFAULT_REGION"],
                        _ => &["AWS_ENDPOINT_URL", "AWS_ENDPOINT"],
                    };
                    if env_names.iter().all(|n| env(n).is_none())
                        && let Ok(k) = key.parse()
                    {
                        b = b.with_config(k, value.clone());
                    }
                    if key == "aws_secret_access_key" || key == "aws_session_token" {
                        secrets.push(value);
                    }
                }
                for n in ["AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN"] {
                    if let Some(v) = env(n) {
                        secrets.push(v);
                    }
                }
                let endpoint = b
                    .get_config_value(&object_store::aws::AmazonS3ConfigKey::Endpoint)
                    .unwrap_or_default();
                if b.get_config_value(&object_store::aws::AmazonS3ConfigKey::Region)
                    .is_none()
                    && env("AWS_DEFAULT_REGION").is_none()
                {
                    b = b.with_region("us-east-1");
                }
                // A local MinIO or SeaweedFS is served over plain http.
                let options = ClientOptions::new()
                    .with_allow_http(endpoint.starts_with("http://"))
                    .with_connect_timeout(Duration::from_secs(5))
                    .with_timeout(Duration::from_secs(600));
                let retry = RetryConfig {
                    max_retries: 3,
                    retry_timeout: Duration::from_secs(20),
                    ..RetryConfig::default()
                };
                let s3 = b
                    .with_client_options(options)
                    .with_retry(retry)
                    .build()
                    .map_err(|e| fail(e.to_string()))?;
                let prefix = if prefix.is_empty() {
                    ObjPath::default()
                } else {
                    ObjPath::from(prefix.as_str())
                };
                (Arc::new(s3), prefix)
            }
        };
        secrets.retain(|s| s.len() >= 4);
        Ok(Remote {
            url: parsed,
            store,
            prefix,
            rt,
            secrets,
        })
    }

    /// The URL as messages show it.
    pub fn shown(&self) -> &str {
        self.url.shown()
    }

    fn error(&self, what: &str, e: impl std::fmt::Display) -> CacheError {
        let mut message = format!("{what}: {e}");
        for s in &self.secrets {
            message = message.replace(s.as_str(), "***");
        }
        CacheError {
            store: self.shown().to_string(),
            message,
        }
    }

    fn path(&self, rel: &str) -> ObjPath {
        let mut p = self.prefix.clone();
        for part in rel.split('/') {
            p = p.join(part);
        }
        p
    }

    fn manifest_path(&self, id: &str) -> ObjPath {
        self.path(&format!("{id}/manifest.json"))
    }

    /// The manifest of checkpoint `id`, if the store has one. An unreadable manifest is an error.
    pub fn manifest(&self, id: &str) -> Result<Option<Manifest>, CacheError> {
        let path = self.manifest_path(id);
        let got = self.rt.block_on(async {
            match self.store.get(&path).await {
                // A manifest is a few hundred bytes: a huge one is not read into memory.
                Ok(r) if r.meta.size > MAX_MANIFEST => Ok(Some(bytes::Bytes::new())),
                Ok(r) => r.bytes().await.map(Some),
                Err(object_store::Error::NotFound { .. }) => Ok(None),
                Err(e) => Err(e),
            }
        });
        let Some(bytes) = got.map_err(|e| self.error("cannot read a manifest", e))? else {
            return Ok(None);
        };
        let m = Manifest::parse(&bytes)
            .map_err(|e| self.error(&format!("manifest of {}", short(id)), e))?;
        if m.id != id {
            return Err(self.error(
                &format!("manifest of {}", short(id)),
                format!("it describes {}", short(&m.id)),
            ));
        }
        Ok(Some(m))
    }

    /// Every checkpoint in the store (unreadable manifests are left out and returned as
    /// warnings), and the objects no manifest names.
    pub fn scan(&self) -> Result<Scan, CacheError> {
        let objects = self
            .rt
            .block_on(async {
                let mut s = self.store.list(Some(&self.prefix));
                let mut all = Vec::new();
                while let Some(o) = s.next().await {
                    all.push(o?);
                }
                Ok::<_, object_store::Error>(all)
            })
            .map_err(|e| self.error("cannot list the store", e))?;
        let prefix = self.prefix.as_ref();
        let rel = |p: &ObjPath| -> String {
            let s = p.as_ref();
            s.strip_prefix(prefix)
                .map(|r| r.trim_start_matches('/').to_string())
                .unwrap_or_else(|| s.to_string())
        };
        let mut entries = Vec::new();
        let mut warnings = Vec::new();
        let mut named = std::collections::BTreeSet::new();
        for o in &objects {
            let r = rel(&o.location);
            let Some(id) = r.strip_suffix("/manifest.json") else {
                continue;
            };
            match self.manifest(id) {
                Ok(Some(m)) => {
                    named.insert(r.clone());
                    named.insert(format!("{id}/{}", m.blob));
                    entries.push(Entry { manifest: m });
                }
                Ok(None) => {}
                Err(e) => warnings.push(e.message),
            }
        }
        let orphans = objects
            .iter()
            .filter(|o| !named.contains(&rel(&o.location)))
            .filter(|o| !rel(&o.location).ends_with("/manifest.json"))
            .map(|o| Orphan {
                path: rel(&o.location),
                size: o.size,
                modified_unix: o.last_modified.timestamp(),
            })
            .collect();
        entries.sort_by(|a, b| {
            a.manifest
                .created_unix
                .total_cmp(&b.manifest.created_unix)
                .then(a.manifest.id.cmp(&b.manifest.id))
        });
        Ok((entries, orphans, warnings))
    }

    /// Uploads `file` as the blob of `draft` (whose `sha256`, `size` and `blob` are filled in
    /// here), then its manifest, unless the store already has one for that ID.
    pub fn push(
        &self,
        file: &Path,
        mut draft: Manifest,
        progress: &(dyn Fn(u64) + Sync),
    ) -> Result<Pushed, CacheError> {
        if self.manifest(&draft.id)?.is_some() {
            return Ok(Pushed::AlreadyThere);
        }
        let started = Instant::now();
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos())
            .unwrap_or(0);
        draft.blob = format!("blob-{nanos}-{}{}", std::process::id(), draft.blob);
        let blob_path = self.path(&format!("{}/{}", draft.id, draft.blob));
        let mut f = std::fs::File::open(file)
            .map_err(|e| self.error(&format!("cannot read {}", file.display()), e))?;
        let (sha, size) = self
            .rt
            .block_on(async {
                let upload = self.store.put_multipart(&blob_path).await?;
                let mut w = WriteMultipart::new_with_chunk_size(upload, PART);
                let mut hash = Sha256::new();
                let mut size = 0u64;
                let mut buf = vec![0u8; 4 << 20];
                loop {
                    let n = match std::io::Read::read(&mut f, &mut buf) {
                        Ok(0) => break,
                        Ok(n) => n,
                        Err(e) => {
                            let _ = w.abort().await;
                            return Err(object_store::Error::Generic {
                                store: "local file",
                                source: Box::new(e),
                            });
                        }
                    };
                    hash.update(&buf[..n]);
                    size += n as u64;
                    w.wait_for_capacity(PARALLEL_PARTS).await?;
                    w.write(&buf[..n]);
                    progress(size);
                }
                w.finish().await?;
                Ok((hex::encode(hash.finalize()), size))
            })
            .map_err(|e| self.error("cannot upload the blob", e))?;
        draft.sha256 = sha;
        draft.size = size;
        let json = draft.to_json();
        let put = self.rt.block_on(self.store.put_opts(
            &self.manifest_path(&draft.id),
            PutPayload::from(json.into_bytes()),
            PutOptions {
                mode: PutMode::Create,
                ..PutOptions::default()
            },
        ));
        match put {
            Ok(_) => Ok(Pushed::Uploaded(Transfer {
                bytes: size,
                seconds: started.elapsed().as_secs_f64(),
            })),
            Err(
                object_store::Error::AlreadyExists { .. }
                | object_store::Error::Precondition { .. },
            ) => {
                // Another runner's manifest won; its blob is the one it names.
                let _ = self.rt.block_on(self.store.delete(&blob_path));
                Ok(Pushed::AlreadyThere)
            }
            Err(e) => {
                let _ = self.rt.block_on(self.store.delete(&blob_path));
                Err(self.error("cannot write the manifest", e))
            }
        }
    }

    /// Downloads the blob `m` names into `to`, checking its size and sha256 on the way. A blob
    /// that does not match is an error saying so, and `to` is removed.
    pub fn fetch(
        &self,
        m: &Manifest,
        to: &Path,
        progress: &(dyn Fn(u64) + Sync),
    ) -> Result<Transfer, CacheError> {
        let started = Instant::now();
        let path = self.path(&format!("{}/{}", m.id, m.blob));
        let file = std::fs::File::create(to)
            .map_err(|e| self.error(&format!("cannot create {}", to.display()), e))?;
        // The body arrives in small chunks: write it in large ones.
        let mut out = std::io::BufWriter::with_capacity(4 << 20, file);
        let result = self.rt.block_on(async {
            let r = self.store.get(&path).await.map_err(|e| match e {
                object_store::Error::NotFound { .. } => {
                    "its manifest names a blob the store does not have".to_string()
                }
                e => format!("cannot download the blob: {e}"),
            })?;
            let mut stream = r.into_stream();
            let mut hash = Sha256::new();
            let mut size = 0u64;
            while let Some(chunk) = stream.next().await {
                let chunk = chunk.map_err(|e| format!("the download broke off: {e}"))?;
                size += chunk.len() as u64;
                if size > m.size {
                    return Err(format!(
                        "the blob is larger than the {} bytes its manifest says",
                        m.size
                    ));
                }
                hash.update(&chunk);
                out.write_all(&chunk)
                    .map_err(|e| format!("cannot write {}: {e}", to.display()))?;
                progress(size);
            }
            Ok((hex::encode(hash.finalize()), size))
        });
        let checked = result.and_then(|(sha, size)| {
            if size != m.size {
                Err(format!(
                    "the blob has {size} bytes, its manifest says {}",
                    m.size
                ))
            } else if sha != m.sha256 {
                Err(format!(
                    "the blob's sha256 is {sha}, its manifest says {}",
                    m.sha256
                ))
            } else {
                // No fsync: the file is a spool read back at once, and an import cut short by a
                // crash is redone from the store.
                out.flush()
                    .map_err(|e| format!("cannot write {}: {e}", to.display()))
                    .map(|()| size)
            }
        });
        match checked {
            Ok(bytes) => Ok(Transfer {
                bytes,
                seconds: started.elapsed().as_secs_f64(),
            }),
            Err(e) => {
                let _ = std::fs::remove_file(to);
                Err(self.error(&format!("checkpoint {}", short(&m.id)), e))
            }
        }
    }

    /// Deletes a checkpoint: its manifest first, so nothing ever names a missing blob.
    pub fn delete(&self, m: &Manifest) -> Result<(), CacheError> {
        self.rt
            .block_on(async {
                self.store.delete(&self.manifest_path(&m.id)).await?;
                self.store
                    .delete(&self.path(&format!("{}/{}", m.id, m.blob)))
                    .await
            })
            .map_err(|e| self.error(&format!("cannot delete {}", short(&m.id)), e))
    }

    pub fn delete_orphan(&self, o: &Orphan) -> Result<(), CacheError> {
        self.rt
            .block_on(self.store.delete(&self.path(&o.path)))
            .map_err(|e| self.error(&format!("cannot delete {}", o.path), e))
    }
}

pub fn short(id: &str) -> &str {
    &id[..id.len().min(12)]
}

pub use crate::output::units::{human_bytes, human_rate};

#[cfg(test)]
mod tests {
    use super::*;

    fn draft(id: &str) -> Manifest {
        Manifest {
            format: manifest::FORMAT,
            recipe: "r".into(),
            slug: "s/t/u".into(),
            id: id.into(),
            parent: None,
            base: None,
            driver: "copy".into(),
            blob: ".tar.zst".into(),
            sha256: String::new(),
            size: 0,
            created: manifest::rfc3339(1),
            created_unix: 1.0,
            cairn_version: "0".into(),
        }
    }

    #[test]
    fn a_file_store_round_trips_and_refuses_a_changed_blob() {
        let dir = tempfile::tempdir().unwrap();
        let store = dir.path().join("store");
        let remote = Remote::open(&format!("file://{}", store.display())).unwrap();
        let src = dir.path().join("blob");
        std::fs::write(&src, vec![7u8; 3 << 20]).unwrap();
        let id = "ab".repeat(20);
        let Pushed::Uploaded(t) = remote.push(&src, draft(&id), &|_| {}).unwrap() else {
            panic!("first push uploads");
        };
        assert_eq!(t.bytes, 3 << 20);
        // Put-if-absent: a second runner pushing the same ID changes nothing.
        assert!(matches!(
            remote.push(&src, draft(&id), &|_| {}).unwrap(),
            Pushed::AlreadyThere
        ));
        let m = remote.manifest(&id).unwrap().unwrap();
        assert_eq!(m.size, 3 << 20);
        let got = dir.path().join("got");
        remote.fetch(&m, &got, &|_| {}).unwrap();
        assert_eq!(std::fs::read(&got).unwrap(), std::fs::read(&src).unwrap());
        let (entries, orphans, warnings) = remote.scan().unwrap();
        assert_eq!(entries.len(), 1);
        assert!(orphans.is_empty() && warnings.is_empty());

        // One byte changed in the store: the download is refused and nothing is left.
        let blob = store.join(&id).join(&m.blob);
        let mut bytes = std::fs::read(&blob).unwrap();
        bytes[100] ^= 1;
        std::fs::write(&blob, bytes).unwrap();
        let e = remote.fetch(&m, &got, &|_| {}).unwrap_err();
        assert!(e.to_string().contains("sha256"), "{e}");
        assert!(!got.exists());

        std::fs::remove_file(&blob).unwrap();
        let e = remote.fetch(&m, &got, &|_| {}).unwrap_err();
        assert!(
            e.to_string().contains("blob the store does not have"),
            "{e}"
        );
        remote.delete(&m).ok();
        assert!(remote.manifest(&id).unwrap().is_none());
    }

    #[test]
    fn a_blob_without_manifest_is_an_orphan_not_a_checkpoint() {
        let dir = tempfile::tempdir().unwrap();
        let id = "cd".repeat(20);
        std::fs::create_dir_all(dir.path().join(&id)).unwrap();
        std::fs::write(dir.path().join(&id).join("blob-1-1.tar.zst"), b"x").unwrap();
        let remote = Remote::open(&format!("file://{}", dir.path().display())).unwrap();
        assert!(remote.manifest(&id).unwrap().is_none());
        let (entries, orphans, _) = remote.scan().unwrap();
        assert!(entries.is_empty());
        assert_eq!(orphans.len(), 1);
    }

    #[test]
    fn a_huge_or_foreign_manifest_is_an_error_not_a_checkpoint() {
        let dir = tempfile::tempdir().unwrap();
        let id = "ef".repeat(20);
        std::fs::create_dir_all(dir.path().join(&id)).unwrap();
        let remote = Remote::open(&format!("file://{}", dir.path().display())).unwrap();
        std::fs::write(
            dir.path().join(&id).join("manifest.json"),
            vec![b' '; 1 << 20],
        )
        .unwrap();
        assert!(remote.manifest(&id).is_err());
        let mut m = draft(&"01".repeat(20));
        m.sha256 = "0".repeat(64);
        m.blob = "blob-1".into();
        std::fs::write(dir.path().join(&id).join("manifest.json"), m.to_json()).unwrap();
        let e = remote.manifest(&id).unwrap_err();
        assert!(e.to_string().contains("it describes 010101010101"), "{e}");
    }

    #[test]
    fn sizes_read_like_people_write_them() {
        assert_eq!(human_bytes(999), "999 B");
        assert_eq!(human_bytes(1_500_000), "1.5 MB");
        assert_eq!(human_rate(10_000_000, 2.0), "5.0 MB/s");
    }
}
