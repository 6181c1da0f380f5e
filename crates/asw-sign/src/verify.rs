//! Verification of incoming messages: the profile, the trust store of the claimed sender, the
//! certificate's validity, then the signature itself with the key of the trusted certificate.

use std::cell::RefCell;
use std::collections::HashMap;
use std::sync::Arc;

use asw_model::xml::{self, Limits, Selection};
use asw_model::{Header, MemberState, ModelError};
use bytes::Bytes;
use openssl::x509::X509;
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

use crate::algorithm::SignatureAlgorithm;
use crate::certificate::{CertificateInfo, KeyProblem};
use crate::ffi::{self, LibraryError, VerifyFailure};
use crate::profile;
use crate::trust::{TrustStore, TrustedCertificate};

/// Why a message's signature is not accepted. [`VerifyError::code`] gives a stable reason code.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum VerifyError {
    /// The bytes are not acceptable XML (size, depth, DTD, entity, encoding, well-formedness).
    #[error("the document is not acceptable XML: {0}")]
    Xml(ModelError),
    /// The envelope header cannot be read, so the sender is unknown.
    #[error("the envelope header cannot be read: {0}")]
    Header(ModelError),
    /// There is no `ds:Signature`.
    #[error("the document is not signed: no ds:Signature")]
    Missing,
    /// There is more than one `ds:Signature`.
    #[error(
        "the document has {count} ds:Signature elements (lines {lines}); exactly one is allowed"
    )]
    Multiple {
        /// How many.
        count: usize,
        /// Their lines, comma-separated.
        lines: String,
    },
    /// The signature could cover something other than the whole document: misplaced signature,
    /// a Reference other than `URI=""`, several References, other transforms, `ds:Object`.
    #[error("line {line}: {reason} (signature wrapping)")]
    Wrapping {
        /// Line of the offending element.
        line: u32,
        /// What is wrong.
        reason: String,
    },
    /// An algorithm outside the profile (SHA-1, inclusive c14n, HMAC, a key that does not fit
    /// the signature method, ...).
    #[error("line {line}: {reason}")]
    Algorithm {
        /// Line of the offending element.
        line: u32,
        /// What is wrong.
        reason: String,
    },
    /// The signature element is incomplete or holds unreadable values.
    #[error("line {line}: {reason}")]
    Malformed {
        /// Line of the offending element.
        line: u32,
        /// What is wrong.
        reason: String,
    },
    /// The signer's key is too weak (RSA below 2048 bits).
    #[error(
        "the signing certificate {fingerprint} ({subject}) has a weak {key} key; RSA needs at least 2048 bits"
    )]
    WeakKey {
        /// The key, e.g. `RSA 1024`.
        key: String,
        /// SHA-256 fingerprint of the certificate.
        fingerprint: String,
        /// Subject of the certificate.
        subject: String,
    },
    /// The certificate is in no trust store folder.
    #[error("the signing certificate {fingerprint} ({subject}) is not trusted for sender {sender}")]
    Untrusted {
        /// The sender named in the header.
        sender: MemberState,
        /// SHA-256 fingerprint of the certificate.
        fingerprint: String,
        /// Subject of the certificate.
        subject: String,
    },
    /// The certificate is trusted, but for another member state than the header's sender: a
    /// forgery (a valid signature by MY on a document claiming to come from TH).
    #[error(
        "the document claims sender {sender} but is signed with a certificate of {owner} ({fingerprint}, {subject}); it is not trusted for {sender}"
    )]
    ForeignCertificate {
        /// The sender named in the header.
        sender: MemberState,
        /// The member state whose trust folder holds the certificate.
        owner: MemberState,
        /// SHA-256 fingerprint of the certificate.
        fingerprint: String,
        /// Subject of the certificate.
        subject: String,
    },
    /// The certificate's validity ended before the verification time.
    #[error("the signing certificate {fingerprint} ({subject}) expired at {}", rfc3339(*.not_after))]
    Expired {
        /// SHA-256 fingerprint of the certificate.
        fingerprint: String,
        /// Subject of the certificate.
        subject: String,
        /// End of its validity.
        not_after: OffsetDateTime,
    },
    /// The certificate's validity starts after the verification time.
    #[error("the signing certificate {fingerprint} ({subject}) is not valid before {}", rfc3339(*.not_before))]
    NotYetValid {
        /// SHA-256 fingerprint of the certificate.
        fingerprint: String,
        /// Subject of the certificate.
        subject: String,
        /// Start of its validity.
        not_before: OffsetDateTime,
    },
    /// The digest of the document does not match: the content changed after signing.
    #[error("the digest does not match: the signed content was changed")]
    Digest,
    /// The digest matches but the signature value does not verify with the trusted key.
    #[error("the signature value does not verify with the trusted certificate {fingerprint}{}", detail_suffix(.detail))]
    Invalid {
        /// SHA-256 fingerprint of the trusted certificate used.
        fingerprint: String,
        /// What libxmlsec1 reported, possibly empty.
        detail: String,
    },
    /// libxml2 or libxmlsec1 failed for a reason unrelated to the document.
    #[error(transparent)]
    Library(LibraryError),
}

impl VerifyError {
    /// Stable short code for logs, metrics and dead-letter reasons.
    pub fn code(&self) -> &'static str {
        match self {
            VerifyError::Xml(_) | VerifyError::Header(_) | VerifyError::Malformed { .. } => {
                "SIG-MALFORMED"
            }
            VerifyError::Missing => "SIG-MISSING",
            VerifyError::Multiple { .. } => "SIG-MULTIPLE",
            VerifyError::Wrapping { .. } => "SIG-WRAPPING",
            VerifyError::Algorithm { .. } => "SIG-ALGORITHM",
            VerifyError::WeakKey { .. } => "SIG-WEAK-KEY",
            VerifyError::Untrusted { .. } | VerifyError::ForeignCertificate { .. } => {
                "SIG-UNTRUSTED"
            }
            VerifyError::Expired { .. } => "SIG-EXPIRED",
            VerifyError::NotYetValid { .. } => "SIG-NOT-YET-VALID",
            VerifyError::Digest => "SIG-DIGEST",
            VerifyError::Invalid { .. } => "SIG-INVALID",
            VerifyError::Library(_) => "SIG-LIBRARY",
        }
    }
}

fn rfc3339(t: OffsetDateTime) -> String {
    t.format(&Rfc3339).unwrap_or_else(|_| t.to_string())
}

fn detail_suffix(detail: &str) -> String {
    if detail.is_empty() {
        String::new()
    } else {
        format!(" ({detail})")
    }
}

/// A message whose signature was verified. Only [`Verifier::verify`] makes one, so a function
/// that takes a `Verified` can only be given a message that passed every check.
#[derive(Clone)]
pub struct Verified {
    bytes: Bytes,
    header: Header,
    signer: MemberState,
    certificate: CertificateInfo,
    algorithm: SignatureAlgorithm,
}

impl Verified {
    /// The exact bytes that were verified.
    pub fn bytes(&self) -> &[u8] {
        &self.bytes
    }

    /// The exact bytes that were verified, taken out.
    pub fn into_bytes(self) -> Vec<u8> {
        self.bytes.into()
    }

    /// The exact bytes that were verified, shared (no copy).
    pub fn shared_bytes(&self) -> Bytes {
        self.bytes.clone()
    }

    /// The envelope header of the message.
    pub fn header(&self) -> &Header {
        &self.header
    }

    /// The member state whose certificate signed the message (always the header's sender).
    pub fn signer(&self) -> MemberState {
        self.signer
    }

    /// SHA-256 fingerprint of the signing certificate, lower-case hex.
    pub fn fingerprint(&self) -> &str {
        self.certificate.fingerprint()
    }

    /// Subject of the signing certificate.
    pub fn subject(&self) -> &str {
        self.certificate.subject()
    }

    /// The signing certificate.
    pub fn certificate(&self) -> &CertificateInfo {
        &self.certificate
    }

    /// The signature algorithm used.
    pub fn algorithm(&self) -> SignatureAlgorithm {
        self.algorithm
    }
}

impl std::fmt::Debug for Verified {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Verified")
            .field("bytes", &self.bytes.len())
            .field("header", &self.header)
            .field("signer", &self.signer)
            .field("certificate", &self.certificate)
            .field("algorithm", &self.algorithm)
            .finish()
    }
}

/// The libxml2 tree of a message whose signature was verified on it
/// ([`Verifier::verify_parsed`]). Holds libxml2 state: not `Send`.
pub struct ParsedDocument {
    document: ffi::Document,
}

impl ParsedDocument {
    /// The libxml2 tree, to validate against an XSD (read it only).
    pub fn libxml(&self) -> &libxml::tree::Document {
        self.document.libxml()
    }
}

impl std::fmt::Debug for ParsedDocument {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ParsedDocument").finish_non_exhaustive()
    }
}

/// A message the verifier's bounded reader accepted ([`Verifier::read`]), not verified yet: what
/// that one pass kept, the envelope header and every `ds:Signature`. The checks that come before
/// verification read the header the message claims ([`Unverified::header`]), and a validator
/// can take the kind and version to validate against from the same pass
/// ([`Unverified::selection`]), so the bytes are read once. Nothing in it is trustworthy until
/// [`Verifier::verify_read`] made a [`Verified`] of it.
pub struct Unverified {
    bytes: Bytes,
    selection: Selection,
    header: Result<Header, ModelError>,
}

impl Unverified {
    /// The envelope header as the message claims it, if it can be read. Not verified: its
    /// sender is only a claim.
    pub fn header(&self) -> Option<&Header> {
        self.header.as_ref().ok()
    }

    /// What the bounded reader kept: the root element with its envelope `Header` and its
    /// `ds:Signature` children (each with its subtree), and deeper `ds:Signature`s and
    /// `Header`s in [`Selection::nested`]. The whole message was checked within the verifier's
    /// limits.
    pub fn selection(&self) -> &Selection {
        &self.selection
    }
}

impl std::fmt::Debug for Unverified {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Unverified")
            .field("bytes", &self.bytes.len())
            .field("header", &self.header)
            .finish_non_exhaustive()
    }
}

/// Keys loaded into libxmlsec1 are kept per thread, at most this many.
const KEY_CACHE_SIZE: usize = 64;

/// Verifies signed messages against a shared [`TrustStore`]. One per thread: it holds
/// libxmlsec1 keys, which are not `Send`. It follows reloads of the trust store.
pub struct Verifier {
    trust: Arc<TrustStore>,
    limits: Limits,
    keys: RefCell<KeyCache>,
}

struct KeyCache {
    generation: u64,
    keys: HashMap<String, ffi::Key>,
}

impl Verifier {
    /// A verifier using `trust`, with the default [`Limits`].
    pub fn new(trust: Arc<TrustStore>) -> Result<Verifier, VerifyError> {
        ffi::init().map_err(VerifyError::Library)?;
        Ok(Verifier {
            trust,
            limits: Limits::default(),
            keys: RefCell::new(KeyCache {
                generation: 0,
                keys: HashMap::new(),
            }),
        })
    }

    /// The same verifier with other size and depth limits.
    pub fn with_limits(mut self, limits: Limits) -> Verifier {
        self.limits = limits;
        self
    }

    /// The trust store this verifier uses.
    pub fn trust_store(&self) -> &Arc<TrustStore> {
        &self.trust
    }

    /// Verifies `xml` at time `now` (certificate validity is checked at `now`).
    ///
    /// In order: bounded parse (no DTD, entities, oversize), envelope header, the signature
    /// profile, the certificate against the trust store of the header's sender (by exact DER),
    /// its validity, then the digest and signature with the trusted certificate's key.
    pub fn verify(&self, xml: &[u8], now: OffsetDateTime) -> Result<Verified, VerifyError> {
        self.verify_shared(Bytes::copy_from_slice(xml), now)
    }

    /// [`verify`](Verifier::verify) for bytes already shared: the [`Verified`] holds them without
    /// a copy.
    pub fn verify_shared(&self, xml: Bytes, now: OffsetDateTime) -> Result<Verified, VerifyError> {
        self.verify_parsed(xml, now).map(|(verified, _)| verified)
    }

    /// [`verify_shared`](Verifier::verify_shared), also giving back the libxml2 tree the
    /// signature was verified on, so that the message can be validated against its XSD without
    /// a second parse ([`ParsedDocument::libxml`]). [`Verifier::read`] then
    /// [`Verifier::verify_read`].
    pub fn verify_parsed(
        &self,
        xml: Bytes,
        now: OffsetDateTime,
    ) -> Result<(Verified, ParsedDocument), VerifyError> {
        self.verify_read(self.read(xml)?, now)
    }

    /// The first half of [`verify_parsed`](Verifier::verify_parsed): the bounded reader, with
    /// this verifier's limits, over the whole message (no DTD, entities, oversize, ...), keeping
    /// only the envelope header and the signatures. Fails only with [`VerifyError::Xml`]; a
    /// header that cannot be read is reported by [`verify_read`](Verifier::verify_read), so that
    /// the caller can make its own checks on what could be read first.
    pub fn read(&self, xml: Bytes) -> Result<Unverified, VerifyError> {
        let selection =
            xml::parse_selected(&xml, &self.limits, &profile::select).map_err(VerifyError::Xml)?;
        let header = Header::from_message(&selection.root);
        Ok(Unverified {
            bytes: xml,
            selection,
            header,
        })
    }

    /// The second half of [`verify_parsed`](Verifier::verify_parsed), on what
    /// [`read`](Verifier::read) kept: the envelope header, the signature profile, the
    /// certificate against the trust store of the header's sender, its validity, then libxml2's
    /// parse of the bytes the reader accepted and the digest and signature on that tree.
    pub fn verify_read(
        &self,
        unverified: Unverified,
        now: OffsetDateTime,
    ) -> Result<(Verified, ParsedDocument), VerifyError> {
        let Unverified {
            bytes,
            selection,
            header,
        } = unverified;
        let xml: &[u8] = &bytes;
        let header = header.map_err(VerifyError::Header)?;
        let parts = profile::check(&selection)?;
        // Only the parts are needed from here; the selection is freed before libxml2's tree.
        drop(selection);

        let snapshot = self.trust.snapshot();
        let Some(trusted) = snapshot.find(&parts.certificate_der) else {
            return Err(not_trusted(&parts, header.sender));
        };
        if trusted.member_state() != header.sender {
            return Err(VerifyError::ForeignCertificate {
                sender: header.sender,
                owner: trusted.member_state(),
                fingerprint: trusted.info().fingerprint().to_owned(),
                subject: trusted.info().subject().to_owned(),
            });
        }
        if trusted.algorithm() != parts.algorithm {
            return Err(VerifyError::Algorithm {
                line: parts.line,
                reason: format!(
                    "SignatureMethod {} does not fit the certificate's {} key",
                    parts.algorithm.uri(),
                    trusted.info().key()
                ),
            });
        }
        let info = trusted.info();
        if now < info.not_before() {
            return Err(VerifyError::NotYetValid {
                fingerprint: info.fingerprint().to_owned(),
                subject: info.subject().to_owned(),
                not_before: info.not_before(),
            });
        }
        if now > info.not_after() {
            return Err(VerifyError::Expired {
                fingerprint: info.fingerprint().to_owned(),
                subject: info.subject().to_owned(),
                not_after: info.not_after(),
            });
        }

        let mut document = ffi::Document::parse(xml).map_err(VerifyError::Library)?;
        let outcome = self.with_key(trusted, |key| document.verify(key))?;
        match outcome {
            Ok(()) => Ok((
                Verified {
                    bytes: bytes.clone(),
                    header,
                    signer: trusted.member_state(),
                    certificate: info.clone(),
                    algorithm: parts.algorithm,
                },
                ParsedDocument { document },
            )),
            Err(VerifyFailure::Placement(reason)) => Err(VerifyError::Wrapping {
                line: parts.line,
                reason: reason.into(),
            }),
            Err(VerifyFailure::Digest) => Err(VerifyError::Digest),
            Err(VerifyFailure::Signature) => Err(VerifyError::Invalid {
                fingerprint: info.fingerprint().to_owned(),
                detail: String::new(),
            }),
            Err(VerifyFailure::Processing(e)) => Err(VerifyError::Invalid {
                fingerprint: info.fingerprint().to_owned(),
                detail: e.to_string(),
            }),
            Err(VerifyFailure::Library(e)) => Err(VerifyError::Library(e)),
        }
    }

    /// Runs `f` with this thread's libxmlsec1 key for `trusted`, loading it on first use.
    fn with_key<T>(
        &self,
        trusted: &TrustedCertificate,
        f: impl FnOnce(&ffi::Key) -> T,
    ) -> Result<T, VerifyError> {
        let mut cache = self.keys.borrow_mut();
        let generation = self.trust.generation();
        if cache.generation != generation || cache.keys.len() >= KEY_CACHE_SIZE {
            cache.keys.clear();
            cache.generation = generation;
        }
        let fingerprint = trusted.info().fingerprint();
        if !cache.keys.contains_key(fingerprint) {
            let key =
                ffi::Key::public_from_certificate(trusted.der()).map_err(VerifyError::Library)?;
            cache.keys.insert(fingerprint.to_owned(), key);
        }
        match cache.keys.get(fingerprint) {
            Some(key) => Ok(f(key)),
            // Inserted just above; kept as an error rather than a panic.
            None => Err(VerifyError::Library(LibraryError {
                operation: "caching the verification key",
                details: String::new(),
            })),
        }
    }
}

/// The error for a certificate found in no trust folder: weak key first, then untrusted.
fn not_trusted(parts: &profile::SignatureParts, sender: MemberState) -> VerifyError {
    let read = X509::from_der(&parts.certificate_der)
        .map_err(|e| e.to_string())
        .and_then(|cert| CertificateInfo::read(&cert));
    match read {
        Err(reason) => VerifyError::Malformed {
            line: parts.line,
            reason: format!("the KeyInfo certificate cannot be read: {reason}"),
        },
        Ok((info, class)) => match class.algorithm() {
            Err(KeyProblem::Weak) => VerifyError::WeakKey {
                key: info.key().to_owned(),
                fingerprint: info.fingerprint().to_owned(),
                subject: info.subject().to_owned(),
            },
            Err(KeyProblem::Unsupported) => VerifyError::Algorithm {
                line: parts.line,
                reason: format!(
                    "the certificate's {} key is not accepted (RSA of at least 2048 bits or EC P-256)",
                    info.key()
                ),
            },
            Ok(_) => VerifyError::Untrusted {
                sender,
                fingerprint: info.fingerprint().to_owned(),
                subject: info.subject().to_owned(),
            },
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The reason codes and messages are a contract with operators and partners: changing one
    /// must be deliberate.
    #[test]
    fn codes_and_messages_are_stable() {
        let vn = MemberState::from_alpha2("VN").expect("VN");
        let th = MemberState::from_alpha2("TH").expect("TH");
        let t = OffsetDateTime::UNIX_EPOCH;
        let fingerprint = || "ab12".to_owned();
        let subject = || "CN=aswhub VN".to_owned();
        let model = ModelError::Xml {
            rule: "XML-DTD",
            line: 2,
            message: "DOCTYPE is not allowed".into(),
        };
        let errors = [
            VerifyError::Xml(model.clone()),
            VerifyError::Header(ModelError::Header {
                line: 5,
                message: "no Sender element".into(),
            }),
            VerifyError::Missing,
            VerifyError::Multiple {
                count: 2,
                lines: "3, 9".into(),
            },
            VerifyError::Wrapping {
                line: 4,
                reason: "ds:Object is not allowed".into(),
            },
            VerifyError::Algorithm {
                line: 4,
                reason: "DigestMethod sha1 is not accepted".into(),
            },
            VerifyError::Malformed {
                line: 4,
                reason: "X509Certificate is empty".into(),
            },
            VerifyError::WeakKey {
                key: "RSA 1024".into(),
                fingerprint: fingerprint(),
                subject: subject(),
            },
            VerifyError::Untrusted {
                sender: vn,
                fingerprint: fingerprint(),
                subject: subject(),
            },
            VerifyError::ForeignCertificate {
                sender: th,
                owner: vn,
                fingerprint: fingerprint(),
                subject: subject(),
            },
            VerifyError::Expired {
                fingerprint: fingerprint(),
                subject: subject(),
                not_after: t,
            },
            VerifyError::NotYetValid {
                fingerprint: fingerprint(),
                subject: subject(),
                not_before: t,
            },
            VerifyError::Digest,
            VerifyError::Invalid {
                fingerprint: fingerprint(),
                detail: String::new(),
            },
            VerifyError::Library(LibraryError {
                operation: "parsing the document",
                details: "out of memory".into(),
            }),
        ];
        let lines: Vec<String> = errors.iter().map(|e| format!("{} {e}", e.code())).collect();
        expect_test::expect![[r#"
            SIG-MALFORMED the document is not acceptable XML: line 2: XML-DTD DOCTYPE is not allowed
            SIG-MALFORMED the envelope header cannot be read: line 5: envelope header: no Sender element
            SIG-MISSING the document is not signed: no ds:Signature
            SIG-MULTIPLE the document has 2 ds:Signature elements (lines 3, 9); exactly one is allowed
            SIG-WRAPPING line 4: ds:Object is not allowed (signature wrapping)
            SIG-ALGORITHM line 4: DigestMethod sha1 is not accepted
            SIG-MALFORMED line 4: X509Certificate is empty
            SIG-WEAK-KEY the signing certificate ab12 (CN=aswhub VN) has a weak RSA 1024 key; RSA needs at least 2048 bits
            SIG-UNTRUSTED the signing certificate ab12 (CN=aswhub VN) is not trusted for sender VN
            SIG-UNTRUSTED the document claims sender TH but is signed with a certificate of VN (ab12, CN=aswhub VN); it is not trusted for TH
            SIG-EXPIRED the signing certificate ab12 (CN=aswhub VN) expired at 1970-01-01T00:00:00Z
            SIG-NOT-YET-VALID the signing certificate ab12 (CN=aswhub VN) is not valid before 1970-01-01T00:00:00Z
            SIG-DIGEST the digest does not match: the signed content was changed
            SIG-INVALID the signature value does not verify with the trusted certificate ab12
            SIG-LIBRARY parsing the document failed: out of memory"#]]
        .assert_eq(&lines.join("\n"));
    }
}
