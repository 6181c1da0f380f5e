//! The IPPC ePhyto Hub as a partner channel, export side, through the real broker and the
//! simulated hub: VN's hub with TH's `ephyto` channel set to `ippc-hub` in its partners file
//! sends VN's e-Phyto with `DeliverEnvelope` (not over the ASW), journals the hub's delivery
//! number, and turns the hub's tracking into the back-office's outcomes.

use std::path::Path;
use std::time::Duration;

use asw_e2e::{document, state, testbed_with};
use asw_journal::{Direction, State};
use asw_model::DocumentKind;
use asw_model::document::Document;
use asw_testbed::ephyto_hub::{
    EphytoHub, InjectedContent, InjectedFault, StoredEnvelope, Tracking,
};
use base64::Engine as _;

use super::{WAIT, outcome};

/// A partners file in which `code`'s e-Phyto goes through the IPPC hub, named by
/// `partners_file` (for every hub), and the `[ephyto_hub]` section of the simulator with
/// `client`'s certificate (for that hub alone).
fn deployment(dir: &Path, hub: &EphytoHub, code: &str, client: &str) -> (String, String) {
    let shipped = std::fs::read_to_string(
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../schemas/partners.toml"),
    )
    .expect("partners");
    let rows: Vec<String> = shipped
        .split("[[partner]]")
        .map(|row| {
            if row.contains(&format!("\ncode = \"{code}\"")) {
                row.replace(
                    "channel = \"asw-broker\"\n",
                    "channel = \"asw-broker\"\n[partner.channels]\nephyto = \"ippc-hub\"\n",
                )
            } else {
                row.to_owned()
            }
        })
        .collect();
    let partners = dir.join("partners-ippc.toml");
    std::fs::write(&partners, rows.join("[[partner]]")).expect("write");
    let files = hub.pki.client(client).expect("the client certificate");
    (
        format!("partners_file = {:?}\n", partners.display().to_string()),
        format!(
            "[ephyto_hub]\nurl = {:?}\nca = {:?}\ncert = {:?}\nkey = {:?}\ntrack_every = \"200ms\"\nimport_every = \"200ms\"\n",
            hub.url(),
            hub.pki.ca.display().to_string(),
            files.cert.display().to_string(),
            files.key.display().to_string(),
        ),
    )
}

/// Waits for the simulator to hold an envelope with this NPPO certificate number.
async fn envelope_of(hub: &EphytoHub, nppo_number: &str) -> StoredEnvelope {
    let deadline = tokio::time::Instant::now() + WAIT;
    loop {
        if let Some(e) = hub
            .envelopes()
            .into_iter()
            .find(|e| e.nppo_number == nppo_number)
        {
            return e;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "no envelope {nppo_number} at the hub; requests: {:?}",
            hub.requests()
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

fn certificate_of(doc: &asw_model::document::Message) -> String {
    let Document::Xml(body) = &doc.document else {
        panic!("an e-Phyto has an XML body");
    };
    let xml = body.xml.trim();
    xml.strip_prefix("<?xml")
        .and_then(|r| r.split_once("?>"))
        .map_or(xml, |(_, r)| r)
        .trim()
        .to_owned()
}

fn number_of(xml: &str) -> String {
    let start = xml.find("<ram:ID>").expect("ID") + "<ram:ID>".len();
    let end = xml[start..].find('<').expect("end") + start;
    xml[start..end].to_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_ephyto_for_a_partner_on_the_ippc_hub_is_delivered_there_and_tracked_to_its_outcome() {
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
    let journal = tb.hub(vn).expect("VN's hub").journal();

    // Delivered: the certificate reaches the hub as itself, with its header, once, after the
    // hub failed twice (down for maintenance, then a HubWebException), and VN's journal keeps
    // the hub's delivery number with the move to sent.
    hub.fail_next_call("DeliverEnvelope", InjectedFault::Http(503));
    hub.fail_next_call(
        "DeliverEnvelope",
        InjectedFault::Hub("database busy".into()),
    );
    let first = document(DocumentKind::Ephyto, "VN", "TH");
    let first_id = first.header.message_id;
    let certificate = certificate_of(&first);
    tb.send_document(&first).await.expect("send");
    let envelope = envelope_of(&hub, &number_of(&certificate)).await;
    let delivers = hub
        .requests()
        .iter()
        .filter(|(operation, _)| operation == "DeliverEnvelope")
        .count();
    assert_eq!(
        delivers,
        3,
        "two failures, then delivered: {:?}",
        hub.requests()
    );
    assert_eq!(
        hub.envelopes()
            .iter()
            .filter(|e| e.nppo_number == envelope.nppo_number)
            .count(),
        1
    );
    assert_eq!((envelope.from.as_str(), envelope.to.as_str()), ("VN", "TH"));
    assert_eq!(envelope.certificate_type, 851);
    assert_eq!(envelope.tracking, Tracking::PendingDelivery);
    let content = base64::engine::general_purpose::STANDARD
        .decode(envelope.content.trim())
        .expect("Content is base64");
    // The certificate as signed in VN's envelope (canonical XML: `'` is not escaped there).
    assert!(
        String::from_utf8_lossy(&content) == certificate.replace("&apos;", "'"),
        "Content is not the certificate of the document sent"
    );
    let deadline = tokio::time::Instant::now() + WAIT;
    let sent = loop {
        let record = journal
            .get(Direction::Outbound, first_id)
            .expect("journal")
            .expect("journaled");
        if record.summary.transport_ref.is_some() {
            break record.summary;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "never journaled sent with its number"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    assert_eq!(sent.state, State::Sent);
    assert_eq!(
        sent.transport_ref.as_deref(),
        Some(envelope.number.as_str())
    );
    hub.set_tracking(&envelope.number, Tracking::Delivered, None);
    tb.wait_for(vn, "acknowledged", WAIT, |m| {
        outcome(m, "outcome.ephyto.TH", first_id, "acknowledged")
    })
    .await
    .expect("acknowledged once the hub says Delivered");
    let deadline = tokio::time::Instant::now() + WAIT;
    while journal
        .get(Direction::Outbound, first_id)
        .expect("journal")
        .expect("journaled")
        .summary
        .state
        != State::Acknowledged
    {
        assert!(
            tokio::time::Instant::now() < deadline,
            "never journaled acknowledged"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }

    // FailedDelivery: rejected, with the hub's message.
    let second = document(DocumentKind::Ephyto, "VN", "TH");
    let second_id = second.header.message_id;
    tb.send_document(&second).await.expect("send");
    let envelope = envelope_of(&hub, &number_of(&certificate_of(&second))).await;
    hub.set_tracking(
        &envelope.number,
        Tracking::FailedDelivery,
        Some("TH NPPO: consignee unknown"),
    );
    let rejected = tb
        .wait_for(vn, "rejected", WAIT, |m| {
            outcome(m, "outcome.ephyto.TH", second_id, "rejected")
        })
        .await
        .expect("rejected once the hub says FailedDelivery");
    let body: serde_json::Value = serde_json::from_slice(&rejected.body).expect("json");
    assert_eq!(body["reasons"][0]["code"], "EPHYTO-HUB-FailedDelivery");
    assert_eq!(body["reasons"][0]["text"], "TH NPPO: consignee unknown");
    // Neither went over the ASW: TH's hub never saw them.
    let th = tb.hub(state("TH")).expect("TH's hub").journal();
    for id in [first_id, second_id] {
        assert!(
            th.get(Direction::Inbound, id).expect("journal").is_none(),
            "{id} reached TH over the ASW"
        );
    }
    hub.assert_clean();
    tb.stop_and_clean().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_ephyto_from_the_ippc_hub_is_delivered_to_the_back_office_and_acknowledged_there() {
    let sim_dir = tempfile::tempdir().expect("dir");
    let hub = EphytoHub::start(sim_dir.path(), &["VN", "TH"])
        .await
        .expect("the simulated ePhyto hub");
    let th = state("TH");
    let (hub_toml, section) = deployment(sim_dir.path(), &hub, "VN", "TH");
    let (tb, _dir) = testbed_with(&["VN", "TH"], |o| {
        o.hub_toml = hub_toml;
        o.hub_sections.insert(th, section);
    })
    .await;
    let ephyto = document(DocumentKind::Ephyto, "VN", "TH");
    let certificate = certificate_of(&ephyto);
    let number = hub.inject(
        "VN",
        "TH",
        &number_of(&certificate),
        InjectedContent::Base64(certificate.clone().into_bytes()),
    );
    let got = tb
        .wait_for(th, "ephyto.VN", WAIT, |m| {
            m.routing_key == "ephyto.VN"
                && m.header("x-asw-hub-delivery-number") == Some(number.as_str())
        })
        .await
        .expect("delivered to TH's back-office");
    assert_eq!(String::from_utf8_lossy(&got.body), certificate);
    assert_eq!(got.header("x-asw-channel"), Some("ippc-hub"));
    assert_eq!(got.header("x-asw-warnings"), None);
    // Unreadable: refused with the reason, never delivered.
    let garbled = hub.inject(
        "VN",
        "TH",
        "VN-PC-GARBLED",
        InjectedContent::Text("%%%".into()),
    );
    let deadline = tokio::time::Instant::now() + WAIT;
    loop {
        let (good, bad) = (
            hub.envelope(&number).expect("kept").tracking,
            hub.envelope(&garbled).expect("kept").tracking,
        );
        if good == Tracking::Delivered && bad == Tracking::DeliveredNotReadable {
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "tracking stays {good:?}, {bad:?}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let settled = tb
        .hub(th)
        .expect("TH's hub")
        .journal()
        .settlement("ippc", &garbled)
        .expect("journal")
        .expect("settled");
    assert_eq!(settled.outcome, asw_journal::SettlementOutcome::Parked);
    hub.assert_clean();
    tb.stop_and_clean().await;
}
