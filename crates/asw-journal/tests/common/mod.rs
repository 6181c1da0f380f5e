//! Helpers shared by the journal's integration tests: headers, times, driving a message to a state
//! through allowed moves, a PostgreSQL schema per test, and a proxy to cut connections with.

#![allow(dead_code, reason = "each test binary uses a different part")]

pub mod pg;
pub mod proxy;

use std::collections::VecDeque;

use asw_journal::{Direction, Journal, Recorded, State, Transition, is_allowed};
use asw_model::{DocumentKind, Header, MemberState};
use time::macros::datetime;
use time::{Duration, OffsetDateTime};
use uuid::Uuid;

/// A member state by code.
pub fn ms(code: &str) -> MemberState {
    MemberState::from_alpha2(code).expect("known member state")
}

/// A header of a new message.
pub fn header(kind: DocumentKind, sender: &str, receiver: &str) -> Header {
    Header {
        message_id: Uuid::new_v4(),
        correlation_id: None,
        sender: ms(sender),
        receiver: ms(receiver),
        kind,
        version: "1.0".into(),
        created_at: datetime!(2026-01-05 08:00:00 +07:00),
    }
}

/// A header answering `original`.
pub fn answer(kind: DocumentKind, original: &Header) -> Header {
    Header {
        correlation_id: Some(original.message_id),
        ..header(kind, original.receiver.code(), original.sender.code())
    }
}

/// A point in time, `seconds` after a fixed start.
pub fn t(seconds: i64) -> OffsetDateTime {
    datetime!(2026-01-05 01:00:00 UTC) + Duration::seconds(seconds)
}

/// Some bytes standing for the message.
pub fn bytes_of(header: &Header) -> Vec<u8> {
    format!("<asw:Message id=\"{}\"/>", header.message_id).into_bytes()
}

/// Records a new message in `received`.
pub fn received(journal: &dyn Journal, direction: Direction, header: &Header) {
    let outcome = journal
        .record(direction, header, &bytes_of(header), State::Received, t(0))
        .expect("record");
    assert_eq!(outcome, Recorded::New);
}

/// Moves a message one step, through `transition_signed` for outbound `signed`.
pub fn step(
    journal: &dyn Journal,
    direction: Direction,
    id: Uuid,
    to: State,
    at: OffsetDateTime,
) -> Transition {
    if (direction, to) == (Direction::Outbound, State::Signed) {
        journal
            .transition_signed(id, format!("signed {id}").as_bytes(), at)
            .expect("signed transition")
    } else {
        journal
            .transition(direction, id, to, None, at)
            .expect("transition")
    }
}

/// The shortest path of allowed moves from `received` to `target`.
pub fn path_to(direction: Direction, target: State) -> Vec<State> {
    let mut queue = VecDeque::from([vec![State::Received]]);
    while let Some(path) = queue.pop_front() {
        let last = *path.last().expect("paths are never empty");
        if last == target {
            return path;
        }
        for next in direction.states() {
            if is_allowed(direction, last, next) && !path.contains(&next) {
                let mut longer = path.clone();
                longer.push(next);
                queue.push_back(longer);
            }
        }
    }
    panic!("{direction} {target} cannot be reached from received");
}

/// Records a new message and moves it to `target`; returns its header.
pub fn message_in(journal: &dyn Journal, direction: Direction, target: State) -> Header {
    let h = header(DocumentKind::FormD, "TH", "VN");
    received(journal, direction, &h);
    for (i, to) in path_to(direction, target).into_iter().skip(1).enumerate() {
        let moved = step(journal, direction, h.message_id, to, t(1 + i as i64));
        assert!(
            matches!(moved, Transition::Moved { .. }),
            "{direction} to {to}: {moved:?}"
        );
    }
    h
}
