//! Questions on a terminal. Never asked without one: callers decide on `--yes` and on whether
//! stdin is a terminal before they get here.

use std::io::{BufRead, IsTerminal, Write};
use std::sync::mpsc::{RecvTimeoutError, channel};
use std::time::Duration;

/// Whether cairn may ask: stdin is a terminal and the user did not say `--yes`.
pub fn allowed(yes: bool) -> bool {
    !yes && std::io::stdin().is_terminal()
}

/// Shows a question and its choices on stderr and reads the key of one; None on end of input,
/// and when Ctrl+C (or SIGTERM) arrives while waiting: the caller then ends as interrupted.
pub fn choose(question: &str, choices: &[(&str, &str)]) -> Option<String> {
    let mut err = std::io::stderr().lock();
    let _ = writeln!(err, "{question}");
    for (key, label) in choices {
        let _ = writeln!(err, "  [{key}] {label}");
    }
    let keys: Vec<&str> = choices.iter().map(|(k, _)| *k).collect();
    loop {
        let _ = write!(err, "Choice ({}): ", keys.join("/"));
        let _ = err.flush();
        let Some(line) = read_line() else {
            let _ = writeln!(err);
            return None;
        };
        let answer = line.trim().to_lowercase();
        if let Some(k) = keys
            .iter()
            .find(|k| **k == answer || answer.starts_with(**k))
        {
            return Some((*k).to_string());
        }
    }
}

/// One line of stdin. The read happens on a thread of its own, since a signal does not
/// interrupt it: the handler only records the signal, which is polled here.
fn read_line() -> Option<String> {
    let (tx, rx) = channel();
    std::thread::spawn(move || {
        let mut line = String::new();
        let read = match std::io::stdin().lock().read_line(&mut line) {
            Ok(0) | Err(_) => None,
            Ok(_) => Some(line),
        };
        let _ = tx.send(read);
    });
    loop {
        match rx.recv_timeout(Duration::from_millis(50)) {
            Ok(line) => return line,
            Err(RecvTimeoutError::Disconnected) => return None,
            Err(RecvTimeoutError::Timeout) if crate::exec::signals::interrupted().is_some() => {
                return None;
            }
            Err(RecvTimeoutError::Timeout) => {}
        }
    }
}
