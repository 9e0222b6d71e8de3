//! `cairn report`: one self-contained HTML file about a build dir's runs, read from its state
//! database. The data goes into the page as one JSON document and a small inline script draws
//! it: each run's timeline on a canvas (one bar per microstep, coloured by what happened, which
//! stays readable at 10,000 microsteps because a pixel column shows the slowest of the bars it
//! covers), checkpoint creates and applies, what changed since the run before and why each
//! microstep ran, and the slowest microsteps. Nothing is loaded from the network.

use std::collections::{BTreeMap, HashMap};

use serde::Serialize;
use serde_json::json;

use crate::diag::error::Result;
use crate::plan::{Manifest, Plan};
use crate::state::{CheckpointOp, RunRecord, StateDb, StepRecord, StepStatus};

const TEMPLATE: &str = include_str!("report.html");

/// Why a microstep ran in a run, as the report explains it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Reason {
    /// No earlier run of this build dir.
    FirstRun,
    /// Its ID differs from the one the run before recorded: its commands, variables or inputs
    /// changed.
    IdChanged,
    /// An earlier microstep's ID changed, and IDs chain.
    AfterChange,
    /// Same ID as before, but no checkpoint covered it (built without -c, or it came after the
    /// newest checkpoint).
    NotCovered,
    /// It did not run.
    NotRun,
}

/// Compact rows keep a 10,000-microstep page small: [seq, slug index, status, start offset,
/// duration, exit status, reason, id index].
type StepRow = (
    i64,
    usize,
    &'static str,
    f64,
    f64,
    Option<i32>,
    Reason,
    usize,
);

#[derive(Serialize)]
struct RunData {
    id: i64,
    started_at: f64,
    duration: f64,
    status: String,
    args: String,
    steps: Vec<StepRow>,
    /// [op, slug index, start offset, duration, size]
    ops: Vec<(String, usize, f64, f64, Option<i64>)>,
    changed: Option<Change>,
    counts: BTreeMap<&'static str, usize>,
    command_time: f64,
    checkpoint_time: f64,
}

#[derive(Serialize)]
struct Change {
    slug: String,
    old_id: Option<String>,
    new_id: String,
    reasons: Vec<String>,
    changed_ids: usize,
}

fn status_name(s: StepStatus) -> &'static str {
    match s {
        StepStatus::Completed => "ran",
        StepStatus::Cached => "restored",
        StepStatus::Skipped => "skipped",
        StepStatus::Failed => "failed",
        StepStatus::Interrupted | StepStatus::Started => "interrupted",
        StepStatus::RolledBack => "rolled_back",
    }
}

fn ran(s: StepStatus) -> bool {
    matches!(
        s,
        StepStatus::Completed
            | StepStatus::Failed
            | StepStatus::Interrupted
            | StepStatus::Started
            | StepStatus::RolledBack
    )
}

/// Interns strings so that each slug and ID is written once.
#[derive(Default)]
struct Names {
    list: Vec<String>,
    index: HashMap<String, usize>,
}

impl Names {
    fn get(&mut self, s: &str) -> usize {
        if let Some(i) = self.index.get(s) {
            return *i;
        }
        self.list.push(s.to_string());
        self.index.insert(s.to_string(), self.list.len() - 1);
        self.list.len() - 1
    }
}

/// The report of every run recorded in `db`. `plan` (the recipe as it is now) supplies the
/// manifests of IDs no checkpoint recorded, to say what changed.
pub fn render(db: &StateDb, plan: Option<&Plan>, title: &str) -> Result<String> {
    let runs = db.runs()?;
    let steps = db.all_steps()?;
    let ops = db.checkpoint_ops()?;
    let mut manifests: HashMap<String, Manifest> = HashMap::new();
    for c in db.checkpoints()? {
        if let Ok(m) = serde_json::from_str(&c.manifest) {
            manifests.insert(c.id, m);
        }
    }
    if let Some(plan) = plan {
        for ms in &plan.microsteps {
            manifests
                .entry(ms.id.clone())
                .or_insert_with(|| ms.manifest.clone());
        }
    }
    // Sizes as the cost accounting measured them, for ops that did not record one.
    let sizes: HashMap<String, i64> = db
        .checkpoint_costs()?
        .into_iter()
        .filter_map(|c| Some((c.id, c.size?)))
        .collect();
    let mut by_run: BTreeMap<i64, Vec<&StepRecord>> = BTreeMap::new();
    for s in &steps {
        by_run.entry(s.run_id).or_default().push(s);
    }
    let mut ops_by_run: BTreeMap<Option<i64>, Vec<&CheckpointOp>> = BTreeMap::new();
    for o in &ops {
        ops_by_run.entry(o.run_id).or_default().push(o);
    }

    // Slugs and IDs, each written once in the page.
    let mut names = (Names::default(), Names::default());
    let mut previous: HashMap<String, String> = HashMap::new();
    let mut out_runs = Vec::new();
    let mut slowest: Vec<(f64, i64, String)> = Vec::new();
    for (i, run) in runs.iter().enumerate() {
        let empty = Vec::new();
        let records = by_run.get(&run.id).unwrap_or(&empty);
        let data = run_data(
            run,
            records,
            ops_by_run
                .get(&Some(run.id))
                .map(Vec::as_slice)
                .unwrap_or(&[]),
            &sizes,
            if i == 0 || previous.is_empty() {
                None
            } else {
                Some(&previous)
            },
            &manifests,
            &mut names,
        );
        for s in records {
            if s.status == StepStatus::Completed || s.status == StepStatus::Failed {
                let d = s.ended_at.unwrap_or(s.started_at) - s.started_at;
                slowest.push((d, run.id, s.slug.clone()));
            }
            // A record of a microstep that did not run still names the ID the recipe had then.
            previous.insert(s.slug.clone(), s.checkpoint_id.clone());
        }
        out_runs.push(data);
    }
    slowest.sort_by(|a, b| b.0.total_cmp(&a.0));
    slowest.truncate(25);

    let checkpoints: Vec<serde_json::Value> = {
        let mut sizes: HashMap<&str, Option<i64>> =
            sizes.iter().map(|(k, v)| (k.as_str(), Some(*v))).collect();
        for o in ops.iter().filter(|o| o.op == "create" && o.size.is_some()) {
            sizes.insert(o.checkpoint_id.as_str(), o.size);
        }
        db.checkpoints()?
            .iter()
            .filter(|c| c.ready)
            .map(|c| {
                json!([
                    crate::plan::id::short(&c.id),
                    c.slug,
                    c.created_at,
                    c.duration,
                    sizes.get(c.id.as_str()).copied().flatten(),
                    plan.is_some_and(|p| p.microsteps.iter().any(|m| m.id == c.id)),
                ])
            })
            .collect()
    };
    let data = json!({
        "title": title,
        "generated": crate::output::time::now(),
        "slugs": names.0.list,
        "ids": names.1.list.iter().map(|i| crate::plan::id::short(i)).collect::<Vec<_>>(),
        "runs": out_runs,
        "slowest": slowest,
        "checkpoints": checkpoints,
        "planned": plan.map(|p| p.microsteps.len()),
    });
    // Inside <script>, "</" could end the element early; JSON allows escaping the slash.
    let text = serde_json::to_string(&data)
        .map_err(|e| crate::diag::error::Error::Other(e.to_string()))?
        .replace("</", "<\\/");
    Ok(TEMPLATE
        .replace("{{TITLE}}", &html_escape(title))
        .replace("/*DATA*/null", &text))
}

fn run_data(
    run: &RunRecord,
    records: &[&StepRecord],
    ops: &[&CheckpointOp],
    sizes: &HashMap<String, i64>,
    previous: Option<&HashMap<String, String>>,
    manifests: &HashMap<String, Manifest>,
    names: &mut (Names, Names),
) -> RunData {
    let (slugs, ids) = (&mut names.0, &mut names.1);
    let end = run
        .ended_at
        .or_else(|| records.iter().filter_map(|s| s.ended_at).reduce(f64::max))
        .unwrap_or(run.started_at);
    let mut changed: Option<Change> = None;
    let mut changed_ids = 0;
    let mut counts: BTreeMap<&'static str, usize> = BTreeMap::new();
    let mut command_time = 0.0;
    let mut rows = Vec::with_capacity(records.len());
    for s in records {
        let old = previous.and_then(|p| p.get(&s.slug));
        let id_changed = previous.is_some() && old != Some(&s.checkpoint_id);
        if id_changed {
            changed_ids += 1;
            if changed.is_none() {
                let reasons = match (old.and_then(|o| manifests.get(o)), manifests.get(&s.checkpoint_id)) {
                    (Some(a), Some(b)) => {
                        let d = crate::plan::explain::diff(a, b);
                        if d.is_empty() {
                            vec!["nothing in it changed: a microstep before it did (IDs chain)".into()]
                        } else {
                            d
                        }
                    }
                    _ if old.is_none() => vec!["a microstep new to the recipe".into()],
                    _ => vec!["its ID changed; no manifest of the old ID was recorded (it had no checkpoint)".into()],
                };
                changed = Some(Change {
                    slug: s.slug.clone(),
                    old_id: old.map(|o| crate::plan::id::short(o).to_string()),
                    new_id: crate::plan::id::short(&s.checkpoint_id).to_string(),
                    reasons,
                    changed_ids: 0,
                });
            }
        }
        let reason = if !ran(s.status) {
            Reason::NotRun
        } else if previous.is_none() {
            Reason::FirstRun
        } else if id_changed {
            Reason::IdChanged
        } else if changed.is_some() {
            Reason::AfterChange
        } else {
            Reason::NotCovered
        };
        let status = status_name(s.status);
        *counts.entry(status).or_default() += 1;
        let duration = (s.ended_at.unwrap_or(end) - s.started_at).max(0.0);
        if ran(s.status) {
            command_time += duration;
        }
        rows.push((
            s.seq,
            slugs.get(&s.slug),
            status,
            s.started_at - run.started_at,
            duration,
            s.exit_status,
            reason,
            ids.get(&s.checkpoint_id),
        ));
    }
    if let Some(c) = changed.as_mut() {
        c.changed_ids = changed_ids;
    }
    let checkpoint_time = ops.iter().map(|o| o.duration).sum();
    RunData {
        id: run.id,
        started_at: run.started_at,
        duration: (end - run.started_at).max(0.0),
        status: run.status.as_str().to_string(),
        args: run.args.clone(),
        steps: rows,
        ops: ops
            .iter()
            .map(|o| {
                (
                    o.op.clone(),
                    slugs.get(&o.slug),
                    o.started_at - run.started_at,
                    o.duration,
                    o.size.or_else(|| {
                        (o.op == "create")
                            .then(|| sizes.get(&o.checkpoint_id).copied())
                            .flatten()
                    }),
                )
            })
            .collect(),
        changed,
        counts,
        command_time,
        checkpoint_time,
    }
}

fn html_escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}
