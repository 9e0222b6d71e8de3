//! Commands: pipes between contexts, rescue, test, group, exported variables, `cd`, errexit,
//! breakpoints and reloading a context.

use crate::common::Test;

/// A recipe whose `in` context is a bash in `<build dir>/in` and whose `out` context is a bash
/// in `<build dir>/out`, running one microstep `setup/s/m` made of `commands` (YAML list items
/// indented by 10 spaces).
fn recipe(global_extra: &str, commands: &str) -> String {
    format!(
        r#"global:
  out_context:
    cmd: bash
    workdir: "{{{{build_dir}}}}/out"
  in_context:
    cmd: bash
    workdir: "{{{{build_dir}}}}/in"
{global_extra}
bootstrap:
  - dirs:
      - make:
          - exec_local: mkdir -p out in
setup:
  - s:
      - m:
{commands}"#
    )
}

fn build(global_extra: &str, commands: &str) -> Test {
    Test::new()
        .file("recipe.yaml", &recipe(global_extra, commands))
        .args(&["build", "recipe.yaml"])
}

#[test]
fn pipe_carries_output_of_one_context_to_the_input_of_another() {
    let t = build(
        "",
        r#"
          - pipe:
              - exec_out: printf 'line one\nline two\n'
              - exec_in: cat > piped.txt
          - pipe:
              - exec_out: printf 'no newline at the end'
              - exec_in: cat > unterminated.txt
          - pipe:
              - exec_local: printf ''
              - exec_in: cat > empty.txt
        "#,
    );
    let run = t.run();
    run.success();
    assert_eq!(t.built("in/piped.txt"), "line one\nline two\n");
    assert_eq!(t.built("in/unterminated.txt"), "no newline at the end");
    assert_eq!(t.built("in/empty.txt"), "");
    // What goes through the pipe is data, not output for the user.
    run.stdout_lacks("line one");
}

#[test]
fn pipe_carries_binary_data_byte_for_byte() {
    // A few hundred KB of every byte value, in an order with no pattern a line reader could
    // lean on: NULs, CRs, long runs without a newline, and no newline at the end.
    let mut state: u32 = 0x1234_5678;
    let mut blob: Vec<u8> = (0..=255u8).collect();
    blob.extend((0..300_000).map(|_| {
        state ^= state << 13;
        state ^= state >> 17;
        state ^= state << 5;
        (state >> 24) as u8
    }));
    blob.extend(std::iter::repeat_n(b'x', 70_000));
    blob.extend(b"\r\n\0end");
    let t = build(
        "",
        r#"
          - pipe:
              - exec_out: cat "{{recipe_dir}}/blob.bin"
              - exec_in: cat > copy.bin
          - exec_in: echo after > after.txt
        "#,
    )
    .bytes("blob.bin", &blob);
    t.run().success();
    let copy = t.read_bytes("build/recipe/in/copy.bin");
    assert_eq!(copy.len(), blob.len(), "sizes differ");
    assert!(copy == blob, "contents differ");
    // The context's shell is still in step after the data.
    assert_eq!(t.built("in/after.txt"), "after\n");
}

#[test]
fn a_failing_side_of_a_pipe_fails_the_microstep() {
    let t = build(
        "",
        r#"
          - pipe:
              - exec_out: echo data; exit 4
              - exec_in: cat > piped.txt
        "#,
    );
    t.run()
        .code(1)
        .stderr_has("command in context `out` exited with status 4");
    assert!(
        !t.exists("build/recipe/in/piped.txt"),
        "the reading side never ran"
    );
}

#[test]
fn rescue_runs_its_second_command_only_when_the_first_fails() {
    let t = build(
        "",
        r#"
          - rescue:
              - exec_local: "false"
              - exec_local: echo rescued >> log.txt
          - rescue:
              - exec_local: echo first >> log.txt
              - exec_local: echo not-rescued >> log.txt
          - rescue:
              - exec_in: exit 3
              - group:
                  - exec_out: echo rescued-out >> "{{build_dir}}/log.txt"
                  - exec_local: echo rescued-local >> log.txt
        "#,
    );
    t.run().success();
    assert_eq!(
        t.built_lines("log.txt"),
        ["rescued", "first", "rescued-out", "rescued-local"]
    );
}

#[test]
fn a_failing_rescue_fails_the_microstep() {
    build(
        "",
        r#"
          - rescue:
              - exec_local: "false"
              - exec_local: exit 9
        "#,
    )
    .run()
    .code(1)
    .stderr_has("exited with status 9");
}

#[test]
fn test_runs_then_or_else() {
    let t = build(
        "",
        r#"
          - exec_local: touch present
          - test:
              - exec_local: test -e present
              - exec_local: echo then-1 >> log.txt
              - exec_local: echo else-1 >> log.txt
          - test:
              - exec_local: test -e absent
              - exec_local: echo then-2 >> log.txt
              - exec_local: echo else-2 >> log.txt
          - test:
              - exec_local: test -e present
              - exec_local: echo then-only-3 >> log.txt
          - test:
              - exec_local: test -e absent
              - exec_local: echo then-only-4 >> log.txt
          - exec_local: echo end >> log.txt
        "#,
    );
    t.run().success();
    assert_eq!(
        t.built_lines("log.txt"),
        ["then-1", "else-2", "then-only-3", "end"]
    );
}

#[test]
fn test_condition_and_branches_may_use_other_contexts() {
    let t = build(
        "",
        r#"
          - exec_in: touch marker
          - test:
              - exec_in: test -e marker
              - group:
                  - exec_local: echo local >> log.txt
                  - exec_out: echo out >> "{{build_dir}}/log.txt"
                  - exec_in: echo in >> "{{build_dir}}/log.txt"
        "#,
    );
    t.run().success();
    assert_eq!(t.built_lines("log.txt"), ["local", "out", "in"]);
}

#[test]
fn a_group_stops_at_its_first_failing_command() {
    let t = build(
        "",
        r#"
          - group:
              - exec_out: echo one >> "{{build_dir}}/log.txt"
              - exec_in: exit 5
              - exec_local: echo never >> log.txt
        "#,
    );
    t.run()
        .code(1)
        .stderr_has("command in context `in` exited with status 5");
    assert_eq!(t.built_lines("log.txt"), ["one"]);
}

#[test]
fn exported_variables_persist_within_their_context_only() {
    let commands = r#"
          - exec_local: export CAIRN_TEST_VAR=exported; unexported=plain
          - exec_in: export CAIRN_TEST_IN=in-value
      - later:
          - exec_local: echo "local=${CAIRN_TEST_VAR:-unset} ${unexported:-unset} ${CAIRN_TEST_IN:-unset}" >> env.txt
          - exec_out: echo "out=${CAIRN_TEST_VAR:-unset}" >> "{{build_dir}}/env.txt"
          - exec_in: echo "in=${CAIRN_TEST_VAR:-unset} ${CAIRN_TEST_IN:-unset}" >> "{{build_dir}}/env.txt"
export:
  - next_section
"#;
    let t = Test::new()
        .file("recipe.yaml", &recipe("", commands))
        .file(
            "steps/export/next_section.yaml",
            r#"
            - check:
                - exec_local: echo "export=${CAIRN_TEST_VAR:-unset}" >> env.txt
            "#,
        )
        .args(&["build", "recipe.yaml"]);
    t.run().success();
    assert_eq!(
        t.built_lines("env.txt"),
        [
            // seen by a later microstep of the same context; a plain shell variable is not
            "local=exported unset unset",
            // not seen by another context
            "out=unset",
            "in=unset in-value",
            // and still there in a later section
            "export=exported",
        ]
    );
}

#[test]
fn cd_persists_within_a_context() {
    let t = build(
        "",
        r#"
          - exec_local: mkdir -p sub/dir && cd sub/dir
          - exec_local: pwd > here.txt
          - exec_in: pwd > "{{build_dir}}/in-here.txt"
        "#,
    );
    t.run().success();
    let canon = |p: &str| std::path::Path::new(p.trim()).canonicalize().unwrap();
    let build_dir = t.build_dir("recipe").canonicalize().unwrap();
    assert_eq!(
        canon(&t.built("sub/dir/here.txt")),
        build_dir.join("sub/dir")
    );
    assert_eq!(canon(&t.built("in-here.txt")), build_dir.join("in"));
}

#[test]
fn errexit_stops_a_multi_line_command_at_its_first_failing_line() {
    let t = build(
        "",
        r#"
          - exec_local: |
              echo one >> log.txt
              false
              echo two >> log.txt
          - exec_local: echo next-command >> log.txt
        "#,
    );
    let run = t.run();
    run.code(1).stderr_has("exited with status 1");
    assert_eq!(t.built_lines("log.txt"), ["one"]);
}

#[test]
fn errexit_covers_every_line_of_a_pipeline() {
    // pipefail: a failure on the left of a pipe is a failure.
    let t = build(
        "",
        r#"
          - exec_local: |
              false | cat
              echo after >> log.txt
        "#,
    );
    t.run().code(1);
    assert!(!t.exists("build/recipe/log.txt"));
}

#[test]
fn exit_ends_a_command_with_its_status() {
    let t = build(
        "",
        r#"
          - exec_local: |
              echo one >> log.txt
              [ -e log.txt ] && exit 0
              echo not-reached >> log.txt
          - exec_local: echo next-command >> log.txt
          - rescue:
              - exec_in: exit 7
              - exec_local: echo rescued >> log.txt
      - last:
          - exec_local: echo before >> log.txt; exit 3; echo after >> log.txt
        "#,
    );
    t.run()
        .code(1)
        .stderr_has("setup/s/last")
        .stderr_has("exited with status 3");
    assert_eq!(
        t.built_lines("log.txt"),
        ["one", "next-command", "rescued", "before"]
    );
}

#[test]
fn shell_errexit_false_lets_a_command_go_on_after_a_failing_line() {
    let t = build(
        "  shell_errexit: false",
        r#"
          - exec_local: |
              echo one >> log.txt
              false
              echo two >> log.txt
        "#,
    );
    t.run().success();
    assert_eq!(t.built_lines("log.txt"), ["one", "two"]);
}

#[test]
fn breakpoint_without_a_terminal_stops_the_build() {
    let t = build(
        "",
        r#"
          - exec_local: echo before >> log.txt
          - breakpoint: look at the rootfs now
          - exec_local: echo after >> log.txt
        "#,
    );
    let run = t.run();
    run.code(1)
        .stderr_has("breakpoint in setup/s/m")
        .stderr_has("look at the rootfs now")
        .stdout_lacks("Successfully built");
    assert_eq!(t.built_lines("log.txt"), ["before"]);
}

#[test]
fn reload_context_starts_a_fresh_shell() {
    let t = build(
        "",
        r#"
          - exec_local: export CAIRN_TEST_VAR=exported; mkdir -p sub; cd sub
          - exec_local: echo "before=${CAIRN_TEST_VAR:-unset}" >> "{{build_dir}}/log.txt"
          - exec_in: export CAIRN_TEST_IN=kept
          - reload_context: local
          - exec_local: echo "after=${CAIRN_TEST_VAR:-unset} $PWD" >> log.txt
          - exec_in: echo "in=${CAIRN_TEST_IN:-unset}" >> "{{build_dir}}/log.txt"
        "#,
    );
    t.run().success();
    let build_dir = t.build_dir("recipe").canonicalize().unwrap();
    let lines = t.built_lines("log.txt");
    assert_eq!(lines[0], "before=exported");
    // A new shell: no exported variable, back in the build dir.
    let (after, pwd) = lines[1].split_once(' ').unwrap();
    assert_eq!(after, "after=unset");
    assert_eq!(std::path::Path::new(pwd).canonicalize().unwrap(), build_dir);
    // Other contexts keep their state.
    assert_eq!(lines[2], "in=kept");
}

#[test]
fn commands_see_the_variables_of_the_calling_shell_environment() {
    let t = build(
        "",
        r#"
          - exec_local: echo "$CAIRN_FROM_ENV" > env.txt
        "#,
    )
    .env("CAIRN_FROM_ENV", "inherited");
    t.run().success();
    assert_eq!(t.built("env.txt"), "inherited\n");
}
