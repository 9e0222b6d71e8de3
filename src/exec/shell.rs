//! Contexts: one long-lived shell each (`local`, `out`, `in`), fed commands through its stdin
//! with a framed protocol, so the same code drives `bash`, `chroot DIR bash`, `ssh host bash`
//! or `docker exec -i c bash`. Each command runs in a subshell with errexit; its exported
//! variables and working directory are carried back to the context's shell afterwards, and an
//! end marker on both output streams says it is done and with which status. The marker is a
//! fresh random value per command that cairn writes to the shell's stdin after the command's
//! text: the runner reads it only once the command has ended, so no command can see it (not
//! with `set`, `declare`, nor a trace), and it counts only as a whole line.

use std::collections::VecDeque;
use std::fs::File;
use std::io::{BufRead, BufReader, Read, Seek, Write};
use std::path::PathBuf;
use std::process::{Child, ChildStdin, Stdio};
use std::sync::mpsc::{Receiver, Sender, channel};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use super::process as exec;
use crate::output::{Output, Stream};
use crate::plan::ContextSpec;
use crate::recipe::Ctx;

const TAIL_LINES: usize = 20;

/// How a context's output is handled while a command runs.
enum Sink {
    /// Each line goes to the user, prefixed with the context's name.
    Lines,
    /// Bytes go to a file: the first half of a `pipe`.
    Capture(File),
}

enum Event {
    Marker(Stream, Option<i32>),
    /// The stream closed, or could not be read: the shell is gone.
    Closed,
}

pub struct CommandResult {
    pub status: i32,
    pub tail: Vec<String>,
}

#[derive(Debug, thiserror::Error)]
pub enum ContextError {
    #[error("the {ctx} context could not start `{cmd}`: {source}")]
    Spawn {
        ctx: Ctx,
        cmd: String,
        source: std::io::Error,
    },
    #[error("the {ctx} context's shell (`{cmd}`) exited{}", if .tail.is_empty() { String::new() } else { format!(":\n{}", .tail.join("\n")) })]
    Died {
        ctx: Ctx,
        cmd: String,
        tail: Vec<String>,
    },
    #[error("the {ctx} context: {message}")]
    Io { ctx: Ctx, message: String },
}

struct Shell {
    child: Child,
    stdin: ChildStdin,
    events: Receiver<Event>,
    sink: Arc<Mutex<Sink>>,
    tail: Arc<Mutex<VecDeque<String>>>,
    /// The current command's end marker, which the readers look for.
    marker: Arc<Mutex<String>>,
}

pub struct Context {
    pub ctx: Ctx,
    spec: ContextSpec,
    default_dir: PathBuf,
    errexit: bool,
    output: Arc<Output>,
    shell: Option<Shell>,
}

impl Context {
    pub fn new(
        ctx: Ctx,
        spec: ContextSpec,
        default_dir: PathBuf,
        errexit: bool,
        output: Arc<Output>,
    ) -> Context {
        Context {
            ctx,
            spec,
            default_dir,
            errexit,
            output,
            shell: None,
        }
    }

    pub fn start_command(&self) -> String {
        self.spec.cmd.clone().unwrap_or_else(|| "bash".to_string())
    }

    pub fn interactive_command(&self) -> String {
        self.spec
            .interactive_cmd
            .clone()
            .or_else(|| self.spec.cmd.clone())
            .unwrap_or_else(|| "bash".to_string())
    }

    pub fn is_running(&self) -> bool {
        self.shell.is_some()
    }

    /// The process group of the running shell, for signals.
    pub fn pgid(&self) -> Option<i32> {
        self.shell.as_ref().map(|s| s.child.id() as i32)
    }

    /// Runs one command; its output streams to the user line by line.
    pub fn run(&mut self, cmd: &str) -> Result<CommandResult, ContextError> {
        self.exchange(cmd, Sink::Lines, None)
    }

    /// Runs one command and keeps its standard output in `into` instead of showing it.
    pub fn capture(&mut self, cmd: &str, into: File) -> Result<CommandResult, ContextError> {
        self.exchange(cmd, Sink::Capture(into), None)
    }

    /// Runs one command and returns its standard output as text (lossily decoded), for
    /// `verify` checks and driver operations whose output cairn reads.
    pub fn capture_text(&mut self, cmd: &str) -> Result<(CommandResult, String), ContextError> {
        let ctx = self.ctx;
        let io = |e: std::io::Error| ContextError::Io {
            ctx,
            message: format!("cannot buffer a command's output: {e}"),
        };
        let mut spool = tempfile::tempfile().map_err(io)?;
        let r = self.capture(cmd, spool.try_clone().map_err(io)?)?;
        let mut bytes = Vec::new();
        spool
            .rewind()
            .and_then(|()| spool.read_to_end(&mut bytes))
            .map_err(io)?;
        Ok((r, String::from_utf8_lossy(&bytes).into_owned()))
    }

    /// Runs one command with the contents of `data` as its standard input.
    pub fn feed(&mut self, cmd: &str, data: File) -> Result<CommandResult, ContextError> {
        self.exchange(cmd, Sink::Lines, Some(Input::Data(data)))
    }

    /// Ends the shell; the next command starts a new one.
    pub fn stop(&mut self) {
        if let Some(mut shell) = self.shell.take() {
            let pgid = shell.child.id() as i32;
            drop(shell.stdin);
            if !exec::wait_timeout(&mut shell.child, Duration::from_secs(2)) {
                exec::kill_group(pgid, exec::Signal::SIGKILL);
                let _ = shell.child.wait();
            }
            // Whatever the command left running in its group goes with the shell.
            exec::kill_group(pgid, exec::Signal::SIGKILL);
            exec::forget_group(pgid);
        }
    }

    fn ensure_started(&mut self) -> Result<(), ContextError> {
        if self.shell.is_some() {
            return Ok(());
        }
        let cmd = self.start_command();
        let mut command = match &self.spec.cmd {
            None => {
                let mut c = std::process::Command::new("bash");
                c.args(["--noprofile", "--norc", "-s"]);
                c
            }
            Some(cmd) => {
                let mut c = std::process::Command::new("bash");
                c.args(["-c", cmd]);
                c
            }
        };
        command
            .current_dir(&self.default_dir)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        let mut child =
            exec::spawn_in_group(&mut command).map_err(|source| ContextError::Spawn {
                ctx: self.ctx,
                cmd: cmd.clone(),
                source,
            })?;
        let marker = Arc::new(Mutex::new(String::new()));
        let sink = Arc::new(Mutex::new(Sink::Lines));
        let tail = Arc::new(Mutex::new(VecDeque::new()));
        let (tx, rx) = channel();
        let io_err = |m: &str| ContextError::Io {
            ctx: self.ctx,
            message: m.to_string(),
        };
        let stdout = child.stdout.take().ok_or_else(|| io_err("no stdout"))?;
        let stderr = child.stderr.take().ok_or_else(|| io_err("no stderr"))?;
        let stdin = child.stdin.take().ok_or_else(|| io_err("no stdin"))?;
        for (stream, input) in [
            (Stream::Stdout, Box::new(stdout) as Box<dyn Read + Send>),
            (Stream::Stderr, Box::new(stderr)),
        ] {
            let reader = Reader {
                ctx: self.ctx,
                stream,
                marker: Arc::clone(&marker),
                sink: Arc::clone(&sink),
                tail: Arc::clone(&tail),
                output: Arc::clone(&self.output),
                tx: tx.clone(),
            };
            std::thread::spawn(move || reader.run(input));
        }
        self.shell = Some(Shell {
            child,
            stdin,
            events: rx,
            sink,
            tail,
            marker,
        });
        // The runner is defined once per shell, so each command costs one short line for bash
        // to read (it reads a script from a pipe a byte at a time) and one fork.
        if let Some(shell) = self.shell.as_mut() {
            let defined = shell
                .stdin
                .write_all(runner().as_bytes())
                .and_then(|()| shell.stdin.flush());
            if defined.is_err() {
                let tail = Vec::new();
                self.stop();
                return Err(ContextError::Died {
                    ctx: self.ctx,
                    cmd,
                    tail,
                });
            }
        }
        let workdir = self.spec.workdir.clone();
        let mut init = match workdir {
            Some(dir) => format!("cd -- {}\n", quote(&dir)),
            None => String::new(),
        };
        // Kameleon's recipes find their working directory in KAMELEON_WORKDIR.
        init.push_str("export CAIRN_WORKDIR=\"$PWD\" KAMELEON_WORKDIR=\"$PWD\"");
        let mut r = self.exchange(&init, Sink::Lines, None)?;
        // `env:` scripts run in the shell itself, so the functions they define stay.
        for script in self.spec.env.clone() {
            if r.status != 0 {
                break;
            }
            r = self.exchange(&script, Sink::Lines, Some(Input::Source))?;
        }
        if r.status != 0 {
            let tail = r.tail;
            self.stop();
            return Err(ContextError::Died {
                ctx: self.ctx,
                cmd,
                tail,
            });
        }
        Ok(())
    }

    fn exchange(
        &mut self,
        cmd: &str,
        sink: Sink,
        input: Option<Input>,
    ) -> Result<CommandResult, ContextError> {
        self.ensure_started()?;
        let ctx = self.ctx;
        let errexit = self.errexit;
        let start_cmd = self.start_command();
        let Some(shell) = self.shell.as_mut() else {
            return Err(ContextError::Io {
                ctx,
                message: "not started".into(),
            });
        };
        if let Ok(mut t) = shell.tail.lock() {
            t.clear();
        }
        if let Ok(mut s) = shell.sink.lock() {
            *s = sink;
        }
        let nonce = exec::nonce();
        if let Ok(mut m) = shell.marker.lock() {
            *m = end_marker(&nonce);
        }
        let (frame, data) = match input {
            Some(Input::Source) => (source_frame(cmd), None),
            Some(Input::Data(f)) => {
                let len = f.metadata().map(|m| m.len()).unwrap_or(0);
                (frame(cmd, errexit, Some(len)), Some(f))
            }
            None => (frame(cmd, errexit, None), None),
        };
        // The nonce is read by the runner once the command has ended, never by the command
        // (whose stdin is /dev/null, its data, or closed).
        let nonce_line = format!("{nonce}\n");
        let write = || -> std::io::Result<()> {
            match data {
                Some(mut f) => {
                    shell.stdin.write_all(frame.as_bytes())?;
                    f.rewind()?;
                    std::io::copy(&mut f, &mut shell.stdin)?;
                    shell.stdin.write_all(nonce_line.as_bytes())?;
                }
                None => shell
                    .stdin
                    .write_all(format!("{frame}{nonce_line}").as_bytes())?,
            }
            shell.stdin.flush()
        };
        let written = write();
        let mut status = None;
        let mut open = 2;
        let mut died = written.is_err();
        while open > 0 && !died {
            match shell.events.recv() {
                Ok(Event::Marker(Stream::Stdout, s)) => {
                    status = s;
                    open -= 1;
                }
                Ok(Event::Marker(Stream::Stderr, _)) => open -= 1,
                Ok(Event::Closed) | Err(_) => died = true,
            }
        }
        if let Ok(mut s) = shell.sink.lock() {
            *s = Sink::Lines;
        }
        let tail: Vec<String> = shell
            .tail
            .lock()
            .map(|t| t.iter().cloned().collect())
            .unwrap_or_default();
        if died {
            self.stop();
            return Err(ContextError::Died {
                ctx,
                cmd: start_cmd,
                tail,
            });
        }
        Ok(CommandResult {
            status: status.unwrap_or(255),
            tail,
        })
    }
}

impl Drop for Context {
    fn drop(&mut self) {
        self.stop();
    }
}

/// Single-quotes a string for the shell.
pub fn quote(s: &str) -> String {
    crate::vars::template::shell_quote(s)
}

/// The end marker the runner prints for a nonce (it reads only the nonce, the shorter the
/// better: bash reads its stdin a byte at a time).
fn end_marker(nonce: &str) -> String {
    format!("__CAIRN_END_{nonce}__")
}

/// The shell functions that run one command (see `frame`), defined once in each context's
/// shell. The command runs in the command substitution's subshell, with its positional
/// parameters cleared and stdin empty (`/dev/null`, or closed where a bare chroot has none) or
/// the first N bytes of the shell's stdin (`head -c N`, for a `pipe`). Exported variables come
/// back as `declare -x`, made global here since this is a function; they are adopted only when
/// they differ from the last report, which most commands leave as it was.
///
/// `__cairn_end` then reads the nonce, the line cairn wrote after the command (and its data),
/// and prints the end marker made of it alone on a line of each stream, stdout with the status.
/// The command could not have read it: it is in no variable and no function before the command
/// has ended. xtrace (`bash -x` as the context's command, `set -x` in an `env:` file) is off in
/// the shell between commands and on only inside each command's subshell, so a trace shows the
/// command and never the runner.
fn runner() -> String {
    // The command's own lines, pasted twice below: bash 5.2 mis-handles errexit leaving a
    // function called straight from a command substitution, so there is no function for them.
    let run = concat!(
        "if [ \"$2\" = 1 ]; then set -e -o pipefail; else set -o pipefail; fi\n",
        "__cairn_c=$1; set --\n",
        "case $__cairn_x in *x*) set -x;; esac\n",
        "eval \"$__cairn_c\" 3>&-\n",
        "{ __cairn_s=$?; builtin set +x; } 2>&-\n",
        "export -p >&3; builtin printf 'cd -- %q\\n' \"$PWD\" >&3; exit $__cairn_s\n",
    );
    format!(
        concat!(
            "__cairn_run() {{\n",
            "local __cairn_env __cairn_st\n",
            "__cairn_env=$( exec 3>&1 1>&4 4>&-\n",
            // What the command leaves of its data is read all the same: left in the shell's
            // stdin, it would be read as the next commands.
            "if [ -n \"$3\" ]; then head -c \"$3\" | {{ (\n{run}); __cairn_s=$?\n",
            "if [ -c /dev/null ]; then cat >/dev/null; ",
            "else while IFS= read -r -d '' __cairn_d; do :; done; fi\n",
            "exit $__cairn_s; }}; exit; fi\n",
            "if [ -c /dev/null ]; then exec </dev/null; else exec <&-; fi\n",
            "{run}",
            "); __cairn_st=$?\n",
            "if [ \"$__cairn_env\" != \"$__cairn_last\" ]; then\n",
            "eval \"${{__cairn_env//declare -x /declare -gx }}\" 2>&-; __cairn_last=$__cairn_env\n",
            "fi\n",
            "__cairn_end \"$__cairn_st\"\n",
            "}}\n",
            "__cairn_end() {{\n",
            "local __cairn_n\n",
            "IFS= builtin read -r __cairn_n\n",
            "builtin printf '\\n__CAIRN_END_%s__ %s\\n' \"$__cairn_n\" \"$1\"; ",
            "builtin printf '\\n__CAIRN_END_%s__\\n' \"$__cairn_n\" >&2\n",
            "}}\n",
            "{xoff}\n",
        ),
        xoff = XTRACE_OFF,
        run = run
    )
}

/// Turns xtrace off, remembering in `__cairn_x` whether it was on; its own trace goes nowhere.
/// Run once when the runner is defined (for `bash -x` as the context's command) and after each
/// `env:` script: between commands the shell's xtrace stays off, and each command (or script)
/// turns it on for itself when `__cairn_x` says so.
const XTRACE_OFF: &str = "{ __cairn_x=$-; set +x; } 2>&-";

/// The line sent to a context's shell for one command. The command runs in a subshell, so
/// errexit or `exit` ends only it; when it succeeds, it reports its exported variables and
/// directory on fd 3, which the context's shell then adopts. The command itself runs with fd 3
/// closed, so a daemon it starts cannot hold the report open. Nothing here needs /dev/null or
/// /dev/fd, which a bare chroot lacks. With `data_len`, that many bytes follow the line on
/// the shell's stdin and are the command's stdin.
fn frame(cmd: &str, errexit: bool, data_len: Option<u64>) -> String {
    let len = data_len.map(|n| format!(" {n}")).unwrap_or_default();
    format!(
        "__cairn_run {} {}{len} 4>&1\n",
        quote(cmd),
        u8::from(errexit)
    )
}

/// What a command gets besides its text.
enum Input {
    /// Bytes for its standard input.
    Data(File),
    /// Run in the context's shell itself rather than a subshell, without errexit.
    Source,
}

/// A script run in the context's shell itself (an `env:` file): what it defines stays. It may
/// turn xtrace on or off for the commands after it.
fn source_frame(script: &str) -> String {
    format!(
        concat!(
            "{{ case $__cairn_x in *x*) set -x;; esac; eval {script} 0<&-\n",
            "{{ __cairn_s=$? __cairn_x=$-; set +x; }} 2>&-; __cairn_end \"$__cairn_s\"\n",
            "}}\n"
        ),
        script = quote(script),
    )
}

/// A newline the reader has not passed on yet: it may be the one the runner prints before the
/// end marker.
#[derive(Clone, Copy)]
enum Held {
    Nothing,
    Newline { empty_line: bool },
}

/// The longest piece of output passed on as one line.
const MAX_LINE: usize = 1 << 20;

struct Reader {
    ctx: Ctx,
    stream: Stream,
    marker: Arc<Mutex<String>>,
    sink: Arc<Mutex<Sink>>,
    tail: Arc<Mutex<VecDeque<String>>>,
    output: Arc<Output>,
    tx: Sender<Event>,
}

impl Reader {
    /// Passes on the output line by line. A line longer than `MAX_LINE` (a command writing
    /// a gigabyte of binary to stdout) is passed on in pieces of that size rather than held
    /// in memory whole; the end marker, always a short line of its own, is never cut.
    ///
    /// The runner prints a newline before the marker, so that the marker starts a line even
    /// after output without a final newline; that newline is not the command's, so the last
    /// newline before the marker is held back until the next line shows whether it is.
    fn run(self, input: Box<dyn Read + Send>) {
        let mut reader = BufReader::with_capacity(64 * 1024, input);
        let mut line = Vec::new();
        let mut held = Held::Nothing;
        loop {
            let buf = match reader.fill_buf() {
                Ok(b) if !b.is_empty() => b,
                _ => {
                    self.release(held);
                    if !line.is_empty() {
                        self.emit(&line);
                    }
                    let _ = self.tx.send(Event::Closed);
                    return;
                }
            };
            match buf.iter().position(|b| *b == b'\n') {
                Some(i) => {
                    line.extend_from_slice(&buf[..=i]);
                    reader.consume(i + 1);
                    held = self.line(&line, held);
                    line.clear();
                }
                None => {
                    let n = buf.len();
                    line.extend_from_slice(buf);
                    reader.consume(n);
                    if line.len() >= MAX_LINE {
                        self.release(std::mem::replace(&mut held, Held::Nothing));
                        self.emit(&line);
                        line.clear();
                    }
                }
            }
        }
    }

    /// Handles one whole line (ending in a newline), `held` saying whether the newline that
    /// ended the line before it is still held back; returns whether this one's is.
    fn line(&self, line: &[u8], held: Held) -> Held {
        if let Some(status) = self.marker_status(line) {
            // The held newline was the runner's.
            let _ = self.tx.send(Event::Marker(self.stream, status));
            return Held::Nothing;
        }
        self.release(held);
        let content = &line[..line.len() - 1];
        self.emit(content);
        Held::Newline {
            empty_line: content.is_empty(),
        }
    }

    /// Passes on a held newline: it was the command's after all.
    fn release(&self, held: Held) {
        let Held::Newline { empty_line } = held else {
            return;
        };
        let mut sink = self.sink.lock().unwrap_or_else(PoisonError::into_inner);
        match &mut *sink {
            Sink::Capture(file) if self.stream == Stream::Stdout => {
                let _ = file.write_all(b"\n");
            }
            // A line with text was shown when it came; an empty one is shown now.
            _ if empty_line => {
                drop(sink);
                self.show("");
            }
            _ => {}
        }
    }

    /// Some(status) if `line` is the current end marker, alone on its line (with the status
    /// after it on stdout).
    fn marker_status(&self, line: &[u8]) -> Option<Option<i32>> {
        let marker = self.marker.lock().unwrap_or_else(PoisonError::into_inner);
        if marker.is_empty() {
            return None;
        }
        let line = line.strip_suffix(b"\n").unwrap_or(line);
        let line = line.strip_suffix(b"\r").unwrap_or(line);
        let rest = line.strip_prefix(marker.as_bytes())?;
        if rest.is_empty() {
            return Some(None);
        }
        let digits = rest.strip_prefix(b" ")?;
        if digits.is_empty() || !digits.iter().all(u8::is_ascii_digit) {
            return None;
        }
        Some(std::str::from_utf8(digits).ok()?.parse().ok())
    }

    /// Passes on a piece of the command's output, without its newline: a file gets the bytes
    /// as they are, the user a line.
    fn emit(&self, content: &[u8]) {
        if content.is_empty() {
            return;
        }
        let mut sink = self.sink.lock().unwrap_or_else(PoisonError::into_inner);
        match &mut *sink {
            Sink::Capture(file) if self.stream == Stream::Stdout => {
                let _ = file.write_all(content);
            }
            _ => {
                drop(sink);
                let text = String::from_utf8_lossy(content);
                self.show(text.strip_suffix('\r').unwrap_or(&text));
            }
        }
    }

    fn show(&self, text: &str) {
        if let Ok(mut t) = self.tail.lock() {
            if t.len() == TAIL_LINES {
                t.pop_front();
            }
            t.push_back(format!("[{}] {text}", self.ctx));
        }
        self.output.line(self.ctx, self.stream, text);
    }
}
