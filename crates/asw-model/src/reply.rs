//! Answers the hub itself writes: receipt acknowledgements (or rejections with reasons) of the
//! documents it receives. Their message id is derived from the answered message, so answering the
//! same document twice (after a crash, or to a partner's resend) gives the same id and the partner
//! drops the second copy.

use time::OffsetDateTime;
use uuid::Uuid;

use quick_xml::escape::escape;

use crate::document::{Acknowledgement, Document, Message, Reason, XmlBody, format_timestamp};
use crate::kinds::WrittenAs;
use crate::xml::Element;
use crate::{DocumentKind, Header, ns};

/// Namespace of the v5 UUIDs of the hub's own answers.
const REPLY_NAMESPACE: Uuid = Uuid::from_u128(0x6a1f_3c2e_9b7d_4e58_8a0c_5d2b_7f41_e903);

/// The message id of the `kind` answer to message `original`: always the same for the same pair.
pub fn reply_message_id(original: Uuid, kind: DocumentKind) -> Uuid {
    let mut name = original.as_bytes().to_vec();
    name.extend_from_slice(kind.as_str().as_bytes());
    Uuid::new_v5(&REPLY_NAMESPACE, &name)
}

/// The business reference of a document: e-Form D reference number, ACDD declaration number,
/// or the reference an answer names. `root` is the `asw:Message` element.
pub fn document_reference(root: &Element) -> Option<String> {
    let document = root.child(ns::ENVELOPE, "Body")?.children.first()?;
    let kind = DocumentKind::from_root_element(&document.namespace, &document.name)?;
    let (namespace, name) = match kind {
        DocumentKind::FormD => (ns::FORMD, "ReferenceNumber"),
        DocumentKind::Acdd => (ns::ACDD, "DeclarationNumber"),
        DocumentKind::FormDAck | DocumentKind::AcddAck => (ns::ACK, "DocumentReference"),
        DocumentKind::FormDStatus => (ns::FORMD_STATUS, "ReferenceNumber"),
        DocumentKind::AcddResponse => (ns::ACDD_RESPONSE, "DeclarationNumber"),
        // A kind described as data says where its reference is.
        _ => {
            let mut at = document;
            for name in &kind.def().reference {
                at = at.children.iter().find(|c| &c.name == name)?;
            }
            return (!kind.def().reference.is_empty()).then(|| at.trimmed().to_owned());
        }
    };
    Some(document.child(namespace, name)?.trimmed().to_owned())
}

/// The status an answer reports, read from its body (`received`, `rejected`,
/// `preferential-treatment-given`...). `root` is the `asw:Message` element.
pub fn answer_status(root: &Element) -> Option<String> {
    let document = root.child(ns::ENVELOPE, "Body")?.children.first()?;
    if document.is(ns::SPS_ACKNOWLEDGEMENT, "SPSAcknowledgement") {
        // The SPS acknowledgement's StatusCode, as this hub writes it.
        let code = document
            .children
            .iter()
            .find(|c| c.name == "SPSAcknowledgementDocument")?
            .children
            .iter()
            .find(|c| c.name == "StatusCode")?;
        let said = match code.trimmed().parse::<u32>().ok()? {
            crate::sps::ACK_REJECTED => "rejected",
            _ => "received",
        };
        return Some(said.to_owned());
    }
    let status = document.children.iter().find(|c| c.name == "Status")?;
    Some(status.trimmed().to_owned())
}

/// The reasons an answer gives, as (code, text). `root` is the `asw:Message` element.
pub fn answer_reasons(root: &Element) -> Vec<(String, String)> {
    let Some(document) = root
        .child(ns::ENVELOPE, "Body")
        .and_then(|b| b.children.first())
    else {
        return Vec::new();
    };
    document
        .children
        .iter()
        .filter(|c| c.name == "Reason")
        .map(|r| {
            let field = |n: &str| {
                r.child(ns::COMMON, n)
                    .map(|e| e.trimmed().to_owned())
                    .unwrap_or_default()
            };
            (field("Code"), field("Text"))
        })
        .collect()
}

/// A receipt acknowledgement of `original` (an e-Form D or ACDD): received when `reasons` is
/// empty, rejected with them otherwise. `None` for kinds that are not acknowledged.
pub fn receipt(
    original: &Header,
    reference: &str,
    reasons: Vec<Reason>,
    now: OffsetDateTime,
) -> Option<Message> {
    let kind = original.kind.ack_kind()?;
    // A reference that does not fit the schema (e.g. from a document rejected as invalid) is
    // replaced, so the rejection itself is always valid.
    let reference = if valid_reference(reference) {
        reference.to_owned()
    } else {
        "UNKNOWN".to_owned()
    };
    let ack = Acknowledgement {
        document_reference: reference,
        received_at: now,
        status: if reasons.is_empty() {
            "received"
        } else {
            "rejected"
        }
        .into(),
        reasons: reasons.into_iter().take(100).map(clip_reason).collect(),
    };
    let header = Header {
        message_id: reply_message_id(original.message_id, kind),
        correlation_id: Some(original.message_id),
        sender: original.receiver,
        receiver: original.sender,
        kind,
        version: kind.version().to_owned(),
        created_at: now,
    };
    let document = match kind {
        DocumentKind::FormDAck => Document::FormDAck(ack),
        DocumentKind::AcddAck => Document::AcddAck(ack),
        DocumentKind::EphytoAck => {
            let (status, reason) = if ack.reasons.is_empty() {
                (crate::sps::ACK_RECEIVED, "Certificate received".to_owned())
            } else {
                let said: Vec<String> = ack
                    .reasons
                    .iter()
                    .map(|r| format!("{} {}", r.code, r.text))
                    .collect();
                (crate::sps::ACK_REJECTED, said.join("; "))
            };
            Document::Xml(XmlBody {
                kind,
                xml: crate::sps::acknowledgement_with(
                    &ack.document_reference,
                    original.created_at,
                    now,
                    status,
                    &reason,
                ),
            })
        }
        // A receipt kind described only as data: written as its file says, or not at all.
        _ => match kind.def().written_as {
            Some(WrittenAs::AswAcknowledgement) => Document::Xml(XmlBody {
                kind,
                xml: acknowledgement_xml(kind, &ack),
            }),
            None => return None,
        },
    };
    Some(Message { header, document })
}

/// The ASW acknowledgement's content (`ack-1.xsd`) under the root element of `kind`, its
/// elements in the root's namespace, the reasons' code and text in the common one.
fn acknowledgement_xml(kind: DocumentKind, ack: &Acknowledgement) -> String {
    let (namespace, element) = kind.root_element();
    let mut xml = format!(
        "<r:{element} xmlns:r=\"{}\" xmlns:cmn=\"{}\">\n  \
         <r:DocumentReference>{}</r:DocumentReference>\n  \
         <r:ReceivedAt>{}</r:ReceivedAt>\n  <r:Status>{}</r:Status>\n",
        escape(namespace),
        ns::COMMON,
        escape(&ack.document_reference),
        format_timestamp(ack.received_at),
        escape(&ack.status)
    );
    for reason in &ack.reasons {
        xml.push_str(&format!(
            "  <r:Reason><cmn:Code>{}</cmn:Code><cmn:Text>{}</cmn:Text></r:Reason>\n",
            escape(&reason.code),
            escape(&reason.text)
        ));
    }
    xml.push_str(&format!("</r:{element}>"));
    xml
}

fn valid_reference(r: &str) -> bool {
    let mut chars = r.chars();
    r.len() <= 35
        && chars
            .next()
            .is_some_and(|c| c.is_ascii_uppercase() || c.is_ascii_digit())
        && chars.all(|c| c.is_ascii_uppercase() || c.is_ascii_digit() || "/-.".contains(c))
}

/// Keeps a reason within the schema: code pattern and 512 characters of text.
fn clip_reason(r: Reason) -> Reason {
    let code: String = r
        .code
        .chars()
        .map(|c| c.to_ascii_uppercase())
        .filter(|c| c.is_ascii_uppercase() || c.is_ascii_digit() || *c == '-')
        .take(20)
        .collect();
    let code = if code.is_empty() || code.starts_with('-') {
        "ERROR".to_owned()
    } else {
        code
    };
    let mut text: String = r
        .text
        .chars()
        .filter(|c| !c.is_control())
        .take(512)
        .collect();
    if text.trim().is_empty() {
        text = "no detail".into();
    }
    Reason { code, text }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::MemberState;
    use crate::sample::{self, SampleSpec};
    use crate::xml::{self, Limits};

    fn form_d() -> (Message, Element) {
        let spec = SampleSpec {
            kind: DocumentKind::FormD,
            from: MemberState::from_alpha2("VN").expect("VN"),
            to: MemberState::from_alpha2("TH").expect("TH"),
            items: 2,
            seed: 5,
            created_at: SampleSpec::seeded_time(5),
        };
        let message = sample::message(&spec);
        let root = xml::parse(
            message.to_xml().expect("xml").as_bytes(),
            &Limits::default(),
        )
        .expect("parse");
        (message, root)
    }

    #[test]
    fn receipt_answers_the_original_with_a_stable_id() {
        let (original, root) = form_d();
        let reference = document_reference(&root).expect("reference");
        assert!(reference.starts_with("VN-FD-"), "{reference}");
        let now = SampleSpec::seeded_time(6);
        let ack =
            receipt(&original.header, &reference, Vec::new(), now).expect("formd is acknowledged");
        assert_eq!(ack.header.kind, DocumentKind::FormDAck);
        assert_eq!(ack.header.correlation_id, Some(original.header.message_id));
        assert_eq!(
            (ack.header.sender, ack.header.receiver),
            (original.header.receiver, original.header.sender)
        );
        let again = receipt(
            &original.header,
            &reference,
            Vec::new(),
            now + time::Duration::hours(1),
        )
        .expect("ack");
        assert_eq!(again.header.message_id, ack.header.message_id);
        let parsed =
            xml::parse(ack.to_xml().expect("xml").as_bytes(), &Limits::default()).expect("parse");
        assert_eq!(answer_status(&parsed).as_deref(), Some("received"));
        assert_eq!(document_reference(&parsed), Some(reference));
    }

    #[test]
    fn rejection_carries_clipped_reasons() {
        let (original, _) = form_d();
        let reasons = vec![
            Reason {
                code: "sig-untrusted".into(),
                text: "x".repeat(600),
            },
            Reason {
                code: "???".into(),
                text: "\u{7}".into(),
            },
        ];
        let ack = receipt(
            &original.header,
            "not a reference!",
            reasons,
            SampleSpec::seeded_time(6),
        )
        .expect("ack");
        let parsed =
            xml::parse(ack.to_xml().expect("xml").as_bytes(), &Limits::default()).expect("parse");
        assert_eq!(answer_status(&parsed).as_deref(), Some("rejected"));
        assert_eq!(document_reference(&parsed).as_deref(), Some("UNKNOWN"));
        let reasons = answer_reasons(&parsed);
        assert_eq!(reasons[0].0, "SIG-UNTRUSTED");
        assert_eq!(reasons[0].1.len(), 512);
        assert_eq!(reasons[1], ("ERROR".to_owned(), "no detail".to_owned()));
    }

    #[test]
    fn only_originals_are_acknowledged() {
        let (mut original, _) = form_d();
        original.header.kind = DocumentKind::FormDStatus;
        assert!(
            receipt(
                &original.header,
                "R",
                Vec::new(),
                SampleSpec::seeded_time(1)
            )
            .is_none()
        );
    }
}
