//! The partners page: each partner's channel, its certificates and their trust.

use std::fmt::Write as _;
use std::sync::Arc;

use axum::extract::{RawQuery, State as Shared};
use axum::response::Response;
use time::OffsetDateTime;

use super::{certificates_table, link, render, when};
use crate::Console;
use crate::api::{self, Params, blocking};
use crate::auth::{Session, escape};

pub(super) async fn partners(
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
