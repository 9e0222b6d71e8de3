//! From a recipe path to a `Recipe`: read the file and its parents, splice `@base`, find step
//! files, expand aliases and gather hooks. Nothing here resolves a variable or runs a command.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use indexmap::IndexMap;

use super::alias::Aliases;
use super::dialect::{Dialect, translate};
use super::model::*;
use super::paths::absolute;
use crate::diag::error::{Diagnostic, Error, Result};
use crate::diag::source::{SourceFile, Span};
use crate::diag::suggest::{closest, unknown};
use crate::yaml::{Node, Value, read_yaml};

const RECIPE_KEYS: [&str; 8] = [
    "env",
    "extend",
    "checkpoint",
    "global",
    "aliases",
    "bootstrap",
    "setup",
    "export",
];

const MICROSTEP_KEYS: [&str; 6] = [
    "on_checkpoint",
    "inputs",
    "rollback",
    "atomic",
    "state_files",
    "verify",
];

pub(crate) const COMMAND_KEYS: [&str; 9] = [
    "exec_local",
    "exec_out",
    "exec_in",
    "pipe",
    "rescue",
    "test",
    "group",
    "breakpoint",
    "reload_context",
];

/// One file of the extend chain, root-most first once the chain is loaded.
struct RawRecipe {
    path: PathBuf,
    root: Node,
}

impl RawRecipe {
    fn dir(&self) -> &Path {
        self.path.parent().unwrap_or(Path::new("."))
    }
}

/// What the command line adds to loading: `-g` values, which `extend` and `include_steps`
/// paths may use.
#[derive(Debug, Clone, Copy, Default)]
pub struct LoadOptions<'a> {
    pub cli_globals: &'a [(String, String)],
    /// `--dialect`: every file of the tree in this dialect. None: Kameleon's when any recipe
    /// of the extend chain shows its markers, else cairn's.
    pub dialect: Option<Dialect>,
}

pub fn load(path: &Path) -> Result<Recipe> {
    load_with(path, &LoadOptions::default())
}

pub fn load_with(path: &Path, opts: &LoadOptions<'_>) -> Result<Recipe> {
    let mut chain = load_chain(path, opts)?;
    // A Kameleon recipe often has no `$${` of its own (`extend: debian-base` and a few plain
    // globals): the tree is Kameleon's when any recipe of its chain is.
    let dialect = opts.dialect.unwrap_or(
        if chain
            .iter()
            .any(|r| r.root.span.file.dialect == Dialect::Kameleon)
        {
            Dialect::Kameleon
        } else {
            Dialect::Native
        },
    );
    // How the tree's other files are read: a Kameleon tree (or `--dialect`) decides for all of
    // them; a tree whose recipes show no Kameleon marker lets a file with markers of its own
    // (a Kameleon alias or step library used from a plain recipe) be read as Kameleon's.
    let files = opts
        .dialect
        .or((dialect == Dialect::Kameleon).then_some(Dialect::Kameleon));
    for raw in &mut chain {
        let file = &raw.root.span.file;
        if file.dialect != dialect {
            let again = SourceFile::new(&file.path, file.text.clone(), dialect);
            raw.root = crate::yaml::parse(&again)?;
        }
    }
    let child = chain
        .last()
        .ok_or_else(|| Error::Other("empty recipe chain".into()))?;
    let name = recipe_name(&child.path);
    let description = description_of(&child.root.span.file);
    let step_dirs = step_dirs(&chain);

    let mut globals: IndexMap<String, Global> = IndexMap::new();
    let mut checkpoint = None;
    let mut aliases = Aliases::default();
    let mut env_files = Vec::new();
    for raw in &chain {
        if let Some(node) = raw.root.get("global") {
            for (k, v) in node.map("`global`")? {
                let key = k.str("a global's name")?.to_string();
                if key == "include" {
                    for (name, value) in include_globals(v, raw.dir(), &step_dirs, files)? {
                        set_global(&mut globals, name, value);
                    }
                    continue;
                }
                let value = global_value(&key, v)?;
                let global = Global {
                    name: key.clone(),
                    value,
                    span: k.span.clone(),
                    shadowed: Vec::new(),
                };
                set_global(&mut globals, key, global);
            }
        }
        if let Some(node) = raw.root.get("checkpoint") {
            checkpoint = Some(Text::new(node.str("`checkpoint`")?, node.span.clone()));
        }
        if let Some(node) = raw.root.get("aliases") {
            aliases.add_from(node, raw.dir(), &step_dirs, files)?;
        }
        if let Some(node) = raw.root.get("env") {
            env_files = Vec::new();
            for f in text_list(node, "`env`")? {
                env_files.push(find_in(&step_dirs, "env", &f)?);
            }
        }
    }
    let include_steps = match globals.get("include_steps") {
        None => Vec::new(),
        Some(g) => {
            let items: Vec<&Text> = match &g.value {
                GlobalValue::Text(t) => vec![t],
                GlobalValue::List(l) => l.iter().collect(),
                GlobalValue::Map(_) => {
                    return Err(Diagnostic::at(
                        &g.span,
                        "`include_steps` must be a list of directories",
                    )
                    .into());
                }
            };
            let mut out = Vec::new();
            for t in items {
                out.push(render_now(t, &globals, child, opts)?);
            }
            out
        }
    };

    let mut loader = StepLoader {
        step_dirs: step_dirs.clone(),
        include_steps,
        aliases,
        globals: globals.clone(),
        cli_globals: opts.cli_globals.to_vec(),
        dialect,
        files,
        recipe_name: name.clone(),
        recipe_dir: absolute(child.dir()).display().to_string(),
        current: StepVars::default(),
        step_files: Vec::new(),
        sections: SECTIONS
            .iter()
            .map(|s| Section {
                name: s.to_string(),
                init: Vec::new(),
                steps: Vec::new(),
                clean: Vec::new(),
            })
            .collect(),
    };
    for g in globals.values_mut() {
        if let GlobalValue::Text(t) = &mut g.value {
            loader.data(t)?;
        }
    }
    loader.globals = globals.clone();
    for (index, section) in SECTIONS.iter().enumerate() {
        for item in section_items(&chain, section)? {
            let step = loader.step(section, item)?;
            loader.sections[index].steps.push(step);
        }
    }
    Ok(Recipe {
        path: child.path.clone(),
        name,
        description,
        dialect,
        parents: chain.iter().rev().skip(1).map(|r| r.path.clone()).collect(),
        step_files: loader.step_files,
        step_dirs,
        env_files,
        globals,
        checkpoint,
        sections: loader.sections,
        aliases: loader.aliases,
    })
}

/// Sets a global, keeping the text value it overrides so the new one can build on it.
fn set_global(globals: &mut IndexMap<String, Global>, name: String, mut global: Global) {
    if let Some(old) = globals.shift_remove(&name) {
        global.shadowed = old.shadowed;
        if let GlobalValue::Text(t) = old.value {
            global.shadowed.push(t);
        }
    }
    globals.insert(name, global);
}

/// Where steps, aliases, data, env files and Kameleon drivers are looked for: `steps/` (and
/// Kameleon's `.steps/`) next to the recipe, then next to each parent, nearest first; for a
/// recipe below the working directory, also in the directories between, as Kameleon does.
fn step_dirs(chain: &[RawRecipe]) -> Vec<PathBuf> {
    let cwd = std::env::current_dir().ok();
    let mut dirs: Vec<PathBuf> = Vec::new();
    let mut push = |d: PathBuf, always: bool| {
        if (always || d.is_dir()) && !dirs.contains(&d) {
            dirs.push(d);
        }
    };
    for raw in chain.iter().rev() {
        let dir = raw.dir().to_path_buf();
        push(dir.join("steps"), true);
        push(dir.join(".steps"), false);
        let abs = absolute(&dir);
        if let Some(cwd) = &cwd
            && abs.starts_with(cwd)
        {
            for anc in abs.ancestors().skip(1) {
                if !anc.starts_with(cwd) {
                    break;
                }
                push(anc.join("steps"), false);
                push(anc.join(".steps"), false);
            }
        }
    }
    dirs
}

/// A file in `<steps dir>/<kind>/`, the first found.
fn find_in(step_dirs: &[PathBuf], kind: &str, name: &Text) -> Result<PathBuf> {
    let candidates: Vec<PathBuf> = step_dirs
        .iter()
        .map(|d| d.join(kind).join(&name.text))
        .collect();
    candidates
        .iter()
        .find(|p| p.is_file())
        .cloned()
        .ok_or_else(|| {
            let searched: Vec<String> =
                candidates.iter().map(|p| p.display().to_string()).collect();
            Diagnostic::at(&name.span, format!("{kind} file `{}` not found", name.text))
                .note(format!("searched:\n{}", searched.join("\n")))
                .into()
        })
}

/// `global.include`: files of globals merged where the key stands. A leading `-` makes one
/// optional. Looked up next to the recipe, then in `<steps dir>/global/`.
fn include_globals(
    node: &Node,
    recipe_dir: &Path,
    step_dirs: &[PathBuf],
    dialect: Option<Dialect>,
) -> Result<Vec<(String, Global)>> {
    let mut out = Vec::new();
    for item in text_list(node, "`include`")? {
        let optional = item.text.starts_with('-');
        let mut file = item.text.trim_start_matches('-').to_string();
        if !file.ends_with(".yaml") {
            file.push_str(".yaml");
        }
        let candidates: Vec<PathBuf> = if Path::new(&file).is_absolute() {
            vec![PathBuf::from(&file)]
        } else {
            std::iter::once(recipe_dir.join(&file))
                .chain(step_dirs.iter().map(|d| d.join("global").join(&file)))
                .collect()
        };
        let Some(path) = candidates.iter().find(|p| p.is_file()) else {
            if optional {
                continue;
            }
            let searched: Vec<String> =
                candidates.iter().map(|p| p.display().to_string()).collect();
            return Err(
                Diagnostic::at(&item.span, format!("included globals `{file}` not found"))
                    .note(format!("searched:\n{}", searched.join("\n")))
                    .hint("a leading `-` makes an include optional")
                    .into(),
            );
        };
        let root = read_yaml(path, "cannot read included globals", dialect)?;
        for (k, v) in root.map("an included globals file")? {
            let key = k.str("a global's name")?.to_string();
            let value = global_value(&key, v)?;
            out.push((
                key.clone(),
                Global {
                    name: key,
                    value,
                    span: k.span.clone(),
                    shadowed: Vec::new(),
                },
            ));
        }
    }
    Ok(out)
}

/// Resolves a value while loading (an `extend` or `include_steps` path), from the globals
/// known so far and the command line.
fn render_now(
    text: &Text,
    globals: &IndexMap<String, Global>,
    recipe: &RawRecipe,
    opts: &LoadOptions<'_>,
) -> Result<String> {
    let name = recipe_name(&recipe.path);
    let dir = absolute(recipe.dir()).display().to_string();
    let dialect = recipe.root.span.file.dialect;
    render_load_time(text, &name, &dir, globals, opts.cli_globals, dialect, None)
}

/// Renders `text` with what is known while loading: the recipe's name and directory, the
/// globals (each with the values it shadows), `-g`, and a step's variables when given, in
/// cairn's precedence (built-ins, step defaults, globals, command line, step arguments).
fn render_load_time(
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
                super::dialect::cli_value(v, dialect),
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

pub fn recipe_name(path: &Path) -> String {
    path.file_stem()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_else(|| "recipe".into())
}

fn description_of(file: &Arc<SourceFile>) -> Option<String> {
    file.text
        .lines()
        .take_while(|l| l.starts_with('#'))
        .find_map(|l| {
            let rest = l.trim_start_matches('#').trim();
            rest.strip_prefix("DESCRIPTION:")
                .map(|d| d.trim().to_string())
        })
}

fn load_chain(path: &Path, opts: &LoadOptions<'_>) -> Result<Vec<RawRecipe>> {
    let mut chain: Vec<RawRecipe> = Vec::new();
    let mut next = Some((path.to_path_buf(), None::<Span>));
    while let Some((path, from)) = next.take() {
        if !path.is_file() {
            let d = match &from {
                Some(span) => {
                    Diagnostic::at(span, format!("parent recipe {} not found", path.display()))
                }
                None => Diagnostic::new(format!("recipe {} not found", path.display())),
            };
            return Err(d
                .hint("the path is relative to the recipe that names it")
                .into());
        }
        let canonical = path
            .canonicalize()
            .map_err(|e| Error::io("cannot read", &path, e))?;
        if let Some(first) = chain
            .iter()
            .position(|r| r.path.canonicalize().ok().as_deref() == Some(canonical.as_path()))
        {
            let cycle: Vec<String> = chain[first..]
                .iter()
                .map(|r| r.path.display().to_string())
                .chain(std::iter::once(path.display().to_string()))
                .collect();
            let span = from.unwrap_or_else(|| Span::synthetic("extend"));
            return Err(Diagnostic::at(&span, "`extend` makes a cycle")
                .note(cycle.join(" -> "))
                .hint("a recipe cannot extend itself, directly or through its parents")
                .into());
        }
        let root = read_yaml(&path, "cannot read recipe", opts.dialect)?;
        root.map("a recipe")?;
        check_keys(&root, &RECIPE_KEYS, "recipe")?;
        let raw = RawRecipe { path, root };
        // Kameleon writes `extend: ""` for "no parent".
        if let Some(ext) = raw
            .root
            .get("extend")
            .filter(|e| !e.is_null() && e.as_str() != Some(""))
        {
            ext.str("`extend`")?;
            // The parent's path may use the globals of this recipe and of the recipes that
            // extend it, a child's value winning (a child choosing `backend: docker` picks its
            // grandparent's `extend: ../backend/$${backend}`, as Kameleon picks it), and `-g`.
            let mut known: IndexMap<String, Global> = IndexMap::new();
            for r in std::iter::once(&raw).chain(chain.iter().rev()) {
                if let Some(g) = r.root.get("global") {
                    for (k, v) in g.map("`global`")? {
                        if let (Some(key), Ok(value)) =
                            (k.as_str(), global_value(k.as_str().unwrap_or(""), v))
                        {
                            known.insert(
                                key.to_string(),
                                Global {
                                    name: key.to_string(),
                                    value,
                                    span: k.span.clone(),
                                    shadowed: Vec::new(),
                                },
                            );
                        }
                    }
                }
            }
            let name = render_now(&scalar_text(ext, "`extend`")?, &known, &raw, opts)?;
            let mut parent = raw.path.parent().unwrap_or(Path::new(".")).join(name);
            if parent.extension().is_none() {
                parent.set_extension("yaml");
            }
            next = Some((parent, Some(ext.span.clone())));
        }
        chain.push(raw);
    }
    chain.reverse();
    Ok(chain)
}

fn check_keys(node: &Node, allowed: &[&str], what: &str) -> Result<()> {
    for (k, _) in node.map(what)? {
        let key = k.str("a key")?;
        if !allowed.contains(&key) {
            return Err(unknown(&k.span, &format!("{what} key"), key, allowed).into());
        }
    }
    Ok(())
}

fn global_value(key: &str, v: &Node) -> Result<GlobalValue> {
    Ok(match &v.value {
        Value::Map(entries) => {
            let mut map = IndexMap::new();
            for (k, val) in entries {
                let name = k.str("a key")?.to_string();
                map.insert(
                    name,
                    scalar_text(val, &format!("`{key}.{}`", k.as_str().unwrap_or("")))?,
                );
            }
            GlobalValue::Map(map)
        }
        Value::Seq(items)
            if !items.is_empty() && items.iter().all(|i| matches!(i.value, Value::Map(_))) =>
        {
            // Kameleon also accepts a context as a list of one-key mappings.
            let mut map = IndexMap::new();
            for item in items {
                for (k, val) in item.map("a mapping")? {
                    let name = k.str("a key")?.to_string();
                    map.insert(
                        name,
                        scalar_text(val, &format!("`{key}.{}`", k.as_str().unwrap_or("")))?,
                    );
                }
            }
            GlobalValue::Map(map)
        }
        Value::Seq(items) => GlobalValue::List(
            items
                .iter()
                .map(|i| scalar_text(i, &format!("an item of `{key}`")))
                .collect::<Result<_>>()?,
        ),
        Value::Scalar(_) => GlobalValue::Text(scalar_text(v, &format!("`{key}`"))?),
    })
}

/// A scalar as text; null reads as the empty string, as Kameleon reads it.
pub fn scalar_text(node: &Node, what: &str) -> Result<Text> {
    match &node.value {
        Value::Scalar(_) if node.is_null() => Ok(Text::new(String::new(), node.span.clone())),
        Value::Scalar(s) if node.span.file.dialect == Dialect::Kameleon => {
            Ok(Text::new(translate(&s.text), node.span.clone()))
        }
        Value::Scalar(s) => Ok(Text::new(s.text.clone(), node.span.clone())),
        _ => Err(node.wrong_kind(what, "a string").into()),
    }
}

/// A command's text; in Kameleon's dialect, as Kameleon runs it (see `kameleon_chomp`).
fn command_text(node: &Node, what: &str) -> Result<Text> {
    let mut text = scalar_text(node, what)?;
    if node.span.file.dialect == Dialect::Kameleon {
        let chomped = super::dialect::kameleon_chomp(&text.text).len();
        text.text.truncate(chomped);
    }
    Ok(text)
}

/// A section's items after `@base` splicing down the chain. A child that leaves a section out
/// keeps its parent's.
fn section_items<'a>(chain: &'a [RawRecipe], section: &str) -> Result<Vec<&'a Node>> {
    let mut items: Vec<&Node> = Vec::new();
    for raw in chain {
        let Some(node) = raw.root.get(section) else {
            continue;
        };
        let mut next = Vec::new();
        for item in node.seq(&format!("section `{section}`"))? {
            if item.as_str() == Some("@base") {
                next.extend(items.iter().copied());
            } else {
                next.push(item);
            }
        }
        items = next;
    }
    Ok(items)
}

/// A microstep and the hooks it declares: `(hook key, where, commands)`.
type PendingHooks = (Microstep, Vec<(String, Span, Vec<Command>)>);

struct StepLoader {
    step_dirs: Vec<PathBuf>,
    /// `global.include_steps`: subdirectories of each steps dir searched before the dir itself.
    include_steps: Vec<String>,
    aliases: Aliases,
    /// What a `$${kameleon_data_dir}/...` path may use: the globals, `-g`, the recipe's name
    /// and directory, and the variables of the step being read (`current`).
    globals: IndexMap<String, Global>,
    cli_globals: Vec<(String, String)>,
    /// The tree's dialect, which `-g` values are read in.
    dialect: Dialect,
    /// What step files are read in (None: each by its own markers).
    files: Option<Dialect>,
    recipe_name: String,
    recipe_dir: String,
    current: StepVars,
    step_files: Vec<PathBuf>,
    sections: Vec<Section>,
}

impl StepLoader {
    fn step(&mut self, section: &str, item: &Node) -> Result<Step> {
        let (name_node, args) = match item.single_entry() {
            Some((k, v)) => (k, Some(v)),
            None if item.as_str().is_some() => (item, None),
            None => {
                return Err(Diagnostic::at(
                    &item.span,
                    format!("a step in section `{section}` must be a name or `name: [...]`, but this is {}", item.kind()),
                )
                .into());
            }
        };
        let name = name_node.str("a step name")?.to_string();
        let args_items = match args {
            Some(a) => a.seq(&format!("the arguments of step `{name}`"))?,
            None => &[],
        };
        let inline = args_items.iter().any(|a| {
            a.single_entry()
                .is_some_and(|(_, v)| matches!(v.value, Value::Seq(_)))
        });

        let mut step = Step {
            name: name.clone(),
            span: name_node.span.clone(),
            file: None,
            vars: StepVars::default(),
            init: Vec::new(),
            microsteps: Vec::new(),
            clean: Vec::new(),
        };
        self.current = StepVars::default();
        if inline {
            let pending = self.step_body(&mut step, args_items)?;
            self.register_hooks(section, &mut step, pending)?;
            drop_empty(&mut step);
            return Ok(step);
        }

        let path = self.find_step_file(section, &name, &name_node.span)?;
        let root = read_yaml(&path, "cannot read step file", self.files)?;
        let body = root.seq(&format!("step file {}", path.display()))?;
        self.step_files.push(path.clone());
        step.file = Some(path);

        // The call's arguments first: the step's data paths may use them.
        let mut selection: Vec<&Node> = Vec::new();
        for arg in args_items {
            if let Some((k, v)) = arg.single_entry() {
                let key = k.str("a variable name")?.to_string();
                let mut value = scalar_text(v, &format!("argument `{key}`"))?;
                self.data(&mut value)?;
                step.vars.args.insert(key.clone(), Var { name: key, value });
            } else if arg.as_str().is_some() {
                selection.push(arg);
            } else {
                return Err(Diagnostic::at(
                    &arg.span,
                    "a step argument must be `variable: value` or a microstep name",
                )
                .into());
            }
        }
        self.current.args = step.vars.args.clone();
        let mut pending = self.step_body(&mut step, body)?;
        if !selection.is_empty() {
            let mut chosen = Vec::new();
            for sel in selection {
                let wanted = sel.as_str().unwrap_or_default();
                let Some(ms) = step.microsteps.iter().find(|m| m.name == wanted) else {
                    let known: Vec<&str> =
                        step.microsteps.iter().map(|m| m.name.as_str()).collect();
                    let d = Diagnostic::at(
                        &sel.span,
                        format!("step `{name}` has no microstep `{wanted}`"),
                    )
                    .note(format!("step `{name}` has: {}", known.join(", ")));
                    let d = match closest(wanted, known.iter().copied()) {
                        Some(best) => d.hint(format!("did you mean `{best}`?")),
                        None => d.hint("a step call lists microsteps to run, by name; leave the list out to run them all"),
                    };
                    return Err(d.into());
                };
                chosen.push(ms.clone());
            }
            // Only the selected microsteps' hooks, in the order the microsteps run.
            pending = chosen
                .iter()
                .flat_map(|ms| pending.iter().filter(|(p, _)| p.name == ms.name).cloned())
                .collect();
            step.microsteps = chosen;
        }
        // Hooks are registered once the call's arguments are known, so they run with them.
        self.register_hooks(section, &mut step, pending)?;
        drop_empty(&mut step);
        Ok(step)
    }

    /// Kameleon's `$${kameleon_data_dir}/path`: the first `data/path` found in the steps
    /// directories. A path below the recipe's directory is written relative to `recipe_dir`,
    /// which checkpoint IDs hash by name, so IDs do not depend on where the recipes live.
    fn data(&self, text: &mut Text) -> Result<()> {
        const VAR: &str = "{{kameleon_data_dir}}";
        let mut out = String::new();
        let mut rest = text.text.as_str();
        while let Some(at) = rest.find(VAR) {
            out.push_str(&rest[..at]);
            let after = &rest[at + VAR.len()..];
            let end = after
                .find(|c: char| {
                    c.is_whitespace() || matches!(c, '"' | '\'' | ';' | ')' | '|' | '&' | '>' | '<')
                })
                .unwrap_or(after.len());
            // The path may use variables (`$${kameleon_data_dir}/preseed/$${distrib}.cfg`), as
            // Kameleon resolves them before looking the file up.
            let raw = Text::new(after[..end].to_string(), text.span.clone());
            let rendered = render_load_time(
                &raw,
                &self.recipe_name,
                &self.recipe_dir,
                &self.globals,
                &self.cli_globals,
                self.dialect,
                Some(&self.current),
            )?;
            let rel = rendered.trim_start_matches('/');
            let candidates: Vec<PathBuf> = self
                .step_dirs
                .iter()
                .map(|d| d.join("data").join(rel))
                .collect();
            let Some(found) = candidates.iter().find(|p| p.exists()) else {
                let searched: Vec<String> =
                    candidates.iter().map(|p| p.display().to_string()).collect();
                return Err(Diagnostic::at(
                    &text.span.locate("kameleon_data_dir"),
                    format!("data file `{rel}` not found"),
                )
                .note(format!("searched:\n{}", searched.join("\n")))
                .into());
            };
            let abs = absolute(found);
            let recipe_dir = self
                .step_dirs
                .first()
                .and_then(|d| d.parent())
                .map(absolute);
            match recipe_dir.as_ref().and_then(|r| abs.strip_prefix(r).ok()) {
                Some(inside) => out.push_str(&format!("{{{{recipe_dir}}}}/{}", inside.display())),
                None => out.push_str(&abs.display().to_string()),
            }
            rest = &after[end..];
        }
        if !out.is_empty() || text.text.contains(VAR) {
            out.push_str(rest);
            text.text = out;
        }
        Ok(())
    }

    fn find_step_file(&self, section: &str, name: &str, span: &Span) -> Result<PathBuf> {
        let mut searched = Vec::new();
        let prefixes: Vec<&str> = self
            .include_steps
            .iter()
            .map(String::as_str)
            .chain(std::iter::once(""))
            .collect();
        for dir in &self.step_dirs {
            for prefix in &prefixes {
                for candidate in [
                    dir.join(section).join(prefix).join(format!("{name}.yaml")),
                    dir.join(prefix).join(format!("{name}.yaml")),
                ] {
                    // Only "not there" moves on to the next place: a directory cairn may not
                    // read could hold the step, and a same-named file further on would then
                    // run in its place.
                    match std::fs::metadata(&candidate) {
                        Ok(m) if m.is_file() => return Ok(candidate),
                        Ok(_) => {}
                        Err(e)
                            if matches!(
                                e.kind(),
                                std::io::ErrorKind::NotFound | std::io::ErrorKind::NotADirectory
                            ) => {}
                        Err(e) => {
                            return Err(Diagnostic::at(
                                span,
                                format!("cannot look for step `{name}` at {}: {e}", candidate.display()),
                            )
                            .hint("make the directory readable (and searchable) by the user running cairn")
                            .into());
                        }
                    }
                    searched.push(candidate.display().to_string());
                }
            }
        }
        Err(Diagnostic::at(span, format!("step `{name}` not found"))
            .note(format!("searched:\n{}", searched.join("\n")))
            .hint(format!(
                "create steps/{section}/{name}.yaml next to the recipe, or write the step inline as `{name}: [ - microstep: [...] ]`"
            ))
            .into())
    }

    /// Reads a step's variables and microsteps into `step`; returns the hooks each microstep
    /// declares, for `register_hooks` once the step call is fully known.
    fn step_body(&mut self, step: &mut Step, items: &[Node]) -> Result<Vec<PendingHooks>> {
        let mut pending = Vec::new();
        // Variables first: a hook borrows the whole step's variables wherever it is declared.
        for item in items {
            let (k, v) = item.single_entry().ok_or_else(|| {
                Diagnostic::at(
                    &item.span,
                    "each item of a step must be `microstep: [commands]` or `variable: value`",
                )
            })?;
            let key = k.str("a name")?.to_string();
            if !matches!(v.value, Value::Seq(_)) {
                let mut value = scalar_text(v, &format!("step variable `{key}`"))?;
                self.data(&mut value)?;
                step.vars
                    .defaults
                    .insert(key.clone(), Var { name: key, value });
            }
        }
        self.current = step.vars.clone();
        for item in items {
            let Some((k, v)) = item.single_entry() else {
                continue;
            };
            if let Value::Seq(cmds) = &v.value {
                let name = k.str("a microstep name")?.to_string();
                let mut ms = Microstep::new(name, k.span.clone());
                let mut hooks = Vec::new();
                for cmd in cmds {
                    self.microstep_item(&mut ms, cmd, &mut hooks)?;
                }
                if !hooks.is_empty() {
                    pending.push((ms.clone(), hooks));
                }
                step.microsteps.push(ms);
            }
        }
        Ok(pending)
    }

    fn register_hooks(
        &mut self,
        section: &str,
        step: &mut Step,
        pending: Vec<PendingHooks>,
    ) -> Result<()> {
        for (ms, hooks) in pending {
            for (key, span, commands) in hooks {
                self.register_hook(section, step, &ms, &key, &span, commands)?;
            }
        }
        Ok(())
    }

    fn microstep_item(
        &mut self,
        ms: &mut Microstep,
        item: &Node,
        hooks: &mut Vec<(String, Span, Vec<Command>)>,
    ) -> Result<()> {
        if item.as_str().is_some() {
            // A bare alias name, or an error that `commands` words.
            ms.commands.extend(self.commands(item, 0)?);
            return Ok(());
        }
        let Some((k, v)) = item.single_entry() else {
            return Err(Diagnostic::at(
                &item.span,
                format!("a command must be a mapping with one key, like `exec_local: ...`, but this is {}", item.kind()),
            )
            .into());
        };
        let key = k.str("a command name")?;
        match key {
            "on_checkpoint" => {
                let s = v.str("`on_checkpoint`")?;
                ms.on_checkpoint = OnCheckpoint::parse(s).ok_or_else(|| {
                    unknown(&v.span, "on_checkpoint value", s, &OnCheckpoint::NAMES)
                })?;
            }
            "inputs" => ms.inputs = text_list(v, "`inputs`")?,
            "state_files" => ms.state_files = text_list(v, "`state_files`")?,
            "atomic" => ms.atomic = boolean(v, "`atomic`")?,
            "rollback" => {
                for c in v.seq("`rollback`")? {
                    ms.rollback.extend(self.commands(c, 0)?);
                }
            }
            "verify" => {
                for check in v.seq("`verify`")? {
                    check_keys(check, &["cmd", "expect", "context"], "verify entry")?;
                    let cmd = check
                        .get("cmd")
                        .ok_or_else(|| Diagnostic::at(&check.span, "a verify entry needs `cmd`"))?;
                    let expect = check.get("expect").ok_or_else(|| {
                        Diagnostic::at(&check.span, "a verify entry needs `expect`")
                    })?;
                    let ctx = match check.get("context") {
                        None => Ctx::Local,
                        Some(c) => {
                            let name = c.str("`context`")?;
                            Ctx::from_name(name).ok_or_else(|| {
                                unknown(&c.span, "context", name, &["local", "out", "in"])
                            })?
                        }
                    };
                    ms.verify.push(Verify {
                        ctx,
                        cmd: scalar_text(cmd, "`cmd`")?,
                        expect: scalar_text(expect, "`expect`")?,
                    });
                }
            }
            hook if is_hook(hook) => {
                let mut cmds = Vec::new();
                for c in v.seq(&format!("`{hook}`"))? {
                    cmds.extend(self.commands(c, 0)?);
                }
                hooks.push((hook.to_string(), k.span.clone(), cmds));
            }
            _ => self.microstep_command(ms, item, hooks, 0)?,
        }
        Ok(())
    }

    /// A command of a microstep. An alias is expanded here first, as Kameleon does before it
    /// looks for hooks, so an alias may stand for a hook (`check_cmd_local: [on_bootstrap_init:
    /// ...]`).
    fn microstep_command(
        &mut self,
        ms: &mut Microstep,
        item: &Node,
        hooks: &mut Vec<(String, Span, Vec<Command>)>,
        depth: usize,
    ) -> Result<()> {
        if let Some((k, v)) = item.single_entry()
            && let Some(key) = k.as_str()
            && let Some(expanded) = self.aliases.expand(key, k, v, depth)?
        {
            for c in &expanded {
                match c.single_entry() {
                    Some((hk, hv)) if hk.as_str().is_some_and(is_hook) => {
                        let hook = hk.as_str().unwrap_or_default().to_string();
                        let mut cmds = Vec::new();
                        for c in hv.seq(&format!("`{hook}`"))? {
                            cmds.extend(self.commands(c, depth + 1)?);
                        }
                        hooks.push((hook, hk.span.clone(), cmds));
                    }
                    _ => self.microstep_command(ms, c, hooks, depth + 1)?,
                }
            }
            return Ok(());
        }
        ms.commands.extend(self.commands(item, depth)?);
        Ok(())
    }

    /// One command item; an alias call expands to several.
    fn commands(&self, item: &Node, depth: usize) -> Result<Vec<Command>> {
        // Kameleon calls an alias that takes no argument by its bare name (`- mount_chroot`).
        if let Some(name) = item.as_str()
            && item.span.file.dialect == Dialect::Kameleon
        {
            let none = Node {
                value: crate::yaml::Value::Scalar(crate::yaml::Scalar {
                    text: String::new(),
                    plain: true,
                }),
                span: item.span.clone(),
            };
            if let Some(expanded) = self.aliases.expand(name, item, &none, depth)? {
                let mut out = Vec::new();
                for c in &expanded {
                    out.extend(self.commands(c, depth + 1)?);
                }
                return Ok(out);
            }
        }
        let Some((k, v)) = item.single_entry() else {
            return Err(Diagnostic::at(
                &item.span,
                format!("a command must be a mapping with one key, like `exec_local: ...`, but this is {}", item.kind()),
            )
            .into());
        };
        let key = k.str("a command name")?;
        if let Some(ctx) = Ctx::from_exec_key(key) {
            let mut cmd = command_text(v, &format!("`{key}`"))?;
            self.data(&mut cmd)?;
            return Ok(vec![Command::Exec { ctx, cmd }]);
        }
        let sub = |node: &Node| -> Result<Command> {
            let mut cmds = self.commands(node, depth)?;
            Ok(if cmds.len() == 1 {
                cmds.remove(0)
            } else {
                Command::Group(cmds)
            })
        };
        let command = match key {
            "pipe" => {
                let parts = v.seq("`pipe`")?;
                let exec = |n: &Node| -> Result<(Ctx, Text)> {
                    match n.single_entry() {
                        Some((k, v)) if k.as_str().and_then(Ctx::from_exec_key).is_some() => Ok((
                            k.as_str().and_then(Ctx::from_exec_key).unwrap_or(Ctx::Local),
                            {
                                let mut t = command_text(v, "a pipe command")?;
                                self.data(&mut t)?;
                                t
                            },
                        )),
                        _ => Err(Diagnostic::at(&n.span, "each side of a pipe must be an exec_local, exec_out or exec_in command").into()),
                    }
                };
                if parts.len() != 2 {
                    return Err(arity(v, "pipe", "two commands", parts.len()));
                }
                Command::Pipe {
                    from: exec(&parts[0])?,
                    to: exec(&parts[1])?,
                }
            }
            "rescue" => {
                let parts = v.seq("`rescue`")?;
                if parts.len() != 2 {
                    return Err(arity(
                        v,
                        "rescue",
                        "two commands (the command, then what runs if it fails)",
                        parts.len(),
                    ));
                }
                Command::Rescue {
                    body: Box::new(sub(&parts[0])?),
                    rescue: Box::new(sub(&parts[1])?),
                }
            }
            "test" => {
                let parts = v.seq("`test`")?;
                if !(2..=3).contains(&parts.len()) {
                    return Err(arity(
                        v,
                        "test",
                        "two or three commands (condition, then, else)",
                        parts.len(),
                    ));
                }
                Command::Test {
                    cond: Box::new(sub(&parts[0])?),
                    then: Box::new(sub(&parts[1])?),
                    otherwise: parts.get(2).map(&sub).transpose()?.map(Box::new),
                }
            }
            "group" => {
                let mut cmds = Vec::new();
                for c in v.seq("`group`")? {
                    cmds.extend(self.commands(c, depth)?);
                }
                Command::Group(cmds)
            }
            "breakpoint" => Command::Breakpoint {
                message: if v.is_null() {
                    None
                } else {
                    Some(command_text(v, "`breakpoint`")?)
                },
                span: k.span.clone(),
            },
            "reload_context" => {
                let name = v.str("`reload_context`")?;
                Command::ReloadContext {
                    ctx: Ctx::from_name(name).ok_or_else(|| {
                        unknown(&v.span, "context", name, &["local", "out", "in"])
                    })?,
                    span: k.span.clone(),
                }
            }
            // An alias standing for a hook, called inside another command (Kameleon's library
            // calls `check_cmd_local`, an `on_bootstrap_init` hook, inside `test`/`group`):
            // Kameleon warns "Unknown command" there and skips it; its commands run in place.
            other if is_hook(other) && depth > 0 => {
                let mut cmds = Vec::new();
                for c in v.seq(&format!("`{other}`"))? {
                    cmds.extend(self.commands(c, depth)?);
                }
                Command::Group(cmds)
            }
            other if is_hook(other) => {
                return Err(Diagnostic::at(&k.span, format!("hook `{other}` must be a command of a microstep, not nested in another command")).into());
            }
            other if MICROSTEP_KEYS.contains(&other) => {
                return Err(Diagnostic::at(
                    &k.span,
                    format!("`{other}` belongs to a microstep, not inside a command"),
                )
                .into());
            }
            other => {
                if let Some(expanded) = self.aliases.expand(other, k, v, depth)? {
                    let mut out = Vec::new();
                    for c in &expanded {
                        out.extend(self.commands(c, depth + 1)?);
                    }
                    return Ok(out);
                }
                let mut known: Vec<&str> = COMMAND_KEYS.to_vec();
                known.extend(MICROSTEP_KEYS);
                known.extend(self.aliases.names());
                return Err(unknown(&k.span, "command", other, &known).into());
            }
        };
        Ok(vec![command])
    }

    fn register_hook(
        &mut self,
        section: &str,
        step: &mut Step,
        ms: &Microstep,
        key: &str,
        span: &Span,
        commands: Vec<Command>,
    ) -> Result<()> {
        let hook_ms = |prefix: &str, n: usize| {
            let mut h = Microstep::new(format!("_{prefix}_{n}_{}", ms.name), span.clone());
            h.on_checkpoint = ms.on_checkpoint;
            h.commands = commands.clone();
            h
        };
        match key {
            "on_init" => {
                let h = hook_ms("init", step.init.len());
                step.init.push(h);
            }
            "on_clean" => {
                let h = hook_ms("clean", step.clean.len());
                step.clean.insert(0, h);
            }
            _ => {
                let target = key
                    .strip_prefix("on_")
                    .and_then(|r| r.strip_suffix("_init").or_else(|| r.strip_suffix("_clean")))
                    .unwrap_or(section);
                let Some(sec) = self.sections.iter_mut().find(|s| s.name == target) else {
                    let known: Vec<String> = SECTIONS
                        .iter()
                        .flat_map(|s| [format!("on_{s}_init"), format!("on_{s}_clean")])
                        .chain(["on_init".to_string(), "on_clean".to_string()])
                        .collect();
                    let known: Vec<&str> = known.iter().map(String::as_str).collect();
                    return Err(unknown(span, "hook", key, &known).into());
                };
                let vars = step.vars.clone();
                if key.ends_with("_init") {
                    let microstep = hook_ms("init", sec.init.len());
                    sec.init.push(Hook {
                        microstep,
                        step: step.name.clone(),
                        vars,
                    });
                } else {
                    let microstep = hook_ms("clean", sec.clean.len());
                    sec.clean.insert(
                        0,
                        Hook {
                            microstep,
                            step: step.name.clone(),
                            vars,
                        },
                    );
                }
            }
        }
        Ok(())
    }
}

/// A microstep left with no command (one that only declared hooks, say) is dropped, as
/// Kameleon drops it: it would do nothing and only take a checkpoint.
fn drop_empty(step: &mut Step) {
    step.microsteps.retain(|m| !m.commands.is_empty());
}

fn is_hook(key: &str) -> bool {
    key.starts_with("on_")
        && (key.ends_with("_init") || key.ends_with("_clean"))
        && key != "on_checkpoint"
}

fn arity(v: &Node, what: &str, expected: &str, got: usize) -> Error {
    Diagnostic::at(
        &v.span,
        format!("`{what}` takes {expected}, but {got} given"),
    )
    .into()
}

fn text_list(v: &Node, what: &str) -> Result<Vec<Text>> {
    if v.as_str().is_some() {
        return Ok(vec![scalar_text(v, what)?]);
    }
    v.seq(what)?
        .iter()
        .map(|i| scalar_text(i, &format!("an item of {what}")))
        .collect()
}

pub fn boolean(v: &Node, what: &str) -> Result<bool> {
    match v.as_scalar().filter(|s| s.plain).map(|s| s.text.as_str()) {
        Some("true" | "True" | "TRUE" | "yes" | "on") => Ok(true),
        Some("false" | "False" | "FALSE" | "no" | "off") => Ok(false),
        _ => Err(v.wrong_kind(what, "true or false").into()),
    }
}

/// Commands outside any step, as driver operations hold them. Aliases are not available there.
pub fn parse_commands(items: &[Node]) -> Result<Vec<Command>> {
    parse_commands_with(items, &Aliases::default())
}

/// Commands that may call `aliases`, as a Kameleon driver's operations call the recipe's.
pub fn parse_commands_with(items: &[Node], aliases: &Aliases) -> Result<Vec<Command>> {
    let loader = StepLoader {
        step_dirs: Vec::new(),
        include_steps: Vec::new(),
        aliases: aliases.clone(),
        globals: IndexMap::new(),
        cli_globals: Vec::new(),
        dialect: Dialect::Native,
        files: Some(Dialect::Native),
        recipe_name: String::new(),
        recipe_dir: String::new(),
        current: StepVars::default(),
        step_files: Vec::new(),
        sections: Vec::new(),
    };
    let mut out = Vec::new();
    for item in items {
        out.extend(loader.commands(item, 0)?);
    }
    Ok(out)
}
