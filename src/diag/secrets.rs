//! Secret values: `global.secret: [names]`, and every variable whose name contains
//! `password`, `passwd`, `token` or `secret`. Commands get the value; everything cairn writes
//! or prints (the state database, JSON and human output, errors, `info`, `plan --explain`,
//! `graph`) shows `***` instead. Checkpoint IDs still hash the value, so changing a password
//! changes the IDs of the microsteps that use it, but no record keeps it.
//!
//! The rollback journal must run its commands with the real value later, so there a value is
//! *sealed*: replaced by a marker naming the variable, which `unseal` turns back into the value
//! the recipe gives it when the rollback runs.

use std::sync::RwLock;

pub const MASK: &str = "***";
/// Values shorter than this are not searched for in free text (a one-letter secret would mask
/// every such letter of every line); where cairn knows the variable, it is masked whatever its
/// length.
const MIN_SCANNED: usize = 4;
const DEFAULT_WORDS: [&str; 4] = ["password", "passwd", "token", "secret"];

struct Secret {
    name: String,
    value: String,
}

static SECRETS: RwLock<Vec<Secret>> = RwLock::new(Vec::new());

/// Whether a variable is secret: listed in `global.secret`, or named like one.
pub fn is_secret_name(name: &str, declared: &[String]) -> bool {
    if name == "secret" {
        // The list of names itself.
        return false;
    }
    let lower = name.to_ascii_lowercase();
    declared.iter().any(|d| d == name) || DEFAULT_WORDS.iter().any(|w| lower.contains(w))
}

/// Remembers the values to mask for the rest of the process.
pub fn register(name: &str, value: &str) {
    if value.is_empty() {
        return;
    }
    let mut all = SECRETS.write().unwrap_or_else(|p| p.into_inner());
    if !all.iter().any(|s| s.name == name && s.value == value) {
        all.push(Secret {
            name: name.to_string(),
            value: value.to_string(),
        });
        // Longest first, so that a value containing another is masked whole.
        all.sort_by_key(|s| std::cmp::Reverse(s.value.len()));
    }
}

/// The forms a value takes in text cairn writes: as is, inside `{{sh}}`'s quotes, and as a
/// JSON string's content (of either).
fn forms(value: &str) -> Vec<(String, &'static str)> {
    let quoted = value.replace('\'', r"'\''");
    let json = |s: &str| {
        let j = serde_json::to_string(s).unwrap_or_default();
        j[1..j.len().saturating_sub(1).max(1)].to_string()
    };
    let mut v = vec![
        (value.to_string(), "raw"),
        (quoted.clone(), "sh"),
        (json(value), "json"),
        (json(&quoted), "json-sh"),
    ];
    v.sort();
    v.dedup_by(|a, b| a.0 == b.0);
    v.sort_by_key(|(s, _)| std::cmp::Reverse(s.len()));
    v
}

/// `text` with every registered value masked.
pub fn redact(text: &str) -> String {
    let all = SECRETS.read().unwrap_or_else(|p| p.into_inner());
    let mut out = unsealed_masks(text);
    for s in all
        .iter()
        .filter(|s| s.value.chars().count() >= MIN_SCANNED)
    {
        for (form, _) in forms(&s.value) {
            if out.contains(&form) {
                out = mask_tokens(&out, &form);
            }
        }
    }
    out
}

fn is_word(c: char) -> bool {
    c.is_alphanumeric() || c == '_'
}

/// `text` with `form` masked where it stands as a whole token: a common word used as a password
/// (`root_password: kameleon`) must not turn the slug `setup/kameleon_customization` into
/// `setup/***_customization`, which nobody can type back into `-F`. An edge of the value that
/// is not a word character needs no boundary, so `x:pw!` is still masked inside `-u x:pw!@host`.
fn mask_tokens(text: &str, form: &str) -> String {
    let starts_word = form.chars().next().is_some_and(is_word);
    let ends_word = form.chars().next_back().is_some_and(is_word);
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    let mut before: Option<char> = None;
    while let Some(at) = rest.find(form) {
        let prev = rest[..at].chars().next_back().or(before);
        let next = rest[at + form.len()..].chars().next();
        let glued =
            (starts_word && prev.is_some_and(is_word)) || (ends_word && next.is_some_and(is_word));
        out.push_str(&rest[..at]);
        out.push_str(if glued { form } else { MASK });
        before = form.chars().next_back();
        rest = &rest[at + form.len()..];
    }
    out.push_str(rest);
    out
}

fn marker(name: &str, form: &str) -> String {
    format!("[[cairn-secret {name} {form}]]")
}

/// Markers left in text that is shown: masked like values.
fn unsealed_masks(text: &str) -> String {
    let mut out = text.to_string();
    while let Some(start) = out.find("[[cairn-secret ") {
        let Some(len) = out[start..].find("]]") else {
            break;
        };
        out.replace_range(start..start + len + 2, MASK);
    }
    out
}

/// `text` (JSON) with every registered value replaced by a marker naming its variable.
pub fn seal(text: &str) -> String {
    let all = SECRETS.read().unwrap_or_else(|p| p.into_inner());
    let mut out = text.to_string();
    for s in all.iter() {
        for (f, kind) in forms(&s.value) {
            if kind.starts_with("json") && out.contains(&f) {
                out = out.replace(&f, &marker(&s.name, kind));
            }
        }
    }
    out
}

/// The markers of `seal` turned back into the values registered now.
pub fn unseal(text: &str) -> String {
    let all = SECRETS.read().unwrap_or_else(|p| p.into_inner());
    let mut out = text.to_string();
    for s in all.iter() {
        for (f, kind) in forms(&s.value) {
            let m = marker(&s.name, kind);
            if out.contains(&m) {
                out = out.replace(&m, &f);
            }
        }
    }
    out
}

/// Masks the value of a variable cairn shows by name (`info`): whatever its length.
pub fn shown_value(name: &str, value: &str, declared: &[String]) -> String {
    if is_secret_name(name, declared) {
        MASK.to_string()
    } else {
        redact(value)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_that_look_secret_are_secret() {
        for n in [
            "db_password",
            "API_TOKEN",
            "passwd",
            "client_secret",
            "mine",
        ] {
            assert_eq!(is_secret_name(n, &["mine".into()]), n != "x", "{n}");
        }
        assert!(!is_secret_name("hostname", &[]));
        assert!(!is_secret_name("secret", &[]));
    }

    #[test]
    fn redact_masks_every_form_and_seal_round_trips() {
        register("test_pw", "hu'nt\"er2");
        let sh = crate::vars::template::shell_quote("hu'nt\"er2");
        let text = format!("curl --password {sh} -u x:hu'nt\"er2");
        assert_eq!(redact(&text), "curl --password '***' -u x:***");
        let json = serde_json::to_string(&vec![text.clone()]).unwrap();
        let sealed = seal(&json);
        assert!(!sealed.contains("er2"), "{sealed}");
        assert!(redact(&sealed).contains("***"));
        assert_eq!(unseal(&sealed), json);
    }

    #[test]
    fn a_secret_inside_a_longer_word_is_left_alone() {
        register("root_password", "kameleon");
        assert_eq!(
            redact(
                "setup/kameleon_customization echo root:kameleon | chpasswd; cd /home/kameleon/"
            ),
            "setup/kameleon_customization echo root:*** | chpasswd; cd /home/***/"
        );
        assert_eq!(redact("kameleon"), "***");
        assert_eq!(
            redact("xkameleon kameleonx kameleon"),
            "xkameleon kameleonx ***"
        );
    }
}
