//! A small pool of PostgreSQL connections for one journal handle: a connection is lent to one call
//! at a time, and a broken one is dropped and replaced by a new one on a later call.
//!
//! Why a pool and not one `Mutex<Client>`: the hub calls the journal from several worker threads at
//! once, and every call waits on the network and, for a write, on the server's commit; one client
//! would make them queue behind each other. A handful of connections lets them overlap. Why not a
//! pool crate: this is short, needs only `std`, lets the journal say which failures make a
//! connection unusable, and keeps each connection's prepared statements with it.
//!
//! The pool's mutex is held only to take or give back a connection, never during a query, so it
//! plays no part in correctness: that rests on the transactions and row locks of the server,
//! shared by every handle of every process.

use std::collections::HashMap;
use std::sync::{Condvar, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};

use postgres::{Client, Config, NoTls, Statement};
use postgres_openssl::MakeTlsConnector;

/// One connection, with the statements prepared on it.
pub(crate) struct Connection {
    /// The client.
    pub(crate) client: Client,
    /// Statements prepared on this connection, by their SQL.
    statements: HashMap<&'static str, Statement>,
}

impl Connection {
    /// The statement for `sql`, prepared on first use (one round trip) and kept for the life of
    /// the connection.
    pub(crate) fn statement(&mut self, sql: &'static str) -> Result<Statement, postgres::Error> {
        if let Some(statement) = self.statements.get(sql) {
            return Ok(statement.clone());
        }
        let statement = self.client.prepare(sql)?;
        self.statements.insert(sql, statement.clone());
        Ok(statement)
    }
}

/// Why no connection could be lent.
#[derive(Debug)]
pub(crate) enum PoolError {
    /// A new connection could not be made.
    Connect(postgres::Error),
    /// Every connection stayed lent for the whole wait.
    Exhausted {
        /// How many connections the pool has.
        size: usize,
        /// How long the call waited.
        waited: Duration,
    },
}

/// The connections of one journal handle.
pub(crate) struct Pool {
    config: Config,
    /// TLS that verifies the server (`sslmode=verify-full` or `verify-ca`); `None`: the
    /// `postgres` crate's default (no TLS).
    tls: Option<MakeTlsConnector>,
    /// SQL run once on every new connection (session settings).
    setup: String,
    size: usize,
    wait: Duration,
    slots: Mutex<Slots>,
    freed: Condvar,
}

/// The connections not lent, and how many exist in all.
struct Slots {
    idle: Vec<Connection>,
    open: usize,
}

impl Pool {
    /// A pool of up to `size` connections (at least one) made with `config`, each set up with the
    /// `setup` SQL; a call waits up to `wait` for a free connection.
    pub(crate) fn new(
        config: Config,
        tls: Option<MakeTlsConnector>,
        setup: String,
        size: usize,
        wait: Duration,
    ) -> Pool {
        Pool {
            config,
            tls,
            setup,
            size: size.max(1),
            wait,
            slots: Mutex::new(Slots {
                idle: Vec::new(),
                open: 0,
            }),
            freed: Condvar::new(),
        }
    }

    fn lock(&self) -> MutexGuard<'_, Slots> {
        // Only plain pushes, pops and counts happen under the lock; a panic cannot leave the
        // slots half changed.
        self.slots.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Lends a connection: an idle one if there is one, a new one if the pool is not full, or the
    /// first one given back within the wait.
    pub(crate) fn lend(&self) -> Result<Lease<'_>, PoolError> {
        let deadline = Instant::now() + self.wait;
        let mut slots = self.lock();
        loop {
            if let Some(connection) = slots.idle.pop() {
                if connection.client.is_closed() {
                    slots.open -= 1;
                    drop(slots);
                    drop(connection);
                    slots = self.lock();
                    continue;
                }
                return Ok(Lease::new(self, connection, false));
            }
            if slots.open < self.size {
                slots.open += 1;
                drop(slots);
                return match self.connect() {
                    Ok(connection) => Ok(Lease::new(self, connection, true)),
                    Err(e) => {
                        self.lock().open -= 1;
                        self.freed.notify_one();
                        Err(PoolError::Connect(e))
                    }
                };
            }
            let now = Instant::now();
            if now >= deadline {
                return Err(PoolError::Exhausted {
                    size: self.size,
                    waited: self.wait,
                });
            }
            slots = self
                .freed
                .wait_timeout(slots, deadline - now)
                .unwrap_or_else(PoisonError::into_inner)
                .0;
        }
    }

    /// Drops every idle connection: called when one turned out dead, as after a server restart the
    /// others are dead too, and each would cost a failed call to find out.
    pub(crate) fn drop_idle(&self) {
        let idle = {
            let mut slots = self.lock();
            let idle = std::mem::take(&mut slots.idle);
            slots.open -= idle.len();
            idle
        };
        if !idle.is_empty() {
            self.freed.notify_all();
        }
        drop(idle);
    }

    fn connect(&self) -> Result<Connection, postgres::Error> {
        let mut client = match &self.tls {
            Some(tls) => self.config.connect(tls.clone())?,
            None => self.config.connect(NoTls)?,
        };
        if !self.setup.is_empty() {
            client.batch_execute(&self.setup)?;
        }
        Ok(Connection {
            client,
            statements: HashMap::new(),
        })
    }
}

impl Drop for Pool {
    /// Closes the idle connections on a thread of their own: closing blocks on the client's own
    /// tokio runtime, which tokio refuses inside an async context, and the daemon drops its
    /// journal in one.
    fn drop(&mut self) {
        let idle = std::mem::take(&mut self.lock().idle);
        if idle.is_empty() {
            return;
        }
        let mut idle = Some(idle);
        std::thread::scope(|scope| {
            let idle = &mut idle;
            // A failed spawn drops the closure unrun, leaving the connections here.
            let _ = std::thread::Builder::new()
                .name("asw-journal-close".into())
                .spawn_scoped(scope, move || drop(idle.take()));
        });
        if let Some(idle) = idle {
            // No thread to be had: leave the sockets to close when the process ends rather than
            // risk a panic here.
            std::mem::forget(idle);
        }
    }
}

/// A lent connection, given back to the pool when dropped, or dropped with it if it is broken or
/// may be in the middle of a transaction.
pub(crate) struct Lease<'a> {
    pool: &'a Pool,
    connection: Option<Connection>,
    /// Made for this call rather than taken idle: a failure on it is not the staleness of an idle
    /// connection, and trying again on another would not help.
    fresh: bool,
    /// Give the connection back when done. Cleared by [`Lease::discard`] and while a transaction
    /// is open.
    reusable: bool,
}

impl<'a> Lease<'a> {
    fn new(pool: &'a Pool, connection: Connection, fresh: bool) -> Lease<'a> {
        Lease {
            pool,
            connection: Some(connection),
            fresh,
            reusable: true,
        }
    }

    /// The connection.
    pub(crate) fn connection(&mut self) -> &mut Connection {
        // Invariant: `connection` is `Some` from `new` until `drop`, the only place that takes it.
        self.connection
            .as_mut()
            .expect("a lease holds its connection until dropped")
    }

    /// True if the connection was made for this call.
    pub(crate) fn is_fresh(&self) -> bool {
        self.fresh
    }

    /// Marks whether the connection may go back to the pool as it is now: cleared while a
    /// transaction is open, so that a panic in the middle drops the connection (the server then
    /// rolls the transaction back) instead of lending it out inside that transaction.
    pub(crate) fn set_reusable(&mut self, reusable: bool) {
        self.reusable = reusable;
    }

    /// Drops the connection instead of giving it back: it is broken, or in an unknown state.
    pub(crate) fn discard(&mut self) {
        self.reusable = false;
    }
}

impl Drop for Lease<'_> {
    fn drop(&mut self) {
        let Some(connection) = self.connection.take() else {
            return;
        };
        let broken = !self.reusable || connection.client.is_closed();
        {
            let mut slots = self.pool.lock();
            if broken {
                slots.open -= 1;
            } else {
                slots.idle.push(connection);
                self.pool.freed.notify_one();
                return;
            }
        }
        self.pool.freed.notify_one();
        // Closing sends a goodbye to the server; done outside the lock.
        drop(connection);
    }
}
