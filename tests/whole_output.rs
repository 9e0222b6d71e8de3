//! Whole outputs as snapshots (tests/snapshots/), with what varies from run to run masked:
//! checkpoint IDs as `[ID]`, durations and other decimals as `[N]`, dates as `[DATE]`, the test's
//! temporary directory as `[TMP]`. A change to any line of these outputs shows up here.

use insta::assert_snapshot;

use crate::common::{Run, Test, normalize};

/// Masks IDs (12 or 40 hex digits), decimals, dates and times.
fn mask(text: &str) -> String {
    let chars: Vec<char> = text.chars().collect();
    let mut out = String::with_capacity(text.len());
    let mut i = 0;
    let word = |c: char| c.is_ascii_alphanumeric() || c == '_';
    while i < chars.len() {
        let starts_word = i == 0 || !word(chars[i - 1]);
        if starts_word {
            let run = chars[i..]
                .iter()
                .take_while(|c| c.is_ascii_hexdigit())
                .count();
            let ends_word = chars.get(i + run).is_none_or(|c| !word(*c));
            let hex: String = chars[i..i + run].iter().collect();
            if ends_word && (run == 12 || run == 40) && !hex.chars().any(|c| c.is_ascii_uppercase())
            {
                out.push_str("[ID]");
                i += run;
                continue;
            }
            // 2026-12-01 22:39:00 and 22:39:00
            let date: String = chars[i..chars.len().min(i + 19)].iter().collect();
            if date.len() == 19 && is_shape(&date, "dddd-dd-dd dd:dd:dd") {
                out.push_str("[DATE]");
                i += 19;
                continue;
            }
            let digits = chars[i..].iter().take_while(|c| c.is_ascii_digit()).count();
            if digits > 0
                && chars.get(i + digits) == Some(&'.')
                && chars.get(i + digits + 1).is_some_and(char::is_ascii_digit)
            {
                let frac = chars[i + digits + 1..]
                    .iter()
                    .take_while(|c| c.is_ascii_digit())
                    .count();
                let mut j = i + digits + 1 + frac;
                // 1.2e-5
                if chars.get(j) == Some(&'e') {
                    j += 1 + chars[j + 1..]
                        .iter()
                        .take_while(|c| c.is_ascii_digit() || **c == '-')
                        .count();
                }
                out.push_str("[N]");
                i = j;
                continue;
            }
        }
        out.push(chars[i]);
        i += 1;
    }
    out
}

fn is_shape(s: &str, shape: &str) -> bool {
    s.chars()
        .zip(shape.chars())
        .all(|(c, k)| if k == 'd' { c.is_ascii_digit() } else { c == k })
}

/// Sizes depend on the filesystem's block size: `"size":8192` becomes `"size":[SIZE]`.
fn mask_sizes(text: &str) -> String {
    let mut out = String::new();
    let mut rest = text;
    while let Some(at) = rest.find("\"size\":") {
        let (head, tail) = rest.split_at(at + "\"size\":".len());
        out.push_str(head);
        let digits = tail.chars().take_while(char::is_ascii_digit).count();
        if digits > 0 {
            out.push_str("[SIZE]");
        }
        rest = &tail[digits..];
    }
    out.push_str(rest);
    out
}

fn both(run: &Run, t: &Test) -> String {
    mask_sizes(&mask(&normalize(
        &format!("--- stdout\n{}--- stderr\n{}", run.stdout, run.stderr),
        t.path(),
    )))
}

fn tree() -> Test {
    Test::new().file(
        "recipe.yaml",
        r#"
        checkpoint: copy
        global:
          rootfs: "{{build_dir}}/rootfs"
          greeting: hello
        setup:
          - files:
              - first:
                  - exec_local: mkdir -p "{{rootfs}}" && echo "{{greeting}}" > "{{rootfs}}/greeting"
              - second:
                  - exec_local: cat "{{rootfs}}/greeting"
        export:
          - pack:
              - list:
                  - exec_local: ls "{{rootfs}}"
        "#,
    )
}

#[test]
fn mask_hides_what_varies() {
    assert_eq!(
        mask(
            "id 0123456789ab took 0.05 secs at 2026-12-01 22:39:00, 1.5e-3; ABCDEF012345 deadbeef"
        ),
        "id [ID] took [N] secs at [DATE], [N]; ABCDEF012345 deadbeef"
    );
}

#[test]
fn build_then_rebuild_then_list() {
    let t = tree();
    let run = t.cairn(&["build", "recipe.yaml", "-c"]);
    run.success();
    assert_snapshot!("build", both(&run, &t));
    let run = t.cairn(&["build", "recipe.yaml", "-c"]);
    run.success();
    assert_snapshot!("rebuild", both(&run, &t));
    let run = t.cairn(&["build", "recipe.yaml", "-l"]);
    run.success();
    assert_snapshot!("list_checkpoints", both(&run, &t));
}

#[test]
fn plan_explain_after_a_change() {
    let t = tree();
    t.cairn(&["build", "recipe.yaml", "-c"]).success();
    let run = t.cairn(&["plan", "recipe.yaml", "--explain", "-g", "greeting=hi"]);
    run.success();
    assert_snapshot!("plan_explain", both(&run, &t));
}

#[test]
fn json_build() {
    let t = tree();
    let run = t.cairn(&["build", "recipe.yaml", "-c", "--json"]);
    run.success();
    assert_snapshot!("build_json", both(&run, &t));
}

#[test]
fn help() {
    let t = Test::new();
    let run = t.cairn(&["--help"]);
    run.success();
    assert_snapshot!("help", both(&run, &t));
    let run = t.cairn(&["build", "--help"]);
    run.success();
    assert_snapshot!("build_help", both(&run, &t));
}
