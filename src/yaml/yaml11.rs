//! YAML 1.1 plain scalars as Kameleon's Ruby reads and prints them: Kameleon substituted the
//! printed value of a typed scalar (`yes` as `true`, `0755` as 493), so Kameleon-dialect trees
//! are read the same way.

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
}
