//! Kameleon's dialect, a property of a recipe tree. A recipe whose extend chain uses `$${var}`,
//! `$$var`, `enabled?` or `@microstep_id` (or any recipe under `--dialect kameleon`) has every
//! file of its tree read with Kameleon's meanings: its parents, step, alias, env and included
//! global files and the drivers in its `steps/checkpoints/`. The shipped drivers stay native.
//! In a Kameleon file its variables become cairn's, `{{` in it is
//! literal text, and its plain scalars are typed as YAML 1.1 (Ruby's parser) types them, since
//! that is what Kameleon substituted into commands.

pub use crate::diag::source::Dialect;

/// The dialect a text's markers show; the loader asks it of the recipe files only, and the
/// answer holds for the whole tree (`recipe::load::LoadOptions::dialect`).
pub fn detect(text: &str) -> Dialect {
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

/// A plain scalar as Ruby's YAML 1.1 parser (Psych's `ScalarScanner`) types it, printed as
/// Ruby's `to_s` prints the value: `yes` is `true`, `0755` is 493, `1.50` is 1.5, `17.10` is
/// 17.1, `12:30` is 45000 (base 60). Kameleon substituted the printed value, so recipes relying
/// on it keep working. None when the text stays as it is.
pub fn yaml11_plain(text: &str) -> Option<String> {
    let printed = yaml11_value(text)?;
    (printed != text).then_some(printed)
}

fn yaml11_value(text: &str) -> Option<String> {
    match text.to_ascii_lowercase().as_str() {
        "yes" | "true" | "on" => return Some("true".into()),
        "no" | "false" | "off" => return Some("false".into()),
        _ => {}
    }
    let (sign, body) = match text.as_bytes().first() {
        Some(b'-') => (-1i128, &text[1..]),
        Some(b'+') => (1, &text[1..]),
        _ => (1, text),
    };
    let digit = |c: char| c.is_ascii_digit();
    // Base 60: `[-+]?[0-9][0-9_]*(:[0-5]?[0-9]){1,2}`, optionally `.[0-9_]*` after the last part.
    let parts: Vec<&str> = body.split(':').collect();
    if (2..=3).contains(&parts.len()) {
        let head_ok = parts[0].starts_with(digit) && parts[0].chars().all(|c| digit(c) || c == '_');
        let last = parts[parts.len() - 1];
        let (last_int, frac) = match last.split_once('.') {
            Some((i, f)) => (i, Some(f)),
            None => (last, None),
        };
        let sixty = |p: &str| {
            (1..=2).contains(&p.len())
                && p.chars().all(digit)
                && (p.len() == 1 || p.as_bytes()[0] <= b'5')
        };
        let middle_ok = parts[1..parts.len() - 1].iter().all(|p| sixty(p));
        let frac_ok = frac.is_none_or(|f| f.chars().all(|c| digit(c) || c == '_'));
        if head_ok && middle_ok && sixty(last_int) && frac_ok {
            let n = parts.len() as i32;
            if frac.is_none() {
                let mut total: i128 = 0;
                for (e, p) in parts.iter().enumerate() {
                    let v = ruby_to_i(p) * if e == 0 { sign } else { 1 };
                    total += v * 60i128.pow((e as i32 - 2).unsigned_abs());
                }
                let _ = n;
                return Some(total.to_string());
            }
            let mut total = 0f64;
            for (e, p) in parts.iter().enumerate() {
                let v = ruby_to_f(p) * if e == 0 { sign as f64 } else { 1.0 };
                total += v * 60f64.powi((e as i32 - 2).abs());
            }
            return Some(ruby_float(total));
        }
    }
    // Base 10 floats: `[-+]?([0-9][0-9_,]*)?\.[0-9]*([eE][-+][0-9]+)?`, not a lone `.`.
    if let Some(dot) = body.find('.') {
        let (int, rest) = (&body[..dot], &body[dot + 1..]);
        let (frac, exp) = match rest.find(['e', 'E']) {
            Some(i) => (&rest[..i], Some(&rest[i + 1..])),
            None => (rest, None),
        };
        let int_ok = int.is_empty()
            || (int.starts_with(digit) && int.chars().all(|c| digit(c) || c == '_' || c == ','));
        let exp_ok = exp.is_none_or(|e| {
            e.len() > 1 && (e.starts_with('+') || e.starts_with('-')) && e[1..].chars().all(digit)
        });
        if int_ok && frac.chars().all(digit) && exp_ok && !(int.is_empty() && frac.is_empty()) {
            let mut clean: String = int.chars().filter(|c| *c != '_' && *c != ',').collect();
            if clean.is_empty() {
                clean.push('0');
            }
            clean.push('.');
            clean.push_str(frac);
            clean.push('0');
            if let Some(e) = exp {
                clean.push('e');
                clean.push_str(e);
            }
            let v: f64 = clean.parse().ok()?;
            return Some(ruby_float(v * sign as f64));
        }
        return None;
    }
    // Integers: 0b..., 0 then octal digits, 0x..., decimal; `_` and `,` are ignored.
    let clean: String = body.chars().filter(|c| *c != '_' && *c != ',').collect();
    let all = |radix: u32, s: &str| !s.is_empty() && s.chars().all(|c| c.is_digit(radix));
    let value = if let Some(bin) = body.strip_prefix("0b") {
        if !bin.chars().all(|c| matches!(c, '0' | '1' | '_' | ',')) || bin.is_empty() {
            return None;
        }
        i128::from_str_radix(&clean[2..], 2).ok()?
    } else if let Some(hex) = body.strip_prefix("0x") {
        if !hex
            .chars()
            .all(|c| c.is_ascii_hexdigit() || c == '_' || c == ',')
            || hex.is_empty()
        {
            return None;
        }
        i128::from_str_radix(&clean[2..], 16).ok()?
    } else if body.len() > 1 && body.starts_with('0') {
        if !body[1..]
            .chars()
            .all(|c| matches!(c, '0'..='7' | '_' | ','))
            || !all(8, &clean)
        {
            return None;
        }
        i128::from_str_radix(&clean, 8).ok()?
    } else {
        // `0`, or `[1-9]` then digits, each `,` or `_` followed by a digit.
        let b = body.as_bytes();
        let ok = body == "0"
            || (b.first().is_some_and(|c| (b'1'..=b'9').contains(c))
                && b.iter().enumerate().all(|(i, c)| {
                    c.is_ascii_digit()
                        || ((*c == b',' || *c == b'_')
                            && b.get(i + 1).is_some_and(u8::is_ascii_digit))
                }));
        if !ok {
            return None;
        }
        clean.parse().ok()?
    };
    Some((value * sign).to_string())
}

/// Ruby's `String#to_i` on a base-60 part: digits and `_`.
fn ruby_to_i(s: &str) -> i128 {
    s.chars()
        .filter(|c| *c != '_')
        .take_while(char::is_ascii_digit)
        .collect::<String>()
        .parse()
        .unwrap_or(0)
}

fn ruby_to_f(s: &str) -> f64 {
    let clean: String = s.chars().filter(|c| *c != '_').collect();
    clean.parse().unwrap_or(0.0)
}

/// Ruby's `Float#to_s`: the shortest digits that read back the same, in fixed notation when the
/// decimal exponent is from -4 to 15 (`1.5`, `1500.0`, `0.0001`), else `1.0e+16`, `1.5e-05`.
pub fn ruby_float(v: f64) -> String {
    if v.is_nan() {
        return "NaN".into();
    }
    if v.is_infinite() {
        return if v > 0.0 { "Infinity" } else { "-Infinity" }.into();
    }
    if v == 0.0 {
        return if v.is_sign_negative() { "-0.0" } else { "0.0" }.into();
    }
    let sci = format!("{:e}", v.abs());
    let (mantissa, exp) = sci.split_once('e').unwrap_or((&sci, "0"));
    let exp: i32 = exp.parse().unwrap_or(0);
    let digits: String = mantissa.chars().filter(char::is_ascii_digit).collect();
    let sign = if v < 0.0 { "-" } else { "" };
    let decpt = exp + 1;
    if !(-3..=16).contains(&decpt) {
        let (first, rest) = digits.split_at(1);
        let rest = if rest.is_empty() { "0" } else { rest };
        let esign = if exp < 0 { '-' } else { '+' };
        return format!("{sign}{first}.{rest}e{esign}{:02}", exp.abs());
    }
    let n = digits.len() as i32;
    let body = if decpt <= 0 {
        format!("0.{}{digits}", "0".repeat((-decpt) as usize))
    } else if decpt >= n {
        format!("{digits}{}.0", "0".repeat((decpt - n) as usize))
    } else {
        let (a, b) = digits.split_at(decpt as usize);
        format!("{a}.{b}")
    };
    format!("{sign}{body}")
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
    fn yaml11_scalars() {
        assert_eq!(yaml11_plain("yes").as_deref(), Some("true"));
        assert_eq!(yaml11_plain("off").as_deref(), Some("false"));
        assert_eq!(yaml11_plain("0755").as_deref(), Some("493"));
        assert_eq!(yaml11_plain("0x1F").as_deref(), Some("31"));
        assert_eq!(yaml11_plain("1_000").as_deref(), Some("1000"));
        assert_eq!(yaml11_plain("42"), None);
        assert_eq!(yaml11_plain("bookworm"), None);
        assert_eq!(yaml11_plain("0"), None);
        // Checked against Ruby 3.1's Psych: YAML.unsafe_load("v: TEXT")["v"].to_s
        for (text, ruby) in [
            ("1.50", "1.5"),
            ("17.10", "17.1"),
            ("12:30", "45000"),
            ("190:20:30", "685230"),
            ("-1:30", "-1800"),
            ("1:30.5", "5430.0"),
            ("+.5", "0.5"),
            ("-.5", "-0.5"),
            ("1,2", "12"),
            ("0,7", "7"),
            ("+12", "12"),
            ("1_000", "1000"),
            ("1,000", "1000"),
            ("0x_1F", "31"),
            ("0b101", "5"),
            ("-0755", "-493"),
            ("1.5e+3", "1500.0"),
            (".5", "0.5"),
            ("3.", "3.0"),
            ("1_0.5", "10.5"),
            ("-0.0", "-0.0"),
            ("1.0e+20", "1.0e+20"),
            ("0.00001", "1.0e-05"),
            ("0.0001", "0.0001"),
            ("123456789012345678.0", "1.2345678901234568e+17"),
            ("TRUE", "true"),
            ("oFF", "false"),
        ] {
            assert_eq!(yaml11_value(text).as_deref(), Some(ruby), "{text}");
        }
        for text in [
            "09", "1e3", "0o17", "1.2.3", "12:60", "v1.5", ".", "1:2:3:4", "1.5e3",
        ] {
            assert_eq!(yaml11_plain(text), None, "{text}");
        }
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
