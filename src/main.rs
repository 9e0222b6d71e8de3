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
    let args: Vec<std::ffi::OsString> = std::env::args_os().collect();
    let cli = match cairn::cli::Cli::try_parse_from(&args) {
        Ok(cli) => cli,
        Err(e) => {
            if e.use_stderr() && cairn::cli::asks_for_json(&args) {
                cairn::output::schema::enable(cairn::output::schema::CommandName::Other);
                let text = e.to_string();
                let first = text.lines().next().unwrap_or_default();
                cairn::output::schema::usage_error(first.trim_start_matches("error: "));
            }
            e.exit()
        }
    };
    let choice = cli.color.with_no_color(cli.no_color);
    let colors = cairn::output::color::Colors::decide(choice);
    // Painting is decided per stream by cairn itself; the crate only has to be allowed to.
    colored::control::set_override(colors.stdout || colors.stderr);
    cairn::output::configure(cairn::output::Settings {
        colors,
        quiet: cli.quiet,
    });
    if let Some(command) = cli.json() {
        cairn::output::schema::enable(command);
    }
    let result = cairn::run(cli);
    cairn::output::schema::finish(&result);
    let code = match result {
        Ok(()) => 0,
        Err(e) => {
            eprint!("{}", e.render(colors.stderr));
            e.exit_code()
        }
    };
    std::process::exit(code);
}
