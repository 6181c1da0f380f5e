//! The facts about an X.509 certificate that signing, verification and the trust store use:
//! SHA-256 fingerprint, subject, validity period and the kind of public key.

use std::fmt;

use openssl::asn1::{Asn1Time, Asn1TimeRef};
use openssl::hash::MessageDigest;
use openssl::nid::Nid;
use openssl::pkey::{HasPublic, Id, PKeyRef};
use openssl::x509::{X509KeyUsage, X509Ref};
use time::{Duration, OffsetDateTime};

use crate::algorithm::{MIN_RSA_BITS, SignatureAlgorithm};

/// Summary of a certificate: who, which key, valid when.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CertificateInfo {
    subject: String,
    fingerprint: String,
    not_before: OffsetDateTime,
    not_after: OffsetDateTime,
    key: String,
}

impl CertificateInfo {
    /// Reads the summary and classifies the key; the error says what could not be read.
    pub(crate) fn read(cert: &X509Ref) -> Result<(CertificateInfo, KeyClass), String> {
        let fingerprint = cert
            .digest(MessageDigest::sha256())
            .map_err(|e| format!("cannot hash the certificate: {e}"))?;
        let key = cert
            .public_key()
            .map_err(|e| format!("cannot read the certificate's public key: {e}"))?;
        let class = KeyClass::of(&key);
        let not_before = to_offset(cert.not_before())
            .ok_or_else(|| "the certificate's notBefore is out of range".to_owned())?;
        let not_after = to_offset(cert.not_after())
            .ok_or_else(|| "the certificate's notAfter is out of range".to_owned())?;
        let info = CertificateInfo {
            subject: subject(cert),
            fingerprint: hex(&fingerprint),
            not_before,
            not_after,
            key: class.to_string(),
        };
        Ok((info, class))
    }

    /// Reads the summary of a DER certificate (for example the one a signature carries in its
    /// `KeyInfo`, to show who signed); the error says why it cannot be read. This trusts
    /// nothing: whether the certificate may verify is the [`crate::TrustStore`]'s to say.
    pub fn from_der(der: &[u8]) -> Result<CertificateInfo, String> {
        let cert = openssl::x509::X509::from_der(der)
            .map_err(|e| format!("not a DER X.509 certificate: {e}"))?;
        CertificateInfo::read(&cert).map(|(info, _)| info)
    }

    /// Subject distinguished name, most specific part first (`CN=aswhub VN, O=aswhub, C=VN`).
    pub fn subject(&self) -> &str {
        &self.subject
    }

    /// SHA-256 of the DER certificate, lower-case hex without separators.
    pub fn fingerprint(&self) -> &str {
        &self.fingerprint
    }

    /// Start of the validity period.
    pub fn not_before(&self) -> OffsetDateTime {
        self.not_before
    }

    /// End of the validity period.
    pub fn not_after(&self) -> OffsetDateTime {
        self.not_after
    }

    /// The public key, e.g. `RSA 2048` or `EC P-256`.
    pub fn key(&self) -> &str {
        &self.key
    }

    /// True if the certificate is no longer valid `days` days after `now` (or already is not).
    /// A window that reaches past the last representable date holds every certificate.
    pub fn expires_within(&self, days: u32, now: OffsetDateTime) -> bool {
        now.checked_add(Duration::days(i64::from(days)))
            .is_none_or(|until| self.not_after < until)
    }

    /// Whole days from `now` to the end of validity (negative once expired).
    pub fn days_left(&self, now: OffsetDateTime) -> i64 {
        (self.not_after - now).whole_days()
    }
}

/// Why a certificate may not verify signatures: its keyUsage extension exists and lacks
/// digitalSignature. `Err` carries the usages the extension allows (`keyEncipherment`, or
/// `none` when the extension is empty or cannot be read). A certificate without the extension
/// is not restricted (RFC 5280, 4.2.1.3).
pub(crate) fn signing_usage(cert: &X509Ref) -> Result<(), String> {
    match cert.key_usage() {
        None => Ok(()),
        Some(usage) if usage.contains(X509KeyUsage::DIGITAL_SIGNATURE) => Ok(()),
        Some(usage) => Err(key_usages(usage)),
    }
}

/// The usages in a keyUsage extension by their RFC 5280 names, comma-separated; `none` if empty.
fn key_usages(usage: X509KeyUsage) -> String {
    const NAMES: [(X509KeyUsage, &str); 9] = [
        (X509KeyUsage::DIGITAL_SIGNATURE, "digitalSignature"),
        (X509KeyUsage::NON_REPUDIATION, "nonRepudiation"),
        (X509KeyUsage::KEY_ENCIPHERMENT, "keyEncipherment"),
        (X509KeyUsage::DATA_ENCIPHERMENT, "dataEncipherment"),
        (X509KeyUsage::KEY_AGREEMENT, "keyAgreement"),
        (X509KeyUsage::KEY_CERT_SIGN, "keyCertSign"),
        (X509KeyUsage::CRL_SIGN, "cRLSign"),
        (X509KeyUsage::ENCIPHER_ONLY, "encipherOnly"),
        (X509KeyUsage::DECIPHER_ONLY, "decipherOnly"),
    ];
    let names: Vec<&str> = NAMES
        .iter()
        .filter(|(flag, _)| usage.contains(*flag))
        .map(|(_, name)| *name)
        .collect();
    if names.is_empty() {
        "none".to_owned()
    } else {
        names.join(", ")
    }
}

/// What kind of public key a certificate carries, as far as the profile cares.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum KeyClass {
    /// RSA with this modulus size.
    Rsa(u32),
    /// EC on P-256.
    EcP256,
    /// Anything else, described.
    Other(String),
}

impl KeyClass {
    pub(crate) fn of<T: HasPublic>(key: &PKeyRef<T>) -> KeyClass {
        match key.id() {
            Id::RSA => KeyClass::Rsa(key.bits()),
            Id::EC => match key.ec_key().ok().and_then(|ec| ec.group().curve_name()) {
                Some(Nid::X9_62_PRIME256V1) => KeyClass::EcP256,
                Some(nid) => KeyClass::Other(format!("EC {}", nid.short_name().unwrap_or("?"))),
                None => KeyClass::Other("EC on an unnamed curve".into()),
            },
            Id::ED25519 => KeyClass::Other("Ed25519".into()),
            Id::ED448 => KeyClass::Other("Ed448".into()),
            Id::DSA => KeyClass::Other(format!("DSA {}", key.bits())),
            Id::RSA_PSS => KeyClass::Other(format!("RSA-PSS {}", key.bits())),
            other => KeyClass::Other(format!("key type {}", other.as_raw())),
        }
    }

    /// The profile's algorithm for this key, or why the key is refused.
    pub(crate) fn algorithm(&self) -> Result<SignatureAlgorithm, KeyProblem> {
        match self {
            KeyClass::Rsa(bits) if *bits >= MIN_RSA_BITS => Ok(SignatureAlgorithm::RsaSha256),
            KeyClass::Rsa(_) => Err(KeyProblem::Weak),
            KeyClass::EcP256 => Ok(SignatureAlgorithm::EcdsaSha256),
            KeyClass::Other(_) => Err(KeyProblem::Unsupported),
        }
    }
}

impl fmt::Display for KeyClass {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            KeyClass::Rsa(bits) => write!(f, "RSA {bits}"),
            KeyClass::EcP256 => f.write_str("EC P-256"),
            KeyClass::Other(what) => f.write_str(what),
        }
    }
}

/// Why a key cannot be used by the profile.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum KeyProblem {
    /// RSA shorter than 2048 bits.
    Weak,
    /// Not RSA and not EC P-256.
    Unsupported,
}

/// Lower-case hex.
pub(crate) fn hex(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut out = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        out.push(char::from(DIGITS[usize::from(b >> 4)]));
        out.push(char::from(DIGITS[usize::from(b & 0x0f)]));
    }
    out
}

fn subject(cert: &X509Ref) -> String {
    let parts: Vec<String> = cert
        .subject_name()
        .entries()
        .map(|entry| {
            let key = entry.object().nid().short_name().unwrap_or("?");
            let value = entry.data().to_string().unwrap_or_else(|_| "?".into());
            format!("{key}={value}")
        })
        .collect();
    parts.into_iter().rev().collect::<Vec<_>>().join(", ")
}

fn to_offset(t: &Asn1TimeRef) -> Option<OffsetDateTime> {
    let epoch = Asn1Time::from_unix(0).ok()?;
    let diff = epoch.diff(t).ok()?;
    OffsetDateTime::UNIX_EPOCH
        .checked_add(Duration::days(i64::from(diff.days)))?
        .checked_add(Duration::seconds(i64::from(diff.secs)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hex_is_lower_case_without_separators() {
        assert_eq!(hex(&[0x00, 0xab, 0x0f, 0xf0]), "00ab0ff0");
    }

    #[test]
    fn an_expiry_window_past_the_last_date_holds_every_certificate() {
        let now = OffsetDateTime::now_utc();
        let info = CertificateInfo {
            subject: "CN=test".into(),
            fingerprint: "00".into(),
            not_before: now - Duration::days(1),
            not_after: now + Duration::days(100),
            key: "EC P-256".into(),
        };
        assert!(!info.expires_within(99, now));
        assert!(info.expires_within(101, now));
        assert!(info.expires_within(u32::MAX, now));
    }

    #[test]
    fn key_usages_by_their_rfc_names() {
        assert_eq!(key_usages(X509KeyUsage::empty()), "none");
        assert_eq!(
            key_usages(X509KeyUsage::KEY_ENCIPHERMENT | X509KeyUsage::DATA_ENCIPHERMENT),
            "keyEncipherment, dataEncipherment"
        );
    }
}
