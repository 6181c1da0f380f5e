//! The JSON shapes of journal records, their history and document bytes: stable, shared by
//! `aswctl --format json` and the console's HTTP API.

use asw_journal::{MessageSummary, TransitionRecord};
use base64::Engine;
use serde::Serialize;
use sha2::{Digest, Sha256};

/// An instant as RFC 3339 in UTC.
pub fn rfc3339(t: time::OffsetDateTime) -> String {
    asw_model::document::format_timestamp(t)
}

/// A journal record without its bytes, as JSON.
#[derive(Debug, Clone, Serialize)]
pub struct SummaryView {
    /// `inbound` or `outbound`.
    pub direction: &'static str,
    /// The ASW message id.
    pub message_id: String,
    /// The message it answers, if any.
    pub correlation_id: Option<String>,
    /// Document kind.
    pub kind: &'static str,
    /// Sending member state.
    pub sender: &'static str,
    /// Receiving member state.
    pub receiver: &'static str,
    /// Journal state.
    pub state: &'static str,
    /// For a parked state, the state it was parked from.
    pub parked_from: Option<&'static str>,
    /// Failed attempts at the current stage.
    pub attempts: u32,
    /// Code of the last reason.
    pub reason_code: Option<String>,
    /// Text of the last reason.
    pub reason: Option<String>,
    /// When the sender created it.
    pub created_at: String,
    /// When the hub first recorded it.
    pub first_seen: String,
    /// When it last moved.
    pub updated_at: String,
    /// SHA-256 of the bytes first recorded (hex).
    pub sha256: String,
}

impl From<&MessageSummary> for SummaryView {
    fn from(s: &MessageSummary) -> SummaryView {
        SummaryView {
            direction: s.direction.as_str(),
            message_id: s.header.message_id.to_string(),
            correlation_id: s.header.correlation_id.map(|c| c.to_string()),
            kind: s.header.kind.as_str(),
            sender: s.header.sender.code(),
            receiver: s.header.receiver.code(),
            state: s.state.as_str(),
            parked_from: s.parked_from.map(|p| p.as_str()),
            attempts: s.attempts,
            reason_code: s.reason.as_ref().map(|r| r.code.clone()),
            reason: s.reason.as_ref().map(|r| r.text.clone()),
            created_at: rfc3339(s.header.created_at),
            first_seen: rfc3339(s.first_seen),
            updated_at: rfc3339(s.updated_at),
            sha256: s.digest_hex(),
        }
    }
}

/// One history row, as JSON.
#[derive(Debug, Clone, Serialize)]
pub struct HistoryView {
    /// Position in the journal.
    pub seq: i64,
    /// `recorded`, `moved`, `replayed` or `discarded`.
    pub event: &'static str,
    /// The state before.
    pub from: Option<&'static str>,
    /// The state after.
    pub to: &'static str,
    /// When.
    pub at: String,
    /// Code of the reason given.
    pub reason_code: Option<String>,
    /// Text of the reason given.
    pub reason: Option<String>,
    /// The hub or the operator.
    pub actor: String,
}

impl From<&TransitionRecord> for HistoryView {
    fn from(t: &TransitionRecord) -> HistoryView {
        HistoryView {
            seq: t.seq,
            event: t.event.as_str(),
            from: t.from.map(|f| f.as_str()),
            to: t.to.as_str(),
            at: rfc3339(t.at),
            reason_code: t.reason.as_ref().map(|r| r.code.clone()),
            reason: t.reason.as_ref().map(|r| r.text.clone()),
            actor: t.actor.clone(),
        }
    }
}

/// Document bytes as JSON: the text when it is UTF-8 (documents are), base64 otherwise.
#[derive(Debug, Clone, Serialize)]
pub struct DocumentView {
    /// Length in bytes.
    pub bytes: usize,
    /// SHA-256 (hex).
    pub sha256: String,
    /// The document, if UTF-8.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub text: Option<String>,
    /// The bytes in base64, if not UTF-8.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub base64: Option<String>,
}

impl DocumentView {
    /// The view of `bytes`.
    pub fn of(bytes: &[u8]) -> DocumentView {
        let text = std::str::from_utf8(bytes).ok().map(str::to_owned);
        DocumentView {
            bytes: bytes.len(),
            sha256: sha256_hex(bytes),
            base64: text
                .is_none()
                .then(|| base64::engine::general_purpose::STANDARD.encode(bytes)),
            text,
        }
    }
}

/// SHA-256 of `bytes` as lower-case hex.
pub fn sha256_hex(bytes: &[u8]) -> String {
    Sha256::digest(bytes)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// Who signed a document: the certificate its signature carries, read from the exact bytes.
#[derive(Debug, Clone, Serialize)]
pub struct SignatureView {
    /// The member state the certificate belongs to: the partner whose trust store certificate
    /// it is, or this hub for an outbound document signed with a certificate not in the trust
    /// store (its own); `None` if neither.
    pub signer: Option<&'static str>,
    /// The certificate's subject.
    pub subject: String,
    /// SHA-256 of the certificate (DER), lower-case hex.
    pub fingerprint: String,
    /// Valid until.
    pub not_after: String,
    /// Whether the trust store holds this exact certificate.
    pub trusted: bool,
}

impl SignatureView {
    /// The signature of `bytes` (the last `ds:Signature` child of the root with a certificate
    /// in its `KeyInfo`), if it has one that can be read. `own` is the hub's member state,
    /// claimed for an outbound document's certificate the trust store does not hold.
    pub fn of(
        bytes: &[u8],
        trust: &asw_sign::TrustSnapshot,
        own: Option<asw_model::MemberState>,
    ) -> Option<SignatureView> {
        let dsig = asw_sign::uri::DSIG;
        let selection = asw_model::xml::parse_selected(
            bytes,
            &asw_model::xml::Limits::default(),
            &|namespace, name| namespace == dsig && name == "Signature",
        )
        .ok()?;
        let child = |e: &asw_model::xml::Element, name: &str| {
            e.children
                .iter()
                .find(|c| &*c.namespace == dsig && c.name == name)
                .cloned()
        };
        let certificate = selection.root.children.iter().rev().find_map(|signature| {
            let data = child(signature, "KeyInfo").and_then(|k| child(&k, "X509Data"))?;
            child(&data, "X509Certificate")
        })?;
        let text: String = certificate
            .text
            .chars()
            .filter(|c| !c.is_ascii_whitespace())
            .collect();
        let der = base64::engine::general_purpose::STANDARD
            .decode(text)
            .ok()?;
        let info = asw_sign::CertificateInfo::from_der(&der).ok()?;
        let trusted = trust.find(&der);
        Some(SignatureView {
            signer: trusted
                .map(|t| t.member_state())
                .or(own)
                .map(asw_model::MemberState::code),
            subject: info.subject().to_owned(),
            fingerprint: info.fingerprint().to_owned(),
            not_after: rfc3339(info.not_after()),
            trusted: trusted.is_some(),
        })
    }
}
