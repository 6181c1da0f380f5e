//! The running hub: connects to the broker, runs the outbound and inbound pipelines and the push
//! links to partners, reconnects after broker failures, and drains in-flight work on shutdown.
//!
//! Every delivery is acknowledged only after what it led to (partner queue, back-office
//! exchange, parking lot, answers) was confirmed by the broker. A broker failure drops the
//! session without acknowledging: the broker delivers again and the journal makes the second
//! pass harmless.

use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::Duration;

use asw_amqp::{
    AmqpError, Backoff, ConfirmingPublisher, Connection, Consumer, Delivery, HeaderValue,
    Properties, connect_with_backoff,
};
use asw_journal::{Direction, Journal, State};
use asw_model::bus::{BUS_HEADER, BusEnvelope};
use asw_model::{DocumentKind, Header, MemberState};
use asw_route::names::{self, HEADER_EXCHANGE, HEADER_ROUTING_KEY, HEADER_TRANSPORT_USER};
use asw_sign::TrustStore;
use time::OffsetDateTime;
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;
use tracing::{Instrument, info, info_span, warn};

use crate::config::{HubConfig, LinkMode};
use crate::metrics::{self, DocumentOutcome, JournalOperation, Metrics};
use crate::outcome::{Outcome, OutcomeReason};
use crate::pool::{Pool, PoolClosed};
use crate::process::{Identity, OnPool, Refusal, Worker, WorkerError, summary};
use crate::steps::{self, InboundPlan, OutboundPlan, Send};

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

struct Inner {
    config: HubConfig,
    abandoned: Arc<steps::Abandoned>,
    trust: Arc<TrustStore>,
    journal: Arc<dyn Journal>,
    /// The CPU workers (libxml2, xmlsec): `limits.workers` threads, each with its own state.
    workers: Arc<Pool<Worker>>,
    /// The threads that run the steps of the deliveries in progress, one for each, handing the
    /// CPU work to the workers and waiting on the journal: so a worker never waits for a
    /// commit, and the journal writes of all deliveries in progress can share one.
    steps: Pool<()>,
    /// The broker user of the hub itself.
    own_user: String,
    /// Counters and gauges.
    metrics: Arc<Metrics>,
    /// The bound metrics listener, until `run` starts serving it.
    exporter: std::sync::Mutex<Option<std::net::TcpListener>>,
    /// Where the metrics are served, when they are.
    metrics_address: Option<std::net::SocketAddr>,
}

impl Inner {
    /// The metrics text, with what is read from the journal and trust store at each scrape.
    fn render_metrics(&self) -> String {
        let days = self.config.signing.expiry_warning_days;
        self.metrics.render(&metrics::Sampled {
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
        let key = read(&config.signing.key)?;
        let cert = read(&config.signing.certificate)?;
        let trust = Arc::new(TrustStore::load(&config.signing.trust_dir)?);
        let journal: Arc<dyn Journal> = Arc::from(asw_journal::open(config.journal.location())?);
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

    /// The journal this hub writes.
    pub fn journal(&self) -> Arc<dyn Journal> {
        self.inner.journal.clone()
    }

    /// Reads the trust store directory again: added, removed or rolled-over partner
    /// certificates take effect for the next message, without a restart. On error the hub keeps
    /// the certificates it had. Logs the certificates that expire soon.
    pub fn reload_trust(&self) -> Result<usize, HubError> {
        let count = self.inner.trust.reload()?;
        info!(certificates = count, "Trust store reloaded.");
        self.warn_expiring();
        Ok(count)
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
                c = connect_with_backoff(&config.broker.url, &name, &backoff) => Arc::new(c?),
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
            tasks.spawn(watch_acks(
                inner.clone(),
                connection.clone(),
                session.clone(),
            ));
            for (&partner, p) in &config.partners {
                if p.link == LinkMode::Push {
                    tasks.spawn(push_link(
                        inner.clone(),
                        connection.clone(),
                        partner,
                        session.clone(),
                    ));
                }
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
enum SessionEnd {
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
    let channel = connection.open_channel().await?;
    let tag = format!("aswhub-{}-{}", inner.config.country, pipeline.stage());
    let mut consumer = Consumer::start(
        channel,
        pipeline.queue(),
        inner.config.broker.prefetch,
        &tag,
    )
    .await?;
    let (tx, rx) = async_channel::bounded::<Delivery>(inner.config.limits.lanes);
    let mut lanes = JoinSet::new();
    for _ in 0..inner.config.limits.lanes {
        let publisher = ConfirmingPublisher::new(connection.open_channel().await?).await?;
        lanes.spawn(lane(
            inner.clone(),
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
    mut publisher: ConfirmingPublisher,
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
        let handled = match pipeline {
            Pipeline::Outbound => {
                outbound(&inner, &mut publisher, delivery)
                    .instrument(span)
                    .await
            }
            Pipeline::Inbound => {
                inbound(&inner, &mut publisher, delivery)
                    .instrument(span)
                    .await
            }
        };
        inner.metrics.processed(pipeline.metric(), took.elapsed());
        drop(in_flight);
        if let Err(e) = handled {
            // The broker failed under us: the delivery stays unacknowledged and comes back.
            stop.cancel();
            return Err(e);
        }
    }
    Ok(())
}

fn now() -> OffsetDateTime {
    OffsetDateTime::now_utc()
}

fn record_span(header: &Header, partner: MemberState) {
    let span = tracing::Span::current();
    span.record("message_id", tracing::field::display(header.message_id));
    span.record("partner", partner.code());
    span.record("kind", header.kind.as_str());
}

fn document_properties(header: &Header) -> Properties {
    let mut properties = Properties::new()
        .with_message_id(header.message_id.to_string())
        .with_content_type(names::CONTENT_TYPE_XML)
        .with_header(names::HEADER_MESSAGE_ID, header.message_id.to_string());
    if let Some(c) = header.correlation_id {
        properties = properties.with_correlation_id(c.to_string());
    }
    properties
}

fn envelope(
    header: Option<&Header>,
    stage: &str,
    attempts: u32,
    started: OffsetDateTime,
) -> BusEnvelope {
    let ms = |t: OffsetDateTime| i64::try_from(t.unix_timestamp_nanos() / 1_000_000).unwrap_or(0);
    BusEnvelope {
        message_id: header.map(|h| h.message_id.to_string()).unwrap_or_default(),
        stage: stage.to_owned(),
        attempts,
        first_seen_unix_ms: ms(started),
        stage_started_unix_ms: ms(started),
        ..BusEnvelope::default()
    }
}

/// Runs `f` on a step thread, with the journal and the workers for its CPU work.
async fn on_journal<R, F>(inner: &Inner, f: F) -> Result<R, PoolClosed>
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

/// Journals a move after the broker confirmed what it stands for. A failure here loses no
/// message (the broker holds it); it is logged, and the state catches up on the next event.
async fn journal_move(inner: &Inner, direction: Direction, id: uuid::Uuid, to: State) {
    journal_moves(inner, vec![(direction, id, to)]).await;
}

/// Journals moves as [`journal_move`] does, sharing one commit.
async fn journal_moves(inner: &Inner, moves: Vec<(Direction, uuid::Uuid, State)>) {
    let results = on_journal(inner, move |_, j| {
        let at = now();
        let mut results = Vec::with_capacity(moves.len());
        let committed = j.batch(&mut || {
            results = moves
                .iter()
                .map(|&(direction, id, to)| (id, to, j.transition(direction, id, to, None, at)))
                .collect();
        });
        (results, committed)
    })
    .await;
    let (results, committed) = match results {
        Ok(done) => done,
        Err(e) => {
            inner.metrics.journal_error(JournalOperation::Move);
            warn!(error = %e, "Cannot journal a move.");
            return;
        }
    };
    if let Err(e) = committed {
        inner.metrics.journal_error(JournalOperation::Move);
        warn!(error = %e, "Cannot journal a move.");
        return;
    }
    for (id, to, moved) in results {
        match moved {
            Ok(t) if t.reached() => {}
            Ok(t) => warn!(message_id = %id, to = %to, outcome = ?t, "Journal refused a move."),
            Err(e) => {
                inner.metrics.journal_error(JournalOperation::Move);
                warn!(message_id = %id, to = %to, error = %e, "Cannot journal a move.");
            }
        }
    }
}

/// The broker user that published a delivery to the hub: its validated `user_id`, or, on a
/// message the hub itself moved (published with the hub's own user, so no partner can forge
/// it), the original publisher kept in a header.
fn original_transport_user(inner: &Inner, message: &asw_amqp::Message) -> Option<String> {
    match message.properties.user_id.as_deref() {
        Some(u) if u == inner.own_user => message
            .properties
            .header(HEADER_TRANSPORT_USER)
            .and_then(HeaderValue::as_str)
            .map(str::to_owned),
        other => other.map(str::to_owned),
    }
}

/// The routing key a delivery stands for: its own, or the original one when the hub moved it
/// through a retry queue (it then comes back with the stage queue's name).
fn original_routing_key(inner: &Inner, message: &asw_amqp::Message) -> String {
    let moved = message.properties.user_id.as_deref() == Some(inner.own_user.as_str());
    match message
        .properties
        .header(HEADER_ROUTING_KEY)
        .and_then(HeaderValue::as_str)
    {
        Some(key) if moved => key.to_owned(),
        _ => message.routing_key.clone(),
    }
}

fn attempts_so_far(message: &asw_amqp::Message) -> u32 {
    message
        .properties
        .header(names::HEADER_ATTEMPTS)
        .and_then(HeaderValue::as_int)
        .and_then(|n| u32::try_from(n).ok())
        .unwrap_or(0)
}

/// Whether a retry counts as a failed attempt.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Attempt {
    /// A transient failure: counted, backed off, parked once the attempts are used up.
    Failed,
    /// Another consumer holds the message's claim: looked at again after the shortest delay,
    /// not counted (the claim lease bounds the wait).
    Waiting,
}

/// Settles a delivery that failed transiently: into the stage's retry queue with the next
/// back-off delay and its attempts counted, or, once the attempts are used up, into the parking
/// lot (and, outbound, a `failed` outcome to the back-office).
async fn retry(
    inner: &Inner,
    publisher: &mut ConfirmingPublisher,
    message: &asw_amqp::Message,
    acker: asw_amqp::Acker,
    stage: &str,
    why: &str,
    kind: Attempt,
) -> Result<(), AmqpError> {
    let started = now();
    let header = asw_model::Header::read(&message.body, &inner.config.limits.document).ok();
    let (attempts, delay) = match kind {
        Attempt::Failed => {
            let attempts = attempts_so_far(message).saturating_add(1);
            (attempts, inner.config.retry.delay_after(attempts))
        }
        Attempt::Waiting => (
            attempts_so_far(message),
            inner.config.retry.delays_ms.first().copied(),
        ),
    };
    let Some(delay) = delay else {
        let refusals = [Refusal {
            code: "RETRIES-EXHAUSTED".into(),
            text: format!("gave up after {attempts} attempts; last failure: {why}"),
        }];
        count_retry(inner, stage, DocumentOutcome::Parked, header.as_ref());
        warn!(attempts, reason = why, "Giving up on a delivery; parked.");
        park(
            inner,
            publisher,
            message,
            Parking {
                header: header.as_ref(),
                stage,
                refusals: &refusals,
                attempts,
                started,
            },
        )
        .await?;
        if stage == names::stage::OUTBOUND {
            if let Some(h) = &header {
                let id = h.message_id;
                let reason =
                    asw_journal::Reason::new("RETRIES-EXHAUSTED", refusals[0].text.clone());
                let _ = on_journal(inner, move |_, j| {
                    j.transition(Direction::Outbound, id, State::Failed, Some(&reason), now())
                })
                .await;
            }
            let mut outcome = Outcome::new(
                "failed",
                header.as_ref().map(|h| h.message_id),
                header.as_ref().map(|h| h.kind),
                header.as_ref().map(|h| h.receiver),
                started,
            );
            outcome.reasons = vec![OutcomeReason::from(&refusals[0])];
            publish_outcome(publisher, &outcome).await?;
        }
        return acker.ack().await;
    };
    count_retry(inner, stage, DocumentOutcome::Retried, header.as_ref());
    warn!(
        attempts,
        delay_ms = delay,
        reason = why,
        "Transient failure; retrying later."
    );
    let mut env = envelope(header.as_ref(), stage, attempts, started);
    env.reason = why.to_owned();
    let transport_user = original_transport_user(inner, message);
    let mut properties = Properties::new()
        .with_user_id(inner.own_user.as_str())
        .with_content_type(
            message
                .properties
                .content_type
                .clone()
                .unwrap_or_else(|| names::CONTENT_TYPE_XML.into()),
        )
        .with_header(
            names::HEADER_ATTEMPTS,
            HeaderValue::Int(i64::from(attempts)),
        )
        .with_header(names::HEADER_STAGE, stage)
        .with_header(names::HEADER_REASON, why)
        .with_header(HEADER_ROUTING_KEY, original_routing_key(inner, message))
        .with_header(BUS_HEADER, HeaderValue::Bytes(env.to_bytes()));
    if let Some(user) = transport_user {
        properties = properties.with_header(HEADER_TRANSPORT_USER, user);
    }
    if let Some(id) = &message.properties.message_id {
        properties = properties.with_message_id(id.clone());
    }
    publisher
        .publish(
            "",
            &names::retry_queue(stage, delay),
            &message.body,
            &properties,
        )
        .await?;
    acker.ack().await
}

/// Counts a retried or parked delivery of `stage`, under the partner it was to or from.
fn count_retry(inner: &Inner, stage: &str, outcome: DocumentOutcome, header: Option<&Header>) {
    let Some(pipeline) = metrics::Pipeline::from_stage(stage) else {
        return;
    };
    let partner = header.map(|h| match pipeline {
        metrics::Pipeline::Outbound => h.receiver,
        metrics::Pipeline::Inbound => h.sender,
    });
    inner
        .metrics
        .document(pipeline, outcome, partner, header.map(|h| h.kind));
}

async fn outbound(
    inner: &Inner,
    publisher: &mut ConfirmingPublisher,
    delivery: Delivery,
) -> Result<(), AmqpError> {
    let Delivery { message, acker } = delivery;
    let started = now();
    let body = message.body.clone();
    let routing_key = original_routing_key(inner, &message);
    let abandoned = inner.abandoned.clone();
    let plan = on_journal(inner, move |w, j| {
        steps::outbound(w, j, &abandoned, &body, &routing_key, started)
    })
    .await;
    let plan = match plan {
        Ok(plan) => plan,
        Err(e) => {
            return retry(
                inner,
                publisher,
                &message,
                acker,
                names::stage::OUTBOUND,
                &e.to_string(),
                Attempt::Failed,
            )
            .await;
        }
    };
    match plan {
        OutboundPlan::Publish(send) => {
            record_span(&send.header, send.header.receiver);
            let id = send.header.message_id;
            publish_own(publisher, &send)
                .await
                .inspect_err(|_| inner.abandoned.add(id))?;
            journal_move(inner, Direction::Outbound, id, State::Queued).await;
            inner.metrics.document(
                metrics::Pipeline::Outbound,
                DocumentOutcome::Queued,
                Some(send.header.receiver),
                Some(send.header.kind),
            );
            info!(message_id = %id, receiver = %send.header.receiver, kind = %send.header.kind, "Signed and queued for the partner.");
            acker.ack().await
        }
        OutboundPlan::Duplicate { message_id, state } => {
            inner.metrics.document(
                metrics::Pipeline::Outbound,
                DocumentOutcome::Duplicate,
                None,
                None,
            );
            info!(%message_id, %state, "Duplicate of a document already sent; dropped.");
            acker.ack().await
        }
        OutboundPlan::Refuse { header, refusals } => {
            inner.metrics.document(
                metrics::Pipeline::Outbound,
                DocumentOutcome::Refused,
                header.as_ref().map(|h| h.receiver),
                header.as_ref().map(|h| h.kind),
            );
            warn!(message_id = ?header.as_ref().map(|h| h.message_id), reason = %summary(&refusals), "Outbound document refused.");
            park(
                inner,
                publisher,
                &message,
                Parking {
                    header: header.as_ref(),
                    stage: names::stage::OUTBOUND,
                    refusals: &refusals,
                    attempts: attempts_so_far(&message) + 1,
                    started,
                },
            )
            .await?;
            let mut outcome = Outcome::new(
                "rejected",
                header.as_ref().map(|h| h.message_id),
                header.as_ref().map(|h| h.kind),
                header.as_ref().map(|h| h.receiver),
                started,
            );
            outcome.reasons = refusals.iter().map(OutcomeReason::from).collect();
            publish_outcome(publisher, &outcome).await?;
            acker.ack().await
        }
        OutboundPlan::Wait(why) => {
            retry(
                inner,
                publisher,
                &message,
                acker,
                names::stage::OUTBOUND,
                &why,
                Attempt::Waiting,
            )
            .await
        }
        OutboundPlan::Retry(why) => {
            retry(
                inner,
                publisher,
                &message,
                acker,
                names::stage::OUTBOUND,
                &why,
                Attempt::Failed,
            )
            .await
        }
    }
}

async fn inbound(
    inner: &Inner,
    publisher: &mut ConfirmingPublisher,
    delivery: Delivery,
) -> Result<(), AmqpError> {
    let Delivery { message, acker } = delivery;
    let started = now();
    let body = message.body.clone();
    let routing_key = original_routing_key(inner, &message);
    let user_id = original_transport_user(inner, &message);
    let abandoned = inner.abandoned.clone();
    let plan = on_journal(inner, move |w, j| {
        steps::inbound(
            w,
            j,
            &abandoned,
            &body,
            user_id.as_deref(),
            &routing_key,
            started,
        )
    })
    .await;
    let plan = match plan {
        Ok(plan) => plan,
        Err(e) => {
            return retry(
                inner,
                publisher,
                &message,
                acker,
                names::stage::INBOUND,
                &e.to_string(),
                Attempt::Failed,
            )
            .await;
        }
    };
    match plan {
        InboundPlan::Accept {
            header,
            signer,
            deliver,
            possible_duplicate,
            receipt,
            answer,
        } => {
            record_span(&header, header.sender);
            if deliver {
                let mut env = envelope(Some(&header), names::stage::INBOUND, 1, started);
                env.signer = signer.0.code().to_owned();
                env.signer_fingerprint = signer.1.clone();
                let mut properties = document_properties(&header)
                    .with_header("x-asw-signer", signer.0.code())
                    .with_header("x-asw-signer-fingerprint", signer.1.as_str())
                    .with_header(BUS_HEADER, HeaderValue::Bytes(env.to_bytes()));
                if possible_duplicate {
                    properties = properties.with_header(names::HEADER_POSSIBLE_DUPLICATE, true);
                }
                let key = names::inbound_key(header.kind, header.sender);
                publisher
                    .publish(names::INBOUND_EXCHANGE, &key, &message.body, &properties)
                    .await
                    .inspect_err(|_| inner.abandoned.add(header.message_id))?;
            }
            // An answer's outcome is confirmed before the answer is journaled delivered: a copy
            // of an answer already delivered reports no outcome again, so the outcome of the
            // first must not be lost between the two (the connection failing, say).
            if let Some(answer) = answer {
                let mut outcome = Outcome::new(
                    answer.outcome,
                    Some(answer.original_id),
                    Some(answer.original_kind),
                    Some(answer.original_receiver),
                    started,
                );
                outcome.status = answer.status;
                outcome.answer_id = Some(header.message_id);
                outcome.reasons = answer
                    .reasons
                    .into_iter()
                    .map(|(code, text)| OutcomeReason { code, text })
                    .collect();
                publish_outcome(publisher, &outcome)
                    .await
                    .inspect_err(|_| inner.abandoned.add(header.message_id))?;
            }
            // The receipt goes out before the moves are journaled, so both share one commit. A
            // crash in between sends the receipt again with the redelivery: the same bytes under
            // the same id, which the partner drops as a copy.
            if let Some(receipt) = &receipt {
                publish_own(publisher, receipt)
                    .await
                    .inspect_err(|_| inner.abandoned.add(header.message_id))?;
            }
            let mut moves = Vec::with_capacity(2);
            if deliver {
                moves.push((Direction::Inbound, header.message_id, State::Delivered));
            }
            if let Some(receipt) = &receipt {
                moves.push((
                    Direction::Outbound,
                    receipt.header.message_id,
                    State::Queued,
                ));
            }
            if !moves.is_empty() {
                journal_moves(inner, moves).await;
            }
            if deliver {
                inner.metrics.document(
                    metrics::Pipeline::Inbound,
                    DocumentOutcome::Delivered,
                    Some(header.sender),
                    Some(header.kind),
                );
                info!(message_id = %header.message_id, sender = %header.sender, kind = %header.kind, "Verified and delivered to the back-office.");
            } else {
                inner.metrics.document(
                    metrics::Pipeline::Inbound,
                    DocumentOutcome::Duplicate,
                    Some(header.sender),
                    Some(header.kind),
                );
                info!(message_id = %header.message_id, "Duplicate of a document already delivered; not delivered again.");
            }
            if let Some(receipt) = &receipt {
                answered(inner, receipt);
            }
            acker.ack().await
        }
        InboundPlan::Refuse {
            header,
            refusals,
            rejection,
            authenticated,
        } => {
            inner.metrics.document(
                metrics::Pipeline::Inbound,
                DocumentOutcome::Refused,
                authenticated,
                header.as_ref().map(|h| h.kind),
            );
            warn!(
                message_id = ?header.as_ref().map(|h| h.message_id),
                partner = ?authenticated,
                reason = %summary(&refusals),
                "Inbound document refused and parked."
            );
            park(
                inner,
                publisher,
                &message,
                Parking {
                    header: header.as_ref(),
                    stage: names::stage::INBOUND,
                    refusals: &refusals,
                    attempts: attempts_so_far(&message) + 1,
                    started,
                },
            )
            .await?;
            if let Some(rejection) = rejection {
                send_own(inner, publisher, &rejection).await?;
            }
            acker.ack().await
        }
        InboundPlan::Wait(why) => {
            retry(
                inner,
                publisher,
                &message,
                acker,
                names::stage::INBOUND,
                &why,
                Attempt::Waiting,
            )
            .await
        }
        InboundPlan::Retry(why) => {
            retry(
                inner,
                publisher,
                &message,
                acker,
                names::stage::INBOUND,
                &why,
                Attempt::Failed,
            )
            .await
        }
    }
}

/// Publishes one of the hub's own signed answers to the partner queue and journals it queued.
async fn send_own(
    inner: &Inner,
    publisher: &mut ConfirmingPublisher,
    send: &Send,
) -> Result<(), AmqpError> {
    publish_own(publisher, send).await?;
    journal_move(
        inner,
        Direction::Outbound,
        send.header.message_id,
        State::Queued,
    )
    .await;
    answered(inner, send);
    Ok(())
}

/// Publishes a document the hub signed (an outbound document or one of its own answers) to the
/// partner queue, confirmed.
async fn publish_own(publisher: &mut ConfirmingPublisher, send: &Send) -> Result<(), AmqpError> {
    publisher
        .publish(
            names::PARTNER_OUT_EXCHANGE,
            send.header.receiver.code(),
            &send.bytes,
            &document_properties(&send.header),
        )
        .await
}

/// Counts and logs an answer queued for the partner.
fn answered(inner: &Inner, send: &Send) {
    inner.metrics.document(
        metrics::Pipeline::Inbound,
        DocumentOutcome::Answered,
        Some(send.header.receiver),
        Some(send.header.kind),
    );
    info!(message_id = %send.header.message_id, kind = %send.header.kind, receiver = %send.header.receiver, "Answer queued for the partner.");
}

/// What a parked message's headers say about it.
struct Parking<'a> {
    /// Its header, when readable.
    header: Option<&'a Header>,
    /// The stage it failed in.
    stage: &'a str,
    /// Why.
    refusals: &'a [Refusal],
    /// Attempts made.
    attempts: u32,
    /// When the failing attempt started.
    started: OffsetDateTime,
}

/// Parks a delivery with headers naming stage, reason and attempts. Where it came from is
/// recorded as the pipeline resolved it, so a header a partner set itself is never passed on as
/// trusted (a replay publishes these headers with the hub's own user).
async fn park(
    inner: &Inner,
    publisher: &mut ConfirmingPublisher,
    message: &asw_amqp::Message,
    why: Parking<'_>,
) -> Result<(), AmqpError> {
    let Parking {
        header,
        stage,
        refusals,
        attempts,
        started,
    } = why;
    let first = refusals.first();
    let mut env = envelope(header, stage, attempts, started);
    env.reason_code = first.map(|r| r.code.clone()).unwrap_or_default();
    env.reason = summary(refusals);
    let mut properties = Properties::new()
        .with_content_type(
            message
                .properties
                .content_type
                .clone()
                .unwrap_or_else(|| names::CONTENT_TYPE_XML.into()),
        )
        .with_header(names::HEADER_STAGE, stage)
        .with_header(names::HEADER_REASON, summary(refusals))
        .with_header(names::HEADER_REASON_CODE, env.reason_code.clone())
        .with_header(
            names::HEADER_ATTEMPTS,
            HeaderValue::Int(i64::from(attempts)),
        )
        .with_header(
            names::HEADER_PARKED_AT,
            asw_model::document::format_timestamp(started),
        )
        .with_header(HEADER_ROUTING_KEY, original_routing_key(inner, message))
        .with_header(HEADER_EXCHANGE, message.exchange.as_str())
        .with_header(BUS_HEADER, HeaderValue::Bytes(env.to_bytes()));
    if let Some(user) = original_transport_user(inner, message) {
        properties = properties.with_header(HEADER_TRANSPORT_USER, user);
    }
    if let Some(h) = header {
        properties = properties
            .with_message_id(h.message_id.to_string())
            .with_header(names::HEADER_MESSAGE_ID, h.message_id.to_string());
    }
    publisher
        .publish("", names::PARKED_QUEUE, &message.body, &properties)
        .await
}

async fn publish_outcome(
    publisher: &mut ConfirmingPublisher,
    outcome: &Outcome,
) -> Result<(), AmqpError> {
    let mut properties = Properties::new()
        .with_content_type("application/json")
        .with_header(names::HEADER_OUTCOME, outcome.outcome);
    if let Some(id) = outcome.message_id {
        properties = properties.with_header(names::HEADER_MESSAGE_ID, id.to_string());
    }
    publisher
        .publish(
            names::INBOUND_EXCHANGE,
            &outcome.routing_key(),
            &outcome.to_json(),
            &properties,
        )
        .await
}

/// Pushes what waits in `asw.partner.out.<CC>` to the partner's broker, as `partner-<our CC>`.
/// While the partner is unreachable, documents stay in the queue; the link retries with back-off.
async fn push_link(
    inner: Arc<Inner>,
    local: Arc<Connection>,
    partner: MemberState,
    stop: CancellationToken,
) -> Result<(), SessionEnd> {
    let config = &inner.config;
    let Some(url) = config.partners.get(&partner).and_then(|p| p.url.clone()) else {
        return Ok(());
    };
    let us = config.country;
    let user = names::partner_user(us);
    let queue = names::partner_out_queue(partner);
    let span = info_span!("link", partner = partner.code());
    let backoff = Backoff::default();
    let connection_name = format!("aswhub-{us}-link");
    async move {
        let mut failures = 0u32;
        loop {
            // Connect to the partner first: without it, nothing is taken from the queue.
            let remote = tokio::select! {
                c = connect_with_backoff(&url, &connection_name, &backoff) => c,
                () = stop.cancelled() => return Ok(()),
            };
            let remote = match remote {
                Ok(r) => r,
                Err(e) => {
                    inner.metrics.link_failure(partner);
                    warn!(error = %e, "Partner broker refused the link; retrying later.");
                    failures += 1;
                    tokio::select! {
                        () = tokio::time::sleep(backoff.delay(failures)) => continue,
                        () = stop.cancelled() => return Ok(()),
                    }
                }
            };
            let outcome = pump(&inner, &local, &remote, &queue, &user, us, &stop).await;
            let _ = remote.close().await;
            match outcome {
                Ok(()) => return Ok(()),
                // The local broker failed: the session restarts everything.
                Err(LinkError::Local(e)) => return Err(e),
                Err(LinkError::Remote(e)) => {
                    failures += 1;
                    inner.metrics.link_failure(partner);
                    warn!(error = %e, "Partner link failed; reconnecting.");
                    tokio::select! {
                        () = tokio::time::sleep(backoff.delay(failures)) => {}
                        () = stop.cancelled() => return Ok(()),
                    }
                }
            }
        }
    }
    .instrument(span)
    .await
}

enum LinkError {
    Local(SessionEnd),
    Remote(AmqpError),
}

async fn pump(
    inner: &Inner,
    local: &Connection,
    remote: &Connection,
    queue: &str,
    user: &str,
    us: MemberState,
    stop: &CancellationToken,
) -> Result<(), LinkError> {
    let remote_channel = remote.open_channel().await.map_err(LinkError::Remote)?;
    let mut publisher = ConfirmingPublisher::new(remote_channel)
        .await
        .map_err(LinkError::Remote)?;
    let local_error = |e: AmqpError| LinkError::Local(e.into());
    let channel = local.open_channel().await.map_err(local_error)?;
    let mut consumer = Consumer::start(
        channel,
        queue,
        inner.config.broker.prefetch.min(64),
        "aswhub-link",
    )
    .await
    .map_err(local_error)?;
    info!("Partner link up.");
    loop {
        let delivery = tokio::select! {
            () = stop.cancelled() => {
                let _ = consumer.cancel().await;
                return Ok(());
            }
            next = consumer.next() => match next {
                Some(Ok(d)) => d,
                Some(Err(e)) => return Err(local_error(e)),
                None => return Err(LinkError::Local(SessionEnd::Cancelled(queue.to_owned()))),
            },
        };
        let Delivery { message, acker } = delivery;
        let mut properties = Properties::new()
            .with_content_type(names::CONTENT_TYPE_XML)
            .with_user_id(user);
        if let Some(id) = &message.properties.message_id {
            properties = properties.with_message_id(id.clone());
        }
        if let Some(c) = &message.properties.correlation_id {
            properties = properties.with_correlation_id(c.clone());
        }
        match publisher
            .publish(
                names::PARTNER_IN_EXCHANGE,
                us.code(),
                &message.body,
                &properties,
            )
            .await
        {
            Ok(()) => {
                if let Some(id) = message
                    .properties
                    .message_id
                    .as_deref()
                    .and_then(|s| uuid::Uuid::parse_str(s).ok())
                {
                    journal_move(inner, Direction::Outbound, id, State::Sent).await;
                }
                acker.ack().await.map_err(local_error)?;
            }
            Err(e) => {
                // Not delivered: back to the queue, in order, for the next connection.
                let _ = acker.nack(true).await;
                let _ = consumer.cancel().await;
                return Err(LinkError::Remote(e));
            }
        }
    }
}

/// How many overdue documents one journal call claims; more wait for the next call.
const OVERDUE_BATCH: u32 = 100;

/// Every `acks.check_every`, claims the outbound documents whose receipt is overdue (by
/// compare-and-set in the journal, so among hubs sharing it exactly one gets each), reports each
/// to the back-office once as an `awaiting-ack` outcome and resends it to the partner while
/// resends are allowed. Ends on shutdown, or with an error when the broker fails.
async fn watch_acks(
    inner: Arc<Inner>,
    connection: Arc<Connection>,
    stop: CancellationToken,
) -> Result<(), SessionEnd> {
    let acks = inner.config.acks;
    let mut publisher = ConfirmingPublisher::new(connection.open_channel().await?).await?;
    let kinds: Vec<DocumentKind> = DocumentKind::ALL
        .into_iter()
        .filter(|k| k.ack_kind().is_some())
        .collect();
    let span = info_span!(
        "acks",
        timeout_ms = acks.timeout.as_millis() as u64,
        resend = acks.resend
    );
    async move {
        loop {
            tokio::select! {
                () = stop.cancelled() => return Ok(()),
                () = tokio::time::sleep(acks.check_every) => {}
            }
            loop {
                let at = now();
                let query = asw_journal::OverdueQuery {
                    kinds: kinds.clone(),
                    due_before: at - acks.timeout,
                    max_resends: acks.resend,
                    limit: OVERDUE_BATCH,
                };
                let claimed = match on_journal(&inner, move |_, j| j.claim_overdue(&query, at))
                    .await
                {
                    Ok(Ok(claimed)) => claimed,
                    Ok(Err(e)) => {
                        inner.metrics.journal_error(JournalOperation::ClaimOverdue);
                        warn!(error = %e, "Cannot look for overdue receipts; trying again later.");
                        break;
                    }
                    Err(e) => {
                        inner.metrics.journal_error(JournalOperation::ClaimOverdue);
                        warn!(error = %e, "Cannot look for overdue receipts; trying again later.");
                        break;
                    }
                };
                let full = claimed.len() == OVERDUE_BATCH as usize;
                for overdue in &claimed {
                    overdue_receipt(&mut publisher, &inner.metrics, overdue, at).await?;
                }
                if !full {
                    break;
                }
            }
        }
    }
    .instrument(span)
    .await
}

/// Reports one claimed overdue document and resends it, as the claim says.
async fn overdue_receipt(
    publisher: &mut ConfirmingPublisher,
    counters: &Metrics,
    overdue: &asw_journal::Overdue,
    at: OffsetDateTime,
) -> Result<(), AmqpError> {
    let header = &overdue.record.summary.header;
    let waited = (at - overdue.waiting_since).whole_seconds();
    if overdue.reported {
        let mut outcome = Outcome::new(
            "awaiting-ack",
            Some(header.message_id),
            Some(header.kind),
            Some(header.receiver),
            at,
        );
        outcome.waited_seconds = Some(waited);
        outcome.resends = Some(overdue.resends);
        outcome.reasons = overdue
            .record
            .summary
            .reason
            .iter()
            .map(OutcomeReason::from)
            .collect();
        publish_outcome(publisher, &outcome).await?;
        counters.document(
            metrics::Pipeline::Outbound,
            DocumentOutcome::AwaitingAck,
            Some(header.receiver),
            Some(header.kind),
        );
        warn!(message_id = %header.message_id, receiver = %header.receiver, kind = %header.kind, waited_seconds = waited, "No receipt in time; reported to the back-office.");
    }
    if overdue.resend {
        // The exact bytes journaled when it was signed: same id, same signature.
        publisher
            .publish(
                names::PARTNER_OUT_EXCHANGE,
                header.receiver.code(),
                &overdue.record.bytes,
                &document_properties(header),
            )
            .await?;
        counters.document(
            metrics::Pipeline::Outbound,
            DocumentOutcome::Resent,
            Some(header.receiver),
            Some(header.kind),
        );
        info!(message_id = %header.message_id, receiver = %header.receiver, resends = overdue.resends, waited_seconds = waited, "No receipt in time; resent to the partner.");
    }
    Ok(())
}

/// Kinds a back-office may send.
pub fn outbound_kinds() -> impl Iterator<Item = DocumentKind> {
    DocumentKind::ALL.into_iter()
}
