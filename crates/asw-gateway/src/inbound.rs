//! The inbound flow: a partner's document from `asw.hub.inbound` is checked against its
//! transport identity, verified, validated and journaled `verified` on a worker, then delivered
//! to the back-office exchange (the exact bytes verified), its answer's outcome reported, the
//! hub's signed receipt sent back, and the moves journaled; a refused one is parked and, where
//! due, answered with a signed rejection.
//!
//! The receipt means "reached a back-office": it is published only after the delivery was
//! confirmed, so a document no back-office queue takes (parked `DELIVERY-UNROUTABLE`) gets its
//! receipt when an operator's replay delivers it.
//!
//! [`plan`] decides on a step thread; [`crate::execute`] carries the plan out.

use asw_journal::{Direction, Journal, Recorded, State, Transition};
use asw_route::names;
use bytes::Bytes;
use time::OffsetDateTime;

use crate::answers::{answer_mismatch, correlate, own_answer};
use crate::claims::{Abandoned, claimed_by_another, replayed_after_unroutable};
use crate::events::Event;
use crate::execute::{execute, planned};
use crate::hub::{Inner, now, on_journal};
use crate::incoming::Incoming;
use crate::plan::{Plan, Publish, Settle, in_batch, reason_of, stopping};
use crate::process::{Accepted, Refusal, Refused, summary};
use crate::publish::{Failure, LanePublisher};
use crate::work::Work;

/// Handles one delivery of `asw.hub.inbound`; `Ok` means it may be acknowledged.
pub(crate) async fn inbound(
    inner: &Inner,
    publisher: &mut LanePublisher,
    incoming: &Incoming,
) -> Result<(), Failure> {
    let started = now();
    let body = incoming.body.clone();
    let routing_key = incoming.routing_key.clone();
    let user_id = incoming.transport_user.clone();
    let abandoned = inner.abandoned.clone();
    let ran = on_journal(inner, move |w, j| {
        let user_id = user_id.as_deref();
        plan(w, j, &abandoned, &body, user_id, &routing_key, started)
    })
    .await;
    let stage = names::stage::INBOUND;
    let plan = planned(ran).map_err(Failure::Fault)?;
    execute(inner, publisher, incoming, stage, started, plan).await
}

/// The plan for a partner's document: identity, verification, validation, duplicates,
/// receipts, correlation. The journal writes share one commit ([`Journal::batch`]); the plan
/// is returned once they are durable.
pub fn plan(
    worker: &mut impl Work,
    journal: &dyn Journal,
    abandoned: &Abandoned,
    bytes: &Bytes,
    user_id: Option<&str>,
    routing_key: &str,
    now: OffsetDateTime,
) -> Plan {
    in_batch(journal, || {
        decide(worker, journal, abandoned, bytes, user_id, routing_key, now)
    })
}

fn decide(
    worker: &mut impl Work,
    journal: &dyn Journal,
    abandoned: &Abandoned,
    bytes: &Bytes,
    user_id: Option<&str>,
    routing_key: &str,
    now: OffsetDateTime,
) -> Plan {
    let accepted = match worker.inbound(bytes, user_id, routing_key, now) {
        Ok(accepted) => accepted,
        Err(refused) if stopping(&refused.refusals) => {
            return Plan::retry(summary(&refused.refusals));
        }
        Err(refused) => return refuse(worker, journal, bytes, *refused, now),
    };
    let header = accepted.verified.header().clone();
    let id = header.message_id;
    // An answer is taken only from the member state its original was sent to, and only of a
    // kind that answers the original's kind: anything else is parked and moves nothing.
    if let Some(original_id) = header.correlation_id.filter(|_| header.kind.is_response()) {
        match journal.find_original(Direction::Outbound, original_id) {
            Ok(Some(original)) => {
                if let Some(refusal) = answer_mismatch(&header, &original.summary.header) {
                    let refused = Refused {
                        reference: accepted.reference.clone(),
                        authenticated: Some(header.sender),
                        header: Some(header),
                        verified: true,
                        refusals: vec![refusal],
                    };
                    return refuse(worker, journal, bytes, refused, now);
                }
            }
            Ok(None) => {}
            Err(e) => return Plan::retry(e.to_string()),
        }
    }
    let mut possible_duplicate = false;
    // First seen now: no answer to it can have been journaled yet.
    let mut first_seen = false;
    let deliver = match journal.record(Direction::Inbound, &header, bytes, State::Verified, now) {
        Ok(Recorded::New) => {
            first_seen = true;
            true
        }
        Ok(Recorded::Existing(record)) => match record.summary.state {
            State::Verified | State::Received
                if claimed_by_another(journal, &record, now, abandoned) =>
            {
                return Plan::wait(format!(
                    "message {id} is being delivered by another consumer"
                ));
            }
            State::Verified => {
                possible_duplicate = !replayed_after_unroutable(journal, id);
                true
            }
            // Recorded before its verification (refused then, replayed since): it is verified now.
            State::Received => {
                match journal.transition(Direction::Inbound, id, State::Verified, None, now) {
                    Ok(_) => true,
                    Err(e) => return Plan::retry(e.to_string()),
                }
            }
            State::Delivered => false,
            // A copy of something refused or discarded before: refuse it again, quietly.
            parked => return refused_quietly(header, "DUPLICATE", format!("already {parked}")),
        },
        Ok(Recorded::Conflict(conflict)) => {
            let fields: Vec<&str> = conflict.fields.iter().map(|f| f.as_str()).collect();
            let text = format!(
                "message id {id} was received before with a different {}",
                fields.join(", ")
            );
            return refused_quietly(header, "DUPLICATE-ID", text);
        }
        Err(e) => return Plan::retry(e.to_string()),
    };
    let receipt = if header.kind.ack_kind().is_some() {
        let reference = accepted.reference.as_deref();
        match own_answer(
            worker,
            journal,
            &header,
            header.sender,
            reference,
            &[],
            first_seen,
            now,
        ) {
            Ok(receipt) => receipt,
            Err(e) => return Plan::retry(e),
        }
    } else {
        None
    };
    // A copy of an answer already delivered (the partner answered a resend again) changed the
    // original's state the first time, and its outcome was reported then: not again.
    let answer = match header
        .correlation_id
        .filter(|_| header.kind.is_response() && deliver)
    {
        Some(original) => match correlate(journal, &header, original, &accepted, now) {
            Ok(answer) => answer,
            Err(e) => return Plan::retry(e.to_string()),
        },
        None => None,
    };
    accept(accepted, deliver, possible_duplicate, answer, receipt)
}

/// Deliver (unless delivered before), then report the answer's outcome, then send the receipt,
/// then journal `delivered` and the receipt `queued` (one commit), then ack.
///
/// An answer's outcome is confirmed before the answer is journaled delivered: a copy of an
/// answer already delivered reports no outcome again, so the outcome of the first must not be
/// lost between the two. The receipt goes out after the delivery and before the moves are
/// journaled, so both moves share one commit; a crash in between sends the receipt again with
/// the redelivery: the same bytes under the same id, which the partner drops as a copy.
fn accept(
    accepted: Accepted,
    deliver: bool,
    possible_duplicate: bool,
    answer: Option<crate::outcome::Outcome>,
    receipt: Option<crate::process::Signed>,
) -> Plan {
    let header = accepted.verified.header().clone();
    let mut publishes = Vec::with_capacity(3);
    if deliver {
        publishes.push(Publish::Deliver {
            verified: accepted.verified,
            possible_duplicate,
        });
    }
    publishes.extend(answer.map(Publish::Answer));
    publishes.extend(receipt.map(Publish::Receipt));
    let event = if deliver {
        Event::Delivered(header.clone())
    } else {
        Event::DeliveredBefore(header.clone())
    };
    Plan {
        header: Some(header),
        claims: true,
        publishes,
        event: Some(event),
        settle: Settle::Ack,
    }
}

/// A copy of something journaled before that cannot be delivered: parked without an answer.
fn refused_quietly(header: asw_model::Header, code: &str, text: String) -> Plan {
    refused(
        Refused {
            header: Some(header),
            reference: None,
            authenticated: None,
            verified: false,
            refusals: vec![Refusal {
                code: code.into(),
                text,
            }],
        },
        None,
    )
}

/// Park it and, if there is a rejection to send, answer the authenticated sender; ack.
fn refused(refused: Refused, rejection: Option<crate::process::Signed>) -> Plan {
    let Refused {
        header,
        refusals,
        authenticated,
        ..
    } = refused;
    Plan {
        header: None,
        claims: false,
        publishes: rejection.map(Publish::Rejection).into_iter().collect(),
        event: Some(Event::RefusedInbound {
            header: header.clone(),
            partner: authenticated,
            refusals: refusals.clone(),
        }),
        settle: Settle::Park { header, refusals },
    }
}

/// A refused document: journaled `rejected` if its signature verified, and answered with a
/// signed rejection if the transport authenticated its sender and it is of a kind that is
/// acknowledged.
fn refuse(
    worker: &mut impl Work,
    journal: &dyn Journal,
    bytes: &Bytes,
    refused_doc: Refused,
    now: OffsetDateTime,
) -> Plan {
    let mut rejection = None;
    if let Some(header) = &refused_doc.header {
        // Journal it under its message id only if its signature was verified: an unverified
        // header may be a forgery borrowing the id of a genuine message still to come.
        if refused_doc.verified {
            let reason = reason_of(&refused_doc.refusals);
            let journaled = journal
                .record(Direction::Inbound, header, bytes, State::Received, now)
                .and_then(|recorded| match recorded {
                    Recorded::Conflict(_) => Ok(Transition::AlreadyThere),
                    _ => journal.transition(
                        Direction::Inbound,
                        header.message_id,
                        State::Rejected,
                        Some(&reason),
                        now,
                    ),
                });
            if let Err(e) = journaled {
                if e.is_transient() {
                    return Plan::retry(e.to_string());
                }
                tracing::warn!(message_id = %header.message_id, error = %e, "Cannot journal a refused inbound document.");
            }
        }
        // Only a sender the transport authenticated gets a signed rejection, and only for the
        // kinds that are acknowledged: answers are never answered.
        if let Some(sender) = refused_doc.authenticated
            && header.kind.ack_kind().is_some()
        {
            match own_answer(
                worker,
                journal,
                header,
                sender,
                refused_doc.reference.as_deref(),
                &refused_doc.refusals,
                false,
                now,
            ) {
                Ok(r) => rejection = r,
                Err(e) => return Plan::retry(e),
            }
        }
    }
    refused(refused_doc, rejection)
}

#[cfg(test)]
mod tests;
