//! Retry and park: where a delivery goes when it cannot be finished now (a retry queue, with its
//! attempts counted) or ever (the parking lot, with a stable reason code), and the outcomes that
//! tell the back-office.

use asw_amqp::{AmqpError, HeaderValue, Properties};
use asw_journal::{Direction, State};
use asw_model::Header;
use asw_model::bus::{BUS_HEADER, BusEnvelope};
use asw_route::names::{self, HEADER_EXCHANGE, HEADER_ROUTING_KEY, HEADER_TRANSPORT_USER};
use time::OffsetDateTime;
use tracing::warn;
use uuid::Uuid;

use crate::events::Event;
use crate::hub::{Inner, now, on_journal};
use crate::incoming::{Incoming, envelope};
use crate::outcome::{Outcome, OutcomeReason};
use crate::process::{Refusal, summary};
use crate::publish::{Failure, LanePublisher, MAX_REASON_BYTES, bounded, refusal_code};

/// Whether a retry counts as a failed attempt.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Attempt {
    /// A transient failure: counted, backed off, parked once the attempts are used up.
    Failed,
    /// Another consumer holds the message's claim: looked at again after the shortest delay,
    /// not counted (the claim lease bounds the wait).
    Waiting,
}

/// Settles a delivery that failed transiently: into the stage's retry queue with the next
/// back-off delay and its attempts counted, or, once the attempts are used up, into the parking
/// lot (and, outbound, a `failed` outcome to the back-office). The caller acknowledges it.
pub(crate) async fn retry(
    inner: &Inner,
    publisher: &mut LanePublisher,
    incoming: &Incoming,
    stage: &str,
    why: &str,
    kind: Attempt,
) -> Result<(), Failure> {
    let started = now();
    let header = Header::read(&incoming.body, &inner.config.limits.document).ok();
    let (attempts, delay) = match kind {
        Attempt::Failed => {
            let attempts = incoming.attempts().saturating_add(1);
            (attempts, inner.config.retry.delay_after(attempts))
        }
        Attempt::Waiting => (
            incoming.attempts(),
            inner.config.retry.delays_ms.first().copied(),
        ),
    };
    let Some(delay) = delay else {
        let refusal = Refusal {
            code: "RETRIES-EXHAUSTED".into(),
            text: format!("gave up after {attempts} attempts; last failure: {why}"),
        };
        Event::GaveUp {
            stage,
            header: header.as_ref(),
            attempts,
            reason: why,
        }
        .emit(&inner.metrics);
        return give_up(
            inner,
            publisher,
            incoming,
            header.as_ref(),
            stage,
            refusal,
            attempts,
        )
        .await;
    };
    Event::Retried {
        stage,
        header: header.as_ref(),
        attempts,
        delay_ms: delay,
        reason: why,
    }
    .emit(&inner.metrics);
    let why = bounded(why, MAX_REASON_BYTES);
    let mut env = incoming.envelope(header.as_ref(), stage, attempts, started);
    env.reason = why.clone();
    let mut properties = Properties::new()
        .with_user_id(inner.own_user.as_str())
        .with_content_type(incoming.content_type.as_str())
        .with_header(
            names::HEADER_ATTEMPTS,
            HeaderValue::Int(i64::from(attempts)),
        )
        .with_header(names::HEADER_STAGE, stage)
        .with_header(names::HEADER_REASON, why)
        .with_header(HEADER_ROUTING_KEY, incoming.routing_key.as_str())
        .with_header(BUS_HEADER, HeaderValue::Bytes(env.to_bytes()));
    if let Some(user) = &incoming.transport_user {
        properties = properties.with_header(HEADER_TRANSPORT_USER, user.as_str());
    }
    if let Some(id) = &incoming.message_id {
        properties = properties.with_message_id(id.clone());
    }
    publisher
        .publish(
            "",
            &names::retry_queue(stage, delay),
            &incoming.body,
            &properties,
        )
        .await
        .map_err(Failure::from)
}

/// Parks a delivery the hub gives up on (`refusal` says why): journaled `failed` where it has
/// a journal entry, parked, and outbound a `failed` outcome for the back-office.
async fn give_up(
    inner: &Inner,
    publisher: &mut LanePublisher,
    incoming: &Incoming,
    header: Option<&Header>,
    stage: &str,
    refusal: Refusal,
    attempts: u32,
) -> Result<(), Failure> {
    let started = now();
    park(
        publisher,
        incoming,
        Parking {
            header,
            stage,
            refusals: std::slice::from_ref(&refusal),
            attempts,
            started,
        },
    )
    .await?;
    if let Some(h) = header {
        let direction = if outward(stage) {
            Direction::Outbound
        } else {
            Direction::Inbound
        };
        let (id, reason) = (
            h.message_id,
            asw_journal::Reason::new(refusal.code.clone(), refusal.text.clone()),
        );
        let moved = on_journal(inner, move |_, j| {
            j.transition(direction, id, State::Failed, Some(&reason), now())
        })
        .await;
        if !matches!(moved, Ok(Ok(_))) {
            warn!(message_id = %id, "Cannot journal a parked delivery as failed; the parking lot holds it.");
        }
    }
    if outward(stage) {
        let mut outcome = Outcome::new(
            "failed",
            header.map(|h| h.message_id),
            header.map(|h| h.kind),
            header.map(|h| h.receiver),
            started,
        );
        outcome.reasons = vec![OutcomeReason::from(&refusal)];
        notify(inner, publisher, &outcome).await?;
    }
    Ok(())
}

/// Parks a delivery whose publish the broker refused for that message alone
/// ([`Failure::Refused`]): `DELIVERY-UNROUTABLE` when nothing is bound for it, otherwise
/// `PUBLISH-REFUSED`. If even the parking lot refuses it (it cannot be the reason, which is
/// bounded), it is parked with its routing headers only; failing that, it is returned to its
/// queue, whose delivery limit then dead-letters it.
pub(crate) async fn park_refused(
    inner: &Inner,
    publisher: &mut LanePublisher,
    incoming: &Incoming,
    stage: &str,
    error: &AmqpError,
    header: Option<&Header>,
) -> Result<Parked, AmqpError> {
    let refusal = Refusal {
        code: refusal_code(error).into(),
        text: bounded(&asw_amqp::error_chain(error), MAX_REASON_BYTES),
    };
    park_failure(inner, publisher, incoming, stage, refusal, header).await
}

/// Parks a delivery the hub cannot finish for a reason of its own (`refusal`: a refused
/// publish, a panic, a body over the size limit), as [`park_refused`] does.
pub(crate) async fn park_failure(
    inner: &Inner,
    publisher: &mut LanePublisher,
    incoming: &Incoming,
    stage: &str,
    refusal: Refusal,
    header: Option<&Header>,
) -> Result<Parked, AmqpError> {
    Event::Undeliverable {
        stage,
        header,
        refusal: &refusal,
    }
    .emit(&inner.metrics);
    let attempts = incoming.attempts().saturating_add(1);
    match give_up(inner, publisher, incoming, header, stage, refusal, attempts).await {
        Ok(()) => Ok(Parked::WithReason),
        Err(Failure::Session(e)) => Err(e),
        Err(Failure::Refused { error, .. }) => {
            warn!(error = %error, "The parking lot refused a delivery; parking it bare.");
            park_bare(publisher, incoming, stage).await
        }
        Err(Failure::Fault(refusal)) => {
            warn!(reason = %refusal.text, "Parking a delivery failed; parking it bare.");
            park_bare(publisher, incoming, stage).await
        }
    }
}

/// How a refused delivery ended up.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Parked {
    /// In the parking lot with its reason.
    WithReason,
    /// In the parking lot with its routing headers only.
    Bare,
    /// Refused by the parking lot too: the caller returns it to its queue.
    Refused,
}

async fn park_bare(
    publisher: &mut LanePublisher,
    incoming: &Incoming,
    stage: &str,
) -> Result<Parked, AmqpError> {
    let properties = Properties::new()
        .with_content_type(incoming.content_type.as_str())
        .with_header(names::HEADER_STAGE, stage)
        .with_header(names::HEADER_REASON_CODE, crate::publish::REFUSED)
        .with_header(HEADER_ROUTING_KEY, bounded(&incoming.routing_key, 255));
    match publisher
        .publish("", names::PARKED_QUEUE, &incoming.body, &properties)
        .await
    {
        Ok(()) => Ok(Parked::Bare),
        Err(e) if e.is_refusal_of_the_message() => Ok(Parked::Refused),
        Err(e) => Err(e),
    }
}

/// True for the stages of documents going out (the outbound pipeline, the push link), whose
/// back-office is told when they fail.
fn outward(stage: &str) -> bool {
    stage == names::stage::OUTBOUND || names::partner_of_link_stage(stage).is_some()
}

/// What a parked message's headers say about it.
pub(crate) struct Parking<'a> {
    /// Its header, when readable.
    pub header: Option<&'a Header>,
    /// The stage it failed in.
    pub stage: &'a str,
    /// Why.
    pub refusals: &'a [Refusal],
    /// Attempts made.
    pub attempts: u32,
    /// When the failing attempt started.
    pub started: OffsetDateTime,
}

/// Parks a delivery with headers naming stage, reason and attempts. Where it came from is
/// recorded as the pipeline resolved it, so a header a partner set itself is never passed on as
/// trusted (a replay publishes these headers with the hub's own user). The reason in the
/// headers is bounded ([`MAX_REASON_BYTES`]); the journal keeps every problem.
pub(crate) async fn park(
    publisher: &mut LanePublisher,
    incoming: &Incoming,
    why: Parking<'_>,
) -> Result<(), Failure> {
    let Parking {
        header,
        stage,
        refusals,
        attempts,
        started,
    } = why;
    let mut properties = parked_properties(Lot {
        content_type: &incoming.content_type,
        stage,
        code: refusals
            .first()
            .map(|r| r.code.as_str())
            .unwrap_or_default(),
        reason: &summary(refusals),
        attempts,
        at: started,
        routing_key: &incoming.routing_key,
        exchange: &incoming.exchange,
        envelope: incoming.envelope(header, stage, attempts, started),
        message_id: header.map(|h| h.message_id),
    });
    if let Some(user) = &incoming.transport_user {
        properties = properties.with_header(HEADER_TRANSPORT_USER, user.as_str());
    }
    if let Some(h) = header {
        properties = properties.with_message_id(h.message_id.to_string());
    }
    publisher
        .publish("", names::PARKED_QUEUE, &incoming.body, &properties)
        .await
        .map_err(|e| Failure::of(e, header))
}

/// Where a message goes into the parking lot from, and why: what its headers say.
struct Lot<'a> {
    content_type: &'a str,
    stage: &'a str,
    code: &'a str,
    reason: &'a str,
    attempts: u32,
    at: OffsetDateTime,
    routing_key: &'a str,
    exchange: &'a str,
    envelope: BusEnvelope,
    message_id: Option<Uuid>,
}

/// The properties of a message put into the parking lot (a delivery, or an outcome no
/// back-office takes): stage, bounded reason and its code, attempts, when, where it was going,
/// and the bus envelope saying the same.
fn parked_properties(lot: Lot<'_>) -> Properties {
    let reason = bounded(lot.reason, MAX_REASON_BYTES);
    let code = bounded(lot.code, 64);
    let mut env = lot.envelope;
    env.reason_code = code.clone();
    env.reason = reason.clone();
    let mut properties = Properties::new()
        .with_content_type(lot.content_type)
        .with_header(names::HEADER_STAGE, lot.stage)
        .with_header(names::HEADER_REASON, reason)
        .with_header(names::HEADER_REASON_CODE, code)
        .with_header(
            names::HEADER_ATTEMPTS,
            HeaderValue::Int(i64::from(lot.attempts)),
        )
        .with_header(
            names::HEADER_PARKED_AT,
            asw_model::document::format_timestamp(lot.at),
        )
        .with_header(HEADER_ROUTING_KEY, lot.routing_key)
        .with_header(HEADER_EXCHANGE, lot.exchange)
        .with_header(BUS_HEADER, HeaderValue::Bytes(env.to_bytes()));
    if let Some(id) = lot.message_id {
        properties = properties.with_header(names::HEADER_MESSAGE_ID, id.to_string());
    }
    properties
}

/// Publishes an outcome to the back-office, confirmed.
pub(crate) async fn publish_outcome(
    publisher: &mut LanePublisher,
    outcome: &Outcome,
) -> Result<(), AmqpError> {
    let mut properties = Properties::new()
        .with_content_type("application/json")
        .with_header(names::HEADER_OUTCOME, outcome.outcome);
    if let Some(id) = outcome.message_id {
        properties = properties.with_header(names::HEADER_MESSAGE_ID, id.to_string());
    }
    publisher
        .publish(
            names::INBOUND_EXCHANGE,
            &outcome.routing_key(),
            &outcome.to_json(),
            &properties,
        )
        .await
}

/// Tells the back-office an outcome. One that no back-office queue is bound for (or that the
/// broker refuses) is parked itself, in stage `outcome` with its routing key, so it is listed
/// and can be replayed once a queue is bound; only a failed session is an error.
pub(crate) async fn notify(
    inner: &Inner,
    publisher: &mut LanePublisher,
    outcome: &Outcome,
) -> Result<(), AmqpError> {
    let error = match publish_outcome(publisher, outcome).await {
        Ok(()) => return Ok(()),
        Err(e) if e.is_refusal_of_the_message() => e,
        Err(e) => return Err(e),
    };
    let code = refusal_code(&error);
    let routing_key = outcome.routing_key();
    Event::OutcomeParked {
        message_id: outcome.message_id,
        outcome: outcome.outcome,
        routing_key: &routing_key,
        code,
    }
    .emit(&inner.metrics);
    let at = now();
    let mut env = envelope(None, names::stage::OUTCOME, 1, at);
    env.message_id = outcome
        .message_id
        .map(|id| id.to_string())
        .unwrap_or_default();
    let properties = parked_properties(Lot {
        content_type: "application/json",
        stage: names::stage::OUTCOME,
        code,
        reason: &asw_amqp::error_chain(&error),
        attempts: 1,
        at,
        routing_key: &routing_key,
        exchange: names::INBOUND_EXCHANGE,
        envelope: env,
        message_id: outcome.message_id,
    })
    .with_header(names::HEADER_OUTCOME, outcome.outcome);
    match publisher
        .publish("", names::PARKED_QUEUE, &outcome.to_json(), &properties)
        .await
    {
        Ok(()) => Ok(()),
        Err(e) if e.is_refusal_of_the_message() => {
            warn!(error = %e, "The parking lot refused an outcome; it is only in this log.");
            Ok(())
        }
        Err(e) => Err(e),
    }
}
