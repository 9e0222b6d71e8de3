//! The context protocol (docs/architecture.md): a command's end is told by a marker that no
//! command can see before it has ended, matched only as a whole line of its own; whatever a
//! command prints, traces or leaves unread, it runs to its real end with its real status.

use crate::common::Test;

/// A recipe whose microstep `setup/s/m` runs `commands` (YAML list items indented by 10
/// spaces), with `global_extra` under `global:` and `top` at the top level.
fn recipe(top: &str, global_extra: &str, commands: &str) -> String {
    format!(
        "{top}\nglobal:\n  out_context:\n    cmd: bash\n{global_extra}\nsetup:\n  - s:\n      - m:\n{commands}"
    )
}

/// The lines a context printed (`[ctx] ...`), in order.
fn context_lines(stdout: &str) -> Vec<&str> {
    stdout.lines().filter(|l| l.starts_with('[')).collect()
}

/// The lines a context printed, split into xtrace lines (its stderr) and the rest: the two
/// streams are read apart, so only the order within each is known.
fn traced_and_not<'a>(lines: &[&'a str]) -> (Vec<&'a str>, Vec<&'a str>) {
    lines
        .iter()
        .partition(|l| l.split_once(' ').is_some_and(|(_, r)| r.starts_with('+')))
}

/// Asserts that no end marker (`__CAIRN_END_` and 32 hex digits) was shown: the runner's
/// format (`__CAIRN_END_%s__`, which `set` and `declare -f` print) is no marker.
#[track_caller]
fn shows_no_marker(run: &crate::common::Run) {
    for text in [&run.stdout, &run.stderr] {
        for (i, _) in text.match_indices("__CAIRN_END_") {
            let rest = &text.as_bytes()[i + "__CAIRN_END_".len()..];
            let hex = rest.iter().take_while(|b| b.is_ascii_hexdigit()).count();
            assert!(hex < 32, "a marker was shown\n{run}");
        }
    }
}

/// Builds `commands`, which must print `after` (as `[local] after`) and end with `exit 7`: the
/// build fails with the command's own status, not the 255 of a marker read too early, and the
/// marker is never shown.
#[track_caller]
fn runs_to_its_end(commands: &str) -> crate::common::Run {
    let t = Test::new()
        .file("recipe.yaml", &recipe("", "", commands))
        .args(&["build", "recipe.yaml"]);
    let run = t.run();
    run.code(1).stderr_has("exited with status 7");
    shows_no_marker(&run);
    let lines = context_lines(&run.stdout);
    assert_eq!(lines.last(), Some(&"[local] after"), "{run}");
    assert_eq!(t.built("done"), "yes\n", "{run}");
    run
}

#[test]
fn a_command_printing_set_runs_to_its_end_with_its_own_status() {
    let run = runs_to_its_end("          - exec_local: set; echo yes > done; echo after; exit 7\n");
    // `set` printed the shell's variables, the runner's among them.
    run.stdout_has("[local] __cairn_x=");
}

#[test]
fn a_command_printing_declare_p_runs_to_its_end_with_its_own_status() {
    let run = runs_to_its_end(
        "          - exec_local: declare -p; echo yes > done; echo after; exit 7\n",
    );
    run.stdout_has("[local] declare -- __cairn_x=");
}

#[test]
fn a_command_printing_declare_f_runs_to_its_end_with_its_own_status() {
    let run = runs_to_its_end(
        "          - exec_local: declare -f; echo yes > done; echo after; exit 7\n",
    );
    run.stdout_has("[local] __cairn_run () ")
        .stdout_has("[local] __cairn_end () ");
}

#[test]
fn a_bash_x_context_traces_the_command_not_the_runner_and_keeps_its_status() {
    let t = Test::new()
        .file(
            "recipe.yaml",
            &recipe(
                "",
                "  in_context:\n    cmd: bash -x\n",
                concat!(
                    "          - exec_in: echo first > first\n",
                    "          - exec_in: echo traced; echo yes > done; exit 7\n",
                ),
            ),
        )
        .args(&["build", "recipe.yaml"]);
    let run = t.run();
    run.code(1)
        .stderr_has("exited with status 7")
        // The runner's own lines are never traced.
        .stdout_lacks("__cairn");
    let (traced, output) = traced_and_not(&context_lines(&run.stdout));
    // The shell's start (cd, CAIRN_WORKDIR) is traced too; the commands follow it.
    let first = traced.iter().position(|l| l.contains("echo first"));
    assert_eq!(
        traced[first.unwrap_or(0)..],
        [
            "[in] ++ eval 'echo first > first'",
            "[in] +++ echo first",
            "[in] ++ eval 'echo traced; echo yes > done; exit 7'",
            "[in] +++ echo traced",
            "[in] +++ echo yes",
            "[in] +++ exit 7",
        ],
        "{run}"
    );
    assert_eq!(output, ["[in] traced"], "{run}");
    assert_eq!(t.built("first"), "first\n");
    assert_eq!(t.built("done"), "yes\n");
}

#[test]
fn set_x_in_an_env_file_traces_the_commands_after_it_which_keep_their_status() {
    let t = Test::new()
        .file("steps/env/trace.sh", "set -x\nhelper() { echo helped; }\n")
        .file(
            "recipe.yaml",
            &recipe(
                "env: trace.sh",
                "",
                concat!(
                    "          - exec_local: helper > first\n",
                    "          - exec_local: helper; echo yes > done; exit 7\n",
                ),
            ),
        )
        .args(&["build", "recipe.yaml"]);
    let run = t.run();
    run.code(1)
        .stderr_has("exited with status 7")
        .stdout_lacks("__cairn");
    let (traced, output) = traced_and_not(&context_lines(&run.stdout));
    assert_eq!(
        traced,
        [
            "[local] ++ eval 'helper > first'",
            "[local] +++ helper",
            "[local] +++ echo helped",
            "[local] ++ eval 'helper; echo yes > done; exit 7'",
            "[local] +++ helper",
            "[local] +++ echo helped",
            "[local] +++ echo yes",
            "[local] +++ exit 7",
        ],
        "{run}"
    );
    assert_eq!(output, ["[local] helped"], "{run}");
    assert_eq!(t.built("first"), "helped\n");
    assert_eq!(t.built("done"), "yes\n");
}

/// Lines shaped like end markers, on both streams, with and without a status, and a piped
/// copy of them: output like any other, never the end of the command.
#[test]
fn lines_that_look_like_end_markers_are_output_not_the_end_of_the_command() {
    let fake = "__CAIRN_END_0123456789abcdef0123456789abcdef__";
    let t = Test::new()
        .file(
            "recipe.yaml",
            &recipe(
                "",
                "",
                &format!(
                    concat!(
                        "          - exec_local: printf '%s\\n' '{f} 0' '{f}' '{f} 255'\n",
                        "          - exec_local: printf '%s\\n' '{f}' '{f} 1' >&2\n",
                        "          - pipe:\n",
                        "              - exec_local: printf '%s\\n%s 0\\n%s' '{f}' '{f}' '{f}'\n",
                        "              - exec_out: cat > piped\n",
                        "          - exec_local: printf 'no newline {f} 0'\n",
                        "          - exec_local: echo yes > done; exit 200\n",
                    ),
                    f = fake
                ),
            ),
        )
        .args(&["build", "recipe.yaml"]);
    let run = t.run();
    run.code(1).stderr_has("exited with status 200");
    assert_eq!(
        context_lines(&run.stdout),
        [
            format!("[local] {fake} 0"),
            format!("[local] {fake}"),
            format!("[local] {fake} 255"),
            format!("[local] {fake}"),
            format!("[local] {fake} 1"),
            format!("[local] no newline {fake} 0"),
        ],
        "{run}"
    );
    assert_eq!(t.built("piped"), format!("{fake}\n{fake} 0\n{fake}"));
    assert_eq!(t.built("done"), "yes\n");
}

/// The second half of a pipe that reads one byte of 200 KiB leaves the rest unread; that rest
/// (here, shell commands) must not be read by the context's shell as its next commands.
#[test]
fn data_a_piped_command_leaves_unread_is_never_run_as_commands() {
    let t = Test::new()
        .file(
            "recipe.yaml",
            &recipe(
                "",
                "",
                concat!(
                    "          - pipe:\n",
                    "              - exec_local: for i in $(seq 10000); do echo 'echo pwned >> pwned'; done\n",
                    "              - exec_out: head -c 1 > first\n",
                    "          - exec_out: echo yes > done\n",
                ),
            ),
        )
        .args(&["build", "recipe.yaml"]);
    let run = t.run();
    run.success();
    assert_eq!(t.built("first"), "e");
    assert_eq!(t.built("done"), "yes\n");
    assert!(!t.exists("build/recipe/pwned"), "{run}");
}
