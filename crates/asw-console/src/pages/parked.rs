//! The parked messages page and its actions (replay, discard), with the plan shown before a
//! replay and what was done after it.

use std::fmt::Write as _;
use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::{RawQuery, State as Shared};
use axum::response::Response;

use super::{
    direction_options, kind_options, message_head, message_rows, normalised_query, pager, pairs_of,
    partner_options, render, select, text_input,
};
use crate::api::{self, ApiError, Params, blocking};
use crate::auth::{Session, escape};
use crate::{Console, actions};

pub(super) async fn parked(
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
pub(super) async fn parked_action(
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
