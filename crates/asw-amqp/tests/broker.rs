//! Tests against the real local RabbitMQ (`bash deploy/setup.sh` starts it): each test works in
//! a vhost of its own, created through the management API and deleted at the end, also when the
//! test fails, so tests run in parallel and leave nothing behind but the shared partner users.

use std::collections::HashSet;
use std::future::Future;
use std::time::{Duration, Instant};

use asw_amqp::{
    AmqpError, Backoff, ConfirmingPublisher, Connection, Consumer, Delivery, HeaderValue,
    Management, Outgoing, Properties, apply, connect, connect_any_with_backoff,
    connect_with_backoff, declare, with_vhost,
};
use asw_model::MemberState;
use asw_route::names::{
    self, CONTENT_TYPE_XML, HEADER_ATTEMPTS, HEADER_STAGE, HUB_INBOUND_QUEUE, HUB_OUTBOUND_QUEUE,
    OUTBOUND_EXCHANGE, PARTNER_IN_EXCHANGE, PARTNER_OUT_EXCHANGE,
};
use asw_route::{Argument, RetryPolicy, Topology, User};
use lapin::options::BasicGetOptions;

/// The broker's AMQP listener, without a vhost (override with `ASWHUB_TEST_AMQP_URL`).
fn amqp_url() -> String {
    std::env::var("ASWHUB_TEST_AMQP_URL")
        .unwrap_or_else(|_| "amqp://guest:guest@127.0.0.1:5672".into())
}

/// The management API (override with `ASWHUB_TEST_MANAGEMENT_URL`).
fn management_url() -> String {
    std::env::var("ASWHUB_TEST_MANAGEMENT_URL").unwrap_or_else(|_| "http://127.0.0.1:15672".into())
}

/// The management API, as guest.
fn management() -> Management {
    Management::new(&management_url(), "guest", "guest")
}

/// The longest any test may take.
const TEST_TIMEOUT: Duration = Duration::from_secs(90);
/// The longest one wait for the broker may take.
const WAIT: Duration = Duration::from_secs(15);

/// Runs a test body, failing it (not hanging) if it takes longer than [`TEST_TIMEOUT`].
async fn bounded<T>(body: impl Future<Output = T>) -> T {
    tokio::time::timeout(TEST_TIMEOUT, body)
        .await
        .expect("the test took longer than its time limit")
}

/// Awaits one step, failing the test after [`WAIT`].
async fn step<T>(what: &str, future: impl Future<Output = T>) -> T {
    tokio::time::timeout(WAIT, future)
        .await
        .unwrap_or_else(|_| panic!("timed out: {what}"))
}

/// A vhost of the test's own, deleted when dropped.
struct TestVhost {
    management: Management,
    name: String,
}

impl TestVhost {
    fn new() -> TestVhost {
        let management = management();
        let name = format!("asw-test-{}", uuid::Uuid::new_v4().simple());
        management
            .ensure_vhost(&name)
            .expect("create the test vhost");
        TestVhost { management, name }
    }

    /// The AMQP URL of the vhost, as guest.
    fn url(&self) -> String {
        with_vhost(&amqp_url(), &self.name).expect("url")
    }

    /// The AMQP URL of the vhost, as `user`.
    fn url_as(&self, user: &str, password: &str) -> String {
        let mut url = url::Url::parse(&self.url()).expect("url");
        url.set_username(user).expect("user");
        url.set_password(Some(password)).expect("password");
        url.into()
    }

    /// Applies `topology` with [`test_password`].
    async fn apply(&self, topology: &Topology) {
        step(
            "apply the topology",
            apply(
                &self.management,
                &amqp_url(),
                &self.name,
                topology,
                &test_password,
            ),
        )
        .await
        .expect("apply the topology");
    }

    async fn connect(&self) -> Connection {
        step("connect", connect(&self.url(), "asw-amqp test"))
            .await
            .expect("connect as guest")
    }
}

impl Drop for TestVhost {
    fn drop(&mut self) {
        if let Err(error) = self.management.delete_vhost(&self.name) {
            eprintln!("cannot delete test vhost {}: {error}", self.name);
        }
    }
}

/// Partner passwords in tests. Users are broker-wide, so every test sets the same ones, and
/// they are those of asw-gateway's testbed (`testbed::partner_password`): test runs of either
/// crate on one broker must not lock the other's partners out.
fn test_password(user: &User) -> String {
    user.partner
        .map(|p| format!("aswhub-testbed-{}", p.lower()))
        .unwrap_or_default()
}

fn state(code: &str) -> MemberState {
    MemberState::from_alpha2(code).expect("member state")
}

/// The hub of Viet Nam with partners Thailand and Singapore, retrying once after 200 ms.
fn hub_topology() -> Topology {
    let retry = RetryPolicy {
        delays_ms: vec![200],
        max_attempts: 3,
    };
    Topology::hub(
        state("VN"),
        &[state("TH"), state("SG")],
        &retry,
        asw_route::DEFAULT_DELIVERY_LIMIT,
    )
}

async fn publisher(connection: &Connection) -> ConfirmingPublisher {
    let channel = connection.open_channel().await.expect("channel");
    ConfirmingPublisher::new(channel)
        .await
        .expect("confirm mode")
}

async fn consumer(connection: &Connection, queue: &str) -> Consumer {
    let channel = connection.open_channel().await.expect("channel");
    Consumer::start(channel, queue, 200, "asw-amqp-test")
        .await
        .expect("consume")
}

async fn next(consumer: &mut Consumer) -> Delivery {
    step("receive a delivery", consumer.next())
        .await
        .expect("consumer cancelled")
        .expect("delivery")
}

/// Whether `queue` is empty right now (a `basic.get` finds nothing).
async fn is_empty(connection: &Connection, queue: &str) -> bool {
    let channel = connection.open_channel().await.expect("channel");
    let got = step(
        "basic.get",
        channel
            .lapin()
            .basic_get(queue.into(), BasicGetOptions { no_ack: false }),
    )
    .await
    .expect("basic.get");
    channel.close().await.expect("close");
    got.is_none()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn applies_the_hub_topology_idempotently_and_routes() {
    let vhost = TestVhost::new();
    bounded(async {
        let topology = hub_topology();
        vhost.apply(&topology).await;
        vhost.apply(&topology).await;

        let management = management();
        let queues = management.queues(&vhost.name).expect("list queues");
        assert_eq!(queues.len(), topology.queues.len(), "{queues:#?}");
        for queue in &topology.queues {
            let info = queues
                .iter()
                .find(|q| q.name == queue.name)
                .unwrap_or_else(|| panic!("queue {} missing", queue.name));
            assert_eq!(info.queue_type, "quorum", "{}", queue.name);
            assert!(info.durable, "{}", queue.name);
        }
        let retry = queues
            .iter()
            .find(|q| q.name == "asw.retry.outbound.200")
            .expect("retry queue");
        assert_eq!(retry.arguments["x-message-ttl"], 200);
        assert_eq!(
            retry.arguments["x-dead-letter-routing-key"],
            HUB_OUTBOUND_QUEUE
        );

        let connection = vhost.connect().await;
        let mut publisher = publisher(&connection).await;
        let properties = Properties::new()
            .with_message_id("msg-formd-1")
            .with_content_type(CONTENT_TYPE_XML)
            .with_user_id("guest")
            .with_header(HEADER_STAGE, names::stage::OUTBOUND)
            .with_header(HEADER_ATTEMPTS, 1i64);
        publisher
            .publish(OUTBOUND_EXCHANGE, "formd", b"<FormD/>", &properties)
            .await
            .expect("publish to asw.outbound");
        for i in 0..2 {
            let signed = properties.clone().with_message_id(format!("msg-th-{i}"));
            publisher
                .publish(PARTNER_OUT_EXCHANGE, "TH", b"<Signed/>", &signed)
                .await
                .expect("publish to asw.partner.out");
        }

        // The management API sees the two messages for Thailand (its counts lag a few seconds).
        let started = Instant::now();
        loop {
            let queues = management.queues(&vhost.name).expect("list queues");
            let th = queues
                .iter()
                .find(|q| q.name == "asw.partner.out.TH")
                .expect("TH queue");
            if th.messages == 2 && th.messages_ready == 2 && th.messages_unacknowledged == 0 {
                break;
            }
            assert!(
                started.elapsed() < WAIT,
                "counts never showed 2 ready: {th:?}"
            );
            tokio::time::sleep(Duration::from_millis(500)).await;
        }

        let mut outbound = consumer(&connection, HUB_OUTBOUND_QUEUE).await;
        let delivery = next(&mut outbound).await;
        assert_eq!(delivery.message.body, b"<FormD/>");
        assert_eq!(delivery.message.exchange, OUTBOUND_EXCHANGE);
        assert_eq!(delivery.message.routing_key, "formd");
        assert!(!delivery.message.redelivered);
        assert_eq!(delivery.message.properties, properties);
        delivery.acker.ack().await.expect("ack");

        let mut th = consumer(&connection, "asw.partner.out.TH").await;
        for i in 0..2 {
            let delivery = next(&mut th).await;
            assert_eq!(delivery.message.routing_key, "TH");
            assert_eq!(
                delivery.message.properties.message_id.as_deref(),
                Some(format!("msg-th-{i}").as_str())
            );
            delivery.acker.ack().await.expect("ack");
        }
        assert!(is_empty(&connection, "asw.partner.out.SG").await);
        assert!(is_empty(&connection, HUB_OUTBOUND_QUEUE).await);
        connection.close().await.expect("close");
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_queue_declared_with_other_arguments_is_named_in_the_error() {
    let vhost = TestVhost::new();
    bounded(async {
        let topology = hub_topology();
        vhost.apply(&topology).await;

        let mut changed = topology.clone();
        let retry = changed
            .queues
            .iter_mut()
            .find(|q| q.name == "asw.retry.inbound.200")
            .expect("retry queue");
        for (name, value) in &mut retry.arguments {
            if name == "x-message-ttl" {
                *value = Argument::Int(300);
            }
        }
        let connection = vhost.connect().await;
        let channel = connection.open_channel().await.expect("channel");
        let error = declare(&channel, &changed).await.expect_err("inequivalent");
        match &error {
            AmqpError::Inequivalent {
                vhost: in_vhost,
                what,
                name,
                argument,
                ..
            } => {
                assert_eq!(in_vhost, &vhost.name);
                assert_eq!(*what, "queue");
                assert_eq!(name, "asw.retry.inbound.200");
                assert_eq!(argument, "x-message-ttl");
            }
            other => panic!("unexpected error: {other:?}"),
        }
        assert!(!error.is_transient());
        let text = error.to_string();
        assert!(
            text.contains("asw.retry.inbound.200") && text.contains("x-message-ttl"),
            "{text}"
        );
        assert!(!channel.is_open(), "the broker closes the channel");
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unroutable_publishes_are_errors() {
    let vhost = TestVhost::new();
    bounded(async {
        vhost.apply(&hub_topology()).await;
        let connection = vhost.connect().await;
        let mut publisher = publisher(&connection).await;
        let properties = Properties::new().with_message_id("to-nowhere");

        // No queue for Malaysia in a hub exchanging with Thailand and Singapore.
        let error = publisher
            .publish(PARTNER_OUT_EXCHANGE, "MY", b"<x/>", &properties)
            .await
            .expect_err("unroutable");
        match &error {
            AmqpError::Returned {
                exchange,
                routing_key,
                message_id,
                reply_code,
                ..
            } => {
                assert_eq!(exchange, PARTNER_OUT_EXCHANGE);
                assert_eq!(routing_key, "MY");
                assert_eq!(message_id.as_deref(), Some("to-nowhere"));
                assert_eq!(*reply_code, 312);
            }
            other => panic!("unexpected error: {other:?}"),
        }
        assert!(!error.is_transient());

        // The channel survives a return; a mixed batch charges the return to its message.
        let batch: Vec<Outgoing> = ["TH", "MY", "SG"]
            .iter()
            .map(|key| Outgoing {
                exchange: PARTNER_OUT_EXCHANGE.into(),
                routing_key: (*key).into(),
                body: format!("<to{key}/>").into_bytes(),
                properties: Properties::new().with_message_id(format!("batch-{key}")),
            })
            .collect();
        let outcomes = publisher.publish_batch(&batch).await;
        assert!(outcomes[0].is_ok(), "{:?}", outcomes[0]);
        assert!(
            matches!(&outcomes[1], Err(AmqpError::Returned { message_id, .. }) if message_id.as_deref() == Some("batch-MY")),
            "{:?}",
            outcomes[1]
        );
        assert!(outcomes[2].is_ok(), "{:?}", outcomes[2]);
        publisher
            .publish(OUTBOUND_EXCHANGE, "formd", b"<ok/>", &Properties::new())
            .await
            .expect("a routable publish after a return");

        // An unroutable publish abandoned before its confirm (its future dropped after one
        // poll) is not charged to the next publish.
        let abandoned = publisher.publish(PARTNER_OUT_EXCHANGE, "MY", b"<gone/>", &properties);
        let _ = tokio::time::timeout(Duration::ZERO, abandoned).await;
        publisher
            .publish(OUTBOUND_EXCHANGE, "formd", b"<ok/>", &Properties::new())
            .await
            .expect("a routable publish after an abandoned unroutable one");
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pipelined_confirms_deliver_each_message_once() {
    const COUNT: usize = 1_000;
    let vhost = TestVhost::new();
    bounded(async {
        vhost.apply(&hub_topology()).await;
        let connection = vhost.connect().await;
        let mut publisher = publisher(&connection).await;
        let batch: Vec<Outgoing> = (0..COUNT)
            .map(|i| Outgoing {
                exchange: OUTBOUND_EXCHANGE.into(),
                routing_key: "formd".into(),
                body: format!("<FormD n=\"{i}\"/>").into_bytes(),
                properties: Properties::new()
                    .with_message_id(format!("m-{i}"))
                    .with_content_type(CONTENT_TYPE_XML),
            })
            .collect();
        let started = Instant::now();
        let outcomes = step("publish the batch", publisher.publish_batch(&batch)).await;
        let elapsed = started.elapsed();
        let failures: Vec<_> = outcomes.iter().filter(|o| o.is_err()).collect();
        assert!(failures.is_empty(), "{failures:?}");
        eprintln!(
            "{COUNT} confirmed publishes in {elapsed:?} ({:.0} msg/s, debug build)",
            COUNT as f64 / elapsed.as_secs_f64()
        );

        let mut outbound = consumer(&connection, HUB_OUTBOUND_QUEUE).await;
        let mut seen = HashSet::new();
        while seen.len() < COUNT {
            let delivery = next(&mut outbound).await;
            let id = delivery
                .message
                .properties
                .message_id
                .clone()
                .expect("message id");
            assert!(seen.insert(id.clone()), "{id} delivered twice");
            assert!(!delivery.message.redelivered);
            delivery.acker.ack().await.expect("ack");
        }
        // Nothing more comes.
        let more = tokio::time::timeout(Duration::from_millis(500), outbound.next()).await;
        assert!(more.is_err(), "an extra delivery: {more:?}");
        assert!(is_empty(&connection, HUB_OUTBOUND_QUEUE).await);
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_partner_can_only_publish_as_itself_and_read_its_own_queue() {
    let vhost = TestVhost::new();
    bounded(async {
        let topology = hub_topology();
        vhost.apply(&topology).await;
        let thailand = topology
            .users
            .iter()
            .find(|u| u.name == "partner-TH")
            .expect("partner-TH");
        let as_thailand = vhost.url_as(&thailand.name, &test_password(thailand));
        let partner = step("connect as partner-TH", connect(&as_thailand, "partner TH"))
            .await
            .expect("partner-TH connects");

        // Publishing as itself into asw.partner.in works, and the hub sees who published.
        let mut publisher = publisher(&partner).await;
        let own = Properties::new()
            .with_message_id("from-th")
            .with_user_id("partner-TH");
        publisher
            .publish(PARTNER_IN_EXCHANGE, "TH", b"<Signed/>", &own)
            .await
            .expect("publish as partner-TH");
        let hub = vhost.connect().await;
        let mut inbound = consumer(&hub, HUB_INBOUND_QUEUE).await;
        let delivery = next(&mut inbound).await;
        assert_eq!(
            delivery.message.properties.user_id.as_deref(),
            Some("partner-TH")
        );
        assert_eq!(delivery.message.routing_key, "TH");
        delivery.acker.ack().await.expect("ack");

        // Claiming to be Singapore: the broker closes the channel with PRECONDITION_FAILED.
        let forged = Properties::new()
            .with_message_id("forged")
            .with_user_id("partner-SG");
        let error = publisher
            .publish(PARTNER_IN_EXCHANGE, "SG", b"<Signed/>", &forged)
            .await
            .expect_err("user_id of another user");
        assert!(matches!(error, AmqpError::Publish { .. }), "{error:?}");
        assert_eq!(error.reply_code(), Some(406), "{error:?}");
        assert!(!error.is_transient());
        let chain = format!("{:?}", error);
        assert!(
            chain.contains("user_id property set to 'partner-SG'"),
            "{chain}"
        );
        assert!(!publisher.channel().is_open());
        assert!(
            partner.is_connected(),
            "a channel error leaves the connection up"
        );

        // Publishing anywhere but asw.partner.in is refused.
        let mut publisher = self::publisher(&partner).await;
        let error = publisher
            .publish(PARTNER_OUT_EXCHANGE, "TH", b"<x/>", &own)
            .await
            .expect_err("no write access to asw.partner.out");
        assert_eq!(error.reply_code(), Some(403), "{error:?}");
        assert!(!error.is_transient());

        // Reading Singapore's queue is refused; its own queue is readable.
        let channel = partner.open_channel().await.expect("channel");
        let error = Consumer::start(channel, "asw.partner.out.SG", 10, "")
            .await
            .expect_err("no read access to SG's queue");
        assert!(matches!(error, AmqpError::Consume { .. }), "{error:?}");
        assert_eq!(error.reply_code(), Some(403), "{error:?}");
        assert!(!error.is_transient());

        let mut to_hub = self::publisher(&hub).await;
        to_hub
            .publish(PARTNER_OUT_EXCHANGE, "TH", b"<ForTH/>", &Properties::new())
            .await
            .expect("hub publishes for TH");
        let mut own_queue = consumer(&partner, "asw.partner.out.TH").await;
        let delivery = next(&mut own_queue).await;
        assert_eq!(delivery.message.body, b"<ForTH/>");
        delivery.acker.ack().await.expect("ack");
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_retry_queue_dead_letters_expired_messages_back_to_its_stage() {
    let vhost = TestVhost::new();
    bounded(async {
        vhost.apply(&hub_topology()).await;
        let connection = vhost.connect().await;
        let mut publisher = publisher(&connection).await;
        let retry_queue = names::retry_queue(names::stage::OUTBOUND, 200);
        let properties = Properties::new()
            .with_message_id("retry-me")
            .with_header(HEADER_ATTEMPTS, 1i64);
        let mut outbound = consumer(&connection, HUB_OUTBOUND_QUEUE).await;
        let sent = Instant::now();
        publisher
            .publish("", &retry_queue, b"<again/>", &properties)
            .await
            .expect("publish to the retry queue");
        let delivery = next(&mut outbound).await;
        let waited = sent.elapsed();
        assert!(
            waited >= Duration::from_millis(150),
            "back after only {waited:?}"
        );
        assert_eq!(delivery.message.body, b"<again/>");
        assert_eq!(delivery.message.routing_key, HUB_OUTBOUND_QUEUE);
        let props = &delivery.message.properties;
        assert_eq!(props.message_id.as_deref(), Some("retry-me"));
        assert_eq!(
            props.header(HEADER_ATTEMPTS).and_then(HeaderValue::as_int),
            Some(1)
        );
        let Some(HeaderValue::Array(deaths)) = props.header("x-death") else {
            panic!("no x-death header: {props:?}");
        };
        let Some(HeaderValue::Table(death)) = deaths.first() else {
            panic!("x-death is not a table array: {deaths:?}");
        };
        assert_eq!(
            death.get("queue").and_then(HeaderValue::as_str),
            Some(retry_queue.as_str())
        );
        assert_eq!(
            death.get("reason").and_then(HeaderValue::as_str),
            Some("expired")
        );
        // The acker keeps its channel open: dropping the consumer first does not lose the ack.
        drop(outbound);
        delivery
            .acker
            .ack()
            .await
            .expect("ack after the consumer is gone");
        assert!(is_empty(&connection, &retry_queue).await);
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn connection_failures_are_classified() {
    let vhost = TestVhost::new();
    bounded(async {
        // Nothing listens on port 1: transient, and the back-off gives up after its attempts.
        let nowhere = "amqp://guest:guest@127.0.0.1:1/x";
        let error = connect(nowhere, "test").await.expect_err("nothing listens");
        assert!(matches!(error, AmqpError::Connect { .. }), "{error:?}");
        assert!(error.is_transient(), "{error:?}");
        let backoff = Backoff {
            initial: Duration::from_millis(10),
            max: Duration::from_millis(40),
            factor: 2,
            max_attempts: Some(3),
        };
        let started = Instant::now();
        let error = step("back-off", connect_with_backoff(nowhere, "test", &backoff))
            .await
            .expect_err("still nothing listens");
        assert!(error.is_transient());
        // Two pauses, after the first and second attempts: each at least half its delay (10
        // and 20 ms) with the jitter.
        assert!(started.elapsed() >= Duration::from_millis(15));

        // A wrong password and an unknown vhost are permanent, and returned at once.
        let wrong = vhost.url_as("guest", "not-the-password");
        let error = step(
            "bad login",
            connect_with_backoff(&wrong, "test", &Backoff::default()),
        )
        .await
        .expect_err("bad password");
        assert!(!error.is_transient(), "{error:?}");
        assert!(!error.to_string().contains("not-the-password"), "{error}");

        let missing = with_vhost(&amqp_url(), &format!("{}-missing", vhost.name)).expect("url");
        let error = step("unknown vhost", connect(&missing, "test"))
            .await
            .expect_err("unknown vhost");
        assert!(!error.is_transient(), "{error:?}");

        // The vhost's own URL works, through the back-off helper too.
        let connection = step(
            "connect",
            connect_with_backoff(&vhost.url(), "test", &Backoff::default()),
        )
        .await
        .expect("connect");
        assert_eq!(connection.vhost(), vhost.name);
        connection.close().await.expect("close");
        connection.close().await.expect("closing twice is fine");
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn several_addresses_are_tried_in_turn() {
    let vhost = TestVhost::new();
    bounded(async {
        // A node that went away (nothing listens) before one that answers: the first attempt
        // moves on to the second address at once, without waiting out a back-off.
        let gone = "amqp://guest:guest@127.0.0.1:1/x".to_owned();
        let once = Backoff {
            initial: Duration::from_secs(60),
            max: Duration::from_secs(60),
            factor: 2,
            max_attempts: Some(1),
        };
        let started = Instant::now();
        let connection = step(
            "gone, then up",
            connect_any_with_backoff(&[gone.clone(), vhost.url()], "test", &once),
        )
        .await
        .expect("the second address answers");
        assert_eq!(connection.vhost(), vhost.name);
        assert!(started.elapsed() < Duration::from_secs(30));
        connection.close().await.expect("close");

        // Every address gone: transient, after the attempts (each one trying every address).
        let backoff = Backoff {
            initial: Duration::from_millis(10),
            max: Duration::from_millis(40),
            factor: 2,
            max_attempts: Some(2),
        };
        let other = "amqp://guest:guest@127.0.0.1:2/x".to_owned();
        let error = step(
            "all gone",
            connect_any_with_backoff(&[gone.clone(), other], "test", &backoff),
        )
        .await
        .expect_err("nothing listens");
        assert!(error.is_transient(), "{error:?}");

        // A permanent failure on one address is returned at once: the nodes share users.
        let wrong = vhost.url_as("guest", "not-the-password");
        let error = step(
            "bad login first",
            connect_any_with_backoff(&[wrong, vhost.url()], "test", &Backoff::default()),
        )
        .await
        .expect_err("bad password");
        assert!(!error.is_transient(), "{error:?}");

        // No address at all is an invalid URL, not a wait forever.
        let none: [&str; 0] = [];
        let error = connect_any_with_backoff(&none, "test", &Backoff::default())
            .await
            .expect_err("no address");
        assert!(matches!(error, AmqpError::InvalidUrl { .. }), "{error:?}");
    })
    .await;
}

#[test]
fn management_calls_are_idempotent_and_report_errors() {
    let vhost = TestVhost::new();
    let management = management();
    management.ensure_vhost(&vhost.name).expect("vhost again");
    let user = format!("asw-test-user-{}", uuid::Uuid::new_v4().simple());
    management.ensure_user(&user, "pw-1", &[]).expect("user");
    management
        .ensure_user(&user, "pw-2", &["management"])
        .expect("user again");
    management.delete_user(&user).expect("delete user");
    management
        .delete_user(&user)
        .expect("delete a missing user");

    let missing = format!("{}-missing", vhost.name);
    management
        .delete_vhost(&missing)
        .expect("delete a missing vhost");
    let error = management.queues(&missing).expect_err("no such vhost");
    assert!(
        matches!(
            error,
            AmqpError::Management {
                status: Some(404),
                ..
            }
        ),
        "{error:?}"
    );
    assert!(!error.is_transient());

    let intruder = Management::new(&management_url(), "guest", "wrong");
    let error = intruder.ensure_vhost(&vhost.name).expect_err("bad login");
    assert!(
        matches!(
            error,
            AmqpError::Management {
                status: Some(401),
                ..
            }
        ),
        "{error:?}"
    );
    assert!(!error.is_transient());
    assert!(!error.to_string().contains("wrong"), "{error}");

    let unreachable = Management::new("http://127.0.0.1:1", "guest", "guest");
    let error = unreachable
        .queues(&vhost.name)
        .expect_err("nothing listens");
    assert!(error.is_transient(), "{error:?}");
}

/// The hub topology of [`hub_topology`] with another delivery limit.
fn limited_topology(delivery_limit: u32) -> Topology {
    let mut topology = hub_topology();
    topology.policies = Topology::hub(
        state("VN"),
        &[state("TH"), state("SG")],
        &RetryPolicy::default(),
        delivery_limit,
    )
    .policies;
    topology
}

/// Returns the next delivery of `queue` to it with `basic.nack(requeue)` `times` times, checking
/// the broker's count of earlier deliveries each time (absent on a first delivery).
async fn return_times(consumer: &mut Consumer, times: i64) {
    for n in 0..times {
        let delivery = next(consumer).await;
        assert_eq!(
            delivery
                .message
                .properties
                .header("x-delivery-count")
                .and_then(HeaderValue::as_int)
                .unwrap_or(0),
            n,
            "delivery {n}"
        );
        delivery.acker.nack(true).await.expect("nack");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_message_returned_past_the_delivery_limit_is_parked_and_a_new_limit_needs_no_redeclare() {
    let vhost = TestVhost::new();
    bounded(async {
        let management = management();
        vhost.apply(&limited_topology(2)).await;
        vhost.apply(&limited_topology(2)).await;
        let policy = management
            .policy(&vhost.name, names::DELIVERY_LIMIT_POLICY)
            .expect("read the policy")
            .expect("the policy exists");
        assert_eq!(policy.apply_to, "queues");
        assert_eq!(policy.definition["delivery-limit"], 2);
        assert_eq!(policy.definition["dead-letter-exchange"], "");
        assert_eq!(
            policy.definition["dead-letter-routing-key"],
            names::PARKED_QUEUE
        );
        let parked_policy = management
            .policy(&vhost.name, names::PARKED_POLICY)
            .expect("read the policy")
            .expect("the parking lot's policy exists");
        assert_eq!(parked_policy.definition["delivery-limit"], 1_000_000);

        let connection = vhost.connect().await;
        let mut publisher = publisher(&connection).await;
        let properties = Properties::new()
            .with_message_id("poison-1")
            .with_content_type(CONTENT_TYPE_XML)
            .with_user_id("guest");
        publisher
            .publish(PARTNER_IN_EXCHANGE, "TH", b"<Poison/>", &properties)
            .await
            .expect("publish to asw.partner.in");
        // Delivered, returned, redelivered: the third return passes the limit of 2.
        let mut inbound = consumer(&connection, HUB_INBOUND_QUEUE).await;
        return_times(&mut inbound, 3).await;
        let mut parked = consumer(&connection, names::PARKED_QUEUE).await;
        let delivery = next(&mut parked).await;
        assert_eq!(delivery.message.body, b"<Poison/>");
        assert_eq!(delivery.message.routing_key, names::PARKED_QUEUE);
        let props = &delivery.message.properties;
        assert_eq!(props.message_id.as_deref(), Some("poison-1"));
        assert_eq!(props.user_id.as_deref(), Some("guest"));
        let Some(HeaderValue::Array(deaths)) = props.header(names::HEADER_DEATH) else {
            panic!("no x-death header: {props:?}");
        };
        let Some(HeaderValue::Table(death)) = deaths.first() else {
            panic!("x-death is not a table array: {deaths:?}");
        };
        let text = |key: &str| death.get(key).and_then(HeaderValue::as_str);
        assert_eq!(text("queue"), Some(HUB_INBOUND_QUEUE));
        assert_eq!(text("reason"), Some(names::DEATH_DELIVERY_LIMIT));
        assert_eq!(text("exchange"), Some(PARTNER_IN_EXCHANGE));
        assert_eq!(
            death.get("routing-keys"),
            Some(&HeaderValue::Array(vec![HeaderValue::Str("TH".into())]))
        );
        delivery.acker.ack().await.expect("ack");
        assert!(is_empty(&connection, HUB_INBOUND_QUEUE).await);

        // A message waiting in the queue while the limit changes to 1: applying again only
        // replaces the policy (declaring a queue with other arguments would fail), the message
        // stays, and the new limit holds for it at once.
        publisher
            .publish(
                PARTNER_IN_EXCHANGE,
                "TH",
                b"<Waiting/>",
                &properties.clone().with_message_id("poison-2"),
            )
            .await
            .expect("publish to asw.partner.in");
        vhost.apply(&limited_topology(1)).await;
        let policy = management
            .policy(&vhost.name, names::DELIVERY_LIMIT_POLICY)
            .expect("read the policy")
            .expect("the policy exists");
        assert_eq!(policy.definition["delivery-limit"], 1);
        let queues = management.queues(&vhost.name).expect("list queues");
        let info = queues
            .iter()
            .find(|q| q.name == HUB_INBOUND_QUEUE)
            .expect("inbound queue");
        assert_eq!(
            info.arguments.keys().collect::<Vec<_>>(),
            ["x-queue-type"],
            "the limit is no queue argument"
        );
        return_times(&mut inbound, 2).await;
        let delivery = next(&mut parked).await;
        assert_eq!(delivery.message.body, b"<Waiting/>");
        delivery.acker.ack().await.expect("ack");

        // The retry queues keep their own dead-letter target: expired messages go back to
        // their stage, not to the parking lot.
        let retry_queue = names::retry_queue(names::stage::INBOUND, 200);
        publisher
            .publish("", &retry_queue, b"<Again/>", &properties)
            .await
            .expect("publish to the retry queue");
        let delivery = next(&mut inbound).await;
        assert_eq!(delivery.message.body, b"<Again/>");
        delivery.acker.ack().await.expect("ack");
        assert!(is_empty(&connection, names::PARKED_QUEUE).await);

        // Every queue something consumes has the policy; the retry queues have none.
        let started = Instant::now();
        loop {
            let queues = management.queues(&vhost.name).expect("list queues");
            let policy_of = |name: &str| {
                queues
                    .iter()
                    .find(|q| q.name == name)
                    .and_then(|q| q.policy.clone())
            };
            let seen = [
                policy_of(HUB_OUTBOUND_QUEUE),
                policy_of(HUB_INBOUND_QUEUE),
                policy_of("asw.partner.out.TH"),
                policy_of("asw.partner.out.SG"),
                policy_of(names::PARKED_QUEUE),
                policy_of(&retry_queue),
            ];
            let limit = Some(names::DELIVERY_LIMIT_POLICY.to_owned());
            let want = [
                limit.clone(),
                limit.clone(),
                limit.clone(),
                limit,
                Some(names::PARKED_POLICY.to_owned()),
                None,
            ];
            if seen == want {
                break;
            }
            assert!(started.elapsed() < WAIT, "policies: {seen:?}");
            tokio::time::sleep(Duration::from_millis(500)).await;
        }
        connection.close().await.expect("close");
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_ippc_out_queue_is_delivery_limited_into_the_parking_lot_like_a_partner_queue() {
    let vhost = TestVhost::new();
    bounded(async {
        let management = management();
        let th = state("TH");
        let topology = Topology::hub(state("VN"), &[th], &RetryPolicy::default(), 2)
            .with_ippc_partners(&[th])
            .with_ippc_imports(true);
        vhost.apply(&topology).await;
        let queue = names::ippc_out_queue(th);
        // The management API shows the delivery-limit policy in force on the IPPC queues.
        let started = Instant::now();
        loop {
            let queues = management.queues(&vhost.name).expect("list queues");
            let policy_of = |name: &str| {
                queues
                    .iter()
                    .find(|q| q.name == name)
                    .unwrap_or_else(|| panic!("{name} is declared"))
                    .policy
                    .clone()
            };
            let seen = [policy_of(&queue), policy_of(names::IPPC_IN_QUEUE)];
            let limit = Some(names::DELIVERY_LIMIT_POLICY.to_owned());
            if seen == [limit.clone(), limit] {
                break;
            }
            assert!(started.elapsed() < WAIT, "policies: {seen:?}");
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
        // And it holds: an e-Phyto the IPPC channel keeps returning is parked, not lost.
        let connection = vhost.connect().await;
        let mut publisher = publisher(&connection).await;
        let properties = Properties::new()
            .with_message_id("ippc-poison")
            .with_content_type(CONTENT_TYPE_XML);
        publisher
            .publish(
                names::PARTNER_OUT_EXCHANGE,
                &names::ippc_out_key(th),
                b"<Poison/>",
                &properties,
            )
            .await
            .expect("publish to asw.partner.out");
        let mut ippc = consumer(&connection, &queue).await;
        return_times(&mut ippc, 3).await;
        let mut parked = consumer(&connection, names::PARKED_QUEUE).await;
        let delivery = next(&mut parked).await;
        assert_eq!(delivery.message.body, b"<Poison/>");
        let Some(HeaderValue::Array(deaths)) =
            delivery.message.properties.header(names::HEADER_DEATH)
        else {
            panic!("no x-death header");
        };
        let Some(HeaderValue::Table(death)) = deaths.first() else {
            panic!("x-death is not a table array: {deaths:?}");
        };
        assert_eq!(
            death.get("queue").and_then(HeaderValue::as_str),
            Some(queue.as_str())
        );
        delivery.acker.ack().await.expect("ack");
        assert!(is_empty(&connection, &queue).await);
        connection.close().await.expect("close");
    })
    .await;
}
