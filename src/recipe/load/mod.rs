//! From a recipe path to a `Recipe`: read the file and its parents, splice `@base`, find step
//! files, expand aliases and gather hooks. Nothing here resolves a variable or runs a command.
//! Each concern has its file; this one puts them together in the order loading needs.

mod chain;
pub mod commands;
mod data;
mod globals;
mod hooks;
mod include_steps;
mod microstep;
mod render;
mod search;
mod step;
mod values;

use std::path::Path;

use indexmap::IndexMap;

use super::alias::Aliases;
use super::model::*;
use super::paths::absolute;
use crate::diag::error::{Diagnostic, Error, Result};
use crate::recipe::dialect::Dialect;
use chain::{description_of, in_tree_dialect, load_chain, section_items};
use include_steps::include_steps;
use search::step_dirs;
use step::StepLoader;

pub use chain::{LoadOptions, recipe_name};
pub use values::{boolean, scalar_text};

pub fn load(path: &Path) -> Result<Recipe> {
    load_with(path, &LoadOptions::default())
}

pub fn load_with(path: &Path, opts: &LoadOptions<'_>) -> Result<Recipe> {
    let mut chain = load_chain(path, opts)?;
    let (dialect, files) = in_tree_dialect(&mut chain, opts)?;
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
            globals::merge(&mut globals, node, raw.dir(), &step_dirs, files)?;
        }
        if let Some(node) = raw.root.get("checkpoint") {
            checkpoint = Some(Text::new(node.str("`checkpoint`")?, node.span.clone()));
        }
        if let Some(node) = raw.root.get("aliases") {
            aliases.add_from(node, raw.dir(), &step_dirs, files)?;
        }
        if let Some(node) = raw.root.get("env") {
            env_files = data::env_files(node, &step_dirs)?;
        }
    }
    let include_steps = include_steps(&globals, child, opts)?;

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
            loader.data_files().resolve(t)?;
        }
    }
    loader.globals = globals.clone();
    for (index, section) in SECTIONS.iter().enumerate() {
        for item in section_items(&chain, section)? {
            let step = loader.step(section, item)?;
            refuse_a_second_definition(&loader.sections[index], &step)?;
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

/// In cairn's own syntax a section may call one step file several times (with other
/// arguments, say: its microsteps are then `name%1`, `name%2`, as Kameleon names them), but
/// may not define an inline step under a name it already uses: the two would differ yet share
/// their slugs. Kameleon-syntax files keep Kameleon's `%1` for both.
fn refuse_a_second_definition(section: &Section, step: &Step) -> Result<()> {
    if step.span.file.dialect == Dialect::Kameleon {
        return Ok(());
    }
    let Some(first) = section
        .steps
        .iter()
        .find(|s| s.name == step.name && (s.file.is_none() || step.file.is_none()))
    else {
        return Ok(());
    };
    Err(Diagnostic::at(
        &step.span,
        format!(
            "step `{}` appears twice in section `{}`, and one of them is written in place",
            step.name, section.name
        ),
    )
    .note(format!("the other is at {}", first.span))
    .hint(
        "rename the step written in place; to run one step twice, put it in a step file \
         and call it twice",
    )
    .into())
}
