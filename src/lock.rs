//! One build per build dir at a time: a second one stops at once and names the holder.

use std::fs::{File, OpenOptions};
use std::io::{Read, Seek, Write};
use std::path::Path;

use crate::error::{Diagnostic, Error, Result};

pub struct BuildLock {
    _file: File,
}

pub fn acquire(build_dir: &Path) -> Result<BuildLock> {
    let dir = build_dir.join(".cairn");
    std::fs::create_dir_all(&dir).map_err(|e| Error::io("cannot create", &dir, e))?;
    let path = dir.join("lock");
    let mut file = OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .open(&path)
        .map_err(|e| Error::io("cannot open lock file", &path, e))?;
    match file.try_lock() {
        Ok(()) => {
            let _ = file.set_len(0);
            let _ = file.rewind();
            let _ = writeln!(file, "{}", std::process::id());
            Ok(BuildLock { _file: file })
        }
        Err(std::fs::TryLockError::WouldBlock) => {
            // The holder writes its pid just after it locks: a moment later, if it is not
            // there yet.
            let mut holder = String::new();
            for _ in 0..20 {
                holder.clear();
                let _ = file.rewind();
                let _ = file.read_to_string(&mut holder);
                if !holder.trim().is_empty() {
                    break;
                }
                std::thread::sleep(std::time::Duration::from_millis(10));
            }
            let holder = holder.trim();
            Err(Error::Locked(Box::new(
                Diagnostic::new(format!(
                    "build dir {} is in use by another cairn (pid {})",
                    build_dir.display(),
                    if holder.is_empty() { "unknown" } else { holder }
                ))
                .hint("wait for it to finish, or use another build dir with -b"),
            )))
        }
        Err(std::fs::TryLockError::Error(e)) => Err(Error::io("cannot lock", &path, e)),
    }
}
