//! "Did you mean": the nearest known name to a misspelt one.

use super::error::Diagnostic;
use super::source::Span;

/// An error for a name that is not one of `known`, suggesting the nearest one.
pub fn unknown(span: &Span, what: &str, name: &str, known: &[&str]) -> Diagnostic {
    let d = Diagnostic::at(span, format!("unknown {what} `{name}`"));
    match closest(name, known.iter().copied()) {
        Some(best) => d.hint(format!("did you mean `{best}`?")),
        None => d.hint(format!("expected one of: {}", known.join(", "))),
    }
}

/// The candidate within a third of its length in edits, counting a swap of two neighbouring
/// characters as one edit (`setpu` is one typo away from `setup`).
pub fn closest<'a>(name: &str, candidates: impl Iterator<Item = &'a str>) -> Option<&'a str> {
    candidates
        .map(|c| (strsim::osa_distance(name, c), c))
        .filter(|(d, c)| *d <= (c.len().max(name.len()) / 3).max(1))
        .min_by_key(|(d, _)| *d)
        .map(|(_, c)| c)
}

#[cfg(test)]
mod tests {
    use super::closest;

    #[test]
    fn a_swap_is_one_edit() {
        let known = ["setup", "export", "bootstrap"];
        assert_eq!(closest("setpu", known.iter().copied()), Some("setup"));
        assert_eq!(closest("exprot", known.iter().copied()), Some("export"));
        assert_eq!(closest("zzz", known.iter().copied()), None);
    }
}
