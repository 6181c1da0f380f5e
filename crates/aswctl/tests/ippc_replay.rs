//! `aswctl replay` of an e-Phyto the IPPC ePhyto Hub refused (parked at stage `ippc`), against
//! a testbed hub and the simulated hub: replayed after the fault is gone, it reaches the hub
//! once; a copy of a certificate that went through is not delivered to the hub again. And of an
//! import parked at stage `ippc`: read and validated again by the hub, delivered once.

mod common;

use asw_amqp::Properties;
use asw_e2e::ippc::{IppcExchange, certificate_of, delivers, envelope_of, number_of, publish_copy};
use asw_e2e::{document, publish_once, state, url_as};
use asw_gateway::channel::ippc::importing::import_message_id;
use asw_journal::Direction;
use asw_model::DocumentKind;
use asw_route::names;
use asw_testbed::ephyto_hub::{InjectedContent, InjectedFault};
use common::{ctl, until_parked, until_state};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_ephyto_the_ippc_hub_refused_reaches_it_once_when_replayed_after_the_fault() {
    let vn = state("VN");
    let IppcExchange {
        hub,
        tb,
        dirs: _dirs,
    } = IppcExchange::start("TH", "VN", |_| {}).await;

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
    publish_copy(&tb, vn, state("TH"), id, &signed).await;
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

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_import_parked_at_stage_ippc_is_read_again_when_replayed_and_delivered_once() {
    let th = state("TH");
    let IppcExchange {
        hub,
        tb,
        dirs: _dirs,
    } = IppcExchange::start("VN", "TH", |_| {}).await;

    // Unreadable: parked; replayed, it is read again and parked again, never delivered.
    let garbled = hub.inject(
        "VN",
        "TH",
        "VN-PC-GARBLED",
        InjectedContent::Text("%%%".into()),
    );
    let garbled_id = import_message_id(&garbled);
    let listed = until_parked(&tb, th, garbled_id, "EPHYTO-UNREADABLE").await;
    assert_eq!(listed["stage"], "ippc", "{listed:#}");
    let run = ctl(
        &tb,
        th,
        &["replay", &garbled_id.to_string(), "--actor", "ops"],
    )
    .await;
    run.assert_code(0);
    assert!(run.stdout.contains("asw.ippc.in"), "{run:#?}");
    until_parked(&tb, th, garbled_id, "EPHYTO-UNREADABLE").await;

    // What the hub leaves for a certificate it could not take then and can now (an XSD fixed
    // in a release, say): parked at stage ippc with its delivery number and sender. Replayed:
    // validated, delivered to the back-office once and journaled with its number.
    let ephyto = document(DocumentKind::Ephyto, "VN", "TH");
    let certificate = certificate_of(&ephyto);
    let number = "EPH-REPLAYED-1";
    let id = import_message_id(number);
    let properties = Properties::new()
        .with_message_id(id.to_string())
        .with_content_type("text/plain")
        .with_header(names::HEADER_MESSAGE_ID, id.to_string())
        .with_header(names::HEADER_STAGE, names::stage::IPPC)
        .with_header(names::HEADER_REASON_CODE, "EPHYTO-INVALID")
        .with_header(names::HEADER_REASON, "XSD line 1: refused then")
        .with_header(names::HEADER_ROUTING_KEY, "ephyto.VN")
        .with_header(names::HEADER_HUB_DELIVERY_NUMBER, number);
    publish_once(
        &url_as(&tb, th, "guest", "guest"),
        "test",
        "",
        names::PARKED_QUEUE,
        certificate.as_bytes(),
        &properties,
    )
    .await
    .expect("park");
    until_parked(&tb, th, id, "EPHYTO-INVALID").await;
    let run = ctl(&tb, th, &["replay", &id.to_string(), "--actor", "ops"]).await;
    run.assert_code(0);
    assert!(run.stdout.contains("replayed"), "{run:#?}");
    let got = tb
        .wait_for(th, "the replayed import", common::WAIT, |m| {
            m.routing_key == "ephyto.VN"
                && m.header(names::HEADER_HUB_DELIVERY_NUMBER) == Some(number)
        })
        .await
        .expect("delivered to TH's back-office");
    assert_eq!(String::from_utf8_lossy(&got.body), certificate);
    let shown = until_state(&tb, th, id, "delivered").await;
    assert_eq!(shown["transport_ref"], number, "{shown:#}");
    // Replayed again: already delivered, nothing more.
    let run = ctl(&tb, th, &["replay", &id.to_string(), "--actor", "ops"]).await;
    assert!(!run.stdout.contains("replayed"), "{run:#?}");
    assert_eq!(
        tb.received(th)
            .iter()
            .filter(|m| m.header(names::HEADER_HUB_DELIVERY_NUMBER) == Some(number))
            .count(),
        1
    );
    // The IPPC hub was told once, of the garbled envelope's first refusal; replays tell it
    // nothing.
    let acknowledgements = hub
        .requests()
        .iter()
        .filter(|(operation, _)| operation.contains("Acknowledge"))
        .count();
    assert_eq!(acknowledgements, 1, "{:?}", hub.requests());
    hub.assert_clean();
    tb.stop_and_clean().await;
}
