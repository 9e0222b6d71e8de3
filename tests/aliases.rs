//! Aliases: named command lists with positional arguments, expanded where they are called.

use crate::common::Test;

#[test]
fn recipe_aliases_take_positional_arguments() {
    let t = Test::new()
        .file(
            "recipe.yaml",
            r#"
            global:
              file: from-variable.txt
            aliases:
              write_file:
                - exec_local: printf '%s\n' "@2" > "@1"
              touch_it:
                - exec_local: touch "@1"
            setup:
              - s:
                  - m:
                      - write_file:
                          - first.txt
                          - hello world
                      - write_file: ["{{file}}", "second @1 stays"]
                      - touch_it: one-arg.txt
            "#,
        )
        .args(&["build", "recipe.yaml"]);
    t.run().success();
    assert_eq!(t.built("first.txt"), "hello world\n");
    // Variables in arguments are resolved after expansion; an argument's own `@1` is not
    // substituted again.
    assert_eq!(t.built("from-variable.txt"), "second @1 stays\n");
    assert!(t.exists("build/recipe/one-arg.txt"));
}

#[test]
fn an_aliases_file_is_found_in_steps_aliases_and_aliases_call_aliases() {
    let t = Test::new()
        .file(
            "recipe.yaml",
            r#"
            aliases: myaliases.yaml
            setup:
              - s:
                  - m:
                      - log_twice: [log.txt, hi]
                      - no_args:
            "#,
        )
        .file(
            "steps/aliases/myaliases.yaml",
            r#"
            log:
              - exec_local: echo "@2" >> "@1"
            log_twice:
              - log: ["@1", "@2 one"]
              - log: ["@1", "@2 two"]
            no_args:
              - log: [log.txt, done]
            "#,
        )
        .args(&["build", "recipe.yaml"]);
    t.run().success();
    assert_eq!(t.built_lines("log.txt"), ["hi one", "hi two", "done"]);
}

#[test]
fn aliases_of_a_parent_recipe_are_available_to_the_child() {
    let t = Test::new()
        .file(
            "base.yaml",
            r#"
            aliases:
              say:
                - exec_local: echo "@1" >> said.txt
            "#,
        )
        .file(
            "recipe.yaml",
            r#"
            extend: base.yaml
            setup:
              - s:
                  - m:
                      - say: from child
            "#,
        )
        .args(&["build", "recipe.yaml"]);
    t.run().success();
    assert_eq!(t.built("said.txt"), "from child\n");
}

#[test]
fn an_alias_called_with_the_wrong_number_of_arguments_is_a_recipe_error() {
    let tree = |call: &str| {
        Test::new()
            .file(
                "recipe.yaml",
                &format!(
                    r#"
                    aliases:
                      two:
                        - exec_local: echo "@1 @2" > out.txt
                    setup:
                      - s:
                          - m:
                              - {call}
                    "#
                ),
            )
            .args(&["build", "recipe.yaml"])
    };
    for call in ["two: [a]", "two: [a, b, c]", "two:"] {
        let t = tree(call);
        let run = t.run();
        run.code(3).stderr_has("alias `two` takes 2 arguments");
        assert!(!t.exists("build/recipe/out.txt"));
    }
    tree("two: [a, b]").run().success();
}
