//! `aswhub run` as operators run it: a child process on the real broker, next to in-process hubs
//! of the testbed. Two daemons for the same member state share its queues and journal
//! (competing consumers) and deliver every document exactly once; SIGTERM drains and exits 0.

mod common;

use std::time::Duration;

use asw_model::DocumentKind;
use asw_model::sample::{self, SampleSpec};
use asw_route::names;
use asw_testbed::{Received, Testbed, TestbedOptions};
use common::{logs, start_hub, state};
use time::OffsetDateTime;

fn is_doc(m: &Received, key: &str, id: uuid::Uuid) -> bool {
    m.routing_key == key && m.header(names::HEADER_MESSAGE_ID) == Some(id.to_string().as_str())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_daemons_share_the_work_and_stop_cleanly_on_sigterm() {
    let dir = tempfile::tempdir().expect("temp dir");
    let (vn, th) = (state("VN"), state("TH"));
    let mut options = TestbedOptions::local(vec![vn, th], dir.path().to_owned());
    let tag = uuid::Uuid::new_v4().simple().to_string();
    options.vhost_prefix = format!("aswt-{}-", &tag[..10]);
    options.external = vec![vn];
    let tb = Testbed::start(options).await.expect("testbed");
    let config = tb.config_file(vn).expect("VN config").to_owned();
    let mut first = start_hub(&config);
    let mut second = start_hub(&config);

    let mut ids = Vec::new();
    for i in 0..60u64 {
        let created_at = OffsetDateTime::now_utc();
        let spec = SampleSpec {
            kind: DocumentKind::FormD,
            from: vn,
            to: th,
            items: 2,
            seed: uuid::Uuid::new_v4().as_u64_pair().0 ^ i,
            created_at,
        };
        let d = sample::message(&spec);
        ids.push(d.header.message_id);
        tb.send(vn, DocumentKind::FormD, d.to_xml().expect("xml").as_bytes())
            .await
            .expect("send");
    }
    for id in &ids {
        tb.wait_for(th, "every document", Duration::from_secs(60), |m| {
            is_doc(m, "formd.VN", *id)
        })
        .await
        .expect("delivered");
        tb.wait_for(vn, "every acknowledgement", Duration::from_secs(60), |m| {
            m.routing_key == "outcome.formd.TH"
                && m.header(names::HEADER_MESSAGE_ID) == Some(id.to_string().as_str())
                && m.header(names::HEADER_OUTCOME) == Some("acknowledged")
        })
        .await
        .expect("acknowledged");
    }
    tokio::time::sleep(Duration::from_secs(1)).await;
    let received = tb.received(th);
    for id in &ids {
        assert_eq!(
            received
                .iter()
                .filter(|m| is_doc(m, "formd.VN", *id))
                .count(),
            1,
            "{id} exactly once"
        );
    }
    for child in [&mut first, &mut second] {
        let (status, took) = child.terminate().expect("SIGTERM");
        assert_eq!(
            status.code(),
            Some(0),
            "SIGTERM ends the daemon with success; logs:\n{}",
            logs(&config)
        );
        assert!(
            took < Duration::from_secs(25),
            "it stopped within the grace period ({took:?})"
        );
    }
    tb.stop_and_clean().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_daemons_share_a_postgresql_journal_and_one_is_killed_mid_stream() {
    // A schema of our own in the local PostgreSQL, dropped at the end (also if the test fails).
    let pg = asw_testbed::PgSchema::new();
    let schema = pg.name().to_owned();
    let dir = tempfile::tempdir().expect("temp dir");
    let (vn, th) = (state("VN"), state("TH"));
    let mut options = TestbedOptions::local(vec![vn, th], dir.path().to_owned());
    let tag = uuid::Uuid::new_v4().simple().to_string();
    options.vhost_prefix = format!("aswt-{}-", &tag[..10]);
    options.external = vec![vn];
    options.journal_url = Some(pg.url());
    let tb = Testbed::start(options).await.expect("testbed");
    let config = tb.config_file(vn).expect("VN config").to_owned();
    let mut survivor = start_hub(&config);
    let mut victim = start_hub(&config);

    let mut ids = Vec::new();
    for i in 0..400u64 {
        let created_at = OffsetDateTime::now_utc();
        let seed = uuid::Uuid::new_v4().as_u64_pair().0 ^ i;
        let spec = SampleSpec {
            kind: DocumentKind::FormD,
            from: vn,
            to: th,
            items: 2,
            seed,
            created_at,
        };
        let d = sample::message(&spec);
        ids.push(d.header.message_id);
        tb.send(vn, DocumentKind::FormD, d.to_xml().expect("xml").as_bytes())
            .await
            .expect("send");
    }
    // One daemon dies without warning while documents are in flight.
    tb.wait_for(th, "the first documents", Duration::from_secs(60), |m| {
        m.routing_key == "formd.VN"
    })
    .await
    .expect("flowing");
    victim.kill();
    for id in &ids {
        tb.wait_for(th, "every document", Duration::from_secs(120), |m| {
            is_doc(m, "formd.VN", *id)
        })
        .await
        .expect("delivered");
    }
    tokio::time::sleep(Duration::from_secs(1)).await;
    let received = tb.received(th);
    for id in &ids {
        assert_eq!(
            received
                .iter()
                .filter(|m| is_doc(m, "formd.VN", *id))
                .count(),
            1,
            "{id} exactly once"
        );
    }
    // The shared journal agrees: every document is queued or further along. A document the
    // killed daemon had published but not yet journaled is taken over by the survivor once the
    // claim lease has run out (the partner drops the second copy by its message id).
    let query = format!(
        "SELECT count(*) FROM {schema}.messages WHERE direction = 'outbound' AND kind = 'formd' AND state IN ('queued', 'sent', 'acknowledged')"
    );
    let deadline = std::time::Instant::now() + Duration::from_secs(120);
    let sent = loop {
        let sent: usize = asw_testbed::guard::psql(&query)
            .unwrap_or_default()
            .trim()
            .parse()
            .unwrap_or(0);
        if sent == ids.len() || std::time::Instant::now() > deadline {
            break sent;
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    };
    let received = tb.received(th);
    for id in &ids {
        assert_eq!(
            received
                .iter()
                .filter(|m| is_doc(m, "formd.VN", *id))
                .count(),
            1,
            "{id} still exactly once"
        );
    }
    let (status, _) = survivor.terminate().expect("SIGTERM");
    assert_eq!(status.code(), Some(0));
    tb.stop_and_clean().await;
    drop(pg);
    assert_eq!(sent, ids.len(), "journal rows in state queued or further");
}
