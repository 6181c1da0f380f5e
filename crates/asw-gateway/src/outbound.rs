//! The outbound flow: a back-office document from `asw.hub.outbound` is validated, checked and
//! signed on a worker and journaled `received` and `signed` in one write, then published to its
//! partner's queue and journaled `queued`. A copy of one already sent is dropped; one that can
//! never be sent is parked and its back-office told (`rejected`, or `failed` when the fault is
//! the hub's own).
//!
//! With `[[back_office]]` configured, a document is taken only from the broker user of the
//! back-office that sends its kind ([`Sender`]): anything else is parked `TRANSPORT-004`, never
//! journaled (it cannot block the genuine document's message id) and nobody is told.
//!
//! [`plan`] decides on a step thread; [`crate::execute`] carries the plan out.

use asw_journal::{Direction, Journal, Recorded, State, Transition};
use asw_model::Header;
use asw_route::names;
use bytes::Bytes;
use time::OffsetDateTime;

use crate::claims::{Abandoned, claimed_by_another};
use crate::config::BackOfficeConfig;
use crate::events::Event;
use crate::execute::{execute, planned};
use crate::hub::{Inner, now, on_journal};
use crate::incoming::Incoming;
use crate::outcome::{Outcome, OutcomeReason};
use crate::plan::{JOURNAL, Plan, Publish, Settle, in_batch, journal_refusal, reason_of, stopping};
use crate::process::{PANIC, Refusal, Signed, summary};
use crate::publish::{Failure, LanePublisher};
use crate::work::Work;

/// Handles one delivery of `asw.hub.outbound`; `Ok` means it may be acknowledged.
pub(crate) async fn outbound(
    inner: &Inner,
    publisher: &mut LanePublisher,
    incoming: &Incoming,
) -> Result<(), Failure> {
    let started = now();
    let body = incoming.body.clone();
    let routing_key = incoming.routing_key.clone();
    let abandoned = inner.abandoned.clone();
    let user = incoming.transport_user.clone();
    let back_offices = inner.back_offices.clone();
    let ran = on_journal(inner, move |w, j| {
        let sender = Sender {
            back_offices: &back_offices,
            user: user.as_deref(),
        };
        plan(w, j, &abandoned, sender, &body, &routing_key, started)
    })
    .await;
    let stage = names::stage::OUTBOUND;
    let plan = planned(ran).map_err(Failure::Fault)?;
    execute(inner, publisher, incoming, stage, started, plan).await
}

/// Reason code of a back-office document published by a broker user that may not send its
/// kind, or by no identified user at all, while `[[back_office]]` is configured.
pub const TRANSPORT_SENDER: &str = "TRANSPORT-004";

/// Who published a back-office document, and the back-offices that may publish.
#[derive(Debug, Clone, Copy)]
pub struct Sender<'a> {
    /// The configured back-offices; none: anyone may send anything (no identities).
    pub back_offices: &'a [BackOfficeConfig],
    /// The validated `user_id` it was published with (the original publisher's, on a message
    /// the hub moved itself), if any.
    pub user: Option<&'a str>,
}

impl Sender<'_> {
    /// Anyone may send anything: no back-office identities configured.
    #[cfg(test)]
    pub(crate) const ANYONE: Sender<'static> = Sender {
        back_offices: &[],
        user: None,
    };

    /// Whether this sender may publish with `routing_key` (the kind it claims; the worker
    /// checks the document is of that kind, `ROUTE-001`).
    fn check(&self, routing_key: &str) -> Result<(), Refusal> {
        if self.back_offices.is_empty() {
            return Ok(());
        }
        let Some(user) = self.user else {
            return Err(Refusal {
                code: TRANSPORT_SENDER.into(),
                text: format!(
                    "published with routing key {routing_key:?} and no user_id: with back-office \
                     identities configured, each back-office sets user_id to its broker user"
                ),
            });
        };
        let allowed = self.back_offices.iter().any(|b| {
            b.name == user
                && b.sends
                    .iter()
                    .any(|k| names::outbound_key(*k) == routing_key)
        });
        if allowed {
            return Ok(());
        }
        let text = match self.back_offices.iter().find(|b| b.name == user) {
            Some(office) => format!(
                "back-office {user} may send {}, not {routing_key:?}",
                office
                    .sends
                    .iter()
                    .map(|k| k.as_str())
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
            None => format!(
                "published by user {user:?}, which is no configured back-office, with routing \
                 key {routing_key:?}"
            ),
        };
        Err(Refusal {
            code: TRANSPORT_SENDER.into(),
            text,
        })
    }
}

/// The plan for a back-office document: check who sent it, validate, check, sign, journal.
/// The journal writes share one commit ([`Journal::batch`]); the plan is returned once they
/// are durable.
pub fn plan(
    worker: &mut impl Work,
    journal: &dyn Journal,
    abandoned: &Abandoned,
    sender: Sender<'_>,
    bytes: &Bytes,
    routing_key: &str,
    now: OffsetDateTime,
) -> Plan {
    if let Err(refusal) = sender.check(routing_key) {
        // Not journaled, nobody told: the back-office that sends this kind did not send it.
        return Plan {
            event: Some(Event::RefusedOutbound {
                header: None,
                refusals: vec![refusal.clone()],
            }),
            ..Plan::settle(Settle::Park {
                header: None,
                refusals: vec![refusal],
            })
        };
    }
    in_batch(journal, || {
        decide(worker, journal, abandoned, bytes, routing_key, now)
    })
}

fn decide(
    worker: &mut impl Work,
    journal: &dyn Journal,
    abandoned: &Abandoned,
    bytes: &Bytes,
    routing_key: &str,
    now: OffsetDateTime,
) -> Plan {
    let signed = match worker.outbound(bytes, routing_key, now) {
        Ok(signed) => signed,
        Err(unsendable) if stopping(&unsendable.refusals) => {
            return Plan::retry(summary(&unsendable.refusals));
        }
        Err(unsendable) => {
            if let Some(header) = &unsendable.header {
                let reason = reason_of(&unsendable.refusals);
                let journaled = journal
                    .record(Direction::Outbound, header, bytes, State::Received, now)
                    .and_then(|_| {
                        journal.transition(
                            Direction::Outbound,
                            header.message_id,
                            State::Failed,
                            Some(&reason),
                            now,
                        )
                    });
                if let Err(e) = journaled {
                    if e.is_transient() {
                        return Plan::retry(e.to_string());
                    }
                    tracing::warn!(message_id = %header.message_id, error = %e, "Cannot journal a refused outbound document.");
                }
            }
            let mut plan = refuse(unsendable.header, unsendable.refusals, now);
            // Unreadable: the outcome names the kind its routing key claims (the sender's
            // user may send it), so it reaches the back-office that sends that kind.
            if let [Publish::Notify(outcome)] = plan.publishes.as_mut_slice()
                && outcome.kind.is_none()
            {
                outcome.kind = routing_key
                    .parse::<asw_model::DocumentKind>()
                    .ok()
                    .map(|k| k.as_str().to_owned());
            }
            return plan;
        }
    };
    let id = signed.header.message_id;
    match journal.record_signed(&signed.header, bytes, &signed.bytes, now) {
        // Recorded and signed in one journal write.
        Ok(Recorded::New) => return send(signed),
        Ok(Recorded::Existing(record)) => {
            let state = record.summary.state;
            if state != State::Received && state != State::Signed {
                return sent_before(id, state);
            }
            if claimed_by_another(journal, &record, now, abandoned) {
                return Plan::wait(format!("message {id} is being sent by another consumer"));
            }
        }
        Ok(Recorded::Conflict(conflict)) => {
            let fields: Vec<&str> = conflict.fields.iter().map(|f| f.as_str()).collect();
            let refusal = Refusal {
                code: "DUPLICATE-ID".into(),
                text: format!(
                    "message id {id} was sent before with a different {}",
                    fields.join(", ")
                ),
            };
            return refuse(Some(signed.header), vec![refusal], now);
        }
        Err(e) if e.is_transient() => return Plan::retry(e.to_string()),
        Err(e) => return refuse(Some(signed.header), vec![journal_refusal(&e)], now),
    }
    match journal.transition_signed(id, &signed.bytes, now) {
        Ok(Transition::Moved { .. }) => send(signed),
        // Signed before (a redelivery after a crash): send the bytes signed then, not a new signature.
        Ok(Transition::AlreadyThere) => match journal.get(Direction::Outbound, id) {
            Ok(Some(record)) => send(Signed {
                header: signed.header,
                bytes: record.bytes.into(),
            }),
            Ok(None) => Plan::retry(format!("message {id} vanished from the journal")),
            Err(e) => Plan::retry(e.to_string()),
        },
        Ok(Transition::AlreadyPast { current } | Transition::Refused { current }) => {
            sent_before(id, current)
        }
        Err(e) if e.is_transient() => Plan::retry(e.to_string()),
        Err(e) => refuse(Some(signed.header), vec![journal_refusal(&e)], now),
    }
}

/// Publish to the partner queue, then journal `queued`, then ack.
fn send(signed: Signed) -> Plan {
    let header = signed.header.clone();
    Plan {
        header: Some(header.clone()),
        claims: true,
        publishes: vec![Publish::Document(signed)],
        event: Some(Event::Queued(header)),
        settle: Settle::Ack,
    }
}

/// Already queued or further (a redelivery or a back-office resend): ack, nothing else.
fn sent_before(message_id: uuid::Uuid, state: State) -> Plan {
    Plan {
        event: Some(Event::SentBefore { message_id, state }),
        ..Plan::settle(Settle::Ack)
    }
}

/// Can never be sent as it is: tell the back-office, park it, ack. A fault of the hub's own (a
/// panic, a journal that refuses to work) is no verdict on the document: `failed`, not
/// `rejected`.
fn refuse(header: Option<Header>, refusals: Vec<Refusal>, now: OffsetDateTime) -> Plan {
    let ours = refusals
        .iter()
        .any(|r| r.code == PANIC || r.code == JOURNAL);
    let mut outcome = Outcome::new(
        if ours { "failed" } else { "rejected" },
        header.as_ref().map(|h| h.message_id),
        header.as_ref().map(|h| h.kind),
        header.as_ref().map(|h| h.receiver),
        now,
    );
    outcome.reasons = refusals.iter().map(OutcomeReason::from).collect();
    Plan {
        header: None,
        claims: false,
        publishes: vec![Publish::Notify(outcome)],
        event: Some(Event::RefusedOutbound {
            header: header.clone(),
            refusals: refusals.clone(),
        }),
        settle: Settle::Park { header, refusals },
    }
}

#[cfg(test)]
mod tests;
