//! `cairn graph`: the plan as a picture. Microsteps are grouped by step within their section,
//! and each points to the one whose ID it chains on (redo and skip microsteps hang off the chain
//! without advancing it).

use crate::cli::{GraphFormat, RecipeArgs};
use crate::diag::error::Result;
use crate::plan::id::short;
use crate::plan::{Plan, PlannedMicrostep};

pub fn run(args: &RecipeArgs, format: GraphFormat) -> Result<()> {
    let plan = super::load_plan(args, false)?;
    let text = match format {
        GraphFormat::Dot => dot(&plan),
        GraphFormat::Mermaid => mermaid(&plan),
        GraphFormat::Json => {
            json(&plan);
            return Ok(());
        }
    };
    print!("{}", crate::diag::secrets::redact(&text));
    Ok(())
}

/// (from, to) index pairs: each microstep after the last one that advanced the chain.
fn edges(plan: &Plan) -> Vec<(usize, usize)> {
    let mut out = Vec::new();
    let mut previous: Option<usize> = None;
    for ms in &plan.microsteps {
        if let Some(p) = previous {
            out.push((p, ms.index));
        }
        if ms.on_checkpoint.advances_chain() {
            previous = Some(ms.index);
        }
    }
    out
}

/// Consecutive microsteps of the same section and step.
fn groups(plan: &Plan) -> Vec<(&str, &str, Vec<&PlannedMicrostep>)> {
    let mut out: Vec<(&str, &str, Vec<&PlannedMicrostep>)> = Vec::new();
    for ms in &plan.microsteps {
        match out.last_mut() {
            Some((sec, step, list)) if *sec == ms.section && *step == ms.step => list.push(ms),
            _ => out.push((&ms.section, &ms.step, vec![ms])),
        }
    }
    out
}

/// Text inside a DOT double-quoted string: names may hold quotes, backslashes and newlines,
/// which would otherwise end the label and add statements of their own.
fn dot_text(s: &str) -> String {
    let mut out = String::new();
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => {}
            c => out.push(c),
        }
    }
    out
}

/// Text inside a mermaid `["..."]` label, as HTML entities: mermaid has no escape for `"`, and
/// a label must not open tags or lines (`<script>`, a `click` statement).
fn mermaid_text(s: &str) -> String {
    let mut out = String::new();
    for c in s.chars() {
        match c {
            '"' => out.push_str("#quot;"),
            '<' => out.push_str("#lt;"),
            '>' => out.push_str("#gt;"),
            '&' => out.push_str("#amp;"),
            '#' => out.push_str("#35;"),
            '\n' | '\r' => out.push(' '),
            c => out.push(c),
        }
    }
    out
}

fn dot(plan: &Plan) -> String {
    let mut s = format!(
        "digraph \"{}\" {{\n  rankdir=TB;\n  node [shape=box];\n",
        dot_text(&plan.recipe.name)
    );
    for (i, (section, step, list)) in groups(plan).into_iter().enumerate() {
        s.push_str(&format!(
            "  subgraph cluster_{i} {{\n    label=\"{}\";\n",
            dot_text(&format!("{section}/{step}"))
        ));
        for ms in list {
            s.push_str(&format!(
                "    m{} [label=\"{}\\n{}\"];\n",
                ms.index,
                dot_text(&ms.name),
                short(&ms.id)
            ));
        }
        s.push_str("  }\n");
    }
    for (a, b) in edges(plan) {
        s.push_str(&format!("  m{a} -> m{b};\n"));
    }
    s.push_str("}\n");
    s
}

fn mermaid(plan: &Plan) -> String {
    let mut s = String::from("flowchart TD\n");
    for (i, (section, step, list)) in groups(plan).into_iter().enumerate() {
        s.push_str(&format!(
            "  subgraph g{i} [\"{}\"]\n",
            mermaid_text(&format!("{section}/{step}"))
        ));
        for ms in list {
            s.push_str(&format!(
                "    m{}[\"{}<br/>{}\"]\n",
                ms.index,
                mermaid_text(&ms.name),
                short(&ms.id)
            ));
        }
        s.push_str("  end\n");
    }
    for (a, b) in edges(plan) {
        s.push_str(&format!("  m{a} --> m{b}\n"));
    }
    s
}

fn json(plan: &Plan) {
    let nodes: Vec<serde_json::Value> = plan
        .microsteps
        .iter()
        .map(|ms| {
            serde_json::json!({
                "order": ms.index + 1,
                "slug": ms.slug,
                "section": ms.section,
                "step": ms.step,
                "microstep": ms.name,
                "id": ms.id,
                "on_checkpoint": ms.on_checkpoint,
            })
        })
        .collect();
    let edges: Vec<serde_json::Value> = edges(plan)
        .into_iter()
        .map(|(a, b)| serde_json::json!({"from": plan.microsteps[a].slug, "to": plan.microsteps[b].slug}))
        .collect();
    crate::output::schema::write(&crate::output::Event::Graph {
        recipe: plan.recipe.name.clone(),
        nodes,
        edges,
    });
}
