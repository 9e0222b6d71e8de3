//! Kameleon parity, point by point: each test is a small Kameleon-syntax tree written for it,
//! and checks what Kameleon 2.11 itself produces for the same text (measured with
//! benches/kameleon-parity, which diffs Kameleon's resolved commands against cairn's).

use crate::common::Test;

/// The commands `cairn plan RECIPE --json --commands` resolves for the microstep `slug`.
fn commands_of(t: &Test, recipe: &str, slug: &str) -> serde_json::Value {
    let run = t.cairn(&["plan", recipe, "--json", "--commands"]);
    run.success();
    for line in run.stdout.lines() {
        let v: serde_json::Value = serde_json::from_str(line).expect("one JSON object a line");
        if v["slug"] == slug {
            return v["commands"].clone();
        }
    }
    panic!("no microstep {slug} in\n{run}");
}

/// The slugs of a `cairn plan` (the last column of each line).
fn plan_slugs(run: &crate::common::Run) -> Vec<String> {
    run.stdout
        .lines()
        .filter_map(|l| l.split_whitespace().last())
        .map(str::to_string)
        .collect()
}

/// The text of each exec command of `slug`, in order.
fn exec_texts(t: &Test, recipe: &str, slug: &str) -> Vec<String> {
    commands_of(t, recipe, slug)
        .as_array()
        .expect("a list of commands")
        .iter()
        .map(|c| c["command"].as_str().unwrap_or_default().to_string())
        .collect()
}

#[test]
fn a_variable_name_with_a_dash_resolves_in_both_syntaxes() {
    let t = Test::new()
        .file(
            "kam.yaml",
            r#"
            global:
              my-var: dashed
              out: $${kameleon_cwd}/out
            setup:
              - s:
                - m:
                  - exec_local: echo $${my-var} $$my-var > $${out}
            "#,
        )
        .file(
            "native.yaml",
            r#"
            global:
              my-var: dashed
            setup:
              - s:
                - m:
                  - exec_local: echo {{[my-var]}} > {{build_dir}}/out
            "#,
        );
    t.cairn(&["build", "kam.yaml"]).success();
    assert_eq!(t.read("build/kam/out"), "dashed dashed\n");
    t.cairn(&["build", "native.yaml"]).success();
    assert_eq!(t.read("build/native/out"), "dashed\n");
    // An unknown one is named, dash and all.
    let run = t.cairn(&["plan", "kam.yaml", "-g", "out=$${other-var}"]);
    run.code(3).stderr_has("unknown variable `other-var`");
}

/// Kameleon's `write_*` aliases put `@2` on a line of its own in a heredoc; a block (`|`) last
/// argument loses its final newline on the way, so the file has no extra blank line.
#[test]
fn a_block_last_alias_argument_loses_its_final_newline() {
    let t = Test::new()
        .file(
            "steps/aliases/defaults.yaml",
            r#"
            write_local:
              - exec_local: |
                  cat > @1 <<EOF_KAMELEON_INTERNAL
                  @2
                  EOF_KAMELEON_INTERNAL
            write_twice:
              - exec_local: |
                  printf '%s|%s' "@1" "@2" > $${kameleon_cwd}/twice
            "#,
        )
        .file(
            "recipe.yaml",
            r#"
            aliases: defaults.yaml
            setup:
              - s:
                - m:
                  - write_local:
                    - $${kameleon_cwd}/hosts
                    - |
                      127.0.0.1 localhost
                      ::1 localhost
                  - write_twice:
                    - |
                      first
                      block
                    - last
            "#,
        );
    t.cairn(&["build", "recipe.yaml"]).success();
    assert_eq!(
        t.read("build/recipe/hosts"),
        "127.0.0.1 localhost\n::1 localhost\n"
    );
    // Only the last argument: one before it keeps its newline, as in Kameleon.
    assert_eq!(t.read("build/recipe/twice"), "first\nblock\n|last");
}

#[test]
fn an_at_2_written_in_argument_1_is_substituted_too() {
    let t = Test::new()
        .file(
            "steps/aliases/a.yaml",
            r#"
            say: [exec_local: "echo @1 > $${kameleon_cwd}/said"]
            pair: [exec_local: "echo @1 @2 >> $${kameleon_cwd}/said"]
            "#,
        )
        .file(
            "recipe.yaml",
            r#"
            aliases: a.yaml
            setup:
              - s:
                - m:
                  - say: "no second"
                  - pair: ["one @2", "two"]
                  - pair: ["@1", "x"]
            "#,
        );
    t.cairn(&["build", "recipe.yaml"]).success();
    // `@1` brought in by argument 2 is not substituted again: @1 is done by then.
    assert_eq!(
        t.read("build/recipe/said"),
        "no second\none two two\n@1 x\n"
    );
}

#[test]
fn data_paths_have_no_double_slash_when_the_recipe_is_named_from_its_own_dir() {
    let t = Test::new().file("steps/data/motd", "hello\n").file(
        "recipe.yaml",
        r#"
            setup:
              - s:
                - m:
                  - exec_local: cp $${kameleon_data_dir}/motd $${kameleon_cwd}/motd
                  - exec_local: echo $${kameleon_recipe_dir}
            "#,
    );
    for name in ["recipe.yaml", "./recipe.yaml"] {
        let cmds = exec_texts(&t, name, "setup/s/m");
        let root = t.path().canonicalize().expect("the tree");
        let root = root.display();
        assert_eq!(
            cmds,
            [
                format!("cp {root}/steps/data/motd {root}/build/recipe/motd"),
                format!("echo {root}"),
            ],
            "named {name}"
        );
    }
    t.cairn(&["build", "recipe.yaml"]).success();
    assert_eq!(t.read("build/recipe/motd"), "hello\n");
}

/// A child's global chooses its grandparent's `extend: ../backend/$${backend}`, as Kameleon
/// resolves a parent's `extend` with the globals of the recipes that extend it.
#[test]
fn a_child_global_chooses_the_parent_of_its_parent() {
    let t = Test::new()
        .file(
            "backend/chroot.yaml",
            "setup:\n  - s:\n    - chroot_step:\n      - exec_local: echo chroot\n",
        )
        .file(
            "backend/docker.yaml",
            "setup:\n  - s:\n    - docker_step:\n      - exec_local: echo docker\n",
        )
        .file(
            "env/base.yaml",
            "extend: ../backend/$${backend}\nglobal:\n  backend: chroot\nsetup:\n  - \"@base\"\n",
        )
        .file(
            "env/custom.yaml",
            "extend: base.yaml\nglobal:\n  backend: docker\nsetup:\n  - \"@base\"\n",
        );
    let run = t.cairn(&["plan", "env/custom.yaml"]);
    run.success();
    assert_eq!(plan_slugs(&run), ["setup/s/docker_step"]);
    let run = t.cairn(&["plan", "env/base.yaml"]);
    assert_eq!(plan_slugs(&run), ["setup/s/chroot_step"]);
}

/// Kameleon's files are YAML 1.1 as Ruby reads it, and the command gets Ruby's printing of
/// the number: `1.50` is 1.5, `17.10` is 17.1, `12:30` is 45000 (base 60).
#[test]
fn yaml_1_1_numbers_in_kameleon_files() {
    let t = Test::new().file(
        "recipe.yaml",
        r#"
        global:
          version: 1.50
          release: 17.10
          at: 12:30
          quoted: "17.10"
        setup:
          - s:
            - m:
              - exec_local: echo $${version} $${release} $${at} $${quoted}
        "#,
    );
    assert_eq!(
        exec_texts(&t, "recipe.yaml", "setup/s/m"),
        ["echo 1.5 17.1 45000 17.10"]
    );
}

/// A Kameleon driver that names each checkpoint after `@microstep_id`, and logs what it applies.
const DIR_DRIVER: &str = r#"
enabled?:
  - exec_local: test -d $${kameleon_cwd}
create:
  - exec_local: mkdir -p $${kameleon_cwd}/cp && touch $${kameleon_cwd}/cp/@microstep_id
apply:
  - exec_local: test -f $${kameleon_cwd}/cp/@microstep_id && echo @microstep_id >> $${kameleon_cwd}/applied
list:
  - exec_local: ls $${kameleon_cwd}/cp 2>/dev/null || true
clear:
  - exec_local: rm -rf $${kameleon_cwd}/cp
"#;

/// The rows of `cairn build RECIPE -l`: (ID, slug).
fn listed(t: &Test, recipe: &str) -> Vec<(String, String)> {
    let run = t.cairn(&["build", recipe, "-l"]);
    run.success();
    run.stdout
        .lines()
        .filter_map(|l| {
            let cols: Vec<&str> = l.split('|').map(str::trim).collect();
            (cols.len() > 2 && crate::common::is_short_id(cols[0]))
                .then(|| (cols[0].to_string(), cols[cols.len() - 1].to_string()))
        })
        .collect()
}

/// One step called twice: Kameleon names the second microstep `say%1`, and so does cairn, in
/// plans, `-l` and `-F`. Kameleon's drivers get 12-character IDs.
#[test]
fn repeated_microstep_names_get_percent_slugs_and_kameleon_drivers_short_ids() {
    let t = Test::new()
        .file("steps/checkpoints/dir.yaml", DIR_DRIVER)
        .file(
            "steps/setup/twice.yaml",
            "- word: x\n- say:\n  - exec_local: echo $${word} >> $${kameleon_cwd}/said\n",
        )
        .file(
            "recipe.yaml",
            r#"
            checkpoint: dir.yaml
            setup:
              - twice:
                - word: one
              - twice:
                - word: two
              - twice:
                - word: three
            "#,
        );
    let run = t.cairn(&["plan", "recipe.yaml"]);
    run.success();
    assert_eq!(
        plan_slugs(&run),
        ["setup/twice/say", "setup/twice/say%1", "setup/twice/say%2"]
    );
    t.cairn(&["build", "recipe.yaml", "-c"]).success();
    assert_eq!(t.read("build/recipe/said"), "one\ntwo\nthree\n");
    let rows = listed(&t, "recipe.yaml");
    let slugs: Vec<&str> = rows.iter().map(|(_, s)| s.as_str()).collect();
    assert_eq!(
        slugs,
        ["setup/twice/say", "setup/twice/say%1", "setup/twice/say%2"]
    );
    // The driver named each checkpoint after a 12-character ID, the one `-l` shows.
    let mut stored: Vec<String> = std::fs::read_dir(t.build_dir("recipe").join("cp"))
        .expect("the driver's store")
        .map(|e| {
            e.expect("an entry")
                .file_name()
                .to_string_lossy()
                .into_owned()
        })
        .collect();
    stored.sort();
    let mut ids: Vec<String> = rows.iter().map(|(id, _)| id.clone()).collect();
    ids.sort();
    assert_eq!(stored, ids);
    // Resuming after the second call runs the third only.
    let run = t.cairn(&["build", "recipe.yaml", "-c", "-F", "setup/twice/say%1"]);
    run.success();
    assert_eq!(t.read("build/recipe/said"), "one\ntwo\nthree\nthree\n");
    assert_eq!(t.read("build/recipe/applied"), format!("{}\n", rows[1].0));
}

/// Kameleon's context shells define helpers its step libraries call; cairn's Kameleon
/// contexts define the same, before the recipe's `env:` files (which may use them).
#[test]
fn kameleon_context_shells_define_kameleons_helpers() {
    let t = Test::new()
        .file("steps/env/funcs.sh", "from_env() { fail \"env saw fail\"; }\n")
        .file("payload", "downloaded\n")
        .file(
            "recipe.yaml",
            r#"
            env: funcs.sh
            global:
              out: $${kameleon_cwd}
            setup:
              - s:
                - m:
                  - exec_local: echo "$KAMELEON_CONTEXT_NAME $LC_ALL $DEBIAN_FRONTEND" > $${out}/local
                  - exec_out: echo "$KAMELEON_CONTEXT_NAME" > $${out}/out
                  - exec_in: echo "$KAMELEON_CONTEXT_NAME" > $${out}/in
                  - exec_local: type -t fail __download __find_linux_boot_device > $${out}/types
                  - exec_local: fail "it failed" 2> $${out}/fail.err || echo "status $?" > $${out}/fail
                  - exec_local: from_env 2> $${out}/env.err || true
                  - exec_local: __download "file://$${kameleon_recipe_dir}/payload" $${out}/payload > /dev/null
            "#,
        );
    let t = t.env("LC_ALL", "");
    t.cairn(&["build", "recipe.yaml"]).success();
    assert_eq!(t.read("build/recipe/env.err"), "env saw fail\n");
    assert_eq!(
        t.read("build/recipe/local"),
        "local_context POSIX noninteractive\n"
    );
    assert_eq!(t.read("build/recipe/out"), "out_context\n");
    assert_eq!(t.read("build/recipe/in"), "in_context\n");
    assert_eq!(
        t.read("build/recipe/types"),
        "function\nfunction\nfunction\n"
    );
    assert_eq!(t.read("build/recipe/fail.err"), "it failed\n");
    assert_eq!(t.read("build/recipe/fail"), "status 1\n");
    assert_eq!(t.read("build/recipe/payload"), "downloaded\n");

    // A cairn-syntax recipe's shells stay as they are.
    let t = Test::new().file(
        "native.yaml",
        "setup:\n  - s:\n    - m:\n      - exec_local: echo \"[${KAMELEON_CONTEXT_NAME:-}]\" > {{build_dir}}/name\n",
    );
    t.cairn(&["build", "native.yaml"]).success();
    assert_eq!(t.read("build/native/name"), "[]\n");
}

/// Kameleon calls an alias without arguments by its bare name, and a Kameleon driver's
/// operations may call the recipe's aliases (the public library's docker driver does both).
#[test]
fn bare_alias_calls_and_aliases_in_a_kameleon_driver() {
    let t = Test::new()
        .file(
            "steps/aliases/a.yaml",
            r#"
            log_it: [exec_local: "echo @1 >> $${kameleon_cwd}/log"]
            mark: [exec_local: "echo marked >> $${kameleon_cwd}/log"]
            "#,
        )
        .file(
            "steps/checkpoints/logged.yaml",
            r#"
            enabled?:
              - exec_local: "true"
            create:
              - mark
              - log_it: "create @microstep_id"
            apply:
              - exec_local: "true"
            list:
              - exec_local: "true"
            clear:
              - exec_local: "true"
            "#,
        )
        .file(
            "recipe.yaml",
            r#"
            aliases: a.yaml
            checkpoint: logged.yaml
            global:
              log: $${kameleon_cwd}/log
            setup:
              - s:
                - m:
                  - mark
            "#,
        );
    let run = t.cairn(&["build", "recipe.yaml", "-c"]);
    run.success();
    let id = listed_id(&run);
    assert_eq!(
        t.read("build/recipe/log"),
        format!("marked\nmarked\ncreate {id}\n")
    );
}

/// The ID of the one checkpoint a build created (`--> Creating checkpoint : ID`).
fn listed_id(run: &crate::common::Run) -> String {
    run.stdout
        .lines()
        .find_map(|l| l.trim().strip_prefix("--> Creating checkpoint : "))
        .map(|l| l.split_whitespace().next().unwrap_or_default().to_string())
        .unwrap_or_else(|| panic!("no checkpoint created\n{run}"))
}

/// `x: "$${x} b"` builds on the value it overrides once, in `cairn info` as in commands.
#[test]
fn info_applies_a_self_referencing_global_once() {
    let t = Test::new()
        .file(
            "parent.yaml",
            "global:\n  x: a\nsetup:\n  - s:\n    - m:\n      - exec_local: echo $${x}\n",
        )
        .file(
            "child.yaml",
            "extend: parent\nglobal:\n  x: \"$${x} b\"\nsetup:\n  - \"@base\"\n",
        );
    let run = t.cairn(&["info", "child.yaml"]);
    run.success();
    let x: Vec<&str> = run
        .stdout
        .lines()
        .filter(|l| l.trim_start().starts_with("x: "))
        .collect();
    assert_eq!(x, ["  x: a b  (global)"], "{run}");
    assert_eq!(exec_texts(&t, "child.yaml", "setup/s/m"), ["echo a b"]);
    let run = t.cairn(&["info", "child.yaml", "-g", "x=$${x} c"]);
    run.stdout_has("  x: a b c  (command_line)");
}

/// `cairn plan --commands`: under each microstep every resolved command with its kind and
/// context, then the driver's operations, `{{checkpoint_id}}` left for each checkpoint to fill.
#[test]
fn plan_commands_shows_every_resolved_command_and_the_driver() {
    let t = Test::new()
        .file(
            "steps/checkpoints/dir.yaml",
            r#"
            enabled?:
              - exec_local: test -d $${kameleon_cwd}
            create:
              - exec_local: touch $${kameleon_cwd}/@microstep_id
            apply:
              - exec_local: test -f $${kameleon_cwd}/@microstep_id
            list:
              - exec_local: ls $${kameleon_cwd}
            clear:
              - exec_local: rm -f $${kameleon_cwd}/*
            "#,
        )
        .file(
            "recipe.yaml",
            r#"
            checkpoint: dir.yaml
            global:
              name: world
            setup:
              - s:
                - m:
                  - on_setup_init:
                    - exec_local: echo init
                  - exec_in: |
                      echo hello $${name}
                      echo bye
                  - pipe:
                    - exec_out: cat /etc/hostname
                    - exec_in: cat > /tmp/h
                  - rescue:
                    - exec_local: "false"
                    - breakpoint: it failed
            "#,
        );
    let run = t.cairn(&["plan", "recipe.yaml", "--commands"]);
    run.success();
    let ids = |text: &str| -> String {
        text.lines()
            .map(|l| {
                let cols: Vec<&str> = l.split_whitespace().collect();
                match cols.get(1) {
                    Some(id) if crate::common::is_short_id(id) => l.replace(id, "<id>"),
                    _ => l.to_string(),
                }
            })
            .collect::<Vec<_>>()
            .join("\n")
    };
    let expected = r#"
  1  <id>  run             setup/_init_setup/_init_0_m
       [local] echo init
  2  <id>  run             setup/s/m
       [in] echo hello world
            echo bye
       pipe:
         from [out] cat /etc/hostname
         to [in] cat > /tmp/h
       rescue:
         [local] false
         breakpoint it failed
driver dir (steps/checkpoints/dir.yaml)
  enabled:
    [local] test -d [TMP]/build/recipe
  create:
    [local] touch [TMP]/build/recipe/{{checkpoint_id}}
  apply:
    [local] test -f [TMP]/build/recipe/{{checkpoint_id}}
  list:
    [local] ls [TMP]/build/recipe
  clear:
    [local] rm -f [TMP]/build/recipe/*"#;
    assert_eq!(
        ids(&crate::common::normalize(&run.stdout, t.path())),
        expected.trim_start_matches('\n')
    );

    let run = t.cairn(&["plan", "recipe.yaml", "--commands", "--json"]);
    run.success();
    let events: Vec<serde_json::Value> = run
        .stdout
        .lines()
        .map(|l| serde_json::from_str(l).expect("a JSON event"))
        .collect();
    let m = events
        .iter()
        .find(|e| e["slug"] == "setup/s/m")
        .expect("the microstep");
    assert_eq!(
        m["commands"],
        serde_json::json!([
            {"kind": "exec", "context": "in", "command": "echo hello world\necho bye"},
            {"kind": "pipe",
             "from": {"context": "out", "command": "cat /etc/hostname"},
             "to": {"context": "in", "command": "cat > /tmp/h"}},
            {"kind": "rescue", "commands": [
                {"kind": "exec", "context": "local", "command": "false"},
                {"kind": "breakpoint", "message": "it failed"}]}
        ])
    );
    let hook = events
        .iter()
        .find(|e| e["slug"] == "setup/_init_setup/_init_0_m")
        .expect("the hook");
    assert_eq!(hook["hook"], "section_init");
    let driver = events
        .iter()
        .find(|e| e["event"] == "plan_driver")
        .expect("the driver");
    let root = t.path().canonicalize().expect("the tree");
    assert_eq!(
        driver["operations"]["create"],
        serde_json::json!([{"kind": "exec", "context": "local",
            "command": format!("touch {}/build/recipe/{{{{checkpoint_id}}}}", root.display())}])
    );
}

/// Kameleon substitutes variables into the YAML it dumped and parses it again, so a one-line
/// command loses the spaces an empty variable leaves at its end; a quoted one keeps them.
#[test]
fn an_empty_variable_at_the_end_of_a_plain_command_leaves_no_space() {
    let t = Test::new().file(
        "recipe.yaml",
        r#"
        global:
          installer: ""
        setup:
          - s:
            - m:
              - exec_local: rm -f $${installer}
              - exec_local: "$${installer} true"
        "#,
    );
    assert_eq!(
        exec_texts(&t, "recipe.yaml", "setup/s/m"),
        ["rm -f", " true"]
    );
}
