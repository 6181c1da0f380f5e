//! The schemas of both backends, as numbered migrations applied on open: tracked by
//! `PRAGMA user_version` in SQLite and by the `journal_schema` table in PostgreSQL. The two hold
//! the same tables (messages, bodies, transitions, channel_settlements) with the same columns and checks, each in the
//! types of its database. Version `n` means the same thing in both.

/// The SQLite migrations, in order: `SQLITE_MIGRATIONS[n]` takes a database from version `n` to
/// `n + 1`. Never edit a migration that has shipped; append a new one.
pub(crate) const SQLITE_MIGRATIONS: &[&str] = &[V1, V2, V3, V4];

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

/// Version 2: the `awaiting-ack` state, the `resent` event and the count of resends.
///
/// SQLite cannot change a CHECK constraint in place, so `messages` and `transitions` are rebuilt
/// (copied into a new table that takes the old one's name; `bodies` is not touched) the way the
/// SQLite manual says: with foreign keys off, which `migrate` sees to, and checked before commit.
const V2: &str = "
CREATE TABLE messages_v2 (
    direction      TEXT    NOT NULL CHECK (direction IN ('inbound', 'outbound')),
    message_id     TEXT    NOT NULL,
    kind           TEXT    NOT NULL,
    sender         TEXT    NOT NULL,
    receiver       TEXT    NOT NULL,
    correlation_id TEXT,
    version        TEXT    NOT NULL,
    created_at     TEXT    NOT NULL,
    state          TEXT    NOT NULL CHECK (state IN ('received', 'signed', 'queued', 'sent',
                       'awaiting-ack', 'acknowledged', 'verified', 'delivered', 'rejected',
                       'failed', 'discarded')),
    parked_from    TEXT,
    attempts       INTEGER NOT NULL DEFAULT 0 CHECK (attempts >= 0),
    reason_code    TEXT,
    reason_text    TEXT,
    first_seen     TEXT    NOT NULL,
    updated_at     TEXT    NOT NULL,
    digest         BLOB    NOT NULL CHECK (length(digest) = 32),
    resends        INTEGER NOT NULL DEFAULT 0 CHECK (resends >= 0),
    PRIMARY KEY (direction, message_id)
);
INSERT INTO messages_v2 (direction, message_id, kind, sender, receiver, correlation_id, version,
    created_at, state, parked_from, attempts, reason_code, reason_text, first_seen, updated_at,
    digest)
SELECT direction, message_id, kind, sender, receiver, correlation_id, version, created_at, state,
    parked_from, attempts, reason_code, reason_text, first_seen, updated_at, digest
FROM messages;
DROP TABLE messages;
ALTER TABLE messages_v2 RENAME TO messages;
CREATE INDEX messages_updated     ON messages (updated_at);
CREATE INDEX messages_state       ON messages (state, updated_at);
CREATE INDEX messages_kind        ON messages (kind);
CREATE INDEX messages_sender      ON messages (sender);
CREATE INDEX messages_receiver    ON messages (receiver);
CREATE INDEX messages_correlation ON messages (correlation_id) WHERE correlation_id IS NOT NULL;

CREATE TABLE transitions_v2 (
    seq         INTEGER PRIMARY KEY,
    direction   TEXT NOT NULL,
    message_id  TEXT NOT NULL,
    event       TEXT NOT NULL CHECK (event IN ('recorded', 'moved', 'replayed', 'discarded',
                    'resent')),
    from_state  TEXT,
    to_state    TEXT NOT NULL,
    at          TEXT NOT NULL,
    reason_code TEXT,
    reason_text TEXT,
    actor       TEXT NOT NULL,
    FOREIGN KEY (direction, message_id) REFERENCES messages (direction, message_id)
);
INSERT INTO transitions_v2 (seq, direction, message_id, event, from_state, to_state, at,
    reason_code, reason_text, actor)
SELECT seq, direction, message_id, event, from_state, to_state, at, reason_code, reason_text,
    actor
FROM transitions;
DROP TABLE transitions;
ALTER TABLE transitions_v2 RENAME TO transitions;
CREATE INDEX transitions_message ON transitions (direction, message_id, seq);
";

/// Version 3: channel references and the settlements of channels' documents.
///
/// `messages.transport_ref` is a channel's own reference for the message, e.g. the IPPC ePhyto
/// Hub's delivery number (`hubDeliveryNumber`) of a certificate sent or pulled through it; NULL
/// for messages whose channel gives none (the ASW). At most one message per direction holds a
/// reference, which the partial unique index both enforces and looks up by.
///
/// `channel_settlements` keeps, per (channel, reference), what the hub did with a document the
/// channel handed over (delivered, parked, refused) and the text it answered with, so that a
/// document handed over again gets the same acknowledgement and is never delivered twice. It
/// outlives the message (no foreign key): archiving removes messages, not settlements.
const V3: &str = "
ALTER TABLE messages ADD COLUMN transport_ref TEXT;
CREATE UNIQUE INDEX messages_transport_ref ON messages (direction, transport_ref)
    WHERE transport_ref IS NOT NULL;

CREATE TABLE channel_settlements (
    channel    TEXT NOT NULL,
    reference  TEXT NOT NULL,
    outcome    TEXT NOT NULL CHECK (outcome IN ('delivered', 'parked', 'refused')),
    note       TEXT,
    message_id TEXT,
    settled_at TEXT NOT NULL,
    PRIMARY KEY (channel, reference)
);
";

/// Version 4: indexes for the console's searches ([`crate::Journal::list`]) over a large
/// journal. Each holds its rows in the listing's whole order (last update, then direction and
/// id), so a search reads its page from the index and stops, instead of sorting every match:
/// all messages, by state, by kind (replacing the indexes on update time, state and kind), by
/// reason code, and the messages with a reason at all (a search in the reasons' text reads
/// those only).
const V4: &str = "
DROP INDEX IF EXISTS messages_updated;
DROP INDEX IF EXISTS messages_state;
DROP INDEX IF EXISTS messages_kind;
CREATE INDEX IF NOT EXISTS messages_by_update ON messages (updated_at, direction, message_id);
CREATE INDEX IF NOT EXISTS messages_by_state
    ON messages (state, updated_at, direction, message_id);
CREATE INDEX IF NOT EXISTS messages_by_kind ON messages (kind, updated_at, direction, message_id);
CREATE INDEX IF NOT EXISTS messages_by_reason_code
    ON messages (reason_code, updated_at, direction, message_id) WHERE reason_code IS NOT NULL;
CREATE INDEX IF NOT EXISTS messages_with_reason ON messages (updated_at, direction, message_id)
    WHERE reason_text IS NOT NULL;
";

/// The PostgreSQL migrations, in order, as [`SQLITE_MIGRATIONS`]. Each is idempotent
/// (`IF NOT EXISTS`), and runs under an advisory lock with the version row it adds.
pub(crate) const POSTGRES_MIGRATIONS: &[&str] =
    &[POSTGRES_V1, POSTGRES_V2, POSTGRES_V3, POSTGRES_V4];

/// The PostgreSQL table of applied versions, created before the first migration.
pub(crate) const POSTGRES_VERSION_TABLE: &str = "
CREATE TABLE IF NOT EXISTS journal_schema (
    version    integer     PRIMARY KEY CHECK (version > 0),
    applied_at timestamptz NOT NULL DEFAULT now()
);
";

/// Version 1 on PostgreSQL: [`V1`] in PostgreSQL's types.
///
/// Ids are `uuid`, digests and bytes `bytea`, journal times `timestamptz` (microseconds, UTC).
/// `created_at` stays text (RFC 3339): it is the sender's value, compared in full when the message
/// comes again, so it keeps the sender's offset and nanoseconds. Names compare byte-wise
/// (`COLLATE "C"`) so listings order as in SQLite whatever the database's collation. The history's
/// `seq` comes from an identity column: increasing in the order rows are written, and, as each
/// message's moves are serialised by its row lock, in the order of each message's moves.
const POSTGRES_V1: &str = r#"
CREATE TABLE IF NOT EXISTS messages (
    direction      text COLLATE "C" NOT NULL CHECK (direction IN ('inbound', 'outbound')),
    message_id     uuid             NOT NULL,
    kind           text COLLATE "C" NOT NULL,
    sender         text COLLATE "C" NOT NULL,
    receiver       text COLLATE "C" NOT NULL,
    correlation_id uuid,
    version        text             NOT NULL,
    created_at     text             NOT NULL,
    state          text COLLATE "C" NOT NULL CHECK (state IN ('received', 'signed', 'queued',
                       'sent', 'acknowledged', 'verified', 'delivered', 'rejected', 'failed',
                       'discarded')),
    parked_from    text COLLATE "C",
    attempts       integer          NOT NULL DEFAULT 0 CHECK (attempts >= 0),
    reason_code    text,
    reason_text    text,
    first_seen     timestamptz      NOT NULL,
    updated_at     timestamptz      NOT NULL,
    digest         bytea            NOT NULL CHECK (octet_length(digest) = 32),
    PRIMARY KEY (direction, message_id)
);
CREATE INDEX IF NOT EXISTS messages_updated     ON messages (updated_at);
CREATE INDEX IF NOT EXISTS messages_state       ON messages (state, updated_at);
CREATE INDEX IF NOT EXISTS messages_kind        ON messages (kind);
CREATE INDEX IF NOT EXISTS messages_sender      ON messages (sender);
CREATE INDEX IF NOT EXISTS messages_receiver    ON messages (receiver);
CREATE INDEX IF NOT EXISTS messages_correlation ON messages (correlation_id)
    WHERE correlation_id IS NOT NULL;

CREATE TABLE IF NOT EXISTS bodies (
    direction  text COLLATE "C" NOT NULL,
    message_id uuid             NOT NULL,
    bytes      bytea            NOT NULL,
    PRIMARY KEY (direction, message_id),
    FOREIGN KEY (direction, message_id) REFERENCES messages (direction, message_id)
);

CREATE TABLE IF NOT EXISTS transitions (
    seq         bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    direction   text COLLATE "C" NOT NULL,
    message_id  uuid             NOT NULL,
    event       text COLLATE "C" NOT NULL CHECK (event IN ('recorded', 'moved', 'replayed',
                    'discarded')),
    from_state  text COLLATE "C",
    to_state    text COLLATE "C" NOT NULL,
    at          timestamptz      NOT NULL,
    reason_code text,
    reason_text text,
    actor       text             NOT NULL,
    FOREIGN KEY (direction, message_id) REFERENCES messages (direction, message_id)
);
CREATE INDEX IF NOT EXISTS transitions_message ON transitions (direction, message_id, seq);
"#;

/// Version 2 on PostgreSQL: [`V2`], by altering the tables in place (PostgreSQL names a column's
/// CHECK constraint `<table>_<column>_check`). Each statement drops what it adds first, so it can
/// run twice.
const POSTGRES_V2: &str = r#"
ALTER TABLE messages ADD COLUMN IF NOT EXISTS resends integer NOT NULL DEFAULT 0
    CHECK (resends >= 0);
ALTER TABLE messages DROP CONSTRAINT IF EXISTS messages_state_check,
    ADD CONSTRAINT messages_state_check CHECK (state IN ('received', 'signed', 'queued', 'sent',
        'awaiting-ack', 'acknowledged', 'verified', 'delivered', 'rejected', 'failed',
        'discarded'));
ALTER TABLE transitions DROP CONSTRAINT IF EXISTS transitions_event_check,
    ADD CONSTRAINT transitions_event_check CHECK (event IN ('recorded', 'moved', 'replayed',
        'discarded', 'resent'));
"#;

/// Version 3 on PostgreSQL: [`V3`] in PostgreSQL's types.
const POSTGRES_V3: &str = r#"
ALTER TABLE messages ADD COLUMN IF NOT EXISTS transport_ref text;
CREATE UNIQUE INDEX IF NOT EXISTS messages_transport_ref ON messages (direction, transport_ref)
    WHERE transport_ref IS NOT NULL;

CREATE TABLE IF NOT EXISTS channel_settlements (
    channel    text COLLATE "C" NOT NULL,
    reference  text COLLATE "C" NOT NULL,
    outcome    text COLLATE "C" NOT NULL CHECK (outcome IN ('delivered', 'parked', 'refused')),
    note       text,
    message_id uuid,
    settled_at timestamptz      NOT NULL,
    PRIMARY KEY (channel, reference)
);
"#;

/// Version 4 on PostgreSQL: [`V4`], the same statements.
const POSTGRES_V4: &str = V4;

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{Direction, Event, SettlementOutcome, State};

    /// The CHECK constraints of both backends, as the last migration leaves them, name every
    /// state and event the code knows.
    #[test]
    fn checks_list_every_name() {
        for schema in [V2, POSTGRES_V2] {
            for state in State::ALL {
                assert!(schema.contains(&format!("'{state}'")), "{state}");
            }
            for event in Event::ALL {
                assert!(schema.contains(&format!("'{event}'")), "{event}");
            }
        }
        for schema in [V1, POSTGRES_V1] {
            for direction in Direction::ALL {
                assert!(schema.contains(&format!("'{direction}'")), "{direction}");
            }
        }
        for schema in [V3, POSTGRES_V3] {
            for outcome in SettlementOutcome::ALL {
                assert!(schema.contains(&format!("'{outcome}'")), "{outcome}");
            }
        }
    }

    /// Both backends are at the same version, and every PostgreSQL statement can run twice.
    #[test]
    fn backends_agree_on_the_version_and_postgres_migrations_are_idempotent() {
        assert_eq!(SQLITE_MIGRATIONS.len(), POSTGRES_MIGRATIONS.len());
        for migration in POSTGRES_MIGRATIONS.iter().chain([&POSTGRES_VERSION_TABLE]) {
            for statement in migration
                .split(';')
                .map(str::trim)
                .filter(|s| !s.is_empty())
            {
                assert!(
                    statement.contains("IF NOT EXISTS")
                        || statement.contains("DROP CONSTRAINT IF EXISTS")
                        || statement.contains("DROP INDEX IF EXISTS"),
                    "{statement}"
                );
            }
        }
    }
}
