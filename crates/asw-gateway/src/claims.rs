//! Who holds a message: a consumer that recorded a message and has not finished it holds its
//! claim for [`CLAIM_LEASE`]; a copy arriving meanwhile waits. A claim ends early when its
//! consumer lost its broker session ([`Abandoned`]) or an operator replayed the message.

use asw_journal::{Direction, Journal, State};
use time::OffsetDateTime;
use uuid::Uuid;

/// How long a message recorded but not finished belongs to the consumer that recorded it. A copy
/// arriving meanwhile (a concurrent duplicate) waits; after it, the first consumer is taken to
/// have died (a crash before the broker confirmed) and the copy takes over. Longer than the
/// publish-confirm timeout, so a live consumer is never overtaken.
pub const CLAIM_LEASE: time::Duration = time::Duration::seconds(45);

pub(crate) fn claimed_by_another(
    journal: &dyn Journal,
    record: &asw_journal::MessageRecord,
    now: OffsetDateTime,
    abandoned: &Abandoned,
) -> bool {
    !abandoned.take(record.summary.header.message_id)
        && now - record.summary.updated_at < CLAIM_LEASE
        && !released_by_replay(journal, &record.summary)
}

/// True if the last thing that happened to the message is an operator's replay
/// ([`Journal::replay`], `aswctl replay`): no consumer holds it, so the copy the operator
/// republished takes it at once rather than waiting out [`CLAIM_LEASE`]. On a journal error the
/// claim stands (the copy waits).
pub fn released_by_replay(journal: &dyn Journal, summary: &asw_journal::MessageSummary) -> bool {
    journal
        .history(summary.direction, summary.header.message_id)
        .ok()
        .and_then(|history| {
            history
                .last()
                .map(|t| t.event == asw_journal::Event::Replayed)
        })
        .unwrap_or(false)
}

/// True if the message was last parked because no back-office queue took it
/// (`DELIVERY-UNROUTABLE`: the broker returned it, so no copy reached anyone) and an operator
/// replayed it since: its delivery now is its first, not a possible duplicate. On a journal
/// error it counts as a possible duplicate.
pub(crate) fn replayed_after_unroutable(journal: &dyn Journal, message_id: Uuid) -> bool {
    let Ok(history) = journal.history(Direction::Inbound, message_id) else {
        return false;
    };
    let replayed = history
        .last()
        .is_some_and(|t| t.event == asw_journal::Event::Replayed);
    let parked_unroutable = history
        .iter()
        .rev()
        .find(|t| t.to == State::Failed)
        .and_then(|t| t.reason.as_ref())
        .is_some_and(|r| r.code == crate::publish::UNROUTABLE);
    replayed && parked_unroutable
}

/// Claims this process gave up: messages whose delivery was cut short when the broker session
/// failed, so their redelivery may take over at once instead of waiting out the lease.
#[derive(Debug, Default)]
pub struct Abandoned(std::sync::Mutex<std::collections::HashSet<Uuid>>);

impl Abandoned {
    /// Notes that this process stopped working on `id` without finishing it.
    pub fn add(&self, id: Uuid) {
        if let Ok(mut ids) = self.0.lock() {
            ids.insert(id);
        }
    }

    /// True (once) if this process abandoned `id`.
    pub(crate) fn take(&self, id: Uuid) -> bool {
        self.0
            .lock()
            .map(|mut ids| ids.remove(&id))
            .unwrap_or(false)
    }
}
