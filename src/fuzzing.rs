//! Entry points for the fuzz targets (`fuzz/`, cargo-fuzz) and the property tests: each takes
//! arbitrary bytes and must return, whatever they are, without a panic, a hang or an unbounded
//! allocation. They live in the library so that the normal build keeps them compiling when the
//! modules they call move.

use std::path::Path;

use crate::diag::source::SourceFile;

/// The YAML layer, in both dialects.
pub fn yaml(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    for dialect in [
        crate::recipe::dialect::Dialect::Native,
        crate::recipe::dialect::Dialect::Kameleon,
    ] {
        let file = std::sync::Arc::new(SourceFile {
            path: "fuzz.yaml".into(),
            text: text.to_string(),
            dialect,
        });
        let _ = crate::yaml::parse(&file);
    }
}

/// Kameleon's dialect: detection, translation of its strings into templates, and YAML 1.1
/// scalars; a translated string must render or fail cleanly.
pub fn dialect(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let _ = crate::recipe::dialect::detect(text);
    let translated = crate::recipe::dialect::translate(text);
    let _ = crate::recipe::dialect::cli_value(text, crate::recipe::dialect::Dialect::Kameleon);
    let _ = crate::yaml::yaml11::yaml11_plain(text);
    let _ = crate::vars::template::render(&translated, &sample_data());
}

/// Templates as recipes write them, against a few variables.
pub fn template(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let data = sample_data();
    let slow = crate::vars::template::render(text, &data);
    // Where the fast path takes a template, it must give what handlebars gives.
    if let Some(pieces) = crate::vars::template::simple(text) {
        use crate::vars::template::RenderFailure;
        let fast = crate::vars::template::fill::<String, RenderFailure>(&pieces, |name| match data
            .get(name)
        {
            Some(serde_json::Value::String(v)) => Ok(v.clone()),
            _ => Err(RenderFailure::Missing(name.to_string())),
        });
        match (fast, slow) {
            (Ok(a), Ok(b)) => assert_eq!(a, b, "{text:?}"),
            (Err(RenderFailure::Missing(a)), Err(RenderFailure::Missing(b))) => {
                assert_eq!(a, b, "{text:?}")
            }
            (Err(RenderFailure::Syntax(_)), Err(RenderFailure::Syntax(_))) => {}
            _ => panic!("{text:?}: the fast path and handlebars disagree"),
        }
    }
}

fn sample_data() -> serde_json::Value {
    serde_json::json!({
        "a": "x",
        "rootfs": "/b/rootfs",
        "odd": "it's \"$(x)\" `y` \\ \n",
        "checkpoint_id": "0123456789abcdef0123456789abcdef01234567",
        "list-name": "v",
    })
}

/// A recipe file, loaded and planned (planning resolves every variable and computes the IDs;
/// it starts no process). `dir` is a scratch directory of the caller's.
pub fn recipe(dir: &Path, data: &[u8]) {
    let path = dir.join("fuzz.yaml");
    if std::fs::write(&path, data).is_err() {
        return;
    }
    let recipe = match crate::recipe::load::load(&path) {
        Ok(recipe) => recipe,
        Err(e) => return check_error(&e, &path),
    };
    let build_dir = dir.join("build");
    let opts = crate::plan::PlanOptions {
        cli_globals: &[],
        build_dir: &build_dir,
        checkpointing: true,
    };
    if let Err(e) = crate::plan::plan(recipe, &opts) {
        check_error(&e, &path);
    }
}

/// An error about the input file must point into it: a line it has, a column on that line.
fn check_error(e: &crate::Error, path: &Path) {
    let (crate::Error::BadInput(d) | crate::Error::Checkpoint(d)) = e else {
        return;
    };
    let Some(span) = &d.span else {
        return;
    };
    if span.is_synthetic() || span.file.path != path {
        return;
    }
    let lines = span.file.text.lines().count().max(1);
    assert!(
        (1..=lines + 1).contains(&span.line),
        "{}: line {} of a file of {lines} lines",
        d.message,
        span.line
    );
    let _ = e.render(false);
}

/// A driver file, loaded and bound to a scope; every operation is rendered.
pub fn driver(dir: &Path, data: &[u8]) {
    let path = dir.join("fuzz-driver.yaml");
    if std::fs::write(&path, data).is_err() {
        return;
    }
    let Ok(driver) = crate::driver::Driver::load(&path, None) else {
        return;
    };
    let mut scope = crate::vars::Scope::default();
    for (k, v) in [("rootfs", "/b/rootfs"), ("build_dir", "/b")] {
        scope.set(
            k,
            crate::recipe::model::Text::new(v, crate::diag::source::Span::synthetic("fuzz")),
            crate::vars::Origin::Builtin,
        );
    }
    let bound = crate::driver::BoundDriver::bind(driver, &std::sync::Arc::new(scope));
    for op in crate::driver::Op::ALL {
        let _ = bound.commands(op, "0123456789abcdef0123456789abcdef01234567");
    }
}

#[cfg(test)]
mod tests {
    /// Found by the `template` fuzz target: handlebars refuses a variable whose name starts
    /// with `else` (its keyword), while the fast path rendered it; both must agree.
    #[test]
    fn the_fast_path_and_handlebars_agree_on_names_that_start_with_else() {
        for t in [
            "{{elsewhere}}",
            "{{else_x}}",
            "{{a}} {{elseelease}}",
            "{{sh elsewhere}}",
            "{{[elsewhere]}}",
        ] {
            super::template(t.as_bytes());
        }
        let found = "se - a:\n  - exec_local: {{sh rootfs}}\n  mirror={{sh mirror}}\n  rel={{elseelease}}\n";
        super::template(found.as_bytes());
    }
}
