//! Globals: a recipe's `global` mapping merged down the extend chain, the values a global
//! shadows, and `global.include` files.

use std::path::{Path, PathBuf};

use indexmap::IndexMap;

use super::values::{scalar_text, text_list};
use crate::diag::error::{Diagnostic, Result};
use crate::recipe::dialect::Dialect;
use crate::recipe::model::{Global, GlobalValue};
use crate::yaml::{Node, Value, read_yaml};

/// Merges one recipe's `global` mapping into `globals`, a later value overriding an earlier.
pub(super) fn merge(
    globals: &mut IndexMap<String, Global>,
    node: &Node,
    recipe_dir: &Path,
    step_dirs: &[PathBuf],
    files: Option<Dialect>,
) -> Result<()> {
    for (k, v) in node.map("`global`")? {
        let key = k.str("a global's name")?.to_string();
        if key == "include" {
            for (name, value) in include_globals(v, recipe_dir, step_dirs, files)? {
                set_global(globals, name, value);
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
        set_global(globals, key, global);
    }
    Ok(())
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

pub(super) fn global_value(key: &str, v: &Node) -> Result<GlobalValue> {
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
