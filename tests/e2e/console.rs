//! The operator console of running hubs: documents sent through the testbed appear in the
//! console's API (overview, search, one message with its exact bytes, its conversation), behind
//! a login, and actions need the CSRF token and the operator role.

use std::io::{Read, Write};
use std::net::SocketAddr;

use asw_e2e::{document, state, testbed_with};
use asw_model::{DocumentKind, MemberState};
use asw_testbed::Testbed;
use serde_json::Value;
use uuid::Uuid;

use crate::{WAIT, is_doc, outcome};

/// Sends `request` on a fresh connection; status, head and body.
async fn exchange(address: SocketAddr, request: String) -> (u16, String, Vec<u8>) {
    tokio::task::spawn_blocking(move || {
        let mut stream = std::net::TcpStream::connect(address).expect("connect");
        stream.write_all(request.as_bytes()).expect("write");
        stream
            .shutdown(std::net::Shutdown::Write)
            .expect("half-close");
        let mut response = Vec::new();
        stream.read_to_end(&mut response).expect("read");
        let split = response
            .windows(4)
            .position(|w| w == b"\r\n\r\n")
            .expect("a head");
        let head = String::from_utf8_lossy(&response[..split]).to_string();
        let status = head[9..12].parse().expect("status");
        (status, head, response[split + 4..].to_vec())
    })
    .await
    .expect("exchange task")
}

/// Logs in as `user`; the cookie (`name=value`).
async fn login(address: SocketAddr, user: &str, password: &str) -> String {
    let body = format!("user={user}&password={}", password.replace(' ', "+"));
    let (status, head, _) = exchange(
        address,
        format!(
            "POST /login HTTP/1.1\r\nHost: hub\r\nContent-Type: application/x-www-form-urlencoded\r\nContent-Length: {}\r\n\r\n{body}",
            body.len()
        ),
    )
    .await;
    assert_eq!(status, 303, "{head}");
    head.lines()
        .find_map(|l| l.strip_prefix("set-cookie: "))
        .and_then(|c| c.split(';').next())
        .expect("a session cookie")
        .to_owned()
}

async fn get(address: SocketAddr, cookie: &str, path: &str) -> (u16, Vec<u8>) {
    let (status, _, body) = exchange(
        address,
        format!("GET {path} HTTP/1.1\r\nHost: hub\r\nCookie: {cookie}\r\n\r\n"),
    )
    .await;
    (status, body)
}

async fn json(address: SocketAddr, cookie: &str, path: &str) -> Value {
    let (status, body) = get(address, cookie, path).await;
    assert_eq!(status, 200, "{path}: {}", String::from_utf8_lossy(&body));
    serde_json::from_slice(&body).expect("JSON")
}

fn ids(page: &Value) -> Vec<&str> {
    page["items"]
        .as_array()
        .expect("items")
        .iter()
        .map(|m| m["message_id"].as_str().expect("id"))
        .collect()
}

/// The address of `at`'s console (its metrics listener) in the testbed.
pub(crate) fn console_address(tb: &Testbed, at: MemberState) -> SocketAddr {
    tb.hub(at)
        .and_then(|h| h.metrics_address())
        .expect("the console's address")
}

/// VN's back-office sends TH two e-Form Ds: a good one and one that breaks FORMD-001 (issued
/// in MY); waits for the first's `acknowledged` and the second's `rejected` outcome and returns
/// their ids (good, bad).
pub(crate) async fn send_good_and_bad_formd(tb: &Testbed) -> (Uuid, Uuid) {
    let vn = state("VN");
    let good = document(DocumentKind::FormD, "VN", "TH");
    let good_id = good.header.message_id;
    tb.send_document(&good).await.expect("send");
    let bad = document(DocumentKind::FormD, "VN", "TH");
    let bad_id = bad.header.message_id;
    let xml = bad.to_xml().expect("xml").replacen(
        "<fd:IssuedIn>VN</fd:IssuedIn>",
        "<fd:IssuedIn>MY</fd:IssuedIn>",
        1,
    );
    tb.send(vn, DocumentKind::FormD, xml.as_bytes())
        .await
        .expect("send the bad one");
    tb.wait_for(vn, "acknowledged", WAIT, |m| {
        outcome(m, "outcome.formd.TH", good_id, "acknowledged")
    })
    .await
    .expect("acknowledged");
    tb.wait_for(vn, "rejected", WAIT, |m| {
        outcome(m, "outcome.formd.TH", bad_id, "rejected")
    })
    .await
    .expect("rejected");
    (good_id, bad_id)
}

/// Hubs for VN and TH with their consoles, TH's ministry taking e-Form D (and outcomes,
/// receipts) only, so an ACDD from VN is parked DELIVERY-UNROUTABLE at TH. `journal_url`: every
/// hub's PostgreSQL journal (`{cc}` for each hub's schema), else SQLite files.
pub(crate) async fn acdd_parked_at_th(journal_url: Option<String>) -> (Testbed, tempfile::TempDir) {
    let th = state("TH");
    testbed_with(&["VN", "TH"], |o| {
        o.console = true;
        o.journal_url = journal_url;
        o.back_office_keys.insert(
            th,
            vec!["formd.#".into(), "formd-ack.#".into(), "outcome.#".into()],
        );
    })
    .await
}

/// How many messages with routing key `key` and message id `id` `at`'s back-office received.
pub(crate) fn deliveries(tb: &Testbed, at: MemberState, key: &str, id: Uuid) -> usize {
    tb.received(at)
        .iter()
        .filter(|m| is_doc(m, key, id))
        .count()
}

/// Waits (at most [`WAIT`]) until `journal` holds inbound message `id` in `state`. The journal
/// may block (PostgreSQL's client on a runtime of its own), so it is read off the async task.
pub(crate) async fn until_inbound_in(journal: &dyn asw_journal::Journal, id: Uuid, state: &str) {
    let deadline = tokio::time::Instant::now() + WAIT;
    loop {
        let now = tokio::task::block_in_place(|| {
            journal
                .get(asw_journal::Direction::Inbound, id)
                .expect("read")
                .map(|r| r.summary.state.to_string())
        });
        if now.as_deref() == Some(state) {
            break;
        }
        assert!(tokio::time::Instant::now() < deadline, "{now:?}");
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn documents_sent_through_the_hub_appear_in_the_console() {
    let (tb, _dir) = testbed_with(&["VN", "TH"], |o| o.console = true).await;
    let (vn, th) = (state("VN"), state("TH"));
    let address = console_address(&tb, vn);
    let (good_id, bad_id) = send_good_and_bad_formd(&tb).await;

    // Nothing without a login.
    let (status, _) = get(address, "", "/api/overview").await;
    assert_eq!(status, 401);
    let viewer = login(address, "vic", "viewer password 1").await;

    let overview = json(address, &viewer, "/api/overview").await;
    assert_eq!(overview["country"], "VN");
    let th_form_d = overview["rows"]
        .as_array()
        .expect("rows")
        .iter()
        .find(|r| r["partner"] == "TH" && r["kind"] == "formd")
        .cloned()
        .expect("a TH e-Form D row");
    assert!(
        th_form_d["windows"]["hour"]["sent"].as_u64() >= Some(1),
        "{overview}"
    );

    // Search: by partner and kind, by id, by the reason.
    let page = json(
        address,
        &viewer,
        "/api/messages?partner=TH&kind=formd&direction=outbound",
    )
    .await;
    let found = ids(&page);
    assert!(found.contains(&good_id.to_string().as_str()), "{page}");
    let page = json(address, &viewer, &format!("/api/messages?id={bad_id}")).await;
    let bad_view = &page["items"][0];
    let code = bad_view["reason_code"]
        .as_str()
        .expect("a reason code")
        .to_owned();
    assert!(!bad_view["state"].as_str().expect("state").is_empty());
    let page = json(
        address,
        &viewer,
        &format!("/api/messages?reason_code={code}&direction=outbound"),
    )
    .await;
    assert!(ids(&page).contains(&bad_id.to_string().as_str()), "{page}");

    // One message: its history, and the exact signed bytes to download.
    let detail = json(
        address,
        &viewer,
        &format!("/api/messages/outbound/{good_id}"),
    )
    .await;
    assert_eq!(detail["state"], "acknowledged", "{detail}");
    let (status, bytes) = get(
        address,
        &viewer,
        detail["document_url"].as_str().expect("url"),
    )
    .await;
    assert_eq!(status, 200);
    let journal = tb.hub(vn).expect("VN").journal();
    let record = journal
        .get(asw_journal::Direction::Outbound, good_id)
        .expect("read")
        .expect("journaled");
    assert_eq!(bytes, record.bytes, "the exact journaled bytes");

    // Its conversation: the e-Form D and TH's receipt, in order.
    let conversation = json(address, &viewer, &format!("/api/conversations/{good_id}")).await;
    let kinds: Vec<&str> = conversation["messages"]
        .as_array()
        .expect("messages")
        .iter()
        .map(|m| m["kind"].as_str().expect("kind"))
        .collect();
    assert_eq!(kinds.first(), Some(&"formd"), "{conversation}");
    assert!(kinds.contains(&"formd-ack"), "{conversation}");

    // TH's console knows its own side only.
    let th_address = tb.hub(th).and_then(|h| h.metrics_address()).expect("TH");
    let th_viewer = login(th_address, "vic", "viewer password 1").await;
    let page = json(address, &viewer, "/api/messages?partner=SG").await;
    assert!(ids(&page).is_empty());
    let page = json(
        th_address,
        &th_viewer,
        &format!("/api/messages?id={good_id}"),
    )
    .await;
    assert_eq!(page["items"][0]["direction"], "inbound", "{page}");
    tb.stop_and_clean().await;
}

/// `POST path` with a JSON body, the session's cookie and its CSRF token: status and JSON.
async fn post_json(
    address: SocketAddr,
    cookie: &str,
    csrf: &str,
    path: &str,
    body: &Value,
) -> (u16, Value) {
    let body = body.to_string();
    let (status, head, reply) = exchange(
        address,
        format!(
            "POST {path} HTTP/1.1\r\nHost: hub\r\nCookie: {cookie}\r\nX-CSRF-Token: {csrf}\r\n\
             Content-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
            body.len()
        ),
    )
    .await;
    let reply = serde_json::from_slice(&reply).unwrap_or_else(|e| panic!("{head}: {e}"));
    (status, reply)
}

/// Binds TH's back-office queue to `key` on `asw.inbound`.
pub(crate) async fn bind_back_office(tb: &Testbed, at: MemberState, key: &str) {
    let url = asw_e2e::url_as(tb, at, "guest", "guest");
    let connection = asw_amqp::connect(&url, "test binding")
        .await
        .expect("connect");
    let channel = connection.open_channel().await.expect("channel");
    let topology = asw_route::Topology {
        bindings: vec![asw_route::Binding {
            exchange: asw_route::names::INBOUND_EXCHANGE.into(),
            queue: asw_testbed::BACK_OFFICE_QUEUE.into(),
            routing_key: key.into(),
        }],
        exchanges: Vec::new(),
        queues: Vec::new(),
        users: Vec::new(),
        policies: Vec::new(),
    };
    asw_amqp::declare(&channel, &topology).await.expect("bind");
    let _ = connection.close().await;
}

/// Waits until `at`'s parking lot holds at least `count` ready messages.
pub(crate) async fn until_parked(tb: &Testbed, at: MemberState, count: u32) {
    let url = asw_e2e::url_as(tb, at, "guest", "guest");
    let connection = asw_amqp::connect(&url, "test counting")
        .await
        .expect("connect");
    let channel = connection.open_channel().await.expect("channel");
    let deadline = tokio::time::Instant::now() + WAIT;
    loop {
        let ready = asw_amqp::ready_messages(&channel, asw_route::names::PARKED_QUEUE)
            .await
            .expect("count");
        if ready >= count {
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "{ready} of {count} parked"
        );
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    let _ = connection.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_parked_document_replayed_from_the_console_reaches_the_back_office_once_and_one_discarded_never()
 {
    replay_and_discard_from_the_console(None).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_console_replays_and_discards_with_a_postgresql_journal() {
    let tag = format!("aswc_{}", &uuid::Uuid::new_v4().simple().to_string()[..10]);
    let schemas = crate::tls::Schemas {
        names: ["vn", "th"].iter().map(|c| format!("{tag}_{c}")).collect(),
    };
    for name in &schemas.names {
        crate::tls::psql(&format!("CREATE SCHEMA {name}"));
    }
    replay_and_discard_from_the_console(Some(format!(
        "postgres://postgres@127.0.0.1:5432/postgres?options=-csearch_path%3D{tag}_{{cc}}"
    )))
    .await;
}

/// VN sends TH two ACDDs, both parked DELIVERY-UNROUTABLE at TH (see [`acdd_parked_at_th`],
/// which `journal_url` is passed to). From TH's console, olga discards one with a reason and,
/// once the ministry binds ACDD, replays the other: it reaches the back-office once, the
/// discarded one never; the journal and the audit log name olga.
async fn replay_and_discard_from_the_console(journal_url: Option<String>) {
    let th = state("TH");
    let (tb, _dir) = acdd_parked_at_th(journal_url).await;
    let address = console_address(&tb, th);
    let journal = tb.hub(th).expect("TH").journal();
    let (keep, drop) = (
        document(DocumentKind::Acdd, "VN", "TH"),
        document(DocumentKind::Acdd, "VN", "TH"),
    );
    let (keep_id, drop_id) = (keep.header.message_id, drop.header.message_id);
    tb.send_document(&keep).await.expect("send");
    tb.send_document(&drop).await.expect("send");
    until_parked(&tb, th, 2).await;
    // The journal blocks (PostgreSQL's client on a runtime of its own): off the async task.
    let state_of = |id| {
        tokio::task::block_in_place(|| {
            journal
                .get(asw_journal::Direction::Inbound, id)
                .expect("read")
                .map(|r| r.summary.state.to_string())
        })
    };
    let history_of = |id| {
        tokio::task::block_in_place(|| {
            journal
                .history(asw_journal::Direction::Inbound, id)
                .expect("history")
        })
    };
    // The hub journals a parked delivery as failed just after the parking lot confirmed it.
    let deadline = tokio::time::Instant::now() + WAIT;
    for id in [keep_id, drop_id] {
        while state_of(id).as_deref() != Some("failed") {
            assert!(
                tokio::time::Instant::now() < deadline,
                "{id} is {:?}, not failed",
                state_of(id)
            );
            tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        }
    }

    let operator = login(address, "olga", "operator password 1").await;
    let session = json(address, &operator, "/api/session").await;
    let csrf = session["csrf"].as_str().expect("csrf").to_owned();
    let keep_key = format!("inbound/{keep_id}");
    let drop_key = format!("inbound/{drop_id}");

    // Without its token: refused, nothing moves.
    let (status, e) = post_json(
        address,
        &operator,
        "not-the-token",
        "/api/replay",
        &serde_json::json!({ "messages": [keep_key] }),
    )
    .await;
    assert_eq!(status, 403, "{e}");

    // Discard one with a reason: out of the lot, journaled discarded by olga.
    let (status, done) = post_json(
        address,
        &operator,
        &csrf,
        "/api/discard",
        &serde_json::json!({ "messages": [drop_key], "reason": "sent twice by VN" }),
    )
    .await;
    assert_eq!(status, 200, "{done}");
    assert_eq!(done["messages"][0]["outcome"], "discarded", "{done}");
    assert_eq!(state_of(drop_id).as_deref(), Some("discarded"));
    let history = history_of(drop_id);
    let last = history.last().expect("a transition");
    assert_eq!(last.actor, "olga");
    assert_eq!(
        last.reason
            .as_ref()
            .map(|r| (r.code.as_str(), r.text.as_str())),
        Some(("DISCARDED", "sent twice by VN"))
    );

    // The ministry binds ACDD; the operator replays from the console: delivered once.
    bind_back_office(&tb, th, "acdd.#").await;
    let (status, done) = post_json(
        address,
        &operator,
        &csrf,
        "/api/replay",
        &serde_json::json!({ "messages": [keep_key] }),
    )
    .await;
    assert_eq!(status, 200, "{done}");
    assert_eq!(done["dry_run"], false, "{done}");
    assert_eq!(done["messages"][0]["outcome"], "replayed", "{done}");
    tb.wait_for(th, "the replayed ACDD", WAIT, |m| {
        is_doc(m, "acdd.VN", keep_id)
    })
    .await
    .expect("delivered");
    let history = history_of(keep_id);
    assert!(
        history.iter().any(|t| t.actor == "olga"),
        "the replay is journaled by olga: {history:?}"
    );
    // Replayed again: nothing is parked under it any more; still delivered once, the
    // discarded one never.
    let (status, again) = post_json(
        address,
        &operator,
        &csrf,
        "/api/replay",
        &serde_json::json!({ "messages": [keep_key] }),
    )
    .await;
    assert_eq!(status, 200, "{again}");
    assert_ne!(again["messages"][0]["outcome"], "replayed", "{again}");
    until_inbound_in(journal.as_ref(), keep_id, "delivered").await;
    assert_eq!(deliveries(&tb, th, "acdd.VN", keep_id), 1, "delivered once");
    assert_eq!(
        deliveries(&tb, th, "acdd.VN", drop_id),
        0,
        "the discarded one never"
    );

    // The audit log says who did what.
    let audit = json(address, &operator, "/api/audit").await;
    let items = audit["items"].as_array().expect("items");
    let find = |action: &str, target: &str| {
        items
            .iter()
            .find(|e| e["action"] == action && e["target"] == target)
            .cloned()
            .unwrap_or_else(|| panic!("no {action} of {target}: {audit}"))
    };
    let replayed = find("replay", &keep_key);
    assert_eq!(replayed["user"], "olga");
    let discarded = find("discard", &drop_key);
    assert_eq!(discarded["outcome"], "discarded");
    assert!(
        discarded["detail"]
            .as_str()
            .is_some_and(|d| d.contains("sent twice by VN")),
        "{discarded}"
    );
    tb.stop_and_clean().await;
}
