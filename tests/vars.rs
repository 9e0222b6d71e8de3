//! Variables: where a value comes from, which one wins, and how values refer to each other.

use crate::common::Test;

/// A parent and a child recipe and a step file that between them set `d1`..`d5` at more and
/// more levels, plus a step default for the built-in `recipe_name`. The step writes every value
/// to `vars.txt` in the build dir.
fn precedence_tree() -> Test {
    Test::new()
        .file(
            "base.yaml",
            r#"
            global:
              d2: parent
              d3: parent
              d4: parent
              d5: parent
            "#,
        )
        .file(
            "recipe.yaml",
            r#"
            extend: base.yaml
            global:
              d3: child
              d4: child
              d5: child
            setup:
              - show:
                  - d5: argument
            "#,
        )
        .file(
            "steps/setup/show.yaml",
            r#"
            - recipe_name: step-default
            - d1: step-default
            - d2: step-default
            - d3: step-default
            - d4: step-default
            - d5: step-default
            - write:
                - exec_local: |
                    printf '%s\n' "recipe_name={{recipe_name}}" "d1={{d1}}" "d2={{d2}}" "d3={{d3}}" "d4={{d4}}" "d5={{d5}}" > vars.txt
            "#,
        )
}

#[test]
fn each_level_overrides_the_one_below() {
    let t = precedence_tree().args(&["build", "recipe.yaml", "-g", "d4=cli", "-g", "d5=cli"]);
    t.run().success();
    assert_eq!(
        t.built_lines("vars.txt"),
        [
            "recipe_name=step-default", // step default over built-in
            "d1=step-default",          // step default alone
            "d2=parent",                // parent global over step default
            "d3=child",                 // child global over parent global
            "d4=cli",                   // -g over child global
            "d5=argument",              // step-call argument over -g
        ]
    );
}

#[test]
fn without_overrides_the_lower_levels_show_through() {
    let t = Test::new()
        .file(
            "recipe.yaml",
            r#"
            global:
              from_global: g
            setup:
              - show
            "#,
        )
        .file(
            "steps/setup/show.yaml",
            r#"
            - from_default: d
            - write:
                - exec_local: echo "{{recipe_name}} {{from_default}} {{from_global}}" > vars.txt
            "#,
        )
        .args(&["build", "recipe.yaml"]);
    t.run().success();
    assert_eq!(t.built("vars.txt"), "recipe d g\n");
}

#[test]
fn cli_globals_take_equals_or_colon_and_every_pair_is_kept() {
    let t = Test::new()
        .file(
            "recipe.yaml",
            r#"
            global:
              a: recipe
              b: recipe
              c: recipe
              d: recipe
            setup:
              - show:
                  - write:
                      - exec_local: printf '%s\n' "{{a}}" "{{b}}" "{{c}}" "{{d}}" > vars.txt
            "#,
        )
        .args(&[
            "build",
            "recipe.yaml",
            "-g",
            "a=1",
            "-g",
            "b:2",
            "--global",
            "c=x:y=z",
            "--global=d:http://host/p?q=1",
        ]);
    t.run().success();
    assert_eq!(
        t.built_lines("vars.txt"),
        ["1", "2", "x:y=z", "http://host/p?q=1"]
    );
}

#[test]
fn the_last_cli_value_of_a_key_wins() {
    let t = Test::new()
        .file(
            "recipe.yaml",
            r#"
            setup:
              - show:
                  - write:
                      - exec_local: echo "{{a}}" > vars.txt
            "#,
        )
        .args(&["build", "recipe.yaml", "-g", "a=first", "-g", "a=second"]);
    t.run().success();
    assert_eq!(t.built("vars.txt"), "second\n");
}

#[test]
fn values_refer_to_other_variables_resolved_at_their_final_values() {
    // `file` is defined through `dir`, which is defined through `base`; overriding `base` on the
    // command line changes both, and a step default may use a global.
    let t = Test::new()
        .file(
            "recipe.yaml",
            r#"
            global:
              base: /srv
              dir: "{{base}}/data"
              file: "{{dir}}/{{name}}.txt"
              name: "{{recipe_name}}"
            setup:
              - show
            "#,
        )
        .file(
            "steps/show.yaml",
            r#"
            - copy: "{{file}}.bak"
            - write:
                - exec_local: printf '%s\n' "{{file}}" "{{copy}}" > vars.txt
            "#,
        )
        .args(&["build", "recipe.yaml", "-g", "base=/opt"]);
    t.run().success();
    assert_eq!(
        t.built_lines("vars.txt"),
        ["/opt/data/recipe.txt", "/opt/data/recipe.txt.bak"]
    );
}

#[test]
fn a_step_argument_naming_itself_means_the_binding_below() {
    let recipe = r#"
        global:
          user: alice
        setup:
          - show:
              - user: "{{user}}-x"
          - show_default:
              - user: "{{user}}-y"
    "#;
    let steps = [
        (
            "steps/setup/show.yaml",
            r#"
            - user: from-default
            - write:
                - exec_local: echo "{{user}}" >> users.txt
            "#,
        ),
        (
            "steps/setup/show_default.yaml",
            r#"
            - write:
                - exec_local: echo "{{user}}" >> users.txt
            "#,
        ),
    ];
    let tree = || {
        steps
            .iter()
            .fold(Test::new().file("recipe.yaml", recipe), |t, (p, c)| {
                t.file(p, c)
            })
    };

    let t = tree().args(&["build", "recipe.yaml"]);
    t.run().success();
    assert_eq!(t.built_lines("users.txt"), ["alice-x", "alice-y"]);

    let t = tree().args(&["build", "recipe.yaml", "-g", "user=carol"]);
    t.run().success();
    assert_eq!(t.built_lines("users.txt"), ["carol-x", "carol-y"]);
}

#[test]
fn a_step_argument_naming_itself_over_a_step_default() {
    let t = Test::new()
        .file(
            "recipe.yaml",
            r#"
            setup:
              - show:
                  - user: "{{user}}-x"
            "#,
        )
        .file(
            "steps/setup/show.yaml",
            r#"
            - user: bob
            - write:
                - exec_local: echo "{{user}}" > user.txt
            "#,
        )
        .args(&["build", "recipe.yaml"]);
    t.run().success();
    assert_eq!(t.built("user.txt"), "bob-x\n");
}

#[test]
fn shell_variables_and_escaped_braces_are_left_alone() {
    let t = Test::new()
        .file(
            "recipe.yaml",
            r#"
            global:
              x: cairn
            setup:
              - show:
                  - write:
                      - exec_local: |
                          x=shell
                          echo "${x} $x {{x}} \{{x}}" > out.txt
            "#,
        )
        .args(&["build", "recipe.yaml"]);
    t.run().success();
    assert_eq!(t.built("out.txt"), "shell shell cairn {{x}}\n");
}

#[test]
fn built_in_variables_name_the_recipe_and_its_dirs() {
    let t = Test::new()
        .file(
            "sub/my_recipe.yaml",
            r#"
            setup:
              - show:
                  - write:
                      - exec_local: printf '%s\n' "{{recipe_name}}" "{{recipe_dir}}" "{{build_dir}}" "$PWD" "{{checkpointing_enabled}}" > builtins.txt
            "#,
        )
        .args(&["build", "sub/my_recipe.yaml"]);
    t.run().success();
    let lines: Vec<String> = t
        .read("build/my_recipe/builtins.txt")
        .lines()
        .map(str::to_string)
        .collect();
    let root = t.path().canonicalize().unwrap();
    let canon = |p: &str| std::path::Path::new(p).canonicalize().unwrap();
    assert_eq!(lines[0], "my_recipe");
    assert_eq!(canon(&lines[1]), root.join("sub"));
    assert_eq!(canon(&lines[2]), root.join("build/my_recipe"));
    // The local context runs in the build dir.
    assert_eq!(canon(&lines[3]), root.join("build/my_recipe"));
    assert_eq!(lines[4], "false");
}

#[test]
fn build_dir_option_moves_the_build() {
    let t = Test::new()
        .file(
            "recipe.yaml",
            r#"
            setup:
              - show:
                  - write:
                      - exec_local: echo "{{build_dir}}" > where.txt
            "#,
        )
        .args(&["build", "recipe.yaml", "-b", "elsewhere/b"]);
    t.run().success();
    assert!(!t.exists("build"), "the default build dir is not used");
    let written = t.read("elsewhere/b/where.txt");
    let written = std::path::Path::new(written.trim()).canonicalize().unwrap();
    assert_eq!(
        written,
        t.path().canonicalize().unwrap().join("elsewhere/b")
    );
}

#[test]
fn a_cli_value_naming_itself_builds_on_the_recipes_value() {
    let t = Test::new()
        .file(
            "recipe.yaml",
            r#"
            global:
              path: /usr/bin
            setup:
              - show:
                  - write:
                      - exec_local: echo "{{path}}" > path.txt
            "#,
        )
        .args(&["build", "recipe.yaml", "-g", "path={{path}}:/opt/bin"]);
    t.run().success();
    assert_eq!(t.built("path.txt"), "/usr/bin:/opt/bin\n");
}

#[test]
fn a_value_naming_itself_with_nothing_below_is_a_recipe_error() {
    let t = Test::new()
        .file(
            "recipe.yaml",
            r#"
            global:
              path: "{{path}}:/opt/bin"
            setup:
              - show:
                  - write:
                      - exec_local: echo "{{path}}" > path.txt
            "#,
        )
        .args(&["build", "recipe.yaml"]);
    let run = t.run();
    run.code(3)
        .stderr_has("the value of `path` uses `path`, but no lower level sets it")
        .stderr_has("recipe.yaml:2:10");
    assert!(!run.stderr.contains("did you mean `path`"), "{run}");
}

/// Steps share the globals' resolved values, except where a step binds a variable a global's
/// value uses: there the step's own value counts, in that step only.
#[test]
fn a_global_that_uses_a_step_variable_resolves_per_step() {
    let t = Test::new()
        .file(
            "recipe.yaml",
            r#"
            global:
              x: global
              tagged: "{{x}}-{{y}}"
              y: g
            setup:
              - show:
                  - x: argument
              - show
              - other
              - show
            "#,
        )
        .file(
            "steps/setup/show.yaml",
            r#"
            - write:
                - exec_local: echo "{{tagged}}" >> vars.txt
            "#,
        )
        .file(
            "steps/setup/other.yaml",
            r#"
            - y: step-default-under-the-global
            - write:
                - exec_local: echo "other {{tagged}}" >> vars.txt
            "#,
        )
        .args(&["build", "recipe.yaml"]);
    t.run().success();
    assert_eq!(
        t.built_lines("vars.txt"),
        ["argument-g", "global-g", "other global-g", "global-g"]
    );
}

/// A driver's own variables sit under the recipe's globals and `-g`; what an operation is
/// called with (`checkpoint_id`) is above everything, so a recipe cannot point a driver at
/// another checkpoint.
#[test]
fn driver_variables_give_way_to_globals_but_the_checkpoint_id_does_not() {
    let driver = r#"
        variables:
          store: "{{build_dir}}/store"
          label: driver
        create:
          - exec_local: mkdir -p {{sh store}} && echo "{{label}} {{checkpoint_id}}" >> {{sh store}}/log && touch {{sh store}}/{{sh checkpoint_id}}
        apply:
          - exec_local: "true"
        list:
          - exec_local: ls {{sh store}} | grep -v log || true
        delete:
          - exec_local: rm -f {{sh store}}/{{sh checkpoint_id}}
        "#;
    let recipe = r#"
        checkpoint: logging
        global:
          label: recipe
          checkpoint_id: "0000000000000000000000000000000000000000"
        setup:
          - s:
              - m:
                  - exec_local: "true"
        "#;
    let t = Test::new()
        .file("drivers/logging.yaml", driver)
        .file("recipe.yaml", recipe)
        .args(&["build", "recipe.yaml", "-c"]);
    t.run().success();
    let ids = t.cairn(&["build", "recipe.yaml", "-l", "-n"]);
    ids.success();
    let short = ids
        .stdout
        .split_whitespace()
        .next()
        .unwrap_or_default()
        .to_string();
    let log = t.built("store/log");
    assert!(log.starts_with("recipe "), "{log}");
    assert!(short.len() == 12 && log.contains(&short), "{log} {short}");
    assert!(!log.contains("0000000000"), "{log}");
    t.cairn(&["build", "recipe.yaml", "-c", "--fresh", "-g", "label=cli"])
        .success();
    assert!(
        t.built("store/log").contains("\ncli "),
        "{}",
        t.built("store/log")
    );
}
