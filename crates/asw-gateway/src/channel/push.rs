//! The push channel (the hub's push link) to one partner: what waits in `asw.partner.out.<CC>` is published to the
//! partner's broker as `partner-<our CC>` and acknowledged once the partner's broker confirmed
//! it. While the partner is unreachable or refuses the link (access, bindings) nothing is taken
//! from the queue; a document the partner's broker refuses for itself (too large) is parked
//! here in stage `link.<CC>`, journaled `failed` and reported to the back-office, and the link goes
//! on.

use std::sync::Arc;

use asw_amqp::{
    AmqpError, Backoff, Connection, Consumer, Delivery, Properties, connect_any_tls_with_backoff,
};
use asw_journal::{Direction, State};
use asw_model::MemberState;
use asw_route::names;
use futures_util::FutureExt;
use futures_util::future::BoxFuture;
use tokio_util::sync::CancellationToken;
use tracing::{Instrument, info, info_span, warn};

use super::{Health, PartnerChannel, next_delivery};
use crate::execute::journal_move;
use crate::hub::{Inner, SessionEnd};
use crate::incoming::Incoming;
use crate::park::{Parked, park_refused};
use crate::publish::LanePublisher;

/// A partner we push to.
#[derive(Debug)]
pub(crate) struct Push {
    partner: MemberState,
    urls: Vec<String>,
    tls: asw_amqp::ClientTls,
    health: Health,
}

impl Push {
    /// The push channel to `partner`'s broker at `urls` (its nodes, each with its vhost).
    pub(crate) fn new(partner: MemberState, urls: Vec<String>, tls: asw_amqp::ClientTls) -> Push {
        Push {
            partner,
            urls,
            tls,
            health: Health::new("push"),
        }
    }
}

impl PartnerChannel for Push {
    fn partner(&self) -> MemberState {
        self.partner
    }

    fn health(&self) -> &Health {
        &self.health
    }

    fn run(
        self: Arc<Self>,
        inner: Arc<Inner>,
        local: Arc<Connection>,
        stop: CancellationToken,
    ) -> BoxFuture<'static, Result<(), SessionEnd>> {
        async move { push_link(&self, inner, local, stop).await }.boxed()
    }
}

/// Pushes what waits in `asw.partner.out.<CC>` to the partner's broker, as `partner-<our CC>`.
/// While the partner is unreachable, documents stay in the queue; the link retries with back-off.
async fn push_link(
    channel: &Push,
    inner: Arc<Inner>,
    local: Arc<Connection>,
    stop: CancellationToken,
) -> Result<(), SessionEnd> {
    let partner = channel.partner;
    inner.metrics.declare_link(partner);
    let config = &inner.config;
    let urls = channel.urls.clone();
    if urls.is_empty() {
        channel
            .health
            .set(false, "no partner broker URL configured");
        stop.cancelled().await;
        return Ok(());
    }
    let us = config.country;
    let user = names::partner_user(us);
    let queue = names::partner_out_queue(partner);
    let span = info_span!("link", partner = partner.code());
    let backoff = Backoff::default();
    let connection_name = format!("aswhub-{us}-link");
    async move {
        let mut failures = 0u32;
        loop {
            // Connect to the partner first: without it, nothing is taken from the queue.
            let remote = tokio::select! {
                c = connect_any_tls_with_backoff(&urls, &connection_name, &channel.tls, &backoff) => c,
                () = stop.cancelled() => return Ok(()),
            };
            let remote = match remote {
                Ok(r) => r,
                Err(e) => {
                    inner.metrics.link_failure(partner);
                    channel.health.set(false, asw_amqp::error_chain(&e));
                    warn!(error = %e, "Partner broker refused the link; retrying later.");
                    failures += 1;
                    tokio::select! {
                        () = tokio::time::sleep(backoff.pause(failures)) => continue,
                        () = stop.cancelled() => return Ok(()),
                    }
                }
            };
            let remote = Arc::new(remote);
            let began = std::time::Instant::now();
            let outcome = pump(channel, &inner, &local, &remote, &queue, &user, us, &stop).await;
            let _ = remote.close().await;
            match outcome {
                Ok(()) => return Ok(()),
                // The local broker failed: the session restarts everything.
                Err(LinkError::Local(e)) => return Err(e),
                Err(LinkError::Remote(e)) => {
                    failures = failures_after(failures, began.elapsed(), &backoff);
                    inner.metrics.link_failure(partner);
                    channel.health.set(false, asw_amqp::error_chain(&e));
                    warn!(error = %e, "Partner link failed; reconnecting.");
                    tokio::select! {
                        () = tokio::time::sleep(backoff.pause(failures)) => {}
                        () = stop.cancelled() => return Ok(()),
                    }
                }
            }
        }
    }
    .instrument(span)
    .await
}

/// The failures counted for the back-off once a link that lived `lived` has failed: one more
/// than before when it failed soon (a partner that takes the link and drops it at once is not
/// reconnected to in a tight loop), but the first again when it had lived longer than the
/// longest pause (a link up for days does not wait 30 s after one failure for those of long ago).
fn failures_after(failures: u32, lived: std::time::Duration, backoff: &Backoff) -> u32 {
    if lived > backoff.max {
        1
    } else {
        failures.saturating_add(1)
    }
}

/// True when the partner's broker refused a document for what it is (too large, a property
/// too long), so that sending it again can never succeed. An access refusal or an unroutable
/// return concern the link as a whole (the partner's permissions or bindings), which waits
/// and retries like a partner that is down, keeping the documents in their queue.
fn refused_for_itself(error: &AmqpError) -> bool {
    const PRECONDITION_FAILED: u16 = 406;
    const CONTENT_TOO_LARGE: u16 = 311;
    matches!(
        error,
        AmqpError::TooLong { .. } | AmqpError::HeadersTooLarge { .. }
    ) || (error.is_refusal_of_the_message()
        && matches!(
            error.reply_code(),
            Some(PRECONDITION_FAILED | CONTENT_TOO_LARGE)
        ))
}

enum LinkError {
    Local(SessionEnd),
    Remote(AmqpError),
}

#[expect(
    clippy::too_many_arguments,
    reason = "the link's two ends, its queue and identity, and when to stop"
)]
async fn pump(
    link: &Push,
    inner: &Inner,
    local: &Arc<Connection>,
    remote: &Arc<Connection>,
    queue: &str,
    user: &str,
    us: MemberState,
    stop: &CancellationToken,
) -> Result<(), LinkError> {
    let mut publisher = LanePublisher::open(remote.clone())
        .await
        .map_err(LinkError::Remote)?;
    let local_error = |e: AmqpError| LinkError::Local(e.into());
    let mut parking = LanePublisher::open(local.clone())
        .await
        .map_err(local_error)?;
    let channel = local.open_channel().await.map_err(local_error)?;
    let mut consumer = Consumer::start(
        channel,
        queue,
        inner.config.broker.prefetch.min(64),
        "aswhub-link",
    )
    .await
    .map_err(local_error)?;
    link.health.set(true, "connected to the partner's broker");
    info!("Partner link up.");
    loop {
        let Some(delivery) = next_delivery(&mut consumer, queue, stop)
            .await
            .map_err(LinkError::Local)?
        else {
            return Ok(());
        };
        let Delivery { message, acker } = delivery;
        let mut properties = Properties::new()
            .with_content_type(names::CONTENT_TYPE_XML)
            .with_user_id(user);
        if let Some(id) = &message.properties.message_id {
            properties = properties.with_message_id(id.clone());
        }
        if let Some(c) = &message.properties.correlation_id {
            properties = properties.with_correlation_id(c.clone());
        }
        match publisher
            .publish(
                names::PARTNER_IN_EXCHANGE,
                us.code(),
                &message.body,
                &properties,
            )
            .await
        {
            Ok(()) => {
                if let Some(id) = message
                    .properties
                    .message_id
                    .as_deref()
                    .and_then(|s| uuid::Uuid::parse_str(s).ok())
                {
                    journal_move(inner, Direction::Outbound, id, State::Sent).await;
                }
                acker.ack().await.map_err(local_error)?;
            }
            Err(e) if refused_for_itself(&e) => {
                // The partner's broker refused this document alone: park it, go on.
                let header =
                    asw_model::Header::read(&message.body, &inner.config.limits.document).ok();
                let incoming = Incoming::read(&inner.own_user, message);
                let parked = park_refused(
                    inner,
                    &mut parking,
                    &incoming,
                    &names::link_stage(link.partner),
                    &e,
                    header.as_ref(),
                )
                .await
                .map_err(local_error)?;
                if parked == Parked::Refused {
                    // Back to its queue, whose delivery limit dead-letters it.
                    acker.nack(true).await.map_err(local_error)?;
                } else {
                    acker.ack().await.map_err(local_error)?;
                }
            }
            Err(e) => {
                // Not delivered: back to the queue, in order, for the next connection.
                let _ = acker.nack(true).await;
                let _ = consumer.cancel().await;
                return Err(LinkError::Remote(e));
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    #[test]
    fn a_link_that_fails_soon_backs_off_further_and_one_that_lived_long_starts_again() {
        let backoff = Backoff::default();
        // Taken and dropped at once, again and again: the pauses grow to the longest.
        let mut failures = 0;
        for _ in 0..10 {
            failures = failures_after(failures, Duration::from_millis(5), &backoff);
        }
        assert_eq!(failures, 10);
        assert_eq!(backoff.delay(failures), backoff.max);
        // Up longer than the longest pause, then one failure: the shortest pause again.
        let failures = failures_after(failures, backoff.max + Duration::from_secs(1), &backoff);
        assert_eq!(failures, 1);
        assert_eq!(backoff.delay(failures), backoff.initial);
    }
}
