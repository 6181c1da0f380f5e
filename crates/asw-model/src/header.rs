//! The envelope header: who sends which document to whom, in answer to what.

use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;
use uuid::Uuid;

use crate::xml::{self, Element, Limits};
use crate::{DocumentKind, MemberState, ModelError, ns};

/// The header of an ASW message, the facts needed to route, correlate and de-duplicate it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Header {
    /// Unique id of this document; a resend keeps it.
    pub message_id: Uuid,
    /// The message this one answers, if any.
    pub correlation_id: Option<Uuid>,
    /// The member state that sends the document.
    pub sender: MemberState,
    /// The member state the document is for.
    pub receiver: MemberState,
    /// What the body holds.
    pub kind: DocumentKind,
    /// Version of the document schema (`1.0`).
    pub version: String,
    /// When the sender created the message.
    pub created_at: OffsetDateTime,
}

impl Header {
    /// Reads the header of a message from untrusted bytes: the whole document is checked within
    /// `limits`, only the envelope header is built.
    pub fn read(bytes: &[u8], limits: &Limits) -> Result<Header, ModelError> {
        let header = |namespace: &str, name: &str| namespace == ns::ENVELOPE && name == "Header";
        Header::from_message(&xml::parse_selected(bytes, limits, &header)?.root)
    }

    /// Reads the header from the root element of a parsed message.
    pub fn from_message(root: &Element) -> Result<Header, ModelError> {
        let bad = |line: u32, message: String| ModelError::Header { line, message };
        if !root.is(ns::ENVELOPE, "Message") {
            return Err(bad(
                root.line,
                format!(
                    "root element is {{{}}}{}, expected {{{}}}Message",
                    root.namespace,
                    root.name,
                    ns::ENVELOPE
                ),
            ));
        }
        let header = root
            .child(ns::ENVELOPE, "Header")
            .ok_or_else(|| bad(root.line, "no Header element".into()))?;
        let field = |name: &str| {
            header
                .child(ns::ENVELOPE, name)
                .ok_or_else(|| bad(header.line, format!("no {name} element")))
        };
        let uuid = |e: &Element| {
            Uuid::try_parse(e.trimmed()).map_err(|_| {
                bad(
                    e.line,
                    format!("{} {:?} is not a UUID", e.name, e.trimmed()),
                )
            })
        };
        let state = |e: &Element| {
            MemberState::from_alpha2(e.trimmed()).ok_or_else(|| {
                bad(
                    e.line,
                    format!("{} {:?} is not a member state", e.name, e.trimmed()),
                )
            })
        };
        let message_id = uuid(field("MessageId")?)?;
        let correlation_id = header
            .child(ns::ENVELOPE, "CorrelationId")
            .map(uuid)
            .transpose()?;
        let sender = state(field("Sender")?)?;
        let receiver = state(field("Receiver")?)?;
        let kind_element = field("DocumentKind")?;
        let kind = kind_element.trimmed().parse().map_err(|_| {
            bad(
                kind_element.line,
                format!("DocumentKind {:?} is unknown", kind_element.trimmed()),
            )
        })?;
        let version = field("DocumentVersion")?.trimmed().to_owned();
        let created = field("CreatedAt")?;
        let created_at = OffsetDateTime::parse(created.trimmed(), &Rfc3339).map_err(|_| {
            bad(
                created.line,
                format!(
                    "CreatedAt {:?} is not a timestamp with offset",
                    created.trimmed()
                ),
            )
        })?;
        Ok(Header {
            message_id,
            correlation_id,
            sender,
            receiver,
            kind,
            version,
            created_at,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MESSAGE: &str = r#"<asw:Message xmlns:asw="urn:aswhub:asw:envelope:1">
  <asw:Header>
    <asw:MessageId>0b4c1f7e-6a57-4d0e-9c1e-2d5f7e7a0c11</asw:MessageId>
    <asw:CorrelationId>0b4c1f7e-6a57-4d0e-9c1e-2d5f7e7a0c12</asw:CorrelationId>
    <asw:Sender>TH</asw:Sender>
    <asw:Receiver>VN</asw:Receiver>
    <asw:DocumentKind>formd-status</asw:DocumentKind>
    <asw:DocumentVersion>1.0</asw:DocumentVersion>
    <asw:CreatedAt>2026-01-05T08:00:00+07:00</asw:CreatedAt>
  </asw:Header>
  <asw:Body/>
</asw:Message>"#;

    #[test]
    fn reads_every_field() {
        let header = Header::read(MESSAGE.as_bytes(), &Limits::default()).expect("valid header");
        assert_eq!(
            header.message_id.to_string(),
            "0b4c1f7e-6a57-4d0e-9c1e-2d5f7e7a0c11"
        );
        assert_eq!(
            header.correlation_id.map(|u| u.to_string()).as_deref(),
            Some("0b4c1f7e-6a57-4d0e-9c1e-2d5f7e7a0c12")
        );
        assert_eq!((header.sender.code(), header.receiver.code()), ("TH", "VN"));
        assert_eq!(header.kind, DocumentKind::FormDStatus);
        assert_eq!(header.created_at.unix_timestamp(), 1_767_574_800);
    }

    #[test]
    fn names_the_bad_field_and_its_line() {
        let bad = MESSAGE.replace("<asw:Sender>TH", "<asw:Sender>XX");
        let err = Header::read(bad.as_bytes(), &Limits::default()).expect_err("bad sender");
        assert_eq!(
            err.to_string(),
            "line 5: envelope header: Sender \"XX\" is not a member state"
        );
        let missing = MESSAGE.replace("<asw:Receiver>VN</asw:Receiver>", "");
        let err = Header::read(missing.as_bytes(), &Limits::default()).expect_err("no receiver");
        assert_eq!(
            err.to_string(),
            "line 2: envelope header: no Receiver element"
        );
    }
}
