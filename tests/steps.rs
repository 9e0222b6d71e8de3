//! Steps: where step files are found, inline steps, and microstep selection.

use crate::common::Test;

/// A step file whose microsteps each append `<tag>:<microstep>` to `order.log`.
fn step_file(tag: &str, microsteps: &[&str]) -> String {
    microsteps
        .iter()
        .map(|m| format!("- {m}:\n    - exec_local: echo {tag}:{m} >> order.log\n"))
        .collect()
}

#[test]
fn step_files_are_found_next_to_the_recipe_and_next_to_its_parent() {
    let t = Test::new()
        .file(
            "recipe.yaml",
            r#"
            extend: parents/base.yaml
            setup:
              - in_section_dir
              - in_steps_dir
              - parent_section_dir
              - parent_steps_dir
              - both_dirs
              - both_recipes
            export:
              - exported
            "#,
        )
        .file("parents/base.yaml", "setup: []\n")
        .file(
            "steps/setup/in_section_dir.yaml",
            &step_file("child-section", &["a"]),
        )
        .file("steps/in_steps_dir.yaml", &step_file("child-plain", &["b"]))
        .file(
            "parents/steps/setup/parent_section_dir.yaml",
            &step_file("parent-section", &["c"]),
        )
        .file(
            "parents/steps/parent_steps_dir.yaml",
            &step_file("parent-plain", &["d"]),
        )
        // steps/<section>/ is searched before steps/
        .file(
            "steps/setup/both_dirs.yaml",
            &step_file("section-dir-wins", &["e"]),
        )
        .file(
            "steps/both_dirs.yaml",
            &step_file("plain-dir-loses", &["e"]),
        )
        // the recipe's own steps are searched before its parent's
        .file("steps/both_recipes.yaml", &step_file("child-wins", &["f"]))
        .file(
            "parents/steps/setup/both_recipes.yaml",
            &step_file("parent-loses", &["f"]),
        )
        // a step of another section is not found in steps/setup/
        .file(
            "steps/export/exported.yaml",
            &step_file("export-section", &["g"]),
        )
        .file(
            "steps/setup/exported.yaml",
            &step_file("wrong-section", &["g"]),
        )
        .args(&["build", "recipe.yaml"]);
    t.run().success();
    assert_eq!(
        t.built_lines("order.log"),
        [
            "child-section:a",
            "child-plain:b",
            "parent-section:c",
            "parent-plain:d",
            "section-dir-wins:e",
            "child-wins:f",
            "export-section:g",
        ]
    );
}

#[test]
fn inline_steps_have_microsteps_and_defaults() {
    let t = Test::new()
        .file(
            "recipe.yaml",
            r#"
            global:
              overridden: global
            setup:
              - inline:
                  - local_default: default
                  - overridden: default
                  - first:
                      - exec_local: echo "first {{local_default}}" >> order.log
                  - second:
                      - exec_local: echo "second {{overridden}}" >> order.log
            "#,
        )
        .args(&["build", "recipe.yaml"]);
    let run = t.run();
    run.success();
    assert_eq!(
        t.built_lines("order.log"),
        ["first default", "second global"]
    );
    assert_eq!(run.steps(), ["setup/inline/first", "setup/inline/second"]);
}

#[test]
fn a_selection_runs_the_selected_microsteps_in_the_listed_order() {
    let t = Test::new()
        .file(
            "recipe.yaml",
            r#"
            setup:
              - three:
                  - m3
                  - m1
            export:
              - three:
                  - m2
                  - tag: chosen
            "#,
        )
        .file(
            "steps/three.yaml",
            r#"
            - tag: default
            - m1:
                - exec_local: echo "{{tag}}:m1" >> order.log
            - m2:
                - exec_local: echo "{{tag}}:m2" >> order.log
            - m3:
                - exec_local: echo "{{tag}}:m3" >> order.log
            "#,
        )
        .args(&["build", "recipe.yaml"]);
    let run = t.run();
    run.success();
    assert_eq!(
        t.built_lines("order.log"),
        ["default:m3", "default:m1", "chosen:m2"]
    );
    assert_eq!(
        run.steps(),
        ["setup/three/m3", "setup/three/m1", "export/three/m2"]
    );
}

#[test]
fn a_step_without_selection_runs_every_microstep_in_file_order() {
    let t = Test::new()
        .file("recipe.yaml", "setup:\n  - three\n")
        .file("steps/setup/three.yaml", &step_file("s", &["z", "a", "m"]))
        .args(&["build", "recipe.yaml"]);
    t.run().success();
    assert_eq!(t.built_lines("order.log"), ["s:z", "s:a", "s:m"]);
}

#[test]
fn a_step_may_be_called_twice_with_different_arguments() {
    let t = Test::new()
        .file(
            "recipe.yaml",
            r#"
            setup:
              - add_user:
                  - name: alice
              - add_user:
                  - name: bob
            "#,
        )
        .file(
            "steps/setup/add_user.yaml",
            r#"
            - name: nobody
            - add:
                - exec_local: echo "{{name}}" >> users.txt
            "#,
        )
        .args(&["build", "recipe.yaml"]);
    t.run().success();
    assert_eq!(t.built_lines("users.txt"), ["alice", "bob"]);
}

/// A section may call one step file twice (here with other arguments): the second call's
/// microsteps are `name%1`, as Kameleon names them, and both run. Defining two different steps
/// under one name is refused instead (the malformed corpus: `duplicate_inline_step.yaml`,
/// `duplicate_microstep.yaml`).
#[test]
fn one_step_file_called_twice_runs_twice_with_percent_slugs() {
    let t = Test::new()
        .file(
            "steps/greet.yaml",
            "- who: nobody\n- say:\n  - exec_local: echo {{who}} >> said\n",
        )
        .file(
            "recipe.yaml",
            r#"
            setup:
              - greet:
                - who: alice
              - greet:
                - who: bob
            "#,
        );
    let run = t.cairn(&["build", "recipe.yaml"]);
    run.success();
    assert_eq!(run.steps(), ["setup/greet/say", "setup/greet/say%1"]);
    assert_eq!(t.built("said"), "alice\nbob\n");
}
