//! Declaring a hub's [`Topology`] over AMQP: durable exchanges, durable queues with their
//! arguments, bindings. Idempotent; a clash with what exists names the queue and argument.

use asw_route::{Argument, ExchangeKind, Topology};
use lapin::options::{ExchangeDeclareOptions, QueueBindOptions, QueueDeclareOptions};
use lapin::types::{AMQPValue, FieldTable, LongString};
use tracing::debug;

use crate::connection::within;
use crate::error::{inequivalent_argument, is_precondition_failed, reply_text};
use crate::properties::short;
use crate::{AmqpError, Channel};

/// Declares `topology`'s exchanges, queues and bindings (not its users: see
/// [`crate::apply`]). Running it again changes nothing. If an exchange or queue already exists
/// with other arguments, the broker closes the channel and this returns
/// [`AmqpError::Inequivalent`]; the channel is then unusable.
pub async fn declare(channel: &Channel, topology: &Topology) -> Result<(), AmqpError> {
    let vhost = channel.vhost();
    let lapin = channel.lapin();
    for exchange in &topology.exchanges {
        let options = ExchangeDeclareOptions {
            durable: true,
            ..ExchangeDeclareOptions::default()
        };
        let declaring = lapin.exchange_declare(
            short(&exchange.name, "exchange name")?,
            exchange_kind(exchange.kind),
            options,
            FieldTable::default(),
        );
        within(vhost, "declare an exchange", declaring)
            .await?
            .map_err(|source| declare_error(vhost, "exchange", &exchange.name, source))?;
        debug!(vhost, exchange = exchange.name, "Declared exchange");
    }
    for queue in &topology.queues {
        let mut arguments = FieldTable::default();
        for (name, value) in &queue.arguments {
            let value = match value {
                Argument::Str(s) => AMQPValue::LongString(LongString::from(s.as_bytes())),
                Argument::Int(i) => AMQPValue::LongLongInt(*i),
            };
            arguments.insert(short(name, "queue argument name")?, value);
        }
        let options = QueueDeclareOptions {
            durable: true,
            ..QueueDeclareOptions::default()
        };
        let declaring = lapin.queue_declare(short(&queue.name, "queue name")?, options, arguments);
        within(vhost, "declare a queue", declaring)
            .await?
            .map_err(|source| declare_error(vhost, "queue", &queue.name, source))?;
        debug!(vhost, queue = queue.name, "Declared queue");
    }
    for binding in &topology.bindings {
        let binding_name = format!(
            "{} -> {} ({})",
            binding.exchange, binding.queue, binding.routing_key
        );
        let binding_error = |source| AmqpError::Declare {
            vhost: vhost.to_owned(),
            what: "binding",
            name: binding_name.clone(),
            source: Box::new(source),
        };
        let binding_call = lapin.queue_bind(
            short(&binding.queue, "queue name")?,
            short(&binding.exchange, "exchange name")?,
            short(&binding.routing_key, "routing key")?,
            QueueBindOptions::default(),
            FieldTable::default(),
        );
        within(vhost, "bind a queue", binding_call)
            .await?
            .map_err(binding_error)?;
        debug!(vhost, binding = binding_name, "Declared binding");
    }
    Ok(())
}

/// The number of messages ready in `queue` (those delivered and not yet acknowledged are not
/// counted), by a passive declare, which creates and changes nothing. A queue that does not exist
/// is an error, and the broker then closes the channel.
pub async fn ready_messages(channel: &Channel, queue: &str) -> Result<u32, AmqpError> {
    Ok(queue_counts(channel, queue).await?.ready)
}

/// What a passive declare says of a queue now.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct QueueCounts {
    /// Messages ready for delivery.
    pub ready: u32,
    /// Consumers attached.
    pub consumers: u32,
}

/// The ready messages and the consumers of `queue`, by a passive declare (an error if the queue
/// does not exist, which closes the channel).
pub async fn queue_counts(channel: &Channel, queue: &str) -> Result<QueueCounts, AmqpError> {
    let vhost = channel.vhost();
    let options = QueueDeclareOptions {
        passive: true,
        ..QueueDeclareOptions::default()
    };
    let declaring =
        channel
            .lapin()
            .queue_declare(short(queue, "queue name")?, options, FieldTable::default());
    let declared = within(vhost, "count the messages of a queue", declaring)
        .await?
        .map_err(|source| declare_error(vhost, "queue", queue, source))?;
    Ok(QueueCounts {
        ready: declared.message_count(),
        consumers: declared.consumer_count(),
    })
}

fn exchange_kind(kind: ExchangeKind) -> lapin::ExchangeKind {
    match kind {
        ExchangeKind::Direct => lapin::ExchangeKind::Direct,
        ExchangeKind::Topic => lapin::ExchangeKind::Topic,
        ExchangeKind::Fanout => lapin::ExchangeKind::Fanout,
    }
}

fn declare_error(vhost: &str, what: &'static str, name: &str, source: lapin::Error) -> AmqpError {
    if is_precondition_failed(&source)
        && let Some(text) = reply_text(&source)
        && let Some(argument) = inequivalent_argument(text)
    {
        return AmqpError::Inequivalent {
            vhost: vhost.to_owned(),
            what,
            name: name.to_owned(),
            argument: argument.to_owned(),
            detail: text.to_owned(),
        };
    }
    AmqpError::Declare {
        vhost: vhost.to_owned(),
        what,
        name: name.to_owned(),
        source: Box::new(source),
    }
}
