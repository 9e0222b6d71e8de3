//! `plan --explain` against the checkpoint tree: in each case the explanation, the plan table
//! printed above it and the next `build -c` agree on which checkpoint is applied and which
//! microsteps run.

use crate::common::Test;

const SLUGS: [&str; 4] = ["setup/a/one", "setup/a/two", "setup/b/user", "setup/b/last"];

/// Four microsteps on the copy driver; each appends its slug to `ran.log`, outside the rootfs,
/// so the log says exactly what ran. `user_name` is first used by the third.
fn recipe(first: &str) -> String {
    format!(
        r#"
        checkpoint: copy
        global:
          rootfs: "{{{{build_dir}}}}/rootfs"
          ranlog: "{{{{build_dir}}}}/ran.log"
          user_name: alice
        setup:
          - a:
              - one:
                  - exec_local: mkdir -p "{{{{rootfs}}}}" && echo {first} > "{{{{rootfs}}}}/one"
                  - exec_local: echo setup/a/one >> "{{{{ranlog}}}}"
              - two:
                  - exec_local: echo two > "{{{{rootfs}}}}/two"
                  - exec_local: echo setup/a/two >> "{{{{ranlog}}}}"
          - b:
              - user:
                  - exec_local: echo "{{{{user_name}}}}" > "{{{{rootfs}}}}/user"
                  - exec_local: echo setup/b/user >> "{{{{ranlog}}}}"
              - last:
                  - exec_local: cat "{{{{rootfs}}}}/user" > "{{{{rootfs}}}}/last"
                  - exec_local: echo setup/b/last >> "{{{{ranlog}}}}"
        "#
    )
}

fn tree() -> Test {
    Test::new().file("recipe.yaml", &recipe("one"))
}

/// One row of the plan table.
struct Row {
    id: String,
    action: String,
    slug: String,
}

/// Runs `plan --explain` with `extra` arguments: the table rows and the explanation lines.
fn explain(t: &Test, extra: &[&str]) -> (Vec<Row>, Vec<String>) {
    let mut args = vec!["plan", "recipe.yaml", "--explain"];
    args.extend_from_slice(extra);
    let run = t.cairn(&args);
    run.success();
    let (table, text) = run
        .stdout
        .split_once("\n\n")
        .unwrap_or_else(|| panic!("no blank line between table and explanation\n{run}"));
    let rows: Vec<Row> = table
        .lines()
        .map(|l| {
            // "  1  0123456789ab  use checkpoint  setup/a/one"
            let words: Vec<&str> = l.split_whitespace().collect();
            Row {
                id: words[1].to_string(),
                action: words[2..words.len() - 1].join(" "),
                slug: words[words.len() - 1].to_string(),
            }
        })
        .collect();
    assert_eq!(
        rows.iter().map(|r| r.slug.as_str()).collect::<Vec<_>>(),
        SLUGS
    );
    let lines: Vec<String> = text.lines().map(str::to_string).collect();
    // The resume explanation ends at its verdict; what follows is about the checkpoint policy
    // (durations measured by earlier runs), which must name the same number of microsteps.
    let end = lines
        .iter()
        .position(|l| {
            l.starts_with("A build with -c applies")
                || l.starts_with("No checkpoint matches")
                || l.starts_with("No checkpoint has been created")
        })
        .unwrap_or_else(|| panic!("no verdict in the explanation\n{run}"));
    let verdict_runs = runs_in(&lines[end]);
    for l in &lines[end + 1..] {
        if let Some(n) = runs_in(l) {
            assert_eq!(
                Some(n),
                verdict_runs,
                "the policy lines disagree: {l}\n{run}"
            );
        }
    }
    (rows, lines[..=end].to_vec())
}

/// N in "... runs N microstep(s)".
fn runs_in(line: &str) -> Option<usize> {
    let (before, _) = line.split_once(" microstep(s)")?;
    before.rsplit(' ').next()?.parse().ok()
}

/// Builds with -c and `extra`, returning the slugs that ran.
fn build(t: &Test, extra: &[&str]) -> Vec<String> {
    let mut args = vec!["build", "recipe.yaml", "-c"];
    args.extend_from_slice(extra);
    t.cairn(&args).success();
    let log = t.build_dir("recipe").join("ran.log");
    let text = std::fs::read_to_string(&log).unwrap_or_default();
    std::fs::write(&log, "").expect("empty the log");
    text.lines().map(str::to_string).collect()
}

fn actions(rows: &[Row]) -> Vec<&str> {
    rows.iter().map(|r| r.action.as_str()).collect()
}

#[test]
fn no_checkpoint_everything_runs() {
    let t = tree();
    let (rows, text) = explain(&t, &[]);
    assert_eq!(actions(&rows), ["run"; 4]);
    assert_eq!(
        text,
        ["No checkpoint has been created in this build dir yet: everything runs."]
    );
    assert_eq!(build(&t, &[]), SLUGS);
}

#[test]
fn nothing_changed_resumes_after_the_last_microstep() {
    let t = tree();
    build(&t, &[]);
    let (rows, text) = explain(&t, &[]);
    assert_eq!(actions(&rows), ["use checkpoint"; 4]);
    let last = &rows[3].id;
    assert_eq!(
        text,
        [
            format!("Nothing changed up to the newest valid checkpoint {last} (setup/b/last)."),
            format!(
                "A build with -c applies checkpoint {last} (setup/b/last) and runs 0 microstep(s)."
            ),
        ]
    );
    assert_eq!(build(&t, &[]), Vec::<String>::new());
}

#[test]
fn a_change_in_the_middle_resumes_before_it() {
    let t = tree();
    build(&t, &[]);
    let (before, _) = explain(&t, &[]);
    t.rewrite(
        "recipe.yaml",
        &recipe("one").replace(r#"echo two > "#, r#"echo TWO > "#),
    );
    let (rows, text) = explain(&t, &[]);
    assert_eq!(actions(&rows), ["use checkpoint", "run", "run", "run"]);
    let one = &rows[0].id;
    assert_eq!(
        text,
        [
            format!(
                "First changed microstep: setup/a/two (was {}, now {})",
                before[1].id, rows[1].id
            ),
            "  command text changed:".to_string(),
            r#"    - echo two > "{{build_dir}}/rootfs/two""#.to_string(),
            r#"    + echo TWO > "{{build_dir}}/rootfs/two""#.to_string(),
            format!(
                "A build with -c applies checkpoint {one} (setup/a/one) and runs 3 microstep(s)."
            ),
        ]
    );
    assert_eq!(build(&t, &[]), SLUGS[1..]);
}

#[test]
fn a_change_in_the_first_microstep_runs_everything() {
    let t = tree();
    build(&t, &[]);
    let (before, _) = explain(&t, &[]);
    t.rewrite("recipe.yaml", &recipe("uno"));
    let (rows, text) = explain(&t, &[]);
    assert_eq!(actions(&rows), ["run"; 4]);
    assert_eq!(
        text[0],
        format!(
            "First changed microstep: setup/a/one (was {}, now {})",
            before[0].id, rows[0].id
        )
    );
    assert_eq!(
        text.last().map(String::as_str),
        Some("No checkpoint matches this plan: a build with -c runs 4 microstep(s).")
    );
    assert_eq!(build(&t, &[]), SLUGS);
}

/// The case that once contradicted itself: after a build of another variant (`-g`), the
/// newest checkpoint made is not the one a build without `-g` applies.
#[test]
fn a_newer_checkpoint_of_another_variant_is_not_the_resume_point() {
    let t = tree();
    build(&t, &[]);
    assert_eq!(build(&t, &["-g", "user_name=bob"]), SLUGS[2..]);
    let (rows, text) = explain(&t, &[]);
    assert_eq!(actions(&rows), ["use checkpoint"; 4]);
    let last = &rows[3].id;
    let (bob, _) = explain(&t, &["-g", "user_name=bob"]);
    assert_eq!(
        text,
        [
            format!("Nothing changed up to the newest valid checkpoint {last} (setup/b/last)."),
            format!(
                "2 newer checkpoint(s) belong to another variant of the recipe (other -g values \
                 or files), the newest {} (setup/b/last); this plan does not use them.",
                bob[3].id
            ),
            format!(
                "A build with -c applies checkpoint {last} (setup/b/last) and runs 0 microstep(s)."
            ),
        ]
    );
    assert_eq!(build(&t, &[]), Vec::<String>::new());
}
