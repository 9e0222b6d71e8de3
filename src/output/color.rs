//! Whether to colour a stream: `--color auto|always|never`, decided for stdout and stderr
//! separately (a build piped to a file can still colour its errors on the terminal), with the
//! NO_COLOR and CLICOLOR_FORCE conventions for `auto`.

use std::io::IsTerminal;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, clap::ValueEnum)]
pub enum ColorChoice {
    /// Colour a stream that is a terminal, unless NO_COLOR is set; CLICOLOR_FORCE forces it
    #[default]
    Auto,
    /// Always colour (for CI logs that render ANSI escapes)
    Always,
    /// Never colour
    Never,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Target {
    Stdout,
    Stderr,
}

/// What the environment says, read once so that the decision is a pure function.
#[derive(Debug, Clone, Default)]
pub struct Env {
    pub no_color: bool,
    pub clicolor_force: bool,
}

impl Env {
    pub fn read() -> Env {
        // Both conventions count a variable only when it is set and not empty; CLICOLOR_FORCE=0
        // means "do not force".
        let set = |k: &str| std::env::var_os(k).is_some_and(|v| !v.is_empty());
        Env {
            no_color: set("NO_COLOR"),
            clicolor_force: set("CLICOLOR_FORCE")
                && std::env::var_os("CLICOLOR_FORCE").is_some_and(|v| v != "0"),
        }
    }
}

impl ColorChoice {
    /// `--no-color` is kept as `--color never`.
    pub fn with_no_color(self, no_color: bool) -> ColorChoice {
        if no_color { ColorChoice::Never } else { self }
    }

    /// The flag beats the environment (no-color.org: "user-level configuration ... should
    /// override"), NO_COLOR beats CLICOLOR_FORCE, and a terminal decides the rest.
    pub fn decide(self, env: &Env, is_terminal: bool) -> bool {
        match self {
            ColorChoice::Always => true,
            ColorChoice::Never => false,
            ColorChoice::Auto if env.no_color => false,
            ColorChoice::Auto if env.clicolor_force => true,
            ColorChoice::Auto => is_terminal,
        }
    }

    pub fn for_stream(self, target: Target) -> bool {
        let tty = match target {
            Target::Stdout => std::io::stdout().is_terminal(),
            Target::Stderr => std::io::stderr().is_terminal(),
        };
        self.decide(&Env::read(), tty)
    }
}

/// The colour decisions of one process, one per stream.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Colors {
    pub stdout: bool,
    pub stderr: bool,
}

impl Colors {
    pub fn decide(choice: ColorChoice) -> Colors {
        Colors {
            stdout: choice.for_stream(Target::Stdout),
            stderr: choice.for_stream(Target::Stderr),
        }
    }

    pub const NONE: Colors = Colors {
        stdout: false,
        stderr: false,
    };
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn flag_beats_environment_and_no_color_beats_force() {
        let none = Env::default();
        let no_color = Env {
            no_color: true,
            clicolor_force: false,
        };
        let force = Env {
            no_color: false,
            clicolor_force: true,
        };
        let both = Env {
            no_color: true,
            clicolor_force: true,
        };
        assert!(ColorChoice::Auto.decide(&none, true));
        assert!(!ColorChoice::Auto.decide(&none, false));
        assert!(!ColorChoice::Auto.decide(&no_color, true));
        assert!(ColorChoice::Auto.decide(&force, false));
        assert!(!ColorChoice::Auto.decide(&both, false));
        assert!(ColorChoice::Always.decide(&no_color, false));
        assert!(!ColorChoice::Never.decide(&force, true));
        assert_eq!(ColorChoice::Always.with_no_color(true), ColorChoice::Never);
    }
}
