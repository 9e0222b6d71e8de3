//! A microstep's items: its keys (`on_checkpoint`, `inputs`, `rollback`, `atomic`,
//! `state_files`, `verify`), the hooks it declares and its commands.

use super::commands::CommandParser;
use super::hooks::is_hook;
use super::values::{boolean, check_keys, scalar_text, text_list};
use crate::diag::error::{Diagnostic, Result};
use crate::diag::source::Span;
use crate::diag::suggest::unknown;
use crate::recipe::model::{Command, Ctx, Microstep, OnCheckpoint, Verify};
use crate::yaml::Node;

/// One item of a microstep: a key of its own, a hook it declares, or a command.
pub(super) fn microstep_item(
    parser: &CommandParser<'_>,
    ms: &mut Microstep,
    item: &Node,
    hooks: &mut Vec<(String, Span, Vec<Command>)>,
) -> Result<()> {
    if item.as_str().is_some() {
        // A bare alias name, or an error that `commands` words.
        ms.commands.extend(parser.commands(item, 0)?);
        return Ok(());
    }
    let Some((k, v)) = item.single_entry() else {
        return Err(Diagnostic::at(
            &item.span,
            format!(
                "a command must be a mapping with one key, like `exec_local: ...`, but this is {}",
                item.kind()
            ),
        )
        .into());
    };
    let key = k.str("a command name")?;
    match key {
        "on_checkpoint" => {
            let s = v.str("`on_checkpoint`")?;
            ms.on_checkpoint = OnCheckpoint::parse(s)
                .ok_or_else(|| unknown(&v.span, "on_checkpoint value", s, &OnCheckpoint::NAMES))?;
        }
        "inputs" => ms.inputs = text_list(v, "`inputs`")?,
        "state_files" => ms.state_files = text_list(v, "`state_files`")?,
        "atomic" => ms.atomic = boolean(v, "`atomic`")?,
        "rollback" => {
            for c in v.seq("`rollback`")? {
                ms.rollback.extend(parser.commands(c, 0)?);
            }
        }
        "verify" => {
            for check in v.seq("`verify`")? {
                check_keys(check, &["cmd", "expect", "context"], "verify entry")?;
                let cmd = check
                    .get("cmd")
                    .ok_or_else(|| Diagnostic::at(&check.span, "a verify entry needs `cmd`"))?;
                let expect = check
                    .get("expect")
                    .ok_or_else(|| Diagnostic::at(&check.span, "a verify entry needs `expect`"))?;
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
                cmds.extend(parser.commands(c, 0)?);
            }
            hooks.push((hook.to_string(), k.span.clone(), cmds));
        }
        _ => microstep_command(parser, ms, item, hooks, 0)?,
    }
    Ok(())
}

/// A command of a microstep. An alias is expanded here first, as Kameleon does before it
/// looks for hooks, so an alias may stand for a hook (`check_cmd_local: [on_bootstrap_init:
/// ...]`).
fn microstep_command(
    parser: &CommandParser<'_>,
    ms: &mut Microstep,
    item: &Node,
    hooks: &mut Vec<(String, Span, Vec<Command>)>,
    depth: usize,
) -> Result<()> {
    if let Some((k, v)) = item.single_entry()
        && let Some(key) = k.as_str()
        && let Some(expanded) = parser.aliases().expand(key, k, v, depth)?
    {
        for c in &expanded {
            match c.single_entry() {
                Some((hk, hv)) if hk.as_str().is_some_and(is_hook) => {
                    let hook = hk.as_str().unwrap_or_default().to_string();
                    let mut cmds = Vec::new();
                    for c in hv.seq(&format!("`{hook}`"))? {
                        cmds.extend(parser.commands(c, depth + 1)?);
                    }
                    hooks.push((hook, hk.span.clone(), cmds));
                }
                _ => microstep_command(parser, ms, c, hooks, depth + 1)?,
            }
        }
        return Ok(());
    }
    ms.commands.extend(parser.commands(item, depth)?);
    Ok(())
}
