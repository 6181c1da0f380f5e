//! Journals filled directly in SQL, for the figures that need a full one: (10) the journal as
//! it grows, (12) the console's search. Messages, bodies and history rows are written as the hub
//! writes them, not through the hub, which would take hours; the secondary indexes are dropped
//! first and made again at the end, as a bulk load does.
//!
//! What the messages look like is a [`Mix`]: message `i` takes its shape (direction, kind,
//! partner) and its outcome (state, reason) from two tables by `i` times a prime, the same rule
//! in Rust (SQLite) and in SQL (PostgreSQL), so both backends hold the same mix.

use std::path::{Path, PathBuf};

use asw_testbed::PgSchema;

/// Messages written per transaction while filling.
const FILL_BATCH: usize = 100_000;
/// The body of every filled message.
const FILLED_BODY: &[u8] = b"<filled-by-asw-bench/>";
/// Message `i` takes shape `(i * SHAPE_PRIME) % shapes`.
const SHAPE_PRIME: u64 = 7919;
/// Message `i` takes the outcome whose range holds `(i * OUTCOME_PRIME) % total weight`.
const OUTCOME_PRIME: u64 = 104_729;

/// One backend under measurement.
pub(crate) enum Backend {
    /// A SQLite database file.
    Sqlite(PathBuf),
    /// A PostgreSQL schema of its own (dropped with it).
    Postgres(PgSchema),
}

impl Backend {
    /// The database's name, for the table.
    pub(crate) fn name(&self) -> &'static str {
        match self {
            Backend::Sqlite(_) => "SQLite",
            Backend::Postgres(_) => "PostgreSQL",
        }
    }

    /// Where the journal is: a path or a URL, for [`asw_journal::open`].
    pub(crate) fn location(&self) -> String {
        match self {
            Backend::Sqlite(path) => path.display().to_string(),
            Backend::Postgres(schema) => schema.url(),
        }
    }

    /// Bytes of SQLite's write-ahead log and its index (`-wal`, `-shm`): part of
    /// [`Backend::bytes_on_disk`], but bounded (`SqliteOptions::log_limit`), not growing with the
    /// messages. Nothing for PostgreSQL, whose log is the server's.
    pub(crate) fn log_bytes(&self) -> u64 {
        match self {
            Backend::Sqlite(path) => sqlite_bytes(path, &["-wal", "-shm"]),
            Backend::Postgres(_) => 0,
        }
    }

    /// Bytes the journal takes on disk: the database files, or the schema's tables with their
    /// indexes and TOAST.
    pub(crate) fn bytes_on_disk(&self) -> anyhow::Result<u64> {
        match self {
            Backend::Sqlite(path) => Ok(sqlite_bytes(path, &["", "-wal", "-shm"])),
            Backend::Postgres(schema) => {
                let out = asw_testbed::guard::psql(&format!(
                    "SELECT coalesce(sum(pg_total_relation_size(c.oid)), 0) FROM pg_class c \
                     JOIN pg_namespace n ON n.oid = c.relnamespace \
                     WHERE n.nspname = '{}' AND c.relkind = 'r'",
                    schema.name()
                ))
                .map_err(anyhow::Error::msg)?;
                Ok(out.trim().parse()?)
            }
        }
    }

    /// Adds `count` messages of `mix` to the journal, whose tables exist (the hub or
    /// [`asw_journal::open`] made them).
    pub(crate) fn fill(&self, mix: &Mix, count: usize) -> anyhow::Result<()> {
        match self {
            Backend::Sqlite(path) => fill_sqlite(path, mix, count),
            Backend::Postgres(schema) => fill_postgres(schema, mix, count),
        }
    }

    /// Removes a SQLite journal's files (a PostgreSQL schema goes with its guard).
    pub(crate) fn remove(&self) {
        if let Backend::Sqlite(path) = self {
            for suffix in ["", "-wal", "-shm"] {
                let _ = std::fs::remove_file(format!("{}{suffix}", path.display()));
            }
        }
    }
}

/// Who sent a filled message, to whom, of what kind.
#[derive(Debug, Clone)]
pub(crate) struct Shape {
    /// `outbound` or `inbound`.
    pub direction: &'static str,
    /// The kind's wire name.
    pub kind: &'static str,
    /// The sender's code.
    pub sender: &'static str,
    /// The receiver's code.
    pub receiver: &'static str,
}

/// Where a filled message ended, by direction, and how often.
#[derive(Debug, Clone)]
pub(crate) struct Outcome {
    /// Its share of the messages, against the other outcomes' weights.
    pub weight: u64,
    /// The state of an outbound message.
    pub outbound: &'static str,
    /// The state of an inbound message.
    pub inbound: &'static str,
    /// The state before it was parked, if it is.
    pub parked_from: Option<&'static str>,
    /// The last reason's code and text, if any.
    pub reason: Option<(&'static str, &'static str)>,
}

/// One history row of every filled message: event, from, to; a to-state of `None` is the
/// message's own state.
type HistoryRow = (&'static str, Option<&'static str>, Option<&'static str>);

/// What the filled messages look like, and the times they spread over.
#[derive(Debug, Clone)]
pub(crate) struct Mix {
    /// The shapes, taken in turn by a prime stride.
    pub shapes: Vec<Shape>,
    /// The outcomes, by weight.
    pub outcomes: Vec<Outcome>,
    /// Each message's history.
    pub history: &'static [HistoryRow],
    /// The messages' times spread evenly over this many days up to now.
    pub days: f64,
}

impl Mix {
    /// Settled outbound e-Form D from VN to TH over ten years, each with the history of an
    /// acknowledged document (figure (10)).
    pub(crate) fn settled() -> Mix {
        Mix {
            shapes: vec![Shape {
                direction: "outbound",
                kind: "formd",
                sender: "VN",
                receiver: "TH",
            }],
            outcomes: vec![Outcome {
                weight: 1,
                outbound: "acknowledged",
                inbound: "delivered",
                parked_from: None,
                reason: None,
            }],
            history: &[
                ("recorded", None, Some("signed")),
                ("moved", Some("signed"), Some("sent")),
                ("moved", Some("sent"), None),
            ],
            days: 3650.0,
        }
    }

    /// A year of VN's hub: both directions with the nine other member states, e-Form D and
    /// ACDD with their receipts, mostly settled, about 1.5 % parked with the hub's reasons and
    /// 0.5 % awaiting a receipt (figure (12)).
    pub(crate) fn console() -> Mix {
        const PARTNERS: [&str; 9] = ["BN", "KH", "ID", "LA", "MY", "MM", "PH", "SG", "TH"];
        // Originals outnumber receipts two to one: a receipt answers each, some go unanswered.
        const KINDS: [&str; 5] = ["formd", "formd", "formd-ack", "acdd", "acdd-ack"];
        let mut shapes = Vec::new();
        for partner in PARTNERS {
            for kind in KINDS {
                shapes.push(Shape {
                    direction: "outbound",
                    kind,
                    sender: "VN",
                    receiver: partner,
                });
                shapes.push(Shape {
                    direction: "inbound",
                    kind,
                    sender: partner,
                    receiver: "VN",
                });
            }
        }
        let parked = |weight, outbound, inbound, from, code, text| Outcome {
            weight,
            outbound,
            inbound,
            parked_from: Some(from),
            reason: Some((code, text)),
        };
        Mix {
            shapes,
            outcomes: vec![
                Outcome {
                    weight: 9780,
                    outbound: "acknowledged",
                    inbound: "delivered",
                    parked_from: None,
                    reason: None,
                },
                Outcome {
                    weight: 50,
                    outbound: "awaiting-ack",
                    inbound: "delivered",
                    parked_from: None,
                    reason: Some(("ACK-OVERDUE", "no receipt within 15 minutes")),
                },
                parked(
                    60,
                    "failed",
                    "failed",
                    "queued",
                    "RETRIES-EXHAUSTED",
                    "the partner's broker refused the connection 12 times",
                ),
                parked(
                    50,
                    "rejected",
                    "rejected",
                    "received",
                    "SCHEMA-INVALID",
                    "Line 41: element 'HSCode': '8471.30' is not a valid value",
                ),
                parked(
                    30,
                    "failed",
                    "rejected",
                    "received",
                    "SIG-EXPIRED",
                    "the signer's certificate expired on 2026-03-31",
                ),
                parked(
                    20,
                    "rejected",
                    "rejected",
                    "received",
                    "DUPLICATE-ID",
                    "message id already journaled with other bytes",
                ),
                parked(
                    10,
                    "discarded",
                    "discarded",
                    "received",
                    "PARTNER-REJECTED",
                    "discarded by an operator: sent again under a new id",
                ),
            ],
            history: &[
                ("recorded", None, Some("received")),
                ("moved", Some("received"), None),
            ],
            days: 365.0,
        }
    }

    fn total_weight(&self) -> u64 {
        self.outcomes.iter().map(|o| o.weight).sum()
    }

    /// The shape and outcome of message `i` (from 1, as PostgreSQL's series).
    fn of(&self, i: u64) -> (&Shape, &Outcome) {
        let shape = &self.shapes[(i * SHAPE_PRIME % self.shapes.len() as u64) as usize];
        let mut x = i * OUTCOME_PRIME % self.total_weight();
        let outcome = self
            .outcomes
            .iter()
            .find(|o| {
                let inside = x < o.weight;
                x = x.saturating_sub(o.weight);
                inside
            })
            // x < the total weight, so some outcome's range holds it.
            .unwrap_or(&self.outcomes[0]);
        (shape, outcome)
    }

    /// The shapes and outcomes as SQL `VALUES` tables `shapes(n, ...)` and
    /// `outcomes(lo, hi, ...)`, for [`Mix::of`] in SQL.
    fn sql_tables(&self) -> (String, String) {
        let text = |s: &str| format!("'{}'", s.replace('\'', "''"));
        let maybe = |s: Option<&str>| s.map_or_else(|| "NULL::text".to_owned(), text);
        let shapes = self
            .shapes
            .iter()
            .enumerate()
            .map(|(n, s)| {
                format!(
                    "({n}, {}, {}, {}, {})",
                    text(s.direction),
                    text(s.kind),
                    text(s.sender),
                    text(s.receiver)
                )
            })
            .collect::<Vec<_>>()
            .join(", ");
        let mut lo = 0;
        let outcomes = self
            .outcomes
            .iter()
            .map(|o| {
                let row = format!(
                    "({lo}, {}, {}, {}, {}, {}, {})",
                    lo + o.weight,
                    text(o.outbound),
                    text(o.inbound),
                    maybe(o.parked_from),
                    maybe(o.reason.map(|r| r.0)),
                    maybe(o.reason.map(|r| r.1))
                );
                lo += o.weight;
                row
            })
            .collect::<Vec<_>>()
            .join(", ");
        (
            format!("(VALUES {shapes}) AS sh(n, direction, kind, sender, receiver)"),
            format!(
                "(VALUES {outcomes}) AS oc(lo, hi, outbound, inbound, parked_from, \
                 reason_code, reason_text)"
            ),
        )
    }
}

/// Fills a SQLite journal with prepared statements, one transaction per batch.
fn fill_sqlite(path: &Path, mix: &Mix, count: usize) -> anyhow::Result<()> {
    let mut db = rusqlite::Connection::open(path)?;
    db.pragma_update(None, "journal_mode", "WAL")?;
    db.pragma_update(None, "synchronous", "OFF")?;
    db.pragma_update(None, "cache_size", -1_000_000)?;
    let indexes: Vec<(String, String)> = db
        .prepare("SELECT name, sql FROM sqlite_master WHERE type = 'index' AND sql IS NOT NULL")?
        .query_map([], |row| Ok((row.get(0)?, row.get(1)?)))?
        .collect::<Result<_, _>>()?;
    for (name, _) in &indexes {
        db.execute_batch(&format!("DROP INDEX \"{name}\""))?;
    }
    let start = time::OffsetDateTime::now_utc() - time::Duration::seconds_f64(mix.days * 86_400.0);
    // The journal's fixed-width UTC times, which sort as text.
    let fixed = time::macros::format_description!(
        "[year]-[month]-[day]T[hour]:[minute]:[second].[subsecond digits:6]Z"
    );
    let step = mix.days * 86_400.0 / count.max(1) as f64;
    let mut written = 0;
    while written < count {
        let tx = db.transaction()?;
        {
            let mut message = tx.prepare(
                "INSERT INTO messages (direction, message_id, kind, sender, receiver, version, \
                 created_at, state, parked_from, attempts, reason_code, reason_text, first_seen, \
                 updated_at, digest) \
                 VALUES (?1, ?2, ?3, ?4, ?5, '1.0', ?6, ?7, ?8, 1, ?9, ?10, ?6, ?6, ?11)",
            )?;
            let mut body = tx
                .prepare("INSERT INTO bodies (direction, message_id, bytes) VALUES (?1, ?2, ?3)")?;
            let mut history = tx.prepare(
                "INSERT INTO transitions (direction, message_id, event, from_state, to_state, at, \
                 actor) VALUES (?1, ?2, ?3, ?4, ?5, ?6, 'asw-bench')",
            )?;
            for i in written..(written + FILL_BATCH).min(count) {
                let (shape, outcome) = mix.of(i as u64 + 1);
                let state = if shape.direction == "outbound" {
                    outcome.outbound
                } else {
                    outcome.inbound
                };
                let id = uuid::Uuid::new_v4().to_string();
                let at = start + time::Duration::seconds_f64((i + 1) as f64 * step);
                let at = at.format(fixed)?;
                message.execute(rusqlite::params![
                    shape.direction,
                    id,
                    shape.kind,
                    shape.sender,
                    shape.receiver,
                    at,
                    state,
                    outcome.parked_from,
                    outcome.reason.map(|r| r.0),
                    outcome.reason.map(|r| r.1),
                    [0u8; 32].as_slice()
                ])?;
                body.execute(rusqlite::params![shape.direction, id, FILLED_BODY])?;
                for (event, from, to) in mix.history {
                    let to = to.unwrap_or(state);
                    history.execute(rusqlite::params![shape.direction, id, event, from, to, at])?;
                }
            }
        }
        tx.commit()?;
        written = (written + FILL_BATCH).min(count);
        print!("\r  {written} of {count} written");
    }
    println!();
    // No ANALYZE: the hub's SQLite journal has no statistics either (PostgreSQL's autovacuum
    // gathers them, so the PostgreSQL fill does).
    for (_, sql) in &indexes {
        db.execute_batch(sql)?;
    }
    Ok(())
}

/// Fills a PostgreSQL journal in one statement per batch (`generate_series`, the mix's tables
/// joined by the same rule as [`Mix::of`]).
fn fill_postgres(schema: &PgSchema, mix: &Mix, count: usize) -> anyhow::Result<()> {
    let psql = |sql: &str| asw_testbed::guard::psql(sql).map_err(anyhow::Error::msg);
    let indexes = psql(&format!(
        "SELECT indexname || '|' || indexdef FROM pg_indexes WHERE schemaname = '{}' \
         AND indexname NOT LIKE '%_pkey'",
        schema.name()
    ))?;
    let indexes: Vec<(&str, &str)> = indexes.lines().filter_map(|l| l.split_once('|')).collect();
    for (name, _) in &indexes {
        psql(&format!("DROP INDEX {}.{name}", schema.name()))?;
    }
    let step = mix.days * 86_400.0 / count.max(1) as f64;
    let (shapes, outcomes) = mix.sql_tables();
    let history = mix
        .history
        .iter()
        .map(|(event, from, to)| {
            let quote = |s: &Option<&str>| s.map_or("NULL".to_owned(), |s| format!("'{s}'"));
            format!("('{event}', {}, {})", quote(from), quote(to))
        })
        .collect::<Vec<_>>()
        .join(", ");
    let mut written = 0;
    while written < count {
        let upto = (written + FILL_BATCH).min(count);
        let sql = format!(
            // The rows agree with their foreign keys by construction: no trigger per row.
            "SET search_path TO {schema}; SET session_replication_role = replica; \
             WITH m AS ( \
               INSERT INTO messages (direction, message_id, kind, sender, receiver, version, \
                 created_at, state, parked_from, attempts, reason_code, reason_text, first_seen, \
                 updated_at, digest) \
               SELECT sh.direction, gen_random_uuid(), sh.kind, sh.sender, sh.receiver, '1.0', \
                 to_char(t AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS\"Z\"'), \
                 CASE sh.direction WHEN 'outbound' THEN oc.outbound ELSE oc.inbound END, \
                 oc.parked_from, 1, oc.reason_code, oc.reason_text, t, t, sha256(g::text::bytea) \
               FROM generate_series({from}::bigint, {to}::bigint) g \
               CROSS JOIN LATERAL (SELECT now() - interval '{days} days' \
                 + g * interval '{step} seconds' AS t) s \
               JOIN {shapes} ON sh.n = (g * {shape_prime}) % {shape_count} \
               JOIN {outcomes} ON (g * {outcome_prime}) % {total} >= oc.lo \
                 AND (g * {outcome_prime}) % {total} < oc.hi \
               RETURNING direction, message_id, first_seen, state), \
             b AS (INSERT INTO bodies (direction, message_id, bytes) \
               SELECT direction, message_id, '\\x{body}'::bytea FROM m) \
             INSERT INTO transitions (direction, message_id, event, from_state, to_state, at, actor) \
             SELECT m.direction, m.message_id, h.event, h.from_state, \
               coalesce(h.to_state, m.state), m.first_seen, 'asw-bench' \
             FROM m CROSS JOIN (VALUES {history}) AS h(event, from_state, to_state)",
            schema = schema.name(),
            from = written + 1,
            to = upto,
            days = mix.days,
            shape_prime = SHAPE_PRIME,
            shape_count = mix.shapes.len(),
            outcome_prime = OUTCOME_PRIME,
            total = mix.total_weight(),
            body = FILLED_BODY
                .iter()
                .map(|b| format!("{b:02x}"))
                .collect::<String>(),
        );
        psql(&sql)?;
        written = upto;
        print!("\r  {written} of {count} written");
    }
    println!();
    for (_, definition) in &indexes {
        psql(definition)?;
    }
    psql(&format!(
        "SET search_path TO {}; ANALYZE messages; ANALYZE bodies; ANALYZE transitions",
        schema.name()
    ))?;
    Ok(())
}

/// Bytes of the SQLite files `path` with each of `suffixes` (a missing file counts nothing).
fn sqlite_bytes(path: &Path, suffixes: &[&str]) -> u64 {
    suffixes
        .iter()
        .map(|suffix| {
            let file = PathBuf::from(format!("{}{suffix}", path.display()));
            std::fs::metadata(&file).map(|m| m.len()).unwrap_or(0)
        })
        .sum()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every outcome is taken, in about its share, by the rule both backends use.
    #[test]
    fn the_console_mix_takes_every_outcome_in_its_share() {
        let mix = Mix::console();
        let n = 1_000_000u64;
        let mut seen = vec![0u64; mix.outcomes.len()];
        for i in 1..=n {
            let (_, outcome) = mix.of(i);
            let at = mix
                .outcomes
                .iter()
                .position(|o| std::ptr::eq(o, outcome))
                .expect("one of the outcomes");
            seen[at] += 1;
        }
        for (o, count) in mix.outcomes.iter().zip(seen) {
            let expected = n * o.weight / mix.total_weight();
            assert!(
                count.abs_diff(expected) <= expected / 10 + 1,
                "{o:?}: {count}"
            );
        }
    }
}
