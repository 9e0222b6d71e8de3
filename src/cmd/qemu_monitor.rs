//! `cairn qemu-monitor SOCKET COMMAND...`, which the qemu drivers call (see `qemu::monitor`).

use std::io::Write;
use std::path::Path;
use std::time::Duration;

use crate::diag::error::{Diagnostic, Error, Result};
use crate::qemu::monitor::{exchange, failed};

pub fn run(socket: &Path, command: &[String], timeout: Duration) -> Result<()> {
    let command = command.join(" ");
    if command.trim().is_empty() || command.contains('\n') {
        return Err(Error::Usage("give one monitor command on one line".into()));
    }
    let reply = exchange(socket, &command, timeout)?;
    if failed(&reply) {
        for line in reply.lines() {
            eprintln!("{line}");
        }
        return Err(Error::checkpoint(Diagnostic::new(format!(
            "the QEMU monitor at {} refused `{command}`",
            socket.display()
        ))));
    }
    let mut out = std::io::stdout().lock();
    for line in reply.lines() {
        // A closed stdout (`| head`) is not the command's failure.
        let _ = writeln!(out, "{line}");
    }
    Ok(())
}
