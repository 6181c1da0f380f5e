//! The validator: bounded read, XSD validation with libxml2, business rules.

use std::sync::Once;

use asw_model::xml::{self, Element, Limits};
use asw_model::{Header, ModelError};
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
    xsd: Xsd,
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

impl Validator {
    /// A validator for the schemas built into this binary, with default limits.
    pub fn new() -> Result<Validator, SchemaError> {
        Validator::with_schemas(&SchemaSet::embedded()?, Limits::default())
    }

    /// A validator for the given schemas and limits.
    pub fn with_schemas(schemas: &SchemaSet, limits: Limits) -> Result<Validator, SchemaError> {
        Ok(Validator {
            xsd: Xsd::compile(schemas.entry())?,
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
    /// their input would otherwise be unreliable.
    pub fn validate_at(
        &mut self,
        bytes: &[u8],
        now: OffsetDateTime,
    ) -> Result<Validated, Vec<Problem>> {
        // The phases are ordered so that no two copies of a large document are alive at once:
        // a streaming check, libxml2's DOM (freed after XSD validation), then the reader's tree.
        // 1. The bounded reader, building nothing: refuses DTDs, entities, oversize, deep
        //    nesting, non-UTF-8, before libxml2 sees the bytes.
        xml::parse_selected(bytes, &self.limits, &|_: &str, _: &str| false)
            .map_err(|e| vec![Problem::from(e)])?;
        // 2. XSD validation by libxml2, with no network, no DTD, no entity substitution, no recovery.
        self.xsd.check(bytes)?;
        // 3. Business rules on the reader's tree, built now that the DOM is gone (the same
        //    reader on the same bytes: it accepts them again).
        let root = xml::parse(bytes, &self.limits).map_err(|e| vec![Problem::from(e)])?;
        let header = Header::from_message(&root).map_err(|e: ModelError| vec![Problem::from(e)])?;
        let problems = rules::check(&header, &root, now);
        if problems.is_empty() {
            Ok(Validated { header, root })
        } else {
            Err(problems)
        }
    }
}
