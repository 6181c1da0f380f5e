//! What the hub tells a back-office about a document it sent: an `outcome.<kind>.<receiver>`
//! message in `asw.inbound`, JSON, one per event (rejected here, acknowledged or rejected by the
//! partner, a status from the partner, failed for good, no receipt in time).

use asw_model::{DocumentKind, MemberState};
use serde::Serialize;
use time::OffsetDateTime;
use uuid::Uuid;

/// An outcome event about an outbound document.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Outcome {
    /// The outbound document's message id.
    pub message_id: Option<Uuid>,
    /// Its kind (`formd`, `acdd`...), when known.
    pub kind: Option<String>,
    /// Its receiver, when known.
    pub receiver: Option<String>,
    /// `rejected` (refused by this hub or by the partner), `acknowledged` (partner receipt),
    /// `status` (a status or response from the partner), `failed` (given up), `awaiting-ack`
    /// (no receipt within the configured time).
    pub outcome: &'static str,
    /// For `status`: what the partner said (`preferential-treatment-given`, `accepted`...).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub status: Option<String>,
    /// The partner's answer that caused this outcome, if any.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub answer_id: Option<Uuid>,
    /// For `awaiting-ack`: how long the document waited for its receipt, in seconds.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub waited_seconds: Option<i64>,
    /// For `awaiting-ack`: how many times the hub resent it so far (the resend made with this
    /// report included).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub resends: Option<u32>,
    /// Why, when negative: code and text (with line for validation problems).
    pub reasons: Vec<OutcomeReason>,
    /// When the hub observed it (RFC 3339).
    pub at: String,
}

/// One reason of an outcome.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct OutcomeReason {
    /// Stable code.
    pub code: String,
    /// Readable text.
    pub text: String,
}

impl From<&crate::process::Refusal> for OutcomeReason {
    fn from(refusal: &crate::process::Refusal) -> OutcomeReason {
        OutcomeReason {
            code: refusal.code.clone(),
            text: refusal.text.clone(),
        }
    }
}

impl From<&asw_journal::Reason> for OutcomeReason {
    fn from(reason: &asw_journal::Reason) -> OutcomeReason {
        OutcomeReason {
            code: reason.code.clone(),
            text: reason.text.clone(),
        }
    }
}

impl Outcome {
    /// A new outcome at `at`.
    pub fn new(
        outcome: &'static str,
        message_id: Option<Uuid>,
        kind: Option<DocumentKind>,
        receiver: Option<MemberState>,
        at: OffsetDateTime,
    ) -> Outcome {
        Outcome {
            message_id,
            kind: kind.map(|k| k.as_str().to_owned()),
            receiver: receiver.map(|r| r.code().to_owned()),
            outcome,
            status: None,
            answer_id: None,
            waited_seconds: None,
            resends: None,
            reasons: Vec::new(),
            at: asw_model::document::format_timestamp(at),
        }
    }

    /// The routing key in `asw.inbound`: `outcome.<kind>.<receiver>`, with `unknown` for what
    /// could not be read.
    pub fn routing_key(&self) -> String {
        format!(
            "outcome.{}.{}",
            self.kind.as_deref().unwrap_or("unknown"),
            self.receiver.as_deref().unwrap_or("unknown")
        )
    }

    /// The JSON body.
    pub fn to_json(&self) -> Vec<u8> {
        // Serialising a struct of strings and vectors cannot fail.
        serde_json::to_vec_pretty(self).unwrap_or_default()
    }
}
