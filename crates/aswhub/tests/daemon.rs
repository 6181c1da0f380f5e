//! `aswhub run` as operators run it: a child process on the real broker, next to in-process hubs
//! of the testbed. Two daemons for the same member state share its queues and journal
//! (competing consumers) and deliver every document exactly once; SIGTERM drains and exits 0.

use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use asw_gateway::testbed::{Received, Testbed, TestbedOptions};
use asw_model::sample::{self, SampleSpec};
use asw_model::{DocumentKind, MemberState};
use asw_route::names;
use time::OffsetDateTime;

fn state(code: &str) -> MemberState {
    MemberState::from_alpha2(code).expect("member state")
}

fn spawn_hub(config: &std::path::Path) -> Child {
    Command::new(env!("CARGO_BIN_EXE_aswhub"))
        .args(["run", "--config"])
        .arg(config)
        .env("RUST_LOG", "warn")
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start aswhub")
}

fn terminate(child: &mut Child) -> (Option<i32>, Duration) {
    let started = Instant::now();
    let pid = i32::try_from(child.id()).expect("pid");
    let status = Command::new("kill")
        .args(["-TERM", &pid.to_string()])
        .status()
        .expect("kill");
    assert!(status.success());
    let code = child.wait().expect("wait").code();
    (code, started.elapsed())
}

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
    let mut first = spawn_hub(&config);
    let mut second = spawn_hub(&config);

    let mut ids = Vec::new();
    for i in 0..60u64 {
        let created_at = OffsetDateTime::now_utc();
        let spec = SampleSpec {
            kind: DocumentKind::FormD,
            from: vn,
            to: th,
            items: 2,
            seed: i ^ created_at.unix_timestamp() as u64,
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
        let (code, took) = terminate(child);
        assert_eq!(code, Some(0), "SIGTERM ends the daemon with success");
        assert!(
            took < Duration::from_secs(25),
            "it stopped within the grace period ({took:?})"
        );
    }
    tb.stop_and_clean().await;
}
