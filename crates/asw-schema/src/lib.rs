//! Validation of ASW messages: the bounded XML reader, XSD validation with libxml2 against the
//! schemas in `schemas/`, then the business rules an XSD cannot express; and bare documents
//! (an e-Phyto certificate without the ASW envelope) against one XSD ([`DocumentValidator`]).
//!
//! A [`Validator`] holds libxml2 objects, which are not `Send`: keep one per thread and pass bytes
//! between threads.

mod document;
mod embedded;
mod problem;
pub mod rules;
mod validator;
pub mod wsdl;
mod xsd;

pub use document::{DocumentValidator, Root, root_element};
pub use embedded::{SchemaError, SchemaSet, install_kinds};
pub use problem::Problem;
pub use validator::{SchemaValid, Screened, Validated, Validator};
