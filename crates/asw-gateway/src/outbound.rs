//! The outbound flow: a back-office document from `asw.hub.outbound` is validated, checked and
//! signed on a worker and journaled (in [`crate::steps::outbound`]), then published here to the
//! partner queue and journaled `queued`; a refused one is parked and its back-office told.

use asw_amqp::Message;
use asw_journal::{Direction, State};
use asw_route::names;

use crate::events::Event;
use crate::hub::{Inner, document_properties, journal_move, now, on_journal, record_span};
use crate::outcome::{Outcome, OutcomeReason};
use crate::park::{
    Attempt, Parking, attempts_so_far, notify, original_routing_key, park, planned, retry,
};
use crate::process::PANIC;
use crate::publish::{Failure, LanePublisher};
use crate::steps::JOURNAL;
use crate::steps::{self, OutboundPlan, Send};

/// Handles one delivery of `asw.hub.outbound`; `Ok` means it may be acknowledged.
pub(crate) async fn outbound(
    inner: &Inner,
    publisher: &mut LanePublisher,
    message: &Message,
) -> Result<(), Failure> {
    let stage = names::stage::OUTBOUND;
    let started = now();
    let body = message.body.clone();
    let routing_key = original_routing_key(inner, message);
    let abandoned = inner.abandoned.clone();
    let plan = on_journal(inner, move |w, j| {
        steps::outbound(w, j, &abandoned, &body, &routing_key, started)
    })
    .await;
    let Some(plan) = planned(inner, publisher, message, stage, plan).await? else {
        return Ok(());
    };
    match plan {
        OutboundPlan::Publish(send) => {
            record_span(&send.header, send.header.receiver);
            let id = send.header.message_id;
            publish_own(publisher, &send).await.map_err(|e| {
                let failure = Failure::of(e, Some(&send.header));
                if matches!(failure, Failure::Session(_)) {
                    inner.abandoned.add(id);
                }
                failure
            })?;
            journal_move(inner, Direction::Outbound, id, State::Queued).await;
            Event::Queued(&send.header).emit(&inner.metrics);
            Ok(())
        }
        OutboundPlan::Duplicate { message_id, state } => {
            Event::SentBefore { message_id, state }.emit(&inner.metrics);
            Ok(())
        }
        OutboundPlan::Refuse { header, refusals } => {
            Event::RefusedOutbound {
                header: header.as_ref(),
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
            // A fault of the hub's own (a panic, a journal that refuses to work) is no verdict
            // on the document: `failed`, not `rejected`.
            let said = if refusals
                .iter()
                .any(|r| r.code == PANIC || r.code == JOURNAL)
            {
                "failed"
            } else {
                "rejected"
            };
            let mut outcome = Outcome::new(
                said,
                header.as_ref().map(|h| h.message_id),
                header.as_ref().map(|h| h.kind),
                header.as_ref().map(|h| h.receiver),
                started,
            );
            outcome.reasons = refusals.iter().map(OutcomeReason::from).collect();
            notify(inner, publisher, &outcome).await
        }
        OutboundPlan::Wait(why) => {
            retry(inner, publisher, message, stage, &why, Attempt::Waiting).await
        }
        OutboundPlan::Retry(why) => {
            retry(inner, publisher, message, stage, &why, Attempt::Failed).await
        }
    }
}

/// Publishes a document the hub signed (an outbound document or one of its own answers) to the
/// partner queue, confirmed.
pub(crate) async fn publish_own(
    publisher: &mut LanePublisher,
    send: &Send,
) -> Result<(), asw_amqp::AmqpError> {
    publisher
        .publish(
            names::PARTNER_OUT_EXCHANGE,
            send.header.receiver.code(),
            &send.bytes,
            &document_properties(&send.header),
        )
        .await
}
