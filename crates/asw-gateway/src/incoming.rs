//! A delivery as the hub reads it, once: its body shared (never copied again), and what the hub
//! believes of the `x-asw-*` headers that steer it: only those of messages the hub itself
//! published (a retry, a replay), whose bus envelope is decoded here and nowhere else.

use asw_amqp::{HeaderValue, Message};
use asw_model::Header;
use asw_model::bus::{BUS_HEADER, BusEnvelope};
use asw_route::names::{self, HEADER_ROUTING_KEY, HEADER_TRANSPORT_USER};
use bytes::Bytes;
use time::OffsetDateTime;

/// One delivery, read once.
#[derive(Debug, Clone)]
pub(crate) struct Incoming {
    /// The exact bytes delivered, shared with the steps, the worker and the publishes.
    pub(crate) body: Bytes,
    /// The exchange it was published to.
    pub(crate) exchange: String,
    /// The routing key it stands for: its own, or the original one when the hub moved it
    /// through a retry queue (it then comes back with the stage queue's name).
    pub(crate) routing_key: String,
    /// The broker user that published it to the hub: its validated `user_id`, or, on a message
    /// the hub itself moved, the original publisher kept in a header.
    pub(crate) transport_user: Option<String>,
    /// The bus envelope it carries, if the hub itself published it: the one source of its
    /// attempts, stage and first sighting. `None` for anything a partner or back-office
    /// published, whatever header it set.
    pub(crate) carried: Option<BusEnvelope>,
    /// Its content type (XML when it gave none).
    pub(crate) content_type: String,
    /// Its message id property.
    pub(crate) message_id: Option<String>,
}

impl Incoming {
    /// Reads `message`, delivered to a hub whose own broker user is `own_user`. The broker
    /// checks `user_id` against the connection's user, so no partner or back-office with a user
    /// of its own can pass for the hub.
    pub(crate) fn read(own_user: &str, message: Message) -> Incoming {
        let Message {
            body,
            exchange,
            routing_key,
            properties,
            ..
        } = message;
        let moved_by_us = properties.user_id.as_deref() == Some(own_user);
        let believed = |name: &str| {
            moved_by_us
                .then(|| properties.header(name))
                .flatten()
                .and_then(HeaderValue::as_str)
                .map(str::to_owned)
        };
        let routing_key = believed(HEADER_ROUTING_KEY).unwrap_or(routing_key);
        let transport_user = if moved_by_us {
            believed(HEADER_TRANSPORT_USER)
        } else {
            properties.user_id.clone()
        };
        let carried = match moved_by_us.then(|| properties.header(BUS_HEADER)).flatten() {
            Some(HeaderValue::Bytes(bytes)) => BusEnvelope::from_bytes(bytes).ok(),
            _ => None,
        };
        Incoming {
            body: Bytes::from(body),
            exchange,
            routing_key,
            transport_user,
            carried,
            content_type: properties
                .content_type
                .clone()
                .unwrap_or_else(|| names::CONTENT_TYPE_XML.into()),
            message_id: properties.message_id.clone(),
        }
    }

    /// Attempts made so far, as the hub counted them on its own retries; 0 for a first sighting.
    pub(crate) fn attempts(&self) -> u32 {
        self.carried.as_ref().map_or(0, |e| e.attempts)
    }

    /// The bus envelope of this delivery at `stage`, keeping the first sighting of the one it
    /// carried.
    pub(crate) fn envelope(
        &self,
        header: Option<&Header>,
        stage: &str,
        attempts: u32,
        started: OffsetDateTime,
    ) -> BusEnvelope {
        let mut env = envelope(header, stage, attempts, started);
        if let Some(first) = self
            .carried
            .as_ref()
            .map(|e| e.first_seen_unix_ms)
            .filter(|&ms| ms > 0)
        {
            env.first_seen_unix_ms = first;
        }
        env
    }
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

#[cfg(test)]
mod tests {
    use super::*;
    use asw_amqp::Properties;

    fn message(user: Option<&str>, properties: Properties) -> Message {
        let properties = match user {
            Some(user) => properties.with_user_id(user),
            None => properties,
        };
        Message {
            body: b"<x/>".to_vec(),
            exchange: "asw.hub".into(),
            routing_key: "asw.hub.inbound".into(),
            redelivered: false,
            properties,
        }
    }

    #[test]
    fn steering_headers_are_believed_only_on_what_the_hub_published_itself() {
        let mut carried = envelope(None, "inbound", 3, OffsetDateTime::UNIX_EPOCH);
        carried.first_seen_unix_ms = 42;
        let steering = || {
            Properties::new()
                .with_header(HEADER_ROUTING_KEY, "TH")
                .with_header(HEADER_TRANSPORT_USER, "partner-TH")
                .with_header(BUS_HEADER, HeaderValue::Bytes(carried.to_bytes()))
        };
        let ours = Incoming::read("aswhub", message(Some("aswhub"), steering()));
        assert_eq!(ours.routing_key, "TH");
        assert_eq!(ours.transport_user.as_deref(), Some("partner-TH"));
        assert_eq!(ours.attempts(), 3);
        let env = ours.envelope(None, "inbound", 4, OffsetDateTime::now_utc());
        assert_eq!(env.first_seen_unix_ms, 42, "the first sighting survives");

        // The same headers set by a partner steer nothing.
        let forged = Incoming::read("aswhub", message(Some("partner-SG"), steering()));
        assert_eq!(forged.routing_key, "asw.hub.inbound");
        assert_eq!(forged.transport_user.as_deref(), Some("partner-SG"));
        assert_eq!(forged.attempts(), 0);
        assert!(forged.carried.is_none());
        let anonymous = Incoming::read("aswhub", message(None, steering()));
        assert_eq!(anonymous.transport_user, None);
        assert_eq!(anonymous.content_type, names::CONTENT_TYPE_XML);
    }
}
