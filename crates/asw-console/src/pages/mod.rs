//! The console's pages for people: server-rendered HTML over the same queries as the JSON API
//! (no front-end build, no script). Overview, messages (the API's filters as a GET form, so the
//! URL holds the query), one message with its document, a conversation, parked messages with
//! their actions, partners and certificates, the audit log.
//!
//! Everything taken from the journal, a partner or a user is escaped. Bad input gets an error
//! page that says what was wrong, with the status the API would give; never a trace.

use std::fmt::Write as _;
use std::sync::Arc;

use asw_journal::{Direction, MessageSummary, State};
use asw_model::DocumentKind;
use axum::Router;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use time::OffsetDateTime;

use crate::Console;
use crate::api::{ApiError, partner_of};
use crate::auth::{Session, escape};

mod audit;
mod messages;
mod overview;
mod parked;
mod partners;

use audit::audit;
pub use messages::reason_lines;
use messages::{conversation, message, messages};
use overview::overview;
use parked::{parked, parked_action};
use partners::partners;

/// Every page route: method and path.
pub const PAGE_ROUTES: &[(&str, &str)] = &[
    ("GET", "/"),
    ("GET", "/messages"),
    ("GET", "/messages/{direction}/{id}"),
    ("GET", "/conversations/{id}"),
    ("GET", "/parked"),
    ("POST", "/parked"),
    ("GET", "/partners"),
    ("GET", "/audit"),
];

/// The most document lines a message page shows; past them, the download has the rest.
pub const MAX_DOCUMENT_LINES: usize = 5000;

/// The pages over `console` (behind [`crate::auth::require_session`], as the API is).
pub fn routes(console: Arc<Console>) -> Router {
    Router::new()
        .route("/", get(overview))
        .route("/messages", get(messages))
        .route("/messages/{direction}/{id}", get(message))
        .route("/conversations/{id}", get(conversation))
        .route("/parked", get(parked).post(parked_action))
        .route("/partners", get(partners))
        .route("/audit", get(audit))
        .with_state(console)
}

/// The pages' style sheet, on top of the login's.
const STYLE: &str = "nav{background:#1f3a5f;color:#fff;padding:.5rem 1rem;display:flex;gap:1.2rem;align-items:center;flex-wrap:wrap}\
nav a{color:#fff;text-decoration:none;font-weight:600}nav a:hover{text-decoration:underline}\
nav .who{margin-left:auto;font-size:.9rem}nav form{display:inline;margin:0}\
nav button{font-size:.85rem;padding:.15rem .5rem}\
main{max-width:90rem}h1{font-size:1.4rem;margin:.8rem 0}h2{font-size:1.1rem;margin:1.4rem 0 .5rem}\
table{border-collapse:collapse;width:100%;font-size:.9rem;margin:.4rem 0}\
th,td{border-bottom:1px solid #ddd;padding:.3rem .45rem;text-align:left;vertical-align:top}\
th{background:#f0f3f7;position:sticky;top:0}tbody tr:hover{background:#f7f9fc}\
td.num,th.num{text-align:right;font-variant-numeric:tabular-nums}\
.bad{color:#a40000;font-weight:600}.ok{color:#176b2c;font-weight:600}.muted{color:#666}\
code,.id{font-family:ui-monospace,monospace;font-size:.85rem}.id,time{white-space:nowrap}td code{overflow-wrap:anywhere}\
form.filters{display:flex;flex-wrap:wrap;gap:.5rem .8rem;align-items:end;background:#f7f7f7;padding:.6rem;border-radius:4px}\
form.filters label{display:flex;flex-direction:column;font-size:.8rem;gap:.15rem}\
form.filters input,form.filters select{font-size:.9rem;padding:.25rem}\
dl.head{display:grid;grid-template-columns:max-content 1fr;gap:.2rem 1rem;margin:.4rem 0}\
dl.head dt{font-weight:600}dl.head dd{margin:0}\
table.doc{font-family:ui-monospace,monospace;font-size:.8rem}\
table.doc td{border:0;padding:0 .5rem;white-space:pre-wrap;word-break:break-all}\
table.doc td.n{color:#888;text-align:right;user-select:none;width:1%;white-space:nowrap}\
table.doc tr.marked{background:#ffe3e3}table.doc tr.marked td.n{color:#a40000;font-weight:700}\
tr.current{background:#fff6d6}.pages{display:flex;gap:1rem;margin:.6rem 0}\
.notice{padding:.6rem .8rem;border-left:4px solid #a40000;background:#fff0f0;margin:.6rem 0}\
.info{padding:.6rem .8rem;border-left:4px solid #1f3a5f;background:#eef3fa;margin:.6rem 0}\
.actions{display:flex;gap:.6rem;align-items:center;flex-wrap:wrap;margin:.6rem 0}";

/// The frame of a page: navigation, who is logged in, `body` (already escaped).
fn frame(status: StatusCode, session: &Session, title: &str, body: &str) -> Response {
    let html = format!(
        "<!doctype html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\
         <title>{title} - aswhub console</title><style>{}{STYLE}</style></head><body>\
         <nav><a href=\"/\">Overview</a><a href=\"/messages\">Messages</a><a href=\"/parked\">Parked</a>\
         <a href=\"/partners\">Partners and certificates</a><a href=\"/audit\">Audit log</a>\
         <span class=\"who\">{user} ({role})</span>\
         <form method=\"post\" action=\"/logout\"><button type=\"submit\">Log out</button></form></nav>\
         <main>{body}</main></body></html>\n",
        crate::auth::STYLE,
        title = escape(title),
        user = escape(&session.user),
        role = session.role,
    );
    (
        status,
        [
            (header::CONTENT_TYPE, "text/html; charset=utf-8"),
            (header::CACHE_CONTROL, "no-store"),
        ],
        html,
    )
        .into_response()
}

/// A page, or the error page of what went wrong.
fn render(session: &Session, result: Result<(String, String), ApiError>) -> Response {
    match result {
        Ok((title, body)) => frame(StatusCode::OK, session, &title, &body),
        Err(e) => error_page(session, &e),
    }
}

/// The error page of `e`: its status, what it means and what was wrong.
fn error_page(session: &Session, e: &ApiError) -> Response {
    let heading = match e.status {
        StatusCode::BAD_REQUEST => "That request cannot be answered",
        StatusCode::NOT_FOUND => "Not found",
        StatusCode::FORBIDDEN => "Not allowed",
        _ => "The console cannot answer now",
    };
    let body = format!(
        "<h1>{heading}</h1><p class=\"notice\" role=\"alert\">{}</p>\
         <p class=\"muted\">HTTP {}. <a href=\"/\">Back to the overview</a></p>",
        escape(&e.message),
        e.status.as_u16()
    );
    frame(e.status, session, heading, &body)
}

/// An RFC 3339 time, shorter for a table (seconds, no fraction), the full one on hover.
fn when(rfc3339: &str) -> String {
    let short = match (rfc3339.get(..19), rfc3339.ends_with('Z')) {
        (Some(head), true) => format!("{} UTC", head.replace('T', " ")),
        _ => rfc3339.to_owned(),
    };
    format!(
        "<time datetime=\"{}\" title=\"{}\">{}</time>",
        escape(rfc3339),
        escape(rfc3339),
        escape(&short)
    )
}

fn when_t(t: OffsetDateTime) -> String {
    when(&crate::views::rfc3339(t))
}

/// `path?query` of the pairs given (empty values left out), escaped for an attribute.
fn link(path: &str, pairs: &[(&str, &str)]) -> String {
    let mut query = url::form_urlencoded::Serializer::new(String::new());
    for (k, v) in pairs.iter().filter(|(_, v)| !v.is_empty()) {
        query.append_pair(k, v);
    }
    let query = query.finish();
    if query.is_empty() {
        escape(path)
    } else {
        escape(&format!("{path}?{query}"))
    }
}

fn message_href(m: &MessageSummary) -> String {
    escape(&format!(
        "/messages/{}/{}",
        m.direction.as_str(),
        m.header.message_id
    ))
}

fn state_cell(state: State) -> String {
    let class = match state {
        State::Failed | State::Rejected => "bad",
        State::Delivered | State::Acknowledged => "ok",
        _ => "",
    };
    format!("<td class=\"{class}\">{}</td>", state.as_str())
}

/// The rows of a message listing; `check` adds a checkbox column (the parked page's).
fn message_rows(found: &[MessageSummary], check: bool, current: Option<uuid::Uuid>) -> String {
    let mut out = String::new();
    for m in found {
        let id = m.header.message_id;
        let key = format!("{}/{id}", m.direction.as_str());
        let class = if current == Some(id) {
            " class=\"current\""
        } else {
            ""
        };
        let _ = write!(out, "<tr{class}>");
        if check {
            let _ = write!(
                out,
                "<td><input type=\"checkbox\" name=\"message\" value=\"{}\" aria-label=\"select {}\"></td>",
                escape(&key),
                escape(&key)
            );
        }
        let (code, text) = m
            .reason
            .as_ref()
            .map(|r| (r.code.as_str(), r.text.as_str()))
            .unwrap_or(("", ""));
        let _ = write!(
            out,
            "<td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{} &rarr; {}</td>{}\
             <td><code>{}</code></td><td>{}</td><td><a class=\"id\" href=\"{}\">{}</a></td></tr>",
            when_t(m.updated_at),
            m.direction.as_str(),
            m.header.kind.as_str(),
            partner_of(m).code(),
            m.header.sender.code(),
            m.header.receiver.code(),
            state_cell(m.state),
            escape(code),
            escape(text),
            message_href(m),
            id,
        );
    }
    out
}

/// The head of a message listing; `updated` is the Updated column's head (a sort link or not).
fn message_head(check: bool, updated: &str) -> String {
    format!(
        "<thead><tr>{}<th>{updated}</th><th>Direction</th><th>Kind</th><th>Partner</th><th>From &rarr; to</th>\
         <th>State</th><th>Reason code</th><th>Reason</th><th>Message id</th></tr></thead>",
        if check { "<th>Select</th>" } else { "" }
    )
}

fn select(name: &str, label: &str, chosen: Option<&str>, options: &[(&str, &str)]) -> String {
    let mut out = format!("<label>{label}<select name=\"{name}\"><option value=\"\">any</option>");
    for (value, text) in options {
        let selected = if chosen == Some(*value) {
            " selected"
        } else {
            ""
        };
        let _ = write!(
            out,
            "<option value=\"{}\"{selected}>{}</option>",
            escape(value),
            escape(text)
        );
    }
    out.push_str("</select></label>");
    out
}

fn text_input(name: &str, label: &str, value: Option<&str>, hint: &str) -> String {
    format!(
        "<label>{label}<input name=\"{name}\" value=\"{}\" placeholder=\"{}\"></label>",
        escape(value.unwrap_or("")),
        escape(hint)
    )
}

/// The query pairs of `query`, with a time typed as `2026-12-02 08:00` or an HTML
/// `datetime-local` value (`2026-12-02T08:00`) read as UTC, as the API wants it.
fn normalised_query(query: Option<&str>) -> String {
    let mut out = url::form_urlencoded::Serializer::new(String::new());
    for (k, v) in url::form_urlencoded::parse(query.unwrap_or("").as_bytes()) {
        let v = v.trim();
        let v = if matches!(k.as_ref(), "since" | "until") {
            normalise_time(v)
        } else {
            v.to_owned()
        };
        out.append_pair(&k, &v);
    }
    out.finish()
}

fn normalise_time(v: &str) -> String {
    let t = v.replacen(' ', "T", 1);
    let digits = |s: &str| s.bytes().all(|b| b.is_ascii_digit());
    match t.len() {
        // 2026-12-02
        10 if digits(&t.replace('-', "")) => format!("{t}T00:00:00Z"),
        // 2026-12-02T08:00
        16 if t.as_bytes()[10] == b'T' => format!("{t}:00Z"),
        // 2026-12-02T08:00:00
        19 if t.as_bytes()[10] == b'T' => format!("{t}Z"),
        _ => v.to_owned(),
    }
}

/// The options of the partner select: the configured partners.
fn partner_options(console: &Console) -> Vec<(&'static str, &'static str)> {
    console
        .partners
        .iter()
        .map(|p| (p.code(), p.code()))
        .collect()
}

fn kind_options() -> Vec<(&'static str, &'static str)> {
    DocumentKind::ALL
        .iter()
        .map(|k| (k.as_str(), k.as_str()))
        .collect()
}

fn direction_options() -> Vec<(&'static str, &'static str)> {
    Direction::ALL
        .iter()
        .map(|d| (d.as_str(), d.as_str()))
        .collect()
}

/// Previous and next page links of a listing at `path` whose query is `pairs`.
fn pager(path: &str, pairs: &[(String, String)], page: u32, more: bool) -> String {
    let with_page = |n: u32| {
        let n = n.to_string();
        let mut kept: Vec<(&str, &str)> = pairs
            .iter()
            .filter(|(k, _)| k != "page")
            .map(|(k, v)| (k.as_str(), v.as_str()))
            .collect();
        kept.push(("page", &n));
        link(path, &kept)
    };
    let mut out = String::from("<div class=\"pages\">");
    if page > 1 {
        let _ = write!(
            out,
            "<a rel=\"prev\" href=\"{}\">&larr; Page {}</a>",
            with_page(page - 1),
            page - 1
        );
    }
    let _ = write!(out, "<span>Page {page}</span>");
    if more {
        let _ = write!(
            out,
            "<a rel=\"next\" href=\"{}\">Page {} &rarr;</a>",
            with_page(page + 1),
            page + 1
        );
    }
    out.push_str("</div>");
    out
}

fn pairs_of(query: &str) -> Vec<(String, String)> {
    url::form_urlencoded::parse(query.as_bytes())
        .filter(|(_, v)| !v.is_empty())
        .map(|(k, v)| (k.into_owned(), v.into_owned()))
        .collect()
}

/// The certificates table, shared by the overview (those expiring) and the partners page (all).
fn certificates_table(certificates: &[crate::api::CertificateView]) -> String {
    let mut body = String::from(
        "<table id=\"certificates\"><thead><tr><th>Partner</th><th>Subject</th><th class=\"num\">Days left</th>\
         <th>Valid from</th><th>Valid until</th><th>Key</th><th>SHA-256 fingerprint</th><th>File</th></tr></thead><tbody>",
    );
    for c in certificates {
        let class = if c.expiring { "num bad" } else { "num" };
        let _ = write!(
            body,
            "<tr><td>{}</td><td>{}</td><td class=\"{class}\">{}</td><td>{}</td><td>{}</td><td>{}</td><td><code>{}</code></td><td><code>{}</code></td></tr>",
            c.partner,
            escape(&c.subject),
            c.days_left,
            when(&c.not_before),
            when(&c.not_after),
            escape(&c.key),
            escape(&c.fingerprint),
            escape(&c.file)
        );
    }
    body.push_str("</tbody></table>");
    body
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_lines_reasons_name_are_found() {
        assert_eq!(
            reason_lines(&[
                "FORMD-004 line 12: bad (and 2 more)",
                "Line 3: x; line 12: y"
            ]),
            [3, 12]
        );
        assert!(reason_lines(&["no line here", "line x", "line 0"]).is_empty());
    }

    #[test]
    fn typed_times_are_read_as_utc() {
        assert_eq!(normalise_time("2026-12-02 08:00"), "2026-12-02T08:00:00Z");
        assert_eq!(normalise_time("2026-12-02T08:00"), "2026-12-02T08:00:00Z");
        assert_eq!(normalise_time("2026-12-02"), "2026-12-02T00:00:00Z");
        assert_eq!(
            normalise_time("2026-12-02T08:00:00+02:00"),
            "2026-12-02T08:00:00+02:00"
        );
        assert_eq!(normalise_time("yesterday"), "yesterday");
    }
}
