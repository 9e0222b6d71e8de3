//! Steps: a step call of a section, its step file (or inline body), its variables and
//! arguments, the microsteps it selects.

use std::path::PathBuf;

use indexmap::IndexMap;

use super::commands::CommandParser;
use super::data::DataFiles;
use super::hooks::{PendingHooks, register_hooks};
use super::microstep::microstep_item;
use super::search::find_step_file;
use super::values::scalar_text;
use crate::diag::error::{Diagnostic, Result};
use crate::diag::suggest::closest;
use crate::recipe::alias::Aliases;
use crate::recipe::dialect::Dialect;
use crate::recipe::model::{Global, Microstep, Section, Step, StepVars, Var};
use crate::yaml::{Node, Value, read_yaml};

pub(super) struct StepLoader {
    pub(super) step_dirs: Vec<PathBuf>,
    /// `global.include_steps`: subdirectories of each steps dir searched before the dir itself.
    pub(super) include_steps: Vec<String>,
    pub(super) aliases: Aliases,
    /// What a `$${kameleon_data_dir}/...` path may use: the globals, `-g`, the recipe's name
    /// and directory, and the variables of the step being read (`current`).
    pub(super) globals: IndexMap<String, Global>,
    pub(super) cli_globals: Vec<(String, String)>,
    /// The tree's dialect, which `-g` values are read in.
    pub(super) dialect: Dialect,
    /// What step files are read in (None: each by its own markers).
    pub(super) files: Option<Dialect>,
    pub(super) recipe_name: String,
    pub(super) recipe_dir: String,
    pub(super) current: StepVars,
    pub(super) step_files: Vec<PathBuf>,
    pub(super) sections: Vec<Section>,
}

impl StepLoader {
    /// Where the data files of the step being read are found, and what their paths may use.
    pub(super) fn data_files(&self) -> DataFiles<'_> {
        DataFiles {
            step_dirs: &self.step_dirs,
            recipe_name: &self.recipe_name,
            recipe_dir: &self.recipe_dir,
            globals: Some(&self.globals),
            cli_globals: &self.cli_globals,
            dialect: self.dialect,
            step: Some(&self.current),
        }
    }

    fn parser(&self) -> CommandParser<'_> {
        CommandParser::new(&self.aliases, self.data_files())
    }

    pub(super) fn step(&mut self, section: &str, item: &Node) -> Result<Step> {
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
            register_hooks(&mut self.sections, section, &mut step, pending)?;
            drop_empty(&mut step);
            return Ok(step);
        }

        let path = find_step_file(
            &self.step_dirs,
            &self.include_steps,
            section,
            &name,
            &name_node.span,
        )?;
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
                self.data_files().resolve(&mut value)?;
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
        register_hooks(&mut self.sections, section, &mut step, pending)?;
        drop_empty(&mut step);
        Ok(step)
    }

    /// Reads a step's variables and microsteps into `step`; returns the hooks each microstep
    /// declares, for `register_hooks` once the step call is fully known.
    pub(super) fn step_body(
        &mut self,
        step: &mut Step,
        items: &[Node],
    ) -> Result<Vec<PendingHooks>> {
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
                self.data_files().resolve(&mut value)?;
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
                // Kameleon runs both, the second as `name%1`; in cairn's own syntax two
                // definitions of one name are a mistake, as two recipes of one name are in a
                // justfile.
                if k.span.file.dialect != Dialect::Kameleon
                    && let Some(first) = step.microsteps.iter().find(|m| m.name == name)
                {
                    return Err(Diagnostic::at(
                        &k.span,
                        format!("microstep `{name}` is defined twice in step `{}`", step.name),
                    )
                    .note(format!("first defined at {}", first.span))
                    .hint("rename one of them: `-F`, plans and the state database name microsteps by `section/step/microstep`")
                    .into());
                }
                let mut ms = Microstep::new(name, k.span.clone());
                let mut hooks = Vec::new();
                for cmd in cmds {
                    microstep_item(&self.parser(), &mut ms, cmd, &mut hooks)?;
                }
                if !hooks.is_empty() {
                    pending.push((ms.clone(), hooks));
                }
                step.microsteps.push(ms);
            }
        }
        Ok(pending)
    }
}

/// A microstep left with no command (one that only declared hooks, say) is dropped, as
/// Kameleon drops it: it would do nothing and only take a checkpoint.
fn drop_empty(step: &mut Step) {
    step.microsteps.retain(|m| !m.commands.is_empty());
}
