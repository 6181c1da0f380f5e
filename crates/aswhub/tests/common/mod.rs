//! Helpers shared by the daemon tests: `aswhub run` as a child process (asw-testbed's
//! `HubProcess`), and a partner's stream of
//! signed documents into a daemon's inbound path, counted at the back-office and in the journal.

// Each test binary compiles this module and uses a part of it.
#![allow(dead_code)]

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use asw_amqp::{ConfirmingPublisher, Consumer, Outgoing, Properties};
use asw_gateway::config::HubConfig;
use asw_journal::{Direction, Filter, Journal, State};
use asw_model::sample::{self, SampleSpec};
use asw_model::{DocumentKind, MemberState};
use asw_route::{Argument, Binding, Queue, Topology, names};
use asw_sign::Signer;
use asw_testbed::{
    Testbed, TestbedOptions, marked_possible_duplicate, partner_password,
    taken_by_deduplicating_back_office,
};
use time::OffsetDateTime;
use uuid::Uuid;

pub mod cluster;
pub mod rabbitmq;

/// A member state by code.
pub fn state(code: &str) -> MemberState {
    MemberState::from_alpha2(code).expect("member state")
}

pub use asw_testbed::HubProcess;
pub use asw_testbed::process::logs;

/// `aswhub run` of this build with `config`, as a [`HubProcess`].
pub fn start_hub(config: &Path) -> HubProcess {
    HubProcess::start(Path::new(env!("CARGO_BIN_EXE_aswhub")), config).expect("start aswhub")
}

pub use asw_testbed::Vhosts;

/// The back-office queue the stream tests count in: bound to the hub's `asw.inbound` for the
/// partner's documents and consumed by nobody until the end, so every copy the hub delivered is
/// still there to count, whatever happened to connections meanwhile.
pub const COUNT_QUEUE: &str = "backoffice.count";

/// A partner (VN) and a hub (TH) run as `aswhub run`, with documents signed by the partner ready
/// to publish into the hub's `asw.partner.in`.
pub struct Stream {
    /// The testbed (no hub in-process: both member states are external).
    pub testbed: Testbed,
    /// Deletes the vhosts if the test fails.
    pub vhosts: Vhosts,
    /// Keys, configuration, journal and daemon logs.
    pub dir: tempfile::TempDir,
    /// The daemon's configuration file.
    pub config: PathBuf,
    /// The documents: message id and signed bytes.
    pub documents: Vec<(Uuid, Vec<u8>)>,
    /// How long signing them took.
    pub signing: Duration,
}

/// The partner and the receiving hub.
pub const PARTNER: &str = "VN";
/// The hub under test.
pub const HUB: &str = "TH";

impl Stream {
    /// Sets up the vhosts on the broker at `amqp` (no vhost, admin credentials) with the
    /// management API at `management_url`, and signs `count` documents as the partner.
    pub async fn prepare(amqp: &str, management_url: &str, count: usize) -> Stream {
        let dir = tempfile::tempdir().expect("temp dir");
        let (partner, hub) = (state(PARTNER), state(HUB));
        let mut options = TestbedOptions::local(vec![partner, hub], dir.path().to_owned());
        let tag = Uuid::new_v4().simple().to_string();
        options.vhost_prefix = format!("aswt-{}-", &tag[..10]);
        options.amqp = amqp.to_owned();
        options.management_url = management_url.to_owned();
        options.external = vec![partner, hub];
        // Receipts for the partner stay in the hub's vhost: nobody runs the partner's hub.
        options.pull = true;
        options.workers = 2;
        let vhosts = Vhosts::of(&options);
        let testbed = Testbed::start(options).await.expect("testbed");
        let config = testbed.config_file(hub).expect("hub config").to_owned();
        let admin = asw_amqp::connect(&hub_url(&testbed, "guest", "guest"), "test admin")
            .await
            .expect("connect");
        let topology = Topology {
            exchanges: Vec::new(),
            queues: vec![Queue {
                name: COUNT_QUEUE.into(),
                arguments: vec![("x-queue-type".into(), Argument::Str("quorum".into()))],
            }],
            bindings: vec![Binding {
                exchange: names::INBOUND_EXCHANGE.into(),
                queue: COUNT_QUEUE.into(),
                routing_key: format!("formd.{PARTNER}"),
            }],
            users: Vec::new(),
            policies: Vec::new(),
        };
        asw_amqp::declare(&admin.open_channel().await.expect("channel"), &topology)
            .await
            .expect("declare the count queue");
        let _ = admin.close().await;
        let started = Instant::now();
        let key_dir = dir.path().join(partner.lower());
        let documents = tokio::task::spawn_blocking(move || sign_documents(&key_dir, count))
            .await
            .expect("signing");
        Stream {
            testbed,
            vhosts,
            dir,
            config,
            documents,
            signing: started.elapsed(),
        }
    }

    /// Publishes every document into the hub's `asw.partner.in` as `partner-VN`, with
    /// `user_id`, in batches that the broker confirms.
    async fn publish(&self) {
        let partner = state(PARTNER);
        let user = names::partner_user(partner);
        let url = hub_url(&self.testbed, &user, &partner_password(partner));
        let connection = asw_amqp::connect(&url, "test partner")
            .await
            .expect("connect as the partner");
        let mut publisher =
            ConfirmingPublisher::new(connection.open_channel().await.expect("channel"))
                .await
                .expect("publisher");
        let properties = Properties::new()
            .with_content_type(names::CONTENT_TYPE_XML)
            .with_user_id(user);
        for chunk in self.documents.chunks(250) {
            let batch: Vec<Outgoing> = chunk
                .iter()
                .map(|(_, bytes)| Outgoing {
                    exchange: names::PARTNER_IN_EXCHANGE.into(),
                    routing_key: PARTNER.into(),
                    body: bytes.clone(),
                    properties: properties.clone(),
                })
                .collect();
            for outcome in publisher.publish_batch(&batch).await {
                outcome.expect("the broker confirmed the partner's document");
            }
        }
        let _ = connection.close().await;
    }

    /// The hub's journal (the SQLite file of its configuration), opened beside the daemon.
    pub fn journal(&self) -> Box<dyn Journal> {
        let config = HubConfig::load(&self.config).expect("config");
        asw_journal::open(config.journal.location()).expect("journal")
    }

    /// Messages of the partner's in the count queue (a passive declare: exact, not the
    /// management API's delayed figure).
    async fn counted(&self) -> u32 {
        let url = hub_url(&self.testbed, "guest", "guest");
        let connection = asw_amqp::connect(&url, "test count")
            .await
            .expect("connect");
        let channel = connection.open_channel().await.expect("channel");
        let ready = asw_amqp::ready_messages(&channel, COUNT_QUEUE)
            .await
            .expect("count");
        let _ = connection.close().await;
        ready
    }

    /// Waits until at least `at_least` documents reached the count queue.
    async fn wait_counted(&self, at_least: u32, timeout: Duration) -> u32 {
        let deadline = Instant::now() + timeout;
        loop {
            let counted = self.counted().await;
            if counted >= at_least {
                return counted;
            }
            assert!(
                Instant::now() < deadline,
                "only {counted} of {at_least} documents delivered within {timeout:?}; logs:\n{}",
                logs(&self.config)
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// Waits until the journal has every document `delivered`.
    async fn wait_all_delivered(&self, timeout: Duration) {
        let journal = self.journal();
        let deadline = Instant::now() + timeout;
        loop {
            let delivered = in_state(journal.as_ref(), State::Delivered).len();
            if delivered == self.documents.len() {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "only {delivered} of {} documents delivered within {timeout:?}; logs:\n{}",
                self.documents.len(),
                logs(&self.config)
            );
            tokio::time::sleep(Duration::from_millis(500)).await;
        }
    }

    /// Takes everything from the count queue: the copies of each message id that arrived, in
    /// order, each as whether the hub marked it a possible duplicate.
    async fn drain(&self) -> BTreeMap<String, Vec<bool>> {
        let url = hub_url(&self.testbed, "guest", "guest");
        let connection = asw_amqp::connect(&url, "test back-office")
            .await
            .expect("connect");
        let mut consumer = Consumer::start(
            connection.open_channel().await.expect("channel"),
            COUNT_QUEUE,
            500,
            "test back-office",
        )
        .await
        .expect("consume");
        let mut copies: BTreeMap<String, Vec<bool>> = BTreeMap::new();
        while let Ok(Some(Ok(delivery))) =
            tokio::time::timeout(Duration::from_secs(3), consumer.next()).await
        {
            let id = delivery
                .message
                .properties
                .header(names::HEADER_MESSAGE_ID)
                .and_then(|v| v.as_str())
                .unwrap_or("(none)")
                .to_owned();
            let marked = marked_possible_duplicate(&delivery.message.properties);
            copies.entry(id).or_default().push(marked);
            delivery.acker.ack().await.expect("ack");
        }
        let _ = connection.close().await;
        copies
    }

    /// Checks the outcome: every document reached the back-office; those the hub had in flight
    /// (`in_flight`: journaled `verified`, not yet `delivered`, when the fault struck) at most
    /// twice, every other one exactly once; a back-office that drops the copies marked as
    /// possible duplicates of an id it has taken takes every document exactly once; and the
    /// journal has each `delivered` exactly once. Returns the message ids delivered twice.
    fn check(&self, copies: &BTreeMap<String, Vec<bool>>, in_flight: &BTreeSet<Uuid>) -> usize {
        let sent: BTreeSet<String> = self
            .documents
            .iter()
            .map(|(id, _)| id.to_string())
            .collect();
        let arrived: BTreeSet<String> = copies.keys().cloned().collect();
        let missing: Vec<&String> = sent.difference(&arrived).take(5).collect();
        let unknown: Vec<&String> = arrived.difference(&sent).take(5).collect();
        assert!(
            missing.is_empty(),
            "{} documents never reached the back-office, e.g. {missing:?}",
            sent.difference(&arrived).count()
        );
        assert!(unknown.is_empty(), "unexpected messages: {unknown:?}");
        let mut twice = 0;
        for (id, marks) in copies {
            let n = marks.len();
            let taken = taken_by_deduplicating_back_office(marks.iter().copied());
            assert_eq!(
                taken, 1,
                "{id}: copies marked as possible duplicates {marks:?}; a back-office dropping the \
                 marked copies of ids it has taken would take it {taken} times"
            );
            let was_in_flight = id.parse::<Uuid>().is_ok_and(|id| in_flight.contains(&id));
            if was_in_flight {
                assert!(n <= 2, "{id} (in flight at the fault) arrived {n} times");
                twice += usize::from(n == 2);
            } else {
                assert_eq!(n, 1, "{id} arrived {n} times");
            }
        }
        let journal = self.journal();
        let delivered: BTreeSet<String> = in_state(journal.as_ref(), State::Delivered)
            .iter()
            .map(Uuid::to_string)
            .collect();
        assert_eq!(delivered, sent, "the journal has every document delivered");
        for (id, _) in &self.documents {
            let history = journal.history(Direction::Inbound, *id).expect("history");
            let entered = history.iter().filter(|t| t.to == State::Delivered).count();
            assert_eq!(entered, 1, "{id} entered `delivered` {entered} times");
        }
        twice
    }

    /// Publishes every document, starts the daemon, and once 30% reached the back-office
    /// strikes with `fault`; takes note of what the journal has in flight, lets `recover` repair
    /// things, waits until the journal has every document `delivered`, then counts and checks
    /// (see [`check`](Self::check)) and stops the daemon with SIGTERM (it must exit 0).
    pub async fn run_through(
        &self,
        fault: impl FnOnce(&mut HubProcess),
        recover: impl FnOnce(&mut HubProcess),
    ) -> FaultRun {
        let published = Instant::now();
        self.publish().await;
        let publishing = published.elapsed();
        let mut hub = start_hub(&self.config);
        let flowing = Instant::now();
        let share = u32::try_from(self.documents.len() * 3 / 10).expect("count");
        self.wait_counted(share, Duration::from_secs(180)).await;
        let struck = Instant::now();
        fault(&mut hub);
        // Documents journaled `verified` but not `delivered` may have reached the back-office
        // already (the broker had them, the hub did not hear its confirm or died before it
        // journaled `delivered`): the only ones a second pass may deliver again.
        let journal = self.journal();
        let in_flight = in_state(journal.as_ref(), State::Verified);
        let delivered_at_fault = in_state(journal.as_ref(), State::Delivered).len();
        drop(journal);
        recover(&mut hub);
        let recovery = struck.elapsed();
        self.wait_all_delivered(Duration::from_secs(300)).await;
        let took = flowing.elapsed();
        let copies = self.drain().await;
        let twice = self.check(&copies, &in_flight);
        hub.assert_terminates();
        FaultRun {
            documents: self.documents.len(),
            signing: self.signing,
            publishing,
            delivered_at_fault,
            in_flight: in_flight.len(),
            recovery,
            took,
            twice,
        }
    }

    /// Stops the testbed and deletes its vhosts.
    pub async fn clean(self) {
        self.testbed.stop_and_clean().await;
        drop(self.vhosts);
    }
}

/// What a run through a fault measured.
#[derive(Debug)]
pub struct FaultRun {
    /// Documents sent.
    pub documents: usize,
    /// Time to sign them.
    pub signing: Duration,
    /// Time to publish them.
    pub publishing: Duration,
    /// Documents the journal had `delivered` right after the fault.
    pub delivered_at_fault: usize,
    /// Documents it had `verified`, not yet `delivered`.
    pub in_flight: usize,
    /// Time from the fault to the end of the recovery.
    pub recovery: Duration,
    /// Time from the daemon's first start until the journal had every document `delivered`.
    pub took: Duration,
    /// In-flight documents the back-office received twice.
    pub twice: usize,
}

impl std::fmt::Display for FaultRun {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{} documents (signed in {:.1?}, published in {:.1?}); fault after {} delivered with \
             {} in flight, recovered in {:.1?}; all delivered {:.1?} after the first start; \
             {} in-flight documents delivered twice, the second copy marked a possible duplicate; every other exactly once",
            self.documents,
            self.signing,
            self.publishing,
            self.delivered_at_fault,
            self.in_flight,
            self.recovery,
            self.took,
            self.twice,
        )
    }
}

/// Inbound document ids of the partner's the journal has in `state`.
pub fn in_state(journal: &dyn Journal, state: State) -> BTreeSet<Uuid> {
    let filter = Filter {
        direction: Some(Direction::Inbound),
        kind: Some(DocumentKind::FormD),
        state: Some(state),
        limit: u32::MAX,
        ..Filter::default()
    };
    journal
        .list(&filter)
        .expect("journal list")
        .iter()
        .map(|m| m.message_id())
        .collect()
}

/// The AMQP URL of the hub's vhost as `user`.
fn hub_url(testbed: &Testbed, user: &str, password: &str) -> String {
    let options = testbed.options();
    let host = options
        .amqp
        .split_once("://")
        .map_or(options.amqp.as_str(), |(_, rest)| {
            rest.rsplit_once('@').map_or(rest, |(_, host)| host)
        });
    format!(
        "amqp://{user}:{password}@{host}/{}",
        options.vhost(state(HUB))
    )
}

/// Makes and signs `count` e-Form Ds from the partner to the hub, each with its own message id,
/// on as many threads as there are cores (a signer is not `Send`: one per thread).
fn sign_documents(key_dir: &Path, count: usize) -> Vec<(Uuid, Vec<u8>)> {
    let key = std::fs::read(key_dir.join("key.pem")).expect("partner key");
    let cert = std::fs::read(key_dir.join("cert.pem")).expect("partner certificate");
    let threads = std::thread::available_parallelism().map_or(2, usize::from);
    let per_thread = count.div_ceil(threads);
    let created_at = OffsetDateTime::now_utc();
    std::thread::scope(|scope| {
        let workers: Vec<_> = (0..threads)
            .map(|t| {
                let (key, cert) = (&key, &cert);
                scope.spawn(move || {
                    let signer = Signer::new(key, cert).expect("signer");
                    let first = t * per_thread;
                    let last = count.min(first + per_thread);
                    (first..last)
                        .map(|i| {
                            let spec = SampleSpec {
                                kind: DocumentKind::FormD,
                                from: state(PARTNER),
                                to: state(HUB),
                                items: 1,
                                seed: Uuid::new_v4().as_u64_pair().0 ^ i as u64,
                                created_at,
                            };
                            let document = sample::message(&spec);
                            let xml = document.to_xml().expect("xml");
                            let signed = signer.sign(xml.as_bytes()).expect("sign");
                            (document.header.message_id, signed)
                        })
                        .collect::<Vec<_>>()
                })
            })
            .collect();
        workers
            .into_iter()
            .flat_map(|w| w.join().expect("signing thread"))
            .collect()
    })
}
