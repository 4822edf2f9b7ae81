//! `rescind-sim check`: every mistake in a scenario file, each at its line
//! and column — TOML syntax, unknown fields and wrong types as the TOML
//! parser reports them, then every [`crate::validate`] problem, placed at the
//! value its field path names.

use std::ops::Range;

use toml::de::{DeTable, DeValue};

use crate::scenario::Scenario;
use crate::validate::problems;

/// One mistake, where it is.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Finding {
    /// 1-based line.
    pub line: usize,
    /// 1-based column, in characters.
    pub column: usize,
    /// The field (`events[2].crash`; empty when the parser could not tell)
    /// and what is wrong.
    pub message: String,
}

/// Every mistake in scenario `text`, in file order of the checks; empty
/// when the scenario can run.
pub fn check(text: &str) -> Vec<Finding> {
    let scenario: Scenario = match toml::from_str(text) {
        Ok(s) => s,
        Err(e) => {
            let at = e.span().map_or(0, |r| r.start);
            let (line, column) = line_column(text, at);
            return vec![Finding {
                line,
                column,
                message: e.message().trim().to_owned(),
            }];
        }
    };
    // It deserialized, so it parses as a document.
    let document = DeTable::parse(text).ok();
    problems(&scenario)
        .into_iter()
        .map(|p| {
            let at = document
                .as_ref()
                .map_or(0, |d| span_of(d.get_ref(), d.span(), &p.field).start);
            let (line, column) = line_column(text, at);
            Finding {
                line,
                column,
                message: p.to_string(),
            }
        })
        .collect()
}

/// One step of a field path.
#[derive(Debug, PartialEq, Eq)]
enum Step<'a> {
    Key(&'a str),
    Index(usize),
}

/// `network.links[2].between[1]` → `network`, `links`, 2, `between`, 1.
fn steps(path: &str) -> Vec<Step<'_>> {
    let mut out = Vec::new();
    for part in path.split('.').filter(|p| !p.is_empty()) {
        let (key, mut rest) = part.split_once('[').map_or((part, ""), |(k, r)| (k, r));
        if !key.is_empty() {
            out.push(Step::Key(key));
        }
        while let Some((n, tail)) = rest.split_once(']') {
            if let Ok(i) = n.parse() {
                out.push(Step::Index(i));
            }
            rest = tail.strip_prefix('[').unwrap_or(tail);
        }
    }
    out
}

/// The span of the value at `path`, or of the deepest part of it the file
/// has (a field left to its default points at its table).
fn span_of(root: &DeTable<'_>, root_span: Range<usize>, path: &str) -> Range<usize> {
    let mut span = root_span;
    let mut table = Some(root);
    let mut array: Option<&[toml::Spanned<DeValue<'_>>]> = None;
    for step in steps(path) {
        let found = match step {
            Step::Key(k) => table.and_then(|t| {
                t.iter()
                    .find(|(key, _)| key.get_ref().as_ref() == k)
                    .map(|(_, v)| v)
            }),
            Step::Index(i) => array.and_then(|a| a.get(i)),
        };
        let Some(value) = found else { break };
        span = value.span();
        (table, array) = match value.get_ref() {
            DeValue::Table(t) => (Some(t), None),
            DeValue::Array(a) => (None, Some(&a[..])),
            _ => (None, None),
        };
    }
    span
}

/// 1-based line and column (in characters) of byte `at` of `text`.
pub fn line_column(text: &str, at: usize) -> (usize, usize) {
    let at = at.min(text.len());
    let before = text.get(..at).unwrap_or(text);
    let line = before.matches('\n').count() + 1;
    let column = before.rsplit('\n').next().map_or(0, |l| l.chars().count()) + 1;
    (line, column)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_split_into_keys_and_indices() {
        use Step::*;
        assert_eq!(
            steps("network.links[2].between[1]"),
            vec![Key("network"), Key("links"), Index(2), Key("between"), Index(1)]
        );
        assert_eq!(
            steps("events[0].partition[1][0]"),
            vec![Key("events"), Index(0), Key("partition"), Index(1), Index(0)]
        );
        assert_eq!(steps(""), vec![]);
    }

    #[test]
    fn lines_and_columns_count_from_one() {
        assert_eq!(line_column("ab\ncd", 0), (1, 1));
        assert_eq!(line_column("ab\ncd", 4), (2, 2));
        assert_eq!(line_column("é\nx", 3), (2, 1));
        assert_eq!(line_column("ab", 99), (1, 3));
    }

    #[test]
    fn a_problem_points_at_its_value() {
        let text = "name = 'x'\nduration = '10s'\n[[regions]]\nname = 'eu'\nnodes = 2\n\n[workload]\nrevokes_per_sec = 1.0\nchecks_per_sec = 1.0\n\n[[events]]\nat = '1s'\ncrash = 'eu-9'\n";
        let found = check(text);
        assert_eq!(found.len(), 1, "{found:?}");
        assert_eq!((found[0].line, found[0].column), (13, 9), "{found:?}");
        assert!(
            found[0].message.starts_with("events[0].crash: no node eu-9"),
            "{found:?}"
        );
    }

    #[test]
    fn a_syntax_error_points_where_the_parser_stopped() {
        let found = check("name = 'x'\nduration = \n");
        assert_eq!(found.len(), 1);
        assert_eq!(found[0].line, 2, "{found:?}");
        let unknown = check("name = 'x'\nduraton = '1s'\n");
        assert_eq!((unknown[0].line, unknown[0].column), (2, 1), "{unknown:?}");
        assert!(unknown[0].message.contains("duraton"), "{unknown:?}");
    }
}
