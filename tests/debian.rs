//! The debian-minbase recipe for real: debootstrap bookworm (minbase) from the Debian mirror,
//! setup in a chroot, export as a tarball, with checkpoints; then a change to a late setup
//! variable (`-g motd=...`) rebuilds only from the microstep that uses it. One full build per
//! driver (btrfs, on a loop-mounted filesystem; and hardlink), since each debootstrap costs a
//! minute or two. They need root, debootstrap and the network; CI has all three. Set
//! CAIRN_SKIP_DEBIAN=1 to leave them out of a local run (not under CAIRN_REQUIRE_BACKENDS=1).

use std::path::Path;
use std::time::{Duration, Instant};

use assert_cmd::Command;

use crate::backends::LoopBtrfs;
use crate::common::{Run, Test, have_program, is_root, repo_root, require_backend};

/// The microsteps of debian-minbase, in order; the last two run again after `-g motd=...`.
const SLUGS: [&str; 9] = [
    "bootstrap/debootstrap/clean_rootfs",
    "bootstrap/debootstrap/debootstrap",
    "setup/debian_hostname/set_hostname",
    "setup/debian_hostname/set_hosts",
    "setup/debian_user/add_user",
    "setup/debian_packages/apt_update",
    "setup/debian_packages/install",
    "setup/debian_motd/write_motd",
    "export/debian_tarball/pack",
];
const CHANGED_FROM: usize = 7;

fn can_run() -> bool {
    let skip = std::env::var("CAIRN_SKIP_DEBIAN").is_ok_and(|v| v == "1")
        && !std::env::var("CAIRN_REQUIRE_BACKENDS").is_ok_and(|v| v == "1");
    if skip {
        eprintln!("skipping: CAIRN_SKIP_DEBIAN=1");
        return false;
    }
    let why = if !is_root() {
        Some("debootstrap and chroot need root")
    } else if !have_program("debootstrap") {
        Some("debootstrap is not installed")
    } else if !have_program("rsync") {
        Some("rsync is not installed")
    } else {
        None
    };
    if let Some(why) = why {
        eprintln!("debian-minbase: {why}");
    }
    require_backend("debian-minbase (root, debootstrap, network)", why.is_none())
}

/// Runs cairn in `dir` with a timeout fit for a debootstrap, and how long it took.
fn cairn(dir: &Path, args: &[&str]) -> (Run, Duration) {
    let started = Instant::now();
    let output = Command::cargo_bin("cairn")
        .expect("the cairn binary is built")
        .current_dir(dir)
        .args(args)
        .env("NO_COLOR", "1")
        .env("XDG_CONFIG_HOME", dir.join(".config"))
        .write_stdin(Vec::new())
        .timeout(Duration::from_secs(1500))
        .output()
        .expect("run cairn");
    let run = Run {
        args: args.iter().map(|a| a.to_string()).collect(),
        root: dir.to_path_buf(),
        stdout: String::from_utf8_lossy(&output.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
        code: output.status.code(),
    };
    (run, started.elapsed())
}

/// Each `Step N : slug` with what happened to it: true when it ran, false when a checkpoint
/// covered it.
fn actions(run: &Run) -> Vec<(String, bool)> {
    let lines: Vec<&str> = run.stdout.lines().collect();
    let mut out = Vec::new();
    for (i, line) in lines.iter().enumerate() {
        if let Some((_, slug)) = line.strip_prefix("Step ").and_then(|l| l.split_once(" : ")) {
            let ran = lines
                .get(i + 1)
                .is_some_and(|l| l.contains("Running the step"));
            out.push((slug.to_string(), ran));
        }
    }
    out
}

/// A file inside the exported tarball.
fn in_tarball(tarball: &Path, member: &str) -> String {
    let out = std::process::Command::new("tar")
        .arg("-xzOf")
        .arg(tarball)
        .arg(member)
        .output()
        .expect("run tar");
    assert!(out.status.success(), "{member} is in {}", tarball.display());
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// A full build with checkpoints, then one with a changed motd: checks both and returns their
/// durations.
fn full_then_resumed(t: &Test, recipe: &str, extra: &[&str]) -> (Duration, Duration) {
    let recipe_path = repo_root()
        .join("recipes")
        .join(format!("{recipe}.yaml"))
        .display()
        .to_string();
    let build_dir = t.path().join("build");
    let build_arg = build_dir.display().to_string();
    let mut args = vec![
        "build",
        recipe_path.as_str(),
        "-c",
        "-y",
        "-b",
        &build_arg,
        "-g",
        "gzip_level=1",
    ];
    args.extend_from_slice(extra);

    let (full, full_time) = cairn(t.path(), &args);
    full.success()
        .stdout_has(&format!("Successfully built '{recipe}.yaml'"));
    let ran = actions(&full);
    assert_eq!(
        ran.iter().map(|(s, _)| s.as_str()).collect::<Vec<_>>(),
        SLUGS,
        "{full}"
    );
    assert!(
        ran.iter().all(|(_, r)| *r),
        "a first build runs every microstep\n{full}"
    );
    let tarball = build_dir.join(format!("{recipe}.tar.gz"));
    assert_eq!(in_tarball(&tarball, "./etc/hostname"), "cairn-debian\n");
    assert!(
        in_tarball(&tarball, "./etc/passwd").contains("\ncairn:x:"),
        "the user is there"
    );
    assert!(in_tarball(&tarball, "./usr/lib/os-release").contains("bookworm"));
    assert!(
        in_tarball(&tarball, "./var/lib/dpkg/status").contains("Package: less\n"),
        "less is installed"
    );
    assert!(in_tarball(&tarball, "./etc/motd").contains("Welcome to cairn-debian"));

    args.extend_from_slice(&["-g", "motd=rebuilt by the test"]);
    let (resumed, resumed_time) = cairn(t.path(), &args);
    resumed.success();
    let ran = actions(&resumed);
    assert_eq!(
        ran.iter().map(|(s, _)| s.as_str()).collect::<Vec<_>>(),
        SLUGS,
        "{resumed}"
    );
    for (i, (slug, r)) in ran.iter().enumerate() {
        assert_eq!(
            *r,
            i >= CHANGED_FROM,
            "{slug} {}\n{resumed}",
            if i >= CHANGED_FROM {
                "runs"
            } else {
                "uses its checkpoint"
            }
        );
    }
    assert_eq!(in_tarball(&tarball, "./etc/motd"), "rebuilt by the test\n");
    assert!(in_tarball(&tarball, "./var/lib/dpkg/status").contains("Package: less\n"));
    eprintln!(
        "debian-minbase ({recipe}): full build {:.1} s, resumed build {:.1} s",
        full_time.as_secs_f64(),
        resumed_time.as_secs_f64()
    );
    (full_time, resumed_time)
}

#[test]
#[ignore = "needs root, debootstrap and the network; run with --include-ignored"]
fn debian_minbase_on_btrfs_resumes_from_the_changed_microstep() {
    if !can_run() {
        return;
    }
    let fs = LoopBtrfs::new(4 << 30).unwrap_or_else(|e| panic!("a loop-mounted btrfs: {e}"));
    let rootfs = fs.subvolume("rootfs");
    let t = Test::new();
    let rootfs_arg = format!("rootfs={}", rootfs.display());
    full_then_resumed(&t, "debian-minbase-btrfs", &["-g", &rootfs_arg]);
    // The checkpoints are snapshots beside the rootfs: 9 from the first build, 2 new ones.
    let store = fs.mnt().join("rootfs.checkpoints");
    let count = std::fs::read_dir(&store).map(|d| d.count()).unwrap_or(0);
    assert_eq!(count, SLUGS.len() + 2, "checkpoints in {}", store.display());
}

#[test]
#[ignore = "needs root, debootstrap and the network; run with --include-ignored"]
fn debian_minbase_with_hardlink_checkpoints_resumes_from_the_changed_microstep() {
    if !can_run() {
        return;
    }
    let t = Test::new();
    full_then_resumed(&t, "debian-minbase-hardlink", &[]);
}
