//! YAML values read as recipe values: scalars as `Text` (translated from Kameleon's syntax),
//! lists of them, booleans, and the check that a mapping holds only known keys.

use crate::diag::error::Result;
use crate::diag::suggest::unknown;
use crate::recipe::dialect::{Dialect, translate};
use crate::recipe::model::Text;
use crate::yaml::{Node, Value};

pub(super) fn check_keys(node: &Node, allowed: &[&str], what: &str) -> Result<()> {
    for (k, _) in node.map(what)? {
        let key = k.str("a key")?;
        if !allowed.contains(&key) {
            return Err(unknown(&k.span, &format!("{what} key"), key, allowed).into());
        }
    }
    Ok(())
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

pub(super) fn text_list(v: &Node, what: &str) -> Result<Vec<Text>> {
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
