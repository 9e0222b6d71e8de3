//! Kameleon's users: recipes in Kameleon's own syntax (`$${var}`, `enabled?`, `@microstep_id`,
//! `steps/aliases`, `steps/checkpoints`, `steps/data`, `steps/env`, `include_steps`, YAML 1.1
//! scalars) run unchanged. Each test copies the corpus in `tests/fixtures/kameleon` into a
//! temporary directory and drives the real binary there.
//!
//! The corpus (see its files for what each one shows):
//!
//! - `base.yaml` <- `middle.yaml` <- `child.yaml`: an extend chain three deep; `child.yaml`
//!   leaves out `bootstrap` and `export`;
//! - `variants/appliance.yaml`: `extend: $${distrib}/base`;
//! - `selection.yaml`: a microstep selection; `hooks.yaml`: every hook; `tools.yaml`: aliases
//!   standing for hooks.
//!
//! The slug lists below are what Kameleon 2.11 itself computes for the same recipes (its
//! `kameleon build --dryrun`), except where a test says Kameleon has a bug cairn does not copy.

use crate::common::{Run, Test};

fn corpus() -> Test {
    Test::fixture("kameleon")
}

/// The slugs of `cairn build --dry-run RECIPE ARGS...`, the last column of each line.
fn plan(t: &Test, recipe: &str, args: &[&str]) -> Vec<String> {
    let mut all = vec!["build", recipe, "--dry-run"];
    all.extend_from_slice(args);
    let run = t.cairn(&all);
    run.success();
    run.stdout
        .lines()
        .filter_map(|l| l.split_whitespace().last())
        .map(str::to_string)
        .collect()
}

/// For each `Step N : slug` printed, the slug and the lines printed for it up to the next
/// step (`--> Running the step...`, `--> Using checkpoint`, `--> Creating checkpoint : ID`).
fn steps(run: &Run) -> Vec<(String, Vec<String>)> {
    let mut out: Vec<(String, Vec<String>)> = Vec::new();
    for line in run.stdout.lines() {
        if let Some(slug) = line
            .strip_prefix("Step ")
            .and_then(|l| l.split_once(" : "))
            .map(|(_, s)| s.to_string())
        {
            out.push((slug, Vec::new()));
        } else if let Some((_, lines)) = out.last_mut() {
            lines.push(line.trim().to_string());
        }
    }
    out
}

/// The slugs for which the build printed `what` (a prefix of one of their lines).
fn slugs_with(run: &Run, what: &str) -> Vec<String> {
    steps(run)
        .into_iter()
        .filter(|(_, lines)| lines.iter().any(|l| l.starts_with(what)))
        .map(|(slug, _)| slug)
        .collect()
}

/// The microsteps that ran since the last call: each appends its slug to `ran.log` in the
/// build dir, outside the rootfs the driver snapshots. The log is emptied.
fn take_ran(t: &Test, recipe: &str) -> Vec<String> {
    let log = t.build_dir(recipe).join("ran.log");
    let text = std::fs::read_to_string(&log).unwrap_or_default();
    let _ = std::fs::write(&log, "");
    text.lines().map(str::to_string).collect()
}

/// A file of the rootfs of `recipe`'s build.
fn rootfs(t: &Test, recipe: &str, path: &str) -> String {
    t.read(&format!("build/{recipe}/rootfs/{path}"))
}

/// The rows of `cairn build RECIPE -l`: (ID, state, slug).
fn listed(t: &Test, recipe: &str, args: &[&str]) -> Vec<(String, String, String)> {
    let mut all = vec!["build", recipe, "-l"];
    all.extend_from_slice(args);
    let run = t.cairn(&all);
    run.success();
    run.stdout
        .lines()
        .filter_map(|l| {
            let cols: Vec<&str> = l.split('|').map(str::trim).collect();
            (cols.len() == 7 && crate::common::is_short_id(cols[0])).then(|| {
                (
                    cols[0].to_string(),
                    cols[5].to_string(),
                    cols[6].to_string(),
                )
            })
        })
        .collect()
}

fn strings(items: &[&str]) -> Vec<String> {
    items.iter().map(|s| s.to_string()).collect()
}

/// The plan of `child.yaml`.
const CHILD: [&str; 21] = [
    "bootstrap/_init_bootstrap/_init_0_create_rootfs",
    "bootstrap/_init_bootstrap/_init_1_write_issue",
    "bootstrap/make_rootfs/create_rootfs",
    "bootstrap/make_rootfs/write_issue",
    "setup/configure_system/write_hostname",
    "setup/configure_system/write_user",
    "setup/configure_system/install_motd",
    "setup/configure_system/flags",
    "setup/configure_system/literal_text",
    "setup/configure_system/no_errexit",
    "setup/tune/bookworm_only",
    "setup/policies/cached",
    "setup/policies/always",
    "setup/policies/no_snapshot",
    "setup/policies/without_checkpoints",
    "setup/policies/with_checkpoints",
    "setup/greet/say_hello",
    "setup/_clean_setup/_clean_0_say_hello",
    "export/pack/check_tools",
    "export/pack/tarball",
    "export/_clean_export/_clean_0_create_rootfs",
];

/// The checkpoints a build of `child.yaml` with `-c` creates: every microstep but the section
/// init hooks (the driver's `enabled?` fails until the rootfs exists), `always` (redo),
/// `no_snapshot` (disabled) and `without_checkpoints` (skip). Kameleon creates the same.
const CHILD_CHECKPOINTS: [&str; 16] = [
    "bootstrap/make_rootfs/create_rootfs",
    "bootstrap/make_rootfs/write_issue",
    "setup/configure_system/write_hostname",
    "setup/configure_system/write_user",
    "setup/configure_system/install_motd",
    "setup/configure_system/flags",
    "setup/configure_system/literal_text",
    "setup/configure_system/no_errexit",
    "setup/tune/bookworm_only",
    "setup/policies/cached",
    "setup/policies/with_checkpoints",
    "setup/greet/say_hello",
    "setup/_clean_setup/_clean_0_say_hello",
    "export/pack/check_tools",
    "export/pack/tarball",
    "export/_clean_export/_clean_0_create_rootfs",
];

// ---- the corpus builds, resumes and lists its checkpoints ----

#[test]
fn the_corpus_builds_with_checkpoints() {
    let t = corpus();
    let run = t.cairn(&["build", "child.yaml", "-c"]);
    run.success();
    assert_eq!(
        run.steps(),
        CHILD,
        "the plan of a three-deep extend chain\n{run}"
    );
    // The driver is not ready before the rootfs exists: nothing to apply, no checkpoint for
    // the init hooks, as Kameleon does.
    run.stdout_has("Checkpoint driver `dir` is not ready yet");
    assert_eq!(
        slugs_with(&run, "--> Do not create a checkpoint"),
        [
            "bootstrap/_init_bootstrap/_init_0_create_rootfs",
            "bootstrap/_init_bootstrap/_init_1_write_issue"
        ]
    );
    assert_eq!(
        slugs_with(&run, "--> Creating checkpoint : "),
        CHILD_CHECKPOINTS
    );
    // The driver's `@microstep_id` named each snapshot after its ID.
    let store = t.build_dir("child").join("checkpoints");
    let mut stored: Vec<String> = std::fs::read_dir(&store)
        .expect("the driver's store")
        .map(|e| {
            e.expect("an entry")
                .file_name()
                .to_string_lossy()
                .into_owned()
        })
        .collect();
    stored.sort();
    let mut ids: Vec<String> = listed(&t, "child.yaml", &[])
        .into_iter()
        .map(|(id, _, _)| id)
        .collect();
    ids.sort();
    assert_eq!(stored.len(), 16);
    for id in &ids {
        assert!(
            stored.iter().any(|s| s.starts_with(id.as_str())),
            "{id} not in {stored:?}"
        );
    }

    assert_eq!(
        take_ran(&t, "child"),
        [
            "bootstrap/make_rootfs/create_rootfs",
            "bootstrap/make_rootfs/write_issue",
            "setup/configure_system/write_hostname",
            "setup/configure_system/write_user",
            "setup/configure_system/install_motd",
            "setup/configure_system/flags",
            "setup/configure_system/literal_text",
            "setup/configure_system/no_errexit",
            "setup/policies/cached",
            "setup/policies/always",
            "setup/policies/no_snapshot",
            // `without_checkpoints` (skip) does not run when checkpointing is on
            "setup/policies/with_checkpoints",
            "setup/greet/say_hello",
            "setup/_clean_setup/greet",
            "export/pack/check_tools",
            "export/pack/tarball",
            "export/_clean_export/make_rootfs",
        ]
    );
    // Globals through the chain: `$${user_name}-admin` extends the parent's `alice`; the
    // step default `$${hostname_prefix}-$${distrib}` uses a global from `global.include`.
    assert_eq!(rootfs(&t, "child", "etc/user"), "alice-admin\n");
    assert_eq!(rootfs(&t, "child", "hello.txt"), "hello alice-admin\n");
    assert_eq!(rootfs(&t, "child", "etc/hostname"), "box-debian\n");
    // Data files: `$${kameleon_data_dir}/motd.txt` and `.../$${distrib}/issue.txt`.
    assert_eq!(
        rootfs(&t, "child", "etc/motd"),
        "Welcome to a cairn appliance\n"
    );
    assert_eq!(rootfs(&t, "child", "etc/issue"), "Debian GNU/Linux\n");
    // include_steps: `$${distrib}/$${release}` before `$${distrib}`.
    assert_eq!(rootfs(&t, "child", "etc/tune"), "bookworm\n");
    // `$${kameleon_recipe_name}` and `$${kameleon_cwd}`.
    assert!(t.exists("build/child/child.tar"));
}

#[test]
fn a_changed_global_resumes_from_the_first_microstep_that_uses_it() {
    let t = corpus();
    t.cairn(&["build", "child.yaml", "-c"]).success();
    take_ran(&t, "child");

    // Kameleon's `-g key:value`.
    let run = t.cairn(&["build", "child.yaml", "-c", "-g", "user_name:bob"]);
    run.success();
    run.stdout_has("--> Applying checkpoint : ");
    // Kameleon 2.11 resumes at the same microstep (it prints "Checkpoint ahead, do nothing"
    // where cairn prints "Using checkpoint").
    assert_eq!(
        slugs_with(&run, "--> Using checkpoint"),
        CHILD[..5],
        "everything before write_user comes from the checkpoint\n{run}"
    );
    assert_eq!(
        take_ran(&t, "child"),
        [
            "setup/configure_system/write_user",
            "setup/configure_system/install_motd",
            "setup/configure_system/flags",
            "setup/configure_system/literal_text",
            "setup/configure_system/no_errexit",
            "setup/policies/cached",
            "setup/policies/always",
            "setup/policies/no_snapshot",
            "setup/policies/with_checkpoints",
            "setup/greet/say_hello",
            "setup/_clean_setup/greet",
            "export/pack/check_tools",
            "export/pack/tarball",
            "export/_clean_export/make_rootfs",
        ]
    );
    assert_eq!(rootfs(&t, "child", "etc/user"), "bob\n");
    assert_eq!(rootfs(&t, "child", "etc/hostname"), "box-debian\n");

    // The same again: everything comes from checkpoints but the `redo` microstep.
    let run = t.cairn(&["build", "child.yaml", "-c", "-g", "user_name:bob"]);
    run.success();
    assert_eq!(take_ran(&t, "child"), ["setup/policies/always"]);
    assert_eq!(
        slugs_with(&run, "--> Running the step"),
        ["setup/policies/always"]
    );
}

#[test]
fn checkpoints_are_listed_with_l() {
    let t = corpus();
    t.cairn(&["build", "child.yaml", "-c"]).success();
    let rows = listed(&t, "child.yaml", &[]);
    let slugs: Vec<&str> = rows.iter().map(|(_, _, s)| s.as_str()).collect();
    assert_eq!(slugs, CHILD_CHECKPOINTS);
    assert!(
        rows.iter().all(|(_, state, _)| state == "valid"),
        "{rows:?}"
    );

    // Under another value of a global, the checkpoints from write_user on are stale.
    let rows = listed(&t, "child.yaml", &["-g", "user_name:bob"]);
    let valid: Vec<&str> = rows
        .iter()
        .filter(|(_, state, _)| state == "valid")
        .map(|(_, _, s)| s.as_str())
        .collect();
    assert_eq!(valid, CHILD_CHECKPOINTS[..3]);
    assert_eq!(
        rows.iter().filter(|(_, state, _)| state == "stale").count(),
        13
    );
}

#[test]
fn on_checkpoint_policies_keep_kameleons_meanings() {
    let t = corpus();
    // Without checkpoints: `skip` runs, `only` does not.
    let run = t.cairn(&["build", "middle.yaml"]);
    run.success();
    let ran = take_ran(&t, "middle");
    assert!(ran.contains(&"setup/policies/without_checkpoints".to_string()));
    assert!(!ran.contains(&"setup/policies/with_checkpoints".to_string()));
    assert_eq!(
        slugs_with(&run, "--> Skipping"),
        ["setup/policies/with_checkpoints"]
    );

    // With checkpoints: the other way round; `redo` and `disabled` take no checkpoint.
    let run = t.cairn(&["build", "middle.yaml", "-c", "--fresh"]);
    run.success();
    let ran = take_ran(&t, "middle");
    assert!(!ran.contains(&"setup/policies/without_checkpoints".to_string()));
    assert!(ran.contains(&"setup/policies/with_checkpoints".to_string()));
    let created = slugs_with(&run, "--> Creating checkpoint");
    for slug in ["setup/policies/cached", "setup/policies/with_checkpoints"] {
        assert!(created.contains(&slug.to_string()), "{slug}\n{run}");
    }
    for slug in [
        "setup/policies/always",
        "setup/policies/no_snapshot",
        "setup/policies/without_checkpoints",
    ] {
        assert!(!created.contains(&slug.to_string()), "{slug}\n{run}");
    }
}

// ---- what Kameleon's syntax means ----

#[test]
fn yaml_1_1_scalars_are_substituted_as_kameleon_did() {
    let t = corpus();
    t.cairn(&["build", "base.yaml"]).success();
    // `yes` and `on` were Ruby's true, `0755` the integer 493; a quoted "0755" stays text.
    // Kameleon 2.11 writes the same line.
    assert_eq!(
        rootfs(&t, "base", "etc/flags"),
        "ssh=true mode=493 quoted=0755 compress=true\n"
    );
}

#[test]
fn braces_are_literal_and_triple_dashes_are_kept_in_commands() {
    let t = corpus();
    t.cairn(&["build", "base.yaml"]).success();
    assert_eq!(rootfs(&t, "base", "etc/template"), "{{ not_a_variable }}\n");
    // Kameleon deletes every `---` of a command (it strips YAML's document marker with a
    // global substitution), leaving "a: 1" alone: cairn keeps the command as written.
    assert_eq!(rootfs(&t, "base", "etc/doc.yaml"), "---\na: 1\n");
}

#[test]
fn env_functions_are_there_and_a_failing_line_does_not_stop_a_command() {
    let t = corpus();
    t.cairn(&["build", "base.yaml"]).success();
    assert_eq!(rootfs(&t, "base", "etc/shout"), "KAMELEON\n");
    // Kameleon ran commands without errexit: the `false` line does not stop the command.
    assert_eq!(rootfs(&t, "base", "etc/errexit"), "still running\n");
}

#[test]
fn an_optional_global_include_may_be_missing_and_a_required_one_may_not() {
    let t = corpus();
    // `-site` is missing and optional; `common` sets hostname_prefix.
    t.cairn(&["build", "base.yaml"]).success();
    assert_eq!(rootfs(&t, "base", "etc/hostname"), "box-debian\n");

    let text = t.read("base.yaml").replace("    - -site\n", "    - site\n");
    std::fs::write(t.path().join("base.yaml"), text).expect("rewrite base.yaml");
    let run = t.cairn(&["build", "base.yaml", "--dry-run"]);
    run.code(3);
    run.stderr_has("included globals `site.yaml` not found");
}

#[test]
fn a_global_overrides_a_step_default_and_a_step_argument_wins_over_both() {
    let t = corpus();
    // `hostname` is a default of configure_system: a global (here `-g`) overrides it, as
    // Kameleon's code does (its documentation says otherwise: issue #101).
    t.cairn(&["build", "base.yaml", "-g", "hostname:from-the-cli"])
        .success();
    assert_eq!(rootfs(&t, "base", "etc/hostname"), "from-the-cli\n");
    // selection.yaml passes `hostname: picked` to the step call: that wins over `-g`.
    t.cairn(&["build", "selection.yaml", "-g", "hostname:from-the-cli"])
        .success();
    assert_eq!(rootfs(&t, "selection", "etc/hostname"), "picked\n");
}

#[test]
fn a_command_line_value_in_kameleons_syntax_extends_the_global() {
    // Kameleon's documented `--global setup_packages:'$${setup_packages} git emacs'`.
    let t = corpus();
    t.cairn(&["build", "base.yaml", "-g", "user_name:$${user_name}-ops"])
        .success();
    assert_eq!(rootfs(&t, "base", "etc/user"), "kameleon-ops\n");
}

#[test]
fn a_data_path_may_use_variables() {
    let t = corpus();
    let run = t.cairn(&["build", "variants/appliance.yaml", "-g", "distrib:centos"]);
    run.success();
    assert_eq!(rootfs(&t, "appliance", "etc/issue"), "CentOS Linux\n");
    assert_eq!(rootfs(&t, "appliance", "etc/hostname"), "centos-box\n");
    assert_eq!(t.read("build/appliance/variant"), "centos 7\n");
}

#[test]
fn an_alias_standing_for_a_hook_is_a_hook_at_the_top_and_runs_in_place_inside_a_group() {
    let t = corpus();
    assert_eq!(
        plan(&t, "tools.yaml", &[]),
        [
            // `check_cmd_local: $${tool}` at the top of a microstep: a bootstrap init hook
            "bootstrap/_init_bootstrap/_init_0_check",
            "bootstrap/tools/check",
        ]
    );
    t.cairn(&["build", "tools.yaml"]).success();
    assert_eq!(take_ran(&t, "tools"), ["checked"]);

    // Inside `test`/`group` the hook's commands run where they stand (Kameleon 2.11 warns
    // "Unknown command" there and skips them): a missing program stops the build.
    let run = t.cairn(&[
        "build",
        "tools.yaml",
        "-g",
        "missing_tool:no-such-program-for-cairn",
    ]);
    run.code(1);
    assert!(
        format!("{}{}", run.stdout, run.stderr)
            .contains("no-such-program-for-cairn is missing from local_context"),
        "{run}"
    );
    assert!(take_ran(&t, "tools").is_empty());
}

// ---- plans: the slug lists Kameleon computes ----

#[test]
fn plan_of_a_three_deep_extend_chain() {
    let t = corpus();
    assert_eq!(plan(&t, "child.yaml", &[]), CHILD);
    // `cairn plan --json` names the same slugs.
    let run = t.cairn(&["plan", "child.yaml", "--json"]);
    run.success();
    let slugs: Vec<String> = run
        .stdout
        .lines()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .filter_map(|v| v["slug"].as_str().map(str::to_string))
        .collect();
    assert_eq!(slugs, CHILD);
}

#[test]
fn plan_include_steps_follow_their_variables() {
    let t = corpus();
    let tune = |args: &[&str]| -> Vec<String> {
        plan(&t, "base.yaml", args)
            .into_iter()
            .filter(|s| s.starts_with("setup/"))
            .collect()
    };
    let debian_setup = [
        "setup/configure_system/write_hostname",
        "setup/configure_system/write_user",
        "setup/configure_system/install_motd",
        "setup/configure_system/flags",
        "setup/configure_system/literal_text",
        "setup/configure_system/no_errexit",
    ];
    // include_steps: [$${distrib}/$${release}, $${distrib}]
    let mut bookworm = strings(&debian_setup);
    bookworm.push("setup/tune/bookworm_only".into());
    assert_eq!(tune(&[]), bookworm);
    let mut trixie = strings(&debian_setup);
    trixie.push("setup/tune/generic".into());
    assert_eq!(tune(&["-g", "release:trixie"]), trixie);
    assert_eq!(
        tune(&["-g", "distrib:centos"]),
        [
            "setup/configure_system/write_hostname",
            "setup/tune/centos_tune"
        ]
    );
}

#[test]
fn plan_extend_path_uses_a_variable() {
    let t = corpus();
    let bootstrap = [
        "bootstrap/_init_bootstrap/_init_0_create_rootfs",
        "bootstrap/_init_bootstrap/_init_1_write_issue",
        "bootstrap/make_rootfs/create_rootfs",
        "bootstrap/make_rootfs/write_issue",
    ];
    let mut debian = strings(&bootstrap);
    debian.extend(strings(&CHILD[4..11]));
    debian.extend(strings(&[
        "setup/finish/done",
        "export/pack/check_tools",
        "export/pack/tarball",
        "export/_clean_export/_clean_0_create_rootfs",
    ]));
    assert_eq!(plan(&t, "variants/appliance.yaml", &[]), debian);
    assert_eq!(
        plan(&t, "variants/appliance.yaml", &["-g", "distrib:debian"]),
        debian
    );
    // extend: $${distrib}/base -> variants/centos/base.yaml, which selects one microstep of
    // pack.
    let mut centos = strings(&bootstrap);
    centos.extend(strings(&[
        "setup/configure_system/write_hostname",
        "setup/tune/centos_tune",
        "setup/finish/done",
        "export/pack/tarball",
        "export/_clean_export/_clean_0_create_rootfs",
    ]));
    assert_eq!(
        plan(&t, "variants/appliance.yaml", &["-g", "distrib:centos"]),
        centos
    );
}

#[test]
fn plan_microstep_selection_keeps_the_listed_order() {
    let t = corpus();
    assert_eq!(
        plan(&t, "selection.yaml", &[]),
        [
            "bootstrap/_init_bootstrap/_init_0_create_rootfs",
            "bootstrap/_init_bootstrap/_init_1_write_issue",
            "bootstrap/make_rootfs/create_rootfs",
            "bootstrap/make_rootfs/write_issue",
            "setup/configure_system/no_errexit",
            "setup/configure_system/write_hostname",
            "setup/tune/bookworm_only",
            "export/pack/check_tools",
            "export/pack/tarball",
            "export/_clean_export/_clean_0_create_rootfs",
        ]
    );
}

/// The plan of `hooks.yaml`: section hooks in `_init_<section>`/`_clean_<section>`, step
/// hooks in the step, clean hooks newest first, a microstep left with only hooks dropped.
const HOOKS: [&str; 16] = [
    "bootstrap/_init_bootstrap/_init_0_one",
    "bootstrap/_init_bootstrap/_init_1_two",
    "bootstrap/first/one",
    "bootstrap/first/two",
    "bootstrap/second/_init_0_three",
    "bootstrap/second/_init_1_four",
    "bootstrap/second/three",
    "bootstrap/second/four",
    "bootstrap/second/_clean_1_four",
    "bootstrap/second/_clean_0_three",
    "bootstrap/_clean_bootstrap/_clean_1_two",
    "bootstrap/_clean_bootstrap/_clean_0_one",
    "setup/_init_setup/_init_0_two",
    "setup/third/five",
    "setup/_clean_setup/_clean_0_five",
    "export/_clean_export/_clean_0_hooks_only",
];

#[test]
fn plan_hooks_names_and_order() {
    let t = corpus();
    assert_eq!(plan(&t, "hooks.yaml", &[]), HOOKS);
}

// ---- Kameleon's bugs are not copied ----

#[test]
fn on_init_works() {
    // Kameleon 2.11 stops on any `on_init` ("wrong number of arguments (given 2, expected
    // 1)"). In cairn it runs at the start of its step, in the order declared.
    let t = corpus();
    let run = t.cairn(&["build", "hooks.yaml"]);
    run.success();
    assert_eq!(run.steps(), HOOKS);
    assert_eq!(
        t.read("build/hooks/hooks.log").lines().collect::<Vec<_>>(),
        [
            "bootstrap_init_one",
            "bootstrap_init_two",
            "one",
            "two",
            "init_three",
            "init_four",
            "three",
            "four",
            "clean_four",
            "clean_three",
            "bootstrap_clean_two",
            "bootstrap_clean_one",
            "setup_init_two",
            "five",
            "setup_clean_five",
            "export_clean_hooks_only",
        ]
    );
}

#[test]
fn a_child_that_leaves_out_a_section_keeps_its_parents() {
    // middle.yaml and child.yaml have no `bootstrap` nor `export`. Kameleon 2.11 drops a
    // parent's section the child leaves out, so its plan of child.yaml has neither; cairn
    // keeps the parent's, as if the child had written `- "@base"`.
    let t = corpus();
    let slugs = plan(&t, "child.yaml", &[]);
    assert!(
        slugs
            .iter()
            .any(|s| s == "bootstrap/make_rootfs/create_rootfs")
    );
    assert!(slugs.iter().any(|s| s == "export/pack/tarball"));

    let with_base = t.read("child.yaml") + "bootstrap:\n  - \"@base\"\nexport:\n  - \"@base\"\n";
    std::fs::write(t.path().join("child.yaml"), with_base).expect("rewrite child.yaml");
    assert_eq!(plan(&t, "child.yaml", &[]), slugs);
}

#[test]
fn a_triple_dash_inside_a_command_is_kept() {
    let t = corpus();
    t.cairn(&["build", "middle.yaml"]).success();
    let doc = rootfs(&t, "middle", "etc/doc.yaml");
    assert!(doc.starts_with("---\n"), "{doc:?}");
}

#[test]
fn an_empty_extend_means_no_parent() {
    // Kameleon 2.11 fails on `extend: ""` (it looks for a recipe named `.yaml`).
    let t = corpus();
    let run = t.cairn(&["info", "base.yaml"]);
    run.success();
}

#[test]
fn the_dialect_can_be_forced() {
    // A file without `$${` reads as cairn's syntax unless `--dialect kameleon` says otherwise.
    let t = Test::new().file(
        "recipe.yaml",
        r#"
        setup:
          - s:
            - m:
              - exec_local: echo '{{x}}' > out.txt
        "#,
    );
    let run = t.cairn(&["build", "recipe.yaml"]);
    run.code(3);
    run.stderr_has("unknown variable `x`");
    t.cairn(&["--dialect", "kameleon", "build", "recipe.yaml"])
        .success();
    assert_eq!(t.built("out.txt"), "{{x}}\n");
}
