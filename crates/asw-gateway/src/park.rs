//! Retry and park: where a delivery goes when it cannot be finished now (a retry queue, with its
//! attempts counted) or ever (the parking lot, with a stable reason code), and the outcomes that
//! tell the back-office. Also what the hub believes of the `x-asw-*` headers a delivery carries:
//! only those of messages the hub itself published.

use asw_amqp::{AmqpError, HeaderValue, Message, Properties};
use asw_journal::{Direction, State};
use asw_model::Header;
use asw_model::bus::{BUS_HEADER, BusEnvelope};
use asw_route::names::{self, HEADER_EXCHANGE, HEADER_ROUTING_KEY, HEADER_TRANSPORT_USER};
use time::OffsetDateTime;
use tracing::warn;

use crate::events::Event;
use crate::hub::{Inner, now, on_journal};
use crate::outcome::{Outcome, OutcomeReason};
use crate::pool::PoolError;
use crate::process::{Refusal, panicked, summary};
use crate::publish::{Failure, LanePublisher, MAX_REASON_BYTES, bounded, refusal_code};

/// True if the hub itself published this delivery (a retry, a replay): only then are its
/// `x-asw-*` steering headers believed. The broker checks `user_id` against the connection's
/// user, so no partner or back-office with a user of its own can forge it.
pub(crate) fn moved_by_us(inner: &Inner, message: &Message) -> bool {
    message.properties.user_id.as_deref() == Some(inner.own_user.as_str())
}

/// The broker user that published a delivery to the hub: its validated `user_id`, or, on a
/// message the hub itself moved, the original publisher kept in a header.
pub(crate) fn original_transport_user(inner: &Inner, message: &Message) -> Option<String> {
    if moved_by_us(inner, message) {
        return message
            .properties
            .header(HEADER_TRANSPORT_USER)
            .and_then(HeaderValue::as_str)
            .map(str::to_owned);
    }
    message.properties.user_id.clone()
}

/// The routing key a delivery stands for: its own, or the original one when the hub moved it
/// through a retry queue (it then comes back with the stage queue's name).
pub(crate) fn original_routing_key(inner: &Inner, message: &Message) -> String {
    match message
        .properties
        .header(HEADER_ROUTING_KEY)
        .and_then(HeaderValue::as_str)
    {
        Some(key) if moved_by_us(inner, message) => key.to_owned(),
        _ => message.routing_key.clone(),
    }
}

/// The bus envelope a delivery carries, if the hub itself published it (a retry): the one
/// source of its attempts, stage and first sighting. `None` for anything a partner or
/// back-office published, whatever header it set.
pub(crate) fn carried_envelope(inner: &Inner, message: &Message) -> Option<BusEnvelope> {
    if !moved_by_us(inner, message) {
        return None;
    }
    match message.properties.header(BUS_HEADER)? {
        HeaderValue::Bytes(bytes) => BusEnvelope::from_bytes(bytes).ok(),
        _ => None,
    }
}

/// Attempts made so far, as the hub counted them on its own retries (in the envelope it
/// carries); 0 for a first sighting.
pub(crate) fn attempts_so_far(inner: &Inner, message: &Message) -> u32 {
    carried_envelope(inner, message).map_or(0, |e| e.attempts)
}

/// The bus envelope of a delivery at `stage`, keeping the first sighting of the one it carried.
pub(crate) fn envelope_of(
    inner: &Inner,
    message: &Message,
    header: Option<&Header>,
    stage: &str,
    attempts: u32,
    started: OffsetDateTime,
) -> BusEnvelope {
    let mut env = envelope(header, stage, attempts, started);
    if let Some(first) = carried_envelope(inner, message)
        .map(|e| e.first_seen_unix_ms)
        .filter(|&ms| ms > 0)
    {
        env.first_seen_unix_ms = first;
    }
    env
}

/// A new bus envelope of a delivery first seen at `started`.
pub(crate) fn envelope(
    header: Option<&Header>,
    stage: &str,
    attempts: u32,
    started: OffsetDateTime,
) -> BusEnvelope {
    let ms = |t: OffsetDateTime| i64::try_from(t.unix_timestamp_nanos() / 1_000_000).unwrap_or(0);
    BusEnvelope {
        message_id: header.map(|h| h.message_id.to_string()).unwrap_or_default(),
        stage: stage.to_owned(),
        attempts,
        first_seen_unix_ms: ms(started),
        stage_started_unix_ms: ms(started),
        ..BusEnvelope::default()
    }
}

/// Whether a retry counts as a failed attempt.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Attempt {
    /// A transient failure: counted, backed off, parked once the attempts are used up.
    Failed,
    /// Another consumer holds the message's claim: looked at again after the shortest delay,
    /// not counted (the claim lease bounds the wait).
    Waiting,
}

/// The plan a delivery's step returned; or, when the step could not run, the delivery settled
/// here (`None`: put in a retry queue, as the worker pool was stopping) or its failure (a panic
/// in the step parks it).
pub(crate) async fn planned<P>(
    inner: &Inner,
    publisher: &mut LanePublisher,
    message: &Message,
    stage: &str,
    ran: Result<P, PoolError>,
) -> Result<Option<P>, Failure> {
    match ran {
        Ok(plan) => Ok(Some(plan)),
        Err(PoolError::Panicked(text)) => Err(Failure::Fault(panicked(text))),
        Err(e @ PoolError::Closed) => {
            retry(
                inner,
                publisher,
                message,
                stage,
                &e.to_string(),
                Attempt::Failed,
            )
            .await?;
            Ok(None)
        }
    }
}

/// Settles a delivery that failed transiently: into the stage's retry queue with the next
/// back-off delay and its attempts counted, or, once the attempts are used up, into the parking
/// lot (and, outbound, a `failed` outcome to the back-office). The caller acknowledges it.
pub(crate) async fn retry(
    inner: &Inner,
    publisher: &mut LanePublisher,
    message: &Message,
    stage: &str,
    why: &str,
    kind: Attempt,
) -> Result<(), Failure> {
    let started = now();
    let header = Header::read(&message.body, &inner.config.limits.document).ok();
    let (attempts, delay) = match kind {
        Attempt::Failed => {
            let attempts = attempts_so_far(inner, message).saturating_add(1);
            (attempts, inner.config.retry.delay_after(attempts))
        }
        Attempt::Waiting => (
            attempts_so_far(inner, message),
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
            message,
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
    let mut env = envelope_of(inner, message, header.as_ref(), stage, attempts, started);
    env.reason = why.clone();
    let mut properties = Properties::new()
        .with_user_id(inner.own_user.as_str())
        .with_content_type(content_type(message))
        .with_header(
            names::HEADER_ATTEMPTS,
            HeaderValue::Int(i64::from(attempts)),
        )
        .with_header(names::HEADER_STAGE, stage)
        .with_header(names::HEADER_REASON, why)
        .with_header(HEADER_ROUTING_KEY, original_routing_key(inner, message))
        .with_header(BUS_HEADER, HeaderValue::Bytes(env.to_bytes()));
    if let Some(user) = original_transport_user(inner, message) {
        properties = properties.with_header(HEADER_TRANSPORT_USER, user);
    }
    if let Some(id) = &message.properties.message_id {
        properties = properties.with_message_id(id.clone());
    }
    publisher
        .publish(
            "",
            &names::retry_queue(stage, delay),
            &message.body,
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
    message: &Message,
    header: Option<&Header>,
    stage: &str,
    refusal: Refusal,
    attempts: u32,
) -> Result<(), Failure> {
    let started = now();
    park(
        inner,
        publisher,
        message,
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
    message: &Message,
    stage: &str,
    error: &AmqpError,
    header: Option<&Header>,
) -> Result<Parked, AmqpError> {
    let refusal = Refusal {
        code: refusal_code(error).into(),
        text: bounded(&asw_amqp::error_chain(error), MAX_REASON_BYTES),
    };
    park_failure(inner, publisher, message, stage, refusal, header).await
}

/// Parks a delivery the hub cannot finish for a reason of its own (`refusal`: a refused
/// publish, a panic, a body over the size limit), as [`park_refused`] does.
pub(crate) async fn park_failure(
    inner: &Inner,
    publisher: &mut LanePublisher,
    message: &Message,
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
    let attempts = attempts_so_far(inner, message).saturating_add(1);
    match give_up(inner, publisher, message, header, stage, refusal, attempts).await {
        Ok(()) => Ok(Parked::WithReason),
        Err(Failure::Session(e)) => Err(e),
        Err(Failure::Refused { error, .. }) => {
            warn!(error = %error, "The parking lot refused a delivery; parking it bare.");
            park_bare(inner, publisher, message, stage).await
        }
        Err(Failure::Fault(refusal)) => {
            warn!(reason = %refusal.text, "Parking a delivery failed; parking it bare.");
            park_bare(inner, publisher, message, stage).await
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
    inner: &Inner,
    publisher: &mut LanePublisher,
    message: &Message,
    stage: &str,
) -> Result<Parked, AmqpError> {
    let properties = Properties::new()
        .with_content_type(content_type(message))
        .with_header(names::HEADER_STAGE, stage)
        .with_header(names::HEADER_REASON_CODE, crate::publish::REFUSED)
        .with_header(
            HEADER_ROUTING_KEY,
            bounded(&original_routing_key(inner, message), 255),
        );
    match publisher
        .publish("", names::PARKED_QUEUE, &message.body, &properties)
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

fn content_type(message: &Message) -> String {
    message
        .properties
        .content_type
        .clone()
        .unwrap_or_else(|| names::CONTENT_TYPE_XML.into())
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
    inner: &Inner,
    publisher: &mut LanePublisher,
    message: &Message,
    why: Parking<'_>,
) -> Result<(), Failure> {
    let Parking {
        header,
        stage,
        refusals,
        attempts,
        started,
    } = why;
    let first = refusals.first();
    let reason = bounded(&summary(refusals), MAX_REASON_BYTES);
    let mut env = envelope_of(inner, message, header, stage, attempts, started);
    env.reason_code = first.map(|r| bounded(&r.code, 64)).unwrap_or_default();
    env.reason = reason.clone();
    let mut properties = Properties::new()
        .with_content_type(content_type(message))
        .with_header(names::HEADER_STAGE, stage)
        .with_header(names::HEADER_REASON, reason)
        .with_header(names::HEADER_REASON_CODE, env.reason_code.clone())
        .with_header(
            names::HEADER_ATTEMPTS,
            HeaderValue::Int(i64::from(attempts)),
        )
        .with_header(
            names::HEADER_PARKED_AT,
            asw_model::document::format_timestamp(started),
        )
        .with_header(HEADER_ROUTING_KEY, original_routing_key(inner, message))
        .with_header(HEADER_EXCHANGE, message.exchange.as_str())
        .with_header(BUS_HEADER, HeaderValue::Bytes(env.to_bytes()));
    if let Some(user) = original_transport_user(inner, message) {
        properties = properties.with_header(HEADER_TRANSPORT_USER, user);
    }
    if let Some(h) = header {
        properties = properties
            .with_message_id(h.message_id.to_string())
            .with_header(names::HEADER_MESSAGE_ID, h.message_id.to_string());
    }
    publisher
        .publish("", names::PARKED_QUEUE, &message.body, &properties)
        .await
        .map_err(|e| Failure::of(e, header))
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
) -> Result<(), Failure> {
    let error = match publish_outcome(publisher, outcome).await {
        Ok(()) => return Ok(()),
        Err(e) if e.is_refusal_of_the_message() => e,
        Err(e) => return Err(Failure::Session(e)),
    };
    let code = refusal_code(&error);
    let text = bounded(&asw_amqp::error_chain(&error), MAX_REASON_BYTES);
    Event::OutcomeParked {
        message_id: outcome.message_id,
        outcome: outcome.outcome,
        routing_key: &outcome.routing_key(),
        code,
    }
    .emit(&inner.metrics);
    let mut env = envelope(None, names::stage::OUTCOME, 1, now());
    env.message_id = outcome
        .message_id
        .map(|id| id.to_string())
        .unwrap_or_default();
    env.reason_code = code.to_owned();
    env.reason = text.clone();
    let mut properties = Properties::new()
        .with_content_type("application/json")
        .with_header(names::HEADER_OUTCOME, outcome.outcome)
        .with_header(names::HEADER_STAGE, names::stage::OUTCOME)
        .with_header(names::HEADER_REASON, text)
        .with_header(names::HEADER_REASON_CODE, code)
        .with_header(names::HEADER_ATTEMPTS, HeaderValue::Int(1))
        .with_header(
            names::HEADER_PARKED_AT,
            asw_model::document::format_timestamp(now()),
        )
        .with_header(HEADER_ROUTING_KEY, outcome.routing_key())
        .with_header(HEADER_EXCHANGE, names::INBOUND_EXCHANGE)
        .with_header(BUS_HEADER, HeaderValue::Bytes(env.to_bytes()));
    if let Some(id) = outcome.message_id {
        properties = properties.with_header(names::HEADER_MESSAGE_ID, id.to_string());
    }
    match publisher
        .publish("", names::PARKED_QUEUE, &outcome.to_json(), &properties)
        .await
    {
        Ok(()) => Ok(()),
        Err(e) if e.is_refusal_of_the_message() => {
            warn!(error = %e, "The parking lot refused an outcome; it is only in this log.");
            Ok(())
        }
        Err(e) => Err(Failure::Session(e)),
    }
}
