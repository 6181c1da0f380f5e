//! Enveloped XML signatures for ASW messages: every message leaving the hub is signed with the
//! national key, every message arriving is verified against the certificates of the member state
//! it claims to come from before anything else trusts it.
//!
//! - [`Signer`] appends one `ds:Signature` over the whole document (`Reference URI=""`,
//!   enveloped-signature + exclusive c14n, SHA-256, RSA-SHA256 or ECDSA-P256-SHA256 by key type,
//!   the signer's certificate in `KeyInfo/X509Data`) as the last child of the root element.
//! - [`Verifier`] accepts only that profile, picks the certificate from the [`TrustStore`] of the
//!   header's sender by exact DER (never trusting `KeyInfo` alone), checks its validity and then
//!   the signature, and returns a [`Verified`] proof. Every refusal is a [`VerifyError`] with a
//!   stable [`code`](VerifyError::code).
//! - [`TrustStore`] is shared by all threads and reloadable; signers and verifiers hold
//!   libxmlsec1 state and stay on one thread each (make one per worker).
//!
//! The cryptography is libxmlsec1 with its OpenSSL backend, through the small `ffi` module, the
//! only place in the workspace with `unsafe` code.
//!
//! ```
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! use std::sync::Arc;
//! use asw_model::MemberState;
//! use asw_model::sample::{self, SampleSpec};
//! use asw_sign::keygen::{self, KeyAlgorithm};
//! use asw_sign::{Signer, TrustStore, Verifier};
//! use time::OffsetDateTime;
//!
//! let vn = MemberState::from_alpha2("VN").ok_or("VN")?;
//! let th = MemberState::from_alpha2("TH").ok_or("TH")?;
//! let now = OffsetDateTime::now_utc();
//! let key = keygen::generate(vn, KeyAlgorithm::EcP256, 30, now)?;
//! let unsigned = sample::message(&SampleSpec {
//!     kind: asw_model::DocumentKind::FormD,
//!     from: vn,
//!     to: th,
//!     items: 1,
//!     seed: 1,
//!     created_at: SampleSpec::seeded_time(1),
//! })
//! .to_xml()?;
//!
//! // Outgoing: one signer per worker thread.
//! let signed = Signer::new(&key.key_pem, &key.cert_pem)?.sign(unsigned.as_bytes())?;
//!
//! // Incoming: one shared trust store, one verifier per worker thread.
//! let trust = Arc::new(TrustStore::from_pem([(vn, key.cert_pem.as_slice())])?);
//! let verified = Verifier::new(trust)?.verify(&signed, now)?;
//! assert_eq!(verified.signer(), vn);
//! # Ok(())
//! # }
//! ```
//!
//! Signers and verifiers hold libxmlsec1 state and cannot move to another thread:
//!
//! ```compile_fail
//! fn send<T: Send>() {}
//! send::<asw_sign::Signer>();
//! ```
//!
//! ```compile_fail
//! fn send<T: Send>() {}
//! send::<asw_sign::Verifier>();
//! ```

mod algorithm;
mod certificate;
mod ffi;
pub mod keygen;
mod profile;
mod sign;
mod trust;
mod verify;

pub use algorithm::{MIN_RSA_BITS, SignatureAlgorithm, uri};
pub use certificate::CertificateInfo;
pub use ffi::LibraryError;
pub use sign::{SignError, Signer, ToSign, Unsigned, unencrypted_key_pem};
pub use trust::{
    DEFAULT_EXPIRY_WARNING_DAYS, TrustError, TrustReload, TrustSnapshot, TrustStore,
    TrustedCertificate,
};
pub use verify::{ParsedDocument, Unverified, Verified, Verifier, VerifyError};
