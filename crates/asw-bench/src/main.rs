//! `asw-bench`: measures the hub against its own limits in one run on this machine and prints a
//! table and a final `BENCH ...` line. Run it with `deploy/bench.sh` (release build of this and
//! of `aswhub`, which it starts as a child process against the local broker).
//!
//! Figures: (1) the in-process ceiling of the outbound and inbound work on the hub's worker
//! threads, no broker; (2) a bare broker relay with the hub's prefetch and lanes; (3, 4) the full
//! hub outbound and inbound, journal on; (5) latency at a fixed offered rate; (6) the hub's peak
//! RSS with many documents queued, and the peak memory to validate and sign one large e-Form D;
//! (7) the `xmlsec1` command-line tool signing and verifying per document; (8) the CPU time to
//! accept or refuse each hostile document shape at the size limit, beside valid e-Form Ds; (9) the
//! relay a ministry would write instead (deploy/bench/ministry-relay.py: Python, pika, lxml and
//! signxml in two processes, publisher confirms, no journal).

use std::collections::HashMap;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use asw_amqp::{ConfirmingPublisher, Connection, Consumer, Outgoing, Properties};
use asw_gateway::pool::Pool;
use asw_gateway::process::{Identity, Worker};
use asw_model::document::Message;
use asw_model::sample::{self, SampleSpec};
use asw_model::xml::Limits;
use asw_model::{DocumentKind, MemberState};
use asw_route::{Argument, Binding, Queue, Topology, names};
use asw_sign::{Signer, TrustStore};
use asw_testbed::{HubProcess, Testbed, TestbedOptions, partner_password};
use clap::Parser;
use time::OffsetDateTime;

/// aswhub benchmark.
#[derive(Debug, Parser)]
#[command(name = "asw-bench", about)]
struct Args {
    /// Documents per throughput figure.
    #[arg(long, default_value_t = 5000)]
    docs: usize,
    /// Items per e-Form D.
    #[arg(long, default_value_t = 10)]
    items: u32,
    /// Worker threads of the hub (and of the ceiling).
    #[arg(long, default_value_t = 2)]
    workers: usize,
    /// Lanes of each hub pipeline (`[limits] lanes`; the relay has as many).
    #[arg(long, default_value_t = asw_gateway::hub::LANES)]
    lanes: usize,
    /// Prefetch of the hub's consumers (and of the relay).
    #[arg(long, default_value_t = 200)]
    prefetch: u16,
    /// Offered rate for the latency figure, documents per second.
    #[arg(long, default_value_t = 500)]
    rate: u32,
    /// Duration of the latency figure, seconds.
    #[arg(long, default_value_t = 30)]
    latency_seconds: u64,
    /// Documents queued for the RSS figure.
    #[arg(long, default_value_t = 100_000)]
    rss_docs: usize,
    /// Seconds the hub runs on the queued documents while its RSS is sampled.
    #[arg(long, default_value_t = 20)]
    rss_seconds: u64,
    /// Documents signed and verified one process each by `xmlsec1`.
    #[arg(long, default_value_t = 50)]
    xmlsec1_docs: usize,
    /// Run only these figures (comma-separated) instead of the whole benchmark; figures not run
    /// print as NaN. `memory`: the peak memory and time to validate and sign one large e-Form D,
    /// figure (6) for the sizes of `--big-mb`; `hostile`: figure (8). These two, alone or
    /// together, need no broker.
    #[arg(long, value_enum, value_delimiter = ',')]
    only: Vec<Figure>,
    /// Sizes in MB of the large e-Form D of figure (6) (each 0.2 MB less, to stay under the
    /// 10 MiB limit).
    #[arg(long, value_delimiter = ',', default_values_t = [1usize, 5, 10])]
    big_mb: Vec<usize>,
    /// Internal: validate and sign one large document from FILE in this process and print the
    /// peak memory (used as a child process by the main run).
    #[arg(long, hide = true)]
    big: Option<PathBuf>,
    /// Internal, with `--big`: only validate, or only sign, to measure one phase alone.
    #[arg(long, hide = true, value_enum, default_value_t = Phase::Both)]
    big_phase: Phase,
}

/// What a `--big` child does with its document.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
enum Phase {
    /// Validate, then sign (what the hub does with an outbound document).
    Both,
    /// Validate only.
    Validate,
    /// Sign only.
    Sign,
}

/// Figures that can be run alone with `--only` (the ceiling (1) always runs: the ratios need it).
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
enum Figure {
    /// (2) The bare broker relay.
    Relay,
    /// (3) The hub outbound.
    Outbound,
    /// (4) The hub inbound.
    Inbound,
    /// (5) Latency at the offered rate.
    Latency,
    /// (6) The hub's peak RSS with many documents queued.
    Rss,
    /// (6) Peak memory and time to validate and sign one large e-Form D.
    Memory,
    /// (7) The `xmlsec1` command per document.
    Xmlsec1,
    /// (8) Hostile document shapes at the size limit: CPU time to accept or refuse each; needs
    /// no broker.
    Hostile,
    /// (9) The relay a ministry would write instead (Python: pika, lxml, signxml).
    Ministry,
}

impl Args {
    /// True if figure `f` is to be measured in this run.
    fn wants(&self, f: Figure) -> bool {
        self.only.is_empty() || self.only.contains(&f)
    }
}

fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    if let Some(file) = &args.big {
        return big_child(file, args.big_phase);
    }
    if !args.only.is_empty()
        && args
            .only
            .iter()
            .all(|f| matches!(f, Figure::Memory | Figure::Hostile))
    {
        return offline_only(&args);
    }
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?;
    runtime.block_on(run(args))
}

fn state(code: &str) -> MemberState {
    MemberState::from_alpha2(code)
        .unwrap_or_else(|| unreachable!("{code} is in the member state table"))
}

fn document(
    kind: DocumentKind,
    from: MemberState,
    to: MemberState,
    items: u32,
    seed: u64,
) -> Message {
    let created_at = OffsetDateTime::now_utc();
    sample::message(&SampleSpec {
        kind,
        from,
        to,
        items,
        seed: seed ^ 0x5EED,
        created_at,
    })
}

struct Row {
    figure: String,
    value: String,
    note: String,
}

fn rate(n: usize, took: Duration) -> f64 {
    n as f64 / took.as_secs_f64().max(1e-9)
}

async fn run(args: Args) -> anyhow::Result<()> {
    let (vn, th) = (state("VN"), state("TH"));
    let machine = machine();
    println!("aswhub benchmark on {machine}");
    let dir = tempfile::tempdir()?;
    let tag = uuid::Uuid::new_v4().simple().to_string();
    let mut options = TestbedOptions::local(vec![vn, th], dir.path().to_owned());
    options.vhost_prefix = format!("aswb-{}-", &tag[..8]);
    options.external = vec![vn, th];
    options.pull = true;
    options.workers = args.workers;
    options.prefetch = args.prefetch;
    options.lanes = args.lanes;
    let testbed = Testbed::start(options)
        .await
        .context("setting up vhosts, keys and configuration")?;
    let result = measure(&args, &testbed, dir.path()).await;
    testbed.stop_and_clean().await;
    let rows = result?;
    println!();
    for row in &rows.rows {
        println!("{:<62} {:>14}  {}", row.figure, row.value, row.note);
    }
    println!(
        "BENCH outbound_msgs_per_s={:.0} inbound_msgs_per_s={:.0} outbound_ratio={:.2} inbound_ratio={:.2} p99_ms={:.1} rss_mb={:.1}",
        rows.outbound,
        rows.inbound,
        rows.outbound / rows.outbound_ceiling,
        rows.inbound / rows.inbound_ceiling,
        rows.p99_ms,
        rows.rss_mb
    );
    Ok(())
}

struct Results {
    rows: Vec<Row>,
    outbound: f64,
    inbound: f64,
    outbound_ceiling: f64,
    inbound_ceiling: f64,
    p99_ms: f64,
    rss_mb: f64,
}

async fn measure(args: &Args, testbed: &Testbed, dir: &Path) -> anyhow::Result<Results> {
    let (vn, th) = (state("VN"), state("TH"));
    let mut rows = Vec::new();
    let vn_key = std::fs::read(dir.join("vn/key.pem"))?;
    let vn_cert = std::fs::read(dir.join("vn/cert.pem"))?;
    let th_key = std::fs::read(dir.join("th/key.pem"))?;
    let th_cert = std::fs::read(dir.join("th/cert.pem"))?;
    let th_signer = Signer::new(&th_key, &th_cert)?;

    // Documents: outbound (VN back-office, unsigned) and inbound (signed by TH).
    let n = args.docs;
    println!(
        "preparing {n} outbound and {n} signed inbound documents of {} items...",
        args.items
    );
    let outbound_docs: Vec<Vec<u8>> = (0..n)
        .map(|i| {
            document(DocumentKind::FormD, vn, th, args.items, i as u64)
                .to_xml_compact()
                .map(String::into_bytes)
        })
        .collect::<Result<_, _>>()?;
    let inbound_docs: Vec<Vec<u8>> = (0..n)
        .map(|i| {
            let xml = document(DocumentKind::FormD, th, vn, args.items, (n + i) as u64)
                .to_xml_compact()?;
            Ok::<_, anyhow::Error>(th_signer.sign(xml.as_bytes())?)
        })
        .collect::<Result<_, _>>()?;
    let size = outbound_docs[0].len();
    rows.push(Row {
        figure: "document: e-Form D, compact XML".into(),
        value: format!("{} B", size),
        note: format!("{} items; {} B signed", args.items, inbound_docs[0].len()),
    });

    // (1) Ceiling: the same worker code the hub runs, on as many threads, without broker or journal.
    let identity = Arc::new(Identity::new(vn, [th].into_iter().collect()));
    let trust = Arc::new(TrustStore::load(dir.join("vn/trust"))?);
    let (key, cert) = (vn_key.clone(), vn_cert.clone());
    let pool = Arc::new(Pool::start(args.workers, "bench", move || {
        Worker::new(
            identity.clone(),
            &key,
            &cert,
            trust.clone(),
            Limits::default(),
        )
    })?);
    let outbound_ceiling = ceiling(&pool, &outbound_docs, |w, d, now| {
        w.outbound(d, "formd", now).is_ok()
    })
    .await?;
    let inbound_ceiling = ceiling(&pool, &inbound_docs, |w, d, now| {
        w.inbound(d, Some("partner-TH"), "TH", now).is_ok()
    })
    .await?;
    // What the hub's inbound pipeline really does on its workers: also sign the receipt.
    let answered_ceiling = ceiling(&pool, &inbound_docs, |w, d, now| {
        w.inbound(d, Some("partner-TH"), "TH", now)
            .ok()
            .and_then(|accepted| {
                let header = accepted.verified.header();
                w.receipt(
                    header,
                    header.sender,
                    accepted.reference.as_deref(),
                    &[],
                    now,
                )
            })
            .is_some_and(|receipt| receipt.is_ok())
    })
    .await?;
    if let Ok(pool) = Arc::try_unwrap(pool) {
        pool.shutdown();
    }
    // One row per ceiling, with the CPU per document its worker threads spent.
    let ceiling_row = |what: &str, rate: f64, note: &str| Row {
        figure: format!("(1) {what}, {} threads", args.workers),
        value: format!("{rate:.0}/s"),
        note: format!(
            "{note}; {:.2} ms CPU per document",
            args.workers as f64 * 1000.0 / rate
        ),
    };
    rows.push(ceiling_row(
        "ceiling outbound: validate + sign",
        outbound_ceiling,
        "in-process, no broker, no journal",
    ));
    rows.push(ceiling_row(
        "ceiling inbound: verify + validate",
        inbound_ceiling,
        "in-process, no broker, no journal",
    ));
    rows.push(ceiling_row(
        "inbound with its receipt: verify + validate + sign",
        answered_ceiling,
        "what the hub's workers do per inbound e-Form D",
    ));

    // (2) A bare relay: consume -> publish with confirms -> ack, the hub's prefetch and lanes.
    let vn_url = format!("{}/{}", testbed.options().amqp, testbed.options().vhost(vn));
    let admin = asw_amqp::connect(&vn_url, "bench").await?;
    let relay = if args.wants(Figure::Relay) {
        relay(&admin, &outbound_docs, args.prefetch, args.lanes).await?
    } else {
        f64::NAN
    };
    rows.push(Row {
        figure: format!(
            "(2) bare broker relay, prefetch {}, {} lanes",
            args.prefetch, args.lanes
        ),
        value: format!("{relay:.0}/s"),
        note: "consume, publish with confirm, ack; no XML".into(),
    });

    // (9) The relay a ministry would write instead, before the hub runs (it has the machine).
    let ministry = if args.wants(Figure::Ministry) {
        ministry_relay(&admin, &vn_url, &outbound_docs, dir).await?
    } else {
        Err("not run".to_owned())
    };
    let ministry_rate = ministry.as_ref().copied().unwrap_or(f64::NAN);
    rows.push(Row {
        figure: "(9) a ministry's own relay: Python, pika + lxml + signxml, 2 processes".into(),
        value: format!("{ministry_rate:.0}/s"),
        note: match &ministry {
            Ok(_) => "parse, XSD-validate, sign; confirms; no journal, rules or receipts".into(),
            Err(why) => format!("skipped: {why}"),
        },
    });

    // Queues the benchmark reads: the partner's queue (outbound arrives there) and a
    // back-office queue for inbound deliveries.
    let ours = Topology {
        exchanges: Vec::new(),
        queues: vec![quorum("bench.backoffice")],
        bindings: vec![Binding {
            exchange: names::INBOUND_EXCHANGE.into(),
            queue: "bench.backoffice".into(),
            routing_key: "formd.TH".into(),
        }],
        users: Vec::new(),
        policies: Vec::new(),
    };
    asw_amqp::declare(&admin.open_channel().await?, &ours).await?;
    let config = testbed
        .config_file(vn)
        .context("VN configuration")?
        .to_owned();
    // The hub runs for figures (3) to (5) only: one stopped while it is still starting would
    // end by the signal, not by its own shutdown.
    let hub = if [Figure::Outbound, Figure::Inbound, Figure::Latency]
        .into_iter()
        .any(|f| args.wants(f))
    {
        let hub = start_hub(&config)?;
        println!("hub started: process {}", hub.id());
        Some(hub)
    } else {
        None
    };

    // (3) Outbound through the hub: back-office publishes, the partner queue receives.
    let hub_pid = hub.as_ref().map_or(0, |h| h.id());
    let mut cpu_rows = Vec::new();
    // Counts outbound documents in the partner queue, and takes the receipts the inbound figure
    // makes there, so the latency figure finds the queue empty.
    let arrivals = Arrivals::start(&admin, &names::partner_out_queue(th), args.prefetch).await?;
    let outbound = if args.wants(Figure::Outbound) {
        let cpu = CpuSample::take(hub_pid);
        let started = Instant::now();
        publish_all(
            &admin,
            names::OUTBOUND_EXCHANGE,
            "formd",
            &outbound_docs,
            None,
        )
        .await?;
        arrivals.wait_for(n, Duration::from_secs(600)).await?;
        let outbound = rate(n, started.elapsed());
        cpu_rows.push(cpu.row("(3) hub outbound", n, hub_pid));
        outbound
    } else {
        f64::NAN
    };
    rows.push(Row {
        figure: "(3) hub outbound: asw.outbound -> asw.partner.out.TH".into(),
        value: format!("{outbound:.0}/s"),
        note: format!(
            "{:.2} of ceiling, {:.2} of relay, {:.1}x a ministry's relay (9); journal on",
            outbound / outbound_ceiling,
            outbound / relay,
            outbound / ministry_rate
        ),
    });

    // (4) Inbound through the hub: the partner publishes signed documents, the back-office receives.
    let partner_url = format!(
        "amqp://{}:{}@127.0.0.1:5672/{}",
        names::partner_user(th),
        partner_password(th),
        testbed.options().vhost(vn)
    );
    let partner = asw_amqp::connect(&partner_url, "bench partner").await?;
    let inbound = if args.wants(Figure::Inbound) {
        let delivered = Arrivals::start(&admin, "bench.backoffice", args.prefetch).await?;
        let cpu = CpuSample::take(hub_pid);
        let started = Instant::now();
        publish_all(
            &partner,
            names::PARTNER_IN_EXCHANGE,
            "TH",
            &inbound_docs,
            Some(&names::partner_user(th)),
        )
        .await?;
        delivered.wait_for(n, Duration::from_secs(600)).await?;
        let inbound = rate(n, started.elapsed());
        cpu_rows.push(cpu.row("(4) hub inbound", n, hub_pid));
        // The last receipts follow the last deliveries by a few milliseconds.
        let receipts = n + if args.wants(Figure::Outbound) { n } else { 0 };
        arrivals.wait_for(receipts, Duration::from_secs(60)).await?;
        inbound
    } else {
        f64::NAN
    };
    rows.push(Row {
        figure: "(4) hub inbound: asw.partner.in -> back-office queue".into(),
        value: format!("{inbound:.0}/s"),
        note: format!(
            "{:.2} of ceiling ({:.2} with receipts), {:.2} of relay; journal on",
            inbound / inbound_ceiling,
            inbound / answered_ceiling,
            inbound / relay
        ),
    });
    rows.extend(cpu_rows);
    arrivals.stop().await;
    let _ = partner.close().await;
    // Receipts to TH accumulated in asw.partner.out.TH: counted by `arrivals` too; ignore them.

    // (5) Latency at a fixed offered rate: back-office publish to arrival in the partner queue.
    let p99 = if args.wants(Figure::Latency) {
        latency(args, &admin, &mut rows).await?
    } else {
        f64::NAN
    };
    if let Some(mut hub) = hub {
        stop_hub(&mut hub)?;
    }

    // (6) RSS with many documents queued: queue them first, then let a fresh hub work on them.
    let rss_mb = if args.wants(Figure::Rss) {
        rss(args, &admin, &config, &outbound_docs, &mut rows).await?
    } else {
        f64::NAN
    };
    let _ = admin.close().await;

    if args.wants(Figure::Memory) {
        // (6) One large e-Form D: peak memory to validate and sign it, and time, by size.
        rows.extend(big_documents(
            dir,
            &dir.join("vn/key.pem"),
            &dir.join("vn/cert.pem"),
            &args.big_mb,
        )?);
    }
    if args.wants(Figure::Hostile) {
        rows.extend(hostile(args.items)?);
    }
    // (7) What a script-based integration would do: one xmlsec1 process per document.
    if args.wants(Figure::Xmlsec1) {
        let (sign_rate, verify_rate) = xmlsec1(dir, &inbound_docs, args.xmlsec1_docs)?;
        rows.push(Row {
            figure: "(7) xmlsec1 command per document: sign / verify".into(),
            value: format!("{sign_rate:.0}/{verify_rate:.0} per s"),
            note: format!(
                "hub outbound is {:.0}x, inbound {:.0}x",
                outbound / sign_rate,
                inbound / verify_rate
            ),
        });
    }
    Ok(Results {
        rows,
        outbound,
        inbound,
        outbound_ceiling,
        inbound_ceiling,
        p99_ms: p99,
        rss_mb,
    })
}

/// (5) Offers documents at `args.rate` for `args.latency_seconds` and adds the latency row;
/// returns the p99 in milliseconds.
async fn latency(args: &Args, admin: &Connection, rows: &mut Vec<Row>) -> anyhow::Result<f64> {
    let (vn, th) = (state("VN"), state("TH"));
    let n = args.docs;
    let total = usize::try_from(u64::from(args.rate) * args.latency_seconds).unwrap_or(usize::MAX);
    println!("latency: {} documents at {}/s...", total, args.rate);
    let latency_docs: Vec<(String, Vec<u8>)> = (0..total)
        .map(|i| {
            let d = document(DocumentKind::FormD, vn, th, args.items, (3 * n + i) as u64);
            Ok::<_, anyhow::Error>((
                d.header.message_id.to_string(),
                d.to_xml_compact()?.into_bytes(),
            ))
        })
        .collect::<Result<_, _>>()?;
    // The baseline first: the same offer through a bare relay, measured the same way.
    let (r50, r99, rmax) = relay_latency(args, admin, &latency_docs).await?;
    let timed = Arrivals::start(admin, &names::partner_out_queue(th), args.prefetch).await?;
    let sent = offer(
        admin,
        names::OUTBOUND_EXCHANGE,
        "formd",
        &latency_docs,
        args.rate,
    )
    .await?;
    timed.wait_for_ids(&sent, Duration::from_secs(120)).await?;
    let (p50, p99, max) = percentiles(timed.latencies_ms(&sent).await);
    rows.push(Row {
        figure: format!(
            "(5) latency at {}/s offered for {} s: p50 / p99 / max",
            args.rate, args.latency_seconds
        ),
        value: format!("{p50:.1}/{p99:.1}/{max:.1} ms"),
        note: format!("back-office publish -> partner queue, {} lanes", args.lanes),
    });
    rows.push(Row {
        figure: "(5) baseline: bare relay at the same rate: p50 / p99 / max".into(),
        value: format!("{r50:.1}/{r99:.1}/{rmax:.1} ms"),
        note: "consume, publish with confirm, ack; no XML, no journal".into(),
    });
    timed.stop().await;
    Ok(p99)
}

/// Starts `lanes` tasks that each take deliveries from `deliveries`, publish them with confirm
/// to `queue` (default exchange) and ack them, counting in `done`: the hub's pipeline without
/// its work.
async fn relay_lanes(
    connection: &Connection,
    queue: &'static str,
    lanes: usize,
    deliveries: &async_channel::Receiver<asw_amqp::Delivery>,
    done: &Arc<std::sync::atomic::AtomicUsize>,
) -> anyhow::Result<tokio::task::JoinSet<Result<(), asw_amqp::AmqpError>>> {
    let mut tasks = tokio::task::JoinSet::new();
    for _ in 0..lanes {
        let mut publisher = ConfirmingPublisher::new(connection.open_channel().await?).await?;
        let (rx, done) = (deliveries.clone(), done.clone());
        tasks.spawn(async move {
            while let Ok(d) = rx.recv().await {
                publisher
                    .publish("", queue, &d.message.body, &d.message.properties)
                    .await?;
                d.acker.ack().await?;
                done.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            }
            Ok::<_, asw_amqp::AmqpError>(())
        });
    }
    Ok(tasks)
}

/// p50, p99 and max of latencies in milliseconds.
fn percentiles(mut latencies: Vec<f64>) -> (f64, f64, f64) {
    latencies.sort_by(f64::total_cmp);
    let pct = |p: f64| {
        latencies
            .get(((latencies.len() as f64 - 1.0) * p).round() as usize)
            .copied()
            .unwrap_or(f64::NAN)
    };
    (
        pct(0.50),
        pct(0.99),
        latencies.last().copied().unwrap_or(f64::NAN),
    )
}

/// (5) baseline: `docs` offered at `args.rate` to a queue that a bare relay with the hub's
/// prefetch and lanes moves to another queue; p50, p99 and max from publish to arrival.
async fn relay_latency(
    args: &Args,
    connection: &Connection,
    docs: &[(String, Vec<u8>)],
) -> anyhow::Result<(f64, f64, f64)> {
    let topology = Topology {
        exchanges: Vec::new(),
        queues: vec![quorum("bench.latency.in"), quorum("bench.latency.out")],
        bindings: Vec::new(),
        users: Vec::new(),
        policies: Vec::new(),
    };
    asw_amqp::declare(&connection.open_channel().await?, &topology).await?;
    let mut consumer = Consumer::start(
        connection.open_channel().await?,
        "bench.latency.in",
        args.prefetch,
        "relay-latency",
    )
    .await?;
    let (tx, rx) = async_channel::bounded::<asw_amqp::Delivery>(args.lanes);
    let done = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let mut tasks = relay_lanes(connection, "bench.latency.out", args.lanes, &rx, &done).await?;
    let feeder = tokio::spawn(async move {
        while let Some(Ok(d)) = consumer.next().await {
            if tx.send(d).await.is_err() {
                break;
            }
        }
        let _ = consumer.cancel().await;
    });
    let timed = Arrivals::start(connection, "bench.latency.out", args.prefetch).await?;
    let sent = offer(connection, "", "bench.latency.in", docs, args.rate).await?;
    timed.wait_for_ids(&sent, Duration::from_secs(120)).await?;
    let latencies = timed.latencies_ms(&sent).await;
    timed.stop().await;
    feeder.abort();
    let _ = feeder.await;
    tasks.abort_all();
    while tasks.join_next().await.is_some() {}
    Ok(percentiles(latencies))
}

/// (6) Queues `args.rss_docs` documents, runs a fresh hub on them and samples its peak RSS; adds
/// the row and returns the peak in MB.
async fn rss(
    args: &Args,
    admin: &Connection,
    config: &Path,
    outbound_docs: &[Vec<u8>],
    rows: &mut Vec<Row>,
) -> anyhow::Result<f64> {
    println!("rss: queueing {} documents...", args.rss_docs);
    let mut queued = 0;
    while queued < args.rss_docs {
        let batch = (args.rss_docs - queued).min(outbound_docs.len());
        publish_all(
            admin,
            names::OUTBOUND_EXCHANGE,
            "formd",
            &outbound_docs[..batch],
            None,
        )
        .await?;
        queued += batch;
    }
    let mut hub = start_hub(config)?;
    let deadline = Instant::now() + Duration::from_secs(args.rss_seconds);
    let mut peak = 0u64;
    while Instant::now() < deadline {
        peak = peak.max(hub.peak_kb());
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    peak = peak.max(hub.peak_kb());
    stop_hub(&mut hub)?;
    let rss_mb = peak as f64 / 1024.0;
    rows.push(Row {
        figure: format!(
            "(6) hub peak RSS, {} documents queued, {} s",
            args.rss_docs, args.rss_seconds
        ),
        value: format!("{rss_mb:.1} MB"),
        note: "VmHWM of the aswhub process, sampled every 200 ms".into(),
    });
    Ok(rss_mb)
}

fn quorum(name: &str) -> Queue {
    Queue {
        name: name.into(),
        arguments: vec![("x-queue-type".into(), Argument::Str("quorum".into()))],
    }
}

/// Runs the worker step for every document on the pool, with 4 jobs in flight per thread.
async fn ceiling(
    pool: &Arc<Pool<Worker>>,
    docs: &[Vec<u8>],
    step: fn(&mut Worker, &[u8], OffsetDateTime) -> bool,
) -> anyhow::Result<f64> {
    let docs: Arc<Vec<Vec<u8>>> = Arc::new(docs.to_vec());
    let started = Instant::now();
    let mut tasks = tokio::task::JoinSet::new();
    let next = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    for _ in 0..pool.size() * 4 {
        let (docs, next, pool) = (docs.clone(), next.clone(), pool.clone());
        tasks.spawn(async move {
            let mut ok = 0usize;
            loop {
                let i = next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                if i >= docs.len() {
                    return ok;
                }
                let docs = docs.clone();
                let now = OffsetDateTime::now_utc();
                if pool
                    .run(move |w| step(w, &docs[i], now))
                    .await
                    .unwrap_or(false)
                {
                    ok += 1;
                }
            }
        });
    }
    let mut ok = 0;
    while let Some(r) = tasks.join_next().await {
        ok += r?;
    }
    if ok != docs.len() {
        bail!(
            "only {ok} of {} documents passed the worker step",
            docs.len()
        );
    }
    Ok(rate(docs.len(), started.elapsed()))
}

/// Publishes every body with confirms, 500 in flight at a time.
async fn publish_all(
    connection: &Connection,
    exchange: &str,
    routing_key: &str,
    bodies: &[Vec<u8>],
    user_id: Option<&str>,
) -> anyhow::Result<()> {
    let mut publisher = ConfirmingPublisher::new(connection.open_channel().await?).await?;
    let mut properties = Properties::new().with_content_type(names::CONTENT_TYPE_XML);
    if let Some(user) = user_id {
        properties = properties.with_user_id(user);
    }
    for chunk in bodies.chunks(500) {
        let batch: Vec<Outgoing> = chunk
            .iter()
            .map(|b| Outgoing {
                exchange: exchange.into(),
                routing_key: routing_key.into(),
                body: b.clone(),
                properties: properties.clone(),
            })
            .collect();
        for result in publisher.publish_batch(&batch).await {
            result?;
        }
    }
    Ok(())
}

/// (9) Runs deploy/bench/ministry-relay.py on `docs` (VN's key and certificate, the envelope
/// schema) and returns its rate, or why it could not run (its Python packages are missing: the
/// interpreter is `ASWHUB_RELAY_PYTHON`, set by deploy/bench.sh, or `python3`).
async fn ministry_relay(
    admin: &Connection,
    url: &str,
    docs: &[Vec<u8>],
    dir: &Path,
) -> anyhow::Result<Result<f64, String>> {
    let python = std::env::var("ASWHUB_RELAY_PYTHON").unwrap_or_else(|_| "python3".into());
    let usable = Command::new(&python)
        .args(["-c", "import pika, lxml, signxml"])
        .output()
        .is_ok_and(|o| o.status.success());
    if !usable {
        return Ok(Err(format!(
            "{python} lacks pika, lxml or signxml (deploy/bench.sh installs them)"
        )));
    }
    let (input, output) = ("bench.ministry.in", "bench.ministry.out");
    let topology = Topology {
        exchanges: Vec::new(),
        queues: vec![quorum(input), quorum(output)],
        bindings: Vec::new(),
        users: Vec::new(),
        policies: Vec::new(),
    };
    asw_amqp::declare(&admin.open_channel().await?, &topology).await?;
    publish_all(admin, "", input, docs, None).await?;
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    let mut command = Command::new(&python);
    command
        .arg(root.join("deploy/bench/ministry-relay.py"))
        .args([url, input, output])
        .arg(dir.join("vn/key.pem"))
        .arg(dir.join("vn/cert.pem"))
        .arg(root.join("schemas/asw-envelope-1.xsd"))
        .args([docs.len().to_string(), "2".to_owned()]);
    let run = tokio::task::spawn_blocking(move || command.output()).await??;
    let said = String::from_utf8_lossy(&run.stdout);
    if !run.status.success() {
        bail!(
            "the ministry relay failed: {said}{}",
            String::from_utf8_lossy(&run.stderr)
        );
    }
    // `relayed N in S s`
    let seconds: f64 = said
        .split_whitespace()
        .nth(3)
        .and_then(|s| s.parse().ok())
        .with_context(|| format!("the ministry relay said {said:?}"))?;
    let arrived = asw_amqp::queue_counts(&admin.open_channel().await?, output)
        .await?
        .ready;
    if usize::try_from(arrived).ok() != Some(docs.len()) {
        bail!(
            "the ministry relay relayed {arrived} of {} documents",
            docs.len()
        );
    }
    Ok(Ok(docs.len() as f64 / seconds))
}

/// (2) Moves `docs` from one queue to another the way a hub pipeline does, without XML work.
async fn relay(
    connection: &Connection,
    docs: &[Vec<u8>],
    prefetch: u16,
    lanes: usize,
) -> anyhow::Result<f64> {
    let topology = Topology {
        exchanges: Vec::new(),
        queues: vec![quorum("bench.relay.in"), quorum("bench.relay.out")],
        bindings: Vec::new(),
        users: Vec::new(),
        policies: Vec::new(),
    };
    asw_amqp::declare(&connection.open_channel().await?, &topology).await?;
    publish_all(connection, "", "bench.relay.in", docs, None).await?;
    let started = Instant::now();
    let mut consumer = Consumer::start(
        connection.open_channel().await?,
        "bench.relay.in",
        prefetch,
        "relay",
    )
    .await?;
    let (tx, rx) = async_channel::bounded::<asw_amqp::Delivery>(lanes);
    let done = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let mut tasks = relay_lanes(connection, "bench.relay.out", lanes, &rx, &done).await?;
    for _ in 0..docs.len() {
        match tokio::time::timeout(Duration::from_secs(60), consumer.next()).await {
            Ok(Some(Ok(d))) => tx
                .send(d)
                .await
                .map_err(|_| anyhow::anyhow!("relay lanes stopped"))?,
            Ok(Some(Err(e))) => return Err(e.into()),
            Ok(None) => bail!("the relay consumer was cancelled"),
            Err(_) => bail!("the relay consumer received nothing for 60 s"),
        }
    }
    tx.close();
    while let Some(r) = tasks.join_next().await {
        r??;
    }
    let took = started.elapsed();
    consumer.cancel().await?;
    Ok(rate(done.load(std::sync::atomic::Ordering::Relaxed), took))
}

/// Counts (and times) messages arriving in a queue.
struct Arrivals {
    seen: Arc<tokio::sync::Mutex<HashMap<String, Instant>>>,
    count: Arc<std::sync::atomic::AtomicUsize>,
    task: tokio::task::JoinHandle<()>,
}

impl Arrivals {
    async fn start(
        connection: &Connection,
        queue: &str,
        prefetch: u16,
    ) -> anyhow::Result<Arrivals> {
        let mut consumer = Consumer::start(
            connection.open_channel().await?,
            queue,
            prefetch.max(500),
            "bench",
        )
        .await?;
        let seen = Arc::new(tokio::sync::Mutex::new(HashMap::new()));
        let count = Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let (s, c) = (seen.clone(), count.clone());
        let task = tokio::spawn(async move {
            while let Some(Ok(d)) = consumer.next().await {
                let at = Instant::now();
                if let Some(id) = d.message.properties.message_id.clone() {
                    s.lock().await.insert(id, at);
                }
                c.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                let _ = d.acker.ack().await;
            }
        });
        Ok(Arrivals { seen, count, task })
    }

    async fn wait_for(&self, n: usize, timeout: Duration) -> anyhow::Result<()> {
        let deadline = Instant::now() + timeout;
        while self.count.load(std::sync::atomic::Ordering::Relaxed) < n {
            if Instant::now() > deadline {
                bail!(
                    "only {} of {n} messages arrived in {timeout:?}",
                    self.count.load(std::sync::atomic::Ordering::Relaxed)
                );
            }
            tokio::time::sleep(Duration::from_millis(2)).await;
        }
        Ok(())
    }

    async fn wait_for_ids(
        &self,
        sent: &HashMap<String, Instant>,
        timeout: Duration,
    ) -> anyhow::Result<()> {
        let deadline = Instant::now() + timeout;
        loop {
            let missing = {
                let seen = self.seen.lock().await;
                sent.keys().filter(|id| !seen.contains_key(*id)).count()
            };
            if missing == 0 {
                return Ok(());
            }
            if Instant::now() > deadline {
                bail!("{missing} of {} timed documents did not arrive", sent.len());
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    async fn latencies_ms(&self, sent: &HashMap<String, Instant>) -> Vec<f64> {
        let seen = self.seen.lock().await;
        sent.iter()
            .filter_map(|(id, at)| {
                seen.get(id)
                    .map(|arrived| arrived.duration_since(*at).as_secs_f64() * 1000.0)
            })
            .collect()
    }

    async fn stop(self) {
        self.task.abort();
        let _ = self.task.await;
    }
}

/// Publishes documents one by one at `rate` per second, each confirmed, recording send times.
async fn offer(
    connection: &Connection,
    exchange: &'static str,
    routing_key: &'static str,
    docs: &[(String, Vec<u8>)],
    rate: u32,
) -> anyhow::Result<HashMap<String, Instant>> {
    let mut sent = HashMap::with_capacity(docs.len());
    let lanes = 8usize;
    let interval = Duration::from_secs_f64(f64::from(lanes as u32) / f64::from(rate.max(1)));
    let shared = Arc::new(tokio::sync::Mutex::new(HashMap::new()));
    let mut tasks = tokio::task::JoinSet::new();
    let start = tokio::time::Instant::now();
    for lane in 0..lanes {
        let mut publisher = ConfirmingPublisher::new(connection.open_channel().await?).await?;
        let mine: Vec<(String, Vec<u8>)> = docs.iter().skip(lane).step_by(lanes).cloned().collect();
        let shared = shared.clone();
        let offset = interval.mul_f64(lane as f64 / lanes as f64);
        tasks.spawn(async move {
            let mut ticker = tokio::time::interval_at(start + offset, interval);
            ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Burst);
            for (id, body) in mine {
                ticker.tick().await;
                let at = Instant::now();
                let properties = Properties::new()
                    .with_content_type(names::CONTENT_TYPE_XML)
                    .with_message_id(id.clone());
                publisher
                    .publish(exchange, routing_key, &body, &properties)
                    .await?;
                shared.lock().await.insert(id, at);
            }
            Ok::<_, asw_amqp::AmqpError>(())
        });
    }
    while let Some(r) = tasks.join_next().await {
        r??;
    }
    sent.extend(shared.lock().await.drain());
    Ok(sent)
}

/// The hub as a child process, as operators run it: `aswhub` beside this binary, errors only on
/// the bench's standard error.
fn start_hub(config: &Path) -> anyhow::Result<HubProcess> {
    let exe = std::env::current_exe()?.with_file_name("aswhub");
    if !exe.is_file() {
        bail!(
            "{} not found: build it first (deploy/bench.sh does)",
            exe.display()
        );
    }
    Ok(HubProcess::start_with(
        &exe,
        config,
        "error,lapin=off",
        Stdio::inherit(),
    )?)
}

/// SIGTERM, and an error unless the hub drained and exited 0.
fn stop_hub(hub: &mut HubProcess) -> anyhow::Result<()> {
    let (status, _) = hub.terminate()?;
    if !status.success() {
        bail!("the hub exited with {status}");
    }
    Ok(())
}

/// `--only memory`, `--only hostile` or both: figure (6) for one large document of each size,
/// with a key made here, and figure (8); no broker.
fn offline_only(args: &Args) -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let generated = asw_sign::keygen::generate(
        state("VN"),
        asw_sign::keygen::KeyAlgorithm::Rsa2048,
        1,
        OffsetDateTime::now_utc(),
    )?;
    let (key, cert) = (dir.path().join("key.pem"), dir.path().join("cert.pem"));
    std::fs::write(&key, &generated.key_pem)?;
    std::fs::write(&cert, &generated.cert_pem)?;
    println!(
        "aswhub benchmark on {}, figures without the broker",
        machine()
    );
    let mut rows = Vec::new();
    if args.wants(Figure::Memory) {
        rows.extend(big_documents(dir.path(), &key, &cert, &args.big_mb)?);
    }
    if args.wants(Figure::Hostile) {
        rows.extend(hostile(args.items)?);
    }
    println!();
    for row in rows {
        println!("{:<62} {:>14}  {}", row.figure, row.value, row.note);
    }
    Ok(())
}

/// (8) Every hostile shape (`asw_model::hostile`) at the size limit, and valid e-Form Ds of
/// `items` items and of about the size limit as the baseline: the CPU time the bounded reader
/// alone (its first pass, building nothing), the hub's outbound
/// path (validator: reader, XSD, rules) and inbound path (verifier: reader, signature profile,
/// then libxmlsec1) take to accept or refuse each, the least of three runs. The verifier gets
/// each shape signed by a trusted key where the signer accepts it (a hostile partner), since
/// it reads documents before the schema does. Printed, never asserted.
fn hostile(items: u32) -> anyhow::Result<Vec<Row>> {
    use asw_model::hostile::Shape;
    let (vn, th) = (state("VN"), state("TH"));
    println!("preparing the hostile documents...");
    let key = asw_sign::keygen::generate(
        vn,
        asw_sign::keygen::KeyAlgorithm::EcP256,
        1,
        OffsetDateTime::now_utc(),
    )?;
    let signer = Signer::new(&key.key_pem, &key.cert_pem)?;
    let trust = TrustStore::from_pem([(vn, key.cert_pem.as_slice())])?;
    let verifier = asw_sign::Verifier::new(Arc::new(trust))?;
    let mut validator = asw_schema::Validator::new()?;
    let limit = Limits::default().max_bytes;

    let small = document(DocumentKind::FormD, vn, th, items, 8)
        .to_xml_compact()?
        .into_bytes();
    let (big, big_items) = big_document(vn, th, limit.saturating_sub(200_000))?;
    let mut cases = vec![
        (format!("valid e-Form D, {items} items"), small),
        (format!("valid e-Form D, {big_items} items"), big),
    ];
    let mut signed = vec![signer.sign(&cases[0].1)?, signer.sign(&cases[1].1)?];
    for shape in Shape::ALL {
        cases.push((shape.name().to_owned(), shape.document(limit)));
        // What a partner with a trusted key could send: the shape signed (outside the signature
        // element). The signer refuses what the reader refuses: that is then verified unsigned.
        let signable = shape.signable_document(limit.saturating_sub(4000));
        match signer.sign(&signable) {
            Ok(bytes) => signed.push(bytes),
            Err(e) => {
                println!("  {}: the signer refuses it: {e}", shape.name());
                signed.push(signable);
            }
        }
    }
    let mut rows = Vec::new();
    for ((name, bytes), signed) in cases.into_iter().zip(signed) {
        let limits = Limits::default();
        let (reader_ms, _) = least_cpu_ms(|| {
            let read = asw_model::xml::parse_selected(&bytes, &limits, &|_: &str, _: &str| false);
            format!("{}", read.is_ok())
        });
        let (validate_ms, validated) = least_cpu_ms(|| match validator.validate(&bytes) {
            Ok(_) => "accepted".to_owned(),
            Err(problems) => format!("{} line {}", problems[0].rule, problems[0].line),
        });
        let (verify_ms, verified) =
            least_cpu_ms(
                || match verifier.verify(&signed, OffsetDateTime::now_utc()) {
                    Ok(_) => "verified".to_owned(),
                    Err(e) => match &e {
                        asw_sign::VerifyError::Xml(asw_model::ModelError::Xml { rule, .. }) => {
                            format!("{} ({rule})", e.code())
                        }
                        _ => e.code().to_owned(),
                    },
                },
            );
        rows.push(Row {
            figure: format!("(8) {name}: reader / validate / verify CPU"),
            value: format!("{reader_ms:.1}/{validate_ms:.1}/{verify_ms:.1} ms"),
            note: format!(
                "{:.1} MB; validate: {validated}; verify (signed by a trusted key if it can be): {verified}",
                bytes.len() as f64 / 1e6
            ),
        });
    }
    Ok(rows)
}

/// Runs `work` three times and returns the least CPU time of this thread it took, in
/// milliseconds, with what the last run returned.
fn least_cpu_ms(mut work: impl FnMut() -> String) -> (f64, String) {
    let mut least = f64::INFINITY;
    let mut outcome = String::new();
    for _ in 0..3 {
        let before = thread_cpu_ns();
        outcome = work();
        let took = thread_cpu_ns().saturating_sub(before) as f64 / 1e6;
        least = least.min(took);
    }
    (least, outcome)
}

/// CPU time this thread has run, in nanoseconds (`CLOCK_THREAD_CPUTIME_ID`: exact, where
/// `/proc` counts in scheduler ticks).
fn thread_cpu_ns() -> u64 {
    let t = rustix::time::clock_gettime(rustix::time::ClockId::ThreadCPUTime);
    u64::try_from(t.tv_sec).unwrap_or(0) * 1_000_000_000 + u64::try_from(t.tv_nsec).unwrap_or(0)
}

/// (6) For each size in MB, an e-Form D of about that size validated and signed in a child
/// process of its own, which reports its peak memory (see [`big_child`]).
fn big_documents(
    dir: &Path,
    key: &Path,
    cert: &Path,
    sizes_mb: &[usize],
) -> anyhow::Result<Vec<Row>> {
    let (vn, th) = (state("VN"), state("TH"));
    let mut rows = Vec::new();
    for &target_mb in sizes_mb {
        let (bytes, items) = big_document(vn, th, (target_mb * 1_000_000).saturating_sub(200_000))?;
        let file = dir.join(format!("big-{target_mb}.xml"));
        std::fs::write(&file, &bytes)?;
        let child = |phase: &str| -> anyhow::Result<String> {
            let out = Command::new(std::env::current_exe()?)
                .arg("--big")
                .arg(&file)
                .args(["--big-phase", phase])
                .env("ASW_BENCH_KEY", key)
                .env("ASW_BENCH_CERT", cert)
                .output()?;
            let text = String::from_utf8_lossy(&out.stdout).trim().to_owned();
            if !out.status.success() {
                bail!(
                    "large document child ({phase}) failed: {text} {}",
                    String::from_utf8_lossy(&out.stderr)
                );
            }
            Ok(text)
        };
        let both = child("both")?;
        // Each phase alone in a fresh process: its own peak, without memory the other left.
        let alone = |phase: &str| -> anyhow::Result<String> {
            let text = child(phase)?;
            Ok(text
                .split(';')
                .nth(1)
                .and_then(|t| t.split(" above").next())
                .unwrap_or("?")
                .trim()
                .trim_start_matches("peak ")
                .to_owned())
        };
        let (validate, sign) = (alone("validate")?, alone("sign")?);
        rows.push(Row {
            figure: format!(
                "(6) validate + sign one {:.1} MB e-Form D ({items} items)",
                bytes.len() as f64 / 1e6
            ),
            value: both.split(';').next().unwrap_or("?").to_owned(),
            note: format!(
                "{}; alone: validate {validate}, sign {sign}",
                both.split(';').nth(1).unwrap_or("").trim()
            ),
        });
    }
    Ok(rows)
}

/// An e-Form D of about `bytes` bytes (compact XML), and its item count.
fn big_document(
    from: MemberState,
    to: MemberState,
    bytes: usize,
) -> anyhow::Result<(Vec<u8>, u32)> {
    let one = document(DocumentKind::FormD, from, to, 10, 1)
        .to_xml_compact()?
        .len();
    let two = document(DocumentKind::FormD, from, to, 20, 1)
        .to_xml_compact()?
        .len();
    let per_item = (two - one) / 10;
    let items = u32::try_from(bytes.saturating_sub(one) / per_item.max(1) + 10).unwrap_or(u32::MAX);
    Ok((
        document(DocumentKind::FormD, from, to, items, 1)
            .to_xml_compact()?
            .into_bytes(),
        items,
    ))
}

/// Child mode: read one large document, validate and/or sign it, print "PEAK; details".
///
/// Peak memory is the kernel's high-water mark of this process's resident set (`VmHWM`), so it
/// counts every allocation that was touched, Rust's and libxml2's or libxmlsec1's alike, and
/// is taken above what the process held once the document was read (the input bytes, the
/// compiled schemas, the key).
fn big_child(file: &Path, phase: Phase) -> anyhow::Result<()> {
    let key = std::fs::read(std::env::var("ASW_BENCH_KEY")?)?;
    let cert = std::fs::read(std::env::var("ASW_BENCH_CERT")?)?;
    let mut validator = asw_schema::Validator::new()?;
    let signer = Signer::new(&key, &cert)?;
    let mut bytes = Vec::new();
    std::fs::File::open(file)?.read_to_end(&mut bytes)?;
    let before = status_kb("VmHWM:").max(status_kb("VmRSS:"));
    let started = Instant::now();
    if phase != Phase::Sign
        && let Err(problems) = validator.validate(&bytes)
    {
        bail!("the large document is invalid: {:?}", problems.first());
    }
    let validated = started.elapsed();
    let signed = if phase == Phase::Validate {
        0
    } else {
        signer.sign(&bytes)?.len()
    };
    let took = started.elapsed();
    let peak = status_kb("VmHWM:");
    let grew = peak.saturating_sub(before) as f64 * 1024.0;
    println!(
        "{:.1}x size; peak {:.0} MB above {:.0} MB before, {:.0} ms (validate {:.0} ms, sign {:.0} ms), signed {} B",
        grew / bytes.len() as f64,
        grew / 1e6,
        before as f64 / 1024.0,
        took.as_secs_f64() * 1000.0,
        validated.as_secs_f64() * 1000.0,
        (took - validated).as_secs_f64() * 1000.0,
        signed
    );
    Ok(())
}

fn status_kb(field: &str) -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .unwrap_or_default()
        .lines()
        .find(|l| l.starts_with(field))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|v| v.parse().ok())
        .unwrap_or(0)
}

/// (7) `xmlsec1 --sign` from a template and `xmlsec1 --verify`, one process per document.
fn xmlsec1(dir: &Path, signed_docs: &[Vec<u8>], count: usize) -> anyhow::Result<(f64, f64)> {
    let key = dir.join("th/key.pem");
    let cert = dir.join("th/cert.pem");
    let work = dir.join("xmlsec1");
    std::fs::create_dir_all(&work)?;
    let count = count.min(signed_docs.len()).max(1);
    let mut templates = Vec::new();
    for (i, doc) in signed_docs.iter().take(count).enumerate() {
        let text = String::from_utf8_lossy(doc).into_owned();
        let template = blank(
            &blank(&blank(&text, "ds:DigestValue"), "ds:SignatureValue"),
            "ds:X509Data",
        );
        let path = work.join(format!("t{i}.xml"));
        std::fs::write(&path, template)?;
        templates.push(path);
    }
    let started = Instant::now();
    for (i, template) in templates.iter().enumerate() {
        let out = work.join(format!("s{i}.xml"));
        let status = Command::new("xmlsec1")
            .args(["--sign", "--privkey-pem"])
            .arg(format!("{},{}", key.display(), cert.display()))
            .arg("--output")
            .arg(&out)
            .arg(template)
            .stderr(Stdio::null())
            .status()
            .context("running xmlsec1 (Debian package xmlsec1)")?;
        if !status.success() {
            bail!("xmlsec1 --sign failed on {}", template.display());
        }
    }
    let sign_rate = rate(count, started.elapsed());
    let started = Instant::now();
    for i in 0..count {
        let status = Command::new("xmlsec1")
            .args(["--verify", "--pubkey-cert-pem"])
            .arg(&cert)
            .args(["--enabled-reference-uris", "empty"])
            .arg(work.join(format!("s{i}.xml")))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()?;
        if !status.success() {
            bail!("xmlsec1 --verify failed");
        }
    }
    Ok((sign_rate, rate(count, started.elapsed())))
}

/// Empties the content of the first `<tag>...</tag>`.
fn blank(text: &str, tag: &str) -> String {
    let open = format!("<{tag}>");
    let close = format!("</{tag}>");
    match (text.find(&open), text.find(&close)) {
        (Some(a), Some(b)) if b > a => format!("{}{}{}", &text[..a + open.len()], "", &text[b..]),
        _ => text.to_owned(),
    }
}

/// CPU time used so far by the hub, the broker, this process and the whole machine, in clock
/// ticks, to divide the CPU of a phase among them.
#[derive(Debug, Clone, Copy)]
struct CpuSample {
    hub: u64,
    broker: u64,
    bench: u64,
    busy: u64,
    total: u64,
}

impl CpuSample {
    fn take(hub: u32) -> CpuSample {
        let process = |pid: &str| -> u64 {
            std::fs::read_to_string(format!("/proc/{pid}/stat"))
                .ok()
                .and_then(|text| {
                    // Fields after the command name (which may hold spaces), from field 3 on.
                    let rest = text.rsplit_once(')')?.1.to_owned();
                    let fields: Vec<&str> = rest.split_whitespace().collect();
                    let utime: u64 = fields.get(11)?.parse().ok()?;
                    let stime: u64 = fields.get(12)?.parse().ok()?;
                    Some(utime + stime)
                })
                .unwrap_or(0)
        };
        let broker = std::fs::read_dir("/proc")
            .into_iter()
            .flatten()
            .flatten()
            .filter(|e| {
                std::fs::read_to_string(e.path().join("comm")).is_ok_and(|c| c.trim() == "beam.smp")
            })
            .map(|e| process(&e.file_name().to_string_lossy()))
            .sum();
        let (busy, total) = std::fs::read_to_string("/proc/stat")
            .ok()
            .and_then(|text| {
                let line = text.lines().next()?.to_owned();
                let ticks: Vec<u64> = line
                    .split_whitespace()
                    .skip(1)
                    .filter_map(|v| v.parse().ok())
                    .collect();
                let total: u64 = ticks.iter().take(8).sum();
                let idle = ticks.get(3).copied().unwrap_or(0) + ticks.get(4).copied().unwrap_or(0);
                Some((total - idle, total))
            })
            .unwrap_or((0, 0));
        CpuSample {
            hub: process(&hub.to_string()),
            broker,
            bench: process("self"),
            busy,
            total,
        }
    }

    /// A row dividing the CPU used since `self` by `docs` documents.
    fn row(&self, figure: &str, docs: usize, hub: u32) -> Row {
        let now = CpuSample::take(hub);
        // Clock ticks are 1/100 s on Linux.
        let ms = |ticks: u64| ticks as f64 * 10.0 / docs.max(1) as f64;
        let busy = now.busy.saturating_sub(self.busy) as f64
            / now.total.saturating_sub(self.total).max(1) as f64;
        Row {
            figure: format!("{figure}: CPU per document, hub / broker / load"),
            value: format!(
                "{:.2}/{:.2}/{:.2} ms",
                ms(now.hub.saturating_sub(self.hub)),
                ms(now.broker.saturating_sub(self.broker)),
                ms(now.bench.saturating_sub(self.bench)),
            ),
            note: format!(
                "machine {:.0}% busy; the load is this benchmark publishing and counting",
                busy * 100.0
            ),
        }
    }
}

fn machine() -> String {
    let cpu = std::fs::read_to_string("/proc/cpuinfo")
        .unwrap_or_default()
        .lines()
        .find(|l| l.starts_with("model name"))
        .and_then(|l| l.split(':').nth(1))
        .map(|s| s.trim().to_owned())
        .unwrap_or_else(|| "unknown CPU".into());
    let cores = std::thread::available_parallelism().map_or(0, usize::from);
    let mem = status_meminfo();
    format!("{cores} cores ({cpu}), {mem:.0} GiB RAM")
}

fn status_meminfo() -> f64 {
    std::fs::read_to_string("/proc/meminfo")
        .unwrap_or_default()
        .lines()
        .find(|l| l.starts_with("MemTotal:"))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|v| v.parse::<f64>().ok())
        .map_or(0.0, |kb| kb / 1024.0 / 1024.0)
}
