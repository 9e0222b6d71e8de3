//! Rendering while loading: an `extend` or `include_steps` path, a `$${kameleon_data_dir}`
//! path, from what is known before any step runs.

use indexmap::IndexMap;

use crate::diag::error::Result;
use crate::diag::source::Span;
use crate::recipe::dialect::Dialect;
use crate::recipe::model::{Global, GlobalValue, StepVars, Text};

/// Renders `text` with what is known while loading: the recipe's name and directory, the
/// globals (each with the values it shadows), `-g`, and a step's variables when given, in
/// cairn's precedence (built-ins, step defaults, globals, command line, step arguments).
pub(super) fn render_load_time(
    text: &Text,
    name: &str,
    dir: &str,
    globals: &IndexMap<String, Global>,
    cli_globals: &[(String, String)],
    dialect: Dialect,
    step_vars: Option<&StepVars>,
) -> Result<String> {
    use crate::vars::{Mode, Origin, Resolver, Scope};
    if !crate::vars::template::has_template(&text.text) {
        return Ok(text.text.clone());
    }
    let mut scope = Scope::default();
    let builtin = Span::synthetic("built-in");
    let (name, dir) = (name.to_string(), dir.to_string());
    for (k, v) in [
        ("recipe_name", name.clone()),
        ("kameleon_recipe_name", name),
        ("recipe_dir", dir.clone()),
        ("kameleon_recipe_dir", dir),
    ] {
        scope.set(k, Text::new(v, builtin.clone()), Origin::Builtin);
    }
    for (k, v) in step_vars.iter().flat_map(|v| &v.defaults) {
        scope.set(k, v.value.clone(), Origin::StepDefault);
    }
    for (k, g) in globals {
        if let GlobalValue::Text(t) = &g.value {
            for old in &g.shadowed {
                scope.set(k, old.clone(), Origin::Global);
            }
            scope.set(k, t.clone(), Origin::Global);
        }
    }
    for (k, v) in cli_globals {
        scope.set(
            k,
            Text::new(
                crate::recipe::dialect::cli_value(v, dialect),
                Span::synthetic("command line"),
            ),
            Origin::CommandLine,
        );
    }
    for (k, v) in step_vars.iter().flat_map(|v| &v.args) {
        scope.set(k, v.value.clone(), Origin::StepArgument);
    }
    let renderer = crate::vars::template::Renderer::default();
    Resolver::new(&scope, &renderer).render(text, Mode::Run)
}
