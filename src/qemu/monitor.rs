//! One command to a QEMU human monitor (HMP) listening
//! on a unix socket (`-monitor unix:PATH,server,nowait`), for the `qemu` driver's shell
//! commands. It reads the banner up to the `(qemu) ` prompt, sends the command, reads up to the
//! next prompt (a `savevm` under TCG can take many seconds), and prints the reply without the
//! monitor's echo of the command and its prompts. A reply with `Error:` (or an unknown command)
//! is a failure: the reply goes to stderr and the exit code is 4.

use std::io::{ErrorKind, Read, Write};
use std::os::unix::net::UnixStream;
use std::path::Path;
use std::time::{Duration, Instant};

use crate::diag::error::{Diagnostic, Error, Result};

const PROMPT: &[u8] = b"(qemu) ";
const BANNER_TIMEOUT: Duration = Duration::from_secs(60);

/// Whether a reply reports a failure: QEMU prefixes errors with `Error:`.
pub fn failed(reply: &str) -> bool {
    reply
        .lines()
        .any(|l| l.contains("Error:") || l.trim_start().starts_with("unknown command:"))
}

fn monitor_error(socket: &Path, message: String) -> Error {
    Error::checkpoint(
        Diagnostic::new(format!("QEMU monitor {}: {message}", socket.display()))
            .hint("start QEMU with `-monitor unix:PATH,server,nowait` and give that PATH"),
    )
}

/// Sends one command and returns the monitor's reply, cleaned of echo, escapes and prompts.
pub fn exchange(socket: &Path, command: &str, timeout: Duration) -> Result<String> {
    let mut stream = UnixStream::connect(socket)
        .map_err(|e| monitor_error(socket, format!("cannot connect: {e}")))?;
    // The monitor serves one client at a time: a banner that does not come within a minute
    // means another client holds it, and waiting for a savevm's timeout would not help.
    let banner_deadline = Instant::now() + timeout.min(BANNER_TIMEOUT);
    let mut banner = Vec::new();
    read_to_prompt(&mut stream, &mut banner, banner_deadline).map_err(|e| {
        monitor_error(
            socket,
            format!("no `(qemu)` prompt: {e} (is another client connected to this monitor?)"),
        )
    })?;
    stream
        .write_all(format!("{command}\n").as_bytes())
        .map_err(|e| monitor_error(socket, format!("cannot send `{command}`: {e}")))?;
    let deadline = Instant::now() + timeout;
    let mut reply = Vec::new();
    match read_to_prompt(&mut stream, &mut reply, deadline) {
        Ok(()) => {}
        // `quit` (and a VM that exits) close the connection instead of prompting again.
        Err(e) if e.kind() == ErrorKind::UnexpectedEof => {}
        Err(e) => {
            return Err(monitor_error(
                socket,
                format!(
                    "`{command}` did not finish within {}s: {e}",
                    timeout.as_secs()
                ),
            ));
        }
    }
    Ok(clean_reply(&reply))
}

/// Reads until the buffer ends with a prompt at the start of a line (or is the prompt alone).
fn read_to_prompt(
    stream: &mut UnixStream,
    buf: &mut Vec<u8>,
    deadline: Instant,
) -> std::io::Result<()> {
    let mut chunk = [0u8; 4096];
    loop {
        if ends_with_prompt(buf) {
            return Ok(());
        }
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return Err(std::io::Error::new(ErrorKind::TimedOut, "timed out"));
        }
        stream.set_read_timeout(Some(left))?;
        match stream.read(&mut chunk) {
            Ok(0) => {
                return Err(std::io::Error::new(
                    ErrorKind::UnexpectedEof,
                    "the monitor closed the connection",
                ));
            }
            Ok(n) => buf.extend_from_slice(&chunk[..n]),
            Err(e) if e.kind() == ErrorKind::Interrupted => {}
            Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {
                return Err(std::io::Error::new(ErrorKind::TimedOut, "timed out"));
            }
            Err(e) => return Err(e),
        }
    }
}

fn ends_with_prompt(buf: &[u8]) -> bool {
    buf == PROMPT || (buf.ends_with(PROMPT) && buf[..buf.len() - PROMPT.len()].ends_with(b"\n"))
}

/// The reply without the echoed command line (everything up to the first newline, drawn with
/// cursor movements), terminal escapes, carriage returns and the final prompt.
pub fn clean_reply(raw: &[u8]) -> String {
    let raw = raw.strip_suffix(PROMPT).unwrap_or(raw);
    let after_echo = match raw.iter().position(|&b| b == b'\n') {
        Some(i) => &raw[i + 1..],
        None => &[][..],
    };
    let text = String::from_utf8_lossy(after_echo);
    let mut out = String::with_capacity(text.len());
    let mut chars = text.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '\u{1b}' => {
                // CSI: ESC [ parameters final-byte; other escapes: ESC and one character.
                if chars.peek() == Some(&'[') {
                    chars.next();
                    for c in chars.by_ref() {
                        if ('@'..='~').contains(&c) {
                            break;
                        }
                    }
                } else {
                    chars.next();
                }
            }
            '\r' => {}
            c => out.push(c),
        }
    }
    let trimmed = out.trim_end_matches('\n');
    trimmed.to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_echo_escapes_and_prompt_are_removed() {
        let raw = b"s\x1b[K\x1b[Dsa\x1b[K\x1b[D\x1b[Dinfo snapshots\x1b[K\r\nList of snapshots present on all disks:\r\nID TAG\r\n--  aaaa\r\n(qemu) ";
        assert_eq!(
            clean_reply(raw),
            "List of snapshots present on all disks:\nID TAG\n--  aaaa"
        );
        assert_eq!(clean_reply(b"cont\x1b[K\r\n(qemu) "), "");
    }

    #[test]
    fn errors_are_recognised() {
        assert!(failed(
            "Error: Device 'drive1' is writable but does not support snapshots"
        ));
        assert!(failed("unknown command: 'savevmm'"));
        assert!(!failed("List of snapshots present on all disks:"));
    }

    #[test]
    fn a_prompt_counts_only_at_the_start_of_a_line() {
        assert!(ends_with_prompt(b"(qemu) "));
        assert!(ends_with_prompt(b"banner\r\n(qemu) "));
        assert!(!ends_with_prompt(b"text (qemu) "));
    }
}
