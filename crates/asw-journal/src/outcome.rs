//! The outcomes of recording, moving and replaying a message: each is a value the hub must match.

use std::fmt;

use time::OffsetDateTime;

use crate::{MessageRecord, State};

/// The outcome of [`record`](crate::Journal::record).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Recorded {
    /// First time the journal sees this message.
    New,
    /// Already recorded with the same header and bytes: a duplicate (a redelivery or a resend).
    /// The record says how far it got.
    Existing(Box<MessageRecord>),
    /// Already recorded with the same message id but different content. Never accept it: it is a
    /// forgery, a replay attack, or a sender that reused a message id.
    Conflict(Box<Conflict>),
}

/// A message id recorded before with different content.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Conflict {
    /// What the journal holds.
    pub existing: MessageRecord,
    /// What differs (never empty).
    pub fields: Vec<Field>,
}

/// A part of a message that must match for a second record of it to be a duplicate.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Field {
    /// The bytes (compared by SHA-256 digest).
    Bytes,
    /// The sending member state.
    Sender,
    /// The receiving member state.
    Receiver,
    /// The document kind.
    Kind,
    /// The correlation id.
    CorrelationId,
    /// The document version.
    Version,
    /// The creation time the sender stated.
    CreatedAt,
}

impl Field {
    /// A short name (`bytes`, `sender`, ...).
    pub fn as_str(self) -> &'static str {
        match self {
            Field::Bytes => "bytes",
            Field::Sender => "sender",
            Field::Receiver => "receiver",
            Field::Kind => "kind",
            Field::CorrelationId => "correlation-id",
            Field::Version => "version",
            Field::CreatedAt => "created-at",
        }
    }
}

impl fmt::Display for Field {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The outcome of a move ([`transition`](crate::Journal::transition),
/// [`transition_signed`](crate::Journal::transition_signed), [`discard`](crate::Journal::discard)).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Transition {
    /// Moved, and the move appended to the history.
    Moved {
        /// The state it left.
        from: State,
    },
    /// It already was in that state: nothing changed (a redelivery after a crash).
    AlreadyThere,
    /// It already got further along the happy path (e.g. `sent` reported after `acknowledged`):
    /// nothing changed, nothing to do.
    AlreadyPast {
        /// Where it is.
        current: State,
    },
    /// The move is not allowed from where it is (e.g. `delivered` after `failed`): nothing
    /// changed. The hub must not act as if it had moved.
    Refused {
        /// Where it is.
        current: State,
    },
}

impl Transition {
    /// True unless the move was refused: the message is in the requested state or beyond it on
    /// the happy path, so the hub may go on.
    pub fn reached(self) -> bool {
        !matches!(self, Transition::Refused { .. })
    }
}

/// The outcome of [`replay`](crate::Journal::replay).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Replay {
    /// Taken out of a parked state, back to the state before the stage that failed.
    Replayed {
        /// The parked state it left.
        from: State,
        /// Where it is now; the hub runs the stage after it again.
        to: State,
    },
    /// Already done (`acknowledged`, `delivered`): nothing to replay, nothing changed.
    AlreadyDone {
        /// Where it is.
        current: State,
    },
    /// Still in flight (not parked): nothing changed. Fail or discard it first to replay it.
    NotParked {
        /// Where it is.
        current: State,
    },
}

/// What [`claim_overdue`](crate::Journal::claim_overdue) asks for: which outbound messages wait
/// for a receipt, since when they count as overdue, and how many resends are allowed in all.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OverdueQuery {
    /// Only messages of these kinds (those a partner acknowledges: e-Form D, ACDD).
    pub kinds: Vec<asw_model::DocumentKind>,
    /// Overdue if it entered `queued` or `sent`, or was last resent, at or before this time
    /// (now minus the ack timeout).
    pub due_before: OffsetDateTime,
    /// Resends allowed per message, in total across every hub sharing the journal (0: none).
    pub max_resends: u32,
    /// Routes (kind, receiver) whose channel follows its documents to their outcome itself
    /// (the IPPC ePhyto Hub's tracking): never claimed, reported or resent.
    pub tracked_by_channel: Vec<(asw_model::DocumentKind, asw_model::MemberState)>,
    /// At most this many messages per call.
    pub limit: u32,
}

/// One message [`claim_overdue`](crate::Journal::claim_overdue) claimed for this caller alone:
/// no other caller, in this process or another, is given the same claim.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Overdue {
    /// The message with its signed bytes, as it is now (in `awaiting-ack`).
    pub record: MessageRecord,
    /// True if it just moved to `awaiting-ack`: report it to the back-office (once).
    pub reported: bool,
    /// True if this claim is a resend: publish the bytes to the partner again.
    pub resend: bool,
    /// Resends counted, this one included.
    pub resends: u32,
    /// Since when it waited: when it entered `queued` / `sent`, or was last resent.
    pub waiting_since: OffsetDateTime,
}
