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

/// Where the live groups are written down (`.cairn/processes`, under the build lock), so that
/// the next cairn finds what a SIGKILLed one left running.
static RECORD: Mutex<Option<std::fs::File>> = Mutex::new(None);

pub fn record_groups_in(file: std::fs::File) {
    *RECORD.lock().unwrap_or_else(|p| p.into_inner()) = Some(file);
    write_record(&GROUPS.lock().unwrap_or_else(|p| p.into_inner()));
}

/// One line per group: its ID and its leader's start time, so that a recycled pid is not
/// taken for a leftover.
fn write_record(groups: &[i32]) {
    use std::io::{Seek, Write};
    let mut record = RECORD.lock().unwrap_or_else(|p| p.into_inner());
    let Some(file) = record.as_mut() else {
        return;
    };
    let mut text = String::new();
    for g in groups {
        if let Some(start) = start_time(*g) {
            text.push_str(&format!("{g} {start}\n"));
        }
    }
    let _ = file.set_len(0);
    let _ = file.rewind();
    let _ = file.write_all(text.as_bytes());
}

/// A process's start time (clock ticks since boot, /proc/PID/stat field 22) and its process
/// group (field 5).
fn stat(pid: i32) -> Option<(u64, i32)> {
    let text = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The command name is in parentheses and may hold spaces: count fields after it.
    let rest = &text[text.rfind(')')? + 2..];
    let fields: Vec<&str> = rest.split(' ').collect();
    Some((fields.get(19)?.parse().ok()?, fields.get(2)?.parse().ok()?))
}

pub fn start_time(pid: i32) -> Option<u64> {
    stat(pid).map(|(start, _)| start)
}

/// The processes still alive in groups an earlier cairn recorded (`pgid start` lines): a
/// group counts while any process is in it, unless its ID now leads a newer group.
pub fn leftovers(record: &str) -> Vec<(i32, Vec<i32>)> {
    let groups: Vec<(i32, u64)> = record
        .lines()
        .filter_map(|l| {
            let (g, s) = l.split_once(' ')?;
            Some((g.parse().ok()?, s.trim().parse().ok()?))
        })
        .filter(|(g, _)| *g > 1 && *g != std::process::id() as i32)
        .collect();
    if groups.is_empty() {
        return Vec::new();
    }
    let mut found: Vec<(i32, Vec<i32>)> = Vec::new();
    let Ok(procs) = std::fs::read_dir("/proc") else {
        return found;
    };
    let mut members: Vec<(i32, i32)> = Vec::new();
    for entry in procs.flatten() {
        let Some(pid) = entry
            .file_name()
            .to_str()
            .and_then(|n| n.parse::<i32>().ok())
        else {
            continue;
        };
        // A zombie changes nothing any more; it only waits for a parent to reap it.
        let zombie = std::fs::read_to_string(format!("/proc/{pid}/stat"))
            .ok()
            .and_then(|t| {
                t.rfind(')')
                    .map(|i| t[i + 1..].trim_start().starts_with(['Z', 'X']))
            })
            .unwrap_or(true);
        if let Some((_, pgrp)) = stat(pid).filter(|_| !zombie) {
            members.push((pid, pgrp));
        }
    }
    for (g, start) in groups {
        if start_time(g).is_some_and(|s| s != start) {
            continue;
        }
        let pids: Vec<i32> = members
            .iter()
            .filter(|(_, pgrp)| *pgrp == g)
            .map(|(p, _)| *p)
            .collect();
        if !pids.is_empty() {
            found.push((g, pids));
        }
    }
    found
}

pub fn spawn_in_group(cmd: &mut Command) -> std::io::Result<Child> {
    let child = cmd.process_group(0).spawn()?;
    let mut groups = GROUPS.lock().unwrap_or_else(|p| p.into_inner());
    groups.push(child.id() as i32);
    write_record(&groups);
    Ok(child)
}

/// Forgets a group once its leader has been reaped.
pub fn forget_group(pgid: i32) {
    let mut groups = GROUPS.lock().unwrap_or_else(|p| p.into_inner());
    groups.retain(|g| *g != pgid);
    write_record(&groups);
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

/// A fresh unguessable value for one command's end marker: 128 bits from the kernel's random
/// source (a hash of the pid and the time if that cannot be read, as in a sandbox without
/// /dev/urandom), so that no command can print it before it has ended.
pub fn nonce() -> String {
    let mut bytes = [0u8; 16];
    let random = std::fs::File::open("/dev/urandom")
        .and_then(|mut f| std::io::Read::read_exact(&mut f, &mut bytes))
        .is_ok();
    if !random {
        use sha1::{Digest, Sha1};
        let mut h = Sha1::new();
        h.update(std::process::id().to_le_bytes());
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap_or_default();
        h.update(now.as_nanos().to_le_bytes());
        h.update(format!("{:p}", &now).as_bytes());
        bytes.copy_from_slice(&h.finalize()[..16]);
    }
    hex::encode(bytes)
}
