//! `cairn info`: what a recipe is made of, without running anything.

use crate::common::Test;

#[test]
fn info_lists_parents_step_files_and_resolved_globals() {
    let t = Test::new()
        .file(
            "base/base.yaml",
            r#"
            # DESCRIPTION: the base
            global:
              mirror: http://deb.example
              rootfs: "{{build_dir}}/rootfs"
            setup:
              - from_base
            "#,
        )
        .file(
            "base/steps/from_base.yaml",
            "- m:\n    - exec_local: \"true\"\n",
        )
        .file(
            "recipe.yaml",
            r#"
            # DESCRIPTION: a child recipe
            extend: base/base.yaml
            global:
              hostname: box
              fqdn: "{{hostname}}.{{domain}}"
              domain: example.org
            setup:
              - "@base"
              - own
            "#,
        )
        .file(
            "steps/setup/own.yaml",
            "- m:\n    - exec_local: touch ran\n",
        )
        .args(&["info", "recipe.yaml", "-g", "domain=lan"]);
    let run = t.run();
    run.success()
        .stdout_has("a child recipe")
        .stdout_has("base/base.yaml")
        .stdout_has("base/steps/from_base.yaml")
        .stdout_has("steps/setup/own.yaml")
        .stdout_has("mirror: http://deb.example")
        .stdout_has("fqdn: box.lan")
        .stdout_has("domain: lan  (command_line)");
    let rootfs = run
        .stdout
        .lines()
        .find_map(|l| l.trim().strip_prefix("rootfs: "))
        .unwrap_or_else(|| panic!("no rootfs global\n{run}"));
    assert!(rootfs.contains("build/recipe/rootfs"), "{rootfs}");
    // Parents are listed under their heading, before the step files.
    let parents = run.stdout.find("Parents:").expect("a Parents: section");
    let steps = run
        .stdout
        .find("Step files:")
        .expect("a Step files: section");
    let base = run.stdout.find("base/base.yaml").unwrap();
    assert!(parents < base && base < steps, "{run}");
    assert!(!t.exists("build"), "info runs nothing");
}
