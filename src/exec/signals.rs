//! Ctrl+C, SIGTERM, SIGHUP and SIGQUIT. cairn's children run in process groups of their own, so the terminal's
//! SIGINT reaches cairn alone; cairn passes it on to every live group, waits a grace period,
//! then kills what is left. A second signal kills at once. Either way cairn itself stays alive
//! to write the record and run the clean hooks.

use std::sync::atomic::{AtomicBool, AtomicI32, AtomicUsize, Ordering};
use std::time::Duration;

use signal_hook::consts::{SIGHUP, SIGINT, SIGQUIT, SIGTERM};

use super::process::{self as exec, Signal};

static RECEIVED: AtomicI32 = AtomicI32::new(0);
static COUNT: AtomicUsize = AtomicUsize::new(0);
/// Whether the grace period's SIGKILL is still due: cleared once the interrupted command is
/// gone, so that the clean hooks started after it are not killed by it.
static GRACE_ARMED: AtomicBool = AtomicBool::new(false);

/// How long a signalled command gets to exit before it is killed.
pub fn grace() -> Duration {
    let ms = std::env::var("CAIRN_GRACE_MS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(5000);
    Duration::from_millis(ms)
}

static INSTALLED: AtomicBool = AtomicBool::new(false);

/// Installs the handlers once per process; later calls do nothing.
pub fn install() -> std::io::Result<()> {
    if INSTALLED.swap(true, Ordering::SeqCst) {
        return Ok(());
    }
    // main() restores SIGPIPE's default so that `cairn ... | head` ends quietly. A build must
    // not die that way: writing the next command to a context shell that a forwarded signal
    // (or a dropped connection) just ended would kill cairn before it records anything. With
    // a handler, such a write fails with EPIPE instead and the engine sees a dead shell. (A
    // handler, unlike SIG_IGN, is reset to the default in the shells cairn starts.)
    signal_hook::flag::register(
        signal_hook::consts::SIGPIPE,
        std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false)),
    )?;
    // A closed terminal or a dropped ssh connection (SIGHUP), and Ctrl+\\ (SIGQUIT), end a
    // build like SIGTERM: otherwise cairn dies at once, leaving the run marked running and its
    // shells (in groups of their own, which the terminal's signal never reaches) running on.
    let mut signals = signal_hook::iterator::Signals::new([SIGINT, SIGTERM, SIGHUP, SIGQUIT])?;
    std::thread::spawn(move || {
        for sig in signals.forever() {
            RECEIVED.store(sig, Ordering::SeqCst);
            let n = COUNT.fetch_add(1, Ordering::SeqCst) + 1;
            if n == 1 {
                let forward = if sig == SIGINT {
                    Signal::SIGINT
                } else {
                    Signal::SIGTERM
                };
                GRACE_ARMED.store(true, Ordering::SeqCst);
                exec::signal_all(forward);
                std::thread::spawn(|| {
                    std::thread::sleep(grace());
                    if GRACE_ARMED.load(Ordering::SeqCst) {
                        exec::signal_all(Signal::SIGKILL);
                    }
                });
            } else {
                exec::signal_all(Signal::SIGKILL);
            }
        }
    });
    Ok(())
}

/// The interrupted command has ended: the grace period's SIGKILL is no longer needed, and
/// would hit what cairn runs next (undo, clean hooks). A second signal still kills at once.
pub fn disarm_grace() {
    GRACE_ARMED.store(false, Ordering::SeqCst);
}

/// The signal that interrupted the build, if any.
pub fn interrupted() -> Option<i32> {
    match RECEIVED.load(Ordering::SeqCst) {
        0 => None,
        s => Some(s),
    }
}
