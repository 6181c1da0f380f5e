//! One validation problem: where, which rule, what.

use std::fmt;

use asw_model::ModelError;
use serde::Serialize;

/// A problem found in a document, with the rule it breaks and the line where it was found.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Problem {
    /// 1-based line in the document (the element's start tag, or the closest libxml2 knows).
    pub line: u32,
    /// Stable rule id: one of the bounded reader's (`XML`, `XML-DTD`, `XML-SIZE`, `XML-DEPTH`,
    /// `XML-ENCODING`, `XML-ATTRIBUTES`, `XML-NAMESPACES`, `XML-NAMESPACE`, `XML-NAME`,
    /// `XML-VALUE`, `XML-NODES`, see [`asw_model::xml::parse`]), `XSD`, or a business rule such as `FORMD-004` (see [`crate::rules::RULES`]).
    pub rule: &'static str,
    /// What is wrong, in one sentence.
    pub message: String,
}

impl Problem {
    /// A problem at `line` breaking `rule`.
    pub fn new(line: u32, rule: &'static str, message: impl Into<String>) -> Problem {
        Problem {
            line,
            rule,
            message: message.into(),
        }
    }
}

impl fmt::Display for Problem {
    /// `LINE: RULE message`, the part after `FILE:` in the CLI's output.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {} {}", self.line, self.rule, self.message)
    }
}

impl From<ModelError> for Problem {
    fn from(e: ModelError) -> Problem {
        match e {
            ModelError::Xml {
                rule,
                line,
                message,
            } => Problem::new(line, rule, message),
            ModelError::Header { line, message } => Problem::new(line, "ENV-000", message),
            other => Problem::new(1, "ENV-000", other.to_string()),
        }
    }
}
