//! Tests of the inbound plans, without a broker: real workers and keys, a real SQLite journal.

use asw_journal::{Direction, Journal, Reason, State};
use asw_model::{DocumentKind, Header, MemberState};
use bytes::Bytes;

use super::plan;
use crate::claims::Abandoned;
use crate::events::Event;
use crate::plan::{Move, Plan, Publish, Settle};
use crate::process::{PANIC, Signed};
use crate::testing::{Faulty, Fixture};
use crate::work::{OnPool, Work};

fn from(fx: &Fixture, work: &mut impl Work, bytes: &Bytes, partner: MemberState) -> Plan {
    let user = format!("partner-{partner}");
    plan(
        work,
        &*fx.journal,
        &Abandoned::default(),
        bytes,
        Some(&user),
        partner.code(),
        fx.now,
    )
}

fn header_of(bytes: &[u8]) -> Header {
    Header::read(bytes, &asw_model::xml::Limits::default()).expect("header")
}

fn state_of(fx: &Fixture, direction: Direction, id: uuid::Uuid) -> Option<State> {
    fx.journal
        .get(direction, id)
        .expect("journal")
        .map(|r| r.summary.state)
}

/// What a plan publishes, by kind: (delivered verified bytes, possible duplicate), outcomes,
/// receipts, rejections.
#[derive(Debug, Default)]
struct Publishes {
    delivered: Option<(Bytes, bool)>,
    answers: Vec<crate::outcome::Outcome>,
    receipts: Vec<Signed>,
    rejections: Vec<Signed>,
}

fn publishes(plan: &Plan) -> Publishes {
    let mut p = Publishes::default();
    for publish in &plan.publishes {
        match publish {
            Publish::Deliver {
                verified,
                possible_duplicate,
            } => p.delivered = Some((verified.shared_bytes(), *possible_duplicate)),
            Publish::Answer(o) => p.answers.push(o.clone()),
            Publish::Receipt(s) => p.receipts.push(s.clone()),
            Publish::Rejection(s) => p.rejections.push(s.clone()),
            other => panic!("unexpected {other:?}"),
        }
    }
    p
}

fn parked_codes(plan: &Plan) -> Vec<String> {
    let Settle::Park { refusals, .. } = &plan.settle else {
        panic!("expected parking, got {:?}", plan.settle);
    };
    assert!(matches!(plan.event, Some(Event::RefusedInbound { .. })));
    refusals.iter().map(|r| r.code.clone()).collect()
}

/// One of our documents, journaled as sent to `to` and queued.
fn sent(fx: &Fixture, kind: DocumentKind, to: MemberState, state: State) -> Header {
    let document = fx.document(kind, fx.vn, to);
    let xml = document.to_xml_compact().expect("xml");
    let j = &fx.journal;
    j.record_signed(&document.header, xml.as_bytes(), xml.as_bytes(), fx.now)
        .expect("recorded");
    let id = document.header.message_id;
    j.transition(Direction::Outbound, id, State::Queued, None, fx.now)
        .expect("queued");
    if state != State::Queued {
        j.transition(Direction::Outbound, id, state, None, fx.now)
            .expect("moved");
    }
    document.header
}

#[test]
fn a_document_seen_first_is_delivered_as_verified_then_answered_with_a_receipt() {
    let fx = Fixture::new();
    let mut worker = fx.worker();
    let bytes = fx.partner_document(DocumentKind::FormD);
    let header = header_of(&bytes);
    let plan = from(&fx, &mut worker, &bytes, fx.th);
    let p = publishes(&plan);
    let (delivered, possible_duplicate) = p.delivered.expect("delivered");
    assert_eq!(delivered, bytes);
    assert_eq!(
        delivered.as_ptr(),
        bytes.as_ptr(),
        "the very bytes delivered, not a copy"
    );
    assert!(!possible_duplicate);
    let [receipt] = p.receipts.as_slice() else {
        panic!("one receipt: {:?}", p.receipts)
    };
    assert_eq!(receipt.header.kind, DocumentKind::FormDAck);
    assert_eq!(receipt.header.receiver, fx.th);
    assert_eq!(receipt.header.correlation_id, Some(header.message_id));
    assert!(p.answers.is_empty() && p.rejections.is_empty());
    // In order: delivered, then the receipt.
    assert!(matches!(plan.publishes[0], Publish::Deliver { .. }));
    assert_eq!(
        plan.moves(),
        [
            Move::new(Direction::Inbound, header.message_id, State::Delivered),
            Move::new(
                Direction::Outbound,
                receipt.header.message_id,
                State::Queued
            ),
        ]
    );
    assert!(matches!(&plan.event, Some(Event::Delivered(h)) if *h == header));
    assert_eq!(plan.settle, Settle::Ack);
    assert!(plan.claims);
    assert_eq!(
        state_of(&fx, Direction::Inbound, header.message_id),
        Some(State::Verified)
    );
    assert_eq!(
        state_of(&fx, Direction::Outbound, receipt.header.message_id),
        Some(State::Signed)
    );
}

#[test]
fn a_resend_of_a_document_delivered_is_not_delivered_again_but_gets_the_same_receipt() {
    let fx = Fixture::new();
    let mut worker = fx.worker();
    let bytes = fx.partner_document(DocumentKind::Acdd);
    let first = from(&fx, &mut worker, &bytes, fx.th);
    for m in first.moves() {
        fx.journal
            .transition(m.direction, m.id, m.to, None, fx.now)
            .expect("moved");
    }
    let receipt = publishes(&first).receipts.remove(0);
    // The partner sends it again (its receipt was lost, say).
    let again = from(&fx, &mut worker, &bytes, fx.th);
    let p = publishes(&again);
    assert!(p.delivered.is_none(), "not delivered twice");
    assert_eq!(p.receipts.len(), 1);
    assert_eq!(
        p.receipts[0].bytes, receipt.bytes,
        "the receipt as it was made"
    );
    assert!(matches!(again.event, Some(Event::DeliveredBefore(_))));
    assert_eq!(again.settle, Settle::Ack);
}

#[test]
fn a_copy_waits_for_the_claim_and_after_an_abandoned_one_is_delivered_as_a_possible_duplicate() {
    let fx = Fixture::new();
    let mut worker = fx.worker();
    let bytes = fx.partner_document(DocumentKind::FormD);
    let id = header_of(&bytes).message_id;
    let first = from(&fx, &mut worker, &bytes, fx.th);
    assert!(publishes(&first).delivered.is_some());
    let copy = from(&fx, &mut worker, &bytes, fx.th);
    assert!(matches!(copy.settle, Settle::Wait(_)), "{:?}", copy.settle);
    assert!(copy.publishes.is_empty());

    let abandoned = Abandoned::default();
    abandoned.add(id);
    let taken = plan(
        &mut worker,
        &*fx.journal,
        &abandoned,
        &bytes,
        Some("partner-TH"),
        "TH",
        fx.now,
    );
    let (_, possible_duplicate) = publishes(&taken).delivered.expect("delivered");
    assert!(
        possible_duplicate,
        "the first attempt may have delivered it"
    );
}

#[test]
fn a_replay_after_an_unroutable_delivery_is_a_first_delivery() {
    let fx = Fixture::new();
    let mut worker = fx.worker();
    let bytes = fx.partner_document(DocumentKind::FormD);
    let id = header_of(&bytes).message_id;
    assert!(
        publishes(&from(&fx, &mut worker, &bytes, fx.th))
            .delivered
            .is_some()
    );
    // No back-office queue took it: parked unroutable, then replayed by an operator.
    let reason = Reason::new(crate::publish::UNROUTABLE, "no route");
    fx.journal
        .transition(Direction::Inbound, id, State::Failed, Some(&reason), fx.now)
        .expect("failed");
    fx.journal
        .replay(Direction::Inbound, id, "operator", fx.now)
        .expect("replayed");
    let replayed = from(&fx, &mut worker, &bytes, fx.th);
    let (_, possible_duplicate) = publishes(&replayed).delivered.expect("delivered");
    assert!(!possible_duplicate, "nobody got it the first time");
}

#[test]
fn a_forged_signature_is_parked_never_journaled_and_its_transport_sender_rejected() {
    let fx = Fixture::new();
    let mut worker = fx.worker();
    // Claims to come from TH, published by TH's user, but signed with SG's key.
    let forged = fx.signed_by(fx.sg, &fx.document(DocumentKind::FormD, fx.th, fx.vn));
    let id = header_of(&forged).message_id;
    let plan = from(&fx, &mut worker, &forged, fx.th);
    let codes = parked_codes(&plan);
    assert!(codes[0].starts_with("SIG-"), "{codes:?}");
    assert_eq!(
        state_of(&fx, Direction::Inbound, id),
        None,
        "a forgery blocks no id"
    );
    let p = publishes(&plan);
    assert!(p.delivered.is_none());
    assert_eq!(p.rejections.len(), 1, "the authenticated sender hears why");
    assert_eq!(p.rejections[0].header.receiver, fx.th);
    assert!(plan.header.is_none(), "nothing trusted to journal by");
}

#[test]
fn a_document_the_transport_does_not_vouch_for_is_parked_unanswered() {
    let fx = Fixture::new();
    let mut worker = fx.worker();
    let bytes = fx.partner_document(DocumentKind::FormD);
    // SG's user publishing with TH's routing key.
    let plan = plan(
        &mut worker,
        &*fx.journal,
        &Abandoned::default(),
        &bytes,
        Some("partner-SG"),
        "TH",
        fx.now,
    );
    assert_eq!(parked_codes(&plan), ["TRANSPORT-001"]);
    assert!(
        plan.publishes.is_empty(),
        "no answer to an unauthenticated sender"
    );
    // TH's user sending a document that claims SG as its sender.
    let claims_sg = fx.signed_by(fx.sg, &fx.document(DocumentKind::FormD, fx.sg, fx.vn));
    let plan = from(&fx, &mut worker, &claims_sg, fx.th);
    assert_eq!(parked_codes(&plan), ["TRANSPORT-003"]);
    let id = header_of(&claims_sg).message_id;
    assert_eq!(state_of(&fx, Direction::Inbound, id), None);
}

#[test]
fn an_answer_to_our_document_moves_it_and_reports_the_outcome_before_the_move_is_journaled() {
    let fx = Fixture::new();
    let mut worker = fx.worker();
    let original = sent(&fx, DocumentKind::FormD, fx.th, State::Queued);
    let receipt = fx.answer(DocumentKind::FormDAck, fx.th, &original);
    let plan = from(&fx, &mut worker, &receipt, fx.th);
    let p = publishes(&plan);
    assert!(p.delivered.is_some(), "answers reach the back-office too");
    let [outcome] = p.answers.as_slice() else {
        panic!("one outcome: {p:?}")
    };
    assert_eq!(outcome.outcome, "acknowledged");
    assert_eq!(outcome.message_id, Some(original.message_id));
    assert_eq!(outcome.answer_id, Some(header_of(&receipt).message_id));
    assert!(p.receipts.is_empty(), "answers are not answered");
    assert_eq!(
        state_of(&fx, Direction::Outbound, original.message_id),
        Some(State::Acknowledged)
    );
    // A copy of the answer, once delivered, reports nothing again.
    for m in plan.moves() {
        fx.journal
            .transition(m.direction, m.id, m.to, None, fx.now)
            .expect("moved");
    }
    let copy = from(&fx, &mut worker, &receipt, fx.th);
    assert!(publishes(&copy).answers.is_empty());
}

#[test]
fn a_late_answer_still_moves_its_original_and_one_to_nothing_we_sent_only_reaches_the_back_office()
{
    let fx = Fixture::new();
    let mut worker = fx.worker();
    // Reported awaiting-ack already; the receipt comes late.
    let original = sent(&fx, DocumentKind::FormD, fx.th, State::AwaitingAck);
    let late = fx.answer(DocumentKind::FormDAck, fx.th, &original);
    let plan = from(&fx, &mut worker, &late, fx.th);
    assert_eq!(publishes(&plan).answers[0].outcome, "acknowledged");
    assert_eq!(
        state_of(&fx, Direction::Outbound, original.message_id),
        Some(State::Acknowledged)
    );
    // A status about a document this hub never sent.
    let stranger = fx.document(DocumentKind::FormD, fx.vn, fx.th).header;
    let status = fx.answer(DocumentKind::FormDStatus, fx.th, &stranger);
    let p = publishes(&from(&fx, &mut worker, &status, fx.th));
    assert!(p.delivered.is_some());
    assert!(p.answers.is_empty());
}

#[test]
fn an_answer_from_another_state_or_of_a_kind_that_does_not_answer_is_parked_and_moves_nothing() {
    let fx = Fixture::new();
    let mut worker = fx.worker();
    let original = sent(&fx, DocumentKind::FormD, fx.th, State::Queued);
    let from_sg = fx.answer(DocumentKind::FormDAck, fx.sg, &original);
    let plan = from(&fx, &mut worker, &from_sg, fx.sg);
    assert_eq!(parked_codes(&plan), ["ANSWER-SENDER"]);
    let wrong_kind = fx.answer(DocumentKind::AcddAck, fx.th, &original);
    let plan = from(&fx, &mut worker, &wrong_kind, fx.th);
    assert_eq!(parked_codes(&plan), ["ANSWER-KIND"]);
    assert!(
        publishes(&plan).rejections.is_empty(),
        "answers are never answered"
    );
    assert_eq!(
        state_of(&fx, Direction::Outbound, original.message_id),
        Some(State::Queued)
    );
}

#[test]
fn a_journal_failure_is_retried_and_a_worker_panic_parks_the_document() {
    let fx = Fixture::new();
    let mut worker = fx.worker();
    let bytes = fx.partner_document(DocumentKind::FormD);
    for transient in [true, false] {
        fx.journal.fail_records(transient);
        let plan = from(&fx, &mut worker, &bytes, fx.th);
        assert!(matches!(plan.settle, Settle::Retry(_)), "{:?}", plan.settle);
        assert!(plan.publishes.is_empty());
    }
    fx.journal.heal();
    let pool = fx.pool_of(Faulty::panicking);
    let plan = from(&fx, &mut OnPool::new(&pool), &bytes, fx.th);
    assert_eq!(parked_codes(&plan), [PANIC]);
    pool.shutdown();
}
