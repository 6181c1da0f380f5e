//! Publishing with publisher confirms: a publish is done only when the broker confirmed it; a
//! nack, a `basic.return` (unroutable mandatory message) or a closed channel is an error.

use std::time::Duration;

use lapin::message::BasicReturnMessage;
use lapin::options::BasicPublishOptions;
use lapin::{Confirmation, PublisherConfirm};
use tokio::time::Instant;
use tracing::warn;

use crate::connection::{error_chain, until_closed};
use crate::properties::short;
use crate::{AmqpError, Channel, Properties};

/// How failed publishes are reported: one of [`AmqpError::Publish`] (channel closed or broker
/// refused, e.g. a `user_id` that is not the connection's user), [`AmqpError::Nacked`],
/// [`AmqpError::Returned`] (no queue bound for the key), [`AmqpError::Timeout`] or
/// [`AmqpError::TooLong`].
pub type PublishError = AmqpError;

/// How long to wait for confirms by default. Shorter than the hub's grace period (20 s), like
/// [`crate::RPC_TIMEOUT`]: a lane finishing its delivery when its session ends must not outwait
/// it on a broker that takes messages and never confirms them (one that is stopping, say).
pub const CONFIRM_TIMEOUT: Duration = Duration::from_secs(15);

/// A message to publish with [`ConfirmingPublisher::publish_batch`].
#[derive(Debug, Clone, PartialEq)]
pub struct Outgoing {
    /// Exchange (empty: the default exchange, routing key = queue name).
    pub exchange: String,
    /// Routing key.
    pub routing_key: String,
    /// Body.
    pub body: Vec<u8>,
    /// Properties.
    pub properties: Properties,
}

/// A message to publish, borrowed.
#[derive(Clone, Copy)]
struct Draft<'a> {
    exchange: &'a str,
    routing_key: &'a str,
    body: &'a [u8],
    properties: &'a Properties,
}

impl Draft<'_> {
    /// Whether a returned message is this one.
    fn matches(&self, returned: &BasicReturnMessage) -> bool {
        returned.delivery.exchange.as_str() == self.exchange
            && returned.delivery.routing_key.as_str() == self.routing_key
            && returned.delivery.data == self.body
            && returned
                .delivery
                .properties
                .message_id()
                .as_ref()
                .map(|id| id.as_str())
                == self.properties.message_id.as_deref()
    }
}

/// Publishes on its own channel in confirm mode, every message `mandatory`.
///
/// Methods take `&mut self`, so one publish or batch is in flight at a time on the channel:
/// lapin attaches a returned message to whichever confirm resolves next, not to the publish it
/// belongs to, so this is what lets a `basic.return` be charged to the right message. For
/// concurrency, give each task its own publisher (channels are cheap).
///
/// A channel error (see [`PublishError`]) closes the channel for good: every later publish
/// fails with a transient error until the owner builds a new publisher on a new channel.
#[derive(Debug)]
pub struct ConfirmingPublisher {
    channel: Channel,
    confirm_timeout: Duration,
    /// Confirms of an earlier call may still be pending (it was cancelled or timed out).
    unsettled: bool,
}

impl ConfirmingPublisher {
    /// Puts `channel` in confirm mode and publishes on it. Use a channel of its own.
    pub async fn new(channel: Channel) -> Result<ConfirmingPublisher, AmqpError> {
        channel.confirm_select().await?;
        Ok(ConfirmingPublisher {
            channel,
            confirm_timeout: CONFIRM_TIMEOUT,
            unsettled: false,
        })
    }

    /// Sets how long a publish or batch waits for its confirms ([`CONFIRM_TIMEOUT`] by
    /// default). A timed-out message may still reach its queue: at-least-once, not exactly-once.
    pub fn with_confirm_timeout(mut self, timeout: Duration) -> ConfirmingPublisher {
        self.confirm_timeout = timeout;
        self
    }

    /// The channel.
    pub fn channel(&self) -> &Channel {
        &self.channel
    }

    /// Publishes one message and waits for the broker's confirm. `Ok` means the broker has
    /// routed it to at least one queue and taken responsibility for it.
    pub async fn publish(
        &mut self,
        exchange: &str,
        routing_key: &str,
        body: &[u8],
        properties: &Properties,
    ) -> Result<(), PublishError> {
        let draft = Draft {
            exchange,
            routing_key,
            body,
            properties,
        };
        self.publish_drafts(&[draft])
            .await
            .pop()
            .unwrap_or_else(|| unreachable_outcome(self.channel.vhost(), draft))
    }

    /// Publishes every message without waiting in between, then waits for all confirms (within
    /// one confirm timeout). Returns one outcome per message, in order.
    pub async fn publish_batch(&mut self, messages: &[Outgoing]) -> Vec<Result<(), PublishError>> {
        let drafts: Vec<Draft<'_>> = messages
            .iter()
            .map(|m| Draft {
                exchange: &m.exchange,
                routing_key: &m.routing_key,
                body: &m.body,
                properties: &m.properties,
            })
            .collect();
        self.publish_drafts(&drafts).await
    }

    /// `confirm`, or an error soon after the channel is found closed (checked every 100 ms): a
    /// confirm never comes on a dead connection, and waiting out the confirm timeout would only
    /// hold the caller (a lane the hub wants back to reconnect).
    async fn until_closed(&self, confirm: PublisherConfirm) -> Result<Confirmation, lapin::Error> {
        until_closed(|| self.channel.is_open(), confirm).await
    }

    async fn publish_drafts(&mut self, drafts: &[Draft<'_>]) -> Vec<Result<(), PublishError>> {
        if self.unsettled {
            self.settle().await;
        }
        self.unsettled = true;
        let vhost = self.channel.vhost().to_owned();
        let publish_error = |draft: &Draft<'_>, source| AmqpError::Publish {
            vhost: vhost.clone(),
            exchange: draft.exchange.to_owned(),
            routing_key: draft.routing_key.to_owned(),
            source: Box::new(source),
        };

        // Send everything first, all within one confirm timeout (sending only waits when the
        // broker blocks publishers, e.g. on a memory alarm).
        let send_deadline = Instant::now() + self.confirm_timeout;
        let mut outcomes: Vec<Option<Result<(), PublishError>>> = Vec::with_capacity(drafts.len());
        let mut pending: Vec<(usize, PublisherConfirm)> = Vec::with_capacity(drafts.len());
        let mut send_timed_out = false;
        for (index, draft) in drafts.iter().enumerate() {
            if send_timed_out {
                outcomes.push(Some(Err(self.timeout("send a message", draft))));
                continue;
            }
            match self.send(draft, send_deadline).await {
                Ok(Ok(confirm)) => {
                    outcomes.push(None);
                    pending.push((index, confirm));
                }
                Ok(Err(source)) => outcomes.push(Some(Err(publish_error(draft, source)))),
                Err(error) => {
                    send_timed_out = matches!(error, AmqpError::Timeout { .. });
                    outcomes.push(Some(Err(error)));
                }
            }
        }

        // Then collect the confirms.
        let deadline = Instant::now() + self.confirm_timeout;
        let mut returned = Vec::new();
        let mut timed_out = false;
        for (index, confirm) in pending {
            let draft = &drafts[index];
            let outcome = match tokio::time::timeout_at(deadline, self.until_closed(confirm)).await
            {
                Err(_) => {
                    timed_out = true;
                    Err(self.timeout("confirm a publish", draft))
                }
                Ok(Err(source)) => Err(publish_error(draft, source)),
                Ok(Ok(Confirmation::Ack(message))) => {
                    returned.extend(message);
                    Ok(())
                }
                Ok(Ok(Confirmation::Nack(message))) => {
                    returned.extend(message);
                    Err(AmqpError::Nacked {
                        vhost: vhost.clone(),
                        exchange: draft.exchange.to_owned(),
                        routing_key: draft.routing_key.to_owned(),
                        message_id: draft.properties.message_id.clone(),
                    })
                }
                // Invariant: `new` enabled confirms on this channel; if that ever changed, a
                // silent success would be worse than an error.
                Ok(Ok(Confirmation::NotRequested)) => Err(publish_error(
                    draft,
                    lapin::ErrorKind::InvalidChannelState(
                        lapin::ChannelState::Connected,
                        "publisher confirms not enabled",
                    )
                    .into(),
                )),
            };
            outcomes[index] = Some(outcome);
        }

        // A returned message came with some confirm of this call: charge it to its publish.
        for message in returned {
            let owner = drafts.iter().enumerate().position(|(index, draft)| {
                matches!(outcomes[index], Some(Ok(()))) && draft.matches(&message)
            });
            match owner {
                Some(index) => {
                    outcomes[index] = Some(Err(AmqpError::Returned {
                        vhost: vhost.clone(),
                        exchange: message.delivery.exchange.as_str().to_owned(),
                        routing_key: message.delivery.routing_key.as_str().to_owned(),
                        message_id: drafts[index].properties.message_id.clone(),
                        reply_code: message.reply_code,
                        reply_text: message.reply_text.as_str().to_owned(),
                    }));
                }
                None => warn!(
                    vhost,
                    exchange = message.delivery.exchange.as_str(),
                    routing_key = message.delivery.routing_key.as_str(),
                    reply_code = message.reply_code,
                    "Returned message matches no publish of this batch, ignoring it"
                ),
            }
        }
        self.unsettled = timed_out || send_timed_out;
        outcomes
            .into_iter()
            .zip(drafts)
            .map(|(outcome, draft)| outcome.unwrap_or_else(|| unreachable_outcome(&vhost, *draft)))
            .collect()
    }

    /// Sends one message by `deadline`; the outer error is ours (too long, timeout), the inner
    /// lapin's.
    async fn send(
        &self,
        draft: &Draft<'_>,
        deadline: Instant,
    ) -> Result<Result<PublisherConfirm, lapin::Error>, AmqpError> {
        let properties = draft.properties.to_lapin()?;
        let exchange = short(draft.exchange, "exchange name")?;
        let routing_key = short(draft.routing_key, "routing key")?;
        let options = BasicPublishOptions {
            mandatory: true,
            immediate: false,
        };
        let sending = self.channel.lapin().basic_publish(
            exchange,
            routing_key,
            options,
            draft.body,
            properties,
        );
        tokio::time::timeout_at(deadline, sending)
            .await
            .map_err(|_| self.timeout("send a message", draft))
    }

    fn timeout(&self, action: &str, draft: &Draft<'_>) -> AmqpError {
        AmqpError::Timeout {
            vhost: self.channel.vhost().to_owned(),
            action: format!(
                "{action} to exchange {:?} with key {:?}",
                draft.exchange, draft.routing_key
            ),
            after: self.confirm_timeout,
        }
    }

    /// Waits for the confirms of an earlier, interrupted call, so their returns cannot be
    /// charged to the next publish.
    async fn settle(&mut self) {
        let waiting = self.channel.lapin().wait_for_confirms();
        match tokio::time::timeout(self.confirm_timeout, waiting).await {
            Ok(Ok(returned)) => {
                for message in returned {
                    warn!(
                        vhost = self.channel.vhost(),
                        exchange = message.delivery.exchange.as_str(),
                        routing_key = message.delivery.routing_key.as_str(),
                        "A message of an interrupted publish was returned as unroutable"
                    );
                }
                self.unsettled = false;
            }
            Ok(Err(error)) => warn!(
                vhost = self.channel.vhost(),
                error = %error_chain(&error),
                "Cannot settle the confirms of an interrupted publish"
            ),
            Err(_) => warn!(
                vhost = self.channel.vhost(),
                "Confirms of an interrupted publish are still pending"
            ),
        }
    }
}

/// Every message gets an outcome above; should one ever not, report it as an error.
fn unreachable_outcome(vhost: &str, draft: Draft<'_>) -> Result<(), PublishError> {
    Err(AmqpError::Timeout {
        vhost: vhost.to_owned(),
        action: format!(
            "learn the outcome of a publish to exchange {:?} with key {:?}",
            draft.exchange, draft.routing_key
        ),
        after: Duration::ZERO,
    })
}
