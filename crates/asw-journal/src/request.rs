//! What every backend checks and derives the same way before and after touching its database: the
//! requests refused without a look at the database, the stored form of times, and the fields in
//! which a second record of a message differs from the first.

use asw_model::Header;
use time::{OffsetDateTime, UtcOffset};
use uuid::Uuid;

use crate::{Direction, Field, JournalError, MessageSummary, Operation, Reason, State, Subject};

fn invalid(
    operation: Operation,
    direction: Direction,
    message_id: Uuid,
    detail: String,
) -> JournalError {
    JournalError::InvalidRequest {
        operation,
        subject: Subject::Message {
            direction,
            message_id,
        },
        detail,
    }
}

/// A message is first recorded in an entry state ([`State::is_entry`]).
pub(crate) fn check_record(
    direction: Direction,
    message_id: Uuid,
    state: State,
) -> Result<(), JournalError> {
    if state.is_entry(direction) {
        return Ok(());
    }
    Err(invalid(
        Operation::Record,
        direction,
        message_id,
        format!("a message cannot be first recorded as {state}"),
    ))
}

/// A message moves only to states of its direction, and outbound `signed` only with its bytes.
pub(crate) fn check_transition(
    direction: Direction,
    message_id: Uuid,
    to: State,
) -> Result<(), JournalError> {
    let detail = if !to.applies_to(direction) {
        format!("{direction} messages are never {to}")
    } else if (direction, to) == (Direction::Outbound, State::Signed) {
        "outbound messages become signed only with their signed bytes".to_owned()
    } else {
        return Ok(());
    };
    Err(invalid(
        Operation::Transition,
        direction,
        message_id,
        detail,
    ))
}

/// An operator's replay or discard carries the operator's name.
pub(crate) fn check_actor(
    operation: Operation,
    direction: Direction,
    message_id: Uuid,
    actor: &str,
) -> Result<(), JournalError> {
    if !actor.trim().is_empty() {
        return Ok(());
    }
    let what = match operation {
        Operation::Replay => "a replay",
        Operation::Discard => "a discard",
        _ => "this operation",
    };
    Err(invalid(
        operation,
        direction,
        message_id,
        format!("{what} needs the operator's name"),
    ))
}

/// A time as every backend stores it: in UTC, cut to microseconds (what PostgreSQL's
/// `timestamptz` keeps), within the years 0000 to 9999 (what SQLite's fixed-width text keeps).
pub(crate) fn stored_time(at: OffsetDateTime) -> Result<OffsetDateTime, String> {
    let utc = at
        .checked_to_offset(UtcOffset::UTC)
        .filter(|utc| (0..=9999).contains(&utc.year()))
        .ok_or_else(|| format!("time {at} is outside the years 0000 to 9999"))?;
    utc.replace_nanosecond(utc.nanosecond() / 1_000 * 1_000)
        .map_err(|e| format!("cannot store time {at}: {e}"))
}

/// What differs between a recorded message and a new record of the same id.
pub(crate) fn differences(
    existing: &MessageSummary,
    header: &Header,
    digest: &[u8; 32],
) -> Vec<Field> {
    let old = &existing.header;
    [
        (existing.digest != *digest, Field::Bytes),
        (old.sender != header.sender, Field::Sender),
        (old.receiver != header.receiver, Field::Receiver),
        (old.kind != header.kind, Field::Kind),
        (
            old.correlation_id != header.correlation_id,
            Field::CorrelationId,
        ),
        (old.version != header.version, Field::Version),
        (old.created_at != header.created_at, Field::CreatedAt),
    ]
    .into_iter()
    .filter_map(|(differs, field)| differs.then_some(field))
    .collect()
}

/// A stored reason: none if both columns are empty.
pub(crate) fn reason(code: Option<String>, text: Option<String>) -> Option<Reason> {
    match (code, text) {
        (None, None) => None,
        (code, text) => Some(Reason {
            code: code.unwrap_or_default(),
            text: text.unwrap_or_default(),
        }),
    }
}

/// The state a message is parked from after moving from `current` (parked from `parked_from`,
/// if parked) to `to`: the state before the stage that failed, kept through a discard of a message
/// already parked so that a replay still goes back there.
pub(crate) fn parked_from_after(
    current: State,
    parked_from: Option<State>,
    to: State,
) -> Option<State> {
    if to.is_parked() && !current.is_parked() {
        Some(current)
    } else {
        parked_from
    }
}

/// What claiming one overdue message found in `state` with `resends` made does to it, the same on
/// every backend.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct OverdueClaim {
    /// It moves to `awaiting-ack` now (first claim): journaled as a move with this reason.
    pub moved: Option<Reason>,
    /// It is resent now: journaled as [`Event::Resent`](crate::Event::Resent) with this reason.
    pub resent: Option<Reason>,
    /// The resend count after the claim.
    pub resends: u32,
}

impl OverdueClaim {
    /// What the caller is told of this claim, once applied to the message now `record`.
    pub fn into_overdue(
        self,
        record: crate::MessageRecord,
        waiting_since: OffsetDateTime,
    ) -> crate::Overdue {
        crate::Overdue {
            record,
            reported: self.moved.is_some(),
            resend: self.resent.is_some(),
            resends: self.resends,
            waiting_since,
        }
    }
}

/// The claim of a message in `state` (`queued`, `sent` or `awaiting-ack`), waiting since
/// `waiting_since`, with `resends` made of `max_resends` allowed; `None` if it has nothing due.
pub(crate) fn overdue_claim(
    state: State,
    resends: u32,
    max_resends: u32,
    waiting_since: OffsetDateTime,
) -> Option<OverdueClaim> {
    let first = matches!(state, State::Queued | State::Sent);
    if !first && state != State::AwaitingAck {
        return None;
    }
    let resend = resends < max_resends;
    if !first && !resend {
        return None;
    }
    let since = waiting_since
        .format(&time::format_description::well_known::Rfc3339)
        .unwrap_or_else(|_| waiting_since.to_string());
    let after = resends + u32::from(resend);
    Some(OverdueClaim {
        moved: first.then(|| {
            Reason::new(
                "ACK-OVERDUE",
                format!("no receipt from the partner since {since} ({state})"),
            )
        }),
        resent: resend.then(|| Reason::new("RESENT", format!("resend {after} of {max_resends}"))),
        resends: after,
    })
}

#[cfg(test)]
mod tests {
    use time::macros::datetime;

    use super::*;

    #[test]
    fn times_are_stored_in_utc_cut_to_microseconds() {
        assert_eq!(
            stored_time(datetime!(2026-01-05 08:00:00.123456789 +07:00)),
            Ok(datetime!(2026-01-05 01:00:00.123456 UTC))
        );
        // Cut, not rounded, before 2000 as after (PostgreSQL counts from 2000).
        assert_eq!(
            stored_time(datetime!(1999-12-31 23:59:59.9999999 UTC)),
            Ok(datetime!(1999-12-31 23:59:59.999999 UTC))
        );
        assert!(stored_time(datetime!(-0001-01-01 0:00 UTC)).is_err());
        assert!(stored_time(datetime!(9999-12-31 23:00 -05:00)).is_err());
        assert!(stored_time(datetime!(0000-01-01 0:00 UTC)).is_ok());
    }

    #[test]
    fn overdue_claims_report_once_and_resend_within_the_bound() {
        let since = datetime!(2026-01-05 01:00:00 UTC);
        let first = overdue_claim(State::Queued, 0, 2, since).expect("due");
        assert_eq!(first.moved.map(|r| r.code), Some("ACK-OVERDUE".to_owned()));
        assert_eq!(
            first.resent.map(|r| r.text),
            Some("resend 1 of 2".to_owned())
        );
        assert_eq!(first.resends, 1);
        let quiet = overdue_claim(State::Sent, 0, 0, since).expect("reported");
        assert!(quiet.moved.is_some() && quiet.resent.is_none());
        assert_eq!(quiet.resends, 0);
        let second = overdue_claim(State::AwaitingAck, 1, 2, since).expect("resend");
        assert!(second.moved.is_none());
        assert_eq!(second.resends, 2);
        assert_eq!(overdue_claim(State::AwaitingAck, 2, 2, since), None);
        assert_eq!(overdue_claim(State::Signed, 0, 2, since), None);
        assert_eq!(overdue_claim(State::Acknowledged, 0, 2, since), None);
    }

    #[test]
    fn parked_from_is_the_last_state_in_flight() {
        use State::*;
        assert_eq!(parked_from_after(Sent, None, Failed), Some(Sent));
        assert_eq!(parked_from_after(Failed, Some(Sent), Discarded), Some(Sent));
        assert_eq!(parked_from_after(Signed, None, Queued), None);
    }
}
