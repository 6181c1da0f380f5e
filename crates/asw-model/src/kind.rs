//! The kinds of document exchanged over the ASW, with their names on the wire.

use std::fmt;
use std::str::FromStr;

use crate::{ModelError, ns};

/// A kind of ASW document. The wire name is used in the envelope and as AMQP routing key.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum DocumentKind {
    /// ATIGA e-Form D certificate of origin.
    FormD,
    /// ASEAN Customs Declaration Document.
    Acdd,
    /// Receipt acknowledgement of an e-Form D.
    FormDAck,
    /// Receipt acknowledgement of an ACDD.
    AcddAck,
    /// Status / utilization notification of an e-Form D.
    FormDStatus,
    /// Customs Response to an ACDD.
    AcddResponse,
}

impl DocumentKind {
    /// Every kind.
    pub const ALL: [DocumentKind; 6] = [
        DocumentKind::FormD,
        DocumentKind::Acdd,
        DocumentKind::FormDAck,
        DocumentKind::AcddAck,
        DocumentKind::FormDStatus,
        DocumentKind::AcddResponse,
    ];

    /// The wire name (`formd`, `acdd`, `formd-ack`, `acdd-ack`, `formd-status`, `acdd-response`).
    pub fn as_str(self) -> &'static str {
        match self {
            DocumentKind::FormD => "formd",
            DocumentKind::Acdd => "acdd",
            DocumentKind::FormDAck => "formd-ack",
            DocumentKind::AcddAck => "acdd-ack",
            DocumentKind::FormDStatus => "formd-status",
            DocumentKind::AcddResponse => "acdd-response",
        }
    }

    /// Namespace and local name of the body's root element for this kind.
    pub fn root_element(self) -> (&'static str, &'static str) {
        match self {
            DocumentKind::FormD => (ns::FORMD, "FormD"),
            DocumentKind::Acdd => (ns::ACDD, "ACDD"),
            DocumentKind::FormDAck => (ns::ACK, "FormDAck"),
            DocumentKind::AcddAck => (ns::ACK, "AcddAck"),
            DocumentKind::FormDStatus => (ns::FORMD_STATUS, "FormDStatus"),
            DocumentKind::AcddResponse => (ns::ACDD_RESPONSE, "CustomsResponse"),
        }
    }

    /// The kind whose body root element has this namespace and local name.
    pub fn from_root_element(namespace: &str, local: &str) -> Option<DocumentKind> {
        DocumentKind::ALL
            .into_iter()
            .find(|k| k.root_element() == (namespace, local))
    }

    /// The document version this build writes and reads.
    pub fn version(self) -> &'static str {
        "1.0"
    }

    /// True for documents that answer another one and so must carry a correlation id.
    pub fn is_response(self) -> bool {
        !matches!(self, DocumentKind::FormD | DocumentKind::Acdd)
    }

    /// The receipt acknowledgement kind answering this kind, if it is acknowledged.
    pub fn ack_kind(self) -> Option<DocumentKind> {
        match self {
            DocumentKind::FormD => Some(DocumentKind::FormDAck),
            DocumentKind::Acdd => Some(DocumentKind::AcddAck),
            _ => None,
        }
    }

    /// The kind of original this answer kind answers (`formd-ack` and `formd-status` answer
    /// `formd`; `acdd-ack` and `acdd-response` answer `acdd`); `None` for originals.
    pub fn answers(self) -> Option<DocumentKind> {
        match self {
            DocumentKind::FormDAck | DocumentKind::FormDStatus => Some(DocumentKind::FormD),
            DocumentKind::AcddAck | DocumentKind::AcddResponse => Some(DocumentKind::Acdd),
            DocumentKind::FormD | DocumentKind::Acdd => None,
        }
    }
}

impl FromStr for DocumentKind {
    type Err = ModelError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        DocumentKind::ALL
            .into_iter()
            .find(|k| k.as_str() == s)
            .ok_or_else(|| ModelError::UnknownDocumentKind(s.to_owned()))
    }
}

impl fmt::Display for DocumentKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wire_names_round_trip() {
        for kind in DocumentKind::ALL {
            assert_eq!(kind.as_str().parse::<DocumentKind>(), Ok(kind));
            let (ns, local) = kind.root_element();
            assert_eq!(DocumentKind::from_root_element(ns, local), Some(kind));
        }
        assert!("FormD".parse::<DocumentKind>().is_err());
    }

    #[test]
    fn only_originals_are_not_responses() {
        let originals: Vec<_> = DocumentKind::ALL
            .into_iter()
            .filter(|k| !k.is_response())
            .collect();
        assert_eq!(originals, [DocumentKind::FormD, DocumentKind::Acdd]);
        for kind in DocumentKind::ALL {
            assert_eq!(kind.answers().is_some(), kind.is_response(), "{kind}");
            if let Some(ack) = kind.ack_kind() {
                assert_eq!(ack.answers(), Some(kind));
            }
        }
        assert_eq!(
            DocumentKind::AcddResponse.answers(),
            Some(DocumentKind::Acdd)
        );
        assert_eq!(
            DocumentKind::FormDStatus.answers(),
            Some(DocumentKind::FormD)
        );
    }
}
