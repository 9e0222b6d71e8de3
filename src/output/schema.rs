//! The `--json` contract: the schema version, the enumerations that stand where prose used to
//! (actions, statuses, error kinds), and the one writer every command's JSON goes through, so
//! that every stream starts with a `start` event and ends with an `end` event. docs/json.md
//! documents each event and field; a test holds the two together.

use std::io::Write;
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, Ordering};

use std::collections::BTreeMap;

use super::event::Event;
use crate::diag::error::Error;

pub use super::vocab::*;

/// Whether this process writes JSON events, and whether its `start` event is out.
static ENABLED: AtomicBool = AtomicBool::new(false);
static STARTED: AtomicBool = AtomicBool::new(false);
static COMMAND: Mutex<CommandName> = Mutex::new(CommandName::Other);
/// The command that resumes the build in progress, for the `error` event of its failure.
static RESUME: Mutex<Option<String>> = Mutex::new(None);
/// One line at a time, whichever thread writes.
static LINE: Mutex<()> = Mutex::new(());

/// Called once by main when the command line asked for JSON.
pub fn enable(command: CommandName) {
    *COMMAND.lock().unwrap_or_else(|p| p.into_inner()) = command;
    ENABLED.store(true, Ordering::SeqCst);
}

/// Called when a build starts running: its failure can be resumed with this command.
pub fn set_resume(command: String) {
    *RESUME.lock().unwrap_or_else(|p| p.into_inner()) = Some(command);
}

pub fn enabled() -> bool {
    ENABLED.load(Ordering::SeqCst)
}

fn command() -> CommandName {
    *COMMAND.lock().unwrap_or_else(|p| p.into_inner())
}

/// Writes one event as a line, with its `time`, after the stream's `start` event.
pub fn write(event: &Event) {
    let _guard = LINE.lock().unwrap_or_else(|p| p.into_inner());
    let mut out = std::io::stdout().lock();
    if !STARTED.swap(true, Ordering::SeqCst) && !matches!(event, Event::Start { .. }) {
        let start = Event::Start {
            schema_version: SCHEMA_VERSION,
            cairn_version: env!("CARGO_PKG_VERSION").to_string(),
            command: command(),
        };
        let _ = writeln!(out, "{}", crate::diag::secrets::redact(&text(&start)));
    }
    let _ = writeln!(out, "{}", crate::diag::secrets::redact(&text(event)));
    let _ = out.flush();
}

fn line(event: &Event) -> serde_json::Value {
    match serde_json::to_value(event) {
        Ok(serde_json::Value::Object(mut map)) => {
            // Every event carries the time it happened, so a reader can time what lies
            // between two events (an apply, say) without timestamping lines itself.
            map.insert("time".into(), serde_json::json!(crate::output::time::now()));
            serde_json::Value::Object(map)
        }
        _ => serde_json::Value::Null,
    }
}

/// The event as one line, `event` and `time` first so that a person can read the stream too.
fn text(event: &Event) -> String {
    let serde_json::Value::Object(mut map) = line(event) else {
        return String::new();
    };
    let head = format!(
        "{{\"event\":{},\"time\":{}",
        map.remove("event").unwrap_or_default(),
        map.remove("time").unwrap_or_default()
    );
    let rest = serde_json::Value::Object(map).to_string();
    match rest.strip_prefix('{').filter(|r| *r != "}") {
        Some(r) => format!("{head},{r}"),
        None => format!("{head}}}"),
    }
}

/// Ends a JSON stream: the `error` event of a failure, then `end` with the exit code.
pub fn finish(result: &Result<(), Error>) {
    if !enabled() {
        return;
    }
    let exit_code = match result {
        Ok(()) => 0,
        Err(e) => {
            let resume = RESUME.lock().unwrap_or_else(|p| p.into_inner()).clone();
            let resumable = matches!(
                ErrorKind::of(e),
                ErrorKind::CommandFailed | ErrorKind::Verify | ErrorKind::Breakpoint
            );
            let resume = resume.filter(|_| resumable);
            write(&Event::Error(ErrorFields::of(e, resume)));
            e.exit_code()
        }
    };
    write(&Event::End { exit_code });
}

/// A usage error clap found before any command ran (exit code 2).
pub fn usage_error(message: &str) {
    let e = Error::Usage(message.trim().to_string());
    finish(&Err(e));
}

/// The type of a field as docs/json.md writes it.
#[doc(hidden)]
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DocType {
    /// `integer`, `number`, `string`, `boolean`, `array`, `object`, or `enum`.
    pub base: String,
    /// The values of an enumeration.
    pub values: Vec<String>,
    pub nullable: bool,
}

impl DocType {
    fn parse(cell: &str) -> DocType {
        let (cell, nullable) = match cell.strip_suffix(" or null") {
            Some(rest) => (rest, true),
            None => (cell, false),
        };
        if cell.starts_with('"') {
            let values = cell
                .split("\\|")
                .map(|v| v.trim().trim_matches('"').to_string())
                .collect();
            return DocType {
                base: "enum".into(),
                values,
                nullable,
            };
        }
        let base = if cell.starts_with("array") {
            "array"
        } else {
            cell
        };
        DocType {
            base: base.to_string(),
            values: Vec::new(),
            nullable,
        }
    }

    /// Whether a JSON value fits this type.
    pub fn admits(&self, v: &serde_json::Value) -> bool {
        use serde_json::Value as V;
        match v {
            V::Null => self.nullable,
            V::Bool(_) => self.base == "boolean",
            V::Number(n) => match self.base.as_str() {
                "integer" => n.is_i64() || n.is_u64(),
                "number" => true,
                _ => false,
            },
            V::String(s) => {
                self.base == "string" || (self.base == "enum" && self.values.contains(s))
            }
            V::Array(_) => self.base == "array",
            V::Object(_) => self.base == "object",
        }
    }
}

/// docs/json.md read as a schema: each `### `name`` heading is an event, the rows of the
/// table under it its fields. The fields every event has (`event`, `time`) are in each.
#[doc(hidden)]
pub fn parse_doc(text: &str) -> BTreeMap<String, BTreeMap<String, DocType>> {
    let mut events: BTreeMap<String, BTreeMap<String, DocType>> = BTreeMap::new();
    let mut common: BTreeMap<String, DocType> = BTreeMap::new();
    let mut current: Option<String> = None;
    let mut in_common = false;
    for line in text.lines() {
        if let Some(h) = line.strip_prefix("### ") {
            current = Some(h.trim().trim_matches('`').to_string());
            in_common = false;
            events
                .entry(current.clone().unwrap_or_default())
                .or_default();
        } else if line.starts_with("## ") {
            current = None;
            in_common = line.trim() == "## Every event";
        } else if let Some(row) = line.strip_prefix("| `") {
            let cells: Vec<&str> = row.split(" | ").collect();
            if cells.len() < 2 {
                continue;
            }
            let name = cells[0].trim_end_matches('`').to_string();
            let ty = DocType::parse(cells[1].trim());
            if in_common {
                common.insert(name, ty);
            } else if let Some(event) = &current {
                events.entry(event.clone()).or_default().insert(name, ty);
            }
        }
    }
    for fields in events.values_mut() {
        fields.extend(common.clone());
    }
    events
}

#[cfg(test)]
mod tests {
    use super::*;

    const DOC: &str = include_str!("../../docs/json.md");

    /// Every event the code can emit is documented with exactly its fields, each of the
    /// documented type; and the document names no event or field the code does not have.
    #[test]
    fn docs_json_md_matches_the_events() {
        let doc = parse_doc(DOC);
        let samples = Event::samples();
        let covered: std::collections::BTreeSet<usize> =
            samples.iter().map(Event::variant).collect();
        assert_eq!(
            covered.len(),
            Event::VARIANTS,
            "samples() has one of each event"
        );
        let mut names = std::collections::BTreeSet::new();
        for e in &samples {
            let v = line(e);
            let name = v["event"].as_str().unwrap().to_string();
            let fields = doc
                .get(&name)
                .unwrap_or_else(|| panic!("event `{name}` is not in docs/json.md"));
            let obj = v.as_object().unwrap();
            for (k, value) in obj {
                let ty = fields
                    .get(k)
                    .unwrap_or_else(|| panic!("field `{k}` of `{name}` is not in docs/json.md"));
                assert!(ty.admits(value), "`{name}.{k}` = {value} is not a {ty:?}");
            }
            for k in fields.keys() {
                assert!(
                    obj.contains_key(k),
                    "docs/json.md documents `{name}.{k}`, which the code does not write"
                );
            }
            names.insert(name);
        }
        let documented: std::collections::BTreeSet<String> = doc.keys().cloned().collect();
        assert_eq!(
            documented, names,
            "docs/json.md documents exactly the events"
        );
    }

    #[test]
    fn lines_start_with_event_and_time_and_stay_json() {
        for e in Event::samples() {
            let t = text(&e);
            assert!(t.starts_with("{\"event\":\""), "{t}");
            let v: serde_json::Value = serde_json::from_str(&t).unwrap();
            let mut want = line(&e);
            want["time"] = v["time"].clone();
            assert_eq!(v, want);
        }
    }

    /// The enumerations in the document are the code's, value for value.
    #[test]
    fn documented_enumerations_are_the_codes() {
        let doc = parse_doc(DOC);
        let values = |event: &str, field: &str| -> Vec<String> { doc[event][field].values.clone() };
        let json = |v: &[serde_json::Value]| -> Vec<String> {
            v.iter().map(|x| x.as_str().unwrap().to_string()).collect()
        };
        use crate::plan::schedule::Action;
        let actions = [
            Action::Run,
            Action::UseCheckpoint,
            Action::Skip,
            Action::Done,
        ];
        let actions: Vec<_> = actions
            .iter()
            .map(|a| serde_json::to_value(a).unwrap())
            .collect();
        assert_eq!(values("microstep_start", "action"), json(&actions));
        assert_eq!(values("plan_microstep", "action"), json(&actions));
        let statuses = [
            MicrostepStatus::Completed,
            MicrostepStatus::Failed,
            MicrostepStatus::Restored,
            MicrostepStatus::Skipped,
            MicrostepStatus::Done,
        ];
        let statuses: Vec<_> = statuses
            .iter()
            .map(|a| serde_json::to_value(a).unwrap())
            .collect();
        assert_eq!(values("microstep_end", "status"), json(&statuses));
        let outcomes = [
            RunOutcome::Succeeded,
            RunOutcome::Failed,
            RunOutcome::Interrupted,
        ];
        let outcomes: Vec<_> = outcomes
            .iter()
            .map(|a| serde_json::to_value(a).unwrap())
            .collect();
        assert_eq!(values("run_end", "status"), json(&outcomes));
        let kinds = [
            ErrorKind::CommandFailed,
            ErrorKind::Verify,
            ErrorKind::Breakpoint,
            ErrorKind::Usage,
            ErrorKind::BadInput,
            ErrorKind::Checkpoint,
            ErrorKind::State,
            ErrorKind::Locked,
            ErrorKind::Interrupted,
            ErrorKind::Io,
            ErrorKind::NoSpace,
            ErrorKind::Other,
        ];
        let kinds: Vec<_> = kinds
            .iter()
            .map(|a| serde_json::to_value(a).unwrap())
            .collect();
        assert_eq!(values("error", "kind"), json(&kinds));
        let commands = [
            CommandName::Build,
            CommandName::Resume,
            CommandName::Plan,
            CommandName::Checkpoints,
            CommandName::Graph,
            CommandName::Other,
        ];
        let commands: Vec<_> = commands
            .iter()
            .map(|a| serde_json::to_value(a).unwrap())
            .collect();
        assert_eq!(values("start", "command"), json(&commands));
    }
}
