//! The IPPC ePhyto Hub as a partner channel, export side, through the real broker and the
//! simulated hub: VN's hub with TH's `ephyto` channel set to `ippc-hub` in its partners file
//! sends VN's e-Phyto with `DeliverEnvelope` (not over the ASW), journals the hub's delivery
//! number, and turns the hub's tracking into the back-office's outcomes; imports come the other
//! way. Korea, a partner beyond ASEAN, does both once the partners file enables it, and a hub
//! with the shipped file refuses an e-Phyto for it (`ROUTE-007`).

use std::time::Duration;

use asw_e2e::ippc::{
    IppcExchange, certificate_of, delivers, envelope_of, hub_section, number_of, partners_file,
    publish_copy, until_numbered,
};
use asw_e2e::{document, state, testbed, testbed_with};
use asw_gateway::channel::ippc::importing::import_message_id;
use asw_gateway::config::HubConfig;
use asw_journal::{Direction, State};
use asw_model::DocumentKind;
use asw_testbed::ephyto_hub::{EphytoHub, InjectedContent, InjectedFault, Tracking};
use base64::Engine as _;

use super::{WAIT, outcome};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_ephyto_for_a_partner_on_the_ippc_hub_is_delivered_there_and_tracked_to_its_outcome() {
    let vn = state("VN");
    let IppcExchange {
        hub,
        tb,
        dirs: _dirs,
    } = IppcExchange::start("TH", "VN", |_| {}).await;
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
    assert_eq!(
        delivers(&hub),
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
    let sent = until_numbered(&*journal, first_id).await.summary;
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
    let th = state("TH");
    let IppcExchange {
        hub,
        tb,
        dirs: _dirs,
    } = IppcExchange::start("VN", "TH", |_| {}).await;
    let ephyto = document(DocumentKind::Ephyto, "VN", "TH");
    let certificate = certificate_of(&ephyto);
    // Our acknowledgement of the first import is lost: the hub lists it again at the next
    // poll, and it is acknowledged again, not delivered twice.
    hub.fail_next_call("AcknowledgeEnvelopeReceipt", InjectedFault::Http(503));
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
    let journal = tb.hub(th).expect("TH's hub").journal();
    // Journaled as an inbound message like any other, with the hub delivery number.
    let id = import_message_id(&number);
    assert_eq!(
        got.header("x-asw-message-id"),
        Some(id.to_string().as_str())
    );
    let deadline = tokio::time::Instant::now() + WAIT;
    let record = loop {
        let record = journal
            .get(Direction::Inbound, id)
            .expect("journal")
            .expect("the import is journaled");
        if record.summary.state == State::Delivered {
            break record;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "the import stays {}",
            record.summary.state
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    assert_eq!(
        record.summary.transport_ref.as_deref(),
        Some(number.as_str())
    );
    assert_eq!(record.summary.reason, None);
    assert_eq!(record.bytes, certificate.as_bytes());
    let h = &record.summary.header;
    assert_eq!(
        (h.sender, h.receiver, h.kind),
        (state("VN"), th, DocumentKind::Ephyto)
    );
    let found = journal
        .find_by_transport_ref(Direction::Inbound, &number)
        .expect("journal")
        .expect("found by its hub delivery number");
    assert_eq!(found.summary.header.message_id, id);
    let listed = journal
        .list(&asw_journal::Filter {
            direction: Some(Direction::Inbound),
            kind: Some(DocumentKind::Ephyto),
            ..asw_journal::Filter::default()
        })
        .expect("journal");
    assert!(
        listed.iter().any(|m| m.header.message_id == id),
        "{listed:?}"
    );
    // Readable but invalid: delivered with its problems, journaled with them as the reason.
    let invalid = include_str!(
        "../../schemas/samples/ephyto/invalid/XSD-commodity-without-sequence-number.xml"
    );
    let warned = hub.inject(
        "VN",
        "TH",
        "VN-PC-INVALID",
        InjectedContent::Base64(invalid.as_bytes().to_vec()),
    );
    let got = tb
        .wait_for(th, "the invalid ephyto.VN", WAIT, |m| {
            m.header("x-asw-hub-delivery-number") == Some(warned.as_str())
        })
        .await
        .expect("delivered with warnings");
    let warnings = got.header("x-asw-warnings").expect("warnings").to_owned();
    let deadline = tokio::time::Instant::now() + WAIT;
    let summary = loop {
        let summary = journal
            .get(Direction::Inbound, import_message_id(&warned))
            .expect("journal")
            .expect("journaled")
            .summary;
        if summary.state == State::Delivered {
            break summary;
        }
        assert!(tokio::time::Instant::now() < deadline, "never delivered");
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    let reason = summary.reason.expect("the warnings as the reason");
    assert_eq!(reason.code, "EPHYTO-WARNINGS");
    assert_eq!(reason.text, warnings);
    assert_eq!(summary.transport_ref.as_deref(), Some(warned.as_str()));
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
        let warned = hub.envelope(&warned).expect("kept").tracking;
        if good == Tracking::Delivered
            && bad == Tracking::DeliveredNotReadable
            && warned == Tracking::DeliveredWithWarnings
        {
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
    // The lost acknowledgement was repeated (the hub shows Delivered) and the certificate
    // reached the back-office once.
    let acknowledgements = hub
        .requests()
        .iter()
        .filter(|(operation, _)| operation == "AcknowledgeEnvelopeReceipt")
        .count();
    assert!(acknowledgements >= 2, "{:?}", hub.requests());
    let deliveries = tb
        .received(th)
        .iter()
        .filter(|m| m.header("x-asw-hub-delivery-number") == Some(number.as_str()))
        .count();
    assert_eq!(deliveries, 1, "delivered more than once");
    hub.assert_clean();
    tb.stop_and_clean().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_ephyto_whose_ippc_tracking_stays_pending_is_never_resent_by_the_acks_watcher() {
    let vn = state("VN");
    let IppcExchange {
        hub,
        tb,
        dirs: _dirs,
    } = IppcExchange::start("TH", "VN", |o| {
        // Nobody pulls TH's ASW queue: an e-Form D for TH never gets its receipt.
        o.pull = true;
        o.acks = Some(asw_gateway::config::AcksConfig {
            timeout: Duration::from_millis(300),
            resend: 3,
            check_every: Duration::from_millis(100),
        });
    })
    .await;
    let journal = tb.hub(vn).expect("VN's hub").journal();
    let ephyto = document(DocumentKind::Ephyto, "VN", "TH");
    let ephyto_id = ephyto.header.message_id;
    tb.send_document(&ephyto).await.expect("send");
    let envelope = envelope_of(&hub, &number_of(&certificate_of(&ephyto))).await;
    let deadline = tokio::time::Instant::now() + WAIT;
    while journal
        .get(Direction::Outbound, ephyto_id)
        .expect("journal")
        .expect("journaled")
        .summary
        .transport_ref
        .is_none()
    {
        assert!(tokio::time::Instant::now() < deadline, "never sent");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    // The witness that the watcher looked past the e-Phyto's deadline: an e-Form D sent after
    // it, over the ASW, reported late and resent.
    let formd = document(DocumentKind::FormD, "VN", "TH");
    let formd_id = formd.header.message_id;
    tb.send_document(&formd).await.expect("send");
    let deadline = tokio::time::Instant::now() + WAIT;
    while !journal
        .history(Direction::Outbound, formd_id)
        .expect("history")
        .iter()
        .any(|t| t.event == asw_journal::Event::Resent)
    {
        assert!(
            tokio::time::Instant::now() < deadline,
            "the e-Form D was never resent"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    // The e-Phyto was left to the hub's tracking: still sent, delivered to the hub once.
    let summary = journal
        .get(Direction::Outbound, ephyto_id)
        .expect("journal")
        .expect("journaled")
        .summary;
    assert_eq!(summary.state, State::Sent);
    assert!(
        journal
            .history(Direction::Outbound, ephyto_id)
            .expect("history")
            .iter()
            .all(|t| t.event != asw_journal::Event::Resent && t.to != State::AwaitingAck),
        "the watcher claimed the e-Phyto"
    );
    assert_eq!(delivers(&hub), 1, "{:?}", hub.requests());
    assert!(
        !tb.received(vn)
            .iter()
            .any(|m| outcome(m, "outcome.ephyto.TH", ephyto_id, "awaiting-ack")),
        "the e-Phyto was reported awaiting-ack"
    );
    // Its tracking is its receipt.
    hub.set_tracking(&envelope.number, Tracking::Delivered, None);
    tb.wait_for(vn, "acknowledged", WAIT, |m| {
        outcome(m, "outcome.ephyto.TH", ephyto_id, "acknowledged")
    })
    .await
    .expect("acknowledged once the hub says Delivered");
    hub.assert_clean();
    tb.stop_and_clean().await;
}

/// Korea is a row of the shipped partners file, disabled; a deployment whose file enables it
/// (network akfta, every kind through the IPPC hub) exchanges e-Phyto with it through the hub,
/// with no `[partners.KR]` section: VN's e-Phyto goes out and is tracked to acknowledged, and
/// Korea's certificate for VN comes in to VN's back-office.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_partner_beyond_asean_enabled_in_the_partners_file_exchanges_ephyto_through_the_ippc_hub()
{
    let sim_dir = tempfile::tempdir().expect("dir");
    let hub = EphytoHub::start(sim_dir.path(), &["VN", "KR"])
        .await
        .expect("the simulated ePhyto hub");
    let vn = state("VN");
    let partners = partners_file(sim_dir.path(), "KR", |row| {
        row.replace("enabled = false", "enabled = true")
    });
    let (tb, _dir) = testbed_with(&["VN"], |o| {
        o.hub_toml = partners;
        o.hub_sections.insert(vn, hub_section(&hub, "VN"));
    })
    .await;
    let config = HubConfig::load(tb.config_file(vn).expect("VN's configuration")).expect("loads");
    let kr = state("KR");
    assert_eq!(config.ippc_only, vec![kr]);
    assert!(config.partners.is_empty(), "no [partners.KR] section");
    assert!(config.via_ippc(kr, "ephyto"));

    // Export: VN's back-office sends KR an e-Phyto; it reaches the hub for KR, and VN's
    // back-office is told acknowledged once the hub says Delivered.
    let ephyto = document(DocumentKind::Ephyto, "VN", "KR");
    let id = ephyto.header.message_id;
    let certificate = certificate_of(&ephyto);
    assert!(
        certificate.contains("Republic of Korea"),
        "KR's name from its row"
    );
    tb.send_document(&ephyto).await.expect("send");
    let envelope = envelope_of(&hub, &number_of(&certificate)).await;
    assert_eq!((envelope.from.as_str(), envelope.to.as_str()), ("VN", "KR"));
    hub.set_tracking(&envelope.number, Tracking::Delivered, None);
    tb.wait_for(vn, "acknowledged", WAIT, |m| {
        outcome(m, "outcome.ephyto.KR", id, "acknowledged")
    })
    .await
    .expect("acknowledged once the hub says Delivered");
    let journal = tb.hub(vn).expect("VN's hub").journal();
    let deadline = tokio::time::Instant::now() + WAIT;
    loop {
        let record = journal
            .get(Direction::Outbound, id)
            .expect("journal")
            .expect("journaled");
        if record.summary.state == State::Acknowledged {
            assert_eq!(
                record.summary.transport_ref.as_deref(),
                Some(envelope.number.as_str())
            );
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "never journaled acknowledged: {:?}",
            record.summary.state
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }

    // Import: Korea's certificate for VN, placed at the hub, is delivered to VN's back-office
    // as `ephyto.KR` and acknowledged at the hub.
    let from_kr = certificate_of(&document(DocumentKind::Ephyto, "KR", "VN"));
    let number = hub.inject(
        "KR",
        "VN",
        &number_of(&from_kr),
        InjectedContent::Base64(from_kr.clone().into_bytes()),
    );
    let got = tb
        .wait_for(vn, "ephyto.KR", WAIT, |m| {
            m.routing_key == "ephyto.KR"
                && m.header("x-asw-hub-delivery-number") == Some(number.as_str())
        })
        .await
        .expect("delivered to VN's back-office");
    assert_eq!(String::from_utf8_lossy(&got.body), from_kr);
    assert_eq!(got.header("x-asw-channel"), Some("ippc-hub"));
    let deadline = tokio::time::Instant::now() + WAIT;
    while hub.envelope(&number).expect("kept").tracking != Tracking::Delivered {
        assert!(
            tokio::time::Instant::now() < deadline,
            "the import was never acknowledged at the hub"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    hub.assert_clean();
    tb.stop_and_clean().await;
}

/// With the shipped partners file Korea is known but not enabled: VN's hub refuses an e-Phyto
/// for it with ROUTE-007 and tells the back-office, and nothing reaches any hub.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_hub_with_the_shipped_partners_file_refuses_an_ephyto_for_a_disabled_partner() {
    let (tb, _dir) = testbed(&["VN"]).await;
    let vn = state("VN");
    let ephyto = document(DocumentKind::Ephyto, "VN", "KR");
    let id = ephyto.header.message_id;
    tb.send_document(&ephyto).await.expect("send");
    let told = tb
        .wait_for(vn, "rejected", WAIT, |m| {
            outcome(m, "outcome.ephyto.KR", id, "rejected")
        })
        .await
        .expect("rejected");
    let body: serde_json::Value = serde_json::from_slice(&told.body).expect("json");
    assert_eq!(body["reasons"][0]["code"], "ROUTE-007");
    assert_eq!(
        body["reasons"][0]["text"],
        "receiver KR is in the partners file but not enabled"
    );
    let record = tb
        .hub(vn)
        .expect("VN's hub")
        .journal()
        .get(Direction::Outbound, id)
        .expect("journal")
        .expect("journaled");
    assert_eq!(record.summary.state, State::Failed);
    tb.stop_and_clean().await;
}

/// A copy of a certificate the IPPC hub already took reaches the export while VN's journal
/// cannot answer whether it went through (its messages table renamed away under the running
/// hub): the export asks again with back-off (counted in `aswhub_journal_errors_total`) and
/// sends nothing; once the journal answers, the copy is recognised and dropped, and the hub
/// holds the certificate once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_journal_that_cannot_say_whether_an_ephyto_went_through_holds_the_copy_back() {
    let vn = state("VN");
    let IppcExchange {
        hub,
        tb,
        dirs: _dirs,
    } = IppcExchange::start("TH", "VN", |o| o.metrics = true).await;
    let address = tb
        .hub(vn)
        .and_then(|h| h.metrics_address())
        .expect("metrics address");
    let journal = tb.hub(vn).expect("VN's hub").journal();
    let first = document(DocumentKind::Ephyto, "VN", "TH");
    let id = first.header.message_id;
    let nppo_number = number_of(&certificate_of(&first));
    tb.send_document(&first).await.expect("send");
    envelope_of(&hub, &nppo_number).await;
    let signed = until_numbered(&*journal, id).await.bytes;
    assert_eq!(delivers(&hub), 1);

    // The journal loses its messages table; a copy of the certificate arrives.
    let file = tb.options().dir.join("vn/journal.db");
    let rename = |from: &str, to: &str| {
        let db = rusqlite::Connection::open(&file).expect("the journal file");
        db.busy_timeout(Duration::from_secs(10))
            .expect("busy timeout");
        db.execute_batch(&format!("ALTER TABLE {from} RENAME TO {to}"))
            .expect("rename");
    };
    rename("messages", "messages_away");
    let series = r#"aswhub_journal_errors_total{operation="ippc-delivered-before"}"#;
    let before = super::metrics::value(&super::metrics::scrape(address).await, series);
    publish_copy(&tb, vn, state("TH"), id, &signed).await;
    // Asked at least twice, and nothing sent meanwhile.
    let deadline = tokio::time::Instant::now() + WAIT;
    while super::metrics::value(&super::metrics::scrape(address).await, series) < before + 2.0 {
        assert!(
            tokio::time::Instant::now() < deadline,
            "the export never asked the journal again"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(
        delivers(&hub),
        1,
        "sent while the journal could not say: {:?}",
        hub.requests()
    );

    // The journal answers again: the copy is dropped, a later certificate goes through.
    rename("messages_away", "messages");
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
    assert_eq!(delivers(&hub), 2, "{:?}", hub.requests());
    hub.assert_clean();
    tb.stop_and_clean().await;
}
