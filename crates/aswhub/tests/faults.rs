//! Faults operators meet (issue #5): `aswhub run` killed with SIGKILL in the middle of a stream
//! of signed partner documents and started again, and its broker restarted mid-stream. Every
//! document reaches the back-office and the journal records each `delivered` exactly once.

mod common;

use std::time::{Duration, Instant};

use asw_journal::State;
use common::rabbitmq::PrivateBroker;
use common::{HubProcess, Stream, in_state};

/// The shared local broker.
const AMQP: &str = "amqp://guest:guest@127.0.0.1:5672";
/// Its management API.
const MANAGEMENT: &str = "http://127.0.0.1:15672";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_hub_killed_mid_stream_and_restarted_delivers_every_document() {
    const DOCUMENTS: usize = 10_000;
    let started = Instant::now();
    let stream = Stream::prepare(AMQP, MANAGEMENT, DOCUMENTS).await;
    stream.publish().await;
    let published = started.elapsed();
    let mut hub = HubProcess::start(&stream.config);
    let flowing = Instant::now();
    stream
        .wait_counted(
            u32::try_from(DOCUMENTS * 3 / 10).expect("count"),
            Duration::from_secs(180),
        )
        .await;
    hub.kill();
    // What the dead hub left: documents journaled `verified` may have reached the back-office
    // already (a crash between the broker's confirm and the journal's `delivered`).
    let journal = stream.journal();
    let in_flight = in_state(journal.as_ref(), State::Verified);
    let delivered_at_kill = in_state(journal.as_ref(), State::Delivered).len();
    drop(journal);
    let hub = HubProcess::start(&stream.config);
    stream.wait_all_delivered(Duration::from_secs(300)).await;
    let took = flowing.elapsed();
    let copies = stream.drain().await;
    let twice = stream.check(&copies, &in_flight);
    hub.terminate();
    println!(
        "kill -9 mid-stream: {DOCUMENTS} documents (signed in {:.1?}, published by {:.1?}); \
         killed after {delivered_at_kill} delivered with {} in flight; all delivered {:.1?} after \
         the first start; {twice} in-flight documents delivered twice, every other once",
        stream.signing,
        published,
        in_flight.len(),
        took,
    );
    stream.clean().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_hub_reconnects_after_its_broker_restarts_mid_stream() {
    const DOCUMENTS: usize = 2_000;
    let broker = tokio::task::spawn_blocking(PrivateBroker::start)
        .await
        .expect("private broker");
    let stream = Stream::prepare(&broker.amqp_url(), &broker.management_url(), DOCUMENTS).await;
    stream.publish().await;
    let hub = HubProcess::start(&stream.config);
    let flowing = Instant::now();
    stream
        .wait_counted(
            u32::try_from(DOCUMENTS * 3 / 10).expect("count"),
            Duration::from_secs(180),
        )
        .await;
    let restarted = Instant::now();
    tokio::task::block_in_place(|| broker.stop_app());
    // With the broker down nothing more can be published: documents journaled `verified` now
    // are the only ones that may have reached the back-office without their `delivered`.
    let journal = stream.journal();
    let in_flight = in_state(journal.as_ref(), State::Verified);
    let delivered_at_stop = in_state(journal.as_ref(), State::Delivered).len();
    drop(journal);
    tokio::task::block_in_place(|| broker.start_app());
    let down = restarted.elapsed();
    stream.wait_all_delivered(Duration::from_secs(300)).await;
    let took = flowing.elapsed();
    let copies = stream.drain().await;
    let twice = stream.check(&copies, &in_flight);
    hub.terminate();
    println!(
        "broker restart mid-stream: {DOCUMENTS} documents; broker stopped after \
         {delivered_at_stop} delivered with {} in flight, back after {:.1?}; all delivered \
         {:.1?} after the hub started; {twice} in-flight documents delivered twice, every other once",
        in_flight.len(),
        down,
        took,
    );
    stream.clean().await;
    drop(broker);
}
