//! Processes: each context shell runs in a process group of its own, so a signal reaches the
//! shell and everything it started, and so Ctrl+C at the terminal reaches cairn first and is
//! forwarded on cairn's terms.

use std::os::unix::process::CommandExt;
use std::process::{Child, Command};
use std::sync::Mutex;
use std::time::{Duration, Instant};

pub use nix::sys::signal::Signal;
use nix::unistd::Pid;

/// Process groups cairn has started and not yet reaped, for signal forwarding.
static GROUPS: Mutex<Vec<i32>> = Mutex::new(Vec::new());

pub fn spawn_in_group(cmd: &mut Command) -> std::io::Result<Child> {
    let child = cmd.process_group(0).spawn()?;
    GROUPS
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .push(child.id() as i32);
    Ok(child)
}

/// Forgets a group once its leader has been reaped.
pub fn forget_group(pgid: i32) {
    GROUPS
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .retain(|g| *g != pgid);
}

pub fn signal_all(signal: Signal) {
    let groups = GROUPS.lock().unwrap_or_else(|p| p.into_inner()).clone();
    for g in groups {
        kill_group(g, signal);
    }
}

pub fn kill_group(pgid: i32, signal: Signal) {
    if pgid > 0 {
        let _ = nix::sys::signal::killpg(Pid::from_raw(pgid), signal);
    }
}

/// Whether any process of the group is still alive.
pub fn group_alive(pgid: i32) -> bool {
    pgid > 0 && nix::sys::signal::killpg(Pid::from_raw(pgid), None).is_ok()
}

/// Waits for a child up to `limit`; true if it exited.
pub fn wait_timeout(child: &mut Child, limit: Duration) -> bool {
    let start = Instant::now();
    loop {
        match child.try_wait() {
            Ok(Some(_)) | Err(_) => return true,
            Ok(None) if start.elapsed() >= limit => return false,
            Ok(None) => std::thread::sleep(Duration::from_millis(10)),
        }
    }
}

/// A value no command's output will contain by chance, for the end-of-command marker.
pub fn nonce() -> String {
    use sha1::{Digest, Sha1};
    let mut h = Sha1::new();
    h.update(std::process::id().to_le_bytes());
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default();
    h.update(now.as_nanos().to_le_bytes());
    h.update(format!("{:p}", &now).as_bytes());
    hex::encode(&h.finalize()[..8])
}
