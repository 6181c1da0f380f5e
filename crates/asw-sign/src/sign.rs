//! Signing of outgoing messages with the national key.

use asw_model::xml::{self, Limits, Selection};
use asw_model::{Header, ModelError};
use openssl::pkey::PKey;
use openssl::x509::X509;

use crate::algorithm::SignatureAlgorithm;
use crate::certificate::{self, CertificateInfo, KeyClass, KeyProblem};
use crate::ffi::{self, LibraryError};
use crate::profile;

/// Bytes reserved for the XML declaration and the `ds:Signature` on top of the input's size
/// when serialising a signed document (a signature with an RSA-4096 certificate is under 5 KB;
/// a larger one only makes the output vector grow once).
const SIGNATURE_RESERVE: usize = 8 * 1024;

/// Why a signer could not be made or a message not signed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SignError {
    /// The private key is not an unencrypted PEM private key.
    #[error("cannot read the private key (an unencrypted PEM key is expected): {0}")]
    Key(String),
    /// The certificate is not a PEM certificate.
    #[error("cannot read the certificate (PEM expected): {0}")]
    Certificate(String),
    /// The private key does not belong to the certificate.
    #[error("the private key does not match the certificate {fingerprint} ({subject})")]
    KeyMismatch {
        /// SHA-256 fingerprint of the certificate.
        fingerprint: String,
        /// Subject of the certificate.
        subject: String,
    },
    /// The certificate's keyUsage extension does not allow digitalSignature.
    #[error(
        "the certificate {fingerprint} ({subject}) may not sign: its keyUsage extension allows {usage} but not digitalSignature"
    )]
    KeyUsage {
        /// SHA-256 fingerprint of the certificate.
        fingerprint: String,
        /// Subject of the certificate.
        subject: String,
        /// The usages the extension allows, e.g. `keyEncipherment`.
        usage: String,
    },
    /// RSA below 2048 bits.
    #[error("the {key} key is too weak; RSA needs at least 2048 bits")]
    WeakKey {
        /// The key, e.g. `RSA 1024`.
        key: String,
    },
    /// A key type the profile does not sign with.
    #[error("the {key} key is not supported; use RSA (at least 2048 bits) or EC P-256")]
    UnsupportedKey {
        /// The key, e.g. `EC secp384r1`.
        key: String,
    },
    /// The document is not acceptable XML or not an ASW message.
    #[error("the document cannot be signed: {0}")]
    Document(ModelError),
    /// The document already carries a signature.
    #[error("line {line}: the document already has a ds:Signature")]
    AlreadySigned {
        /// Line of the existing signature.
        line: u32,
    },
    /// libxml2 or libxmlsec1 failed.
    #[error(transparent)]
    Library(LibraryError),
}

impl SignError {
    /// Stable short code.
    pub fn code(&self) -> &'static str {
        match self {
            SignError::Key(_) => "SIGN-KEY",
            SignError::Certificate(_) => "SIGN-CERTIFICATE",
            SignError::KeyMismatch { .. } => "SIGN-KEY-MISMATCH",
            SignError::KeyUsage { .. } => "SIGN-KEY-USAGE",
            SignError::WeakKey { .. } => "SIGN-WEAK-KEY",
            SignError::UnsupportedKey { .. } => "SIGN-ALGORITHM",
            SignError::Document(_) => "SIGN-DOCUMENT",
            SignError::AlreadySigned { .. } => "SIGN-ALREADY-SIGNED",
            SignError::Library(_) => "SIGN-LIBRARY",
        }
    }
}

/// Signs messages with one private key and its certificate. One per thread: it holds a
/// libxmlsec1 key, which is not `Send`; make one per worker from the same PEM bytes.
pub struct Signer {
    key: ffi::Key,
    algorithm: SignatureAlgorithm,
    certificate: CertificateInfo,
    limits: Limits,
}

/// A PEM private key as unencrypted PKCS#8 PEM: an encrypted one (PKCS#8 `ENCRYPTED PRIVATE
/// KEY`, or a traditional key with `Proc-Type: 4,ENCRYPTED`) decrypted with `passphrase`; an
/// unencrypted one as it is. The result is what [`Signer::new`] takes.
pub fn unencrypted_key_pem(key_pem: &[u8], passphrase: Option<&str>) -> Result<Vec<u8>, SignError> {
    let text = String::from_utf8_lossy(key_pem);
    let encrypted = text.contains("-----BEGIN ENCRYPTED PRIVATE KEY-----")
        || text.contains("Proc-Type: 4,ENCRYPTED");
    if !encrypted {
        return Ok(key_pem.to_vec());
    }
    let Some(passphrase) = passphrase else {
        return Err(SignError::Key(
            "the key is encrypted: give its passphrase (signing.key_passphrase_file)".into(),
        ));
    };
    let key =
        PKey::private_key_from_pem_passphrase(key_pem, passphrase.as_bytes()).map_err(|_| {
            SignError::Key("the key cannot be decrypted with the passphrase given".into())
        })?;
    key.private_key_to_pem_pkcs8()
        .map_err(|e| SignError::Key(e.to_string()))
}

impl Signer {
    /// A signer for a PEM private key, encrypted (decrypted with `passphrase`) or not, and its
    /// PEM certificate: [`Signer::new`] after [`unencrypted_key_pem`].
    pub fn with_passphrase(
        key_pem: &[u8],
        passphrase: Option<&str>,
        cert_pem: &[u8],
    ) -> Result<Signer, SignError> {
        Signer::new(&unencrypted_key_pem(key_pem, passphrase)?, cert_pem)
    }

    /// A signer for a PEM private key (PKCS#8 or traditional, unencrypted) and its PEM
    /// certificate. Refuses RSA below 2048 bits, keys other than RSA and EC P-256, a key
    /// that does not belong to the certificate, and a certificate whose keyUsage extension
    /// lacks digitalSignature (verifiers, this crate's included, refuse its signatures). The certificate's validity is not checked here
    /// (see [`CertificateInfo::not_after`]).
    pub fn new(key_pem: &[u8], cert_pem: &[u8]) -> Result<Signer, SignError> {
        // An empty passphrase rather than none: OpenSSL would otherwise prompt on the terminal
        // for an encrypted key.
        let key = PKey::private_key_from_pem_passphrase(key_pem, b"")
            .map_err(|e| SignError::Key(e.to_string()))?;
        let cert = X509::from_pem(cert_pem).map_err(|e| SignError::Certificate(e.to_string()))?;
        let (certificate, _) = CertificateInfo::read(&cert).map_err(SignError::Certificate)?;
        let cert_key = cert
            .public_key()
            .map_err(|e| SignError::Certificate(e.to_string()))?;
        if !cert_key.public_eq(&key) {
            return Err(SignError::KeyMismatch {
                fingerprint: certificate.fingerprint().to_owned(),
                subject: certificate.subject().to_owned(),
            });
        }
        certificate::signing_usage(&cert).map_err(|usage| SignError::KeyUsage {
            fingerprint: certificate.fingerprint().to_owned(),
            subject: certificate.subject().to_owned(),
            usage,
        })?;
        let class = KeyClass::of(&key);
        let algorithm = class.algorithm().map_err(|problem| match problem {
            KeyProblem::Weak => SignError::WeakKey {
                key: class.to_string(),
            },
            KeyProblem::Unsupported => SignError::UnsupportedKey {
                key: class.to_string(),
            },
        })?;
        let pkcs8 = key
            .private_key_to_pkcs8()
            .map_err(|e| SignError::Key(e.to_string()))?;
        let cert_der = cert
            .to_der()
            .map_err(|e| SignError::Certificate(e.to_string()))?;
        let key = ffi::Key::private(&pkcs8, &cert_der).map_err(SignError::Library)?;
        Ok(Signer {
            key,
            algorithm,
            certificate,
            limits: Limits::default(),
        })
    }

    /// The same signer with other size and depth limits for the documents it accepts.
    pub fn with_limits(mut self, limits: Limits) -> Signer {
        self.limits = limits;
        self
    }

    /// The algorithm this signer's key signs with.
    pub fn algorithm(&self) -> SignatureAlgorithm {
        self.algorithm
    }

    /// The signer's certificate.
    pub fn certificate(&self) -> &CertificateInfo {
        &self.certificate
    }

    /// Signs an ASW message: appends an enveloped `ds:Signature` over the whole document as the
    /// last child of the root element and returns the serialised document (UTF-8).
    ///
    /// The input goes through the same bounded reader as incoming messages, must have a readable
    /// envelope header and must not be signed already. [`Signer::parse`] then
    /// [`Signer::sign_parsed`].
    pub fn sign(&self, xml: &[u8]) -> Result<Vec<u8>, SignError> {
        self.sign_parsed(self.parse(xml)?)
    }

    /// The first half of [`Signer::sign`]: checks `xml` with the bounded reader (this signer's
    /// limits, a readable envelope header, no signature yet) and only then parses it with
    /// libxml2, once. The tree can be validated against an XSD ([`Unsigned::libxml`]) before
    /// [`Signer::sign_parsed`] signs it in place.
    pub fn parse(&self, xml: &[u8]) -> Result<Unsigned, SignError> {
        self.parse_read(self.read(xml).map_err(SignError::Document)?)
    }

    /// The bounded reader of [`Signer::parse`] alone, with this signer's limits: the whole
    /// document is checked (no DTD, entities, oversize, ...), only the envelope header and any
    /// signature are kept ([`ToSign::selection`], which a validator can screen the document
    /// from, so that the bytes are read once). Its refusal is the reader's error as it is.
    pub fn read<'a>(&self, xml: &'a [u8]) -> Result<ToSign<'a>, ModelError> {
        let selection = xml::parse_selected(xml, &self.limits, &profile::select)?;
        Ok(ToSign { xml, selection })
    }

    /// The rest of [`Signer::parse`], on what [`Signer::read`] kept: a readable envelope
    /// header, no signature yet, then libxml2's parse of the bytes the reader accepted.
    pub fn parse_read(&self, read: ToSign<'_>) -> Result<Unsigned, SignError> {
        let ToSign { xml, selection } = read;
        Header::from_message(&selection.root).map_err(SignError::Document)?;
        if let Some((signature, _)) = profile::find_signatures(&selection).first() {
            return Err(SignError::AlreadySigned {
                line: signature.line,
            });
        }
        drop(selection);
        Ok(Unsigned {
            document: ffi::Document::parse(xml).map_err(SignError::Library)?,
            size: xml.len(),
        })
    }

    /// The second half of [`Signer::sign`]: signs the parsed message in place and serialises it.
    pub fn sign_parsed(&self, unsigned: Unsigned) -> Result<Vec<u8>, SignError> {
        let Unsigned { mut document, size } = unsigned;
        document
            .sign(&self.key, self.algorithm)
            .map_err(SignError::Library)?;
        // The output is the input, an XML declaration and the signature (a few KB with the
        // certificate): reserve that once rather than grow by doubling.
        document
            .to_bytes(size + SIGNATURE_RESERVE)
            .map_err(SignError::Library)
    }
}

/// A message the signer's bounded reader accepted ([`Signer::read`]), not parsed by libxml2 yet:
/// the bytes, and what the reader kept of them.
pub struct ToSign<'a> {
    xml: &'a [u8],
    selection: Selection,
}

impl ToSign<'_> {
    /// What the bounded reader kept: the root element with its envelope `Header` and any
    /// `ds:Signature` children (each with its subtree), deeper ones in [`Selection::nested`].
    /// The whole document was checked within the signer's limits.
    pub fn selection(&self) -> &Selection {
        &self.selection
    }
}

impl std::fmt::Debug for ToSign<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ToSign")
            .field("size", &self.xml.len())
            .finish_non_exhaustive()
    }
}

/// A message a [`Signer`] accepted and libxml2 parsed, not signed yet ([`Signer::parse`]). Holds
/// the libxml2 tree: not `Send`, like the signer.
pub struct Unsigned {
    document: ffi::Document,
    /// Size of the bytes parsed, for the output estimate.
    size: usize,
}

impl Unsigned {
    /// The libxml2 tree, to validate against an XSD before signing. Only read it: the signature
    /// covers the tree as it is when [`Signer::sign_parsed`] runs.
    pub fn libxml(&self) -> &libxml::tree::Document {
        self.document.libxml()
    }
}

impl std::fmt::Debug for Unsigned {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Unsigned")
            .field("size", &self.size)
            .finish_non_exhaustive()
    }
}
