//! Faults operators meet (issue #5): `aswhub run` killed with SIGKILL in the middle of a stream
//! of signed partner documents and started again, and its broker restarted mid-stream. Every
//! document reaches the back-office and the journal records each `delivered` exactly once.

mod common;

use common::rabbitmq::PrivateBroker;
use common::{HubProcess, Stream, start_hub};

/// When a session ends, the hub gives its other tasks the grace period to finish, and each of
/// them waits in at most one broker call at a time: every call must give up before the grace
/// period does, or one call the broker leaves unanswered while it restarts (the connection still
/// open) makes the hub wait out its grace period instead of reconnecting.
#[test]
fn every_broker_call_gives_up_before_the_hub_s_grace_period() {
    let grace = asw_gateway::hub::GRACE;
    for (what, bound) in [
        ("a broker round trip", asw_amqp::RPC_TIMEOUT),
        ("a publisher confirm", asw_amqp::CONFIRM_TIMEOUT),
    ] {
        assert!(
            bound + std::time::Duration::from_secs(2) < grace,
            "{what} may take {bound:?}, the grace period is {grace:?}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_hub_killed_mid_stream_and_restarted_delivers_every_document() {
    let stream = Stream::prepare(
        "amqp://guest:guest@127.0.0.1:5672",
        "http://127.0.0.1:15672",
        10_000,
    )
    .await;
    let config = stream.config.clone();
    let run = stream
        .run_through(HubProcess::kill, |hub| *hub = start_hub(&config))
        .await;
    println!("kill -9 mid-stream and restart: {run}");
    stream.clean().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_hub_reconnects_by_itself_after_its_broker_restarts_mid_stream() {
    let broker = tokio::task::spawn_blocking(PrivateBroker::start)
        .await
        .expect("private broker");
    let stream = Stream::prepare(&broker.amqp_url(), &broker.management_url(), 2_000).await;
    // The same daemon throughout: it must find its way back to the broker on its own.
    let run = stream
        .run_through(
            |_| tokio::task::block_in_place(|| broker.stop_app()),
            |_| tokio::task::block_in_place(|| broker.start_app()),
        )
        .await;
    println!("broker restart mid-stream: {run}");
    // The session ended at once when the connection died, not when the grace period ran out.
    let logs = common::logs(&stream.config);
    assert!(
        !logs.contains("did not finish within the grace period"),
        "the hub waited out its grace period; logs:\n{logs}"
    );
    stream.clean().await;
    drop(broker);
}
