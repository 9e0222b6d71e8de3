//! Scopes: which value each variable name has, and which values it overrides.
//!
//! Precedence is the order of [`Origin`] and is applied in one place, [`Scope::set`]: a binding
//! goes above every binding of a lower or equal origin, whatever order the bindings are added
//! in. A scope may sit on a parent (a microstep's on the recipe's globals, a driver's on the
//! same), sharing the parent's bindings instead of copying them; the two stacks of a name merge
//! by origin.

use std::collections::HashSet;
use std::sync::Arc;

use indexmap::IndexMap;

use crate::diag::source::Span;
use crate::recipe::dialect::{Dialect, cli_value};
use crate::recipe::{Global, GlobalValue, StepVars, Text};

/// Where a value comes from, lowest precedence first: the derived order is the precedence.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Origin {
    Builtin,
    Driver,
    StepDefault,
    Global,
    CommandLine,
    StepArgument,
    /// What a driver operation is called with (`checkpoint_id`, `parent_id`, ...): a recipe
    /// must not be able to point an operation at another checkpoint.
    Operation,
}

#[derive(Debug, Clone)]
pub struct Binding {
    pub value: Text,
    pub origin: Origin,
}

/// Each name keeps every binding it was given, lowest precedence first: a value may refer to
/// the one it overrides (`user_name: "{{user_name}}-admin"` in a step call).
#[derive(Debug, Clone, Default)]
pub struct Scope {
    parent: Option<Arc<Scope>>,
    vars: IndexMap<String, Vec<Binding>>,
    /// Hashed by name, not value, so a build's IDs do not depend on where it lives.
    volatile: HashSet<String>,
}

impl Scope {
    /// An empty scope over `parent`: lookups see the parent's bindings merged with this
    /// scope's own by origin.
    pub fn child(parent: Arc<Scope>) -> Scope {
        Scope {
            parent: Some(parent),
            ..Scope::default()
        }
    }

    pub fn set(&mut self, name: &str, value: Text, origin: Origin) {
        let stack = self.vars.entry(name.to_string()).or_default();
        let at = stack.partition_point(|b| b.origin <= origin);
        stack.insert(at, Binding { value, origin });
    }

    pub fn mark_volatile(&mut self, name: &str) {
        self.volatile.insert(name.to_string());
    }

    pub fn is_volatile(&self, name: &str) -> bool {
        self.volatile.contains(name) || self.parent.as_ref().is_some_and(|p| p.is_volatile(name))
    }

    /// Whether this scope itself, not its parent, binds `name`.
    pub fn binds_here(&self, name: &str) -> bool {
        self.vars.contains_key(name)
    }

    pub fn parent(&self) -> Option<&Scope> {
        self.parent.as_deref()
    }

    /// Every binding of `name`, lowest precedence first; a parent's before this scope's own
    /// of the same origin.
    pub fn stack(&self, name: &str) -> Vec<&Binding> {
        let mut out = match &self.parent {
            Some(p) => p.stack(name),
            None => Vec::new(),
        };
        if let Some(own) = self.vars.get(name) {
            for b in own {
                let at = out.partition_point(|x| x.origin <= b.origin);
                out.insert(at, b);
            }
        }
        out
    }

    /// The winning binding of `name`.
    pub fn get(&self, name: &str) -> Option<&Binding> {
        self.stack(name).pop()
    }

    /// Every name with its winning binding, a parent's names first.
    pub fn iter(&self) -> impl Iterator<Item = (&str, &Binding)> {
        self.names()
            .into_iter()
            .filter_map(move |n| self.get(n).map(|b| (n, b)))
    }

    fn names(&self) -> Vec<&str> {
        let mut out = self.parent.as_ref().map(|p| p.names()).unwrap_or_default();
        let seen: HashSet<&str> = out.iter().copied().collect();
        out.extend(
            self.vars
                .keys()
                .map(String::as_str)
                .filter(|k| !seen.contains(k)),
        );
        out
    }

    /// A recipe's globals, each with the values it shadows (a parent recipe's, an included
    /// file's) below it.
    pub fn set_globals<'g>(&mut self, globals: impl IntoIterator<Item = (&'g String, &'g Global)>) {
        for (name, g) in globals {
            if let GlobalValue::Text(t) = &g.value {
                for old in &g.shadowed {
                    self.set(name, old.clone(), Origin::Global);
                }
                self.set(name, t.clone(), Origin::Global);
            }
        }
    }

    /// `-g NAME=VALUE` values; Kameleon's `-g 'pkgs:$${pkgs} git'` means `{{pkgs}} git`.
    pub fn set_command_line(&mut self, values: &[(String, String)], dialect: Dialect) {
        for (name, value) in values {
            self.set(
                name,
                Text::new(cli_value(value, dialect), Span::synthetic("command line")),
                Origin::CommandLine,
            );
        }
    }

    /// A step's defaults and the arguments of the call that includes it.
    pub fn set_step(&mut self, vars: &StepVars) {
        for (name, v) in &vars.defaults {
            self.set(name, v.value.clone(), Origin::StepDefault);
        }
        for (name, v) in &vars.args {
            self.set(name, v.value.clone(), Origin::StepArgument);
        }
    }

    pub fn set_builtin(&mut self, name: &str, value: impl Into<String>) {
        self.set(
            name,
            Text::new(value, Span::synthetic("built-in")),
            Origin::Builtin,
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn text(s: &str) -> Text {
        Text::new(s, Span::synthetic("test"))
    }

    fn values(scope: &Scope, name: &str) -> Vec<(String, Origin)> {
        scope
            .stack(name)
            .into_iter()
            .map(|b| (b.value.text.clone(), b.origin))
            .collect()
    }

    #[test]
    fn precedence_is_the_origin_whatever_the_order_of_set() {
        let mut s = Scope::default();
        s.set("x", text("arg"), Origin::StepArgument);
        s.set("x", text("global"), Origin::Global);
        s.set("x", text("builtin"), Origin::Builtin);
        s.set("x", text("cli"), Origin::CommandLine);
        s.set("x", text("default"), Origin::StepDefault);
        assert_eq!(
            values(&s, "x"),
            [
                ("builtin".into(), Origin::Builtin),
                ("default".into(), Origin::StepDefault),
                ("global".into(), Origin::Global),
                ("cli".into(), Origin::CommandLine),
                ("arg".into(), Origin::StepArgument),
            ]
        );
    }

    #[test]
    fn a_child_merges_its_bindings_into_the_parents_by_origin() {
        let mut globals = Scope::default();
        globals.set("x", text("builtin"), Origin::Builtin);
        globals.set("x", text("global"), Origin::Global);
        globals.mark_volatile("x");
        let globals = Arc::new(globals);
        let mut step = Scope::child(globals.clone());
        step.set("x", text("default"), Origin::StepDefault);
        step.set("y", text("late"), Origin::Builtin);
        assert_eq!(
            values(&step, "x"),
            [
                ("builtin".into(), Origin::Builtin),
                ("default".into(), Origin::StepDefault),
                ("global".into(), Origin::Global),
            ]
        );
        assert!(step.is_volatile("x") && !step.is_volatile("y"));
        assert!(step.binds_here("x") && !globals.binds_here("y"));
        let names: Vec<&str> = step.iter().map(|(n, _)| n).collect();
        assert_eq!(names, ["x", "y"]);
        // The parent is shared, not changed.
        assert_eq!(values(&globals, "x").len(), 2);
    }
}
