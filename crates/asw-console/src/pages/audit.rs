//! The audit log page: who did what, newest first.

use std::fmt::Write as _;
use std::sync::Arc;

use axum::extract::{RawQuery, State as Shared};
use axum::response::Response;

use super::{pager, pairs_of, render, when};
use crate::Console;
use crate::api::{ApiError, Params, blocking};
use crate::auth::{Session, escape};

pub(super) async fn audit(
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
