//! Validation of ASW messages: the bounded XML reader, XSD validation with libxml2 against the
//! schemas in `schemas/`, then the business rules an XSD cannot express.
//!
//! A [`Validator`] holds libxml2 objects, which are not `Send`: keep one per thread and pass bytes
//! between threads.

mod embedded;
mod problem;
pub mod rules;
mod validator;

pub use embedded::{SchemaError, SchemaSet};
pub use problem::Problem;
pub use validator::{Validated, Validator};
