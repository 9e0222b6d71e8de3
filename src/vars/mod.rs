//! Variable scopes and their resolution. A scope is built lowest precedence first (built-ins,
//! step defaults, globals, command line, step-call arguments), so a later `set` wins. Values are
//! templates themselves and are resolved lazily, only when something uses them, so an unused
//! variable that names an unknown one is not an error.

pub mod template;

use std::cell::RefCell;
use std::collections::{BTreeMap, HashMap};

use indexmap::IndexMap;

use crate::diag::error::{Diagnostic, Result};
use crate::diag::suggest::closest;
use crate::recipe::Text;
use crate::vars::template::{RenderFailure, Renderer, has_template};

#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Origin {
    Builtin,
    Driver,
    StepDefault,
    Global,
    CommandLine,
    StepArgument,
}

#[derive(Debug, Clone)]
pub struct Binding {
    pub value: Text,
    pub origin: Origin,
    /// Hashed by name, not value, so a build's IDs do not depend on where it lives.
    pub volatile: bool,
}

/// Each name keeps every binding it was given, lowest precedence first: a value may refer to
/// the one it overrides (`user_name: "{{user_name}}-admin"` in a step call).
#[derive(Debug, Clone, Default)]
pub struct Scope {
    vars: IndexMap<String, Vec<Binding>>,
}

/// Which value a render produces: the real one, to run, or the one checkpoint IDs hash, where
/// volatile variables stand as their name.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Mode {
    Run,
    Hash,
}

impl Scope {
    pub fn set(&mut self, name: &str, value: Text, origin: Origin) {
        let stack = self.vars.entry(name.to_string()).or_default();
        let volatile = stack.last().is_some_and(|b| b.volatile);
        stack.push(Binding {
            value,
            origin,
            volatile,
        });
    }

    pub fn mark_volatile(&mut self, name: &str) {
        if let Some(stack) = self.vars.get_mut(name) {
            for b in stack {
                b.volatile = true;
            }
        }
    }

    pub fn get(&self, name: &str) -> Option<&Binding> {
        self.vars.get(name).and_then(|s| s.last())
    }

    fn level(&self, name: &str, level: usize) -> Option<&Binding> {
        self.vars.get(name).and_then(|s| s.get(level))
    }

    fn top(&self, name: &str) -> Option<usize> {
        self.vars.get(name).and_then(|s| s.len().checked_sub(1))
    }

    /// Every name with its winning binding.
    pub fn iter(&self) -> impl Iterator<Item = (&String, &Binding)> {
        self.vars
            .iter()
            .filter_map(|(k, s)| s.last().map(|b| (k, b)))
    }

    /// Every binding of every name, lowest precedence first, to copy a scope into another.
    pub fn iter_all(&self) -> impl Iterator<Item = (&String, &Binding)> {
        self.vars
            .iter()
            .flat_map(|(k, s)| s.iter().map(move |b| (k, b)))
    }
}

/// Renders templates against one scope, remembering resolved values and which variables each
/// render used (for `plan --explain`).
pub struct Resolver<'a> {
    scope: &'a Scope,
    renderer: &'a Renderer,
    cache: RefCell<HashMap<(String, usize, Mode), String>>,
    used: RefCell<BTreeMap<String, String>>,
}

impl<'a> Resolver<'a> {
    pub fn new(scope: &'a Scope, renderer: &'a Renderer) -> Resolver<'a> {
        Resolver {
            scope,
            renderer,
            cache: RefCell::default(),
            used: RefCell::default(),
        }
    }

    pub fn render(&self, text: &Text, mode: Mode) -> Result<String> {
        self.render_inner(text, None, mode, &mut Vec::new())
    }

    /// The variables used since the last call, with their hashed values.
    pub fn take_used(&self) -> BTreeMap<String, String> {
        std::mem::take(&mut self.used.borrow_mut())
    }

    pub fn value(&self, name: &str, mode: Mode) -> Result<Option<String>> {
        let Some(level) = self.scope.top(name) else {
            return Ok(None);
        };
        self.resolve(name, level, mode, &mut Vec::new()).map(Some)
    }

    /// Renders `text`, the value of `owner` (name and level) when it is a variable's value.
    fn render_inner(
        &self,
        text: &Text,
        owner: Option<(&str, usize)>,
        mode: Mode,
        stack: &mut Vec<(String, usize)>,
    ) -> Result<String> {
        if !has_template(&text.text) {
            return Ok(text.text.clone());
        }
        let mut data = serde_json::Map::new();
        loop {
            let json = serde_json::Value::Object(data);
            match self.renderer.render(&text.text, &json) {
                Ok(out) => return Ok(out),
                Err(RenderFailure::Missing(name)) => {
                    let serde_json::Value::Object(d) = json else {
                        unreachable!("built as an object above")
                    };
                    data = d;
                    // A variable's value that names the variable itself means the binding it
                    // overrides; there is none below the lowest.
                    let level = match owner {
                        Some((o, l)) if o == name => l.checked_sub(1),
                        _ => self.scope.top(&name),
                    };
                    let Some(level) = level.filter(|_| !data.contains_key(&name)) else {
                        let self_ref = owner.is_some_and(|(o, _)| o == name);
                        return Err(self.unknown(text, &name, self_ref).into());
                    };
                    let value = self.resolve(&name, level, mode, stack)?;
                    data.insert(name, serde_json::Value::String(value));
                }
                Err(RenderFailure::Syntax(reason)) => {
                    return Err(
                        Diagnostic::at(&text.span, format!("bad template: {reason}"))
                            .hint(r"write \{{ for a literal {{")
                            .into(),
                    );
                }
            }
        }
    }

    fn resolve(
        &self,
        name: &str,
        level: usize,
        mode: Mode,
        stack: &mut Vec<(String, usize)>,
    ) -> Result<String> {
        let key = (name.to_string(), level, mode);
        if let Some(v) = self.cache.borrow().get(&key) {
            self.note_used(name, mode, v);
            return Ok(v.clone());
        }
        let binding = self
            .scope
            .level(name, level)
            .ok_or_else(|| Diagnostic::new(format!("unknown variable `{name}`")))?;
        if stack.iter().any(|(s, l)| s == name && *l == level) {
            let chain: Vec<&str> = stack
                .iter()
                .map(|(s, _)| s.as_str())
                .chain(std::iter::once(name))
                .collect();
            return Err(Diagnostic::at(
                &binding.value.span,
                format!("variable `{name}` refers to itself"),
            )
            .note(chain.join(" -> "))
            .into());
        }
        let value = if mode == Mode::Hash && binding.volatile {
            format!("{{{{{name}}}}}")
        } else {
            stack.push((name.to_string(), level));
            let v = self.render_inner(&binding.value, Some((name, level)), mode, stack);
            stack.pop();
            v?
        };
        self.cache.borrow_mut().insert(key, value.clone());
        self.note_used(name, mode, &value);
        Ok(value)
    }

    fn note_used(&self, name: &str, mode: Mode, value: &str) {
        if mode == Mode::Hash {
            self.used
                .borrow_mut()
                .insert(name.to_string(), value.to_string());
        }
    }

    fn unknown(&self, text: &Text, name: &str, self_ref: bool) -> Diagnostic {
        let needle = format!("{{{{{name}}}}}");
        let mut span = text.span.locate(&needle);
        if span.len != needle.chars().count() {
            span = text.span.locate(name);
        }
        if self_ref {
            return Diagnostic::at(
                &span,
                format!("the value of `{name}` uses `{name}`, but no lower level sets it"),
            )
            .hint(format!(
                "in its own value, `{{{{{name}}}}}` means the value being overridden (a step default under a global, a global under `-g` or a step argument); set one, or write the value out in full"
            ));
        }
        let d = Diagnostic::at(&span, format!("unknown variable `{name}`"));
        let others = self
            .scope
            .iter()
            .map(|(k, _)| k.as_str())
            .filter(|k| *k != name);
        match closest(name, others) {
            Some(best) => d.hint(format!("did you mean `{best}`?")),
            None => d.hint(format!(
                "define it under `global:`, as a step default, or pass `-g {name}=VALUE`"
            )),
        }
    }
}
