//! The receipts watcher: outbound documents whose receipt is overdue are claimed in the journal,
//! reported to their back-office once (`awaiting-ack`) and resent to the partner while resends
//! are allowed.

use std::sync::Arc;

use asw_amqp::Connection;
use asw_model::DocumentKind;
use asw_route::names;
use time::OffsetDateTime;
use tokio_util::sync::CancellationToken;
use tracing::{Instrument, info_span, warn};

use crate::events::Event;
use crate::hub::{Inner, SessionEnd, document_properties, now, on_journal};
use crate::metrics::JournalOperation;
use crate::outcome::{Outcome, OutcomeReason};
use crate::park::notify;
use crate::publish::{Failure, LanePublisher};

/// How many overdue documents one journal call claims; more wait for the next call.
const OVERDUE_BATCH: u32 = 100;

/// Every `acks.check_every`, claims the outbound documents whose receipt is overdue (by
/// compare-and-set in the journal, so among hubs sharing it exactly one gets each), reports each
/// to the back-office once as an `awaiting-ack` outcome and resends it to the partner while
/// resends are allowed. Ends on shutdown, or with an error when the broker fails.
pub(crate) async fn watch_acks(
    inner: Arc<Inner>,
    connection: Arc<Connection>,
    stop: CancellationToken,
) -> Result<(), SessionEnd> {
    let acks = inner.config.acks;
    let mut publisher = LanePublisher::open(connection.clone()).await?;
    let kinds: Vec<DocumentKind> = DocumentKind::ALL
        .into_iter()
        .filter(|k| k.ack_kind().is_some())
        .collect();
    let span = info_span!(
        "acks",
        timeout_ms = acks.timeout.as_millis() as u64,
        resend = acks.resend
    );
    async move {
        loop {
            tokio::select! {
                () = stop.cancelled() => return Ok(()),
                () = tokio::time::sleep(acks.check_every) => {}
            }
            loop {
                let at = now();
                let query = asw_journal::OverdueQuery {
                    kinds: kinds.clone(),
                    due_before: at - acks.timeout,
                    max_resends: acks.resend,
                    limit: OVERDUE_BATCH,
                };
                let claimed = match on_journal(&inner, move |_, j| j.claim_overdue(&query, at))
                    .await
                {
                    Ok(Ok(claimed)) => claimed,
                    Ok(Err(e)) => {
                        inner.metrics.journal_error(JournalOperation::ClaimOverdue);
                        warn!(error = %e, "Cannot look for overdue receipts; trying again later.");
                        break;
                    }
                    Err(e) => {
                        inner.metrics.journal_error(JournalOperation::ClaimOverdue);
                        warn!(error = %e, "Cannot look for overdue receipts; trying again later.");
                        break;
                    }
                };
                let full = claimed.len() == OVERDUE_BATCH as usize;
                for overdue in &claimed {
                    match overdue_receipt(&inner, &mut publisher, overdue, at).await {
                        Ok(()) => {}
                        Err(Failure::Session(e)) => return Err(e.into()),
                        // The resend of one document refused (its partner queue is gone): the
                        // next check looks at it again while resends are allowed.
                        Err(Failure::Refused { error, .. }) => warn!(
                            message_id = %overdue.record.summary.header.message_id,
                            error = %error,
                            "The broker refused a resend."
                        ),
                        Err(Failure::Fault(refusal)) => warn!(
                            message_id = %overdue.record.summary.header.message_id,
                            reason = %refusal.text,
                            "Cannot report or resend an overdue document."
                        ),
                    }
                }
                if !full {
                    break;
                }
            }
        }
    }
    .instrument(span)
    .await
}

/// Reports one claimed overdue document and resends it, as the claim says.
async fn overdue_receipt(
    inner: &Inner,
    publisher: &mut LanePublisher,
    overdue: &asw_journal::Overdue,
    at: OffsetDateTime,
) -> Result<(), Failure> {
    let counters = &inner.metrics;
    let header = &overdue.record.summary.header;
    let waited = (at - overdue.waiting_since).whole_seconds();
    if overdue.reported {
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
        notify(inner, publisher, &outcome).await?;
        Event::AwaitingAck {
            header,
            waited_seconds: waited,
        }
        .emit(counters);
    }
    if overdue.resend {
        // The exact bytes journaled when it was signed: same id, same signature.
        publisher
            .publish(
                names::PARTNER_OUT_EXCHANGE,
                header.receiver.code(),
                &overdue.record.bytes,
                &document_properties(header),
            )
            .await?;
        Event::Resent {
            header,
            resends: overdue.resends,
            waited_seconds: waited,
        }
        .emit(counters);
    }
    Ok(())
}
