//! Queues the benchmark reads and writes: quorum queues, confirmed publishing, arrivals.

use super::*;

pub(crate) fn quorum(name: &str) -> Queue {
    Queue {
        name: name.into(),
        arguments: vec![("x-queue-type".into(), Argument::Str("quorum".into()))],
    }
}

/// Publishes every body with confirms, 500 in flight at a time.
pub(crate) async fn publish_all(
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

/// Counts (and times) messages arriving in a queue.
pub(crate) struct Arrivals {
    seen: Arc<tokio::sync::Mutex<HashMap<String, Instant>>>,
    count: Arc<std::sync::atomic::AtomicUsize>,
    task: tokio::task::JoinHandle<()>,
}

impl Arrivals {
    pub(crate) async fn start(
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

    pub(crate) async fn wait_for(&self, n: usize, timeout: Duration) -> anyhow::Result<()> {
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

    pub(crate) async fn wait_for_ids(
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

    pub(crate) async fn latencies_ms(&self, sent: &HashMap<String, Instant>) -> Vec<f64> {
        let seen = self.seen.lock().await;
        sent.iter()
            .filter_map(|(id, at)| {
                seen.get(id)
                    .map(|arrived| arrived.duration_since(*at).as_secs_f64() * 1000.0)
            })
            .collect()
    }

    pub(crate) async fn stop(self) {
        self.task.abort();
        let _ = self.task.await;
    }
}
