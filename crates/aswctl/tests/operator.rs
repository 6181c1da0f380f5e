//! The operator commands against hubs on the real broker, run the way an operator runs them, with
//! a hub's configuration file: `aswctl parked list | show | discard`, `aswctl replay`,
//! `aswctl messages list | show | trace` and `aswctl topology apply`.

mod common;

use std::time::Duration;

use asw_amqp::{Consumer, HeaderValue, Properties};
use asw_e2e::{document, publish_as_partner, publish_once, state, testbed, testbed_with, url_as};
use asw_journal::{Direction, Journal, Reason, SqliteJournal, State};
use asw_model::DocumentKind;
use asw_model::document::Message as Document;
use asw_route::names;
use asw_sign::Signer;
use asw_sign::keygen::{self, KeyAlgorithm};
use asw_testbed::Testbed;
use serde_json::Value;
use time::OffsetDateTime;
use uuid::Uuid;

use common::{
    WAIT, bind_back_office, count, ctl, events, ids, invalid, is_doc, pair, parked,
    rejected_outcome, until_parked, until_state,
};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn parked_outbound_documents_are_listed_shown_discarded_and_refused_again_if_replayed_unfixed()
 {
    let (tb, _dir) = testbed(&["VN", "TH"]).await;
    let vn = state("VN");
    let (a, b) = (
        document(DocumentKind::FormD, "VN", "TH"),
        document(DocumentKind::FormD, "VN", "TH"),
    );
    let (a_id, b_id) = (a.header.message_id, b.header.message_id);
    let (a_xml, b_xml) = (invalid(&a), invalid(&b));
    for xml in [&a_xml, &b_xml] {
        tb.send(vn, DocumentKind::FormD, xml.as_bytes())
            .await
            .expect("send");
    }
    for id in [a_id, b_id] {
        tb.wait_for(vn, "rejected", WAIT, |m| rejected_outcome(m, id))
            .await
            .expect("rejected outcome");
    }

    // The table: one row per parked message, with its reason and journal state.
    let run = ctl(&tb, vn, &["parked", "list"]).await;
    run.assert_code(0);
    let header = run.stdout.lines().next().unwrap_or_default();
    assert!(
        header.starts_with("MESSAGE ID")
            && header.contains("JOURNAL")
            && header.ends_with("REASON"),
        "{header}"
    );
    for id in [a_id, b_id] {
        let row = run
            .stdout
            .lines()
            .find(|l| l.starts_with(&id.to_string()))
            .unwrap_or_else(|| panic!("{id} listed: {}", run.stdout));
        for cell in [
            "outbound",
            "formd",
            "TH",
            "FORMD-001",
            "failed",
            "FORMD-001 line ",
        ] {
            assert!(row.contains(cell), "{cell} in {row}");
        }
    }
    assert!(
        run.stdout.ends_with("2 parked message(s)\n"),
        "{}",
        run.stdout
    );

    // JSON, twice: reading the lot takes nothing from it and keeps its order.
    let listed = parked(&tb, vn, &[]).await;
    // The hub's lanes park the two concurrently, in either order.
    let mut both = ids(&listed);
    both.sort();
    let mut expected = [a_id.to_string(), b_id.to_string()];
    expected.sort();
    assert_eq!(both, expected);
    let first = &listed[0];
    assert_eq!(first["stage"], "outbound");
    assert_eq!(first["kind"], "formd");
    assert_eq!(first["partner"], "TH");
    assert_eq!(first["sender"], "VN");
    assert_eq!(first["reason_code"], "FORMD-001");
    assert_eq!(first["attempts"], 1);
    assert_eq!(first["journal"], "failed");
    assert_eq!(first["routing_key"], "formd");
    assert!(first["parked_at"].is_string(), "{first}");
    assert!(
        first["reason"]
            .as_str()
            .is_some_and(|r| r.starts_with("FORMD-001 line ")),
        "{first}"
    );
    assert_eq!(ids(&parked(&tb, vn, &[]).await), ids(&listed));

    // Filters.
    for (filter, expected) in [
        (&["--reason", "formd-001"][..], 2),
        (
            &["--partner", "TH", "--kind", "formd", "--stage", "outbound"],
            2,
        ),
        (&["--partner", "SG"], 0),
        (&["--stage", "inbound"], 0),
        (&["--kind", "acdd"], 0),
        (&["--since", "1h"], 2),
        (&["--since", "2099-01-01T00:00:00Z"], 0),
    ] {
        assert_eq!(parked(&tb, vn, filter).await.len(), expected, "{filter:?}");
    }

    // Show: headers, journal history and the exact document.
    let a_ref = a_id.to_string();
    let run = ctl(&tb, vn, &["parked", "show", &a_ref]).await;
    run.assert_code(0);
    for text in [
        "x-asw-reason-code",
        "journal history (outbound",
        "recorded",
        "failed (this document)",
        "<fd:IssuedIn>MY</fd:IssuedIn>",
    ] {
        assert!(run.stdout.contains(text), "{text} in {}", run.stdout);
    }
    let shown = ctl(&tb, vn, &["parked", "show", &a_ref, "--format", "json"]).await;
    let shown = &shown.json()[0];
    assert_eq!(shown["document"]["text"], a_xml.as_str());
    assert_eq!(
        events(&shown["history"]),
        [pair("recorded", "received"), pair("moved", "failed")]
    );
    assert_eq!(shown["headers"]["x-asw-stage"], "outbound");
    assert_eq!(
        shown["headers"]["x-asw-envelope"]["reason_code"],
        "FORMD-001"
    );
    let bytes = ctl(&tb, vn, &["parked", "show", &a_ref, "--document"]).await;
    assert_eq!(bytes.assert_code(0).stdout, a_xml, "the exact bytes");
    let nobody = Uuid::new_v4().to_string();
    ctl(&tb, vn, &["parked", "show", &nobody])
        .await
        .assert_code(1);

    // Discard one: journaled with who and why, gone from the lot.
    let run = ctl(
        &tb,
        vn,
        &[
            "parked",
            "discard",
            &a_ref,
            "--reason",
            "sent by mistake",
            "--actor",
            "alice",
        ],
    )
    .await;
    run.assert_code(0);
    assert!(
        run.stdout.contains("discarded") && run.stdout.contains("failed -> discarded"),
        "{}",
        run.stdout
    );
    assert_eq!(ids(&parked(&tb, vn, &[]).await), [b_id.to_string()]);
    let journaled = until_state(&tb, vn, a_id, "discarded").await;
    let last = journaled["history"]
        .as_array()
        .and_then(|h| h.last())
        .cloned();
    let last = last.expect("history");
    assert_eq!(last["event"], "discarded");
    assert_eq!(last["actor"], "alice");
    assert_eq!(last["reason"], "sent by mistake");
    let run = ctl(
        &tb,
        vn,
        &[
            "parked", "discard", &nobody, "--reason", "x", "--actor", "alice",
        ],
    )
    .await;
    assert!(
        run.assert_code(1).stdout.contains("not-parked"),
        "{}",
        run.stdout
    );

    // Replaying without fixing anything: refused again for the same reason, parked again.
    let b_ref = b_id.to_string();
    let run = ctl(&tb, vn, &["replay", &b_ref, "--actor", "bob"]).await;
    run.assert_code(0);
    assert!(
        run.stdout.contains("replayed") && run.stdout.contains("failed -> received"),
        "{}",
        run.stdout
    );
    let again = until_parked(&tb, vn, b_id, "FORMD-001").await;
    assert_eq!(again["journal"], "failed");
    let journaled = until_state(&tb, vn, b_id, "failed").await;
    assert_eq!(
        events(&journaled["history"]),
        [
            pair("recorded", "received"),
            pair("moved", "failed"),
            pair("replayed", "received"),
            pair("moved", "failed"),
        ]
    );
    assert_eq!(journaled["history"][2]["actor"], "bob");

    // The journal's listing.
    let failed = ctl(
        &tb,
        vn,
        &["messages", "list", "--state", "failed", "--format", "json"],
    )
    .await;
    let failed = failed.json();
    assert_eq!(ids(failed.as_array().expect("array")), [b_id.to_string()]);
    let discarded = ctl(&tb, vn, &["messages", "list", "--state", "discarded"]).await;
    assert!(
        discarded.assert_code(0).stdout.contains(&a_ref),
        "{}",
        discarded.stdout
    );
    let old = ctl(
        &tb,
        vn,
        &["messages", "list", "--older-than", "1h", "--format", "json"],
    )
    .await;
    assert_eq!(old.json(), serde_json::json!([]));
    tb.stop_and_clean().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_document_parked_for_an_untrusted_certificate_is_delivered_once_when_replayed_after_the_fix()
 {
    let (tb, dir) = testbed(&["VN", "TH"]).await;
    let (vn, th) = (state("VN"), state("TH"));
    let now = OffsetDateTime::now_utc();
    // VN signs with a new key TH does not trust yet; and someone signs with MY's key, claiming VN.
    let next = keygen::generate(vn, KeyAlgorithm::EcP256, 365, now).expect("new VN key");
    let my = keygen::generate(state("MY"), KeyAlgorithm::EcP256, 365, now).expect("MY key");
    let sign = |key: &keygen::GeneratedKey, d: &Document| {
        Signer::new(&key.key_pem, &key.cert_pem)
            .expect("signer")
            .sign(d.to_xml().expect("xml").as_bytes())
            .expect("sign")
    };
    let early = document(DocumentKind::FormD, "VN", "TH");
    let forged = document(DocumentKind::FormD, "VN", "TH");
    let (early_id, forged_id) = (early.header.message_id, forged.header.message_id);
    let early_bytes = sign(&next, &early);
    for bytes in [&early_bytes, &sign(&my, &forged)] {
        publish_as_partner(&tb, th, vn, "VN", bytes)
            .await
            .expect("publish");
    }
    let listed = until_parked(&tb, th, early_id, "SIG-UNTRUSTED").await;
    assert_eq!(listed["stage"], "inbound");
    assert_eq!(listed["partner"], "VN");
    assert_eq!(listed["routing_key"], "VN");
    assert_eq!(listed["transport_user"], "partner-VN");
    assert_eq!(
        listed["journal"], "not-recorded",
        "an unverified document is not journaled"
    );
    until_parked(&tb, th, forged_id, "SIG-UNTRUSTED").await;

    // A dry run changes nothing.
    let early_ref = early_id.to_string();
    let run = ctl(
        &tb,
        th,
        &["replay", &early_ref, "--dry-run", "--actor", "ops"],
    )
    .await;
    assert!(
        run.assert_code(0).stdout.contains("would-replay"),
        "{}",
        run.stdout
    );
    assert!(ids(&parked(&tb, th, &[]).await).contains(&early_ref));

    // The operator trusts VN's new certificate, then replays: delivered, with its own id.
    std::fs::write(dir.path().join("th/trust/VN/vn-next.pem"), &next.cert_pem)
        .expect("add the certificate");
    assert_eq!(
        tb.hub(th).expect("TH hub").reload_trust().expect("reload"),
        2
    );
    let run = ctl(&tb, th, &["replay", &early_ref, "--actor", "ops"]).await;
    run.assert_code(0);
    assert!(
        run.stdout.contains("replayed") && run.stdout.contains(names::HUB_INBOUND_QUEUE),
        "{}",
        run.stdout
    );
    let got = tb
        .wait_for(th, "the replayed document", WAIT, |m| {
            is_doc(m, "formd.VN", early_id)
        })
        .await
        .expect("delivered");
    assert_eq!(got.body, early_bytes, "the exact bytes");
    assert_eq!(
        got.properties.message_id.as_deref(),
        Some(early_ref.as_str())
    );
    assert_eq!(got.header("x-asw-signer"), Some("VN"));
    let journaled = until_state(&tb, th, early_id, "delivered").await;
    assert_eq!(
        events(&journaled["history"]),
        [pair("recorded", "verified"), pair("moved", "delivered")]
    );

    // Again: nothing to do, and it says so.
    let run = ctl(&tb, th, &["replay", &early_ref, "--actor", "ops"]).await;
    assert!(
        run.assert_code(0).stdout.contains("already delivered"),
        "{}",
        run.stdout
    );
    let run = ctl(
        &tb,
        th,
        &["replay", &early_ref, "--actor", "ops", "--format", "json"],
    )
    .await;
    assert_eq!(run.assert_code(0).json()[0]["outcome"], "already-done");

    // The forgery, replayed with nothing fixed, is refused and parked again for the same reason.
    let forged_ref = forged_id.to_string();
    let run = ctl(&tb, th, &["replay", &forged_ref, "--actor", "ops"]).await;
    assert!(
        run.assert_code(0).stdout.contains("replayed"),
        "{}",
        run.stdout
    );
    let again = until_parked(&tb, th, forged_id, "SIG-UNTRUSTED").await;
    assert_eq!(again["journal"], "not-recorded");

    // Delivered exactly once; the forgery never.
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert_eq!(count(&tb, th, "formd.VN", early_id), 1);
    assert_eq!(count(&tb, th, "formd.VN", forged_id), 0);

    // The conversation, in time order: TH's answer (the rejection made when the document was
    // refused, which came first; answers keep an id derived from the original's, so it is not
    // answered twice), and the e-Form D, journaled when it was verified at last.
    let trace = ctl(
        &tb,
        th,
        &["messages", "trace", &early_ref, "--format", "json"],
    )
    .await;
    let trace = trace.assert_code(0).json();
    let trace = trace.as_array().expect("array");
    let seen: Vec<&str> = trace
        .iter()
        .map(|m| m["first_seen"].as_str().unwrap_or_default())
        .collect();
    assert!(seen.windows(2).all(|w| w[0] <= w[1]), "{seen:?}");
    assert!(
        trace.iter().any(|m| m["message_id"] == early_ref.as_str()
            && m["direction"] == "inbound"
            && m["state"] == "delivered"),
        "{trace:#?}"
    );
    assert!(
        trace.iter().any(|m| m["kind"] == "formd-ack"
            && m["direction"] == "outbound"
            && m["correlation_id"] == early_ref.as_str()),
        "{trace:#?}"
    );
    let table = ctl(&tb, th, &["messages", "trace", &early_ref]).await;
    assert!(
        table
            .assert_code(0)
            .stdout
            .contains(&format!("{early_ref}*")),
        "{}",
        table.stdout
    );
    tb.stop_and_clean().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_outbound_document_parked_after_its_retries_is_sent_once_when_replayed() {
    let (tb, dir) = testbed(&["VN", "TH"]).await;
    let (vn, th) = (state("VN"), state("TH"));
    // What a hub leaves when the journal failed on a document until its retries ran out and then
    // came back: journaled `failed` with RETRIES-EXHAUSTED, parked with the headers the hub
    // writes. (tests/e2e makes the journal vanish, which a running hub cannot recover from.)
    let d = document(DocumentKind::FormD, "VN", "TH");
    let id = d.header.message_id;
    let xml = d.to_xml().expect("xml");
    let now = OffsetDateTime::now_utc();
    let reason = "gave up after 3 attempts; last failure: journal record failed";
    let journal = SqliteJournal::open(dir.path().join("vn/journal.db")).expect("journal");
    journal
        .record(
            Direction::Outbound,
            &d.header,
            xml.as_bytes(),
            State::Received,
            now,
        )
        .expect("record");
    journal
        .transition(
            Direction::Outbound,
            id,
            State::Failed,
            Some(&Reason::new("RETRIES-EXHAUSTED", reason)),
            now,
        )
        .expect("fail");
    let properties = Properties::new()
        .with_message_id(id.to_string())
        .with_content_type(names::CONTENT_TYPE_XML)
        .with_header(names::HEADER_MESSAGE_ID, id.to_string())
        .with_header(names::HEADER_STAGE, names::stage::OUTBOUND)
        .with_header(names::HEADER_REASON, format!("RETRIES-EXHAUSTED {reason}"))
        .with_header(names::HEADER_REASON_CODE, "RETRIES-EXHAUSTED")
        .with_header(names::HEADER_ATTEMPTS, HeaderValue::Int(3))
        .with_header(
            names::HEADER_PARKED_AT,
            asw_model::document::format_timestamp(now),
        )
        .with_header(names::HEADER_ROUTING_KEY, "formd")
        .with_header(names::HEADER_EXCHANGE, names::OUTBOUND_EXCHANGE)
        .with_header(names::HEADER_TRANSPORT_USER, "guest");
    publish_once(
        &url_as(&tb, vn, "guest", "guest"),
        "test",
        "",
        names::PARKED_QUEUE,
        xml.as_bytes(),
        &properties,
    )
    .await
    .expect("park");
    let listed = until_parked(&tb, vn, id, "RETRIES-EXHAUSTED").await;
    assert_eq!(listed["journal"], "failed");

    // Replayed: taken up at once (the replay released the message, no claim lease to wait
    // out), signed, sent, delivered to TH, acknowledged to VN.
    let run = ctl(
        &tb,
        vn,
        &["replay", "--all", "--reason", "retries", "--actor", "ops"],
    )
    .await;
    run.assert_code(0);
    assert!(run.stdout.contains("failed -> received"), "{}", run.stdout);
    tb.wait_for(th, "the replayed document", Duration::from_secs(20), |m| {
        is_doc(m, "formd.VN", id)
    })
    .await
    .expect("delivered");
    let journaled = until_state(&tb, vn, id, "acknowledged").await;
    let history = events(&journaled["history"]);
    let replayed = history
        .iter()
        .position(|e| *e == pair("replayed", "received"))
        .expect("replayed");
    assert_eq!(
        history[replayed + 1],
        pair("moved", "signed"),
        "{history:?}"
    );
    let left = parked(&tb, vn, &[]).await;
    assert!(left.is_empty(), "still parked: {left:?}");
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert_eq!(count(&tb, th, "formd.VN", id), 1);
    tb.stop_and_clean().await;
}

/// A document the partner never answers is listed by `messages list --state awaiting-ack`, in
/// the table and in JSON, with the resend in its history; other states do not list it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn documents_without_a_receipt_are_listed_as_awaiting_ack() {
    let (tb, _dir) = testbed_with(&["VN", "TH"], |options| {
        // Pull mode and nobody pulling: the partner never answers.
        options.pull = true;
        options.acks = Some(asw_gateway::config::AcksConfig {
            timeout: Duration::from_secs(1),
            resend: 1,
            check_every: Duration::from_millis(200),
        });
    })
    .await;
    let vn = state("VN");
    let form_d = document(DocumentKind::FormD, "VN", "TH");
    let id = form_d.header.message_id;
    tb.send_document(&form_d).await.expect("send");
    let shown = until_state(&tb, vn, id, "awaiting-ack").await;
    // The resend (at most one) comes a timeout after the report.
    let deadline = tokio::time::Instant::now() + WAIT;
    loop {
        let shown = ctl(
            &tb,
            vn,
            &["messages", "show", &id.to_string(), "--format", "json"],
        )
        .await;
        if events(&shown.json()[0]["history"]).contains(&pair("resent", "awaiting-ack")) {
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "no resend: {shown:#?}"
        );
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
    assert_eq!(shown["kind"], "formd", "{shown}");

    let listed = ctl(
        &tb,
        vn,
        &[
            "messages",
            "list",
            "--state",
            "awaiting-ack",
            "--format",
            "json",
        ],
    )
    .await;
    listed.assert_code(0);
    assert_eq!(
        ids(listed.json().as_array().expect("array")),
        [id.to_string()]
    );
    let table = ctl(&tb, vn, &["messages", "list", "--state", "awaiting-ack"]).await;
    table.assert_code(0);
    assert!(
        table.stdout.contains(&id.to_string()) && table.stdout.contains("awaiting-ack"),
        "{table:#?}"
    );
    let queued = ctl(
        &tb,
        vn,
        &["messages", "list", "--state", "queued", "--format", "json"],
    )
    .await;
    assert!(
        !ids(queued.json().as_array().expect("array")).contains(&id.to_string()),
        "{queued:#?}"
    );
    tb.stop_and_clean().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_document_no_back_office_binds_is_parked_unroutable_and_delivered_with_its_receipt_when_replayed()
 {
    let (vn, th) = (state("VN"), state("TH"));
    // TH's ministry takes e-Form D (and outcomes, receipts) only; VN sends an ACDD.
    let (tb, _dir) = testbed_with(&["VN", "TH"], |o| {
        o.back_office_keys.insert(
            th,
            vec!["formd.#".into(), "formd-ack.#".into(), "outcome.#".into()],
        );
    })
    .await;
    let acdd = document(DocumentKind::Acdd, "VN", "TH");
    let id = acdd.header.message_id;
    tb.send_document(&acdd).await.expect("send");
    let listed = until_parked(&tb, th, id, "DELIVERY-UNROUTABLE").await;
    assert_eq!(listed["stage"], "inbound");
    assert!(
        listed["reason"]
            .as_str()
            .is_some_and(|r| r.contains("acdd.VN")),
        "{listed:#}"
    );
    // Parked once, not redelivered in a loop; journaled failed; no receipt for VN yet.
    tokio::time::sleep(Duration::from_secs(3)).await;
    let copies = parked(&tb, th, &[])
        .await
        .into_iter()
        .filter(|p| p["message_id"] == id.to_string().as_str())
        .count();
    assert_eq!(copies, 1, "parked exactly once");
    until_state(&tb, th, id, "failed").await;
    let receipts = |tb: &Testbed| {
        tb.received(vn)
            .iter()
            .filter(|m| {
                m.routing_key == "acdd-ack.TH"
                    && m.properties.correlation_id.as_deref() == Some(id.to_string().as_str())
            })
            .count()
    };
    assert_eq!(receipts(&tb), 0, "the receipt waits for the delivery");

    // The ministry binds ACDD; the operator replays: delivered once, unmarked, and then receipted.
    bind_back_office(&tb, th, "acdd.#").await;
    let run = ctl(&tb, th, &["replay", &id.to_string(), "--actor", "ops"]).await;
    assert!(
        run.assert_code(0).stdout.contains("replayed"),
        "{}",
        run.stdout
    );
    let got = tb
        .wait_for(th, "the replayed ACDD", WAIT, |m| is_doc(m, "acdd.VN", id))
        .await
        .expect("delivered");
    assert!(!got.possible_duplicate(), "its first delivery");
    tb.wait_for(vn, "TH's receipt", WAIT, |m| {
        m.routing_key == "acdd-ack.TH"
            && m.properties.correlation_id.as_deref() == Some(id.to_string().as_str())
    })
    .await
    .expect("receipt after the delivery");
    until_state(&tb, th, id, "delivered").await;
    tokio::time::sleep(Duration::from_secs(1)).await;
    assert_eq!(count(&tb, th, "acdd.VN", id), 1, "delivered once");
    assert_eq!(receipts(&tb), 1, "one receipt");
    tb.stop_and_clean().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_partners_large_malformed_body_is_parked_once_with_a_bounded_reason() {
    let (tb, _dir) = testbed(&["VN", "TH"]).await;
    let (vn, th) = (state("VN"), state("TH"));
    // 100 KB of one element name, never closed: any partner user can send it, unsigned.
    let name = "n".repeat(100_000);
    let body = format!("<{name} a=\"1\"><{name}>");
    publish_as_partner(&tb, vn, th, "TH", body.as_bytes())
        .await
        .expect("publish");
    // And a message claiming to be on its 4 billionth attempt, from the partner itself.
    let mut properties = Properties::new().with_header(
        names::HEADER_ATTEMPTS,
        HeaderValue::Int(i64::from(u32::MAX)),
    );
    properties = properties.with_header(names::HEADER_STAGE, "outbound");
    asw_e2e::publish_as_partner_with(&tb, vn, th, "TH", b"<not-even-xml", properties)
        .await
        .expect("publish");
    let deadline = tokio::time::Instant::now() + WAIT;
    let listed = loop {
        let listed = parked(&tb, vn, &[]).await;
        if listed.len() >= 2 {
            break listed;
        }
        assert!(tokio::time::Instant::now() < deadline, "not parked in time");
        tokio::time::sleep(Duration::from_millis(300)).await;
    };
    for p in &listed {
        assert_eq!(p["stage"], "inbound", "{p:#}");
        let reason = p["reason"].as_str().unwrap_or_default();
        assert!(
            reason.len() <= 1100,
            "a bounded reason: {} bytes",
            reason.len()
        );
        assert!(!reason.contains(&name), "the name is not echoed whole");
    }
    let attempts: Vec<i64> = listed
        .iter()
        .map(|p| p["attempts"].as_i64().unwrap_or(-1))
        .collect();
    assert_eq!(
        attempts,
        [1, 1],
        "a partner's attempts header is not believed"
    );
    // Parked once each, not looping through the parking lot.
    tokio::time::sleep(Duration::from_secs(3)).await;
    assert_eq!(parked(&tb, vn, &[]).await.len(), 2);
    tb.stop_and_clean().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_document_its_consumer_keeps_returning_is_parked_at_the_delivery_limit_and_delivered_once_replayed()
 {
    // TH's hub does not run yet: this test is the consumer of TH's asw.hub.inbound.
    let (tb, dir) = testbed_with(&["VN", "TH"], |o| o.external = vec![state("TH")]).await;
    let (vn, th) = (state("VN"), state("TH"));
    // The journal TH's hub would have made (aswctl reads it beside the parking lot).
    drop(SqliteJournal::open(dir.path().join("th/journal.db")).expect("journal"));
    let config = tb.config_file(th).expect("TH config").to_owned();
    let toml = std::fs::read_to_string(&config).expect("read the config");
    let limited = toml.replace("[signing]", "delivery_limit = 2\n\n[signing]");
    assert_ne!(limited, toml);
    std::fs::write(&config, &limited).expect("write the config");
    for _ in 0..2 {
        let run = ctl(&tb, th, &["topology", "apply"]).await;
        assert!(
            run.assert_code(0)
                .stdout
                .contains("delivery limit 2 into asw.parked"),
            "{}",
            run.stdout
        );
    }

    let doc = document(DocumentKind::FormD, "VN", "TH");
    let id = doc.header.message_id;
    let read = |name: &str| std::fs::read(dir.path().join("vn").join(name)).expect("VN key");
    let bytes = Signer::new(&read("key.pem"), &read("cert.pem"))
        .expect("signer")
        .sign(doc.to_xml().expect("xml").as_bytes())
        .expect("sign");
    publish_as_partner(&tb, th, vn, "VN", &bytes)
        .await
        .expect("publish");
    let admin = asw_amqp::connect(&url_as(&tb, th, "guest", "guest"), "test consumer")
        .await
        .expect("connect");
    let mut consumer = Consumer::start(
        admin.open_channel().await.expect("channel"),
        names::HUB_INBOUND_QUEUE,
        10,
        "test",
    )
    .await
    .expect("consume");
    // Delivered and returned three times: the third return passes the limit of 2.
    for _ in 0..3 {
        let delivery = tokio::time::timeout(WAIT, consumer.next())
            .await
            .expect("a delivery in time")
            .expect("not cancelled")
            .expect("a delivery");
        assert_eq!(delivery.message.body, bytes);
        delivery.acker.nack(true).await.expect("return it");
    }

    let listed = until_parked(&tb, th, id, "DELIVERY-LIMIT").await;
    assert_eq!(listed["stage"], "inbound");
    assert_eq!(listed["partner"], "VN");
    assert_eq!(listed["kind"], "formd");
    assert_eq!(listed["routing_key"], "VN");
    assert_eq!(listed["transport_user"], "partner-VN");
    assert_eq!(listed["journal"], "not-recorded");
    assert!(
        listed["reason"]
            .as_str()
            .is_some_and(|r| r.contains("asw.hub.inbound") && r.contains("delivery limit")),
        "{listed:#}"
    );
    assert!(listed["parked_at"].is_string(), "{listed:#}");
    let table = ctl(&tb, th, &["parked", "list", "--reason", "delivery-limit"]).await;
    let line = table
        .assert_code(0)
        .stdout
        .lines()
        .find(|l| l.starts_with(&id.to_string()))
        .unwrap_or_else(|| panic!("{id} not listed: {}", table.stdout))
        .to_owned();
    assert!(
        line.contains(" inbound ") && line.contains("DELIVERY-LIMIT"),
        "{line}"
    );
    let shown = ctl(&tb, th, &["parked", "show", &id.to_string()]).await;
    assert!(
        shown.assert_code(0).stdout.contains("x-death"),
        "{}",
        shown.stdout
    );

    // Replayed, then TH's hub starts: the document passes the identity checks as the partner's
    // and is delivered once, with its exact bytes.
    drop(consumer);
    let _ = admin.close().await;
    let run = ctl(&tb, th, &["replay", &id.to_string(), "--actor", "ops"]).await;
    assert!(
        run.assert_code(0).stdout.contains("replayed")
            && run.stdout.contains(names::HUB_INBOUND_QUEUE),
        "{}",
        run.stdout
    );
    assert!(!ids(&parked(&tb, th, &[]).await).contains(&id.to_string()));
    let hub = asw_gateway::hub::Hub::new(
        asw_gateway::config::HubConfig::load(&config).expect("TH config"),
    )
    .expect("TH hub");
    let stop = tokio_util::sync::CancellationToken::new();
    let running = {
        let stop = stop.clone();
        tokio::spawn(async move { hub.run(stop).await })
    };
    let got = tb
        .wait_for(th, "the replayed document", WAIT, |m| {
            is_doc(m, "formd.VN", id)
        })
        .await
        .expect("delivered");
    assert_eq!(got.body, bytes, "the exact bytes");
    assert_eq!(got.header("x-asw-signer"), Some("VN"));
    until_state(&tb, th, id, "delivered").await;
    tokio::time::sleep(Duration::from_secs(1)).await;
    assert_eq!(count(&tb, th, "formd.VN", id), 1);
    stop.cancel();
    running
        .await
        .expect("join")
        .expect("TH's hub stops cleanly");
    tb.stop_and_clean().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_outcome_no_back_office_takes_is_parked_and_reaches_it_when_replayed() {
    let vn = state("VN");
    // VN's back-office listens to receipts only, not to outcomes.
    let (tb, _dir) = testbed_with(&["VN", "TH"], |o| {
        o.back_office_keys.insert(vn, vec!["formd-ack.#".into()]);
    })
    .await;
    let d = document(DocumentKind::FormD, "VN", "TH");
    let id = d.header.message_id;
    tb.send(vn, DocumentKind::FormD, invalid(&d).as_bytes())
        .await
        .expect("send");
    until_parked(&tb, vn, id, "FORMD-001").await;
    let outcome = until_parked(&tb, vn, id, "DELIVERY-UNROUTABLE").await;
    assert_eq!(outcome["stage"], "outcome", "{outcome:#}");
    assert_eq!(outcome["routing_key"], "outcome.formd.TH");

    // Replaying the document itself would only refuse it again: the operator binds outcomes
    // and replays the outcome alone.
    bind_back_office(&tb, vn, "outcome.#").await;
    let run = ctl(
        &tb,
        vn,
        &[
            "replay",
            &id.to_string(),
            "--stage",
            "outcome",
            "--actor",
            "ops",
        ],
    )
    .await;
    assert!(
        run.assert_code(0).stdout.contains("replayed"),
        "{}",
        run.stdout
    );
    let got = tb
        .wait_for(vn, "the rejected outcome", WAIT, |m| {
            rejected_outcome(m, id)
        })
        .await
        .expect("outcome delivered");
    let json: Value = serde_json::from_slice(&got.body).expect("JSON");
    assert_eq!(json["reasons"][0]["code"], "FORMD-001", "{json}");
    let left: Vec<Value> = parked(&tb, vn, &[]).await;
    assert_eq!(left.len(), 1, "only the document stays parked: {left:#?}");
    assert_eq!(left[0]["stage"], "outbound");
    tb.stop_and_clean().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_kind_added_as_files_is_listed_parked_shown_and_replayed_like_the_others() {
    let (vn, th) = (state("VN"), state("TH"));
    let schemas_dir = tempfile::tempdir().expect("temp dir");
    let hub_toml = asw_e2e::deployment_with_example_kind(schemas_dir.path());
    // TH's ministry takes e-Form D (and outcomes) only; VN sends the example kind.
    let (tb, _dir) = testbed_with(&["VN", "TH"], |o| {
        o.hub_toml = hub_toml;
        o.back_office_keys
            .insert(th, vec!["formd.#".into(), "outcome.#".into()]);
    })
    .await;
    let kind: DocumentKind = "kr-co".parse().expect("installed by the hubs");
    let body = std::fs::read_to_string(
        std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../../schemas/samples/kinds/kr-co/kr-co-body.xml"),
    )
    .expect("body");
    let mut co = document(DocumentKind::FormD, "VN", "TH");
    co.header.kind = kind;
    co.header.version = "1.0".into();
    co.document =
        asw_model::document::Document::Xml(asw_model::document::XmlBody { kind, xml: body });
    let id = co.header.message_id;
    tb.send_document(&co).await.expect("send");
    // aswctl, reading TH's configuration (and so its kinds directory), lists it parked...
    let listed = until_parked(&tb, th, id, "DELIVERY-UNROUTABLE").await;
    assert_eq!(listed["kind"], "kr-co", "{listed:#}");
    until_state(&tb, th, id, "failed").await;
    let run = ctl(&tb, vn, &["messages", "list", "--format", "json"]).await;
    assert!(
        run.assert_code(0).stdout.contains("kr-co"),
        "{}",
        run.stdout
    );
    // ... and replays it once the ministry binds the kind: delivered once.
    bind_back_office(&tb, th, "kr-co.#").await;
    let run = ctl(&tb, th, &["replay", &id.to_string(), "--actor", "ops"]).await;
    assert!(
        run.assert_code(0).stdout.contains("replayed"),
        "{}",
        run.stdout
    );
    tb.wait_for(th, "the replayed C/O", WAIT, |m| is_doc(m, "kr-co.VN", id))
        .await
        .expect("delivered");
    until_state(&tb, th, id, "delivered").await;
    assert_eq!(count(&tb, th, "kr-co.VN", id), 1, "delivered once");
    tb.stop_and_clean().await;
}

/// PostgreSQL schemas of a test's hubs (`<tag>_<cc>`), dropped at the end.
struct HubSchemas(Vec<String>);

impl Drop for HubSchemas {
    fn drop(&mut self) {
        for name in &self.0 {
            let _ = asw_testbed::guard::psql(&format!("DROP SCHEMA IF EXISTS {name} CASCADE"));
        }
    }
}

/// `aswctl parked list` of a hub whose journal is PostgreSQL: the journal's state of each
/// parked message comes from it (its blocking client runs off the command's runtime).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn parked_list_reads_a_postgresql_journal() {
    let tag = format!("aswp_{}", &Uuid::new_v4().simple().to_string()[..10]);
    let schemas = HubSchemas(["vn", "th"].iter().map(|c| format!("{tag}_{c}")).collect());
    for name in &schemas.0 {
        asw_testbed::guard::psql(&format!("CREATE SCHEMA {name}")).expect("schema");
    }
    let (tb, _dir) = testbed_with(&["VN", "TH"], |o| {
        o.journal_url = Some(format!(
            "postgres://postgres@127.0.0.1:5432/postgres?options=-csearch_path%3D{tag}_{{cc}}"
        ));
    })
    .await;
    let vn = state("VN");
    let doc = document(DocumentKind::FormD, "VN", "TH");
    let id = doc.header.message_id;
    tb.send(vn, DocumentKind::FormD, invalid(&doc).as_bytes())
        .await
        .expect("send");
    tb.wait_for(vn, "rejected", WAIT, |m| rejected_outcome(m, id))
        .await
        .expect("rejected outcome");
    let listed = parked(&tb, vn, &[]).await;
    assert_eq!(ids(&listed), [id.to_string()]);
    assert_eq!(listed[0]["journal"], "failed", "{listed:?}");
    assert_eq!(listed[0]["reason_code"], "FORMD-001", "{listed:?}");
    let run = ctl(&tb, vn, &["parked", "list"]).await;
    run.assert_code(0);
    let row = run
        .stdout
        .lines()
        .find(|l| l.starts_with(&id.to_string()))
        .unwrap_or_else(|| panic!("{id} listed: {}", run.stdout));
    assert!(row.contains("failed") && row.contains("FORMD-001"), "{row}");
    tb.stop_and_clean().await;
    drop(schemas);
}
