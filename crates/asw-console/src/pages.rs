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
use axum::body::Bytes;
use axum::extract::{Path, RawQuery, State as Shared};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use time::OffsetDateTime;

use crate::api::{self, ApiError, MessageQuery, Params, blocking, partner_of};
use crate::auth::{Session, escape};
use crate::{Console, actions};

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

async fn overview(
    Shared(console): Shared<Arc<Console>>,
    axum::Extension(session): axum::Extension<Session>,
    RawQuery(query): RawQuery,
) -> Response {
    let result = async {
        Params::parse(query.as_deref(), &[])?;
        let days = console.expiry_warning_days;
        let o = blocking(console, api::overview_now).await?;
        let mut body = format!(
            "<h1>Overview of {}</h1><p class=\"muted\">Counted at {} over the last hour, day and week, by last update. \
             Sent counts what went to the partner (queued, sent, awaiting its receipt, acknowledged); \
             parked: failed or rejected.</p>",
            o.country,
            when(&o.at)
        );
        if o.truncated {
            let _ = write!(
                body,
                "<p class=\"notice\">The week held more than {} messages: the counts cover the newest of them.</p>",
                api::OVERVIEW_MAX
            );
        }
        body.push_str("<h2>Messages by partner and kind</h2><table id=\"counts\"><thead><tr><th rowspan=\"2\">Partner</th><th rowspan=\"2\">Kind</th>");
        for (w, _) in api::WINDOWS {
            let _ = write!(body, "<th colspan=\"4\" class=\"num\">Last {w}</th>");
        }
        body.push_str("</tr><tr>");
        for _ in api::WINDOWS {
            body.push_str("<th class=\"num\">Sent</th><th class=\"num\">Received</th><th class=\"num\">Parked</th><th class=\"num\">Awaiting receipt</th>");
        }
        body.push_str("</tr></thead><tbody>");
        let now = OffsetDateTime::now_utc();
        let counts = |out: &mut String, windows: &std::collections::BTreeMap<&str, api::Counts>, partner: &str, kind: &str| {
            for (w, length) in api::WINDOWS {
                let c = windows.get(w).copied().unwrap_or_default();
                let since = crate::views::rfc3339(now - length);
                let search = link("/messages", &[("partner", partner), ("kind", kind), ("since", &since)]);
                let parked = link("/parked", &[("partner", partner), ("kind", kind)]);
                let class = if c.parked > 0 { "num bad" } else { "num" };
                let _ = write!(
                    out,
                    "<td class=\"num\"><a href=\"{search}\">{}</a></td><td class=\"num\">{}</td>\
                     <td class=\"{class}\"><a href=\"{parked}\">{}</a></td><td class=\"num\">{}</td>",
                    c.sent, c.received, c.parked, c.awaiting_receipt
                );
            }
        };
        for row in &o.rows {
            let _ = write!(
                body,
                "<tr><td><a href=\"{}\">{}</a></td><td><a href=\"{}\">{}</a></td>",
                link("/messages", &[("partner", row.partner)]),
                row.partner,
                link("/messages", &[("partner", row.partner), ("kind", row.kind)]),
                row.kind
            );
            counts(&mut body, &row.windows, row.partner, row.kind);
            body.push_str("</tr>");
        }
        if o.rows.is_empty() {
            body.push_str("<tr><td colspan=\"14\" class=\"muted\">No messages in the last week.</td></tr>");
        }
        body.push_str("<tr><th colspan=\"2\">All</th>");
        counts(&mut body, &o.totals, "", "");
        body.push_str("</tr></tbody></table>");
        body.push_str(&channels_table(&o.channels));
        body.push_str(&broker_table(o.broker.as_ref()));
        body.push_str("<h2>Certificates expiring soon</h2>");
        if o.certificates_expiring.is_empty() {
            let _ = write!(
                body,
                "<p class=\"ok\">None expires within {days} days.</p>"
            );
        } else {
            body.push_str(&certificates_table(&o.certificates_expiring));
        }
        Ok(("Overview".to_owned(), body))
    }
    .await;
    render(&session, result)
}

/// The hub's broker session: one row.
fn broker_table(broker: Option<&api::BrokerSessionView>) -> String {
    let mut body = String::from("<h2>Broker session</h2>");
    let Some(b) = broker else {
        body.push_str("<p class=\"muted\">This console runs without a hub.</p>");
        return body;
    };
    let (class, status) = if b.connected {
        ("ok", "connected")
    } else {
        ("bad", "not connected")
    };
    let _ = write!(
        body,
        "<table id=\"broker\"><thead><tr><th>Status</th><th>Since</th><th class=\"num\">Reconnects</th></tr></thead>\
         <tbody><tr><td class=\"{class}\">{status}</td><td>{}</td><td class=\"num\">{}</td></tr></tbody></table>",
        b.since
            .as_deref()
            .map_or_else(|| "never connected".to_owned(), when),
        b.reconnects
    );
    body
}

fn channels_table(channels: &[api::ChannelView]) -> String {
    let mut body = String::from("<h2>Partner channels</h2>");
    if channels.is_empty() {
        body.push_str("<p class=\"muted\">No partner channel reports its health.</p>");
        return body;
    }
    body.push_str("<table id=\"channels\"><thead><tr><th>Partner</th><th>Channel</th><th>Status</th><th>Since</th><th>Last seen</th></tr></thead><tbody>");
    for c in channels {
        let class = match c.status {
            "up" => "ok",
            "down" => "bad",
            _ => "muted",
        };
        let _ = write!(
            body,
            "<tr><td>{}</td><td>{}</td><td class=\"{class}\">{}</td><td>{}</td><td>{}</td></tr>",
            c.partner,
            escape(c.channel),
            c.status,
            when(&c.since),
            escape(&c.detail)
        );
    }
    body.push_str("</tbody></table>");
    body
}

fn certificates_table(certificates: &[api::CertificateView]) -> String {
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

async fn messages(
    Shared(console): Shared<Arc<Console>>,
    axum::Extension(session): axum::Extension<Session>,
    RawQuery(query): RawQuery,
) -> Response {
    let query = normalised_query(query.as_deref());
    let result = async {
        let params = Params::parse(Some(&query), api::MESSAGE_PARAMS)?;
        let page = params.page()?;
        let q = MessageQuery::of(&params, page)?;
        let partners = partner_options(&console);
        let mut found = blocking(console, move |c| q.run(c)).await?;
        let more = found.len() > page.size as usize;
        found.truncate(page.size as usize);
        let p = |n: &str| params.text(n);
        let states: Vec<(&str, &str)> = State::ALL
            .iter()
            .map(|s| (s.as_str(), s.as_str()))
            .collect();
        let mut body = String::from(
            "<h1>Messages</h1><form class=\"filters\" method=\"get\" action=\"/messages\">",
        );
        body.push_str(&text_input("id", "Message id", p("id"), "UUID"));
        body.push_str(&select("partner", "Partner", p("partner"), &partners));
        body.push_str(&select("kind", "Kind", p("kind"), &kind_options()));
        body.push_str(&select(
            "direction",
            "Direction",
            p("direction"),
            &direction_options(),
        ));
        body.push_str(&select("state", "State", p("state"), &states));
        body.push_str(&text_input(
            "since",
            "Updated since (UTC)",
            p("since"),
            "2026-12-02 08:00",
        ));
        body.push_str(&text_input(
            "until",
            "Updated before (UTC)",
            p("until"),
            "2026-12-02 18:00",
        ));
        body.push_str(&text_input(
            "reason_code",
            "Reason code",
            p("reason_code"),
            "XSD, FORMD-004, ...",
        ));
        body.push_str(&text_input("q", "Reason contains", p("q"), "text"));
        let order = p("order").unwrap_or("newest");
        body.push_str(
            &select(
                "order",
                "Order",
                Some(order),
                &[("newest", "newest first"), ("oldest", "oldest first")],
            )
            .replace("<option value=\"\">any</option>", ""),
        );
        let per_page = page.size.to_string();
        let sizes: Vec<(&str, &str)> = ["25", "50", "100", "200", "500"]
            .iter()
            .map(|s| (*s, *s))
            .collect();
        body.push_str(
            &select("per_page", "Per page", Some(&per_page), &sizes)
                .replace("<option value=\"\">any</option>", ""),
        );
        body.push_str(
            "<button type=\"submit\">Search</button> <a href=\"/messages\">Clear</a></form>",
        );
        let pairs = pairs_of(&query);
        // The Updated column sorts: its head flips the order, keeping the rest of the query.
        let flipped = if order == "oldest" {
            "newest"
        } else {
            "oldest"
        };
        let mut sort_pairs: Vec<(&str, &str)> = pairs
            .iter()
            .filter(|(k, _)| k != "order" && k != "page")
            .map(|(k, v)| (k.as_str(), v.as_str()))
            .collect();
        sort_pairs.push(("order", flipped));
        let arrow = if order == "oldest" {
            "&uarr;"
        } else {
            "&darr;"
        };
        let updated = format!(
            "<a href=\"{}\" title=\"sort {flipped} first\">Updated {arrow}</a>",
            link("/messages", &sort_pairs)
        );
        if found.is_empty() {
            body.push_str("<p class=\"info\" id=\"none\">No message matches.</p>");
        } else {
            let _ = write!(
                body,
                "<table id=\"messages\">{}<tbody>{}</tbody></table>",
                message_head(false, &updated),
                message_rows(&found, false, None)
            );
        }
        body.push_str(&pager("/messages", &pairs, page.number, more));
        Ok(("Messages".to_owned(), body))
    }
    .await;
    render(&session, result)
}

/// The document lines the reasons name (`line 12: ...`), in order, once each.
pub fn reason_lines(texts: &[&str]) -> Vec<usize> {
    let mut lines = Vec::new();
    for text in texts {
        let lower = text.to_ascii_lowercase();
        let mut rest = lower.as_str();
        while let Some(at) = rest.find("line ") {
            rest = &rest[at + 5..];
            let digits: String = rest.chars().take_while(char::is_ascii_digit).collect();
            if let Ok(n) = digits.parse::<usize>()
                && n > 0
                && !lines.contains(&n)
            {
                lines.push(n);
            }
        }
    }
    lines.sort_unstable();
    lines
}

/// The signer of a message page: the member state, the certificate's subject and fingerprint.
fn signer_html(signature: Option<&crate::views::SignatureView>) -> String {
    let Some(sig) = signature else {
        return "<span class=\"muted\">not signed</span>".into();
    };
    format!(
        "{} &mdash; {}{}<br>certificate SHA-256 <code id=\"fingerprint\">{}</code>, valid until {}",
        sig.signer.unwrap_or("unknown member state"),
        escape(&sig.subject),
        if sig.trusted {
            " (in the trust store)"
        } else {
            ""
        },
        escape(&sig.fingerprint),
        when(&sig.not_after)
    )
}

async fn message(
    Shared(console): Shared<Arc<Console>>,
    axum::Extension(session): axum::Extension<Session>,
    Path((direction, id)): Path<(String, String)>,
    RawQuery(query): RawQuery,
) -> Response {
    let result = async {
        Params::parse(query.as_deref(), &[])?;
        let (direction, id) = api::message_key(&direction, &id)?;
        let (d, bytes) = blocking(console, move |c| api::detail(c, direction, id)).await?;
        let s = &d.summary;
        let mut texts: Vec<&str> = s.reason.as_deref().into_iter().collect();
        texts.extend(d.history.iter().filter_map(|h| h.reason.as_deref()));
        let marked = reason_lines(&texts);
        let mut body = format!(
            "<h1>{} {} <span class=\"id\">{}</span></h1>",
            s.direction, s.kind, s.message_id
        );
        let state_class = match s.state {
            "failed" | "rejected" => "bad",
            "delivered" | "acknowledged" => "ok",
            _ => "",
        };
        let answers = s
            .correlation_id
            .as_ref()
            .map(|c| {
                format!(
                    "<a class=\"id\" href=\"{}\">{}</a>",
                    link("/messages", &[("id", c)]),
                    escape(c)
                )
            })
            .unwrap_or_else(|| "<span class=\"muted\">none (an original)</span>".into());
        let _ = write!(
            body,
            "<dl class=\"head\"><dt>State</dt><dd class=\"{state_class}\" id=\"state\">{}{}</dd>\
             <dt>From &rarr; to</dt><dd>{} &rarr; {} (partner {})</dd>\
             <dt>Kind</dt><dd>{}</dd><dt>Answers</dt><dd>{answers}</dd>\
             <dt>Created by the sender</dt><dd>{}</dd><dt>First seen</dt><dd>{}</dd><dt>Last update</dt><dd>{}</dd>\
             <dt>Failed attempts</dt><dd>{}</dd><dt>Document</dt><dd>{} bytes, SHA-256 <code>{}</code></dd>\
             <dt>Signed by</dt><dd id=\"signer\">{}</dd></dl>",
            s.state,
            s.parked_from
                .map(|p| format!(" (parked from {p})"))
                .unwrap_or_default(),
            s.sender,
            s.receiver,
            d.partner,
            s.kind,
            when(&s.created_at),
            when(&s.first_seen),
            when(&s.updated_at),
            s.attempts,
            d.document.bytes,
            escape(&d.document.sha256),
            signer_html(d.signature.as_ref()),
        );
        let _ = write!(
            body,
            "<div class=\"actions\"><a href=\"{}\" download>Download the exact bytes</a>\
             <a href=\"{}\">Its conversation</a></div>",
            escape(&d.document_url),
            escape(&format!("/conversations/{}", s.message_id))
        );
        if let (Some(code), Some(text)) = (&s.reason_code, &s.reason) {
            let lines = reason_lines(&[text]);
            let line_links: Vec<String> = lines
                .iter()
                .map(|n| format!("<a href=\"#L{n}\">line {n}</a>"))
                .collect();
            let _ = write!(
                body,
                "<h2>Reason</h2><table id=\"reason\"><thead><tr><th>Rule or code</th><th>What</th><th>Lines</th></tr></thead>\
                 <tbody><tr><td><code>{}</code></td><td>{}</td><td>{}</td></tr></tbody></table>",
                escape(code),
                escape(text),
                line_links.join(", ")
            );
        }
        if matches!(s.state, "failed" | "rejected") {
            let _ = write!(
                body,
                "<form method=\"post\" action=\"/parked\" class=\"actions\">\
                 <input type=\"hidden\" name=\"csrf\" value=\"{}\">\
                 <input type=\"hidden\" name=\"message\" value=\"{}/{}\">\
                 <button type=\"submit\" name=\"action\" value=\"dry-run\">Replay: dry run</button></form>",
                escape(&session.csrf),
                s.direction,
                s.message_id
            );
        }
        body.push_str("<h2>State history</h2><table id=\"history\"><thead><tr><th>#</th><th>When</th><th>Event</th><th>From</th><th>To</th><th>Reason code</th><th>Reason</th><th>By</th></tr></thead><tbody>");
        for h in &d.history {
            let _ = write!(
                body,
                "<tr><td class=\"num\">{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td><code>{}</code></td><td>{}</td><td>{}</td></tr>",
                h.seq,
                when(&h.at),
                h.event,
                h.from.unwrap_or(""),
                h.to,
                escape(h.reason_code.as_deref().unwrap_or("")),
                escape(h.reason.as_deref().unwrap_or("")),
                escape(&h.actor)
            );
        }
        body.push_str("</tbody></table>");
        body.push_str("<h2>Document</h2>");
        match std::str::from_utf8(&bytes) {
            Err(_) => body.push_str(
                "<p class=\"info\">The document is not UTF-8 text: download the exact bytes to read it.</p>",
            ),
            Ok(text) => {
                if !marked.is_empty() {
                    let _ = write!(
                        body,
                        "<p class=\"notice\">Lines the reasons name are marked: {}.</p>",
                        marked
                            .iter()
                            .map(|n| format!("<a href=\"#L{n}\">{n}</a>"))
                            .collect::<Vec<_>>()
                            .join(", ")
                    );
                }
                body.push_str("<table class=\"doc\" id=\"document\"><tbody>");
                let mut shown = 0;
                for (i, line) in text.lines().enumerate() {
                    let n = i + 1;
                    if n > MAX_DOCUMENT_LINES {
                        break;
                    }
                    shown = n;
                    let class = if marked.contains(&n) {
                        " class=\"marked\""
                    } else {
                        ""
                    };
                    let _ = write!(
                        body,
                        "<tr id=\"L{n}\"{class}><td class=\"n\">{n}</td><td>{}</td></tr>",
                        escape(line)
                    );
                }
                body.push_str("</tbody></table>");
                let total = text.lines().count();
                if total > shown {
                    let _ = write!(
                        body,
                        "<p class=\"info\">{} more lines: download the document to read them.</p>",
                        total - shown
                    );
                }
            }
        }
        Ok((format!("{} {}", s.kind, s.message_id), body))
    }
    .await;
    render(&session, result)
}

async fn conversation(
    Shared(console): Shared<Arc<Console>>,
    axum::Extension(session): axum::Extension<Session>,
    Path(id): Path<String>,
    RawQuery(query): RawQuery,
) -> Response {
    let result = async {
        Params::parse(query.as_deref(), &[])?;
        let id: uuid::Uuid = id
            .parse()
            .map_err(|_| ApiError::bad_request(format!("{id:?} is not a message id (UUID)")))?;
        let found = blocking(console, move |c| {
            crate::query::conversation(&*c.journal, id)
                .map_err(|e| ApiError::unavailable(format!("the journal cannot answer now: {e}")))?
                .ok_or_else(|| ApiError::not_found(format!("message {id} is not in the journal")))
        })
        .await?;
        let body = format!(
            "<h1>Conversation of <span class=\"id\">{id}</span></h1>\
             <p class=\"muted\">The original document and everything that answered it, inbound and outbound, \
             in the order the hub saw them. The message asked for is highlighted.</p>\
             <table id=\"conversation\">{}<tbody>{}</tbody></table>",
            message_head(false, "First seen"),
            conversation_rows(&found, id)
        );
        Ok(("Conversation".to_owned(), body))
    }
    .await;
    render(&session, result)
}

/// A conversation's rows: by first seen (the order of the conversation), not last update.
fn conversation_rows(found: &[MessageSummary], current: uuid::Uuid) -> String {
    let as_seen: Vec<MessageSummary> = found
        .iter()
        .cloned()
        .map(|mut m| {
            m.updated_at = m.first_seen;
            m
        })
        .collect();
    message_rows(&as_seen, false, Some(current))
}

async fn parked(
    Shared(console): Shared<Arc<Console>>,
    axum::Extension(session): axum::Extension<Session>,
    RawQuery(query): RawQuery,
) -> Response {
    let query = normalised_query(query.as_deref());
    let csrf = session.csrf.clone();
    let result = async {
        let params = Params::parse(Some(&query), api::PARKED_PARAMS)?;
        let page = params.page()?;
        let partners = partner_options(&console);
        let (params, found) = blocking(console, move |c| {
            let found = api::parked_page(c, &params, page)?;
            Ok((params, found))
        })
        .await?;
        let p = |n: &str| params.text(n);
        let mut body = String::from(
            "<h1>Parked messages</h1><p class=\"muted\">Failed (the hub gave up) or rejected (invalid, forged, \
             or refused by the partner), newest first. Select some, then ask what a replay would do.</p>\
             <form class=\"filters\" method=\"get\" action=\"/parked\">",
        );
        body.push_str(&select("partner", "Partner", p("partner"), &partners));
        body.push_str(&select("kind", "Kind", p("kind"), &kind_options()));
        body.push_str(&select("direction", "Direction", p("direction"), &direction_options()));
        body.push_str(&select("state", "State", p("state"), &[("failed", "failed"), ("rejected", "rejected")]));
        body.push_str(&text_input("reason_code", "Reason code", p("reason_code"), "XSD, FORMD-004, ..."));
        body.push_str(&text_input("q", "Reason contains", p("q"), "text"));
        body.push_str("<button type=\"submit\">Filter</button> <a href=\"/parked\">Clear</a></form>");
        if found.items.is_empty() {
            body.push_str("<p class=\"info\" id=\"none\">Nothing is parked.</p>");
        } else {
            let _ = write!(
                body,
                "<form method=\"post\" action=\"/parked\" id=\"act\"><input type=\"hidden\" name=\"csrf\" value=\"{}\">\
                 <table id=\"parked\">{}<tbody>{}</tbody></table>\
                 <div class=\"actions\"><button type=\"submit\" name=\"action\" value=\"dry-run\">Replay: dry run</button>\
                 <button type=\"submit\" name=\"action\" value=\"replay\">Replay</button>\
                 <label>Reason for a discard <input name=\"reason\" size=\"40\"></label>\
                 <button type=\"submit\" name=\"action\" value=\"discard\">Discard</button></div></form>",
                escape(&csrf),
                message_head(true, "Updated"),
                message_rows(&found.items, true, None)
            );
        }
        body.push_str(&pager("/parked", &pairs_of(&query), found.page, found.more));
        Ok(("Parked".to_owned(), body))
    }
    .await;
    render(&session, result)
}

/// The parked page's form: a replay dry run (anyone with the page's token), a replay or a
/// discard (an operator; a viewer is refused and audited, as in the API).
async fn parked_action(
    Shared(console): Shared<Arc<Console>>,
    axum::Extension(session): axum::Extension<Session>,
    body: Bytes,
) -> Response {
    let mut csrf = None;
    let mut action = None;
    let mut reason = None;
    let mut messages = Vec::new();
    for (k, v) in url::form_urlencoded::parse(&body) {
        match k.as_ref() {
            "csrf" => csrf = Some(v.into_owned()),
            "action" => action = Some(v.into_owned()),
            "reason" => reason = Some(v.trim().to_owned()),
            "message" => messages.push(v.into_owned()),
            _ => {}
        }
    }
    let who = session.clone();
    let result = blocking(console, move |c| {
        let (name, dry_run) = match action.as_deref() {
            Some("dry-run") => ("replay", true),
            Some("replay") => ("replay", false),
            Some("discard") => ("discard", false),
            _ => {
                // The token first: a form from elsewhere learns nothing.
                crate::auth::authorize_csrf(&who, csrf.as_deref())?;
                return Err(ApiError::bad_request(
                    "action: choose a dry run, a replay or a discard",
                ));
            }
        };
        if messages.is_empty() {
            crate::auth::authorize_csrf(&who, csrf.as_deref())?;
            return Err(ApiError::bad_request(
                "Select at least one message, then choose the action.",
            ));
        }
        let keys = api::authorize_action(c, &who, csrf.as_deref(), &messages, dry_run, name)?;
        match (name, dry_run) {
            ("replay", true) => Ok(Done::Plan(api::replay_plan(c, &keys)?)),
            ("replay", false) => Ok(Done::Acted(
                "Replay",
                actions::act(c, &who, &keys, &actions::Action::Replay)?,
            )),
            _ => {
                let reason = api::discard_reason(reason.as_deref())?;
                Ok(Done::Acted(
                    "Discard",
                    actions::act(c, &who, &keys, &actions::Action::Discard(reason))?,
                ))
            }
        }
    })
    .await;
    let result = result.map(|done| match done {
        Done::Plan(plan) => plan_page(&plan),
        Done::Acted(title, settled) => acted_page(title, &settled),
    });
    render(&session, result)
}

/// What the parked page's form did.
enum Done {
    /// A replay's dry run: the plan.
    Plan(Vec<serde_json::Value>),
    /// A replay or discard: what became of each message.
    Acted(&'static str, Vec<(String, crate::settle::Settled)>),
}

fn plan_page(plan: &[serde_json::Value]) -> (String, String) {
    let mut body = String::from(
        "<h1>Replay: dry run</h1><p class=\"info\">Nothing was changed. This is what a replay would do:</p>\
         <table id=\"plan\"><thead><tr><th>Message</th><th>Would replay</th><th>What would happen</th></tr></thead><tbody>",
    );
    for step in plan {
        let key = step["message"].as_str().unwrap_or("");
        let would = step["would_replay"].as_bool().unwrap_or(false);
        let _ = write!(
            body,
            "<tr><td><a class=\"id\" href=\"{}\">{}</a></td><td class=\"{}\">{}</td><td>{}</td></tr>",
            escape(&format!("/messages/{key}")),
            escape(key),
            if would { "ok" } else { "muted" },
            if would { "yes" } else { "no" },
            escape(step["detail"].as_str().unwrap_or(""))
        );
    }
    body.push_str("</tbody></table><p><a href=\"/parked\">Back to the parked messages</a></p>");
    ("Replay dry run".to_owned(), body)
}

fn acted_page(title: &str, settled: &[(String, crate::settle::Settled)]) -> (String, String) {
    let mut body = format!(
        "<h1>{title}</h1><table id=\"done\"><thead><tr><th>Message</th><th>Outcome</th>\
         <th>Journal</th><th>What happened</th></tr></thead><tbody>"
    );
    for (key, s) in settled {
        let class = match s.outcome {
            "replayed" | "discarded" => "ok",
            "error" => "bad",
            _ => "muted",
        };
        let _ = write!(
            body,
            "<tr><td><a class=\"id\" href=\"{}\">{}</a></td><td class=\"{class}\">{}</td><td>{}</td><td>{}</td></tr>",
            escape(&format!("/messages/{key}")),
            escape(key),
            escape(s.outcome),
            escape(&s.journal),
            escape(&s.detail)
        );
    }
    body.push_str("</tbody></table><p><a href=\"/parked\">Back to the parked messages</a></p>");
    (title.to_owned(), body)
}

async fn partners(
    Shared(console): Shared<Arc<Console>>,
    axum::Extension(session): axum::Extension<Session>,
    RawQuery(query): RawQuery,
) -> Response {
    let result = async {
        Params::parse(query.as_deref(), &[])?;
        let days = console.expiry_warning_days;
        let (partners, certificates) = blocking(console, |c| {
            Ok((
                api::partners_now(c),
                api::certificates_now(c, OffsetDateTime::now_utc()),
            ))
        })
        .await?;
        let mut body = String::from(
            "<h1>Partners</h1><table id=\"partners\"><thead><tr><th>Partner</th><th>Channels</th>\
             <th class=\"num\">Certificates</th><th class=\"num\">Fewest days left</th><th></th></tr></thead><tbody>",
        );
        for p in &partners {
            let channels: Vec<String> = p
                .channels
                .iter()
                .map(|c| {
                    let class = match c.status {
                        "up" => "ok",
                        "down" => "bad",
                        _ => "muted",
                    };
                    format!(
                        "{} <span class=\"{class}\">{}</span> <span class=\"muted\">since {}: {}</span>",
                        escape(c.channel),
                        c.status,
                        when(&c.since),
                        escape(&c.detail)
                    )
                })
                .collect();
            let left = p
                .certificate_days_left
                .map(|d| {
                    let class = if d <= i64::from(days) { "num bad" } else { "num" };
                    format!("<td class=\"{class}\">{d}</td>")
                })
                .unwrap_or_else(|| "<td class=\"num bad\">no certificate</td>".into());
            let _ = write!(
                body,
                "<tr><td>{}</td><td>{}</td><td class=\"num\">{}</td>{left}<td><a href=\"{}\">messages</a> \
                 <a href=\"{}\">parked</a></td></tr>",
                p.partner,
                if channels.is_empty() {
                    "<span class=\"muted\">no channel reports</span>".to_owned()
                } else {
                    channels.join("<br>")
                },
                p.certificates,
                link("/messages", &[("partner", p.partner)]),
                link("/parked", &[("partner", p.partner)]),
            );
        }
        body.push_str("</tbody></table>");
        let _ = write!(
            body,
            "<h2>Trust store certificates</h2><p class=\"muted\">Flagged: expiring within {days} days (or expired).</p>"
        );
        if certificates.is_empty() {
            body.push_str("<p class=\"notice\">The trust store holds no certificate.</p>");
        } else {
            body.push_str(&certificates_table(&certificates));
        }
        Ok(("Partners and certificates".to_owned(), body))
    }
    .await;
    render(&session, result)
}

async fn audit(
    Shared(console): Shared<Arc<Console>>,
    axum::Extension(session): axum::Extension<Session>,
    RawQuery(query): RawQuery,
) -> Response {
    let result = async {
        let params = Params::parse(query.as_deref(), &["page", "per_page"])?;
        let page = params.page()?;
        let mut entries = blocking(console, move |c| {
            c.audit
                .read(page.offset() as usize, page.size as usize + 1)
                .map_err(|e| ApiError::unavailable(e.to_string()))
        })
        .await?;
        let more = entries.len() > page.size as usize;
        entries.truncate(page.size as usize);
        let mut body = String::from(
            "<h1>Audit log</h1><p class=\"muted\">Every action asked for from the console, done or refused, newest first.</p>",
        );
        if entries.is_empty() {
            body.push_str("<p class=\"info\" id=\"none\">No action has been asked for yet.</p>");
        } else {
            body.push_str("<table id=\"audit\"><thead><tr><th>When</th><th>User</th><th>Role</th><th>Action</th><th>Messages</th><th>Outcome</th><th>Detail</th></tr></thead><tbody>");
            for e in &entries {
                let targets: Vec<String> = e
                    .target
                    .split(' ')
                    .filter(|t| !t.is_empty())
                    .map(|t| {
                        format!(
                            "<a class=\"id\" href=\"{}\">{}</a>",
                            escape(&format!("/messages/{t}")),
                            escape(t)
                        )
                    })
                    .collect();
                let class = if e.outcome == "refused" || e.outcome == "failed" {
                    "bad"
                } else {
                    ""
                };
                let _ = write!(
                    body,
                    "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td class=\"{class}\">{}</td><td>{}</td></tr>",
                    when(&e.at),
                    escape(&e.user),
                    escape(&e.role),
                    escape(&e.action),
                    targets.join("<br>"),
                    escape(&e.outcome),
                    escape(&e.detail)
                );
            }
            body.push_str("</tbody></table>");
        }
        let query = query.unwrap_or_default();
        body.push_str(&pager("/audit", &pairs_of(&query), page.number, more));
        Ok(("Audit log".to_owned(), body))
    }
    .await;
    render(&session, result)
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
