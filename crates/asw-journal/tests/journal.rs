//! The journal's behaviour through its public API: moves, duplicates, correlation, listing, replay
//! and discard. Every test here runs against both backends, as `on_sqlite::<test>` (an in-memory
//! SQLite journal) and `on_postgres::<test>` (a PostgreSQL journal in a schema of its own).

mod common;

use asw_journal::{
    ChannelSettlement, Conflict, Direction, Event, Field, Filter, Journal, JournalError,
    OverdueQuery, PostgresJournal, Reason, Recorded, Removal, Replay, SettlementOutcome,
    SqliteJournal, State, Transition, is_allowed,
};
use asw_model::DocumentKind;
use common::{answer, bytes_of, header, message_in, ms, received, step, t};
use uuid::Uuid;

/// Makes a `#[test]` of each behavioural test named, for each backend. A test function left out of
/// the list is dead code, which the lints refuse.
macro_rules! on_both_backends {
    ($($test:ident),* $(,)?) => {
        mod on_sqlite {
            $(
                #[test]
                fn $test() {
                    let journal = asw_journal::SqliteJournal::in_memory().expect("in-memory journal");
                    super::$test(&journal);
                }
            )*
        }

        mod on_postgres {
            $(
                #[test]
                fn $test() {
                    let schema = crate::common::pg::TestSchema::new();
                    super::$test(&schema.open());
                }
            )*
        }
    };
}

on_both_backends!(
    every_pair_of_states_moves_or_not_as_the_table_says,
    states_of_the_other_direction_and_unsigned_signing_are_invalid_requests,
    repeats_are_harmless,
    a_second_record_with_other_content_is_a_conflict_and_changes_nothing,
    outbound_keeps_the_first_signature_and_matches_redeliveries_by_the_back_office_bytes,
    record_signed_is_record_then_sign_in_one_step,
    only_entry_states_can_be_recorded,
    answers_find_their_original_and_the_original_its_answers,
    list_filters_by_each_field_and_orders_by_update_time,
    list_filters_by_reason_and_pages_with_an_offset,
    replay_takes_a_parked_message_back_to_the_stage_that_failed,
    replay_of_a_done_or_moving_message_changes_nothing,
    discard_is_journaled_with_operator_and_reason_and_can_be_replayed,
    attempts_count_retries_of_the_current_stage,
    unknown_messages_are_not_found_errors_and_reads_say_none,
    times_come_back_in_utc_cut_to_microseconds_and_created_at_exactly,
    the_journal_is_a_shareable_trait_object,
    a_write_probe_succeeds_and_writes_nothing,
    overdue_messages_are_reported_once_and_resent_within_the_bound,
    a_route_tracked_by_its_channel_is_never_claimed_overdue,
    a_late_receipt_still_acknowledges_an_awaiting_message,
    settled_messages_are_removed_with_their_history_and_the_others_kept,
    a_channel_reference_is_kept_with_a_move_and_finds_its_message,
    a_channel_settlement_is_kept_once_by_channel_and_reference,
);

/// What the table says asking to move from `from` to `to` gives.
fn expected(direction: Direction, from: State, to: State) -> Transition {
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

fn every_pair_of_states_moves_or_not_as_the_table_says(journal: &dyn Journal) {
    let mut pairs = 0;
    for direction in Direction::ALL {
        for from in direction.states() {
            for to in direction.states() {
                let h = message_in(journal, direction, from);
                let id = h.message_id;
                let before = journal.history(direction, id).expect("history");
                let outcome = step(journal, direction, id, to, t(100));
                let want = expected(direction, from, to);
                assert_eq!(outcome, want, "{direction} {from} -> {to}");
                let record = journal.get(direction, id).expect("get").expect("recorded");
                let after = journal.history(direction, id).expect("history");
                if let Transition::Moved { .. } = want {
                    assert_eq!(record.summary.state, to);
                    assert_eq!(after.len(), before.len() + 1);
                    let last = after.last().expect("a row");
                    assert_eq!(
                        (last.event, last.from, last.to, last.at),
                        (Event::Moved, Some(from), to, t(100))
                    );
                    assert_eq!(last.actor, "aswhub");
                } else {
                    assert_eq!(record.summary.state, from, "{direction} {from} -> {to}");
                    assert_eq!(after, before);
                }
                pairs += 1;
            }
        }
    }
    assert_eq!(pairs, 9 * 9 + 6 * 6);
}

fn states_of_the_other_direction_and_unsigned_signing_are_invalid_requests(journal: &dyn Journal) {
    let inbound = message_in(journal, Direction::Inbound, State::Received);
    let outbound = message_in(journal, Direction::Outbound, State::Received);
    for (direction, id, to) in [
        (Direction::Inbound, inbound.message_id, State::Signed),
        (Direction::Inbound, inbound.message_id, State::Acknowledged),
        (Direction::Outbound, outbound.message_id, State::Verified),
        (Direction::Outbound, outbound.message_id, State::Delivered),
        (Direction::Outbound, outbound.message_id, State::Signed),
    ] {
        let err = journal
            .transition(direction, id, to, None, t(1))
            .expect_err("invalid");
        assert!(
            matches!(err, JournalError::InvalidRequest { .. }),
            "{direction} {to}: {err:?}"
        );
        assert!(!err.is_transient());
    }
    let err = journal
        .transition(
            Direction::Outbound,
            outbound.message_id,
            State::Signed,
            None,
            t(1),
        )
        .expect_err("invalid");
    assert_eq!(
        err.to_string(),
        format!(
            "journal transition of outbound message {}: outbound messages become signed only \
             with their signed bytes",
            outbound.message_id
        )
    );
}

fn repeats_are_harmless(journal: &dyn Journal) {
    let h = header(DocumentKind::Acdd, "SG", "KH");
    let bytes = bytes_of(&h);
    let id = h.message_id;
    assert_eq!(
        journal
            .record(Direction::Inbound, &h, &bytes, State::Received, t(0))
            .expect("record"),
        Recorded::New
    );
    for _ in 0..2 {
        let again = journal
            .record(Direction::Inbound, &h, &bytes, State::Received, t(1))
            .expect("record again");
        let Recorded::Existing(existing) = again else {
            panic!("expected existing, got {again:?}");
        };
        assert_eq!(existing.summary.state, State::Received);
        assert_eq!(existing.summary.header, h);
        assert_eq!(existing.bytes, bytes);
        assert_eq!(existing.summary.first_seen, t(0));
    }
    for _ in 0..2 {
        assert!(
            journal
                .transition(Direction::Inbound, id, State::Verified, None, t(2))
                .expect("verify")
                .reached()
        );
    }
    assert_eq!(
        journal
            .transition(Direction::Inbound, id, State::Verified, None, t(3))
            .expect("verify again"),
        Transition::AlreadyThere
    );
    journal
        .transition(Direction::Inbound, id, State::Delivered, None, t(4))
        .expect("deliver");
    // A redelivery after a crash goes through the steps again: each says it is done already.
    let redelivered = journal
        .record(Direction::Inbound, &h, &bytes, State::Received, t(5))
        .expect("record after delivery");
    assert!(
        matches!(&redelivered, Recorded::Existing(r) if r.summary.state == State::Delivered),
        "{redelivered:?}"
    );
    assert_eq!(
        journal
            .transition(Direction::Inbound, id, State::Verified, None, t(6))
            .expect("late verify"),
        Transition::AlreadyPast {
            current: State::Delivered
        }
    );
    assert_eq!(
        journal
            .transition(Direction::Inbound, id, State::Delivered, None, t(6))
            .expect("deliver again"),
        Transition::AlreadyThere
    );
    let history = journal.history(Direction::Inbound, id).expect("history");
    let moves: Vec<_> = history.iter().map(|r| (r.event, r.from, r.to)).collect();
    assert_eq!(
        moves,
        [
            (Event::Recorded, None, State::Received),
            (Event::Moved, Some(State::Received), State::Verified),
            (Event::Moved, Some(State::Verified), State::Delivered),
        ]
    );
    let updated = journal
        .get(Direction::Inbound, id)
        .expect("get")
        .expect("recorded");
    assert_eq!(updated.summary.updated_at, t(4), "no-ops change nothing");
}

fn a_second_record_with_other_content_is_a_conflict_and_changes_nothing(journal: &dyn Journal) {
    let h = header(DocumentKind::FormD, "TH", "VN");
    let bytes = bytes_of(&h);
    journal
        .record(Direction::Inbound, &h, &bytes, State::Verified, t(0))
        .expect("record");

    let conflict = |header: &asw_model::Header, bytes: &[u8]| -> Conflict {
        match journal
            .record(Direction::Inbound, header, bytes, State::Received, t(1))
            .expect("record")
        {
            Recorded::Conflict(conflict) => *conflict,
            other => panic!("expected a conflict, got {other:?}"),
        }
    };
    let other_bytes = conflict(&h, b"<forged/>");
    assert_eq!(other_bytes.fields, [Field::Bytes]);
    assert_eq!(other_bytes.existing.bytes, bytes);
    assert_eq!(other_bytes.existing.summary.state, State::Verified);

    let claimed = asw_model::Header {
        sender: ms("MY"),
        ..h.clone()
    };
    assert_eq!(conflict(&claimed, &bytes).fields, [Field::Sender]);
    let everything = asw_model::Header {
        correlation_id: Some(Uuid::new_v4()),
        sender: ms("MY"),
        receiver: ms("SG"),
        kind: DocumentKind::Acdd,
        version: "2.0".into(),
        created_at: t(99),
        ..h.clone()
    };
    assert_eq!(
        conflict(&everything, b"other").fields,
        [
            Field::Bytes,
            Field::Sender,
            Field::Receiver,
            Field::Kind,
            Field::CorrelationId,
            Field::Version,
            Field::CreatedAt,
        ]
    );
    let stored = journal
        .get(Direction::Inbound, h.message_id)
        .expect("get")
        .expect("recorded");
    assert_eq!((stored.summary.header, stored.bytes), (h.clone(), bytes));
    assert_eq!(
        journal
            .history(Direction::Inbound, h.message_id)
            .expect("history")
            .len(),
        1
    );
    // The same id travelling the other way is another message.
    assert_eq!(
        journal
            .record(Direction::Outbound, &h, b"other", State::Received, t(2))
            .expect("record"),
        Recorded::New
    );
}

fn outbound_keeps_the_first_signature_and_matches_redeliveries_by_the_back_office_bytes(
    journal: &dyn Journal,
) {
    let h = header(DocumentKind::FormD, "VN", "TH");
    let original = bytes_of(&h);
    received(journal, Direction::Outbound, &h);
    let id = h.message_id;
    assert_eq!(
        journal
            .transition_signed(id, b"<signed>1</signed>", t(1))
            .expect("sign"),
        Transition::Moved {
            from: State::Received
        }
    );
    assert_eq!(
        journal
            .transition_signed(id, b"<signed>2</signed>", t(2))
            .expect("sign again"),
        Transition::AlreadyThere
    );
    let redelivered = journal
        .record(Direction::Outbound, &h, &original, State::Received, t(3))
        .expect("record again");
    let Recorded::Existing(existing) = redelivered else {
        panic!("expected existing, got {redelivered:?}");
    };
    assert_eq!(existing.summary.state, State::Signed);
    assert_eq!(existing.bytes, b"<signed>1</signed>");
    journal
        .transition(Direction::Outbound, id, State::Queued, None, t(4))
        .expect("queue");
    assert_eq!(
        journal
            .transition_signed(id, b"<signed>3</signed>", t(5))
            .expect("late sign"),
        Transition::AlreadyPast {
            current: State::Queued
        }
    );
    let stored = journal
        .get(Direction::Outbound, id)
        .expect("get")
        .expect("recorded");
    assert_eq!(stored.bytes, b"<signed>1</signed>");
    let sha256_of_empty_message = stored.summary.digest_hex();
    assert_eq!(sha256_of_empty_message.len(), 64);
}

fn record_signed_is_record_then_sign_in_one_step(journal: &dyn Journal) {
    let h = header(DocumentKind::FormD, "VN", "TH");
    let original = bytes_of(&h);
    let id = h.message_id;
    assert_eq!(
        journal
            .record_signed(&h, &original, b"<signed>1</signed>", t(1))
            .expect("record signed"),
        Recorded::New
    );
    let stored = journal
        .get(Direction::Outbound, id)
        .expect("get")
        .expect("recorded");
    assert_eq!(stored.summary.state, State::Signed);
    assert_eq!(stored.bytes, b"<signed>1</signed>");
    let history: Vec<(Event, Option<State>, State)> = journal
        .history(Direction::Outbound, id)
        .expect("history")
        .into_iter()
        .map(|t| (t.event, t.from, t.to))
        .collect();
    assert_eq!(
        history,
        vec![
            (Event::Recorded, None, State::Received),
            (Event::Moved, Some(State::Received), State::Signed),
        ]
    );
    // A redelivery of the same back-office bytes finds the first signature, signed again or not.
    let again = journal
        .record_signed(&h, &original, b"<signed>2</signed>", t(2))
        .expect("record signed again");
    let Recorded::Existing(existing) = again else {
        panic!("expected existing, got {again:?}");
    };
    assert_eq!(existing.bytes, b"<signed>1</signed>");
    let Recorded::Existing(existing) = journal
        .record(Direction::Outbound, &h, &original, State::Received, t(3))
        .expect("record again")
    else {
        panic!("a plain record of the back-office bytes must match");
    };
    assert_eq!(existing.summary.state, State::Signed);
    // Other back-office bytes under the same id: a conflict, and nothing changes.
    let other = journal
        .record_signed(&h, b"<other/>", b"<signed>3</signed>", t(4))
        .expect("record other");
    assert!(
        matches!(&other, Recorded::Conflict(c) if c.fields == vec![Field::Bytes]),
        "{other:?}"
    );
    let stored = journal
        .get(Direction::Outbound, id)
        .expect("get")
        .expect("recorded");
    assert_eq!(stored.bytes, b"<signed>1</signed>");
    assert_eq!(
        journal
            .history(Direction::Outbound, id)
            .expect("history")
            .len(),
        2
    );
}

fn only_entry_states_can_be_recorded(journal: &dyn Journal) {
    for (direction, state) in [
        (Direction::Outbound, State::Signed),
        (Direction::Inbound, State::Verified),
    ] {
        let h = header(DocumentKind::FormD, "TH", "VN");
        assert_eq!(
            journal
                .record(direction, &h, b"x", state, t(0))
                .expect("record"),
            Recorded::New
        );
    }
    for (direction, state) in [
        (Direction::Outbound, State::Queued),
        (Direction::Outbound, State::Acknowledged),
        (Direction::Outbound, State::Failed),
        (Direction::Inbound, State::Delivered),
        (Direction::Inbound, State::Signed),
        (Direction::Inbound, State::Rejected),
    ] {
        let h = header(DocumentKind::FormD, "TH", "VN");
        let err = journal
            .record(direction, &h, b"x", state, t(0))
            .expect_err("not an entry state");
        assert!(
            matches!(err, JournalError::InvalidRequest { .. }),
            "{err:?}"
        );
        assert!(journal.get(direction, h.message_id).expect("get").is_none());
    }
}

fn answers_find_their_original_and_the_original_its_answers(journal: &dyn Journal) {
    let formd = header(DocumentKind::FormD, "VN", "TH");
    received(journal, Direction::Outbound, &formd);
    let ack = answer(DocumentKind::FormDAck, &formd);
    journal
        .record(
            Direction::Inbound,
            &ack,
            &bytes_of(&ack),
            State::Received,
            t(5),
        )
        .expect("ack");
    let status = answer(DocumentKind::FormDStatus, &formd);
    journal
        .record(
            Direction::Inbound,
            &status,
            &bytes_of(&status),
            State::Verified,
            t(9),
        )
        .expect("status");
    let unrelated = header(DocumentKind::Acdd, "TH", "VN");
    received(journal, Direction::Inbound, &unrelated);

    let correlation_id = ack.correlation_id.expect("an answer");
    let original = journal
        .find_original(Direction::Outbound, correlation_id)
        .expect("lookup")
        .expect("found");
    assert_eq!(original.summary.header, formd);
    assert_eq!(original.bytes, bytes_of(&formd));
    assert!(
        journal
            .find_original(Direction::Inbound, correlation_id)
            .expect("lookup")
            .is_none(),
        "the original went out, not in"
    );
    assert!(
        journal
            .find_original(Direction::Outbound, Uuid::new_v4())
            .expect("lookup")
            .is_none()
    );

    let answers: Vec<_> = journal
        .answers(formd.message_id)
        .expect("answers")
        .into_iter()
        .map(|s| (s.direction, s.header.kind, s.message_id()))
        .collect();
    assert_eq!(
        answers,
        [
            (Direction::Inbound, DocumentKind::FormDAck, ack.message_id),
            (
                Direction::Inbound,
                DocumentKind::FormDStatus,
                status.message_id
            ),
        ]
    );
    assert!(
        journal
            .answers(unrelated.message_id)
            .expect("answers")
            .is_empty()
    );
}

fn list_filters_by_reason_and_pages_with_an_offset(journal: &dyn Journal) {
    let mut ids = Vec::new();
    for (n, reason) in [
        Reason::new("signature-invalid", "The signature of SG is 50% wrong"),
        Reason::new("schema-invalid", "Line 12: element CertificateNo_x missing"),
        Reason::new("schema-invalid", "Line 40: date out of range"),
    ]
    .iter()
    .enumerate()
    {
        let h = header(DocumentKind::FormD, "SG", "VN");
        let at = 10 * (n as i64 + 1);
        journal
            .record(
                Direction::Inbound,
                &h,
                &bytes_of(&h),
                State::Received,
                t(at),
            )
            .expect("record");
        journal
            .transition(
                Direction::Inbound,
                h.message_id,
                State::Rejected,
                Some(reason),
                t(at + 1),
            )
            .expect("reject");
        ids.push(h.message_id);
    }
    let listed = |filter: Filter| -> Vec<Uuid> {
        journal
            .list(&filter)
            .expect("list")
            .iter()
            .map(|s| s.message_id())
            .collect()
    };
    let code = |c: &str| Filter {
        reason_code: Some(c.into()),
        ..Filter::default()
    };
    let text = |t: &str| Filter {
        reason_text: Some(t.into()),
        ..Filter::default()
    };
    assert_eq!(listed(code("schema-invalid")), [ids[1], ids[2]]);
    assert_eq!(listed(code("schema")), Vec::<Uuid>::new());
    // Text in the reason, ignoring ASCII case; `%` and `_` match only themselves.
    assert_eq!(listed(text("LINE")), [ids[1], ids[2]]);
    assert_eq!(listed(text("50%")), [ids[0]]);
    assert_eq!(listed(text("0%")), [ids[0]]);
    assert_eq!(listed(text("o_x")), [ids[1]]);
    assert_eq!(listed(text("t_m")), Vec::<Uuid>::new());
    assert_eq!(listed(text("%")), [ids[0]]);
    // Pages: an offset into the ordered result.
    let page = |offset, limit| Filter {
        offset,
        limit,
        ..Filter::default()
    };
    assert_eq!(listed(page(0, 2)), [ids[0], ids[1]]);
    assert_eq!(listed(page(2, 2)), [ids[2]]);
    assert_eq!(listed(page(3, 2)), Vec::<Uuid>::new());
}

fn list_filters_by_each_field_and_orders_by_update_time(journal: &dyn Journal) {
    let add = |direction, kind, sender: &str, receiver: &str, at: i64| {
        let h = header(kind, sender, receiver);
        journal
            .record(direction, &h, &bytes_of(&h), State::Received, t(at))
            .expect("record");
        h.message_id
    };
    let a = add(Direction::Outbound, DocumentKind::FormD, "VN", "TH", 10);
    let b = add(Direction::Outbound, DocumentKind::Acdd, "VN", "SG", 20);
    let c = add(Direction::Inbound, DocumentKind::FormD, "MY", "VN", 30);
    let d = add(Direction::Inbound, DocumentKind::FormDAck, "TH", "VN", 40);
    journal
        .transition(Direction::Outbound, a, State::Failed, None, t(50))
        .expect("fail a");

    let ids = |filter: Filter| -> Vec<Uuid> {
        journal
            .list(&filter)
            .expect("list")
            .iter()
            .map(|s| s.message_id())
            .collect()
    };
    assert_eq!(ids(Filter::default()), [b, c, d, a]);
    assert_eq!(
        ids(Filter {
            newest_first: true,
            ..Filter::default()
        }),
        [a, d, c, b]
    );
    assert_eq!(
        ids(Filter {
            direction: Some(Direction::Inbound),
            ..Filter::default()
        }),
        [c, d]
    );
    assert_eq!(
        ids(Filter {
            kind: Some(DocumentKind::FormD),
            ..Filter::default()
        }),
        [c, a]
    );
    assert_eq!(
        ids(Filter {
            partner: Some(ms("TH")),
            ..Filter::default()
        }),
        [d, a],
        "TH as sender or receiver"
    );
    assert_eq!(
        ids(Filter {
            partner: Some(ms("BN")),
            ..Filter::default()
        }),
        Vec::<Uuid>::new()
    );
    assert_eq!(
        ids(Filter {
            state: Some(State::Failed),
            ..Filter::default()
        }),
        [a]
    );
    assert_eq!(
        ids(Filter {
            since: Some(t(20)),
            until: Some(t(40)),
            ..Filter::default()
        }),
        [b, c],
        "since inclusive, until exclusive"
    );
    assert_eq!(
        ids(Filter {
            limit: 2,
            ..Filter::default()
        }),
        [b, c]
    );
    assert_eq!(
        ids(Filter {
            direction: Some(Direction::Outbound),
            kind: Some(DocumentKind::FormD),
            partner: Some(ms("VN")),
            state: Some(State::Failed),
            since: Some(t(50)),
            until: Some(t(51)),
            reason_code: None,
            reason_text: None,
            newest_first: true,
            offset: 0,
            limit: 10,
        }),
        [a]
    );
    let summary = journal
        .list(&Filter {
            state: Some(State::Failed),
            ..Filter::default()
        })
        .expect("list")
        .remove(0);
    assert_eq!(summary.parked_from, Some(State::Received));
    assert_eq!(summary.first_seen, t(10));
    assert_eq!(summary.updated_at, t(50));
}

fn replay_takes_a_parked_message_back_to_the_stage_that_failed(journal: &dyn Journal) {
    let cases = [
        (
            Direction::Inbound,
            State::Received,
            State::Rejected,
            State::Received,
        ),
        (
            Direction::Inbound,
            State::Verified,
            State::Failed,
            State::Verified,
        ),
        (
            Direction::Outbound,
            State::Received,
            State::Failed,
            State::Received,
        ),
        (
            Direction::Outbound,
            State::Signed,
            State::Failed,
            State::Signed,
        ),
        (
            Direction::Outbound,
            State::Queued,
            State::Failed,
            State::Signed,
        ),
        (
            Direction::Outbound,
            State::Sent,
            State::Rejected,
            State::Signed,
        ),
    ];
    for (direction, stage, parked, back_to) in cases {
        let h = message_in(journal, direction, stage);
        let id = h.message_id;
        let why = Reason::new("partner-unreachable", "no answer for 3 days");
        journal
            .transition(direction, id, parked, Some(&why), t(50))
            .expect("park");
        let record = journal.get(direction, id).expect("get").expect("recorded");
        assert_eq!(record.summary.reason, Some(why.clone()));
        assert_eq!(record.summary.parked_from, Some(stage));
        // Parked means parked: the next stage is refused until an operator replays.
        for to in direction.states().filter(|s| !s.is_parked()) {
            assert_eq!(
                step(journal, direction, id, to, t(51)),
                Transition::Refused { current: parked },
                "{direction} {parked} -> {to}"
            );
        }
        assert_eq!(
            journal
                .replay(direction, id, "alice", t(60))
                .expect("replay"),
            Replay::Replayed {
                from: parked,
                to: back_to
            },
            "{direction} {stage} {parked}"
        );
        let record = journal.get(direction, id).expect("get").expect("recorded");
        assert_eq!(record.summary.state, back_to);
        assert_eq!(record.summary.parked_from, None);
        assert_eq!(record.summary.reason, None);
        let last = journal
            .history(direction, id)
            .expect("history")
            .pop()
            .expect("rows");
        assert_eq!(
            (last.event, last.from, last.to, last.at, last.actor.as_str()),
            (Event::Replayed, Some(parked), back_to, t(60), "alice")
        );
        // And then it can go on.
        let next = direction.happy_path()[direction
            .happy_path()
            .iter()
            .position(|s| *s == back_to)
            .expect("on the path")
            + 1];
        assert!(matches!(
            step(journal, direction, id, next, t(61)),
            Transition::Moved { .. }
        ));
    }
}

fn replay_of_a_done_or_moving_message_changes_nothing(journal: &dyn Journal) {
    for (direction, state, outcome) in [
        (
            Direction::Inbound,
            State::Delivered,
            Replay::AlreadyDone {
                current: State::Delivered,
            },
        ),
        (
            Direction::Outbound,
            State::Acknowledged,
            Replay::AlreadyDone {
                current: State::Acknowledged,
            },
        ),
        (
            Direction::Outbound,
            State::Queued,
            Replay::NotParked {
                current: State::Queued,
            },
        ),
        (
            Direction::Inbound,
            State::Verified,
            Replay::NotParked {
                current: State::Verified,
            },
        ),
    ] {
        let id = message_in(journal, direction, state).message_id;
        let before = journal.history(direction, id).expect("history");
        assert_eq!(
            journal
                .replay(direction, id, "alice", t(70))
                .expect("replay"),
            outcome
        );
        assert_eq!(journal.history(direction, id).expect("history"), before);
    }
}

fn discard_is_journaled_with_operator_and_reason_and_can_be_replayed(journal: &dyn Journal) {
    let id = message_in(journal, Direction::Inbound, State::Verified).message_id;
    journal
        .transition(
            Direction::Inbound,
            id,
            State::Failed,
            Some(&Reason::new("back-office-down", "exchange missing")),
            t(10),
        )
        .expect("fail");
    let why = Reason::new("operator", "sent again by the partner under a new id");
    assert_eq!(
        journal
            .discard(Direction::Inbound, id, "bob", &why, t(20))
            .expect("discard"),
        Transition::Moved {
            from: State::Failed
        }
    );
    assert_eq!(
        journal
            .discard(Direction::Inbound, id, "bob", &why, t(21))
            .expect("discard again"),
        Transition::AlreadyThere
    );
    let last = journal
        .history(Direction::Inbound, id)
        .expect("history")
        .pop()
        .expect("rows");
    assert_eq!(
        (
            last.event,
            last.from,
            last.to,
            last.at,
            last.actor.as_str(),
            last.reason
        ),
        (
            Event::Discarded,
            Some(State::Failed),
            State::Discarded,
            t(20),
            "bob",
            Some(why)
        )
    );
    // Discarded after failing in `verified`: a replay goes back there, not to `failed`.
    assert_eq!(
        journal
            .replay(Direction::Inbound, id, "carol", t(30))
            .expect("replay"),
        Replay::Replayed {
            from: State::Discarded,
            to: State::Verified
        }
    );

    let done = message_in(journal, Direction::Outbound, State::Acknowledged).message_id;
    assert_eq!(
        journal
            .discard(
                Direction::Outbound,
                done,
                "bob",
                &Reason::new("operator", "x"),
                t(40)
            )
            .expect("discard"),
        Transition::Refused {
            current: State::Acknowledged
        }
    );
    for actor in ["", "  "] {
        assert!(matches!(
            journal.discard(Direction::Inbound, id, actor, &Reason::new("o", "x"), t(41)),
            Err(JournalError::InvalidRequest { .. })
        ));
        assert!(matches!(
            journal.replay(Direction::Inbound, id, actor, t(41)),
            Err(JournalError::InvalidRequest { .. })
        ));
    }
}

fn attempts_count_retries_of_the_current_stage(journal: &dyn Journal) {
    let id = message_in(journal, Direction::Outbound, State::Signed).message_id;
    let busy = Reason::new("broker-unavailable", "connection refused");
    for n in 1..=3 {
        assert_eq!(
            journal
                .bump_attempts(Direction::Outbound, id, &busy, t(10 + n))
                .expect("bump"),
            n as u32
        );
    }
    let record = journal
        .get(Direction::Outbound, id)
        .expect("get")
        .expect("recorded");
    assert_eq!(record.summary.attempts, 3);
    assert_eq!(record.summary.reason, Some(busy));
    assert_eq!(record.summary.state, State::Signed);
    assert_eq!(record.summary.updated_at, t(13));
    journal
        .transition(Direction::Outbound, id, State::Queued, None, t(20))
        .expect("queue");
    let record = journal
        .get(Direction::Outbound, id)
        .expect("get")
        .expect("recorded");
    assert_eq!((record.summary.attempts, record.summary.reason), (0, None));
}

fn unknown_messages_are_not_found_errors_and_reads_say_none(journal: &dyn Journal) {
    let id = Uuid::new_v4();
    let reason = Reason::new("x", "y");
    let errors = [
        journal
            .transition(Direction::Inbound, id, State::Verified, None, t(0))
            .map(|_| ()),
        journal.transition_signed(id, b"x", t(0)).map(|_| ()),
        journal
            .bump_attempts(Direction::Inbound, id, &reason, t(0))
            .map(|_| ()),
        journal
            .replay(Direction::Inbound, id, "alice", t(0))
            .map(|_| ()),
        journal
            .discard(Direction::Inbound, id, "alice", &reason, t(0))
            .map(|_| ()),
    ];
    for result in errors {
        let err = result.expect_err("not found");
        assert!(matches!(err, JournalError::NotFound { .. }), "{err:?}");
        assert!(!err.is_transient());
    }
    let err = journal
        .transition(Direction::Inbound, id, State::Verified, None, t(0))
        .expect_err("not found");
    assert_eq!(
        err.to_string(),
        format!("journal transition: inbound message {id} is not in the journal")
    );
    assert!(journal.get(Direction::Inbound, id).expect("get").is_none());
    assert!(
        journal
            .history(Direction::Inbound, id)
            .expect("history")
            .is_empty()
    );
}

fn a_write_probe_succeeds_and_writes_nothing(journal: &dyn Journal) {
    journal.probe_write().expect("a writable journal");
    journal.probe_write().expect("again");
    assert!(
        journal.list(&Filter::default()).expect("list").is_empty(),
        "no message"
    );
    let h = header(DocumentKind::FormD, "TH", "VN");
    assert_eq!(
        journal
            .record(Direction::Inbound, &h, b"x", State::Received, t(0))
            .expect("record"),
        Recorded::New,
        "writes go on after probes"
    );
}

fn the_journal_is_a_shareable_trait_object(journal: &dyn Journal) {
    fn send_sync<T: Send + Sync + ?Sized>() {}
    send_sync::<dyn Journal>();
    send_sync::<SqliteJournal>();
    send_sync::<PostgresJournal>();
    let h = header(DocumentKind::FormD, "TH", "VN");
    let recorded = std::thread::scope(|scope| {
        scope
            .spawn(|| journal.record(Direction::Inbound, &h, b"x", State::Received, t(0)))
            .join()
            .expect("no panic")
    });
    assert_eq!(recorded.expect("record"), Recorded::New);
    assert!(
        journal
            .get(Direction::Inbound, h.message_id)
            .expect("get")
            .is_some()
    );
}

fn times_come_back_in_utc_cut_to_microseconds_and_created_at_exactly(journal: &dyn Journal) {
    use time::macros::{datetime, offset};
    let h = asw_model::Header {
        created_at: datetime!(2026-01-05 08:00:00.123456789 +07:00),
        ..header(DocumentKind::FormD, "TH", "VN")
    };
    let at = datetime!(2026-01-05 08:00:01.987654321 +07:00);
    journal
        .record(Direction::Inbound, &h, b"x", State::Received, at)
        .expect("record");
    let stored = journal
        .get(Direction::Inbound, h.message_id)
        .expect("get")
        .expect("recorded");
    let first_seen = stored.summary.first_seen;
    assert_eq!(first_seen, datetime!(2026-01-05 01:00:01.987654 UTC));
    assert_eq!(first_seen.offset(), offset!(UTC));
    // The sender's time is kept as sent, to the nanosecond and with its offset, so a resend
    // matches it.
    assert_eq!(stored.summary.header.created_at.nanosecond(), 123_456_789);
    assert_eq!(stored.summary.header.created_at.offset(), offset!(+7));
    assert!(matches!(
        journal
            .record(Direction::Inbound, &h, b"x", State::Received, at)
            .expect("record again"),
        Recorded::Existing(_)
    ));
    let history = journal
        .history(Direction::Inbound, h.message_id)
        .expect("history");
    assert_eq!(history[0].at, first_seen);
    // Filters compare at the same precision: the first microsecond after is not "until".
    let listed = |since, until| {
        journal
            .list(&Filter {
                since,
                until,
                ..Filter::default()
            })
            .expect("list")
            .len()
    };
    assert_eq!(listed(Some(at), None), 1);
    assert_eq!(listed(None, Some(at)), 0);
    assert_eq!(
        listed(None, Some(datetime!(2026-01-05 01:00:01.987655 UTC))),
        1
    );
    let err = journal
        .transition(
            Direction::Inbound,
            h.message_id,
            State::Verified,
            None,
            datetime!(-0001-01-01 0:00 UTC),
        )
        .expect_err("out of range");
    assert!(
        matches!(err, JournalError::InvalidRequest { .. }),
        "{err:?}"
    );
}

fn overdue_query(due_before: i64, max_resends: u32) -> OverdueQuery {
    OverdueQuery {
        kinds: vec![DocumentKind::FormD, DocumentKind::Acdd],
        due_before: t(due_before),
        max_resends,
        tracked_by_channel: Vec::new(),
        limit: 100,
    }
}

fn overdue_messages_are_reported_once_and_resent_within_the_bound(journal: &dyn Journal) {
    // `message_in` moves a message one step a second from t(1): queued (or sent) at t(2).
    let queued = message_in(journal, Direction::Outbound, State::Queued).message_id;
    let sent = message_in(journal, Direction::Outbound, State::Sent).message_id;
    let signed = message_in(journal, Direction::Outbound, State::Signed).message_id;
    let done = message_in(journal, Direction::Outbound, State::Acknowledged).message_id;
    let inbound = message_in(journal, Direction::Inbound, State::Verified).message_id;
    // A receipt is never acknowledged itself: not of a kind the query names.
    let receipt = header(DocumentKind::FormDAck, "TH", "VN");
    received(journal, Direction::Outbound, &receipt);
    step(
        journal,
        Direction::Outbound,
        receipt.message_id,
        State::Signed,
        t(1),
    );
    step(
        journal,
        Direction::Outbound,
        receipt.message_id,
        State::Queued,
        t(2),
    );

    // Not due yet: nothing claimed, nothing changed.
    assert_eq!(
        journal
            .claim_overdue(&overdue_query(1, 2), t(10))
            .expect("claim"),
        []
    );

    let first = journal
        .claim_overdue(&overdue_query(5, 2), t(10))
        .expect("claim");
    let mut ids: Vec<_> = first
        .iter()
        .map(|o| o.record.summary.message_id())
        .collect();
    ids.sort();
    let mut expected = vec![queued, sent];
    expected.sort();
    assert_eq!(ids, expected);
    for overdue in &first {
        assert!(overdue.reported && overdue.resend, "{overdue:?}");
        assert_eq!(overdue.resends, 1);
        assert_eq!(overdue.waiting_since, t(2));
        assert_eq!(overdue.record.summary.state, State::AwaitingAck);
        assert_eq!(overdue.record.summary.updated_at, t(10));
        let id = overdue.record.summary.message_id();
        assert_eq!(
            overdue.record.bytes,
            format!("signed {id}").as_bytes(),
            "signed bytes"
        );
    }
    let history = journal.history(Direction::Outbound, sent).expect("history");
    let tail: Vec<_> = history[history.len() - 2..]
        .iter()
        .map(|r| {
            (
                r.event,
                r.from,
                r.to,
                r.at,
                r.reason.as_ref().map(|r| r.code.as_str()),
            )
        })
        .collect();
    assert_eq!(
        tail,
        [
            (
                Event::Moved,
                Some(State::Sent),
                State::AwaitingAck,
                t(10),
                Some("ACK-OVERDUE")
            ),
            (
                Event::Resent,
                Some(State::AwaitingAck),
                State::AwaitingAck,
                t(10),
                Some("RESENT")
            ),
        ]
    );
    // Claimed already: the same call again finds nothing; the deadline starts again at t(10).
    assert_eq!(
        journal
            .claim_overdue(&overdue_query(5, 2), t(11))
            .expect("claim"),
        []
    );
    assert_eq!(
        journal
            .claim_overdue(&overdue_query(9, 2), t(11))
            .expect("claim"),
        []
    );

    let second = journal
        .claim_overdue(&overdue_query(10, 2), t(20))
        .expect("claim");
    assert_eq!(second.len(), 2);
    for overdue in &second {
        assert!(!overdue.reported && overdue.resend, "{overdue:?}");
        assert_eq!((overdue.resends, overdue.waiting_since), (2, t(10)));
    }
    // The bound reached: listed as awaiting-ack, never claimed again.
    assert_eq!(
        journal
            .claim_overdue(&overdue_query(100, 2), t(200))
            .expect("claim"),
        []
    );
    let listed = journal
        .list(&Filter {
            state: Some(State::AwaitingAck),
            ..Filter::default()
        })
        .expect("list");
    let mut listed: Vec<_> = listed.iter().map(|m| m.message_id()).collect();
    listed.sort();
    assert_eq!(listed, expected);
    let resent = journal
        .history(Direction::Outbound, queued)
        .expect("history")
        .iter()
        .filter(|r| r.event == Event::Resent)
        .count();
    assert_eq!(resent, 2);

    // Untouched: not yet sent, done, inbound, or a kind that is not acknowledged.
    for (direction, id, state) in [
        (Direction::Outbound, signed, State::Signed),
        (Direction::Outbound, done, State::Acknowledged),
        (Direction::Inbound, inbound, State::Verified),
        (Direction::Outbound, receipt.message_id, State::Queued),
    ] {
        let record = journal.get(direction, id).expect("get").expect("recorded");
        assert_eq!(record.summary.state, state);
    }

    // Without resends: reported once, and that is all.
    let quiet = message_in(journal, Direction::Outbound, State::Queued).message_id;
    let claimed = journal
        .claim_overdue(&overdue_query(300, 0), t(300))
        .expect("claim");
    assert_eq!(claimed.len(), 1);
    assert_eq!(claimed[0].record.summary.message_id(), quiet);
    assert!(claimed[0].reported && !claimed[0].resend);
    assert_eq!(claimed[0].resends, 0);
    assert_eq!(
        journal
            .claim_overdue(&overdue_query(1000, 0), t(1000))
            .expect("claim"),
        []
    );
    // A limit of one claims one; the next call the other.
    let pair = [
        message_in(journal, Direction::Outbound, State::Queued).message_id,
        message_in(journal, Direction::Outbound, State::Queued).message_id,
    ];
    let limited = OverdueQuery {
        limit: 1,
        ..overdue_query(2000, 0)
    };
    let one = journal.claim_overdue(&limited, t(2000)).expect("claim");
    let other = journal.claim_overdue(&limited, t(2000)).expect("claim");
    let mut claimed: Vec<_> = one
        .iter()
        .chain(&other)
        .map(|o| o.record.summary.message_id())
        .collect();
    claimed.sort();
    let mut expected = pair.to_vec();
    expected.sort();
    assert_eq!(claimed, expected);
}

fn a_route_tracked_by_its_channel_is_never_claimed_overdue(journal: &dyn Journal) {
    let queued = message_in(journal, Direction::Outbound, State::Queued).message_id;
    let sent = message_in(journal, Direction::Outbound, State::Sent);
    let tracked = OverdueQuery {
        tracked_by_channel: vec![(sent.kind, sent.receiver)],
        ..overdue_query(1000, 2)
    };
    assert_eq!(journal.claim_overdue(&tracked, t(1000)).expect("claim"), []);
    for (id, state) in [(queued, State::Queued), (sent.message_id, State::Sent)] {
        let summary = journal
            .get(Direction::Outbound, id)
            .expect("get")
            .expect("kept")
            .summary;
        assert_eq!(summary.state, state);
        assert_eq!(summary.reason, None);
    }
    // Another receiver of the kind is still claimed; so is the route once it is not tracked.
    let other = OverdueQuery {
        tracked_by_channel: vec![(
            sent.kind,
            asw_model::MemberState::from_alpha2("SG").expect("SG"),
        )],
        ..overdue_query(1000, 2)
    };
    assert_eq!(
        journal.claim_overdue(&other, t(1000)).expect("claim").len(),
        2
    );
}

fn a_late_receipt_still_acknowledges_an_awaiting_message(journal: &dyn Journal) {
    let acked = message_in(journal, Direction::Outbound, State::Queued).message_id;
    let rejected = message_in(journal, Direction::Outbound, State::Sent).message_id;
    let claimed = journal
        .claim_overdue(&overdue_query(5, 1), t(10))
        .expect("claim");
    assert_eq!(claimed.len(), 2);
    // A resend pushed again reports `sent` and `queued` late: harmless, nothing changes.
    for late in [State::Queued, State::Sent] {
        assert_eq!(
            step(journal, Direction::Outbound, acked, late, t(11)),
            Transition::AlreadyPast {
                current: State::AwaitingAck
            }
        );
    }
    assert_eq!(
        step(
            journal,
            Direction::Outbound,
            acked,
            State::Acknowledged,
            t(12)
        ),
        Transition::Moved {
            from: State::AwaitingAck
        }
    );
    assert_eq!(
        step(
            journal,
            Direction::Outbound,
            rejected,
            State::Rejected,
            t(12)
        ),
        Transition::Moved {
            from: State::AwaitingAck
        }
    );
    // Answered: never claimed again, however late.
    assert_eq!(
        journal
            .claim_overdue(&overdue_query(100, 5), t(100))
            .expect("claim"),
        []
    );
    // A rejection after waiting replays to `signed`, to be sent again.
    assert_eq!(
        journal
            .replay(Direction::Outbound, rejected, "alice", t(20))
            .expect("replay"),
        Replay::Replayed {
            from: State::Rejected,
            to: State::Signed
        }
    );
}

/// The removal of `(direction, id)` as it is now in the journal.
fn removal_now(journal: &dyn Journal, direction: Direction, id: Uuid) -> Removal {
    let record = journal.get(direction, id).expect("get").expect("there");
    Removal {
        direction,
        message_id: id,
        updated_at: record.summary.updated_at,
    }
}

fn settled_messages_are_removed_with_their_history_and_the_others_kept(journal: &dyn Journal) {
    use Direction::{Inbound, Outbound};
    let settled = [
        (Inbound, message_in(journal, Inbound, State::Delivered)),
        (Outbound, message_in(journal, Outbound, State::Acknowledged)),
        (Outbound, message_in(journal, Outbound, State::Rejected)),
        (Inbound, message_in(journal, Inbound, State::Rejected)),
    ];
    // Our receipt for a partner's e-Form D, queued: no answer is awaited for it.
    let original = header(DocumentKind::FormD, "TH", "VN");
    let receipt = answer(DocumentKind::FormDAck, &original);
    received(journal, Outbound, &receipt);
    step(journal, Outbound, receipt.message_id, State::Signed, t(1));
    step(journal, Outbound, receipt.message_id, State::Queued, t(2));
    // In flight or waiting for an operator: an e-Form D awaiting its receipt, one overdue, a
    // failed one, one still being verified.
    let kept = [
        (Outbound, message_in(journal, Outbound, State::Queued)),
        (Outbound, message_in(journal, Outbound, State::AwaitingAck)),
        (Inbound, message_in(journal, Inbound, State::Failed)),
        (Inbound, message_in(journal, Inbound, State::Verified)),
    ];
    // Settled when listed, but moved since: an operator replayed it.
    let (moved_direction, moved) = (Outbound, message_in(journal, Outbound, State::Rejected));
    let stale = removal_now(journal, moved_direction, moved.message_id);
    journal
        .replay(moved_direction, moved.message_id, "carol", t(50))
        .expect("replay");

    let mut removals: Vec<Removal> = settled
        .iter()
        .chain(&kept)
        .map(|(d, h)| removal_now(journal, *d, h.message_id))
        .collect();
    removals.push(removal_now(journal, Outbound, receipt.message_id));
    removals.push(stale);
    removals.push(Removal {
        direction: Inbound,
        message_id: Uuid::new_v4(),
        updated_at: t(0),
    });
    assert_eq!(
        journal.remove_settled(&removals).expect("remove"),
        settled.len() + 1
    );
    for (direction, h) in settled.iter().chain([&(Outbound, receipt.clone())]) {
        let id = h.message_id;
        assert_eq!(journal.get(*direction, id).expect("get"), None, "{id}");
        assert!(
            journal.history(*direction, id).expect("history").is_empty(),
            "the history of {id} goes with it"
        );
    }
    for (direction, h) in kept.iter().chain([&(moved_direction, moved.clone())]) {
        let record = journal.get(*direction, h.message_id).expect("get");
        assert!(record.is_some(), "{direction} {h:?} is kept");
        assert!(
            !journal
                .history(*direction, h.message_id)
                .expect("history")
                .is_empty()
        );
    }
    // Removing again removes nothing; what is left still works.
    assert_eq!(journal.remove_settled(&removals).expect("again"), 0);
    let (direction, h) = &kept[2];
    assert!(matches!(
        journal
            .replay(*direction, h.message_id, "carol", t(60))
            .expect("replay"),
        Replay::Replayed { .. }
    ));
    assert_eq!(
        journal.answers(original.message_id).expect("answers"),
        vec![]
    );
}

fn a_channel_reference_is_kept_with_a_move_and_finds_its_message(journal: &dyn Journal) {
    let sent = message_in(journal, Direction::Outbound, State::Queued);
    let number = "EPH-VN-2026-000123";
    assert!(
        journal
            .find_by_transport_ref(Direction::Outbound, number)
            .expect("find")
            .is_none()
    );
    let moved = journal
        .transition_with_ref(
            Direction::Outbound,
            sent.message_id,
            State::Sent,
            None,
            number,
            t(10),
        )
        .expect("move with the reference");
    assert_eq!(
        moved,
        Transition::Moved {
            from: State::Queued
        }
    );
    let record = journal
        .get(Direction::Outbound, sent.message_id)
        .expect("get")
        .expect("recorded");
    assert_eq!(record.summary.state, State::Sent);
    assert_eq!(record.summary.transport_ref.as_deref(), Some(number));
    let last = journal
        .history(Direction::Outbound, sent.message_id)
        .expect("history")
        .pop()
        .expect("a history");
    assert_eq!(
        (last.event, last.from, last.to, last.at),
        (Event::Moved, Some(State::Queued), State::Sent, t(10))
    );
    // Found by the reference, in its direction only; listings carry it too.
    assert_eq!(
        journal
            .find_by_transport_ref(Direction::Outbound, number)
            .expect("find"),
        Some(record.clone())
    );
    assert!(
        journal
            .find_by_transport_ref(Direction::Inbound, number)
            .expect("find")
            .is_none()
    );
    let listed = journal.list(&Filter::default()).expect("list");
    assert_eq!(listed, std::slice::from_ref(&record.summary));

    // A repeat (already there) keeps the first reference; a move not made keeps none.
    let again = journal
        .transition_with_ref(
            Direction::Outbound,
            sent.message_id,
            State::Sent,
            None,
            "EPH-OTHER",
            t(11),
        )
        .expect("repeat");
    assert_eq!(again, Transition::AlreadyThere);
    let queued = message_in(journal, Direction::Outbound, State::Queued);
    let refused = journal.transition_with_ref(
        Direction::Outbound,
        queued.message_id,
        State::Delivered,
        None,
        "EPH-REFUSED",
        t(12),
    );
    assert!(
        matches!(refused, Err(JournalError::InvalidRequest { .. })),
        "delivered is not an outbound state: {refused:?}"
    );
    let refused = journal
        .transition_with_ref(
            Direction::Outbound,
            queued.message_id,
            State::Received,
            None,
            "EPH-REFUSED",
            t(12),
        )
        .expect("backward move");
    assert!(
        matches!(refused, Transition::AlreadyPast { .. }),
        "{refused:?}"
    );
    let summary = |id| {
        journal
            .get(Direction::Outbound, id)
            .expect("get")
            .expect("recorded")
            .summary
    };
    assert_eq!(
        summary(sent.message_id).transport_ref.as_deref(),
        Some(number)
    );
    assert_eq!(summary(queued.message_id).transport_ref, None);

    // Another message of the direction cannot take the same reference: an error, nothing moved.
    let err = journal
        .transition_with_ref(
            Direction::Outbound,
            queued.message_id,
            State::Sent,
            None,
            number,
            t(13),
        )
        .expect_err("a reference held by another message");
    assert!(!err.is_transient(), "{err:?}");
    assert_eq!(summary(queued.message_id).state, State::Queued);
    // The other direction may hold it (an import pulled by the same number).
    let pulled = message_in(journal, Direction::Inbound, State::Verified);
    journal
        .transition_with_ref(
            Direction::Inbound,
            pulled.message_id,
            State::Delivered,
            Some(&Reason::new("EPHYTO-WARNINGS", "line 3: bad date")),
            number,
            t(14),
        )
        .expect("inbound reference");
    let found = journal
        .find_by_transport_ref(Direction::Inbound, number)
        .expect("find")
        .expect("found");
    assert_eq!(found.summary.header.message_id, pulled.message_id);
    assert_eq!(found.summary.state, State::Delivered);
}

fn a_channel_settlement_is_kept_once_by_channel_and_reference(journal: &dyn Journal) {
    assert_eq!(journal.settlement("ippc", "EPH-1").expect("lookup"), None);
    let delivered = ChannelSettlement {
        channel: "ippc".into(),
        reference: "EPH-1".into(),
        outcome: SettlementOutcome::Delivered,
        note: Some("SPS-001 line 4: date out of range".into()),
        message_id: Some(Uuid::new_v4()),
        at: t(5) + time::Duration::microseconds(7),
    };
    assert_eq!(
        journal.record_settlement(&delivered).expect("record"),
        delivered
    );
    assert_eq!(
        journal.settlement("ippc", "EPH-1").expect("lookup"),
        Some(delivered.clone())
    );
    // A second record for the key keeps the first and says so.
    let parked = ChannelSettlement {
        outcome: SettlementOutcome::Parked,
        note: Some("Not readable XML".into()),
        message_id: None,
        at: t(9),
        ..delivered.clone()
    };
    assert_eq!(
        journal.record_settlement(&parked).expect("again"),
        delivered
    );
    assert_eq!(
        journal.settlement("ippc", "EPH-1").expect("lookup"),
        Some(delivered.clone())
    );
    // Keyed by channel and reference: the same number of another channel is another document.
    let other = ChannelSettlement {
        channel: "other".into(),
        ..parked.clone()
    };
    assert_eq!(journal.record_settlement(&other).expect("other"), other);
    let refused = ChannelSettlement {
        reference: "EPH-2".into(),
        outcome: SettlementOutcome::Refused,
        note: None,
        ..parked
    };
    assert_eq!(
        journal.record_settlement(&refused).expect("refused"),
        refused
    );
    assert_eq!(
        journal.settlement("ippc", "EPH-2").expect("lookup"),
        Some(refused)
    );
    assert_eq!(journal.settlement("ippc", "EPH-3").expect("lookup"), None);
}
