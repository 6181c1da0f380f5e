//! Hostile documents: a valid e-Form D carrying, in its signature slot, the worst of one kind of
//! structure, at about a given size. For the tests of every path that reads untrusted bytes and
//! for the benchmark's hostile figure.
//!
//! The payload sits in a `ds:Signature` element, where the envelope schema admits any content
//! (`processContents="skip"`): so a small instance of each shape is a schema-valid message, and
//! only the reader's [`Limits`] stand between a large one and libxml2.

use time::OffsetDateTime;

use crate::sample::{self, SampleSpec};
use crate::xml::Limits;
use crate::{DocumentKind, MemberState};

/// One shape of hostile document.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Shape {
    /// One element with as many attributes as fit.
    ManyAttributes,
    /// One element with as many namespace declarations as fit.
    ManyNamespaces,
    /// Many elements, each declaring the default namespace again.
    SpreadNamespaces,
    /// Every namespace declaration the default limits allow in scope at once, then
    /// elements and attributes looking up the prefix declared first, up to just under the node
    /// limit: accepted, the costliest prefix lookups the limits allow.
    PrefixesInScope,
    /// One element name as long as fits.
    LongName,
    /// One attribute value as long as fits.
    LongValue,
    /// One attribute value made of entity references.
    ValueOfReferences,
    /// Elements nested as deep as fits.
    DeepNesting,
    /// As many empty elements as fit.
    ManyElements,
    /// Empty elements up to just under the default node limit: accepted by the reader, the
    /// largest tree it lets through to libxml2.
    ElementsUnderNodeLimit,
    /// As many comments as fit.
    ManyComments,
    /// One text node of base64 as long as fits (an attachment): accepted.
    HugeText,
    /// One text node of character references: accepted.
    TextOfReferences,
    /// The envelope namespace declared with a character reference, which libxml2 would resolve
    /// and the reader would not (small: the size is ignored).
    NamespaceReference,
}

impl Shape {
    /// Every shape.
    pub const ALL: [Shape; 14] = [
        Shape::ManyAttributes,
        Shape::ManyNamespaces,
        Shape::SpreadNamespaces,
        Shape::PrefixesInScope,
        Shape::LongName,
        Shape::LongValue,
        Shape::ValueOfReferences,
        Shape::DeepNesting,
        Shape::ManyElements,
        Shape::ElementsUnderNodeLimit,
        Shape::ManyComments,
        Shape::HugeText,
        Shape::TextOfReferences,
        Shape::NamespaceReference,
    ];

    /// A short name for tables.
    pub fn name(self) -> &'static str {
        match self {
            Shape::ManyAttributes => "many attributes on one element",
            Shape::ManyNamespaces => "many namespace declarations on one element",
            Shape::SpreadNamespaces => "a namespace declaration on every element",
            Shape::PrefixesInScope => "all the prefixes allowed in scope, looked up",
            Shape::LongName => "one long element name",
            Shape::LongValue => "one long attribute value",
            Shape::ValueOfReferences => "an attribute value of entity references",
            Shape::DeepNesting => "deep nesting",
            Shape::ManyElements => "many tiny elements",
            Shape::ElementsUnderNodeLimit => "tiny elements just under the node limit",
            Shape::ManyComments => "many comments",
            Shape::HugeText => "one huge base64 text node",
            Shape::TextOfReferences => "text of character references",
            Shape::NamespaceReference => "a namespace URI with a character reference",
        }
    }

    /// The reader's refusal of this shape at [`Limits::DEFAULT_MAX_BYTES`] with default limits,
    /// or `None` if the reader accepts it.
    pub fn refusal(self) -> Option<&'static str> {
        match self {
            Shape::ManyAttributes => Some("XML-ATTRIBUTES"),
            Shape::ManyNamespaces | Shape::SpreadNamespaces => Some("XML-NAMESPACES"),
            Shape::LongName => Some("XML-NAME"),
            Shape::LongValue | Shape::ValueOfReferences => Some("XML-VALUE"),
            Shape::DeepNesting => Some("XML-DEPTH"),
            Shape::ManyElements | Shape::ManyComments => Some("XML-NODES"),
            Shape::NamespaceReference => Some("XML-NAMESPACE"),
            Shape::PrefixesInScope
            | Shape::ElementsUnderNodeLimit
            | Shape::HugeText
            | Shape::TextOfReferences => None,
        }
    }

    /// A message of at most about `bytes` bytes (never less than the valid message it is built
    /// on) carrying this shape. A small `bytes` gives a small, schema-valid instance.
    pub fn document(self, bytes: usize) -> Vec<u8> {
        self.wrapped(bytes, "Signature")
    }

    /// The same shape in a `ds:Object` element instead of the signature, so that the document
    /// can be signed: what a partner holding a trusted key could send. The verifier, which runs
    /// before the schema is checked, hands it whole to libxmlsec1 if the reader accepts it.
    pub fn signable_document(self, bytes: usize) -> Vec<u8> {
        self.wrapped(bytes, "Object")
    }

    fn wrapped(self, bytes: usize, wrapper: &str) -> Vec<u8> {
        let base = base_message();
        if self == Shape::NamespaceReference {
            return base
                .replacen(
                    "xmlns:asw=\"urn:aswhub:asw:envelope:1\"",
                    "xmlns:asw=\"urn:aswhub:asw:envelope&#58;1\"",
                    1,
                )
                .into_bytes();
        }
        let end = "</asw:Message>";
        let body = base.rfind(end).map_or(base.as_str(), |at| &base[..at]);
        let room = bytes.saturating_sub(base.len() + 100);
        let payload = self.payload(room);
        let mut xml = String::with_capacity(base.len() + payload.len() + 100);
        xml.push_str(body);
        xml.push_str(&format!(
            "<ds:{wrapper} xmlns:ds=\"http://www.w3.org/2000/09/xmldsig#\">"
        ));
        xml.push_str(&payload);
        xml.push_str(&format!("</ds:{wrapper}>"));
        xml.push_str(end);
        xml.into_bytes()
    }

    /// The content of the signature element, about `room` bytes.
    fn payload(self, room: usize) -> String {
        let mut out = String::with_capacity(room + 64);
        match self {
            Shape::ManyAttributes => {
                out.push_str("<ds:Object");
                fill(&mut out, room, |i| format!(" a{i}=\"\""));
                out.push_str("/>");
            }
            Shape::ManyNamespaces => {
                out.push_str("<ds:Object");
                fill(&mut out, room, |i| format!(" xmlns:p{i}=\"urn:p\""));
                out.push_str("/>");
            }
            Shape::SpreadNamespaces => {
                fill(&mut out, room, |_| "<Object xmlns=\"urn:p\"/>".to_owned());
            }
            Shape::PrefixesInScope => {
                // The root declares 7, this wrapper 1 and a signature appended later 1: the
                // rest on 8 levels.
                let levels = 8;
                let per_level = (Limits::DEFAULT_MAX_NAMESPACES_TOTAL - 9) / levels;
                for level in 0..levels {
                    out.push_str(&format!("<ds:Object{level}"));
                    for i in 0..per_level {
                        out.push_str(&format!(" xmlns:p{level}x{i}=\"urn:p:{level}:{i}\""));
                    }
                    out.push('>');
                }
                let closing: String = (0..levels)
                    .rev()
                    .map(|level| format!("</ds:Object{level}>"))
                    .collect();
                let lookups = under_node_limit() / 2;
                let room = room.saturating_sub(closing.len());
                let mut n = 0;
                fill(&mut out, room, |_| {
                    n += 1;
                    if n > lookups {
                        String::new()
                    } else {
                        "<p0x0:a p0x0:b=\"\"/>".to_owned()
                    }
                });
                out.push_str(&closing);
            }
            Shape::LongName => {
                out.push_str("<ds:");
                out.push_str(&"n".repeat(room.saturating_sub(6)));
                out.push_str("/>");
            }
            Shape::LongValue => {
                out.push_str("<ds:Object v=\"");
                out.push_str(&"v".repeat(room.saturating_sub(20)));
                out.push_str("\"/>");
            }
            Shape::ValueOfReferences => {
                out.push_str("<ds:Object v=\"");
                out.push_str(&"&amp;".repeat(room.saturating_sub(20) / 5));
                out.push_str("\"/>");
            }
            Shape::DeepNesting => {
                let levels = room / "<ds:a></ds:a>".len();
                out.push_str(&"<ds:a>".repeat(levels));
                out.push_str(&"</ds:a>".repeat(levels));
            }
            Shape::ManyElements => fill(&mut out, room, |_| "<ds:a/>".to_owned()),
            Shape::ElementsUnderNodeLimit => {
                let elements = under_node_limit();
                let mut n = 0;
                fill(&mut out, room, |_| {
                    n += 1;
                    if n > elements {
                        String::new()
                    } else {
                        "<ds:a/>".to_owned()
                    }
                });
            }
            Shape::ManyComments => fill(&mut out, room, |_| "<!---->".to_owned()),
            Shape::HugeText => {
                out.push_str("<ds:Object>");
                out.push_str(&"QUJD".repeat(room.saturating_sub(30) / 4));
                out.push_str("</ds:Object>");
            }
            Shape::TextOfReferences => {
                out.push_str("<ds:Object>");
                out.push_str(&"&#x41;".repeat(room.saturating_sub(30) / 6));
                out.push_str("</ds:Object>");
            }
            Shape::NamespaceReference => {}
        }
        out
    }
}

/// Nodes a shape may add to the base message and stay under the default node limit (the base
/// message has a few hundred).
fn under_node_limit() -> usize {
    Limits::DEFAULT_MAX_NODES - 1000
}

/// Appends `piece(i)` for i = 0, 1, ... while the result stays within `room` bytes and the piece
/// is not empty.
fn fill(out: &mut String, room: usize, mut piece: impl FnMut(usize) -> String) {
    let limit = out.len() + room;
    for i in 0.. {
        let next = piece(i);
        if next.is_empty() || out.len() + next.len() > limit {
            break;
        }
        out.push_str(&next);
    }
}

/// The valid message every shape is built on: a compact e-Form D of 10 items from VN to TH.
fn base_message() -> String {
    let (Some(from), Some(to)) = (
        MemberState::from_alpha2("VN"),
        MemberState::from_alpha2("TH"),
    ) else {
        unreachable!("VN and TH are member states")
    };
    let spec = SampleSpec {
        kind: DocumentKind::FormD,
        from,
        to,
        items: 10,
        seed: 13,
        created_at: SampleSpec::seeded_time(13).min(OffsetDateTime::now_utc()),
    };
    // Serialising the model's own types cannot fail (no maps, no non-string keys).
    sample::message(&spec)
        .to_xml_compact()
        .unwrap_or_else(|e| unreachable!("a sample serialises: {e}"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::xml::{self, Limits};
    use crate::{Header, ModelError};

    fn rule(bytes: &[u8]) -> Option<&'static str> {
        match xml::parse(bytes, &Limits::default()) {
            Ok(_) => None,
            Err(ModelError::Xml { rule, .. }) => Some(rule),
            Err(other) => panic!("not a reader error: {other}"),
        }
    }

    /// Each shape at the size limit is refused as documented, or accepted; a small instance of
    /// each is accepted (so the limits, not the shape, refuse the large ones).
    #[test]
    fn each_shape_is_refused_or_accepted_as_documented() {
        let base = base_message().len();
        for shape in Shape::ALL {
            let big = shape.document(Limits::DEFAULT_MAX_BYTES);
            assert!(big.len() <= Limits::DEFAULT_MAX_BYTES, "{shape:?}");
            assert_eq!(rule(&big), shape.refusal(), "{shape:?}");
            if shape.refusal().is_none() {
                assert!(big.len() > 3_000_000, "{shape:?} is {} bytes", big.len());
            }
            let header = Header::read(&big, &Limits::default());
            assert_eq!(header.is_ok(), shape.refusal().is_none(), "{shape:?}");
            if shape != Shape::NamespaceReference {
                let small = shape.document(base + 250);
                assert_eq!(rule(&small), None, "{shape:?} small");
            }
        }
    }
}
