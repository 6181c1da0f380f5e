//! Errors of the model crate.

/// Why a document could not be read or built.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ModelError {
    /// The bytes are not acceptable XML, or break a reader limit.
    #[error("line {line}: {rule} {message}")]
    Xml {
        /// Stable rule id (`XML`, `XML-DTD`, `XML-SIZE`, `XML-DEPTH`, `XML-ENCODING`,
        /// `XML-ATTRIBUTES`, `XML-NAMESPACES`, `XML-NAMESPACE`, `XML-NAME`, `XML-VALUE`,
        /// `XML-NODES`; see [`crate::xml::parse`]).
        rule: &'static str,
        /// 1-based line where the problem was found.
        line: u32,
        /// What is wrong.
        message: String,
    },
    /// The envelope header is missing a field or holds a bad value.
    #[error("line {line}: envelope header: {message}")]
    Header {
        /// 1-based line of the offending element (of the root when the element is missing).
        line: u32,
        /// What is wrong.
        message: String,
    },
    /// A value that should name a member state does not.
    #[error("unknown member state {0:?}")]
    UnknownMemberState(String),
    /// A value that should name a document kind does not.
    #[error("unknown document kind {0:?}")]
    UnknownDocumentKind(String),
    /// A data file (a kind, the partners) is not what it must be.
    #[error("{file}:{line}: {key}: {message}")]
    Data {
        /// The file.
        file: String,
        /// 1-based line (0 when the file could not be read at all).
        line: u32,
        /// The key at fault (`versions.version`), empty when none applies.
        key: String,
        /// What is wrong.
        message: String,
    },
}
