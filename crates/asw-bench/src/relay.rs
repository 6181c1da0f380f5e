//! (2) The bare broker relay and (9) the relay a ministry would write instead.

use super::*;

/// Starts `lanes` tasks that each take deliveries from `deliveries`, publish them with confirm
/// to `queue` (default exchange) and ack them, counting in `done`: the hub's pipeline without
/// its work.
pub(crate) async fn relay_lanes(
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

/// (9) Runs deploy/bench/ministry-relay.py on `docs` (VN's key and certificate, the envelope
/// schema) and returns its rate, or why it could not run (its Python packages are missing: the
/// interpreter is `ASWHUB_RELAY_PYTHON`, set by deploy/bench.sh, or `python3`).
pub(crate) async fn ministry_relay(
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
pub(crate) async fn relay(
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
