//! The journal on PostgreSQL, for hub processes (on one machine or several) sharing one journal;
//! how it stays correct between them is told on [`PostgresJournal`].

use std::fmt;
use std::time::Duration;

use asw_model::{DocumentKind, Header};
use postgres::types::ToSql;
use postgres::{Config, Row};
use sha2::{Digest, Sha256};
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;
use uuid::Uuid;

use crate::pool::{Connection, Lease, Pool, PoolError};
use crate::request::{
    self, OverdueClaim, differences, overdue_claim, parked_from_after, reason, stored_time,
};
use crate::schema::{POSTGRES_MIGRATIONS, POSTGRES_VERSION_TABLE};
use crate::state::{Step, replay_target, step};
use crate::{
    ChannelSettlement, Conflict, Direction, Event, Filter, Journal, JournalError, MessageRecord,
    MessageSummary, Operation, Overdue, OverdueQuery, Reason, Recorded, Removal, Replay, State,
    Subject, Transition, TransitionRecord,
};

/// Settings of a [`PostgresJournal`]. Connection settings (host, user, database, `connect_timeout`,
/// `options`, ...) come with the URL.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PostgresOptions {
    /// How many connections the handle opens at most; calls beyond wait for one to be free.
    pub connections: usize,
    /// How long a call waits for a free connection before failing with a transient error.
    pub pool_timeout: Duration,
    /// How long a statement waits for a lock held by another transaction (another process
    /// recording or moving the same message, a migration) before failing with a transient error
    /// (`lock_timeout`; zero waits for ever).
    pub lock_timeout: Duration,
    /// The schema the journal's tables live in, created by the caller beforehand. `None` leaves
    /// the server's `search_path` (from the role, the database or `options` in the URL).
    pub schema: Option<String>,
    /// The name written as actor of the moves this handle makes (operators' replays and discards
    /// carry their own name).
    pub actor: String,
    /// CA, client certificate and key for TLS (the `[journal]` section's `ca`, `cert`, `key`).
    /// With `sslmode=verify-full` in the URL (or any of these set and no `sslmode`), the
    /// connection is TLS and the server's certificate and name are verified; `verify-ca`
    /// verifies the certificate only.
    pub tls: asw_tls::TlsFiles,
}

impl PostgresOptions {
    /// The default number of connections of a handle.
    pub const DEFAULT_CONNECTIONS: usize = 4;
    /// The default wait for a free connection.
    pub const DEFAULT_POOL_TIMEOUT: Duration = Duration::from_secs(30);
    /// The default wait for a lock.
    pub const DEFAULT_LOCK_TIMEOUT: Duration = Duration::from_secs(5);
    /// The default actor.
    pub const DEFAULT_ACTOR: &'static str = "aswhub";
    /// The connect timeout used when the URL sets none.
    pub const DEFAULT_CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
    /// The TCP user timeout used when the URL sets none: how long sent data may go unacknowledged
    /// before the connection counts as broken, so that a silent network failure surfaces within
    /// this time rather than TCP's quarter of an hour (Linux only).
    pub const DEFAULT_TCP_USER_TIMEOUT: Duration = Duration::from_secs(30);
}

impl Default for PostgresOptions {
    /// Four connections, 30 s pool timeout, 5 s lock timeout, the server's schema, actor `aswhub`.
    fn default() -> PostgresOptions {
        PostgresOptions {
            connections: PostgresOptions::DEFAULT_CONNECTIONS,
            pool_timeout: PostgresOptions::DEFAULT_POOL_TIMEOUT,
            lock_timeout: PostgresOptions::DEFAULT_LOCK_TIMEOUT,
            schema: None,
            actor: PostgresOptions::DEFAULT_ACTOR.to_owned(),
            tls: asw_tls::TlsFiles::default(),
        }
    }
}

/// The journal on PostgreSQL. `Send + Sync`: share it between worker threads in an `Arc`. Any
/// number of handles, in any number of processes, may use one database at once.
///
/// Each handle lends its calls connections from a small pool of its own
/// ([`PostgresOptions::connections`], four by default), so worker threads of one process do not
/// queue behind one client; a call waits for a free connection up to
/// [`PostgresOptions::pool_timeout`]. Nothing about
/// correctness rests on the pool or on any lock in the process: every write is one transaction at
/// `READ COMMITTED` (set on each `BEGIN`, whatever the server's default), and
///
/// - a record is `INSERT .. ON CONFLICT DO NOTHING`; if another transaction inserted the same
///   message first, the insert waits for it to end and does nothing, and the `SELECT` after it (a
///   new statement, so a new snapshot) reads what the winner wrote;
/// - a move reads the state with `SELECT .. FOR UPDATE`: a racer in another transaction, handle
///   or process waits on that row lock until the winner commits, then reads the state the winner
///   left and is told what happened (`AlreadyThere`, `Refused`, ...), never given an error. The
///   update keeps its compare-and-set condition (`WHERE state = <the state read>`) as a check.
///
/// `SERIALIZABLE` would give the same outcomes, but the loser of a race would get a serialization
/// failure to retry instead of waiting a moment on a row lock; the row lock costs nothing when
/// there is no race. A lock held longer than [`PostgresOptions::lock_timeout`] (by an operator's
/// open transaction, say) fails the call with a transient error.
///
/// A connection that broke (a restarted server, a failed network, a killed backend) is dropped,
/// with every idle one of the same handle, and replaced by a new one on the next call. A call that
/// finds its idle connection dead before it did anything (at `BEGIN`, or in a read) starts again
/// once on a new one, so a server restart costs no failed call where it can be avoided. Failures
/// to reach the server, and a lost connection in mid-call, are transient errors; constraint
/// violations, refused requests, bad URLs and failed logins are permanent. A connection lost
/// during `COMMIT` leaves it unknown whether the write was made; the error is transient, and
/// the retry is told `Existing` or `AlreadyThere` if it was.
///
/// Call it from threads that do not drive async tasks (worker threads, `spawn_blocking`), as the
/// [`Journal`] trait asks: the `postgres` client blocks on a tokio runtime of its own, which tokio
/// refuses inside an async task (it panics). Opening and dropping a handle are safe anywhere.
pub struct PostgresJournal {
    pool: Pool,
    actor: String,
    location: String,
}

impl fmt::Debug for PostgresJournal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PostgresJournal")
            .field("location", &self.location)
            .field("actor", &self.actor)
            .finish_non_exhaustive()
    }
}

/// The statement that starts every write.
const BEGIN: &str = "BEGIN ISOLATION LEVEL READ COMMITTED";

/// The advisory lock taken while the schema is checked and migrated, so that processes opening a
/// new database at once do not both create it ("aswhubJ1").
const MIGRATION_LOCK: i64 = 0x6173_7768_7562_4a31;

/// What a TLS connection to the server verifies.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Verify {
    /// The certificate chain and the server's name (`sslmode=verify-full`).
    Full,
    /// The certificate chain only (`sslmode=verify-ca`).
    Ca,
}

/// `url` without an `sslmode=verify-full` or `verify-ca` (which the `postgres` crate does not
/// read), and what to verify: that mode, or `verify-full` when `tls_given` and the URL sets no
/// `sslmode`; `None` leaves the URL to the `postgres` crate as it is.
fn ssl_verification(url: &str, tls_given: bool) -> (String, Option<Verify>) {
    let separators: &[char] = if url.contains("://") {
        &['?', '&']
    } else {
        &[' ']
    };
    for (word, verify) in [
        ("sslmode=verify-full", Verify::Full),
        ("sslmode=verify-ca", Verify::Ca),
    ] {
        if let Some(at) = url.find(word) {
            let before = url[..at].chars().last();
            let after = &url[at + word.len()..];
            let ends = after.is_empty() || after.starts_with(['&', ' ']);
            if before.is_some_and(|c| separators.contains(&c)) && ends {
                let mut stripped =
                    format!("{}{}", &url[..at], after.trim_start_matches(['&', ' ']));
                if stripped.ends_with(['?', '&']) {
                    stripped.pop();
                }
                return (stripped, Some(verify));
            }
        }
    }
    let sets_mode = url.contains("sslmode=");
    (
        url.to_owned(),
        (tls_given && !sets_mode).then_some(Verify::Full),
    )
}

impl PostgresJournal {
    /// Opens the journal at `url` (`postgres://user@host:port/database?options=..`, or a
    /// `key=value` connection string) with default options, creating its tables if needed.
    pub fn open(url: &str) -> Result<PostgresJournal, JournalError> {
        PostgresJournal::open_with(url, &PostgresOptions::default())
    }

    /// Opens the journal at `url` with `options`: connects once, then creates or migrates the
    /// schema. Fails with a transient error if the server cannot be reached.
    pub fn open_with(
        url: &str,
        options: &PostgresOptions,
    ) -> Result<PostgresJournal, JournalError> {
        let location = redact(url);
        let open_error = |transient: bool, source: crate::BoxError| JournalError::Open {
            location: location.clone(),
            transient,
            source,
        };
        let (plain_url, verify) = ssl_verification(url, !options.tls.is_empty());
        let mut config: Config = plain_url
            .parse()
            .map_err(|e| open_error(false, Box::new(e)))?;
        let tls = match verify {
            None => None,
            Some(verify) => {
                config.ssl_mode(postgres::config::SslMode::Require);
                let client = options
                    .tls
                    .load("journal")
                    .map_err(|e| open_error(false, Box::new(e)))?;
                let connector = client
                    .connector()
                    .map_err(|e| open_error(false, Box::new(e)))?;
                let mut tls = postgres_openssl::MakeTlsConnector::new(connector);
                if verify == Verify::Ca {
                    tls.set_callback(|connect, _| {
                        connect.set_verify_hostname(false);
                        Ok(())
                    });
                }
                Some(tls)
            }
        };
        if config.get_connect_timeout().is_none() {
            config.connect_timeout(PostgresOptions::DEFAULT_CONNECT_TIMEOUT);
        }
        if config.get_tcp_user_timeout().is_none() {
            config.tcp_user_timeout(PostgresOptions::DEFAULT_TCP_USER_TIMEOUT);
        }
        if config.get_application_name().is_none() {
            config.application_name("aswhub");
        }
        let setup = session_setup(options).map_err(|detail| open_error(false, detail.into()))?;
        let pool = Pool::new(
            config,
            tls,
            setup,
            options.connections,
            options.pool_timeout,
        );
        let prepare = || {
            let mut lease = pool.lend().map_err(|e| match e {
                PoolError::Connect(e) => open_error(is_transient(&e), Box::new(e)),
                PoolError::Exhausted { .. } => open_error(true, pool_message(&e).into()),
            })?;
            migrate(lease.connection(), &location)
        };
        // The `postgres` client blocks on a small tokio runtime of its own, which tokio refuses
        // inside an async context; the daemon opens its journal in one. So connect on a thread
        // of our own. (Calls come from worker threads, never from async tasks.)
        std::thread::scope(|scope| {
            std::thread::Builder::new()
                .name("asw-journal-open".into())
                .spawn_scoped(scope, prepare)
                .map_err(|e| open_error(true, Box::new(e)))?
                .join()
                .unwrap_or_else(|panic| std::panic::resume_unwind(panic))
        })?;
        Ok(PostgresJournal {
            pool,
            actor: options.actor.clone(),
            location,
        })
    }

    /// Where the journal is: the URL without its password, for logs.
    pub fn location(&self) -> &str {
        &self.location
    }

    /// Runs `f` in a write transaction; commits if it succeeds, rolls back if not.
    fn write<T>(
        &self,
        operation: Operation,
        subject: Subject,
        f: impl FnOnce(&mut Connection) -> Result<T, Fault>,
    ) -> Result<T, JournalError> {
        let run = || {
            let mut lease = self.begin()?;
            let outcome = f(lease.connection());
            let end = if outcome.is_ok() {
                "COMMIT"
            } else {
                "ROLLBACK"
            };
            let ended = lease.connection().client.batch_execute(end);
            // Back to the pool only once the transaction is surely over.
            lease.set_reusable(ended.is_ok());
            let value = outcome?;
            ended?;
            Ok(value)
        };
        run().map_err(|fault: Fault| fault.into_error(operation, subject))
    }

    /// Lends a connection and starts a transaction on it. An idle connection found dead here did
    /// nothing yet: start again, once, on a new one.
    fn begin(&self) -> Result<Lease<'_>, Fault> {
        let mut lease = self.pool.lend()?;
        lease.set_reusable(false);
        match lease.connection().client.batch_execute(BEGIN) {
            Ok(()) => return Ok(lease),
            Err(e) if lease.is_fresh() || !is_connection_error(&e) => return Err(e.into()),
            Err(_) => {}
        }
        drop(lease);
        self.pool.drop_idle();
        let mut lease = self.pool.lend()?;
        lease.set_reusable(false);
        lease.connection().client.batch_execute(BEGIN)?;
        Ok(lease)
    }

    /// Runs `f`, a read of single statements outside an explicit transaction (each reads one
    /// snapshot). An idle connection found dead is replaced and the read made again, once.
    fn read<T>(
        &self,
        operation: Operation,
        subject: Subject,
        f: impl Fn(&mut Connection) -> Result<T, Fault>,
    ) -> Result<T, JournalError> {
        let attempt = |lease: &mut Lease<'_>| {
            f(lease.connection()).inspect_err(|fault| {
                if fault.is_connection_error() {
                    lease.discard();
                }
            })
        };
        let run = || {
            let mut lease = self.pool.lend()?;
            match attempt(&mut lease) {
                Err(fault) if fault.is_connection_error() && !lease.is_fresh() => {
                    drop(lease);
                    self.pool.drop_idle();
                    attempt(&mut self.pool.lend()?)
                }
                outcome => outcome,
            }
        };
        run().map_err(|fault| fault.into_error(operation, subject))
    }
}

impl Journal for PostgresJournal {
    fn probe_write(&self) -> Result<(), JournalError> {
        self.write(Operation::Probe, Subject::Messages, |c| {
            let row = c.client.query_one("SHOW transaction_read_only", &[])?;
            let read_only: String = row.get(0);
            if read_only == "on" {
                return Err(Fault::Invalid(
                    "the database is read-only (a standby?)".to_owned(),
                ));
            }
            Ok(())
        })
    }

    fn record(
        &self,
        direction: Direction,
        header: &Header,
        bytes: &[u8],
        state: State,
        at: OffsetDateTime,
    ) -> Result<Recorded, JournalError> {
        request::check_record(direction, header.message_id, state)?;
        let key = Key::new(direction, header.message_id);
        let digest: [u8; 32] = Sha256::digest(bytes).into();
        self.write(Operation::Record, key.subject(), |c| {
            let at = stored_time(at).map_err(Fault::Invalid)?;
            let created_at = header.created_at.format(&Rfc3339).map_err(|e| {
                Fault::Invalid(format!("cannot store CreatedAt {}: {e}", header.created_at))
            })?;
            let insert = c.statement(
                "INSERT INTO messages (direction, message_id, kind, sender, receiver,
                     correlation_id, version, created_at, state, attempts, first_seen, updated_at,
                     digest)
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, 0, $10, $10, $11)
                 ON CONFLICT (direction, message_id) DO NOTHING",
            )?;
            let inserted = c.client.execute(
                &insert,
                &[
                    &direction.as_str(),
                    &key.message_id,
                    &header.kind.as_str(),
                    &header.sender.code(),
                    &header.receiver.code(),
                    &header.correlation_id,
                    &header.version,
                    &created_at,
                    &state.as_str(),
                    &at,
                    &digest.as_slice(),
                ],
            )?;
            if inserted == 1 {
                let body = c.statement(
                    "INSERT INTO bodies (direction, message_id, bytes) VALUES ($1, $2, $3)",
                )?;
                c.client
                    .execute(&body, &[&direction.as_str(), &key.message_id, &bytes])?;
                let history = History {
                    event: Event::Recorded,
                    from: None,
                    to: state,
                    at,
                    reason: None,
                    actor: &self.actor,
                };
                append_history(c, &key, &history)?;
                return Ok(Recorded::New);
            }
            let existing = select_record(c, &key)?.ok_or(Fault::LostRace)?;
            let fields = differences(&existing.summary, header, &digest);
            Ok(if fields.is_empty() {
                Recorded::Existing(Box::new(existing))
            } else {
                Recorded::Conflict(Box::new(Conflict { existing, fields }))
            })
        })
    }

    fn transition(
        &self,
        direction: Direction,
        message_id: Uuid,
        to: State,
        reason: Option<&Reason>,
        at: OffsetDateTime,
    ) -> Result<Transition, JournalError> {
        request::check_transition(direction, message_id, to)?;
        let key = Key::new(direction, message_id);
        self.write(Operation::Transition, key.subject(), |c| {
            let change = Change {
                to,
                event: Event::Moved,
                reason,
                actor: &self.actor,
                at: stored_time(at).map_err(Fault::Invalid)?,
                bytes: None,
            };
            move_state(c, &key, &change)
        })
    }

    fn transition_signed(
        &self,
        message_id: Uuid,
        signed: &[u8],
        at: OffsetDateTime,
    ) -> Result<Transition, JournalError> {
        let key = Key::new(Direction::Outbound, message_id);
        self.write(Operation::TransitionSigned, key.subject(), |c| {
            let change = Change {
                to: State::Signed,
                event: Event::Moved,
                reason: None,
                actor: &self.actor,
                at: stored_time(at).map_err(Fault::Invalid)?,
                bytes: Some(signed),
            };
            move_state(c, &key, &change)
        })
    }

    fn transition_with_ref(
        &self,
        direction: Direction,
        message_id: Uuid,
        to: State,
        reason: Option<&Reason>,
        transport_ref: &str,
        at: OffsetDateTime,
    ) -> Result<Transition, JournalError> {
        request::check_transition(direction, message_id, to)?;
        let key = Key::new(direction, message_id);
        self.write(Operation::TransitionWithRef, key.subject(), |c| {
            let change = Change {
                to,
                event: Event::Moved,
                reason,
                actor: &self.actor,
                at: stored_time(at).map_err(Fault::Invalid)?,
                bytes: None,
            };
            let moved = move_state(c, &key, &change)?;
            if matches!(moved, Transition::Moved { .. } | Transition::AlreadyThere) {
                // The row is locked by `move_state` until the commit.
                let update = c.statement(
                    "UPDATE messages SET transport_ref = coalesce(transport_ref, $1)
                     WHERE direction = $2 AND message_id = $3",
                )?;
                c.client.execute(
                    &update,
                    &[&transport_ref, &direction.as_str(), &key.message_id],
                )?;
            }
            Ok(moved)
        })
    }

    fn find_by_transport_ref(
        &self,
        direction: Direction,
        transport_ref: &str,
    ) -> Result<Option<MessageRecord>, JournalError> {
        self.read(Operation::FindByTransportRef, Subject::Messages, |c| {
            let select = c.statement(
                "SELECT direction, message_id, kind, sender, receiver, correlation_id, version,
                     created_at, state, parked_from, attempts, reason_code, reason_text,
                     first_seen, updated_at, digest, transport_ref, bodies.bytes
                 FROM messages JOIN bodies USING (direction, message_id)
                 WHERE direction = $1 AND transport_ref = $2",
            )?;
            let Some(row) = c
                .client
                .query_opt(&select, &[&direction.as_str(), &transport_ref])?
            else {
                return Ok(None);
            };
            Ok(Some(MessageRecord {
                summary: summary_from_row(&row)?,
                bytes: row.try_get(17)?,
            }))
        })
    }

    fn record_settlement(
        &self,
        settlement: &ChannelSettlement,
    ) -> Result<ChannelSettlement, JournalError> {
        self.write(Operation::RecordSettlement, Subject::Settlements, |c| {
            let at = stored_time(settlement.at).map_err(Fault::Invalid)?;
            let insert = c.statement(
                "INSERT INTO channel_settlements (channel, reference, outcome, note, message_id,
                     settled_at)
                 VALUES ($1, $2, $3, $4, $5, $6)
                 ON CONFLICT (channel, reference) DO NOTHING",
            )?;
            c.client.execute(
                &insert,
                &[
                    &settlement.channel,
                    &settlement.reference,
                    &settlement.outcome.as_str(),
                    &settlement.note,
                    &settlement.message_id,
                    &at,
                ],
            )?;
            select_settlement(c, &settlement.channel, &settlement.reference)?.ok_or(Fault::LostRace)
        })
    }

    fn settlement(
        &self,
        channel: &str,
        reference: &str,
    ) -> Result<Option<ChannelSettlement>, JournalError> {
        self.read(Operation::Settlement, Subject::Settlements, |c| {
            select_settlement(c, channel, reference)
        })
    }

    fn bump_attempts(
        &self,
        direction: Direction,
        message_id: Uuid,
        reason: &Reason,
        at: OffsetDateTime,
    ) -> Result<u32, JournalError> {
        let key = Key::new(direction, message_id);
        self.write(Operation::BumpAttempts, key.subject(), |c| {
            let at = stored_time(at).map_err(Fault::Invalid)?;
            let bump = c.statement(
                "UPDATE messages
                 SET attempts = attempts + 1, reason_code = $1, reason_text = $2, updated_at = $3
                 WHERE direction = $4 AND message_id = $5
                 RETURNING attempts",
            )?;
            let row = c.client.query_opt(
                &bump,
                &[
                    &reason.code,
                    &reason.text,
                    &at,
                    &direction.as_str(),
                    &key.message_id,
                ],
            )?;
            let attempts: i32 = row.ok_or(Fault::NotFound)?.try_get(0)?;
            u32::try_from(attempts).map_err(|_| Fault::Corrupt {
                column: "attempts",
                value: attempts.to_string(),
            })
        })
    }

    fn replay(
        &self,
        direction: Direction,
        message_id: Uuid,
        actor: &str,
        at: OffsetDateTime,
    ) -> Result<Replay, JournalError> {
        request::check_actor(Operation::Replay, direction, message_id, actor)?;
        let key = Key::new(direction, message_id);
        self.write(Operation::Replay, key.subject(), |c| {
            let at = stored_time(at).map_err(Fault::Invalid)?;
            let (current, parked_from) = lock_state(c, &key)?.ok_or(Fault::NotFound)?;
            if current.is_done() {
                return Ok(Replay::AlreadyDone { current });
            }
            if !current.is_parked() {
                return Ok(Replay::NotParked { current });
            }
            let parked_from = parked_from.ok_or(Fault::Corrupt {
                column: "parked_from",
                value: "NULL".into(),
            })?;
            let to = replay_target(direction, parked_from);
            let update = c.statement(
                "UPDATE messages
                 SET state = $1, parked_from = NULL, attempts = 0, reason_code = NULL,
                     reason_text = NULL, updated_at = $2
                 WHERE direction = $3 AND message_id = $4 AND state = $5",
            )?;
            let changed = c.client.execute(
                &update,
                &[
                    &to.as_str(),
                    &at,
                    &direction.as_str(),
                    &key.message_id,
                    &current.as_str(),
                ],
            )?;
            if changed != 1 {
                return Err(Fault::LostRace);
            }
            let history = History {
                event: Event::Replayed,
                from: Some(current),
                to,
                at,
                reason: None,
                actor,
            };
            append_history(c, &key, &history)?;
            Ok(Replay::Replayed { from: current, to })
        })
    }

    fn discard(
        &self,
        direction: Direction,
        message_id: Uuid,
        actor: &str,
        reason: &Reason,
        at: OffsetDateTime,
    ) -> Result<Transition, JournalError> {
        request::check_actor(Operation::Discard, direction, message_id, actor)?;
        let key = Key::new(direction, message_id);
        self.write(Operation::Discard, key.subject(), |c| {
            let change = Change {
                to: State::Discarded,
                event: Event::Discarded,
                reason: Some(reason),
                actor,
                at: stored_time(at).map_err(Fault::Invalid)?,
                bytes: None,
            };
            move_state(c, &key, &change)
        })
    }

    fn get(
        &self,
        direction: Direction,
        message_id: Uuid,
    ) -> Result<Option<MessageRecord>, JournalError> {
        let key = Key::new(direction, message_id);
        self.read(Operation::Get, key.subject(), |c| select_record(c, &key))
    }

    fn history(
        &self,
        direction: Direction,
        message_id: Uuid,
    ) -> Result<Vec<TransitionRecord>, JournalError> {
        let key = Key::new(direction, message_id);
        self.read(Operation::History, key.subject(), |c| {
            let select = c.statement(
                "SELECT seq, event, from_state, to_state, at, reason_code, reason_text, actor
                 FROM transitions
                 WHERE direction = $1 AND message_id = $2
                 ORDER BY seq",
            )?;
            let rows = c
                .client
                .query(&select, &[&direction.as_str(), &key.message_id])?;
            rows.iter()
                .map(|row| {
                    Ok(TransitionRecord {
                        seq: row.try_get(0)?,
                        event: parse("event", row.try_get(1)?)?,
                        from: row
                            .try_get::<_, Option<String>>(2)?
                            .map(|s| parse("from_state", s))
                            .transpose()?,
                        to: parse("to_state", row.try_get(3)?)?,
                        at: row.try_get(4)?,
                        reason: reason(row.try_get(5)?, row.try_get(6)?),
                        actor: row.try_get(7)?,
                    })
                })
                .collect()
        })
    }

    fn find_original(
        &self,
        direction: Direction,
        correlation_id: Uuid,
    ) -> Result<Option<MessageRecord>, JournalError> {
        let key = Key::new(direction, correlation_id);
        self.read(Operation::FindOriginal, key.subject(), |c| {
            select_record(c, &key)
        })
    }

    fn answers(&self, message_id: Uuid) -> Result<Vec<MessageSummary>, JournalError> {
        self.read(Operation::Answers, Subject::AnswersTo(message_id), |c| {
            let select = c.statement(
                "SELECT direction, message_id, kind, sender, receiver, correlation_id, version,
                     created_at, state, parked_from, attempts, reason_code, reason_text,
                     first_seen, updated_at, digest, transport_ref
                 FROM messages WHERE correlation_id = $1
                 ORDER BY first_seen, direction, message_id",
            )?;
            let rows = c.client.query(&select, &[&message_id])?;
            rows.iter().map(summary_from_row).collect()
        })
    }

    fn list(&self, filter: &Filter) -> Result<Vec<MessageSummary>, JournalError> {
        self.read(Operation::List, Subject::Messages, |c| {
            let mut conditions: Vec<String> = Vec::new();
            let mut values: Vec<Box<dyn ToSql + Sync>> = Vec::new();
            let mut bind = |condition: &str, value: Box<dyn ToSql + Sync>| {
                values.push(value);
                conditions.push(condition.replace('?', &format!("${}", values.len())));
            };
            if let Some(direction) = filter.direction {
                bind("direction = ?", Box::new(direction.as_str()));
            }
            if let Some(kind) = filter.kind {
                bind("kind = ?", Box::new(kind.as_str()));
            }
            if let Some(partner) = filter.partner {
                bind("(sender = ? OR receiver = ?)", Box::new(partner.code()));
            }
            if let Some(state) = filter.state {
                bind("state = ?", Box::new(state.as_str()));
            }
            if let Some(since) = filter.since {
                let since = stored_time(since).map_err(Fault::Invalid)?;
                bind("updated_at >= ?", Box::new(since));
            }
            if let Some(until) = filter.until {
                let until = stored_time(until).map_err(Fault::Invalid)?;
                bind("updated_at < ?", Box::new(until));
            }
            if let Some(code) = &filter.reason_code {
                bind("reason_code = ?", Box::new(code.clone()));
            }
            if let Some(text) = &filter.reason_text {
                // No `IS NOT NULL` beside it, unlike SQLite's: PostgreSQL sees the partial index
                // of the messages with a reason applies (ILIKE is strict), and would multiply
                // the two clauses' selectivities, estimate far too few matches and scan the table.
                bind(
                    "reason_text ILIKE ? ESCAPE '\\'",
                    Box::new(crate::message::contains_pattern(text)),
                );
            }
            let mut sql = format!("SELECT {SUMMARY_COLUMNS} FROM messages");
            if !conditions.is_empty() {
                sql.push_str(" WHERE ");
                sql.push_str(&conditions.join(" AND "));
            }
            let order = if filter.newest_first { "DESC" } else { "ASC" };
            values.push(Box::new(i64::from(filter.limit)));
            values.push(Box::new(i64::from(filter.offset)));
            sql.push_str(&format!(
                " ORDER BY updated_at {order}, direction {order}, message_id {order} LIMIT ${} OFFSET ${}",
                values.len() - 1,
                values.len()
            ));
            let params: Vec<&(dyn ToSql + Sync)> = values.iter().map(|v| v.as_ref()).collect();
            let rows = c.client.query(sql.as_str(), &params)?;
            rows.iter().map(summary_from_row).collect()
        })
    }

    fn remove_settled(&self, removals: &[Removal]) -> Result<usize, JournalError> {
        self.write(Operation::Remove, Subject::Messages, |c| {
            let mut removed = 0;
            for removal in removals {
                let direction = removal.direction.as_str();
                let select = c.statement(
                    "SELECT kind, state, updated_at FROM messages
                     WHERE direction = $1 AND message_id = $2
                     FOR UPDATE",
                )?;
                let Some(row) = c
                    .client
                    .query_opt(&select, &[&direction, &removal.message_id])?
                else {
                    continue;
                };
                let kind: DocumentKind = parse("kind", row.try_get(0)?)?;
                let state: State = parse("state", row.try_get(1)?)?;
                let updated_at: OffsetDateTime = row.try_get(2)?;
                if !state.settled(removal.direction, kind)
                    || updated_at != stored_time(removal.updated_at).map_err(Fault::Invalid)?
                {
                    continue;
                }
                for sql in REMOVE_MESSAGE {
                    let delete = c.statement(sql)?;
                    c.client
                        .execute(&delete, &[&direction, &removal.message_id])?;
                }
                removed += 1;
            }
            Ok(removed)
        })
    }

    fn claim_overdue(
        &self,
        query: &OverdueQuery,
        at: OffsetDateTime,
    ) -> Result<Vec<Overdue>, JournalError> {
        if query.kinds.is_empty() || query.limit == 0 {
            return Ok(Vec::new());
        }
        self.write(Operation::ClaimOverdue, Subject::Messages, |c| {
            let at = stored_time(at).map_err(Fault::Invalid)?;
            let due_before = stored_time(query.due_before).map_err(Fault::Invalid)?;
            let kinds: Vec<&str> = query.kinds.iter().map(|k| k.as_str()).collect();
            let max_resends = i32::try_from(query.max_resends).unwrap_or(i32::MAX);
            let tracked: Vec<String> = query
                .tracked_by_channel
                .iter()
                .map(|(kind, receiver)| format!("{}.{}", kind.as_str(), receiver.code()))
                .collect();
            // The rows are locked until the commit; rows another hub is claiming right now are
            // skipped rather than waited for (that hub has them), so hubs never claim the same.
            let select = c.statement(
                "SELECT message_id, state, resends, updated_at FROM messages
                 WHERE direction = 'outbound' AND kind = ANY($1) AND updated_at <= $2
                     AND (state IN ('queued', 'sent')
                         OR (state = 'awaiting-ack' AND resends < $3))
                     AND NOT (kind || '.' || receiver = ANY($5))
                 ORDER BY updated_at, message_id
                 LIMIT $4
                 FOR UPDATE SKIP LOCKED",
            )?;
            let rows = c.client.query(
                &select,
                &[
                    &kinds,
                    &due_before,
                    &max_resends,
                    &i64::from(query.limit),
                    &tracked,
                ],
            )?;
            let mut claimed = Vec::new();
            for row in rows {
                let id: Uuid = row.try_get(0)?;
                let state: State = parse("state", row.try_get(1)?)?;
                let resends: i32 = row.try_get(2)?;
                let resends = u32::try_from(resends).map_err(|_| Fault::Corrupt {
                    column: "resends",
                    value: resends.to_string(),
                })?;
                let since: OffsetDateTime = row.try_get(3)?;
                let Some(claim) = overdue_claim(state, resends, query.max_resends, since) else {
                    continue;
                };
                let key = Key::new(Direction::Outbound, id);
                claim_one(c, &key, state, resends, &claim, at, &self.actor)?;
                let record = select_record(c, &key)?.ok_or(Fault::LostRace)?;
                claimed.push(claim.into_overdue(record, since));
            }
            Ok(claimed)
        })
    }
}

/// Applies one overdue claim by compare-and-set on the state and resend count read (the row is
/// locked since, so it holds; it stays as a check).
fn claim_one(
    c: &mut Connection,
    key: &Key,
    current: State,
    resends: u32,
    claim: &OverdueClaim,
    at: OffsetDateTime,
    actor: &str,
) -> Result<(), Fault> {
    let reason = claim.resent.as_ref().or(claim.moved.as_ref());
    let to_i32 = |n: u32| i32::try_from(n).unwrap_or(i32::MAX);
    let update = c.statement(
        "UPDATE messages
         SET state = 'awaiting-ack', resends = $1, attempts = 0, reason_code = $2,
             reason_text = $3, updated_at = $4
         WHERE direction = $5 AND message_id = $6 AND state = $7 AND resends = $8",
    )?;
    let changed = c.client.execute(
        &update,
        &[
            &to_i32(claim.resends),
            &reason.map(|r| r.code.as_str()),
            &reason.map(|r| r.text.as_str()),
            &at,
            &key.direction.as_str(),
            &key.message_id,
            &current.as_str(),
            &to_i32(resends),
        ],
    )?;
    if changed != 1 {
        return Err(Fault::LostRace);
    }
    if let Some(moved) = &claim.moved {
        let history = History {
            event: Event::Moved,
            from: Some(current),
            to: State::AwaitingAck,
            at,
            reason: Some(moved),
            actor,
        };
        append_history(c, key, &history)?;
    }
    if let Some(resent) = &claim.resent {
        let history = History {
            event: Event::Resent,
            from: Some(State::AwaitingAck),
            to: State::AwaitingAck,
            at,
            reason: Some(resent),
            actor,
        };
        append_history(c, key, &history)?;
    }
    Ok(())
}

/// The columns of a [`MessageSummary`], in the order [`summary_from_row`] reads them.
const SUMMARY_COLUMNS: &str = "direction, message_id, kind, sender, receiver, correlation_id, \
     version, created_at, state, parked_from, attempts, reason_code, reason_text, first_seen, \
     updated_at, digest, transport_ref";

/// Deletes one message (`$1` direction, `$2` id): its history and bytes, then its row.
const REMOVE_MESSAGE: [&str; 3] = [
    "DELETE FROM transitions WHERE direction = $1 AND message_id = $2",
    "DELETE FROM bodies WHERE direction = $1 AND message_id = $2",
    "DELETE FROM messages WHERE direction = $1 AND message_id = $2",
];

/// A message's identity.
struct Key {
    direction: Direction,
    message_id: Uuid,
}

impl Key {
    fn new(direction: Direction, message_id: Uuid) -> Key {
        Key {
            direction,
            message_id,
        }
    }

    fn subject(&self) -> Subject {
        Subject::Message {
            direction: self.direction,
            message_id: self.message_id,
        }
    }
}

/// A requested move.
struct Change<'a> {
    to: State,
    event: Event,
    reason: Option<&'a Reason>,
    actor: &'a str,
    at: OffsetDateTime,
    /// New bytes (the signed bytes, when moving to `signed`).
    bytes: Option<&'a [u8]>,
}

/// A history row to append.
struct History<'a> {
    event: Event,
    from: Option<State>,
    to: State,
    at: OffsetDateTime,
    reason: Option<&'a Reason>,
    actor: &'a str,
}

/// Moves a message if the table allows it, inside the caller's write transaction.
fn move_state(c: &mut Connection, key: &Key, change: &Change<'_>) -> Result<Transition, Fault> {
    let (current, parked_from) = lock_state(c, key)?.ok_or(Fault::NotFound)?;
    match step(key.direction, current, change.to) {
        Step::Move => {}
        Step::AlreadyThere => return Ok(Transition::AlreadyThere),
        Step::AlreadyPast => return Ok(Transition::AlreadyPast { current }),
        Step::Refused => return Ok(Transition::Refused { current }),
    }
    let parked_from = parked_from_after(current, parked_from, change.to);
    // The row is locked since it was read, so the condition always holds; it stays as a check.
    let update = c.statement(
        "UPDATE messages
         SET state = $1, parked_from = $2, attempts = 0, reason_code = $3, reason_text = $4,
             updated_at = $5
         WHERE direction = $6 AND message_id = $7 AND state = $8",
    )?;
    let changed = c.client.execute(
        &update,
        &[
            &change.to.as_str(),
            &parked_from.map(State::as_str),
            &change.reason.map(|r| r.code.as_str()),
            &change.reason.map(|r| r.text.as_str()),
            &change.at,
            &key.direction.as_str(),
            &key.message_id,
            &current.as_str(),
        ],
    )?;
    if changed != 1 {
        return Err(Fault::LostRace);
    }
    if let Some(bytes) = change.bytes {
        let update =
            c.statement("UPDATE bodies SET bytes = $1 WHERE direction = $2 AND message_id = $3")?;
        c.client
            .execute(&update, &[&bytes, &key.direction.as_str(), &key.message_id])?;
    }
    let history = History {
        event: change.event,
        from: Some(current),
        to: change.to,
        at: change.at,
        reason: change.reason,
        actor: change.actor,
    };
    append_history(c, key, &history)?;
    Ok(Transition::Moved { from: current })
}

/// The state and parked-from state of a message, if recorded, with its row locked until the
/// transaction ends: whoever moves the message next waits, then reads what this one wrote.
fn lock_state(c: &mut Connection, key: &Key) -> Result<Option<(State, Option<State>)>, Fault> {
    let select = c.statement(
        "SELECT state, parked_from FROM messages
         WHERE direction = $1 AND message_id = $2
         FOR UPDATE",
    )?;
    let Some(row) = c
        .client
        .query_opt(&select, &[&key.direction.as_str(), &key.message_id])?
    else {
        return Ok(None);
    };
    Ok(Some((
        parse("state", row.try_get(0)?)?,
        row.try_get::<_, Option<String>>(1)?
            .map(|s| parse("parked_from", s))
            .transpose()?,
    )))
}

fn append_history(c: &mut Connection, key: &Key, history: &History<'_>) -> Result<(), Fault> {
    let insert = c.statement(
        "INSERT INTO transitions (direction, message_id, event, from_state, to_state, at,
             reason_code, reason_text, actor)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
    )?;
    c.client.execute(
        &insert,
        &[
            &key.direction.as_str(),
            &key.message_id,
            &history.event.as_str(),
            &history.from.map(State::as_str),
            &history.to.as_str(),
            &history.at,
            &history.reason.map(|r| r.code.as_str()),
            &history.reason.map(|r| r.text.as_str()),
            &history.actor,
        ],
    )?;
    Ok(())
}

fn select_record(c: &mut Connection, key: &Key) -> Result<Option<MessageRecord>, Fault> {
    let select = c.statement(
        "SELECT direction, message_id, kind, sender, receiver, correlation_id, version,
             created_at, state, parked_from, attempts, reason_code, reason_text, first_seen,
             updated_at, digest, transport_ref, bodies.bytes
         FROM messages JOIN bodies USING (direction, message_id)
         WHERE direction = $1 AND message_id = $2",
    )?;
    let Some(row) = c
        .client
        .query_opt(&select, &[&key.direction.as_str(), &key.message_id])?
    else {
        return Ok(None);
    };
    Ok(Some(MessageRecord {
        summary: summary_from_row(&row)?,
        bytes: row.try_get(17)?,
    }))
}

fn summary_from_row(row: &Row) -> Result<MessageSummary, Fault> {
    let created_at: String = row.try_get(7)?;
    let digest: Vec<u8> = row.try_get(15)?;
    let attempts: i32 = row.try_get(10)?;
    Ok(MessageSummary {
        direction: parse("direction", row.try_get(0)?)?,
        header: Header {
            message_id: row.try_get(1)?,
            correlation_id: row.try_get(5)?,
            sender: parse("sender", row.try_get(3)?)?,
            receiver: parse("receiver", row.try_get(4)?)?,
            kind: parse("kind", row.try_get(2)?)?,
            version: row.try_get(6)?,
            created_at: OffsetDateTime::parse(&created_at, &Rfc3339).map_err(|_| {
                Fault::Corrupt {
                    column: "created_at",
                    value: created_at.clone(),
                }
            })?,
        },
        state: parse("state", row.try_get(8)?)?,
        parked_from: row
            .try_get::<_, Option<String>>(9)?
            .map(|s| parse("parked_from", s))
            .transpose()?,
        attempts: u32::try_from(attempts).map_err(|_| Fault::Corrupt {
            column: "attempts",
            value: attempts.to_string(),
        })?,
        reason: reason(row.try_get(11)?, row.try_get(12)?),
        first_seen: row.try_get(13)?,
        updated_at: row.try_get(14)?,
        digest: digest.as_slice().try_into().map_err(|_| Fault::Corrupt {
            column: "digest",
            value: format!("{} bytes", digest.len()),
        })?,
        transport_ref: row.try_get(16)?,
    })
}

/// The settlement of `reference` of `channel`, if recorded.
fn select_settlement(
    c: &mut Connection,
    channel: &str,
    reference: &str,
) -> Result<Option<ChannelSettlement>, Fault> {
    let select = c.statement(
        "SELECT outcome, note, message_id, settled_at FROM channel_settlements
         WHERE channel = $1 AND reference = $2",
    )?;
    let Some(row) = c.client.query_opt(&select, &[&channel, &reference])? else {
        return Ok(None);
    };
    Ok(Some(ChannelSettlement {
        channel: channel.to_owned(),
        reference: reference.to_owned(),
        outcome: parse("outcome", row.try_get(0)?)?,
        note: row.try_get(1)?,
        message_id: row.try_get(2)?,
        at: row.try_get(3)?,
    }))
}

fn parse<T: std::str::FromStr>(column: &'static str, value: String) -> Result<T, Fault> {
    value.parse().map_err(|_| Fault::Corrupt { column, value })
}

/// The SQL run on every new connection: the lock timeout and, if given, the schema.
fn session_setup(options: &PostgresOptions) -> Result<String, String> {
    let mut setup = format!(
        "SET lock_timeout = {};",
        match options.lock_timeout.as_millis() {
            0 => 0,
            ms => ms.max(1),
        }
    );
    if let Some(schema) = &options.schema {
        setup.push_str(&format!(
            " SET search_path TO {};",
            quote_identifier(schema)?
        ));
    }
    Ok(setup)
}

/// `name` as an SQL identifier, in double quotes.
fn quote_identifier(name: &str) -> Result<String, String> {
    if name.is_empty() || name.len() > 63 || name.contains('\0') {
        return Err(format!(
            "{name:?} is not a PostgreSQL schema name (1 to 63 bytes, no NUL)"
        ));
    }
    Ok(format!("\"{}\"", name.replace('"', "\"\"")))
}

/// Creates or migrates the schema, in one transaction under an advisory lock.
fn migrate(connection: &mut Connection, location: &str) -> Result<(), JournalError> {
    let error = |e: postgres::Error| JournalError::Open {
        location: location.to_owned(),
        transient: is_transient(&e),
        source: Box::new(e),
    };
    let refused = |detail: String| JournalError::Open {
        location: location.to_owned(),
        transient: false,
        source: detail.into(),
    };
    let mut tx = connection.client.transaction().map_err(error)?;
    // Opening waits for other processes migrating at the same time (one lock for every schema
    // of the server), however short the lock timeout the journal's own operations use.
    tx.batch_execute("SET LOCAL lock_timeout = '60s'")
        .map_err(error)?;
    tx.execute("SELECT pg_advisory_xact_lock($1)", &[&MIGRATION_LOCK])
        .map_err(error)?;
    let row = tx
        .query_one(
            "SELECT current_schema(),
                 to_regclass(quote_ident(current_schema()) || '.journal_schema') IS NOT NULL",
            &[],
        )
        .map_err(error)?;
    let schema: Option<String> = row.try_get(0).map_err(error)?;
    let versioned: Option<bool> = row.try_get(1).map_err(error)?;
    if schema.is_none() {
        return Err(refused(
            "no schema to create the journal in: the search_path names no existing schema".into(),
        ));
    }
    let found: i64 = if versioned == Some(true) {
        tx.query_one(
            "SELECT coalesce(max(version), 0)::bigint FROM journal_schema",
            &[],
        )
        .and_then(|row| row.try_get(0))
        .map_err(error)?
    } else {
        0
    };
    let supported = POSTGRES_MIGRATIONS.len() as i64;
    if found > supported {
        return Err(JournalError::SchemaTooNew {
            location: location.to_owned(),
            found,
            supported,
        });
    }
    let Ok(applied) = usize::try_from(found) else {
        return Err(refused(format!(
            "not an aswhub journal (schema version {found})"
        )));
    };
    if applied < POSTGRES_MIGRATIONS.len() {
        tx.batch_execute(POSTGRES_VERSION_TABLE).map_err(error)?;
        for (version, migration) in (1_i32..).zip(POSTGRES_MIGRATIONS).skip(applied) {
            tx.batch_execute(migration).map_err(error)?;
            tx.execute(
                "INSERT INTO journal_schema (version) VALUES ($1)",
                &[&version],
            )
            .map_err(error)?;
        }
    }
    tx.commit().map_err(error)
}

/// The URL as shown in errors and logs: without a password (see [`asw_model::redact::url`]).
pub(crate) fn redact(url: &str) -> String {
    asw_model::redact::url(url)
}

/// True if the error means the connection is gone: it cannot be used again.
fn is_connection_error(e: &postgres::Error) -> bool {
    e.is_closed() || source_is_io(e) || e.code().is_some_and(|code| is_connection_code(code.code()))
}

fn source_is_io(e: &postgres::Error) -> bool {
    std::error::Error::source(e).is_some_and(|source| source.is::<std::io::Error>())
}

/// SQLSTATEs that end the connection: connection exceptions, and the server shutting down or
/// starting up (which also comes with a closed connection).
fn is_connection_code(code: &str) -> bool {
    code.starts_with("08") || matches!(code, "57P01" | "57P02" | "57P03")
}

/// True for failures that can clear by themselves: a lost or refused connection, a lock or
/// statement timeout, a deadlock or serialization failure, a server out of resources, shutting
/// down or read-only (a standby until failover completes), an I/O error on the server.
fn is_transient(e: &postgres::Error) -> bool {
    is_connection_error(e) || e.code().is_some_and(|code| is_transient_code(code.code()))
}

/// SQLSTATEs of failures that can clear by themselves; everything else (constraint violations,
/// data errors, syntax or permission errors, failed logins) is permanent.
fn is_transient_code(code: &str) -> bool {
    is_connection_code(code)
        || code.starts_with("40")
        || code.starts_with("53")
        || matches!(code, "55P03" | "57014" | "25006" | "58000" | "58030")
}

fn pool_message(e: &PoolError) -> String {
    match e {
        PoolError::Connect(e) => e.to_string(),
        PoolError::Exhausted { size, waited } => format!(
            "all {size} connections of this journal handle stayed busy for {} s",
            waited.as_secs_f64()
        ),
    }
}

/// A failure inside an operation, before the operation and subject are attached.
#[derive(Debug)]
enum Fault {
    Postgres(postgres::Error),
    Pool(PoolError),
    NotFound,
    Corrupt {
        column: &'static str,
        value: String,
    },
    Invalid(String),
    /// The row changed between reading and updating it (not possible with the row locked).
    LostRace,
}

impl From<postgres::Error> for Fault {
    fn from(e: postgres::Error) -> Fault {
        Fault::Postgres(e)
    }
}

impl From<PoolError> for Fault {
    fn from(e: PoolError) -> Fault {
        Fault::Pool(e)
    }
}

impl Fault {
    fn is_connection_error(&self) -> bool {
        matches!(self, Fault::Postgres(e) if is_connection_error(e))
    }

    fn into_error(self, operation: Operation, subject: Subject) -> JournalError {
        let database = |transient: bool, source: crate::BoxError| JournalError::Database {
            operation,
            subject,
            transient,
            source,
        };
        match self {
            Fault::Postgres(e) => database(is_transient(&e), Box::new(e)),
            Fault::Pool(PoolError::Connect(e)) => database(is_transient(&e), Box::new(e)),
            Fault::Pool(e @ PoolError::Exhausted { .. }) => database(true, pool_message(&e).into()),
            Fault::NotFound => JournalError::NotFound { operation, subject },
            Fault::Corrupt { column, value } => JournalError::Corrupt {
                operation,
                subject,
                column,
                value,
            },
            Fault::Invalid(detail) => JournalError::InvalidRequest {
                operation,
                subject,
                detail,
            },
            Fault::LostRace => database(
                true,
                "the message changed while it was being updated".into(),
            ),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_lose_their_password_in_errors() {
        for (url, shown) in [
            (
                "postgres://hub:s3cret@db.example:5432/journal",
                "postgres://hub@db.example:5432/journal",
            ),
            (
                "postgresql://hub:s3cret@db1,db2/journal?password=x&options=-csearch_path%3Dj",
                "postgresql://hub@db1,db2/journal?options=-csearch_path%3Dj",
            ),
            (
                "postgres://hub@127.0.0.1/journal?password=x",
                "postgres://hub@127.0.0.1/journal",
            ),
            ("postgres://127.0.0.1", "postgres://127.0.0.1"),
            ("mysql://root:pw@db/x", "mysql://root@db/x"),
            (
                "host=db user=hub dbname=journal",
                "host=db user=hub dbname=journal",
            ),
            (
                "host=db password='a b' user=hub",
                "a connection string (not shown: it holds a password)",
            ),
        ] {
            assert_eq!(redact(url), shown, "{url}");
        }
    }

    #[test]
    fn verify_modes_are_taken_out_of_the_url() {
        let cases = [
            (
                "postgres://h/db?sslmode=verify-full",
                false,
                "postgres://h/db",
                Some(Verify::Full),
            ),
            (
                "postgres://h/db?sslmode=verify-ca&application_name=x",
                false,
                "postgres://h/db?application_name=x",
                Some(Verify::Ca),
            ),
            (
                "postgres://h/db?connect_timeout=2&sslmode=verify-full",
                false,
                "postgres://h/db?connect_timeout=2",
                Some(Verify::Full),
            ),
            (
                "host=h sslmode=verify-full dbname=d",
                false,
                "host=h dbname=d",
                Some(Verify::Full),
            ),
            (
                "postgres://h/db",
                true,
                "postgres://h/db",
                Some(Verify::Full),
            ),
            (
                "postgres://h/db?sslmode=require",
                true,
                "postgres://h/db?sslmode=require",
                None,
            ),
            ("postgres://h/db", false, "postgres://h/db", None),
        ];
        for (url, given, stripped, verify) in cases {
            assert_eq!(
                ssl_verification(url, given),
                (stripped.to_owned(), verify),
                "{url}"
            );
        }
    }

    #[test]
    fn connection_and_resource_failures_are_transient_others_not() {
        for code in [
            "08000", "08006", "08001", "57P01", "57P02", "57P03", "40001", "40P01", "53100",
            "53200", "53300", "55P03", "57014", "25006", "58030",
        ] {
            assert!(is_transient_code(code), "{code}");
        }
        for code in [
            "23505", "23503", "23514", "22001", "22P02", "42601", "42P01", "42501", "28P01",
            "3D000", "3F000", "0A000", "XX000",
        ] {
            assert!(!is_transient_code(code), "{code}");
        }
        assert!(is_connection_code("08006"));
        assert!(is_connection_code("57P01"));
        assert!(!is_connection_code("40001"));
        assert!(!is_connection_code("55P03"));
    }

    #[test]
    fn schema_names_are_quoted() {
        assert_eq!(quote_identifier("journal").as_deref(), Ok("\"journal\""));
        assert_eq!(
            quote_identifier("a\"b; DROP").as_deref(),
            Ok("\"a\"\"b; DROP\"")
        );
        assert!(quote_identifier("").is_err());
        assert!(quote_identifier(&"x".repeat(64)).is_err());
    }
}
