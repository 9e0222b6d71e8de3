//! An installed cairn needs nothing from the source tree it was built from: the shipped drivers
//! are in the binary.

use std::path::Path;
use std::process::Command;

use crate::common::{Test, copy_tree, repo_root};

/// `cargo install` from a copy of the checkout, the copy then deleted: `driver list` shows every
/// shipped driver as built in, and a build on the copy driver makes and uses checkpoints.
#[test]
#[ignore = "builds and installs cairn with cargo (minutes); CI runs it"]
fn an_installed_cairn_has_the_shipped_drivers_without_its_source() {
    let root = repo_root();
    let work = tempfile::tempdir().expect("tempdir");
    let src = work.path().join("src-copy");
    for part in [
        "Cargo.toml",
        "Cargo.lock",
        "src",
        "drivers",
        "tests",
        "benches",
    ] {
        let from = root.join(part);
        if from.is_dir() {
            copy_tree(&from, &src.join(part));
        } else {
            std::fs::create_dir_all(&src).expect("mkdir");
            std::fs::copy(&from, src.join(part)).expect("copy");
        }
    }
    let prefix = work.path().join("prefix");
    let status = Command::new(env!("CARGO"))
        .args(["install", "--offline", "--debug", "--locked", "--path"])
        .arg(&src)
        .arg("--root")
        .arg(&prefix)
        // Reuse the compiled dependencies of this checkout; only cairn itself is built.
        .arg("--target-dir")
        .arg(root.join("target").join("install-test"))
        .status()
        .expect("run cargo install");
    assert!(status.success(), "cargo install failed");
    std::fs::remove_dir_all(&src).expect("delete the copied checkout");
    let cairn = prefix.join("bin").join("cairn");

    let t = Test::new().file(
        "recipe.yaml",
        r#"
        checkpoint: copy
        global:
          rootfs: "{{build_dir}}/rootfs"
        setup:
          - a:
              - one:
                  - exec_local: mkdir -p "{{rootfs}}" && echo one > "{{rootfs}}/one"
              - two:
                  - exec_local: echo two > "{{rootfs}}/two"
        "#,
    );
    let run = |args: &[&str]| {
        let out = Command::new(&cairn)
            .args(args)
            .current_dir(t.path())
            .env("NO_COLOR", "1")
            .env("XDG_CONFIG_HOME", t.path().join(".config"))
            .env_remove("CAIRN_DRIVER_PATH")
            .output()
            .expect("run the installed cairn");
        let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
        assert!(
            out.status.success(),
            "{args:?} failed\n{stdout}\n{}",
            String::from_utf8_lossy(&out.stderr)
        );
        stdout
    };
    let list = run(&["driver", "list"]);
    for name in [
        "btrfs", "copy", "hardlink", "qemu", "qemu-img", "reflink", "zfs",
    ] {
        let line = list
            .lines()
            .find(|l| l.split_whitespace().next() == Some(name))
            .unwrap_or_else(|| panic!("{name} is not listed\n{list}"));
        assert!(
            line.contains(&format!("<builtin>/{name}.yaml")),
            "{name} is not the built-in one: {line}"
        );
    }
    assert!(
        list.lines()
            .any(|l| l.starts_with("copy ") && l.contains(" yes ")),
        "copy is not enabled\n{list}"
    );
    run(&["build", "recipe.yaml", "-c"]);
    assert_eq!(t.built("rootfs/two"), "two\n");
    let rebuilt = run(&["build", "recipe.yaml", "-c"]);
    assert!(
        rebuilt.contains("Using checkpoint") || rebuilt.contains("restor"),
        "the rebuild did not use the checkpoints\n{rebuilt}"
    );
    assert!(Path::new(&cairn).exists());
}
