//! `asw_journal::open`: the backend chosen by the form of the location, and unknown schemes
//! refused.

mod common;

use asw_journal::{Direction, JournalError, State};
use asw_model::DocumentKind;
use common::pg::TestSchema;
use common::{header, message_in, t};

#[test]
fn a_path_or_a_sqlite_url_opens_a_sqlite_file() {
    let dir = tempfile::tempdir().expect("temp dir");
    let plain = dir.path().join("plain.db");
    let journal = asw_journal::open(&plain).expect("open a path");
    let before = journal
        .commit_count()
        .expect("a SQLite journal counts its commits");
    message_in(journal.as_ref(), Direction::Inbound, State::Verified);
    assert!(plain.is_file());
    assert!(
        journal.commit_count() > Some(before),
        "the record was committed"
    );

    let url = dir.path().join("url.db");
    let journal =
        asw_journal::open(format!("sqlite://{}", url.display())).expect("open a sqlite URL");
    message_in(journal.as_ref(), Direction::Inbound, State::Verified);
    assert!(url.is_file());
    let count: i64 = rusqlite::Connection::open(&url)
        .and_then(|c| c.query_row("SELECT count(*) FROM messages", [], |r| r.get(0)))
        .expect("count");
    assert_eq!(count, 1);
}

#[test]
fn a_postgres_url_opens_a_postgres_journal() {
    let schema = TestSchema::new();
    for url in [
        schema.url(),
        schema.url().replacen("postgres://", "postgresql://", 1),
    ] {
        assert!(url.starts_with("postgres"), "{url}");
        let journal = asw_journal::open(&url).expect("open a postgres URL");
        let h = header(DocumentKind::FormD, "TH", "VN");
        journal
            .record(Direction::Inbound, &h, b"x", State::Received, t(0))
            .expect("record");
        let found: i64 = schema
            .client()
            .query_one(
                "SELECT count(*) FROM messages WHERE message_id = $1",
                &[&h.message_id],
            )
            .expect("count")
            .get(0);
        assert_eq!(found, 1, "{url}");
        assert_eq!(journal.commit_count(), None, "PostgreSQL does not count");
    }
}

#[test]
fn an_unknown_scheme_is_refused_not_taken_for_a_file_name() {
    let dir = tempfile::tempdir().expect("temp dir");
    let location = format!("mysql://root:hunter2@{}/journal", dir.path().display());
    let Err(err) = asw_journal::open(&location) else {
        panic!("{location} opened");
    };
    assert!(matches!(err, JournalError::Open { .. }), "{err:?}");
    assert!(!err.is_transient());
    assert_eq!(
        std::error::Error::source(&err).map(|s| s.to_string()),
        Some(
            "unknown journal URL scheme \"mysql\": use postgres://, postgresql://, sqlite:// or \
             a file path"
                .to_owned()
        )
    );
    assert!(!err.to_string().contains("hunter2"), "{err}");
}

/// The test PKI that `deploy/tls.sh` makes (its server certificate is PostgreSQL's).
fn pki() -> std::path::PathBuf {
    std::env::var_os("ASWHUB_PKI")
        .map_or_else(|| "/var/lib/aswhub-pki".into(), std::path::PathBuf::from)
}

#[test]
fn verify_full_checks_the_server_certificate_against_the_ca_given() {
    let schema = TestSchema::new();
    let url = format!("{}&sslmode=verify-full", schema.url());
    let with_ca = |ca: &str| asw_tls::TlsFiles {
        ca: Some(pki().join(ca)),
        ..asw_tls::TlsFiles::default()
    };
    let journal = asw_journal::open_with_tls(&url, &with_ca("ca.pem")).expect("verify-full");
    let h = header(DocumentKind::FormD, "TH", "VN");
    journal
        .record(Direction::Inbound, &h, b"x", State::Received, t(0))
        .expect("record over TLS");
    let on_tls: bool = schema
        .client()
        .query_one(
            "SELECT bool_and(s.ssl) FROM pg_stat_ssl s JOIN pg_stat_activity a USING (pid) \
             WHERE a.application_name = $1",
            &[&schema.name()],
        )
        .expect("pg_stat_ssl")
        .get(0);
    assert!(on_tls, "the journal's connections are TLS");
    drop(journal);

    // The CA alone, no sslmode: verify-full all the same (never a silent fall back to plain).
    asw_journal::open_with_tls(schema.url(), &with_ca("ca.pem")).expect("CA given: verify-full");

    for (what, tls) in [
        ("another CA", with_ca("other-ca/ca.pem")),
        ("the system's CAs", asw_tls::TlsFiles::default()),
    ] {
        let Err(err) = asw_journal::open_with_tls(&url, &tls) else {
            panic!("{what}: opened");
        };
        let mut text = err.to_string();
        let mut source = std::error::Error::source(&err);
        while let Some(cause) = source {
            text = format!("{text}: {cause}");
            source = cause.source();
        }
        assert!(
            text.contains("cannot open the journal at postgres://"),
            "{what}: {text}"
        );
        assert!(text.contains("certificate verify failed"), "{what}: {text}");
    }
}
