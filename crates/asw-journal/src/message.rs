//! What the journal holds about a message: its header, state, bytes and history, and the filter
//! for listing messages.

use std::fmt;
use std::str::FromStr;

use asw_model::{DocumentKind, Header, MemberState};
use time::OffsetDateTime;

use crate::{Direction, JournalError, State};

/// Why a message moved or is retried: a stable code for machines and a text for people.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reason {
    /// Stable identifier (`signature-invalid`, `partner-unreachable`, a schema rule id, ...).
    pub code: String,
    /// Human-readable detail.
    pub text: String,
}

impl Reason {
    /// A reason with this code and text.
    pub fn new(code: impl Into<String>, text: impl Into<String>) -> Reason {
        Reason {
            code: code.into(),
            text: text.into(),
        }
    }
}

impl fmt::Display for Reason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.code, self.text)
    }
}

/// A message as the journal knows it, without its bytes (what listings return).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MessageSummary {
    /// Which way it travels.
    pub direction: Direction,
    /// The envelope header as first recorded.
    pub header: Header,
    /// Current state.
    pub state: State,
    /// For a parked message (`rejected`, `failed`, `discarded`): the state it was in before, which
    /// decides where a replay takes it.
    pub parked_from: Option<State>,
    /// Attempts at the current stage that failed and were retried (reset when the state moves).
    pub attempts: u32,
    /// The reason given with the last move or retry, if any.
    pub reason: Option<Reason>,
    /// When the hub first recorded it (UTC, microsecond precision).
    pub first_seen: OffsetDateTime,
    /// When it last moved or was retried (UTC, microsecond precision).
    pub updated_at: OffsetDateTime,
    /// SHA-256 of the bytes first recorded: from the back-office (outbound) or the partner
    /// (inbound). A later record of the same message id must match it.
    pub digest: [u8; 32],
    /// The channel's own reference for the message, if its channel gave one: the IPPC ePhyto
    /// Hub's delivery number (`hubDeliveryNumber`) of a certificate sent or pulled through it.
    /// Kept by [`transition_with_ref`](crate::Journal::transition_with_ref).
    pub transport_ref: Option<String>,
}

impl MessageSummary {
    /// The message id.
    pub fn message_id(&self) -> uuid::Uuid {
        self.header.message_id
    }

    /// The digest as lower-case hex.
    pub fn digest_hex(&self) -> String {
        self.digest.iter().map(|b| format!("{b:02x}")).collect()
    }
}

/// A message with its bytes: exactly as received (inbound), or as taken from the back-office and,
/// once signed, exactly as signed (outbound).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MessageRecord {
    /// Everything but the bytes.
    pub summary: MessageSummary,
    /// The exact bytes.
    pub bytes: Vec<u8>,
}

/// What kind of entry a history row is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Event {
    /// The message was first recorded (no previous state).
    Recorded,
    /// The hub moved it.
    Moved,
    /// An operator replayed it out of a parked state.
    Replayed,
    /// An operator discarded it.
    Discarded,
    /// The hub published it to the partner again (`awaiting-ack` to `awaiting-ack`), the same
    /// bytes under the same id, because its receipt was late.
    Resent,
}

impl Event {
    /// Every event.
    pub const ALL: [Event; 5] = [
        Event::Recorded,
        Event::Moved,
        Event::Replayed,
        Event::Discarded,
        Event::Resent,
    ];

    /// The name used in storage (`recorded`, `moved`, `replayed`, `discarded`, `resent`).
    pub fn as_str(self) -> &'static str {
        match self {
            Event::Recorded => "recorded",
            Event::Moved => "moved",
            Event::Replayed => "replayed",
            Event::Discarded => "discarded",
            Event::Resent => "resent",
        }
    }
}

impl FromStr for Event {
    type Err = JournalError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Event::ALL
            .into_iter()
            .find(|e| e.as_str() == s)
            .ok_or_else(|| JournalError::UnknownName {
                what: "event",
                value: s.to_owned(),
            })
    }
}

impl fmt::Display for Event {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One row of a message's history: every state it entered, in order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TransitionRecord {
    /// Position in the journal's history (increasing across all messages).
    pub seq: i64,
    /// What happened.
    pub event: Event,
    /// The state before; `None` for [`Event::Recorded`].
    pub from: Option<State>,
    /// The state after.
    pub to: State,
    /// When (UTC, microsecond precision).
    pub at: OffsetDateTime,
    /// Why, if a reason was given.
    pub reason: Option<Reason>,
    /// Who: the hub process (its configured actor name) or the operator.
    pub actor: String,
}

/// Which messages [`list`](crate::Journal::list) returns. Every field set narrows the result.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Filter {
    /// Only this direction.
    pub direction: Option<Direction>,
    /// Only this document kind.
    pub kind: Option<DocumentKind>,
    /// Only messages this member state sent or received.
    pub partner: Option<MemberState>,
    /// Only messages now in this state.
    pub state: Option<State>,
    /// Only messages last updated at or after this time.
    pub since: Option<OffsetDateTime>,
    /// Only messages last updated before this time.
    pub until: Option<OffsetDateTime>,
    /// Only messages whose last reason has exactly this code.
    pub reason_code: Option<String>,
    /// Only messages whose last reason's text contains this (case-insensitive for ASCII).
    pub reason_text: Option<String>,
    /// Newest first instead of oldest first (by last update).
    pub newest_first: bool,
    /// Skip this many messages of the ordered result first (for paging).
    pub offset: u32,
    /// At most this many messages.
    pub limit: u32,
}

impl Filter {
    /// The limit of a default filter.
    pub const DEFAULT_LIMIT: u32 = 1000;
}

/// `text` as a SQL `LIKE` pattern matching any text that contains it, with a backslash as the escape
/// character (so `%` and `_` in `text` match themselves).
pub(crate) fn contains_pattern(text: &str) -> String {
    let mut pattern = String::with_capacity(text.len() + 2);
    pattern.push('%');
    for c in text.chars() {
        if matches!(c, '%' | '_' | '\\') {
            pattern.push('\\');
        }
        pattern.push(c);
    }
    pattern.push('%');
    pattern
}

impl Default for Filter {
    /// Every message, oldest first, at most [`Filter::DEFAULT_LIMIT`].
    fn default() -> Filter {
        Filter {
            direction: None,
            kind: None,
            partner: None,
            state: None,
            since: None,
            until: None,
            reason_code: None,
            reason_text: None,
            newest_first: false,
            offset: 0,
            limit: Filter::DEFAULT_LIMIT,
        }
    }
}

/// What the hub did with a document a channel handed it, kept by the channel's own reference for
/// it so that the same document handed over again (the channel lost our acknowledgement) gets
/// the same answer and is never delivered twice. See
/// [`record_settlement`](crate::Journal::record_settlement).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChannelSettlement {
    /// The channel (`ippc` for the IPPC ePhyto Hub).
    pub channel: String,
    /// The channel's reference for the document (the hub's delivery number).
    pub reference: String,
    /// What was done.
    pub outcome: SettlementOutcome,
    /// The text sent back with the acknowledgement (a warning, the reason of a refusal), if any.
    pub note: Option<String>,
    /// The inbound message the document became, if it became one.
    pub message_id: Option<uuid::Uuid>,
    /// When (UTC, microsecond precision).
    pub at: OffsetDateTime,
}

/// What the hub did with a document a channel handed it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum SettlementOutcome {
    /// Delivered to the back-office (with warnings, if the note says so).
    Delivered,
    /// Kept in the parking lot with a reason.
    Parked,
    /// Refused back to the channel, nothing kept.
    Refused,
}

impl SettlementOutcome {
    /// Every outcome.
    pub const ALL: [SettlementOutcome; 3] = [
        SettlementOutcome::Delivered,
        SettlementOutcome::Parked,
        SettlementOutcome::Refused,
    ];

    /// The name used in storage (`delivered`, `parked`, `refused`).
    pub fn as_str(self) -> &'static str {
        match self {
            SettlementOutcome::Delivered => "delivered",
            SettlementOutcome::Parked => "parked",
            SettlementOutcome::Refused => "refused",
        }
    }
}

impl FromStr for SettlementOutcome {
    type Err = JournalError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        SettlementOutcome::ALL
            .into_iter()
            .find(|o| o.as_str() == s)
            .ok_or_else(|| JournalError::UnknownName {
                what: "settlement outcome",
                value: s.to_owned(),
            })
    }
}

impl fmt::Display for SettlementOutcome {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A settled message to remove from the journal once archived, as it was when archived: it is
/// removed only if its last update is still this one.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Removal {
    /// Which way it travels.
    pub direction: Direction,
    /// Its id.
    pub message_id: uuid::Uuid,
    /// Its last update when archived (as listed).
    pub updated_at: OffsetDateTime,
}
