//! The recipe shipped in recipes/: it must build as documented, from the repository root.

use std::path::Path;
use std::process::Command as Std;

use crate::common::{Test, repo_root};

/// Builds recipes/hello.yaml from the repository root into a temporary build dir, with extra
/// arguments, and returns the test (its tree holds the build dir, `out/`).
fn build_hello(extra: &[&str]) -> Test {
    let t = Test::new();
    let build_dir = t.path().join("out");
    let t = t
        .current_dir(repo_root())
        .args(&["build", "recipes/hello.yaml", "-b"])
        .arg(build_dir.display().to_string())
        .args(extra);
    t.run()
        .success()
        .stdout_has("Successfully built 'hello.yaml'");
    t
}

/// A file inside a tarball, read with the system's tar.
fn from_tarball(tarball: &Path, member: &str) -> String {
    let out = Std::new("tar")
        .arg("-xzOf")
        .arg(tarball)
        .arg(member)
        .output()
        .expect("run tar");
    assert!(
        out.status.success(),
        "tar could not read {member} from {}: {}",
        tarball.display(),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

#[test]
fn hello_builds_a_tarball_with_the_greeting() {
    let t = build_hello(&[]);
    let tarball = t.path().join("out/hello.tar.gz");
    assert!(tarball.is_file(), "no {}", tarball.display());
    assert_eq!(from_tarball(&tarball, "./etc/motd"), "Hello from hello\n");
    assert_eq!(from_tarball(&tarball, "./etc/hostname"), "hello\n");
    let passwd = from_tarball(&tarball, "./etc/passwd");
    assert!(
        passwd.starts_with("cairn:x:1000:1000::/home/cairn:"),
        "{passwd}"
    );
    assert_eq!(
        from_tarball(&tarball, "./home/cairn/README"),
        "welcome, cairn\n"
    );
    // The setup clean hook ran.
    assert_eq!(t.read("out/build.log"), "setup finished for hello\n");
}

#[test]
fn hello_takes_globals_from_the_command_line() {
    let t = build_hello(&[
        "-g",
        "greeting=Hi there, {{user_name}}",
        "-g",
        "user_name=ada",
    ]);
    let tarball = t.path().join("out/hello.tar.gz");
    assert_eq!(from_tarball(&tarball, "./etc/motd"), "Hi there, ada\n");
    assert!(from_tarball(&tarball, "./etc/passwd").starts_with("ada:"));

    // A global the greeting is made of.
    let t = build_hello(&["-g", "hostname=box"]);
    let tarball = t.path().join("out/hello.tar.gz");
    assert_eq!(from_tarball(&tarball, "./etc/motd"), "Hello from box\n");
    assert_eq!(from_tarball(&tarball, "./etc/hostname"), "box\n");
}

#[test]
fn hello_dry_run_lists_every_microstep() {
    let t = Test::new();
    let out = t.path().join("out");
    let t = t
        .current_dir(repo_root())
        .args(&["build", "recipes/hello.yaml", "--dry-run", "-b"])
        .arg(out.display().to_string());
    let run = t.run();
    run.success();
    for slug in [
        "bootstrap/init_rootfs/make_tree",
        "setup/base_files/hostname",
        "setup/add_user/passwd",
        "setup/greeting/write_motd",
        "setup/_clean_setup/_clean_0_write_motd",
        "export/pack/tarball",
    ] {
        run.stdout_has(slug);
    }
    assert!(!out.exists());
}
