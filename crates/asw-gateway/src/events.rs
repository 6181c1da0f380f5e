//! The observable outcomes of a delivery, one type each: emitting one writes its one log line
//! and bumps its counter, so a log line and a metric can never disagree or be forgotten one
//! without the other. The outcomes a plan ends with own what they say (a plan is data, made
//! before it is carried out); the others borrow it.

use asw_journal::State;
use asw_model::{Header, MemberState};
use tracing::{info, warn};
use uuid::Uuid;

use crate::metrics::{DocumentOutcome, Metrics, Pipeline};
use crate::process::{Refusal, summary};

/// What became of a delivery (or of one of the hub's own answers).
#[derive(Debug)]
pub(crate) enum Event<'a> {
    /// Outbound: signed and queued for the partner.
    Queued(Header),
    /// Outbound: a copy of a document already queued or further; dropped.
    SentBefore {
        /// Its id.
        message_id: Uuid,
        /// Where the journal has it.
        state: State,
    },
    /// Outbound: refused for good; parked, and the back-office told.
    RefusedOutbound {
        /// Its header, when readable.
        header: Option<Header>,
        /// Why.
        refusals: Vec<Refusal>,
    },
    /// Inbound: verified and delivered to the back-office.
    Delivered(Header),
    /// Inbound: a copy of a document already delivered; not delivered again.
    DeliveredBefore(Header),
    /// Inbound: refused for good and parked.
    RefusedInbound {
        /// Its header, when readable.
        header: Option<Header>,
        /// The member state the transport authenticated.
        partner: Option<MemberState>,
        /// Why.
        refusals: Vec<Refusal>,
    },
    /// Inbound: one of the hub's own signed answers queued for the partner.
    Answered(Header),
    /// A transient failure (or another hub's claim): into a retry queue.
    Retried {
        /// The stage.
        stage: &'a str,
        /// The header, when readable.
        header: Option<&'a Header>,
        /// Attempts so far.
        attempts: u32,
        /// The delay before the next.
        delay_ms: u32,
        /// Why.
        reason: &'a str,
    },
    /// The retries are used up: parked (`RETRIES-EXHAUSTED`).
    GaveUp {
        /// The stage.
        stage: &'a str,
        /// The header, when readable.
        header: Option<&'a Header>,
        /// Attempts made.
        attempts: u32,
        /// The last failure.
        reason: &'a str,
    },
    /// The broker refused a publish for this delivery alone, or the hub failed on it (a
    /// panic, a body too large): parked with the refusal.
    Undeliverable {
        /// The stage.
        stage: &'a str,
        /// The trusted header, when there is one.
        header: Option<&'a Header>,
        /// Why.
        refusal: &'a Refusal,
    },
    /// An outcome no back-office takes: parked (stage `outcome`).
    OutcomeParked {
        /// The outcome's document.
        message_id: Option<Uuid>,
        /// `rejected`, `acknowledged`...
        outcome: &'a str,
        /// Its routing key.
        routing_key: &'a str,
        /// The refusal's code.
        code: &'a str,
    },
    /// Outbound: no receipt in time; reported to the back-office.
    AwaitingAck {
        /// The document's header.
        header: &'a Header,
        /// Seconds it waited.
        waited_seconds: i64,
    },
    /// Outbound: no receipt in time; resent to the partner.
    Resent {
        /// The document's header.
        header: &'a Header,
        /// Resends so far, this one included.
        resends: u32,
        /// Seconds it waited.
        waited_seconds: i64,
    },
}

impl Event<'_> {
    /// Writes the event's log line and bumps its counter.
    pub(crate) fn emit(&self, metrics: &Metrics) {
        match self {
            Event::Queued(h) => {
                count(
                    metrics,
                    Pipeline::Outbound,
                    DocumentOutcome::Queued,
                    Some(h.receiver),
                    Some(h),
                );
                info!(message_id = %h.message_id, receiver = %h.receiver, kind = %h.kind, "Signed and queued for the partner.");
            }
            Event::SentBefore { message_id, state } => {
                count(
                    metrics,
                    Pipeline::Outbound,
                    DocumentOutcome::Duplicate,
                    None,
                    None,
                );
                info!(%message_id, %state, "Duplicate of a document already sent; dropped.");
            }
            Event::RefusedOutbound { header, refusals } => {
                let partner = header.as_ref().map(|h| h.receiver);
                count(
                    metrics,
                    Pipeline::Outbound,
                    DocumentOutcome::Refused,
                    partner,
                    header.as_ref(),
                );
                warn!(message_id = ?header.as_ref().map(|h| h.message_id), reason = %summary(refusals), "Outbound document refused.");
            }
            Event::Delivered(h) => {
                count(
                    metrics,
                    Pipeline::Inbound,
                    DocumentOutcome::Delivered,
                    Some(h.sender),
                    Some(h),
                );
                info!(message_id = %h.message_id, sender = %h.sender, kind = %h.kind, "Verified and delivered to the back-office.");
            }
            Event::DeliveredBefore(h) => {
                count(
                    metrics,
                    Pipeline::Inbound,
                    DocumentOutcome::Duplicate,
                    Some(h.sender),
                    Some(h),
                );
                info!(message_id = %h.message_id, "Duplicate of a document already delivered; not delivered again.");
            }
            Event::RefusedInbound {
                header,
                partner,
                refusals,
            } => {
                count(
                    metrics,
                    Pipeline::Inbound,
                    DocumentOutcome::Refused,
                    *partner,
                    header.as_ref(),
                );
                warn!(
                    message_id = ?header.as_ref().map(|h| h.message_id),
                    partner = ?partner,
                    reason = %summary(refusals),
                    "Inbound document refused and parked."
                );
            }
            Event::Answered(h) => {
                count(
                    metrics,
                    Pipeline::Inbound,
                    DocumentOutcome::Answered,
                    Some(h.receiver),
                    Some(h),
                );
                info!(message_id = %h.message_id, kind = %h.kind, receiver = %h.receiver, "Answer queued for the partner.");
            }
            Event::Retried {
                stage,
                header,
                attempts,
                delay_ms,
                reason,
            } => {
                count_at(metrics, stage, DocumentOutcome::Retried, *header);
                warn!(
                    attempts,
                    delay_ms, reason, "Transient failure; retrying later."
                );
            }
            Event::GaveUp {
                stage,
                header,
                attempts,
                reason,
            } => {
                count_at(metrics, stage, DocumentOutcome::Parked, *header);
                warn!(attempts, reason, "Giving up on a delivery; parked.");
            }
            Event::Undeliverable {
                stage,
                header,
                refusal,
            } => {
                count_at(metrics, stage, DocumentOutcome::Undeliverable, *header);
                warn!(code = %refusal.code, reason = %refusal.text, "Cannot finish this delivery; parked.");
            }
            Event::OutcomeParked {
                message_id,
                outcome,
                routing_key,
                code,
            } => {
                count(
                    metrics,
                    Pipeline::Outbound,
                    DocumentOutcome::Undeliverable,
                    None,
                    None,
                );
                warn!(
                    ?message_id,
                    outcome, routing_key, code, "No back-office takes this outcome; parked."
                );
            }
            Event::AwaitingAck {
                header: h,
                waited_seconds,
            } => {
                count(
                    metrics,
                    Pipeline::Outbound,
                    DocumentOutcome::AwaitingAck,
                    Some(h.receiver),
                    Some(h),
                );
                warn!(message_id = %h.message_id, receiver = %h.receiver, kind = %h.kind, waited_seconds, "No receipt in time; reported to the back-office.");
            }
            Event::Resent {
                header: h,
                resends,
                waited_seconds,
            } => {
                count(
                    metrics,
                    Pipeline::Outbound,
                    DocumentOutcome::Resent,
                    Some(h.receiver),
                    Some(h),
                );
                info!(message_id = %h.message_id, receiver = %h.receiver, resends, waited_seconds, "No receipt in time; resent to the partner.");
            }
        }
    }
}

/// Counts an outcome of `stage`, under the partner the document was to (the outbound
/// pipeline, the push link) or from (inbound).
fn count_at(metrics: &Metrics, stage: &str, outcome: DocumentOutcome, header: Option<&Header>) {
    let pipeline = match stage {
        asw_route::names::stage::INBOUND => Pipeline::Inbound,
        _ => Pipeline::Outbound,
    };
    let partner = header.map(|h| match pipeline {
        Pipeline::Outbound => h.receiver,
        Pipeline::Inbound => h.sender,
    });
    count(metrics, pipeline, outcome, partner, header);
}

fn count(
    metrics: &Metrics,
    pipeline: Pipeline,
    outcome: DocumentOutcome,
    partner: Option<MemberState>,
    header: Option<&Header>,
) {
    metrics.document(pipeline, outcome, partner, header.map(|h| h.kind));
}
