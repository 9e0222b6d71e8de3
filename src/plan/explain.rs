//! `plan --explain`: why a build would run what the plan table says it runs. It starts from the
//! same resume point as the table and the build (`schedule::resume_point`), so the three cannot
//! disagree; it then names the first microstep whose ID changed since the checkpoints an
//! earlier build made after that point, and what changed in it.

use std::collections::{BTreeMap, BTreeSet};

use super::id::short;
use super::schedule::{Action, actions, resume_point};
use super::{Manifest, Plan};

/// A finished checkpoint as the state database recorded it.
pub struct Made<'a> {
    pub id: &'a str,
    pub slug: &'a str,
    pub parent: Option<&'a str>,
    /// The JSON of the `Manifest` its ID was computed from.
    pub manifest: &'a str,
    pub created_at: f64,
}

/// The explanation, one line per element.
pub fn explain(plan: &Plan, made: &[Made<'_>], checkpointing: bool) -> Vec<String> {
    if made.is_empty() {
        return vec![
            "No checkpoint has been created in this build dir yet: everything runs.".into(),
        ];
    }
    let ready: BTreeSet<&str> = made.iter().map(|m| m.id).collect();
    let resume = resume_point(plan, |id| ready.contains(id)).filter(|_| checkpointing);
    let runs = actions(plan, checkpointing, resume)
        .iter()
        .filter(|a| **a == Action::Run)
        .count();
    let by_id: BTreeMap<&str, &Made<'_>> = made.iter().map(|m| (m.id, m)).collect();
    let mut out = Vec::new();
    match resume {
        None => {
            // No checkpoint matches: explain against the newest one made, whose chain shows
            // where this plan parts from what was built.
            let newest = newest(made.iter()).expect("made is not empty");
            out.extend(first_change(plan, chain(newest, &by_id)));
            out.push(format!(
                "No checkpoint matches this plan: a build with -c runs {runs} microstep(s)."
            ));
        }
        Some(r) => {
            let applied = &plan.microsteps[r];
            // Checkpoints an earlier build made after the applied one: the next of them names
            // the first microstep that changed since.
            let after = newest(
                made.iter()
                    .filter(|m| m.parent == Some(applied.id.as_str())),
            );
            match after {
                Some(next) => out.extend(first_change(plan, vec![next])),
                None => out.push(format!(
                    "Nothing changed up to the newest valid checkpoint {} ({}).",
                    short(&applied.id),
                    applied.slug
                )),
            }
            let plan_ids: BTreeSet<&str> = plan.microsteps.iter().map(|m| m.id.as_str()).collect();
            let applied_at = by_id.get(applied.id.as_str()).map_or(0.0, |m| m.created_at);
            // Stale checkpoints made after the applied one, in its own line, are what the
            // explanation above is about; the others were built from another variant.
            let mut line: BTreeSet<&str> = BTreeSet::from([applied.id.as_str()]);
            loop {
                let before = line.len();
                for m in made {
                    if m.parent.is_some_and(|p| line.contains(p)) {
                        line.insert(m.id);
                    }
                }
                if line.len() == before {
                    break;
                }
            }
            let others: Vec<&Made<'_>> = made
                .iter()
                .filter(|m| {
                    m.created_at > applied_at && !plan_ids.contains(m.id) && !line.contains(m.id)
                })
                .collect();
            if let Some(n) = newest(others.iter().copied()) {
                out.push(format!(
                    "{} newer checkpoint(s) belong to another variant of the recipe (other -g \
                     values or files), the newest {} ({}); this plan does not use them.",
                    others.len(),
                    short(n.id),
                    n.slug
                ));
            }
            out.push(format!(
                "A build with -c applies checkpoint {} ({}) and runs {runs} microstep(s).",
                short(&applied.id),
                applied.slug
            ));
        }
    }
    out
}

fn newest<'a, 'b>(made: impl Iterator<Item = &'b Made<'a>>) -> Option<&'b Made<'a>>
where
    'a: 'b,
{
    made.max_by(|a, b| {
        a.created_at
            .partial_cmp(&b.created_at)
            .unwrap_or(std::cmp::Ordering::Equal)
    })
}

/// `last` and its ancestors, root first.
fn chain<'a, 'b>(last: &'b Made<'a>, by_id: &BTreeMap<&str, &'b Made<'a>>) -> Vec<&'b Made<'a>> {
    let mut chain = vec![last];
    while let Some(parent) = chain
        .last()
        .and_then(|m| m.parent)
        .and_then(|p| by_id.get(p))
    {
        if chain.iter().any(|m| m.id == parent.id) {
            break;
        }
        chain.push(parent);
    }
    chain.reverse();
    chain
}

/// The first checkpoint of `chain` whose microstep has another ID in this plan, and what changed
/// in that microstep.
fn first_change(plan: &Plan, chain: Vec<&Made<'_>>) -> Vec<String> {
    for old in chain {
        let Some(ms) = plan.microsteps.iter().find(|m| m.slug == old.slug) else {
            return vec![format!(
                "Microstep {} (checkpoint {}) is no longer in the recipe.",
                old.slug,
                short(old.id)
            )];
        };
        if ms.id == old.id {
            continue;
        }
        let mut out = vec![format!(
            "First changed microstep: {} (was {}, now {})",
            ms.slug,
            short(old.id),
            short(&ms.id)
        )];
        let previous: Manifest = serde_json::from_str(old.manifest).unwrap_or_default();
        let changes = diff(&previous, &ms.manifest);
        if changes.is_empty() {
            out.push("  nothing in it changed: a microstep before it did (IDs chain), one that has no checkpoint".into());
        } else {
            out.extend(changes.into_iter().map(|c| format!("  {c}")));
        }
        return out;
    }
    Vec::new()
}

pub fn diff(old: &Manifest, new: &Manifest) -> Vec<String> {
    let mut out = Vec::new();
    let names: BTreeSet<&str> = old
        .vars
        .keys()
        .chain(new.vars.keys())
        .map(|k| &**k)
        .collect();
    for name in names {
        match (old.vars.get(name), new.vars.get(name)) {
            (Some(a), Some(b)) if a != b => out.push(format!("variable `{name}`: {a:?} -> {b:?}")),
            (None, Some(b)) => out.push(format!("variable `{name}` is now used: {b:?}")),
            (Some(a), None) => out.push(format!("variable `{name}` is no longer used (was {a:?})")),
            _ => {}
        }
    }
    if old.commands != new.commands {
        let lines = |m: &Manifest| -> Vec<String> {
            serde_json::from_str::<serde_json::Value>(&m.commands)
                .map(|v| {
                    let mut acc = Vec::new();
                    collect_commands(&v, &mut acc);
                    acc
                })
                .unwrap_or_default()
        };
        let (a, b) = (lines(old), lines(new));
        out.push("command text changed:".into());
        for l in a.iter().filter(|l| !b.contains(l)) {
            out.push(format!("  - {l}"));
        }
        for l in b.iter().filter(|l| !a.contains(l)) {
            out.push(format!("  + {l}"));
        }
    }
    let paths: BTreeSet<&String> = old.inputs.keys().chain(new.inputs.keys()).collect();
    for p in paths {
        match (old.inputs.get(p), new.inputs.get(p)) {
            (Some(a), Some(b)) if a != b => out.push(format!("input file changed: {p}")),
            (None, Some(_)) => out.push(format!("input added: {p}")),
            (Some(_), None) => out.push(format!("input removed: {p}")),
            _ => {}
        }
    }
    out
}

/// The command lines in a serialised command list, one per line of shell.
fn collect_commands(v: &serde_json::Value, acc: &mut Vec<String>) {
    match v {
        serde_json::Value::String(s) if !matches!(s.as_str(), "local" | "out" | "in") => {
            acc.extend(s.lines().map(str::to_string));
        }
        serde_json::Value::Array(items) => items.iter().for_each(|i| collect_commands(i, acc)),
        serde_json::Value::Object(map) => map.values().for_each(|i| collect_commands(i, acc)),
        _ => {}
    }
}
