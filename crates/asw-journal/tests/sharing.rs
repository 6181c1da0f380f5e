//! The journal shared between threads and between handles on one database (as hub processes share
//! it), on both backends; kept across reopening; and, for SQLite, failing with a transient error
//! when its directory is unusable or its file busy.

mod common;

use std::path::Path;
use std::sync::Barrier;
use std::time::Duration;

use asw_journal::{
    Direction, Filter, Journal, JournalError, OverdueQuery, PostgresJournal, Reason, Recorded,
    SqliteJournal, SqliteOptions, State, Transition,
};
use asw_model::DocumentKind;
use common::pg::TestSchema;
use common::{bytes_of, header, message_in, t};

/// Runs `f(0..n)` on `n` threads released at the same moment; returns the results in order.
fn race<T: Send>(n: usize, f: impl Fn(usize) -> T + Sync) -> Vec<T> {
    let barrier = Barrier::new(n);
    std::thread::scope(|scope| {
        let workers: Vec<_> = (0..n)
            .map(|i| {
                let (barrier, f) = (&barrier, &f);
                scope.spawn(move || {
                    barrier.wait();
                    f(i)
                })
            })
            .collect();
        workers
            .into_iter()
            .map(|w| w.join().expect("no panic"))
            .collect()
    })
}

/// Races the record and the moves of many messages through `handles` (one per thread); exactly
/// one racer wins each step and the others are told how it went, never given an error.
fn race_through(handles: &[&dyn Journal]) {
    let n = handles.len();
    for round in 0..40 {
        let h = header(DocumentKind::FormD, "TH", "VN");
        let id = h.message_id;
        let bytes = bytes_of(&h);

        let recorded = race(n, |i| {
            handles[i]
                .record(Direction::Inbound, &h, &bytes, State::Received, t(round))
                .expect("record")
        });
        let new = recorded.iter().filter(|r| **r == Recorded::New).count();
        let existing = recorded
            .iter()
            .filter(|r| matches!(r, Recorded::Existing(_)))
            .count();
        assert_eq!((new, existing), (1, n - 1), "{recorded:?}");

        let verified = race(n, |i| {
            handles[i]
                .transition(Direction::Inbound, id, State::Verified, None, t(round))
                .expect("verify")
        });
        let moved = verified
            .iter()
            .filter(|r| {
                **r == Transition::Moved {
                    from: State::Received,
                }
            })
            .count();
        let there = verified
            .iter()
            .filter(|r| **r == Transition::AlreadyThere)
            .count();
        assert_eq!((moved, there), (1, n - 1), "{verified:?}");

        // Delivered and failed at once: one wins, the other is refused, never both.
        let outcomes = race(n, |i| {
            let to = if i % 2 == 0 {
                State::Delivered
            } else {
                State::Failed
            };
            let outcome = handles[i]
                .transition(Direction::Inbound, id, to, None, t(round))
                .expect("move");
            (to, outcome)
        });
        let winners: Vec<State> = outcomes
            .iter()
            .filter(|(_, o)| matches!(o, Transition::Moved { .. }))
            .map(|(to, _)| *to)
            .collect();
        assert_eq!(winners.len(), 1, "{outcomes:?}");
        let winner = winners[0];
        for (to, outcome) in &outcomes {
            match outcome {
                Transition::Moved { from } => assert_eq!(*from, State::Verified),
                Transition::AlreadyThere => assert_eq!(*to, winner),
                Transition::Refused { current } => {
                    assert_eq!(*current, winner);
                    assert_ne!(*to, winner);
                }
                Transition::AlreadyPast { .. } => panic!("{outcomes:?}"),
            }
        }
        let history = handles[0].history(Direction::Inbound, id).expect("history");
        assert_eq!(history.len(), 3, "{history:?}");
        assert_eq!(history[2].to, winner);
    }
}

#[test]
fn threads_sharing_one_handle_race_and_exactly_one_wins() {
    let journal = SqliteJournal::in_memory().expect("journal");
    race_through(&[&journal, &journal, &journal, &journal]);
}

#[test]
fn handles_on_one_file_race_like_processes_and_exactly_one_wins() {
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("journal.db");
    let handles: Vec<SqliteJournal> = race(4, |_| SqliteJournal::open(&path).expect("open"));
    let handles: Vec<&dyn Journal> = handles.iter().map(|h| h as &dyn Journal).collect();
    race_through(&handles);
}

#[test]
fn postgres_threads_sharing_one_handle_race_and_exactly_one_wins() {
    let schema = TestSchema::new();
    let journal = schema.open();
    race_through(&[&journal, &journal, &journal, &journal]);
}

#[test]
fn postgres_handles_race_like_processes_and_exactly_one_wins() {
    let schema = TestSchema::new();
    let url = schema.url();
    // Opened at once, as processes starting together would: one creates the tables, the others
    // wait for it and find them.
    let handles: Vec<PostgresJournal> = race(4, |_| PostgresJournal::open(&url).expect("open"));
    let handles: Vec<&dyn Journal> = handles.iter().map(|h| h as &dyn Journal).collect();
    race_through(&handles);
}

/// Hubs sharing a journal claim overdue messages at the same moment: each message is reported by
/// exactly one of them, and the resends of all of them together stay within the bound.
fn race_overdue_claims(handles: &[&dyn Journal]) {
    let n = handles.len();
    let ids: Vec<_> = (0..20)
        .map(|_| message_in(handles[0], Direction::Outbound, State::Queued).message_id)
        .collect();
    let max_resends = 2;
    let mut reported = Vec::new();
    let mut resent = Vec::new();
    for round in 0..4 {
        let query = OverdueQuery {
            kinds: vec![DocumentKind::FormD],
            due_before: t(100 * round + 50),
            max_resends,
            tracked_by_channel: Vec::new(),
            limit: 1000,
        };
        let claims = race(n, |i| {
            handles[i]
                .claim_overdue(&query, t(100 * (round + 1)))
                .expect("claim")
        });
        for overdue in claims.into_iter().flatten() {
            let id = overdue.record.summary.message_id();
            if overdue.reported {
                reported.push(id);
            }
            if overdue.resend {
                resent.push(id);
            }
        }
    }
    reported.sort();
    let mut expected = ids.clone();
    expected.sort();
    assert_eq!(reported, expected, "each reported exactly once");
    for id in &ids {
        let count = resent.iter().filter(|r| *r == id).count();
        assert_eq!(count, max_resends as usize, "{id}");
    }
}

#[test]
fn handles_on_one_file_claim_each_overdue_message_once() {
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("journal.db");
    let handles: Vec<SqliteJournal> = race(4, |_| SqliteJournal::open(&path).expect("open"));
    let handles: Vec<&dyn Journal> = handles.iter().map(|h| h as &dyn Journal).collect();
    race_overdue_claims(&handles);
}

#[test]
fn postgres_handles_claim_each_overdue_message_once() {
    let schema = TestSchema::new();
    let url = schema.url();
    let handles: Vec<PostgresJournal> = race(4, |_| PostgresJournal::open(&url).expect("open"));
    let handles: Vec<&dyn Journal> = handles.iter().map(|h| h as &dyn Journal).collect();
    race_overdue_claims(&handles);
}

/// Fills a journal, opens it again with `open`, and checks that the new handle sees the same.
fn reopened_keeps_everything(open: &dyn Fn() -> Box<dyn Journal>) {
    let snapshot = |journal: &dyn Journal| {
        let all = journal.list(&Filter::default()).expect("list");
        let details: Vec<_> = all
            .iter()
            .map(|s| {
                (
                    journal
                        .get(s.direction, s.message_id())
                        .expect("get")
                        .expect("recorded"),
                    journal
                        .history(s.direction, s.message_id())
                        .expect("history"),
                )
            })
            .collect();
        (all, details)
    };
    let before = {
        let journal = open();
        let journal = journal.as_ref();
        let a = message_in(journal, Direction::Outbound, State::Acknowledged);
        let b = message_in(journal, Direction::Inbound, State::Verified);
        message_in(journal, Direction::Inbound, State::Rejected);
        journal
            .bump_attempts(
                Direction::Inbound,
                b.message_id,
                &Reason::new("broker-unavailable", "closed"),
                t(30),
            )
            .expect("bump");
        journal
            .transition(Direction::Inbound, b.message_id, State::Failed, None, t(31))
            .expect("fail");
        journal
            .replay(Direction::Inbound, b.message_id, "alice", t(32))
            .expect("replay");
        let snapshot = snapshot(journal);
        assert_eq!(snapshot.0.len(), 3);
        assert!(snapshot.0.iter().any(|s| s.message_id() == a.message_id));
        snapshot
    };
    assert_eq!(snapshot(open().as_ref()), before);
}

#[test]
fn a_reopened_file_keeps_everything() {
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("journal.db");
    reopened_keeps_everything(&|| asw_journal::open(&path).expect("open"));

    let connection = rusqlite::Connection::open(&path).expect("sqlite");
    let version: i64 = connection
        .pragma_query_value(None, "user_version", |r| r.get(0))
        .expect("user_version");
    let mode: String = connection
        .pragma_query_value(None, "journal_mode", |r| r.get(0))
        .expect("journal_mode");
    assert_eq!((version, mode.as_str()), (4, "wal"));
}

#[test]
fn a_reopened_postgres_journal_keeps_everything() {
    let schema = TestSchema::new();
    reopened_keeps_everything(&|| asw_journal::open(schema.url()).expect("open"));

    let versions: Vec<i32> = schema
        .client()
        .query("SELECT version FROM journal_schema ORDER BY version", &[])
        .expect("versions")
        .iter()
        .map(|row| row.get(0))
        .collect();
    assert_eq!(versions, [1, 2, 3, 4]);
}

#[test]
fn a_journal_from_a_newer_build_is_refused() {
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("journal.db");
    rusqlite::Connection::open(&path)
        .and_then(|c| c.pragma_update(None, "user_version", 99))
        .expect("set version");
    let err = SqliteJournal::open(&path).expect_err("too new");
    assert!(matches!(err, JournalError::SchemaTooNew { found: 99, .. }));
    assert!(!err.is_transient());
    assert_eq!(
        err.to_string(),
        format!(
            "the journal at {} has schema version 99, this build knows versions up to 4",
            path.display()
        )
    );
}

fn assert_transient_open_error(path: &Path) {
    let err = SqliteJournal::open(path).expect_err("cannot open");
    assert!(matches!(err, JournalError::Open { .. }), "{err:?}");
    assert!(err.is_transient(), "{err:?}");
    assert_eq!(
        err.to_string(),
        format!("cannot open the journal at {}", path.display())
    );
    assert!(std::error::Error::source(&err).is_some());
}

#[test]
fn an_unusable_directory_gives_a_transient_error_not_a_panic() {
    let dir = tempfile::tempdir().expect("temp dir");
    assert_transient_open_error(&dir.path().join("vanished").join("journal.db"));

    let file = dir.path().join("a-file");
    std::fs::write(&file, b"not a directory").expect("write");
    assert_transient_open_error(&file.join("journal.db"));

    // A read-only directory. Root writes there all the same, so only check when it cannot.
    let read_only = dir.path().join("read-only");
    std::fs::create_dir(&read_only).expect("mkdir");
    let mut permissions = std::fs::metadata(&read_only)
        .expect("metadata")
        .permissions();
    permissions.set_readonly(true);
    std::fs::set_permissions(&read_only, permissions).expect("chmod");
    if std::fs::write(read_only.join("probe"), b"").is_err() {
        assert_transient_open_error(&read_only.join("journal.db"));
    }
}

#[test]
fn a_directory_removed_under_an_open_journal_gives_transient_errors() {
    let dir = tempfile::tempdir().expect("temp dir");
    let sub = dir.path().join("journal");
    std::fs::create_dir(&sub).expect("mkdir");
    let journal = SqliteJournal::open(sub.join("journal.db")).expect("open");
    let kept = message_in(&journal, Direction::Outbound, State::Signed);
    std::fs::remove_dir_all(&sub).expect("remove");

    let h = header(DocumentKind::FormD, "TH", "VN");
    let err = journal
        .record(Direction::Inbound, &h, b"x", State::Received, t(1))
        .expect_err("the file is gone");
    assert!(err.is_transient(), "{err:?}");
    assert!(matches!(err, JournalError::Database { .. }), "{err:?}");
    assert_eq!(
        err.to_string(),
        format!("journal record of inbound message {} failed", h.message_id)
    );
    let err = journal
        .transition(
            Direction::Outbound,
            kept.message_id,
            State::Queued,
            None,
            t(2),
        )
        .expect_err("the file is gone");
    assert!(err.is_transient(), "{err:?}");

    // A new journal where the old one was is another file: the old handle still refuses to write.
    std::fs::create_dir(&sub).expect("mkdir again");
    let new = SqliteJournal::open(sub.join("journal.db")).expect("open new");
    assert_eq!(
        new.record(Direction::Inbound, &h, b"x", State::Received, t(3))
            .expect("record in the new journal"),
        Recorded::New
    );
    let err = journal
        .record(Direction::Inbound, &h, b"x", State::Received, t(4))
        .expect_err("replaced");
    assert!(err.is_transient(), "{err:?}");
    let chain = std::error::Error::source(&err).map(|s| s.to_string());
    assert_eq!(
        chain,
        Some(format!(
            "the journal file {} was removed or replaced since it was opened; reopen it",
            std::fs::canonicalize(dir.path())
                .expect("canonical")
                .join("journal")
                .join("journal.db")
                .display()
        ))
    );
}

#[test]
fn a_journal_busy_beyond_the_timeout_gives_a_transient_error() {
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("journal.db");
    let options = SqliteOptions {
        busy_timeout: Duration::from_millis(50),
        ..SqliteOptions::default()
    };
    let journal = SqliteJournal::open_with(&path, &options).expect("open");
    let id = message_in(&journal, Direction::Inbound, State::Received).message_id;

    let other = rusqlite::Connection::open(&path).expect("sqlite");
    other
        .execute_batch("BEGIN IMMEDIATE")
        .expect("hold the write lock");
    let err = journal
        .transition(Direction::Inbound, id, State::Verified, None, t(1))
        .expect_err("busy");
    assert!(matches!(err, JournalError::Database { .. }), "{err:?}");
    assert!(err.is_transient(), "{err:?}");
    // Readers are not blocked by a writer in WAL mode.
    assert!(journal.get(Direction::Inbound, id).expect("read").is_some());
    other.execute_batch("COMMIT").expect("release");
    assert!(
        journal
            .transition(Direction::Inbound, id, State::Verified, None, t(2))
            .expect("no longer busy")
            .reached()
    );
}

/// Processes starting together on a journal file that does not exist yet all open it (the race to
/// switch a new file to WAL mode is answered "database is locked" by SQLite without waiting).
#[test]
fn handles_opening_a_new_file_at_the_same_moment_all_succeed() {
    for _ in 0..20 {
        let dir = tempfile::tempdir().expect("temp dir");
        let path = dir.path().join("journal.db");
        let barrier = std::sync::Arc::new(std::sync::Barrier::new(4));
        let handles: Vec<_> = (0..4)
            .map(|_| {
                let (path, barrier) = (path.clone(), barrier.clone());
                std::thread::spawn(move || {
                    barrier.wait();
                    asw_journal::SqliteJournal::open(&path).map(drop)
                })
            })
            .collect();
        for h in handles {
            h.join()
                .expect("thread")
                .expect("every handle opens the new file");
        }
    }
}
