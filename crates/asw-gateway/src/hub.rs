//! The running hub: connects to the broker, runs the outbound and inbound pipelines and the push
//! links to partners, reconnects after broker failures, and drains in-flight work on shutdown.
//!
//! Every delivery is acknowledged only after what it led to (partner queue, back-office
//! exchange, parking lot, answers) was confirmed by the broker. A broker failure drops the
//! session without acknowledging: the broker delivers again and the journal makes the second
//! pass harmless.

use std::collections::BTreeSet;
use std::panic::AssertUnwindSafe;
use std::sync::Arc;
use std::time::Duration;

use asw_amqp::{
    AmqpError, Backoff, Connection, Consumer, Delivery, Properties, connect_any_tls_with_backoff,
};
use asw_journal::{Direction, Journal, State};
use asw_model::{DocumentKind, Header, MemberState};
use asw_route::names;
use asw_sign::TrustStore;
use futures_util::FutureExt;
use time::OffsetDateTime;
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;
use tracing::{Instrument, info, info_span, warn};

use crate::config::HubConfig;
use crate::metrics::{self, JournalOperation, Metrics};
use crate::park::{Parked, park_failure, park_refused};
use crate::pool::{Pool, PoolError, panic_text};
use crate::process::{Identity, OnPool, Refusal, Worker, WorkerError, panicked};
use crate::publish::{Failure, LanePublisher};
use crate::steps;

/// Concurrent deliveries in progress per pipeline by default (`[limits] lanes`), each with its
/// own confirming channel. A delivery spends most of its time waiting (journal commits, broker
/// confirms), so a pipeline's throughput is about its lanes divided by a delivery's latency: 16
/// lanes held it near 600 documents per second with two cores idle. Fewer lanes queue less work
/// behind each delivery, so its latency tail is shorter when the hub is not saturated.
pub const LANES: usize = 64;

/// Threads running the steps of deliveries (see `Inner::steps`): one for every lane of both
/// pipelines, and some for the push links and the acknowledgement watcher.
fn step_threads(lanes: usize) -> usize {
    2 * lanes + 4
}
/// How long in-flight deliveries may take to finish after a shutdown request.
pub const GRACE: Duration = Duration::from_secs(20);

/// Why the hub could not start or stopped.
#[derive(Debug, thiserror::Error)]
pub enum HubError {
    /// A key, certificate or other file could not be read.
    #[error("cannot read {path}: {source}")]
    Read {
        /// The file.
        path: std::path::PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
    /// The trust store could not be loaded.
    #[error(transparent)]
    Trust(#[from] asw_sign::TrustError),
    /// The journal could not be opened.
    #[error(transparent)]
    Journal(#[from] asw_journal::JournalError),
    /// A worker could not be built (schemas, key, certificate).
    #[error(transparent)]
    Worker(#[from] WorkerError),
    /// The broker refused us for good (credentials, vhost, permissions).
    #[error(transparent)]
    Broker(Box<AmqpError>),
    /// A TLS file of the configuration could not be used.
    #[error(transparent)]
    Tls(#[from] asw_tls::TlsError),
    /// The metrics address could not be bound.
    #[error("cannot serve metrics on {address}: {source}")]
    Metrics {
        /// The configured address.
        address: std::net::SocketAddr,
        /// The I/O error.
        source: std::io::Error,
    },
}

impl From<AmqpError> for HubError {
    fn from(e: AmqpError) -> HubError {
        HubError::Broker(Box::new(e))
    }
}

/// A hub for one member state, ready to run.
pub struct Hub {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for Hub {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Hub")
            .field("country", &self.inner.config.country)
            .finish_non_exhaustive()
    }
}

/// What every flow of a running hub shares.
pub(crate) struct Inner {
    pub(crate) config: HubConfig,
    pub(crate) abandoned: Arc<steps::Abandoned>,
    trust: Arc<TrustStore>,
    pub(crate) journal: Arc<dyn Journal>,
    /// The CPU workers (libxml2, xmlsec): `limits.workers` threads, each with its own state.
    workers: Arc<Pool<Worker>>,
    /// The threads that run the steps of the deliveries in progress, one for each, handing the
    /// CPU work to the workers and waiting on the journal: so a worker never waits for a
    /// commit, and the journal writes of all deliveries in progress can share one.
    steps: Pool<()>,
    /// The broker user of the hub itself.
    pub(crate) own_user: String,
    /// Counters and gauges.
    pub(crate) metrics: Arc<Metrics>,
    /// The bound metrics listener, until `run` starts serving it.
    exporter: std::sync::Mutex<Option<std::net::TcpListener>>,
    /// Where the metrics are served, when they are.
    metrics_address: Option<std::net::SocketAddr>,
    /// One channel for each partner.
    channels: Vec<Arc<dyn crate::channel::PartnerChannel>>,
    /// TLS of the connections to the local broker.
    broker_tls: asw_amqp::ClientTls,
}

impl Inner {
    /// The metrics text, with what is read from the journal and trust store at each scrape.
    fn render_metrics(&self) -> String {
        let days = self.config.signing.expiry_warning_days;
        let channels = self
            .channels
            .iter()
            .map(|c| {
                let status = c.health().status(c.partner());
                let up = match status.up {
                    Some(true) => 1,
                    Some(false) => 0,
                    None => -1,
                };
                (status.partner.code(), status.channel, up)
            })
            .collect();
        self.metrics.render(&metrics::Sampled {
            channels,
            journal_commits: self.journal.commit_count(),
            trust_certificates: self.trust.snapshot().len(),
            trust_expiring: self.trust.expiring_within(days, now()).len(),
            expiry_warning_days: days,
        })
    }
}

impl Hub {
    /// Loads keys, trust store and journal, and starts the worker threads.
    pub fn new(config: HubConfig) -> Result<Hub, HubError> {
        let read = |path: &std::path::Path| {
            std::fs::read(path).map_err(|source| HubError::Read {
                path: path.to_owned(),
                source,
            })
        };
        let key = asw_sign::unencrypted_key_pem(
            &read(&config.signing.key)?,
            config.signing.key_passphrase.as_deref(),
        )
        .map_err(WorkerError::from)?;
        let cert = read(&config.signing.certificate)?;
        let trust = Arc::new(TrustStore::load(&config.signing.trust_dir)?);
        let journal: Arc<dyn Journal> = Arc::from(asw_journal::open_with_tls(
            config.journal.location(),
            &config.journal.tls,
        )?);
        let broker_tls = config.broker.tls.load("broker")?;
        let identity = Arc::new(Identity {
            country: config.country,
            partners: config.partners.keys().copied().collect::<BTreeSet<_>>(),
        });
        let limits = config.limits.document;
        let worker_trust = trust.clone();
        let workers = Arc::new(Pool::start(
            config.limits.workers,
            "asw-worker",
            move || Worker::new(identity.clone(), &key, &cert, worker_trust.clone(), limits),
        )?);
        let steps = Pool::start(step_threads(config.limits.lanes), "asw-step", || {
            Ok::<_, std::convert::Infallible>(())
        })
        .unwrap_or_else(|never| match never {});
        let own_user = asw_amqp::AmqpUrl::parse(&config.broker.url)?
            .user()
            .to_owned();
        // Bound now, so that a taken port fails the start and port 0 has a known port.
        let exporter = config
            .metrics
            .listen
            .map(|address| {
                std::net::TcpListener::bind(address)
                    .and_then(|l| l.set_nonblocking(true).map(|()| l))
                    .map_err(|source| HubError::Metrics { address, source })
            })
            .transpose()?;
        let metrics_address = exporter.as_ref().and_then(|l| l.local_addr().ok());
        let channels = config
            .partners
            .iter()
            .map(|(&partner, p)| crate::channel::for_partner(partner, p))
            .collect::<Result<_, _>>()?;
        Ok(Hub {
            inner: Arc::new(Inner {
                config,
                abandoned: Arc::default(),
                trust,
                journal,
                workers,
                steps,
                own_user,
                metrics: Arc::default(),
                exporter: std::sync::Mutex::new(exporter),
                metrics_address,
                channels,
                broker_tls,
            }),
        })
    }

    /// The hub's counters and gauges.
    pub fn metrics(&self) -> &Arc<Metrics> {
        &self.inner.metrics
    }

    /// The metrics text, as `GET /metrics` serves it.
    pub fn render_metrics(&self) -> String {
        self.inner.render_metrics()
    }

    /// Where `GET /metrics` is served (with the actual port when the configuration gave 0), if
    /// `[metrics]` is configured.
    pub fn metrics_address(&self) -> Option<std::net::SocketAddr> {
        self.inner.metrics_address
    }

    /// The health of each partner's channel, in partner order.
    pub fn channels(&self) -> Vec<crate::channel::ChannelStatus> {
        self.inner
            .channels
            .iter()
            .map(|c| c.health().status(c.partner()))
            .collect()
    }

    /// The journal this hub writes.
    pub fn journal(&self) -> Arc<dyn Journal> {
        self.inner.journal.clone()
    }

    /// Reads the trust store directory again: added, removed or rolled-over partner
    /// certificates take effect for the next message, without a restart. It fails closed: a
    /// file that cannot be read or is refused (say, a certificate without digitalSignature in
    /// its keyUsage) is skipped, its certificates no longer trusted, and logged with its path and
    /// counted (`aswhub_trust_files_refused`); removed files are gone even then. Returns the
    /// certificates trusted now. Logs the certificates that expire soon.
    pub fn reload_trust(&self) -> Result<usize, HubError> {
        let report = self.inner.trust.reload_report()?;
        self.inner
            .metrics
            .trust_files_refused(report.problems.len());
        for problem in &report.problems {
            warn!(
                file = ?problem.path(),
                error = %problem,
                "Trust store file refused; none of its certificates is trusted."
            );
        }
        info!(
            certificates = report.loaded,
            refused = report.problems.len(),
            "Trust store reloaded."
        );
        self.warn_expiring();
        Ok(report.loaded)
    }

    /// Logs a warning for every trusted certificate that expires within the configured days.
    pub fn warn_expiring(&self) {
        let days = self.inner.config.signing.expiry_warning_days;
        for cert in self.inner.trust.expiring_within(days, now()) {
            warn!(
                partner = %cert.member_state(),
                file = %cert.path().display(),
                not_after = %asw_model::document::format_timestamp(cert.info().not_after()),
                "Partner certificate expires within {days} days: add its successor to the trust store."
            );
        }
    }

    /// Runs until `shutdown` is cancelled: connects (with back-off), runs the pipelines, and
    /// reconnects whenever the broker connection fails. Returns after draining in-flight work.
    pub async fn run(&self, shutdown: CancellationToken) -> Result<(), HubError> {
        let config = &self.inner.config;
        let name = format!("aswhub-{}", config.country);
        let backoff = Backoff::default();
        self.warn_expiring();
        self.serve_metrics(&shutdown);
        loop {
            let connection = tokio::select! {
                c = connect_any_tls_with_backoff(&config.broker.urls, &name, &self.inner.broker_tls, &backoff) => Arc::new(c?),
                () = shutdown.cancelled() => return Ok(()),
            };
            self.inner.metrics.broker_connected(true);
            let session = shutdown.child_token();
            let mut tasks = JoinSet::new();
            let inner = self.inner.clone();
            tasks.spawn(consume(
                inner.clone(),
                connection.clone(),
                Pipeline::Outbound,
                session.clone(),
            ));
            tasks.spawn(consume(
                inner.clone(),
                connection.clone(),
                Pipeline::Inbound,
                session.clone(),
            ));
            tasks.spawn(crate::receipts::watch_acks(
                inner.clone(),
                connection.clone(),
                session.clone(),
            ));
            for channel in &self.inner.channels {
                tasks.spawn(channel.clone().run(
                    inner.clone(),
                    connection.clone(),
                    session.clone(),
                ));
            }
            info!(country = %config.country, "Hub running.");
            // The first task to end ends the session: on shutdown all of them end; otherwise the
            // connection failed, and every pipeline is restarted on a new one.
            let first = tasks.join_next().await;
            if let Some(Ok(Err(e))) = &first {
                warn!(error = %e, "Pipeline stopped; reconnecting.");
            }
            session.cancel();
            let drained =
                tokio::time::timeout(GRACE, async { while tasks.join_next().await.is_some() {} })
                    .await;
            if drained.is_err() {
                warn!(
                    "In-flight deliveries did not finish within the grace period; the broker will redeliver them."
                );
                tasks.abort_all();
            }
            let _ = connection.close().await;
            self.inner.metrics.broker_connected(false);
            if shutdown.is_cancelled() {
                info!("Hub stopped.");
                return Ok(());
            }
            self.inner.metrics.broker_reconnect();
            tokio::time::sleep(Duration::from_millis(500)).await;
        }
    }

    /// Starts serving `GET /metrics` until `shutdown`, the first time `run` is called.
    fn serve_metrics(&self, shutdown: &CancellationToken) {
        let listener = self
            .inner
            .exporter
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .take();
        let Some(listener) = listener else { return };
        match tokio::net::TcpListener::from_std(listener) {
            Ok(listener) => {
                let inner = self.inner.clone();
                let render: crate::exporter::Render = Arc::new(move || inner.render_metrics());
                info!(address = ?self.inner.metrics_address, "Serving metrics.");
                tokio::spawn(crate::exporter::serve(listener, render, shutdown.clone()));
            }
            Err(e) => warn!(error = %e, "Cannot serve metrics."),
        }
    }
}

/// Why a broker session ended (other than a shutdown request).
#[derive(Debug, thiserror::Error)]
pub(crate) enum SessionEnd {
    /// The broker connection or a channel failed.
    #[error(transparent)]
    Broker(#[from] AmqpError),
    /// The broker cancelled a consumer (its queue was deleted).
    #[error("the broker cancelled the consumer of {0}")]
    Cancelled(String),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Pipeline {
    Outbound,
    Inbound,
}

impl Pipeline {
    fn metric(self) -> metrics::Pipeline {
        match self {
            Pipeline::Outbound => metrics::Pipeline::Outbound,
            Pipeline::Inbound => metrics::Pipeline::Inbound,
        }
    }

    fn queue(self) -> &'static str {
        match self {
            Pipeline::Outbound => names::HUB_OUTBOUND_QUEUE,
            Pipeline::Inbound => names::HUB_INBOUND_QUEUE,
        }
    }

    fn stage(self) -> &'static str {
        match self {
            Pipeline::Outbound => names::stage::OUTBOUND,
            Pipeline::Inbound => names::stage::INBOUND,
        }
    }
}

/// Consumes one stage queue with `[limits] lanes` deliveries in progress at a time.
async fn consume(
    inner: Arc<Inner>,
    connection: Arc<Connection>,
    pipeline: Pipeline,
    stop: CancellationToken,
) -> Result<(), SessionEnd> {
    let tag = format!("aswhub-{}-{}", inner.config.country, pipeline.stage());
    // The lanes' channels first, then the consumer; all of it given up at once when the
    // session ends meanwhile (64 slow but answered calls could otherwise outlast the grace
    // period of a shutdown or of a broker restart).
    let setup = async {
        let mut publishers = Vec::with_capacity(inner.config.limits.lanes);
        for _ in 0..inner.config.limits.lanes {
            publishers.push(LanePublisher::open(connection.clone()).await?);
        }
        let channel = connection.open_channel().await?;
        let consumer = Consumer::start(
            channel,
            pipeline.queue(),
            inner.config.broker.prefetch,
            &tag,
        )
        .await?;
        Ok::<_, AmqpError>((consumer, publishers))
    };
    let (mut consumer, publishers) = tokio::select! {
        set = setup => set?,
        () = stop.cancelled() => return Ok(()),
    };
    let (tx, rx) = async_channel::bounded::<Delivery>(inner.config.limits.lanes);
    let mut lanes = JoinSet::new();
    for publisher in publishers {
        lanes.spawn(lane(
            inner.clone(),
            connection.clone(),
            publisher,
            rx.clone(),
            pipeline,
            stop.clone(),
        ));
    }
    let result = loop {
        tokio::select! {
            () = stop.cancelled() => break Ok(()),
            ended = lanes.join_next() => {
                // A lane only ends early when its channel failed.
                break match ended {
                    Some(Ok(Err(e))) => Err(e.into()),
                    _ => Ok(()),
                };
            }
            next = consumer.next() => match next {
                Some(Ok(delivery)) => {
                    // Wait for a free lane, but not past the end of the session: when the
                    // connection dies every lane fails and cancels it, and nobody would ever
                    // take this delivery (it stays unacknowledged and comes back).
                    tokio::select! {
                        sent = tx.send(delivery) => if sent.is_err() {
                            break Ok(());
                        },
                        () = stop.cancelled() => break Ok(()),
                    }
                }
                Some(Err(e)) => break Err(e.into()),
                None => break Err(SessionEnd::Cancelled(pipeline.queue().to_owned())),
            },
        }
    };
    // Stop new deliveries, let the lanes finish what they hold.
    let _ = consumer.cancel().await;
    tx.close();
    while lanes.join_next().await.is_some() {}
    result
}

async fn lane(
    inner: Arc<Inner>,
    connection: Arc<Connection>,
    mut publisher: LanePublisher,
    deliveries: async_channel::Receiver<Delivery>,
    pipeline: Pipeline,
    stop: CancellationToken,
) -> Result<(), AmqpError> {
    while let Ok(delivery) = deliveries.recv().await {
        let span = info_span!(
            "delivery",
            stage = pipeline.stage(),
            message_id = tracing::field::Empty,
            partner = tracing::field::Empty,
            kind = tracing::field::Empty
        );
        let in_flight = inner.metrics.in_flight(pipeline.metric());
        let took = std::time::Instant::now();
        let settled = settle(&inner, &connection, &mut publisher, delivery, pipeline)
            .instrument(span)
            .await;
        inner.metrics.processed(pipeline.metric(), took.elapsed());
        drop(in_flight);
        if let Err(e) = settled {
            // The broker failed under us: the delivery stays unacknowledged and comes back.
            stop.cancel();
            return Err(e);
        }
    }
    Ok(())
}

/// Handles one delivery and settles it: acknowledged once everything it led to was confirmed or
/// it was parked; returned to its queue only if even the parking lot refused it (its delivery
/// limit then dead-letters it). `Err` only when the broker session failed. A body over the size
/// limit is parked before it is copied or parsed; a panic while handling parks the delivery with
/// the panic's text and the lane goes on with a new channel.
async fn settle(
    inner: &Inner,
    connection: &Arc<Connection>,
    publisher: &mut LanePublisher,
    delivery: Delivery,
    pipeline: Pipeline,
) -> Result<(), AmqpError> {
    let Delivery { message, acker } = delivery;
    let stage = pipeline.stage();
    let max = inner.config.limits.document.max_bytes;
    let handled = if message.body.len() > max {
        Err(Failure::Fault(Refusal {
            code: "XML-SIZE".into(),
            text: format!(
                "the message is {} bytes long, more than the {max} allowed (limits.max_document_bytes)",
                message.body.len()
            ),
        }))
    } else {
        let handling = match pipeline {
            Pipeline::Outbound => crate::outbound::outbound(inner, publisher, &message).boxed(),
            Pipeline::Inbound => crate::inbound::inbound(inner, publisher, &message).boxed(),
        };
        match AssertUnwindSafe(handling).catch_unwind().await {
            Ok(handled) => handled,
            Err(payload) => {
                let text = panic_text(&*payload);
                tracing::error!(panic = %text, "Handling a delivery panicked; parking it.");
                // The publisher may have been cut off mid-publish: start on a fresh channel.
                *publisher = LanePublisher::open(connection.clone()).await?;
                Err(Failure::Fault(panicked(text)))
            }
        }
    };
    let parked = match handled {
        Ok(()) => return acker.ack().await,
        Err(Failure::Session(e)) => return Err(e),
        Err(Failure::Refused { error, header }) => {
            park_refused(inner, publisher, &message, stage, &error, header.as_ref()).await?
        }
        Err(Failure::Fault(refusal)) => {
            // Only the hub's own outbound header is trusted enough to journal by.
            let header = (pipeline == Pipeline::Outbound)
                .then(|| Header::read(&message.body, &inner.config.limits.document).ok())
                .flatten();
            park_failure(inner, publisher, &message, stage, refusal, header.as_ref()).await?
        }
    };
    if parked == Parked::Refused {
        acker.nack(true).await
    } else {
        acker.ack().await
    }
}

pub(crate) fn now() -> OffsetDateTime {
    OffsetDateTime::now_utc()
}

pub(crate) fn record_span(header: &Header, partner: MemberState) {
    let span = tracing::Span::current();
    span.record("message_id", tracing::field::display(header.message_id));
    span.record("partner", partner.code());
    span.record("kind", header.kind.as_str());
}

pub(crate) fn document_properties(header: &Header) -> Properties {
    let mut properties = Properties::new()
        .with_message_id(header.message_id.to_string())
        .with_content_type(names::CONTENT_TYPE_XML)
        .with_header(names::HEADER_MESSAGE_ID, header.message_id.to_string());
    if let Some(c) = header.correlation_id {
        properties = properties.with_correlation_id(c.to_string());
    }
    properties
}

/// Runs `f` on a step thread, with the journal and the workers for its CPU work.
pub(crate) async fn on_journal<R, F>(inner: &Inner, f: F) -> Result<R, PoolError>
where
    R: std::marker::Send + 'static,
    F: FnOnce(&mut OnPool<'_>, &dyn Journal) -> R + std::marker::Send + 'static,
{
    let journal = inner.journal.clone();
    let workers = inner.workers.clone();
    inner
        .steps
        .run(move |()| f(&mut OnPool::new(&workers), &*journal))
        .await
}

/// Journals a move after the broker confirmed what it stands for (see [`journal_moves`]).
pub(crate) async fn journal_move(inner: &Inner, direction: Direction, id: uuid::Uuid, to: State) {
    journal_moves(inner, vec![(direction, id, to)]).await;
}

/// Journals moves after the broker confirmed what they stand for, sharing one commit. A move
/// that fails transiently is retried, with back-off, until it holds: the broker has the message
/// already, and a journal left behind (`signed` for a document queued, say) is never caught up
/// by anything else. Only a move the journal refuses (against [`asw_journal::TRANSITIONS`]) or
/// a permanent error is logged and dropped; a stopping hub leaves it to the redelivery.
pub(crate) async fn journal_moves(inner: &Inner, moves: Vec<(Direction, uuid::Uuid, State)>) {
    let backoff = Backoff::default();
    let mut pending = moves;
    let mut failures = 0u32;
    while !pending.is_empty() {
        let batch = pending.clone();
        let done = on_journal(inner, move |_, j| {
            let at = now();
            let mut results = Vec::with_capacity(batch.len());
            let committed = j.batch(&mut || {
                results = batch
                    .iter()
                    .map(|&(direction, id, to)| j.transition(direction, id, to, None, at))
                    .collect();
            });
            (results, committed)
        })
        .await;
        let (results, committed) = match done {
            Ok(done) => done,
            Err(e) => {
                inner.metrics.journal_error(JournalOperation::Move);
                warn!(error = %e, "Cannot journal a move; the redelivery will.");
                return;
            }
        };
        let mut retry = Vec::new();
        match committed {
            Err(e) if e.is_transient() => retry = pending.clone(),
            Err(e) => {
                inner.metrics.journal_error(JournalOperation::Move);
                warn!(error = %e, "Cannot journal a move.");
            }
            Ok(()) => {
                for (&(direction, id, to), moved) in pending.iter().zip(results) {
                    match moved {
                        Ok(t) if t.reached() => {}
                        Ok(t) => {
                            warn!(message_id = %id, to = %to, outcome = ?t, "Journal refused a move.");
                        }
                        Err(e) if e.is_transient() => retry.push((direction, id, to)),
                        Err(e) => {
                            inner.metrics.journal_error(JournalOperation::Move);
                            warn!(message_id = %id, to = %to, error = %e, "Cannot journal a move.");
                        }
                    }
                }
            }
        }
        if !retry.is_empty() {
            failures = failures.saturating_add(1);
            inner.metrics.journal_error(JournalOperation::Move);
            warn!(
                moves = retry.len(),
                failures, "Cannot journal a move yet; retrying until it holds."
            );
            tokio::time::sleep(backoff.pause(failures)).await;
        }
        pending = retry;
    }
}

/// Kinds a back-office may send.
pub fn outbound_kinds() -> impl Iterator<Item = DocumentKind> {
    DocumentKind::ALL.into_iter()
}
