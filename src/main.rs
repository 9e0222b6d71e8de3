use std::io::IsTerminal;

use clap::Parser;

fn main() {
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
