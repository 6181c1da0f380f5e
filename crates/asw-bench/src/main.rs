//! `asw-bench`: measures the hub against its own limits in one run on this machine and prints a
//! table and a final `BENCH ...` line. Run it with `deploy/bench.sh` (release build of this and
//! of `aswhub`, which it starts as a child process against the local broker).
//!
//! Figures: (1) the in-process ceiling of the outbound and inbound work on the hub's worker
//! threads, no broker; (2) a bare broker relay with the hub's prefetch and lanes; (3, 4) the full
//! hub outbound and inbound, journal on; (5) latency at half the measured outbound capacity and at
//! 50/s, each beside a bare relay at the same rate; (6) the hub's peak
//! RSS with many documents queued, and the peak memory to validate and sign one large e-Form D;
//! (7) the `xmlsec1` command-line tool signing and verifying per document; (8) the CPU time to
//! accept or refuse each hostile document shape at the size limit, beside valid e-Form Ds; (9) the
//! relay a ministry would write instead (deploy/bench/ministry-relay.py: Python, pika, lxml and
//! signxml in two processes, publisher confirms, no journal); (10) the outbound rate with an
//! empty journal and with one holding 15 million messages, both backends, and the bytes on disk
//! per message; (11) the CPU per document by its size, 1 KB to 10 MB; (12) the console's search
//! over a journal of a million messages, both backends, through its HTTP API; (13) the hub
//! outbound with the documents spread over 1, 10 and 100 partner queues.

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

mod cpu;
mod fill;
mod growth;
mod hostile;
mod latency;
mod memory;
mod partners;
mod queues;
mod relay;
mod search;
mod sizes;
mod xmlsec1;

use cpu::{CpuSample, machine};
use hostile::hostile;
use latency::{latency, latency_rates};
use memory::{big_child, big_document, big_documents, rss};
use queues::{Arrivals, publish_all, quorum};
use relay::{ministry_relay, relay, relay_lanes};
use xmlsec1::xmlsec1;

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
    /// Offered rate for the latency figure, documents per second. Without it the figure runs at
    /// two rates derived from this run: half of the hub's measured outbound capacity (3), and a
    /// steady 50/s (a national single window's real peak is under 10/s).
    #[arg(long)]
    rate: Option<u32>,
    /// Duration of each latency figure, seconds.
    #[arg(long, default_value_t = 30)]
    latency_seconds: u64,
    /// Documents queued for the RSS figure.
    #[arg(long, default_value_t = 100_000)]
    rss_docs: usize,
    /// Seconds the hub runs on the queued documents while its RSS is sampled.
    #[arg(long, default_value_t = 20)]
    rss_seconds: u64,
    /// Settled messages in the full journal of figure (10) (15 million: ten years of Viet Nam's
    /// e-Form D traffic).
    #[arg(long, default_value_t = 15_000_000)]
    journal_messages: usize,
    /// Messages in the journal the console searches in figure (12).
    #[arg(long, default_value_t = 1_000_000)]
    search_messages: usize,
    /// Timed runs of each query of figure (12).
    #[arg(long, default_value_t = 30)]
    search_runs: usize,
    /// Documents signed and verified one process each by `xmlsec1`.
    #[arg(long, default_value_t = 50)]
    xmlsec1_docs: usize,
    /// Run only these figures (comma-separated) instead of the whole benchmark; figures not run
    /// print as NaN. `memory`: the peak memory and time to validate and sign one large e-Form D,
    /// figure (6) for the sizes of `--big-mb`; `hostile`: figure (8); `sizes`: figure (11);
    /// `search`: figure (12). These four, alone or together, need no broker (`search` needs
    /// PostgreSQL).
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
    /// (5) Latency at the offered rates.
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
    /// (11) The CPU per document by its size, 1 KB to 10 MB, outbound and inbound; needs no
    /// broker.
    Sizes,
    /// (10) The outbound rate with an empty journal and a full one, both backends, and the
    /// bytes on disk per message.
    Journal,
    /// (12) The console's search over a journal of `--search-messages`, both backends; needs
    /// no broker.
    Search,
    /// (13) The hub outbound (e-Phyto) spread over 1, 10 and 100 partner queues, each count a
    /// fresh hub in a vhost of its own.
    Partners,
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
        && args.only.iter().all(|f| {
            matches!(
                f,
                Figure::Memory | Figure::Hostile | Figure::Sizes | Figure::Search
            )
        })
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

impl std::fmt::Display for Row {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{:<62} {:>14}  {}", self.figure, self.value, self.note)
    }
}

/// Prints the rows not printed yet (the whole table is printed again at the end).
fn progress(rows: &[Row], printed: &mut usize) {
    for row in rows.get(*printed..).unwrap_or_default() {
        println!("  {row}");
    }
    *printed = rows.len();
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
        println!("{row}");
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
    // Rows printed so far: each figure's as it ends, so that a run stopped later keeps them.
    let mut printed = 0;
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

    progress(&rows, &mut printed);
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

    progress(&rows, &mut printed);
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

    progress(&rows, &mut printed);
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

    progress(&rows, &mut printed);
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

    progress(&rows, &mut printed);
    // (5) Latency at the offered rates: back-office publish to arrival in the partner queue.
    let p99 = if args.wants(Figure::Latency) {
        let mut p99 = f64::NAN;
        for (i, rate) in latency_rates(args, outbound).into_iter().enumerate() {
            // Seeds past every other figure's documents, apart per rate.
            let seed = 3 * n + i * 10_000_000;
            let p = latency(args, &admin, rate, seed, &mut rows).await?;
            // The summary line keeps the p99 at the first (highest) rate.
            if i == 0 {
                p99 = p;
            }
        }
        p99
    } else {
        f64::NAN
    };
    if let Some(mut hub) = hub {
        stop_hub(&mut hub)?;
    }

    progress(&rows, &mut printed);
    // (10) The journal as it grows, before (6) leaves documents queued: each backend empty, then
    // holding `--journal-messages`.
    if args.wants(Figure::Journal) {
        growth::journal_growth(args, &admin, &config, dir, &mut rows).await?;
    }

    progress(&rows, &mut printed);
    // (6) RSS with many documents queued: queue them first, then let a fresh hub work on them.
    let rss_mb = if args.wants(Figure::Rss) {
        rss(args, &admin, &config, &outbound_docs, &mut rows).await?
    } else {
        f64::NAN
    };
    let _ = admin.close().await;

    progress(&rows, &mut printed);
    if args.wants(Figure::Memory) {
        // (6) One large e-Form D: peak memory to validate and sign it, and time, by size.
        rows.extend(big_documents(
            dir,
            &dir.join("vn/key.pem"),
            &dir.join("vn/cert.pem"),
            &args.big_mb,
        )?);
    }
    progress(&rows, &mut printed);
    if args.wants(Figure::Hostile) {
        rows.extend(hostile(args.items)?);
    }
    progress(&rows, &mut printed);
    if args.wants(Figure::Sizes) {
        rows.extend(sizes::by_size()?);
    }
    progress(&rows, &mut printed);
    if args.wants(Figure::Search) {
        // Its HTTP exchanges run a runtime of their own: on a thread outside this one's.
        std::thread::scope(|s| {
            s.spawn(|| search::search(args, dir, &mut rows))
                .join()
                .unwrap_or_else(|panic| std::panic::resume_unwind(panic))
        })?;
    }
    progress(&rows, &mut printed);
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
    progress(&rows, &mut printed);
    // (13) Last: a failure there costs only its own rows.
    if args.wants(Figure::Partners)
        && let Err(e) = partners::partner_queues(args, testbed, &config, dir, &mut rows).await
    {
        rows.push(Row {
            figure: "(13) hub outbound to 1, 10, 100 partner queues".into(),
            value: "failed".into(),
            note: format!("{e:#}"),
        });
    }
    progress(&rows, &mut printed);
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

/// `--only` figures without the broker: (6) for one large document of each size, with a key
/// made here, (8), (11), (12).
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
    if args.wants(Figure::Sizes) {
        rows.extend(sizes::by_size()?);
    }
    if args.wants(Figure::Search) {
        search::search(args, dir.path(), &mut rows)?;
    }
    println!();
    for row in rows {
        println!("{row}");
    }
    Ok(())
}
