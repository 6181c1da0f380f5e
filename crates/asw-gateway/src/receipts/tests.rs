//! Tests of the receipts watcher against a real SQLite journal and a broker stand-in that
//! notes what the journal said at each report, and can fail as a lost connection does.

use std::sync::Arc;
use std::time::Duration;

use asw_amqp::AmqpError;
use asw_journal::{Direction, Journal, Overdue, State};
use asw_model::DocumentKind;

use super::{Watched, check};
use crate::config::AcksConfig;
use crate::metrics::Metrics;
use crate::outcome::Outcome;
use crate::pool::PoolError;
use crate::testing::Fixture;

struct Broker {
    journal: Arc<dyn Journal>,
    /// Each report, with the state the journal had its document in at that moment.
    reports: Vec<(Outcome, Option<State>)>,
    resends: Vec<uuid::Uuid>,
    /// The next report fails as a lost connection does.
    fail_next_report: bool,
}

impl Watched for Broker {
    async fn journal<R, F>(&self, f: F) -> Result<R, PoolError>
    where
        R: Send + 'static,
        F: FnOnce(&dyn Journal) -> R + Send + 'static,
    {
        Ok(f(&*self.journal))
    }

    async fn report(&mut self, outcome: &Outcome) -> Result<(), AmqpError> {
        if std::mem::take(&mut self.fail_next_report) {
            return Err(AmqpError::Timeout {
                vhost: "test".into(),
                action: "confirm".into(),
                after: Duration::from_secs(1),
            });
        }
        let id = outcome.message_id.expect("id");
        let state = self
            .journal
            .get(Direction::Outbound, id)
            .expect("journal")
            .map(|r| r.summary.state);
        self.reports.push((outcome.clone(), state));
        Ok(())
    }

    async fn resend(&mut self, overdue: &Overdue) -> Result<(), AmqpError> {
        self.resends.push(overdue.record.summary.header.message_id);
        Ok(())
    }
}

const ACKS: AcksConfig = AcksConfig {
    timeout: Duration::from_secs(60),
    resend: 1,
    check_every: Duration::from_secs(1),
};

/// A document queued for TH an hour ago, its receipt long overdue.
fn overdue(fx: &Fixture) -> uuid::Uuid {
    let document = fx.document(DocumentKind::FormD, fx.vn, fx.th);
    let xml = document.to_xml_compact().expect("xml");
    let an_hour_ago = fx.now - time::Duration::hours(1);
    let j = &fx.journal;
    j.record_signed(
        &document.header,
        xml.as_bytes(),
        xml.as_bytes(),
        an_hour_ago,
    )
    .expect("recorded");
    let id = document.header.message_id;
    j.transition(Direction::Outbound, id, State::Queued, None, an_hour_ago)
        .expect("queued");
    id
}

fn broker(fx: &Fixture) -> Broker {
    Broker {
        journal: fx.journal.clone(),
        reports: Vec::new(),
        resends: Vec::new(),
        fail_next_report: false,
    }
}

#[tokio::test]
async fn an_overdue_document_is_reported_before_its_claim_is_journaled_then_resent_once() {
    let fx = Fixture::new();
    let id = overdue(&fx);
    let mut broker = broker(&fx);
    let metrics = Metrics::default();
    check(&mut broker, &ACKS, &metrics).await.expect("checked");
    let [(outcome, state_then)] = broker.reports.as_slice() else {
        panic!("one report: {:?}", broker.reports)
    };
    assert_eq!(outcome.outcome, "awaiting-ack");
    assert_eq!(outcome.resends, Some(1));
    assert!(outcome.waited_seconds.is_some_and(|s| s >= 3599));
    assert_eq!(
        *state_then,
        Some(State::Queued),
        "reported before the claim"
    );
    assert_eq!(broker.resends, [id]);
    let now = fx.journal.get(Direction::Outbound, id).expect("get");
    assert_eq!(now.map(|r| r.summary.state), Some(State::AwaitingAck));

    // Claimed: the next check reports nothing again (and the one resend allowed is made).
    check(&mut broker, &ACKS, &metrics).await.expect("checked");
    assert_eq!(broker.reports.len(), 1, "reported once");
    assert_eq!(broker.resends.len(), 1);
}

#[tokio::test]
async fn a_report_lost_with_the_connection_is_made_at_the_next_check() {
    let fx = Fixture::new();
    let id = overdue(&fx);
    let mut broker = broker(&fx);
    broker.fail_next_report = true;
    let metrics = Metrics::default();
    assert!(check(&mut broker, &ACKS, &metrics).await.is_err());
    let state = fx.journal.get(Direction::Outbound, id).expect("get");
    assert_eq!(
        state.map(|r| r.summary.state),
        Some(State::Queued),
        "not claimed, so not lost"
    );
    check(&mut broker, &ACKS, &metrics).await.expect("checked");
    assert_eq!(broker.reports.len(), 1);
    assert_eq!(broker.reports[0].0.message_id, Some(id));
    assert_eq!(broker.resends, [id]);
}
