//! Questions on a terminal. Never asked without one: callers decide on `--yes` and on whether
//! stdin is a terminal before they get here.

use std::io::{BufRead, IsTerminal, Write};

/// Whether cairn may ask: stdin is a terminal and the user did not say `--yes`.
pub fn allowed(yes: bool) -> bool {
    !yes && std::io::stdin().is_terminal()
}

/// Shows a question and its choices on stderr and reads the key of one; None on end of input.
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
        let mut line = String::new();
        match std::io::stdin().lock().read_line(&mut line) {
            Ok(0) | Err(_) => return None,
            Ok(_) => {}
        }
        let answer = line.trim().to_lowercase();
        if let Some(k) = keys
            .iter()
            .find(|k| **k == answer || answer.starts_with(**k))
        {
            return Some((*k).to_string());
        }
    }
}
