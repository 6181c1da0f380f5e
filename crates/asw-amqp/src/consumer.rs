//! Consuming with a bounded prefetch and manual acknowledgement: each delivery comes with an
//! [`Acker`] the caller uses once, after its own next step (usually a confirmed publish) is done.

use std::pin::Pin;
use std::sync::Arc;

use futures_core::Stream;
use lapin::options::{
    BasicAckOptions, BasicCancelOptions, BasicConsumeOptions, BasicNackOptions, BasicQosOptions,
    BasicRejectOptions,
};
use lapin::types::FieldTable;

use crate::connection::within;
use crate::properties::short;
use crate::{AmqpError, Channel, Properties};

/// A consumer of one queue on its own channel, with manual acknowledgement.
pub struct Consumer {
    inner: lapin::Consumer,
    channel: Channel,
    source: Arc<Source>,
}

/// What acks name in their errors.
#[derive(Debug)]
struct Source {
    vhost: String,
    queue: String,
}

impl std::fmt::Debug for Consumer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Consumer")
            .field("vhost", &self.source.vhost)
            .field("queue", &self.source.queue)
            .field("tag", &self.inner.tag())
            .finish()
    }
}

impl Consumer {
    /// Starts consuming `queue` on `channel` with at most `prefetch` unacknowledged deliveries
    /// (`basic.qos` on the channel; use a channel per consumer). A `prefetch` of 0 is taken as 1:
    /// in AMQP it would mean unbounded. `tag` names the consumer in the management UI; empty
    /// lets the broker choose.
    pub async fn start(
        channel: Channel,
        queue: &str,
        prefetch: u16,
        tag: &str,
    ) -> Result<Consumer, AmqpError> {
        let vhost = channel.vhost().to_owned();
        let consume_error = |source| AmqpError::Consume {
            vhost: vhost.clone(),
            queue: queue.to_owned(),
            source: Box::new(source),
        };
        let lapin_channel = channel.lapin();
        channel
            .call(
                "set the prefetch",
                lapin_channel.basic_qos(prefetch.max(1), BasicQosOptions::default()),
            )
            .await?
            .map_err(|source| channel.error("set the prefetch", source))?;
        let options = BasicConsumeOptions {
            no_ack: false,
            ..BasicConsumeOptions::default()
        };
        let inner = channel
            .call(
                "start a consumer",
                lapin_channel.basic_consume(
                    short(queue, "queue name")?,
                    short(tag, "consumer tag")?,
                    options,
                    FieldTable::default(),
                ),
            )
            .await?
            .map_err(consume_error)?;
        Ok(Consumer {
            inner,
            source: Arc::new(Source {
                vhost: channel.vhost().to_owned(),
                queue: queue.to_owned(),
            }),
            channel,
        })
    }

    /// The next delivery; `None` once the consumer is cancelled (by [`Consumer::cancel`] or by
    /// the broker, e.g. the queue was deleted). An error means the channel or connection failed:
    /// unacknowledged deliveries go back to the queue, and the consumer must be started again.
    pub async fn next(&mut self) -> Option<Result<Delivery, AmqpError>> {
        let item = std::future::poll_fn(|cx| Pin::new(&mut self.inner).poll_next(cx)).await?;
        Some(match item {
            Ok(delivery) => Ok(Delivery::new(delivery, &self.channel, &self.source)),
            Err(source) => Err(AmqpError::Consume {
                vhost: self.source.vhost.clone(),
                queue: self.source.queue.clone(),
                source: Box::new(source),
            }),
        })
    }

    /// Stops the broker sending more deliveries; those already received can still be acked.
    pub async fn cancel(&self) -> Result<(), AmqpError> {
        let cancelling = self
            .channel
            .lapin()
            .basic_cancel(self.inner.tag(), BasicCancelOptions::default());
        self.channel
            .call("cancel a consumer", cancelling)
            .await?
            .map_err(|source| AmqpError::Consume {
                vhost: self.source.vhost.clone(),
                queue: self.source.queue.clone(),
                source: Box::new(source),
            })
    }

    /// The queue.
    pub fn queue(&self) -> &str {
        &self.source.queue
    }

    /// The channel.
    pub fn channel(&self) -> &Channel {
        &self.channel
    }
}

/// A received message, without the means to acknowledge it.
#[derive(Debug, Clone, PartialEq)]
pub struct Message {
    /// The body.
    pub body: Vec<u8>,
    /// The exchange it was published to (empty: the default exchange).
    pub exchange: String,
    /// The routing key it was published with.
    pub routing_key: String,
    /// Whether the broker delivered it before (to this or another consumer) without an ack.
    pub redelivered: bool,
    /// Its properties and headers.
    pub properties: Properties,
}

/// One delivery: the message, and the [`Acker`] to settle it with exactly once.
#[derive(Debug)]
pub struct Delivery {
    /// The message.
    pub message: Message,
    /// Settles the delivery; dropping it unused leaves the message unacknowledged until the
    /// channel closes, when the broker delivers it again.
    pub acker: Acker,
}

impl Delivery {
    fn new(
        delivery: lapin::message::Delivery,
        channel: &Channel,
        source: &Arc<Source>,
    ) -> Delivery {
        let lapin::message::Delivery {
            delivery_tag,
            exchange,
            routing_key,
            redelivered,
            properties,
            data,
            acker,
        } = delivery;
        Delivery {
            message: Message {
                body: data,
                exchange: exchange.into(),
                routing_key: routing_key.into(),
                redelivered,
                properties: Properties::from_lapin(&properties),
            },
            acker: Acker {
                inner: acker,
                delivery_tag,
                source: source.clone(),
                _channel: channel.clone(),
            },
        }
    }
}

/// Acknowledges one delivery; each method consumes it, so a delivery is settled once.
///
/// It keeps its channel open (lapin's own acker does not), so dropping the [`Consumer`] before
/// settling its deliveries does not make their acks fail.
#[derive(Debug)]
pub struct Acker {
    inner: lapin::Acker,
    delivery_tag: u64,
    source: Arc<Source>,
    _channel: Channel,
}

impl Acker {
    /// The delivery tag on the channel.
    pub fn delivery_tag(&self) -> u64 {
        self.delivery_tag
    }

    /// Acknowledges: the broker forgets the message.
    pub async fn ack(self) -> Result<(), AmqpError> {
        let done = self.inner.ack(BasicAckOptions::default());
        self.settle("ack", done).await
    }

    /// Negatively acknowledges: back to the queue if `requeue`, else dead-lettered or dropped
    /// as the queue's arguments say.
    pub async fn nack(self, requeue: bool) -> Result<(), AmqpError> {
        let done = self.inner.nack(BasicNackOptions {
            multiple: false,
            requeue,
        });
        self.settle("nack", done).await
    }

    /// Rejects: like [`Acker::nack`] for one message.
    pub async fn reject(self, requeue: bool) -> Result<(), AmqpError> {
        let done = self.inner.reject(BasicRejectOptions { requeue });
        self.settle("reject", done).await
    }

    async fn settle(
        &self,
        action: &'static str,
        done: impl Future<Output = lapin::Result<bool>>,
    ) -> Result<(), AmqpError> {
        let error = |reason: String| AmqpError::Acknowledge {
            vhost: self.source.vhost.clone(),
            queue: self.source.queue.clone(),
            action,
            delivery_tag: self.delivery_tag,
            reason,
        };
        // Not `Channel::call`: lapin fails the ackers of a channel as soon as it learns that it
        // closed, and an ack has no answer to wait for.
        match within(&self.source.vhost, action, done).await? {
            Ok(true) => Ok(()),
            // lapin answers false when the channel closed since the delivery (the broker will
            // deliver the message again) or when the acker was already used.
            Ok(false) => Err(error("the channel is closed".into())),
            Err(source) => Err(error(source.to_string())),
        }
    }
}
