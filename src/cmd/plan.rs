//! `cairn plan` (and `build --dry-run`): what a build would do, from the recipe and the state
//! database alone, without starting a process. `--explain` says why a microstep would run again.

use crate::cli::RecipeArgs;
use crate::diag::error::Result;
use crate::output::Event;
use crate::plan::explain::{self, Made};
use crate::plan::id::short;
use crate::plan::policy::{self, Costs, Decided, Recorded};
use crate::plan::schedule::{Action, dry_run_actions};
use crate::plan::{Plan, Resolved};
use crate::state::{CheckpointRecord, StateDb};

pub fn run(args: &RecipeArgs, explain: bool, json: bool, commands: bool) -> Result<()> {
    let plan = super::load_plan(args, true)?;
    // A driver that cannot be found or read is reported now, not by the build that needs it.
    crate::store::driver_of(&plan)?;
    let records = StateDb::finished_checkpoints(&plan.build_dir)?;
    let ready = records.iter().map(|r| r.id.as_str()).collect();
    let actions = dry_run_actions(&plan, &ready, plan.recipe.checkpoint.is_some());
    if commands {
        print_commands(&plan, &actions, json)?;
    } else {
        print_plan(&plan, &actions, json);
    }
    if explain {
        let made: Vec<Made<'_>> = records
            .iter()
            .map(|r| Made {
                id: &r.id,
                slug: &r.slug,
                parent: r.parent.as_deref(),
                manifest: &r.manifest,
                created_at: r.created_at,
            })
            .collect();
        let mut lines = explain::explain(&plan, &made, plan.recipe.checkpoint.is_some());
        lines.extend(policy_lines(&plan, &records, &actions)?);
        if json {
            crate::output::schema::write(&Event::Explain { lines });
        } else {
            println!();
            for line in lines {
                println!("{}", crate::diag::secrets::redact(&line));
            }
        }
    }
    Ok(())
}

/// What `--explain` says about the checkpoint policy, from what earlier builds recorded.
fn policy_lines(
    plan: &Plan,
    records: &[CheckpointRecord],
    actions: &[Action],
) -> Result<Vec<String>> {
    if records.is_empty() || plan.recipe.checkpoint.is_none() {
        return Ok(Vec::new());
    }
    let Some(db) = StateDb::open_for_reading(&plan.build_dir)? else {
        return Ok(Vec::new());
    };
    let durations = db.recorded_durations()?;
    let decisions = db.latest_decisions()?;
    let driver = records
        .last()
        .map(|r| r.driver.as_str())
        .unwrap_or_default();
    let costs = Costs {
        create: db.latest_create_cost(driver)?,
        apply: db.latest_apply_cost(driver)?,
    };
    Ok(policy::explain(
        plan,
        actions,
        &durations
            .iter()
            .map(|d| Recorded {
                id: &d.checkpoint_id,
                slug: &d.slug,
                seconds: d.seconds,
            })
            .collect::<Vec<_>>(),
        &decisions
            .iter()
            .map(|d| Decided {
                id: &d.checkpoint_id,
                policy: &d.policy,
                detail: &d.detail,
            })
            .collect::<Vec<_>>(),
        costs,
        driver,
    ))
}

pub fn print_plan(plan: &Plan, actions: &[Action], json: bool) {
    for (ms, action) in plan.microsteps.iter().zip(actions) {
        let what = action.short();
        if json {
            crate::output::schema::write(&Event::PlanMicrostep {
                order: ms.index + 1,
                slug: ms.slug.clone(),
                id: ms.id.clone(),
                action: *action,
            });
        } else {
            println!(
                "{:>3}  {}  {:<15} {}",
                ms.index + 1,
                short(&ms.id),
                what,
                ms.slug
            );
        }
    }
}

/// `plan --commands`: each microstep with every resolved command, then the driver's operations
/// (rendered with `{{checkpoint_id}}` left as it is, since each checkpoint fills in its own).
fn print_commands(plan: &Plan, actions: &[Action], json: bool) -> Result<()> {
    let driver = crate::store::driver_of(plan)?;
    for (ms, action) in plan.microsteps.iter().zip(actions) {
        if json {
            crate::output::schema::write(&Event::PlanCommands {
                order: ms.index + 1,
                slug: ms.slug.clone(),
                id: ms.id.clone(),
                action: *action,
                hook: ms.hook,
                commands: commands_json(&ms.commands),
                rollback: commands_json(&ms.rollback),
            });
        } else {
            println!(
                "{:>3}  {}  {:<15} {}",
                ms.index + 1,
                short(&ms.id),
                action.short(),
                ms.slug
            );
            let mut out = Vec::new();
            commands_text(&ms.commands, 7, &mut out);
            if !ms.rollback.is_empty() {
                out.push(format!("{:7}rollback:", ""));
                commands_text(&ms.rollback, 9, &mut out);
            }
            for line in out {
                println!("{}", crate::diag::secrets::redact(&line));
            }
        }
    }
    let Some(driver) = driver else {
        return Ok(());
    };
    let mut ops = serde_json::Map::new();
    let mut text = Vec::new();
    for op in crate::driver::Op::ALL {
        if !driver.driver.has(op) {
            continue;
        }
        let shown = if op == crate::driver::Op::Mutate {
            "{{check_round}}"
        } else {
            "{{checkpoint_id}}"
        };
        // Rendered with a stand-in no recipe text holds, then shown as the variable's name.
        // It is hex, as every ID a driver is given must be.
        const STAND_IN: &str = "c0ffee00c0ffee00c0ffee00c0ffee00c0ffee00";
        let cmds = driver.commands(op, STAND_IN)?;
        let mut value = commands_json(&cmds);
        replace_strings(&mut value, STAND_IN, shown);
        // Kameleon's `@microstep_id` is the short form.
        replace_strings(&mut value, &STAND_IN[..12], shown);
        ops.insert(op.name().to_string(), value);
        text.push(format!("  {op}:"));
        let mut lines = Vec::new();
        commands_text(&cmds, 4, &mut lines);
        text.extend(
            lines
                .into_iter()
                .map(|l| l.replace(STAND_IN, shown).replace(&STAND_IN[..12], shown)),
        );
    }
    if json {
        crate::output::schema::write(&Event::PlanDriver {
            name: driver.name().to_string(),
            path: driver.driver.path.display().to_string(),
            operations: ops,
        });
    } else {
        println!(
            "driver {} ({})",
            driver.name(),
            driver.driver.path.display()
        );
        for line in text {
            println!("{}", crate::diag::secrets::redact(&line));
        }
    }
    Ok(())
}

fn replace_strings(v: &mut serde_json::Value, from: &str, to: &str) {
    match v {
        serde_json::Value::String(s) => *s = s.replace(from, to),
        serde_json::Value::Array(items) => {
            items.iter_mut().for_each(|i| replace_strings(i, from, to))
        }
        serde_json::Value::Object(map) => {
            map.values_mut().for_each(|i| replace_strings(i, from, to))
        }
        _ => {}
    }
}

/// Resolved commands as `plan --json --commands` shows them: each with its kind and context.
pub fn commands_json(cmds: &[Resolved]) -> serde_json::Value {
    serde_json::Value::Array(cmds.iter().map(command_json).collect())
}

fn command_json(cmd: &Resolved) -> serde_json::Value {
    use serde_json::json;
    match cmd {
        Resolved::Exec { ctx, cmd, .. } => {
            json!({"kind": "exec", "context": ctx.name(), "command": cmd})
        }
        Resolved::Pipe { from, to, .. } => json!({
            "kind": "pipe",
            "from": {"context": from.0.name(), "command": from.1},
            "to": {"context": to.0.name(), "command": to.1},
        }),
        Resolved::Rescue(body, rescue) => {
            json!({"kind": "rescue", "commands": [command_json(body), command_json(rescue)]})
        }
        Resolved::Test(cond, then, otherwise) => {
            let mut list = vec![command_json(cond), command_json(then)];
            if let Some(o) = otherwise {
                list.push(command_json(o));
            }
            json!({"kind": "test", "commands": list})
        }
        Resolved::Group(cmds) => json!({"kind": "group", "commands": commands_json(cmds)}),
        Resolved::Breakpoint(message) => json!({"kind": "breakpoint", "message": message}),
        Resolved::ReloadContext(ctx) => json!({"kind": "reload_context", "context": ctx.name()}),
    }
}

/// The human form: `[ctx] command`, a multi-line command's further lines indented under it.
fn commands_text(cmds: &[Resolved], indent: usize, out: &mut Vec<String>) {
    for cmd in cmds {
        command_text(cmd, indent, out);
    }
}

fn command_text(cmd: &Resolved, indent: usize, out: &mut Vec<String>) {
    let pad = " ".repeat(indent);
    let shell = |label: String, text: &str, out: &mut Vec<String>| {
        let mut lines = text.lines();
        out.push(format!("{pad}{label} {}", lines.next().unwrap_or("")));
        let cont = " ".repeat(indent + label.len() + 1);
        for l in lines {
            out.push(format!("{cont}{l}"));
        }
    };
    match cmd {
        Resolved::Exec { ctx, cmd, .. } => shell(format!("[{ctx}]"), cmd, out),
        Resolved::Pipe { from, to, .. } => {
            out.push(format!("{pad}pipe:"));
            shell(format!("  from [{}]", from.0), &from.1, out);
            shell(format!("  to [{}]", to.0), &to.1, out);
        }
        Resolved::Rescue(body, rescue) => {
            out.push(format!("{pad}rescue:"));
            command_text(body, indent + 2, out);
            command_text(rescue, indent + 2, out);
        }
        Resolved::Test(cond, then, otherwise) => {
            out.push(format!("{pad}test:"));
            command_text(cond, indent + 2, out);
            command_text(then, indent + 2, out);
            if let Some(o) = otherwise {
                command_text(o, indent + 2, out);
            }
        }
        Resolved::Group(cmds) => {
            out.push(format!("{pad}group:"));
            commands_text(cmds, indent + 2, out);
        }
        Resolved::Breakpoint(message) => {
            shell("breakpoint".into(), message.as_deref().unwrap_or(""), out)
        }
        Resolved::ReloadContext(ctx) => out.push(format!("{pad}reload_context {ctx}")),
    }
}
