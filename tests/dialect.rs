//! The dialect is a property of the recipe tree: the top recipe's syntax (its extend chain), or
//! `--dialect`, decides how every file of the tree is read.

use crate::common::Test;

/// A Kameleon tree whose alias file has no Kameleon marker of its own: the argument
/// `$${rootfs}/note`, written in the Kameleon step, is read as Kameleon text, so the line goes
/// into the rootfs, not into `build/<pid of bash>{rootfs}/note`.
#[test]
fn an_alias_file_without_markers_is_read_in_the_kameleon_trees_dialect() {
    let t = Test::new()
        .file(
            "steps/aliases/lines.yaml",
            r#"
            put_line: [exec_local: echo "@2" >> @1]
            "#,
        )
        .file(
            "steps/setup/note.yaml",
            r#"
            - write:
              - exec_local: mkdir -p $${rootfs}
              - put_line: ["$${rootfs}/note", "hello"]
            "#,
        )
        .file(
            "recipe.yaml",
            r#"
            aliases: lines.yaml
            global:
              rootfs: $${kameleon_cwd}/rootfs
            setup:
              - note
            "#,
        );
    t.cairn(&["build", "recipe.yaml"]).success();
    assert_eq!(t.built("rootfs/note"), "hello\n");
    let strays: Vec<String> = std::fs::read_dir(t.build_dir("recipe"))
        .expect("the build dir")
        .filter_map(|e| e.ok())
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| n.contains("{rootfs}"))
        .collect();
    assert!(strays.is_empty(), "a note went astray: {strays:?}");
}

/// `--dialect native` reads a step file with Kameleon markers as cairn's: `$$` stays the
/// shell's, `{{x}}` is a variable.
#[test]
fn dialect_native_reads_every_file_of_the_tree_natively() {
    let t = Test::new()
        .file(
            "steps/setup/pid.yaml",
            r#"
            - show:
              - exec_local: echo "$${greeting} {{greeting}}" > pid.txt
            "#,
        )
        .file(
            "recipe.yaml",
            r#"
            global:
              greeting: hi
            setup:
              - pid
            "#,
        );
    t.cairn(&["--dialect", "native", "build", "recipe.yaml"])
        .success();
    // Natively `$${greeting}` is bash's `$$` (a PID) and a literal `{greeting}`.
    let text = t.built("pid.txt");
    let (pid, rest) = text.split_once('{').expect("a brace");
    assert!(
        !pid.is_empty() && pid.bytes().all(|b| b.is_ascii_digit()),
        "{text:?}"
    );
    assert_eq!(rest, "greeting} hi\n");
}

/// `-g` values are read in the tree's dialect: `$${x}` is a variable in a Kameleon tree.
#[test]
fn a_command_line_value_is_read_in_the_trees_dialect() {
    let t = Test::new().file(
        "recipe.yaml",
        r#"
        global:
          base: one
          word: $${base}
        setup:
          - s:
            - m:
              - exec_local: echo "$${word}" > $${kameleon_cwd}/word
        "#,
    );
    t.cairn(&["build", "recipe.yaml", "-g", "word=$${base} two"])
        .success();
    assert_eq!(t.built("word"), "one two\n");
}
