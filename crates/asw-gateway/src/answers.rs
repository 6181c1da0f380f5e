//! Answers: the partner's answers to our documents (receipts, statuses, responses), taken only
//! from whom and of what kind may answer and correlated with the original they answer, and the
//! hub's own answers (receipts and rejections) to a partner's documents, each signed once.

use asw_journal::{Direction, Journal, JournalError, Reason, Recorded, State, Transition};
use asw_model::{Header, MemberState};
use time::OffsetDateTime;
use uuid::Uuid;

use crate::outcome::{Outcome, OutcomeReason};
use crate::process::{Accepted, Refusal, Signed};
use crate::work::Work;

/// Why `answer` cannot answer `original`, if it cannot: it comes from another member state than
/// the one the original was sent to (`ANSWER-SENDER`), or its kind does not answer the
/// original's (`ANSWER-KIND`).
pub fn answer_mismatch(answer: &Header, original: &Header) -> Option<Refusal> {
    if answer.sender != original.receiver {
        return Some(Refusal {
            code: "ANSWER-SENDER".into(),
            text: format!(
                "{} answers message {} that was sent to {}, not to {}",
                answer.kind, original.message_id, original.receiver, answer.sender
            ),
        });
    }
    if answer.kind.answers() != Some(original.kind) {
        return Some(Refusal {
            code: "ANSWER-KIND".into(),
            text: format!(
                "a {} cannot answer message {}, which is a {}",
                answer.kind, original.message_id, original.kind
            ),
        });
    }
    None
}

/// The hub's receipt or rejection for `original`, journaled as outbound. Its message id is
/// derived from the original's, so an answer journaled before is reused as it was signed. One
/// already queued for the partner is sent again, the same bytes under the same id: the original
/// came again because its sender is still waiting (its resend after a lost receipt), and the
/// sender drops a copy it already has. `None` only when the answer was parked or discarded.
#[expect(
    clippy::too_many_arguments,
    reason = "the answer's inputs: worker, journal, the original and what to say, when"
)]
pub(crate) fn own_answer(
    worker: &mut impl Work,
    journal: &dyn Journal,
    original: &Header,
    reply_to: MemberState,
    reference: Option<&str>,
    refusals: &[Refusal],
    first_seen: bool,
    now: OffsetDateTime,
) -> Result<Option<Signed>, String> {
    let Some(kind) = original.kind.ack_kind() else {
        return Ok(None);
    };
    let id = asw_model::reply::reply_message_id(original.message_id, kind);
    // The answer to a message first seen now cannot be journaled yet (and if it were, recording
    // the new one below finds it): only look it up for a message seen before.
    let existing = if first_seen {
        None
    } else {
        journal
            .get(Direction::Outbound, id)
            .map_err(|e| e.to_string())?
    };
    if let Some(record) = existing {
        return Ok(match record.summary.state {
            state if state.is_parked() => None,
            _ => Some(Signed {
                header: record.summary.header.clone(),
                bytes: record.bytes.into(),
            }),
        });
    }
    let Some(signed) = worker.receipt(original, reply_to, reference, refusals, now) else {
        return Ok(None);
    };
    let signed = signed.map_err(|r| format!("{} {}", r.code, r.text))?;
    match journal.record_signed(&signed.header, &signed.bytes, &signed.bytes, now) {
        Ok(Recorded::New) => Ok(Some(signed)),
        // Another process answered at the same moment: its answer is the one.
        Ok(Recorded::Existing(record)) => Ok(Some(Signed {
            header: signed.header,
            bytes: record.bytes.into(),
        })),
        Ok(Recorded::Conflict(conflict)) => Ok(match conflict.existing.summary.state {
            state if state.is_parked() => None,
            _ => Some(Signed {
                header: signed.header,
                bytes: conflict.existing.bytes.into(),
            }),
        }),
        Err(e) => Err(e.to_string()),
    }
}

/// The outcome an answer reports of the original it answers (`original_id`), for that
/// original's back-office; a receipt also moves the original to `acknowledged` or `rejected`
/// (a move the journal refuses, against an outcome already known, is logged and not applied).
/// `None` for an answer to a message this hub did not send.
pub(crate) fn correlate(
    journal: &dyn Journal,
    header: &Header,
    original_id: Uuid,
    accepted: &Accepted,
    now: OffsetDateTime,
) -> Result<Option<Outcome>, JournalError> {
    let Some(original) = journal.find_original(Direction::Outbound, original_id)? else {
        tracing::warn!(message_id = %header.message_id, correlation_id = %original_id, "Answer to a message this hub did not send.");
        return Ok(None);
    };
    let status = accepted.status.clone();
    let (said, to) = match header.kind {
        kind if kind.is_receipt() => match status.as_deref() {
            Some("rejected") => ("rejected", Some(State::Rejected)),
            _ => ("acknowledged", Some(State::Acknowledged)),
        },
        _ => ("status", None),
    };
    if let Some(to) = to {
        let reason = (to == State::Rejected).then(|| {
            let text = accepted
                .reasons
                .iter()
                .map(|(c, t)| format!("{c} {t}"))
                .collect::<Vec<_>>()
                .join("; ");
            Reason::new("PARTNER-REJECTED", text)
        });
        let moved =
            journal.transition(Direction::Outbound, original_id, to, reason.as_ref(), now)?;
        if let Transition::Refused { current } = moved {
            tracing::warn!(message_id = %original_id, %current, to = %to, "Answer contradicts the journal; not applied.");
        }
    }
    let original = &original.summary.header;
    let mut outcome = Outcome::new(
        said,
        Some(original_id),
        Some(original.kind),
        Some(original.receiver),
        now,
    );
    outcome.status = status;
    outcome.answer_id = Some(header.message_id);
    outcome.reasons = accepted
        .reasons
        .iter()
        .map(|(code, text)| OutcomeReason {
            code: code.clone(),
            text: text.clone(),
        })
        .collect();
    Ok(Some(outcome))
}

#[cfg(test)]
mod tests {
    use super::*;
    use asw_model::DocumentKind;
    use asw_model::sample::{self, SampleSpec};

    fn state(code: &str) -> MemberState {
        MemberState::from_alpha2(code).expect("member state")
    }

    fn header(kind: DocumentKind, from: &str, to: &str) -> Header {
        sample::message(&SampleSpec {
            kind,
            from: state(from),
            to: state(to),
            items: 1,
            seed: 3,
            created_at: OffsetDateTime::now_utc(),
        })
        .header
    }

    #[test]
    fn an_answer_is_taken_only_from_the_receiver_of_the_original_and_of_an_answering_kind() {
        let original = header(DocumentKind::FormD, "VN", "TH");
        let receipt = header(DocumentKind::FormDAck, "TH", "VN");
        assert_eq!(answer_mismatch(&receipt, &original), None);
        let status = header(DocumentKind::FormDStatus, "TH", "VN");
        assert_eq!(answer_mismatch(&status, &original), None);

        let from_elsewhere = header(DocumentKind::FormDAck, "SG", "VN");
        let refusal = answer_mismatch(&from_elsewhere, &original).expect("refused");
        assert_eq!(refusal.code, "ANSWER-SENDER");
        assert!(
            refusal.text.contains("sent to TH, not to SG"),
            "{}",
            refusal.text
        );

        let wrong_kind = header(DocumentKind::AcddResponse, "TH", "VN");
        let refusal = answer_mismatch(&wrong_kind, &original).expect("refused");
        assert_eq!(refusal.code, "ANSWER-KIND");
        let acdd = header(DocumentKind::Acdd, "VN", "TH");
        assert_eq!(
            answer_mismatch(&header(DocumentKind::AcddAck, "TH", "VN"), &acdd),
            None
        );
        assert_eq!(
            answer_mismatch(&receipt, &acdd).map(|r| r.code),
            Some("ANSWER-KIND".to_owned())
        );
    }
}
