//! The crate's one error type: each variant names what failed and where (vhost, exchange, queue,
//! URL without its password), and [`AmqpError::is_transient`] tells retry-later from give-up.

use std::time::Duration;

use lapin::protocol::{AMQPErrorKind, AMQPHardError, AMQPSoftError};

/// Everything that can go wrong talking to RabbitMQ, over AMQP or the management API.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum AmqpError {
    /// The AMQP or management URL cannot be used.
    #[error("invalid URL {url}: {reason}")]
    InvalidUrl {
        /// The URL, password removed.
        url: String,
        /// What is wrong with it.
        reason: String,
    },
    /// The connection (TCP, TLS, AMQP handshake or login) failed.
    #[error("cannot connect to {url}")]
    Connect {
        /// The URL, password removed.
        url: String,
        /// What lapin reported.
        #[source]
        source: Box<lapin::Error>,
    },
    /// Opening, setting up (confirm mode, prefetch) or closing a channel failed, or closing
    /// the connection.
    #[error("cannot {action} in vhost {vhost}")]
    Channel {
        /// The vhost of the connection.
        vhost: String,
        /// What was attempted (`open a channel`, `enable publisher confirms`...).
        action: &'static str,
        /// What lapin reported.
        #[source]
        source: Box<lapin::Error>,
    },
    /// Declaring an exchange or queue, or binding a queue, failed.
    #[error("cannot declare {what} {name} in vhost {vhost}")]
    Declare {
        /// The vhost.
        vhost: String,
        /// `exchange`, `queue` or `binding`.
        what: &'static str,
        /// The exchange or queue, or `exchange -> queue (key)` for a binding.
        name: String,
        /// What lapin reported.
        #[source]
        source: Box<lapin::Error>,
    },
    /// An exchange or queue exists with other properties or arguments than declared
    /// (RabbitMQ's `PRECONDITION_FAILED - inequivalent arg`). Fix or delete the existing one.
    #[error("{what} {name} in vhost {vhost} already exists with a different {argument}: {detail}")]
    Inequivalent {
        /// The vhost.
        vhost: String,
        /// `exchange` or `queue`.
        what: &'static str,
        /// Its name.
        name: String,
        /// The argument or property that differs (`x-message-ttl`, `durable`, `type`...).
        argument: String,
        /// The broker's message.
        detail: String,
    },
    /// A publish failed before the broker confirmed it: the channel or connection closed, or the
    /// broker refused it (e.g. a `user_id` other than the connection's user, no write access).
    #[error("cannot publish to exchange {exchange:?} with key {routing_key:?} in vhost {vhost}")]
    Publish {
        /// The vhost.
        vhost: String,
        /// The exchange (empty: the default exchange).
        exchange: String,
        /// The routing key.
        routing_key: String,
        /// What lapin reported.
        #[source]
        source: Box<lapin::Error>,
    },
    /// The broker negatively confirmed a publish: it could not take responsibility for it.
    #[error(
        "broker refused (nack) message {message_id:?} to exchange {exchange:?} with key {routing_key:?} in vhost {vhost}"
    )]
    Nacked {
        /// The vhost.
        vhost: String,
        /// The exchange.
        exchange: String,
        /// The routing key.
        routing_key: String,
        /// The message id, when set.
        message_id: Option<String>,
    },
    /// A mandatory publish matched no queue and came back (`basic.return`).
    #[error(
        "message {message_id:?} to exchange {exchange:?} with key {routing_key:?} in vhost {vhost} is unroutable: {reply_code} {reply_text}"
    )]
    Returned {
        /// The vhost.
        vhost: String,
        /// The exchange.
        exchange: String,
        /// The routing key.
        routing_key: String,
        /// The message id, when set.
        message_id: Option<String>,
        /// The broker's reply code (312 NO_ROUTE).
        reply_code: u16,
        /// The broker's reply text.
        reply_text: String,
    },
    /// Starting or running a consumer failed (no such queue, no read access, channel closed).
    #[error("cannot consume from queue {queue} in vhost {vhost}")]
    Consume {
        /// The vhost.
        vhost: String,
        /// The queue.
        queue: String,
        /// What lapin reported.
        #[source]
        source: Box<lapin::Error>,
    },
    /// Acknowledging a delivery failed; the broker will deliver the message again.
    #[error(
        "cannot {action} delivery {delivery_tag} from queue {queue} in vhost {vhost}: {reason}"
    )]
    Acknowledge {
        /// The vhost.
        vhost: String,
        /// The queue.
        queue: String,
        /// `ack`, `nack` or `reject`.
        action: &'static str,
        /// The delivery tag on its channel.
        delivery_tag: u64,
        /// Why (the channel closed, or what lapin reported).
        reason: String,
    },
    /// A name or property value is longer than AMQP's 255-byte short string.
    #[error("{field} is {len} bytes long, AMQP allows at most 255")]
    TooLong {
        /// Which field (`routing key`, `message id`, `header name`...).
        field: &'static str,
        /// Its length in bytes.
        len: usize,
    },
    /// A message's headers are larger than a broker frame can safely carry
    /// ([`MAX_HEADER_BYTES`](crate::MAX_HEADER_BYTES)).
    #[error("the message headers take about {len} bytes, more than the {max} allowed")]
    HeadersTooLarge {
        /// Their size, about.
        len: usize,
        /// The limit.
        max: usize,
    },
    /// The broker did not answer in time.
    #[error("timed out after {after:?} waiting to {action} in vhost {vhost}")]
    Timeout {
        /// The vhost (or the URL, while connecting).
        vhost: String,
        /// What was awaited.
        action: String,
        /// How long we waited.
        after: Duration,
    },
    /// A management HTTP API call failed: `status` is `None` when no HTTP answer came.
    #[error("management API {method} {path} failed ({status:?}): {detail}")]
    Management {
        /// HTTP method.
        method: &'static str,
        /// Path on the management base URL (`/api/vhosts/asw-vn`).
        path: String,
        /// HTTP status, when the server answered.
        status: Option<u16>,
        /// The body of the answer, or the transport error.
        detail: String,
    },
}

impl AmqpError {
    /// Whether trying again later may succeed (broker unreachable, connection lost, channel
    /// closed, timeout, nack), as opposed to a failure that will repeat until someone changes
    /// the configuration or the message (access refused, precondition failed, unroutable).
    pub fn is_transient(&self) -> bool {
        match self {
            AmqpError::InvalidUrl { .. }
            | AmqpError::Inequivalent { .. }
            | AmqpError::Returned { .. }
            | AmqpError::TooLong { .. }
            | AmqpError::HeadersTooLarge { .. } => false,
            AmqpError::Connect { source, .. }
            | AmqpError::Channel { source, .. }
            | AmqpError::Declare { source, .. }
            | AmqpError::Publish { source, .. }
            | AmqpError::Consume { source, .. } => lapin_error_is_transient(source),
            AmqpError::Nacked { .. }
            | AmqpError::Acknowledge { .. }
            | AmqpError::Timeout { .. } => true,
            AmqpError::Management { status, detail, .. } => match status {
                None => !is_certificate_failure(detail),
                Some(code) => *code >= 500 || *code == 429,
            },
        }
    }

    /// Whether the failure concerns only the one message published, so that publishing it
    /// again would fail the same way while the connection stays usable: the broker returned it
    /// as unroutable, refused it on its channel (access, precondition such as its size, a missing
    /// exchange), or it could not be encoded (a property or its headers too long). The channel
    /// may be closed afterwards; the connection is not. Everything else (I/O, a closed
    /// connection, a connection-level error, a timeout, a nack) is not the message's fault.
    pub fn is_refusal_of_the_message(&self) -> bool {
        match self {
            AmqpError::Returned { .. }
            | AmqpError::TooLong { .. }
            | AmqpError::HeadersTooLarge { .. } => true,
            AmqpError::Publish { source, .. } => matches!(
                source.kind(),
                lapin::ErrorKind::ProtocolError(amqp) if matches!(amqp.kind(), AMQPErrorKind::Soft(_))
            ),
            _ => false,
        }
    }

    /// The AMQP reply code when the broker closed the channel or connection with one (403
    /// ACCESS_REFUSED, 404 NOT_FOUND, 406 PRECONDITION_FAILED, 530 NOT_ALLOWED...).
    pub fn reply_code(&self) -> Option<u16> {
        match self {
            AmqpError::Connect { source, .. }
            | AmqpError::Channel { source, .. }
            | AmqpError::Declare { source, .. }
            | AmqpError::Publish { source, .. }
            | AmqpError::Consume { source, .. } => match source.kind() {
                lapin::ErrorKind::ProtocolError(error) => Some(error.get_id()),
                _ => None,
            },
            AmqpError::Returned { reply_code, .. } => Some(*reply_code),
            _ => None,
        }
    }
}

/// Whether a lapin error is worth retrying later. Unknown kinds count as transient: a retry is
/// bounded by the retry policy, while a wrongly permanent verdict would park good messages.
pub(crate) fn lapin_error_is_transient(error: &lapin::Error) -> bool {
    use lapin::ErrorKind;
    match error.kind() {
        ErrorKind::ProtocolError(amqp) => match amqp.kind() {
            AMQPErrorKind::Soft(soft) => match soft {
                // Held by another connection (exclusive queue or consumer): it may go away.
                AMQPSoftError::RESOURCELOCKED => true,
                AMQPSoftError::ACCESSREFUSED
                | AMQPSoftError::NOTFOUND
                | AMQPSoftError::PRECONDITIONFAILED
                | AMQPSoftError::NOROUTE
                | AMQPSoftError::NOCONSUMERS
                | AMQPSoftError::CONTENTTOOLARGE => false,
            },
            AMQPErrorKind::Hard(hard) => matches!(
                hard,
                // Broker shutting down, out of resources or failing internally.
                AMQPHardError::CONNECTIONFORCED
                    | AMQPHardError::RESOURCEERROR
                    | AMQPHardError::INTERNALERROR
            ),
        },
        ErrorKind::InvalidProtocolVersion(_)
        | ErrorKind::ParsingError(_)
        | ErrorKind::SerialisationError(_)
        | ErrorKind::AuthProviderError(_)
        | ErrorKind::NoDefaultRuntime
        | ErrorKind::RuntimeShutdownError(_)
        | ErrorKind::FutureCompleted => false,
        // A certificate refused in the TLS handshake: it fails the same way until someone
        // changes the configuration or the certificates.
        ErrorKind::IOError(io) if is_certificate_failure(&io.to_string()) => false,
        // I/O errors, closed channels or connections, missed heartbeats, channel exhaustion.
        _ => true,
    }
}

/// The broker's reply text when a lapin error is an AMQP channel or connection close.
pub(crate) fn reply_text(error: &lapin::Error) -> Option<&str> {
    match error.kind() {
        lapin::ErrorKind::ProtocolError(amqp) => Some(amqp.get_message().as_str()),
        _ => None,
    }
}

/// Whether a lapin error is the broker's PRECONDITION_FAILED.
pub(crate) fn is_precondition_failed(error: &lapin::Error) -> bool {
    matches!(error.kind(), lapin::ErrorKind::ProtocolError(amqp)
        if matches!(amqp.kind(), AMQPErrorKind::Soft(AMQPSoftError::PRECONDITIONFAILED)))
}

/// The argument RabbitMQ names in `... inequivalent arg 'x-message-ttl' for queue ...`.
pub(crate) fn inequivalent_argument(reply_text: &str) -> Option<&str> {
    let rest = reply_text.split("inequivalent arg '").nth(1)?;
    rest.split('\'').next().filter(|arg| !arg.is_empty())
}

/// Whether an error text reports a certificate refused in a TLS handshake, by us (the server's:
/// wrong CA, wrong name, expired) or by the server (ours).
pub(crate) fn is_certificate_failure(text: &str) -> bool {
    [
        "certificate verify failed",
        "unknown ca",
        "bad certificate",
        "certificate required",
        "certificate unknown",
        "certificate expired",
        "unsupported certificate",
    ]
    .iter()
    .any(|needle| text.contains(needle))
}

#[cfg(test)]
mod tests {
    use super::*;
    use lapin::protocol::AMQPError;

    fn protocol(kind: AMQPErrorKind) -> lapin::Error {
        lapin::ErrorKind::ProtocolError(AMQPError::new(kind, "text".into())).into()
    }

    #[test]
    fn parses_the_inequivalent_argument() {
        let text = "PRECONDITION_FAILED - inequivalent arg 'x-message-ttl' for queue \
                    'asw.retry.outbound.200' in vhost 'asw-vn': received the value '300' of \
                    type 'signedint' but current is the value '200' of type 'long'";
        assert_eq!(inequivalent_argument(text), Some("x-message-ttl"));
        assert_eq!(inequivalent_argument("NOT_FOUND - no queue 'q'"), None);
    }

    #[test]
    fn classifies_lapin_errors() {
        let io: lapin::Error = std::io::Error::from(std::io::ErrorKind::ConnectionRefused).into();
        assert!(lapin_error_is_transient(&io));
        assert!(!lapin_error_is_transient(&protocol(
            AMQPSoftError::ACCESSREFUSED.into()
        )));
        assert!(!lapin_error_is_transient(&protocol(
            AMQPSoftError::PRECONDITIONFAILED.into()
        )));
        assert!(!lapin_error_is_transient(&protocol(
            AMQPHardError::NOTALLOWED.into()
        )));
        assert!(lapin_error_is_transient(&protocol(
            AMQPHardError::CONNECTIONFORCED.into()
        )));
        assert!(is_precondition_failed(&protocol(
            AMQPSoftError::PRECONDITIONFAILED.into()
        )));
    }

    #[test]
    fn tells_a_refused_message_from_a_failed_connection() {
        let publish = |source: lapin::Error| AmqpError::Publish {
            vhost: "v".into(),
            exchange: "x".into(),
            routing_key: "k".into(),
            source: Box::new(source),
        };
        let returned = AmqpError::Returned {
            vhost: "v".into(),
            exchange: "asw.inbound".into(),
            routing_key: "acdd.VN".into(),
            message_id: None,
            reply_code: 312,
            reply_text: "NO_ROUTE".into(),
        };
        assert!(returned.is_refusal_of_the_message());
        assert!(
            AmqpError::HeadersTooLarge {
                len: 1 << 20,
                max: 1 << 16
            }
            .is_refusal_of_the_message()
        );
        assert!(publish(protocol(AMQPSoftError::ACCESSREFUSED.into())).is_refusal_of_the_message());
        assert!(
            publish(protocol(AMQPSoftError::PRECONDITIONFAILED.into())).is_refusal_of_the_message()
        );
        assert!(!publish(protocol(AMQPHardError::FRAMEERROR.into())).is_refusal_of_the_message());
        let io: lapin::Error = std::io::Error::from(std::io::ErrorKind::BrokenPipe).into();
        assert!(!publish(io).is_refusal_of_the_message());
        let nacked = AmqpError::Nacked {
            vhost: "v".into(),
            exchange: "x".into(),
            routing_key: "k".into(),
            message_id: None,
        };
        assert!(!nacked.is_refusal_of_the_message());
    }

    #[test]
    fn classifies_management_errors() {
        let error = |status| AmqpError::Management {
            method: "PUT",
            path: "/api/vhosts/x".into(),
            status,
            detail: String::new(),
        };
        assert!(error(None).is_transient());
        assert!(error(Some(503)).is_transient());
        assert!(!error(Some(401)).is_transient());
    }
}
