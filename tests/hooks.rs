//! Hooks: `on_<section>_init`, `on_<section>_clean`, and a step's `on_init` / `on_clean`, in the
//! order they run, also after a failure.

use crate::common::Test;

/// Every hook and microstep appends its name to `hooks.log` in the build dir. `fail` makes the
/// microstep `setup/second/work` fail after logging.
fn hooks_recipe(fail: bool) -> Test {
    let failing = if fail { "; exit 1" } else { "" };
    Test::new()
        .file(
            "recipe.yaml",
            r#"
            bootstrap:
              - boot
            setup:
              - first
              - second
            export:
              - pack:
                  - tar:
                      - exec_local: echo export >> hooks.log
            "#,
        )
        .file(
            "steps/bootstrap/boot.yaml",
            r#"
            - make:
                - on_bootstrap_clean:
                    - exec_local: echo bootstrap_clean >> hooks.log
                - exec_local: echo bootstrap >> hooks.log
            "#,
        )
        .file(
            "steps/setup/first.yaml",
            r#"
            - who: first
            - prepare:
                - on_setup_init:
                    - exec_local: echo "setup_init by {{who}}" >> hooks.log
                - on_setup_clean:
                    - exec_local: echo "setup_clean declared first, by {{who}}" >> hooks.log
                - exec_local: echo first >> hooks.log
            "#,
        )
        .file(
            "steps/setup/second.yaml",
            &format!(
                r#"
                - work:
                    - on_setup_clean:
                        - exec_local: echo "setup_clean declared second" >> hooks.log
                    - on_init:
                        - exec_local: echo second_init >> hooks.log
                    - on_clean:
                        - exec_local: echo second_clean >> hooks.log
                    - exec_local: echo second >> hooks.log{failing}
                - after_work:
                    - exec_local: echo after_work >> hooks.log
                "#
            ),
        )
        .args(&["build", "recipe.yaml"])
}

#[test]
fn hooks_run_in_order_and_clean_hooks_in_reverse_declaration_order() {
    let t = hooks_recipe(false);
    let run = t.run();
    run.success();
    assert_eq!(
        t.built_lines("hooks.log"),
        [
            "bootstrap",
            "bootstrap_clean",
            "setup_init by first",
            "first",
            "second_init",
            "second",
            "after_work",
            "second_clean",
            "setup_clean declared second",
            "setup_clean declared first, by first",
            "export",
        ]
    );
    assert_eq!(
        run.steps(),
        [
            "bootstrap/boot/make",
            "bootstrap/_clean_bootstrap/_clean_0_make",
            "setup/_init_setup/_init_0_prepare",
            "setup/first/prepare",
            "setup/second/_init_0_work",
            "setup/second/work",
            "setup/second/after_work",
            "setup/second/_clean_0_work",
            "setup/_clean_setup/_clean_1_work",
            "setup/_clean_setup/_clean_0_prepare",
            "export/pack/tar",
        ]
    );
    run.stdout_has("Step 9 : setup/_clean_setup/_clean_1_work\n")
        .stdout_has("Step 10 : setup/_clean_setup/_clean_0_prepare\n");
}

#[test]
fn clean_hooks_still_run_after_a_failing_microstep() {
    let t = hooks_recipe(true);
    let run = t.run();
    run.code(1).stderr_has("setup/second/work");
    assert_eq!(
        t.built_lines("hooks.log"),
        [
            "bootstrap",
            "bootstrap_clean",
            "setup_init by first",
            "first",
            "second_init",
            "second",
            // the failing step's own clean hook, then the open section's, newest first
            "second_clean",
            "setup_clean declared second",
            "setup_clean declared first, by first",
        ]
    );
    run.stdout_lacks("Successfully built");
}

#[test]
fn a_failing_clean_hook_fails_the_build() {
    let t = Test::new()
        .file(
            "recipe.yaml",
            r#"
            setup:
              - s:
                  - m:
                      - on_setup_clean:
                          - exec_local: exit 3
                      - exec_local: echo ran >> log.txt
            export:
              - e:
                  - m:
                      - exec_local: echo exported >> log.txt
            "#,
        )
        .args(&["build", "recipe.yaml"]);
    t.run().code(1).stderr_has("setup/_clean_setup/_clean_0_m");
    assert_eq!(t.built_lines("log.txt"), ["ran"]);
}

#[test]
fn hooks_run_with_the_arguments_of_the_step_call() {
    let t = Test::new()
        .file(
            "recipe.yaml",
            r#"
            setup:
              - mount_fs:
                  - target: /mnt/alice
            "#,
        )
        .file(
            "steps/setup/mount_fs.yaml",
            r#"
            - target: /mnt/default
            - mount:
                - on_setup_init:
                    - exec_local: echo "section init {{target}}" >> hooks.log
                - on_setup_clean:
                    - exec_local: echo "section clean {{target}}" >> hooks.log
                - on_init:
                    - exec_local: echo "step init {{target}}" >> hooks.log
                - on_clean:
                    - exec_local: echo "step clean {{target}}" >> hooks.log
                - exec_local: echo "mount {{target}}" >> hooks.log
            "#,
        )
        .args(&["build", "recipe.yaml"]);
    t.run().success();
    assert_eq!(
        t.built_lines("hooks.log"),
        [
            "section init /mnt/alice",
            "step init /mnt/alice",
            "mount /mnt/alice",
            "step clean /mnt/alice",
            "section clean /mnt/alice",
        ]
    );
}

#[test]
fn hooks_of_microsteps_left_out_of_a_selection_do_not_run() {
    let t = Test::new()
        .file(
            "recipe.yaml",
            r#"
            setup:
              - two:
                  - second
                  - third
            "#,
        )
        .file(
            "steps/two.yaml",
            r#"
            - first:
                - on_setup_clean:
                    - exec_local: echo first_clean >> hooks.log
                - on_init:
                    - exec_local: echo first_init >> hooks.log
                - exec_local: echo first >> hooks.log
            - second:
                - on_setup_clean:
                    - exec_local: echo second_clean >> hooks.log
                - exec_local: echo second >> hooks.log
            - third:
                - on_setup_clean:
                    - exec_local: echo third_clean >> hooks.log
                - exec_local: echo third >> hooks.log
            "#,
        )
        .args(&["build", "recipe.yaml"]);
    t.run().success();
    assert_eq!(
        t.built_lines("hooks.log"),
        ["second", "third", "third_clean", "second_clean"]
    );
}
