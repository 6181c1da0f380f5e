//! Tests of the outbound plans, without a broker: real workers and a real SQLite journal.

use asw_journal::{Direction, Journal, State};
use asw_model::DocumentKind;
use bytes::Bytes;

use super::{Sender, TRANSPORT_SENDER, plan};
use crate::claims::{Abandoned, CLAIM_LEASE};
use crate::config::{BackOfficeConfig, PartnerAuth};
use crate::events::Event;
use crate::plan::{JOURNAL, Move, Plan, Publish, Settle};
use crate::process::{PANIC, STOPPING, Signed, Unsendable};
use crate::testing::{Faulty, Fixture};
use crate::work::{OnPool, Work};

fn state_of(fx: &Fixture, id: uuid::Uuid) -> Option<State> {
    fx.journal
        .get(Direction::Outbound, id)
        .expect("journal")
        .map(|r| r.summary.state)
}

fn planned(fx: &Fixture, work: &mut impl Work, bytes: &Bytes, abandoned: &Abandoned) -> Plan {
    plan(
        work,
        &*fx.journal,
        abandoned,
        Sender::ANYONE,
        bytes,
        "formd",
        fx.now,
    )
}

fn published(plan: &Plan) -> &Signed {
    match plan.publishes.as_slice() {
        [Publish::Document(signed)] => signed,
        other => panic!("expected one document to publish, got {other:?}"),
    }
}

/// The outcome the back-office is told of a refused document, and the parking it ends with.
fn refused(plan: &Plan) -> (&'static str, Vec<String>) {
    let [Publish::Notify(outcome)] = plan.publishes.as_slice() else {
        panic!("expected an outcome, got {:?}", plan.publishes);
    };
    let Settle::Park { refusals, .. } = &plan.settle else {
        panic!("expected parking, got {:?}", plan.settle);
    };
    assert!(matches!(plan.event, Some(Event::RefusedOutbound { .. })));
    assert!(plan.moves().is_empty());
    (
        outcome.outcome,
        refusals.iter().map(|r| r.code.clone()).collect(),
    )
}

#[test]
fn a_document_seen_first_is_signed_journaled_and_published_then_queued() {
    let fx = Fixture::new();
    let mut worker = fx.worker();
    let (header, bytes) = fx.back_office_document(DocumentKind::FormD);
    let plan = planned(&fx, &mut worker, &bytes, &Abandoned::default());
    let signed = published(&plan);
    assert_eq!(signed.header, header);
    assert_ne!(signed.bytes, bytes, "the signed bytes go out");
    assert!(signed.bytes.windows(9).any(|w| w == b"Signature"));
    assert_eq!(
        plan.moves(),
        [Move::new(
            Direction::Outbound,
            header.message_id,
            State::Queued
        )]
    );
    assert!(matches!(&plan.event, Some(Event::Queued(h)) if *h == header));
    assert_eq!(plan.settle, Settle::Ack);
    assert!(plan.claims, "a failed session gives the claim up");
    assert_eq!(plan.header.as_ref(), Some(&header));
    assert_eq!(state_of(&fx, header.message_id), Some(State::Signed));
}

#[test]
fn a_resend_of_a_document_already_queued_is_dropped() {
    let fx = Fixture::new();
    let mut worker = fx.worker();
    let (header, bytes) = fx.back_office_document(DocumentKind::FormD);
    let first = planned(&fx, &mut worker, &bytes, &Abandoned::default());
    published(&first);
    let id = header.message_id;
    fx.journal
        .transition(Direction::Outbound, id, State::Queued, None, fx.now)
        .expect("queued");
    // The back-office sends the same document again.
    let again = planned(&fx, &mut worker, &bytes, &Abandoned::default());
    assert!(again.publishes.is_empty());
    assert!(matches!(
        again.event,
        Some(Event::SentBefore { message_id, state: State::Queued }) if message_id == id
    ));
    assert_eq!(again.settle, Settle::Ack);
}

#[test]
fn a_copy_waits_while_its_first_consumer_holds_the_claim_then_sends_the_first_signature() {
    let fx = Fixture::new();
    let mut worker = fx.worker();
    let (header, bytes) = fx.back_office_document(DocumentKind::FormD);
    let first = planned(&fx, &mut worker, &bytes, &Abandoned::default());
    let first_signature = published(&first).bytes.clone();

    // A copy while the first consumer is still at it (signed, not queued): it waits.
    let copy = planned(&fx, &mut worker, &bytes, &Abandoned::default());
    assert!(matches!(copy.settle, Settle::Wait(_)), "{:?}", copy.settle);
    assert!(copy.publishes.is_empty());

    // Once this process gave the claim up (its session failed), the copy takes over at once,
    // with the bytes signed the first time (an ECDSA signature differs each time).
    let abandoned = Abandoned::default();
    abandoned.add(header.message_id);
    let taken = planned(&fx, &mut worker, &bytes, &abandoned);
    assert_eq!(published(&taken).bytes, first_signature);

    // So does a copy once the lease ran out.
    let later = plan(
        &mut worker,
        &*fx.journal,
        &Abandoned::default(),
        Sender::ANYONE,
        &bytes,
        "formd",
        fx.now + CLAIM_LEASE + time::Duration::seconds(1),
    );
    assert_eq!(published(&later).bytes, first_signature);
}

#[test]
fn another_document_under_an_id_already_sent_is_refused_and_the_first_kept() {
    let fx = Fixture::new();
    let mut worker = fx.worker();
    let (header, bytes) = fx.back_office_document(DocumentKind::FormD);
    published(&planned(&fx, &mut worker, &bytes, &Abandoned::default()));
    let mut other = fx.document(DocumentKind::FormD, fx.vn, fx.th);
    other.header.message_id = header.message_id;
    let other = Bytes::from(other.to_xml_compact().expect("xml").into_bytes());
    let plan = planned(&fx, &mut worker, &other, &Abandoned::default());
    assert_eq!(
        refused(&plan),
        ("rejected", vec!["DUPLICATE-ID".to_owned()])
    );
    assert_eq!(state_of(&fx, header.message_id), Some(State::Signed));
}

#[test]
fn an_invalid_document_is_journaled_failed_parked_and_rejected_to_its_back_office() {
    let fx = Fixture::new();
    let mut worker = fx.worker();
    let (header, bytes) = fx.back_office_document(DocumentKind::FormD);
    // Sent with the routing key of another kind.
    let plan = plan(
        &mut worker,
        &*fx.journal,
        &Abandoned::default(),
        Sender::ANYONE,
        &bytes,
        "acdd",
        fx.now,
    );
    assert_eq!(refused(&plan), ("rejected", vec!["ROUTE-001".to_owned()]));
    assert_eq!(state_of(&fx, header.message_id), Some(State::Failed));
    let Publish::Notify(outcome) = &plan.publishes[0] else {
        unreachable!()
    };
    assert_eq!(outcome.message_id, Some(header.message_id));
    assert_eq!(outcome.routing_key(), "outcome.formd.TH");
}

#[test]
fn a_transient_journal_failure_is_retried_and_a_permanent_one_is_failed_not_rejected() {
    let fx = Fixture::new();
    let mut worker = fx.worker();
    let (header, bytes) = fx.back_office_document(DocumentKind::FormD);
    fx.journal.fail_records(true);
    let plan = planned(&fx, &mut worker, &bytes, &Abandoned::default());
    assert!(
        matches!(&plan.settle, Settle::Retry(why) if why.contains("record")),
        "{:?}",
        plan.settle
    );
    assert!(plan.publishes.is_empty() && plan.event.is_none());

    fx.journal.fail_records(false);
    let plan = planned(&fx, &mut worker, &bytes, &Abandoned::default());
    assert_eq!(refused(&plan), ("failed", vec![JOURNAL.to_owned()]));

    fx.journal.heal();
    assert_eq!(
        state_of(&fx, header.message_id),
        None,
        "nothing was journaled"
    );
    published(&planned(&fx, &mut worker, &bytes, &Abandoned::default()));
}

#[test]
fn a_worker_that_panics_fails_the_document_and_one_that_stopped_retries_it() {
    let fx = Fixture::new();
    let pool = fx.pool_of(Faulty::panicking);
    let (_, bytes) = fx.back_office_document(DocumentKind::FormD);
    let plan = planned(&fx, &mut OnPool::new(&pool), &bytes, &Abandoned::default());
    assert_eq!(refused(&plan), ("failed", vec![PANIC.to_owned()]));
    pool.shutdown();

    struct Stopped;
    impl Work for Stopped {
        fn outbound(
            &mut self,
            _: &Bytes,
            _: &str,
            _: time::OffsetDateTime,
        ) -> Result<Signed, Unsendable> {
            Err(Unsendable {
                header: None,
                refusals: vec![crate::process::Refusal {
                    code: STOPPING.into(),
                    text: "the worker pool has stopped".into(),
                }],
            })
        }
        fn inbound(
            &mut self,
            _: &Bytes,
            _: Option<&str>,
            _: &str,
            _: time::OffsetDateTime,
        ) -> Result<crate::process::Accepted, Box<crate::process::Refused>> {
            unreachable!("outbound only")
        }
        fn receipt(
            &mut self,
            _: &asw_model::Header,
            _: asw_model::MemberState,
            _: Option<&str>,
            _: &[crate::process::Refusal],
            _: time::OffsetDateTime,
        ) -> Option<Result<Signed, crate::process::Refusal>> {
            unreachable!("outbound only")
        }
    }
    let plan = planned(&fx, &mut Stopped, &bytes, &Abandoned::default());
    assert!(matches!(plan.settle, Settle::Retry(_)), "{:?}", plan.settle);
}

#[test]
fn with_back_offices_only_the_user_that_sends_a_kind_may_publish_it() {
    let fx = Fixture::new();
    let mut worker = fx.worker();
    let office = |name: &str, sends: &[DocumentKind]| BackOfficeConfig {
        name: name.into(),
        sends: sends.to_vec(),
        receives: Vec::new(),
        from: Vec::new(),
        auth: PartnerAuth::Password,
        password: "not-used-here".into(),
    };
    let offices = [
        office(
            "trade-ministry",
            &[DocumentKind::FormD, DocumentKind::FormDStatus],
        ),
        office("customs", &[DocumentKind::Acdd, DocumentKind::AcddResponse]),
    ];
    let as_user = |user: Option<&'static str>| Sender {
        back_offices: &offices,
        user,
    };
    let (header, bytes) = fx.back_office_document(DocumentKind::FormD);
    let refused_for = |user: Option<&'static str>| {
        let plan = plan(
            &mut fx.worker(),
            &*fx.journal,
            &Abandoned::default(),
            as_user(user),
            &bytes,
            "formd",
            fx.now,
        );
        assert!(plan.publishes.is_empty(), "nobody is told: {plan:?}");
        assert!(plan.moves().is_empty() && !plan.claims);
        assert!(matches!(plan.event, Some(Event::RefusedOutbound { .. })));
        let Settle::Park { refusals, .. } = plan.settle else {
            panic!("expected parking, got {:?}", plan.settle);
        };
        assert_eq!(refusals.len(), 1);
        assert_eq!(refusals[0].code, TRANSPORT_SENDER);
        refusals[0].text.clone()
    };
    // Customs may not send an e-Form D; nor may a user that is no back-office, nor a publish
    // with no user_id.
    assert_eq!(
        refused_for(Some("customs")),
        "back-office customs may send acdd, acdd-response, not \"formd\""
    );
    assert!(refused_for(Some("guest")).contains("no configured back-office"));
    assert!(refused_for(None).contains("no user_id"));
    // None of them was journaled: the genuine e-Form D under that id still goes out.
    assert_eq!(state_of(&fx, header.message_id), None);
    let sent = plan(
        &mut worker,
        &*fx.journal,
        &Abandoned::default(),
        as_user(Some("trade-ministry")),
        &bytes,
        "formd",
        fx.now,
    );
    assert_eq!(published(&sent).header, header);
    // The trade ministry claiming another kind by the routing key is refused by the broker's
    // topic permissions, and here too.
    let (_, acdd) = fx.back_office_document(DocumentKind::Acdd);
    let plan = plan(
        &mut worker,
        &*fx.journal,
        &Abandoned::default(),
        as_user(Some("trade-ministry")),
        &acdd,
        "acdd",
        fx.now,
    );
    assert!(
        matches!(&plan.settle, Settle::Park { refusals, .. } if refusals[0].code == TRANSPORT_SENDER),
        "{:?}",
        plan.settle
    );
}
