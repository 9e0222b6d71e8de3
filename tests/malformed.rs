//! The malformed corpus (tests/malformed/): recipe and driver files that are wrong in one way
//! each. Every one must be refused with exit 3, before anything runs, with one error that
//! points at the place (file:line:column) and says what is wrong there.

use std::fs;
use std::path::Path;

use crate::common::{Test, copy_tree, repo_root};

/// (file under tests/malformed, line:column, a piece of the message).
const RECIPES: &[(&str, &str, &str)] = &[
    (
        "atomic_not_boolean.yaml",
        "4:21",
        "`atomic` must be true or false",
    ),
    ("bad_template_block.yaml", "4:25", "bad template"),
    (
        "billion_laughs.yaml",
        "6:10",
        "aliases here expand to more than",
    ),
    ("bom_then_tab.yaml", "2:1", "tabs disallowed"),
    (
        "checkpoint_is_list.yaml",
        "1:13",
        "`checkpoint` must be a string",
    ),
    (
        "command_with_two_keys.yaml",
        "4:13",
        "a command must be a mapping with one key",
    ),
    (
        "comments_only.yaml",
        "1:1",
        "has no steps: there is nothing to build",
    ),
    (
        "document_markers_only.yaml",
        "1:1",
        "has no steps: there is nothing to build",
    ),
    ("duplicate_global.yaml", "4:3", "duplicate key `a`"),
    (
        "duplicate_inline_step.yaml",
        "5:5",
        "step `s` appears twice in section `setup`, and one of them is written in place",
    ),
    // Found by the recipe fuzz target: YAML ends lines at a lone `\r`, cairn's messages at
    // `\n`; the position is counted as the message shows it.
    (
        "lone_carriage_returns.yaml",
        "1:26",
        "this is not valid YAML",
    ),
    (
        "duplicate_microstep.yaml",
        "5:9",
        "microstep `a` is defined twice in step `s`",
    ),
    (
        "empty.yaml",
        "1:1",
        "has no steps: there is nothing to build",
    ),
    ("duplicate_section.yaml", "3:1", "duplicate key `setup`"),
    (
        "exec_local_is_list.yaml",
        "4:25",
        "`exec_local` must be a string",
    ),
    (
        "extend_is_number.yaml",
        "1:9",
        "parent recipe 5.yaml not found",
    ),
    ("extend_self.yaml", "1:9", "`extend` makes a cycle"),
    (
        "garbage_bytes.yaml",
        "2:118",
        "is not valid UTF-8 (byte 0x80)",
    ),
    ("global_is_list.yaml", "2:3", "`global` must be a mapping"),
    ("group_is_scalar.yaml", "4:20", "`group` must be a list"),
    (
        "in_context_cmd_is_list.yaml",
        "3:10",
        "`in_context.cmd` must be a string",
    ),
    (
        "in_context_is_string.yaml",
        "2:3",
        "`in_context` must be a mapping",
    ),
    ("in_context_unknown_key.yaml", "4:13", "`wrkdir`"),
    ("inputs_is_mapping.yaml", "4:21", "`inputs` must be a list"),
    (
        "invalid_utf8.yaml",
        "2:12",
        "is not valid UTF-8 (byte 0xe9)",
    ),
    (
        "key_is_a_list.yaml",
        "2:3",
        "a mapping key must be a plain string",
    ),
    (
        "mapping_value_in_scalar.yaml",
        "2:7",
        "mapping values are not allowed",
    ),
    (
        "missing_parent.yaml",
        "1:9",
        "parent recipe no_such_parent.yaml not found",
    ),
    (
        "missing_step_file.yaml",
        "2:5",
        "step `no_such_step` not found",
    ),
    (
        "nested_too_deep.yaml",
        "129:257",
        "nested more than 128 levels",
    ),
    ("nul_byte.yaml", "4:31", "unprintable character"),
    (
        "null_mapping_key.yaml",
        "2:3",
        "a global's name must be a string",
    ),
    (
        "on_checkpoint_unknown.yaml",
        "4:28",
        "unknown on_checkpoint value `sometimes`",
    ),
    ("recipe_is_list.yaml", "1:1", "a recipe must be a mapping"),
    ("recipe_is_scalar.yaml", "1:1", "a recipe must be a mapping"),
    (
        "rollback_is_scalar.yaml",
        "5:23",
        "`rollback` must be a list",
    ),
    ("second_document.yaml", "6:1", "a second YAML document"),
    (
        "section_is_mapping.yaml",
        "2:3",
        "section `setup` must be a list",
    ),
    (
        "section_is_scalar.yaml",
        "1:8",
        "section `setup` must be a list",
    ),
    (
        "self_referencing_global.yaml",
        "2:8",
        "the value of `a` uses `a`",
    ),
    (
        "step_call_args_wrong.yaml",
        "3:16",
        "a command must be a mapping",
    ),
    ("step_is_number.yaml", "2:5", "step `12` not found"),
    ("tab_indent.yaml", "2:1", "tabs disallowed"),
    (
        "trailing_content_after_flow.yaml",
        "1:11",
        "did not find expected key",
    ),
    (
        "unclosed_flow_mapping.yaml",
        "2:6",
        "while parsing a flow mapping",
    ),
    (
        "unclosed_flow_sequence.yaml",
        "2:7",
        "this is not valid YAML",
    ),
    ("unclosed_template.yaml", "4:25", "bad template"),
    ("undefined_alias.yaml", "2:6", "unknown anchor"),
    (
        "unknown_command.yaml",
        "4:13",
        "unknown command `exec_lokal`",
    ),
    (
        "unknown_microstep_key.yaml",
        "4:13",
        "unknown command `on_checkpont`",
    ),
    ("unknown_top_key.yaml", "2:1", "unknown recipe key `setpu`"),
    (
        "unknown_variable_in_command.yaml",
        "4:30",
        "unknown variable `nosuchvar`",
    ),
    (
        "unknown_variable_in_global.yaml",
        "2:7",
        "unknown variable `nosuch`",
    ),
    (
        "unterminated_double_quote.yaml",
        "6:25",
        "found unexpected end of stream",
    ),
    (
        "unterminated_single_quote.yaml",
        "6:25",
        "found unexpected end of stream",
    ),
    ("variable_cycle.yaml", "2:6", "refers to itself"),
    ("verify_is_number.yaml", "5:21", "`verify` must be a list"),
    (
        "verify_item_without_expect.yaml",
        "7:17",
        "unknown verify entry key `expct`",
    ),
];

const DRIVERS: &[(&str, &str, &str)] = &[
    (
        "description_is_list.yaml",
        "1:14",
        "`description` must be a string",
    ),
    (
        "driver_duplicate_operation.yaml",
        "4:1",
        "duplicate key `create`",
    ),
    (
        "driver_invalid_utf8.yaml",
        "1:17",
        "is not valid UTF-8 (byte 0xe9)",
    ),
    (
        "driver_is_list.yaml",
        "1:1",
        "a driver file must be a mapping",
    ),
    (
        "driver_second_document.yaml",
        "5:1",
        "a second YAML document",
    ),
    ("driver_tab.yaml", "2:1", "tabs disallowed"),
    (
        "driver_timeout_not_a_number.yaml",
        "2:14",
        "`timeout` must be a number of seconds",
    ),
    (
        "driver_unclosed_quote.yaml",
        "2:17",
        "invalid indentation in quoted scalar",
    ),
    (
        "driver_unknown_command.yaml",
        "2:5",
        "unknown command `exec_lokal`",
    ),
    (
        "driver_unknown_variable.yaml",
        "2:28",
        "unknown variable `nosuch`",
    ),
    ("missing_list.yaml", "1:1", "driver has no `list` operation"),
    (
        "operation_is_scalar.yaml",
        "1:9",
        "operation `create` must be a list",
    ),
    (
        "requires_is_scalar.yaml",
        "1:11",
        "`requires` must be a list",
    ),
    (
        "unknown_operation.yaml",
        "4:1",
        "unknown driver operation `snapshot`",
    ),
    (
        "variables_is_list.yaml",
        "2:3",
        "`variables` must be a mapping",
    ),
];

fn corpus() -> Test {
    let t = Test::new();
    copy_tree(&repo_root().join("tests/malformed"), t.path());
    t
}

#[track_caller]
fn refused(t: &Test, dir: &str, file: &str, at: &str, what: &str, args: &[&str]) {
    let cwd = t.path().join(dir);
    let mut full = args.to_vec();
    full.push(file);
    full.extend(if dir == "drivers" {
        ["--target", "../build"]
    } else {
        ["-b", "../build"]
    });
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_cairn"))
        .current_dir(&cwd)
        .args(&full)
        .env("NO_COLOR", "1")
        .stdin(std::process::Stdio::null())
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    let report = format!("{dir}/{file}: exit {:?}\n{stderr}", out.status.code());
    assert_eq!(out.status.code(), Some(3), "{report}");
    assert!(
        stderr.contains(&format!("--> {file}:{at}\n")),
        "not at {at}: {report}"
    );
    assert!(stderr.contains(what), "no {what:?}: {report}");
    assert_eq!(stderr.matches("error:").count(), 1, "one error: {report}");
    assert!(!stderr.contains("panicked"), "{report}");
    assert!(!t.path().join("build").exists(), "something ran: {report}");
}

#[test]
fn every_malformed_recipe_exits_3_at_its_place_before_anything_runs() {
    let t = corpus();
    for (file, at, what) in RECIPES {
        refused(&t, "recipes", file, at, what, &["build"]);
    }
}

#[test]
fn every_malformed_driver_exits_3_at_its_place_before_anything_runs() {
    let t = corpus();
    for (file, at, what) in DRIVERS {
        refused(&t, "drivers", file, at, what, &["driver", "check"]);
    }
}

#[test]
fn the_corpus_has_fifty_files_and_every_one_is_checked() {
    let listed = |dir: &str| -> Vec<String> {
        let mut names: Vec<String> = fs::read_dir(repo_root().join("tests/malformed").join(dir))
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        names.sort();
        names
    };
    let names = |table: &[(&str, &str, &str)]| -> Vec<String> {
        let mut v: Vec<String> = table.iter().map(|(f, _, _)| f.to_string()).collect();
        v.sort();
        v
    };
    assert_eq!(listed("recipes"), names(RECIPES));
    assert_eq!(listed("drivers"), names(DRIVERS));
    assert!(RECIPES.len() + DRIVERS.len() >= 50);
    assert!(
        Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("tests/malformed")
            .is_dir()
    );
}
