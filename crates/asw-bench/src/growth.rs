//! (10) The journal as it grows: the hub's outbound rate with an empty journal and with one
//! already holding `--journal-messages` settled messages (15 million: ten years of Viet Nam's
//! e-Form D traffic), on both backends, and the bytes on disk per message.
//!
//! The full journal is filled directly in SQL ([`crate::fill`]: messages, bodies and three
//! history rows each, as the hub writes them for an acknowledged document, spread over ten
//! years), not through the hub, which would take hours. Its bodies are short: fifteen million real bodies would need more
//! disk than machines of this kind have (the bytes per message row says how much); what the rate
//! depends on, the indexes' depth and the rows' shape, is the real one.

use std::path::Path;
use std::time::{Duration, Instant};

use anyhow::Context;
use asw_amqp::Connection;
use asw_model::DocumentKind;
use asw_route::names;
use asw_testbed::PgSchema;

use crate::fill::{Backend, Mix};
use crate::{Args, Arrivals, Row, document, publish_all, rate, start_hub, state, stop_hub};

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
            template.replace("path = \"journal.db\"", &journal_line(backend)),
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
            // The disk quiet first: the fill (or the other backend's journal, just deleted)
            // leaves gigabytes of dirty pages whose write-back would slow this run's syncs.
            settle_disk();
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
        // The write-ahead log is bounded, not a cost per message: counted apart.
        let log = backend.log_bytes();
        let per_message = backend.bytes_on_disk()?.saturating_sub(log) as f64 / n as f64;
        println!(
            "journal growth, {}: filling to {} messages...",
            backend.name(),
            args.journal_messages
        );
        let filling = Instant::now();
        backend.fill(&Mix::settled(), args.journal_messages)?;
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
            note: {
                let mut note = format!(
                    "after {n} real e-Form D; {:.0} GB for 15 million",
                    per_message * 15e6 / 1e9
                );
                if log > 0 {
                    note.push_str(&format!(
                        "; besides, the log: {:.0} MB, bounded",
                        log as f64 / 1e6
                    ));
                }
                note
            },
        });
        backend.remove();
    }
    Ok(())
}

/// Writes every dirty page to disk (`sync`), so that a timed run does not share the disk with
/// the write-back of what came before it.
fn settle_disk() {
    if let Err(e) = std::process::Command::new("sync").status() {
        eprintln!("journal growth: cannot run sync: {e}");
    }
}

/// The `[journal]` line of the hub's configuration.
fn journal_line(backend: &Backend) -> String {
    match backend {
        Backend::Sqlite(path) => format!("path = \"{}\"", path.display()),
        Backend::Postgres(schema) => format!("url = \"{}\"", schema.url()),
    }
}
