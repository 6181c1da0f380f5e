//! The SQLite schema, as numbered migrations applied on open and tracked by `PRAGMA user_version`.

/// The migrations, in order: `MIGRATIONS[n]` takes a database from version `n` to `n + 1`.
/// Never edit a migration that has shipped; append a new one.
pub(crate) const MIGRATIONS: &[&str] = &[V1];

/// Version 1: messages and their history.
///
/// The bytes live in their own table: a move rewrites the small `messages` row, not kilobytes of
/// overflow pages, and listings never touch them. The indexes on kind, sender and receiver do not
/// hold the update time, so a move updates two indexes, not five. Times are fixed-width UTC text (`2026-01-05T01:00:00.000000Z`), so
/// they sort as text and read well in the `sqlite3` shell; `created_at` keeps the sender's offset.
const V1: &str = "
CREATE TABLE messages (
    direction      TEXT    NOT NULL CHECK (direction IN ('inbound', 'outbound')),
    message_id     TEXT    NOT NULL,
    kind           TEXT    NOT NULL,
    sender         TEXT    NOT NULL,
    receiver       TEXT    NOT NULL,
    correlation_id TEXT,
    version        TEXT    NOT NULL,
    created_at     TEXT    NOT NULL,
    state          TEXT    NOT NULL CHECK (state IN ('received', 'signed', 'queued', 'sent',
                       'acknowledged', 'verified', 'delivered', 'rejected', 'failed', 'discarded')),
    parked_from    TEXT,
    attempts       INTEGER NOT NULL DEFAULT 0 CHECK (attempts >= 0),
    reason_code    TEXT,
    reason_text    TEXT,
    first_seen     TEXT    NOT NULL,
    updated_at     TEXT    NOT NULL,
    digest         BLOB    NOT NULL CHECK (length(digest) = 32),
    PRIMARY KEY (direction, message_id)
);
CREATE INDEX messages_updated     ON messages (updated_at);
CREATE INDEX messages_state       ON messages (state, updated_at);
CREATE INDEX messages_kind        ON messages (kind);
CREATE INDEX messages_sender      ON messages (sender);
CREATE INDEX messages_receiver    ON messages (receiver);
CREATE INDEX messages_correlation ON messages (correlation_id) WHERE correlation_id IS NOT NULL;

CREATE TABLE bodies (
    direction  TEXT NOT NULL,
    message_id TEXT NOT NULL,
    bytes      BLOB NOT NULL,
    PRIMARY KEY (direction, message_id),
    FOREIGN KEY (direction, message_id) REFERENCES messages (direction, message_id)
);

CREATE TABLE transitions (
    seq         INTEGER PRIMARY KEY,
    direction   TEXT NOT NULL,
    message_id  TEXT NOT NULL,
    event       TEXT NOT NULL CHECK (event IN ('recorded', 'moved', 'replayed', 'discarded')),
    from_state  TEXT,
    to_state    TEXT NOT NULL,
    at          TEXT NOT NULL,
    reason_code TEXT,
    reason_text TEXT,
    actor       TEXT NOT NULL,
    FOREIGN KEY (direction, message_id) REFERENCES messages (direction, message_id)
);
CREATE INDEX transitions_message ON transitions (direction, message_id, seq);
";

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{Direction, Event, State};

    /// The CHECK constraints name every state and event the code knows.
    #[test]
    fn checks_list_every_name() {
        for state in State::ALL {
            assert!(V1.contains(&format!("'{state}'")), "{state}");
        }
        for event in Event::ALL {
            assert!(V1.contains(&format!("'{event}'")), "{event}");
        }
        for direction in Direction::ALL {
            assert!(V1.contains(&format!("'{direction}'")), "{direction}");
        }
    }
}
