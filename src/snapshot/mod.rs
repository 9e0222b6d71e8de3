//! The hardlink driver's incremental copy, run as `cairn snapshot-tree SRC DST [--link-dest PREV]`.
//!
//! DST, which must not exist, becomes a copy of the directory SRC as `cp -a` makes one: names,
//! file types, contents, modes, owners, timestamps, symlink targets, hard links within the tree,
//! and extended attributes (ACLs included) where the filesystem keeps them.
//!
//! Without `--link-dest` this is `cp -a --reflink=never SRC DST`. With it, a regular file is
//! hard-linked from `PREV/<same path>` instead of copied when it is provably the file PREV holds
//! there. All of these must hold:
//!
//! - **The same inode.** When PREV was made, it recorded which inode (device and number) each of
//!   its regular files was copied from; SRC still has that inode at that path.
//! - **Not changed since.** The file's ctime is older than the moment PREV was started. Nobody
//!   can set a ctime: every write, truncate, chmod, chown, xattr change, link, unlink and rename
//!   of the inode moves it to "now". So a rewrite that restores size and mtime is caught, and so
//!   is a file renamed over another.
//! - **PREV's copy looks the same**: regular file, same size, mtime (to the nanosecond), mode,
//!   owner and group.
//!
//! The inode check is what makes the ctime test sound: renaming a *directory* changes the ctime
//! of that directory only, so after `mv a tmp; mv b a; mv tmp b` the files under `a/` keep old
//! ctimes, and with the same sizes and mtimes (an archive unpacked twice) only their inode
//! numbers tell that `a/f` is not the file PREV copied as `a/f`.
//!
//! Everything else (new or changed files, devices, FIFOs, sockets) is copied by `cp -a
//! --reflink=never --parents`, run in SRC with as many paths per invocation as fit in one
//! command line. Directories and symbolic links are made here; a directory gets its xattrs,
//! owner, mode and times after everything inside it exists. Nothing is ever opened for writing in
//! PREV: a linked file is only given one more name.
//!
//! **The record.** Before it reads SRC, the command creates `DST/../.<name of DST>.created`; the
//! ctime the filesystem gives that file is the snapshot's start. It then appends one entry per
//! regular file (device, inode, path) and a last line with their number, so a record cut short
//! (a crash) is never trusted. Move it with DST when DST is renamed: `--link-dest PREV` reads
//! `PREV/../.<name of PREV>.created`, and without a usable record every file is copied.
//!
//! **Clocks.** Timestamps are truncated to the filesystem's granularity (1 ns on ext4, XFS,
//! btrfs and tmpfs; a whole second on ext4 with 128-byte inodes), and the kernel stamps files
//! from a clock that ticks in jiffies. A file changed after PREV started has a ctime at or after
//! PREV's start *at the same granularity*, so a file's ctime is compared with PREV's start
//! truncated to the coarsest power of ten that divides the ctime's nanoseconds, and must be
//! strictly older: a change in the same tick is never taken for an old one. This assumes SRC's
//! timestamps come from this machine's clock (not an NFS server's), and that the clock did not
//! go back between PREV and now (a PREV that started later than now is not used).

use std::collections::HashMap;
use std::ffi::OsString;
use std::fs::{File, Metadata};
use std::io::{self, BufWriter, Write};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{DirBuilderExt, MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::{Child, Command};
use std::sync::mpsc::{Receiver, SyncSender};

use nix::errno::Errno;
use nix::fcntl::{AT_FDCWD, AtFlags, OFlag};
use nix::sys::stat::{SFlag, UtimensatFlags, fstatat, utimensat};
use nix::sys::time::TimeSpec;
use nix::unistd::linkat;
use walkdir::WalkDir;

use crate::diag::error::{Error, Result};

const MAGIC: &str = "cairn-snapshot-tree 1";
/// Bytes of paths per `cp` invocation: well below Linux's 2 MiB for arguments and environment
/// (a quarter of the usual 8 MiB stack limit), whatever the environment holds.
const BATCH_BYTES: usize = 512 * 1024;

/// What a snapshot did, for tests and the note on stderr.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Summary {
    /// Regular files hard-linked from PREV.
    pub linked: usize,
    /// Files (and other non-directories) handed to `cp`.
    pub copied: usize,
    /// Extra names of inodes with several names in SRC, linked within DST.
    pub relinked: usize,
    /// Set when the whole tree was copied with one `cp -a`: why.
    pub full_copy: Option<String>,
}

/// Makes DST a copy of SRC, linking unchanged regular files from `link_dest`.
pub fn snapshot(src: &Path, dst: &Path, link_dest: Option<&Path>) -> Result<Summary> {
    let src_dir = std::fs::canonicalize(src).map_err(|e| Error::io("cannot read", src, e))?;
    let src_meta =
        std::fs::metadata(&src_dir).map_err(|e| Error::io("cannot read", &src_dir, e))?;
    if !src_meta.is_dir() {
        return Err(Error::Usage(format!(
            "{} is not a directory",
            src.display()
        )));
    }
    match dst.symlink_metadata() {
        Ok(_) => {
            return Err(Error::Usage(format!(
                "{} already exists; snapshot-tree makes a new directory",
                dst.display()
            )));
        }
        Err(e) if e.kind() == io::ErrorKind::NotFound => {}
        Err(e) => return Err(Error::io("cannot read", dst, e)),
    }
    let record = record_path(dst)?;
    let parent = record.parent().map(Path::to_path_buf).unwrap_or_default();
    let parent =
        std::fs::canonicalize(&parent).map_err(|e| Error::io("cannot read", &parent, e))?;
    if parent.starts_with(&src_dir) {
        return Err(Error::Usage(format!(
            "{} is inside {}: a directory cannot be copied into itself",
            dst.display(),
            src.display()
        )));
    }
    // From here on, DST and the record are ours: remove them if the snapshot fails.
    let mut writer = RecordWriter::create(&record)?;
    let result = make(&src_dir, &src_meta, dst, link_dest, &mut writer);
    let result = result.and_then(|summary| writer.finish().map(|()| summary));
    if result.is_err() {
        let _ = std::fs::remove_file(&record);
        if dst.symlink_metadata().is_ok() {
            let _ = std::fs::remove_dir_all(dst);
        }
    }
    result
}

fn make(
    src: &Path,
    src_meta: &Metadata,
    dst: &Path,
    link_dest: Option<&Path>,
    writer: &mut RecordWriter,
) -> Result<Summary> {
    let data;
    let prev;
    let why = match link_dest.map(|p| read_prev(p, writer.dev)) {
        None => "no --link-dest".to_string(),
        Some(Err(why)) => why,
        Some(Ok((dir, d))) => {
            (prev, data) = (dir, d);
            match Record::parse(&data) {
                None => "its record is incomplete".to_string(),
                Some(r) if r.started > writer.started => {
                    "it was started later than now: the clock went back".to_string()
                }
                Some(record) => {
                    let privileged = writer.uid == 0;
                    return Tree::new(src, dst, &prev, record, writer, privileged).copy(src_meta);
                }
            }
        }
    };
    let mut summary = full_copy(src, dst, writer)?;
    summary.full_copy = Some(why);
    Ok(summary)
}

/// `DST/../.<name>.created`.
pub fn record_path(dir: &Path) -> Result<PathBuf> {
    let name = dir
        .file_name()
        .filter(|n| !n.is_empty())
        .ok_or_else(|| Error::Usage(format!("{} does not name a directory", dir.display())))?;
    let mut file = OsString::from(".");
    file.push(name);
    file.push(".created");
    let parent = match dir.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
        _ => PathBuf::from("."),
    };
    Ok(parent.join(file))
}

/// A timestamp as (seconds, nanoseconds).
type Stamp = (i64, i64);

fn ctime(m: &Metadata) -> Stamp {
    (m.ctime(), m.ctime_nsec())
}

/// Whether a change stamped `ctime` certainly happened before `start` (both from the kernel's
/// clock): `start` is truncated to the coarsest power of ten, up to a second, that divides the
/// ctime's nanoseconds (a filesystem that keeps whole seconds stamps `.000000000`), and the
/// ctime must be strictly older, since a change in the same clock tick has an equal stamp.
pub fn changed_before(ctime: Stamp, start: Stamp) -> bool {
    let mut granularity = 1;
    while granularity < 1_000_000_000 && ctime.1 % (granularity * 10) == 0 {
        granularity *= 10;
    }
    ctime < (start.0, start.1 - start.1.rem_euclid(granularity))
}

/// The record of a snapshot, as written: its start, and the inode each regular file was copied
/// from, by path relative to the tree.
#[derive(Debug)]
pub struct Record<'a> {
    pub started: Stamp,
    pub files: HashMap<&'a [u8], (u64, u64)>,
}

impl<'a> Record<'a> {
    /// None when the data is not a complete record.
    pub fn parse(data: &'a [u8]) -> Option<Record<'a>> {
        let mut chunks = data.split(|b| *b == 0);
        let header = std::str::from_utf8(chunks.next()?).ok()?;
        let mut words = header.strip_prefix(MAGIC)?.split_whitespace();
        let started = (words.next()?.parse().ok()?, words.next()?.parse().ok()?);
        let mut files = HashMap::new();
        for (count, chunk) in chunks.enumerate() {
            if let Some(n) = chunk.strip_prefix(b"end ") {
                let n: usize = std::str::from_utf8(n).ok()?.parse().ok()?;
                return (n == count).then_some(Record { started, files });
            }
            let mut parts = chunk.splitn(3, |b| *b == b' ');
            let number =
                |p: Option<&[u8]>| -> Option<u64> { std::str::from_utf8(p?).ok()?.parse().ok() };
            let dev = number(parts.next())?;
            let ino = number(parts.next())?;
            let path = parts.next().filter(|p| !p.is_empty())?;
            files.insert(path, (dev, ino));
        }
        None
    }
}

/// Writes the record of the snapshot being made.
struct RecordWriter {
    path: PathBuf,
    out: BufWriter<File>,
    started: Stamp,
    dev: u64,
    uid: u32,
    count: usize,
}

impl RecordWriter {
    fn create(path: &Path) -> Result<RecordWriter> {
        match std::fs::remove_file(path) {
            Err(e) if e.kind() != io::ErrorKind::NotFound => {
                return Err(Error::io("cannot remove", path, e));
            }
            _ => {}
        }
        let file = File::options()
            .write(true)
            .create_new(true)
            .open(path)
            .map_err(|e| Error::io("cannot create", path, e))?;
        let meta = file
            .metadata()
            .map_err(|e| Error::io("cannot read", path, e))?;
        let started = ctime(&meta);
        let mut w = RecordWriter {
            path: path.to_path_buf(),
            out: BufWriter::with_capacity(256 * 1024, file),
            started,
            dev: meta.dev(),
            uid: meta.uid(),
            count: 0,
        };
        let header = format!("{MAGIC} {} {}\n\0", started.0, started.1);
        w.write(header.as_bytes())?;
        Ok(w)
    }

    fn write(&mut self, bytes: &[u8]) -> Result<()> {
        self.out
            .write_all(bytes)
            .map_err(|e| Error::io("cannot write", &self.path, e))
    }

    fn file(&mut self, meta: &Metadata, rel: &Path) -> Result<()> {
        let head = format!("{} {} ", meta.dev(), meta.ino());
        self.write(head.as_bytes())?;
        self.write(rel.as_os_str().as_bytes())?;
        self.write(b"\0")?;
        self.count += 1;
        Ok(())
    }

    fn finish(&mut self) -> Result<()> {
        let end = format!("end {}\0", self.count);
        self.write(end.as_bytes())?;
        self.out
            .flush()
            .map_err(|e| Error::io("cannot write", &self.path, e))
    }
}

/// PREV with symlinks resolved (`--link-dest store/.latest` reads the record beside the
/// snapshot it points to) and its record, or why nothing can be linked from it.
fn read_prev(dir: &Path, dst_dev: u64) -> std::result::Result<(PathBuf, Vec<u8>), String> {
    let dir = std::fs::canonicalize(dir).map_err(|e| format!("cannot read it: {e}"))?;
    let meta = std::fs::metadata(&dir).map_err(|e| format!("cannot read it: {e}"))?;
    if !meta.is_dir() {
        return Err("it is not a directory".into());
    }
    if meta.dev() != dst_dev {
        return Err("it is on another filesystem than the new snapshot".into());
    }
    let record = record_path(&dir).map_err(|e| e.to_string())?;
    let data = std::fs::read(&record).map_err(|e| match e.kind() {
        io::ErrorKind::NotFound => format!(
            "it has no record {} (it was not made by snapshot-tree)",
            record.display()
        ),
        _ => format!("cannot read {}: {e}", record.display()),
    })?;
    Ok((dir, data))
}

/// No usable PREV: one `cp -a` of the whole tree, while the record is written alongside.
fn full_copy(src: &Path, dst: &Path, writer: &mut RecordWriter) -> Result<Summary> {
    let mut cp = Command::new("cp");
    cp.args(["-a", "--reflink=never", "--"]).arg(src).arg(dst);
    let child = cp.spawn().map_err(|e| Error::io("cannot run", "cp", e))?;
    let mut child = Waiting(Some(child));
    let mut copied = 0;
    for entry in WalkDir::new(src).min_depth(1) {
        let entry = entry.map_err(|e| walk_error(src, e))?;
        if entry.file_type().is_dir() {
            continue;
        }
        copied += 1;
        if entry.file_type().is_file() {
            let meta = entry.metadata().map_err(|e| walk_error(entry.path(), e))?;
            writer.file(&meta, relative(src, entry.path()))?;
        }
    }
    child.wait(&format!(
        "cp -a --reflink=never {} {}",
        src.display(),
        dst.display()
    ))?;
    Ok(Summary {
        copied,
        ..Summary::default()
    })
}

/// A child that is waited for even when the caller fails first.
struct Waiting(Option<Child>);

impl Waiting {
    fn wait(&mut self, what: &str) -> Result<()> {
        let Some(mut child) = self.0.take() else {
            return Ok(());
        };
        let status = child
            .wait()
            .map_err(|e| Error::io("cannot wait for", "cp", e))?;
        if !status.success() {
            return Err(Error::Other(format!("`{what}` failed ({status})")));
        }
        Ok(())
    }
}

impl Drop for Waiting {
    fn drop(&mut self) {
        if let Some(child) = &mut self.0 {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

fn walk_error(path: &Path, e: walkdir::Error) -> Error {
    let path = e.path().unwrap_or(path).to_path_buf();
    let io = e
        .into_io_error()
        .unwrap_or_else(|| io::Error::other("filesystem loop"));
    Error::io("cannot read", path, io)
}

fn relative<'p>(root: &Path, path: &'p Path) -> &'p Path {
    path.strip_prefix(root).unwrap_or(path)
}

/// A regular file that may be linked from PREV: its name, and what PREV's copy must look like.
struct Candidate {
    name: OsString,
    size: i64,
    mtime: Stamp,
    mode: u32,
    owner: (u32, u32),
}

/// Candidates in one directory (relative to the trees), for one link thread.
#[derive(Default)]
struct Chunk {
    dir: PathBuf,
    files: Vec<Candidate>,
}

/// Candidates go to the link threads in chunks of at most this many.
const CHUNK: usize = 256;

/// One incremental snapshot in progress. The walk runs on the calling thread; the `stat` of
/// PREV's copy and the `link` of each candidate, most of the work, run on a few threads fed
/// through a channel (a directory is made before any file in it is sent), relative to the
/// directories' file descriptors to spare the kernel a path lookup each.
struct Tree<'a> {
    src: &'a Path,
    dst: &'a Path,
    prev: &'a Path,
    record: Record<'a>,
    writer: &'a mut RecordWriter,
    privileged: bool,
    /// Directories made, in the order made (parents first), with SRC's metadata.
    dirs: Vec<(PathBuf, Metadata)>,
    /// Relative paths for `cp`, batched.
    batches: Vec<Vec<OsString>>,
    batch_bytes: usize,
    /// The first DST path of each SRC inode with several names.
    inodes: HashMap<(u64, u64), PathBuf>,
    /// (existing DST path, new DST path) to link once everything is copied.
    relinks: Vec<(PathBuf, PathBuf)>,
    chunk: Chunk,
    summary: Summary,
}

impl<'a> Tree<'a> {
    fn new(
        src: &'a Path,
        dst: &'a Path,
        prev: &'a Path,
        record: Record<'a>,
        writer: &'a mut RecordWriter,
        privileged: bool,
    ) -> Tree<'a> {
        Tree {
            src,
            dst,
            prev,
            record,
            writer,
            privileged,
            dirs: Vec::new(),
            batches: vec![Vec::new()],
            batch_bytes: 0,
            inodes: HashMap::new(),
            relinks: Vec::new(),
            chunk: Chunk::default(),
            summary: Summary::default(),
        }
    }

    fn copy(mut self, src_meta: &Metadata) -> Result<Summary> {
        mkdir(self.dst)?;
        self.dirs.push((PathBuf::new(), src_meta.clone()));
        let threads = std::thread::available_parallelism().map_or(1, |n| n.get().min(4));
        let (prev, dst) = (self.prev, self.dst);
        let (tx, rx) = std::sync::mpsc::sync_channel::<Chunk>(threads * 4);
        let rx = std::sync::Mutex::new(rx);
        let (walked, outcomes) = std::thread::scope(|scope| {
            let workers: Vec<_> = (0..threads)
                .map(|_| scope.spawn(|| link_worker(prev, dst, &rx)))
                .collect();
            let walked = self.walk(&tx);
            drop(tx);
            let outcomes: Vec<_> = workers.into_iter().map(|w| w.join()).collect();
            (walked, outcomes)
        });
        walked?;
        for outcome in outcomes {
            let (linked, copy) = outcome
                .map_err(|_| Error::Other("a snapshot-tree link thread panicked".into()))??;
            self.summary.linked += linked;
            for rel in copy {
                self.queue(&rel);
            }
        }
        self.run_cp()?;
        for (from, to) in std::mem::take(&mut self.relinks) {
            std::fs::hard_link(&from, &to).map_err(|e| Error::io("cannot link", &to, e))?;
            self.summary.relinked += 1;
        }
        for (rel, meta) in std::mem::take(&mut self.dirs).iter().rev() {
            let from = self.src.join(rel);
            let to = self.dst.join(rel);
            set_attributes(&from, &to, meta, self.privileged)?;
        }
        Ok(self.summary)
    }

    fn walk(&mut self, tx: &SyncSender<Chunk>) -> Result<()> {
        for entry in WalkDir::new(self.src).min_depth(1) {
            let entry = entry.map_err(|e| walk_error(self.src, e))?;
            let meta = entry.metadata().map_err(|e| walk_error(entry.path(), e))?;
            let rel = relative(self.src, entry.path());
            self.entry(rel, &meta, tx)?;
        }
        self.send(tx);
        Ok(())
    }

    fn send(&mut self, tx: &SyncSender<Chunk>) {
        if self.chunk.files.is_empty() {
            return;
        }
        let chunk = Chunk {
            dir: self.chunk.dir.clone(),
            files: std::mem::take(&mut self.chunk.files),
        };
        if let Err(failed) = tx.send(chunk) {
            // No link thread is left (it cannot happen while they drain): copy these.
            let chunk = failed.0;
            for c in chunk.files {
                self.queue(&chunk.dir.join(c.name));
            }
        }
    }

    fn entry(&mut self, rel: &Path, meta: &Metadata, tx: &SyncSender<Chunk>) -> Result<()> {
        let to = self.dst.join(rel);
        let kind = meta.file_type();
        if kind.is_dir() {
            mkdir(&to)?;
            self.dirs.push((rel.to_path_buf(), meta.clone()));
            return Ok(());
        }
        if kind.is_file() {
            self.writer.file(meta, rel)?;
        }
        if meta.nlink() > 1 {
            let key = (meta.dev(), meta.ino());
            if let Some(first) = self.inodes.get(&key) {
                self.relinks.push((first.clone(), to));
                return Ok(());
            }
            self.inodes.insert(key, to.clone());
        }
        if kind.is_symlink() {
            let from = self.src.join(rel);
            let target =
                std::fs::read_link(&from).map_err(|e| Error::io("cannot read", &from, e))?;
            std::os::unix::fs::symlink(&target, &to)
                .map_err(|e| Error::io("cannot create", &to, e))?;
            return set_attributes(&from, &to, meta, self.privileged);
        }
        if kind.is_file()
            && self.record.files.get(rel.as_os_str().as_bytes()) == Some(&(meta.dev(), meta.ino()))
            && changed_before(ctime(meta), self.record.started)
            && let (Some(dir), Some(name)) = (rel.parent(), rel.file_name())
        {
            if dir != self.chunk.dir || self.chunk.files.len() >= CHUNK {
                self.send(tx);
                self.chunk.dir = dir.to_path_buf();
            }
            self.chunk.files.push(Candidate {
                name: name.to_owned(),
                size: meta.size() as i64,
                mtime: (meta.mtime(), meta.mtime_nsec()),
                mode: meta.mode(),
                owner: (meta.uid(), meta.gid()),
            });
            return Ok(());
        }
        self.queue(rel);
        Ok(())
    }

    fn queue(&mut self, rel: &Path) {
        let len = rel.as_os_str().len() + 1;
        if self.batch_bytes + len > BATCH_BYTES && self.batch_bytes > 0 {
            self.batches.push(Vec::new());
            self.batch_bytes = 0;
        }
        self.batch_bytes += len;
        if let Some(batch) = self.batches.last_mut() {
            batch.push(rel.as_os_str().to_owned());
        }
        self.summary.copied += 1;
    }

    /// `cp -a --reflink=never --parents -- PATH... DST` in SRC, one batch at a time.
    fn run_cp(&mut self) -> Result<()> {
        let dst =
            std::fs::canonicalize(self.dst).map_err(|e| Error::io("cannot read", self.dst, e))?;
        for batch in std::mem::take(&mut self.batches) {
            if batch.is_empty() {
                continue;
            }
            let n = batch.len();
            let child = Command::new("cp")
                .args(["-a", "--reflink=never", "--parents", "--"])
                .args(&batch)
                .arg(&dst)
                .current_dir(self.src)
                .spawn()
                .map_err(|e| Error::io("cannot run", "cp", e))?;
            Waiting(Some(child)).wait(&format!(
                "cp -a --reflink=never --parents ({n} files from {} into {})",
                self.src.display(),
                dst.display()
            ))?;
        }
        Ok(())
    }
}

/// Links the candidates it receives until the channel closes: the number linked, and the
/// files to copy instead. After an error it keeps receiving (and drops what it gets), so the
/// walk never waits on a full channel.
fn link_worker(
    prev: &Path,
    dst: &Path,
    rx: &std::sync::Mutex<Receiver<Chunk>>,
) -> Result<(usize, Vec<PathBuf>)> {
    let mut linked = 0;
    let mut copy = Vec::new();
    let mut failed = None;
    loop {
        let chunk = rx.lock().unwrap_or_else(|e| e.into_inner()).recv();
        let Ok(chunk) = chunk else { break };
        if failed.is_some() {
            continue;
        }
        match link_chunk(prev, dst, chunk, &mut copy) {
            Ok(n) => linked += n,
            Err(e) => failed = Some(e),
        }
    }
    match failed {
        Some(e) => Err(e),
        None => Ok((linked, copy)),
    }
}

/// Links each DST/dir/name to PREV/dir/name when PREV's copy looks like SRC's file; pushes the
/// others to `copy`. Returns how many were linked.
fn link_chunk(prev: &Path, dst: &Path, chunk: Chunk, copy: &mut Vec<PathBuf>) -> Result<usize> {
    let open = |path: &Path| {
        nix::fcntl::open(
            path,
            OFlag::O_RDONLY | OFlag::O_DIRECTORY | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC,
            nix::sys::stat::Mode::empty(),
        )
    };
    let Ok(prev_dir) = open(&prev.join(&chunk.dir)) else {
        copy.extend(chunk.files.into_iter().map(|c| chunk.dir.join(c.name)));
        return Ok(0);
    };
    let to_dir = dst.join(&chunk.dir);
    let dst_dir = open(&to_dir).map_err(|e| Error::io("cannot open", &to_dir, e.into()))?;
    let mut linked = 0;
    for c in chunk.files {
        let same =
            fstatat(&prev_dir, c.name.as_os_str(), AtFlags::AT_SYMLINK_NOFOLLOW).is_ok_and(|old| {
                old.st_mode & SFlag::S_IFMT.bits() == SFlag::S_IFREG.bits()
                    && old.st_size == c.size
                    && (old.st_mtime, old.st_mtime_nsec) == c.mtime
                    && old.st_mode == c.mode
                    && (old.st_uid, old.st_gid) == c.owner
            });
        let name = c.name.as_os_str();
        let result = if same {
            linkat(&prev_dir, name, &dst_dir, name, AtFlags::empty())
        } else {
            Err(Errno::ENOENT)
        };
        match result {
            Ok(()) => linked += 1,
            // Not linkable here (another filesystem, too many links, a protected_hardlinks
            // refusal, gone meanwhile, or not the same file): a copy is as good.
            Err(Errno::EXDEV | Errno::EMLINK | Errno::EPERM | Errno::ENOENT) => {
                copy.push(chunk.dir.join(&c.name));
            }
            Err(e) => {
                return Err(Error::io("cannot link", to_dir.join(name), e.into()));
            }
        }
    }
    Ok(linked)
}

/// A directory only its owner can enter and write to, until its attributes are set at the end.
fn mkdir(path: &Path) -> Result<()> {
    std::fs::DirBuilder::new()
        .mode(0o700)
        .create(path)
        .map_err(|e| Error::io("cannot create", path, e))
}

/// Gives `to` (a directory or symlink made here) `from`'s xattrs, owner, mode and times, in the
/// order `cp -a` does: ownership before mode (chown clears set-id bits), times last.
fn set_attributes(from: &Path, to: &Path, meta: &Metadata, privileged: bool) -> Result<()> {
    copy_xattrs(from, to);
    if let Err(e) = std::os::unix::fs::lchown(to, Some(meta.uid()), Some(meta.gid())) {
        // As `cp -a`: an unprivileged user keeps their own ownership.
        let refused = matches!(errno(&e), Errno::EPERM | Errno::EINVAL);
        if privileged || !refused {
            return Err(Error::io("cannot change the owner of", to, e));
        }
    }
    let symlink = meta.file_type().is_symlink();
    if !symlink {
        std::fs::set_permissions(to, std::fs::Permissions::from_mode(meta.mode() & 0o7777))
            .map_err(|e| Error::io("cannot change the mode of", to, e))?;
    }
    let atime = TimeSpec::new(meta.atime(), meta.atime_nsec());
    let mtime = TimeSpec::new(meta.mtime(), meta.mtime_nsec());
    utimensat(
        AT_FDCWD,
        to,
        &atime,
        &mtime,
        UtimensatFlags::NoFollowSymlink,
    )
    .map_err(|e| Error::io("cannot set the times of", to, io::Error::from(e)))
}

/// Copies every extended attribute (ACLs are `system.posix_acl_*` ones) it can, silently
/// skipping those it cannot read or set, as `cp -a` does.
fn copy_xattrs(from: &Path, to: &Path) {
    let mut names = vec![0u8; 1024];
    let len = loop {
        match rustix::fs::llistxattr(from, &mut names) {
            Ok(n) => break n,
            Err(rustix::io::Errno::RANGE) => {
                let Ok(n) = rustix::fs::llistxattr_query(from) else {
                    return;
                };
                names.resize(n.max(names.len() * 2), 0);
            }
            Err(_) => return,
        }
    };
    let mut value = vec![0u8; 4096];
    for name in names[..len].split(|b| *b == 0).filter(|n| !n.is_empty()) {
        let name = std::ffi::OsStr::from_bytes(name);
        let n = loop {
            match rustix::fs::lgetxattr(from, name, &mut value) {
                Ok(n) => break Some(n),
                Err(rustix::io::Errno::RANGE) => match rustix::fs::lgetxattr_query(from, name) {
                    Ok(n) => value.resize(n.max(value.len() * 2), 0),
                    Err(_) => break None,
                },
                Err(_) => break None,
            }
        };
        if let Some(n) = n {
            let _ = rustix::fs::lsetxattr(to, name, &value[..n], rustix::fs::XattrFlags::empty());
        }
    }
}

fn errno(e: &io::Error) -> Errno {
    Errno::from_raw(e.raw_os_error().unwrap_or(0))
}

#[cfg(test)]
mod tests;
