//! The inbound flow: a partner's document from `asw.hub.inbound` is checked against its
//! transport identity, verified, validated and journaled on a worker (in
//! [`crate::steps::inbound`]), then delivered here to the back-office exchange, its answer's
//! outcome reported, the hub's signed receipt sent back, and the moves journaled; a refused one
//! is parked and, where due, answered with a signed rejection.
//!
//! The receipt means "reached a back-office": it is published only after the delivery was
//! confirmed, so a document no back-office queue takes (parked `DELIVERY-UNROUTABLE`) gets its
//! receipt when an operator's replay delivers it.

use asw_amqp::{HeaderValue, Message};
use asw_journal::{Direction, State};
use asw_model::bus::BUS_HEADER;
use asw_route::names;
use tracing::warn;

use crate::events::Event;
use crate::hub::record_span;
use crate::hub::{Inner, document_properties, journal_move, journal_moves, now, on_journal};
use crate::outbound::publish_own;
use crate::outcome::{Outcome, OutcomeReason};
use crate::park::{
    Attempt, Parking, attempts_so_far, envelope_of, original_routing_key, original_transport_user,
    park, planned, publish_outcome, retry,
};
use crate::publish::{Failure, LanePublisher};
use crate::steps::{self, InboundPlan, Send};

/// Handles one delivery of `asw.hub.inbound`; `Ok` means it may be acknowledged.
pub(crate) async fn inbound(
    inner: &Inner,
    publisher: &mut LanePublisher,
    message: &Message,
) -> Result<(), Failure> {
    let stage = names::stage::INBOUND;
    let started = now();
    let body = message.body.clone();
    let routing_key = original_routing_key(inner, message);
    let user_id = original_transport_user(inner, message);
    let abandoned = inner.abandoned.clone();
    let plan = on_journal(inner, move |w, j| {
        steps::inbound(
            w,
            j,
            &abandoned,
            &body,
            user_id.as_deref(),
            &routing_key,
            started,
        )
    })
    .await;
    let Some(plan) = planned(inner, publisher, message, stage, plan).await? else {
        return Ok(());
    };
    match plan {
        InboundPlan::Accept {
            header,
            signer,
            deliver,
            possible_duplicate,
            receipt,
            answer,
        } => {
            record_span(&header, header.sender);
            // A failure of the session leaves the claim to the redelivery at once; a refusal
            // parks the document (journaled `failed`, replayable).
            let failed = |e| {
                let failure = Failure::of(e, Some(&header));
                if matches!(failure, Failure::Session(_)) {
                    inner.abandoned.add(header.message_id);
                }
                failure
            };
            if deliver {
                let mut env = envelope_of(inner, message, Some(&header), stage, 1, started);
                env.signer = signer.0.code().to_owned();
                env.signer_fingerprint = signer.1.clone();
                let mut properties = document_properties(&header)
                    .with_header("x-asw-signer", signer.0.code())
                    .with_header("x-asw-signer-fingerprint", signer.1.as_str())
                    .with_header(BUS_HEADER, HeaderValue::Bytes(env.to_bytes()));
                if possible_duplicate {
                    properties = properties.with_header(names::HEADER_POSSIBLE_DUPLICATE, true);
                }
                let key = names::inbound_key(header.kind, header.sender);
                publisher
                    .publish(names::INBOUND_EXCHANGE, &key, &message.body, &properties)
                    .await
                    .map_err(failed)?;
            }
            // An answer's outcome is confirmed before the answer is journaled delivered: a copy
            // of an answer already delivered reports no outcome again, so the outcome of the
            // first must not be lost between the two (the connection failing, say). One that no
            // back-office takes parks the answer, whose replay reports it again.
            if let Some(answer) = answer {
                let mut outcome = Outcome::new(
                    answer.outcome,
                    Some(answer.original_id),
                    Some(answer.original_kind),
                    Some(answer.original_receiver),
                    started,
                );
                outcome.status = answer.status;
                outcome.answer_id = Some(header.message_id);
                outcome.reasons = answer
                    .reasons
                    .into_iter()
                    .map(|(code, text)| OutcomeReason { code, text })
                    .collect();
                publish_outcome(publisher, &outcome).await.map_err(failed)?;
            }
            // The receipt goes out after the delivery and before the moves are journaled, so
            // both moves share one commit. A crash in between sends the receipt again with the
            // redelivery: the same bytes under the same id, which the partner drops as a copy.
            if let Some(receipt) = &receipt {
                publish_own(publisher, receipt).await.map_err(failed)?;
            }
            let mut moves = Vec::with_capacity(2);
            if deliver {
                moves.push((Direction::Inbound, header.message_id, State::Delivered));
            }
            if let Some(receipt) = &receipt {
                moves.push((
                    Direction::Outbound,
                    receipt.header.message_id,
                    State::Queued,
                ));
            }
            if !moves.is_empty() {
                journal_moves(inner, moves).await;
            }
            if deliver {
                Event::Delivered(&header).emit(&inner.metrics);
            } else {
                Event::DeliveredBefore(&header).emit(&inner.metrics);
            }
            if let Some(receipt) = &receipt {
                Event::Answered(&receipt.header).emit(&inner.metrics);
            }
            Ok(())
        }
        InboundPlan::Refuse {
            header,
            refusals,
            rejection,
            authenticated,
        } => {
            Event::RefusedInbound {
                header: header.as_ref(),
                partner: authenticated,
                refusals: &refusals,
            }
            .emit(&inner.metrics);
            park(
                inner,
                publisher,
                message,
                Parking {
                    header: header.as_ref(),
                    stage,
                    refusals: &refusals,
                    attempts: attempts_so_far(inner, message).saturating_add(1),
                    started,
                },
            )
            .await?;
            if let Some(rejection) = rejection {
                send_own(inner, publisher, &rejection).await?;
            }
            Ok(())
        }
        InboundPlan::Wait(why) => {
            retry(inner, publisher, message, stage, &why, Attempt::Waiting).await
        }
        InboundPlan::Retry(why) => {
            retry(inner, publisher, message, stage, &why, Attempt::Failed).await
        }
    }
}

/// Publishes one of the hub's own signed answers to the partner queue and journals it queued.
/// One the broker refuses (no partner queue) is journaled `failed` and logged: the document it
/// answers is parked already.
async fn send_own(
    inner: &Inner,
    publisher: &mut LanePublisher,
    send: &Send,
) -> Result<(), Failure> {
    let id = send.header.message_id;
    match publish_own(publisher, send).await {
        Ok(()) => {
            journal_move(inner, Direction::Outbound, id, State::Queued).await;
            Event::Answered(&send.header).emit(&inner.metrics);
            Ok(())
        }
        Err(e) if e.is_refusal_of_the_message() => {
            warn!(message_id = %id, receiver = %send.header.receiver, error = %e, "The broker refused the hub's answer; journaled failed.");
            let reason = asw_journal::Reason::new(
                crate::publish::refusal_code(&e),
                crate::publish::bounded(&e.to_string(), crate::publish::MAX_REASON_BYTES),
            );
            let _ = on_journal(inner, move |_, j| {
                j.transition(Direction::Outbound, id, State::Failed, Some(&reason), now())
            })
            .await;
            Ok(())
        }
        Err(e) => Err(Failure::Session(e)),
    }
}
