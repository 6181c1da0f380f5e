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

use asw_amqp::{AmqpError, Backoff, connect_any_tls_with_backoff};
use asw_journal::Journal;
use asw_model::{DocumentKind, Header, MemberState};
use asw_sign::TrustStore;
use time::OffsetDateTime;
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;
use tracing::{info, warn};

use crate::claims::Abandoned;
use crate::config::HubConfig;
use crate::lanes::{Pipeline, consume};
use crate::metrics::{self, Metrics};
use crate::pool::{Pool, PoolError};
use crate::process::{Identity, Worker, WorkerError};
use crate::work::OnPool;

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
    /// The kinds directory could not be installed (a kind this process knows differently).
    #[error("kinds: {0}")]
    Kinds(asw_model::ModelError),
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
    /// The IPPC ePhyto Hub client could not be set up from `[ephyto_hub]`.
    #[error("ephyto_hub: {0}")]
    EphytoHub(String),
    /// A thread of the hub could not be started.
    #[error("cannot start thread {name}: {source}")]
    Thread {
        /// The thread's name.
        name: &'static str,
        /// The I/O error.
        source: std::io::Error,
    },
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
    pub(crate) abandoned: Arc<Abandoned>,
    trust: Arc<TrustStore>,
    pub(crate) journal: Arc<dyn Journal>,
    /// The CPU workers (libxml2, xmlsec): `limits.workers` threads, each with its own state.
    workers: Arc<Pool<Worker>>,
    /// The threads that run the steps of the deliveries in progress, one for each, handing the
    /// CPU work to the workers and waiting on the journal: so a worker never waits for a
    /// commit, and the journal writes of all deliveries in progress can share one.
    steps: Pool<()>,
    /// The thread that journals the moves confirms stand for, many documents' in one batch, on
    /// a journal whose batch is one commit (see [`crate::mover`]).
    pub(crate) mover: Option<crate::mover::Mover>,
    /// The broker user of the hub itself.
    pub(crate) own_user: String,
    /// The back-offices with identities of their own, shared with each outbound step.
    pub(crate) back_offices: Arc<[crate::config::BackOfficeConfig]>,
    /// Counters and gauges.
    pub(crate) metrics: Arc<Metrics>,
    /// The bound metrics listener, until `run` starts serving it.
    exporter: std::sync::Mutex<Option<std::net::TcpListener>>,
    /// Where the metrics are served, when they are.
    metrics_address: Option<std::net::SocketAddr>,
    /// TLS and token of the HTTP server.
    http: crate::http::Options,
    /// Routes added to the HTTP server by [`Hub::add_routes`] before `run` serves it.
    extra_routes: std::sync::Mutex<axum::Router>,
    /// One channel for each partner, and an IPPC channel for each partner some of whose
    /// documents go through the IPPC ePhyto Hub.
    channels: Vec<Arc<dyn crate::channel::PartnerChannel>>,
    /// TLS of the connections to the local broker.
    broker_tls: asw_amqp::ClientTls,
    /// The IPPC ePhyto Hub's client, when a partner's kind goes through it.
    ippc_client: Option<Arc<crate::channel::ippc::HubClient>>,
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

impl crate::http::Probe for Inner {
    fn metrics(&self) -> String {
        self.render_metrics()
    }

    fn readiness(&self) -> Vec<crate::http::Check> {
        let connected = self.metrics.is_broker_connected();
        let journal = self.journal.probe_write();
        let certificates = self.trust.snapshot().len();
        vec![
            crate::http::Check {
                name: "broker",
                ok: connected,
                detail: if connected {
                    "session up".into()
                } else {
                    "no broker session (connecting)".into()
                },
            },
            crate::http::Check {
                name: "journal",
                ok: journal.is_ok(),
                detail: match journal {
                    Ok(()) => "takes writes".into(),
                    Err(e) => e.to_string(),
                },
            },
            crate::http::Check {
                name: "trust",
                ok: certificates > 0,
                detail: format!("{certificates} partner certificate(s) trusted"),
            },
        ]
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
        // The kinds of the configured directory join the process's before any validator is
        // compiled (the workers below compile theirs with every known kind's XSD).
        if let Some(dir) = &config.kinds_dir {
            asw_schema::install_kinds(dir).map_err(HubError::Kinds)?;
        }
        let identity = Arc::new(Identity {
            country: config.country,
            partners: config.all_partners().into_iter().collect::<BTreeSet<_>>(),
            agreed: Some(Arc::new(config.partner_table.clone())),
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
        let mover = journal
            .batches()
            .then(|| crate::mover::Mover::start(journal.clone()))
            .transpose()
            .map_err(|source| HubError::Thread {
                name: "asw-mover",
                source,
            })?;
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
        let http = match metrics_address {
            Some(address) => crate::http::Options::from_config(&config.metrics).map_err(|e| {
                HubError::Metrics {
                    address,
                    source: std::io::Error::other(format!("metrics.cert, metrics.key: {e}")),
                }
            })?,
            None => crate::http::Options::default(),
        };
        let mut channels: Vec<Arc<dyn crate::channel::PartnerChannel>> = config
            .partners
            .iter()
            .map(|(&partner, p)| crate::channel::for_partner(partner, p))
            .collect::<Result<_, _>>()?;
        let ippc_client = crate::channel::ippc_client(&config)?;
        channels.extend(crate::channel::ippc_channels(&config, ippc_client.as_ref()));
        Ok(Hub {
            inner: Arc::new(Inner {
                back_offices: config.back_offices.clone().into(),
                config,
                abandoned: Arc::default(),
                trust,
                journal,
                workers,
                steps,
                mover,
                own_user,
                metrics: Arc::default(),
                exporter: std::sync::Mutex::new(exporter),
                http,
                extra_routes: std::sync::Mutex::new(axum::Router::new()),
                metrics_address,
                channels,
                broker_tls,
                ippc_client,
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
            if let Some(client) = &self.inner.ippc_client
                && !config.ippc_senders().is_empty()
            {
                tasks.spawn(crate::channel::ippc::importing::run(
                    inner.clone(),
                    client.clone(),
                    connection.clone(),
                    session.clone(),
                ));
            }
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

    /// The trust store as it is now (it changes when re-read), for the console.
    pub fn trust(&self) -> Arc<asw_sign::TrustSnapshot> {
        self.inner.trust.snapshot()
    }

    /// The configuration the hub runs with.
    pub fn config(&self) -> &HubConfig {
        &self.inner.config
    }

    /// The routes of the hub's HTTP server (`/metrics`, `/healthz`, `/readyz`), for a caller
    /// that adds its own (the operator console) and serves them itself.
    pub fn routes(&self) -> axum::Router {
        crate::http::routes(self.inner.clone())
    }

    /// Adds `routes` (the operator console's, which has its own login) to the HTTP server,
    /// beside `/metrics`, `/healthz` and `/readyz`, behind the same TLS but not the bearer token
    /// (a browser does not send one). Takes effect if called before [`Hub::run`].
    pub fn add_routes(&self, routes: axum::Router) {
        let mut extra = self
            .inner
            .extra_routes
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        *extra = std::mem::take(&mut *extra).merge(routes);
    }

    /// Starts serving `GET /metrics` and the health probes until `shutdown`, the first time
    /// `run` is called.
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
                for warning in self.inner.config.metrics.warnings() {
                    warn!("{warning}");
                }
                info!(
                    address = ?self.inner.metrics_address,
                    tls = self.inner.http.tls.is_some(),
                    token = self.inner.http.token.is_some(),
                    "Serving metrics and health probes."
                );
                let extra = std::mem::take(
                    &mut *self
                        .inner
                        .extra_routes
                        .lock()
                        .unwrap_or_else(std::sync::PoisonError::into_inner),
                );
                tokio::spawn(crate::http::serve(
                    listener,
                    self.routes(),
                    extra,
                    self.inner.http.clone(),
                    shutdown.clone(),
                ));
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

pub(crate) fn now() -> OffsetDateTime {
    OffsetDateTime::now_utc()
}

pub(crate) fn record_span(header: &Header, partner: MemberState) {
    let span = tracing::Span::current();
    span.record("message_id", tracing::field::display(header.message_id));
    span.record("partner", partner.code());
    span.record("kind", header.kind.as_str());
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

/// Kinds a back-office may send: every kind this process knows (the shipped ones and the
/// configured kinds directory's, installed by [`Hub::new`]).
pub fn outbound_kinds() -> impl Iterator<Item = DocumentKind> {
    DocumentKind::all().into_iter()
}
