//! (10) The journal as it grows: the hub's outbound rate with an empty journal and with one
//! already holding `--journal-messages` settled messages (15 million: ten years of Viet Nam's
//! e-Form D traffic), on both backends, and the bytes on disk per message.
//!
//! The full journal is filled directly in SQL (messages, bodies and three history rows each, as
//! the hub writes them for an acknowledged document, spread over ten years), not through the
//! hub, which would take hours. Its bodies are short: fifteen million real bodies would need more
//! disk than machines of this kind have (the bytes per message row says how much); what the rate
//! depends on, the indexes' depth and the rows' shape, is the real one.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::Context;
use asw_amqp::Connection;
use asw_model::DocumentKind;
use asw_route::names;
use asw_testbed::PgSchema;

use crate::{Args, Arrivals, Row, document, publish_all, rate, start_hub, state, stop_hub};

/// Messages written per transaction while filling.
const FILL_BATCH: usize = 100_000;
/// The body of every filled message.
const FILLED_BODY: &[u8] = b"<filled-by-asw-bench/>";

/// One backend under measurement.
enum Backend {
    Sqlite(PathBuf),
    Postgres(PgSchema),
}

impl Backend {
    fn name(&self) -> &'static str {
        match self {
            Backend::Sqlite(_) => "SQLite",
            Backend::Postgres(_) => "PostgreSQL",
        }
    }

    /// The `[journal]` line of the hub's configuration.
    fn journal_line(&self) -> String {
        match self {
            Backend::Sqlite(path) => format!("path = \"{}\"", path.display()),
            Backend::Postgres(schema) => format!("url = \"{}\"", schema.url()),
        }
    }

    /// Bytes the journal takes on disk: the database files, or the schema's tables with their
    /// indexes and TOAST.
    fn bytes_on_disk(&self) -> anyhow::Result<u64> {
        match self {
            Backend::Sqlite(path) => {
                let mut total = 0;
                for suffix in ["", "-wal", "-shm"] {
                    let file = PathBuf::from(format!("{}{suffix}", path.display()));
                    total += std::fs::metadata(&file).map(|m| m.len()).unwrap_or(0);
                }
                Ok(total)
            }
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

    /// Adds `count` settled outbound messages to the journal.
    fn fill(&self, count: usize) -> anyhow::Result<()> {
        match self {
            Backend::Sqlite(path) => fill_sqlite(path, count),
            Backend::Postgres(schema) => fill_postgres(schema, count),
        }
    }
}

/// Fills a SQLite journal with prepared statements, one transaction per batch; the secondary
/// indexes are dropped first and made again at the end, as a bulk load does.
fn fill_sqlite(path: &Path, count: usize) -> anyhow::Result<()> {
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
    let start = time::OffsetDateTime::now_utc() - time::Duration::days(3650);
    // The journal's fixed-width UTC times, which sort as text.
    let fixed = time::macros::format_description!(
        "[year]-[month]-[day]T[hour]:[minute]:[second].[subsecond digits:6]Z"
    );
    let step = 3650.0 * 86_400.0 / count.max(1) as f64;
    let mut written = 0;
    while written < count {
        let tx = db.transaction()?;
        {
            let mut message = tx.prepare(
                "INSERT INTO messages (direction, message_id, kind, sender, receiver, version, \
                 created_at, state, attempts, first_seen, updated_at, digest) \
                 VALUES ('outbound', ?1, 'formd', 'VN', 'TH', '1.0', ?2, 'acknowledged', 1, ?2, ?2, ?3)",
            )?;
            let mut body = tx.prepare(
                "INSERT INTO bodies (direction, message_id, bytes) VALUES ('outbound', ?1, ?2)",
            )?;
            let mut history = tx.prepare(
                "INSERT INTO transitions (direction, message_id, event, from_state, to_state, at, \
                 actor) VALUES ('outbound', ?1, ?2, ?3, ?4, ?5, 'asw-bench')",
            )?;
            for i in written..(written + FILL_BATCH).min(count) {
                let id = uuid::Uuid::new_v4().to_string();
                let at = start + time::Duration::seconds_f64(i as f64 * step);
                let at = at.format(fixed)?;
                message.execute(rusqlite::params![id, at, [0u8; 32].as_slice()])?;
                body.execute(rusqlite::params![id, FILLED_BODY])?;
                for (event, from, to) in HISTORY {
                    history.execute(rusqlite::params![id, event, from, to, at])?;
                }
            }
        }
        tx.commit()?;
        written = (written + FILL_BATCH).min(count);
        print!("\r  {written} of {count} written");
    }
    println!();
    for (_, sql) in &indexes {
        db.execute_batch(sql)?;
    }
    Ok(())
}

/// The history of an acknowledged outbound document, as the hub writes it.
const HISTORY: [(&str, Option<&str>, &str); 3] = [
    ("recorded", None, "signed"),
    ("moved", Some("signed"), "sent"),
    ("moved", Some("sent"), "acknowledged"),
];

/// Fills a PostgreSQL journal in one statement per batch (`generate_series`); the secondary
/// indexes are dropped first and made again at the end, as a bulk load does.
fn fill_postgres(schema: &PgSchema, count: usize) -> anyhow::Result<()> {
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
    let step = 3650.0 * 86_400.0 / count.max(1) as f64;
    let mut written = 0;
    while written < count {
        let upto = (written + FILL_BATCH).min(count);
        let sql = format!(
            // The rows agree with their foreign keys by construction: no trigger per row.
            "SET search_path TO {schema}; SET session_replication_role = replica; \
             WITH m AS ( \
               INSERT INTO messages (direction, message_id, kind, sender, receiver, version, \
                 created_at, state, attempts, first_seen, updated_at, digest) \
               SELECT 'outbound', gen_random_uuid(), 'formd', 'VN', 'TH', '1.0', \
                 to_char(t AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS\"Z\"'), 'acknowledged', \
                 1, t, t, sha256(g::text::bytea) \
               FROM generate_series({from}, {to}) g, \
                 LATERAL (SELECT now() - interval '3650 days' + g * interval '{step} seconds' AS t) s \
               RETURNING message_id, first_seen), \
             b AS (INSERT INTO bodies (direction, message_id, bytes) \
               SELECT 'outbound', message_id, '\\x{body}'::bytea FROM m) \
             INSERT INTO transitions (direction, message_id, event, from_state, to_state, at, actor) \
             SELECT 'outbound', m.message_id, h.event, h.from_state, h.to_state, m.first_seen, \
               'asw-bench' FROM m CROSS JOIN (VALUES ('recorded', NULL, 'signed'), \
               ('moved', 'signed', 'sent'), ('moved', 'sent', 'acknowledged')) \
               AS h(event, from_state, to_state)",
            schema = schema.name(),
            from = written + 1,
            to = upto,
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

/// Figure (10): for each backend, the outbound rate with an empty journal and with a full one,
/// and the bytes on disk per real message.
pub(crate) async fn journal_growth(
    args: &Args,
    admin: &Connection,
    config: &Path,
    dir: &Path,
    rows: &mut Vec<Row>,
) -> anyhow::Result<()> {
    let (vn, th) = (state("VN"), state("TH"));
    let template = std::fs::read_to_string(config).context("the hub's configuration")?;
    let backends = [
        Backend::Sqlite(dir.join("vn/growth.db")),
        Backend::Postgres(PgSchema::new()),
    ];
    let n = args.docs;
    for (b, backend) in backends.iter().enumerate() {
        let grown = dir.join(format!("vn/growth-{b}.toml"));
        std::fs::write(
            &grown,
            template.replace("path = \"journal.db\"", &backend.journal_line()),
        )?;
        let measure = async |round: usize| -> anyhow::Result<f64> {
            let seed = 100_000_000 + (b * 2 + round) * 10_000_000;
            let docs: Vec<Vec<u8>> = (0..n)
                .map(|i| {
                    document(DocumentKind::FormD, vn, th, args.items, (seed + i) as u64)
                        .to_xml_compact()
                        .map(String::into_bytes)
                })
                .collect::<Result<_, _>>()?;
            let mut hub = start_hub(&grown)?;
            let arrivals =
                Arrivals::start(admin, &names::partner_out_queue(th), args.prefetch).await?;
            let started = Instant::now();
            publish_all(admin, names::OUTBOUND_EXCHANGE, "formd", &docs, None).await?;
            arrivals.wait_for(n, Duration::from_secs(600)).await?;
            let took = rate(n, started.elapsed());
            arrivals.stop().await;
            stop_hub(&mut hub)?;
            Ok(took)
        };
        println!(
            "journal growth, {}: {n} documents, empty journal...",
            backend.name()
        );
        let empty = measure(0).await?;
        let per_message = backend.bytes_on_disk()? as f64 / n as f64;
        println!(
            "journal growth, {}: filling to {} messages...",
            backend.name(),
            args.journal_messages
        );
        let filling = Instant::now();
        backend.fill(args.journal_messages)?;
        let filled_in = filling.elapsed();
        let full = measure(1).await?;
        let on_disk = backend.bytes_on_disk()? as f64;
        rows.push(Row {
            figure: format!(
                "(10) outbound, {} journal: empty / {} messages",
                backend.name(),
                args.journal_messages
            ),
            value: format!("{empty:.0}/{full:.0}/s"),
            note: format!(
                "full is {:.2} of empty; filled in {:.0} s, {:.1} GB on disk",
                full / empty,
                filled_in.as_secs_f64(),
                on_disk / 1e9
            ),
        });
        rows.push(Row {
            figure: format!("(10) {} journal: bytes on disk per message", backend.name()),
            value: format!("{per_message:.0} B"),
            note: format!(
                "after {n} real e-Form D; {:.0} GB for 15 million",
                per_message * 15e6 / 1e9
            ),
        });
        if let Backend::Sqlite(path) = backend {
            for suffix in ["", "-wal", "-shm"] {
                let _ = std::fs::remove_file(format!("{}{suffix}", path.display()));
            }
        }
    }
    Ok(())
}
