//! Plain text tables for people: a header row, then columns two spaces apart, left-aligned; the
//! last column is not padded, so long reasons run on instead of widening every row.

/// A table being filled.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Table {
    header: Vec<String>,
    rows: Vec<Vec<String>>,
}

impl Table {
    /// A table with these column titles.
    pub fn new(header: &[&str]) -> Table {
        Table {
            header: header.iter().map(|h| (*h).to_owned()).collect(),
            rows: Vec::new(),
        }
    }

    /// Adds a row; missing cells are empty, extra ones are dropped.
    pub fn push(&mut self, row: Vec<String>) {
        let mut row = row;
        row.resize(self.header.len(), String::new());
        self.rows.push(row);
    }

    /// The table as text, one line per row, each ending in a newline.
    pub fn render(&self) -> String {
        let columns = self.header.len();
        let mut out = String::new();
        let rows: Vec<Vec<String>> = std::iter::once(&self.header)
            .chain(&self.rows)
            .map(|row| row.iter().map(|c| printable(c, false)).collect())
            .collect();
        let mut widths = vec![0; columns];
        for row in &rows {
            for (width, cell) in widths.iter_mut().zip(row) {
                *width = (*width).max(cell.chars().count());
            }
        }
        for row in &rows {
            let mut line = String::new();
            for (i, cell) in row.iter().enumerate() {
                if i + 1 == columns {
                    line.push_str(cell);
                } else {
                    line.push_str(cell);
                    let pad = widths[i] - cell.chars().count() + 2;
                    line.extend(std::iter::repeat_n(' ', pad));
                }
            }
            out.push_str(line.trim_end());
            out.push('\n');
        }
        out
    }
}

/// Text from a partner or a back-office made safe for a terminal: control characters (escape
/// sequences, a lone carriage return, and line breaks and tabs unless `multiline`) are shown
/// escaped (`\u{1b}`).
pub fn printable(text: &str, multiline: bool) -> String {
    let mut out = String::with_capacity(text.len());
    let mut chars = text.chars().peekable();
    while let Some(c) = chars.next() {
        let kept = !c.is_control()
            || (multiline
                && (c == '\n' || c == '\t' || (c == '\r' && chars.peek() == Some(&'\n'))));
        if kept {
            out.push(c);
        } else {
            out.extend(c.escape_unicode());
        }
    }
    out
}

/// `-` for a missing value.
pub fn or_dash(value: Option<impl ToString>) -> String {
    value.map_or_else(|| "-".to_owned(), |v| v.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn columns_line_up_and_the_last_runs_on() {
        let mut table = Table::new(&["ID", "STATE", "REASON"]);
        table.push(vec!["a".into(), "delivered".into(), String::new()]);
        table.push(vec![
            "bbbb".into(),
            "failed".into(),
            "XSD line 3: a long reason".into(),
        ]);
        expect_test::expect![[r#"
            ID    STATE      REASON
            a     delivered
            bbbb  failed     XSD line 3: a long reason
        "#]]
        .assert_eq(&table.render());
    }

    #[test]
    fn control_characters_are_escaped() {
        assert_eq!(printable("a\u{1b}[31mb\nc", false), "a\\u{1b}[31mb\\u{a}c");
        assert_eq!(printable("<a>\r\n\t</a>\r", true), "<a>\r\n\t</a>\\u{d}");
    }
}
