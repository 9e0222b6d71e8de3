//! Rendering templates against a scope: each variable resolved once per resolver, with the
//! variables it used, so that `plan --explain` can say which values a checkpoint ID hashed.
//!
//! A resolver may sit on the resolver of its scope's parent (a step's on the globals'): a
//! variable whose value, and every variable that value used, the child scope does not bind is
//! resolved once, in the parent, for every step of the recipe.

use std::cell::RefCell;
use std::collections::{BTreeMap, HashMap};
use std::rc::Rc;
use std::sync::Arc;

use indexmap::IndexMap;

use crate::diag::error::{Diagnostic, Error, Result};
use crate::diag::suggest::closest;
use crate::recipe::Text;
use crate::vars::scope::Scope;
use crate::vars::template::{self, RenderFailure, has_template};

/// Which value a render produces: the real one, to run, or the one checkpoint IDs hash, where
/// volatile variables stand as their name.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Mode {
    Run,
    Hash,
}

/// A variable's value, and every variable it used (itself last) with the value each had.
#[derive(Debug)]
struct Entry {
    value: Arc<str>,
    deps: Deps,
}

/// Names in the order they were resolved; a name seen again moves to the end with its newer
/// value, so that replaying them gives what resolving gave. Keyed by name, it stays as small as
/// the scope however often values repeat each other.
/// Shared strings: the same names and values stand in the manifest of every microstep.
type Deps = IndexMap<Arc<str>, Arc<str>>;

fn add_deps(into: &mut Deps, from: &Deps) {
    for (name, value) in from {
        into.shift_remove(name);
        into.insert(Arc::clone(name), Arc::clone(value));
    }
}

type Key = (String, usize, Mode);

pub struct Resolver<'a> {
    scope: &'a Scope,
    parent: Option<&'a Resolver<'a>>,
    cache: RefCell<HashMap<Key, Rc<Entry>>>,
    /// What the parent could not resolve alone (a global naming a step's variable).
    unshared: RefCell<std::collections::HashSet<Key>>,
    used: RefCell<BTreeMap<Arc<str>, Arc<str>>>,
}

impl<'a> Resolver<'a> {
    pub fn new(scope: &'a Scope) -> Resolver<'a> {
        Resolver {
            scope,
            parent: None,
            cache: RefCell::default(),
            unshared: RefCell::default(),
            used: RefCell::default(),
        }
    }

    /// A resolver for `scope` that takes from `parent`, the resolver of `scope`'s parent, every
    /// value `scope` cannot change.
    pub fn with_parent(scope: &'a Scope, parent: &'a Resolver<'a>) -> Resolver<'a> {
        Resolver {
            parent: Some(parent),
            ..Resolver::new(scope)
        }
    }

    pub fn render(&self, text: &Text, mode: Mode) -> Result<String> {
        let mut deps = Deps::new();
        let out = self.render_inner(text, None, mode, &mut Vec::new(), &mut deps)?;
        self.note_used(mode, &deps);
        Ok(out)
    }

    /// The variables used since the last call, with their hashed values.
    pub fn take_used(&self) -> BTreeMap<Arc<str>, Arc<str>> {
        std::mem::take(&mut self.used.borrow_mut())
    }

    pub fn value(&self, name: &str, mode: Mode) -> Result<Option<String>> {
        let Some(level) = self.top(name) else {
            return Ok(None);
        };
        let entry = self.resolve(name, level, mode, &mut Vec::new())?;
        self.note_used(mode, &entry.deps);
        Ok(Some(entry.value.to_string()))
    }

    fn top(&self, name: &str) -> Option<usize> {
        self.scope.stack(name).len().checked_sub(1)
    }

    fn note_used(&self, mode: Mode, deps: &Deps) {
        if mode == Mode::Hash {
            let mut used = self.used.borrow_mut();
            for (name, value) in deps {
                used.insert(Arc::clone(name), Arc::clone(value));
            }
        }
    }

    /// Renders `text`, the value of `owner` (name and level) when it is a variable's value.
    fn render_inner(
        &self,
        text: &Text,
        owner: Option<(&str, usize)>,
        mode: Mode,
        stack: &mut Vec<(String, usize)>,
        deps: &mut Deps,
    ) -> Result<String> {
        if !has_template(&text.text) {
            return Ok(text.text.clone());
        }
        if let Some(pieces) = template::simple(&text.text) {
            return template::fill(&pieces, |name| {
                self.lookup(text, name, owner, mode, stack, deps)
            })
            .map_err(|e: Failure| e.at(text));
        }
        let mut data = serde_json::Map::new();
        loop {
            let json = serde_json::Value::Object(data);
            match template::render(&text.text, &json) {
                Ok(out) => return Ok(out),
                Err(RenderFailure::Missing(name)) => {
                    let serde_json::Value::Object(d) = json else {
                        unreachable!("built as an object above")
                    };
                    data = d;
                    if data.contains_key(&name) {
                        let self_ref = owner.is_some_and(|(o, _)| o == name);
                        return Err(self.unknown(text, &name, self_ref).into());
                    }
                    let value = self
                        .lookup(text, &name, owner, mode, stack, deps)
                        .map_err(|e| e.at(text))?;
                    data.insert(name, serde_json::Value::String(value.to_string()));
                }
                Err(e) => return Err(Failure::Render(e).at(text)),
            }
        }
    }

    /// The value `name` has where `text` (the value of `owner`, if any) uses it.
    fn lookup(
        &self,
        text: &Text,
        name: &str,
        owner: Option<(&str, usize)>,
        mode: Mode,
        stack: &mut Vec<(String, usize)>,
        deps: &mut Deps,
    ) -> std::result::Result<Arc<str>, Failure> {
        // A variable's value that names the variable itself means the binding it overrides;
        // there is none below the lowest.
        let level = match owner {
            Some((o, l)) if o == name => l.checked_sub(1),
            _ => self.top(name),
        };
        let Some(level) = level else {
            let self_ref = owner.is_some_and(|(o, _)| o == name);
            return Err(Failure::Error(self.unknown(text, name, self_ref).into()));
        };
        let entry = self
            .resolve(name, level, mode, stack)
            .map_err(Failure::Error)?;
        add_deps(deps, &entry.deps);
        Ok(Arc::clone(&entry.value))
    }

    fn resolve(
        &self,
        name: &str,
        level: usize,
        mode: Mode,
        stack: &mut Vec<(String, usize)>,
    ) -> Result<Rc<Entry>> {
        let key = (name.to_string(), level, mode);
        if let Some(entry) = self.cache.borrow().get(&key) {
            return Ok(entry.clone());
        }
        if let Some(entry) = self.parents_value(&key) {
            self.cache.borrow_mut().insert(key, entry.clone());
            return Ok(entry);
        }
        let bindings = self.scope.stack(name);
        let binding = bindings
            .get(level)
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
        let mut deps = Deps::new();
        let value: Arc<str> = if mode == Mode::Hash && self.scope.is_volatile(name) {
            format!("{{{{{name}}}}}").into()
        } else {
            stack.push((name.to_string(), level));
            let v = self.render_inner(&binding.value, Some((name, level)), mode, stack, &mut deps);
            stack.pop();
            v?.into()
        };
        add_deps(
            &mut deps,
            &Deps::from([(Arc::from(name), Arc::clone(&value))]),
        );
        let entry = Rc::new(Entry { value, deps });
        self.cache.borrow_mut().insert(key, entry.clone());
        Ok(entry)
    }

    /// The parent's value of a variable, when neither it nor anything it used is bound by
    /// this resolver's scope (whose bindings would change it).
    fn parents_value(&self, key: &Key) -> Option<Rc<Entry>> {
        let parent = self.parent?;
        if self.scope.binds_here(&key.0) {
            return None;
        }
        let entry = parent.shared(key)?;
        let unchanged = entry.deps.keys().all(|n| !self.scope.binds_here(n));
        unchanged.then_some(entry)
    }

    /// A value this resolver can give a child, remembering what it cannot.
    fn shared(&self, key: &Key) -> Option<Rc<Entry>> {
        if self.unshared.borrow().contains(key) {
            return None;
        }
        match self.resolve(&key.0, key.1, key.2, &mut Vec::new()) {
            Ok(entry) => Some(entry),
            Err(_) => {
                self.unshared.borrow_mut().insert(key.clone());
                None
            }
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
        let others = self.scope.iter().map(|(k, _)| k).filter(|k| *k != name);
        match closest(name, others) {
            Some(best) => d.hint(format!("did you mean `{best}`?")),
            None => d.hint(format!(
                "define it under `global:`, as a step default, or pass `-g {name}=VALUE`"
            )),
        }
    }
}

/// Why a substitution stopped: an error of cairn's own (an unknown variable, a cycle), or the
/// template engine's, which is placed at the text being rendered.
enum Failure {
    Error(Error),
    Render(RenderFailure),
}

impl From<RenderFailure> for Failure {
    fn from(f: RenderFailure) -> Failure {
        Failure::Render(f)
    }
}

impl Failure {
    fn at(self, text: &Text) -> Error {
        match self {
            Failure::Error(e) => e,
            Failure::Render(RenderFailure::Missing(name)) => {
                Diagnostic::at(&text.span, format!("unknown variable `{name}`")).into()
            }
            Failure::Render(RenderFailure::Syntax(reason)) => {
                Diagnostic::at(&text.span, format!("bad template: {reason}"))
                    .hint(r"write \{{ for a literal {{")
                    .into()
            }
        }
    }
}
