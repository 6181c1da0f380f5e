//! The hub on a three-node RabbitMQ cluster (issue #11): two hubs sharing a PostgreSQL journal
//! take a stream of partner documents while the node they are connected to, then the leader of
//! their inbound quorum queue, is stopped. They move to another node by themselves, every
//! document reaches the back-office exactly once (in-flight ones at most twice, the second copy
//! marked as a possible duplicate) and the journal agrees.

mod common;

use std::time::Duration;

use asw_testbed::PgSchema;
use common::Stream;
use common::cluster::Cluster;

/// Documents in the stream.
const DOCUMENTS: usize = 5_000;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_hubs_on_a_cluster_survive_losing_their_node_and_the_queue_leader() {
    // Declared first, dropped last: the cluster is deleted and the schema dropped even when
    // an assertion fails or the time runs out.
    let cluster = tokio::task::spawn_blocking(Cluster::start)
        .await
        .expect("cluster");
    let schema = PgSchema::new();
    let bounded = tokio::time::timeout(Duration::from_secs(420), async {
        let stream =
            Stream::prepare(&cluster.amqp_url(1), &cluster.management_url(1), DOCUMENTS).await;
        stream.use_cluster(&cluster, &schema.url());
        let run = stream.run_on_cluster(&cluster).await;
        println!("cluster faults: {run}");
        stream.clean().await;
    })
    .await;
    drop(schema);
    drop(cluster);
    bounded.expect("the cluster fault test finished within 7 minutes");
}
