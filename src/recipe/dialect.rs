//! Kameleon's dialect, a property of a recipe tree. A recipe whose extend chain uses `$${var}`,
//! `$$var`, `enabled?` or `@microstep_id` (or any recipe under `--dialect kameleon`) has every
//! file of its tree read with Kameleon's meanings: its parents, step, alias, env and included
//! global files and the drivers in its `steps/checkpoints/`. The shipped drivers stay native.
//! In a Kameleon file its variables become cairn's, `{{` in it is
//! literal text, and its plain scalars are typed as YAML 1.1 (Ruby's parser) types them, since
//! that is what Kameleon substituted into commands.

pub use crate::diag::source::{Dialect, detect};

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

/// A `-g KEY=VALUE` value as a template, read in the tree's dialect: for a Kameleon recipe
/// (`-g 'pkgs:$${pkgs} git'`) it is translated like its files' strings, so it can use
/// variables too.
pub fn cli_value(value: &str, tree: Dialect) -> String {
    match tree {
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

/// A resolved one-line command as Kameleon runs it. Kameleon substitutes variables into the
/// YAML it dumped, then parses that again: a command Psych wrote as a plain scalar (one line,
/// starting with a letter or digit, nothing YAML would read as syntax) loses the spaces an
/// empty variable leaves at its ends (`rm -f $${installer}` runs `rm -f`).
pub fn kameleon_plain_trim(template: &str, resolved: String) -> String {
    let plain = !template.contains('\n')
        && template.starts_with(|c: char| c.is_alphanumeric() || c == '_')
        && !template.ends_with([' ', '\t', ':'])
        && !template.contains(": ")
        && !template.contains(" #")
        && !template.contains('\t');
    let trimmed = resolved.trim_matches(' ');
    if plain && trimmed.len() != resolved.len() {
        trimmed.to_string()
    } else {
        resolved
    }
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
    fn command_line_values_are_read_in_the_trees_dialect() {
        assert_eq!(cli_value("$${pkgs} git", Dialect::Kameleon), "{{pkgs}} git");
        assert_eq!(cli_value("{{pkgs}} git", Dialect::Native), "{{pkgs}} git");
        assert_eq!(cli_value("plain", Dialect::Kameleon), "plain");
        assert_eq!(cli_value("plain", Dialect::Native), "plain");
        // In a native tree `$$` is the shell's (its PID), as in the recipe's own files.
        assert_eq!(cli_value("$$ ok", Dialect::Native), "$$ ok");
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
    fn plain_commands_lose_spaces_an_empty_variable_left_at_their_ends() {
        assert_eq!(kameleon_plain_trim("rm -f {{x}}", "rm -f ".into()), "rm -f");
        // Psych quotes these, and the quotes keep the spaces.
        assert_eq!(kameleon_plain_trim("{{x}} y", " y".into()), " y");
        assert_eq!(kameleon_plain_trim("a: {{x}}", "a: ".into()), "a: ");
        assert_eq!(kameleon_plain_trim("a\n{{x}}", "a\n ".into()), "a\n ");
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
