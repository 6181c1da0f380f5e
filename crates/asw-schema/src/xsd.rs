//! One compiled XSD and the libxml2 parse-and-validate step, shared by the message validator and
//! the validator of bare documents.

use std::path::Path;

use libxml::parser::{Parser, ParserOptions};
use libxml::schemas::{SchemaParserContext, SchemaValidationContext};
use libxml::tree::Document;

use crate::{Problem, SchemaError};

/// A compiled schema and a parser. Not `Send` (libxml2 objects): one per thread.
pub(crate) struct Xsd {
    context: SchemaValidationContext,
    parser: Parser,
}

impl Xsd {
    /// Compiles the XSD at `entry` (its imports resolved from files beside it).
    pub(crate) fn compile(entry: &Path) -> Result<Xsd, SchemaError> {
        crate::validator::init();
        let compile_error = |message: String| SchemaError::Compile {
            entry: entry.to_owned(),
            message: crate::embedded::name_originals(message),
        };
        let path = entry
            .to_str()
            .ok_or_else(|| compile_error("path is not UTF-8".into()))?;
        let mut parser_context = SchemaParserContext::from_file(path);
        let context =
            SchemaValidationContext::from_parser(&mut parser_context).map_err(|errors| {
                compile_error(
                    errors
                        .iter()
                        .map(|e| {
                            e.message
                                .as_deref()
                                .unwrap_or("schema error")
                                .trim()
                                .to_owned()
                        })
                        .collect::<Vec<_>>()
                        .join("; "),
                )
            })?;
        Ok(Xsd {
            context,
            parser: Parser::default(),
        })
    }

    /// Parses `bytes` with libxml2 (no network, no DTD, no entity substitution, no recovery)
    /// and validates them. Call only on bytes the bounded reader accepted.
    pub(crate) fn check(&mut self, bytes: &[u8]) -> Result<(), Vec<Problem>> {
        let document = self.parse(bytes)?;
        self.validate(&document)
    }

    /// Parses `bytes` with libxml2. Call only on bytes the bounded reader accepted.
    fn parse(&self, bytes: &[u8]) -> Result<Document, Vec<Problem>> {
        let options = ParserOptions {
            recover: false,
            no_def_dtd: true,
            no_error: true,
            no_warning: true,
            no_net: true,
            // libxml2's own fixed limits are lifted: the reader's, checked first, are stricter
            // but for a text node longer than 10,000,000 bytes, which it accepts up to the
            // document size limit (a base64 attachment), as the signer and verifier do.
            huge: true,
            // Short texts (codes, numbers, dates) stored in the node itself: a smaller DOM.
            compact: true,
            ..ParserOptions::default()
        };
        self.parser
            .parse_string_with_options(bytes, options)
            .map_err(|e| {
                vec![Problem::new(
                    1,
                    "XML",
                    format!("libxml2 could not parse the document: {e:?}"),
                )]
            })
    }

    /// Validates a document libxml2 parsed (here, or by the signer or verifier of `asw-sign`
    /// from bytes the bounded reader accepted). Problems carry libxml2's line numbers.
    pub(crate) fn validate(&mut self, document: &Document) -> Result<(), Vec<Problem>> {
        self.context.validate_document(document).map_err(|errors| {
            let mut problems: Vec<Problem> = errors
                .iter()
                .map(|e| {
                    let line = e
                        .line
                        .and_then(|l| u32::try_from(l).ok())
                        .filter(|&l| l > 0)
                        .unwrap_or(1);
                    Problem::new(
                        line,
                        "XSD",
                        e.message
                            .as_deref()
                            .unwrap_or("schema error")
                            .trim()
                            .to_owned(),
                    )
                })
                .collect();
            problems.dedup();
            problems
        })
    }
}
