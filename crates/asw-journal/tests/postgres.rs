//! What only the PostgreSQL backend has to get right: lost connections replaced, an unreachable
//! server and lock waits reported as transient errors, constraint violations and bad URLs as
//! permanent ones, passwords kept out of errors, schema versions, and the schema option.

mod common;

use std::net::ToSocketAddrs;
use std::time::{Duration, Instant};

use asw_journal::{
    Direction, Filter, Journal, JournalError, PostgresJournal, PostgresOptions, Recorded, State,
    Transition,
};
use asw_model::DocumentKind;
use common::pg::{TestSchema, connect, server_url, with_parameter};
use common::proxy::Proxy;
use common::{bytes_of, header, message_in, t};

/// The SQLSTATE in an error's chain, if the database gave one.
fn sqlstate(err: &JournalError) -> Option<String> {
    let mut source = std::error::Error::source(err);
    while let Some(e) = source {
        if let Some(e) = e.downcast_ref::<postgres::Error>() {
            return e.code().map(|code| code.code().to_owned());
        }
        source = e.source();
    }
    None
}

/// Waits until one of the journal's connections waits for a lock.
fn wait_for_lock_wait(schema: &TestSchema) {
    let mut admin = connect(&server_url());
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let waiting: i64 = admin
            .query_one(
                "SELECT count(*) FROM pg_stat_activity
                 WHERE application_name = $1 AND wait_event_type = 'Lock'",
                &[&schema.name()],
            )
            .expect("pg_stat_activity")
            .get(0);
        if waiting > 0 {
            return;
        }
        assert!(Instant::now() < deadline, "the journal never waited");
        std::thread::sleep(Duration::from_millis(10));
    }
}

#[test]
fn connections_ended_by_the_server_are_replaced_without_a_failed_call() {
    let schema = TestSchema::new();
    let journal = schema.open();
    // Use several connections, so that several idle ones die.
    std::thread::scope(|scope| {
        for _ in 0..4 {
            scope.spawn(|| message_in(&journal, Direction::Inbound, State::Verified));
        }
    });
    let kept = message_in(&journal, Direction::Outbound, State::Signed);
    for round in 0..2 {
        assert!(schema.terminate_connections() > 0, "round {round}");
        // A read, then a write: each finds its connection dead before doing anything, and starts
        // again on a new one.
        assert!(
            journal
                .get(Direction::Outbound, kept.message_id)
                .expect("read after the connections were ended")
                .is_some()
        );
        assert!(schema.terminate_connections() > 0, "round {round}");
        let h = header(DocumentKind::FormD, "TH", "VN");
        assert_eq!(
            journal
                .record(Direction::Inbound, &h, &bytes_of(&h), State::Received, t(1))
                .expect("write after the connections were ended"),
            Recorded::New
        );
    }
    assert_eq!(journal.list(&Filter::default()).expect("list").len(), 7);
}

#[test]
fn a_connection_lost_in_mid_transaction_is_a_transient_error_and_the_next_call_works() {
    let schema = TestSchema::new();
    let journal = schema.open();
    let id = message_in(&journal, Direction::Inbound, State::Received).message_id;

    let mut holder = schema.client();
    let mut lock = holder.transaction().expect("begin");
    lock.execute(
        "SELECT 1 FROM messages WHERE message_id = $1 FOR UPDATE",
        &[&id],
    )
    .expect("lock the row");
    let failed = std::thread::scope(|scope| {
        let call =
            scope.spawn(|| journal.transition(Direction::Inbound, id, State::Verified, None, t(1)));
        wait_for_lock_wait(&schema);
        schema.terminate_connections();
        call.join().expect("no panic")
    });
    let err = failed.expect_err("the connection was ended in mid-call");
    assert!(matches!(err, JournalError::Database { .. }), "{err:?}");
    assert!(err.is_transient(), "{err:?}");
    lock.rollback().expect("release");

    assert_eq!(
        journal
            .transition(Direction::Inbound, id, State::Verified, None, t(2))
            .expect("the next call works"),
        Transition::Moved {
            from: State::Received
        }
    );
}

#[test]
fn a_server_out_of_reach_gives_transient_errors_and_the_journal_recovers() {
    let schema = TestSchema::new();
    let server = server_url().parse::<postgres::Config>().expect("URL");
    let target = match (server.get_hosts(), server.get_ports()) {
        ([postgres::config::Host::Tcp(host)], [port]) => (host.as_str(), *port)
            .to_socket_addrs()
            .expect("resolve")
            .next()
            .expect("an address"),
        _ => panic!("this test needs a single TCP host in the URL"),
    };
    let proxy = Proxy::start(target);
    let url = schema.url_on(&format!(
        "postgres://{}@127.0.0.1:{}/{}",
        server.get_user().unwrap_or("postgres"),
        proxy.port(),
        server.get_dbname().unwrap_or("postgres"),
    ));
    let journal = PostgresJournal::open(&url).expect("open through the proxy");
    let kept = message_in(&journal, Direction::Outbound, State::Signed);

    proxy.cut();
    let h = header(DocumentKind::FormD, "TH", "VN");
    let failures = [
        journal
            .record(Direction::Inbound, &h, b"x", State::Received, t(1))
            .map(|_| ()),
        journal
            .transition(
                Direction::Outbound,
                kept.message_id,
                State::Queued,
                None,
                t(1),
            )
            .map(|_| ()),
        journal
            .get(Direction::Outbound, kept.message_id)
            .map(|_| ()),
        journal.list(&Filter::default()).map(|_| ()),
    ];
    for failure in failures {
        let err = failure.expect_err("the server is out of reach");
        assert!(matches!(err, JournalError::Database { .. }), "{err:?}");
        assert!(err.is_transient(), "{err:?}");
    }
    let err = PostgresJournal::open(&url).expect_err("the server is out of reach");
    assert!(matches!(err, JournalError::Open { .. }), "{err:?}");
    assert!(err.is_transient(), "{err:?}");

    proxy.restore();
    assert_eq!(
        journal
            .transition(
                Direction::Outbound,
                kept.message_id,
                State::Queued,
                None,
                t(2),
            )
            .expect("the server is back"),
        Transition::Moved {
            from: State::Signed
        }
    );
    assert_eq!(
        journal
            .record(Direction::Inbound, &h, b"x", State::Received, t(3))
            .expect("record"),
        Recorded::New
    );
}

#[test]
fn a_lock_held_beyond_the_lock_timeout_is_a_transient_error() {
    let schema = TestSchema::new();
    let journal = schema.open_with(&PostgresOptions {
        lock_timeout: Duration::from_millis(100),
        ..PostgresOptions::default()
    });
    let id = message_in(&journal, Direction::Inbound, State::Received).message_id;
    let mut holder = schema.client();
    let mut lock = holder.transaction().expect("begin");
    lock.execute(
        "SELECT 1 FROM messages WHERE message_id = $1 FOR UPDATE",
        &[&id],
    )
    .expect("lock the row");
    let err = journal
        .transition(Direction::Inbound, id, State::Verified, None, t(1))
        .expect_err("locked");
    assert!(matches!(err, JournalError::Database { .. }), "{err:?}");
    assert!(err.is_transient(), "{err:?}");
    assert_eq!(sqlstate(&err).as_deref(), Some("55P03"));
    // Readers do not wait for the lock.
    assert!(journal.get(Direction::Inbound, id).expect("read").is_some());
    lock.rollback().expect("release");
    assert!(
        journal
            .transition(Direction::Inbound, id, State::Verified, None, t(2))
            .expect("no longer locked")
            .reached()
    );
}

#[test]
fn a_call_waiting_beyond_the_pool_timeout_for_a_connection_gets_a_transient_error() {
    let schema = TestSchema::new();
    let journal = schema.open_with(&PostgresOptions {
        connections: 1,
        pool_timeout: Duration::from_millis(100),
        ..PostgresOptions::default()
    });
    let id = message_in(&journal, Direction::Inbound, State::Received).message_id;
    let mut holder = schema.client();
    let mut lock = holder.transaction().expect("begin");
    lock.execute(
        "SELECT 1 FROM messages WHERE message_id = $1 FOR UPDATE",
        &[&id],
    )
    .expect("lock the row");
    std::thread::scope(|scope| {
        // Holds the only connection while it waits for the row.
        let blocked =
            scope.spawn(|| journal.transition(Direction::Inbound, id, State::Verified, None, t(1)));
        wait_for_lock_wait(&schema);
        let err = journal
            .get(Direction::Inbound, id)
            .expect_err("no free connection");
        assert!(err.is_transient(), "{err:?}");
        assert_eq!(
            std::error::Error::source(&err).map(|s| s.to_string()),
            Some("all 1 connections of this journal handle stayed busy for 0.1 s".to_owned())
        );
        lock.rollback().expect("release");
        assert!(blocked.join().expect("no panic").expect("moved").reached());
    });
    assert!(journal.get(Direction::Inbound, id).expect("read").is_some());
}

#[test]
fn constraint_violations_are_permanent_errors() {
    let schema = TestSchema::new();
    let journal = schema.open();
    schema
        .client()
        .batch_execute(
            "ALTER TABLE messages ADD CONSTRAINT test_no_draft CHECK (version <> 'draft')",
        )
        .expect("add a constraint");
    let h = asw_model::Header {
        version: "draft".into(),
        ..header(DocumentKind::FormD, "TH", "VN")
    };
    let err = journal
        .record(Direction::Inbound, &h, b"x", State::Received, t(0))
        .expect_err("violates the constraint");
    assert!(matches!(err, JournalError::Database { .. }), "{err:?}");
    assert!(!err.is_transient(), "{err:?}");
    assert_eq!(sqlstate(&err).as_deref(), Some("23514"));
    assert_eq!(
        err.to_string(),
        format!("journal record of inbound message {} failed", h.message_id)
    );
    // Nothing half-written, and the connection is fine for the next call.
    assert!(
        journal
            .get(Direction::Inbound, h.message_id)
            .expect("get")
            .is_none()
    );
    message_in(&journal, Direction::Inbound, State::Delivered);
}

#[test]
fn an_unreachable_server_fails_to_open_with_a_transient_error_that_hides_the_password() {
    let url = "postgres://aswhub:hunter2@127.0.0.1:1/journal?connect_timeout=2";
    let err = PostgresJournal::open(url).expect_err("nothing listens on port 1");
    assert!(matches!(err, JournalError::Open { .. }), "{err:?}");
    assert!(err.is_transient(), "{err:?}");
    assert_eq!(
        err.to_string(),
        "cannot open the journal at postgres://aswhub@127.0.0.1:1/journal?connect_timeout=2"
    );
    assert!(!format!("{err:?}").contains("hunter2"), "{err:?}");
}

#[test]
fn bad_urls_missing_databases_and_missing_schemas_are_permanent_errors() {
    let server = server_url();
    let missing_database = {
        let mut config: postgres::Config = server.parse().expect("URL");
        config.dbname("aswt_no_such_database");
        format!(
            "postgres://{}@127.0.0.1:{}/aswt_no_such_database",
            config.get_user().unwrap_or("postgres"),
            config.get_ports().first().copied().unwrap_or(5432)
        )
    };
    let no_schema = with_parameter(&server, "options=-csearch_path%3Daswt_no_such_schema");
    for url in [
        "postgres://127.0.0.1:notaport/journal",
        "postgres://127.0.0.1/journal?no_such_setting=1",
        missing_database.as_str(),
        no_schema.as_str(),
    ] {
        let err = PostgresJournal::open(url).expect_err("cannot open");
        assert!(matches!(err, JournalError::Open { .. }), "{url}: {err:?}");
        assert!(!err.is_transient(), "{url}: {err:?}");
    }
    let err = PostgresJournal::open(&no_schema).expect_err("no schema");
    assert_eq!(
        std::error::Error::source(&err).map(|s| s.to_string()),
        Some(
            "no schema to create the journal in: the search_path names no existing schema"
                .to_owned()
        )
    );
}

#[test]
fn a_journal_from_a_newer_build_is_refused() {
    let schema = TestSchema::new();
    drop(schema.open());
    schema
        .client()
        .execute("INSERT INTO journal_schema (version) VALUES (99)", &[])
        .expect("set version");
    let err = PostgresJournal::open(&schema.url()).expect_err("too new");
    assert!(matches!(err, JournalError::SchemaTooNew { found: 99, .. }));
    assert!(!err.is_transient());
    assert!(
        err.to_string()
            .ends_with("has schema version 99, this build knows versions up to 4"),
        "{err}"
    );
}

#[test]
fn the_schema_option_puts_the_tables_in_that_schema() {
    let schema = TestSchema::new();
    let journal = PostgresJournal::open_with(
        &server_url(),
        &PostgresOptions {
            schema: Some(schema.name().to_owned()),
            actor: "hub-2".into(),
            ..PostgresOptions::default()
        },
    )
    .expect("open");
    let id = message_in(&journal, Direction::Inbound, State::Verified).message_id;
    assert_eq!(
        journal
            .history(Direction::Inbound, id)
            .expect("history")
            .last()
            .map(|r| r.actor.clone()),
        Some("hub-2".to_owned())
    );
    let tables: Vec<String> = connect(&server_url())
        .query(
            "SELECT table_name::text FROM information_schema.tables WHERE table_schema = $1
             ORDER BY table_name",
            &[&schema.name()],
        )
        .expect("tables")
        .iter()
        .map(|row| row.get(0))
        .collect();
    assert_eq!(
        tables,
        [
            "bodies",
            "channel_settlements",
            "journal_schema",
            "messages",
            "transitions"
        ]
    );
    assert!(format!("{journal:?}").contains("PostgresJournal"));
}

#[test]
fn threads_outnumbering_the_connections_wait_for_one_and_exactly_one_wins_each_step() {
    // Many threads on one handle with fewer connections than threads: calls wait for a
    // connection, none fails.
    let schema = TestSchema::new();
    let journal = schema.open_with(&PostgresOptions {
        connections: 2,
        ..PostgresOptions::default()
    });
    let h = header(DocumentKind::FormD, "TH", "VN");
    let outcomes: Vec<(Recorded, Transition)> = std::thread::scope(|scope| {
        let calls: Vec<_> = (0..8)
            .map(|_| {
                scope.spawn(|| {
                    let recorded = journal
                        .record(Direction::Inbound, &h, b"x", State::Received, t(0))
                        .expect("record");
                    let moved = journal
                        .transition(
                            Direction::Inbound,
                            h.message_id,
                            State::Verified,
                            None,
                            t(1),
                        )
                        .expect("move");
                    (recorded, moved)
                })
            })
            .collect();
        calls
            .into_iter()
            .map(|c| c.join().expect("no panic"))
            .collect()
    });
    let new = outcomes.iter().filter(|(r, _)| *r == Recorded::New).count();
    let moved = outcomes
        .iter()
        .filter(|(_, m)| matches!(m, Transition::Moved { .. }))
        .count();
    assert_eq!((new, moved), (1, 1), "{outcomes:?}");
    assert_eq!(
        journal
            .history(Direction::Inbound, h.message_id)
            .expect("history")
            .len(),
        2
    );
}

#[test]
fn a_journal_opened_and_dropped_inside_an_async_runtime_works_from_blocking_threads() {
    // The daemon opens the journal, and drops it, inside its tokio runtime, and calls it from
    // threads of its own; the `postgres` client must not try to start a runtime inside that one.
    let schema = TestSchema::new();
    let runtime = tokio::runtime::Builder::new_current_thread()
        .build()
        .expect("runtime");
    runtime.block_on(async {
        let journal = std::sync::Arc::new(schema.open());
        let worker = journal.clone();
        let h = header(DocumentKind::FormD, "TH", "VN");
        let recorded = tokio::task::spawn_blocking(move || {
            worker.record(Direction::Inbound, &h, b"x", State::Received, t(0))
        })
        .await
        .expect("no panic")
        .expect("record");
        assert_eq!(recorded, Recorded::New);
        drop(journal);
    });
}

#[test]
fn the_write_probe_fails_on_a_read_only_database() {
    let schema = TestSchema::new();
    schema.open().probe_write().expect("writable");
    // The schema is made (by the open above); the same schema, every transaction read-only.
    let read_only = with_parameter(
        &server_url(),
        &format!(
            "options=-csearch_path%3D{}%20-cdefault_transaction_read_only%3Don",
            schema.name()
        ),
    );
    let journal = PostgresJournal::open(&read_only).expect("open");
    let err = journal.probe_write().expect_err("read-only");
    assert!(err.to_string().contains("read-only"), "{err}");
}
