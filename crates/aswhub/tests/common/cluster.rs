//! A private three-node RabbitMQ cluster for one test, run by `deploy/cluster.sh` with its own
//! node names, ports and directory (the default broker and any operator's cluster left alone),
//! deleted when dropped; a PostgreSQL schema of the test's own; and a stream of partner
//! documents through two hubs sharing that journal while cluster nodes are stopped under them.

use std::collections::BTreeSet;
use std::net::TcpListener;
use std::path::PathBuf;
use std::process::{Command, Output};
use std::time::{Duration, Instant};

use asw_journal::State;
use asw_route::names;

use super::{HUB, Stream, in_state, logs, start_hub, state};

/// `deploy/cluster.sh` of this checkout.
fn script() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../deploy/cluster.sh")
}

/// Whether every port of the cluster based at `base` is free on 127.0.0.1.
fn ports_free(base: u16) -> bool {
    (0..3u16).all(|n| {
        [base + n, base + 10_000 + n, base + 20_000 + n]
            .iter()
            .all(|&port| TcpListener::bind(("127.0.0.1", port)).is_ok())
    })
}

/// A running three-node cluster (RabbitMQ 3.10, management plugin on every node).
pub struct Cluster {
    dir: tempfile::TempDir,
    name: String,
    base: u16,
    host: String,
}

impl Cluster {
    /// Starts the three nodes and forms the cluster; panics with the script's output if it
    /// cannot. Dropping the value (also on a panic later) deletes the cluster.
    pub fn start() -> Cluster {
        let tag = uuid::Uuid::new_v4().simple().to_string();
        // AMQP ports 20000-29999, management +10000, distribution +20000: none of the default
        // broker's, nor the ephemeral ports the private brokers of other tests draw from.
        let seed = u16::from_str_radix(&tag[..4], 16).expect("hex");
        let base = (0..200u16)
            .map(|i| 20_000 + (seed.wrapping_add(i * 37) % 3_000) * 3)
            .find(|&base| ports_free(base))
            .expect("nine free ports");
        let host = Command::new("hostname")
            .arg("-s")
            .output()
            .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_owned())
            .expect("hostname -s");
        let cluster = Cluster {
            dir: tempfile::tempdir().expect("temp dir"),
            name: format!("aswt{}", &tag[..8]),
            base,
            host,
        };
        let out = cluster.run(&["start"]);
        cluster.expect_success("deploy/cluster.sh start", &out);
        cluster
    }

    /// The name of node `n` (1-3), `aswt…-n@host`.
    pub fn node(&self, n: u16) -> String {
        format!("{}-{n}@{}", self.name, self.host)
    }

    /// The node number (1-3) of a node name.
    pub fn number(&self, node: &str) -> Option<u16> {
        (1..=3).find(|&n| self.node(n) == node)
    }

    /// `amqp://guest:guest@127.0.0.1:<port of node n>`, without vhost.
    pub fn amqp_url(&self, n: u16) -> String {
        format!("amqp://guest:guest@127.0.0.1:{}", self.base + n - 1)
    }

    /// The management API of node `n`.
    pub fn management_url(&self, n: u16) -> String {
        format!("http://127.0.0.1:{}", self.base + 10_000 + n - 1)
    }

    /// Stops node `n`: its clients are disconnected, the others carry on.
    pub fn stop_node(&self, n: u16) {
        let out = self.run(&["stop-node", &n.to_string()]);
        self.expect_success("deploy/cluster.sh stop-node", &out);
    }

    /// Starts node `n` again; it rejoins the cluster.
    pub fn start_node(&self, n: u16) {
        let out = self.run(&["start-node", &n.to_string()]);
        self.expect_success("deploy/cluster.sh start-node", &out);
    }

    /// `deploy/cluster.sh status`: each node's name and whether it runs.
    pub fn status(&self) -> String {
        String::from_utf8_lossy(&self.run(&["status"]).stdout).into_owned()
    }

    fn run(&self, args: &[&str]) -> Output {
        Command::new("timeout")
            .arg("300")
            .arg("bash")
            .arg(script())
            .args(args)
            .env("ASWHUB_CLUSTER_DIR", self.dir.path())
            .env("ASWHUB_CLUSTER_NAME", &self.name)
            .env("ASWHUB_CLUSTER_PORT", self.base.to_string())
            .output()
            .expect("bash deploy/cluster.sh")
    }

    fn expect_success(&self, what: &str, out: &Output) {
        assert!(
            out.status.success(),
            "{what} failed ({}): {}{}",
            out.status,
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        let _ = self.run(&["delete"]);
    }
}

/// Documents seen in flight during a fault's window (see [`Stream::watch_in_flight`]).
struct InFlight {
    stop: std::sync::Arc<std::sync::atomic::AtomicBool>,
    thread: std::thread::JoinHandle<BTreeSet<uuid::Uuid>>,
}

impl InFlight {
    /// Ends the window (after one more look): every document seen `verified`, not `delivered`.
    fn end(self) -> BTreeSet<uuid::Uuid> {
        self.stop.store(true, std::sync::atomic::Ordering::SeqCst);
        tokio::task::block_in_place(|| self.thread.join().expect("in-flight watch"))
    }
}

/// What a run through the cluster's faults measured.
#[derive(Debug)]
pub struct ClusterRun {
    /// Documents sent.
    pub documents: usize,
    /// The node the hubs were connected to, stopped first.
    pub connected: String,
    /// The quorum queue leader stopped second.
    pub leader: String,
    /// Documents the journal had `verified`, not yet `delivered`, in each fault's window.
    pub in_flight: [usize; 2],
    /// In-flight documents the back-office received twice (the second copy marked).
    pub twice: usize,
    /// From the hubs' start until the journal had every document `delivered`.
    pub took: Duration,
}

impl std::fmt::Display for ClusterRun {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{} documents through two hubs; stopped {} (the hubs' node), then {} (the queue \
             leader); {} and {} in flight at the faults, {} delivered twice (marked); all \
             delivered {:.1?} after the start",
            self.documents,
            self.connected,
            self.leader,
            self.in_flight[0],
            self.in_flight[1],
            self.twice,
            self.took
        )
    }
}

impl Stream {
    /// The management API through the first node of `cluster` that answers.
    fn cluster_management(cluster: &Cluster) -> asw_amqp::Management {
        let urls: Vec<String> = (1..=3).map(|n| cluster.management_url(n)).collect();
        asw_amqp::Management::first_answering(&urls, "guest", "guest").expect("management API")
    }

    /// Points the hub's configuration at every node of `cluster` (`[broker] urls` and
    /// `management_urls`) and at the PostgreSQL journal `journal_url`.
    pub fn use_cluster(&self, cluster: &Cluster, journal_url: &str) {
        let text = std::fs::read_to_string(&self.config).expect("config");
        let vhost = self.testbed.options().vhost(state(HUB));
        let first = format!("url = \"{}/{vhost}\"", cluster.amqp_url(1));
        assert!(text.contains(&first), "{first} in:\n{text}");
        let urls: Vec<String> = (1..=3)
            .map(|n| format!("\"{}/{vhost}\"", cluster.amqp_url(n)))
            .collect();
        let management: Vec<String> = (1..=3)
            .map(|n| format!("\"{}\"", cluster.management_url(n)))
            .collect();
        let first_management = format!("management_url = \"{}\"", cluster.management_url(1));
        assert!(text.contains(&first_management), "{first_management}");
        let text = text
            .replace(&first, &format!("urls = [{}]", urls.join(", ")))
            .replace(
                &first_management,
                &format!("management_urls = [{}]", management.join(", ")),
            )
            .replace("path = \"journal.db\"", &format!("url = \"{journal_url}\""));
        std::fs::write(&self.config, text).expect("write config");
    }

    /// The quorum queues of the hub's vhost: name, leader and replicas.
    fn quorum_queues(&self, cluster: &Cluster) -> Vec<asw_amqp::QueueInfo> {
        let vhost = self.testbed.options().vhost(state(HUB));
        Stream::cluster_management(cluster)
            .queues(&vhost)
            .expect("queues")
            .into_iter()
            .filter(|q| q.queue_type == "quorum")
            .collect()
    }

    /// The nodes the hubs' connections (`aswhub-TH`) are on.
    fn hub_nodes(&self, cluster: &Cluster) -> BTreeSet<String> {
        self.hub_connections(cluster).into_iter().collect()
    }

    /// The node of each hub connection the management API lists.
    fn hub_connections(&self, cluster: &Cluster) -> Vec<String> {
        let vhost = self.testbed.options().vhost(state(HUB));
        Stream::cluster_management(cluster)
            .connections(&vhost)
            .unwrap_or_default()
            .into_iter()
            .filter(|c| {
                c.client_properties
                    .connection_name
                    .as_deref()
                    .is_some_and(|n| n == format!("aswhub-{HUB}"))
            })
            .map(|c| c.node)
            .collect()
    }

    /// Waits until the management API lists a connection of each of the `hubs` (it lists them a
    /// few seconds late: the hubs may have done much work by then) and returns their nodes.
    async fn wait_hubs_listed(
        &self,
        cluster: &Cluster,
        hubs: usize,
        timeout: Duration,
    ) -> BTreeSet<String> {
        let deadline = Instant::now() + timeout;
        loop {
            let on = self.hub_connections(cluster);
            if on.len() >= hubs {
                return on.into_iter().collect();
            }
            assert!(
                Instant::now() < deadline,
                "the management API did not list {hubs} hub connections within {timeout:?} \
                 (it lists {on:?}); logs:\n{}",
                logs(&self.config)
            );
            tokio::time::sleep(Duration::from_millis(500)).await;
        }
    }

    /// Waits until both hubs have a connection and every one is on a node other than `gone`
    /// (the management API lists connections a few seconds late).
    async fn wait_hubs_on_other_node(&self, cluster: &Cluster, gone: &str, timeout: Duration) {
        let deadline = Instant::now() + timeout;
        loop {
            let nodes = self.hub_nodes(cluster);
            if !nodes.is_empty() && !nodes.contains(gone) {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "the hubs did not reconnect away from {gone} within {timeout:?} (on {nodes:?}); \
                 logs:\n{}",
                logs(&self.config)
            );
            tokio::time::sleep(Duration::from_millis(500)).await;
        }
    }

    /// The partner's documents the journal has in `state`. The PostgreSQL journal blocks on a
    /// runtime of its own: off the test's reactor, opened and closed for each look.
    fn journaled(&self, state: State) -> BTreeSet<uuid::Uuid> {
        tokio::task::block_in_place(|| in_state(self.journal().as_ref(), state))
    }

    /// Starts noting every document the journal has `verified` but not `delivered`, fifty times
    /// a second, until [`InFlight::end`]: those in flight at some moment of a fault's window.
    /// On a cluster the hubs carry on on another node at once, so one look after the fault
    /// would miss documents already published again (and marked) by then.
    fn watch_in_flight(&self) -> InFlight {
        let config = self.config.clone();
        let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
        let stopping = stop.clone();
        let thread = std::thread::spawn(move || {
            let config = asw_gateway::config::HubConfig::load(&config).expect("config");
            let journal = asw_journal::open(config.journal.location()).expect("journal");
            let mut seen = BTreeSet::new();
            loop {
                let done = stopping.load(std::sync::atomic::Ordering::SeqCst);
                seen.extend(in_state(journal.as_ref(), State::Verified));
                if done {
                    return seen;
                }
                std::thread::sleep(Duration::from_millis(20));
            }
        });
        InFlight { stop, thread }
    }

    /// Waits until the journal has at least `at_least` documents `delivered`.
    async fn wait_journal_delivered(&self, at_least: usize, timeout: Duration) -> usize {
        let deadline = Instant::now() + timeout;
        loop {
            let delivered = self.journaled(State::Delivered).len();
            if delivered >= at_least {
                return delivered;
            }
            assert!(
                Instant::now() < deadline,
                "only {delivered} of {at_least} documents delivered within {timeout:?}; logs:\n{}",
                logs(&self.config)
            );
            tokio::time::sleep(Duration::from_millis(250)).await;
        }
    }

    /// Publishes every document, starts two hubs on the cluster, and once a fifth of the
    /// documents are delivered stops the node they are connected to; once they have moved and
    /// delivered more, starts it again, then stops the node leading `asw.hub.inbound` (the
    /// quorum queue `asw.partner.in` routes the partner's documents to). Every document must reach the back-office once (in-flight ones
    /// at most twice, the second copy marked), the journal must have each `delivered` once, and
    /// both hubs must drain and exit 0 on SIGTERM.
    pub async fn run_on_cluster(&self, cluster: &Cluster) -> ClusterRun {
        let queues = self.quorum_queues(cluster);
        assert!(!queues.is_empty(), "the hub's vhost has quorum queues");
        for q in &queues {
            assert_eq!(q.members.len(), 3, "{} has three replicas: {q:?}", q.name);
        }
        self.publish().await;
        let total = self.documents.len();
        let hubs = [start_hub(&self.config), start_hub(&self.config)];
        let started = Instant::now();
        self.wait_journal_delivered(total / 5, Duration::from_secs(120))
            .await;

        // The node the hubs are connected to goes away.
        let on = self
            .wait_hubs_listed(cluster, hubs.len(), Duration::from_secs(30))
            .await;
        let connected = on.iter().next().cloned().expect("the hubs are connected");
        let first = cluster.number(&connected).expect("a node of ours");
        let watch = self.watch_in_flight();
        tokio::task::block_in_place(|| cluster.stop_node(first));
        let delivered = self.journaled(State::Delivered).len();
        // The window ends with the stop: the connections broke during it, and what the hubs
        // held then stays `verified` until they have connected again and the broker has
        // delivered it again.
        let mut in_flight = watch.end();
        self.wait_hubs_on_other_node(cluster, &connected, Duration::from_secs(60))
            .await;
        let in_flight_first = in_flight.len();
        // More delivered on the other node; all of them, if the stop took so long that little
        // was left (a quiet machine delivers thousands while a node shuts down).
        self.wait_journal_delivered((delivered + total / 10).min(total), Duration::from_secs(90))
            .await;
        // Back before the next fault, so that a majority of every queue's replicas stays up.
        tokio::task::block_in_place(|| cluster.start_node(first));

        // The leader of the hub's inbound queue goes away.
        let leader = self
            .quorum_queues(cluster)
            .into_iter()
            .find(|q| q.name == names::HUB_INBOUND_QUEUE)
            .and_then(|q| q.leader)
            .expect("asw.hub.inbound has a leader");
        let second = cluster.number(&leader).expect("a node of ours");
        let watch = self.watch_in_flight();
        tokio::task::block_in_place(|| cluster.stop_node(second));
        let in_flight_second = watch.end();
        let in_flight_second_count = in_flight_second.len();
        in_flight.extend(in_flight_second);
        self.wait_journal_delivered(total, Duration::from_secs(150))
            .await;
        let took = started.elapsed();
        tokio::task::block_in_place(|| cluster.start_node(second));
        println!("{}", cluster.status());
        let copies = self.drain().await;
        let twice = tokio::task::block_in_place(|| self.check(&copies, &in_flight));
        for hub in hubs {
            hub.assert_terminates();
        }
        ClusterRun {
            documents: total,
            connected,
            leader,
            in_flight: [in_flight_first, in_flight_second_count],
            twice,
            took,
        }
    }
}
