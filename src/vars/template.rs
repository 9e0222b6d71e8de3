//! Handlebars, set up the way recipes need it: strict (an unknown variable is an error, never
//! an empty string) and without HTML escaping (commands are shell, not HTML).

use std::sync::LazyLock;

use handlebars::{
    Context, Handlebars, Helper, HelperResult, Output, RenderContext, RenderError,
    RenderErrorReason,
};

/// A rendered template larger than this is refused: a value that doubles itself through a few
/// variables would otherwise take all memory.
pub const MAX_RENDERED_BYTES: usize = 16 << 20;

pub enum RenderFailure {
    /// The template names a variable the data does not have.
    Missing(String),
    Syntax(String),
}

/// The one handlebars registry of the process: building one registers every helper, which
/// costs more than rendering most commands.
static HANDLEBARS: LazyLock<Handlebars<'static>> = LazyLock::new(|| {
    let mut hb = Handlebars::new();
    hb.set_strict_mode(true);
    hb.register_escape_fn(handlebars::no_escape);
    // A helper shadows a variable of the same name (`{{log}}` would log, not print the
    // global `log`), so only the block helpers a recipe may use for logic stay.
    for helper in [
        "lookup", "raw", "log", "eq", "ne", "gt", "gte", "lt", "lte", "and", "or", "not", "len",
    ] {
        hb.unregister_helper(helper);
    }
    hb.register_helper("sh", Box::new(sh_helper));
    hb
});

/// Renders `template` with handlebars against `data`.
pub fn render(template: &str, data: &serde_json::Value) -> Result<String, RenderFailure> {
    let out = HANDLEBARS
        .render_template(template, data)
        .map_err(|e| match e.reason() {
            RenderErrorReason::MissingVariable(Some(path)) => {
                RenderFailure::Missing(root_name(path).to_string())
            }
            // The reason alone: handlebars' own rendering of the error is a multi-line report of
            // its own, and the caller points at the place in the recipe.
            RenderErrorReason::TemplateError(t) => RenderFailure::Syntax(t.reason().to_string()),
            other => RenderFailure::Syntax(other.to_string()),
        })?;
    check_size(out.len())?;
    Ok(out)
}

pub fn check_size(len: usize) -> Result<(), RenderFailure> {
    if len > MAX_RENDERED_BYTES {
        return Err(RenderFailure::Syntax(format!(
            "its value grows to {len} bytes, more than the {} MiB cairn allows (a variable that \
             repeats another several times, through several levels?)",
            MAX_RENDERED_BYTES >> 20
        )));
    }
    Ok(())
}

/// A piece of a [`simple`] template.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Piece<'t> {
    Text(&'t str),
    /// `{{name}}` or `{{[name]}}`
    Var(&'t str),
    /// `{{sh name}}`
    Sh(&'t str),
}

/// The template split into text and variables when it uses nothing but `{{name}}`,
/// `{{[name-with-dash]}}` and `{{sh name}}`, as nearly every command does; None for anything
/// else (blocks, escapes, paths, whitespace control, ...), which handlebars renders.
///
/// Parsing a template with handlebars costs far more than the substitution: planning 10,000
/// microsteps spent most of its time there. Both ways give the same text, which a property
/// test and the `template` fuzz target check.
pub fn simple(template: &str) -> Option<Vec<Piece<'_>>> {
    let mut out = Vec::new();
    let mut rest = template;
    while let Some(open) = rest.find("{{") {
        // `\{{` is handlebars' escape for literal braces.
        if rest[..open].ends_with('\\') {
            return None;
        }
        if open > 0 {
            out.push(Piece::Text(&rest[..open]));
        }
        let inner = &rest[open + 2..];
        let close = inner.find("}}")?;
        let expr = &inner[..close];
        // `{{x}}}` and `{{{x}}}`: handlebars' triple braces.
        if inner[close + 2..].starts_with('}') {
            return None;
        }
        out.push(match expr.strip_prefix("sh ") {
            Some(arg) => Piece::Sh(variable(arg)?),
            None => Piece::Var(variable(expr)?),
        });
        rest = &inner[close + 2..];
    }
    if !rest.is_empty() {
        out.push(Piece::Text(rest));
    }
    Some(out)
}

/// Substitutes the pieces of a [`simple`] template, asking `value` for each variable.
pub fn fill<V: AsRef<str>, E: From<RenderFailure>>(
    pieces: &[Piece<'_>],
    mut value: impl FnMut(&str) -> Result<V, E>,
) -> Result<String, E> {
    let mut out = String::new();
    for piece in pieces {
        match piece {
            Piece::Text(t) => out.push_str(t),
            Piece::Var(name) => out.push_str(value(name)?.as_ref()),
            Piece::Sh(name) => out.push_str(&shell_quote(value(name)?.as_ref())),
        }
        check_size(out.len())?;
    }
    Ok(out)
}

/// The variable an expression names, when it is a plain name or a bracketed one that
/// handlebars reads as nothing else (a helper, a literal, a path).
fn variable(expr: &str) -> Option<&str> {
    if let Some(inner) = expr.strip_prefix('[').and_then(|e| e.strip_suffix(']')) {
        let ok = !inner.is_empty()
            && inner
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-');
        return ok.then_some(inner);
    }
    let mut bytes = expr.bytes();
    let first_ok = bytes
        .next()
        .is_some_and(|b| b.is_ascii_alphabetic() || b == b'_');
    let ok = first_ok && bytes.all(|b| b.is_ascii_alphanumeric() || b == b'_');
    let reserved = matches!(
        expr,
        "this"
            | "else"
            | "true"
            | "false"
            | "null"
            | "undefined"
            | "if"
            | "unless"
            | "each"
            | "with"
            | "sh"
    );
    // handlebars reads `{{elsewhere}}` as its `else` keyword followed by junk, a syntax error:
    // the fast path must not render what handlebars refuses.
    (ok && !reserved && !expr.starts_with("else")).then_some(expr)
}

/// `'...'` with every `'` written as `'\''`: the one way cairn's drivers and recipes put a
/// value into shell text. Inside single quotes the shell expands nothing (`$`, backquotes,
/// `"` and `\` are plain characters), so the value reaches the command exactly.
pub fn shell_quote(value: &str) -> String {
    let mut out = String::with_capacity(value.len() + 2);
    out.push('\'');
    for c in value.chars() {
        if c == '\'' {
            out.push_str("'\\''");
        } else {
            out.push(c);
        }
    }
    out.push('\'');
    out
}

/// A word for a command line cairn prints for the user to run (the resume command): as it is
/// when the shell would read it back unchanged, quoted otherwise.
pub fn shell_word(value: &str) -> String {
    let plain = !value.is_empty()
        && value
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"_./:=@%+,-".contains(&b));
    if plain {
        value.to_string()
    } else {
        shell_quote(value)
    }
}

/// `{{sh x}}`: the value of `x`, quoted for the shell. With no argument, `{{sh}}` is the
/// variable `sh`, as any other name would be.
fn sh_helper(
    h: &Helper<'_>,
    _: &Handlebars<'_>,
    ctx: &Context,
    _: &mut RenderContext<'_, '_>,
    out: &mut dyn Output,
) -> HelperResult {
    let Some(param) = h.param(0) else {
        return match ctx.data().get("sh") {
            Some(serde_json::Value::String(v)) => Ok(out.write(v)?),
            _ => Err(RenderErrorReason::MissingVariable(Some("sh".into())).into()),
        };
    };
    if h.param(1).is_some() {
        return Err(RenderError::from(RenderErrorReason::Other(
            "`sh` quotes one value: write {{sh a}}/{{sh b}} for two".into(),
        )));
    }
    if param.is_value_missing() {
        return Err(RenderErrorReason::MissingVariable(param.relative_path().cloned()).into());
    }
    let text = match param.value() {
        serde_json::Value::String(s) => s.clone(),
        serde_json::Value::Null => String::new(),
        other => other.to_string(),
    };
    out.write(&shell_quote(&text))?;
    Ok(())
}

/// Whether a string needs rendering at all: most command lines have no variable, and skipping
/// the template engine for them keeps planning cheap.
pub fn has_template(text: &str) -> bool {
    text.contains("{{")
}

/// `a.b` and `this.a` both need the variable `a`; `[a-b]` (a name with a dash, which
/// handlebars reads only in brackets) needs `a-b`.
fn root_name(path: &str) -> &str {
    let path = path.strip_prefix("this.").unwrap_or(path);
    let path = path.trim_start_matches("../");
    if let Some(rest) = path.strip_prefix('[') {
        return rest.split(']').next().unwrap_or(rest);
    }
    path.split(['.', '/', '[']).next().unwrap_or(path)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn ab(t: &str) -> Result<String, RenderFailure> {
        render(t, &json!({"a": "<x>", "b": "2"}))
    }

    #[test]
    fn no_escaping_and_shell_vars_kept() {
        assert_eq!(ab("echo {{a}} ${b} $b").ok().unwrap(), "echo <x> ${b} $b");
    }

    #[test]
    fn backslash_gives_literal_braces() {
        assert_eq!(ab(r"echo \{{a}}").ok().unwrap(), "echo {{a}}");
    }

    #[test]
    fn variables_named_like_helpers_are_variables() {
        let out = render("{{log}} {{len}}", &json!({"log": "/var/log", "len": "3"}));
        assert_eq!(out.ok().unwrap(), "/var/log 3");
    }

    #[test]
    fn names_with_a_dash_in_brackets() {
        let out = render("v={{[my-var]}}", &json!({"my-var": "1"}));
        assert_eq!(out.ok().unwrap(), "v=1");
        assert!(matches!(ab("{{[my-var]}}"), Err(RenderFailure::Missing(n)) if n == "my-var"));
    }

    #[test]
    fn sh_quotes_a_value_so_the_shell_reads_it_back_exactly() {
        for value in [
            "plain",
            "",
            "it's",
            "$(touch x) `y` $z ${w} \\ \" ' '' \n new line\t*?[a]",
            "-rf /",
            "'",
        ] {
            let out = render("printf %s {{sh v}}", &json!({ "v": value }))
                .ok()
                .unwrap();
            let got = std::process::Command::new("sh")
                .args(["-c", &out])
                .output()
                .unwrap();
            assert_eq!(String::from_utf8_lossy(&got.stdout), value, "{out}");
        }
    }

    #[test]
    fn sh_of_a_missing_variable_is_reported_by_name() {
        assert!(matches!(ab("{{sh nope}}"), Err(RenderFailure::Missing(n)) if n == "nope"));
        assert!(matches!(ab("{{sh a b}}"), Err(RenderFailure::Syntax(_))));
        let shadowed = render("{{sh}}", &json!({"sh": "/bin/sh"}));
        assert_eq!(shadowed.ok().unwrap(), "/bin/sh");
    }

    #[test]
    fn output_past_the_limit_is_refused() {
        let big = "x".repeat(MAX_RENDERED_BYTES / 2 + 1);
        let r = render("{{a}}{{a}}", &json!({ "a": big }));
        assert!(matches!(r, Err(RenderFailure::Syntax(m)) if m.contains("MiB")));
    }

    #[test]
    fn missing_is_reported_by_name() {
        assert!(matches!(ab("{{nope.x}}"), Err(RenderFailure::Missing(n)) if n == "nope"));
    }

    /// The fast path and handlebars agree on every template the fast path takes, and the
    /// fast path takes the shapes commands have.
    fn differential(template: &str) {
        let data = json!({"a": "<x>", "b": "it's $(b)", "my-var": "", "_c9": "\\{{a}}"});
        let Some(pieces) = simple(template) else {
            return;
        };
        let fast = fill::<String, RenderFailure>(&pieces, |name| match data.get(name) {
            Some(serde_json::Value::String(v)) => Ok(v.clone()),
            _ => Err(RenderFailure::Missing(name.to_string())),
        });
        match (fast, render(template, &data)) {
            (Ok(a), Ok(b)) => assert_eq!(a, b, "{template:?}"),
            (Err(RenderFailure::Missing(a)), Err(RenderFailure::Missing(b))) => {
                assert_eq!(a, b, "{template:?}")
            }
            (Err(RenderFailure::Syntax(a)), _) if a.contains("MiB") => {}
            _ => panic!("{template:?}: the fast path and handlebars disagree"),
        }
    }

    #[test]
    fn the_fast_path_takes_plain_commands_and_leaves_the_rest() {
        for t in [
            "echo {{a}} > {{sh b}}",
            "{{[my-var]}}x{{_c9}}",
            "no template",
            "} {{a}} }}",
        ] {
            assert!(simple(t).is_some(), "{t}");
            differential(t);
        }
        for t in [
            r"\{{a}}",
            "{{{a}}}",
            "{{a}}}",
            "{{#if a}}x{{/if}}",
            "{{ a }}",
            "{{a.b}}",
            "{{this}}",
            "{{sh}}",
            "{{sh a b}}",
            "{{~a}}",
            "{{!c}}",
            "{{a",
        ] {
            assert!(simple(t).is_none(), "{t}");
        }
    }

    proptest::proptest! {
        #[test]
        fn the_fast_path_renders_as_handlebars_does(
            parts in proptest::collection::vec(
                proptest::sample::select(vec![
                    "{{", "}}", "{", "}", "a", "b", "my-var", "[", "]", "sh ", " ", "\\", "#if ",
                    "/if", "_c9", "x", "-", ".", "\n", "this", "else", "~", "!", "nope", "$",
                ]),
                0..24,
            )
        ) {
            differential(&parts.concat());
        }
    }
}
