//! The receipts watcher: outbound documents whose receipt is overdue are reported to their
//! back-office once (`awaiting-ack`), claimed in the journal, and resent to the partner while
//! resends are allowed.
//!
//! Documents of a route whose channel follows them itself (the IPPC ePhyto Hub's tracking, see
//! [`Watched::tracked_by_channel`]) are left to that channel: never reported, claimed or resent
//! here (a resend would deliver the certificate to the IPPC hub a second time).
//!
//! The report is published (confirmed) before the claim is journaled: a crash in between
//! reports the document again at the next check, it never loses the report. Hubs sharing a
//! journal whose checks fall in the same instant may both report a document; the claim (a
//! compare-and-set) still gives its resends to one of them.

use std::collections::HashSet;
use std::sync::Arc;

use asw_amqp::{AmqpError, Connection};
use asw_journal::{Direction, Filter, Journal, MessageSummary, Overdue, OverdueQuery, State};
use asw_model::DocumentKind;
use asw_route::names;
use time::OffsetDateTime;
use tokio_util::sync::CancellationToken;
use tracing::{Instrument, info_span, warn};
use uuid::Uuid;

use crate::config::AcksConfig;
use crate::events::Event;
use crate::execute::document_properties;
use crate::hub::{Inner, SessionEnd, now, on_journal};
use crate::metrics::{JournalOperation, Metrics};
use crate::outcome::{Outcome, OutcomeReason};
use crate::park::notify;
use crate::pool::PoolError;
use crate::publish::LanePublisher;

/// How many overdue documents one journal call claims; more wait for the next call.
const OVERDUE_BATCH: u32 = 100;

/// Every `acks.check_every`, reports the outbound documents whose receipt is overdue to the
/// back-office once as an `awaiting-ack` outcome, claims them (by compare-and-set in the
/// journal, so among hubs sharing it exactly one gets each claim) and resends them to the
/// partner while resends are allowed. Ends on shutdown, or with an error when the broker fails.
pub(crate) async fn watch_acks(
    inner: Arc<Inner>,
    connection: Arc<Connection>,
    stop: CancellationToken,
) -> Result<(), SessionEnd> {
    let acks = inner.config.acks;
    let publisher = LanePublisher::open(connection.clone()).await?;
    let span = info_span!(
        "acks",
        timeout_ms = acks.timeout.as_millis() as u64,
        resend = acks.resend
    );
    let mut hub = OnBroker {
        inner: inner.clone(),
        publisher,
    };
    async move {
        loop {
            tokio::select! {
                () = stop.cancelled() => return Ok(()),
                () = tokio::time::sleep(acks.check_every) => {}
            }
            check(&mut hub, &acks, &inner.metrics).await?;
        }
    }
    .instrument(span)
    .await
}

/// What the watcher needs of the hub: its journal (on a step thread), and the broker to report
/// and resend on, each publish confirmed.
pub(crate) trait Watched {
    /// Runs `f` with the journal.
    async fn journal<R, F>(&self, f: F) -> Result<R, PoolError>
    where
        R: Send + 'static,
        F: FnOnce(&dyn Journal) -> R + Send + 'static;

    /// Tells the back-office (a refusal parks the outcome itself; `Err` is a failed session).
    async fn report(&mut self, outcome: &Outcome) -> Result<(), AmqpError>;

    /// Publishes the document's journaled bytes to its partner queue again.
    async fn resend(&mut self, overdue: &Overdue) -> Result<(), AmqpError>;

    /// The routes (kind, receiver) whose channel tracks its documents to their outcome itself:
    /// left alone. None by default.
    fn tracked_by_channel(&self) -> Vec<(DocumentKind, asw_model::MemberState)> {
        Vec::new()
    }
}

struct OnBroker {
    inner: Arc<Inner>,
    publisher: LanePublisher,
}

impl Watched for OnBroker {
    async fn journal<R, F>(&self, f: F) -> Result<R, PoolError>
    where
        R: Send + 'static,
        F: FnOnce(&dyn Journal) -> R + Send + 'static,
    {
        on_journal(&self.inner, move |_, j| f(j)).await
    }

    async fn report(&mut self, outcome: &Outcome) -> Result<(), AmqpError> {
        notify(&self.inner, &mut self.publisher, outcome).await
    }

    fn tracked_by_channel(&self) -> Vec<(DocumentKind, asw_model::MemberState)> {
        self.inner.config.ippc_routes()
    }

    async fn resend(&mut self, overdue: &Overdue) -> Result<(), AmqpError> {
        let header = &overdue.record.summary.header;
        // The exact bytes journaled when it was signed: same id, same signature.
        self.publisher
            .publish(
                names::PARTNER_OUT_EXCHANGE,
                &crate::execute::partner_key(&self.inner, header),
                &overdue.record.bytes,
                &document_properties(header),
            )
            .await
    }
}

/// One check: reports what is overdue, then claims it, then resends what the claims say, in
/// batches until nothing more is due. A journal error ends the check (the next one tries
/// again); a failed broker session is `Err`.
pub(crate) async fn check(
    hub: &mut impl Watched,
    acks: &AcksConfig,
    metrics: &Metrics,
) -> Result<(), AmqpError> {
    let kinds: Vec<DocumentKind> = DocumentKind::all()
        .into_iter()
        .filter(|k| k.ack_kind().is_some())
        .collect();
    let tracked_by_channel = hub.tracked_by_channel();
    loop {
        let at = now();
        let query = OverdueQuery {
            kinds: kinds.clone(),
            due_before: at - acks.timeout,
            max_resends: acks.resend,
            tracked_by_channel: tracked_by_channel.clone(),
            limit: OVERDUE_BATCH,
        };
        let due = {
            let query = query.clone();
            hub.journal(move |j| due_for_report(j, &query)).await
        };
        let Some(due) = journaled(metrics, due) else {
            return Ok(());
        };
        let mut reported = HashSet::new();
        for summary in &due {
            let outcome = awaiting_ack(summary, at, acks.resend);
            hub.report(&outcome).await?;
            reported.insert(summary.message_id());
            Event::AwaitingAck {
                header: &summary.header,
                waited_seconds: (at - summary.updated_at).whole_seconds(),
            }
            .emit(metrics);
        }
        let claimed = {
            let query = query.clone();
            hub.journal(move |j| j.claim_overdue(&query, at)).await
        };
        let Some(claimed) = journaled(metrics, claimed) else {
            return Ok(());
        };
        for overdue in &claimed {
            overdue_claimed(hub, overdue, &reported, at, metrics).await?;
        }
        if claimed.len() < OVERDUE_BATCH as usize {
            return Ok(());
        }
    }
}

/// What the journal answered; `None` (counted and logged) when it failed: the check ends and
/// the next one tries again.
fn journaled<T, E: std::fmt::Display>(
    metrics: &Metrics,
    answer: Result<Result<T, E>, PoolError>,
) -> Option<T> {
    let error = match answer {
        Ok(Ok(answer)) => return Some(answer),
        Ok(Err(e)) => e.to_string(),
        Err(e) => e.to_string(),
    };
    metrics.journal_error(JournalOperation::ClaimOverdue);
    warn!(error = %error, "Cannot look for overdue receipts; trying again later.");
    None
}

/// The documents a claim would report now: in `queued` or `sent` since before `due_before`, of
/// the kinds asked and not of a route tracked by its channel. Nothing is written.
fn due_for_report(
    journal: &dyn Journal,
    query: &OverdueQuery,
) -> Result<Vec<MessageSummary>, asw_journal::JournalError> {
    let mut due = Vec::new();
    for state in [State::Queued, State::Sent] {
        let filter = Filter {
            direction: Some(Direction::Outbound),
            state: Some(state),
            until: Some(query.due_before),
            limit: query.limit,
            ..Filter::default()
        };
        due.extend(
            journal
                .list(&filter)?
                .into_iter()
                .filter(|m| query.kinds.contains(&m.header.kind))
                .filter(|m| {
                    !query
                        .tracked_by_channel
                        .contains(&(m.header.kind, m.header.receiver))
                }),
        );
    }
    due.sort_by_key(|m| m.updated_at);
    due.truncate(query.limit as usize);
    Ok(due)
}

/// The `awaiting-ack` outcome of a document waiting since its last update, with the resend its
/// claim is about to count.
fn awaiting_ack(summary: &MessageSummary, at: OffsetDateTime, max_resends: u32) -> Outcome {
    let header = &summary.header;
    let mut outcome = Outcome::new(
        "awaiting-ack",
        Some(header.message_id),
        Some(header.kind),
        Some(header.receiver),
        at,
    );
    outcome.waited_seconds = Some((at - summary.updated_at).whole_seconds());
    outcome.resends = Some(u32::from(max_resends > 0));
    let since = asw_model::document::format_timestamp(summary.updated_at);
    outcome.reasons = vec![OutcomeReason {
        code: "ACK-OVERDUE".into(),
        text: format!(
            "no receipt from the partner since {since} ({})",
            summary.state
        ),
    }];
    outcome
}

/// Acts on one claim: reports it if the claim says so and it was not reported before the claim
/// (it became due in between), and resends it if the claim is a resend. A resend the broker
/// refuses (its partner queue is gone) is logged: the next check looks at it again while
/// resends are allowed.
async fn overdue_claimed(
    hub: &mut impl Watched,
    overdue: &Overdue,
    reported: &HashSet<Uuid>,
    at: OffsetDateTime,
    metrics: &Metrics,
) -> Result<(), AmqpError> {
    let header = &overdue.record.summary.header;
    let waited = (at - overdue.waiting_since).whole_seconds();
    if overdue.reported && !reported.contains(&header.message_id) {
        let mut outcome = Outcome::new(
            "awaiting-ack",
            Some(header.message_id),
            Some(header.kind),
            Some(header.receiver),
            at,
        );
        outcome.waited_seconds = Some(waited);
        outcome.resends = Some(overdue.resends);
        outcome.reasons = overdue
            .record
            .summary
            .reason
            .iter()
            .map(OutcomeReason::from)
            .collect();
        hub.report(&outcome).await?;
        Event::AwaitingAck {
            header,
            waited_seconds: waited,
        }
        .emit(metrics);
    }
    if overdue.resend {
        match hub.resend(overdue).await {
            Ok(()) => Event::Resent {
                header,
                resends: overdue.resends,
                waited_seconds: waited,
            }
            .emit(metrics),
            Err(e) if e.is_refusal_of_the_message() => warn!(
                message_id = %header.message_id,
                error = %e,
                "The broker refused a resend."
            ),
            Err(e) => return Err(e),
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests;
