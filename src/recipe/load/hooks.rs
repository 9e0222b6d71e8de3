//! Hooks: `on_init`, `on_clean` and `on_<section>_init`/`_clean` commands a microstep declares,
//! registered on the step or the section once the step call is fully known.

use crate::diag::error::Result;
use crate::diag::source::Span;
use crate::diag::suggest::unknown;
use crate::recipe::model::{Command, Hook, Microstep, SECTIONS, Section, Step};

/// A microstep and the hooks it declares: `(hook key, where, commands)`.
pub(super) type PendingHooks = (Microstep, Vec<(String, Span, Vec<Command>)>);

pub(super) fn register_hooks(
    sections: &mut [Section],
    section: &str,
    step: &mut Step,
    pending: Vec<PendingHooks>,
) -> Result<()> {
    for (ms, hooks) in pending {
        for (key, span, commands) in hooks {
            register_hook(sections, section, step, &ms, &key, &span, commands)?;
        }
    }
    Ok(())
}

fn register_hook(
    sections: &mut [Section],
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
            let Some(sec) = sections.iter_mut().find(|s| s.name == target) else {
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

pub(super) fn is_hook(key: &str) -> bool {
    key.starts_with("on_")
        && (key.ends_with("_init") || key.ends_with("_clean"))
        && key != "on_checkpoint"
}
