//! Cost-aware checkpoints (`--microstep-checkpoints auto`, `global.checkpoint_policy: auto`):
//! checkpoints land after the slow microsteps and not after every trivial one, resumes skip the
//! slow microsteps before a change, invalid checkpoints are never applied, and the listing,
//! `--prune --keep-cost` and `plan --explain` say what each checkpoint costs and saves.
//!
//! The tests assert which microsteps ran and which checkpoints exist, never a time. They rely
//! on margins only: a slow microsteps sleeps 1.2 s, a trivial one takes milliseconds, and the
//! `slowcopy` driver's create takes at least 0.2 s, so `auto` weighs 1.2 s against about 0.4 s
//! (create + apply, apply taken to equal create until one is measured).

use std::collections::BTreeSet;
use std::path::Path;

use crate::common::{Run, Test, is_short_id};

/// Microsteps in the recipe of [`recipe`]; 6 and 13 are slow.
const N: usize = 19;
const SLOW: [usize; 2] = [6, 13];
/// The microstep that uses `{{early}}`, and the one that uses `{{late}}` (the last).
const EARLY: usize = 8;
const LATE: usize = N - 1;

fn slug(i: usize) -> String {
    format!("setup/s{}/m{i:02}", i / 5)
}

fn slugs(range: std::ops::Range<usize>) -> Vec<String> {
    range.map(slug).collect()
}

/// N microsteps in steps of five; each writes a file into the rootfs and appends its slug to
/// `ran.log` outside it, so checkpoints neither save nor restore the log.
fn recipe(driver: &str, policy_global: Option<&str>) -> String {
    let mut r = format!(
        "checkpoint: {driver}\nglobal:\n  rootfs: \"{{{{build_dir}}}}/rootfs\"\n  ranlog: \"{{{{build_dir}}}}/ran.log\"\n  early: one\n  late: one\n"
    );
    if let Some(p) = policy_global {
        r.push_str(&format!("  checkpoint_policy: {p}\n"));
    }
    r.push_str("setup:\n");
    for i in 0..N {
        if i % 5 == 0 {
            r.push_str(&format!("  - s{}:\n", i / 5));
        }
        let value = match i {
            EARLY => "{{early}}".to_string(),
            LATE => "{{late}}".to_string(),
            _ => format!("v{i}"),
        };
        let slow = if SLOW.contains(&i) {
            "sleep 1.2 && "
        } else {
            ""
        };
        r.push_str(&format!(
            "      - m{i:02}:\n          - exec_local: {slow}mkdir -p \"{{{{rootfs}}}}\" && echo \"{value}\" > \"{{{{rootfs}}}}/m{i:02}\"\n          - exec_local: echo {} >> \"{{{{ranlog}}}}\"\n",
            slug(i)
        ));
    }
    r
}

/// The copy driver, with a create that takes at least 0.2 s: what a big rootfs costs.
const SLOWCOPY: &str = r#"
variables:
  store: "{{build_dir}}/store"
enabled:
  - exec_local: mkdir -p "{{store}}"
create:
  - exec_local: |
      sleep 0.2
      rm -rf "{{store}}/{{checkpoint_id}}.tmp" "{{store}}/{{checkpoint_id}}"
      cp -a "{{rootfs}}" "{{store}}/{{checkpoint_id}}.tmp"
      mv "{{store}}/{{checkpoint_id}}.tmp" "{{store}}/{{checkpoint_id}}"
apply:
  - exec_local: test -d "{{store}}/{{checkpoint_id}}" && rm -rf "{{rootfs}}" && cp -a "{{store}}/{{checkpoint_id}}" "{{rootfs}}"
list:
  - exec_local: ls -1 "{{store}}" | grep -v '\.tmp$' || true
delete:
  - exec_local: rm -rf "{{store}}/{{checkpoint_id}}"
"#;

fn slow_driver_test() -> Test {
    Test::new()
        .file("recipe.yaml", &recipe("slowcopy", None))
        .file("drivers/slowcopy.yaml", SLOWCOPY)
}

fn build(t: &Test, extra: &[&str]) -> Run {
    let mut args = vec![
        "build",
        "recipe.yaml",
        "-c",
        "--microstep-checkpoints",
        "auto",
    ];
    args.extend(extra);
    let run = t.cairn(&args);
    run.success();
    run
}

/// The slugs that ran since the last call (the log is emptied), in order.
fn take_ran(t: &Test) -> Vec<String> {
    let log = t.build_dir("recipe").join("ran.log");
    let text = std::fs::read_to_string(&log).unwrap_or_default();
    let _ = std::fs::write(&log, "");
    text.lines().map(str::to_string).collect()
}

/// (short ID, slug) of every microstep, as `build --dry-run -l` plans them with `extra` args.
fn planned(t: &Test, extra: &[&str]) -> Vec<(String, String)> {
    let mut args = vec!["build", "recipe.yaml", "--dry-run", "-l"];
    args.extend(extra);
    let run = t.cairn(&args);
    run.success();
    run.stdout
        .lines()
        .filter_map(|l| l.split_once(" | "))
        .map(|(id, slug)| {
            assert!(is_short_id(id.trim()), "{run}");
            (id.trim().to_string(), slug.trim().to_string())
        })
        .collect()
}

/// The full IDs the driver's store holds.
fn stored(dir: &Path) -> BTreeSet<String> {
    std::fs::read_dir(dir)
        .map(|rd| {
            rd.filter_map(|e| e.ok())
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .filter(|n| !n.ends_with(".tmp"))
                .collect()
        })
        .unwrap_or_default()
}

/// The slugs of the microsteps (of the plan with `extra` args) whose checkpoint is in the
/// store: which checkpoints exist and are valid.
fn checkpointed_slugs(t: &Test, store: &str) -> Vec<String> {
    let ids = stored(&t.build_dir("recipe").join(store));
    planned(t, &[])
        .into_iter()
        .filter(|(short, _)| ids.iter().any(|id| id.starts_with(short.as_str())))
        .map(|(_, slug)| slug)
        .collect()
}

/// The indices of the microsteps (of the plan with `extra` args, where every microstep may
/// have a checkpoint) whose checkpoint is in the store: which checkpoints exist and are valid.
fn checkpointed(t: &Test, store: &str, extra: &[&str]) -> Vec<usize> {
    checkpointed_in(t, &t.build_dir("recipe").join(store), extra)
}

fn checkpointed_in(t: &Test, store: &Path, extra: &[&str]) -> Vec<usize> {
    let ids = stored(store);
    planned(t, extra)
        .iter()
        .enumerate()
        .filter(|(_, (short, _))| ids.iter().any(|id| id.starts_with(short.as_str())))
        .map(|(i, _)| i)
        .collect()
}

#[test]
fn auto_checkpoints_after_the_slow_microsteps_and_not_after_trivial_ones() {
    let t = slow_driver_test();
    build(&t, &[]);
    assert_eq!(take_ran(&t), slugs(0..N));
    // The first microstep's checkpoint measures the driver's cost; then only the slow ones pay.
    assert_eq!(checkpointed(&t, "store", &[]), vec![0, SLOW[0], SLOW[1]]);
    // An unchanged rebuild runs nothing after the newest checkpoint but what follows it.
    build(&t, &[]);
    assert_eq!(take_ran(&t), slugs(SLOW[1] + 1..N));
}

#[test]
fn with_the_copy_driver_auto_checkpoints_every_slow_microstep_but_not_every_one() {
    let t = Test::new().file("recipe.yaml", &recipe("copy", None));
    build(&t, &[]);
    let made = checkpointed(&t, "checkpoints/copy", &[]);
    for s in SLOW {
        assert!(
            made.contains(&s),
            "no checkpoint after slow microstep {s}: {made:?}"
        );
    }
    assert!(
        made.len() < N,
        "a checkpoint after every microstep: {made:?}"
    );
}

#[test]
fn the_recipe_can_ask_for_auto_and_the_command_line_overrides_it() {
    let t = Test::new()
        .file("recipe.yaml", &recipe("slowcopy", Some("auto")))
        .file("drivers/slowcopy.yaml", SLOWCOPY);
    t.cairn(&["build", "recipe.yaml", "-c"]).success();
    assert_eq!(checkpointed(&t, "store", &[]), vec![0, SLOW[0], SLOW[1]]);
    t.cairn(&[
        "build",
        "recipe.yaml",
        "-c",
        "--fresh",
        "--microstep-checkpoints",
        "all",
    ])
    .success();
    assert_eq!(checkpointed(&t, "store", &[]), (0..N).collect::<Vec<_>>());

    let bad = Test::new().file("recipe.yaml", &recipe("copy", Some("sometimes")));
    let run = bad.cairn(&["build", "recipe.yaml", "-c"]);
    run.code(3)
        .stderr_has("recipe.yaml:7:")
        .stderr_has("checkpoint_policy")
        .stderr_has("auto");
}

#[test]
fn a_change_in_the_last_microstep_reruns_no_slow_microstep() {
    let t = slow_driver_test();
    build(&t, &[]);
    take_ran(&t);
    build(&t, &["-g", "late=two"]);
    let ran = take_ran(&t);
    assert_eq!(ran, slugs(SLOW[1] + 1..N));
    assert_eq!(t.built("rootfs/m18").trim(), "two");
    assert_eq!(t.built("rootfs/m13").trim(), "v13");
}

#[test]
fn a_change_early_reruns_from_the_checkpoint_before_it() {
    let t = slow_driver_test();
    build(&t, &[]);
    take_ran(&t);
    build(&t, &["-g", "early=two"]);
    // The newest checkpoint before microstep 8 is the slow microstep 6's: 7 on runs again.
    assert_eq!(take_ran(&t), slugs(SLOW[0] + 1..N));
    assert_eq!(t.built("rootfs/m08").trim(), "two");
    // The re-run made a checkpoint after the second slow microstep again, with its new ID.
    assert_eq!(
        checkpointed(&t, "store", &["-g", "early=two"]),
        vec![0, SLOW[0], SLOW[1]]
    );
}

#[test]
fn auto_never_applies_a_checkpoint_whose_id_is_not_valid() {
    let t = slow_driver_test();
    // Every microstep has a checkpoint; a stranger's checkpoint sits in the store too.
    t.cairn(&[
        "build",
        "recipe.yaml",
        "-c",
        "--microstep-checkpoints",
        "all",
    ])
    .success();
    take_ran(&t);
    let stranger = t.build_dir("recipe").join("store").join("f".repeat(40));
    crate::common::copy_tree(&t.build_dir("recipe").join("rootfs"), &stranger);
    std::fs::write(stranger.join("m18"), "stranger\n").unwrap();

    // Microstep 8 changes: the checkpoints after it, and the stranger's, are not valid.
    build(&t, &["-g", "early=two"]);
    assert_eq!(take_ran(&t), slugs(EARLY..N));
    // What a scratch build with the change makes, file for file.
    let scratch = slow_driver_test();
    scratch
        .cairn(&["build", "recipe.yaml", "-g", "early=two"])
        .success();
    for i in 0..N {
        let f = format!("rootfs/m{i:02}");
        assert_eq!(t.built(&f), scratch.built(&f), "{f}");
    }
}

#[test]
fn the_last_microstep_before_a_failure_keeps_its_checkpoint_when_it_pays() {
    let t = Test::new()
        .file(
            "recipe.yaml",
            r#"
            checkpoint: slowcopy
            global:
              rootfs: "{{build_dir}}/rootfs"
              ranlog: "{{build_dir}}/ran.log"
            setup:
              - s:
                  - quick:
                      - exec_local: mkdir -p "{{rootfs}}" && echo quick >> "{{ranlog}}"
                  - slow:
                      - exec_local: sleep 1.2 && echo slow >> "{{ranlog}}"
                  - fails:
                      - exec_local: echo fails >> "{{ranlog}}"
                      - exec_local: test -e "{{build_dir}}/fixed"
            "#,
        )
        .file("drivers/slowcopy.yaml", SLOWCOPY);
    let run = t.cairn(&[
        "build",
        "recipe.yaml",
        "-c",
        "-y",
        "--microstep-checkpoints",
        "auto",
    ]);
    assert_eq!(run.code, Some(1), "{run}");
    assert_eq!(take_ran(&t), vec!["quick", "slow", "fails"]);
    std::fs::write(t.build_dir("recipe").join("fixed"), "").unwrap();
    build(&t, &["-y"]);
    assert_eq!(take_ran(&t), vec!["fails"]);
}

#[test]
fn on_checkpoint_flags_and_the_window_keep_their_meaning_under_auto() {
    let t = Test::new()
        .file(
            "recipe.yaml",
            r#"
            checkpoint: slowcopy
            global:
              rootfs: "{{build_dir}}/rootfs"
              ranlog: "{{build_dir}}/ran.log"
            setup:
              - s:
                  - a:
                      - exec_local: mkdir -p "{{rootfs}}" && echo a >> "{{ranlog}}"
                  - slow:
                      - on_checkpoint: disabled
                      - exec_local: sleep 1.2 && echo slow >> "{{ranlog}}"
                  - b:
                      - exec_local: echo b >> "{{ranlog}}"
                  - slow2:
                      - exec_local: sleep 1.2 && echo slow2 >> "{{ranlog}}"
            "#,
        )
        .file("drivers/slowcopy.yaml", SLOWCOPY);
    build(&t, &["-E", "setup/s/b"]);
    // Not after `slow` (disabled), but its time is saved by the checkpoint after `b`; none
    // after `slow2`, outside the window.
    assert_eq!(
        checkpointed_slugs(&t, "store"),
        vec!["setup/s/a", "setup/s/b"]
    );
}

#[test]
fn checkpoints_lists_size_create_time_and_saving_and_prune_keeps_what_pays() {
    let t = slow_driver_test();
    t.cairn(&[
        "build",
        "recipe.yaml",
        "-c",
        "--microstep-checkpoints",
        "all",
    ])
    .success();
    let list = t.cairn(&["checkpoints", "recipe.yaml"]);
    list.success();
    let header = list
        .stdout
        .lines()
        .find(|l| l.starts_with("ID "))
        .unwrap_or_else(|| panic!("{list}"));
    for col in ["SIZE", "CREATE", "SAVES"] {
        assert!(header.contains(col), "{list}");
    }
    let rows: Vec<&str> = list
        .stdout
        .lines()
        .filter(|l| l.split(" | ").next().is_some_and(|c| is_short_id(c.trim())))
        .collect();
    assert_eq!(rows.len(), N, "{list}");
    // Sizes are measured in the store: every row has one.
    assert!(
        rows.iter()
            .all(|r| r.contains(" B ") || r.contains(" KiB ")),
        "{list}"
    );

    // Another build dir of the same recipe (IDs do not depend on the build dir) with `auto`,
    // given a copy of a trivial microstep's checkpoint it did not make.
    let b2 = t.path().join("b2");
    t.cairn(&[
        "build",
        "recipe.yaml",
        "-b",
        "b2",
        "-c",
        "--microstep-checkpoints",
        "auto",
    ])
    .success();
    let ids = planned(&t, &[]);
    let foreign = stored(&t.build_dir("recipe").join("store"))
        .into_iter()
        .find(|id| id.starts_with(&ids[1].0))
        .expect("microstep 1's checkpoint");
    crate::common::copy_tree(
        &t.build_dir("recipe").join("store").join(&foreign),
        &b2.join("store").join(&foreign),
    );
    assert_eq!(
        checkpointed_in(&t, &b2.join("store"), &[]),
        vec![0, 1, SLOW[0], SLOW[1]]
    );

    // Only the slow microsteps' checkpoints saved more than 0.6 s.
    let prune = t.cairn(&[
        "checkpoints",
        "recipe.yaml",
        "--prune",
        "--keep-cost",
        "0.6",
    ]);
    prune.success();
    assert_eq!(checkpointed(&t, "store", &[]), SLOW.to_vec(), "{prune}");
    // In b2, microstep 0's (made there, trivial) goes; microstep 1's was not made there: it stays.
    let prune = t.cairn(&[
        "checkpoints",
        "recipe.yaml",
        "-b",
        "b2",
        "--prune",
        "--keep-cost",
        "0.6",
    ]);
    prune.success();
    assert_eq!(
        checkpointed_in(&t, &b2.join("store"), &[]),
        vec![1, SLOW[0], SLOW[1]],
        "{prune}"
    );
}

#[test]
fn plan_explain_names_the_checkpoint_a_resume_uses_and_why_others_were_not_made() {
    let t = slow_driver_test();
    build(&t, &[]);
    let ids = planned(&t, &["-g", "late=two"]);
    let run = t.cairn(&["plan", "recipe.yaml", "--explain", "-g", "late=two"]);
    run.success();
    run.stdout_has(&format!(
        "A build with -c applies checkpoint {} ({}) and runs 5 microstep(s).",
        ids[SLOW[1]].0,
        slug(SLOW[1])
    ));
    run.stdout_has("Checkpoints by policy auto in this build dir (driver slowcopy: create ");
    for i in SLOW[1] + 1..LATE {
        run.stdout_has(&format!("{}: not made: it would save", slug(i)));
    }
    run.stdout_has(&format!("{}: made:", slug(SLOW[0])));
}

#[test]
fn auto_checkpoints_before_an_atomic_microstep_so_its_undo_keeps_the_one_before() {
    let t = Test::new()
        .file(
            "recipe.yaml",
            r#"
            checkpoint: slowcopy
            global:
              rootfs: "{{build_dir}}/rootfs"
            setup:
              - s:
                  - a:
                      - exec_local: mkdir -p "{{rootfs}}" && echo a > "{{rootfs}}/a"
                  - b:
                      - exec_local: echo b > "{{rootfs}}/b"
                  - c:
                      - atomic: true
                      - exec_local: echo c > "{{rootfs}}/c"
                      - exec_local: "false"
            "#,
        )
        .file("drivers/slowcopy.yaml", SLOWCOPY);
    let run = t.cairn(&[
        "build",
        "recipe.yaml",
        "-c",
        "-y",
        "--microstep-checkpoints",
        "auto",
    ]);
    assert_eq!(run.code, Some(1), "{run}");
    // `b` costs far less than a checkpoint, but undoing `c` applies the checkpoint before it.
    assert_eq!(
        checkpointed_slugs(&t, "store"),
        vec!["setup/s/a", "setup/s/b"]
    );
    assert!(t.exists("build/recipe/rootfs/b"), "{run}");
    assert!(!t.exists("build/recipe/rootfs/c"), "{run}");
}
