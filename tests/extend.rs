//! `extend`: a recipe built on a parent, `@base` splicing the parent's steps into a section.

use crate::common::Test;

/// An inline step `name` with one microstep `m` that appends `name` to `order.log`.
fn logging_step(name: &str) -> String {
    format!("  - {name}:\n      - m:\n          - exec_local: echo {name} >> order.log\n")
}

fn section(name: &str, items: &[&str]) -> String {
    let mut s = format!("{name}:\n");
    for item in items {
        if item.starts_with('@') {
            s.push_str(&format!("  - \"{item}\"\n"));
        } else {
            s.push_str(&logging_step(item));
        }
    }
    s
}

#[test]
fn base_is_spliced_at_the_beginning_middle_and_end_three_levels_deep() {
    let grandparent = [
        section("bootstrap", &["g_boot"]),
        section("setup", &["g_setup"]),
        section("export", &["g_export"]),
    ]
    .concat();
    let parent = [
        "extend: grandparent.yaml\n".to_string(),
        section("bootstrap", &["@base", "p_boot"]), // base at the beginning
        section("setup", &["p_setup_1", "@base", "p_setup_2"]), // in the middle
        section("export", &["p_export", "@base"]),  // at the end
    ]
    .concat();
    let child = [
        "extend: parent\n".to_string(), // the .yaml extension may be left out
        section("bootstrap", &["c_boot", "@base"]),
        section("setup", &["@base", "c_setup"]),
        // no export: the parent's is kept
    ]
    .concat();
    let t = Test::new()
        .file("grandparent.yaml", &grandparent)
        .file("parent.yaml", &parent)
        .file("recipe.yaml", &child)
        .args(&["build", "recipe.yaml"]);
    let run = t.run();
    run.success();
    assert_eq!(
        t.built_lines("order.log"),
        [
            "c_boot",
            "g_boot",
            "p_boot", // bootstrap
            "p_setup_1",
            "g_setup",
            "p_setup_2",
            "c_setup", // setup
            "p_export",
            "g_export", // export, from the parent
        ]
    );
    assert_eq!(
        run.steps(),
        [
            "bootstrap/c_boot/m",
            "bootstrap/g_boot/m",
            "bootstrap/p_boot/m",
            "setup/p_setup_1/m",
            "setup/g_setup/m",
            "setup/p_setup_2/m",
            "setup/c_setup/m",
            "export/p_export/m",
            "export/g_export/m",
        ]
    );
}

#[test]
fn a_section_without_base_replaces_the_parents() {
    let t = Test::new()
        .file("base.yaml", &section("setup", &["parent_step"]))
        .file(
            "recipe.yaml",
            &[
                "extend: base.yaml\n".to_string(),
                section("setup", &["child_step"]),
            ]
            .concat(),
        )
        .args(&["build", "recipe.yaml"]);
    t.run().success();
    assert_eq!(t.built_lines("order.log"), ["child_step"]);
}

#[test]
fn a_child_with_only_globals_runs_the_parents_steps_with_its_values() {
    let t = Test::new()
        .file(
            "base/parent.yaml",
            r#"
            global:
              who: parent
              greeting: "hello {{who}}"
            setup:
              - greet:
                  - say:
                      - exec_local: echo "{{greeting}} from {{recipe_name}}" > greeting.txt
            "#,
        )
        .file(
            "recipe.yaml",
            r#"
            extend: base/parent.yaml
            global:
              who: child
            "#,
        )
        .args(&["build", "recipe.yaml"]);
    t.run().success();
    // The build is named after the child, and the parent's global sees the child's value.
    assert_eq!(t.built("greeting.txt"), "hello child from recipe\n");
}

#[test]
fn an_extend_cycle_is_a_recipe_error() {
    let t = Test::new()
        .file("a.yaml", "extend: b.yaml\nsetup: []\n")
        .file("b.yaml", "extend: c.yaml\n")
        .file("c.yaml", "extend: a.yaml\n")
        .args(&["build", "a.yaml"]);
    let run = t.run();
    run.code(3).stderr_has("cycle");
    assert!(!t.exists("build"), "nothing is built from a bad recipe");
}

#[test]
fn a_recipe_extending_itself_is_a_recipe_error() {
    Test::new()
        .file("recipe.yaml", "extend: recipe.yaml\n")
        .args(&["build", "recipe.yaml"])
        .run()
        .code(3)
        .stderr_has("cycle");
}

#[test]
fn a_missing_parent_is_a_recipe_error() {
    Test::new()
        .file("recipe.yaml", "extend: nowhere.yaml\n")
        .args(&["build", "recipe.yaml"])
        .run()
        .code(3)
        .stderr_has("nowhere.yaml")
        .stderr_has("recipe.yaml:1:9");
}
