//! The parking lot `asw.parked`, read without taking anything from it for good.
//!
//! AMQP 0-9-1 cannot browse a quorum queue, so the lot is read the way a consumer reads it and
//! then given back. Shared by `aswctl parked | replay` and the console's actions. A passive declare counts the ready messages; a consumer with manual
//! acknowledgement and a prefetch of that count (at most `--limit`) receives them. Each one is
//! then either acknowledged, which removes it, only after what the operator asked for is done
//! (a replay's republish confirmed by the broker, a discard journaled), or returned with
//! `basic.nack(requeue = true)`, one at a time in the order read. A quorum queue delivers returned
//! messages ahead of the rest, in the order they came back, so the lot keeps its order. If the reader
//! dies half-way, the broker returns whatever it had not acknowledged when the connection drops:
//! nothing is lost.
//!
//! `basic.nack`, not `basic.reject`: from RabbitMQ 4.3 a nack does not count against a quorum
//! queue's delivery limit and a reject does. RabbitMQ 4.0 to 4.2 count every return, and their
//! default limit is 20, so there the parking lot needs a policy without a delivery limit
//! (docs/OPERATIONS.md).

use std::fmt;
use std::str::FromStr;
use std::time::Duration;

use anyhow::{Context, bail};
use asw_amqp::{Acker, Connection, Consumer, HeaderValue, Message, Properties};
use asw_journal::{Direction, Journal, MessageSummary};
use asw_model::xml::Limits;
use asw_model::{DocumentKind, Header, MemberState};
use asw_route::names;
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;
use uuid::Uuid;

use crate::views::sha256_hex;

/// How long to wait for the counted messages in all.
const READ_TIMEOUT: Duration = Duration::from_secs(30);
/// How long to wait for the next message once some came: fewer than counted arrive when another
/// consumer holds some.
const IDLE_TIMEOUT: Duration = Duration::from_secs(3);
/// Characters of the SHA-256 shown for a parked message without a message id.
pub const SHORT_DIGEST: usize = 12;
/// Fewest hex characters a `sha256:` reference must give.
const MIN_DIGEST: usize = 8;
/// Broker deliveries of a parked message from which a reader should warn: RabbitMQ 4.0 to 4.2
/// count every return against a quorum queue's delivery limit, 20 by default, and then drop the
/// message.
pub const DELIVERY_WARNING: i64 = 15;

/// One parked message: its headers as the hub wrote them (or, for one the broker parked at its
/// queue's delivery limit, as read from the broker's `x-death`) and its exact bytes.
#[derive(Debug, Clone)]
pub struct Parked {
    /// The ASW message id (AMQP `message_id`, else the `x-asw-message-id` header, else the
    /// document's own header).
    pub message_id: Option<Uuid>,
    /// The stage it failed in (`outbound`, `inbound`, `link.CC`), or the queue the broker
    /// parked it from when no stage consumes that queue.
    pub stage: Option<String>,
    /// The envelope header read from the bytes, when readable. Untrusted for inbound documents
    /// whose signature did not verify: shown, never acted on.
    pub header: Option<Header>,
    /// Stable code of why it was parked (`DELIVERY-LIMIT` when the broker parked it).
    pub reason_code: Option<String>,
    /// Why, readable.
    pub reason: Option<String>,
    /// Attempts made.
    pub attempts: Option<i64>,
    /// When it was parked.
    pub parked_at: Option<OffsetDateTime>,
    /// The routing key it was first published with.
    pub routing_key: Option<String>,
    /// The broker user that first published it.
    pub transport_user: Option<String>,
    /// How often the broker delivered it before (quorum queues' `x-delivery-count`).
    pub broker_deliveries: Option<i64>,
    /// Every property and header.
    pub properties: Properties,
    /// The exact bytes.
    pub body: Vec<u8>,
    /// SHA-256 of the bytes (hex).
    pub sha256: String,
}

/// The latest entry of a message's `x-death` header, when the broker dead-lettered it for its
/// queue's delivery limit. Only the broker moves messages into `asw.parked` with an `x-death`
/// (the hub parks with headers of its own and none of the original's), and the broker puts the
/// entry of the latest dead-lettering first, with that queue's name and the reason: those two
/// are the broker's. The exchange and routing keys of an entry can have come with the message
/// from its publisher (the broker keeps an entry it finds for the same queue and reason).
struct LimitDeath {
    queue: String,
    time: Option<OffsetDateTime>,
    routing_key: Option<String>,
}

impl LimitDeath {
    fn of(properties: &Properties) -> Option<LimitDeath> {
        let Some(HeaderValue::Array(deaths)) = properties.header(names::HEADER_DEATH) else {
            return None;
        };
        let Some(HeaderValue::Table(latest)) = deaths.first() else {
            return None;
        };
        let text = |key: &str| latest.get(key).and_then(HeaderValue::as_str);
        if text("reason") != Some(names::DEATH_DELIVERY_LIMIT) {
            return None;
        }
        let routing_key = match latest.get("routing-keys") {
            Some(HeaderValue::Array(keys)) => keys
                .first()
                .and_then(HeaderValue::as_str)
                .map(str::to_owned),
            _ => None,
        };
        Some(LimitDeath {
            queue: text("queue")?.to_owned(),
            time: latest
                .get("time")
                .and_then(HeaderValue::as_int)
                .and_then(|t| OffsetDateTime::from_unix_timestamp(t).ok()),
            routing_key,
        })
    }
}

impl Parked {
    /// Reads what the hub, or the broker, wrote on a parked message. `own_user` is the hub's
    /// broker user: on a message the broker parked, the `x-asw-*` headers are those its
    /// publisher set, trusted only if that was the hub (a message it moved through a retry
    /// queue), never a partner's.
    pub fn from_message(message: Message, limits: &Limits, own_user: &str) -> Parked {
        let Message {
            body, properties, ..
        } = message;
        let text = |name: &str| {
            properties
                .header(name)
                .and_then(HeaderValue::as_str)
                .map(str::to_owned)
        };
        let message_id = properties
            .message_id
            .as_deref()
            .or_else(|| {
                properties
                    .header(names::HEADER_MESSAGE_ID)
                    .and_then(HeaderValue::as_str)
            })
            .and_then(|s| Uuid::try_parse(s).ok());
        let header = Header::read(&body, limits).ok();
        // The hub parks with the id of the document's header; the broker parks what the
        // publisher sent, which may have no id property: the header names it then too.
        let message_id = message_id.or(header.as_ref().map(|h| h.message_id));
        let attempts = |trusted: bool| {
            properties
                .header(names::HEADER_ATTEMPTS)
                .and_then(HeaderValue::as_int)
                .filter(|_| trusted)
        };
        let broker_deliveries = properties
            .header("x-delivery-count")
            .and_then(HeaderValue::as_int);
        let sha256 = sha256_hex(&body);
        if let Some(death) = LimitDeath::of(&properties) {
            let own = properties.user_id.as_deref() == Some(own_user);
            let trusted = |name: &str| text(name).filter(|_| own);
            let stage = names::stage_of_queue(&death.queue).unwrap_or(death.queue.clone());
            return Parked {
                message_id,
                reason_code: Some(names::REASON_DELIVERY_LIMIT.into()),
                reason: Some(format!(
                    "the broker parked it: it came back to {} more often than the queue's \
                     delivery limit allows (its consumer failed on it or crashed)",
                    death.queue
                )),
                stage: Some(stage),
                header,
                attempts: attempts(own),
                parked_at: death.time,
                routing_key: trusted(names::HEADER_ROUTING_KEY).or(death.routing_key),
                transport_user: trusted(names::HEADER_TRANSPORT_USER)
                    .or_else(|| properties.user_id.clone()),
                broker_deliveries,
                sha256,
                properties,
                body,
            };
        }
        Parked {
            message_id,
            stage: text(names::HEADER_STAGE),
            header,
            reason_code: text(names::HEADER_REASON_CODE),
            reason: text(names::HEADER_REASON),
            attempts: attempts(true),
            parked_at: text(names::HEADER_PARKED_AT)
                .and_then(|t| OffsetDateTime::parse(&t, &Rfc3339).ok()),
            routing_key: text(names::HEADER_ROUTING_KEY),
            transport_user: text(names::HEADER_TRANSPORT_USER),
            broker_deliveries,
            sha256,
            properties,
            body,
        }
    }

    /// How commands name it: the message id, or `sha256:` and the start of the digest when it
    /// has none.
    pub fn reference(&self) -> String {
        match self.message_id {
            Some(id) => id.to_string(),
            None => format!("sha256:{}", &self.sha256[..SHORT_DIGEST]),
        }
    }

    /// The direction its stage stands for (a partner link's is outbound).
    pub fn direction(&self) -> Option<Direction> {
        match self.stage.as_deref()? {
            names::stage::OUTBOUND => Some(Direction::Outbound),
            names::stage::INBOUND => Some(Direction::Inbound),
            // Ours, refused by the IPPC hub, carries our envelope; an import the bare certificate.
            names::stage::IPPC if self.header.is_some() => Some(Direction::Outbound),
            names::stage::IPPC => Some(Direction::Inbound),
            _ if self.link_partner().is_some() => Some(Direction::Outbound),
            _ => None,
        }
    }

    /// The partner whose link it failed in (stage `link.CC`).
    pub fn link_partner(&self) -> Option<MemberState> {
        names::partner_of_link_stage(self.stage.as_deref()?)
    }

    /// The queue a replay puts it back into: the queue of the stage it failed in
    /// (`asw.partner.out.CC` for a partner link, `asw.ippc.out.CC` for a certificate the IPPC
    /// hub refused, `asw.ippc.in` for an import from it, read again by the hub).
    pub fn stage_queue(&self) -> Option<String> {
        let stage = self.stage.as_deref()?;
        if stage == names::stage::IPPC {
            if self.header.is_none() {
                return Some(names::IPPC_IN_QUEUE.to_owned());
            }
            return names::partner_of_ippc_key(self.routing_key.as_deref()?)
                .map(names::ippc_out_queue);
        }
        names::queue_of_stage(stage)
    }

    /// The document kind, from the bytes.
    pub fn kind(&self) -> Option<DocumentKind> {
        self.header.as_ref().map(|h| h.kind)
    }

    /// The other member state: the receiver of what we send, the sender of what we receive
    /// (for an unreadable inbound document, the partner its routing key names).
    pub fn partner(&self, us: MemberState) -> Option<MemberState> {
        if let Some(h) = &self.header {
            return Some(if h.sender == us { h.receiver } else { h.sender });
        }
        if let Some(partner) = self.link_partner() {
            return Some(partner);
        }
        match self.direction()? {
            Direction::Inbound => MemberState::from_alpha2(self.routing_key.as_deref()?),
            Direction::Outbound => None,
        }
    }

    /// True if `target` names it.
    pub fn is(&self, target: &Target) -> bool {
        match target {
            Target::Id(id) => self.message_id == Some(*id),
            Target::Digest(prefix) => self.sha256.starts_with(prefix.as_str()),
        }
    }
}

/// How an operator names a parked message: its message id, or `sha256:PREFIX` of its bytes (for
/// a message whose id could not be read).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Target {
    /// A message id.
    Id(Uuid),
    /// The start of the SHA-256 of the bytes, lower-case hex.
    Digest(String),
}

impl FromStr for Target {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        if let Some(hex) = s.strip_prefix("sha256:") {
            let hex = hex.to_ascii_lowercase();
            if hex.len() < MIN_DIGEST || !hex.chars().all(|c| c.is_ascii_hexdigit()) {
                return Err(format!(
                    "{s:?}: give at least {MIN_DIGEST} hex digits after sha256:"
                ));
            }
            return Ok(Target::Digest(hex));
        }
        Uuid::try_parse(s)
            .map(Target::Id)
            .map_err(|_| format!("{s:?} is neither a message id nor sha256:PREFIX"))
    }
}

impl fmt::Display for Target {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Target::Id(id) => write!(f, "{id}"),
            Target::Digest(hex) => write!(f, "sha256:{hex}"),
        }
    }
}

/// What the journal holds under a parked message's id.
#[derive(Debug, Clone)]
pub enum InJournal {
    /// The parked message has no id or no stage to look it up by.
    NoKey,
    /// Nothing: it was refused before it could be journaled (an inbound document whose signature
    /// did not verify is never journaled under its id), or the journal was failing.
    NotRecorded,
    /// This very message (the same bytes).
    Same(Box<MessageSummary>),
    /// Another document under the same id (a forgery borrowing it, or a reused id).
    Other(Box<MessageSummary>),
}

impl InJournal {
    /// Looks the parked message up.
    pub fn of(journal: &dyn Journal, parked: &Parked) -> anyhow::Result<InJournal> {
        let (Some(id), Some(direction)) = (parked.message_id, parked.direction()) else {
            return Ok(InJournal::NoKey);
        };
        let record = journal
            .get(direction, id)
            .with_context(|| format!("reading {direction} message {id} from the journal"))?;
        Ok(match record {
            None => InJournal::NotRecorded,
            // The bytes first recorded, or (outbound) the signed bytes the journal keeps.
            Some(r)
                if r.summary.digest_hex() == parked.sha256
                    || (direction == Direction::Outbound
                        && sha256_hex(&r.bytes) == parked.sha256) =>
            {
                InJournal::Same(Box::new(r.summary))
            }
            Some(r) => InJournal::Other(Box::new(r.summary)),
        })
    }

    /// A short label for tables: the state, `other:<state>`, `not-recorded` or `-`.
    pub fn label(&self) -> String {
        match self {
            InJournal::NoKey => "-".into(),
            InJournal::NotRecorded => "not-recorded".into(),
            InJournal::Same(s) => s.state.to_string(),
            InJournal::Other(s) => format!("other:{}", s.state),
        }
    }

    /// The journal record under the id, whichever message it is.
    pub fn summary(&self) -> Option<&MessageSummary> {
        match self {
            InJournal::Same(s) | InJournal::Other(s) => Some(s),
            InJournal::NoKey | InJournal::NotRecorded => None,
        }
    }
}

/// The parking lot of one hub, read and held until released.
pub struct ParkingLot {
    connection: Connection,
    consumer: Option<Consumer>,
    held: Vec<Held>,
    ready: u32,
}

struct Held {
    parked: Parked,
    /// `None` once settled.
    acker: Option<Acker>,
}

impl ParkingLot {
    /// Connects with the first of the hub's broker URLs (the nodes of its cluster) that answers
    /// and reads up to `limit` parked messages, in queue order, holding them unacknowledged.
    /// `tls`: the broker connection's (see [`asw_amqp::connect_tls`]); `client`: the connection
    /// name and consumer tag (`aswctl`, `asw-console`).
    pub async fn read(
        client: &str,
        urls: &[String],
        tls: &asw_amqp::ClientTls,
        limit: u32,
        limits: &Limits,
    ) -> anyhow::Result<ParkingLot> {
        let first = urls.first().context("no broker URL")?;
        let own_user = asw_amqp::AmqpUrl::parse(first)?.user().to_owned();
        // One pass over the nodes, no waiting: an operator's command reports, it does not linger.
        let once = asw_amqp::Backoff {
            max_attempts: Some(1),
            ..asw_amqp::Backoff::default()
        };
        let connection = asw_amqp::connect_any_tls_with_backoff(urls, client, tls, &once)
            .await
            .context("connecting to the hub's broker")?;
        let counting = connection.open_channel().await?;
        let ready = asw_amqp::ready_messages(&counting, names::PARKED_QUEUE)
            .await
            .with_context(|| format!("counting the messages in {}", names::PARKED_QUEUE))?;
        let _ = counting.close().await;
        let mut lot = ParkingLot {
            connection,
            consumer: None,
            held: Vec::new(),
            ready,
        };
        let want = ready.min(limit);
        if want == 0 {
            return Ok(lot);
        }
        let prefetch = u16::try_from(want).unwrap_or(u16::MAX);
        let want = usize::from(prefetch);
        let channel = lot.connection.open_channel().await?;
        let mut consumer = Consumer::start(channel, names::PARKED_QUEUE, prefetch, client).await?;
        let deadline = tokio::time::Instant::now() + READ_TIMEOUT;
        while lot.held.len() < want {
            let until = if lot.held.is_empty() {
                deadline
            } else {
                deadline.min(tokio::time::Instant::now() + IDLE_TIMEOUT)
            };
            match tokio::time::timeout_at(until, consumer.next()).await {
                Ok(Some(Ok(delivery))) => lot.held.push(Held {
                    parked: Parked::from_message(delivery.message, limits, &own_user),
                    acker: Some(delivery.acker),
                }),
                Ok(Some(Err(e))) => {
                    return Err(e).context(format!("reading {}", names::PARKED_QUEUE));
                }
                // Cancelled by the broker, or fewer came than counted (another consumer holds
                // them): what came is what there is.
                Ok(None) | Err(_) => break,
            }
        }
        // Nothing more is wanted; those held can still be settled.
        consumer.cancel().await?;
        lot.consumer = Some(consumer);
        Ok(lot)
    }

    /// The most broker deliveries of a message read (see [`DELIVERY_WARNING`]).
    pub fn most_deliveries(&self) -> Option<i64> {
        self.held
            .iter()
            .filter_map(|h| h.parked.broker_deliveries)
            .max()
    }

    /// Ready messages the queue held when it was counted.
    pub fn ready(&self) -> u32 {
        self.ready
    }

    /// Messages read.
    pub fn len(&self) -> usize {
        self.held.len()
    }

    /// True if none was read.
    pub fn is_empty(&self) -> bool {
        self.held.is_empty()
    }

    /// The messages read and still held, with their positions, in queue order.
    pub fn messages(&self) -> impl Iterator<Item = (usize, &Parked)> {
        self.held
            .iter()
            .enumerate()
            .filter(|(_, h)| h.acker.is_some())
            .map(|(i, h)| (i, &h.parked))
    }

    /// The message at `index`.
    pub fn message(&self, index: usize) -> Option<&Parked> {
        self.held.get(index).map(|h| &h.parked)
    }

    /// The broker connection (for a publisher of its own).
    pub fn connection(&self) -> &Connection {
        &self.connection
    }

    /// Acknowledges the message at `index`: it leaves the parking lot for good. Call only once
    /// what replaces it is safe (republish confirmed, discard journaled).
    pub async fn remove(&mut self, index: usize) -> anyhow::Result<()> {
        let Some(acker) = self.held.get_mut(index).and_then(|h| h.acker.take()) else {
            bail!("parked message {index} was already settled");
        };
        acker
            .ack()
            .await
            .with_context(|| format!("removing a message from {}", names::PARKED_QUEUE))
    }

    /// Gives back every message still held, one at a time in the order read, and disconnects.
    /// A failure here loses nothing: the broker returns what is unacknowledged when the
    /// connection closes.
    ///
    /// It returns once the broker counts the messages given back as ready again (or after
    /// [`RELEASE_WAIT`]): a quorum queue applies a requeue a moment after it was asked, and an
    /// operator's next command, counting the ready messages, would otherwise miss them.
    pub async fn release(mut self) -> anyhow::Result<()> {
        let mut failed = None;
        let mut given_back = 0u32;
        for held in &mut self.held {
            if let Some(acker) = held.acker.take() {
                match acker.nack(true).await {
                    Ok(()) => given_back += 1,
                    Err(e) => {
                        failed.get_or_insert(e);
                    }
                }
            }
        }
        drop(self.consumer.take());
        if given_back > 0 {
            self.await_ready(given_back).await;
        }
        let _ = self.connection.close().await;
        match failed {
            None => Ok(()),
            Some(e) => Err(e).context(format!(
                "giving messages back to {} (the broker returns them on disconnect)",
                names::PARKED_QUEUE
            )),
        }
    }
}

/// How long [`ParkingLot::release`] waits for the broker to count what was given back.
pub const RELEASE_WAIT: std::time::Duration = std::time::Duration::from_secs(5);

impl ParkingLot {
    /// Waits until at least `count` messages are ready in the parking lot (those just given
    /// back), for at most [`RELEASE_WAIT`].
    async fn await_ready(&self, count: u32) {
        let Ok(channel) = self.connection.open_channel().await else {
            return;
        };
        let deadline = tokio::time::Instant::now() + RELEASE_WAIT;
        while tokio::time::Instant::now() < deadline {
            match asw_amqp::ready_messages(&channel, names::PARKED_QUEUE).await {
                Ok(ready) if ready < count => {
                    tokio::time::sleep(std::time::Duration::from_millis(20)).await;
                }
                _ => break,
            }
        }
        let _ = channel.close().await;
    }
}
