//! The one executor: carries out any delivery's [`Plan`], in an order that leaves no gap. Its
//! publishes first, each confirmed before the next; then the journal moves they stand for, in
//! one commit, retried until they hold; then its event; then the delivery is settled (acked,
//! put in a retry queue, or parked). A crash anywhere before the settle leaves the delivery
//! unacknowledged, and the journal makes its second pass harmless.

use asw_amqp::{AmqpError, HeaderValue, Properties};
use asw_journal::{Direction, State};
use asw_model::Header;
use asw_model::bus::BUS_HEADER;
use asw_route::names;
use time::OffsetDateTime;
use tracing::warn;

use crate::events::Event;
use crate::hub::{Inner, on_journal};
use crate::incoming::Incoming;
use crate::metrics::JournalOperation;
use crate::mover::Moved;
use crate::park::{Attempt, Parking, notify, park, publish_outcome, retry};
use crate::plan::{Move, Plan, Publish, Settle};
use crate::pool::PoolError;
use crate::process::{Refusal, Signed, panicked};
use crate::publish::{Failure, LanePublisher, MAX_REASON_BYTES, bounded, refusal_code};

/// The plan a step returned; or, when the step could not run, a retry (the step threads were
/// stopping) or the fault that parks the delivery (the step panicked: [`Failure::Fault`]).
pub(crate) fn planned(ran: Result<Plan, PoolError>) -> Result<Plan, Refusal> {
    match ran {
        Ok(plan) => Ok(plan),
        Err(PoolError::Panicked(text)) => Err(panicked(text)),
        Err(e @ PoolError::Closed) => Ok(Plan::retry(e.to_string())),
    }
}

/// Carries out `plan` for the delivery `incoming` at `stage`, whose handling started at
/// `started`. `Ok` means the delivery may be acknowledged; a publish the broker refused is
/// [`Failure::Refused`] (the caller parks the delivery), a failed session
/// [`Failure::Session`].
pub(crate) async fn execute(
    inner: &Inner,
    publisher: &mut LanePublisher,
    incoming: &Incoming,
    stage: &str,
    started: OffsetDateTime,
    plan: Plan,
) -> Result<(), Failure> {
    let Plan {
        header,
        claims,
        publishes,
        event,
        settle,
    } = plan;
    if let Some(h) = &header {
        let partner = if h.sender == inner.config.country {
            h.receiver
        } else {
            h.sender
        };
        crate::hub::record_span(h, partner);
    }
    let mut moves = Vec::with_capacity(publishes.len());
    let mut answered = Vec::new();
    for publish in &publishes {
        let published = match publish {
            Publish::Document(signed) | Publish::Receipt(signed) | Publish::Rejection(signed) => {
                to_partner(inner, publisher, signed).await
            }
            Publish::Deliver {
                verified,
                possible_duplicate,
            } => {
                let header = verified.header();
                let mut env = incoming.envelope(Some(header), stage, 1, started);
                env.signer = verified.signer().code().to_owned();
                env.signer_fingerprint = verified.fingerprint().to_owned();
                let mut properties = document_properties(header)
                    .with_header("x-asw-signer", verified.signer().code())
                    .with_header("x-asw-signer-fingerprint", verified.fingerprint())
                    .with_header(BUS_HEADER, HeaderValue::Bytes(env.to_bytes()));
                if *possible_duplicate {
                    properties = properties.with_header(names::HEADER_POSSIBLE_DUPLICATE, true);
                }
                let key = names::inbound_key(header.kind, header.sender);
                publisher
                    .publish(names::INBOUND_EXCHANGE, &key, verified.bytes(), &properties)
                    .await
            }
            Publish::Answer(outcome) => publish_outcome(publisher, outcome).await,
            Publish::Notify(outcome) => notify(inner, publisher, outcome).await,
        };
        match published {
            Ok(()) => {
                moves.extend(publish.confirmed());
                if let Publish::Receipt(signed) | Publish::Rejection(signed) = publish {
                    answered.push(signed.header.clone());
                }
            }
            // The hub's rejection of a document parked anyway: journaled failed, and on.
            Err(e) if e.is_refusal_of_the_message() && matches!(publish, Publish::Rejection(_)) => {
                let Publish::Rejection(signed) = publish else {
                    continue;
                };
                let id = signed.header.message_id;
                warn!(message_id = %id, receiver = %signed.header.receiver, error = %e, "The broker refused the hub's answer; journaled failed.");
                let reason = asw_journal::Reason::new(
                    refusal_code(&e),
                    bounded(&e.to_string(), MAX_REASON_BYTES),
                );
                moves.push(Move {
                    reason: Some(reason),
                    ..Move::new(Direction::Outbound, id, State::Failed)
                });
            }
            Err(e) => {
                let failure = Failure::of(e, header.as_ref());
                // A failure of the session leaves the claim to the redelivery at once; a
                // refusal parks the document (journaled `failed`, replayable).
                if let (Failure::Session(_), true, Some(h)) = (&failure, claims, &header) {
                    inner.abandoned.add(h.message_id);
                }
                return Err(failure);
            }
        }
    }
    journal_moves(inner, moves).await;
    if let Some(event) = event {
        event.emit(&inner.metrics);
    }
    for header in answered {
        Event::Answered(header).emit(&inner.metrics);
    }
    match settle {
        Settle::Ack => Ok(()),
        Settle::Retry(why) => retry(inner, publisher, incoming, stage, &why, Attempt::Failed).await,
        Settle::Wait(why) => retry(inner, publisher, incoming, stage, &why, Attempt::Waiting).await,
        Settle::Park { header, refusals } => {
            let parking = Parking {
                header: header.as_ref(),
                stage,
                refusals: &refusals,
                attempts: incoming.attempts().saturating_add(1),
                started,
            };
            park(publisher, incoming, parking).await
        }
    }
}

/// Publishes a document the hub signed (an outbound document or one of its own answers) to the
/// partner queue, confirmed: `asw.partner.out` with the partner's key, or its IPPC key when the
/// document's channel is the IPPC ePhyto Hub ([`partner_key`]).
pub(crate) async fn to_partner(
    inner: &Inner,
    publisher: &mut LanePublisher,
    signed: &Signed,
) -> Result<(), AmqpError> {
    publisher
        .publish(
            names::PARTNER_OUT_EXCHANGE,
            &partner_key(inner, &signed.header),
            &signed.bytes,
            &document_properties(&signed.header),
        )
        .await
}

/// The routing key in `asw.partner.out` of a document: `<CC>` (the partner's channel), or
/// `<CC>.ippc` when the partners file sends its kind to the receiver through the IPPC ePhyto
/// Hub (the hub's IPPC channel reads `asw.ippc.out.<CC>`).
pub(crate) fn partner_key(inner: &Inner, header: &Header) -> String {
    if inner.config.via_ippc(header.receiver, header.kind.as_str()) {
        names::ippc_out_key(header.receiver)
    } else {
        header.receiver.code().to_owned()
    }
}

/// The properties of a document: its message id (property and header), XML, and its
/// correlation id when it answers another.
pub(crate) fn document_properties(header: &Header) -> Properties {
    let mut properties = Properties::new()
        .with_message_id(header.message_id.to_string())
        .with_content_type(names::CONTENT_TYPE_XML)
        .with_header(names::HEADER_MESSAGE_ID, header.message_id.to_string());
    if let Some(c) = header.correlation_id {
        properties = properties.with_correlation_id(c.to_string());
    }
    properties
}

/// Journals moves after the broker confirmed what they stand for, in one commit: the mover's
/// next batch ([`crate::mover`]: one commit with the moves of the other deliveries then). A move
/// that fails transiently is retried, with back-off, until it holds: the broker has the message
/// already, and a journal left behind (`signed` for a document queued, say) is never caught up
/// by anything else. Only a move the journal refuses (against [`asw_journal::TRANSITIONS`]) or
/// a permanent error is logged and dropped; a stopping hub leaves it to the redelivery.
pub(crate) async fn journal_moves(inner: &Inner, moves: Vec<Move>) {
    let backoff = asw_amqp::Backoff::default();
    let mut pending = moves;
    let mut failures = 0u32;
    while !pending.is_empty() {
        let Moved { results, committed } = match apply(inner, pending.clone()).await {
            Ok(moved) => moved,
            Err(e) => {
                inner.metrics.journal_error(JournalOperation::Move);
                warn!(error = %e, "Cannot journal a move; the redelivery will.");
                return;
            }
        };
        let mut retry = Vec::new();
        match committed {
            Err(e) if e.transient => retry = pending.clone(),
            Err(e) => {
                inner.metrics.journal_error(JournalOperation::Move);
                warn!(error = %e, "Cannot journal a move.");
            }
            Ok(()) => {
                for (m, moved) in pending.iter().zip(results) {
                    match moved {
                        Ok(t) if t.reached() => {}
                        Ok(t) => {
                            warn!(message_id = %m.id, to = %m.to, outcome = ?t, "Journal refused a move.");
                        }
                        Err(e) if e.is_transient() => retry.push(m.clone()),
                        Err(e) => {
                            inner.metrics.journal_error(JournalOperation::Move);
                            warn!(message_id = %m.id, to = %m.to, error = %e, "Cannot journal a move.");
                        }
                    }
                }
            }
        }
        if !retry.is_empty() {
            failures = failures.saturating_add(1);
            inner.metrics.journal_error(JournalOperation::Move);
            warn!(
                moves = retry.len(),
                failures, "Cannot journal a move yet; retrying until it holds."
            );
            tokio::time::sleep(backoff.pause(failures)).await;
        }
        pending = retry;
    }
}

/// Journals `moves` in the mover's next batch, or on a step thread when the hub runs no mover
/// ([`crate::mover`]).
async fn apply(inner: &Inner, moves: Vec<Move>) -> Result<Moved, PoolError> {
    match &inner.mover {
        Some(mover) => mover.apply(moves).await,
        None => {
            on_journal(inner, move |_, j| {
                crate::mover::journal(j, moves.iter(), moves.len())
            })
            .await
        }
    }
}

/// Journals one move after the broker confirmed what it stands for (see [`journal_moves`]).
pub(crate) async fn journal_move(inner: &Inner, direction: Direction, id: uuid::Uuid, to: State) {
    journal_moves(inner, vec![Move::new(direction, id, to)]).await;
}
