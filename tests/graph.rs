//! `cairn graph`: the plan as a graph, from the recipe alone.

use crate::common::Test;

fn recipe() -> Test {
    Test::new().file(
        "recipe.yaml",
        r#"
        setup:
          - s:
              - a:
                  - exec_local: echo a
              - mount:
                  - exec_local: echo mount
                  - on_checkpoint: redo
              - b:
                  - exec_local: echo b
          - t:
              - c:
                  - exec_local: echo c
        "#,
    )
}

#[test]
fn json_graph_has_every_microstep_and_follows_the_id_chain() {
    let t = recipe();
    let run = t.cairn(&["graph", "recipe.yaml", "--format", "json"]);
    run.success();
    let graphs = crate::common::json_events(&run.stdout, "graph");
    assert_eq!(graphs.len(), 1, "one graph event\n{run}");
    let v = &graphs[0];
    let slugs: Vec<&str> = v["nodes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|n| n["slug"].as_str().unwrap())
        .collect();
    assert_eq!(
        slugs,
        ["setup/s/a", "setup/s/mount", "setup/s/b", "setup/t/c"]
    );
    let edges: Vec<(&str, &str)> = v["edges"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| (e["from"].as_str().unwrap(), e["to"].as_str().unwrap()))
        .collect();
    // `mount` is redone, not chained on: both it and `b` hang off `a`.
    assert_eq!(
        edges,
        [
            ("setup/s/a", "setup/s/mount"),
            ("setup/s/a", "setup/s/b"),
            ("setup/s/b", "setup/t/c")
        ]
    );
    assert!(!t.exists("build"), "graph runs nothing");
}

#[test]
fn dot_and_mermaid_group_microsteps_by_step() {
    let t = recipe();
    let dot = t.cairn(&["graph", "recipe.yaml"]);
    dot.success();
    assert!(dot.stdout.starts_with("digraph \"recipe\" {"));
    assert_eq!(dot.stdout.matches("subgraph cluster_").count(), 2);
    assert!(dot.stdout.contains("label=\"setup/s\""));
    let mermaid = t.cairn(&["graph", "recipe.yaml", "--format", "mermaid"]);
    mermaid.success();
    assert!(mermaid.stdout.starts_with("flowchart TD"));
    assert!(mermaid.stdout.contains("subgraph g1 [\"setup/t\"]"));
}
