//! The shape of the source tree, as docs/architecture.md states it: no import cycle between
//! modules of `src/`, and no source file over 800 lines (unit tests live in sibling `tests.rs`
//! files). Imports are read from the text: every `crate::…` and `super::…` path outside
//! `#[cfg(test)]` is an edge to the longest module it names.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use crate::common::repo_root;

const MAX_LINES: usize = 800;

/// Files still over the limit, each with the reason; the list only shrinks.
const TOO_LONG: [(&str, &str); 0] = [];

/// Cycles still there, each with the reason; the list only shrinks.
const CYCLES: [(&[&str], &str); 0] = [];

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).expect("read src/") {
        let path = entry.expect("an entry").path();
        if path.is_dir() {
            rust_files(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

/// `src/a/b.rs` and `src/a/b/mod.rs` are `a::b`; `src/lib.rs` is the crate root "".
fn module_of(src: &Path, file: &Path) -> String {
    let rel = file
        .strip_prefix(src)
        .expect("under src/")
        .with_extension("");
    let mut parts: Vec<String> = rel
        .components()
        .map(|c| c.as_os_str().to_string_lossy().into_owned())
        .collect();
    if matches!(parts.last().map(String::as_str), Some("mod" | "lib")) {
        parts.pop();
    }
    parts.join("::")
}

/// Every module path `text` names after `crate::` or `super::`, `use` groups expanded.
fn paths(text: &str, module: &str, is_dir_module: bool) -> Vec<Vec<String>> {
    let code = text.split("#[cfg(test)]").next().unwrap_or(text);
    let code: String = code
        .lines()
        .map(|l| l.split("//").next().unwrap_or(""))
        .collect::<Vec<_>>()
        .join("\n");
    let own: Vec<String> = module
        .split("::")
        .filter(|s| !s.is_empty())
        .map(str::to_string)
        .collect();
    let mut out = Vec::new();
    for (start, base) in [
        ("crate::", Vec::new()),
        ("super::", {
            // `super` of `a::b` is `a`, whether b is a file or a directory module.
            let mut p = own.clone();
            p.pop();
            let _ = is_dir_module;
            p
        }),
    ] {
        let mut rest = code.as_str();
        while let Some(at) = rest.find(start) {
            let before = rest[..at].chars().last();
            rest = &rest[at + start.len()..];
            if before.is_some_and(|c| c.is_alphanumeric() || c == '_' || c == ':') {
                continue;
            }
            expand(rest, &base, &mut out);
        }
    }
    out
}

/// Reads one path (`a::b::C`) or group (`{a, b::{c, d}}`) at the start of `text`.
fn expand(text: &str, prefix: &[String], out: &mut Vec<Vec<String>>) {
    let mut path = prefix.to_vec();
    let mut rest = text;
    loop {
        if let Some(group) = rest.strip_prefix('{') {
            let mut depth = 1;
            let mut item_start = 0;
            for (i, c) in group.char_indices() {
                match c {
                    '{' => depth += 1,
                    '}' => depth -= 1,
                    ',' if depth == 1 => {
                        expand(group[item_start..i].trim(), &path, out);
                        item_start = i + 1;
                    }
                    _ => {}
                }
                if depth == 0 {
                    expand(group[item_start..i].trim(), &path, out);
                    return;
                }
            }
            return;
        }
        let end = rest
            .find(|c: char| !(c.is_alphanumeric() || c == '_'))
            .unwrap_or(rest.len());
        let word = &rest[..end];
        if word.is_empty() || word == "self" {
            break;
        }
        path.push(word.to_string());
        match rest[end..].strip_prefix("::") {
            Some(more) => rest = more,
            None => break,
        }
    }
    out.push(path);
}

fn graph() -> BTreeMap<String, BTreeSet<String>> {
    let src = repo_root().join("src");
    let mut files = Vec::new();
    rust_files(&src, &mut files);
    let modules: BTreeMap<String, PathBuf> = files
        .iter()
        .filter(|f| !f.ends_with("main.rs"))
        .map(|f| (module_of(&src, f), f.clone()))
        .collect();
    let mut edges: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for (module, file) in &modules {
        let text = std::fs::read_to_string(file).expect("read a source file");
        let is_dir = file.ends_with("mod.rs");
        let targets = edges.entry(module.clone()).or_default();
        for path in paths(&text, module, is_dir) {
            let target = (0..=path.len())
                .rev()
                .map(|n| path[..n].join("::"))
                .find(|m| modules.contains_key(m));
            if let Some(t) = target
                && !t.is_empty()
                && &t != module
            {
                targets.insert(t);
            }
        }
    }
    edges
}

/// Strongly connected components with more than one module (Tarjan).
fn cycles(edges: &BTreeMap<String, BTreeSet<String>>) -> Vec<BTreeSet<String>> {
    struct State<'a> {
        edges: &'a BTreeMap<String, BTreeSet<String>>,
        index: BTreeMap<&'a str, usize>,
        low: BTreeMap<&'a str, usize>,
        stack: Vec<&'a str>,
        on: BTreeSet<&'a str>,
        next: usize,
        out: Vec<BTreeSet<String>>,
    }
    fn visit<'a>(s: &mut State<'a>, v: &'a str) {
        s.index.insert(v, s.next);
        s.low.insert(v, s.next);
        s.next += 1;
        s.stack.push(v);
        s.on.insert(v);
        for w in s.edges.get(v).into_iter().flatten() {
            let w = w.as_str();
            if !s.index.contains_key(w) {
                visit(s, w);
                let lw = s.low[w];
                s.low.insert(v, s.low[v].min(lw));
            } else if s.on.contains(w) {
                let iw = s.index[w];
                s.low.insert(v, s.low[v].min(iw));
            }
        }
        if s.low[v] == s.index[v] {
            let mut scc = BTreeSet::new();
            while let Some(w) = s.stack.pop() {
                s.on.remove(w);
                scc.insert(w.to_string());
                if w == v {
                    break;
                }
            }
            if scc.len() > 1 {
                s.out.push(scc);
            }
        }
    }
    let mut s = State {
        edges,
        index: BTreeMap::new(),
        low: BTreeMap::new(),
        stack: Vec::new(),
        on: BTreeSet::new(),
        next: 0,
        out: Vec::new(),
    };
    for v in edges.keys() {
        if !s.index.contains_key(v.as_str()) {
            visit(&mut s, v);
        }
    }
    s.out
}

#[test]
fn no_import_cycle_between_modules() {
    let edges = graph();
    // The reader sees the edges that make the known cycles, or it would prove nothing.
    assert!(edges["exec::contexts"].contains("plan"), "{edges:#?}");
    assert!(edges["store"].contains("exec::contexts"), "{edges:#?}");
    let known: Vec<BTreeSet<String>> = CYCLES
        .iter()
        .map(|(m, _)| m.iter().map(|s| s.to_string()).collect())
        .collect();
    let new: Vec<_> = cycles(&edges)
        .into_iter()
        .filter(|c| !known.contains(c))
        .collect();
    assert!(new.is_empty(), "import cycles between modules: {new:?}");
}

#[test]
fn a_cycle_is_found() {
    let mut edges: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    edges.insert("a".into(), ["b".to_string()].into());
    edges.insert("b".into(), ["c".to_string()].into());
    edges.insert("c".into(), ["a".to_string()].into());
    edges.insert("d".into(), ["a".to_string()].into());
    let found = cycles(&edges);
    assert_eq!(found, [["a", "b", "c"].map(String::from).into()]);
    let mut out = Vec::new();
    expand("{a::{B, c}, d::E}", &["x".to_string()], &mut out);
    assert_eq!(
        out,
        [
            vec!["x", "a", "B"],
            vec!["x", "a", "c"],
            vec!["x", "d", "E"]
        ]
        .map(|v| v.into_iter().map(String::from).collect::<Vec<_>>())
    );
}

#[test]
fn no_source_file_over_800_lines() {
    let root = repo_root();
    let mut files = Vec::new();
    rust_files(&root.join("src"), &mut files);
    let mut long = Vec::new();
    for f in files {
        let rel = f
            .strip_prefix(&root)
            .expect("under the repo")
            .to_string_lossy()
            .into_owned();
        let lines = std::fs::read_to_string(&f).expect("read").lines().count();
        if lines > MAX_LINES && !f.ends_with("tests.rs") && !TOO_LONG.iter().any(|(p, _)| *p == rel)
        {
            long.push(format!("{rel}: {lines} lines"));
        }
    }
    assert!(
        long.is_empty(),
        "over {MAX_LINES} lines (move tests to a sibling tests.rs, or split by concern): {long:?}"
    );
}

/// docs/architecture.md's layers, lowest first: a module may import its own layer and the
/// ones before it, never one after it.
const LAYERS: [&[&str]; 13] = [
    &["diag"],
    &["yaml"],
    &["recipe"],
    &["vars"],
    &["plan"],
    &["output"],
    &["exec"],
    &["state"],
    &["driver"],
    &["store"],
    &["engine"],
    &["snapshot", "qemu"],
    &["cli", "cmd", "fuzzing", ""],
];

/// Upward imports still there, each with the reason (docs/architecture.md lists them as debts);
/// the list only shrinks.
const UPWARD: [(&str, &str, &str); 2] = [
    (
        "recipe::load::render",
        "vars",
        "load-time rendering of `extend` and `include_steps` paths and `kameleon_data_dir`",
    ),
    (
        "output::report",
        "state",
        "cairn report's page is read from the state database",
    ),
];

/// `module` is `of` or one of its submodules.
fn within(module: &str, of: &str) -> bool {
    module == of || module.starts_with(&format!("{of}::"))
}

fn layer(module: &str) -> usize {
    let top = module.split("::").next().unwrap_or("");
    LAYERS
        .iter()
        .position(|l| l.contains(&top))
        .unwrap_or_else(|| panic!("module {module} is in no layer of LAYERS"))
}

#[test]
fn imports_go_only_down_the_layers() {
    let edges = graph();
    let mut upward = Vec::new();
    for (from, targets) in &edges {
        for to in targets {
            if layer(to) > layer(from) && !UPWARD.iter().any(|(f, t, _)| f == from && within(to, t))
            {
                upward.push(format!("{from} -> {to}"));
            }
        }
    }
    assert!(
        upward.is_empty(),
        "imports up the layers of docs/architecture.md: {upward:?}"
    );
    // The reader sees the known exceptions, or the check would prove nothing.
    for (from, to, _) in UPWARD {
        assert!(
            edges
                .get(from)
                .is_some_and(|ts| ts.iter().any(|t| within(t, to))),
            "{from} no longer imports {to}: remove it from UPWARD"
        );
    }
}
