//! Unit tests of `snapshot`.

use super::*;
use std::fs;
use std::os::unix::fs::{PermissionsExt, symlink};
use std::time::{Duration, SystemTime};

fn write(path: &Path, text: &str) {
    if let Some(p) = path.parent() {
        fs::create_dir_all(p).unwrap();
    }
    fs::write(path, text).unwrap();
}

fn set_mtime(path: &Path, secs: u64) {
    let t = SystemTime::UNIX_EPOCH + Duration::from_secs(secs);
    fs::File::options()
        .write(true)
        .open(path)
        .unwrap()
        .set_modified(t)
        .unwrap();
}

fn chmod(path: &Path, mode: u32) {
    fs::set_permissions(path, fs::Permissions::from_mode(mode)).unwrap();
}

fn ino(path: &Path) -> u64 {
    fs::symlink_metadata(path).unwrap().ino()
}

/// Lets the kernel's clock move past the ctimes of everything made so far, so that a
/// snapshot started next is strictly later (at the filesystem's granularity).
fn settle(dir: &Path) {
    let probe = dir.join(".probe");
    fs::write(&probe, "").unwrap();
    let whole_seconds = fs::metadata(&probe).unwrap().ctime_nsec() == 0;
    fs::remove_file(&probe).unwrap();
    std::thread::sleep(Duration::from_millis(if whole_seconds { 1100 } else { 30 }));
}

/// Everything `cp -a` keeps that the tests look at, one line per entry, sorted; inodes
/// with several names in the tree are numbered in order of first appearance.
fn describe(root: &Path) -> Vec<String> {
    let mut entries: Vec<_> = WalkDir::new(root)
        .sort_by_file_name()
        .into_iter()
        .map(|e| e.unwrap())
        .collect();
    entries.sort_by(|a, b| a.path().cmp(b.path()));
    let mut names: HashMap<u64, usize> = HashMap::new();
    for e in &entries {
        *names.entry(e.metadata().unwrap().ino()).or_default() += 1;
    }
    let mut groups: HashMap<u64, usize> = HashMap::new();
    entries
        .iter()
        .map(|e| {
            let m = e.metadata().unwrap();
            let rel = relative(root, e.path()).display().to_string();
            let kind = m.file_type();
            let what = if kind.is_file() {
                fs::read_to_string(e.path()).unwrap()
            } else if kind.is_symlink() {
                format!("-> {}", fs::read_link(e.path()).unwrap().display())
            } else if kind.is_dir() {
                "dir".into()
            } else {
                "special".into()
            };
            let group = if !kind.is_dir() && names[&m.ino()] > 1 {
                let n = groups.len();
                format!(" link#{}", groups.entry(m.ino()).or_insert(n))
            } else {
                String::new()
            };
            let mtime = if kind.is_symlink() {
                m.mtime().to_string()
            } else {
                format!("{}.{:09}", m.mtime(), m.mtime_nsec())
            };
            format!(
                "{rel:?} {:o} {}:{} {mtime} {what:?}{group}",
                m.mode(),
                m.uid(),
                m.gid()
            )
        })
        .collect()
}

fn sample(src: &Path) {
    write(&src.join("a"), "aaaa\n");
    write(&src.join("b"), "bbbb\n");
    write(&src.join("c"), "cccc\n");
    write(&src.join("d/x"), "in d\n");
    write(&src.join("d/deeper/y"), "deeper\n");
    write(&src.join("f"), "mode\n");
    write(&src.join("name with spaces\nand a newline"), "odd\n");
    fs::hard_link(src.join("a"), src.join("d/a-again")).unwrap();
    symlink("../a", src.join("d/to-a")).unwrap();
    fs::create_dir(src.join("empty")).unwrap();
    nix::unistd::mkfifo(
        &src.join("fifo"),
        nix::sys::stat::Mode::from_bits_truncate(0o640),
    )
    .unwrap();
    chmod(&src.join("f"), 0o640);
    chmod(&src.join("empty"), 0o555);
    set_mtime(&src.join("a"), 1_000_000_000);
    nix::sys::stat::utimensat(
        AT_FDCWD,
        &src.join("d"),
        &TimeSpec::new(1_100_000_000, 5),
        &TimeSpec::new(1_200_000_000, 7),
        UtimensatFlags::NoFollowSymlink,
    )
    .unwrap();
}

#[test]
fn without_link_dest_it_copies_the_tree_as_cp_a_does() {
    let t = tempfile::tempdir().unwrap();
    let src = t.path().join("src");
    sample(&src);
    let summary = snapshot(&src, &t.path().join("s1"), None).unwrap();
    assert!(summary.full_copy.is_some());
    assert_eq!(describe(&src), describe(&t.path().join("s1")));
    let data = fs::read(t.path().join(".s1.created")).unwrap();
    let record = Record::parse(&data).unwrap();
    assert_eq!(record.files.len(), 8, "every regular file by path");
    let key = "name with spaces\nand a newline".as_bytes();
    let meta = fs::metadata(src.join("name with spaces\nand a newline")).unwrap();
    assert_eq!(record.files.get(key), Some(&(meta.dev(), meta.ino())));
}

#[test]
fn links_what_did_not_change_and_copies_the_rest() {
    let t = tempfile::tempdir().unwrap();
    let (src, s1, s2) = (
        t.path().join("src"),
        t.path().join("s1"),
        t.path().join("s2"),
    );
    sample(&src);
    settle(t.path());
    snapshot(&src, &s1, None).unwrap();

    // Same size and mtime, other content.
    write(&src.join("a"), "AAAA\n");
    set_mtime(&src.join("a"), 1_000_000_000);
    fs::remove_file(src.join("c")).unwrap();
    fs::rename(src.join("d"), src.join("e")).unwrap();
    chmod(&src.join("f"), 0o600);
    let summary = snapshot(&src, &s2, Some(&s1)).unwrap();
    assert_eq!(summary.full_copy, None);

    assert_eq!(describe(&src), describe(&s2));
    assert_eq!(ino(&s1.join("b")), ino(&s2.join("b")), "unchanged: linked");
    assert_ne!(ino(&s1.join("a")), ino(&s2.join("a")), "rewritten: copied");
    assert_eq!(fs::read_to_string(s1.join("a")).unwrap(), "aaaa\n");
    assert_eq!(
        ino(&s2.join("a")),
        ino(&s2.join("e/a-again")),
        "still one inode with two names"
    );
    assert!(!s2.join("c").exists(), "deleted");
    assert_eq!(
        fs::read_to_string(s2.join("e/deeper/y")).unwrap(),
        "deeper\n"
    );
    assert!(!s2.join("d").exists());
    assert_ne!(ino(&s1.join("f")), ino(&s2.join("f")), "chmod: copied");
    assert_eq!(fs::metadata(s1.join("f")).unwrap().mode() & 0o777, 0o640);
    assert_eq!(fs::metadata(s2.join("f")).unwrap().mode() & 0o777, 0o600);
    // b and the odd name are linked; a (and its second name), e/x, e/deeper/y and f are
    // copied, so is the FIFO.
    assert_eq!(summary.linked, 2, "{summary:?}");
    assert_eq!(summary.relinked, 1, "{summary:?}");
}

#[test]
fn swapped_directories_are_not_taken_for_unchanged_ones() {
    // The files keep their ctimes when their directories are renamed; same sizes and mtimes.
    let t = tempfile::tempdir().unwrap();
    let (src, s1, s2) = (
        t.path().join("src"),
        t.path().join("s1"),
        t.path().join("s2"),
    );
    write(&src.join("one/f"), "first\n");
    write(&src.join("two/f"), "other\n");
    set_mtime(&src.join("one/f"), 1_000_000_000);
    set_mtime(&src.join("two/f"), 1_000_000_000);
    settle(t.path());
    snapshot(&src, &s1, None).unwrap();
    fs::rename(src.join("one"), src.join("tmp")).unwrap();
    fs::rename(src.join("two"), src.join("one")).unwrap();
    fs::rename(src.join("tmp"), src.join("two")).unwrap();
    let summary = snapshot(&src, &s2, Some(&s1)).unwrap();
    assert_eq!(fs::read_to_string(s2.join("one/f")).unwrap(), "other\n");
    assert_eq!(fs::read_to_string(s2.join("two/f")).unwrap(), "first\n");
    assert_eq!(summary.linked, 0);
}

#[test]
fn a_chain_of_snapshots_keeps_linking_to_the_first_copy() {
    let t = tempfile::tempdir().unwrap();
    let src = t.path().join("src");
    write(&src.join("keep"), "kept\n");
    settle(t.path());
    snapshot(&src, &t.path().join("s1"), None).unwrap();
    for (prev, next) in [("s1", "s2"), ("s2", "s3")] {
        write(&src.join(next), "new\n");
        settle(t.path());
        snapshot(&src, &t.path().join(next), Some(&t.path().join(prev))).unwrap();
    }
    let first = ino(&t.path().join("s1/keep"));
    assert_eq!(ino(&t.path().join("s3/keep")), first);
    // PREV named through a symlink: its record is the one beside the snapshot.
    symlink("s3", t.path().join(".latest")).unwrap();
    let summary = snapshot(&src, &t.path().join("s4"), Some(&t.path().join(".latest"))).unwrap();
    assert_eq!((summary.full_copy, summary.linked), (None, 3));
    assert_eq!(ino(&t.path().join("s4/keep")), first);
    assert_eq!(describe(&src), describe(&t.path().join("s3")));
}

#[test]
fn directories_get_their_modes_times_and_xattrs_after_their_contents() {
    let t = tempfile::tempdir().unwrap();
    let (src, s1, s2) = (
        t.path().join("src"),
        t.path().join("s1"),
        t.path().join("s2"),
    );
    write(&src.join("ro/inside"), "x\n");
    let xattrs = rustix::fs::lsetxattr(
        src.join("ro"),
        "user.cairn",
        b"kept",
        rustix::fs::XattrFlags::empty(),
    )
    .is_ok();
    chmod(&src.join("ro"), 0o555);
    settle(t.path());
    snapshot(&src, &s1, None).unwrap();
    chmod(&src.join("ro"), 0o755);
    write(&src.join("ro/new"), "y\n");
    chmod(&src.join("ro"), 0o500);
    snapshot(&src, &s2, Some(&s1)).unwrap();
    assert_eq!(describe(&src), describe(&s2));
    if xattrs {
        let mut buf = [0u8; 16];
        let n = rustix::fs::lgetxattr(s2.join("ro"), "user.cairn", &mut buf).unwrap();
        assert_eq!(&buf[..n], b"kept");
    }
    chmod(&src.join("ro"), 0o755);
}

#[test]
fn without_a_complete_record_nothing_is_linked() {
    let t = tempfile::tempdir().unwrap();
    let src = t.path().join("src");
    write(&src.join("f"), "f\n");
    settle(t.path());
    snapshot(&src, &t.path().join("s1"), None).unwrap();
    let record = t.path().join(".s1.created");
    let data = fs::read(&record).unwrap();
    fs::write(&record, &data[..data.len() - 3]).unwrap();
    let summary = snapshot(&src, &t.path().join("s2"), Some(&t.path().join("s1"))).unwrap();
    assert_eq!(
        summary.full_copy.as_deref(),
        Some("its record is incomplete")
    );
    fs::remove_file(&record).unwrap();
    let summary = snapshot(&src, &t.path().join("s3"), Some(&t.path().join("s1"))).unwrap();
    assert!(summary.full_copy.unwrap().contains("has no record"));
    assert_ne!(ino(&t.path().join("s1/f")), ino(&t.path().join("s3/f")));
    assert_eq!(describe(&src), describe(&t.path().join("s3")));
}

#[test]
fn refuses_an_existing_dst_and_one_inside_src() {
    let t = tempfile::tempdir().unwrap();
    let src = t.path().join("src");
    write(&src.join("f"), "f\n");
    let dst = t.path().join("dst");
    write(&dst.join("mine"), "keep\n");
    let e = snapshot(&src, &dst, None).unwrap_err().to_string();
    assert!(e.contains(&dst.display().to_string()), "{e}");
    assert!(dst.join("mine").exists(), "left alone");
    let inside = src.join("copy");
    let e = snapshot(&src, &inside, None).unwrap_err().to_string();
    assert!(e.contains("inside"), "{e}");
    assert!(!inside.exists());
    let e = snapshot(&t.path().join("missing"), &t.path().join("x"), None)
        .unwrap_err()
        .to_string();
    assert!(e.contains("missing"), "{e}");
}

#[test]
fn a_ctime_counts_as_older_only_at_its_own_granularity() {
    let start = (100, 500_000_000);
    assert!(changed_before((100, 499_999_999), start));
    assert!(!changed_before((100, 500_000_000), start), "the same tick");
    assert!(!changed_before((100, 500_000_001), start));
    // A filesystem that keeps whole seconds: 100.0 may be any time in that second.
    assert!(!changed_before((100, 0), start));
    assert!(changed_before((99, 0), start));
    // Ten-millisecond stamps (exFAT): compared with the start truncated to 100.50.
    assert!(!changed_before((100, 490_000_000), (100, 495_000_000)));
    assert!(changed_before((100, 480_000_000), (100, 495_000_000)));
}

#[test]
fn a_record_is_read_back_only_when_complete() {
    let data = b"cairn-snapshot-tree 1 12 34\n\x001 2 a b\x003 4 c\x00end 2\x00";
    let r = Record::parse(data).unwrap();
    assert_eq!(r.started, (12, 34));
    assert_eq!(r.files.get(&b"a b"[..]), Some(&(1, 2)));
    assert_eq!(r.files.get(&b"c"[..]), Some(&(3, 4)));
    assert!(Record::parse(b"cairn-snapshot-tree 1 12 34\n\x001 2 a b\x00end 2\x00").is_none());
    assert!(Record::parse(b"cairn-snapshot-tree 1 12 34\n\x001 2 a b\x00").is_none());
    assert!(Record::parse(b"something else\n\x00end 0\x00").is_none());
}

#[test]
fn the_record_sits_beside_the_directory() {
    let p = |s: &str| record_path(Path::new(s)).unwrap();
    assert_eq!(p("store/abc.tmp"), Path::new("store/.abc.tmp.created"));
    assert_eq!(p("abc"), Path::new("./.abc.created"));
    assert_eq!(p("/x/abc/"), Path::new("/x/.abc.created"));
    assert!(record_path(Path::new("/")).is_err());
}
