//! The ASW domain model: member states, document kinds, the message envelope header, the business
//! documents and their XML mapping, a bounded XML reader for untrusted input, sample documents and hostile ones.
//!
//! This crate is pure: no I/O, no async, no C libraries, so everything above it can test offline.

pub mod bus;
pub mod document;
mod error;
mod header;
pub mod hostile;
mod kind;
pub mod kinds;
mod member_state;
pub mod ns;
pub mod partners;
pub mod redact;
pub mod reply;
pub mod sample;
pub mod sps;
pub mod xml;

pub use error::ModelError;
pub use header::Header;
pub use kind::DocumentKind;
pub use member_state::{MemberState, MemberStateInfo};
