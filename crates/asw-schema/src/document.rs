//! Validation of bare documents, which travel without the ASW envelope (an e-Phyto certificate
//! through the IPPC ePhyto Hub): the bounded reader, then one XSD. No business rules yet.

use asw_model::xml::{self, Limits};

use crate::xsd::Xsd;
use crate::{Problem, SchemaError, SchemaSet};

/// The root element of a document: namespace URI (empty for none) and local name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Root {
    /// Namespace URI, empty when the root is in no namespace.
    pub namespace: String,
    /// Local name.
    pub name: String,
}

/// Reads the root element of untrusted bytes with the bounded reader (building nothing else).
/// Fails with the reader's rule and line where the bytes break a limit or are not well-formed.
pub fn root_element(bytes: &[u8], limits: &Limits) -> Result<Root, Problem> {
    let selection = xml::parse_selected(bytes, limits, &|_: &str, _: &str| false)?;
    Ok(Root {
        namespace: selection.root.namespace.to_string(),
        name: selection.root.name,
    })
}

/// Validates bare documents against one schema. Holds libxml2 objects: one per thread.
pub struct DocumentValidator {
    xsd: Xsd,
    limits: Limits,
}

impl std::fmt::Debug for DocumentValidator {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DocumentValidator")
            .field("limits", &self.limits)
            .finish_non_exhaustive()
    }
}

impl DocumentValidator {
    /// A validator for the schema whose entry point `schemas` names, with `limits`.
    pub fn with_schemas(
        schemas: &SchemaSet,
        limits: Limits,
    ) -> Result<DocumentValidator, SchemaError> {
        Ok(DocumentValidator {
            xsd: Xsd::compile(schemas.entry())?,
            limits,
        })
    }

    /// Validates a document: the bounded reader first (nothing reaches libxml2 before it
    /// accepted the bytes), then the XSD. Returns every problem found, with its rule and line.
    pub fn validate(&mut self, bytes: &[u8]) -> Result<Root, Vec<Problem>> {
        let root = root_element(bytes, &self.limits).map_err(|p| vec![p])?;
        self.xsd.check(bytes)?;
        Ok(root)
    }
}
