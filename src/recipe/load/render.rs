//! Rendering while loading: an `extend` or `include_steps` path, a `$${kameleon_data_dir}`
//! path, from what is known before any step runs.

use indexmap::IndexMap;

use crate::diag::error::Result;
use crate::recipe::dialect::Dialect;
use crate::recipe::model::{Global, StepVars, Text};

/// Renders `text` with what is known while loading: the recipe's name and directory, the
/// globals (each with the values it shadows), `-g`, and a step's variables when given, in
/// cairn's precedence (`vars::Origin`).
pub(super) fn render_load_time(
    text: &Text,
    name: &str,
    dir: &str,
    globals: &IndexMap<String, Global>,
    cli_globals: &[(String, String)],
    dialect: Dialect,
    step_vars: Option<&StepVars>,
) -> Result<String> {
    use crate::vars::{Mode, Resolver, Scope};
    if !crate::vars::template::has_template(&text.text) {
        return Ok(text.text.clone());
    }
    let mut scope = Scope::default();
    for (k, v) in [
        ("recipe_name", name),
        ("kameleon_recipe_name", name),
        ("recipe_dir", dir),
        ("kameleon_recipe_dir", dir),
    ] {
        scope.set_builtin(k, v);
    }
    scope.set_globals(globals);
    scope.set_command_line(cli_globals, dialect);
    if let Some(vars) = step_vars {
        scope.set_step(vars);
    }
    Resolver::new(&scope).render(text, Mode::Run)
}
