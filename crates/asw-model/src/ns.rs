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
/// The UN/CEFACT SPS certificate (the e-Phyto), as the IPPC ePhyto Hub uses it.
pub const SPS_CERTIFICATE: &str = "urn:un:unece:uncefact:data:standard:SPSCertificate:17";
/// The UN/CEFACT SPS acknowledgement of an e-Phyto.
pub const SPS_ACKNOWLEDGEMENT: &str = "urn:un:unece:uncefact:data:standard:SPSAcknowledgement:17";
/// The UN/CEFACT reusable aggregates of the SPS documents.
pub const SPS_RAM: &str =
    "urn:un:unece:uncefact:data:standard:ReusableAggregateBusinessInformationEntity:21";
/// The UN/CEFACT unqualified data types of the SPS documents.
pub const SPS_UDT: &str = "urn:un:unece:uncefact:data:standard:UnqualifiedDataType:21";
