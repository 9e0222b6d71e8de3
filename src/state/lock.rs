//! One build per build dir at a time: a second one stops at once and names the holder.
//!
//! Also the one place that opens files under `<build_dir>/.cairn`. cairn runs as root in shared
//! workspaces where someone else may have made the build dir: a link planted in `.cairn` would
//! make cairn truncate or create whatever it points at. So `.cairn` must be a real directory
//! owned by whoever runs cairn (made private, 0700), and its files are opened without
//! following links (0600) and refused when they are links.

use std::fs::{File, OpenOptions};
use std::io::{Read, Seek, Write};
use std::os::unix::fs::{DirBuilderExt, MetadataExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

use crate::diag::error::{Diagnostic, Error, Result};
use crate::state::StateError;

fn describe(left: &[(i32, Vec<i32>)]) -> String {
    left.iter()
        .map(|(g, pids)| {
            let names: Vec<String> = pids
                .iter()
                .map(|p| {
                    let comm =
                        std::fs::read_to_string(format!("/proc/{p}/comm")).unwrap_or_default();
                    format!("{p} {}", comm.trim())
                })
                .collect();
            format!("group {g}: {}", names.join(", "))
        })
        .collect::<Vec<_>>()
        .join("\n")
}

fn leftover_error(build_dir: &Path, left: &[(i32, Vec<i32>)]) -> Diagnostic {
    Diagnostic::new(format!(
        "processes an earlier cairn started in build dir {} are still running",
        build_dir.display()
    ))
    .note(format!(
        "that cairn was killed before it could stop them; they may still change the build:\n{}",
        describe(left)
    ))
    .hint(format!(
        "wait for them to end, kill them (kill -KILL -- -{}), or run again with --yes to have cairn kill them first",
        left[0].0
    ))
}

/// SIGKILLs the groups and waits (a few seconds at most) until they are gone.
fn kill_leftovers(left: &[(i32, Vec<i32>)]) -> Result<()> {
    for (g, _) in left {
        eprintln!(
            "warning: killing process group {g}, left running by an earlier cairn in this build dir"
        );
        crate::exec::process::kill_group(*g, crate::exec::process::Signal::SIGKILL);
    }
    for _ in 0..500 {
        if left
            .iter()
            .all(|(g, _)| !crate::exec::process::group_alive(*g))
        {
            return Ok(());
        }
        std::thread::sleep(std::time::Duration::from_millis(10));
    }
    Err(Error::Locked(Box::new(
        Diagnostic::new("processes an earlier cairn left running would not die")
            .note(describe(left)),
    )))
}

pub struct BuildLock {
    _file: File,
}

fn unsafe_path(path: &Path, why: impl Into<String>) -> StateError {
    StateError::Unsafe {
        path: path.to_path_buf(),
        why: why.into(),
    }
}

/// `<build_dir>/.cairn`, created 0700 when missing; an existing one must be a directory (not a
/// link to one) owned by the user running cairn, and is made 0700.
pub fn private_dir(build_dir: &Path) -> Result<PathBuf, StateError> {
    std::fs::create_dir_all(build_dir).map_err(|source| StateError::Io {
        path: build_dir.to_path_buf(),
        source,
    })?;
    let dir = build_dir.join(".cairn");
    match std::fs::DirBuilder::new().mode(0o700).create(&dir) {
        Ok(()) => {}
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {}
        Err(source) => return Err(StateError::Io { path: dir, source }),
    }
    let meta = std::fs::symlink_metadata(&dir).map_err(|source| StateError::Io {
        path: dir.clone(),
        source,
    })?;
    if meta.file_type().is_symlink() {
        return Err(unsafe_path(&dir, "it is a symbolic link"));
    }
    if !meta.is_dir() {
        return Err(unsafe_path(&dir, "it is not a directory"));
    }
    let me = nix::unistd::geteuid().as_raw();
    if meta.uid() != me {
        return Err(unsafe_path(
            &dir,
            format!(
                "it belongs to user {}, not to the user running cairn ({me})",
                meta.uid()
            ),
        ));
    }
    if meta.mode() & 0o077 != 0 {
        // Only its owner (us) can have made it wider; narrowing it keeps anyone else from
        // planting links in it from now on.
        std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o700)).map_err(
            |source| StateError::Io {
                path: dir.clone(),
                source,
            },
        )?;
    }
    Ok(dir)
}

/// Refuses `path` when it is a link (symbolic or hard) or not a regular file; a missing file
/// is fine.
pub fn check_private_file(path: &Path) -> Result<(), StateError> {
    match std::fs::symlink_metadata(path) {
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(source) => Err(StateError::Io {
            path: path.to_path_buf(),
            source,
        }),
        Ok(meta) => check_meta(path, &meta),
    }
}

fn check_meta(path: &Path, meta: &std::fs::Metadata) -> Result<(), StateError> {
    if meta.file_type().is_symlink() {
        Err(unsafe_path(path, "it is a symbolic link"))
    } else if !meta.is_file() {
        Err(unsafe_path(path, "it is not a regular file"))
    } else if meta.nlink() > 1 {
        Err(unsafe_path(
            path,
            format!("it is a hard link ({} names for one file)", meta.nlink()),
        ))
    } else {
        Ok(())
    }
}

/// Opens (creating it 0600) a file under `.cairn` for reading and writing, never through a
/// link.
pub fn open_private_file(path: &Path) -> Result<File, StateError> {
    check_private_file(path)?;
    let nofollow = rustix::fs::OFlags::NOFOLLOW.bits() as i32;
    let file = OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .mode(0o600)
        .custom_flags(nofollow | rustix::fs::OFlags::NONBLOCK.bits() as i32)
        .open(path)
        .map_err(|source| {
            if source.raw_os_error() == Some(rustix::io::Errno::LOOP.raw_os_error()) {
                unsafe_path(path, "it is a symbolic link")
            } else {
                StateError::Io {
                    path: path.to_path_buf(),
                    source,
                }
            }
        })?;
    // Checked again on what was opened: the name may have changed since.
    let meta = file.metadata().map_err(|source| StateError::Io {
        path: path.to_path_buf(),
        source,
    })?;
    check_meta(path, &meta)?;
    if meta.mode() & 0o077 != 0 {
        file.set_permissions(std::fs::Permissions::from_mode(0o600))
            .map_err(|source| StateError::Io {
                path: path.to_path_buf(),
                source,
            })?;
    }
    Ok(file)
}

/// Takes the build dir's lock, refusing to go on while processes an earlier (SIGKILLed)
/// cairn started in it are still running.
pub fn acquire(build_dir: &Path) -> Result<BuildLock> {
    acquire_killing_leftovers(build_dir, false)
}

/// As [`acquire`]; with `kill` (`--yes`), leftover processes are killed first instead.
pub fn acquire_killing_leftovers(build_dir: &Path, kill: bool) -> Result<BuildLock> {
    let dir = private_dir(build_dir)?;
    let path = dir.join("lock");
    let mut file = open_private_file(&path)?;
    match file.try_lock() {
        Ok(()) => {
            let _ = file.set_len(0);
            let _ = file.rewind();
            let _ = writeln!(file, "{}", std::process::id());
            let lock = BuildLock { _file: file };
            let record_path = dir.join("processes");
            let mut record = open_private_file(&record_path)?;
            let mut text = String::new();
            let _ = record.read_to_string(&mut text);
            let left = crate::exec::process::leftovers(&text);
            if !left.is_empty() {
                if !kill {
                    return Err(Error::Locked(Box::new(leftover_error(build_dir, &left))));
                }
                kill_leftovers(&left)?;
            }
            crate::exec::process::record_groups_in(record);
            Ok(lock)
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
