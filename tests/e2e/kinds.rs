//! Kinds as data through the real broker: an e-Phyto in the ASW envelope with the receiving
//! hub's acknowledgement, and a kind no code knows (the example AKFTA C/O of
//! `schemas/samples/kinds/kr-co/`, in two versions read side by side, with a receipt kind of its
//! own) added to the hubs' kinds directory, exchanged, signed, verified, journaled and
//! acknowledged by the receiving hub, and refused (ROUTE-005) for a partner that does not
//! receive it.

use std::path::{Path, PathBuf};

use asw_e2e::{deployment_with_example_kind, document, state, take, testbed_with};
use asw_model::DocumentKind;
use asw_model::document::{Document, XmlBody};
use asw_route::names;

use super::{WAIT, is_doc, outcome};

fn schemas() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../schemas")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_ephyto_travels_in_the_asw_envelope_and_is_acknowledged_by_the_receiving_hub() {
    let (tb, _dir) = testbed_with(&["VN", "TH"], |_| {}).await;
    let (vn, th) = (state("VN"), state("TH"));
    let ephyto = document(DocumentKind::Ephyto, "VN", "TH");
    let id = ephyto.header.message_id;
    tb.send_document(&ephyto).await.expect("send");
    let got = tb
        .wait_for(th, "ephyto.VN", WAIT, |m| is_doc(m, "ephyto.VN", id))
        .await
        .expect("delivered");
    assert_eq!(got.header("x-asw-signer"), Some("VN"));
    let body = String::from_utf8_lossy(&got.body);
    assert!(body.contains("<ds:Signature") && body.contains("SPSCertificate"));
    tb.wait_for(vn, "acknowledged", WAIT, |m| {
        outcome(m, "outcome.ephyto.TH", id, "acknowledged")
    })
    .await
    .expect("acknowledged");
    let receipt = tb
        .wait_for(vn, "ephyto-ack.TH", WAIT, |m| {
            m.routing_key == "ephyto-ack.TH"
                && m.properties.correlation_id.as_deref() == Some(id.to_string().as_str())
        })
        .await
        .expect("the receiving hub's acknowledgement");
    let receipt = String::from_utf8_lossy(&receipt.body);
    assert!(receipt.contains("SPSAcknowledgement") && receipt.contains("<ds:Signature"));
    tb.stop_and_clean().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_kind_added_as_files_is_exchanged_and_refused_where_the_partner_does_not_receive_it() {
    let schemas_dir = tempfile::tempdir().expect("temp dir");
    let hub_toml = deployment_with_example_kind(schemas_dir.path());
    let (tb, _dir) = testbed_with(&["VN", "TH", "SG"], |o| o.hub_toml = hub_toml).await;
    let (vn, th) = (state("VN"), state("TH"));
    let kind: DocumentKind = "kr-co".parse().expect("installed by the hubs");
    let body = std::fs::read_to_string(schemas().join("samples/kinds/kr-co/kr-co-body.xml"))
        .expect("body");
    let mut co = document(DocumentKind::FormD, "VN", "TH");
    co.header.kind = kind;
    co.header.version = "1.0".into();
    co.document = Document::Xml(XmlBody { kind, xml: body });
    let id = co.header.message_id;
    tb.send_document(&co).await.expect("send");
    let got = tb
        .wait_for(th, "kr-co.VN", WAIT, |m| is_doc(m, "kr-co.VN", id))
        .await
        .expect("delivered");
    assert_eq!(got.header("x-asw-signer"), Some("VN"));
    let delivered = String::from_utf8_lossy(&got.body);
    assert!(delivered.contains("<ds:Signature") && delivered.contains("VN-AK-2026-000417"));
    // The receiving hub writes and signs the receipt (kr-co-ack, a kind as data too), and the
    // sender's journal moves to acknowledged, as for an e-Form D.
    let acknowledged = |id: uuid::Uuid| {
        let tb = &tb;
        async move {
            tb.wait_for(vn, "acknowledged", WAIT, |m| {
                outcome(m, "outcome.kr-co.TH", id, "acknowledged")
            })
            .await
            .expect("acknowledged");
            let receipt = tb
                .wait_for(vn, "kr-co-ack.TH", WAIT, |m| {
                    m.routing_key == "kr-co-ack.TH"
                        && m.properties.correlation_id.as_deref() == Some(id.to_string().as_str())
                })
                .await
                .expect("the receiving hub's receipt");
            assert_eq!(receipt.header("x-asw-signer"), Some("TH"));
            let body = String::from_utf8_lossy(&receipt.body);
            assert!(
                body.contains("KoreaCOAck") && body.contains(">received<"),
                "{body}"
            );
            assert!(body.contains("<ds:Signature"), "{body}");
            let journal = tb.hub(vn).expect("hub").journal();
            let entry = journal
                .find_original(asw_journal::Direction::Outbound, id)
                .expect("journal")
                .expect("journaled");
            assert_eq!(entry.summary.state, asw_journal::State::Acknowledged);
        }
    };
    acknowledged(id).await;
    // Journaled on both sides, with its business reference read from the kind's data.
    for (hub, direction) in [
        (vn, asw_journal::Direction::Outbound),
        (th, asw_journal::Direction::Inbound),
    ] {
        let journal = tb.hub(hub).expect("hub").journal();
        let entry = journal
            .find_original(direction, id)
            .expect("journal")
            .unwrap_or_else(|| panic!("{hub} journaled {id}"));
        assert_eq!(entry.summary.header.kind, kind, "{hub}");
    }
    // Version 2.0, read beside 1.0 (its XSD requires an invoice number): exchanged and
    // acknowledged too.
    let mut co_2 = co.clone();
    co_2.header.message_id = uuid::Uuid::new_v4();
    co_2.header.version = "2.0".into();
    co_2.document = Document::Xml(XmlBody {
        kind,
        xml: std::fs::read_to_string(schemas().join("samples/kinds/kr-co/kr-co-2-body.xml"))
            .expect("body"),
    });
    tb.send_document(&co_2).await.expect("send");
    let got = tb
        .wait_for(th, "kr-co.VN", WAIT, |m| {
            is_doc(m, "kr-co.VN", co_2.header.message_id)
        })
        .await
        .expect("delivered");
    let delivered = String::from_utf8_lossy(&got.body);
    assert!(
        delivered.contains("<asw:DocumentVersion>2.0</asw:DocumentVersion>")
            && delivered.contains("INV-2026-1187"),
        "{delivered}"
    );
    acknowledged(co_2.header.message_id).await;
    // A 2.0 header over a 1.0 body: refused by the 2.0 XSD before it leaves.
    let mut co_2_bad = co.clone();
    co_2_bad.header.message_id = uuid::Uuid::new_v4();
    co_2_bad.header.version = "2.0".into();
    tb.send_document(&co_2_bad).await.expect("send");
    let told = tb
        .wait_for(vn, "rejected", WAIT, |m| {
            outcome(
                m,
                "outcome.kr-co.TH",
                co_2_bad.header.message_id,
                "rejected",
            )
        })
        .await
        .expect("rejected");
    let json: serde_json::Value = serde_json::from_slice(&told.body).expect("JSON");
    assert_eq!(json["reasons"][0]["code"], "XSD", "{json}");
    assert!(
        json["reasons"][0]["text"]
            .as_str()
            .is_some_and(|t| t.contains("InvoiceNumber")),
        "{json}"
    );
    // A rule of the kind, as data: refused before it leaves, with the rule's id and line.
    let mut bad = document(DocumentKind::FormD, "VN", "TH");
    bad.header.kind = kind;
    bad.header.version = "1.0".into();
    let xml = std::fs::read_to_string(schemas().join("samples/kinds/kr-co/kr-co-body.xml"))
        .expect("body")
        .replace(">WO<", ">XX<");
    bad.document = Document::Xml(XmlBody { kind, xml });
    tb.send_document(&bad).await.expect("send");
    let told = tb
        .wait_for(vn, "rejected", WAIT, |m| {
            outcome(m, "outcome.kr-co.TH", bad.header.message_id, "rejected")
        })
        .await
        .expect("rejected");
    let json: serde_json::Value = serde_json::from_slice(&told.body).expect("JSON");
    assert_eq!(json["reasons"][0]["code"], "KRCO-001", "{json}");
    // SG does not receive it (partners file): ROUTE-005, nothing leaves.
    let mut to_sg = co.clone();
    to_sg.header.message_id = uuid::Uuid::new_v4();
    to_sg.header.receiver = state("SG");
    tb.send_document(&to_sg).await.expect("send");
    let told = tb
        .wait_for(vn, "rejected", WAIT, |m| {
            outcome(m, "outcome.kr-co.SG", to_sg.header.message_id, "rejected")
        })
        .await
        .expect("refused");
    let json: serde_json::Value = serde_json::from_slice(&told.body).expect("JSON");
    assert_eq!(json["reasons"][0]["code"], "ROUTE-005", "{json}");
    let parked = take(&tb, vn, names::PARKED_QUEUE, 3, WAIT).await;
    assert_eq!(
        parked.len(),
        3,
        "the 2.0 without invoice number, the rule breach and the refusal are parked"
    );
    tb.stop_and_clean().await;
}
