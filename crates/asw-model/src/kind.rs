//! The kinds of document exchanged over the ASW, with their names on the wire.
//!
//! A [`DocumentKind`] is a small `Copy` handle into a process-wide table of kinds described as
//! data ([`crate::kinds::KindDef`], one file per kind under `schemas/kinds/`). The table starts
//! with the shipped kinds, built into the binary, the built-ins first in a fixed order so that
//! their associated constants ([`DocumentKind::FormD`]...) stay valid; a hub adds the kinds of its
//! configured kinds directory with [`DocumentKind::install`] at start-up. Kinds are added, never
//! removed, and a kind once known keeps its definition: a handle stays valid for the process.

use std::fmt;
use std::str::FromStr;
use std::sync::{LazyLock, RwLock};

use crate::ModelError;
use crate::kinds::{KindDef, KindRegistry};

/// A kind of ASW document. The wire name is used in the envelope and as AMQP routing key.
///
/// Compare and `match` on the associated constants for the built-in kinds; ask the kind's data
/// ([`DocumentKind::def`]) for everything else.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct DocumentKind(u16);

/// Wire names of the built-in kinds, in handle order, with the constant's name.
const BUILT_IN: [(&str, &str); 8] = [
    ("formd", "FormD"),
    ("acdd", "Acdd"),
    ("formd-ack", "FormDAck"),
    ("acdd-ack", "AcddAck"),
    ("formd-status", "FormDStatus"),
    ("acdd-response", "AcddResponse"),
    ("ephyto", "Ephyto"),
    ("ephyto-ack", "EphytoAck"),
];

/// The process-wide table: every kind known, in handle order. Definitions are leaked so that
/// handles can lend `&'static` data; they are few and never removed.
static TABLE: LazyLock<RwLock<Vec<&'static KindDef>>> = LazyLock::new(|| {
    // Invariant: the shipped kinds are embedded and checked by this crate's tests
    // (`kinds::tests::the_shipped_kinds_are_what_the_enum_says`), so they load.
    #[allow(clippy::expect_used)]
    let shipped = KindRegistry::shipped().expect("the shipped kinds load");
    RwLock::new(ordered(&shipped).into_iter().map(leak).collect())
});

fn leak(def: KindDef) -> &'static KindDef {
    Box::leak(Box::new(def))
}

/// The kinds of `registry`, built-ins first in their fixed order, then the others by wire name.
fn ordered(registry: &KindRegistry) -> Vec<KindDef> {
    let mut out: Vec<KindDef> = BUILT_IN
        .iter()
        .filter_map(|(wire, _)| registry.get(wire).cloned())
        .collect();
    out.extend(
        registry
            .iter()
            .filter(|k| !BUILT_IN.iter().any(|(w, _)| *w == k.wire))
            .cloned(),
    );
    out
}

fn table() -> std::sync::RwLockReadGuard<'static, Vec<&'static KindDef>> {
    // A poisoned lock only means a panic elsewhere while installing; the table is still whole
    // (entries are pushed one at a time).
    TABLE.read().unwrap_or_else(|e| e.into_inner())
}

#[allow(non_upper_case_globals)]
impl DocumentKind {
    /// ATIGA e-Form D certificate of origin.
    pub const FormD: DocumentKind = DocumentKind(0);
    /// ASEAN Customs Declaration Document.
    pub const Acdd: DocumentKind = DocumentKind(1);
    /// Receipt acknowledgement of an e-Form D.
    pub const FormDAck: DocumentKind = DocumentKind(2);
    /// Receipt acknowledgement of an ACDD.
    pub const AcddAck: DocumentKind = DocumentKind(3);
    /// Status / utilization notification of an e-Form D.
    pub const FormDStatus: DocumentKind = DocumentKind(4);
    /// Customs Response to an ACDD.
    pub const AcddResponse: DocumentKind = DocumentKind(5);
    /// e-Phyto: UN/CEFACT SPS phytosanitary certificate (`SPSCertificate:17`).
    pub const Ephyto: DocumentKind = DocumentKind(6);
    /// Acknowledgement of an e-Phyto (`SPSAcknowledgement:17`).
    pub const EphytoAck: DocumentKind = DocumentKind(7);
}

impl DocumentKind {
    /// The kinds the model types as [`crate::document::Document`] (e-Form D, ACDD and their
    /// answers). Every kind known, including the ones described only as data: [`Self::all`].
    pub const ALL: [DocumentKind; 6] = [
        DocumentKind::FormD,
        DocumentKind::Acdd,
        DocumentKind::FormDAck,
        DocumentKind::AcddAck,
        DocumentKind::FormDStatus,
        DocumentKind::AcddResponse,
    ];

    /// Every kind known to this process: the shipped ones and the installed ones, in handle
    /// order (built-ins first).
    pub fn all() -> Vec<DocumentKind> {
        let n = table().len();
        (0..n)
            .filter_map(|i| u16::try_from(i).ok())
            .map(DocumentKind)
            .collect()
    }

    /// Adds the kinds of `registry` (a hub's kinds directory) to the process's table. A kind
    /// already known must be described the same way (a handle never changes meaning), and the
    /// built-in kinds must all be there, as shipped: code relies on them.
    pub fn install(registry: &KindRegistry) -> Result<Vec<DocumentKind>, ModelError> {
        let refused = |wire: &str, message: String| ModelError::Data {
            file: format!("{wire}.toml"),
            line: 0,
            key: String::new(),
            message,
        };
        let shipped = KindRegistry::shipped()?;
        for (wire, _) in BUILT_IN {
            let (Some(ours), Some(theirs)) = (shipped.get(wire), registry.get(wire)) else {
                return Err(refused(
                    wire,
                    "a built-in kind is missing from the kinds directory".into(),
                ));
            };
            if ours.root != theirs.root || ours.answers != theirs.answers {
                return Err(refused(
                    wire,
                    "a built-in kind's root element and answers cannot change".into(),
                ));
            }
        }
        let mut table = TABLE.write().unwrap_or_else(|e| e.into_inner());
        let mut out = Vec::new();
        for def in ordered(registry) {
            let at = match table.iter().position(|k| k.wire == def.wire) {
                Some(at) => {
                    if *table[at] != def {
                        if !BUILT_IN.iter().any(|(w, _)| *w == def.wire) {
                            return Err(refused(
                                &def.wire,
                                "this process already knows the kind with another definition"
                                    .into(),
                            ));
                        }
                        // A built-in's versions, title or back-offices may differ (a MIG
                        // upgrade); its root and answers were checked above.
                        table[at] = leak(def);
                    }
                    at
                }
                None => {
                    if let Some(other) = table.iter().find(|k| k.root == def.root) {
                        return Err(refused(
                            &def.wire,
                            format!(
                                "{{{}}}{} is already the root of {}",
                                def.root.namespace, def.root.element, other.wire
                            ),
                        ));
                    }
                    table.push(leak(def));
                    table.len() - 1
                }
            };
            let index = u16::try_from(at).map_err(|_| refused("kinds", "too many kinds".into()))?;
            out.push(DocumentKind(index));
        }
        Ok(out)
    }

    /// The kind's description (root element, versions, answers, back-offices).
    pub fn def(self) -> &'static KindDef {
        // Invariant: handles are only made from indices of the table, which never shrinks.
        table()[usize::from(self.0)]
    }

    /// The kind with this wire name, if known.
    pub fn from_wire(wire: &str) -> Option<DocumentKind> {
        table()
            .iter()
            .position(|k| k.wire == wire)
            .and_then(|i| u16::try_from(i).ok())
            .map(DocumentKind)
    }

    /// The wire name (`formd`, `acdd`, `formd-ack`, `acdd-ack`, `formd-status`, `acdd-response`,
    /// `ephyto`, `ephyto-ack`, and any installed kind's).
    pub fn as_str(self) -> &'static str {
        &self.def().wire
    }

    /// Namespace and local name of the body's root element for this kind.
    pub fn root_element(self) -> (&'static str, &'static str) {
        let root = &self.def().root;
        (&root.namespace, &root.element)
    }

    /// The kind whose body root element has this namespace and local name.
    pub fn from_root_element(namespace: &str, local: &str) -> Option<DocumentKind> {
        table()
            .iter()
            .position(|k| k.root.namespace == namespace && k.root.element == local)
            .and_then(|i| u16::try_from(i).ok())
            .map(DocumentKind)
    }

    /// The document version this build writes (the first version of the kind's file).
    pub fn version(self) -> &'static str {
        &self.def().written_version().version
    }

    /// True if this hub reads `version` of the kind (as an envelope header writes it: `1`
    /// names `1.0`, [`KindDef::read_version`]).
    pub fn reads_version(self, version: &str) -> bool {
        self.def().read_version(version).is_some()
    }

    /// True for documents that answer another one and so must carry a correlation id.
    pub fn is_response(self) -> bool {
        self.def().is_response()
    }

    /// The receipt acknowledgement kind answering this kind, if it is acknowledged.
    pub fn ack_kind(self) -> Option<DocumentKind> {
        self.def()
            .answered_by
            .receipt
            .as_deref()
            .and_then(DocumentKind::from_wire)
    }

    /// True when the receiving hub sends this kind's receipt itself.
    pub fn receipt_by_hub(self) -> bool {
        self.def().answered_by.receipt_by_hub
    }

    /// True when this kind is the receipt of the kind it answers.
    pub fn is_receipt(self) -> bool {
        self.answers().and_then(DocumentKind::ack_kind) == Some(self)
    }

    /// The kind of original this answer kind answers (`formd-ack` and `formd-status` answer
    /// `formd`; `acdd-ack` and `acdd-response` answer `acdd`); `None` for originals.
    pub fn answers(self) -> Option<DocumentKind> {
        self.def()
            .answers
            .as_deref()
            .and_then(DocumentKind::from_wire)
    }

    /// True if a back-office with `role` may send this kind to the hub.
    pub fn sent_by_back_office(self, role: &str) -> bool {
        self.def().back_offices.iter().any(|r| r == role)
    }
}

impl FromStr for DocumentKind {
    type Err = ModelError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        DocumentKind::from_wire(s).ok_or_else(|| ModelError::UnknownDocumentKind(s.to_owned()))
    }
}

impl fmt::Display for DocumentKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl fmt::Debug for DocumentKind {
    /// The constant's name for a built-in kind (`FormD`), the wire name for the others.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match BUILT_IN.get(usize::from(self.0)) {
            Some((_, name)) => f.write_str(name),
            None => write!(f, "{:?}", self.as_str()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wire_names_round_trip() {
        for kind in DocumentKind::all() {
            assert_eq!(kind.as_str().parse::<DocumentKind>(), Ok(kind));
            let (ns, local) = kind.root_element();
            assert_eq!(DocumentKind::from_root_element(ns, local), Some(kind));
        }
        assert!("FormD".parse::<DocumentKind>().is_err());
        assert_eq!(format!("{:?}", DocumentKind::Ephyto), "Ephyto");
        assert_eq!(DocumentKind::Ephyto.as_str(), "ephyto");
        assert_eq!(DocumentKind::EphytoAck.as_str(), "ephyto-ack");
        assert_eq!(DocumentKind::Ephyto.version(), "17");
    }

    #[test]
    fn built_ins_keep_their_constants_in_match_patterns() {
        let said = |k: DocumentKind| match k {
            DocumentKind::FormD => "formd",
            DocumentKind::AcddResponse => "acdd-response",
            _ => "other",
        };
        assert_eq!(said("formd".parse().expect("known")), "formd");
        assert_eq!(
            said("acdd-response".parse().expect("known")),
            "acdd-response"
        );
        assert_eq!(said(DocumentKind::Ephyto), "other");
    }

    #[test]
    fn only_originals_are_not_responses() {
        let originals: Vec<_> = DocumentKind::ALL
            .into_iter()
            .filter(|k| !k.is_response())
            .collect();
        assert_eq!(originals, [DocumentKind::FormD, DocumentKind::Acdd]);
        for kind in DocumentKind::all() {
            assert_eq!(kind.answers().is_some(), kind.is_response(), "{kind}");
            if let Some(ack) = kind.ack_kind() {
                assert_eq!(ack.answers(), Some(kind));
                assert!(ack.is_receipt());
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
        assert!(!DocumentKind::FormDStatus.is_receipt());
        assert_eq!(
            DocumentKind::Ephyto.ack_kind(),
            Some(DocumentKind::EphytoAck)
        );
        assert!(DocumentKind::Ephyto.receipt_by_hub());
        assert!(DocumentKind::Ephyto.sent_by_back_office("nppo"));
    }

    const KRCO: &str = "wire = \"kr-co\"\ntitle = \"Korea C/O\"\nenvelope = \"asw\"\n\
        back_offices = [\"origin-authority\"]\n[root]\nnamespace = \"urn:test:krco:1\"\n\
        element = \"KoreaCO\"\n[[versions]]\nversion = \"1.0\"\nxsd = [\"kr-co-1.xsd\"]\n";

    #[test]
    fn an_installed_kind_gets_a_handle_and_keeps_it() {
        let mut files: Vec<(String, String)> = crate::kinds::shipped_files()
            .map(|(n, t)| (n.to_owned(), t.to_owned()))
            .collect();
        files.push(("kr-co.toml".into(), KRCO.into()));
        let registry =
            KindRegistry::from_files(files.iter().map(|(n, t)| (n.as_str(), t.as_str())))
                .expect("loads");
        let installed = DocumentKind::install(&registry).expect("installs");
        let kr: DocumentKind = "kr-co".parse().expect("now known");
        assert!(installed.contains(&kr));
        assert!(installed.contains(&DocumentKind::FormD));
        assert_eq!(kr.root_element(), ("urn:test:krco:1", "KoreaCO"));
        assert_eq!(format!("{kr:?}"), "\"kr-co\"");
        assert!(!kr.is_response() && kr.ack_kind().is_none());
        // Again: the same handle.
        let again = DocumentKind::install(&registry).expect("installs again");
        assert_eq!(installed, again);
        // Changed: refused.
        files.pop();
        files.push(("kr-co.toml".into(), KRCO.replace("Korea C/O", "Changed")));
        let changed = KindRegistry::from_files(files.iter().map(|(n, t)| (n.as_str(), t.as_str())))
            .expect("loads");
        assert!(DocumentKind::install(&changed).is_err());
        // Without the built-ins: refused.
        let bare = KindRegistry::from_files([("kr-co.toml", KRCO)]).expect("loads");
        assert!(DocumentKind::install(&bare).is_err());
    }
}
