//! The imports' settlements kept in the journal ([`Journal::record_settlement`]), keyed by the
//! IPPC hub's delivery number under the channel name [`CHANNEL`]: an envelope the hub lists
//! again (our acknowledgement was lost), even after a restart or by another hub process sharing
//! the journal, gets the same acknowledgement and is never delivered or parked twice.

use std::sync::Arc;

use asw_journal::{ChannelSettlement, Journal, SettlementOutcome};
use time::OffsetDateTime;

use super::import::{Settled, Settlement};

/// The channel name the IPPC ePhyto Hub's settlements are kept under.
pub const CHANNEL: &str = "ippc";

/// [`Settled`] over the journal.
///
/// A delivered envelope is kept as `delivered` with its warning as the note; a refused one as
/// `parked` (the importer parks it before it tells the hub) with the message sent to the hub.
pub struct JournalSettled {
    journal: Arc<dyn Journal>,
}

impl std::fmt::Debug for JournalSettled {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("JournalSettled").finish_non_exhaustive()
    }
}

impl JournalSettled {
    /// The settlements of `journal`.
    pub fn new(journal: Arc<dyn Journal>) -> JournalSettled {
        JournalSettled { journal }
    }
}

/// What the importer acts on, from what the journal keeps.
fn from_journal(kept: ChannelSettlement) -> Settlement {
    match kept.outcome {
        SettlementOutcome::Delivered => Settlement::Delivered { warning: kept.note },
        SettlementOutcome::Parked | SettlementOutcome::Refused => Settlement::Refused {
            message: kept.note.unwrap_or_default(),
        },
    }
}

/// The error and its causes, `: `-separated.
fn chain(error: &dyn std::error::Error) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}

impl Settled for JournalSettled {
    fn settlement(&self, number: &str) -> Result<Option<Settlement>, String> {
        self.journal
            .settlement(CHANNEL, number)
            .map(|kept| kept.map(from_journal))
            .map_err(|e| chain(&e))
    }

    fn record(&mut self, number: &str, settlement: Settlement) -> Result<(), String> {
        let (outcome, note) = match settlement {
            Settlement::Delivered { warning } => (SettlementOutcome::Delivered, warning),
            Settlement::Refused { message } => (SettlementOutcome::Parked, Some(message)),
        };
        self.journal
            .record_settlement(&ChannelSettlement {
                channel: CHANNEL.to_owned(),
                reference: number.to_owned(),
                outcome,
                note,
                message_id: None,
                at: OffsetDateTime::now_utc(),
            })
            .map(|_| ())
            .map_err(|e| chain(&e))
    }
}

#[cfg(test)]
mod tests {
    use asw_journal::SqliteJournal;

    use super::*;

    fn journal() -> Arc<dyn Journal> {
        Arc::new(SqliteJournal::in_memory().expect("in-memory journal"))
    }

    #[test]
    fn settlements_come_back_as_recorded_and_the_first_stays() {
        let journal = journal();
        let mut settled = JournalSettled::new(Arc::clone(&journal));
        assert_eq!(settled.settlement("EPH-1"), Ok(None));
        let cases = [
            ("EPH-1", Settlement::Delivered { warning: None }),
            (
                "EPH-2",
                Settlement::Delivered {
                    warning: Some("SPS-001 line 4: IssueDateTime out of range".into()),
                },
            ),
            (
                "EPH-3",
                Settlement::Refused {
                    message: "Content is neither XML nor base64".into(),
                },
            ),
        ];
        for (number, settlement) in &cases {
            settled.record(number, settlement.clone()).expect("record");
        }
        // A second settler (another poll, a restart, another process) sees the first one's.
        let again = JournalSettled::new(Arc::clone(&journal));
        for (number, settlement) in &cases {
            assert_eq!(
                again.settlement(number),
                Ok(Some(settlement.clone())),
                "{number}"
            );
        }
        settled
            .record("EPH-3", Settlement::Delivered { warning: None })
            .expect("record again");
        assert_eq!(again.settlement("EPH-3"), Ok(Some(cases[2].1.clone())));
        // Kept under the channel's name, as parked (the importer parks what it refuses).
        let kept = journal
            .settlement(CHANNEL, "EPH-3")
            .expect("lookup")
            .expect("kept");
        assert_eq!(kept.outcome, SettlementOutcome::Parked);
        assert_eq!(
            kept.note.as_deref(),
            Some("Content is neither XML nor base64")
        );
        assert_eq!(journal.settlement("other", "EPH-3").expect("lookup"), None);
    }
}
