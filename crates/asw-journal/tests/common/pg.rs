//! A PostgreSQL schema of its own for each test, dropped when the test ends, passed or failed.
//!
//! The tests need a PostgreSQL server: `deploy/setup.sh` starts one (as CI does), at
//! 127.0.0.1:5432 with trust authentication. `ASWHUB_TEST_POSTGRES` points them at another, as a
//! `postgres://` URL. A server out of reach fails the tests; it never skips them.

use std::time::Duration;

use asw_journal::{PostgresJournal, PostgresOptions};
use postgres::{Client, Config, NoTls};
use uuid::Uuid;

/// The server used when `ASWHUB_TEST_POSTGRES` is not set.
pub const DEFAULT_URL: &str = "postgres://postgres@127.0.0.1:5432/test";

/// The variable naming another server.
pub const URL_VARIABLE: &str = "ASWHUB_TEST_POSTGRES";

/// The URL of the test server (a database, not a schema).
pub fn server_url() -> String {
    std::env::var(URL_VARIABLE).unwrap_or_else(|_| DEFAULT_URL.to_owned())
}

/// A connection to the test server, or a panic that says what to do.
pub fn connect(url: &str) -> Client {
    let mut config: Config = url
        .parse()
        .unwrap_or_else(|e| panic!("{URL_VARIABLE}={url} is not a PostgreSQL URL: {e}"));
    config.connect_timeout(Duration::from_secs(5));
    config.connect(NoTls).unwrap_or_else(|e| {
        let mut reason = e.to_string();
        let mut source = std::error::Error::source(&e);
        while let Some(cause) = source {
            reason.push_str(&format!(": {cause}"));
            source = cause.source();
        }
        panic!(
            "PostgreSQL is not reachable at {url}: {reason}\n\
             The journal's tests need a PostgreSQL server: run deploy/setup.sh (CI does) or set \
             {URL_VARIABLE} to the postgres:// URL of another server."
        )
    })
}

/// `url` with a query parameter added.
pub fn with_parameter(url: &str, parameter: &str) -> String {
    let separator = if url.contains('?') { '&' } else { '?' };
    format!("{url}{separator}{parameter}")
}

/// A schema named `aswt_<random>` in the test database, dropped with everything in it when this
/// value is dropped (also when the test panics). Declare it before the journals that use it, so
/// that they are dropped first.
pub struct TestSchema {
    name: String,
}

impl TestSchema {
    /// Creates the schema.
    pub fn new() -> TestSchema {
        let name = format!("aswt_{}", Uuid::new_v4().simple());
        connect(&server_url())
            .batch_execute(&format!("CREATE SCHEMA {name}"))
            .expect("create the test schema");
        TestSchema { name }
    }

    /// The schema's name, also the `application_name` of the journal's connections.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// A URL whose connections use this schema, as an operator would write it.
    pub fn url(&self) -> String {
        self.url_on(&server_url())
    }

    /// `server` (a URL) made to use this schema.
    pub fn url_on(&self, server: &str) -> String {
        let url = with_parameter(server, &format!("options=-csearch_path%3D{}", self.name));
        with_parameter(&url, &format!("application_name={}", self.name))
    }

    /// A journal in this schema.
    pub fn open(&self) -> PostgresJournal {
        PostgresJournal::open(&self.url()).expect("open the PostgreSQL journal")
    }

    /// A journal in this schema with `options`.
    pub fn open_with(&self, options: &PostgresOptions) -> PostgresJournal {
        PostgresJournal::open_with(&self.url(), options).expect("open the PostgreSQL journal")
    }

    /// A connection of the test's own, in this schema (not ended by
    /// [`terminate_connections`](TestSchema::terminate_connections)).
    pub fn client(&self) -> Client {
        connect(&with_parameter(
            &server_url(),
            &format!("options=-csearch_path%3D{}", self.name),
        ))
    }

    /// Ends the journal's connections (those with this schema's `application_name`) from the
    /// server side, as a server restart would; returns how many there were.
    pub fn terminate_connections(&self) -> usize {
        let rows = connect(&server_url())
            .query(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity
                 WHERE application_name = $1 AND pid <> pg_backend_pid()",
                &[&self.name],
            )
            .expect("terminate");
        rows.len()
    }
}

impl Drop for TestSchema {
    fn drop(&mut self) {
        let dropped = server_url()
            .parse::<Config>()
            .and_then(|config| config.connect(NoTls))
            .and_then(|mut client| {
                client.batch_execute(&format!("DROP SCHEMA IF EXISTS {} CASCADE", self.name))
            });
        if let Err(e) = dropped {
            // No panic here: this may run while a failed test unwinds.
            eprintln!("could not drop the test schema {}: {e}", self.name);
        }
    }
}
