//! The IPPC ePhyto Hub as a partner channel: the hub's SOAP web service
//! (`../shared/ephyto-hub/ephyto.wsdl`) over HTTPS with our client certificate.
//!
//! - [`soap`]: the requests and answers of the operations used, as pure code;
//! - [`client`]: one blocking call per operation, failures classified transient or permanent,
//!   export (`DeliverEnvelope`) and tracking mapped to the document's outcome;
//! - [`import`]: polling, pulling, decoding, validating, delivering and settling imports;
//! - [`settled`]: the imports' settlements kept in the journal, by hub delivery number;
//! - [`export`]: the partner channel of the hub, export side (`asw.ippc.out.<CC>` to
//!   `DeliverEnvelope`, and tracking to the documents' outcomes);
//! - [`importing`]: the hub's import task (`Importer::poll` every `import_every`, delivering to
//!   `asw.inbound`).
//!
//! Wired into the hub (see docs/OPERATIONS.md, "The IPPC ePhyto Hub channel").

pub mod client;
pub mod export;
pub mod import;
pub mod importing;
pub mod settled;
pub mod soap;

pub use client::{
    CertificateType, EnvelopeHeader, Export, ExportOutcome, HubClient, HubError, Pulled,
};
pub use import::{
    Import, ImportOutcome, ImportSink, Importer, PollReport, Refused, Settled, Settlement,
};
pub use settled::JournalSettled;
