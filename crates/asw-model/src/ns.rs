//! XML namespaces of the ASW documents (aswhub's own, versioned in the URN).

/// The message envelope (header, body, signature).
pub const ENVELOPE: &str = "urn:aswhub:asw:envelope:1";
/// Common types (amounts, quantities, reasons).
pub const COMMON: &str = "urn:aswhub:asw:common:1";
/// The e-Form D.
pub const FORMD: &str = "urn:aswhub:asw:formd:1";
/// The ACDD.
pub const ACDD: &str = "urn:aswhub:asw:acdd:1";
/// Receipt acknowledgements (e-Form D and ACDD).
pub const ACK: &str = "urn:aswhub:asw:ack:1";
/// The e-Form D status / utilization notification.
pub const FORMD_STATUS: &str = "urn:aswhub:asw:formd-status:1";
/// The Customs Response to an ACDD.
pub const ACDD_RESPONSE: &str = "urn:aswhub:asw:acdd-response:1";
/// W3C XML Signature.
pub const DSIG: &str = "http://www.w3.org/2000/09/xmldsig#";
