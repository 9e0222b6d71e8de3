//! Positions in a YAML text as cairn shows them.

/// Where each line of a text starts, counted as the rest of cairn counts lines (`str::lines`:
/// a line ends at `\n`). YAML also ends a line at a lone `\r`, so the parser's own line numbers
/// can run past the lines an error shows; positions are taken from its character index instead.
pub(super) struct LineStarts(Vec<usize>);

impl LineStarts {
    pub(super) fn new(text: &str) -> LineStarts {
        let mut starts = vec![0];
        starts.extend(
            text.chars()
                .enumerate()
                .filter(|(_, c)| *c == '\n')
                .map(|(i, _)| i + 1),
        );
        LineStarts(starts)
    }

    /// The 1-based line and column of a parser position.
    pub(super) fn at(&self, m: &saphyr_parser::Marker) -> (usize, usize) {
        let line = self.0.partition_point(|&start| start <= m.index()).max(1);
        (line, m.index() - self.0[line - 1] + 1)
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use crate::diag::source::{Dialect, SourceFile};

    fn file(text: &str) -> Arc<SourceFile> {
        SourceFile::new("t.yaml", text.to_string(), Dialect::Native)
    }

    /// Found by the `recipe` fuzz target: YAML ends a line at a lone `\r`, so the parser put this
    /// error on line 7 of a file that shows 4 lines.
    #[test]
    fn lone_carriage_returns_do_not_move_errors_past_the_lines_shown() {
        let text = "lobal:\n\rnt{{#: [cglobalopby]\ns..etup::\n\rhostnam?m c m[]\n";
        let err = super::super::parse(&file(text)).unwrap_err();
        let span = err.span.unwrap();
        assert_eq!((span.line, span.col), (5, 1), "{}", err.message);
        assert!(span.line <= text.lines().count() + 1);

        let text = "setup:\r  - s:\r    - a: [\r";
        let err = super::super::parse(&file(text)).unwrap_err();
        let span = err.span.unwrap();
        assert_eq!(span.line, 1, "{}", err.message);
        assert!(span.col <= text.chars().count() + 1);
    }

    #[test]
    fn positions_after_a_lone_carriage_return_stay_on_its_line() {
        let root = super::super::parse(&file("a: 1\rb: two\nc: 3\n")).unwrap();
        let b = root.get("b").unwrap();
        assert_eq!((b.span.line, b.span.col, b.span.len), (1, 9, 3));
        let c = root.get("c").unwrap();
        assert_eq!((c.span.line, c.span.col), (2, 4));
    }
}
