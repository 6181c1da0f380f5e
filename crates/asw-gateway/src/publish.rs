//! Publishing for one lane of a pipeline (or one partner link), and how a failed publish is
//! told apart: a failure of the broker session, which ends it, or the broker's refusal of that
//! one message, which parks the message and lets the lane go on.
//!
//! A refusal on the broker's side (access refused, a precondition such as the message's size)
//! closes the channel it came on, not the connection: [`LanePublisher`] then opens a new channel
//! for the next publish, so one bad message never costs the lane or the session.

use std::sync::Arc;

use asw_amqp::{AmqpError, ConfirmingPublisher, Connection, Properties};
use asw_model::Header;

/// A confirming publisher that replaces its channel when the broker closed it over one message.
#[derive(Debug)]
pub(crate) struct LanePublisher {
    connection: Arc<Connection>,
    publisher: ConfirmingPublisher,
}

impl LanePublisher {
    /// A publisher on a channel of its own on `connection`.
    pub(crate) async fn open(connection: Arc<Connection>) -> Result<LanePublisher, AmqpError> {
        let publisher = ConfirmingPublisher::new(connection.open_channel().await?).await?;
        Ok(LanePublisher {
            connection,
            publisher,
        })
    }

    /// Publishes and waits for the broker's confirm (see [`ConfirmingPublisher::publish`]),
    /// first opening a new channel if the last one was closed by a refusal.
    pub(crate) async fn publish(
        &mut self,
        exchange: &str,
        routing_key: &str,
        body: &[u8],
        properties: &Properties,
    ) -> Result<(), AmqpError> {
        if !self.publisher.channel().is_open() {
            self.publisher =
                ConfirmingPublisher::new(self.connection.open_channel().await?).await?;
        }
        self.publisher
            .publish(exchange, routing_key, body, properties)
            .await
    }
}

/// Why handling a delivery stopped before its acknowledgement.
#[derive(Debug)]
pub(crate) enum Failure {
    /// The broker session failed (connection lost, channel unusable, timeout): the session ends
    /// and the unacknowledged delivery comes back on the next one.
    Session(AmqpError),
    /// The broker refused a publish this delivery led to, for that message alone (unroutable,
    /// access refused, too large): publishing it again would fail the same way, so the
    /// delivery is parked with the reason.
    Refused {
        /// The broker's refusal.
        error: AmqpError,
        /// The document's header, when it was verified (inbound) or is the hub's own (outbound),
        /// so that its journal entry may be moved to `failed`.
        header: Option<Header>,
    },
    /// The hub itself failed on this delivery (a panic) or refused it before any work (too
    /// large): parked with that reason.
    Fault(crate::process::Refusal),
}

impl Failure {
    /// Classifies a publish error of a delivery whose trusted header is `header`.
    pub(crate) fn of(error: AmqpError, header: Option<&Header>) -> Failure {
        if error.is_refusal_of_the_message() {
            Failure::Refused {
                error,
                header: header.cloned(),
            }
        } else {
            Failure::Session(error)
        }
    }
}

impl From<AmqpError> for Failure {
    fn from(error: AmqpError) -> Failure {
        Failure::of(error, None)
    }
}

/// The stable reason code for a refused publish: `DELIVERY-UNROUTABLE` when no queue is bound
/// for it (a back-office that binds only some kinds, a partner queue not declared), otherwise
/// `PUBLISH-REFUSED`.
pub(crate) fn refusal_code(error: &AmqpError) -> &'static str {
    match error {
        AmqpError::Returned { .. } => UNROUTABLE,
        _ => REFUSED,
    }
}

/// Reason code: a publish matched no queue (`basic.return`).
pub const UNROUTABLE: &str = "DELIVERY-UNROUTABLE";
/// Reason code: the broker refused a publish for that message (access, size, headers).
pub const REFUSED: &str = "PUBLISH-REFUSED";

/// The most bytes of a reason put into a header or the bus envelope. The journal keeps every
/// problem in full; headers carry a bounded summary, so a document's own text (an element name
/// echoed by a refusal, say) can never make a message too large for a broker frame.
pub const MAX_REASON_BYTES: usize = 1024;

/// `text` cut to at most `max` bytes on a character boundary, marked with `…` when cut.
pub fn bounded(text: &str, max: usize) -> String {
    if text.len() <= max {
        return text.to_owned();
    }
    let mut end = max.saturating_sub('…'.len_utf8());
    while end > 0 && !text.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}…", &text[..end])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bounded_cuts_on_a_character_boundary_and_says_so() {
        assert_eq!(bounded("short", 10), "short");
        let long = "é".repeat(1000);
        let cut = bounded(&long, 101);
        assert!(cut.len() <= 101, "{}", cut.len());
        assert!(cut.ends_with('…'));
        assert!(cut.starts_with("éé"));
        assert_eq!(bounded("abcdef", 4), "a…");
    }

    #[test]
    fn a_returned_message_is_unroutable_and_parks_while_a_lost_connection_ends_the_session() {
        let returned = AmqpError::Returned {
            vhost: "v".into(),
            exchange: "asw.inbound".into(),
            routing_key: "acdd.VN".into(),
            message_id: None,
            reply_code: 312,
            reply_text: "NO_ROUTE".into(),
        };
        assert_eq!(refusal_code(&returned), UNROUTABLE);
        assert!(matches!(
            Failure::of(returned, None),
            Failure::Refused { header: None, .. }
        ));
        let too_large = AmqpError::HeadersTooLarge {
            len: 100_000,
            max: 65_536,
        };
        assert_eq!(refusal_code(&too_large), REFUSED);
        let timeout = AmqpError::Timeout {
            vhost: "v".into(),
            action: "confirm".into(),
            after: std::time::Duration::from_secs(30),
        };
        assert!(matches!(Failure::from(timeout), Failure::Session(_)));
    }
}
