//! A property test of the journal: random sequences of every operation the `Journal` trait offers
//! (record, record_signed, transition to any state, transition_signed, bump_attempts, replay,
//! discard, claim_overdue), run on both backends (a SQLite file in a temporary folder, PostgreSQL
//! in a schema of its own) and checked after every operation
//!
//! - against a model of the journal: each outcome, record and history exactly as predicted;
//! - against the rules any history must keep, whatever the model says: it starts with the record
//!   in an entry state, each row starts where the one before ended and the last ends in the
//!   message's state, moves are ones [`TRANSITIONS`](asw_journal::TRANSITIONS) allows, only a
//!   replay leaves a parked state and it goes where [`replay_target`] says; the bytes never change
//!   once recorded, except outbound once, at the move to `signed`;
//!
//! and at the end every message, driven along the happy path, ends done or parked, and every
//! parked one, replayed and driven again, ends done.

mod common;

use std::collections::BTreeMap;

use asw_journal::{
    Conflict, Direction, Event, Field, Journal, JournalError, MessageRecord, MessageSummary,
    Overdue, OverdueQuery, PostgresOptions, Reason, Recorded, Replay, SqliteJournal, SqliteOptions,
    State, Transition, TransitionRecord, is_allowed, replay_target,
};
use asw_model::{DocumentKind, Header};
use common::pg::TestSchema;
use proptest::prelude::*;
use proptest::test_runner::Config;
use sha2::{Digest, Sha256};
use time::format_description::well_known::Rfc3339;
use time::macros::datetime;
use time::{Duration, OffsetDateTime};
use uuid::Uuid;

/// Messages per case: enough for claims to pick among several, few enough that each gets far.
const MESSAGES: usize = 4;

/// The operator of replays and discards.
const OPERATOR: &str = "ops";

/// One operation, on message `m` of the case where it names one.
#[derive(Debug, Clone)]
enum Op {
    /// `record` in `state`, with header variant `header` and bytes variant `bytes`.
    Record {
        m: usize,
        state: State,
        header: u8,
        bytes: u8,
    },
    /// `record_signed` (outbound messages only; a no-op on inbound ones).
    RecordSigned {
        m: usize,
        header: u8,
        bytes: u8,
        signature: u8,
    },
    /// `transition` to a state, with a reason or none.
    Transition { m: usize, to: Target, reason: bool },
    /// The next step on the happy path, as the hub takes it (`transition_signed` from outbound
    /// `received`, `transition` otherwise); nothing for a message done, parked or not recorded.
    Forward { m: usize },
    /// `transition_signed` with signature variant `signature`.
    TransitionSigned { m: usize, signature: u8 },
    /// `bump_attempts`.
    BumpAttempts { m: usize },
    /// `replay`, by the operator or with a blank name (refused).
    Replay { m: usize, operator: bool },
    /// `discard`, by the operator or with a blank name (refused).
    Discard { m: usize, operator: bool },
    /// `claim_overdue` with this ack timeout (seconds), resend bound, limit, and ACDD among the
    /// kinds or not (e-Form D always is).
    ClaimOverdue {
        timeout: i64,
        max_resends: u32,
        limit: u32,
        acdd: bool,
    },
    /// These operations inside one `batch` (their writes share commits on SQLite).
    Batch(Vec<Op>),
}

/// The state a [`Op::Transition`] asks for.
#[derive(Debug, Clone, Copy)]
enum Target {
    /// The state of this index among those of the message's direction (modulo their number).
    Own(usize),
    /// Any state, perhaps of the other direction (an invalid request).
    Any(State),
}

/// A case: the messages (direction and kind), how each is first recorded (most are, at the
/// start; later records are duplicates or conflicts), and the operations, each after a clock
/// advance of under 3 seconds (often whole seconds, 0 among them: the same time as the one
/// before; sometimes with nanoseconds, which the journal cuts to microseconds).
#[derive(Debug, Clone)]
struct Case {
    messages: Vec<(Direction, DocumentKind)>,
    steps: Vec<(Duration, Op)>,
}

fn advance() -> impl Strategy<Value = Duration> {
    (
        0..3i64,
        prop_oneof![3 => Just(0i64), 1 => 0..1_000_000_000i64],
    )
        .prop_map(|(seconds, nanos)| Duration::seconds(seconds) + Duration::nanoseconds(nanos))
}

/// How a message is first recorded, if at the start.
fn first_record(m: usize) -> impl Strategy<Value = Option<Op>> {
    proptest::option::weighted(
        0.85,
        prop_oneof![
            3 => Just(Op::Record { m, state: State::Received, header: 0, bytes: 0 }),
            1 => Just(Op::Record { m, state: State::Signed, header: 0, bytes: 0 }),
            1 => Just(Op::Record { m, state: State::Verified, header: 0, bytes: 0 }),
            1 => Just(Op::RecordSigned { m, header: 0, bytes: 0, signature: 0 }),
        ],
    )
}

fn any_state() -> impl Strategy<Value = State> {
    proptest::sample::select(State::ALL.to_vec())
}

/// An operation, sometimes a batch of a few.
fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        9 => single_op(),
        1 => proptest::collection::vec(single_op(), 1..5).prop_map(Op::Batch),
    ]
}

fn single_op() -> impl Strategy<Value = Op> {
    let m = 0..MESSAGES;
    let entry = prop_oneof![
        3 => Just(State::Received),
        1 => Just(State::Signed),
        1 => Just(State::Verified),
        1 => any_state(),
    ];
    prop_oneof![
        3 => (m.clone(), entry, 0..2u8, 0..2u8).prop_map(|(m, state, header, bytes)| Op::Record {
            m,
            state,
            header,
            bytes
        }),
        2 => (m.clone(), 0..2u8, 0..2u8, 0..2u8).prop_map(|(m, header, bytes, signature)| {
            Op::RecordSigned { m, header, bytes, signature }
        }),
        6 => (m.clone(), 0..8usize, any::<bool>())
            .prop_map(|(m, to, reason)| Op::Transition { m, to: Target::Own(to), reason }),
        1 => (m.clone(), any_state(), any::<bool>())
            .prop_map(|(m, to, reason)| Op::Transition { m, to: Target::Any(to), reason }),
        6 => m.clone().prop_map(|m| Op::Forward { m }),
        2 => (m.clone(), 0..2u8).prop_map(|(m, signature)| Op::TransitionSigned { m, signature }),
        1 => m.clone().prop_map(|m| Op::BumpAttempts { m }),
        2 => (m.clone(), proptest::bool::weighted(0.9))
            .prop_map(|(m, operator)| Op::Replay { m, operator }),
        1 => (m, proptest::bool::weighted(0.9))
            .prop_map(|(m, operator)| Op::Discard { m, operator }),
        5 => (0..6i64, 0..3u32, prop_oneof![3 => Just(1u32), 1 => 2..4u32], any::<bool>()).prop_map(
            |(timeout, max_resends, limit, acdd)| Op::ClaimOverdue {
                timeout,
                max_resends,
                limit,
                acdd
            }
        ),
    ]
}

fn case() -> impl Strategy<Value = Case> {
    let message = (
        proptest::sample::select(Direction::ALL.to_vec()),
        proptest::sample::select(vec![
            DocumentKind::FormD,
            DocumentKind::Acdd,
            DocumentKind::FormDAck,
        ]),
    );
    let first: Vec<_> = (0..MESSAGES).map(first_record).collect();
    (
        proptest::collection::vec(message, MESSAGES),
        first,
        proptest::collection::vec((advance(), op()), 1..64),
    )
        .prop_map(|(messages, first, steps)| Case {
            messages,
            steps: first
                .into_iter()
                .flatten()
                .map(|op| (Duration::ZERO, op))
                .chain(steps)
                .collect(),
        })
}

/// What the model expects a message's history row to be (its `seq` aside).
#[derive(Debug, Clone, PartialEq, Eq)]
struct Row {
    event: Event,
    from: Option<State>,
    to: State,
    at: OffsetDateTime,
    reason: Option<Reason>,
    actor: String,
}

impl From<&TransitionRecord> for Row {
    fn from(r: &TransitionRecord) -> Row {
        Row {
            event: r.event,
            from: r.from,
            to: r.to,
            at: r.at,
            reason: r.reason.clone(),
            actor: r.actor.clone(),
        }
    }
}

/// The model of one recorded message.
#[derive(Debug, Clone)]
struct Model {
    summary: MessageSummary,
    bytes: Vec<u8>,
    resends: u32,
    history: Vec<Row>,
}

impl Model {
    fn record(&self) -> MessageRecord {
        MessageRecord {
            summary: self.summary.clone(),
            bytes: self.bytes.clone(),
        }
    }
}

/// One case being run: the journal, the messages, and the model of what the journal holds.
struct Run<'a> {
    journal: &'a dyn Journal,
    /// The hub's actor name on this journal.
    actor: &'static str,
    /// Direction and header (as first meant) of each message of the case.
    messages: Vec<(Direction, Header)>,
    models: BTreeMap<(Direction, Uuid), Model>,
    now: OffsetDateTime,
}

type Checked = Result<(), TestCaseError>;

/// A time as the journal keeps it: cut to microseconds.
fn kept(at: OffsetDateTime) -> OffsetDateTime {
    at.replace_microsecond(at.microsecond())
        .expect("a microsecond of the time itself")
}

fn digest(bytes: &[u8]) -> [u8; 32] {
    Sha256::digest(bytes).into()
}

fn reason_of(code: &str) -> Reason {
    Reason::new(code, format!("{code} in a random sequence"))
}

/// What the table says asking a message in `from` to move to `to` gives.
fn expected_move(direction: Direction, from: State, to: State) -> Transition {
    let rank = |s: State| direction.happy_path().iter().position(|p| *p == s);
    if from == to {
        Transition::AlreadyThere
    } else if is_allowed(direction, from, to) {
        Transition::Moved { from }
    } else if matches!((rank(from), rank(to)), (Some(f), Some(t)) if f > t) {
        Transition::AlreadyPast { current: from }
    } else {
        Transition::Refused { current: from }
    }
}

fn is_invalid<T: std::fmt::Debug>(got: &Result<T, JournalError>) -> Checked {
    prop_assert!(
        matches!(got, Err(JournalError::InvalidRequest { .. })),
        "expected an invalid request, got {got:?}"
    );
    Ok(())
}

fn is_not_found<T: std::fmt::Debug>(got: &Result<T, JournalError>) -> Checked {
    prop_assert!(
        matches!(got, Err(JournalError::NotFound { .. })),
        "expected not found, got {got:?}"
    );
    Ok(())
}

impl Run<'_> {
    fn header(&self, m: usize, variant: u8) -> (Direction, Header) {
        let (direction, header) = &self.messages[m];
        let header = Header {
            version: format!("1.{variant}"),
            ..header.clone()
        };
        (*direction, header)
    }

    fn bytes(header: &Header, variant: u8) -> Vec<u8> {
        format!(
            "<asw:Message id=\"{}\" v=\"{variant}\"/>",
            header.message_id
        )
        .into_bytes()
    }

    fn signed(id: Uuid, variant: u8) -> Vec<u8> {
        format!("<asw:Message id=\"{id}\"><ds:Signature n=\"{variant}\"/></asw:Message>")
            .into_bytes()
    }

    /// A new message's model, recorded at `now` with `steps` (the record, then moves).
    fn insert(
        &mut self,
        direction: Direction,
        header: &Header,
        original: &[u8],
        stored: &[u8],
        steps: &[(Option<State>, State)],
    ) {
        let state = steps.last().map_or(State::Received, |s| s.1);
        let history = steps
            .iter()
            .map(|&(from, to)| Row {
                event: if from.is_none() {
                    Event::Recorded
                } else {
                    Event::Moved
                },
                from,
                to,
                at: kept(self.now),
                reason: None,
                actor: self.actor.to_owned(),
            })
            .collect();
        let model = Model {
            summary: MessageSummary {
                direction,
                header: header.clone(),
                state,
                parked_from: None,
                attempts: 0,
                reason: None,
                first_seen: kept(self.now),
                updated_at: kept(self.now),
                digest: digest(original),
                transport_ref: None,
            },
            bytes: stored.to_vec(),
            resends: 0,
            history,
        };
        self.models.insert((direction, header.message_id), model);
    }

    /// What a second record of a message gives.
    fn again(model: &Model, header: &Header, original: &[u8]) -> Recorded {
        let mut fields = Vec::new();
        if model.summary.digest != digest(original) {
            fields.push(Field::Bytes);
        }
        if model.summary.header.version != header.version {
            fields.push(Field::Version);
        }
        if fields.is_empty() {
            Recorded::Existing(Box::new(model.record()))
        } else {
            Recorded::Conflict(Box::new(Conflict {
                existing: model.record(),
                fields,
            }))
        }
    }

    /// Applies a move the table allows to the model.
    fn apply_move(
        &mut self,
        key: (Direction, Uuid),
        to: State,
        event: Event,
        reason: Option<Reason>,
        actor: &str,
        bytes: Option<Vec<u8>>,
    ) {
        let now = kept(self.now);
        let model = self
            .models
            .get_mut(&key)
            .expect("moved messages are modelled");
        let from = model.summary.state;
        if to.is_parked() && !from.is_parked() {
            model.summary.parked_from = Some(from);
        }
        model.summary.state = to;
        model.summary.attempts = 0;
        model.summary.reason = reason.clone();
        model.summary.updated_at = now;
        if let Some(bytes) = bytes {
            model.bytes = bytes;
        }
        model.history.push(Row {
            event,
            from: Some(from),
            to,
            at: now,
            reason,
            actor: actor.to_owned(),
        });
    }

    /// Runs one operation and checks its outcome against the model; returns the outcome of a
    /// move, for the caller that drives messages on.
    fn apply(&mut self, op: &Op) -> Result<Option<Transition>, TestCaseError> {
        let journal = self.journal;
        let now = self.now;
        let kept = kept(now);
        match *op {
            Op::Record {
                m,
                state,
                header,
                bytes,
            } => {
                let (direction, header) = self.header(m, header);
                let bytes = Run::bytes(&header, bytes);
                let got = journal.record(direction, &header, &bytes, state, now);
                if !state.is_entry(direction) {
                    is_invalid(&got)?;
                    return Ok(None);
                }
                let got = got.map_err(|e| TestCaseError::fail(format!("record: {e:?}")))?;
                match self.models.get(&(direction, header.message_id)) {
                    None => {
                        prop_assert_eq!(got, Recorded::New);
                        self.insert(direction, &header, &bytes, &bytes, &[(None, state)]);
                    }
                    Some(model) => prop_assert_eq!(got, Run::again(model, &header, &bytes)),
                }
            }
            Op::RecordSigned {
                m,
                header,
                bytes,
                signature,
            } => {
                let (direction, header) = self.header(m, header);
                if direction != Direction::Outbound {
                    return Ok(None);
                }
                let original = Run::bytes(&header, bytes);
                let signed = Run::signed(header.message_id, signature);
                let got = journal
                    .record_signed(&header, &original, &signed, now)
                    .map_err(|e| TestCaseError::fail(format!("record_signed: {e:?}")))?;
                match self.models.get(&(direction, header.message_id)) {
                    None => {
                        prop_assert_eq!(got, Recorded::New);
                        self.insert(
                            direction,
                            &header,
                            &original,
                            &signed,
                            &[
                                (None, State::Received),
                                (Some(State::Received), State::Signed),
                            ],
                        );
                    }
                    Some(model) => prop_assert_eq!(got, Run::again(model, &header, &original)),
                }
            }
            Op::Batch(ref ops) => {
                let mut outcome: Checked = Ok(());
                journal
                    .batch(&mut || {
                        for op in ops {
                            if outcome.is_ok() {
                                outcome = self.apply(op).map(|_| ());
                            }
                        }
                    })
                    .map_err(|e| TestCaseError::fail(format!("batch: {e:?}")))?;
                outcome?;
            }
            Op::Forward { m } => {
                return match self.forward(m) {
                    Some(next) => self.apply(&next),
                    None => Ok(None),
                };
            }
            Op::Transition { m, to, reason } => {
                let (direction, header) = self.header(m, 0);
                let to = match to {
                    Target::Own(i) => {
                        let states: Vec<State> = direction.states().collect();
                        states[i % states.len()]
                    }
                    Target::Any(state) => state,
                };
                let reason = reason.then(|| reason_of("MOVE"));
                let got =
                    journal.transition(direction, header.message_id, to, reason.as_ref(), now);
                if !to.applies_to(direction)
                    || (direction, to) == (Direction::Outbound, State::Signed)
                {
                    is_invalid(&got)?;
                    return Ok(None);
                }
                let key = (direction, header.message_id);
                let Some(model) = self.models.get(&key) else {
                    is_not_found(&got)?;
                    return Ok(None);
                };
                let expected = expected_move(direction, model.summary.state, to);
                let got = got.map_err(|e| TestCaseError::fail(format!("transition: {e:?}")))?;
                prop_assert_eq!(got, expected);
                if matches!(expected, Transition::Moved { .. }) {
                    let actor = self.actor;
                    self.apply_move(key, to, Event::Moved, reason, actor, None);
                }
                return Ok(Some(got));
            }
            Op::TransitionSigned { m, signature } => {
                let (_, header) = self.header(m, 0);
                let signed = Run::signed(header.message_id, signature + 2);
                let got = journal.transition_signed(header.message_id, &signed, now);
                let key = (Direction::Outbound, header.message_id);
                let Some(model) = self.models.get(&key) else {
                    is_not_found(&got)?;
                    return Ok(None);
                };
                let expected =
                    expected_move(Direction::Outbound, model.summary.state, State::Signed);
                let got =
                    got.map_err(|e| TestCaseError::fail(format!("transition_signed: {e:?}")))?;
                prop_assert_eq!(got, expected);
                if matches!(expected, Transition::Moved { .. }) {
                    let actor = self.actor;
                    self.apply_move(key, State::Signed, Event::Moved, None, actor, Some(signed));
                }
                return Ok(Some(got));
            }
            Op::BumpAttempts { m } => {
                let (direction, header) = self.header(m, 0);
                let reason = reason_of("RETRY");
                let got = journal.bump_attempts(direction, header.message_id, &reason, now);
                let Some(model) = self.models.get_mut(&(direction, header.message_id)) else {
                    is_not_found(&got)?;
                    return Ok(None);
                };
                model.summary.attempts += 1;
                model.summary.reason = Some(reason);
                model.summary.updated_at = kept;
                let got = got.map_err(|e| TestCaseError::fail(format!("bump_attempts: {e:?}")))?;
                prop_assert_eq!(got, model.summary.attempts);
            }
            Op::Replay { m, operator } => {
                let (direction, header) = self.header(m, 0);
                let actor = if operator { OPERATOR } else { " " };
                let got = journal.replay(direction, header.message_id, actor, now);
                if !operator {
                    return is_invalid(&got).map(|()| None);
                }
                let Some(model) = self.models.get_mut(&(direction, header.message_id)) else {
                    return is_not_found(&got).map(|()| None);
                };
                let current = model.summary.state;
                let got = got.map_err(|e| TestCaseError::fail(format!("replay: {e:?}")))?;
                if current.is_done() {
                    prop_assert_eq!(got, Replay::AlreadyDone { current });
                } else if !current.is_parked() {
                    prop_assert_eq!(got, Replay::NotParked { current });
                } else {
                    let parked_from = model.summary.parked_from;
                    prop_assert!(
                        parked_from.is_some(),
                        "parked without parked_from: {model:?}"
                    );
                    let to = replay_target(direction, parked_from.unwrap_or(current));
                    prop_assert_eq!(got, Replay::Replayed { from: current, to });
                    model.summary.state = to;
                    model.summary.parked_from = None;
                    model.summary.attempts = 0;
                    model.summary.reason = None;
                    model.summary.updated_at = kept;
                    model.history.push(Row {
                        event: Event::Replayed,
                        from: Some(current),
                        to,
                        at: kept,
                        reason: None,
                        actor: OPERATOR.to_owned(),
                    });
                }
            }
            Op::Discard { m, operator } => {
                let (direction, header) = self.header(m, 0);
                let actor = if operator { OPERATOR } else { "" };
                let reason = reason_of("DISCARD");
                let got = journal.discard(direction, header.message_id, actor, &reason, now);
                if !operator {
                    return is_invalid(&got).map(|()| None);
                }
                let key = (direction, header.message_id);
                let Some(model) = self.models.get(&key) else {
                    return is_not_found(&got).map(|()| None);
                };
                let expected = expected_move(direction, model.summary.state, State::Discarded);
                let got = got.map_err(|e| TestCaseError::fail(format!("discard: {e:?}")))?;
                prop_assert_eq!(got, expected);
                if matches!(expected, Transition::Moved { .. }) {
                    self.apply_move(
                        key,
                        State::Discarded,
                        Event::Discarded,
                        Some(reason),
                        OPERATOR,
                        None,
                    );
                }
            }
            Op::ClaimOverdue {
                timeout,
                max_resends,
                limit,
                acdd,
            } => {
                let mut kinds = vec![DocumentKind::FormD];
                if acdd {
                    kinds.push(DocumentKind::Acdd);
                }
                let query = OverdueQuery {
                    kinds,
                    due_before: now - Duration::seconds(timeout),
                    max_resends,
                    tracked_by_channel: Vec::new(),
                    limit,
                };
                let got = journal
                    .claim_overdue(&query, now)
                    .map_err(|e| TestCaseError::fail(format!("claim_overdue: {e:?}")))?;
                let expected = self.claim(&query);
                prop_assert_eq!(got, expected);
            }
        }
        Ok(None)
    }

    /// What `claim_overdue` claims, applied to the model.
    fn claim(&mut self, query: &OverdueQuery) -> Vec<Overdue> {
        let mut due: Vec<(OffsetDateTime, Uuid)> = self
            .models
            .iter()
            .filter(|(_, m)| {
                let s = &m.summary;
                s.direction == Direction::Outbound
                    && query.kinds.contains(&s.header.kind)
                    && s.updated_at <= kept(query.due_before)
                    && (matches!(s.state, State::Queued | State::Sent)
                        || (s.state == State::AwaitingAck && m.resends < query.max_resends))
            })
            .map(|(&(_, id), m)| (m.summary.updated_at, id))
            .collect();
        due.sort();
        due.truncate(usize::try_from(query.limit).unwrap_or(usize::MAX));
        let now = kept(self.now);
        let actor = self.actor;
        let mut claimed = Vec::new();
        for (since, id) in due {
            let model = self
                .models
                .get_mut(&(Direction::Outbound, id))
                .expect("claimed messages are modelled");
            let state = model.summary.state;
            let first = state != State::AwaitingAck;
            let resend = model.resends < query.max_resends;
            model.resends += u32::from(resend);
            let since_text = since.format(&Rfc3339).expect("RFC 3339");
            let moved = first.then(|| {
                Reason::new(
                    "ACK-OVERDUE",
                    format!("no receipt from the partner since {since_text} ({state})"),
                )
            });
            let resent = resend.then(|| {
                Reason::new(
                    "RESENT",
                    format!("resend {} of {}", model.resends, query.max_resends),
                )
            });
            if let Some(reason) = &moved {
                model.history.push(Row {
                    event: Event::Moved,
                    from: Some(state),
                    to: State::AwaitingAck,
                    at: now,
                    reason: Some(reason.clone()),
                    actor: actor.to_owned(),
                });
            }
            if let Some(reason) = &resent {
                model.history.push(Row {
                    event: Event::Resent,
                    from: Some(State::AwaitingAck),
                    to: State::AwaitingAck,
                    at: now,
                    reason: Some(reason.clone()),
                    actor: actor.to_owned(),
                });
            }
            model.summary.state = State::AwaitingAck;
            model.summary.attempts = 0;
            model.summary.reason = resent.clone().or(moved.clone());
            model.summary.updated_at = now;
            claimed.push(Overdue {
                record: model.record(),
                reported: first,
                resend,
                resends: model.resends,
                waiting_since: since,
            });
        }
        claimed
    }

    /// Checks every message of the case: what the journal holds is what the model says, and its
    /// history keeps the rules.
    fn check(&self, seen_bytes: &mut BTreeMap<(Direction, Uuid), Vec<Vec<u8>>>) -> Checked {
        for (direction, header) in &self.messages {
            for d in Direction::ALL {
                let key = (d, header.message_id);
                let got = self
                    .journal
                    .get(d, header.message_id)
                    .map_err(|e| TestCaseError::fail(format!("get: {e:?}")))?;
                let history = self
                    .journal
                    .history(d, header.message_id)
                    .map_err(|e| TestCaseError::fail(format!("history: {e:?}")))?;
                let Some(model) = self.models.get(&key) else {
                    prop_assert_eq!(got, None, "{} {} is not recorded", d, header.message_id);
                    prop_assert!(history.is_empty());
                    continue;
                };
                prop_assert_eq!(
                    d,
                    *direction,
                    "only the message's own direction is recorded"
                );
                let got = got.ok_or_else(|| TestCaseError::fail("a recorded message is gone"))?;
                prop_assert_eq!(&got, &model.record());
                let rows: Vec<Row> = history.iter().map(Row::from).collect();
                prop_assert_eq!(&rows, &model.history);
                keeps_the_rules(&got, &history)?;
                let bytes = seen_bytes.entry(key).or_default();
                if bytes.last() != Some(&got.bytes) {
                    bytes.push(got.bytes.clone());
                }
                // Outbound: the back-office bytes, then once the signed bytes; inbound: one.
                let versions = if d == Direction::Outbound { 2 } else { 1 };
                prop_assert!(
                    bytes.len() <= versions,
                    "the bytes of {} {} changed: {:?}",
                    d,
                    header.message_id,
                    bytes
                );
            }
        }
        Ok(())
    }

    /// The next step of message `m` on the happy path, if it is recorded and neither done nor
    /// parked.
    fn forward(&self, m: usize) -> Option<Op> {
        let (direction, header) = self.header(m, 0);
        let state = self
            .models
            .get(&(direction, header.message_id))?
            .summary
            .state;
        if state.is_done() || state.is_parked() {
            return None;
        }
        let to = |to: State| Op::Transition {
            m,
            to: Target::Any(to),
            reason: false,
        };
        Some(match (direction, state) {
            (Direction::Outbound, State::Received) => Op::TransitionSigned { m, signature: 0 },
            (Direction::Outbound, State::Signed) => to(State::Queued),
            (Direction::Outbound, State::Queued) => to(State::Sent),
            (Direction::Outbound, _) => to(State::Acknowledged),
            (Direction::Inbound, State::Received) => to(State::Verified),
            (Direction::Inbound, _) => to(State::Delivered),
        })
    }

    /// Moves a message along the happy path until it is done or parked; every step must move.
    fn drive(&mut self, m: usize, seen: &mut BTreeMap<(Direction, Uuid), Vec<Vec<u8>>>) -> Checked {
        let (direction, header) = self.header(m, 0);
        for _ in 0..direction.happy_path().len() {
            let Some(next) = self.forward(m) else {
                return Ok(());
            };
            let state = self.models[&(direction, header.message_id)].summary.state;
            self.now += Duration::seconds(1);
            let moved = self.apply(&next)?;
            prop_assert!(
                matches!(moved, Some(Transition::Moved { .. })),
                "{direction} message in {state} did not move on with {next:?}: {moved:?}"
            );
            self.check(seen)?;
        }
        let state = self.models[&(direction, header.message_id)].summary.state;
        prop_assert!(
            state.is_done() || state.is_parked(),
            "{direction} message stuck in {state}"
        );
        Ok(())
    }
}

/// The rules a message's history keeps, whatever the model says.
fn keeps_the_rules(record: &MessageRecord, history: &[TransitionRecord]) -> Checked {
    let direction = record.summary.direction;
    let first = history
        .first()
        .ok_or_else(|| TestCaseError::fail("a recorded message has no history"))?;
    prop_assert_eq!(first.event, Event::Recorded);
    prop_assert_eq!(first.from, None);
    prop_assert!(first.to.is_entry(direction), "recorded in {}", first.to);
    let mut state = first.to;
    let mut parked_from = None;
    for pair in history.windows(2) {
        prop_assert!(
            pair[0].seq < pair[1].seq,
            "history out of order: {history:?}"
        );
        prop_assert!(
            pair[0].at <= pair[1].at,
            "history goes back in time: {history:?}"
        );
    }
    for row in &history[1..] {
        prop_assert_eq!(
            row.from,
            Some(state),
            "history row does not start where the last ended"
        );
        match row.event {
            Event::Recorded => prop_assert!(false, "recorded twice: {history:?}"),
            Event::Moved | Event::Discarded => {
                prop_assert!(
                    is_allowed(direction, state, row.to),
                    "{direction} {state} -> {} is not in the table",
                    row.to
                );
                if row.event == Event::Discarded {
                    prop_assert_eq!(row.to, State::Discarded);
                }
                if row.to.is_parked() && !state.is_parked() {
                    parked_from = Some(state);
                }
            }
            Event::Replayed => {
                prop_assert!(state.is_parked(), "replayed from {state}");
                let from = parked_from.take();
                prop_assert_eq!(Some(row.to), from.map(|f| replay_target(direction, f)));
            }
            Event::Resent => {
                prop_assert_eq!(state, State::AwaitingAck);
                prop_assert_eq!(row.to, State::AwaitingAck);
            }
        }
        state = row.to;
    }
    prop_assert_eq!(state, record.summary.state, "the history ends elsewhere");
    prop_assert_eq!(
        record.summary.parked_from,
        parked_from.filter(|_| state.is_parked())
    );
    Ok(())
}

/// Runs a case on a journal whose hub actor is `actor`.
fn run(journal: &dyn Journal, actor: &'static str, case: &Case) -> Checked {
    let mut run = Run {
        journal,
        actor,
        messages: case
            .messages
            .iter()
            .map(|&(direction, kind)| (direction, common::header(kind, "TH", "VN")))
            .collect(),
        models: BTreeMap::new(),
        now: datetime!(2026-01-05 01:00:00 UTC),
    };
    let mut seen = BTreeMap::new();
    for (advance, op) in &case.steps {
        run.now += *advance;
        run.apply(op)?;
        run.check(&mut seen)?;
    }
    for m in 0..MESSAGES {
        run.drive(m, &mut seen)?;
    }
    // Every parked message, replayed, ends done.
    for m in 0..MESSAGES {
        let (direction, header) = run.header(m, 0);
        let Some(model) = run.models.get(&(direction, header.message_id)) else {
            continue;
        };
        if model.summary.state.is_parked() {
            run.now += Duration::seconds(1);
            run.apply(&Op::Replay { m, operator: true })?;
            run.check(&mut seen)?;
            run.drive(m, &mut seen)?;
            let state = run.models[&(direction, header.message_id)].summary.state;
            prop_assert!(
                state.is_done(),
                "replayed {direction} message ended in {state}"
            );
        }
    }
    Ok(())
}

/// 64 cases per backend (well under a minute for both), or `PROPTEST_CASES` of them for a
/// longer hunt.
fn config() -> Config {
    let default = Config::default();
    Config {
        cases: if std::env::var_os("PROPTEST_CASES").is_some() {
            default.cases
        } else {
            64
        },
        // Failures found are kept as ordinary tests, not in a regressions file.
        failure_persistence: None,
        max_shrink_iters: 2048,
        ..default
    }
}

proptest! {
    #![proptest_config(config())]

    #[test]
    fn random_operations_on_sqlite(case in case()) {
        let dir = tempfile::tempdir().expect("temporary folder");
        let journal = SqliteJournal::open(dir.path().join("journal.db")).expect("open");
        run(&journal, SqliteOptions::DEFAULT_ACTOR, &case)?;
    }

    #[test]
    fn random_operations_on_postgres(case in case()) {
        let schema = TestSchema::new();
        run(&schema.open(), PostgresOptions::DEFAULT_ACTOR, &case)?;
    }
}
