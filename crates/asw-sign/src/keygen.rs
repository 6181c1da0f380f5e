//! Key pairs and self-signed certificates for a member state, for `aswctl keygen`, tests and
//! demos. Production certificates come from each member state's own PKI; the verifier does not
//! care who issued a certificate, only that the trust store holds it.

use asw_model::MemberState;
use openssl::asn1::{Asn1Integer, Asn1Time};
use openssl::bn::{BigNum, MsbOption};
use openssl::ec::{EcGroup, EcKey};
use openssl::error::ErrorStack;
use openssl::hash::MessageDigest;
use openssl::nid::Nid;
use openssl::pkey::{PKey, PKeyRef, Private};
use openssl::rsa::Rsa;
use openssl::x509::extension::{BasicConstraints, KeyUsage, SubjectKeyIdentifier};
use openssl::x509::{X509, X509NameBuilder};
use time::{Duration, OffsetDateTime};

/// Why a key or certificate could not be made.
#[derive(Debug, Clone, thiserror::Error)]
pub enum KeygenError {
    /// OpenSSL failed.
    #[error("OpenSSL: {0}")]
    OpenSsl(#[from] ErrorStack),
    /// The validity period is empty or out of range.
    #[error("invalid validity period: {0}")]
    Validity(String),
}

/// The kind of key to make.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeyAlgorithm {
    /// RSA, 2048 bits (signatures use RSA-SHA256).
    Rsa2048,
    /// EC on P-256 (signatures use ECDSA-SHA256).
    EcP256,
}

/// A private key and its self-signed certificate, both PEM.
#[derive(Clone)]
pub struct GeneratedKey {
    /// The private key, unencrypted PKCS#8 PEM. Keep it secret.
    pub key_pem: Vec<u8>,
    /// The certificate, PEM.
    pub cert_pem: Vec<u8>,
}

impl std::fmt::Debug for GeneratedKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("GeneratedKey")
            .field("key_pem", &"<secret>")
            .field("cert_pem", &String::from_utf8_lossy(&self.cert_pem))
            .finish()
    }
}

/// A new private key of this kind.
pub fn private_key(algorithm: KeyAlgorithm) -> Result<PKey<Private>, KeygenError> {
    Ok(match algorithm {
        KeyAlgorithm::Rsa2048 => PKey::from_rsa(Rsa::generate(2048)?)?,
        KeyAlgorithm::EcP256 => {
            let group = EcGroup::from_curve_name(Nid::X9_62_PRIME256V1)?;
            PKey::from_ec_key(EcKey::generate(&group)?)?
        }
    })
}

/// A self-signed certificate for `key` naming `state` (`CN=aswhub CC, O=aswhub, C=CC`), valid
/// from `not_before` to `not_after`, which may both lie in the past or the future (tests make
/// expired and not-yet-valid certificates this way). PEM.
pub fn certificate(
    state: MemberState,
    key: &PKeyRef<Private>,
    not_before: OffsetDateTime,
    not_after: OffsetDateTime,
) -> Result<Vec<u8>, KeygenError> {
    if not_after <= not_before {
        return Err(KeygenError::Validity(
            "notAfter must be later than notBefore".into(),
        ));
    }
    // `time_t` is 64 bits on the platforms aswhub runs on.
    let asn1_time = |t: OffsetDateTime| Asn1Time::from_unix(t.unix_timestamp());
    let mut name = X509NameBuilder::new()?;
    name.append_entry_by_nid(Nid::COUNTRYNAME, state.code())?;
    name.append_entry_by_nid(Nid::ORGANIZATIONNAME, "aswhub")?;
    name.append_entry_by_nid(Nid::COMMONNAME, &format!("aswhub {}", state.code()))?;
    let name = name.build();

    let mut serial = BigNum::new()?;
    serial.rand(127, MsbOption::MAYBE_ZERO, false)?;
    let mut builder = X509::builder()?;
    builder.set_version(2)?;
    let serial = Asn1Integer::from_bn(&serial)?;
    builder.set_serial_number(&serial)?;
    builder.set_subject_name(&name)?;
    builder.set_issuer_name(&name)?;
    builder.set_pubkey(key)?;
    let (not_before, not_after) = (asn1_time(not_before)?, asn1_time(not_after)?);
    builder.set_not_before(&not_before)?;
    builder.set_not_after(&not_after)?;
    builder.append_extension(BasicConstraints::new().critical().build()?)?;
    builder.append_extension(
        KeyUsage::new()
            .critical()
            .digital_signature()
            .non_repudiation()
            .build()?,
    )?;
    let ski = SubjectKeyIdentifier::new().build(&builder.x509v3_context(None, None))?;
    builder.append_extension(ski)?;
    builder.sign(key, MessageDigest::sha256())?;
    Ok(builder.build().to_pem()?)
}

/// A new key of this kind and a self-signed certificate for `state`, valid from an hour before
/// `now` (clock skew between hubs) for `days` days.
pub fn generate(
    state: MemberState,
    algorithm: KeyAlgorithm,
    days: u32,
    now: OffsetDateTime,
) -> Result<GeneratedKey, KeygenError> {
    if days == 0 {
        return Err(KeygenError::Validity("at least one day is needed".into()));
    }
    let not_after = now
        .checked_add(Duration::days(i64::from(days)))
        .ok_or_else(|| KeygenError::Validity(format!("{days} days is too far in the future")))?;
    let key = private_key(algorithm)?;
    let cert_pem = certificate(state, &key, now - Duration::hours(1), not_after)?;
    Ok(GeneratedKey {
        key_pem: key.private_key_to_pem_pkcs8()?,
        cert_pem,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_validity_past_the_last_date_is_an_error() {
        let vn = MemberState::from_alpha2("VN").expect("VN");
        let now = OffsetDateTime::now_utc();
        let err = generate(vn, KeyAlgorithm::EcP256, u32::MAX, now).expect_err("too long");
        assert_eq!(
            err.to_string(),
            "invalid validity period: 4294967295 days is too far in the future"
        );
        assert!(generate(vn, KeyAlgorithm::EcP256, 3650, now).is_ok());
    }
}
