//! Reading small result sets for pages: any query, as column names and text cells.

use crate::{Db, Error};

/// A result set as text, the way ClickHouse formats each value.
#[derive(Debug, Clone, Default, PartialEq)]
pub(super) struct Grid {
    pub(super) columns: Vec<String>,
    pub(super) rows: Vec<Vec<String>>,
}

impl Grid {
    /// The cell of `column` in `row`, or "".
    pub(super) fn get<'a>(&'a self, row: &'a [String], column: &str) -> &'a str {
        self.columns
            .iter()
            .position(|c| c == column)
            .and_then(|i| row.get(i))
            .map_or("", String::as_str)
    }
}

/// Runs `sql` (templated with `{db}`) with string parameters and returns its rows.
pub(super) async fn grid(
    db: &Db,
    step: &'static str,
    sql: &str,
    params: &[(&str, &str)],
) -> Result<Grid, Error> {
    let mut query = db.query(&db.sql(sql, &[]));
    for (name, value) in params {
        query = query.param(name, *value);
    }
    let mut cursor = query
        .fetch_bytes("TSVWithNames")
        .map_err(|e| Error::query(step, e))?;
    let bytes = cursor.collect().await.map_err(|e| Error::query(step, e))?;
    Ok(parse_tsv(&String::from_utf8_lossy(&bytes)))
}

fn parse_tsv(text: &str) -> Grid {
    let mut lines = text.lines();
    let columns = lines
        .next()
        .map(|l| l.split('\t').map(unescape).collect())
        .unwrap_or_default();
    let rows = lines
        .map(|l| l.split('\t').map(unescape).collect())
        .collect();
    Grid { columns, rows }
}

/// Undoes ClickHouse's TSV escaping.
fn unescape(cell: &str) -> String {
    if cell == "\\N" {
        return String::new();
    }
    let mut out = String::with_capacity(cell.len());
    let mut chars = cell.chars();
    while let Some(c) = chars.next() {
        if c != '\\' {
            out.push(c);
            continue;
        }
        match chars.next() {
            Some('t') => out.push('\t'),
            Some('n') => out.push('\n'),
            Some('r') => out.push('\r'),
            Some('0') => out.push('\0'),
            Some('b') => out.push('\u{8}'),
            Some('f') => out.push('\u{c}'),
            Some(other) => out.push(other),
            None => out.push('\\'),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tsv_with_escapes() {
        let grid = parse_tsv("a\tb\nx\\ty\t\\N\nback\\\\slash\tnew\\nline\n");
        assert_eq!(grid.columns, ["a", "b"]);
        assert_eq!(
            grid.rows,
            [vec!["x\ty", ""], vec!["back\\slash", "new\nline"]]
        );
        assert_eq!(grid.get(&grid.rows[0], "a"), "x\ty");
        assert_eq!(grid.get(&grid.rows[0], "zzz"), "");
    }
}
