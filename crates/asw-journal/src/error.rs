//! The journal's error type: what failed, on which message, and whether retrying later can help.

use std::fmt;

use uuid::Uuid;

use crate::Direction;

/// The error type of a database backend, kept opaque so that callers do not depend on the backend.
pub type BoxError = Box<dyn std::error::Error + Send + Sync + 'static>;

/// Everything that can go wrong in the journal. A conflicting duplicate or a refused move is not an
/// error but an outcome ([`Recorded`](crate::Recorded), [`Transition`](crate::Transition)).
#[derive(Debug, thiserror::Error)]
pub enum JournalError {
    /// The journal could not be opened or its schema created.
    #[error("cannot open the journal at {location}")]
    Open {
        /// The database file, or the PostgreSQL URL without its password.
        location: String,
        /// See [`JournalError::is_transient`].
        transient: bool,
        /// What the database said.
        #[source]
        source: BoxError,
    },
    /// The database was written by a newer aswhub.
    #[error(
        "the journal at {location} has schema version {found}, this build knows versions up to {supported}"
    )]
    SchemaTooNew {
        /// The database file, or the PostgreSQL URL without its password.
        location: String,
        /// Its schema version.
        found: i64,
        /// The newest version this build knows.
        supported: i64,
    },
    /// A database operation failed.
    #[error("journal {operation} of {subject} failed")]
    Database {
        /// What was being done.
        operation: Operation,
        /// On what.
        subject: Subject,
        /// See [`JournalError::is_transient`].
        transient: bool,
        /// What the database said.
        #[source]
        source: BoxError,
    },
    /// The message is not in the journal.
    #[error("journal {operation}: {subject} is not in the journal")]
    NotFound {
        /// What was being done.
        operation: Operation,
        /// On what.
        subject: Subject,
    },
    /// The request cannot be carried out as asked (a caller's mistake, not the message's).
    #[error("journal {operation} of {subject}: {detail}")]
    InvalidRequest {
        /// What was being done.
        operation: Operation,
        /// On what.
        subject: Subject,
        /// What is wrong.
        detail: String,
    },
    /// A stored value cannot be read back: the database was changed outside aswhub, or a member
    /// state or document kind was removed from this build.
    #[error("journal {operation} of {subject}: stored {column} {value:?} cannot be read")]
    Corrupt {
        /// What was being done.
        operation: Operation,
        /// On what.
        subject: Subject,
        /// The column.
        column: &'static str,
        /// The stored value, as text.
        value: String,
    },
    /// A name that is not a direction, state or event (from the command line, or storage).
    #[error("unknown journal {what} {value:?}")]
    UnknownName {
        /// `direction`, `state` or `event`.
        what: &'static str,
        /// The name given.
        value: String,
    },
}

impl JournalError {
    /// True if the same call may succeed later without any change to the request: the database is
    /// busy or locked by another process, or its file or directory is unavailable, read-only, full
    /// or failing I/O; or the PostgreSQL server cannot be reached, dropped the connection, is
    /// starting up, shutting down, out of resources or read-only (a standby). The hub retries the
    /// message later rather than dead-lettering it. Everything else (a constraint violation, a
    /// request the database refuses, a bad URL, a failed login) is a bug, a damaged database, a
    /// configuration error or an unsupported schema, and retrying cannot help.
    pub fn is_transient(&self) -> bool {
        match self {
            JournalError::Open { transient, .. } | JournalError::Database { transient, .. } => {
                *transient
            }
            JournalError::SchemaTooNew { .. }
            | JournalError::NotFound { .. }
            | JournalError::InvalidRequest { .. }
            | JournalError::Corrupt { .. }
            | JournalError::UnknownName { .. } => false,
        }
    }
}

/// A journal operation, named in errors.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Operation {
    /// Recording a message.
    Record,
    /// Moving a message.
    Transition,
    /// Storing the signed bytes of a message.
    TransitionSigned,
    /// Counting a retry.
    BumpAttempts,
    /// Replaying a message.
    Replay,
    /// Discarding a message.
    Discard,
    /// Reading a message.
    Get,
    /// Reading a message's history.
    History,
    /// Looking up the message another one answers.
    FindOriginal,
    /// Looking up the messages answering another one.
    Answers,
    /// Listing messages.
    List,
    /// Claiming messages whose receipt is overdue.
    ClaimOverdue,
    /// Committing the writes of a batch ([`Journal::batch`](crate::Journal::batch)).
    Batch,
    /// Removing archived messages.
    Remove,
    /// Checking that the journal takes writes ([`Journal::probe_write`](crate::Journal::probe_write)).
    Probe,
    /// Moving a message and keeping its channel reference.
    TransitionWithRef,
    /// Looking up a message by its channel reference.
    FindByTransportRef,
    /// Recording how a channel's document was settled.
    RecordSettlement,
    /// Looking up how a channel's document was settled.
    Settlement,
}

impl fmt::Display for Operation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Operation::Record => "record",
            Operation::Transition => "transition",
            Operation::TransitionSigned => "signed transition",
            Operation::BumpAttempts => "retry count",
            Operation::Replay => "replay",
            Operation::Discard => "discard",
            Operation::Get => "read",
            Operation::History => "history",
            Operation::FindOriginal => "original lookup",
            Operation::Answers => "answers lookup",
            Operation::List => "listing",
            Operation::ClaimOverdue => "overdue claim",
            Operation::Probe => "write probe",
            Operation::Batch => "batch commit",
            Operation::Remove => "removal",
            Operation::TransitionWithRef => "referenced transition",
            Operation::FindByTransportRef => "transport reference lookup",
            Operation::RecordSettlement => "settlement record",
            Operation::Settlement => "settlement lookup",
        })
    }
}

/// What a journal operation was about, named in errors.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Subject {
    /// One message.
    Message {
        /// Its direction.
        direction: Direction,
        /// Its id.
        message_id: Uuid,
    },
    /// The messages answering this message id.
    AnswersTo(Uuid),
    /// Many messages.
    Messages,
    /// The settlements of channels' documents.
    Settlements,
}

impl fmt::Display for Subject {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Subject::Message {
                direction,
                message_id,
            } => write!(f, "{direction} message {message_id}"),
            Subject::AnswersTo(id) => write!(f, "the messages answering {id}"),
            Subject::Messages => f.write_str("messages"),
            Subject::Settlements => f.write_str("channel settlements"),
        }
    }
}
