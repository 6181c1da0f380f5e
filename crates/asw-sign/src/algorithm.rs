//! The algorithms of the aswhub signature profile and their XML-DSig identifiers.

use std::fmt;

/// Algorithm identifiers (URIs) used in `ds:Signature` elements.
pub mod uri {
    /// The XML-DSig namespace.
    pub const DSIG: &str = "http://www.w3.org/2000/09/xmldsig#";
    /// Exclusive XML canonicalisation 1.0, without comments (also the namespace of its
    /// `InclusiveNamespaces` parameter).
    pub const EXC_C14N: &str = "http://www.w3.org/2001/10/xml-exc-c14n#";
    /// The enveloped-signature transform.
    pub const ENVELOPED: &str = "http://www.w3.org/2000/09/xmldsig#enveloped-signature";
    /// SHA-256 digest.
    pub const SHA256: &str = "http://www.w3.org/2001/04/xmlenc#sha256";
    /// RSA PKCS#1 v1.5 with SHA-256.
    pub const RSA_SHA256: &str = "http://www.w3.org/2001/04/xmldsig-more#rsa-sha256";
    /// ECDSA with SHA-256.
    pub const ECDSA_SHA256: &str = "http://www.w3.org/2001/04/xmldsig-more#ecdsa-sha256";
}

/// The smallest RSA modulus accepted, in bits.
pub const MIN_RSA_BITS: u32 = 2048;

/// A signature algorithm of the profile; the key type decides which one is used.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum SignatureAlgorithm {
    /// RSA (at least 2048 bits) PKCS#1 v1.5 with SHA-256.
    RsaSha256,
    /// ECDSA on P-256 with SHA-256.
    EcdsaSha256,
}

impl SignatureAlgorithm {
    /// The `SignatureMethod/@Algorithm` identifier.
    pub fn uri(self) -> &'static str {
        match self {
            SignatureAlgorithm::RsaSha256 => uri::RSA_SHA256,
            SignatureAlgorithm::EcdsaSha256 => uri::ECDSA_SHA256,
        }
    }

    /// The algorithm with this `SignatureMethod/@Algorithm` identifier, if the profile accepts it.
    pub fn from_uri(uri: &str) -> Option<SignatureAlgorithm> {
        [
            SignatureAlgorithm::RsaSha256,
            SignatureAlgorithm::EcdsaSha256,
        ]
        .into_iter()
        .find(|a| a.uri() == uri)
    }

    /// Short name: `rsa-sha256` or `ecdsa-p256-sha256`.
    pub fn name(self) -> &'static str {
        match self {
            SignatureAlgorithm::RsaSha256 => "rsa-sha256",
            SignatureAlgorithm::EcdsaSha256 => "ecdsa-p256-sha256",
        }
    }
}

impl fmt::Display for SignatureAlgorithm {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// A few words on why an algorithm identifier is refused, naming SHA-1 and MD5 as weak.
pub(crate) fn weakness(uri: &str) -> &'static str {
    let lower = uri.to_ascii_lowercase();
    if lower.contains("sha1") || lower.ends_with("#dsa-sha1") {
        " (SHA-1 is weak)"
    } else if lower.contains("md5") {
        " (MD5 is weak)"
    } else {
        ""
    }
}
