//! Directions, message states and the table of allowed moves between them.

use std::fmt;
use std::str::FromStr;

use crate::JournalError;

/// Which way a message travels through the hub.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Direction {
    /// From a partner gateway to our back-office.
    Inbound,
    /// From our back-office to a partner gateway.
    Outbound,
}

impl Direction {
    /// Both directions.
    pub const ALL: [Direction; 2] = [Direction::Inbound, Direction::Outbound];

    /// The name used in storage and on the command line (`inbound`, `outbound`).
    pub fn as_str(self) -> &'static str {
        match self {
            Direction::Inbound => "inbound",
            Direction::Outbound => "outbound",
        }
    }

    /// The states a message of this direction passes through, in order of progress: when all
    /// goes well, and outbound `awaiting-ack` when the partner's receipt is late (a late receipt
    /// still takes it to `acknowledged`). A report of an earlier state is harmless.
    pub fn happy_path(self) -> &'static [State] {
        match self {
            Direction::Inbound => &[State::Received, State::Verified, State::Delivered],
            Direction::Outbound => &[
                State::Received,
                State::Signed,
                State::Queued,
                State::Sent,
                State::AwaitingAck,
                State::Acknowledged,
            ],
        }
    }

    /// The states a message of this direction can be in.
    pub fn states(self) -> impl Iterator<Item = State> {
        State::ALL.into_iter().filter(move |s| s.applies_to(self))
    }
}

impl FromStr for Direction {
    type Err = JournalError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Direction::ALL
            .into_iter()
            .find(|d| d.as_str() == s)
            .ok_or_else(|| JournalError::UnknownName {
                what: "direction",
                value: s.to_owned(),
            })
    }
}

impl fmt::Display for Direction {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Where a message is in its life. Which states apply depends on the [`Direction`]; moves between
/// them follow [`TRANSITIONS`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum State {
    /// Taken in: from the back-office (outbound) or from a partner (inbound), not checked further.
    Received,
    /// Outbound: signed; the journal holds the signed bytes from here on.
    Signed,
    /// Outbound: the partner queue confirmed the message.
    Queued,
    /// Outbound: pushed to the partner gateway.
    Sent,
    /// Outbound: queued or sent, and no receipt came within the configured time; reported to the
    /// back-office once, possibly resent (same bytes, same id). The receipt may still come.
    AwaitingAck,
    /// Outbound: the partner sent its receipt acknowledgement. Final.
    Acknowledged,
    /// Inbound: signature verified and document valid.
    Verified,
    /// Inbound: the back-office exchange confirmed the message. Final.
    Delivered,
    /// Outbound: the partner rejected it, with reasons. Inbound: invalid or forged. Parked.
    Rejected,
    /// Given up on (retries exhausted or a permanent error). Parked.
    Failed,
    /// An operator discarded it. Parked.
    Discarded,
}

impl State {
    /// Whether a message of `kind` in this state is settled: the hub does nothing more with it
    /// and waits for nothing (an answer, a retry, an operator's replay), so it may leave the
    /// journal for an archive. Delivered inbound, acknowledged outbound, rejected (a verdict) and
    /// discarded are; outbound `queued` and `sent` are for a kind no receipt answers (receipts,
    /// statuses, responses) and not for one whose receipt is awaited. `failed` is not (an
    /// operator is to act on it), nor a state the hub is still working through.
    pub fn settled(self, direction: Direction, kind: asw_model::DocumentKind) -> bool {
        match (direction, self) {
            (_, State::Rejected | State::Discarded) => true,
            (Direction::Inbound, State::Delivered) => true,
            (Direction::Outbound, State::Acknowledged) => true,
            (Direction::Outbound, State::Queued | State::Sent) => kind.ack_kind().is_none(),
            _ => false,
        }
    }

    /// Every state.
    pub const ALL: [State; 11] = [
        State::Received,
        State::Signed,
        State::Queued,
        State::Sent,
        State::AwaitingAck,
        State::Acknowledged,
        State::Verified,
        State::Delivered,
        State::Rejected,
        State::Failed,
        State::Discarded,
    ];

    /// The name used in storage and on the command line (`received`, `signed`, ...).
    pub fn as_str(self) -> &'static str {
        match self {
            State::Received => "received",
            State::Signed => "signed",
            State::Queued => "queued",
            State::Sent => "sent",
            State::AwaitingAck => "awaiting-ack",
            State::Acknowledged => "acknowledged",
            State::Verified => "verified",
            State::Delivered => "delivered",
            State::Rejected => "rejected",
            State::Failed => "failed",
            State::Discarded => "discarded",
        }
    }

    /// True if a message of `direction` can be in this state.
    pub fn applies_to(self, direction: Direction) -> bool {
        match self {
            State::Received | State::Rejected | State::Failed | State::Discarded => true,
            State::Signed
            | State::Queued
            | State::Sent
            | State::AwaitingAck
            | State::Acknowledged => direction == Direction::Outbound,
            State::Verified | State::Delivered => direction == Direction::Inbound,
        }
    }

    /// True for the states a message is parked in, waiting for an operator: `rejected`, `failed`,
    /// `discarded`. Only [`replay`](crate::Journal::replay) takes a message out of them.
    pub fn is_parked(self) -> bool {
        matches!(self, State::Rejected | State::Failed | State::Discarded)
    }

    /// True for the states that end a successful exchange: `acknowledged`, `delivered`.
    pub fn is_done(self) -> bool {
        matches!(self, State::Acknowledged | State::Delivered)
    }

    /// True for the states a message of `direction` may be first recorded in: `received` both ways,
    /// `signed` outbound and `verified` inbound (for a hub that journals after those steps).
    pub fn is_entry(self, direction: Direction) -> bool {
        match direction {
            Direction::Outbound => matches!(self, State::Received | State::Signed),
            Direction::Inbound => matches!(self, State::Received | State::Verified),
        }
    }
}

impl FromStr for State {
    type Err = JournalError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        State::ALL
            .into_iter()
            .find(|st| st.as_str() == s)
            .ok_or_else(|| JournalError::UnknownName {
                what: "state",
                value: s.to_owned(),
            })
    }
}

impl fmt::Display for State {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The allowed moves: for each direction and state, the states a message may move to from there.
/// Everything else is refused, except a move to the state the message is already in (a no-op) and
/// a [`replay`](crate::Journal::replay) out of a parked state.
///
/// `awaiting-ack` is entered only from `queued` or `sent` (by
/// [`claim_overdue`](crate::Journal::claim_overdue)), and left for the answer that came late, or
/// for a failure or a discard; a `sent` reported after it (a resend pushed) is a late report.
///
/// Forward skips on the happy path are allowed because the journal can lag the broker (a partner
/// receipt may be journaled before `sent` is); going back never is. `signed` is never skipped
/// outbound (it is where the signed bytes are stored) and `verified` never inbound (nothing is
/// delivered unverified). A done message (`acknowledged`, `delivered`) never moves again: a receipt
/// followed by a failure, or a failed message delivered anyway, cannot be journaled.
pub const TRANSITIONS: &[(Direction, State, &[State])] = {
    use Direction::{Inbound, Outbound};
    use State::*;
    &[
        (Outbound, Received, &[Signed, Failed, Discarded]),
        (
            Outbound,
            Signed,
            &[Queued, Sent, Acknowledged, Rejected, Failed, Discarded],
        ),
        (
            Outbound,
            Queued,
            &[Sent, AwaitingAck, Acknowledged, Rejected, Failed, Discarded],
        ),
        (
            Outbound,
            Sent,
            &[AwaitingAck, Acknowledged, Rejected, Failed, Discarded],
        ),
        (
            Outbound,
            AwaitingAck,
            &[Acknowledged, Rejected, Failed, Discarded],
        ),
        (Outbound, Acknowledged, &[]),
        (Outbound, Rejected, &[Discarded]),
        (Outbound, Failed, &[Discarded]),
        (Outbound, Discarded, &[]),
        (Inbound, Received, &[Verified, Rejected, Failed, Discarded]),
        (Inbound, Verified, &[Delivered, Rejected, Failed, Discarded]),
        (Inbound, Delivered, &[]),
        (Inbound, Rejected, &[Discarded]),
        (Inbound, Failed, &[Discarded]),
        (Inbound, Discarded, &[]),
    ]
};

/// True if [`TRANSITIONS`] allows a message of `direction` to move from `from` to `to`.
pub fn is_allowed(direction: Direction, from: State, to: State) -> bool {
    TRANSITIONS
        .iter()
        .any(|(d, f, next)| *d == direction && *f == from && next.contains(&to))
}

/// What asking to move a message from `current` to `to` amounts to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Step {
    /// Allowed by the table.
    Move,
    /// `to` is the current state.
    AlreadyThere,
    /// Both are on the happy path and `current` is further along: a late, harmless report.
    AlreadyPast,
    /// Not allowed.
    Refused,
}

/// Classifies a requested move.
pub(crate) fn step(direction: Direction, current: State, to: State) -> Step {
    if current == to {
        return Step::AlreadyThere;
    }
    if is_allowed(direction, current, to) {
        return Step::Move;
    }
    let path = direction.happy_path();
    let rank = |s: State| path.iter().position(|p| *p == s);
    match (rank(current), rank(to)) {
        (Some(c), Some(t)) if c > t => Step::AlreadyPast,
        _ => Step::Refused,
    }
}

/// Where a replay takes a message parked after being in `parked_from`: back to the state before
/// the stage that failed, so the hub runs that stage again. Outbound messages parked after they
/// reached the partner queue (or waited for its receipt) go back to `signed`, because the way to send them again is to
/// publish the signed bytes to the partner queue again.
pub fn replay_target(direction: Direction, parked_from: State) -> State {
    match (direction, parked_from) {
        (Direction::Outbound, State::Queued | State::Sent | State::AwaitingAck) => State::Signed,
        (_, state) => state,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip() {
        for state in State::ALL {
            assert_eq!(state.as_str().parse::<State>().ok(), Some(state));
            assert_eq!(state.to_string(), state.as_str());
        }
        for direction in Direction::ALL {
            assert_eq!(
                direction.as_str().parse::<Direction>().ok(),
                Some(direction)
            );
        }
        let err = "Delivered"
            .parse::<State>()
            .expect_err("names are lower case");
        assert_eq!(err.to_string(), "unknown journal state \"Delivered\"");
        assert!("in".parse::<Direction>().is_err());
    }

    #[test]
    fn table_has_one_row_per_state_of_each_direction_and_stays_in_it() {
        for direction in Direction::ALL {
            for state in direction.states() {
                let rows: Vec<_> = TRANSITIONS
                    .iter()
                    .filter(|(d, f, _)| *d == direction && *f == state)
                    .collect();
                assert_eq!(rows.len(), 1, "{direction} {state}");
            }
        }
        for (direction, from, next) in TRANSITIONS {
            assert!(from.applies_to(*direction), "{direction} {from}");
            for to in *next {
                assert!(to.applies_to(*direction), "{direction} {from} -> {to}");
                assert_ne!(from, to, "self moves are no-ops, not table entries");
            }
        }
        assert_eq!(
            Direction::Inbound.states().count() + Direction::Outbound.states().count(),
            TRANSITIONS.len()
        );
    }

    /// The table written out as every (direction, from, to) pair that is allowed; every other pair
    /// of states of the direction must be refused, a no-op or a late report.
    #[test]
    fn every_pair_of_states_is_classified_as_the_table_says() {
        use Direction::{Inbound, Outbound};
        use State::*;
        let allowed: &[(Direction, State, State)] = &[
            (Outbound, Received, Signed),
            (Outbound, Received, Failed),
            (Outbound, Received, Discarded),
            (Outbound, Signed, Queued),
            (Outbound, Signed, Sent),
            (Outbound, Signed, Acknowledged),
            (Outbound, Signed, Rejected),
            (Outbound, Signed, Failed),
            (Outbound, Signed, Discarded),
            (Outbound, Queued, Sent),
            (Outbound, Queued, AwaitingAck),
            (Outbound, Queued, Acknowledged),
            (Outbound, Queued, Rejected),
            (Outbound, Queued, Failed),
            (Outbound, Queued, Discarded),
            (Outbound, Sent, AwaitingAck),
            (Outbound, Sent, Acknowledged),
            (Outbound, Sent, Rejected),
            (Outbound, Sent, Failed),
            (Outbound, Sent, Discarded),
            (Outbound, AwaitingAck, Acknowledged),
            (Outbound, AwaitingAck, Rejected),
            (Outbound, AwaitingAck, Failed),
            (Outbound, AwaitingAck, Discarded),
            (Outbound, Rejected, Discarded),
            (Outbound, Failed, Discarded),
            (Inbound, Received, Verified),
            (Inbound, Received, Rejected),
            (Inbound, Received, Failed),
            (Inbound, Received, Discarded),
            (Inbound, Verified, Delivered),
            (Inbound, Verified, Rejected),
            (Inbound, Verified, Failed),
            (Inbound, Verified, Discarded),
            (Inbound, Rejected, Discarded),
            (Inbound, Failed, Discarded),
        ];
        let late: &[(Direction, State, State)] = &[
            (Outbound, Signed, Received),
            (Outbound, Queued, Received),
            (Outbound, Queued, Signed),
            (Outbound, Sent, Received),
            (Outbound, Sent, Signed),
            (Outbound, Sent, Queued),
            (Outbound, AwaitingAck, Received),
            (Outbound, AwaitingAck, Signed),
            (Outbound, AwaitingAck, Queued),
            (Outbound, AwaitingAck, Sent),
            (Outbound, Acknowledged, AwaitingAck),
            (Outbound, Acknowledged, Received),
            (Outbound, Acknowledged, Signed),
            (Outbound, Acknowledged, Queued),
            (Outbound, Acknowledged, Sent),
            (Inbound, Verified, Received),
            (Inbound, Delivered, Received),
            (Inbound, Delivered, Verified),
        ];
        let mut moves = 0;
        for direction in Direction::ALL {
            for from in direction.states() {
                for to in direction.states() {
                    let expected = if from == to {
                        Step::AlreadyThere
                    } else if allowed.contains(&(direction, from, to)) {
                        moves += 1;
                        Step::Move
                    } else if late.contains(&(direction, from, to)) {
                        Step::AlreadyPast
                    } else {
                        Step::Refused
                    };
                    assert_eq!(
                        step(direction, from, to),
                        expected,
                        "{direction} {from} -> {to}"
                    );
                    assert_eq!(is_allowed(direction, from, to), expected == Step::Move);
                }
            }
        }
        assert_eq!(moves, allowed.len());
    }

    #[test]
    fn contradictions_are_refused() {
        use Direction::{Inbound, Outbound};
        use State::*;
        for (direction, from, to) in [
            (Inbound, Failed, Delivered),
            (Inbound, Rejected, Delivered),
            (Inbound, Delivered, Failed),
            (Inbound, Delivered, Rejected),
            (Inbound, Received, Delivered),
            (Outbound, Acknowledged, Failed),
            (Outbound, Acknowledged, Rejected),
            (Outbound, Rejected, Acknowledged),
            (Outbound, Failed, Acknowledged),
            (Outbound, Failed, Sent),
            (Outbound, Received, Queued),
            (Outbound, Signed, AwaitingAck),
            (Outbound, Rejected, AwaitingAck),
            (Outbound, Discarded, Received),
        ] {
            assert_eq!(
                step(direction, from, to),
                Step::Refused,
                "{direction} {from} -> {to}"
            );
        }
    }

    #[test]
    fn parked_and_done_states_have_no_way_forward_but_discard() {
        for direction in Direction::ALL {
            for state in direction.states() {
                let next: Vec<_> = direction
                    .states()
                    .filter(|to| is_allowed(direction, state, *to))
                    .collect();
                if state.is_done() || state == State::Discarded {
                    assert!(next.is_empty(), "{direction} {state}: {next:?}");
                } else if state.is_parked() {
                    assert_eq!(next, [State::Discarded], "{direction} {state}");
                } else {
                    assert!(next.contains(&State::Failed), "{direction} {state}");
                    assert!(next.contains(&State::Discarded), "{direction} {state}");
                }
            }
        }
    }

    #[test]
    fn replay_goes_back_to_the_stage_that_failed() {
        use Direction::{Inbound, Outbound};
        use State::*;
        assert_eq!(replay_target(Outbound, Received), Received);
        assert_eq!(replay_target(Outbound, Signed), Signed);
        assert_eq!(replay_target(Outbound, Queued), Signed);
        assert_eq!(replay_target(Outbound, Sent), Signed);
        assert_eq!(replay_target(Outbound, AwaitingAck), Signed);
        assert_eq!(replay_target(Inbound, Received), Received);
        assert_eq!(replay_target(Inbound, Verified), Verified);
        // Every state a message can be parked from has a target that can move on again.
        for direction in Direction::ALL {
            for from in direction
                .states()
                .filter(|s| !s.is_parked() && !s.is_done())
            {
                let target = replay_target(direction, from);
                assert!(
                    !target.is_parked() && !target.is_done(),
                    "{direction} {from}"
                );
                assert!(target.applies_to(direction));
            }
        }
    }

    #[test]
    fn entry_states() {
        let entries = |d: Direction| d.states().filter(|s| s.is_entry(d)).collect::<Vec<_>>();
        assert_eq!(
            entries(Direction::Outbound),
            [State::Received, State::Signed]
        );
        assert_eq!(
            entries(Direction::Inbound),
            [State::Received, State::Verified]
        );
    }
}
