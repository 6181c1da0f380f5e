//! The IPPC ePhyto Hub as a partner channel: the hub's SOAP web service
//! (`../shared/ephyto-hub/ephyto.wsdl`) over HTTPS with our client certificate.
//!
//! - [`soap`]: the requests and answers of the operations used, as pure code;
//! - [`client`]: one blocking call per operation, failures classified transient or permanent,
//!   export (`DeliverEnvelope`) and tracking mapped to the document's outcome;
//! - [`import`]: polling, pulling, decoding, validating, delivering and settling imports;
//! - [`settled`]: the imports' settlements kept in the journal, by hub delivery number;
//! - [`export`]: the partner channel of the hub, export side (`asw.ippc.out.<CC>` to
//!   `DeliverEnvelope`, and tracking to the documents' outcomes).
//!
//! Wired into the hub's partner channels for export (see docs/OPERATIONS.md, "The IPPC ePhyto
//! Hub channel"); import is not run by the hub yet.

pub mod client;
pub mod export;
pub mod import;
pub mod settled;
pub mod soap;

pub use client::{
    CertificateType, EnvelopeHeader, Export, ExportOutcome, HubClient, HubError, Pulled,
};
pub use import::{
    Import, ImportOutcome, ImportSink, Importer, PollReport, Refused, Settled, Settlement,
};
pub use settled::JournalSettled;
