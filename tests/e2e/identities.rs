//! One broker identity per back-office system (`[[back_office]]`): the trade ministry and customs
//! of each hub log in as their own users. Python's pika, as an independent client, shows the
//! broker refusing customs an e-Form D and the trade ministry's queues; the running hubs deliver
//! each ministry only its documents and only the outcomes of what it sent; and the hub parks a
//! document published without a back-office's user (`TRANSPORT-004`).

use std::time::Duration;

use asw_e2e::{document, state, take, testbed_with};
use asw_model::DocumentKind;
use asw_route::names;
use asw_testbed::{Received, ministry_password};

const WAIT: Duration = Duration::from_secs(30);

/// pika, as a ministry's back-office: argv = vhost, its user, its password, the other
/// ministry's user, whether to try publishing an e-Form D (`yes`). Prints one line per attempt: `<what> ok` or `<what> refused <reason>`.
const MINISTRY: &str = r#"
import sys, pika
vhost, user, password, other, publish_formd = sys.argv[1:6]
def connect():
    params = pika.ConnectionParameters(host="127.0.0.1", port=5672, virtual_host=vhost,
        credentials=pika.PlainCredentials(user, password), connection_attempts=1)
    return pika.BlockingConnection(params)
def attempt(what, action):
    try:
        action()
        print(what, "ok")
    except Exception as e:
        print(what, "refused", type(e).__name__, str(e).replace("\n", " "))
def publish(exchange, key):
    def go():
        c = connect()
        ch = c.channel()
        ch.confirm_delivery()
        ch.basic_publish(exchange, key, b"<x/>",
            pika.BasicProperties(user_id=user, content_type="application/xml"), mandatory=True)
        c.close()
    return go
def read(queue):
    def go():
        c = connect()
        c.channel().basic_get(queue)
        c.close()
    return go
def declare():
    c = connect()
    c.channel().queue_declare("asw.backoffice." + user + ".extra", durable=True)
    c.close()
attempt("login", lambda: connect().close())
if publish_formd == "yes":
    attempt("publish-formd", publish("asw.outbound", "formd"))
attempt("publish-inbound", publish("asw.inbound", "acdd.TH"))
attempt("read-own-documents", read("asw.backoffice." + user + ".documents"))
attempt("read-own-outcomes", read("asw.backoffice." + user + ".outcomes"))
attempt("read-other-documents", read("asw.backoffice." + other + ".documents"))
attempt("read-other-outcomes", read("asw.backoffice." + other + ".outcomes"))
attempt("read-hub-queue", read("asw.hub.outbound"))
attempt("declare-queue", declare)
"#;

/// What pika said for each attempt.
fn ministry(vhost: &str, user: &str, other: &str, publish_formd: bool) -> Vec<(String, String)> {
    let publish = if publish_formd { "yes" } else { "no" };
    let out = std::process::Command::new("/usr/bin/python3")
        .args([
            "-c",
            MINISTRY,
            vhost,
            user,
            &ministry_password(user),
            other,
            publish,
        ])
        .output()
        .expect("python3 with pika (deploy/setup.sh installs python3-pika)");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(|l| {
            let (what, rest) = l.split_once(' ').unwrap_or((l, ""));
            (what.to_owned(), rest.to_owned())
        })
        .collect()
}

fn said<'a>(lines: &'a [(String, String)], what: &str) -> &'a str {
    lines
        .iter()
        .find(|(w, _)| w == what)
        .map_or("(nothing)", |(_, r)| r.as_str())
}

fn refused(lines: &[(String, String)], what: &str) -> bool {
    let said = said(lines, what);
    said.starts_with("refused") && said.contains("ACCESS_REFUSED")
}

fn about(m: &Received, id: uuid::Uuid) -> bool {
    m.header(names::HEADER_MESSAGE_ID) == Some(id.to_string().as_str())
        || m.properties.correlation_id.as_deref() == Some(id.to_string().as_str())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_ministry_sends_only_its_kinds_and_gets_only_its_documents_and_outcomes() {
    let (tb, _dir) = testbed_with(&["VN", "TH"], |options| options.ministries = true).await;
    let (vn, th) = (state("VN"), state("TH"));
    let options = tb.options().clone();
    let vhost = options.vhost(vn);
    let (customs, trade) = (
        options.ministry_user(vn, "customs"),
        options.ministry_user(vn, "trade-ministry"),
    );

    // Customs, with its own user and password: the broker refuses it an e-Form D, any publish
    // to asw.inbound, the trade ministry's queues, the hub's, and declaring anything.
    let (v, c, t) = (vhost.clone(), customs.clone(), trade.clone());
    let lines = tokio::task::spawn_blocking(move || ministry(&v, &c, &t, true))
        .await
        .expect("pika");
    assert_eq!(said(&lines, "login"), "ok", "{lines:?}");
    for what in [
        "publish-formd",
        "publish-inbound",
        "read-other-documents",
        "read-other-outcomes",
        "read-hub-queue",
        "declare-queue",
    ] {
        assert!(refused(&lines, what), "customs: {what}: {lines:?}");
    }
    assert_eq!(said(&lines, "read-own-documents"), "ok", "{lines:?}");
    assert_eq!(said(&lines, "read-own-outcomes"), "ok", "{lines:?}");
    // The trade ministry reads its own queues, and not customs'.
    let (v, c, t) = (vhost.clone(), customs.clone(), trade.clone());
    let lines = tokio::task::spawn_blocking(move || ministry(&v, &t, &c, true))
        .await
        .expect("pika");
    assert_eq!(said(&lines, "read-own-documents"), "ok", "{lines:?}");
    assert!(refused(&lines, "read-other-documents"), "{lines:?}");
    assert_eq!(said(&lines, "publish-formd"), "ok", "{lines:?}");
    // Its e-Form D of "<x/>" passed the broker (formd is its kind) and was refused by the hub
    // as unreadable: the rejection comes to the trade ministry only.

    // VN's trade ministry sends an e-Form D, VN's customs an ACDD; TH answers both.
    let form_d = document(DocumentKind::FormD, "VN", "TH");
    let acdd = document(DocumentKind::Acdd, "VN", "TH");
    let (formd_id, acdd_id) = (form_d.header.message_id, acdd.header.message_id);
    tb.send_document(&form_d).await.expect("send formd");
    tb.send_document(&acdd).await.expect("send acdd");
    let queue_of = |at, ministry: &str, what: &str| {
        let user = options.ministry_user(at, ministry);
        match what {
            "documents" => names::back_office_documents_queue(&user),
            _ => names::back_office_outcomes_queue(&user),
        }
    };
    let th_queue = |ministry: &str, what: &str| queue_of(th, ministry, what);
    let vn_queue = |ministry: &str, what: &str| queue_of(vn, ministry, what);
    let got = tb
        .wait_for(th, "formd.VN", WAIT, |m| {
            m.routing_key == "formd.VN" && about(m, formd_id)
        })
        .await
        .expect("e-Form D");
    assert_eq!(got.queue, th_queue("trade-ministry", "documents"));
    let got = tb
        .wait_for(th, "acdd.VN", WAIT, |m| {
            m.routing_key == "acdd.VN" && about(m, acdd_id)
        })
        .await
        .expect("ACDD");
    assert_eq!(got.queue, th_queue("customs", "documents"));
    let mut status = document(DocumentKind::FormDStatus, "TH", "VN");
    status.header.correlation_id = Some(formd_id);
    let mut response = document(DocumentKind::AcddResponse, "TH", "VN");
    response.header.correlation_id = Some(acdd_id);
    tb.send_document(&status).await.expect("status");
    tb.send_document(&response).await.expect("response");

    // At VN, each ministry hears of its own document: the receipt, the acknowledged outcome,
    // the answer and the status outcome, each in its own queue.
    for (ministry, kind, id, ack, answer) in [
        (
            "trade-ministry",
            "formd",
            formd_id,
            "formd-ack.TH",
            "formd-status.TH",
        ),
        (
            "customs",
            "acdd",
            acdd_id,
            "acdd-ack.TH",
            "acdd-response.TH",
        ),
    ] {
        let outcome_key = format!("outcome.{kind}.TH");
        for (key, queue, outcome) in [
            (ack, "documents", None),
            (answer, "documents", None),
            (outcome_key.as_str(), "outcomes", Some("acknowledged")),
            (outcome_key.as_str(), "outcomes", Some("status")),
        ] {
            let got = tb
                .wait_for(vn, key, WAIT, |m| {
                    m.routing_key == key
                        && about(m, id)
                        && outcome.is_none_or(|o| m.header(names::HEADER_OUTCOME) == Some(o))
                })
                .await
                .unwrap_or_else(|e| panic!("{ministry}: {e}"));
            assert_eq!(got.queue, vn_queue(ministry, queue), "{key}");
        }
    }
    // The trade ministry's invalid "<x/>" is told to it alone.
    tb.wait_for(vn, "the rejection of <x/>", WAIT, |m| {
        m.header(names::HEADER_OUTCOME) == Some("rejected")
    })
    .await
    .map(|m| assert_eq!(m.queue, vn_queue("trade-ministry", "outcomes")))
    .expect("rejected outcome");

    // Nothing of the one ministry reached the other's queues, on either side.
    for at in [vn, th] {
        for m in tb.received(at) {
            let kind = m
                .routing_key
                .trim_start_matches("outcome.")
                .split('.')
                .next()
                .unwrap_or_default()
                .to_owned();
            let ministry = if kind.starts_with("formd") {
                "trade-ministry"
            } else {
                "customs"
            };
            let expected = if m.routing_key.starts_with("outcome.") {
                queue_of(at, ministry, "outcomes")
            } else {
                queue_of(at, ministry, "documents")
            };
            assert_eq!(m.queue, expected, "{at}: {}", m.routing_key);
        }
    }

    // A document published without a back-office's user (here by the hub's own user, with no
    // user_id) passes the broker but not the hub: parked TRANSPORT-004, never sent.
    let stray = document(DocumentKind::FormD, "VN", "TH");
    let url = format!("{}/{}", options.amqp, vhost);
    asw_e2e::publish_once(
        &url,
        "stray publisher",
        names::OUTBOUND_EXCHANGE,
        "formd",
        stray.to_xml().expect("xml").as_bytes(),
        &asw_amqp::Properties::new().with_content_type(names::CONTENT_TYPE_XML),
    )
    .await
    .expect("publish");
    // Parked: the trade ministry's "<x/>" and the stray document.
    let parked = take(&tb, vn, names::PARKED_QUEUE, 2, WAIT).await;
    let codes: Vec<Option<&str>> = parked
        .iter()
        .map(|m| {
            m.properties
                .header(names::HEADER_REASON_CODE)
                .and_then(|v| v.as_str())
        })
        .collect();
    assert!(
        codes.contains(&Some("TRANSPORT-004")),
        "the stray e-Form D is parked: {codes:?}"
    );
    assert!(
        !tb.received(th)
            .iter()
            .any(|m| about(m, stray.header.message_id)),
        "the stray e-Form D never reached TH"
    );
    tb.stop_and_clean().await;
}
