//! The parser of a command list: `exec_*`, `pipe`, `rescue`, `test`, `group`, `breakpoint`,
//! `reload_context` and alias calls, as recipe steps and driver operations hold them.

use super::data::DataFiles;
use super::hooks::is_hook;
use super::values::scalar_text;
use crate::diag::error::{Diagnostic, Error, Result};
use crate::diag::suggest::unknown;
use crate::recipe::alias::Aliases;
use crate::recipe::dialect::Dialect;
use crate::recipe::model::{Command, Ctx, Text};
use crate::yaml::Node;

/// The keys of a microstep that are not commands.
const MICROSTEP_KEYS: [&str; 6] = [
    "on_checkpoint",
    "inputs",
    "rollback",
    "atomic",
    "state_files",
    "verify",
];

/// The commands a command list may hold, aliases aside.
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

/// Reads command lists: a recipe step's, which may call the recipe's aliases and find its
/// `$${kameleon_data_dir}` files along the step search path, or a driver operation's.
pub struct CommandParser<'a> {
    aliases: &'a Aliases,
    data: DataFiles<'a>,
}

impl<'a> CommandParser<'a> {
    /// The commands of a recipe's steps.
    pub(super) fn new(aliases: &'a Aliases, data: DataFiles<'a>) -> Self {
        CommandParser { aliases, data }
    }

    /// The commands of a driver operation, which may call `aliases` (a Kameleon driver calls
    /// the recipe's). A driver has no steps directory to find a data file in.
    pub fn for_driver(aliases: &'a Aliases) -> Self {
        CommandParser {
            aliases,
            data: DataFiles::none(),
        }
    }

    pub(super) fn aliases(&self) -> &'a Aliases {
        self.aliases
    }

    /// A command list, in order; an alias call stands for its commands.
    pub fn parse(&self, items: &[Node]) -> Result<Vec<Command>> {
        let mut out = Vec::new();
        for item in items {
            out.extend(self.commands(item, 0)?);
        }
        Ok(out)
    }

    /// One command item; an alias call expands to several.
    pub(super) fn commands(&self, item: &Node, depth: usize) -> Result<Vec<Command>> {
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
            self.data.resolve(&mut cmd)?;
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
                                self.data.resolve(&mut t)?;
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
}

/// A command's text; in Kameleon's dialect, as Kameleon runs it (see `kameleon_chomp`).
fn command_text(node: &Node, what: &str) -> Result<Text> {
    let mut text = scalar_text(node, what)?;
    if node.span.file.dialect == Dialect::Kameleon {
        let chomped = crate::recipe::dialect::kameleon_chomp(&text.text).len();
        text.text.truncate(chomped);
    }
    Ok(text)
}

fn arity(v: &Node, what: &str, expected: &str, got: usize) -> Error {
    Diagnostic::at(
        &v.span,
        format!("`{what}` takes {expected}, but {got} given"),
    )
    .into()
}
