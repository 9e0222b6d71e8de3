use std::io::IsTerminal;

use clap::Parser;

/// Rust ignores SIGPIPE, which turns `cairn build -l | head` into a panic on the next
/// `println!`. A command-line tool should end quietly instead, as `ls | head` does. Context
/// shells are unaffected: std resets SIGPIPE in every child it spawns.
#[allow(unsafe_code)]
fn restore_sigpipe() {
    use nix::sys::signal::{SigHandler, Signal, signal};
    // SAFETY: called first thing in main, before any thread exists; SIG_DFL installs no handler.
    let _ = unsafe { signal(Signal::SIGPIPE, SigHandler::SigDfl) };
}

fn main() {
    restore_sigpipe();
    let cli = cairn::cli::Cli::parse();
    let color =
        !cli.no_color && std::env::var_os("NO_COLOR").is_none() && std::io::stdout().is_terminal();
    colored::control::set_override(color);
    let code = match cairn::run(cli) {
        Ok(()) => 0,
        Err(e) => {
            eprint!("{}", e.render(color && std::io::stderr().is_terminal()));
            e.exit_code()
        }
    };
    std::process::exit(code);
}
