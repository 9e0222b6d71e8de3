//! Kameleon's dialect, chosen per file. A file that uses `$${var}`, `$$var`, `enabled?` or
//! `@microstep_id` is read with Kameleon's meanings: its variables become cairn's, `{{` in it is
//! literal text, and its plain scalars are typed as YAML 1.1 (Ruby's parser) types them, since
//! that is what Kameleon substituted into commands.

use std::sync::atomic::{AtomicU8, Ordering};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Dialect {
    #[default]
    Native,
    Kameleon,
}

/// 0: detect per file; 1: every file native; 2: every file Kameleon.
static FORCED: AtomicU8 = AtomicU8::new(0);

/// `--dialect`: None detects per file.
pub fn force(dialect: Option<Dialect>) {
    let v = match dialect {
        None => 0,
        Some(Dialect::Native) => 1,
        Some(Dialect::Kameleon) => 2,
    };
    FORCED.store(v, Ordering::Relaxed);
}

pub fn detect(text: &str) -> Dialect {
    match FORCED.load(Ordering::Relaxed) {
        1 => return Dialect::Native,
        2 => return Dialect::Kameleon,
        _ => {}
    }
    let bytes = text.as_bytes();
    let kameleon_var = bytes.windows(3).any(|w| {
        w[0] == b'$' && w[1] == b'$' && (w[2] == b'{' || w[2].is_ascii_alphabetic() || w[2] == b'_')
    });
    let driver = text
        .lines()
        .any(|l| l.trim_start().starts_with("enabled?:"));
    if kameleon_var || driver || text.contains("@microstep_id") {
        Dialect::Kameleon
    } else {
        Dialect::Native
    }
}

/// A Kameleon string as a cairn template: `$${x}` and `$$x` become `{{x}}`, `@microstep_id`
/// becomes `{{checkpoint_id}}`, and a `{{` that was literal text stays literal.
pub fn translate(text: &str) -> String {
    let mut out = String::with_capacity(text.len() + 8);
    let chars: Vec<char> = text.chars().collect();
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        if c == '{' && chars.get(i + 1) == Some(&'{') {
            out.push_str("\\{{");
            i += 2;
            continue;
        }
        if c == '$' && chars.get(i + 1) == Some(&'$') {
            let (name, used) = if chars.get(i + 2) == Some(&'{') {
                let end = chars[i + 3..].iter().position(|c| *c == '}');
                match end {
                    Some(e) => {
                        let name: String = chars[i + 3..i + 3 + e].iter().collect();
                        (name, e + 4)
                    }
                    None => (String::new(), 0),
                }
            } else {
                let name: String = chars[i + 2..]
                    .iter()
                    .take_while(|c| c.is_ascii_alphanumeric() || **c == '_' || **c == '-')
                    .collect();
                let n = name.chars().count();
                (name, n + 2)
            };
            if !name.is_empty()
                && name
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
            {
                if name.contains('-') {
                    out.push_str(&format!("{{{{[{name}]}}}}"));
                } else {
                    out.push_str(&format!("{{{{{name}}}}}"));
                }
                i += used;
                continue;
            }
        }
        if c == '@'
            && chars[i..]
                .iter()
                .collect::<String>()
                .starts_with("@microstep_id")
        {
            out.push_str("{{checkpoint_id}}");
            i += "@microstep_id".len();
            continue;
        }
        out.push(c);
        i += 1;
    }
    out
}

/// A `-g KEY=VALUE` value as a template: one in Kameleon's syntax (`-g 'pkgs:$${pkgs} git'`)
/// is translated like a Kameleon file's strings, so it can use variables too.
pub fn cli_value(value: &str) -> String {
    match detect(value) {
        Dialect::Kameleon => translate(value),
        Dialect::Native => value.to_string(),
    }
}

/// A command's text as Kameleon runs it. Kameleon stores each command as YAML it dumped itself
/// (Ruby's Psych) and then `strip`s, so a multi-line text Psych writes as a `|` block loses its
/// one final newline; a text written quoted (one line, a tab, a space before a line break)
/// keeps it, as does one ending in two newlines (`|+`). The same happens to an alias call's
/// last argument, which ends the call's dumped YAML.
pub fn kameleon_chomp(text: &str) -> &str {
    let Some(body) = text.strip_suffix('\n') else {
        return text;
    };
    if body.ends_with('\n') || !psych_literal(text) {
        return text;
    }
    body
}

/// Whether Psych dumps `text` as a literal block: it has a line break before its last line,
/// and libyaml allows a block (no space before a line break, no trailing space, no character
/// it must escape).
fn psych_literal(text: &str) -> bool {
    let trimmed = text.strip_suffix('\n').unwrap_or(text);
    let inner_break = trimmed.contains('\n');
    let escaped = text
        .chars()
        .any(|c| c != '\n' && (c.is_control() || c == '\u{feff}'));
    inner_break && !escaped && !text.contains(" \n") && !text.ends_with(' ')
}

/// A plain scalar as Ruby's YAML 1.1 parser types it, then prints it: `yes` is `true`, `0755`
/// is 493. Kameleon substituted the printed value, so recipes relying on it keep working.
pub fn yaml11_plain(text: &str) -> Option<String> {
    match text {
        "yes" | "Yes" | "YES" | "on" | "On" | "ON" | "true" | "True" | "TRUE" => {
            return Some("true".into());
        }
        "no" | "No" | "NO" | "off" | "Off" | "OFF" | "false" | "False" | "FALSE" => {
            return Some("false".into());
        }
        _ => {}
    }
    let (sign, body) = match text.strip_prefix('-') {
        Some(rest) => ("-", rest),
        None => ("", text.strip_prefix('+').unwrap_or(text)),
    };
    let clean: String = body.chars().filter(|c| *c != '_').collect();
    let all = |radix: u32, s: &str| !s.is_empty() && s.chars().all(|c| c.is_digit(radix));
    let value = if let Some(hex) = clean.strip_prefix("0x").filter(|h| all(16, h)) {
        i128::from_str_radix(hex, 16).ok()?
    } else if let Some(bin) = clean.strip_prefix("0b").filter(|b| all(2, b)) {
        i128::from_str_radix(bin, 2).ok()?
    } else if clean.len() > 1 && clean.starts_with('0') && all(8, &clean) {
        i128::from_str_radix(&clean[1..], 8).ok()?
    } else if all(10, &clean) {
        clean.parse().ok()?
    } else {
        return None;
    };
    let printed = format!("{sign}{value}");
    (printed != text).then_some(printed)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn variables_translate_and_braces_stay_literal() {
        assert_eq!(
            translate("echo $${a} $$b-c {{x}} ${SHELL} $$"),
            "echo {{a}} {{[b-c]}} \\{{x}} ${SHELL} $$"
        );
        assert_eq!(translate("snap @microstep_id"), "snap {{checkpoint_id}}");
    }

    #[test]
    fn command_line_values() {
        assert_eq!(cli_value("$${pkgs} git"), "{{pkgs}} git");
        assert_eq!(cli_value("{{pkgs}} git"), "{{pkgs}} git");
        assert_eq!(cli_value("plain"), "plain");
    }

    #[test]
    fn yaml11_scalars() {
        assert_eq!(yaml11_plain("yes").as_deref(), Some("true"));
        assert_eq!(yaml11_plain("off").as_deref(), Some("false"));
        assert_eq!(yaml11_plain("0755").as_deref(), Some("493"));
        assert_eq!(yaml11_plain("0x1F").as_deref(), Some("31"));
        assert_eq!(yaml11_plain("1_000").as_deref(), Some("1000"));
        assert_eq!(yaml11_plain("42"), None);
        assert_eq!(yaml11_plain("bookworm"), None);
        assert_eq!(yaml11_plain("0"), None);
    }

    #[test]
    fn chomp_as_psych_and_strip_do() {
        assert_eq!(kameleon_chomp("a\nb\n"), "a\nb");
        assert_eq!(kameleon_chomp("a\nb"), "a\nb");
        assert_eq!(kameleon_chomp("a\n"), "a\n");
        assert_eq!(kameleon_chomp("a\nb\n\n"), "a\nb\n\n");
        assert_eq!(kameleon_chomp("a \nb\n"), "a \nb\n");
        assert_eq!(kameleon_chomp("a\tb\nc\n"), "a\tb\nc\n");
        assert_eq!(kameleon_chomp("a\n\nb\n"), "a\n\nb");
        assert_eq!(kameleon_chomp("  lead\nb\n"), "  lead\nb");
        assert_eq!(kameleon_chomp(" \nb\n"), " \nb\n");
        assert_eq!(kameleon_chomp("\u{e9}\nb\n"), "\u{e9}\nb");
    }

    #[test]
    fn detection() {
        assert_eq!(detect("- a:\n  - exec_in: echo $${x}\n"), Dialect::Kameleon);
        assert_eq!(
            detect("enabled?:\n  - exec_local: true\n"),
            Dialect::Kameleon
        );
        assert_eq!(
            detect("- a:\n  - exec_in: echo {{x}} $$ ${y}\n"),
            Dialect::Native
        );
    }
}
