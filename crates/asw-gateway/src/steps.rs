//! The blocking part of handling one delivery, run on a worker thread: the worker's checks and
//! signatures combined with the journal (records, duplicates, correlation). The result is a plan
//! the async pipeline carries out on the broker.

use asw_journal::{Direction, Journal, JournalError, Reason, Recorded, State, Transition};
use asw_model::{DocumentKind, Header, MemberState};
use time::OffsetDateTime;
use uuid::Uuid;

use crate::process::{Refusal, STOPPING, Work};

/// A signed document to publish and, once confirmed, to journal as `to`.
#[derive(Debug, Clone)]
pub struct Send {
    /// Its header.
    pub header: Header,
    /// The signed bytes.
    pub bytes: Vec<u8>,
}

/// What to do with an outbound delivery.
#[derive(Debug)]
pub enum OutboundPlan {
    /// Publish to the partner queue, then journal `queued`, then ack.
    Publish(Send),
    /// Already queued or further (a redelivery or a back-office resend): ack, nothing else.
    Duplicate {
        /// The message id.
        message_id: Uuid,
        /// Where the journal says it is.
        state: State,
    },
    /// Can never be sent as is: park it, tell the back-office, ack.
    Refuse {
        /// The header, when readable.
        header: Option<Header>,
        /// Why.
        refusals: Vec<Refusal>,
    },
    /// A transient failure (the journal): try again later.
    Retry(String),
    /// Another consumer holds the message's claim: look again later, without counting an attempt.
    Wait(String),
}

/// What became of an outbound document, from an answer the partner sent.
#[derive(Debug, Clone)]
pub struct AnswerOutcome {
    /// The original outbound message.
    pub original_id: Uuid,
    /// Its kind.
    pub original_kind: DocumentKind,
    /// Its receiver.
    pub original_receiver: MemberState,
    /// `acknowledged`, `rejected` or `status`.
    pub outcome: &'static str,
    /// The status the answer reports.
    pub status: Option<String>,
    /// The answer's reasons.
    pub reasons: Vec<(String, String)>,
}

/// What to do with an inbound delivery.
#[derive(Debug)]
pub enum InboundPlan {
    /// Accepted.
    Accept {
        /// Its header.
        header: Header,
        /// Signer member state and certificate fingerprint.
        signer: (MemberState, String),
        /// Publish to the back-office (false for a duplicate already delivered).
        deliver: bool,
        /// An earlier attempt got as far as publishing it to the back-office and its outcome is
        /// unknown (a confirm lost with the connection, a crash): the back-office may have it
        /// already, so it is delivered marked as a possible duplicate.
        possible_duplicate: bool,
        /// The signed receipt to send back, if one is still due.
        receipt: Option<Send>,
        /// The outcome to report, if this answers one of our documents.
        answer: Option<AnswerOutcome>,
    },
    /// Refused: park it, answer the authenticated sender if there is a rejection to send, ack.
    Refuse {
        /// The header, when readable.
        header: Option<Header>,
        /// Why.
        refusals: Vec<Refusal>,
        /// The signed rejection to send back, if due.
        rejection: Option<Send>,
        /// The member state authenticated by the transport.
        authenticated: Option<MemberState>,
    },
    /// A transient failure: try again later.
    Retry(String),
    /// Another consumer holds the message's claim: look again later, without counting an attempt.
    Wait(String),
}

/// How long a message recorded but not finished belongs to the consumer that recorded it. A copy
/// arriving meanwhile (a concurrent duplicate) waits; after it, the first consumer is taken to
/// have died (a crash before the broker confirmed) and the copy takes over. Longer than the
/// publish-confirm timeout, so a live consumer is never overtaken.
pub const CLAIM_LEASE: time::Duration = time::Duration::seconds(45);

fn claimed_by_another(
    journal: &dyn Journal,
    record: &asw_journal::MessageRecord,
    now: OffsetDateTime,
    abandoned: &Abandoned,
) -> bool {
    !abandoned.take(record.summary.header.message_id)
        && now - record.summary.updated_at < CLAIM_LEASE
        && !released_by_replay(journal, &record.summary)
}

/// True if the last thing that happened to the message is an operator's replay
/// ([`Journal::replay`], `aswctl replay`): no consumer holds it, so the copy the operator
/// republished takes it at once rather than waiting out [`CLAIM_LEASE`]. On a journal error the
/// claim stands (the copy waits).
pub fn released_by_replay(journal: &dyn Journal, summary: &asw_journal::MessageSummary) -> bool {
    journal
        .history(summary.direction, summary.header.message_id)
        .ok()
        .and_then(|history| {
            history
                .last()
                .map(|t| t.event == asw_journal::Event::Replayed)
        })
        .unwrap_or(false)
}

/// True if the message was last parked because no back-office queue took it
/// (`DELIVERY-UNROUTABLE`: the broker returned it, so no copy reached anyone) and an operator
/// replayed it since: its delivery now is its first, not a possible duplicate. On a journal
/// error it counts as a possible duplicate.
fn replayed_after_unroutable(journal: &dyn Journal, message_id: Uuid) -> bool {
    let Ok(history) = journal.history(Direction::Inbound, message_id) else {
        return false;
    };
    let replayed = history
        .last()
        .is_some_and(|t| t.event == asw_journal::Event::Replayed);
    let parked_unroutable = history
        .iter()
        .rev()
        .find(|t| t.to == State::Failed)
        .and_then(|t| t.reason.as_ref())
        .is_some_and(|r| r.code == crate::publish::UNROUTABLE);
    replayed && parked_unroutable
}

/// Claims this process gave up: messages whose delivery was cut short when the broker session
/// failed, so their redelivery may take over at once instead of waiting out the lease.
#[derive(Debug, Default)]
pub struct Abandoned(std::sync::Mutex<std::collections::HashSet<Uuid>>);

impl Abandoned {
    /// Notes that this process stopped working on `id` without finishing it.
    pub fn add(&self, id: Uuid) {
        if let Ok(mut ids) = self.0.lock() {
            ids.insert(id);
        }
    }

    /// True (once) if this process abandoned `id`.
    fn take(&self, id: Uuid) -> bool {
        self.0
            .lock()
            .map(|mut ids| ids.remove(&id))
            .unwrap_or(false)
    }
}

fn transient(e: &JournalError) -> bool {
    e.is_transient()
}

/// The code of a refusal that says the journal failed for good on the document (not a verdict
/// on it: its back-office hears `failed`).
pub const JOURNAL: &str = "JOURNAL";

fn journal_refusal(e: &JournalError) -> Refusal {
    Refusal {
        code: JOURNAL.into(),
        text: e.to_string(),
    }
}

/// Outbound: validate, check, sign, journal. The journal writes share one commit
/// ([`Journal::batch`]); the plan is returned once they are durable.
pub fn outbound(
    worker: &mut impl Work,
    journal: &dyn Journal,
    abandoned: &Abandoned,
    bytes: &[u8],
    routing_key: &str,
    now: OffsetDateTime,
) -> OutboundPlan {
    in_batch(journal, OutboundPlan::Retry, || {
        outbound_unbatched(worker, journal, abandoned, bytes, routing_key, now)
    })
}

/// Runs `step` as one journal batch and returns its plan once what it wrote is committed, or
/// `retry` with the reason when it was not.
fn in_batch<P>(
    journal: &dyn Journal,
    retry: impl FnOnce(String) -> P,
    step: impl FnOnce() -> P,
) -> P {
    let mut step = Some(step);
    let mut plan = None;
    let committed = journal.batch(&mut || {
        if let Some(step) = step.take() {
            plan = Some(step());
        }
    });
    match (committed, plan) {
        (Ok(()), Some(plan)) => plan,
        (Err(e), _) => retry(e.to_string()),
        (Ok(()), None) => retry("the journal batch did not run".into()),
    }
}

fn outbound_unbatched(
    worker: &mut impl Work,
    journal: &dyn Journal,
    abandoned: &Abandoned,
    bytes: &[u8],
    routing_key: &str,
    now: OffsetDateTime,
) -> OutboundPlan {
    let signed = match worker.outbound(bytes, routing_key, now) {
        Ok(signed) => signed,
        Err(unsendable) if stopping(&unsendable.refusals) => {
            return OutboundPlan::Retry(crate::process::summary(&unsendable.refusals));
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
                    if transient(&e) {
                        return OutboundPlan::Retry(e.to_string());
                    }
                    tracing::warn!(message_id = %header.message_id, error = %e, "Cannot journal a refused outbound document.");
                }
            }
            return OutboundPlan::Refuse {
                header: unsendable.header,
                refusals: unsendable.refusals,
            };
        }
    };
    let id = signed.header.message_id;
    match journal.record_signed(&signed.header, bytes, &signed.bytes, now) {
        // Recorded and signed in one journal write.
        Ok(Recorded::New) => {
            return OutboundPlan::Publish(Send {
                header: signed.header,
                bytes: signed.bytes,
            });
        }
        Ok(Recorded::Existing(record)) => {
            let state = record.summary.state;
            if state != State::Received && state != State::Signed {
                return OutboundPlan::Duplicate {
                    message_id: id,
                    state,
                };
            }
            if claimed_by_another(journal, &record, now, abandoned) {
                return OutboundPlan::Wait(format!(
                    "message {id} is being sent by another consumer"
                ));
            }
        }
        Ok(Recorded::Conflict(conflict)) => {
            let fields: Vec<&str> = conflict.fields.iter().map(|f| f.as_str()).collect();
            return OutboundPlan::Refuse {
                header: Some(signed.header),
                refusals: vec![Refusal {
                    code: "DUPLICATE-ID".into(),
                    text: format!(
                        "message id {id} was sent before with a different {}",
                        fields.join(", ")
                    ),
                }],
            };
        }
        Err(e) if transient(&e) => return OutboundPlan::Retry(e.to_string()),
        Err(e) => {
            return OutboundPlan::Refuse {
                header: Some(signed.header),
                refusals: vec![journal_refusal(&e)],
            };
        }
    }
    match journal.transition_signed(id, &signed.bytes, now) {
        Ok(Transition::Moved { .. }) => OutboundPlan::Publish(Send {
            header: signed.header,
            bytes: signed.bytes,
        }),
        // Signed before (a redelivery after a crash): send the bytes signed then, not a new signature.
        Ok(Transition::AlreadyThere) => match journal.get(Direction::Outbound, id) {
            Ok(Some(record)) => OutboundPlan::Publish(Send {
                header: signed.header,
                bytes: record.bytes,
            }),
            Ok(None) => OutboundPlan::Retry(format!("message {id} vanished from the journal")),
            Err(e) => OutboundPlan::Retry(e.to_string()),
        },
        Ok(Transition::AlreadyPast { current } | Transition::Refused { current }) => {
            OutboundPlan::Duplicate {
                message_id: id,
                state: current,
            }
        }
        Err(e) if transient(&e) => OutboundPlan::Retry(e.to_string()),
        Err(e) => OutboundPlan::Refuse {
            header: Some(signed.header),
            refusals: vec![journal_refusal(&e)],
        },
    }
}

/// True when the work was not done because the workers stopped: a reason to retry, never a
/// verdict on the document.
fn stopping(refusals: &[Refusal]) -> bool {
    refusals.iter().any(|r| r.code == STOPPING)
}

fn reason_of(refusals: &[Refusal]) -> Reason {
    match refusals.first() {
        Some(first) => Reason::new(first.code.clone(), crate::process::summary(refusals)),
        None => Reason::new("UNKNOWN", "no reason given"),
    }
}

/// Inbound: identity, verification, validation, duplicates, receipts, correlation. The journal
/// writes share one commit ([`Journal::batch`]); the plan is returned once they are durable.
pub fn inbound(
    worker: &mut impl Work,
    journal: &dyn Journal,
    abandoned: &Abandoned,
    bytes: &[u8],
    user_id: Option<&str>,
    routing_key: &str,
    now: OffsetDateTime,
) -> InboundPlan {
    in_batch(journal, InboundPlan::Retry, || {
        inbound_unbatched(worker, journal, abandoned, bytes, user_id, routing_key, now)
    })
}

fn inbound_unbatched(
    worker: &mut impl Work,
    journal: &dyn Journal,
    abandoned: &Abandoned,
    bytes: &[u8],
    user_id: Option<&str>,
    routing_key: &str,
    now: OffsetDateTime,
) -> InboundPlan {
    let accepted = match worker.inbound(bytes, user_id, routing_key, now) {
        Ok(accepted) => accepted,
        Err(refused) if stopping(&refused.refusals) => {
            return InboundPlan::Retry(crate::process::summary(&refused.refusals));
        }
        Err(refused) => return refuse(worker, journal, bytes, *refused, now),
    };
    let header = accepted.verified.header().clone();
    // An answer is taken only from the member state its original was sent to, and only of a
    // kind that answers the original's kind: anything else is parked and moves nothing.
    if let Some(original_id) = header.correlation_id.filter(|_| header.kind.is_response()) {
        match journal.find_original(Direction::Outbound, original_id) {
            Ok(Some(original)) => {
                if let Some(refusal) = answer_mismatch(&header, &original.summary.header) {
                    let refused = crate::process::Refused {
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
            Err(e) => return InboundPlan::Retry(e.to_string()),
        }
    }
    let signer = (
        accepted.verified.signer(),
        accepted.verified.fingerprint().to_owned(),
    );
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
                return InboundPlan::Wait(format!(
                    "message {} is being delivered by another consumer",
                    header.message_id
                ));
            }
            State::Verified => {
                possible_duplicate = !replayed_after_unroutable(journal, header.message_id);
                true
            }
            // Recorded before its verification (refused then, replayed since): it is verified now.
            State::Received => match journal.transition(
                Direction::Inbound,
                header.message_id,
                State::Verified,
                None,
                now,
            ) {
                Ok(_) => true,
                Err(e) => return InboundPlan::Retry(e.to_string()),
            },
            State::Delivered => false,
            parked => {
                // A copy of something refused or discarded before: refuse it again, quietly.
                return InboundPlan::Refuse {
                    header: Some(header),
                    refusals: vec![Refusal {
                        code: "DUPLICATE".into(),
                        text: format!("already {parked}"),
                    }],
                    rejection: None,
                    authenticated: None,
                };
            }
        },
        Ok(Recorded::Conflict(conflict)) => {
            let fields: Vec<&str> = conflict.fields.iter().map(|f| f.as_str()).collect();
            return InboundPlan::Refuse {
                refusals: vec![Refusal {
                    code: "DUPLICATE-ID".into(),
                    text: format!(
                        "message id {} was received before with a different {}",
                        header.message_id,
                        fields.join(", ")
                    ),
                }],
                header: Some(header),
                rejection: None,
                authenticated: None,
            };
        }
        Err(e) => return InboundPlan::Retry(e.to_string()),
    };
    let receipt = if header.kind.ack_kind().is_some() {
        match own_answer(
            worker,
            journal,
            &header,
            header.sender,
            accepted.reference.as_deref(),
            &[],
            first_seen,
            now,
        ) {
            Ok(receipt) => receipt,
            Err(e) => return InboundPlan::Retry(e),
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
            Err(e) => return InboundPlan::Retry(e.to_string()),
        },
        None => None,
    };
    InboundPlan::Accept {
        header,
        signer,
        deliver,
        possible_duplicate,
        receipt,
        answer,
    }
}

/// Why `answer` cannot answer `original`, if it cannot: it comes from another member state than
/// the one the original was sent to (`ANSWER-SENDER`), or its kind does not answer the
/// original's (`ANSWER-KIND`).
pub fn answer_mismatch(answer: &Header, original: &Header) -> Option<Refusal> {
    if answer.sender != original.receiver {
        return Some(Refusal {
            code: "ANSWER-SENDER".into(),
            text: format!(
                "{} answers message {} that was sent to {}, not to {}",
                answer.kind, original.message_id, original.receiver, answer.sender
            ),
        });
    }
    if answer.kind.answers() != Some(original.kind) {
        return Some(Refusal {
            code: "ANSWER-KIND".into(),
            text: format!(
                "a {} cannot answer message {}, which is a {}",
                answer.kind, original.message_id, original.kind
            ),
        });
    }
    None
}

fn refuse(
    worker: &mut impl Work,
    journal: &dyn Journal,
    bytes: &[u8],
    refused: crate::process::Refused,
    now: OffsetDateTime,
) -> InboundPlan {
    let mut rejection = None;
    if let Some(header) = &refused.header {
        // Journal it under its message id only if its signature was verified: an unverified
        // header may be a forgery borrowing the id of a genuine message still to come.
        if refused.verified {
            let reason = reason_of(&refused.refusals);
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
                if transient(&e) {
                    return InboundPlan::Retry(e.to_string());
                }
                tracing::warn!(message_id = %header.message_id, error = %e, "Cannot journal a refused inbound document.");
            }
        }
        // Only a sender the transport authenticated gets a signed rejection, and only for the
        // kinds that are acknowledged: answers are never answered.
        if let Some(sender) = refused.authenticated
            && header.kind.ack_kind().is_some()
        {
            match own_answer(
                worker,
                journal,
                header,
                sender,
                refused.reference.as_deref(),
                &refused.refusals,
                false,
                now,
            ) {
                Ok(r) => rejection = r,
                Err(e) => return InboundPlan::Retry(e),
            }
        }
    }
    InboundPlan::Refuse {
        header: refused.header,
        refusals: refused.refusals,
        rejection,
        authenticated: refused.authenticated,
    }
}

/// The hub's receipt or rejection for `original`, journaled as outbound. Its message id is
/// derived from the original's, so an answer journaled before is reused as it was signed. One
/// already queued for the partner is sent again, the same bytes under the same id: the original
/// came again because its sender is still waiting (its resend after a lost receipt), and the
/// sender drops a copy it already has. `None` only when the answer was parked or discarded.
#[expect(
    clippy::too_many_arguments,
    reason = "the answer's inputs: worker, journal, the original and what to say, when"
)]
fn own_answer(
    worker: &mut impl Work,
    journal: &dyn Journal,
    original: &Header,
    reply_to: MemberState,
    reference: Option<&str>,
    refusals: &[Refusal],
    first_seen: bool,
    now: OffsetDateTime,
) -> Result<Option<Send>, String> {
    let Some(kind) = original.kind.ack_kind() else {
        return Ok(None);
    };
    let id = asw_model::reply::reply_message_id(original.message_id, kind);
    // The answer to a message first seen now cannot be journaled yet (and if it were, recording
    // the new one below finds it): only look it up for a message seen before.
    let existing = if first_seen {
        None
    } else {
        journal
            .get(Direction::Outbound, id)
            .map_err(|e| e.to_string())?
    };
    if let Some(record) = existing {
        return Ok(match record.summary.state {
            state if state.is_parked() => None,
            _ => Some(Send {
                header: record.summary.header.clone(),
                bytes: record.bytes,
            }),
        });
    }
    let Some(signed) = worker.receipt(original, reply_to, reference, refusals, now) else {
        return Ok(None);
    };
    let (header, bytes) = signed.map_err(|r| format!("{} {}", r.code, r.text))?;
    match journal.record_signed(&header, &bytes, &bytes, now) {
        Ok(Recorded::New) => Ok(Some(Send { header, bytes })),
        // Another process answered at the same moment: its answer is the one.
        Ok(Recorded::Existing(record)) => Ok(Some(Send {
            header,
            bytes: record.bytes,
        })),
        Ok(Recorded::Conflict(conflict)) => Ok(match conflict.existing.summary.state {
            state if state.is_parked() => None,
            _ => Some(Send {
                header,
                bytes: conflict.existing.bytes,
            }),
        }),
        Err(e) => Err(e.to_string()),
    }
}

fn correlate(
    journal: &dyn Journal,
    header: &Header,
    original_id: Uuid,
    accepted: &crate::process::Accepted,
    now: OffsetDateTime,
) -> Result<Option<AnswerOutcome>, JournalError> {
    let Some(original) = journal.find_original(Direction::Outbound, original_id)? else {
        tracing::warn!(message_id = %header.message_id, correlation_id = %original_id, "Answer to a message this hub did not send.");
        return Ok(None);
    };
    let status = accepted.status.clone();
    let (outcome, to) = match header.kind {
        DocumentKind::FormDAck | DocumentKind::AcddAck => match status.as_deref() {
            Some("rejected") => ("rejected", Some(State::Rejected)),
            _ => ("acknowledged", Some(State::Acknowledged)),
        },
        _ => ("status", None),
    };
    if let Some(to) = to {
        let reason = (to == State::Rejected).then(|| {
            let text = accepted
                .reasons
                .iter()
                .map(|(c, t)| format!("{c} {t}"))
                .collect::<Vec<_>>()
                .join("; ");
            Reason::new("PARTNER-REJECTED", text)
        });
        let moved =
            journal.transition(Direction::Outbound, original_id, to, reason.as_ref(), now)?;
        if let Transition::Refused { current } = moved {
            tracing::warn!(message_id = %original_id, %current, to = %to, "Answer contradicts the journal; not applied.");
        }
    }
    Ok(Some(AnswerOutcome {
        original_id,
        original_kind: original.summary.header.kind,
        original_receiver: original.summary.header.receiver,
        outcome,
        status,
        reasons: accepted.reasons.clone(),
    }))
}

#[cfg(test)]
mod tests {
    use super::*;
    use asw_model::sample::{self, SampleSpec};

    fn state(code: &str) -> MemberState {
        MemberState::from_alpha2(code).expect("member state")
    }

    fn header(kind: DocumentKind, from: &str, to: &str) -> Header {
        sample::message(&SampleSpec {
            kind,
            from: state(from),
            to: state(to),
            items: 1,
            seed: 3,
            created_at: OffsetDateTime::now_utc(),
        })
        .header
    }

    #[test]
    fn an_answer_is_taken_only_from_the_receiver_of_the_original_and_of_an_answering_kind() {
        let original = header(DocumentKind::FormD, "VN", "TH");
        let receipt = header(DocumentKind::FormDAck, "TH", "VN");
        assert_eq!(answer_mismatch(&receipt, &original), None);
        let status = header(DocumentKind::FormDStatus, "TH", "VN");
        assert_eq!(answer_mismatch(&status, &original), None);

        let from_elsewhere = header(DocumentKind::FormDAck, "SG", "VN");
        let refusal = answer_mismatch(&from_elsewhere, &original).expect("refused");
        assert_eq!(refusal.code, "ANSWER-SENDER");
        assert!(
            refusal.text.contains("sent to TH, not to SG"),
            "{}",
            refusal.text
        );

        let wrong_kind = header(DocumentKind::AcddResponse, "TH", "VN");
        let refusal = answer_mismatch(&wrong_kind, &original).expect("refused");
        assert_eq!(refusal.code, "ANSWER-KIND");
        let acdd = header(DocumentKind::Acdd, "VN", "TH");
        assert_eq!(
            answer_mismatch(&header(DocumentKind::AcddAck, "TH", "VN"), &acdd),
            None
        );
        assert_eq!(
            answer_mismatch(&receipt, &acdd).map(|r| r.code),
            Some("ANSWER-KIND".to_owned())
        );
    }
}
