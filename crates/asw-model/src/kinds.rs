//! Document kinds as data: one TOML file per kind under `schemas/kinds/` (wire name, root
//! element, XSDs per version, the kinds that answer it, the back-offices that may send it), read
//! and checked here. The shipped files describe the six kinds of [`crate::DocumentKind`] and the
//! e-Phyto ones; the registry is meant to replace the enum (docs/SCHEMAS.md, "Adding a kind").

use std::collections::BTreeMap;
use std::ops::Range;
use std::path::Path;

use serde::Deserialize;
use toml::Spanned;

use crate::ModelError;

/// How a kind travels.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Envelope {
    /// In the ASW envelope (`asw-envelope-1.xsd`), signed as a whole.
    Asw,
}

/// How the hub writes a kind itself, for a receipt kind described only as data (the code writes
/// `formd-ack`, `acdd-ack` and `ephyto-ack`: [`CODE_WRITTEN_RECEIPTS`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum WrittenAs {
    /// The ASW acknowledgement's content (`ack-1.xsd`'s `Acknowledgement`: `DocumentReference`,
    /// `ReceivedAt`, `Status` received or rejected, `Reason`s of `cmn:Code` and `cmn:Text`), its
    /// elements in the kind's root namespace, under the kind's root element.
    AswAcknowledgement,
}

/// The receipt kinds whose body the hub's code writes (`asw_model::reply::receipt`); a receipt
/// the hub sends of another kind says how it is written ([`KindDef::written_as`]).
pub const CODE_WRITTEN_RECEIPTS: [&str; 3] = ["formd-ack", "acdd-ack", "ephyto-ack"];

/// The root element of a kind's body.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RootElement {
    /// Namespace URI.
    pub namespace: String,
    /// Local name.
    pub element: String,
}

/// One version of a kind the hub reads, with the XSDs that define it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KindVersion {
    /// The version as the envelope header writes it (`1.0`).
    pub version: String,
    /// XSD files, relative to `schemas/`, the first being the entry point.
    pub xsd: Vec<String>,
}

/// The kinds that answer an original.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct AnsweredBy {
    /// The receipt acknowledgement kind.
    pub receipt: Option<String>,
    /// True when the receiving hub sends the receipt itself (as it does for e-Form D and ACDD).
    pub receipt_by_hub: bool,
    /// Status notification kinds.
    pub status: Vec<String>,
    /// Response kinds.
    pub response: Vec<String>,
}

/// One kind of document, as its file describes it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KindDef {
    /// Wire name: the envelope's `DocumentKind` and the AMQP routing key (`formd`).
    pub wire: String,
    /// What it is, in a few words.
    pub title: String,
    /// How it travels.
    pub envelope: Envelope,
    /// True if it also travels as itself, outside the envelope (an e-Phyto through the IPPC
    /// ePhyto Hub).
    pub bare: bool,
    /// The body's root element.
    pub root: RootElement,
    /// The versions read side by side, the one written first.
    pub versions: Vec<KindVersion>,
    /// For an answer: the kind it answers.
    pub answers: Option<String>,
    /// For an original: the kinds that answer it.
    pub answered_by: AnsweredBy,
    /// Back-office roles that may send it to the hub (empty: only the hub writes it).
    pub back_offices: Vec<String>,
    /// Where the document's business reference is: local names of the elements from the root
    /// down (`["SPSExchangedDocument", "ID"]`); empty when the kind's code knows it.
    pub reference: Vec<String>,
    /// The business rules of the kind, as data (`[[rules]]`), checked after the XSD.
    pub rules: Vec<crate::kinds::DataRule>,
    /// For a receipt kind described only as data that the hub sends itself: how it is written.
    pub written_as: Option<WrittenAs>,
}

/// A business rule of a kind described as data: the element at `path` (local names from the
/// root down) must exist, and when `pattern` or `one_of` are given its text must match.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DataRule {
    /// Stable rule id, reported with the problem (`KRCO-ORIGIN`).
    pub id: String,
    /// Local names from the body's root element down to the element checked.
    pub path: Vec<String>,
    /// The text must be one of these.
    #[serde(default)]
    pub one_of: Vec<String>,
    /// The text must be at most this many characters.
    #[serde(default)]
    pub max_len: Option<usize>,
    /// The text must not equal the text of the element at this path (`["Exporter", "Country"]`
    /// against `["Importer", "Country"]`).
    #[serde(default)]
    pub differs_from: Vec<String>,
    /// What the problem says when the rule is broken.
    pub message: String,
}

impl KindDef {
    /// True for documents that answer another one and so must carry a correlation id.
    pub fn is_response(&self) -> bool {
        self.answers.is_some()
    }

    /// The version this hub writes.
    pub fn written_version(&self) -> &KindVersion {
        // The loader refuses a kind without versions.
        &self.versions[0]
    }

    /// The version `version` if this hub reads it, exactly as listed.
    pub fn version(&self, version: &str) -> Option<&KindVersion> {
        self.versions.iter().find(|v| v.version == version)
    }

    /// The version an envelope header's `DocumentVersion` names, if this hub reads it: the one
    /// listed as written, or with `.0` added (`1` names `1.0`).
    pub fn read_version(&self, version: &str) -> Option<&KindVersion> {
        self.version(version)
            .or_else(|| self.version(&format!("{version}.0")))
    }
}

/// Every kind a hub knows, in wire-name order.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct KindRegistry {
    kinds: Vec<KindDef>,
}

/// The files of `schemas/kinds/` built into this binary.
const SHIPPED: &[(&str, &str)] = &[
    (
        "acdd.toml",
        include_str!("../../../schemas/kinds/acdd.toml"),
    ),
    (
        "acdd-ack.toml",
        include_str!("../../../schemas/kinds/acdd-ack.toml"),
    ),
    (
        "acdd-response.toml",
        include_str!("../../../schemas/kinds/acdd-response.toml"),
    ),
    (
        "ephyto.toml",
        include_str!("../../../schemas/kinds/ephyto.toml"),
    ),
    (
        "ephyto-ack.toml",
        include_str!("../../../schemas/kinds/ephyto-ack.toml"),
    ),
    (
        "formd.toml",
        include_str!("../../../schemas/kinds/formd.toml"),
    ),
    (
        "formd-ack.toml",
        include_str!("../../../schemas/kinds/formd-ack.toml"),
    ),
    (
        "formd-status.toml",
        include_str!("../../../schemas/kinds/formd-status.toml"),
    ),
];

/// The shipped kinds' files (name, TOML text), as built into this binary.
pub fn shipped_files() -> impl Iterator<Item = (&'static str, &'static str)> {
    SHIPPED.iter().map(|(name, text)| (*name, *text))
}

impl KindRegistry {
    /// The kinds shipped in `schemas/kinds/`, as built into this binary.
    pub fn shipped() -> Result<KindRegistry, ModelError> {
        KindRegistry::from_files(SHIPPED.iter().map(|(name, text)| (*name, *text)))
    }

    /// Reads every `*.toml` file of a kinds directory; each kind's XSDs must exist in the
    /// directory's parent (`schemas/`).
    pub fn load_dir(dir: &Path) -> Result<KindRegistry, ModelError> {
        let unreadable = |message: String| ModelError::Data {
            file: dir.display().to_string(),
            line: 0,
            key: String::new(),
            message,
        };
        let mut files = Vec::new();
        for entry in std::fs::read_dir(dir).map_err(|e| unreadable(e.to_string()))? {
            let path = entry.map_err(|e| unreadable(e.to_string()))?.path();
            if path.extension().is_some_and(|x| x == "toml") {
                let text = std::fs::read_to_string(&path).map_err(|e| ModelError::Data {
                    file: path.display().to_string(),
                    line: 0,
                    key: String::new(),
                    message: e.to_string(),
                })?;
                files.push((path.display().to_string(), text));
            }
        }
        let registry =
            KindRegistry::from_files(files.iter().map(|(f, t)| (f.as_str(), t.as_str())))?;
        let schemas = dir.parent().unwrap_or(Path::new("."));
        for kind in &registry.kinds {
            for version in &kind.versions {
                for xsd in &version.xsd {
                    if !schemas.join(xsd).is_file() {
                        let file = dir.join(format!("{}.toml", kind.wire));
                        let line = files
                            .iter()
                            .find(|(f, _)| Path::new(f) == file)
                            .and_then(|(_, text)| {
                                text.find(&format!("\"{xsd}\"")).map(|at| line_of(text, at))
                            })
                            .unwrap_or(0);
                        return Err(ModelError::Data {
                            file: file.display().to_string(),
                            line,
                            key: "versions.xsd".into(),
                            message: format!(
                                "{xsd} (version {}) is not in {}",
                                version.version,
                                schemas.display()
                            ),
                        });
                    }
                }
            }
        }
        Ok(registry)
    }

    /// Reads kinds from (file name, TOML text) pairs, each file named after its kind's wire
    /// name, and checks that they fit together (answers name known kinds, both ways).
    pub fn from_files<'a>(
        files: impl IntoIterator<Item = (&'a str, &'a str)>,
    ) -> Result<KindRegistry, ModelError> {
        let mut kinds: BTreeMap<String, (String, String, Raw)> = BTreeMap::new();
        for (file, text) in files {
            let raw: Raw = toml::from_str(text).map_err(|e| toml_error(file, text, &e))?;
            let wire = raw.wire.get_ref().clone();
            let at = |span: Range<usize>, key: &str, message: String| ModelError::Data {
                file: file.to_owned(),
                line: line_of(text, span.start),
                key: key.to_owned(),
                message,
            };
            if !is_name(&wire) {
                return Err(at(
                    raw.wire.span(),
                    "wire",
                    format!("{wire:?} is not a wire name (lower-case letters, digits, '-')"),
                ));
            }
            let stem = Path::new(file)
                .file_stem()
                .and_then(|s| s.to_str())
                .unwrap_or_default();
            if stem != wire {
                return Err(at(
                    raw.wire.span(),
                    "wire",
                    format!("the kind {wire:?} must be in {wire}.toml"),
                ));
            }
            if raw.versions.is_empty() {
                return Err(at(0..0, "versions", "no version".into()));
            }
            for (i, v) in raw.versions.iter().enumerate() {
                if !is_version(v.version.get_ref()) {
                    return Err(at(
                        v.version.span(),
                        "versions.version",
                        format!(
                            "{:?} is not a version (1 to 3 digits, a dot, 1 to 3 digits)",
                            v.version.get_ref()
                        ),
                    ));
                }
                if raw.versions[..i]
                    .iter()
                    .any(|w| w.version.get_ref() == v.version.get_ref())
                {
                    return Err(at(
                        v.version.span(),
                        "versions.version",
                        format!("version {} is listed twice", v.version.get_ref()),
                    ));
                }
                if v.xsd.get_ref().is_empty() {
                    return Err(at(v.xsd.span(), "versions.xsd", "no XSD".into()));
                }
            }
            for role in &raw.back_offices {
                if !is_name(role.get_ref()) {
                    return Err(at(
                        role.span(),
                        "back_offices",
                        format!("{:?} is not a back-office role name", role.get_ref()),
                    ));
                }
            }
            if raw.answers.is_some() && raw.answered_by.is_some() {
                return Err(at(
                    raw.wire.span(),
                    "answered_by",
                    "an answer kind is not answered itself".into(),
                ));
            }
            if let Some(by) = &raw.answered_by
                && by.receipt_by_hub
                && by.receipt.is_none()
            {
                return Err(at(
                    raw.wire.span(),
                    "answered_by.receipt_by_hub",
                    "the hub cannot send a receipt the kind does not have".into(),
                ));
            }
            if let Some((other, _, _)) = kinds.get(&wire) {
                return Err(at(
                    raw.wire.span(),
                    "wire",
                    format!("{wire} is already described by {other}"),
                ));
            }
            if let Some((other, _, _)) = kinds.values().find(|(_, _, k)| {
                k.root.namespace == raw.root.namespace && k.root.element == raw.root.element
            }) {
                return Err(at(
                    0..0,
                    "root",
                    format!(
                        "{{{}}}{} is already the root of the kind in {other}",
                        raw.root.namespace, raw.root.element
                    ),
                ));
            }
            kinds.insert(wire, (file.to_owned(), text.to_owned(), raw));
        }
        // Answers, both ways: what each answer kind answers, then what each original lists.
        for (wire, (file, text, raw)) in &kinds {
            let error = |span: Range<usize>, key: &str, message: String| ModelError::Data {
                file: file.clone(),
                line: line_of(text, span.start),
                key: key.to_owned(),
                message,
            };
            if let Some(answers) = &raw.answers {
                let Some((_, _, original)) = kinds.get(answers.get_ref()) else {
                    return Err(error(
                        answers.span(),
                        "answers",
                        format!("no kind {:?}", answers.get_ref()),
                    ));
                };
                if original.answers.is_some() {
                    return Err(error(
                        answers.span(),
                        "answers",
                        format!("{} is itself an answer", answers.get_ref()),
                    ));
                }
                let listed = original.answered_by.as_ref().is_some_and(|by| {
                    by.receipt.as_ref().is_some_and(|r| r.get_ref() == wire)
                        || by
                            .status
                            .iter()
                            .chain(&by.response)
                            .any(|k| k.get_ref() == wire)
                });
                if !listed {
                    return Err(error(
                        answers.span(),
                        "answers",
                        format!(
                            "{} does not list {wire} in its answered_by",
                            answers.get_ref()
                        ),
                    ));
                }
            }
        }
        for (wire, (file, text, raw)) in &kinds {
            let error = |span: Range<usize>, key: &str, message: String| ModelError::Data {
                file: file.clone(),
                line: line_of(text, span.start),
                key: key.to_owned(),
                message,
            };
            if let Some(by) = &raw.answered_by {
                let named = by.receipt.iter().map(|r| ("answered_by.receipt", r)).chain(
                    by.status
                        .iter()
                        .map(|k| ("answered_by.status", k))
                        .chain(by.response.iter().map(|k| ("answered_by.response", k))),
                );
                for (key, answer) in named {
                    let answers_this = kinds
                        .get(answer.get_ref())
                        .and_then(|(_, _, k)| k.answers.as_ref())
                        .is_some_and(|a| a.get_ref() == wire);
                    if !answers_this {
                        return Err(error(
                            answer.span(),
                            key,
                            format!("{:?} is not a kind that answers {wire}", answer.get_ref()),
                        ));
                    }
                }
            }
        }
        // Receipts the hub sends: written by code, or the file says how.
        for (wire, (file, text, raw)) in &kinds {
            let error = |span: Range<usize>, key: &str, message: String| ModelError::Data {
                file: file.clone(),
                line: line_of(text, span.start),
                key: key.to_owned(),
                message,
            };
            if let Some(written) = &raw.written_as {
                let sent_by_hub = raw
                    .answers
                    .as_ref()
                    .and_then(|a| kinds.get(a.get_ref()))
                    .and_then(|(_, _, original)| original.answered_by.as_ref())
                    .is_some_and(|by| {
                        by.receipt_by_hub
                            && by.receipt.as_ref().is_some_and(|r| r.get_ref() == wire)
                    });
                if !sent_by_hub {
                    return Err(error(
                        written.span(),
                        "written_as",
                        format!("{wire} is not a receipt the hub sends (receipt_by_hub)"),
                    ));
                }
            }
            if let Some(by) = &raw.answered_by
                && by.receipt_by_hub
                && let Some(receipt) = &by.receipt
                && !CODE_WRITTEN_RECEIPTS.contains(&receipt.get_ref().as_str())
                && kinds
                    .get(receipt.get_ref())
                    .is_some_and(|(_, _, r)| r.written_as.is_none())
            {
                return Err(error(
                    receipt.span(),
                    "answered_by.receipt",
                    format!(
                        "the hub cannot write {}: its file must say how (written_as = \
                         \"asw-acknowledgement\")",
                        receipt.get_ref()
                    ),
                ));
            }
        }
        let kinds = kinds
            .into_values()
            .map(|(_, _, raw)| raw.into_def())
            .collect();
        Ok(KindRegistry { kinds })
    }

    /// Every kind, in wire-name order.
    pub fn iter(&self) -> impl Iterator<Item = &KindDef> {
        self.kinds.iter()
    }

    /// The kind with this wire name.
    pub fn get(&self, wire: &str) -> Option<&KindDef> {
        self.kinds.iter().find(|k| k.wire == wire)
    }

    /// The kind whose body root element has this namespace and local name.
    pub fn by_root(&self, namespace: &str, element: &str) -> Option<&KindDef> {
        self.kinds
            .iter()
            .find(|k| k.root.namespace == namespace && k.root.element == element)
    }
}

fn is_name(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 64
        && s.bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        && !s.starts_with('-')
}

/// The envelope's `DocumentVersion` shape: `[0-9]{1,3}(\.[0-9]{1,3})?`.
fn is_version(s: &str) -> bool {
    let digits = |p: &str| (1..=3).contains(&p.len()) && p.bytes().all(|b| b.is_ascii_digit());
    match s.split_once('.') {
        Some((major, minor)) => digits(major) && digits(minor),
        None => digits(s),
    }
}

/// 1-based line of byte `offset` in `text`.
pub(crate) fn line_of(text: &str, offset: usize) -> u32 {
    let offset = offset.min(text.len());
    let lines = text.as_bytes()[..offset]
        .iter()
        .filter(|&&b| b == b'\n')
        .count();
    u32::try_from(lines + 1).unwrap_or(u32::MAX)
}

/// A TOML or shape error of a data file, with its line and key: the key written on that line
/// (under its `[table]`), or the one a "missing field" message names.
pub(crate) fn toml_error(file: &str, text: &str, e: &toml::de::Error) -> ModelError {
    let message = e.message().trim().to_owned();
    let line = e.span().map_or(1, |s| line_of(text, s.start));
    let named = || {
        message
            .split('`')
            .nth(1)
            .filter(|_| message.contains('`'))
            .unwrap_or_default()
            .to_owned()
    };
    let lines: Vec<&str> = text.lines().collect();
    let index = usize::try_from(line).unwrap_or(1).saturating_sub(1);
    let written = lines
        .get(index)
        .and_then(|l| l.split_once('='))
        .map(|(k, _)| k.trim().to_owned())
        .filter(|k| !k.is_empty() && !message.starts_with("missing field"));
    let key = match written {
        Some(key) => {
            let table = lines[..index.min(lines.len())]
                .iter()
                .rev()
                .find(|l| l.trim_start().starts_with('['))
                .map(|l| l.trim().trim_matches(|c| c == '[' || c == ']').to_owned());
            match table {
                Some(table) => format!("{table}.{key}"),
                None => key,
            }
        }
        None => named(),
    };
    ModelError::Data {
        file: file.to_owned(),
        line,
        key,
        message,
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Raw {
    wire: Spanned<String>,
    title: String,
    envelope: Envelope,
    #[serde(default)]
    bare: bool,
    root: RawRoot,
    versions: Vec<RawVersion>,
    answers: Option<Spanned<String>>,
    answered_by: Option<RawAnsweredBy>,
    back_offices: Vec<Spanned<String>>,
    #[serde(default)]
    reference: Vec<String>,
    #[serde(default)]
    rules: Vec<DataRule>,
    written_as: Option<Spanned<WrittenAs>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawRoot {
    namespace: String,
    element: String,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawVersion {
    version: Spanned<String>,
    xsd: Spanned<Vec<String>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawAnsweredBy {
    receipt: Option<Spanned<String>>,
    #[serde(default)]
    receipt_by_hub: bool,
    #[serde(default)]
    status: Vec<Spanned<String>>,
    #[serde(default)]
    response: Vec<Spanned<String>>,
}

impl Raw {
    fn into_def(self) -> KindDef {
        let by = self.answered_by.map(|by| AnsweredBy {
            receipt: by.receipt.map(Spanned::into_inner),
            receipt_by_hub: by.receipt_by_hub,
            status: by.status.into_iter().map(Spanned::into_inner).collect(),
            response: by.response.into_iter().map(Spanned::into_inner).collect(),
        });
        KindDef {
            wire: self.wire.into_inner(),
            title: self.title,
            envelope: self.envelope,
            bare: self.bare,
            root: RootElement {
                namespace: self.root.namespace,
                element: self.root.element,
            },
            versions: self
                .versions
                .into_iter()
                .map(|v| KindVersion {
                    version: v.version.into_inner(),
                    xsd: v.xsd.into_inner(),
                })
                .collect(),
            answers: self.answers.map(Spanned::into_inner),
            answered_by: by.unwrap_or_default(),
            back_offices: self
                .back_offices
                .into_iter()
                .map(Spanned::into_inner)
                .collect(),
            reference: self.reference,
            rules: self.rules,
            written_as: self.written_as.map(Spanned::into_inner),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::DocumentKind;

    fn dir() -> std::path::PathBuf {
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../../schemas/kinds")
    }

    /// The shipped files describe exactly what `DocumentKind` says today, plus the e-Phyto
    /// kinds, so the registry can replace the enum.
    #[test]
    fn the_shipped_kinds_are_what_the_enum_says() {
        let registry = KindRegistry::load_dir(&dir()).expect("the shipped kinds load");
        assert_eq!(registry, KindRegistry::shipped().expect("embedded"));
        let wires: Vec<&str> = registry.iter().map(|k| k.wire.as_str()).collect();
        let mut expected: Vec<&str> = DocumentKind::ALL.iter().map(|k| k.as_str()).collect();
        expected.extend(["ephyto", "ephyto-ack"]);
        expected.sort_unstable();
        assert_eq!(wires, expected, "one file per kind, no other");
        for kind in DocumentKind::ALL {
            let def = registry.get(kind.as_str()).expect("described");
            let (namespace, element) = kind.root_element();
            assert_eq!(
                (def.root.namespace.as_str(), def.root.element.as_str()),
                (namespace, element),
                "{kind}"
            );
            assert_eq!(registry.by_root(namespace, element), Some(def));
            assert_eq!(def.envelope, Envelope::Asw);
            assert!(!def.bare, "{kind}");
            assert_eq!(def.versions.len(), 1, "{kind}");
            assert_eq!(def.written_version().version, kind.version(), "{kind}");
            assert!(def.version(kind.version()).is_some());
            assert_eq!(def.is_response(), kind.is_response(), "{kind}");
            assert_eq!(
                def.answers.as_deref(),
                kind.answers().map(DocumentKind::as_str),
                "{kind}"
            );
            assert_eq!(
                def.answered_by.receipt.as_deref(),
                kind.ack_kind().map(DocumentKind::as_str),
                "{kind}"
            );
            // Today the hub sends every receipt itself.
            assert_eq!(def.answered_by.receipt_by_hub, kind.ack_kind().is_some());
            let answering: Vec<&str> = DocumentKind::ALL
                .into_iter()
                .filter(|k| k.answers() == Some(kind))
                .map(DocumentKind::as_str)
                .collect();
            let mut listed: Vec<&str> = def
                .answered_by
                .receipt
                .iter()
                .chain(&def.answered_by.status)
                .chain(&def.answered_by.response)
                .map(String::as_str)
                .collect();
            listed.sort_unstable();
            let mut answering_sorted = answering.clone();
            answering_sorted.sort_unstable();
            assert_eq!(listed, answering_sorted, "{kind}");
            // Receipts come from the hub, never from a back-office.
            if kind.answers().and_then(DocumentKind::ack_kind) == Some(kind) {
                assert!(def.back_offices.is_empty(), "{kind}");
            }
        }
        let ephyto = registry.get("ephyto").expect("ephyto");
        assert_eq!(
            (ephyto.root.namespace.as_str(), ephyto.root.element.as_str()),
            (crate::ns::SPS_CERTIFICATE, "SPSCertificate")
        );
        assert_eq!(ephyto.answered_by.receipt.as_deref(), Some("ephyto-ack"));
        assert!(ephyto.bare);
        let ack = registry.get("ephyto-ack").expect("ephyto-ack");
        assert_eq!(ack.answers.as_deref(), Some("ephyto"));
        assert_eq!(ack.root.namespace, crate::ns::SPS_ACKNOWLEDGEMENT);
    }

    fn error(files: &[(&str, &str)]) -> String {
        KindRegistry::from_files(files.iter().copied())
            .expect_err("refused")
            .to_string()
    }

    const FORMD: &str = "wire = \"formd\"\ntitle = \"e-Form D\"\nenvelope = \"asw\"\n\
        back_offices = []\n[root]\nnamespace = \"urn:x\"\nelement = \"FormD\"\n\
        [[versions]]\nversion = \"1.0\"\nxsd = [\"formd-1.xsd\"]\n\
        [answered_by]\nreceipt = \"formd-ack\"\nreceipt_by_hub = true\n";

    #[test]
    fn errors_name_the_file_the_line_and_the_key() {
        assert_eq!(
            error(&[("formd.toml", &FORMD.replace("title", "tilte"))]),
            "formd.toml:2: tilte: unknown field `tilte`, expected one of `wire`, `title`, \
             `envelope`, `bare`, `root`, `versions`, `answers`, `answered_by`, `back_offices`, \
             `reference`, `rules`, `written_as`"
        );
        assert_eq!(
            error(&[(
                "formd.toml",
                &FORMD.replace("version = \"1.0\"", "version = \"one\"")
            )]),
            "formd.toml:9: versions.version: \"one\" is not a version (1 to 3 digits, a dot, \
             1 to 3 digits)"
        );
        assert_eq!(
            error(&[("other.toml", FORMD)]),
            "other.toml:1: wire: the kind \"formd\" must be in formd.toml"
        );
        assert_eq!(
            error(&[("formd.toml", FORMD)]),
            "formd.toml:12: answered_by.receipt: \"formd-ack\" is not a kind that answers formd"
        );
        let ack = "wire = \"formd-ack\"\ntitle = \"receipt\"\nenvelope = \"asw\"\n\
            answers = \"fromd\"\nback_offices = []\n[root]\nnamespace = \"urn:x\"\n\
            element = \"Ack\"\n[[versions]]\nversion = \"1.0\"\nxsd = [\"ack-1.xsd\"]\n";
        assert_eq!(
            error(&[("formd.toml", FORMD), ("formd-ack.toml", ack)]),
            "formd-ack.toml:4: answers: no kind \"fromd\""
        );
        let fixed = ack.replace("fromd", "formd");
        assert!(
            KindRegistry::from_files([("formd.toml", FORMD), ("formd-ack.toml", fixed.as_str())])
                .is_ok()
        );
        assert_eq!(
            error(&[(
                "formd.toml",
                &FORMD.replace("envelope = \"asw\"", "envelope = \"as4\"")
            )]),
            "formd.toml:3: envelope: unknown variant `as4`, expected `asw`"
        );
    }

    #[test]
    fn a_receipt_the_hub_sends_of_a_kind_as_data_says_how_it_is_written() {
        let co = "wire = \"co\"\ntitle = \"C/O\"\nenvelope = \"asw\"\nback_offices = []\n\
            [root]\nnamespace = \"urn:co\"\nelement = \"CO\"\n\
            [[versions]]\nversion = \"1.0\"\nxsd = [\"co-1.xsd\"]\n\
            [answered_by]\nreceipt = \"co-ack\"\nreceipt_by_hub = true\n";
        let ack = "wire = \"co-ack\"\ntitle = \"receipt\"\nenvelope = \"asw\"\n\
            answers = \"co\"\nback_offices = []\n[root]\nnamespace = \"urn:co-ack\"\n\
            element = \"Ack\"\n[[versions]]\nversion = \"1.0\"\nxsd = [\"co-ack-1.xsd\"]\n";
        assert_eq!(
            error(&[("co.toml", co), ("co-ack.toml", ack)]),
            "co.toml:12: answered_by.receipt: the hub cannot write co-ack: its file must say \
             how (written_as = \"asw-acknowledgement\")"
        );
        let written = ack.replace("[root]", "written_as = \"asw-acknowledgement\"\n[root]");
        let registry =
            KindRegistry::from_files([("co.toml", co), ("co-ack.toml", &written)]).expect("loads");
        assert_eq!(
            registry.get("co-ack").and_then(|k| k.written_as),
            Some(WrittenAs::AswAcknowledgement)
        );
        assert_eq!(registry.get("co").and_then(|k| k.written_as), None);
        // Written by the hub, but the hub does not send it.
        let not_sent = co.replace("receipt_by_hub = true", "receipt_by_hub = false");
        assert_eq!(
            error(&[("co.toml", &not_sent), ("co-ack.toml", &written)]),
            "co-ack.toml:6: written_as: co-ack is not a receipt the hub sends (receipt_by_hub)"
        );
    }

    #[test]
    fn versions_are_read_as_the_header_writes_them() {
        let registry = KindRegistry::from_files([(
            "formd.toml",
            FORMD
                .replace(
                    "[answered_by]\nreceipt = \"formd-ack\"\nreceipt_by_hub = true\n",
                    "",
                )
                .replace(
                    "xsd = [\"formd-1.xsd\"]\n",
                    "xsd = [\"formd-1.xsd\"]\n[[versions]]\nversion = \"2.0\"\n\
                     xsd = [\"formd-2.xsd\"]\n",
                )
                .as_str(),
        )])
        .expect("loads");
        let formd = registry.get("formd").expect("formd");
        assert_eq!(formd.written_version().version, "1.0");
        assert_eq!(
            formd.read_version("2").map(|v| v.xsd.as_slice()),
            Some(["formd-2.xsd".to_owned()].as_slice())
        );
        assert_eq!(
            formd.read_version("1.0").map(|v| v.version.as_str()),
            Some("1.0")
        );
        assert!(formd.read_version("3.0").is_none() && formd.version("2").is_none());
    }

    #[test]
    fn a_directory_whose_kind_names_a_missing_xsd_is_refused() {
        let root = std::env::temp_dir().join(format!("aswhub-kinds-{}", std::process::id()));
        let kinds = root.join("kinds");
        std::fs::create_dir_all(&kinds).expect("dir");
        let formd = FORMD.replace(
            "[answered_by]\nreceipt = \"formd-ack\"\nreceipt_by_hub = true\n",
            "",
        );
        std::fs::write(kinds.join("formd.toml"), &formd).expect("write");
        std::fs::write(kinds.join("README.md"), "not a kind").expect("write");
        let err = KindRegistry::load_dir(&kinds)
            .expect_err("no formd-1.xsd")
            .to_string();
        assert_eq!(
            err,
            format!(
                "{}:10: versions.xsd: formd-1.xsd (version 1.0) is not in {}",
                kinds.join("formd.toml").display(),
                root.display()
            )
        );
        std::fs::write(root.join("formd-1.xsd"), "<xs:schema/>").expect("write");
        let registry = KindRegistry::load_dir(&kinds).expect("loads");
        assert_eq!(registry.iter().count(), 1, "only the .toml files");
        let _ = std::fs::remove_dir_all(&root);
    }
}
