//! The console's replay and discard: [`crate::settle`], the code `aswctl replay` and
//! `aswctl parked discard` run, on the hub's parking lot with the hub's broker settings,
//! journaled with the console user's name and written to the console's audit log.

use asw_amqp::ConfirmingPublisher;
use asw_gateway::config::BrokerConfig;
use asw_journal::{Direction, Reason};
use asw_model::xml::Limits;
use time::OffsetDateTime;
use uuid::Uuid;

use crate::api::ApiError;
use crate::auth::Session;
use crate::parking::{ParkingLot, Target};
use crate::settle::{Replayer, Settled, discard_one, unmatched};
use crate::views::rfc3339;
use crate::{AuditEntry, Console};

/// The connection name and consumer tag the console reads the parking lot with.
const CLIENT: &str = "asw-console";
/// The most parked messages one action reads (as `aswctl`'s default `--limit`): a message
/// further back in the lot is reported `not-parked`.
pub const READ_LIMIT: u32 = 1000;

/// How the console reaches the hub's broker for its actions.
#[derive(Debug, Clone)]
pub struct BrokerAccess {
    /// The hub's `[broker]` settings (its URLs, its TLS, its own user).
    pub broker: BrokerConfig,
    /// The document limits parked bytes are read with.
    pub limits: Limits,
}

/// What the console does to parked messages.
#[derive(Debug, Clone)]
pub enum Action {
    /// Put them back into the stage that failed.
    Replay,
    /// Discard them, with this reason (journaled as `DISCARDED`).
    Discard(String),
}

impl Action {
    /// `replay` or `discard`.
    pub fn name(&self) -> &'static str {
        match self {
            Action::Replay => "replay",
            Action::Discard(_) => "discard",
        }
    }
}

/// Carries out `action` on the parked messages `keys` as `session`'s user, on a runtime of its
/// own (call it off the reactor: it blocks). One result per message, in order; each is written
/// to the audit log.
pub fn act(
    console: &Console,
    session: &Session,
    keys: &[(Direction, Uuid)],
    action: &Action,
) -> Result<Vec<(String, Settled)>, ApiError> {
    let access = console.broker.as_ref().ok_or_else(|| {
        ApiError::unavailable("this console has no broker settings: it cannot act on the lot")
    })?;
    let own_user = asw_amqp::AmqpUrl::parse(&access.broker.url)
        .map_err(|e| ApiError::unavailable(format!("the broker URL: {e}")))?
        .user()
        .to_owned();
    let tls = access
        .broker
        .tls
        .load("broker")
        .map_err(|e| ApiError::unavailable(format!("the broker's TLS: {e}")))?;
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| ApiError::unavailable(format!("starting the action: {e}")))?;
    let journal = &*console.journal;
    let actor = session.user.as_str();
    let settled = runtime.block_on(async {
        let mut lot = ParkingLot::read(
            CLIENT,
            &access.broker.urls,
            &tls,
            READ_LIMIT,
            &access.limits,
        )
        .await?;
        let mut publisher =
            ConfirmingPublisher::new(lot.connection().open_channel().await?).await?;
        let mut settled = Vec::new();
        for &(direction, id) in keys {
            let key = format!("{direction}/{id}");
            let target = Target::Id(id);
            let found: Vec<usize> = lot
                .messages()
                .filter(|(_, p)| p.is(&target) && p.direction() == Some(direction))
                .map(|(i, _)| i)
                .collect();
            if found.is_empty() {
                settled.push((key.clone(), unmatched(journal, &target, action.name())));
            }
            for index in found {
                let done = match action {
                    Action::Replay => {
                        let replayer = Replayer {
                            journal,
                            actor,
                            own_user: &own_user,
                            dry_run: false,
                        };
                        replayer.one(&mut lot, &mut publisher, index).await
                    }
                    Action::Discard(reason) => {
                        let reason = Reason::new("DISCARDED", reason.clone());
                        discard_one(&mut lot, index, journal, actor, &reason).await
                    }
                };
                settled.push((key.clone(), done));
            }
        }
        // Giving back what was read and not settled loses nothing if it fails: the broker
        // returns it when the connection closes.
        let _ = lot.release().await;
        anyhow::Ok(settled)
    });
    let settled = settled.map_err(|e| ApiError::unavailable(format!("{e:#}")))?;
    for (key, s) in &settled {
        let detail = match action {
            Action::Discard(reason) => {
                format!("{}; journal: {}; reason: {reason}", s.detail, s.journal)
            }
            Action::Replay => format!("{}; journal: {}", s.detail, s.journal),
        };
        console
            .audit
            .append(&AuditEntry {
                at: rfc3339(OffsetDateTime::now_utc()),
                user: session.user.clone(),
                role: session.role.as_str().into(),
                action: action.name().into(),
                target: key.clone(),
                outcome: s.outcome.into(),
                detail,
            })
            .map_err(|e| ApiError::unavailable(e.to_string()))?;
    }
    Ok(settled)
}

/// The results as JSON items: the message, what became of it, the journal, a sentence.
pub fn json(settled: &[(String, Settled)]) -> Vec<serde_json::Value> {
    settled
        .iter()
        .map(|(key, s)| {
            serde_json::json!({
                "message": key,
                "reference": s.target,
                "outcome": s.outcome,
                "journal": s.journal,
                "detail": s.detail,
            })
        })
        .collect()
}
