//! `aswctl replay` of an e-Phyto the IPPC ePhyto Hub refused (parked at stage `ippc`), against
//! a testbed hub and the simulated hub: replayed after the fault is gone, it reaches the hub
//! once; a copy of a certificate that went through is not delivered to the hub again.

mod common;

use asw_amqp::{ConfirmingPublisher, Properties};
use asw_e2e::ippc::{certificate_of, deployment, envelope_of, number_of};
use asw_e2e::{document, state, testbed_with, url_as};
use asw_journal::Direction;
use asw_model::DocumentKind;
use asw_route::names;
use asw_testbed::ephyto_hub::{EphytoHub, InjectedFault};
use common::{ctl, until_parked, until_state};

fn delivers(hub: &EphytoHub) -> usize {
    hub.requests()
        .iter()
        .filter(|(operation, _)| operation == "DeliverEnvelope")
        .count()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_ephyto_the_ippc_hub_refused_reaches_it_once_when_replayed_after_the_fault() {
    let sim_dir = tempfile::tempdir().expect("dir");
    let hub = EphytoHub::start(sim_dir.path(), &["VN", "TH"])
        .await
        .expect("the simulated ePhyto hub");
    let vn = state("VN");
    let (hub_toml, section) = deployment(sim_dir.path(), &hub, "TH", "VN");
    let (tb, _dir) = testbed_with(&["VN", "TH"], |o| {
        o.hub_toml = hub_toml;
        o.hub_sections.insert(vn, section);
    })
    .await;

    // Refused for good (a 400): parked at stage ippc, journaled failed.
    hub.fail_next_call("DeliverEnvelope", InjectedFault::Http(400));
    let ephyto = document(DocumentKind::Ephyto, "VN", "TH");
    let id = ephyto.header.message_id;
    let nppo_number = number_of(&certificate_of(&ephyto));
    tb.send_document(&ephyto).await.expect("send");
    let listed = until_parked(&tb, vn, id, "EPHYTO-HUB-REFUSED").await;
    assert_eq!(listed["stage"], "ippc", "{listed:#}");
    assert_eq!(listed["routing_key"], "TH.ippc", "{listed:#}");
    assert_eq!(listed["journal"], "failed", "{listed:#}");
    assert!(hub.envelopes().is_empty(), "{:?}", hub.envelopes());

    // The fault is gone; replayed: back into asw.ippc.out.TH, delivered once, sent.
    let run = ctl(&tb, vn, &["replay", &id.to_string(), "--actor", "ops"]).await;
    run.assert_code(0);
    assert!(
        run.stdout.contains("replayed") && run.stdout.contains("asw.ippc.out.TH"),
        "{run:#?}"
    );
    let envelope = envelope_of(&hub, &nppo_number).await;
    let shown = until_state(&tb, vn, id, "sent").await;
    assert_eq!(
        shown["transport_ref"],
        envelope.number.as_str(),
        "{shown:#}"
    );
    assert_eq!(delivers(&hub), 2, "{:?}", hub.requests());

    // A second copy of it (a replay run again after the first went through): not delivered
    // to the hub again. A later certificate behind it in the queue shows it was taken.
    let journal = tb.hub(vn).expect("VN's hub").journal();
    let signed = journal
        .get(Direction::Outbound, id)
        .expect("journal")
        .expect("journaled")
        .bytes;
    let connection = asw_amqp::connect(&url_as(&tb, vn, "guest", "guest"), "test")
        .await
        .expect("connect");
    let mut publisher = ConfirmingPublisher::new(connection.open_channel().await.expect("channel"))
        .await
        .expect("publisher");
    let properties = Properties::new()
        .with_message_id(id.to_string())
        .with_content_type(names::CONTENT_TYPE_XML)
        .with_header(names::HEADER_MESSAGE_ID, id.to_string());
    publisher
        .publish(
            "",
            &names::ippc_out_queue(state("TH")),
            &signed,
            &properties,
        )
        .await
        .expect("publish the copy");
    let _ = connection.close().await;
    let later = document(DocumentKind::Ephyto, "VN", "TH");
    tb.send_document(&later).await.expect("send");
    envelope_of(&hub, &number_of(&certificate_of(&later))).await;
    assert_eq!(
        hub.envelopes()
            .iter()
            .filter(|e| e.nppo_number == nppo_number)
            .count(),
        1,
        "{:?}",
        hub.envelopes()
    );
    assert_eq!(delivers(&hub), 3, "{:?}", hub.requests());
    let again = until_state(&tb, vn, id, "sent").await;
    assert_eq!(again["transport_ref"], envelope.number.as_str());

    // Nothing left to replay.
    let run = ctl(&tb, vn, &["replay", &id.to_string(), "--actor", "ops"]).await;
    assert!(!run.stdout.contains("replayed"), "{run:#?}");
    hub.assert_clean();
    tb.stop_and_clean().await;
}
