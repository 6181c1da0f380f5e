//! (5) Latency at the offered rates, the hub's and a bare relay's, and the paced publisher.

use super::*;

/// The offered rates of figure (5): `--rate` alone if given; otherwise half of the measured
/// outbound capacity (when figure (3) ran) and a steady 50/s.
pub(crate) fn latency_rates(args: &Args, outbound: f64) -> Vec<u32> {
    if let Some(rate) = args.rate {
        return vec![rate];
    }
    let mut rates = Vec::new();
    if outbound.is_finite() && outbound >= 2.0 {
        rates.push((outbound / 2.0) as u32);
    }
    rates.push(50);
    rates
}

/// (5) Offers documents at `rate` for `args.latency_seconds` (seeds from `seed`) and adds the
/// latency rows, the hub's and a bare relay's at the same rate; returns the p99 in milliseconds.
pub(crate) async fn latency(
    args: &Args,
    admin: &Connection,
    rate: u32,
    seed: usize,
    rows: &mut Vec<Row>,
) -> anyhow::Result<f64> {
    let (vn, th) = (state("VN"), state("TH"));
    let total = usize::try_from(u64::from(rate) * args.latency_seconds).unwrap_or(usize::MAX);
    println!("latency: {total} documents at {rate}/s...");
    let latency_docs: Vec<(String, Vec<u8>)> = (0..total)
        .map(|i| {
            let d = document(DocumentKind::FormD, vn, th, args.items, (seed + i) as u64);
            Ok::<_, anyhow::Error>((
                d.header.message_id.to_string(),
                d.to_xml_compact()?.into_bytes(),
            ))
        })
        .collect::<Result<_, _>>()?;
    // The baseline first: the same offer through a bare relay, measured the same way.
    let (r50, r99, rmax) = relay_latency(args, admin, &latency_docs, rate).await?;
    let timed = Arrivals::start(admin, &names::partner_out_queue(th), args.prefetch).await?;
    let sent = offer(
        admin,
        names::OUTBOUND_EXCHANGE,
        "formd",
        &latency_docs,
        rate,
    )
    .await?;
    timed.wait_for_ids(&sent, Duration::from_secs(120)).await?;
    let (p50, p99, max) = percentiles(timed.latencies_ms(&sent).await);
    rows.push(Row {
        figure: format!(
            "(5) latency at {rate}/s offered for {} s: p50 / p99 / max",
            args.latency_seconds
        ),
        value: format!("{p50:.1}/{p99:.1}/{max:.1} ms"),
        note: format!("back-office publish -> partner queue, {} lanes", args.lanes),
    });
    rows.push(Row {
        figure: format!("(5) baseline: bare relay at {rate}/s: p50 / p99 / max"),
        value: format!("{r50:.1}/{r99:.1}/{rmax:.1} ms"),
        note: "consume, publish with confirm, ack; no XML, no journal".into(),
    });
    timed.stop().await;
    Ok(p99)
}

/// p50, p99 and max of latencies in milliseconds.
pub(crate) fn percentiles(mut latencies: Vec<f64>) -> (f64, f64, f64) {
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

/// (5) baseline: `docs` offered at `rate` to a queue that a bare relay with the hub's
/// prefetch and lanes moves to another queue; p50, p99 and max from publish to arrival.
pub(crate) async fn relay_latency(
    args: &Args,
    connection: &Connection,
    docs: &[(String, Vec<u8>)],
    rate: u32,
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
    let sent = offer(connection, "", "bench.latency.in", docs, rate).await?;
    timed.wait_for_ids(&sent, Duration::from_secs(120)).await?;
    let latencies = timed.latencies_ms(&sent).await;
    timed.stop().await;
    feeder.abort();
    let _ = feeder.await;
    tasks.abort_all();
    while tasks.join_next().await.is_some() {}
    Ok(percentiles(latencies))
}

/// Publishes documents one by one at `rate` per second, each confirmed, recording send times.
pub(crate) async fn offer(
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
