//! Real filesystems for driver tests: an image file (sparse, so it costs what is written), a
//! loop device and a mount, all undone when the value is dropped.

use std::path::PathBuf;
use std::process::{Command, Stdio};

use super::{have_program, is_root};

/// Runs a program to completion; its stdout, or why it failed.
pub fn sh(program: &str, args: &[&str]) -> Result<String, String> {
    let out = Command::new(program)
        .args(args)
        .stdin(Stdio::null())
        .output()
        .map_err(|e| format!("{program}: {e}"))?;
    if !out.status.success() {
        return Err(format!(
            "{program} {}: {}",
            args.join(" "),
            String::from_utf8_lossy(&out.stderr).trim()
        ));
    }
    Ok(String::from_utf8_lossy(&out.stdout).trim().to_string())
}

/// The tools a backend needs that are missing, or root when it is needed and we are not.
pub fn missing(tools: &[&str], root: bool) -> Option<String> {
    if root && !is_root() {
        return Some("it needs root".into());
    }
    let absent: Vec<&str> = tools.iter().copied().filter(|t| !have_program(t)).collect();
    (!absent.is_empty()).then(|| format!("not installed: {}", absent.join(", ")))
}

/// A file of `bytes` that costs only what is written into it.
pub fn sparse_file(path: &std::path::Path, bytes: u64) -> Result<(), String> {
    std::fs::File::create(path)
        .and_then(|f| f.set_len(bytes))
        .map_err(|e| format!("{}: {e}", path.display()))
}

pub struct LoopFs {
    dir: tempfile::TempDir,
    device: Option<String>,
    mounted: bool,
}

impl LoopFs {
    /// `mkfs` is the program and its options; the image path is appended. An error says why
    /// there is none here.
    pub fn new(name: &str, mkfs: &[&str], bytes: u64) -> Result<LoopFs, String> {
        if let Some(why) = missing(&[mkfs[0], "losetup", "mount", "umount"], true) {
            return Err(why);
        }
        let dir = tempfile::Builder::new()
            .prefix(&format!("cairn-{name}-"))
            .tempdir()
            .map_err(|e| e.to_string())?;
        let image = dir.path().join(format!("{name}.img"));
        sparse_file(&image, bytes)?;
        let image = image.display().to_string();
        let mut args: Vec<&str> = mkfs[1..].to_vec();
        args.push(&image);
        sh(mkfs[0], &args)?;
        let device = sh("losetup", &["--find", "--show", &image])?;
        let mut fs = LoopFs {
            dir,
            device: Some(device.clone()),
            mounted: false,
        };
        std::fs::create_dir(fs.mnt()).map_err(|e| e.to_string())?;
        sh("mount", &[&device, &fs.mnt().display().to_string()])?;
        fs.mounted = true;
        Ok(fs)
    }

    pub fn mnt(&self) -> PathBuf {
        self.dir.path().join("mnt")
    }
}

impl Drop for LoopFs {
    fn drop(&mut self) {
        let mnt = self.mnt().display().to_string();
        if self.mounted && sh("umount", &[&mnt]).is_err() {
            // Busy (a process still in it): detach now, the kernel finishes when it can.
            let _ = sh("umount", &["-l", &mnt]);
        }
        if let Some(device) = self.device.take() {
            let _ = sh("losetup", &["-d", &device]);
        }
    }
}

/// A tmpfs of a few bytes mounted on `<tempdir>/mnt`, to fill up; unmounted when dropped.
pub struct Tmpfs {
    dir: tempfile::TempDir,
    mounted: bool,
}

impl Tmpfs {
    pub fn new(name: &str, bytes: u64) -> Result<Tmpfs, String> {
        if let Some(why) = missing(&["mount", "umount"], true) {
            return Err(why);
        }
        let dir = tempfile::Builder::new()
            .prefix(&format!("cairn-{name}-"))
            .tempdir()
            .map_err(|e| e.to_string())?;
        let mut fs = Tmpfs {
            dir,
            mounted: false,
        };
        std::fs::create_dir(fs.mnt()).map_err(|e| e.to_string())?;
        let size = format!("size={bytes},mode=0755");
        sh(
            "mount",
            &[
                "-t",
                "tmpfs",
                "-o",
                &size,
                name,
                &fs.mnt().display().to_string(),
            ],
        )?;
        fs.mounted = true;
        Ok(fs)
    }

    pub fn mnt(&self) -> PathBuf {
        self.dir.path().join("mnt")
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let mnt = self.mnt().display().to_string();
        if self.mounted && sh("umount", &[&mnt]).is_err() {
            let _ = sh("umount", &["-l", &mnt]);
        }
    }
}
