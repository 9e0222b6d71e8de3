//! Handlebars, set up the way recipes need it: strict (an unknown variable is an error, never
//! an empty string) and without HTML escaping (commands are shell, not HTML).

use handlebars::{Handlebars, RenderErrorReason};

pub struct Renderer {
    hb: Handlebars<'static>,
}

pub enum RenderFailure {
    /// The template names a variable the data does not have.
    Missing(String),
    Syntax(String),
}

impl Default for Renderer {
    fn default() -> Self {
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
        Renderer { hb }
    }
}

impl Renderer {
    pub fn render(
        &self,
        template: &str,
        data: &serde_json::Value,
    ) -> Result<String, RenderFailure> {
        self.hb
            .render_template(template, data)
            .map_err(|e| match e.reason() {
                RenderErrorReason::MissingVariable(Some(path)) => {
                    RenderFailure::Missing(root_name(path).to_string())
                }
                // The reason alone: handlebars' own rendering of the error is a multi-line report of
                // its own, and the caller points at the place in the recipe.
                RenderErrorReason::TemplateError(t) => {
                    RenderFailure::Syntax(t.reason().to_string())
                }
                other => RenderFailure::Syntax(other.to_string()),
            })
    }
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

    fn render(t: &str) -> Result<String, RenderFailure> {
        Renderer::default().render(t, &json!({"a": "<x>", "b": "2"}))
    }

    #[test]
    fn no_escaping_and_shell_vars_kept() {
        assert_eq!(
            render("echo {{a}} ${b} $b").ok().unwrap(),
            "echo <x> ${b} $b"
        );
    }

    #[test]
    fn backslash_gives_literal_braces() {
        assert_eq!(render(r"echo \{{a}}").ok().unwrap(), "echo {{a}}");
    }

    #[test]
    fn variables_named_like_helpers_are_variables() {
        let out =
            Renderer::default().render("{{log}} {{len}}", &json!({"log": "/var/log", "len": "3"}));
        assert_eq!(out.ok().unwrap(), "/var/log 3");
    }

    #[test]
    fn names_with_a_dash_in_brackets() {
        let out = Renderer::default().render("v={{[my-var]}}", &json!({"my-var": "1"}));
        assert_eq!(out.ok().unwrap(), "v=1");
        assert!(matches!(render("{{[my-var]}}"), Err(RenderFailure::Missing(n)) if n == "my-var"));
    }

    #[test]
    fn missing_is_reported_by_name() {
        assert!(matches!(render("{{nope.x}}"), Err(RenderFailure::Missing(n)) if n == "nope"));
    }
}
