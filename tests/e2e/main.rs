//! End-to-end tests: several hubs on the real local broker, each in a vhost of its own, driven
//! the way back-offices, partner gateways and operators use them.

mod alerts;
mod browser;
mod cleanup;
mod console;
mod external;
mod identities;
mod ippc;
mod kinds;
mod metrics;
mod tls;

use std::time::Duration;

use asw_e2e::{
    document, publish_as_partner, publish_as_partner_with, state, take, testbed, testbed_with,
};
use asw_model::DocumentKind;
use asw_route::{Permissions, names};
use asw_sign::Signer;
use asw_sign::keygen::{self, KeyAlgorithm};
use asw_testbed::{Received, Testbed, taken_by_deduplicating_back_office};
use time::OffsetDateTime;

const WAIT: Duration = Duration::from_secs(30);

fn is_doc(m: &Received, key: &str, id: uuid::Uuid) -> bool {
    m.routing_key == key && m.header(names::HEADER_MESSAGE_ID) == Some(id.to_string().as_str())
}

fn outcome(m: &Received, key: &str, id: uuid::Uuid, what: &str) -> bool {
    m.routing_key == key
        && m.header(names::HEADER_MESSAGE_ID) == Some(id.to_string().as_str())
        && m.header(names::HEADER_OUTCOME) == Some(what)
}

/// Has VN's back-office send TH an e-Form D that breaks FORMD-001 (issued in MY) and waits for
/// its `rejected` outcome; returns the document's id, the bytes sent and that outcome.
async fn send_refused_formd(tb: &Testbed) -> (uuid::Uuid, String, Received) {
    let form_d = document(DocumentKind::FormD, "VN", "TH");
    let id = form_d.header.message_id;
    let xml = form_d.to_xml().expect("xml").replacen(
        "<fd:IssuedIn>VN</fd:IssuedIn>",
        "<fd:IssuedIn>MY</fd:IssuedIn>",
        1,
    );
    tb.send(state("VN"), DocumentKind::FormD, xml.as_bytes())
        .await
        .expect("send the refused e-Form D");
    let told = tb
        .wait_for(state("VN"), "rejected", WAIT, |m| {
            outcome(m, "outcome.formd.TH", id, "rejected")
        })
        .await
        .expect("its rejected outcome");
    (id, xml, told)
}

/// How many copies of `id` a back-office takes, in arrival order, when it drops the copies the
/// hub marks as possible duplicates of a message id it has already taken.
fn taken_by_back_office(received: &[Received], key: &str, id: uuid::Uuid) -> usize {
    taken_by_deduplicating_back_office(
        received
            .iter()
            .filter(|m| is_doc(m, key, id))
            .map(Received::possible_duplicate),
    )
}

fn count(received: &[Received], key: &str, id: uuid::Uuid) -> usize {
    received.iter().filter(|m| is_doc(m, key, id)).count()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_states_exchange_documents_answers_and_outcomes() {
    let (tb, _dir) = testbed(&["VN", "TH", "SG"]).await;
    let (vn, th, sg) = (state("VN"), state("TH"), state("SG"));

    // VN sends an e-Form D to TH: TH's back-office receives the exact signed document, VN's hears
    // it was acknowledged and gets TH's signed receipt.
    let form_d = document(DocumentKind::FormD, "VN", "TH");
    let id = form_d.header.message_id;
    tb.send_document(&form_d).await.expect("send");
    let got = tb
        .wait_for(th, "formd.VN", WAIT, |m| is_doc(m, "formd.VN", id))
        .await
        .expect("delivered");
    assert_eq!(got.header("x-asw-signer"), Some("VN"));
    let body = String::from_utf8(got.body.clone()).expect("utf-8");
    assert!(
        body.contains("<ds:Signature") && body.contains(&id.to_string()),
        "delivered the signed document"
    );
    tb.wait_for(vn, "acknowledged", WAIT, |m| {
        outcome(m, "outcome.formd.TH", id, "acknowledged")
    })
    .await
    .expect("ack outcome");
    let receipt = tb
        .wait_for(vn, "formd-ack.TH", WAIT, |m| {
            m.routing_key == "formd-ack.TH"
                && m.properties.correlation_id.as_deref() == Some(id.to_string().as_str())
        })
        .await
        .expect("receipt");
    assert!(String::from_utf8_lossy(&receipt.body).contains("<ack:Status>received</ack:Status>"));

    // SG sends an ACDD to VN; VN's customs answers with a Customs Response correlated to it.
    let acdd = document(DocumentKind::Acdd, "SG", "VN");
    let acdd_id = acdd.header.message_id;
    tb.send_document(&acdd).await.expect("send");
    tb.wait_for(vn, "acdd.SG", WAIT, |m| is_doc(m, "acdd.SG", acdd_id))
        .await
        .expect("delivered");
    tb.wait_for(sg, "acknowledged", WAIT, |m| {
        outcome(m, "outcome.acdd.VN", acdd_id, "acknowledged")
    })
    .await
    .expect("ack");
    let mut response = document(DocumentKind::AcddResponse, "VN", "SG");
    response.header.correlation_id = Some(acdd_id);
    tb.send_document(&response).await.expect("send");
    tb.wait_for(sg, "acdd-response.VN", WAIT, |m| {
        is_doc(m, "acdd-response.VN", response.header.message_id)
    })
    .await
    .expect("response delivered");
    let told = tb
        .wait_for(sg, "status outcome", WAIT, |m| {
            outcome(m, "outcome.acdd.VN", acdd_id, "status")
        })
        .await
        .expect("outcome");
    let json: serde_json::Value = serde_json::from_slice(&told.body).expect("JSON outcome");
    assert_eq!(json["status"], "accepted");
    assert_eq!(json["answer_id"], response.header.message_id.to_string());
    tb.stop_and_clean().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn forged_and_misrouted_documents_are_parked_and_never_delivered() {
    let (tb, dir) = testbed(&["VN", "TH", "SG"]).await;
    let (vn, th, sg) = (state("VN"), state("TH"), state("SG"));
    let now = OffsetDateTime::now_utc();

    // A document claiming to come from TH, signed by MY: published by TH's own user.
    let my = keygen::generate(state("MY"), KeyAlgorithm::Rsa2048, 30, now).expect("MY key");
    let forged = document(DocumentKind::FormD, "TH", "VN");
    let forged_bytes = Signer::new(&my.key_pem, &my.cert_pem)
        .expect("signer")
        .sign(forged.to_xml().expect("xml").as_bytes())
        .expect("signed");
    publish_as_partner(&tb, vn, th, "TH", &forged_bytes)
        .await
        .expect("publish");

    // A genuine TH document published by SG's user: the transport and the sender disagree.
    let th_key = std::fs::read(dir.path().join("th/key.pem")).expect("TH key");
    let th_cert = std::fs::read(dir.path().join("th/cert.pem")).expect("TH cert");
    let genuine = document(DocumentKind::FormD, "TH", "VN");
    let genuine_bytes = Signer::new(&th_key, &th_cert)
        .expect("signer")
        .sign(genuine.to_xml().expect("xml").as_bytes())
        .expect("signed");
    // SG also claims, in a header of its own, to be TH's user: only the hub may say that.
    let claim = asw_amqp::Properties::new().with_header(names::HEADER_TRANSPORT_USER, "partner-TH");
    publish_as_partner_with(&tb, vn, sg, "SG", &genuine_bytes, claim)
        .await
        .expect("publish");

    let parked = take(&tb, vn, names::PARKED_QUEUE, 2, WAIT).await;
    assert_eq!(parked.len(), 2, "both are parked");
    let reason = |m: &asw_amqp::Message| {
        m.properties
            .header(names::HEADER_REASON_CODE)
            .and_then(|v| v.as_str())
            .map(str::to_owned)
    };
    let mut codes: Vec<_> = parked.iter().filter_map(reason).collect();
    codes.sort();
    assert_eq!(codes, ["SIG-UNTRUSTED", "TRANSPORT-003"]);
    // The parking lot records who really published each (a replay trusts this header).
    let mut users: Vec<_> = parked
        .iter()
        .filter_map(|m| {
            m.properties
                .header(names::HEADER_TRANSPORT_USER)
                .and_then(|v| v.as_str())
                .map(str::to_owned)
        })
        .collect();
    users.sort();
    assert_eq!(users, ["partner-SG", "partner-TH"]);
    for m in &parked {
        assert_eq!(
            m.properties
                .header(names::HEADER_STAGE)
                .and_then(|v| v.as_str()),
            Some("inbound")
        );
    }
    // TH, the authenticated sender of the forgery, is told it was rejected, with the reason.
    let rejection = tb
        .wait_for(th, "the rejection", WAIT, |m| {
            m.routing_key == "formd-ack.VN"
                && m.properties.correlation_id.as_deref()
                    == Some(forged.header.message_id.to_string().as_str())
        })
        .await
        .expect("rejection");
    let text = String::from_utf8_lossy(&rejection.body);
    assert!(
        text.contains("<ack:Status>rejected</ack:Status>") && text.contains("SIG-UNTRUSTED"),
        "{text}"
    );
    // Nothing reached VN's back-office.
    let received = tb.received(vn);
    assert!(
        received
            .iter()
            .all(|m| !m.routing_key.starts_with("formd.")),
        "{:?}",
        received.iter().map(|m| &m.routing_key).collect::<Vec<_>>()
    );

    // The forgery borrowed a message id; the genuine document with that id still gets through.
    let mut real = document(DocumentKind::FormD, "TH", "VN");
    real.header.message_id = forged.header.message_id;
    let real_bytes = Signer::new(&th_key, &th_cert)
        .expect("signer")
        .sign(real.to_xml().expect("xml").as_bytes())
        .expect("signed");
    publish_as_partner(&tb, vn, th, "TH", &real_bytes)
        .await
        .expect("publish");
    let got = tb
        .wait_for(vn, "the genuine document", WAIT, |m| {
            is_doc(m, "formd.TH", real.header.message_id)
        })
        .await
        .expect("the genuine document is delivered");
    assert_eq!(got.body, real_bytes);
    tb.stop_and_clean().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_invalid_outbound_document_comes_back_as_an_outcome_with_its_errors() {
    let (tb, _dir) = testbed(&["VN", "TH"]).await;
    let vn = state("VN");
    let (_, xml, told) = send_refused_formd(&tb).await;
    let json: serde_json::Value = serde_json::from_slice(&told.body).expect("JSON");
    assert_eq!(json["reasons"][0]["code"], "FORMD-001", "{json}");
    assert!(
        json["reasons"][0]["text"]
            .as_str()
            .is_some_and(|t| t.starts_with("line ")),
        "{json}"
    );
    let parked = take(&tb, vn, names::PARKED_QUEUE, 1, WAIT).await;
    assert_eq!(parked.len(), 1);
    assert_eq!(parked[0].body, xml.as_bytes(), "the exact bytes are parked");
    assert_eq!(
        parked[0]
            .properties
            .header(names::HEADER_STAGE)
            .and_then(|v| v.as_str()),
        Some("outbound")
    );
    tb.stop_and_clean().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_same_message_published_twice_is_delivered_once() {
    let (tb, dir) = testbed(&["VN", "TH"]).await;
    let (vn, th) = (state("VN"), state("TH"));
    // The back-office sends the same bytes twice.
    let form_d = document(DocumentKind::FormD, "VN", "TH");
    let id = form_d.header.message_id;
    let xml = form_d.to_xml().expect("xml");
    tb.send(vn, DocumentKind::FormD, xml.as_bytes())
        .await
        .expect("send");
    tb.send(vn, DocumentKind::FormD, xml.as_bytes())
        .await
        .expect("send again");
    // A partner resends a signed document (its ack got lost, say).
    let vn_key = std::fs::read(dir.path().join("vn/key.pem")).expect("key");
    let vn_cert = std::fs::read(dir.path().join("vn/cert.pem")).expect("cert");
    let other = document(DocumentKind::FormD, "VN", "TH");
    let signed = Signer::new(&vn_key, &vn_cert)
        .expect("signer")
        .sign(other.to_xml().expect("xml").as_bytes())
        .expect("sign");
    publish_as_partner(&tb, th, vn, "VN", &signed)
        .await
        .expect("publish");
    publish_as_partner(&tb, th, vn, "VN", &signed)
        .await
        .expect("publish again");

    tb.wait_for(vn, "acknowledged", WAIT, |m| {
        outcome(m, "outcome.formd.TH", id, "acknowledged")
    })
    .await
    .expect("ack");
    tb.wait_for(th, "the resent one", WAIT, |m| {
        is_doc(m, "formd.VN", other.header.message_id)
    })
    .await
    .expect("delivered");
    // Leave time for any second copy to arrive, then count.
    tokio::time::sleep(Duration::from_secs(2)).await;
    let received = tb.received(th);
    assert_eq!(count(&received, "formd.VN", id), 1);
    assert_eq!(count(&received, "formd.VN", other.header.message_id), 1);
    assert!(
        received
            .iter()
            .filter(|m| is_doc(m, "formd.VN", id))
            .all(|m| !m.possible_duplicate()),
        "a first delivery is not marked as a possible duplicate"
    );
    tb.stop_and_clean().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn documents_wait_while_the_partner_is_unreachable_and_arrive_when_it_returns() {
    let (tb, _dir) = testbed(&["VN", "TH"]).await;
    let (vn, th) = (state("VN"), state("TH"));
    let management = asw_amqp::Management::new("http://127.0.0.1:15672", "guest", "guest");
    let th_vhost = tb.options().vhost(th);
    let user = names::partner_user(vn);
    let nothing = Permissions {
        configure: "^$".into(),
        write: "^$".into(),
        read: "^$".into(),
    };
    // TH's broker refuses VN's link.
    management
        .set_permissions(&th_vhost, &user, &nothing)
        .expect("revoke");
    let form_d = document(DocumentKind::FormD, "VN", "TH");
    let id = form_d.header.message_id;
    tb.send_document(&form_d).await.expect("send");
    tokio::time::sleep(Duration::from_secs(3)).await;
    assert_eq!(
        count(&tb.received(th), "formd.VN", id),
        0,
        "nothing gets through while refused"
    );
    // TH's broker takes VN back: the document waiting in asw.partner.out.TH goes through.
    let allowed = Permissions {
        configure: "^$".into(),
        write: format!("^{}$", names::PARTNER_IN_EXCHANGE.replace('.', "\\.")),
        read: format!("^{}$", names::partner_out_queue(vn).replace('.', "\\.")),
    };
    management
        .set_permissions(&th_vhost, &user, &allowed)
        .expect("restore");
    tb.wait_for(th, "formd.VN", Duration::from_secs(60), |m| {
        is_doc(m, "formd.VN", id)
    })
    .await
    .expect("delivered after");
    tb.wait_for(vn, "acknowledged", WAIT, |m| {
        outcome(m, "outcome.formd.TH", id, "acknowledged")
    })
    .await
    .expect("ack");
    assert_eq!(count(&tb.received(th), "formd.VN", id), 1);
    tb.stop_and_clean().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failing_journal_is_retried_with_back_off_then_parked_without_losing_the_document() {
    let (tb, dir) = testbed(&["VN", "TH"]).await;
    let vn = state("VN");
    // The journal's folder vanishes under the running hub: every write now fails (transiently).
    std::fs::remove_dir_all(dir.path().join("vn")).expect("remove VN's folder");
    let form_d = document(DocumentKind::FormD, "VN", "TH");
    let id = form_d.header.message_id;
    let xml = form_d.to_xml().expect("xml");
    tb.send(vn, DocumentKind::FormD, xml.as_bytes())
        .await
        .expect("send");
    let told = tb
        .wait_for(vn, "failed", WAIT, |m| {
            outcome(m, "outcome.formd.TH", id, "failed")
        })
        .await
        .expect("failed outcome");
    let json: serde_json::Value = serde_json::from_slice(&told.body).expect("JSON");
    assert_eq!(json["reasons"][0]["code"], "RETRIES-EXHAUSTED", "{json}");
    let parked = take(&tb, vn, names::PARKED_QUEUE, 1, WAIT).await;
    assert_eq!(parked.len(), 1);
    assert_eq!(parked[0].body, xml.as_bytes(), "the exact bytes are kept");
    let header = |name: &str| parked[0].properties.header(name).cloned();
    assert_eq!(
        header(names::HEADER_ATTEMPTS).and_then(|v| v.as_int()),
        Some(3)
    );
    assert_eq!(
        header("x-asw-routing-key")
            .and_then(|v| v.as_str().map(str::to_owned))
            .as_deref(),
        Some("formd")
    );
    // The bus envelope is where the stages read attempts from, and its first sighting is that
    // of the first attempt, kept through the retries (delays of 200 and 1,000 ms in the testbed).
    let envelope = match header(asw_model::bus::BUS_HEADER) {
        Some(asw_amqp::HeaderValue::Bytes(b)) => {
            asw_model::bus::BusEnvelope::from_bytes(&b).expect("envelope")
        }
        other => panic!("no bus envelope: {other:?}"),
    };
    assert_eq!(envelope.attempts, 3);
    assert_eq!(envelope.reason_code, "RETRIES-EXHAUSTED");
    assert!(
        envelope.stage_started_unix_ms - envelope.first_seen_unix_ms >= 1_000,
        "first seen {} survives the retries, last attempt {}",
        envelope.first_seen_unix_ms,
        envelope.stage_started_unix_ms
    );
    tb.stop_and_clean().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_partner_certificate_rollover_takes_effect_on_reload_without_restart() {
    let (tb, dir) = testbed(&["VN", "TH"]).await;
    let (vn, th) = (state("VN"), state("TH"));
    // VN has a new key; TH's operator has not added its certificate yet.
    let next = keygen::generate(vn, KeyAlgorithm::EcP256, 365, OffsetDateTime::now_utc())
        .expect("new VN key");
    let sign_new = |d: &asw_model::document::Message| {
        Signer::new(&next.key_pem, &next.cert_pem)
            .expect("signer")
            .sign(d.to_xml().expect("xml").as_bytes())
            .expect("sign")
    };
    let early = document(DocumentKind::FormD, "VN", "TH");
    publish_as_partner(&tb, th, vn, "VN", &sign_new(&early))
        .await
        .expect("publish");
    let parked = take(&tb, th, names::PARKED_QUEUE, 1, WAIT).await;
    assert_eq!(parked.len(), 1);
    assert_eq!(
        parked[0]
            .properties
            .header(names::HEADER_REASON_CODE)
            .and_then(|v| v.as_str()),
        Some("SIG-UNTRUSTED")
    );
    // The operator adds the new certificate beside the old one and reloads: both are trusted.
    std::fs::write(dir.path().join("th/trust/VN/vn-next.pem"), &next.cert_pem)
        .expect("add certificate");
    assert_eq!(
        tb.hub(th).expect("TH hub").reload_trust().expect("reload"),
        2
    );
    let later = document(DocumentKind::FormD, "VN", "TH");
    publish_as_partner(&tb, th, vn, "VN", &sign_new(&later))
        .await
        .expect("publish");
    tb.wait_for(th, "signed with the new key", WAIT, |m| {
        is_doc(m, "formd.VN", later.header.message_id)
    })
    .await
    .expect("delivered");
    // The old key still works during the rollover.
    let old = document(DocumentKind::FormD, "VN", "TH");
    tb.send_document(&old).await.expect("send");
    tb.wait_for(th, "signed with the old key", WAIT, |m| {
        is_doc(m, "formd.VN", old.header.message_id)
    })
    .await
    .expect("delivered");
    // The new certificate's file is damaged and another one dropped in badly: the reload fails
    // closed, so the new key is no longer trusted while the old one still is.
    std::fs::write(
        dir.path().join("th/trust/VN/vn-next.pem"),
        b"-----BEGIN CERT",
    )
    .expect("damage the certificate");
    assert_eq!(
        tb.hub(th).expect("TH hub").reload_trust().expect("reload"),
        1,
        "only the old certificate stays"
    );
    let damaged = document(DocumentKind::FormD, "VN", "TH");
    publish_as_partner(&tb, th, vn, "VN", &sign_new(&damaged))
        .await
        .expect("publish");
    let parked = take(&tb, th, names::PARKED_QUEUE, 1, WAIT).await;
    assert_eq!(
        parked[0]
            .properties
            .header(names::HEADER_REASON_CODE)
            .and_then(|v| v.as_str()),
        Some("SIG-UNTRUSTED"),
        "a certificate whose file went bad is not trusted any more"
    );
    assert!(
        tb.hub(th)
            .expect("TH hub")
            .render_metrics()
            .contains("aswhub_trust_files_refused 1\n")
    );
    tb.stop_and_clean().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hubs_reconnect_after_their_connections_are_killed_and_nothing_is_lost_or_doubled() {
    let (tb, _dir) = testbed(&["VN", "TH"]).await;
    let (vn, th) = (state("VN"), state("TH"));
    let management = asw_amqp::Management::new("http://127.0.0.1:15672", "guest", "guest");
    let mut ids = Vec::new();
    for _ in 0..200 {
        let d = document(DocumentKind::FormD, "VN", "TH");
        ids.push(d.header.message_id);
        tb.send_document(&d).await.expect("send");
    }
    // Mid-stream, every hub connection (pipelines and partner links) is cut.
    tb.wait_for(th, "the first documents", WAIT, |m| {
        m.routing_key == "formd.VN"
    })
    .await
    .expect("flowing");
    // The management API lists connections a few seconds late: look until the hubs' show.
    let mut killed = 0;
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    while killed < 2 && std::time::Instant::now() < deadline {
        for vhost in [tb.options().vhost(vn), tb.options().vhost(th)] {
            for c in management.connections(&vhost).expect("connections") {
                if c.client_properties
                    .connection_name
                    .as_deref()
                    .is_some_and(|n| n.starts_with("aswhub-"))
                {
                    // A hub closes its other connections itself once one is cut (its push
                    // link's, say): one already gone cannot be closed (500), and counts not.
                    match management.close_connection(&c.name) {
                        Ok(()) => killed += 1,
                        Err(e) => eprintln!("connection {} already gone: {e}", c.name),
                    }
                }
            }
        }
        if killed < 2 {
            tokio::time::sleep(Duration::from_millis(500)).await;
        }
    }
    assert!(killed >= 2, "the hubs' connections were found and closed");
    for id in &ids {
        tb.wait_for(th, "every document", Duration::from_secs(90), |m| {
            is_doc(m, "formd.VN", *id)
        })
        .await
        .expect("delivered");
        tb.wait_for(vn, "every acknowledgement", Duration::from_secs(90), |m| {
            outcome(m, "outcome.formd.TH", *id, "acknowledged")
        })
        .await
        .expect("acknowledged");
    }
    tokio::time::sleep(Duration::from_secs(2)).await;
    let received = tb.received(th);
    for id in &ids {
        // A copy whose broker confirm was lost with the connection may have reached the
        // back-office: the hub cannot know, so it delivers again marked a possible duplicate.
        assert_eq!(
            taken_by_back_office(&received, "formd.VN", *id),
            1,
            "{id} taken exactly once by a back-office that drops marked duplicates"
        );
    }
    let again = ids
        .iter()
        .filter(|id| count(&received, "formd.VN", **id) > 1)
        .count();
    println!(
        "{} documents, {again} delivered again marked as possible duplicates",
        ids.len()
    );
    tb.stop_and_clean().await;
}

/// A partner that does not answer: after the ack timeout the back-office hears `awaiting-ack`
/// once, the journal lists the document as awaiting-ack, and it is resent (same bytes, same id)
/// exactly `resend` times. When the partner's hub then takes the copies, it delivers one, answers
/// each with the same receipt, and the original ends acknowledged with one outcome.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_document_without_receipt_is_reported_once_resent_within_the_bound_then_acknowledged() {
    let (tb, _dir) = testbed_with(&["VN", "TH"], |options| {
        // Pull mode: documents for a partner wait in `asw.partner.out.<CC>`, where the test plays
        // the partner gateway that pulls them (or, at first, does not).
        options.pull = true;
        options.acks = Some(asw_gateway::config::AcksConfig {
            timeout: Duration::from_secs(1),
            resend: 2,
            check_every: Duration::from_millis(200),
        });
    })
    .await;
    let (vn, th) = (state("VN"), state("TH"));
    let form_d = document(DocumentKind::FormD, "VN", "TH");
    let id = form_d.header.message_id;
    tb.send_document(&form_d).await.expect("send");

    let report = tb
        .wait_for(vn, "awaiting-ack", WAIT, |m| {
            outcome(m, "outcome.formd.TH", id, "awaiting-ack")
        })
        .await
        .expect("awaiting-ack outcome");
    let json: serde_json::Value = serde_json::from_slice(&report.body).expect("json");
    assert_eq!(json["message_id"], id.to_string());
    assert_eq!(json["kind"], "formd");
    assert_eq!(json["receiver"], "TH");
    assert!(json["waited_seconds"].as_i64().is_some(), "{json}");
    assert_eq!(json["resends"], 1, "{json}");
    // The report is confirmed before its claim is journaled (a crash in between repeats the
    // report rather than losing it), so the journal may list it a moment after.
    let journal = tb.hub(vn).expect("hub").journal();
    let deadline = tokio::time::Instant::now() + WAIT;
    loop {
        let listed = journal
            .list(&asw_journal::Filter {
                state: Some(asw_journal::State::AwaitingAck),
                ..asw_journal::Filter::default()
            })
            .expect("list");
        let listed: Vec<_> = listed.iter().map(|m| m.message_id()).collect();
        if !listed.is_empty() || tokio::time::Instant::now() > deadline {
            assert_eq!(listed, [id]);
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }

    // The first send and two resends, then no more however long one waits for a fourth.
    let queue = names::partner_out_queue(th);
    let copies = take(&tb, vn, &queue, 4, Duration::from_secs(5)).await;
    assert_eq!(copies.len(), 3, "1 send + 2 resends");
    let signed = journal
        .get(asw_journal::Direction::Outbound, id)
        .expect("get")
        .expect("journaled")
        .bytes;
    for copy in &copies {
        assert_eq!(copy.body, signed, "the exact journaled bytes");
        assert_eq!(
            copy.properties.message_id.as_deref(),
            Some(id.to_string().as_str())
        );
    }
    let history = journal
        .history(asw_journal::Direction::Outbound, id)
        .expect("history");
    let resent = history
        .iter()
        .filter(|r| r.event == asw_journal::Event::Resent)
        .count();
    assert_eq!(resent, 2);
    let reported = tb
        .received(vn)
        .iter()
        .filter(|m| outcome(m, "outcome.formd.TH", id, "awaiting-ack"))
        .count();
    assert_eq!(reported, 1, "reported once");

    // The partner gateway takes all three into TH's hub: delivered once, answered each time.
    for copy in &copies {
        publish_as_partner(&tb, th, vn, "VN", &copy.body)
            .await
            .expect("to TH");
    }
    let receipts = take(&tb, th, &names::partner_out_queue(vn), 3, WAIT).await;
    assert_eq!(receipts.len(), 3, "a receipt for each copy");
    assert!(
        receipts.iter().all(|r| r.body == receipts[0].body),
        "the same receipt"
    );
    assert_eq!(count(&tb.received(th), "formd.VN", id), 1, "delivered once");
    for receipt in &receipts {
        publish_as_partner(&tb, vn, th, "TH", &receipt.body)
            .await
            .expect("to VN");
    }
    tb.wait_for(vn, "acknowledged", WAIT, |m| {
        outcome(m, "outcome.formd.TH", id, "acknowledged")
    })
    .await
    .expect("acknowledged outcome");
    // Leave time for the other two receipts to be taken in, then count.
    tokio::time::sleep(Duration::from_secs(2)).await;
    let record = journal
        .get(asw_journal::Direction::Outbound, id)
        .expect("get")
        .expect("journaled");
    assert_eq!(record.summary.state, asw_journal::State::Acknowledged);
    let acknowledged = tb
        .received(vn)
        .iter()
        .filter(|m| outcome(m, "outcome.formd.TH", id, "acknowledged"))
        .count();
    assert_eq!(acknowledged, 1, "one acknowledged outcome");
    tb.stop_and_clean().await;
}
