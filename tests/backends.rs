//! The snapshot drivers against the real thing: btrfs on a loop-mounted image, ZFS through
//! zfs-fuse on a file vdev, a QEMU VM (TCG, no OS) with a qcow2 disk driven over its monitor
//! socket, and qemu-img on a qcow2 file. Each passes `cairn driver check`, whose scenario
//! proves a restore (for the VM and the image: by writing and hashing disk patterns through
//! the drivers' `mutate` and `fingerprint` operations). Each test needs root or a tool; where
//! they are missing it says why and skips, unless CAIRN_REQUIRE_BACKENDS=1. Every mount, loop
//! device, daemon and VM a test starts is undone by a guard when the test ends, pass or fail.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::common::loopfs::{LoopFs, missing, sh, sparse_file};
use crate::common::{Run, Test, repo_root, require_backend};

pub fn shipped(name: &str) -> String {
    repo_root()
        .join("drivers")
        .join(format!("{name}.yaml"))
        .display()
        .to_string()
}

/// Whether a backend can be used here; prints why not (and fails under CAIRN_REQUIRE_BACKENDS).
#[track_caller]
fn backend(name: &str, why_not: Option<String>) -> bool {
    if let Some(why) = &why_not {
        eprintln!("{name}: {why}");
    }
    require_backend(name, why_not.is_none())
}

#[track_caller]
fn assert_passes(run: &Run, driver: &str) {
    run.success()
        .stdout_has(&format!("driver `{driver}` passes"));
    for op in [
        "enabled", "create A", "create B", "apply A", "apply B", "list", "delete A", "clear",
    ] {
        assert!(
            run.stdout
                .lines()
                .any(|l| l.starts_with(op) && l.contains(" pass ")),
            "`{op}` passes\n{run}"
        );
    }
}

/// The driver's export and import pass the check, B exported as a delta against A.
#[track_caller]
fn assert_shares_with_deltas(run: &Run) {
    for op in ["export A", "export B", "import B", "import A"] {
        assert!(
            run.stdout
                .lines()
                .any(|l| l.starts_with(op) && l.contains(" pass ")),
            "`{op}` passes\n{run}"
        );
    }
    assert!(run.stdout.contains("a delta against A"), "{run}");
}

// ---- btrfs ----

/// A btrfs filesystem on a loop device over a sparse file; unmounted and detached when dropped.
pub struct LoopBtrfs(LoopFs);

impl LoopBtrfs {
    /// Why there is none here, as an error.
    pub fn new(bytes: u64) -> Result<LoopBtrfs, String> {
        if let Some(why) = missing(&["btrfs"], true) {
            return Err(why);
        }
        LoopFs::new("btrfs", &["mkfs.btrfs", "-q"], bytes).map(LoopBtrfs)
    }

    pub fn mnt(&self) -> PathBuf {
        self.0.mnt()
    }

    /// A new subvolume at the top of the filesystem.
    pub fn subvolume(&self, name: &str) -> PathBuf {
        let path = self.mnt().join(name);
        sh(
            "btrfs",
            &["-q", "subvolume", "create", &path.display().to_string()],
        )
        .unwrap_or_else(|e| panic!("create subvolume: {e}"));
        path
    }
}

#[test]
#[ignore = "needs btrfs (a loop-mounted btrfs); run with --include-ignored"]
fn the_btrfs_driver_passes_its_conformance_check_on_a_loop_mounted_btrfs() {
    // Its export and import (btrfs send/receive, B as a delta against A) are part of the check.
    let fs = LoopBtrfs::new(1 << 30);
    if !backend("btrfs (a loop-mounted btrfs)", fs.as_ref().err().cloned()) {
        return;
    }
    let fs = fs.expect("checked above");
    let target = fs.subvolume("target");
    let t = Test::new();
    let run = t.cairn(&[
        "driver",
        "check",
        &shipped("btrfs"),
        "--target",
        &target.display().to_string(),
    ]);
    assert_passes(&run, "btrfs");
    assert_shares_with_deltas(&run);
    // `clear` left the working subvolume and removed the store beside it.
    assert!(target.is_dir(), "{run}");
    assert!(!fs.mnt().join("target.checkpoints").exists(), "{run}");
    assert!(
        !sh(
            "btrfs",
            &["subvolume", "list", &fs.mnt().display().to_string()]
        )
        .unwrap_or_default()
        .contains("checkpoints")
    );

    // A target that does not exist yet, on btrfs, is made a subvolume by `enabled`.
    let fresh = fs.mnt().join("fresh");
    let run = t.cairn(&[
        "driver",
        "check",
        &shipped("btrfs"),
        "--target",
        &fresh.display().to_string(),
    ]);
    assert_passes(&run, "btrfs");
    assert!(
        sh(
            "btrfs",
            &["subvolume", "show", &fresh.display().to_string()]
        )
        .is_ok()
    );

    // A plain directory on btrfs is refused, with the reason.
    let plain = fs.mnt().join("plain");
    std::fs::create_dir(&plain).expect("mkdir");
    let run = t.cairn(&[
        "driver",
        "check",
        &shipped("btrfs"),
        "--target",
        &plain.display().to_string(),
    ]);
    run.code(4).stderr_has("at `enabled`").stderr_has(&format!(
        "target {} is not a btrfs subvolume",
        plain.display()
    ));
}

#[test]
fn the_btrfs_driver_says_why_it_cannot_work_on_another_filesystem() {
    let t = Test::new();
    if sh("stat", &["-f", "-c", "%T", &t.path().display().to_string()])
        .is_ok_and(|fs| fs == "btrfs")
    {
        eprintln!("skipping: the temporary directory is on btrfs");
        return;
    }
    let target = t.path().join("target");
    std::fs::create_dir(&target).expect("mkdir");
    let run = t.cairn(&[
        "driver",
        "check",
        &shipped("btrfs"),
        "--target",
        &target.display().to_string(),
    ]);
    run.code(4)
        .stderr_has("fails the conformance check at `enabled`")
        .stderr_has(&format!(
            "target {} is not a btrfs subvolume",
            target.display()
        ));
}

#[test]
#[ignore = "needs btrfs (a loop-mounted btrfs); run with --include-ignored"]
fn btrfs_checkpoints_of_a_build_live_beside_the_target_and_survive_an_older_apply() {
    let fs = LoopBtrfs::new(1 << 30);
    if !backend("btrfs (a loop-mounted btrfs)", fs.as_ref().err().cloned()) {
        return;
    }
    let fs = fs.expect("checked above");
    let rootfs = fs.subvolume("rootfs");
    let t = Test::new().file(
        "recipe.yaml",
        r#"
        checkpoint: btrfs
        global:
          rootfs: /unused
          two: "2"
        setup:
          - s:
              - one:
                  - exec_local: echo 1 > "{{rootfs}}/one"
              - two:
                  - exec_local: echo "{{two}}" > "{{rootfs}}/two"
              - three:
                  - exec_local: echo 3 > "{{rootfs}}/three"
        "#,
    );
    let rootfs_arg = format!("rootfs={}", rootfs.display());
    t.cairn(&["build", "recipe.yaml", "-c", "-g", &rootfs_arg])
        .success();
    let store = fs.mnt().join("rootfs.checkpoints");
    let ids = || -> Vec<String> {
        let mut v: Vec<String> = std::fs::read_dir(&store)
            .map(|d| {
                d.filter_map(|e| e.ok())
                    .map(|e| e.file_name().to_string_lossy().into_owned())
                    .collect()
            })
            .unwrap_or_default();
        v.sort();
        v
    };
    let first = ids();
    assert_eq!(
        first.len(),
        3,
        "three checkpoints beside the target: {first:?}"
    );

    // A change to `two` resumes from the checkpoint of `one`: applying it keeps the checkpoints
    // of the first build's `two` and `three`, now stale, untouched and read-only.
    let run = t.cairn(&[
        "build",
        "recipe.yaml",
        "-c",
        "-g",
        &rootfs_arg,
        "-g",
        "two=22",
    ]);
    run.success().stdout_has("Applying checkpoint");
    let now = ids();
    assert_eq!(now.len(), 5, "{now:?}\n{run}");
    assert!(first.iter().all(|id| now.contains(id)), "{run}");
    for id in &now {
        let ro = sh(
            "btrfs",
            &[
                "property",
                "get",
                &store.join(id).display().to_string(),
                "ro",
            ],
        )
        .unwrap_or_default();
        assert_eq!(ro, "ro=true", "checkpoint {id} is read-only");
    }
    assert_eq!(
        std::fs::read_to_string(rootfs.join("two")).unwrap_or_default(),
        "22\n"
    );
    let listed = t.cairn(&[
        "checkpoints",
        "recipe.yaml",
        "-g",
        &rootfs_arg,
        "-g",
        "two=22",
    ]);
    listed.success();
    assert_eq!(listed.stdout.matches("valid").count(), 3, "{listed}");
    assert_eq!(listed.stdout.matches("stale").count(), 2, "{listed}");
}

// ---- ZFS (zfs-fuse) ----

const ZFS_SOCKET: &str = "/var/run/zfs/zfs_socket";

/// A zfs-fuse daemon this test started (stopped when dropped), or one that was already running
/// (left alone).
struct ZfsFuse {
    child: Option<Child>,
    /// zfs-fuse listens on one fixed socket: test runs on one machine take turns (released
    /// after the daemon is stopped, when the fields drop).
    _turn: std::fs::File,
}

impl ZfsFuse {
    fn start() -> Result<ZfsFuse, String> {
        if let Some(why) = missing(&["zfs-fuse", "zpool", "zfs"], true) {
            return Err(why);
        }
        if !Path::new("/dev/fuse").exists() {
            return Err("no /dev/fuse".into());
        }
        let turn = std::fs::File::create(std::env::temp_dir().join("cairn-zfs-fuse-test.lock"))
            .map_err(|e| format!("the zfs test lock: {e}"))?;
        turn.lock().map_err(|e| format!("the zfs test lock: {e}"))?;
        if Path::new(ZFS_SOCKET).exists() && sh("zpool", &["list"]).is_ok() {
            eprintln!("using the zfs-fuse daemon that is already running");
            return Ok(ZfsFuse {
                child: None,
                _turn: turn,
            });
        }
        let child = Command::new("zfs-fuse")
            .args(["--no-daemon", "--no-kstat-mount"])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .map_err(|e| format!("zfs-fuse: {e}"))?;
        let daemon = ZfsFuse {
            child: Some(child),
            _turn: turn,
        };
        let deadline = Instant::now() + Duration::from_secs(20);
        while !(Path::new(ZFS_SOCKET).exists() && sh("zpool", &["list"]).is_ok()) {
            if Instant::now() > deadline {
                return Err("zfs-fuse did not answer within 20 s".into());
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        Ok(daemon)
    }
}

impl Drop for ZfsFuse {
    fn drop(&mut self) {
        let Some(mut child) = self.child.take() else {
            return;
        };
        // SIGTERM lets it unmount and close the pool files; SIGKILL if it does not go.
        let _ = sh("kill", &["-TERM", &child.id().to_string()]);
        let deadline = Instant::now() + Duration::from_secs(30);
        while Instant::now() < deadline {
            if let Ok(Some(_)) = child.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        let _ = child.kill();
        let _ = child.wait();
    }
}

/// A pool on a sparse file vdev, mounted under a temporary directory; destroyed when dropped.
struct Zpool {
    name: String,
    dir: tempfile::TempDir,
}

impl Zpool {
    fn create() -> Result<Zpool, String> {
        let dir = tempfile::Builder::new()
            .prefix("cairn-zfs-")
            .tempdir()
            .map_err(|e| e.to_string())?;
        let vdev = dir.path().join("vdev.img");
        sparse_file(&vdev, 256 << 20)?;
        let name = format!("cairntest{}", std::process::id());
        let mnt = dir.path().join("mnt").display().to_string();
        sh(
            "zpool",
            &["create", "-m", &mnt, &name, &vdev.display().to_string()],
        )?;
        Ok(Zpool { name, dir })
    }

    fn mnt(&self) -> PathBuf {
        self.dir.path().join("mnt")
    }
}

impl Drop for Zpool {
    fn drop(&mut self) {
        if sh("zpool", &["destroy", &self.name]).is_err() {
            let _ = sh("zpool", &["destroy", "-f", &self.name]);
        }
    }
}

#[test]
#[ignore = "needs zfs (zfs-fuse); run with --include-ignored"]
fn the_zfs_driver_passes_its_conformance_check_through_zfs_fuse() {
    let daemon = ZfsFuse::start();
    if !backend("zfs (zfs-fuse)", daemon.as_ref().err().cloned()) {
        return;
    }
    let _daemon = daemon.expect("checked above");
    let pool = Zpool::create().unwrap_or_else(|e| panic!("zpool create: {e}"));
    let dataset = format!("{}/target", pool.name);
    sh("zfs", &["create", &dataset]).unwrap_or_else(|e| panic!("zfs create: {e}"));
    let target = pool.mnt().join("target");
    assert!(target.is_dir(), "{} is mounted", target.display());
    let t = Test::new();
    let run = t.cairn(&[
        "driver",
        "check",
        &shipped("zfs"),
        "--target",
        &target.display().to_string(),
        "-g",
        &format!("dataset={dataset}"),
    ]);
    assert_passes(&run, "zfs");
    assert_shares_with_deltas(&run);

    // After `clear`, the working dataset is all that is left: no snapshot, no retired clone.
    let all = sh(
        "zfs",
        &["list", "-H", "-t", "all", "-o", "name", "-r", &pool.name],
    )
    .unwrap_or_default();
    assert_eq!(
        all.lines().collect::<Vec<_>>(),
        [pool.name.as_str(), dataset.as_str()],
        "{run}"
    );

    // Without `dataset`, the driver finds the one mounted at the target. `driver check` wants
    // an empty target, and the check above left its files in the first one: a fresh dataset.
    let second = format!("{}/second", pool.name);
    sh("zfs", &["create", &second]).unwrap_or_else(|e| panic!("zfs create: {e}"));
    let run = t.cairn(&[
        "driver",
        "check",
        &shipped("zfs"),
        "--target",
        &pool.mnt().join("second").display().to_string(),
    ]);
    assert_passes(&run, "zfs");

    // A target that is no ZFS mountpoint is refused with the reason.
    let run = t.cairn(&["driver", "check", &shipped("zfs")]);
    run.code(4)
        .stderr_has("at `enabled`")
        .stderr_has("no ZFS dataset is mounted at");
}

// ---- QEMU ----

/// A QEMU VM (TCG, no OS, paused at start) with one disk and a monitor socket; killed by pid
/// when dropped.
struct Vm {
    child: Child,
    monitor: PathBuf,
}

impl Vm {
    fn start(dir: &Path, disk: &Path, format: &str) -> Result<Vm, String> {
        let monitor = dir.join("monitor.sock");
        let log = std::fs::File::create(dir.join("qemu.log")).map_err(|e| e.to_string())?;
        let log2 = log.try_clone().map_err(|e| e.to_string())?;
        let child = Command::new("qemu-system-x86_64")
            .args([
                "-accel",
                "tcg",
                "-nodefaults",
                "-display",
                "none",
                "-S",
                "-m",
                "64",
                "-monitor",
            ])
            .arg(format!("unix:{},server,nowait", monitor.display()))
            .arg("-drive")
            .arg(format!(
                "file={},if=none,id=drive0,format={format}",
                disk.display()
            ))
            .args(["-device", "virtio-blk-pci,drive=drive0"])
            .stdin(Stdio::null())
            .stdout(log)
            .stderr(log2)
            .spawn()
            .map_err(|e| format!("qemu-system-x86_64: {e}"))?;
        let mut vm = Vm { child, monitor };
        let deadline = Instant::now() + Duration::from_secs(30);
        while !vm.monitor.exists() {
            if let Ok(Some(status)) = vm.child.try_wait() {
                let log = std::fs::read_to_string(dir.join("qemu.log")).unwrap_or_default();
                return Err(format!("qemu exited ({status}): {log}"));
            }
            if Instant::now() > deadline {
                return Err("qemu made no monitor socket within 30 s".into());
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        Ok(vm)
    }
}

impl Drop for Vm {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn qemu_img_create(path: &Path, format: &str) {
    sh(
        "qemu-img",
        &[
            "create",
            "-q",
            "-f",
            format,
            &path.display().to_string(),
            "64M",
        ],
    )
    .unwrap_or_else(|e| panic!("qemu-img create: {e}"));
}

#[test]
#[ignore = "needs qemu (qemu-system-x86_64, qemu-img); run with --include-ignored"]
fn the_qemu_driver_passes_its_conformance_check_on_a_running_vm() {
    if !backend(
        "qemu (qemu-system-x86_64, qemu-img)",
        missing(&["qemu-system-x86_64", "qemu-img"], false),
    ) {
        return;
    }
    let t = Test::new();
    let disk = t.path().join("disk.qcow2");
    qemu_img_create(&disk, "qcow2");
    let vm = Vm::start(t.path(), &disk, "qcow2").unwrap_or_else(|e| panic!("start the VM: {e}"));
    let monitor = vm.monitor.display().to_string();
    let run = t.cairn(&[
        "driver",
        "check",
        &shipped("qemu"),
        "-g",
        &format!("monitor={monitor}"),
    ]);
    assert_passes(&run, "qemu");
    // `apply` ends with `cont`: the VM runs, and `clear` left no snapshot.
    let status = t.cairn(&["qemu-monitor", &monitor, "info", "status"]);
    status.success().stdout_has("VM status: running");
    let snapshots = t.cairn(&["qemu-monitor", &monitor, "info", "snapshots"]);
    snapshots.success().stdout_lacks("0e471e76df4b");
}

#[test]
#[ignore = "needs qemu (qemu-system-x86_64, qemu-img); run with --include-ignored"]
fn qemu_monitor_prints_the_reply_and_fails_on_an_error() {
    if !backend(
        "qemu (qemu-system-x86_64, qemu-img)",
        missing(&["qemu-system-x86_64", "qemu-img"], false),
    ) {
        return;
    }
    let t = Test::new();
    let disk = t.path().join("disk.qcow2");
    qemu_img_create(&disk, "qcow2");
    let vm = Vm::start(t.path(), &disk, "qcow2").unwrap_or_else(|e| panic!("start the VM: {e}"));
    let monitor = vm.monitor.display().to_string();

    let run = t.cairn(&["qemu-monitor", &monitor, "info", "status"]);
    run.success();
    // The reply alone: no banner, no echo of the command, no prompt, no terminal escapes.
    assert_eq!(run.stdout.trim(), "VM status: paused (prelaunch)", "{run}");

    let run = t.cairn(&["qemu-monitor", &monitor, "savevm", "first"]);
    run.success();
    assert_eq!(run.stdout, "", "{run}");
    t.cairn(&["qemu-monitor", &monitor, "info snapshots"])
        .success()
        .stdout_has("first");

    let run = t.cairn(&["qemu-monitor", &monitor, "loadvm", "nosuchsnapshot"]);
    run.code(4)
        .stderr_has("Error:")
        .stderr_has("nosuchsnapshot");
    let run = t.cairn(&["qemu-monitor", &monitor, "nosuchcommand"]);
    run.code(4).stderr_has("unknown command");

    let gone = t.path().join("nothing.sock").display().to_string();
    let run = t.cairn(&["qemu-monitor", &gone, "info", "status"]);
    run.code(4).stderr_has("cannot connect");
}

#[test]
#[ignore = "needs qemu (qemu-system-x86_64, qemu-img); run with --include-ignored"]
fn the_qemu_driver_refuses_a_vm_with_a_writable_raw_disk() {
    if !backend(
        "qemu (qemu-system-x86_64, qemu-img)",
        missing(&["qemu-system-x86_64", "qemu-img"], false),
    ) {
        return;
    }
    let t = Test::new();
    let disk = t.path().join("disk.raw");
    qemu_img_create(&disk, "raw");
    let vm = Vm::start(t.path(), &disk, "raw").unwrap_or_else(|e| panic!("start the VM: {e}"));
    let monitor = vm.monitor.display().to_string();
    let run = t.cairn(&[
        "driver",
        "check",
        &shipped("qemu"),
        "-g",
        &format!("monitor={monitor}"),
    ]);
    run.code(4)
        .stderr_has("fails the conformance check at `enabled`")
        .stderr_has("savevm needs every writable disk of the VM to be qcow2, and these are not: drive0 (raw)");

    // And without a VM at all: the socket is named.
    let run = t.cairn(&[
        "driver",
        "check",
        &shipped("qemu"),
        "-g",
        "monitor=/nonexistent/monitor.sock",
    ]);
    run.code(4)
        .stderr_has("no monitor socket at /nonexistent/monitor.sock");
}

#[test]
#[ignore = "needs qemu-img; run with --include-ignored"]
fn the_qemu_img_driver_passes_its_conformance_check_on_a_qcow2_image() {
    if !backend("qemu-img", missing(&["qemu-img", "qemu-io"], false)) {
        return;
    }
    let t = Test::new();
    let image = t.path().join("disk.qcow2");
    qemu_img_create(&image, "qcow2");
    let run = t.cairn(&[
        "driver",
        "check",
        &shipped("qemu-img"),
        "-g",
        &format!("image={}", image.display()),
    ]);
    assert_passes(&run, "qemu-img");
    let left = sh(
        "qemu-img",
        &["snapshot", "-l", &image.display().to_string()],
    )
    .unwrap_or_default();
    assert!(left.is_empty(), "clear left snapshots: {left}");

    // A raw image cannot hold snapshots.
    let raw = t.path().join("disk.raw");
    qemu_img_create(&raw, "raw");
    let run = t.cairn(&[
        "driver",
        "check",
        &shipped("qemu-img"),
        "-g",
        &format!("image={}", raw.display()),
    ]);
    run.code(4)
        .stderr_has("at `enabled`")
        .stderr_has("as a qcow2 image")
        .stderr_has("not in qcow2 format");
}

// ---- what the check catches ----

/// A shipped driver with one piece of its text replaced, written into the test's tree.
fn broken(t: &Test, name: &str, from: &str, to: &str) -> String {
    let text = std::fs::read_to_string(shipped(name)).expect("read the shipped driver");
    assert!(text.contains(from), "{name}.yaml contains {from:?}");
    let path = t.path().join(format!("broken-{name}.yaml"));
    std::fs::write(&path, text.replacen(from, to, 1)).expect("write the broken driver");
    path.display().to_string()
}

#[test]
#[ignore = "needs qemu-img; run with --include-ignored"]
fn a_qemu_img_driver_whose_apply_does_nothing_fails_at_apply_a() {
    if !backend("qemu-img", missing(&["qemu-img", "qemu-io"], false)) {
        return;
    }
    let t = Test::new();
    let image = t.path().join("disk.qcow2");
    qemu_img_create(&image, "qcow2");
    let driver = broken(
        &t,
        "qemu-img",
        r#"apply:
  - exec_local: qemu-img snapshot -a {{sh checkpoint_id}} {{sh image}}"#,
        "apply:\n  - exec_local: \"true\"",
    );
    let run = t.cairn(&[
        "driver",
        "check",
        &driver,
        "-g",
        &format!("image={}", image.display()),
    ]);
    run.code(4)
        .stderr_has("fails the conformance check at `apply A`")
        .stderr_has("the target differs from the checkpoint");
}

#[test]
fn a_driver_whose_delete_removes_every_checkpoint_fails_at_delete_a() {
    let t = Test::new();
    let driver = broken(
        &t,
        "copy",
        r#"rm -rf {{sh store}}/{{sh checkpoint_id}} {{sh store}}/{{sh checkpoint_id}}.tmp"#,
        r#"rm -rf {{sh store}}/*"#,
    );
    let run = t.cairn(&["driver", "check", &driver]);
    run.code(4)
        .stderr_has("fails the conformance check at `delete A`")
        .stderr_has("`delete` of A removed B too");
}

#[test]
fn a_driver_whose_create_fails_is_named_at_create_a() {
    let t = Test::new();
    let driver = broken(
        &t,
        "copy",
        r#"cp -a {{sh target}}"#,
        r#"cp -a {{sh target}}/nonexistent"#,
    );
    let run = t.cairn(&["driver", "check", &driver]);
    run.code(4)
        .stderr_has("fails the conformance check at `create A`")
        .stderr_has("failed in `create`");
}

#[test]
fn every_shipped_driver_file_is_valid() {
    let t = Test::new();
    let run = t.cairn(&["driver", "list"]);
    run.success();
    for name in [
        "copy", "hardlink", "reflink", "btrfs", "zfs", "qemu", "qemu-img",
    ] {
        let line = run
            .stdout
            .lines()
            .find(|l| l.split_whitespace().next() == Some(name))
            .unwrap_or_else(|| panic!("`{name}` is listed\n{run}"));
        assert!(!line.contains("invalid"), "{line}\n{run}");
    }
}
