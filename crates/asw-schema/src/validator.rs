//! The validator: bounded read, XSD validation with libxml2, business rules.

use std::sync::Once;

use asw_model::xml::{self, Element, Limits, Selection};
use asw_model::{DocumentKind, Header, ModelError, ns};
use time::OffsetDateTime;

use crate::xsd::Xsd;
use crate::{Problem, SchemaError, SchemaSet, rules};

/// A message that passed every check: its header (for routing) and its element tree.
#[derive(Debug, Clone)]
pub struct Validated {
    header: Header,
    root: Element,
}

impl Validated {
    /// The envelope header.
    pub fn header(&self) -> &Header {
        &self.header
    }

    /// The whole message as an element tree.
    pub fn root(&self) -> &Element {
        &self.root
    }
}

/// Validates ASW messages. Holds compiled libxml2 schemas and is not `Send`: one per thread.
pub struct Validator {
    /// The entry schema: every kind's namespace with its first version's XSD.
    xsd: Xsd,
    /// The versions read side by side whose XSD is another: kind, version, and which of
    /// `others` checks them.
    versions: Vec<(DocumentKind, String, usize)>,
    /// Their entry schemas, each compiled once.
    others: Vec<Xsd>,
    limits: Limits,
}

impl std::fmt::Debug for Validator {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Validator")
            .field("limits", &self.limits)
            .finish_non_exhaustive()
    }
}

static INIT: Once = Once::new();

/// Initialises libxml2's parser once per process, before any schema is compiled.
pub(crate) fn init() {
    INIT.call_once(libxml::init_parser);
}

/// What the envelope header names, as the bounded reader's first pass found it: a known kind,
/// the version as written, and the line of `DocumentVersion`.
struct Named {
    kind: DocumentKind,
    version: String,
    line: u32,
}

impl Named {
    fn from(selection: &Selection) -> Option<Named> {
        if !selection.root.is(ns::ENVELOPE, "Message") {
            return None;
        }
        let header = selection.root.child(ns::ENVELOPE, "Header")?;
        let kind = DocumentKind::from_wire(header.child(ns::ENVELOPE, "DocumentKind")?.trimmed())?;
        let version = header.child(ns::ENVELOPE, "DocumentVersion")?;
        Some(Named {
            kind,
            version: version.trimmed().to_owned(),
            line: version.line,
        })
    }
}

impl Validator {
    /// A validator for the schemas built into this binary, with default limits.
    pub fn new() -> Result<Validator, SchemaError> {
        Validator::with_schemas(&SchemaSet::embedded()?, Limits::default())
    }

    /// A validator for the given schemas and limits.
    pub fn with_schemas(schemas: &SchemaSet, limits: Limits) -> Result<Validator, SchemaError> {
        let mut entries: Vec<&std::path::Path> = Vec::new();
        let mut others = Vec::new();
        let mut versions = Vec::new();
        for version in schemas.versions() {
            // One the entry schema already is (a version whose XSD is missing) is checked by it.
            if version.entry == schemas.entry() {
                continue;
            }
            let index = match entries.iter().position(|e| *e == version.entry) {
                Some(index) => index,
                None => {
                    others.push(Xsd::compile(&version.entry)?);
                    entries.push(&version.entry);
                    others.len() - 1
                }
            };
            versions.push((version.kind, version.version.clone(), index));
        }
        Ok(Validator {
            xsd: Xsd::compile(schemas.entry())?,
            versions,
            others,
            limits,
        })
    }

    /// The limits this validator enforces.
    pub fn limits(&self) -> &Limits {
        &self.limits
    }

    /// Validates a message against the schemas and business rules, as of the current time.
    pub fn validate(&mut self, bytes: &[u8]) -> Result<Validated, Vec<Problem>> {
        self.validate_at(bytes, OffsetDateTime::now_utc())
    }

    /// Validates a message as of `now` (rules about dates in the future use it).
    ///
    /// Returns every problem found. Business rules run only on a schema-valid message, since
    /// their input would otherwise be unreliable. [`Validator::screen`], a libxml2 parse of
    /// its own, [`Validator::check_schema`], [`Validator::check_rules`].
    pub fn validate_at(
        &mut self,
        bytes: &[u8],
        now: OffsetDateTime,
    ) -> Result<Validated, Vec<Problem>> {
        // The phases are ordered so that no two copies of a large document are alive at once:
        // a streaming check, libxml2's DOM (freed after XSD validation), then the reader's tree.
        let screened = self.screen(bytes)?;
        let outcome = self.xsd(&screened).check(bytes);
        let valid = Validator::schema_outcome(screened, outcome)?;
        self.check_rules(valid, bytes, now)
    }

    /// Phase 1: the bounded reader, building only the envelope header. Refuses DTDs, entities,
    /// oversize, deep nesting, non-UTF-8: only bytes it accepted may reach libxml2. The header
    /// names the kind and version, and so the XSD the message is checked against.
    pub fn screen(&self, bytes: &[u8]) -> Result<Screened, Vec<Problem>> {
        let selection = xml::parse_selected(bytes, &self.limits, &|namespace: &str, name: &str| {
            name == "Header" && namespace == ns::ENVELOPE
        })
        .map_err(|e| vec![Problem::from(e)])?;
        Ok(self.screen_selected(&selection))
    }

    /// Phase 1 on a bounded read made elsewhere, so that the bytes are read once: `selection`
    /// must be what [`xml::parse_selected`] kept of the message, with this validator's limits,
    /// selecting at least the envelope `Header` (as the signer's and verifier's reads of
    /// `asw-sign` do). The reader accepted the bytes, so it cannot fail; the header names the
    /// XSD, as in [`Validator::screen`].
    pub fn screen_selected(&self, selection: &Selection) -> Screened {
        let named = Named::from(selection);
        let other = named
            .as_ref()
            .and_then(|n| Some((n.kind, n.kind.def().read_version(&n.version)?)))
            .and_then(|(kind, version)| {
                self.versions
                    .iter()
                    .find(|(k, v, _)| *k == kind && *v == version.version)
            })
            .map(|(_, _, index)| *index);
        Screened { named, other }
    }

    /// Phase 2: XSD validation of the libxml2 tree of the screened bytes (parsed with no
    /// network, no DTD, no entity substitution, no recovery, as the signer and verifier of
    /// `asw-sign` parse), against the entry schema of the version the header names.
    pub fn check_schema(
        &mut self,
        screened: Screened,
        document: &libxml::tree::Document,
    ) -> Result<SchemaValid, Vec<Problem>> {
        let outcome = self.xsd(&screened).validate(document);
        Validator::schema_outcome(screened, outcome)
    }

    /// Phase 3: the business rules on the reader's tree of the same bytes (built now, so that
    /// the caller can free the libxml2 tree first: the reader accepts the bytes again).
    pub fn check_rules(
        &self,
        valid: SchemaValid,
        bytes: &[u8],
        now: OffsetDateTime,
    ) -> Result<Validated, Vec<Problem>> {
        let SchemaValid { .. } = valid;
        let root = xml::parse(bytes, &self.limits).map_err(|e| vec![Problem::from(e)])?;
        let header = Header::from_message(&root).map_err(|e: ModelError| vec![Problem::from(e)])?;
        let problems = rules::check(&header, &root, now);
        if problems.is_empty() {
            Ok(Validated { header, root })
        } else {
            Err(problems)
        }
    }

    /// The compiled schema that checks a screened message.
    fn xsd(&mut self, screened: &Screened) -> &mut Xsd {
        match screened.other {
            Some(index) => &mut self.others[index],
            None => &mut self.xsd,
        }
    }

    fn schema_outcome(
        screened: Screened,
        outcome: Result<(), Vec<Problem>>,
    ) -> Result<SchemaValid, Vec<Problem>> {
        outcome.map_err(|mut problems| {
            // A version the kind does not read was checked against the common entry schema (its
            // namespace's first XSD): say that the version is not read too (a schema-valid one
            // hears it from the rules).
            if let Some(n) = screened.named.filter(|n| !n.kind.reads_version(&n.version)) {
                problems.push(rules::unread_version(n.kind, &n.version, n.line));
                problems.sort_by_key(|p| p.line);
            }
            problems
        })?;
        Ok(SchemaValid { _checked: () })
    }
}

/// Bytes the bounded reader accepted ([`Validator::screen`], [`Validator::screen_selected`]):
/// libxml2 may parse them now, and
/// [`Validator::check_schema`] validates that tree against the XSD this names.
pub struct Screened {
    named: Option<Named>,
    /// Which of the validator's `others` checks the message; `None`: the entry schema.
    other: Option<usize>,
}

impl std::fmt::Debug for Screened {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Screened")
            .field("other", &self.other)
            .finish_non_exhaustive()
    }
}

/// Proof that a message passed its XSD ([`Validator::check_schema`]); only then may
/// [`Validator::check_rules`] run the business rules and make a [`Validated`].
#[derive(Debug)]
pub struct SchemaValid {
    _checked: (),
}

#[cfg(test)]
mod tests {
    use super::*;

    /// What a screen found: the header's kind, version and line, and the schema chosen.
    fn found(screened: &Screened) -> (Option<(DocumentKind, String, u32)>, Option<usize>) {
        let named = screened
            .named
            .as_ref()
            .map(|n| (n.kind, n.version.clone(), n.line));
        (named, screened.other)
    }

    /// A screen from a read that kept more than the header (the signer's and verifier's keep
    /// the signatures too) finds what the validator's own read finds, for every sample, and
    /// the reader refuses the same bytes with the same problem.
    #[test]
    fn screening_a_wider_selection_finds_what_the_validators_own_read_finds() {
        let validator = Validator::new().expect("validator");
        let wider = |namespace: &str, name: &str| {
            (namespace == ns::ENVELOPE && name == "Header")
                || (namespace == "http://www.w3.org/2000/09/xmldsig#" && name == "Signature")
        };
        let samples =
            std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../schemas/samples");
        let mut count = 0;
        for folder in ["valid", "invalid"] {
            for entry in std::fs::read_dir(samples.join(folder)).expect("samples") {
                let path = entry.expect("entry").path();
                if path.extension().is_none_or(|e| e != "xml") {
                    continue;
                }
                let bytes = std::fs::read(&path).expect("sample");
                let own = validator.screen(&bytes);
                let read = xml::parse_selected(&bytes, validator.limits(), &wider);
                match (own, read) {
                    (Ok(own), Ok(selection)) => assert_eq!(
                        found(&validator.screen_selected(&selection)),
                        found(&own),
                        "{}",
                        path.display()
                    ),
                    (Err(own), Err(e)) => assert_eq!(own, vec![Problem::from(e)]),
                    (own, read) => panic!("{}: {own:?} against {read:?}", path.display()),
                }
                count += 1;
            }
        }
        assert!(count >= 40, "{count} samples");
    }
}
