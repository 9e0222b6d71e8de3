//! Property test (stable toolchain, part of the normal suite): generated recipes, well-formed
//! or not, go through the loader and the planner without a panic, and an error about the
//! recipe points at a line the recipe has (the same checks the cargo-fuzz targets make).

use proptest::prelude::*;

fn scalar() -> impl Strategy<Value = String> {
    prop_oneof![
        "[a-z_]{1,8}",
        Just("{{build_dir}}/x".to_string()),
        Just("{{sh rootfs}}".to_string()),
        Just("{{nope}}".to_string()),
        Just("$${name}".to_string()),
        Just("@microstep_id".to_string()),
        Just("\"quoted $x `y`\"".to_string()),
        Just("'it''s'".to_string()),
        Just("~".to_string()),
        Just("yes".to_string()),
        Just("[a, b]".to_string()),
        Just("{k: v}".to_string()),
        Just("*a".to_string()),
        Just("&a x".to_string()),
        Just("|\n  block".to_string()),
        Just("\t".to_string()),
        Just("{{".to_string()),
        Just("{{#each x}}{{/each}}".to_string()),
    ]
}

fn key() -> impl Strategy<Value = String> {
    prop_oneof![
        Just("global".to_string()),
        Just("setup".to_string()),
        Just("bootstrap".to_string()),
        Just("export".to_string()),
        Just("extend".to_string()),
        Just("checkpoint".to_string()),
        Just("exec_local".to_string()),
        Just("exec_in".to_string()),
        Just("group".to_string()),
        Just("rollback".to_string()),
        Just("verify".to_string()),
        Just("on_checkpoint".to_string()),
        Just("atomic".to_string()),
        Just("inputs".to_string()),
        Just("in_context".to_string()),
        Just("cmd".to_string()),
        Just("rootfs".to_string()),
        Just("secret".to_string()),
        "[a-z_]{1,6}",
    ]
}

/// A YAML-ish tree, rendered with block indentation.
#[derive(Debug, Clone)]
enum Tree {
    Scalar(String),
    Map(Vec<(String, Tree)>),
    Seq(Vec<Tree>),
}

fn tree() -> impl Strategy<Value = Tree> {
    scalar()
        .prop_map(Tree::Scalar)
        .prop_recursive(6, 64, 5, |inner| {
            prop_oneof![
                prop::collection::vec((key(), inner.clone()), 1..5).prop_map(Tree::Map),
                prop::collection::vec(inner, 1..5).prop_map(Tree::Seq),
            ]
        })
}

fn render(t: &Tree, indent: usize, out: &mut String) {
    let pad = " ".repeat(indent);
    match t {
        Tree::Scalar(s) => {
            out.push(' ');
            out.push_str(s);
            out.push('\n');
        }
        Tree::Map(entries) => {
            out.push('\n');
            for (k, v) in entries {
                out.push_str(&format!("{pad}{k}:"));
                render(v, indent + 2, out);
            }
        }
        Tree::Seq(items) => {
            out.push('\n');
            for v in items {
                out.push_str(&format!("{pad}-"));
                render(v, indent + 2, out);
            }
        }
    }
}

fn recipe() -> impl Strategy<Value = String> {
    prop::collection::vec((key(), tree()), 1..6).prop_map(|top| {
        let mut out = String::new();
        for (k, v) in top {
            out.push_str(&k);
            out.push(':');
            render(&v, 2, &mut out);
        }
        out
    })
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 400, failure_persistence: None, ..ProptestConfig::default() })]

    #[test]
    fn generated_recipes_load_or_fail_cleanly(text in recipe()) {
        let dir = tempfile::tempdir().unwrap();
        cairn::fuzzing::recipe(dir.path(), text.as_bytes());
    }

    #[test]
    fn arbitrary_bytes_load_or_fail_cleanly(bytes in prop::collection::vec(any::<u8>(), 0..512)) {
        let dir = tempfile::tempdir().unwrap();
        cairn::fuzzing::recipe(dir.path(), &bytes);
        cairn::fuzzing::yaml(&bytes);
    }

    #[test]
    fn generated_drivers_load_or_fail_cleanly(text in recipe()) {
        let dir = tempfile::tempdir().unwrap();
        cairn::fuzzing::driver(dir.path(), text.as_bytes());
        cairn::fuzzing::template(text.as_bytes());
        cairn::fuzzing::dialect(text.as_bytes());
    }
}
