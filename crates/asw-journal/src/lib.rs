//! The journal of every message in and out of the hub and its state: for audit, duplicate
//! detection, correlation of answers with originals, and replay.
//!
//! The [`Journal`] trait is what the hub uses. Two backends implement it with the same behaviour,
//! checked by one test suite run against both:
//!
//! - [`SqliteJournal`], an embedded SQLite database file: nothing to run, for one machine (several
//!   hub processes on that machine may share the file);
//! - [`PostgresJournal`], a PostgreSQL database: for hub processes on several machines, and for
//!   operators who already run PostgreSQL.
//!
//! The API is synchronous: the hub calls it from blocking worker threads, never from the async
//! reactor.
//!
//! # Choosing the backend
//!
//! [`open`] picks the backend from the form of what it is given:
//!
//! | given | backend |
//! | --- | --- |
//! | `postgres://user@host:5432/database` or `postgresql://..` | [`PostgresJournal`] |
//! | `sqlite:///var/lib/aswhub/journal.db` (`sqlite://` then the path) | [`SqliteJournal`] |
//! | `/var/lib/aswhub/journal.db`, `journal.db` (a path) | [`SqliteJournal`] |
//! | any other `scheme://..` | an error, not a file of that name |
//!
//! A PostgreSQL URL takes the parameters of the `postgres` crate (libpq's, mostly): for example
//! `postgres://aswhub:secret@db.internal/aswhub?connect_timeout=10` or, for tables in a schema of
//! their own, `..?options=-csearch_path%3Djournal`. The database (and that schema) must exist; the
//! journal creates its tables on open. TLS is not supported: reach the server over a trusted
//! network or a local socket (`postgres://aswhub@%2Frun%2Fpostgresql/aswhub`). For settings the URL
//! does not carry (connections per handle, lock timeout, actor name), call
//! [`PostgresJournal::open_with`] or [`SqliteJournal::open_with`] directly.
//!
//! ```no_run
//! # fn main() -> Result<(), asw_journal::JournalError> {
//! use std::sync::Arc;
//! let journal: Arc<dyn asw_journal::Journal> =
//!     asw_journal::open("postgres://aswhub@127.0.0.1/aswhub")?.into();
//! # Ok(())
//! # }
//! ```
//!
//! # Sharing one journal
//!
//! Correctness never rests on a process-local lock, so several hub processes may share one
//! journal: a message is recorded with `INSERT .. ON CONFLICT DO NOTHING` inside a write
//! transaction, and a state moves by compare-and-set (`UPDATE .. WHERE state = <the state read>`)
//! inside a write transaction, allowed only if [`TRANSITIONS`] allows it. Of two processes racing,
//! exactly one wins and the other is told what happened instead. SQLite takes its database-wide
//! write lock first (`BEGIN IMMEDIATE`); PostgreSQL locks the message's row as it reads it
//! (`SELECT .. FOR UPDATE`), as [`PostgresJournal`] tells.
//!
//! Times are passed in by the caller (`at`), stored in UTC with microsecond precision (what
//! PostgreSQL's `timestamptz` keeps), and come back in UTC.

mod error;
mod message;
mod outcome;
mod pool;
mod postgresql;
mod request;
mod schema;
mod sqlite;
mod state;

pub use error::{BoxError, JournalError, Operation, Subject};
pub use message::{
    ChannelSettlement, Event, Filter, MessageRecord, MessageSummary, Reason, Removal,
    SettlementOutcome, TransitionRecord,
};
pub use outcome::{Conflict, Field, Overdue, OverdueQuery, Recorded, Replay, Transition};
pub use postgresql::{PostgresJournal, PostgresOptions};
pub use sqlite::{SqliteJournal, SqliteOptions, Synchronous};
pub use state::{Direction, State, TRANSITIONS, is_allowed, replay_target};

use std::path::Path;

use asw_model::Header;
use time::OffsetDateTime;
use uuid::Uuid;

/// Opens the journal at `location` with default options, choosing the backend by its form (see
/// [the crate documentation](crate#choosing-the-backend)): a `postgres://` or `postgresql://` URL
/// opens a [`PostgresJournal`]; `sqlite://<path>` or a plain path a [`SqliteJournal`]. Another
/// `scheme://` is refused rather than taken for a file name.
///
/// Returns a `Box`; the hub shares it as an `Arc<dyn Journal>` (`Arc::from(box)` or `.into()`).
pub fn open(location: impl AsRef<Path>) -> Result<Box<dyn Journal>, JournalError> {
    open_with_tls(location, &asw_tls::TlsFiles::default())
}

/// Opens the journal at `location` like [`open`], a PostgreSQL one with the TLS files `tls`
/// (see [`PostgresOptions::tls`]: `sslmode=verify-full` verifies the server's certificate and
/// name with them).
pub fn open_with_tls(
    location: impl AsRef<Path>,
    tls: &asw_tls::TlsFiles,
) -> Result<Box<dyn Journal>, JournalError> {
    let location = location.as_ref();
    let Some(text) = location.to_str() else {
        return Ok(Box::new(SqliteJournal::open(location)?));
    };
    if text.starts_with("postgres://") || text.starts_with("postgresql://") {
        let options = PostgresOptions {
            tls: tls.clone(),
            ..PostgresOptions::default()
        };
        return Ok(Box::new(PostgresJournal::open_with(text, &options)?));
    }
    if let Some(path) = text.strip_prefix("sqlite://") {
        return Ok(Box::new(SqliteJournal::open(path)?));
    }
    if let Some((scheme, _)) = text.split_once("://")
        && !scheme.is_empty()
        && scheme
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '+' | '-' | '.'))
    {
        return Err(JournalError::Open {
            location: postgresql::redact(text),
            transient: false,
            source: format!(
                "unknown journal URL scheme {scheme:?}: use postgres://, postgresql://, \
                 sqlite:// or a file path"
            )
            .into(),
        });
    }
    Ok(Box::new(SqliteJournal::open(location)?))
}

/// The journal. A message is identified by its direction and message id. Every method is one
/// atomic database transaction.
///
/// Every failure is a [`JournalError`]; check [`JournalError::is_transient`] to choose between
/// retrying the message later and giving up on it.
pub trait Journal: Send + Sync {
    /// Records a message the first time it is seen, in an entry state ([`State::is_entry`]):
    /// `received` both ways, or `signed` (outbound) / `verified` (inbound) for a hub that journals
    /// after those steps. `bytes` are the exact bytes taken in.
    ///
    /// A second record of the same message is [`Recorded::Existing`] if its header and bytes
    /// match the first (a redelivery or a resend: act on the existing state), and
    /// [`Recorded::Conflict`] if they do not. The bytes are compared with the bytes first
    /// recorded, so record outbound messages in `received` with the back-office bytes and then
    /// call [`transition_signed`](Journal::transition_signed): a redelivered back-office message
    /// then matches, and the hub publishes the signed bytes already journaled instead of signing
    /// again (a new signature may differ from the first).
    fn record(
        &self,
        direction: Direction,
        header: &Header,
        bytes: &[u8],
        state: State,
        at: OffsetDateTime,
    ) -> Result<Recorded, JournalError>;

    /// Moves a message to `to` if [`TRANSITIONS`] allows it from where it is, with the reason
    /// (which replaces the last reason; `None` clears it) and resets its attempts. Moving to the
    /// state it is in is [`Transition::AlreadyThere`], a harmless no-op. Outbound `signed` is
    /// reached only through [`transition_signed`](Journal::transition_signed).
    fn transition(
        &self,
        direction: Direction,
        message_id: Uuid,
        to: State,
        reason: Option<&Reason>,
        at: OffsetDateTime,
    ) -> Result<Transition, JournalError>;

    /// Moves an outbound message from `received` to `signed` and stores the signed bytes, in one
    /// step. If it is already signed, the bytes first stored stay: publish those (from
    /// [`get`](Journal::get)), not a second signature.
    fn transition_signed(
        &self,
        message_id: Uuid,
        signed: &[u8],
        at: OffsetDateTime,
    ) -> Result<Transition, JournalError>;

    /// Records an outbound message seen for the first time and already signed, in one step:
    /// what [`record`](Journal::record) in `received` with `original` followed by
    /// [`transition_signed`](Journal::transition_signed) with `signed` do, with the same
    /// history (`recorded`, then `received` -> `signed`). The digest compared with a later record
    /// is that of `original` (the back-office bytes), as after those two calls. If the message was
    /// recorded before, nothing is written and the answer is that of
    /// [`record`](Journal::record): act on the existing state.
    fn record_signed(
        &self,
        header: &Header,
        original: &[u8],
        signed: &[u8],
        at: OffsetDateTime,
    ) -> Result<Recorded, JournalError> {
        let recorded = self.record(Direction::Outbound, header, original, State::Received, at)?;
        if matches!(recorded, Recorded::New) {
            self.transition_signed(header.message_id, signed, at)?;
        }
        Ok(recorded)
    }

    /// Moves a message as [`transition`](Journal::transition) does and, in the same commit,
    /// keeps `transport_ref` as the channel's own reference for it
    /// ([`MessageSummary::transport_ref`]: the IPPC hub's delivery number returned by
    /// `DeliverEnvelope`, or the one an import was pulled by). The reference is kept when the
    /// message moves or is already in `to` (a repeat after a crash); the first reference given
    /// stays. No two messages of a direction share a reference: giving one that another message
    /// holds is a (permanent) database error and changes nothing.
    fn transition_with_ref(
        &self,
        direction: Direction,
        message_id: Uuid,
        to: State,
        reason: Option<&Reason>,
        transport_ref: &str,
        at: OffsetDateTime,
    ) -> Result<Transition, JournalError>;

    /// The message of `direction` whose channel reference is `transport_ref`, if any.
    fn find_by_transport_ref(
        &self,
        direction: Direction,
        transport_ref: &str,
    ) -> Result<Option<MessageRecord>, JournalError>;

    /// Records how a document a channel handed over was settled, keyed by (channel, reference),
    /// and returns the settlement kept: this one, or the one recorded first for that key (which
    /// stays; act on it). Settlements outlive their messages
    /// ([`remove_settled`](Journal::remove_settled) keeps them): a channel may hand a document over again long after.
    fn record_settlement(
        &self,
        settlement: &ChannelSettlement,
    ) -> Result<ChannelSettlement, JournalError>;

    /// How the document `reference` of `channel` was settled, if it was.
    fn settlement(
        &self,
        channel: &str,
        reference: &str,
    ) -> Result<Option<ChannelSettlement>, JournalError>;

    /// Counts one more failed attempt at the message's current stage and keeps the reason;
    /// returns the number of attempts. The state does not change.
    fn bump_attempts(
        &self,
        direction: Direction,
        message_id: Uuid,
        reason: &Reason,
        at: OffsetDateTime,
    ) -> Result<u32, JournalError>;

    /// Takes a parked message (`rejected`, `failed`, `discarded`) back to the state before the
    /// stage that failed ([`replay_target`]), so the hub runs that stage again; journaled with the
    /// operator's name. A message already done is [`Replay::AlreadyDone`], one in flight
    /// [`Replay::NotParked`]; neither changes anything.
    fn replay(
        &self,
        direction: Direction,
        message_id: Uuid,
        actor: &str,
        at: OffsetDateTime,
    ) -> Result<Replay, JournalError>;

    /// Moves a message to `discarded` on an operator's word, journaled with the operator's name
    /// and reason. Refused for a message already done.
    fn discard(
        &self,
        direction: Direction,
        message_id: Uuid,
        actor: &str,
        reason: &Reason,
        at: OffsetDateTime,
    ) -> Result<Transition, JournalError>;

    /// The message with its bytes, if recorded.
    fn get(
        &self,
        direction: Direction,
        message_id: Uuid,
    ) -> Result<Option<MessageRecord>, JournalError>;

    /// Every state the message entered, oldest first; empty if it is not recorded.
    fn history(
        &self,
        direction: Direction,
        message_id: Uuid,
    ) -> Result<Vec<TransitionRecord>, JournalError>;

    /// The message of `direction` that a message with this correlation id answers: for an inbound
    /// acknowledgement or status, `find_original(Direction::Outbound, ack.correlation_id)`.
    fn find_original(
        &self,
        direction: Direction,
        correlation_id: Uuid,
    ) -> Result<Option<MessageRecord>, JournalError>;

    /// The messages, of either direction, that answer `message_id` (their correlation id is it),
    /// oldest first.
    fn answers(&self, message_id: Uuid) -> Result<Vec<MessageSummary>, JournalError>;

    /// The messages that pass the filter, without their bytes, ordered by last update.
    fn list(&self, filter: &Filter) -> Result<Vec<MessageSummary>, JournalError>;

    /// Removes each message of `removals` with its bytes and history, if it is still there,
    /// settled ([`State::settled`]) and last updated when its removal says (one moved since is
    /// kept), all in one transaction; returns how many were removed. For `aswctl journal
    /// archive`, once the messages are safely in an archive.
    fn remove_settled(&self, removals: &[Removal]) -> Result<usize, JournalError>;

    /// Claims outbound messages whose receipt is overdue, oldest first, in one write
    /// transaction, and returns them with their bytes:
    ///
    /// - a message in `queued` or `sent` since `query.due_before` or earlier moves to
    ///   `awaiting-ack` (reason `ACK-OVERDUE`; [`Overdue::reported`]); if resends are allowed,
    ///   its first resend is counted at once ([`Overdue::resend`]);
    /// - a message in `awaiting-ack` last resent at or before `query.due_before`, with fewer
    ///   resends than `query.max_resends`, has one more resend counted
    ///   ([`Event::Resent`] in its history).
    ///
    /// Either way its update time becomes `at`, which starts its next deadline. A message is
    /// claimed by compare-and-set on its state and resend count, so of hubs sharing the journal
    /// exactly one claims it, and the resends of all of them together stay within
    /// `max_resends`. The gateway publishes the awaiting-ack report (found by `due_for_report`)
    /// and waits for its confirm before it claims: a crash in between repeats the report,
    /// never loses it (two hubs checking in the same instant may both report one document).
    /// A resend is published after its claim: a crash in between loses that one resend, never
    /// repeats it.
    fn claim_overdue(
        &self,
        query: &OverdueQuery,
        at: OffsetDateTime,
    ) -> Result<Vec<Overdue>, JournalError>;

    /// Runs `f`, in which this thread uses this journal, so that the writes `f` makes share their
    /// commits: with a backend that commits in groups (SQLite) each write inside `f` returns
    /// before it is durable, and `batch` returns once everything `f` wrote is committed. Reads
    /// inside `f` see its own writes. `Err` means some of what `f` wrote was not committed:
    /// nothing `f` decided may be acted on (those writes are rolled back and a retry does them
    /// again, as after a failed write). Other backends run `f` with each write committed on its
    /// own. Nested batches on one thread are one batch.
    fn batch(&self, f: &mut dyn FnMut()) -> Result<(), JournalError> {
        f();
        Ok(())
    }

    /// Whether [`Journal::batch`] gives its writes one commit (true) or commits each on its own
    /// (false, the default): only then do many callers' writes gain by being batched together
    /// rather than run side by side.
    fn batches(&self) -> bool {
        false
    }

    /// Checks that the journal takes writes now, without writing anything: a write transaction
    /// is opened and ended (SQLite takes its write lock; PostgreSQL must not be read-only). For
    /// readiness probes; each call is one round trip to the database.
    fn probe_write(&self) -> Result<(), JournalError>;

    /// Write transactions committed since the journal was opened, for metrics, when the backend
    /// counts them (one commit can carry the writes of several callers); `None` otherwise.
    fn commit_count(&self) -> Option<u64> {
        None
    }
}
