//! The message pages: the search form and its results, one message with its document and the
//! lines its reasons name, a conversation.

use std::fmt::Write as _;
use std::sync::Arc;

use asw_journal::{MessageSummary, State};
use axum::extract::{Path, RawQuery, State as Shared};
use axum::response::Response;

use super::{
    MAX_DOCUMENT_LINES, direction_options, kind_options, link, message_head, message_rows,
    normalised_query, pager, pairs_of, partner_options, render, select, text_input, when,
};
use crate::Console;
use crate::api::{self, ApiError, MessageQuery, Params, blocking};
use crate::auth::{Session, escape};

pub(super) async fn messages(
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

pub(super) async fn message(
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

pub(super) async fn conversation(
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
