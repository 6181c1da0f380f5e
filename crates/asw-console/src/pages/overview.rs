//! The overview page: counts by state and window, the broker session, the partner channels
//! and the certificates that expire soon.

use std::fmt::Write as _;
use std::sync::Arc;

use axum::extract::{RawQuery, State as Shared};
use axum::response::Response;
use time::OffsetDateTime;

use super::{certificates_table, link, render, when};
use crate::Console;
use crate::api::{self, Params, blocking};
use crate::auth::{Session, escape};

pub(super) async fn overview(
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
