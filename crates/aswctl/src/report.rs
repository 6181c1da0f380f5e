//! How the operator commands show journal records, their history and document bytes: the JSON
//! shapes (stable, for scripts) and the readable blocks and tables.

pub use asw_console::views::{DocumentView, HistoryView, SummaryView};
use asw_journal::{MessageSummary, TransitionRecord};

use crate::table::{Table, or_dash, printable};
use crate::when::{rfc3339, short};

/// The lines describing a journal record, `label  value`.
pub fn summary_lines(s: &MessageSummary) -> Vec<(&'static str, String)> {
    let mut lines = vec![
        ("message id", s.header.message_id.to_string()),
        ("direction", s.direction.to_string()),
        ("kind", s.header.kind.to_string()),
        (
            "sender -> receiver",
            format!("{} -> {}", s.header.sender, s.header.receiver),
        ),
        ("state", s.state.to_string()),
    ];
    if let Some(from) = s.parked_from {
        lines.push(("parked from", from.to_string()));
    }
    if let Some(c) = s.header.correlation_id {
        lines.push(("answers", c.to_string()));
    }
    if let Some(r) = &s.reason {
        lines.push(("reason", r.text.clone()));
        lines.push(("reason code", r.code.clone()));
    }
    lines.extend([
        ("attempts", s.attempts.to_string()),
        ("created at", rfc3339(s.header.created_at)),
        ("first seen", rfc3339(s.first_seen)),
        ("updated at", rfc3339(s.updated_at)),
        ("sha256", s.digest_hex()),
    ]);
    lines
}

/// Prints `label  value` lines with the labels aligned.
pub fn print_lines(lines: &[(&str, String)]) {
    let width = lines.iter().map(|(l, _)| l.len()).max().unwrap_or(0);
    for (label, value) in lines {
        println!("{label:<width$}  {}", printable(value, false));
    }
}

/// A message's history as a table.
pub fn history_table(history: &[TransitionRecord]) -> Table {
    let mut table = Table::new(&["AT", "EVENT", "FROM", "TO", "ACTOR", "REASON"]);
    for t in history {
        table.push(vec![
            short(t.at),
            t.event.to_string(),
            or_dash(t.from),
            t.to.to_string(),
            t.actor.clone(),
            t.reason
                .as_ref()
                .map(|r| r.text.clone())
                .unwrap_or_default(),
        ]);
    }
    table
}

/// Prints a titled section.
pub fn section(title: &str) {
    println!("\n{title}");
}

/// Prints document bytes under a heading: the text if UTF-8, else a note to use `--document`.
pub fn print_document(bytes: &[u8]) {
    section(&format!("document ({} bytes)", bytes.len()));
    match std::str::from_utf8(bytes) {
        Ok(text) => {
            let text = printable(text, true);
            print!("{text}");
            if !text.ends_with('\n') {
                println!();
            }
        }
        Err(_) => println!("(not UTF-8; write the exact bytes with --document)"),
    }
}

/// Writes the exact bytes to stdout (for `--document`).
pub fn write_bytes(bytes: &[u8]) -> anyhow::Result<()> {
    use std::io::Write;
    let mut out = std::io::stdout().lock();
    out.write_all(bytes)?;
    out.flush()?;
    Ok(())
}
