//! The API over an in-memory journal, through the hub's HTTP server code, and the OpenAPI file
//! against the routes.

use std::collections::BTreeSet;
use std::sync::Arc;

use asw_gateway::channel::ChannelStatus;
use asw_journal::{Direction, Journal, Reason, SqliteJournal, State};
use asw_model::{DocumentKind, Header, MemberState};
use time::OffsetDateTime;
use uuid::Uuid;

use super::*;
use crate::users::{Role, Users};
use crate::{AuditEntry, AuditLog, Console, Sessions};
use asw_gateway::metrics::BrokerSession;

fn ms(code: &str) -> MemberState {
    code.parse().expect("member state")
}

struct Fixture {
    app: Router,
    /// The cookie of an operator's session, and its CSRF token.
    operator: (String, String),
    /// The same for a viewer.
    viewer: (String, String),
    _dir: tempfile::TempDir,
    /// Outbound e-Form D to SG (failed), its inbound receipt, an inbound ACDD from TH.
    form_d: Header,
    receipt: Header,
    acdd: Header,
}

fn header(kind: DocumentKind, sender: &str, receiver: &str, answers: Option<Uuid>) -> Header {
    Header {
        message_id: Uuid::new_v4(),
        correlation_id: answers,
        sender: ms(sender),
        receiver: ms(receiver),
        kind,
        version: "1.0".into(),
        created_at: OffsetDateTime::now_utc(),
    }
}

fn bytes_of(h: &Header) -> Vec<u8> {
    format!(
        "<asw:Message id=\"{}\">\n  <b/>\n</asw:Message>\n",
        h.message_id
    )
    .into_bytes()
}

fn fixture() -> Fixture {
    let journal = SqliteJournal::in_memory().expect("journal");
    let now = OffsetDateTime::now_utc();
    let form_d = header(DocumentKind::FormD, "VN", "SG", None);
    let receipt = header(DocumentKind::FormDAck, "SG", "VN", Some(form_d.message_id));
    let acdd = header(DocumentKind::Acdd, "TH", "VN", None);
    journal
        .record(
            Direction::Outbound,
            &form_d,
            &bytes_of(&form_d),
            State::Received,
            now,
        )
        .expect("record");
    journal
        .transition(
            Direction::Outbound,
            form_d.message_id,
            State::Failed,
            Some(&Reason::new(
                "partner-unreachable",
                "SG's broker refused the connection",
            )),
            now,
        )
        .expect("fail");
    for h in [&receipt, &acdd] {
        // The answers come a moment after the original.
        let later = now + time::Duration::milliseconds(5);
        journal
            .record(Direction::Inbound, h, &bytes_of(h), State::Received, later)
            .expect("record");
    }
    journal
        .transition(
            Direction::Inbound,
            acdd.message_id,
            State::Rejected,
            Some(&Reason::new(
                "schema-invalid",
                "Line 2: element b is not expected",
            )),
            now,
        )
        .expect("reject");
    let dir = tempfile::tempdir().expect("dir");
    let audit = AuditLog::new(dir.path().join("audit.jsonl"));
    let users_file = dir.path().join("users");
    let mut users = Users::default();
    users
        .add("olga", Role::Operator, "operator password 1")
        .expect("add");
    users
        .add("vic", Role::Viewer, "viewer password 1")
        .expect("add");
    users.save(&users_file).expect("save");
    let sessions = Sessions::new(&users_file, std::time::Duration::from_secs(600), false);
    audit
        .append(&AuditEntry {
            at: "2026-12-02T00:00:00Z".into(),
            user: "ana".into(),
            role: "viewer".into(),
            action: "replay".into(),
            target: format!("outbound/{}", form_d.message_id),
            outcome: "refused".into(),
            detail: "a viewer may not replay".into(),
        })
        .expect("audit");
    let mut console = Console::new(
        Arc::new(journal),
        ms("VN"),
        vec![ms("SG"), ms("TH")],
        Box::new(move || {
            vec![ChannelStatus {
                partner: ms("SG"),
                channel: "pull",
                up: Some(false),
                since: now,
                detail: "connection refused".into(),
            }]
        }),
        Box::new(|| Arc::new(asw_sign::TrustSnapshot::default())),
        audit,
        sessions,
    );
    // A hub whose broker session was lost after three reconnects.
    console.broker_session = Some(Box::new(move || BrokerSession {
        connected: false,
        since: Some(now),
        reconnects: 3,
    }));
    let app = crate::routes(Arc::new(console));
    let operator = login(&app, "olga", "operator password 1");
    let viewer = login(&app, "vic", "viewer password 1");
    Fixture {
        app,
        operator,
        viewer,
        _dir: dir,
        form_d,
        receipt,
        acdd,
    }
}

/// Status, head and body of a request.
fn exchange(app: &Router, request: &str) -> (u16, String, Vec<u8>) {
    let response = asw_gateway::http::answer(request.as_bytes(), app.clone());
    let split = response
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .expect("a response head");
    let head = String::from_utf8_lossy(&response[..split]).to_string();
    let status = head[9..12].parse().expect("status");
    (status, head, response[split + 4..].to_vec())
}

/// `POST path` with `body` of `content_type`, with `cookie` and the extra header lines.
fn post(
    app: &Router,
    path: &str,
    cookie: &str,
    extra: &str,
    content_type: &str,
    body: &str,
) -> (u16, String, Vec<u8>) {
    exchange(
        app,
        &format!(
            "POST {path} HTTP/1.1\r\nHost: hub\r\nConnection: close\r\nCookie: {cookie}\r\n{extra}Content-Type: {content_type}\r\nContent-Length: {}\r\n\r\n{body}",
            body.len()
        ),
    )
}

/// Logs in; the session cookie (`name=value`) and the CSRF token.
fn login(app: &Router, user: &str, password: &str) -> (String, String) {
    let body = format!("user={user}&password={}", password.replace(' ', "+"));
    let (status, head, _) = post(
        app,
        "/login",
        "",
        "",
        "application/x-www-form-urlencoded",
        &body,
    );
    assert_eq!(status, 303, "{head}");
    let set = head
        .lines()
        .find_map(|l| l.strip_prefix("set-cookie: "))
        .expect("a cookie");
    assert!(
        set.contains("HttpOnly") && set.contains("SameSite=Strict"),
        "{set}"
    );
    let cookie = set.split(';').next().expect("name=value").to_owned();
    let (status, _, body) = get_as(app, "/api/session", &cookie);
    assert_eq!(status, 200);
    let session: serde_json::Value = serde_json::from_slice(&body).expect("json");
    (cookie, session["csrf"].as_str().expect("csrf").to_owned())
}

/// Status, content type and body of `GET path` with `cookie`.
fn get_as(app: &Router, path: &str, cookie: &str) -> (u16, String, Vec<u8>) {
    let (status, head, body) = exchange(
        app,
        &format!(
            "GET {path} HTTP/1.1\r\nHost: hub\r\nConnection: close\r\nCookie: {cookie}\r\n\r\n"
        ),
    );
    let content_type = head
        .lines()
        .find_map(|l| l.strip_prefix("content-type: "))
        .unwrap_or("")
        .to_owned();
    (status, content_type, body)
}

/// Status, content type and body of `GET path` as the viewer of `f`.
fn get(f: &Fixture, path: &str) -> (u16, String, Vec<u8>) {
    get_as(&f.app, path, &f.viewer.0)
}

fn get_json(f: &Fixture, path: &str) -> (u16, serde_json::Value) {
    let (status, content_type, body) = get(f, path);
    assert_eq!(content_type, "application/json", "{path}");
    (status, serde_json::from_slice(&body).expect("JSON"))
}

fn ids(page: &serde_json::Value) -> Vec<String> {
    page["items"]
        .as_array()
        .expect("items")
        .iter()
        .map(|m| m["message_id"].as_str().expect("id").to_owned())
        .collect()
}

#[test]
fn messages_are_filtered_and_paged_on_the_server() {
    let f = fixture();
    let id = |h: &Header| h.message_id.to_string();
    let (status, all) = get_json(&f, "/api/messages");
    assert_eq!(status, 200);
    assert_eq!(ids(&all).len(), 3);
    for (query, expected) in [
        ("partner=SG", vec![id(&f.receipt), id(&f.form_d)]),
        ("partner=th&direction=inbound", vec![id(&f.acdd)]),
        ("kind=formd", vec![id(&f.form_d)]),
        ("state=failed", vec![id(&f.form_d)]),
        ("reason_code=schema-invalid", vec![id(&f.acdd)]),
        ("q=REFUSED", vec![id(&f.form_d)]),
        (&format!("id={}", f.acdd.message_id), vec![id(&f.acdd)]),
        (&format!("id={}&state=failed", f.acdd.message_id), vec![]),
        (
            "since=2000-01-01T00:00:00Z&until=2001-01-01T00:00:00Z",
            vec![],
        ),
        ("partner=&kind=", ids(&all)),
    ] {
        let (status, page) = get_json(&f, &format!("/api/messages?{query}"));
        assert_eq!(status, 200, "{query}: {page}");
        let mut got = ids(&page);
        let mut want = expected.clone();
        got.sort();
        want.sort();
        assert_eq!(got, want, "{query}");
    }
    // Pages: one at a time, each once, then none.
    let mut seen = BTreeSet::new();
    for n in 1..=3 {
        let (_, page) = get_json(&f, &format!("/api/messages?per_page=1&page={n}"));
        assert_eq!(page["more"], n < 3, "page {n}");
        assert!(seen.insert(ids(&page)[0].clone()));
    }
    let (_, page) = get_json(&f, "/api/messages?per_page=1&page=4");
    assert!(ids(&page).is_empty());
}

#[test]
fn bad_input_gets_a_json_error_naming_it() {
    let f = fixture();
    for (path, status, says) in [
        (
            "/api/messages?partner=XX",
            400,
            "partner: \"XX\" is not a member state",
        ),
        (
            "/api/messages?colour=red",
            400,
            "unknown parameter \"colour\"",
        ),
        ("/api/messages?kind=a&kind=b", 400, "given twice"),
        (
            "/api/messages?since=yesterday",
            400,
            "since: \"yesterday\" is not an RFC 3339",
        ),
        ("/api/messages?per_page=100000", 400, "per_page"),
        ("/api/messages?page=0", 400, "page"),
        ("/api/messages?order=up", 400, "order"),
        ("/api/messages?id=42", 400, "id: \"42\" is not a message id"),
        (
            "/api/messages/sideways/x",
            400,
            "\"sideways\" is not inbound or outbound",
        ),
        (
            "/api/messages/inbound/not-a-uuid",
            400,
            "is not a message id",
        ),
        (
            &format!("/api/messages/inbound/{}", f.form_d.message_id),
            404,
            "not in the journal",
        ),
        (
            &format!("/api/conversations/{}", Uuid::new_v4()),
            404,
            "not in the journal",
        ),
        ("/api/parked?state=delivered", 400, "not a parked state"),
        ("/api/overview?x=1", 400, "unknown parameter"),
    ] {
        let (got, body) = get_json(&f, path);
        assert_eq!(got, status, "{path}: {body}");
        let message = body["error"]["message"].as_str().expect("message");
        assert!(message.contains(says), "{path}: {message}");
        assert_eq!(body["error"]["status"], status);
    }
}

#[test]
fn one_message_its_bytes_and_its_conversation() {
    let f = fixture();
    let path = format!("/api/messages/outbound/{}", f.form_d.message_id);
    let (status, m) = get_json(&f, &path);
    assert_eq!(status, 200, "{m}");
    assert_eq!(m["state"], "failed");
    assert_eq!(m["partner"], "SG");
    assert_eq!(m["reason_code"], "partner-unreachable");
    let history: Vec<&str> = m["history"]
        .as_array()
        .expect("history")
        .iter()
        .map(|h| h["to"].as_str().expect("to"))
        .collect();
    assert_eq!(history, ["received", "failed"]);
    let (status, content_type, bytes) = get(&f, m["document_url"].as_str().expect("url"));
    assert_eq!((status, content_type.as_str()), (200, "application/xml"));
    assert_eq!(bytes, bytes_of(&f.form_d), "the exact bytes");
    // From the receipt, the conversation finds the original and lists both in order.
    let (status, c) = get_json(&f, &format!("/api/conversations/{}", f.receipt.message_id));
    assert_eq!(status, 200);
    let ids: Vec<&str> = c["messages"]
        .as_array()
        .expect("messages")
        .iter()
        .map(|m| m["message_id"].as_str().expect("id"))
        .collect();
    assert_eq!(
        ids,
        [
            f.form_d.message_id.to_string(),
            f.receipt.message_id.to_string()
        ]
    );
}

#[test]
fn overview_parked_partners_and_audit() {
    let f = fixture();
    let (_, o) = get_json(&f, "/api/overview");
    assert_eq!(o["country"], "VN");
    assert_eq!(o["totals"]["hour"]["parked"], 2, "{o}");
    assert_eq!(o["totals"]["week"]["received"], 1, "{o}");
    let sg_form_d = o["rows"]
        .as_array()
        .expect("rows")
        .iter()
        .find(|r| r["partner"] == "SG" && r["kind"] == "formd")
        .expect("an SG e-Form D row");
    assert_eq!(sg_form_d["windows"]["day"]["parked"], 1);
    assert_eq!(o["channels"][0]["status"], "down");
    assert_eq!(o["broker"]["connected"], false, "{o}");
    assert_eq!(o["broker"]["reconnects"], 3, "{o}");
    assert!(o["broker"]["since"].is_string(), "{o}");
    let (status, page) = self::page(&f, "/");
    assert_eq!(status, 200);
    assert!(
        page.contains("<table id=\"broker\">")
            && page.contains(">not connected<")
            && page.contains("<td class=\"num\">3</td></tr></tbody></table>"),
        "{page}"
    );
    let (_, p) = get_json(&f, "/api/parked");
    assert_eq!(ids(&p).len(), 2);
    let (_, p) = get_json(&f, "/api/parked?direction=inbound");
    assert_eq!(ids(&p), [f.acdd.message_id.to_string()]);
    let (_, p) = get_json(&f, "/api/partners");
    assert_eq!(p["partners"][0]["partner"], "SG");
    assert_eq!(
        p["partners"][0]["channels"][0]["detail"],
        "connection refused"
    );
    assert_eq!(p["partners"][1]["channels"], serde_json::json!([]));
    let (_, a) = get_json(&f, "/api/audit");
    assert_eq!(a["items"][0]["outcome"], "refused");
    let (_, c) = get_json(&f, "/api/certificates");
    assert_eq!(c["certificates"], serde_json::json!([]));
}

/// The paths and methods of `docs/console-api.yaml`: the keys under `paths:` (two spaces in)
/// and the methods under each (four spaces in).
fn documented() -> BTreeSet<(String, String)> {
    let file = concat!(env!("CARGO_MANIFEST_DIR"), "/../../docs/console-api.yaml");
    let text = std::fs::read_to_string(file).expect("docs/console-api.yaml");
    let mut in_paths = false;
    let mut path = None;
    let mut found = BTreeSet::new();
    for line in text.lines() {
        if !line.starts_with(' ') && !line.is_empty() {
            in_paths = line == "paths:";
            continue;
        }
        if !in_paths {
            continue;
        }
        if let Some(p) = line.strip_prefix("  /").and_then(|p| p.strip_suffix(':')) {
            path = Some(format!("/{p}"));
        } else if let Some(method) = line
            .strip_prefix("    ")
            .and_then(|m| m.strip_suffix(':'))
            .filter(|m| ["get", "post", "put", "delete", "patch"].contains(m))
        {
            let path = path.clone().expect("a method under a path");
            found.insert((method.to_ascii_uppercase(), path));
        }
    }
    found
}

#[test]
fn the_openapi_file_documents_every_route_and_every_documented_path_is_served() {
    let documented = documented();
    let routed: BTreeSet<(String, String)> = ROUTES
        .iter()
        .chain(OPEN_ROUTES)
        .chain(crate::pages::PAGE_ROUTES)
        .map(|(m, p)| ((*m).to_owned(), (*p).to_owned()))
        .collect();
    assert_eq!(documented, routed, "docs/console-api.yaml against ROUTES");
    // Served: each documented path, its parameters filled, answers (GET: 200; POST: not the
    // server's fallback for a path no route takes, a plain-text 404).
    let f = fixture();
    for (method, path) in &documented {
        let concrete = path
            .replace("{direction}", "outbound")
            .replace("{id}", &f.form_d.message_id.to_string());
        if method == "GET" {
            let (status, _, body) = get(&f, &concrete);
            assert_eq!(
                status,
                200,
                "{concrete}: {}",
                String::from_utf8_lossy(&body)
            );
        } else {
            let (status, head, body) =
                post(&f.app, &concrete, &f.viewer.0, "", "application/json", "{}");
            let body = String::from_utf8_lossy(&body);
            assert!(
                status != 404 && !body.starts_with("404 Not Found"),
                "POST {concrete}: {head}\n{body}"
            );
        }
    }
}

#[test]
fn without_a_session_the_api_answers_401_and_pages_send_to_the_login() {
    let f = fixture();
    let (status, content_type, body) = get_as(&f.app, "/api/messages", "");
    assert_eq!((status, content_type.as_str()), (401, "application/json"));
    assert!(String::from_utf8_lossy(&body).contains("log in first"));
    let (status, _, _) = get_as(&f.app, "/api/messages", "asw_console=forged");
    assert_eq!(status, 401);
    let (status, content_type, body) = get_as(&f.app, "/login", "");
    assert_eq!(
        (status, content_type.as_str()),
        (200, "text/html; charset=utf-8")
    );
    assert!(String::from_utf8_lossy(&body).contains("name=\"password\""));
    // Logging out ends the session.
    let (cookie, _) = login(&f.app, "vic", "viewer password 1");
    let (status, _, _) = post(
        &f.app,
        "/logout",
        &cookie,
        "",
        "application/x-www-form-urlencoded",
        "",
    );
    assert_eq!(status, 303);
    assert_eq!(get_as(&f.app, "/api/overview", &cookie).0, 401);
}

#[test]
fn wrong_passwords_are_refused_and_then_rate_limited() {
    let f = fixture();
    let attempt = |password: &str| {
        let body = format!("user=vic&password={password}");
        post(
            &f.app,
            "/login",
            "",
            "",
            "application/x-www-form-urlencoded",
            &body,
        )
        .0
    };
    for _ in 0..crate::auth::MAX_FAILED_LOGINS {
        assert_eq!(attempt("wrong"), 401);
    }
    // Now even the right password waits out the window.
    assert_eq!(attempt("viewer+password+1"), 429);
    assert_eq!(attempt(""), 400, "no password");
}

#[test]
fn actions_need_the_csrf_token_and_a_viewer_is_refused_and_audited() {
    let f = fixture();
    let target = format!("outbound/{}", f.form_d.message_id);
    let body = format!("{{\"messages\": [\"{target}\"]}}");
    let dry = format!("{{\"messages\": [\"{target}\"], \"dry_run\": true}}");
    let (operator, operator_csrf) = &f.operator;
    let (viewer, viewer_csrf) = &f.viewer;
    let csrf = |t: &str| format!("X-CSRF-Token: {t}\r\n");
    let json = |(status, _, body): (u16, String, Vec<u8>)| {
        (
            status,
            serde_json::from_slice::<serde_json::Value>(&body).expect("JSON"),
        )
    };
    // No token, or another session's: refused, whoever asks.
    for (cookie, extra) in [(operator, String::new()), (operator, csrf(viewer_csrf))] {
        let (status, e) = json(post(
            &f.app,
            "/api/replay",
            cookie,
            &extra,
            "application/json",
            &body,
        ));
        assert_eq!(status, 403, "{e}");
        assert!(
            e["error"]["message"].as_str().expect("m").contains("CSRF"),
            "{e}"
        );
    }
    // A viewer with a token: 403, and the audit log says so.
    let (status, e) = json(post(
        &f.app,
        "/api/replay",
        viewer,
        &csrf(viewer_csrf),
        "application/json",
        &body,
    ));
    assert_eq!(status, 403, "{e}");
    assert!(
        e["error"]["message"]
            .as_str()
            .expect("m")
            .contains("only an operator"),
        "{e}"
    );
    let (_, audit) = get_json(&f, "/api/audit");
    assert_eq!(audit["items"][0]["user"], "vic");
    assert_eq!(audit["items"][0]["action"], "replay");
    assert_eq!(audit["items"][0]["outcome"], "refused");
    assert_eq!(audit["items"][0]["target"], target.as_str());
    // A dry run says what would happen, for anyone with a token.
    let (status, plan) = json(post(
        &f.app,
        "/api/replay",
        viewer,
        &csrf(viewer_csrf),
        "application/json",
        &dry,
    ));
    assert_eq!(status, 200, "{plan}");
    assert_eq!(plan["messages"][0]["would_replay"], true, "{plan}");
    assert!(
        plan["messages"][0]["detail"]
            .as_str()
            .expect("d")
            .starts_with("failed -> received"),
        "{plan}"
    );
    // Bad bodies: a clear 400.
    for bad in [
        "not json",
        "{\"messages\": [\"sideways/1\"]}",
        "{\"messages\": []}",
        "{\"colour\": 1}",
    ] {
        let (status, e) = json(post(
            &f.app,
            "/api/replay",
            operator,
            &csrf(operator_csrf),
            "application/json",
            bad,
        ));
        assert_eq!(status, 400, "{bad}: {e}");
    }
    let (status, e) = json(post(
        &f.app,
        "/api/discard",
        operator,
        &csrf(operator_csrf),
        "application/json",
        &body,
    ));
    assert_eq!(status, 400, "{e}");
    assert!(
        e["error"]["message"]
            .as_str()
            .expect("m")
            .contains("must say why")
    );
}

/// `GET path` as the viewer: status and the page's text, checked to be HTML.
fn page(f: &Fixture, path: &str) -> (u16, String) {
    let (status, content_type, body) = get(f, path);
    assert_eq!(content_type, "text/html; charset=utf-8", "{path}");
    (status, String::from_utf8(body).expect("UTF-8"))
}

#[test]
fn the_pages_show_the_journal_as_tables() {
    let f = fixture();
    let (status, overview) = page(&f, "/");
    assert_eq!(status, 200, "{overview}");
    assert!(overview.contains("<table id=\"counts\">"), "{overview}");
    assert!(
        overview.contains("connection refused"),
        "the channel's health"
    );
    assert!(!overview.contains("{\""), "no raw JSON for people");
    let (status, list) = page(&f, "/messages?partner=SG&direction=outbound&order=oldest");
    assert_eq!(status, 200, "{list}");
    assert!(list.contains(&f.form_d.message_id.to_string()), "{list}");
    assert!(!list.contains(&f.acdd.message_id.to_string()), "{list}");
    // The form holds the query; the Updated head flips the order and keeps the rest.
    assert!(list.contains("<option value=\"SG\" selected>"), "{list}");
    assert!(list.contains("order=newest"), "{list}");
    assert!(list.contains("partner=SG"), "{list}");
    // A time typed as a person would.
    let (status, _) = page(&f, "/messages?since=2026-01-01+08%3A00");
    assert_eq!(status, 200);
    let (status, one) = page(&f, &format!("/messages/inbound/{}", f.acdd.message_id));
    assert_eq!(status, 200, "{one}");
    // The reason names line 2: it is marked, and the document is escaped.
    assert!(one.contains("<tr id=\"L2\" class=\"marked\">"), "{one}");
    assert!(one.contains("&lt;asw:Message id=&quot;"), "{one}");
    assert!(!one.contains("<asw:Message"), "{one}");
    assert!(one.contains("schema-invalid"), "{one}");
    assert!(
        one.contains("Replay: dry run"),
        "a parked message offers the dry run"
    );
    let (status, chat) = page(&f, &format!("/conversations/{}", f.receipt.message_id));
    assert_eq!(status, 200);
    let chat = &chat[chat.find("<table id=\"conversation\">").expect("table")..];
    let first = chat
        .find(&f.form_d.message_id.to_string())
        .expect("original");
    let answer = chat
        .find(&f.receipt.message_id.to_string())
        .expect("answer");
    assert!(first < answer, "the original first");
    let (status, parked) = page(&f, "/parked");
    assert_eq!(status, 200);
    assert!(
        parked.contains("name=\"message\" value=\"outbound/"),
        "{parked}"
    );
    assert!(parked.contains(&format!("name=\"csrf\" value=\"{}\"", f.viewer.1)));
    let (_, audit) = page(&f, "/audit");
    assert!(audit.contains("a viewer may not replay"), "{audit}");
    let (_, partners) = page(&f, "/partners");
    assert!(partners.contains("no certificate"), "{partners}");
}

#[test]
fn bad_input_to_a_page_gets_an_error_page() {
    let f = fixture();
    for (path, status, says) in [
        ("/messages?colour=red", 400, "unknown parameter"),
        ("/messages?since=yesterday", 400, "RFC 3339"),
        ("/messages/sideways/1", 400, "not inbound or outbound"),
        ("/messages/outbound/not-a-uuid", 400, "not a message id"),
        (
            &*format!("/messages/outbound/{}", Uuid::new_v4()),
            404,
            "not in the journal",
        ),
        ("/conversations/%3Cscript%3E", 400, "&lt;script&gt;"),
        ("/parked?state=delivered", 400, "not a parked state"),
        ("/audit?page=0", 400, "numbered from 1"),
    ] {
        let (got, text) = page(&f, path);
        assert_eq!(got, status, "{path}: {text}");
        assert!(text.contains(says), "{path}: {text}");
        assert!(!text.contains("<script>"), "{path}: escaped");
    }
    // Without a session: to the login.
    let (status, head, _) = exchange(
        &f.app,
        "GET /parked HTTP/1.1\r\nHost: hub\r\nConnection: close\r\n\r\n",
    );
    assert_eq!(status, 303);
    assert!(head.contains("location: /login"), "{head}");
}

#[test]
fn the_parked_form_checks_the_token_and_the_role() {
    let f = fixture();
    let target = format!("outbound%2F{}", f.form_d.message_id);
    let form = |cookie: &str, csrf: &str, action: &str| {
        let (status, _, body) = post(
            &f.app,
            "/parked",
            cookie,
            "",
            "application/x-www-form-urlencoded",
            &format!("csrf={csrf}&message={target}&action={action}&reason=duplicate"),
        );
        (status, String::from_utf8(body).expect("UTF-8"))
    };
    let (viewer, viewer_csrf) = &f.viewer;
    let (operator, operator_csrf) = &f.operator;
    let (status, text) = form(viewer, "", "dry-run");
    assert_eq!(status, 403, "{text}");
    assert!(text.contains("CSRF"), "{text}");
    let (status, text) = form(viewer, viewer_csrf, "dry-run");
    assert_eq!(status, 200, "{text}");
    assert!(text.contains("failed -&gt; received"), "{text}");
    let (status, text) = form(viewer, viewer_csrf, "replay");
    assert_eq!(status, 403, "{text}");
    assert!(text.contains("only an operator"), "{text}");
    let (_, audit) = get_json(&f, "/api/audit");
    assert_eq!(audit["items"][0]["user"], "vic");
    assert_eq!(audit["items"][0]["outcome"], "refused");
    // An operator's replay and discard reach for the broker; this console has none (the
    // hub's does: tests/e2e/console.rs replays and discards through it).
    let (status, text) = form(operator, operator_csrf, "replay");
    assert_eq!(status, 503, "{text}");
    assert!(text.contains("no broker settings"), "{text}");
    let (status, text) = form(operator, operator_csrf, "discard");
    assert_eq!(status, 503, "{text}");
    let (status, text) = form(operator, operator_csrf, "sideways");
    assert_eq!(status, 400, "{text}");
}

/// A signed message's page and JSON name its signer and the SHA-256 of the certificate in its
/// signature: a partner's, found in the trust store, and the hub's own, which is not in it.
#[test]
fn a_signed_message_shows_its_signer_and_fingerprint() {
    use asw_model::sample::{self, SampleSpec};
    use asw_sign::keygen::{self, KeyAlgorithm};
    let now = OffsetDateTime::now_utc();
    let sign = |from: &str, to: &str, seed| {
        let key = keygen::generate(ms(from), KeyAlgorithm::EcP256, 30, now).expect("key");
        let message = sample::message(&SampleSpec {
            kind: DocumentKind::FormD,
            from: ms(from),
            to: ms(to),
            items: 1,
            seed,
            created_at: now,
        });
        let signed = asw_sign::Signer::new(&key.key_pem, &key.cert_pem)
            .expect("signer")
            .sign(message.to_xml().expect("xml").as_bytes())
            .expect("sign");
        (message.header, signed, key.cert_pem)
    };
    let (ours, our_bytes, our_cert) = sign("VN", "TH", 1);
    let (theirs, their_bytes, their_cert) = sign("TH", "VN", 2);
    let journal = SqliteJournal::in_memory().expect("journal");
    journal
        .record_signed(&ours, b"<unsigned/>", &our_bytes, now)
        .expect("record");
    journal
        .record(
            Direction::Inbound,
            &theirs,
            &their_bytes,
            State::Received,
            now,
        )
        .expect("record");
    let trust = asw_sign::TrustStore::from_pem([(ms("TH"), their_cert.as_slice())])
        .expect("trust")
        .snapshot();
    let fingerprint = |pem: &[u8]| {
        let info = asw_sign::TrustStore::from_pem([(ms("SG"), pem)])
            .expect("pem")
            .snapshot()
            .certificates()[0]
            .info()
            .clone();
        (info.fingerprint().to_owned(), info.subject().to_owned())
    };
    let (our_fingerprint, our_subject) = fingerprint(&our_cert);
    let (their_fingerprint, their_subject) = fingerprint(&their_cert);
    assert_ne!(our_fingerprint, their_fingerprint);
    let dir = tempfile::tempdir().expect("dir");
    let users_file = dir.path().join("users");
    let mut users = Users::default();
    users
        .add("vic", Role::Viewer, "viewer password 1")
        .expect("add");
    users.save(&users_file).expect("save");
    let console = Console::new(
        Arc::new(journal),
        ms("VN"),
        vec![ms("TH")],
        Box::new(Vec::new),
        Box::new(move || trust.clone()),
        AuditLog::new(dir.path().join("audit.jsonl")),
        Sessions::new(&users_file, std::time::Duration::from_secs(600), false),
    );
    let app = crate::routes(Arc::new(console));
    let (cookie, _) = login(&app, "vic", "viewer password 1");
    for (direction, header, signer, fingerprint, subject, trusted) in [
        (
            "outbound",
            &ours,
            "VN",
            &our_fingerprint,
            &our_subject,
            false,
        ),
        (
            "inbound",
            &theirs,
            "TH",
            &their_fingerprint,
            &their_subject,
            true,
        ),
    ] {
        let path = format!("/api/messages/{direction}/{}", header.message_id);
        let (status, _, body) = get_as(&app, &path, &cookie);
        assert_eq!(status, 200);
        let m: serde_json::Value = serde_json::from_slice(&body).expect("json");
        assert_eq!(m["signature"]["signer"], signer, "{m}");
        assert_eq!(m["signature"]["fingerprint"], fingerprint.as_str(), "{m}");
        assert_eq!(m["signature"]["subject"], subject.as_str(), "{m}");
        assert_eq!(m["signature"]["trusted"], trusted, "{m}");
        let (status, _, page) = get_as(&app, &path.replacen("/api", "", 1), &cookie);
        assert_eq!(status, 200);
        let page = String::from_utf8(page).expect("utf-8");
        assert!(
            page.contains(&format!("<code id=\"fingerprint\">{fingerprint}</code>")),
            "{page}"
        );
    }
    // An unsigned document has no signature.
    let f = fixture();
    let (_, m) = get_json(
        &f,
        &format!("/api/messages/outbound/{}", f.form_d.message_id),
    );
    assert_eq!(m["signature"], serde_json::Value::Null, "{m}");
}
