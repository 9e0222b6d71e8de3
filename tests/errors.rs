//! Exit codes, and what the user reads when something is wrong: a failing command names its
//! microstep, context, status and last output lines; every bad-input error points at
//! `file:line:column`, shows the line with a caret, and exits 3 (snapshots).

use insta::assert_snapshot;

use crate::common::Test;

/// Runs `cairn build recipe.yaml` on a bad tree: checks the exit code, that nothing was built
/// and that the message points at a place with a caret, and returns stderr for a snapshot.
#[track_caller]
fn bad_recipe(t: Test) -> String {
    let t = t.args(&["build", "recipe.yaml"]);
    let run = t.run();
    run.code(3);
    assert!(run.stdout.is_empty(), "nothing runs\n{run}");
    assert!(!t.exists("build"), "nothing is built\n{run}");
    let stderr = run.normalized_stderr();
    let location = stderr
        .lines()
        .find_map(|l| l.trim_start().strip_prefix("--> "));
    let location = location.unwrap_or_else(|| panic!("no `--> file:line:column`\n{run}"));
    let mut parts = location.rsplitn(3, ':');
    let col = parts.next().and_then(|c| c.parse::<usize>().ok());
    let line = parts.next().and_then(|l| l.parse::<usize>().ok());
    assert!(
        col.is_some() && line.is_some(),
        "not file:line:column: {location}\n{run}"
    );
    let caret = |l: &&str| l.contains(" | ") && l.trim_end().ends_with('^');
    assert!(
        stderr.lines().any(|l| caret(&l)),
        "no caret under the line\n{run}"
    );
    stderr
}

#[test]
fn malformed_yaml() {
    let stderr = bad_recipe(Test::new().file(
        "recipe.yaml",
        r#"
        global:
          mirror: http://deb.debian.org
          packages: [vim, curl
        setup:
          - install
        "#,
    ));
    assert_snapshot!(stderr);
}

#[test]
fn malformed_yaml_in_a_step_file() {
    let stderr = bad_recipe(
        Test::new()
            .file("recipe.yaml", "setup:\n  - install\n")
            .file(
                "steps/setup/install.yaml",
                r#"
            - packages: vim
            - install:
               - exec_in: apt-get install -y {{packages}}
              - exec_in: apt-get clean
            "#,
            ),
    );
    assert_snapshot!(stderr);
}

#[test]
fn unknown_recipe_key() {
    let stderr = bad_recipe(Test::new().file(
        "recipe.yaml",
        r#"
        global:
          user_name: alice
        setpu:
          - install
        "#,
    ));
    assert_snapshot!(stderr);
}

#[test]
fn unknown_command_in_a_microstep() {
    let stderr = bad_recipe(
        Test::new()
            .file("recipe.yaml", "setup:\n  - install\n")
            .file(
                "steps/setup/install.yaml",
                r#"
        - install:
            - exec_in: apt-get update
            - exec_inn: apt-get install -y vim
        "#,
            ),
    );
    assert_snapshot!(stderr);
}

#[test]
fn unknown_variable() {
    let stderr = bad_recipe(Test::new().file(
        "recipe.yaml",
        r#"
        global:
          user_name: alice
        setup:
          - add_user:
              - create:
                  - exec_local: |
                      mkdir -p home
                      echo "welcome" > "home/{{usr_name}}"
        "#,
    ));
    assert_snapshot!(stderr);
}

#[test]
fn missing_step_file() {
    let stderr = bad_recipe(
        Test::new()
            .file("base/base.yaml", "global:\n  a: b\n")
            .file(
                "recipe.yaml",
                r#"
                extend: base/base.yaml
                setup:
                  - configure_network
                "#,
            ),
    );
    for searched in [
        "steps/setup/configure_network.yaml",
        "steps/configure_network.yaml",
        "base/steps/setup/configure_network.yaml",
        "base/steps/configure_network.yaml",
    ] {
        assert!(
            stderr.contains(searched),
            "{searched} not listed:\n{stderr}"
        );
    }
    assert_snapshot!(stderr);
}

#[test]
fn unknown_microstep_in_a_selection() {
    let stderr = bad_recipe(
        Test::new()
            .file(
                "recipe.yaml",
                r#"
                setup:
                  - add_user:
                      - passwd
                      - homedir
                "#,
            )
            .file(
                "steps/setup/add_user.yaml",
                r#"
                - passwd:
                    - exec_in: echo passwd
                - home:
                    - exec_in: echo home
                "#,
            ),
    );
    assert_snapshot!(stderr);
}

#[test]
fn wrong_alias_arity() {
    let stderr = bad_recipe(Test::new().file(
        "recipe.yaml",
        r#"
        aliases:
          write_file:
            - exec_local: printf '%s\n' "@2" > "@1"
        setup:
          - s:
              - m:
                  - write_file: [motd]
        "#,
    ));
    assert_snapshot!(stderr);
}

#[test]
fn extend_cycle() {
    let stderr = bad_recipe(
        Test::new()
            .file("recipe.yaml", "extend: parent.yaml\nsetup: []\n")
            .file("parent.yaml", "extend: grandparent.yaml\n")
            .file("grandparent.yaml", "# the root?\nextend: recipe.yaml\n"),
    );
    assert_snapshot!(stderr);
}

#[test]
fn a_failing_command_names_microstep_context_status_and_last_output() {
    let t = Test::new()
        .file(
            "recipe.yaml",
            r#"
            global:
              in_context:
                cmd: bash
                workdir: "{{build_dir}}"
            setup:
              - install:
                  - packages:
                      - exec_in: |
                          echo "reading package lists"
                          echo "E: unable to locate package vimm" >&2
                          exit 100
                  - never:
                      - exec_in: touch never
            "#,
        )
        .args(&["build", "recipe.yaml"]);
    let run = t.run();
    run.code(1)
        .stderr_has("setup/install/packages")
        .stderr_has("context `in`")
        .stderr_has("status 100")
        .stderr_has("[in] reading package lists")
        .stderr_has("[in] E: unable to locate package vimm")
        .stderr_has("recipe.yaml:9:")
        .stdout_lacks("Successfully built");
    assert!(!t.exists("build/recipe/never"));
}

#[test]
fn a_missing_recipe_is_a_recipe_error() {
    Test::new()
        .args(&["build", "nothing.yaml"])
        .run()
        .code(3)
        .stderr_has("nothing.yaml");
}

#[test]
fn bad_usage_exits_2() {
    let t = Test::new().file("recipe.yaml", "setup: []\n");
    for args in [
        &["build", "recipe.yaml", "-g", "novalue"][..],
        &["build", "recipe.yaml", "-g", "=value"],
        &["build", "recipe.yaml", "--no-such-option"],
        &["build"],
        &["no-such-command"],
    ] {
        let run = Test::new()
            .file("recipe.yaml", "setup: []\n")
            .args(args)
            .run();
        run.code(2);
        assert!(!run.stderr.is_empty(), "{run}");
    }
    let run = t.args(&["build", "recipe.yaml", "-g", "novalue"]).run();
    run.stderr_has("novalue").stderr_has("KEY=VALUE");
}

#[test]
fn success_exits_0() {
    Test::new()
        .file(
            "recipe.yaml",
            "setup:\n  - s:\n      - m:\n          - exec_local: \"true\"\n",
        )
        .args(&["build", "recipe.yaml"])
        .run()
        .success()
        .stdout_has("Successfully built 'recipe.yaml'");
}
