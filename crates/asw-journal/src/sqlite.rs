//! The journal on an embedded SQLite database (WAL mode, busy timeout, schema migrated on open).
//!
//! One handle holds one connection behind a `Mutex`. SQLite lets one writer at a time into a
//! database anyway, and every write here is a short transaction, so a pool would only let reads of
//! one process overlap (an operator's listing usually runs in a process of its own, with its own
//! handle). The mutex is never held across an `.await` because the API is synchronous. Correctness
//! between handles and processes comes from SQLite's write lock (`BEGIN IMMEDIATE`, waited for up
//! to the busy timeout) and compare-and-set updates, not from the mutex.
//!
//! Writes are committed in groups: with `synchronous=FULL` a commit costs an fsync (hundreds of
//! microseconds), far more than the statements of one operation. Each operation runs in a
//! savepoint of the transaction that is open on the connection (beginning one if none is), and
//! then waits until that transaction is committed; the first waiter commits it, after the
//! operations already on their way have joined it, so one fsync serves every document in flight.
//! An operation returns only once its own writes are durable, and an operation that fails rolls
//! back its savepoint only; a failed commit fails every operation of the group (nothing of it was
//! written), each of which is then retried as a transient error. A read waits for the commit of
//! the transaction whose uncommitted writes it may have seen.
//!
//! With `synchronous=FULL` on a file, the connection runs with `synchronous=NORMAL` and the
//! committer syncs the write-ahead log itself after `COMMIT`, without holding the connection, so
//! the next group forms during the fsync; the group's operations still return only after it.
//! The writes of a batch ([`Journal::batch`]) wait for their commit once, at its end. A
//! background thread checkpoints the log; commits never do, but a group that begins with the
//! log past its limit starts it over first ([`SqliteOptions::log_limit`]).

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard, OnceLock, PoisonError};
use std::time::{Duration, Instant};

use asw_model::{DocumentKind, Header};
use rusqlite::types::Value;
use rusqlite::{Connection, ErrorCode, OptionalExtension, Row, TransactionBehavior};
use rusqlite::{named_params, params_from_iter};
use sha2::{Digest, Sha256};
use time::format_description::BorrowedFormatItem;
use time::format_description::well_known::Rfc3339;
use time::macros::format_description;
use time::{OffsetDateTime, PrimitiveDateTime};
use uuid::Uuid;

use crate::request::{
    self, OverdueClaim, differences, overdue_claim, parked_from_after, reason, stored_time,
};
use crate::schema::SQLITE_MIGRATIONS;
use crate::state::{Step, replay_target, step};
use crate::{
    ChannelSettlement, Conflict, Direction, Event, Filter, Journal, JournalError, MessageRecord,
    MessageSummary, Operation, Overdue, OverdueQuery, Reason, Recorded, Removal, Replay, State,
    Subject, Transition, TransitionRecord,
};

/// How hard SQLite makes sure a commit survives a power failure.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Synchronous {
    /// `synchronous=FULL`: a commit is on disk before it returns; a power failure loses nothing
    /// the hub acknowledged. The default.
    Full,
    /// `synchronous=NORMAL`: faster; in WAL mode a power failure (not a crash of the process) may
    /// lose the last commits, though the database stays consistent.
    Normal,
}

/// Settings of a [`SqliteJournal`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SqliteOptions {
    /// How long to wait for another process's write before failing with a transient error.
    pub busy_timeout: Duration,
    /// Durability of commits.
    pub synchronous: Synchronous,
    /// The name written as actor of the moves this handle makes (operators' replays and discards
    /// carry their own name).
    pub actor: String,
    /// How large the write-ahead log may grow (bytes) before it is started over.
    pub log_limit: u64,
}

impl SqliteOptions {
    /// The default busy timeout.
    pub const DEFAULT_BUSY_TIMEOUT: Duration = Duration::from_secs(5);
    /// The default actor.
    pub const DEFAULT_ACTOR: &'static str = "aswhub";
    /// The default limit of the write-ahead log: 64 MiB.
    pub const DEFAULT_LOG_LIMIT: u64 = 64 << 20;
}

impl Default for SqliteOptions {
    /// Five seconds busy timeout, `synchronous=FULL`, actor `aswhub`, a log of 64 MiB at most.
    fn default() -> SqliteOptions {
        SqliteOptions {
            busy_timeout: SqliteOptions::DEFAULT_BUSY_TIMEOUT,
            synchronous: Synchronous::Full,
            actor: SqliteOptions::DEFAULT_ACTOR.to_owned(),
            log_limit: SqliteOptions::DEFAULT_LOG_LIMIT,
        }
    }
}

/// The journal on SQLite. `Send + Sync`: share it between worker threads in an `Arc`.
#[derive(Debug)]
pub struct SqliteJournal {
    open: Mutex<Open>,
    /// Whether some thread is committing the open group now. Guards the waits on each group's
    /// condition variable, and the end of a group that is not committed by a committer.
    committing: Mutex<bool>,
    /// Threads inside `write` that have not yet added their operation to the open group.
    arriving: AtomicUsize,
    /// Write transactions committed since the journal was opened.
    commits: AtomicU64,
    actor: String,
    /// How long to wait for another process's write lock.
    busy_timeout: Duration,
    /// Set by a commit that left the write-ahead log past its limit; taken by the next group,
    /// which starts the log over ([`Checkpointer`]).
    restart: Arc<AtomicBool>,
    /// The database file as opened (`None` in memory), checked before every write.
    file: Option<FileIdentity>,
    /// Copies the write-ahead log into the database file in the background (file journals).
    checkpointer: Option<Checkpointer>,
    /// With `synchronous=FULL` on a file: the log, synced by the committer after each commit
    /// outside the connection's lock (the connection runs with `synchronous=NORMAL`).
    wal: Option<WalSync>,
}

/// The write-ahead log file of a journal, synced after each commit. SQLite's `synchronous=FULL`
/// syncs it inside `COMMIT`, holding the connection, so no write could join the next group for
/// the whole fsync; syncing it after `COMMIT` returns makes the commit just as durable (the
/// group's callers return only after the sync) and lets the next group form meanwhile.
#[derive(Debug)]
struct WalSync {
    path: PathBuf,
    file: Mutex<Option<std::fs::File>>,
}

impl WalSync {
    fn sync(&self) -> std::io::Result<()> {
        let mut file = self.file.lock().unwrap_or_else(PoisonError::into_inner);
        if file.is_none() {
            *file = Some(std::fs::OpenOptions::new().read(true).open(&self.path)?);
        }
        match file.as_ref() {
            Some(f) => f.sync_data(),
            None => Ok(()),
        }
    }
}

/// A thread that checkpoints the write-ahead log with a connection of its own, so that no commit
/// waits for a checkpoint: with SQLite's automatic checkpoint, the commit that crosses the
/// threshold copies up to 1,000 pages and syncs the database file (tens of milliseconds)
/// while every other writer waits for it. A passive checkpoint blocks no writer.
///
/// SQLite starts the log over only when a write transaction begins with every frame of it
/// checkpointed; with writes that never pause (a group begins the moment the one before is
/// committed) that never happens, and the log would grow without end. So a commit that leaves
/// the log past [`SqliteOptions::log_limit`] has the next group begin with a `RESTART`
/// checkpoint on the writer's connection ([`SqliteJournal::restart_log`]): what is left to copy
/// after the passive checkpoints is little.
#[derive(Debug)]
struct Checkpointer {
    stop: std::sync::mpsc::Sender<()>,
    thread: Option<std::thread::JoinHandle<()>>,
}

/// How often the background checkpoint runs.
const CHECKPOINT_EVERY: Duration = Duration::from_millis(250);

impl Checkpointer {
    /// Opens a connection of its own to `path` and starts the thread.
    fn start(path: &Path, options: &SqliteOptions) -> Result<Checkpointer, String> {
        let connection = Connection::open(path).map_err(|e| e.to_string())?;
        connection
            .busy_timeout(options.busy_timeout)
            .map_err(|e| e.to_string())?;
        let (stop, stopped) = std::sync::mpsc::channel::<()>();
        let checkpoint =
            move || connection.query_row("PRAGMA wal_checkpoint(PASSIVE)", [], |_| Ok(()));
        let thread = std::thread::Builder::new()
            .name("asw-checkpoint".into())
            .spawn(move || {
                while let Err(std::sync::mpsc::RecvTimeoutError::Timeout) =
                    stopped.recv_timeout(CHECKPOINT_EVERY)
                {
                    if let Err(e) = checkpoint() {
                        tracing::debug!(error = %e, "Journal checkpoint failed; trying again.");
                    }
                }
                // A last one, so a stopped hub leaves a short log.
                let _ = checkpoint();
            })
            .map_err(|e| e.to_string())?;
        Ok(Checkpointer {
            stop,
            thread: Some(thread),
        })
    }
}

/// The write-ahead log of the database at `path`.
fn wal_path(path: &Path) -> PathBuf {
    let mut wal = path.as_os_str().to_owned();
    wal.push("-wal");
    PathBuf::from(wal)
}

impl Drop for Checkpointer {
    fn drop(&mut self) {
        let _ = self.stop.send(());
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

impl SqliteJournal {
    /// Opens (creating if needed) the journal at `path` with default options.
    pub fn open(path: impl AsRef<Path>) -> Result<SqliteJournal, JournalError> {
        SqliteJournal::open_with(path, &SqliteOptions::default())
    }

    /// Opens (creating if needed) the journal at `path`: WAL mode, busy timeout, foreign keys,
    /// schema created or migrated.
    pub fn open_with(
        path: impl AsRef<Path>,
        options: &SqliteOptions,
    ) -> Result<SqliteJournal, JournalError> {
        let path = path.as_ref();
        // Two processes opening a new file at once race to switch it to WAL mode, and SQLite
        // answers that race with "database is locked" without waiting: try again until the busy
        // timeout has passed.
        let deadline = std::time::Instant::now() + options.busy_timeout;
        let mut journal = loop {
            let connection = Connection::open(path).map_err(open_error(path))?;
            match SqliteJournal::prepare(connection, path, options, false) {
                Ok(journal) => break journal,
                Err(e) if e.is_transient() && std::time::Instant::now() < deadline => {
                    std::thread::sleep(Duration::from_millis(20));
                }
                Err(e) => return Err(e),
            }
        };
        journal.file = Some(FileIdentity::of(path).map_err(|e| JournalError::Open {
            location: path.display().to_string(),
            transient: true,
            source: Box::new(e),
        })?);
        if options.synchronous == Synchronous::Full {
            journal
                .lock()
                .connection
                .pragma_update(None, "synchronous", "NORMAL")
                .map_err(open_error(path))?;
            journal.wal = Some(WalSync {
                path: wal_path(path),
                file: Mutex::new(None),
            });
        }
        match Checkpointer::start(path, options) {
            Ok(checkpointer) => {
                let mut open = journal.lock();
                let connection = &mut open.connection;
                // Unregisters SQLite's own hook, so ours must come after.
                connection
                    .pragma_update(None, "wal_autocheckpoint", 0)
                    .map_err(open_error(path))?;
                // A log started over larger than the limit is cut down to it.
                connection
                    .pragma_update(
                        None,
                        "journal_size_limit",
                        i64::try_from(options.log_limit).unwrap_or(i64::MAX),
                    )
                    .map_err(open_error(path))?;
                let page: i64 = connection
                    .query_row("PRAGMA page_size", [], |row| row.get(0))
                    .map_err(open_error(path))?;
                let pages = options.log_limit / u64::try_from(page).unwrap_or(4096).max(1);
                let restart = journal.restart.clone();
                connection
                    .wal_hook(Some(move |_: &mut rusqlite::hooks::Wal, frames: i32| {
                        if u64::try_from(frames).is_ok_and(|frames| frames > pages) {
                            restart.store(true, Ordering::Relaxed);
                        }
                        Ok(())
                    }))
                    .map_err(open_error(path))?;
                drop(open);
                journal.checkpointer = Some(checkpointer);
            }
            Err(e) => {
                tracing::warn!(path = %path.display(), error = %e, "Cannot start the journal checkpoint thread; SQLite's own checkpoints are used.");
            }
        }
        Ok(journal)
    }

    /// A private journal in memory, gone when dropped: for tests.
    pub fn in_memory() -> Result<SqliteJournal, JournalError> {
        let path = Path::new(":memory:");
        let connection = Connection::open_in_memory().map_err(open_error(path))?;
        SqliteJournal::prepare(connection, path, &SqliteOptions::default(), true)
    }

    fn prepare(
        mut connection: Connection,
        path: &Path,
        options: &SqliteOptions,
        in_memory: bool,
    ) -> Result<SqliteJournal, JournalError> {
        let error = open_error(path);
        connection
            .busy_timeout(options.busy_timeout)
            .map_err(&error)?;
        let mode: String = connection
            .pragma_update_and_check(None, "journal_mode", "WAL", |row| row.get(0))
            .map_err(&error)?;
        if !in_memory && !mode.eq_ignore_ascii_case("wal") {
            return Err(JournalError::Open {
                location: path.display().to_string(),
                transient: false,
                source: format!("SQLite cannot use WAL mode here (journal_mode is {mode})").into(),
            });
        }
        let synchronous = match options.synchronous {
            Synchronous::Full => "FULL",
            Synchronous::Normal => "NORMAL",
        };
        connection
            .pragma_update(None, "synchronous", synchronous)
            .map_err(&error)?;
        connection
            .pragma_update(None, "foreign_keys", true)
            .map_err(&error)?;
        // Each operation runs in a savepoint: keep its rollback journal in memory, not in a
        // temporary file.
        connection
            .pragma_update(None, "temp_store", "MEMORY")
            .map_err(&error)?;
        // Pages of the indexes every write touches stay in memory as the journal grows (bounded:
        // 16 MiB), and every statement stays prepared.
        connection
            .pragma_update(None, "cache_size", -16_384)
            .map_err(&error)?;
        connection.set_prepared_statement_cache_capacity(64);
        migrate(&mut connection, path)?;
        Ok(SqliteJournal {
            open: Mutex::new(Open {
                connection,
                group: None,
                syncing: None,
            }),
            committing: Mutex::new(false),
            arriving: AtomicUsize::new(0),
            commits: AtomicU64::new(0),
            actor: options.actor.clone(),
            busy_timeout: options.busy_timeout,
            restart: Arc::default(),
            file: None,
            checkpointer: None,
            wal: None,
        })
    }

    /// How many write transactions this handle has committed: fewer than the writes it made when
    /// concurrent writes shared commits.
    pub fn commits(&self) -> u64 {
        self.commits.load(Ordering::Relaxed)
    }

    fn lock(&self) -> MutexGuard<'_, Open> {
        // A thread that panicked while holding the lock left its savepoint rolled back (dropping
        // a `Savepoint` during unwinding does that), so the connection is fine to use.
        self.open.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Runs `f` in a savepoint of the open write transaction (`BEGIN IMMEDIATE` when none is
    /// open: the write lock is taken first, waiting up to the busy timeout, so a read inside `f`
    /// cannot be overtaken by another writer), then waits until that transaction is committed.
    fn write<T>(
        &self,
        operation: Operation,
        subject: Subject,
        f: impl FnOnce(&Connection) -> Result<T, Fault>,
    ) -> Result<T, JournalError> {
        self.arriving.fetch_add(1, Ordering::SeqCst);
        let added = self.add_to_group(f);
        self.arriving.fetch_sub(1, Ordering::SeqCst);
        let run = || {
            let (done, group) = added?;
            if self.defer(&group) {
                // In a batch: the batch waits for the commit.
                return done;
            }
            // Even an operation that failed waits for its group: the transaction must not stay
            // open (holding SQLite's write lock) for want of a committer.
            let committed = self.await_commit(&group);
            let value = done?;
            committed?;
            Ok(value)
        };
        run().map_err(|fault: Fault| fault.into_error(operation, subject))
    }

    /// Adds `f` to the open group (beginning one if none is open): the outcome of `f`, and the
    /// group to wait for. Fails only when no group could be begun.
    #[allow(clippy::type_complexity)]
    fn add_to_group<T>(
        &self,
        f: impl FnOnce(&Connection) -> Result<T, Fault>,
    ) -> Result<(Result<T, Fault>, Arc<Group>), Fault> {
        let mut open = self.lock();
        let open = &mut *open;
        let group = match &open.group {
            Some(group) => group.clone(),
            None => {
                if let Some(file) = &self.file {
                    file.check()?;
                }
                if self.restart.swap(false, Ordering::Relaxed) {
                    self.restart_log(&open.connection);
                }
                open.connection.execute_batch("BEGIN IMMEDIATE")?;
                let group = Arc::new(Group::default());
                open.group = Some(group.clone());
                group
            }
        };
        let done = (|| {
            let savepoint = open.connection.savepoint()?;
            let value = f(&savepoint)?;
            savepoint.commit()?;
            Ok(value)
        })();
        if open.connection.is_autocommit() {
            // Some errors (a full disk, an I/O error) make SQLite roll back the whole
            // transaction: every operation of the group is lost, and must fail.
            open.group = None;
            {
                // Under the lock its waiters check the group with, so none misses the end.
                let _committing = self
                    .committing
                    .lock()
                    .unwrap_or_else(PoisonError::into_inner);
                group.end(Err(GroupFailure {
                    text: "the journal transaction was rolled back by the database".into(),
                }));
            }
            group.ended.notify_all();
        }
        Ok((done, group))
    }

    /// Starts the write-ahead log over with a `RESTART` checkpoint, on the writer's connection
    /// while no transaction is open on it: the group about to begin then writes the log from its
    /// start, over the pages the file has (cut down to the limit if it had grown past it). Not
    /// `TRUNCATE`: a file cut to nothing is extended by every commit until it has grown back, and
    /// syncing a file that grew syncs its metadata too. A reader in another process keeps the log
    /// as it is (busy at once, no wait) until the next commit past the limit asks again
    /// ([`Checkpointer`]).
    fn restart_log(&self, connection: &Connection) {
        let restarted = connection.busy_timeout(Duration::ZERO).and_then(|()| {
            connection.query_row("PRAGMA wal_checkpoint(RESTART)", [], |row| {
                row.get::<_, i64>(0)
            })
        });
        match restarted {
            Ok(0) => {}
            Ok(_) => tracing::debug!("The journal's log is in use; starting it over later."),
            Err(e) => {
                tracing::debug!(error = %e, "Cannot start the journal's log over; trying later.")
            }
        }
        if let Err(e) = connection.busy_timeout(self.busy_timeout) {
            tracing::warn!(error = %e, "Cannot set the journal's busy timeout back.");
        }
    }

    /// Waits until `group` is committed, committing it if no other thread is committing.
    ///
    /// A waiter sleeps on its own group's condition variable: the end of a commit wakes the
    /// waiters of the group committed, and one waiter of the group open by then, which commits
    /// that group (not every waiter of both, who would mostly go back to sleep).
    fn await_commit(&self, group: &Group) -> Result<(), Fault> {
        let mut committing = self
            .committing
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        loop {
            if let Some(outcome) = group.outcome.get() {
                return outcome.clone().map_err(Fault::Group);
            }
            if *committing {
                committing = group
                    .ended
                    .wait(committing)
                    .unwrap_or_else(PoisonError::into_inner);
                continue;
            }
            *committing = true;
            drop(committing);
            let committed = self.commit_open_group();
            committing = self
                .committing
                .lock()
                .unwrap_or_else(PoisonError::into_inner);
            *committing = false;
            drop(committing);
            if let Some(committed) = committed {
                committed.ended.notify_all();
            }
            // The next committer: a waiter of the group that is open now, if it has any (one
            // arriving later finds no committer and commits it itself).
            let next = self.lock().group.clone();
            if let Some(next) = next {
                next.ended.notify_one();
            }
            committing = self
                .committing
                .lock()
                .unwrap_or_else(PoisonError::into_inner);
        }
    }

    /// Commits the open group, once the operations on their way to it have joined (waiting
    /// [`GROUP_WAIT`] at most: a writer waiting for another process's lock does not hold it up,
    /// and with many writers the wait would only burn a core; operations arriving during a
    /// commit form the next group anyway).
    fn commit_open_group(&self) -> Option<Arc<Group>> {
        let deadline = Instant::now() + GROUP_WAIT;
        while self.arriving.load(Ordering::SeqCst) > 0 && Instant::now() < deadline {
            std::thread::yield_now();
        }
        let mut open = self.lock();
        let group = open.group.take()?;
        let committed = open.connection.execute_batch("COMMIT");
        if committed.is_ok() {
            self.commits.fetch_add(1, Ordering::Relaxed);
        }
        if committed.is_err() && !open.connection.is_autocommit() {
            let _ = open.connection.execute_batch("ROLLBACK");
        }
        let mut outcome = committed.map_err(|e| GroupFailure {
            text: format!("the journal could not commit: {e}"),
        });
        if let (Ok(()), Some(wal)) = (&outcome, &self.wal) {
            open.syncing = Some(group.clone());
            drop(open);
            outcome = wal.sync().map_err(|e| GroupFailure {
                text: format!("the journal could not sync its log: {e}"),
            });
            open = self.lock();
            if open
                .syncing
                .as_ref()
                .is_some_and(|syncing| Arc::ptr_eq(syncing, &group))
            {
                open.syncing = None;
            }
        }
        drop(open);
        group.end(outcome);
        Some(group)
    }

    /// Runs `f` on the connection, outside an explicit transaction (each statement reads one
    /// consistent snapshot), or inside the open group: then the answer waits for its commit.
    fn read<T>(
        &self,
        operation: Operation,
        subject: Subject,
        f: impl FnOnce(&Connection) -> Result<T, Fault>,
    ) -> Result<T, JournalError> {
        let run = || {
            let (value, group) = {
                let open = self.lock();
                // What the read saw may include a commit still being synced.
                let group = open.group.clone().or_else(|| open.syncing.clone());
                (f(&open.connection)?, group)
            };
            if let Some(group) = group
                && !self.defer(&group)
            {
                self.await_commit(&group)?;
            }
            Ok(value)
        };
        run().map_err(|fault: Fault| fault.into_error(operation, subject))
    }
}

impl SqliteJournal {
    /// If this thread runs a batch on this journal, notes that the batch waits for `group` and
    /// returns true.
    fn defer(&self, group: &Arc<Group>) -> bool {
        BATCH.with_borrow_mut(|batch| match batch {
            Some(batch) if batch.journal == self.id() => {
                if !batch.groups.iter().any(|g| Arc::ptr_eq(g, group)) {
                    batch.groups.push(group.clone());
                }
                true
            }
            _ => false,
        })
    }

    fn id(&self) -> usize {
        std::ptr::from_ref(self) as usize
    }

    /// Waits for the commit of every group of a batch's writes.
    fn finish_batch(&self, groups: &[Arc<Group>]) -> Result<(), Fault> {
        // Groups commit in order: once the last is committed, every earlier one has ended.
        let mut outcome = match groups.last() {
            Some(last) => self.await_commit(last),
            None => Ok(()),
        };
        for group in groups {
            if let Some(Err(failure)) = group.outcome.get()
                && outcome.is_ok()
            {
                outcome = Err(Fault::Group(failure.clone()));
            }
        }
        outcome
    }

    /// Records a message seen for the first time, recognised later by the digest of `original`,
    /// storing `stored` with the history `steps` (see [`insert_record`]).
    fn record_with(
        &self,
        direction: Direction,
        header: &Header,
        original: &[u8],
        stored: &[u8],
        steps: &[(Option<State>, State)],
        at: OffsetDateTime,
    ) -> Result<Recorded, JournalError> {
        let entry = steps.first().map_or(State::Received, |&(_, state)| state);
        request::check_record(direction, header.message_id, entry)?;
        let key = Key::new(direction, header.message_id);
        let digest: [u8; 32] = Sha256::digest(original).into();
        self.write(Operation::Record, key.subject(), |tx| {
            let at = encode_time(at)?;
            insert_record(tx, &key, header, &digest, stored, steps, &at, &self.actor)
        })
    }
}

thread_local! {
    /// The batch this thread runs, if any ([`Journal::batch`]).
    static BATCH: std::cell::RefCell<Option<Batch>> = const { std::cell::RefCell::new(None) };
}

/// A batch in progress: which journal, and the groups its writes joined.
struct Batch {
    journal: usize,
    groups: Vec<Arc<Group>>,
}

/// Ends this thread's batch when dropped, even by a panic in the batch: the groups it joined are
/// committed (an open transaction must not keep SQLite's write lock for want of a committer).
struct BatchGuard<'a> {
    journal: &'a SqliteJournal,
    finished: bool,
}

impl BatchGuard<'_> {
    fn finish(&mut self) -> Result<(), Fault> {
        self.finished = true;
        let groups = BATCH
            .with_borrow_mut(Option::take)
            .map(|b| b.groups)
            .unwrap_or_default();
        self.journal.finish_batch(&groups)
    }
}

impl Drop for BatchGuard<'_> {
    fn drop(&mut self) {
        if !self.finished {
            let _ = self.finish();
        }
    }
}

/// How long a commit waits for operations on their way to its group.
const GROUP_WAIT: Duration = Duration::from_micros(200);

/// The connection and the write transaction open on it, if any.
#[derive(Debug)]
struct Open {
    connection: Connection,
    group: Option<Arc<Group>>,
    /// A group committed whose log is being synced: not durable yet, though its writes are
    /// visible on the connection.
    syncing: Option<Arc<Group>>,
}

/// The operations of one write transaction: they all end as its commit does.
#[derive(Debug, Default)]
struct Group {
    outcome: OnceLock<Result<(), GroupFailure>>,
    /// Its waiters sleep here (with the journal's `committing` lock).
    ended: Condvar,
}

impl Group {
    fn end(&self, outcome: Result<(), GroupFailure>) {
        // Only the thread that took the group out of `Open` ends it.
        let _ = self.outcome.set(outcome);
    }
}

/// Why a group's transaction was not committed: nothing of it was written.
#[derive(Debug, Clone)]
struct GroupFailure {
    text: String,
}

impl Journal for SqliteJournal {
    fn batches(&self) -> bool {
        true
    }

    fn commit_count(&self) -> Option<u64> {
        Some(SqliteJournal::commits(self))
    }

    fn probe_write(&self) -> Result<(), JournalError> {
        // An empty write still takes the write lock (`BEGIN IMMEDIATE`), which a read-only or
        // vanished file refuses.
        self.write(Operation::Probe, Subject::Messages, |_| Ok(()))
    }

    fn batch(&self, f: &mut dyn FnMut()) -> Result<(), JournalError> {
        let nested = BATCH.with_borrow(|batch| batch.as_ref().map(|b| b.journal));
        match nested {
            Some(journal) if journal == self.id() => {
                f();
                return Ok(());
            }
            // A batch on another journal is running on this thread: this one commits on its own.
            Some(_) => {
                f();
                return Ok(());
            }
            None => {}
        }
        BATCH.with_borrow_mut(|batch| {
            *batch = Some(Batch {
                journal: self.id(),
                groups: Vec::new(),
            });
        });
        let mut guard = BatchGuard {
            journal: self,
            finished: false,
        };
        f();
        guard
            .finish()
            .map_err(|fault| fault.into_error(Operation::Batch, Subject::Messages))
    }

    fn record(
        &self,
        direction: Direction,
        header: &Header,
        bytes: &[u8],
        state: State,
        at: OffsetDateTime,
    ) -> Result<Recorded, JournalError> {
        self.record_with(direction, header, bytes, bytes, &[(None, state)], at)
    }

    fn record_signed(
        &self,
        header: &Header,
        original: &[u8],
        signed: &[u8],
        at: OffsetDateTime,
    ) -> Result<Recorded, JournalError> {
        self.record_with(
            Direction::Outbound,
            header,
            original,
            signed,
            &[
                (None, State::Received),
                (Some(State::Received), State::Signed),
            ],
            at,
        )
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
        self.write(Operation::Transition, key.subject(), |tx| {
            let change = Change {
                to,
                event: Event::Moved,
                reason,
                actor: &self.actor,
                at: encode_time(at)?,
                bytes: None,
            };
            move_state(tx, &key, &change)
        })
    }

    fn transition_signed(
        &self,
        message_id: Uuid,
        signed: &[u8],
        at: OffsetDateTime,
    ) -> Result<Transition, JournalError> {
        let key = Key::new(Direction::Outbound, message_id);
        self.write(Operation::TransitionSigned, key.subject(), |tx| {
            let change = Change {
                to: State::Signed,
                event: Event::Moved,
                reason: None,
                actor: &self.actor,
                at: encode_time(at)?,
                bytes: Some(signed),
            };
            move_state(tx, &key, &change)
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
        self.write(Operation::TransitionWithRef, key.subject(), |tx| {
            let change = Change {
                to,
                event: Event::Moved,
                reason,
                actor: &self.actor,
                at: encode_time(at)?,
                bytes: None,
            };
            let moved = move_state(tx, &key, &change)?;
            if matches!(moved, Transition::Moved { .. } | Transition::AlreadyThere) {
                keep_transport_ref(tx, &key, transport_ref)?;
            }
            Ok(moved)
        })
    }

    fn find_by_transport_ref(
        &self,
        direction: Direction,
        transport_ref: &str,
    ) -> Result<Option<MessageRecord>, JournalError> {
        self.read(
            Operation::FindByTransportRef,
            Subject::Messages,
            |connection| {
                let id: Option<String> = connection
                    .prepare_cached(
                        "SELECT message_id FROM messages
                     WHERE direction = :direction AND transport_ref = :transport_ref",
                    )?
                    .query_row(
                        named_params! {
                            ":direction": direction.as_str(),
                            ":transport_ref": transport_ref,
                        },
                        |row| row.get(0),
                    )
                    .optional()?;
                match id {
                    Some(id) => {
                        select_record(connection, &Key::new(direction, parse("message_id", id)?))
                    }
                    None => Ok(None),
                }
            },
        )
    }

    fn record_settlement(
        &self,
        settlement: &ChannelSettlement,
    ) -> Result<ChannelSettlement, JournalError> {
        self.write(Operation::RecordSettlement, Subject::Settlements, |tx| {
            tx.prepare_cached(
                "INSERT INTO channel_settlements (channel, reference, outcome, note, message_id,
                     settled_at)
                 VALUES (:channel, :reference, :outcome, :note, :message_id, :at)
                 ON CONFLICT (channel, reference) DO NOTHING",
            )?
            .execute(named_params! {
                ":channel": settlement.channel,
                ":reference": settlement.reference,
                ":outcome": settlement.outcome.as_str(),
                ":note": settlement.note,
                ":message_id": settlement.message_id.map(|id| id.to_string()),
                ":at": encode_time(settlement.at)?,
            })?;
            select_settlement(tx, &settlement.channel, &settlement.reference)?
                .ok_or(Fault::LostRace)
        })
    }

    fn settlement(
        &self,
        channel: &str,
        reference: &str,
    ) -> Result<Option<ChannelSettlement>, JournalError> {
        self.read(Operation::Settlement, Subject::Settlements, |connection| {
            select_settlement(connection, channel, reference)
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
        self.write(Operation::BumpAttempts, key.subject(), |tx| {
            let attempts: Option<u32> = tx
                .prepare_cached(
                    "UPDATE messages
                     SET attempts = attempts + 1, reason_code = :code, reason_text = :text,
                         updated_at = :at
                     WHERE direction = :direction AND message_id = :message_id
                     RETURNING attempts",
                )?
                .query_row(
                    named_params! {
                        ":code": reason.code,
                        ":text": reason.text,
                        ":at": encode_time(at)?,
                        ":direction": direction.as_str(),
                        ":message_id": key.id,
                    },
                    |row| row.get(0),
                )
                .optional()?;
            attempts.ok_or(Fault::NotFound)
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
        self.write(Operation::Replay, key.subject(), |tx| {
            let at = encode_time(at)?;
            let (current, parked_from) = current_state(tx, &key)?.ok_or(Fault::NotFound)?;
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
            let changed = tx
                .prepare_cached(
                    "UPDATE messages
                     SET state = :to, parked_from = NULL, attempts = 0, reason_code = NULL,
                         reason_text = NULL, updated_at = :at
                     WHERE direction = :direction AND message_id = :message_id
                         AND state = :current",
                )?
                .execute(named_params! {
                    ":to": to.as_str(),
                    ":at": at,
                    ":direction": direction.as_str(),
                    ":message_id": key.id,
                    ":current": current.as_str(),
                })?;
            if changed != 1 {
                return Err(Fault::LostRace);
            }
            append_history(
                tx,
                &key,
                Event::Replayed,
                Some(current),
                to,
                &at,
                None,
                actor,
            )?;
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
        self.write(Operation::Discard, key.subject(), |tx| {
            let change = Change {
                to: State::Discarded,
                event: Event::Discarded,
                reason: Some(reason),
                actor,
                at: encode_time(at)?,
                bytes: None,
            };
            move_state(tx, &key, &change)
        })
    }

    fn get(
        &self,
        direction: Direction,
        message_id: Uuid,
    ) -> Result<Option<MessageRecord>, JournalError> {
        let key = Key::new(direction, message_id);
        self.read(Operation::Get, key.subject(), |connection| {
            select_record(connection, &key)
        })
    }

    fn history(
        &self,
        direction: Direction,
        message_id: Uuid,
    ) -> Result<Vec<TransitionRecord>, JournalError> {
        let key = Key::new(direction, message_id);
        self.read(Operation::History, key.subject(), |connection| {
            let mut statement = connection.prepare_cached(
                "SELECT seq, event, from_state, to_state, at, reason_code, reason_text, actor
                 FROM transitions
                 WHERE direction = :direction AND message_id = :message_id
                 ORDER BY seq",
            )?;
            let mut rows = statement.query(named_params! {
                ":direction": direction.as_str(),
                ":message_id": key.id,
            })?;
            let mut history = Vec::new();
            while let Some(row) = rows.next()? {
                history.push(TransitionRecord {
                    seq: row.get(0)?,
                    event: parse("event", row.get(1)?)?,
                    from: row
                        .get::<_, Option<String>>(2)?
                        .map(|s| parse("from_state", s))
                        .transpose()?,
                    to: parse("to_state", row.get(3)?)?,
                    at: decode_time("at", row.get(4)?)?,
                    reason: reason(row.get(5)?, row.get(6)?),
                    actor: row.get(7)?,
                });
            }
            Ok(history)
        })
    }

    fn find_original(
        &self,
        direction: Direction,
        correlation_id: Uuid,
    ) -> Result<Option<MessageRecord>, JournalError> {
        let key = Key::new(direction, correlation_id);
        self.read(Operation::FindOriginal, key.subject(), |connection| {
            select_record(connection, &key)
        })
    }

    fn answers(&self, message_id: Uuid) -> Result<Vec<MessageSummary>, JournalError> {
        self.read(
            Operation::Answers,
            Subject::AnswersTo(message_id),
            |connection| {
                let mut statement = connection.prepare_cached(&format!(
                    "SELECT {SUMMARY_COLUMNS} FROM messages WHERE correlation_id = ?1
                     ORDER BY first_seen, direction, message_id"
                ))?;
                let mut rows = statement.query([message_id.to_string()])?;
                let mut answers = Vec::new();
                while let Some(row) = rows.next()? {
                    answers.push(summary_from_row(row)?);
                }
                Ok(answers)
            },
        )
    }

    fn list(&self, filter: &Filter) -> Result<Vec<MessageSummary>, JournalError> {
        self.read(Operation::List, Subject::Messages, |connection| {
            // SQLite plans without statistics (the journal never runs ANALYZE) and takes any
            // equality on an indexed column for the best start. On a large journal the best start
            // is an index in the listing's order (update time, or kind, state or reason code then
            // update time), read until the page is full: so the unary `+` keeps direction (the
            // primary key's first column, one half of the journal) and the partner (an OR that
            // would read both of its indexes and sort every match) out of the choice.
            let mut conditions = Vec::new();
            let mut values = Vec::new();
            if let Some(direction) = filter.direction {
                conditions.push("+direction = ?");
                values.push(Value::Text(direction.as_str().into()));
            }
            if let Some(kind) = filter.kind {
                conditions.push("kind = ?");
                values.push(Value::Text(kind.as_str().into()));
            }
            if let Some(partner) = filter.partner {
                conditions.push("(+sender = ? OR +receiver = ?)");
                values.push(Value::Text(partner.code().into()));
                values.push(Value::Text(partner.code().into()));
            }
            if let Some(state) = filter.state {
                conditions.push("state = ?");
                values.push(Value::Text(state.as_str().into()));
            }
            if let Some(since) = filter.since {
                conditions.push("updated_at >= ?");
                values.push(Value::Text(encode_time(since)?));
            }
            if let Some(until) = filter.until {
                conditions.push("updated_at < ?");
                values.push(Value::Text(encode_time(until)?));
            }
            if let Some(code) = &filter.reason_code {
                conditions.push("reason_code = ?");
                values.push(Value::Text(code.clone()));
            }
            if let Some(text) = &filter.reason_text {
                // SQLite's LIKE ignores ASCII case. Saying `IS NOT NULL` lets the planner read
                // the index of the messages with a reason only.
                conditions.push("reason_text IS NOT NULL AND reason_text LIKE ? ESCAPE '\\'");
                values.push(Value::Text(crate::message::contains_pattern(text)));
            }
            let mut sql = format!("SELECT {SUMMARY_COLUMNS} FROM messages");
            if !conditions.is_empty() {
                sql.push_str(" WHERE ");
                sql.push_str(&conditions.join(" AND "));
            }
            let order = if filter.newest_first { "DESC" } else { "ASC" };
            sql.push_str(&format!(
                " ORDER BY updated_at {order}, direction {order}, message_id {order} LIMIT ? OFFSET ?"
            ));
            values.push(Value::Integer(i64::from(filter.limit)));
            values.push(Value::Integer(i64::from(filter.offset)));
            let mut statement = connection.prepare(&sql)?;
            let mut rows = statement.query(params_from_iter(values))?;
            let mut list = Vec::new();
            while let Some(row) = rows.next()? {
                list.push(summary_from_row(row)?);
            }
            Ok(list)
        })
    }

    fn remove_settled(&self, removals: &[Removal]) -> Result<usize, JournalError> {
        self.write(Operation::Remove, Subject::Messages, |tx| {
            let mut removed = 0;
            for removal in removals {
                let key = Key::new(removal.direction, removal.message_id);
                let row: Option<(String, String, String)> = tx
                    .prepare_cached(
                        "SELECT kind, state, updated_at FROM messages
                         WHERE direction = :direction AND message_id = :message_id",
                    )?
                    .query_row(
                        named_params! { ":direction": key.direction.as_str(), ":message_id": key.id },
                        |row| Ok((row.get(0)?, row.get(1)?, row.get(2)?)),
                    )
                    .optional()?;
                let Some((kind, state, updated_at)) = row else {
                    continue;
                };
                let state: State = parse("state", state)?;
                let kind: DocumentKind = parse("kind", kind)?;
                if !state.settled(key.direction, kind)
                    || updated_at != encode_time(removal.updated_at)?
                {
                    continue;
                }
                for sql in REMOVE_MESSAGE {
                    tx.prepare_cached(sql)?.execute(
                        named_params! { ":direction": key.direction.as_str(), ":message_id": key.id },
                    )?;
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
        self.write(Operation::ClaimOverdue, Subject::Messages, |tx| {
            let at = encode_time(at)?;
            let kinds = vec!["?"; query.kinds.len()].join(", ");
            let mut values: Vec<Value> = query
                .kinds
                .iter()
                .map(|k| Value::Text(k.as_str().into()))
                .collect();
            values.push(Value::Text(encode_time(query.due_before)?));
            values.push(Value::Integer(i64::from(query.max_resends)));
            let tracked = if query.tracked_by_channel.is_empty() {
                String::new()
            } else {
                values.extend(query.tracked_by_channel.iter().map(|(kind, receiver)| {
                    Value::Text(format!("{}.{}", kind.as_str(), receiver.code()))
                }));
                format!(
                    "AND (kind || '.' || receiver) NOT IN ({})",
                    vec!["?"; query.tracked_by_channel.len()].join(", ")
                )
            };
            values.push(Value::Integer(i64::from(query.limit)));
            // Inside `BEGIN IMMEDIATE`: no other process claims between this read and the updates.
            // Through the (state, updated_at, ..) index: ordered by `updated_at` alone, SQLite would
            // walk the whole history of acknowledged messages at every check.
            let mut statement = tx.prepare(&format!(
                "SELECT message_id, state, resends, updated_at FROM messages
                     INDEXED BY messages_by_state
                 WHERE state IN ('queued', 'sent', 'awaiting-ack')
                     AND direction = 'outbound' AND kind IN ({kinds}) AND updated_at <= ?
                     AND (state IN ('queued', 'sent')
                         OR (state = 'awaiting-ack' AND resends < ?))
                     {tracked}
                 ORDER BY updated_at, message_id LIMIT ?"
            ))?;
            let mut rows = statement.query(params_from_iter(values))?;
            let mut due = Vec::new();
            while let Some(row) = rows.next()? {
                let id: Uuid = parse("message_id", row.get(0)?)?;
                let state: State = parse("state", row.get(1)?)?;
                let resends: u32 = row.get(2)?;
                let since = decode_time("updated_at", row.get(3)?)?;
                due.push((id, state, resends, since));
            }
            drop(rows);
            drop(statement);
            let mut claimed = Vec::new();
            for (id, state, resends, since) in due {
                let Some(claim) = overdue_claim(state, resends, query.max_resends, since) else {
                    continue;
                };
                let key = Key::new(Direction::Outbound, id);
                claim_one(tx, &key, state, resends, &claim, &at, &self.actor)?;
                let record = select_record(tx, &key)?.ok_or(Fault::LostRace)?;
                claimed.push(claim.into_overdue(record, since));
            }
            Ok(claimed)
        })
    }
}

/// Applies one overdue claim by compare-and-set on the state and resend count read.
fn claim_one(
    tx: &Connection,
    key: &Key,
    current: State,
    resends: u32,
    claim: &OverdueClaim,
    at: &str,
    actor: &str,
) -> Result<(), Fault> {
    let reason = claim.resent.as_ref().or(claim.moved.as_ref());
    let changed = tx
        .prepare_cached(
            "UPDATE messages
             SET state = 'awaiting-ack', resends = :after, attempts = 0, reason_code = :code,
                 reason_text = :text, updated_at = :at
             WHERE direction = :direction AND message_id = :message_id AND state = :current
                 AND resends = :before",
        )?
        .execute(named_params! {
            ":after": claim.resends,
            ":code": reason.map(|r| r.code.as_str()),
            ":text": reason.map(|r| r.text.as_str()),
            ":at": at,
            ":direction": key.direction.as_str(),
            ":message_id": key.id,
            ":current": current.as_str(),
            ":before": resends,
        })?;
    if changed != 1 {
        return Err(Fault::LostRace);
    }
    if let Some(moved) = &claim.moved {
        append_history(
            tx,
            key,
            Event::Moved,
            Some(current),
            State::AwaitingAck,
            at,
            Some(moved),
            actor,
        )?;
    }
    if let Some(resent) = &claim.resent {
        append_history(
            tx,
            key,
            Event::Resent,
            Some(State::AwaitingAck),
            State::AwaitingAck,
            at,
            Some(resent),
            actor,
        )?;
    }
    Ok(())
}

/// The columns of a [`MessageSummary`], in the order [`summary_from_row`] reads them.
const SUMMARY_COLUMNS: &str = "direction, message_id, kind, sender, receiver, correlation_id, \
     version, created_at, state, parked_from, attempts, reason_code, reason_text, first_seen, \
     updated_at, digest, transport_ref";

/// Deletes one message: its history and bytes, then its row.
const REMOVE_MESSAGE: [&str; 3] = [
    "DELETE FROM transitions WHERE direction = :direction AND message_id = :message_id",
    "DELETE FROM bodies WHERE direction = :direction AND message_id = :message_id",
    "DELETE FROM messages WHERE direction = :direction AND message_id = :message_id",
];

/// A message's identity, with the id as stored.
struct Key {
    direction: Direction,
    message_id: Uuid,
    id: String,
}

impl Key {
    fn new(direction: Direction, message_id: Uuid) -> Key {
        Key {
            direction,
            message_id,
            id: message_id.to_string(),
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
    at: String,
    /// New bytes (the signed bytes, when moving to `signed`).
    bytes: Option<&'a [u8]>,
}

/// Moves a message if the table allows it, inside the caller's write transaction.
fn move_state(tx: &Connection, key: &Key, change: &Change<'_>) -> Result<Transition, Fault> {
    let (current, parked_from) = current_state(tx, key)?.ok_or(Fault::NotFound)?;
    match step(key.direction, current, change.to) {
        Step::Move => {}
        Step::AlreadyThere => return Ok(Transition::AlreadyThere),
        Step::AlreadyPast => return Ok(Transition::AlreadyPast { current }),
        Step::Refused => return Ok(Transition::Refused { current }),
    }
    let parked_from = parked_from_after(current, parked_from, change.to);
    // Compare-and-set on the state just read. Inside `BEGIN IMMEDIATE` no other writer can come
    // between the read and the update; the condition keeps the update correct where isolation is
    // weaker (another backend), and then a lost race is reported as a transient error.
    let changed = tx
        .prepare_cached(
            "UPDATE messages
             SET state = :to, parked_from = :parked_from, attempts = 0, reason_code = :code,
                 reason_text = :text, updated_at = :at
             WHERE direction = :direction AND message_id = :message_id AND state = :current",
        )?
        .execute(named_params! {
            ":to": change.to.as_str(),
            ":parked_from": parked_from.map(State::as_str),
            ":code": change.reason.map(|r| r.code.as_str()),
            ":text": change.reason.map(|r| r.text.as_str()),
            ":at": change.at,
            ":direction": key.direction.as_str(),
            ":message_id": key.id,
            ":current": current.as_str(),
        })?;
    if changed != 1 {
        return Err(Fault::LostRace);
    }
    if let Some(bytes) = change.bytes {
        tx.prepare_cached(
            "UPDATE bodies SET bytes = :bytes
             WHERE direction = :direction AND message_id = :message_id",
        )?
        .execute(named_params! {
            ":bytes": bytes,
            ":direction": key.direction.as_str(),
            ":message_id": key.id,
        })?;
    }
    append_history(
        tx,
        key,
        change.event,
        Some(current),
        change.to,
        &change.at,
        change.reason,
        change.actor,
    )?;
    Ok(Transition::Moved { from: current })
}

/// Inserts a message seen for the first time with `bytes` and the history `steps` (the first is
/// its recording, the others moves; the message ends in the last state), or compares it with
/// the one recorded before.
#[expect(
    clippy::too_many_arguments,
    reason = "the parts of a record: key, header, digest, bytes, history, time, actor"
)]
fn insert_record(
    tx: &Connection,
    key: &Key,
    header: &Header,
    digest: &[u8; 32],
    bytes: &[u8],
    steps: &[(Option<State>, State)],
    at: &str,
    actor: &str,
) -> Result<Recorded, Fault> {
    let Some(&(_, state)) = steps.last() else {
        return Err(Fault::Invalid("a record needs a state".into()));
    };
    let created_at = header.created_at.format(&Rfc3339).map_err(|e| {
        Fault::Invalid(format!("cannot store CreatedAt {}: {e}", header.created_at))
    })?;
    let inserted = tx
        .prepare_cached(
            "INSERT INTO messages (direction, message_id, kind, sender, receiver,
                 correlation_id, version, created_at, state, attempts, first_seen,
                 updated_at, digest)
             VALUES (:direction, :message_id, :kind, :sender, :receiver, :correlation_id,
                 :version, :created_at, :state, 0, :at, :at, :digest)
             ON CONFLICT (direction, message_id) DO NOTHING",
        )?
        .execute(named_params! {
            ":direction": key.direction.as_str(),
            ":message_id": key.id,
            ":kind": header.kind.as_str(),
            ":sender": header.sender.code(),
            ":receiver": header.receiver.code(),
            ":correlation_id": header.correlation_id.map(|id| id.to_string()),
            ":version": header.version,
            ":created_at": created_at,
            ":state": state.as_str(),
            ":at": at,
            ":digest": &digest[..],
        })?;
    if inserted == 1 {
        tx.prepare_cached(
            "INSERT INTO bodies (direction, message_id, bytes)
             VALUES (:direction, :message_id, :bytes)",
        )?
        .execute(named_params! {
            ":direction": key.direction.as_str(),
            ":message_id": key.id,
            ":bytes": bytes,
        })?;
        for &(from, to) in steps {
            let event = if from.is_none() {
                Event::Recorded
            } else {
                Event::Moved
            };
            append_history(tx, key, event, from, to, at, None, actor)?;
        }
        return Ok(Recorded::New);
    }
    let existing = select_record(tx, key)?.ok_or(Fault::LostRace)?;
    let fields = differences(&existing.summary, header, digest);
    Ok(if fields.is_empty() {
        Recorded::Existing(Box::new(existing))
    } else {
        Recorded::Conflict(Box::new(Conflict { existing, fields }))
    })
}

/// The state and parked-from state of a message, if recorded.
fn current_state(
    connection: &Connection,
    key: &Key,
) -> Result<Option<(State, Option<State>)>, Fault> {
    let row: Option<(String, Option<String>)> = connection
        .prepare_cached(
            "SELECT state, parked_from FROM messages
             WHERE direction = :direction AND message_id = :message_id",
        )?
        .query_row(
            named_params! { ":direction": key.direction.as_str(), ":message_id": key.id },
            |row| Ok((row.get(0)?, row.get(1)?)),
        )
        .optional()?;
    row.map(|(state, parked_from)| {
        Ok((
            parse("state", state)?,
            parked_from.map(|s| parse("parked_from", s)).transpose()?,
        ))
    })
    .transpose()
}

#[expect(
    clippy::too_many_arguments,
    reason = "one argument per column of the history row"
)]
fn append_history(
    tx: &Connection,
    key: &Key,
    event: Event,
    from: Option<State>,
    to: State,
    at: &str,
    reason: Option<&Reason>,
    actor: &str,
) -> Result<(), Fault> {
    tx.prepare_cached(
        "INSERT INTO transitions (direction, message_id, event, from_state, to_state, at,
             reason_code, reason_text, actor)
         VALUES (:direction, :message_id, :event, :from, :to, :at, :code, :text, :actor)",
    )?
    .execute(named_params! {
        ":direction": key.direction.as_str(),
        ":message_id": key.id,
        ":event": event.as_str(),
        ":from": from.map(State::as_str),
        ":to": to.as_str(),
        ":at": at,
        ":code": reason.map(|r| r.code.as_str()),
        ":text": reason.map(|r| r.text.as_str()),
        ":actor": actor,
    })?;
    Ok(())
}

fn select_record(connection: &Connection, key: &Key) -> Result<Option<MessageRecord>, Fault> {
    let mut statement = connection.prepare_cached(&format!(
        "SELECT {SUMMARY_COLUMNS}, bodies.bytes
         FROM messages JOIN bodies USING (direction, message_id)
         WHERE direction = :direction AND message_id = :message_id"
    ))?;
    let mut rows = statement.query(named_params! {
        ":direction": key.direction.as_str(),
        ":message_id": key.id,
    })?;
    let Some(row) = rows.next()? else {
        return Ok(None);
    };
    Ok(Some(MessageRecord {
        summary: summary_from_row(row)?,
        bytes: row.get(17)?,
    }))
}

fn summary_from_row(row: &Row<'_>) -> Result<MessageSummary, Fault> {
    let created_at: String = row.get(7)?;
    let digest: Vec<u8> = row.get(15)?;
    Ok(MessageSummary {
        direction: parse("direction", row.get(0)?)?,
        header: Header {
            message_id: parse("message_id", row.get(1)?)?,
            correlation_id: row
                .get::<_, Option<String>>(5)?
                .map(|s| parse("correlation_id", s))
                .transpose()?,
            sender: parse("sender", row.get(3)?)?,
            receiver: parse("receiver", row.get(4)?)?,
            kind: parse("kind", row.get(2)?)?,
            version: row.get(6)?,
            created_at: OffsetDateTime::parse(&created_at, &Rfc3339).map_err(|_| {
                Fault::Corrupt {
                    column: "created_at",
                    value: created_at.clone(),
                }
            })?,
        },
        state: parse("state", row.get(8)?)?,
        parked_from: row
            .get::<_, Option<String>>(9)?
            .map(|s| parse("parked_from", s))
            .transpose()?,
        attempts: row.get(10)?,
        reason: reason(row.get(11)?, row.get(12)?),
        first_seen: decode_time("first_seen", row.get(13)?)?,
        updated_at: decode_time("updated_at", row.get(14)?)?,
        digest: digest.as_slice().try_into().map_err(|_| Fault::Corrupt {
            column: "digest",
            value: format!("{} bytes", digest.len()),
        })?,
        transport_ref: row.get(16)?,
    })
}

/// Keeps `transport_ref` on a message that has none, inside the caller's write transaction.
fn keep_transport_ref(tx: &Connection, key: &Key, transport_ref: &str) -> Result<(), Fault> {
    tx.prepare_cached(
        "UPDATE messages SET transport_ref = coalesce(transport_ref, :transport_ref)
         WHERE direction = :direction AND message_id = :message_id",
    )?
    .execute(named_params! {
        ":transport_ref": transport_ref,
        ":direction": key.direction.as_str(),
        ":message_id": key.id,
    })?;
    Ok(())
}

/// The settlement of `reference` of `channel`, if recorded.
fn select_settlement(
    connection: &Connection,
    channel: &str,
    reference: &str,
) -> Result<Option<ChannelSettlement>, Fault> {
    let row: Option<(String, Option<String>, Option<String>, String)> = connection
        .prepare_cached(
            "SELECT outcome, note, message_id, settled_at FROM channel_settlements
             WHERE channel = :channel AND reference = :reference",
        )?
        .query_row(
            named_params! { ":channel": channel, ":reference": reference },
            |row| Ok((row.get(0)?, row.get(1)?, row.get(2)?, row.get(3)?)),
        )
        .optional()?;
    row.map(|(outcome, note, message_id, at)| {
        Ok(ChannelSettlement {
            channel: channel.to_owned(),
            reference: reference.to_owned(),
            outcome: parse("outcome", outcome)?,
            note,
            message_id: message_id.map(|id| parse("message_id", id)).transpose()?,
            at: decode_time("settled_at", at)?,
        })
    })
    .transpose()
}

fn parse<T: std::str::FromStr>(column: &'static str, value: String) -> Result<T, Fault> {
    value.parse().map_err(|_| Fault::Corrupt { column, value })
}

/// Stored times: UTC, fixed width, microseconds, so text order is time order.
const TIME_FORMAT: &[BorrowedFormatItem<'static>] =
    format_description!("[year]-[month]-[day]T[hour]:[minute]:[second].[subsecond digits:6]Z");

fn encode_time(at: OffsetDateTime) -> Result<String, Fault> {
    stored_time(at)
        .map_err(Fault::Invalid)?
        .format(TIME_FORMAT)
        .map_err(|e| Fault::Invalid(format!("cannot store time {at}: {e}")))
}

fn decode_time(column: &'static str, value: String) -> Result<OffsetDateTime, Fault> {
    match PrimitiveDateTime::parse(&value, TIME_FORMAT) {
        Ok(time) => Ok(time.assume_utc()),
        Err(_) => Err(Fault::Corrupt { column, value }),
    }
}

/// Applies the migrations the database lacks, in one write transaction, so two processes opening
/// a new file at once cannot both create the schema.
fn migrate(connection: &mut Connection, path: &Path) -> Result<(), JournalError> {
    let error = open_error(path);
    // Rebuilding a table (version 2) needs foreign keys off, which only holds outside a
    // transaction; they are checked before the commit and turned on again after it.
    connection
        .pragma_update(None, "foreign_keys", false)
        .map_err(&error)?;
    migrate_versions(connection, path)?;
    connection
        .pragma_update(None, "foreign_keys", true)
        .map_err(&error)
}

fn migrate_versions(connection: &mut Connection, path: &Path) -> Result<(), JournalError> {
    let error = open_error(path);
    let tx = connection
        .transaction_with_behavior(TransactionBehavior::Immediate)
        .map_err(&error)?;
    let found: i64 = tx
        .pragma_query_value(None, "user_version", |row| row.get(0))
        .map_err(&error)?;
    let supported = SQLITE_MIGRATIONS.len() as i64;
    if found > supported {
        return Err(JournalError::SchemaTooNew {
            location: path.display().to_string(),
            found,
            supported,
        });
    }
    let Ok(applied) = usize::try_from(found) else {
        return Err(JournalError::Open {
            location: path.display().to_string(),
            transient: false,
            source: format!("not an aswhub journal (user_version {found})").into(),
        });
    };
    if found < supported {
        for migration in SQLITE_MIGRATIONS.iter().skip(applied) {
            tx.execute_batch(migration).map_err(&error)?;
        }
        let broken: Option<String> = tx
            .query_row("PRAGMA foreign_key_check", [], |row| row.get(0))
            .optional()
            .map_err(&error)?;
        if let Some(table) = broken {
            return Err(JournalError::Open {
                location: path.display().to_string(),
                transient: false,
                source: format!("migration left rows of {table} without their message").into(),
            });
        }
        tx.pragma_update(None, "user_version", supported)
            .map_err(&error)?;
    }
    tx.commit().map_err(&error)
}

fn open_error(path: &Path) -> impl Fn(rusqlite::Error) -> JournalError {
    let location = path.display().to_string();
    move |e| JournalError::Open {
        location: location.clone(),
        transient: is_transient(&e),
        source: Box::new(e),
    }
}

/// True for SQLite errors that can clear by themselves or by an operator fixing the environment.
fn is_transient(e: &rusqlite::Error) -> bool {
    matches!(
        e.sqlite_error_code(),
        Some(
            ErrorCode::DatabaseBusy
                | ErrorCode::DatabaseLocked
                | ErrorCode::SystemIoFailure
                | ErrorCode::CannotOpen
                | ErrorCode::DiskFull
                | ErrorCode::ReadOnly
                | ErrorCode::FileLockingProtocolFailed
                | ErrorCode::OutOfMemory
                | ErrorCode::PermissionDenied
        )
    )
}

/// Which file a journal opened, to notice it being removed or replaced. In WAL mode SQLite goes on
/// writing to a database file that was unlinked (its directory removed, say) without a word, and
/// everything written then is lost when the process ends; so every write first checks that the
/// path still leads to the file that was opened (one `stat`).
#[derive(Debug)]
struct FileIdentity {
    path: PathBuf,
    #[cfg(unix)]
    id: (u64, u64),
}

impl FileIdentity {
    fn of(path: &Path) -> std::io::Result<FileIdentity> {
        let path = std::fs::canonicalize(path)?;
        #[cfg(unix)]
        let id = {
            use std::os::unix::fs::MetadataExt;
            let metadata = std::fs::metadata(&path)?;
            (metadata.dev(), metadata.ino())
        };
        Ok(FileIdentity {
            path,
            #[cfg(unix)]
            id,
        })
    }

    fn check(&self) -> Result<(), Fault> {
        let moved = || Fault::FileMoved(self.path.clone());
        let metadata = std::fs::metadata(&self.path).map_err(|_| moved())?;
        #[cfg(unix)]
        {
            use std::os::unix::fs::MetadataExt;
            if (metadata.dev(), metadata.ino()) != self.id {
                return Err(moved());
            }
        }
        #[cfg(not(unix))]
        let _ = metadata;
        Ok(())
    }
}

/// A failure inside an operation, before the operation and subject are attached.
#[derive(Debug)]
enum Fault {
    Sqlite(rusqlite::Error),
    NotFound,
    Corrupt {
        column: &'static str,
        value: String,
    },
    Invalid(String),
    /// The row changed between reading and updating it (not possible inside `BEGIN IMMEDIATE`).
    LostRace,
    /// The database file is no longer at its path.
    FileMoved(PathBuf),
    /// The transaction holding the operation was not committed.
    Group(GroupFailure),
}

impl From<rusqlite::Error> for Fault {
    fn from(e: rusqlite::Error) -> Fault {
        Fault::Sqlite(e)
    }
}

impl Fault {
    fn into_error(self, operation: Operation, subject: Subject) -> JournalError {
        match self {
            Fault::Sqlite(e) => JournalError::Database {
                operation,
                subject,
                transient: is_transient(&e),
                source: Box::new(e),
            },
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
            Fault::LostRace => JournalError::Database {
                operation,
                subject,
                transient: true,
                source: "the message changed while it was being updated".into(),
            },
            Fault::Group(failure) => JournalError::Database {
                operation,
                subject,
                transient: true,
                source: failure.text.into(),
            },
            Fault::FileMoved(path) => JournalError::Database {
                operation,
                subject,
                transient: true,
                source: format!(
                    "the journal file {} was removed or replaced since it was opened; reopen it",
                    path.display()
                )
                .into(),
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use time::macros::datetime;

    use super::*;

    #[test]
    fn times_are_fixed_width_utc_microseconds() {
        let at = datetime!(2026-01-05 08:00:00.123456789 +07:00);
        let text = encode_time(at).expect("in range");
        assert_eq!(text, "2026-01-05T01:00:00.123456Z");
        let back = decode_time("at", text).expect("readable");
        assert_eq!(back, datetime!(2026-01-05 01:00:00.123456 UTC));
        assert_eq!(
            encode_time(datetime!(2026-01-05 01:00:00 UTC))
                .ok()
                .as_deref(),
            Some("2026-01-05T01:00:00.000000Z")
        );
        assert!(encode_time(datetime!(-0001-01-01 0:00 UTC)).is_err());
        assert!(decode_time("at", "yesterday".into()).is_err());
    }

    fn header(id: Uuid) -> Header {
        Header {
            message_id: id,
            correlation_id: None,
            sender: asw_model::MemberState::from_alpha2("VN").expect("VN"),
            receiver: asw_model::MemberState::from_alpha2("TH").expect("TH"),
            kind: asw_model::DocumentKind::FormD,
            version: "1.0".into(),
            created_at: datetime!(2026-01-05 01:00:00 UTC),
        }
    }

    #[test]
    fn a_batch_commits_its_writes_once_and_they_are_durable_when_it_returns() {
        let dir = tempfile::tempdir().expect("temp dir");
        let path = dir.path().join("journal.db");
        let journal = SqliteJournal::open(&path).expect("open");
        let at = datetime!(2026-01-05 02:00:00 UTC);
        let ids: Vec<Uuid> = (0..3).map(|_| Uuid::new_v4()).collect();
        let mut seen = Vec::new();
        journal
            .batch(&mut || {
                for id in &ids {
                    let recorded = journal
                        .record(
                            Direction::Outbound,
                            &header(*id),
                            b"<a/>",
                            State::Received,
                            at,
                        )
                        .expect("record");
                    assert_eq!(recorded, Recorded::New);
                    journal
                        .transition_signed(*id, b"<signed/>", at)
                        .expect("sign");
                    // Reads inside the batch see its writes, before any commit.
                    let state = journal
                        .get(Direction::Outbound, *id)
                        .expect("get")
                        .map(|r| r.summary.state);
                    seen.push(state);
                }
                assert_eq!(journal.commits(), 0, "nothing committed inside the batch");
            })
            .expect("batch");
        assert_eq!(seen, vec![Some(State::Signed); 3]);
        assert_eq!(journal.commits(), 1, "six writes, one commit");
        // Durable: another connection sees all of them.
        let other = SqliteJournal::open(&path).expect("reopen");
        for id in &ids {
            let record = other.get(Direction::Outbound, *id).expect("get");
            assert_eq!(record.map(|r| r.summary.state), Some(State::Signed));
        }
        // Outside a batch each write waits for its own commit again.
        journal
            .transition(Direction::Outbound, ids[0], State::Queued, None, at)
            .expect("queue");
        assert_eq!(journal.commits(), 2);
    }

    #[test]
    fn the_log_is_copied_into_the_database_file_in_the_background() {
        let dir = tempfile::tempdir().expect("temp dir");
        let path = dir.path().join("journal.db");
        let journal = SqliteJournal::open(&path).expect("open");
        let autocheckpoint: i64 = journal
            .lock()
            .connection
            .query_row("PRAGMA wal_autocheckpoint", [], |row| row.get(0))
            .expect("pragma");
        assert_eq!(autocheckpoint, 0, "commits never checkpoint");
        let synchronous: i64 = journal
            .lock()
            .connection
            .query_row("PRAGMA synchronous", [], |row| row.get(0))
            .expect("pragma");
        assert_eq!(
            synchronous, 1,
            "NORMAL on the connection: the committer syncs the log itself"
        );
        assert!(journal.wal.is_some());
        let before = std::fs::metadata(&path).expect("file").len();
        record_bodies(&journal, 50, 8192, || {});
        // 50 records of 8 KiB are far below SQLite's own threshold (1,000 pages): only the
        // background checkpoint puts them in the database file.
        let deadline = Instant::now() + Duration::from_secs(5);
        while std::fs::metadata(&path).expect("file").len() < before + 50 * 8192 {
            assert!(
                Instant::now() < deadline,
                "the database file did not grow within 5 s"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
        drop(journal);
    }

    /// Journals `n` inbound records with bodies of `size` bytes, calling `after` after each.
    fn record_bodies(journal: &SqliteJournal, n: usize, size: usize, mut after: impl FnMut()) {
        let at = datetime!(2026-01-05 02:00:00 UTC);
        let body = vec![b'x'; size];
        for _ in 0..n {
            journal
                .record(
                    Direction::Inbound,
                    &header(Uuid::new_v4()),
                    &body,
                    State::Received,
                    at,
                )
                .expect("record");
            after();
        }
    }

    #[test]
    fn the_log_stays_bounded_under_writes_that_never_pause() {
        let dir = tempfile::tempdir().expect("temp dir");
        let path = dir.path().join("journal.db");
        let limit = 1 << 20;
        let options = SqliteOptions {
            log_limit: limit,
            ..SqliteOptions::default()
        };
        let journal = SqliteJournal::open_with(&path, &options).expect("open");
        let wal = wal_path(&path);
        let largest = AtomicU64::new(0);
        // Four writers with no pause between their writes: a group begins the moment the one
        // before is committed, so the log is never found fully checkpointed by a new one.
        std::thread::scope(|s| {
            for _ in 0..4 {
                s.spawn(|| {
                    record_bodies(&journal, 1_000, 4096, || {
                        let size = std::fs::metadata(&wal).map(|m| m.len()).unwrap_or(0);
                        largest.fetch_max(size, Ordering::Relaxed);
                    });
                });
            }
        });
        // 4,000 records of 4 KiB write well over 16 MiB of log; what a few groups write past the
        // limit is allowed.
        let largest = largest.into_inner();
        assert!(
            largest < 2 * limit,
            "the log grew to {largest} bytes with a limit of {limit}"
        );
        drop(journal);
    }

    #[test]
    fn a_reader_keeping_the_log_holds_up_no_write_and_the_log_is_started_over_after_it() {
        let dir = tempfile::tempdir().expect("temp dir");
        let path = dir.path().join("journal.db");
        let limit = 256 << 10;
        let options = SqliteOptions {
            log_limit: limit,
            busy_timeout: Duration::from_secs(60),
            ..SqliteOptions::default()
        };
        let journal = SqliteJournal::open_with(&path, &options).expect("open");
        let wal = wal_path(&path);
        let write = |n: usize| record_bodies(&journal, n, 4096, || {});
        write(10);
        // Another process's reader, in a read transaction on the log.
        let reader = Connection::open(&path).expect("reader");
        reader.execute_batch("BEGIN").expect("begin");
        let _: i64 = reader
            .query_row("SELECT count(*) FROM sqlite_master", [], |row| row.get(0))
            .expect("read");
        // Writes past the limit many times over: a restart waiting for the reader would wait the
        // busy timeout (a minute) each time.
        let started = Instant::now();
        write(400);
        assert!(
            started.elapsed() < Duration::from_secs(30),
            "the writes waited for the reader"
        );
        let kept = std::fs::metadata(&wal).expect("log").len();
        assert!(kept > limit, "the reader keeps the log ({kept} bytes)");
        reader.execute_batch("COMMIT").expect("end the read");
        // The log is started over (cut down to the limit): six limits' worth of writes after it
        // grow the file by one limit at most.
        write(400);
        let after = std::fs::metadata(&wal).expect("log").len();
        assert!(
            after < kept + limit,
            "the log was not started over after the reader ended ({kept} bytes, then {after})"
        );
    }

    #[test]
    fn a_batch_that_panics_still_commits_what_it_wrote_and_the_journal_goes_on() {
        let dir = tempfile::tempdir().expect("temp dir");
        let path = dir.path().join("journal.db");
        let journal = SqliteJournal::open(&path).expect("open");
        let at = datetime!(2026-01-05 02:00:00 UTC);
        let (first, second) = (Uuid::new_v4(), Uuid::new_v4());
        let panicked = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            let _ = journal.batch(&mut || {
                journal
                    .record(
                        Direction::Outbound,
                        &header(first),
                        b"<a/>",
                        State::Received,
                        at,
                    )
                    .expect("record");
                panic!("a bug in the batch");
            });
        }));
        assert!(panicked.is_err());
        // The transaction is not left open: another handle can write at once.
        let other = SqliteJournal::open_with(
            &path,
            &SqliteOptions {
                busy_timeout: Duration::from_millis(100),
                ..SqliteOptions::default()
            },
        )
        .expect("reopen");
        other
            .record(
                Direction::Outbound,
                &header(second),
                b"<b/>",
                State::Received,
                at,
            )
            .expect("other handle writes");
        assert!(
            other
                .get(Direction::Outbound, first)
                .expect("get")
                .is_some()
        );
        // And this thread is not left in a batch.
        journal
            .transition(Direction::Outbound, first, State::Failed, None, at)
            .expect("move");
        assert_eq!(journal.commits(), 2);
    }

    #[test]
    fn an_operation_that_fails_rolls_back_alone_and_its_group_still_commits() {
        let dir = tempfile::tempdir().expect("temp dir");
        let journal = SqliteJournal::open(dir.path().join("journal.db")).expect("open");
        let (kept, lost) = (Uuid::new_v4(), Uuid::new_v4());
        let insert = |id: Uuid| {
            move |c: &Connection| {
                c.execute(
                    "INSERT INTO messages (direction, message_id, kind, sender, receiver, version,
                         created_at, state, attempts, first_seen, updated_at, digest)
                     VALUES ('outbound', ?1, 'formd', 'VN', 'TH', '1.0', 'x', 'received', 0,
                         'x', 'x', zeroblob(32))",
                    [id.to_string()],
                )?;
                Ok(())
            }
        };
        // Two operations in one group: the second writes, then fails.
        let (first, group) = journal.add_to_group(insert(kept)).expect("begin");
        first.expect("first operation");
        let (second, same) = journal
            .add_to_group(|c: &Connection| {
                insert(lost)(c)?;
                Err::<(), _>(Fault::Invalid("refused after writing".into()))
            })
            .expect("joined");
        assert!(matches!(second, Err(Fault::Invalid(_))));
        assert!(Arc::ptr_eq(&group, &same), "both joined the open group");
        journal.await_commit(&group).expect("committed");
        assert_eq!(journal.commits(), 1);
        let reopened = Connection::open(dir.path().join("journal.db")).expect("reopen");
        let ids: Vec<String> = reopened
            .prepare("SELECT message_id FROM messages")
            .expect("query")
            .query_map([], |row| row.get(0))
            .expect("rows")
            .collect::<Result<_, _>>()
            .expect("ids");
        let kept = kept.to_string();
        assert_eq!(ids, vec![kept]);
    }

    #[test]
    fn concurrent_writes_share_commits_and_each_returns_once_durable() {
        let dir = tempfile::tempdir().expect("temp dir");
        let path = dir.path().join("journal.db");
        let journal = SqliteJournal::open(&path).expect("open");
        let (threads, each) = (8, 40);
        std::thread::scope(|scope| {
            for _ in 0..threads {
                scope.spawn(|| {
                    let other = SqliteJournal::open(&path).expect("second handle");
                    for _ in 0..each {
                        let id = Uuid::new_v4();
                        let at = datetime!(2026-01-05 01:00:00 UTC);
                        let recorded = journal
                            .record(
                                Direction::Outbound,
                                &header(id),
                                b"<d/>",
                                State::Received,
                                at,
                            )
                            .expect("record");
                        assert_eq!(recorded, Recorded::New);
                        // Visible to another handle (another process) as soon as it returned.
                        assert!(other.get(Direction::Outbound, id).expect("get").is_some());
                        journal
                            .transition(Direction::Outbound, id, State::Failed, None, at)
                            .expect("move");
                    }
                });
            }
        });
        let writes = (threads * each * 2) as u64;
        let commits = journal.commits();
        println!("{writes} writes in {commits} commits");
        assert!(commits < writes, "{writes} writes took {commits} commits");
        let failed = journal
            .list(&Filter {
                state: Some(State::Failed),
                limit: u32::MAX,
                ..Filter::default()
            })
            .expect("list");
        assert_eq!(failed.len(), threads * each);
    }

    /// A version 1 database with messages in it is migrated to the latest version with everything kept, and
    /// then takes the new state and event.
    #[test]
    fn a_version_1_database_migrates_with_its_messages() {
        let dir = tempfile::tempdir().expect("temp dir");
        let path = dir.path().join("v1.db");
        {
            let connection = Connection::open(&path).expect("open");
            connection
                .execute_batch(SQLITE_MIGRATIONS[0])
                .expect("version 1");
            connection
                .execute_batch(
                    "INSERT INTO messages VALUES ('outbound', '6f1c5a70-6e0a-4a43-9d3c-3a8f9d1e2b10',
                         'formd', 'VN', 'TH', NULL, '1.0', '2026-01-05T08:00:00+07:00', 'queued',
                         NULL, 0, NULL, NULL, '2026-01-05T01:00:00.000000Z',
                         '2026-01-05T01:00:02.000000Z', zeroblob(32));
                     INSERT INTO bodies VALUES ('outbound', '6f1c5a70-6e0a-4a43-9d3c-3a8f9d1e2b10',
                         x'3c612f3e');
                     INSERT INTO transitions (direction, message_id, event, from_state, to_state,
                         at, actor)
                     VALUES ('outbound', '6f1c5a70-6e0a-4a43-9d3c-3a8f9d1e2b10', 'recorded', NULL,
                         'queued', '2026-01-05T01:00:00.000000Z', 'aswhub');
                     PRAGMA user_version = 1;",
                )
                .expect("a message");
        }
        let journal = SqliteJournal::open(&path).expect("migrated");
        let id = Uuid::parse_str("6f1c5a70-6e0a-4a43-9d3c-3a8f9d1e2b10").expect("uuid");
        let record = journal
            .get(Direction::Outbound, id)
            .expect("get")
            .expect("kept");
        assert_eq!(record.summary.state, State::Queued);
        assert_eq!(record.bytes, b"<a/>");
        assert_eq!(
            journal.history(Direction::Outbound, id).expect("h").len(),
            1
        );
        let query = OverdueQuery {
            kinds: vec![asw_model::DocumentKind::FormD],
            due_before: datetime!(2026-01-05 02:00 UTC),
            max_resends: 1,
            tracked_by_channel: Vec::new(),
            limit: 10,
        };
        let claimed = journal
            .claim_overdue(&query, datetime!(2026-01-05 02:00 UTC))
            .expect("claim");
        assert_eq!(claimed.len(), 1);
        let events: Vec<Event> = journal
            .history(Direction::Outbound, id)
            .expect("h")
            .iter()
            .map(|r| r.event)
            .collect();
        assert_eq!(events, [Event::Recorded, Event::Moved, Event::Resent]);
        let open = journal.lock();
        let connection = &open.connection;
        let version: i64 = connection
            .pragma_query_value(None, "user_version", |row| row.get(0))
            .expect("version");
        assert_eq!(version, SQLITE_MIGRATIONS.len() as i64);
        let foreign_keys: i64 = connection
            .pragma_query_value(None, "foreign_keys", |row| row.get(0))
            .expect("pragma");
        assert_eq!(foreign_keys, 1, "foreign keys are on again");
        let orphans: Option<String> = connection
            .query_row("PRAGMA foreign_key_check", [], |row| row.get(0))
            .optional()
            .expect("check");
        assert_eq!(orphans, None);
    }

    #[test]
    fn busy_and_io_errors_are_transient_others_not() {
        let sqlite = |code| {
            rusqlite::Error::SqliteFailure(rusqlite::ffi::Error::new(code), Some("test".into()))
        };
        assert!(is_transient(&sqlite(rusqlite::ffi::SQLITE_BUSY)));
        assert!(is_transient(&sqlite(rusqlite::ffi::SQLITE_LOCKED)));
        assert!(is_transient(&sqlite(rusqlite::ffi::SQLITE_IOERR_WRITE)));
        assert!(is_transient(&sqlite(rusqlite::ffi::SQLITE_FULL)));
        assert!(is_transient(&sqlite(rusqlite::ffi::SQLITE_CANTOPEN)));
        assert!(is_transient(&sqlite(
            rusqlite::ffi::SQLITE_READONLY_DBMOVED
        )));
        assert!(!is_transient(&sqlite(rusqlite::ffi::SQLITE_CONSTRAINT)));
        assert!(!is_transient(&sqlite(rusqlite::ffi::SQLITE_CORRUPT)));
        assert!(!is_transient(&rusqlite::Error::QueryReturnedNoRows));
    }
}
