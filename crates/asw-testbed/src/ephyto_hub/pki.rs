//! A throwaway PKI for the simulated ePhyto Hub, made at test time: a CA, the hub's server
//! certificate (`localhost`, 127.0.0.1) and one client certificate per country whose common
//! name is the country code (the hub knows a national system by its certificate), as PEM files.

use std::path::{Path, PathBuf};

use anyhow::Context;
use openssl::asn1::Asn1Time;
use openssl::bn::{BigNum, MsbOption};
use openssl::hash::MessageDigest;
use openssl::pkey::{PKey, Private};
use openssl::x509::extension::{
    BasicConstraints, ExtendedKeyUsage, KeyUsage, SubjectAlternativeName,
};
use openssl::x509::{X509, X509NameBuilder};

/// The PEM files of one certificate and its key.
#[derive(Debug, Clone)]
pub struct CertFiles {
    /// The certificate.
    pub cert: PathBuf,
    /// Its unencrypted PKCS#8 key.
    pub key: PathBuf,
}

/// The CA, the hub's certificate and the countries' client certificates, in one directory.
#[derive(Debug, Clone)]
pub struct HubPki {
    /// The CA certificate (trusted by the hub for clients and by clients for the hub).
    pub ca: PathBuf,
    /// The hub's server certificate.
    pub server: CertFiles,
    dir: PathBuf,
    ca_cert: X509,
    ca_key: PKey<Private>,
}

fn key() -> anyhow::Result<PKey<Private>> {
    Ok(PKey::from_rsa(openssl::rsa::Rsa::generate(2048)?)?)
}

fn name(cn: &str) -> anyhow::Result<openssl::x509::X509Name> {
    let mut name = X509NameBuilder::new()?;
    name.append_entry_by_text("CN", cn)?;
    Ok(name.build())
}

fn serial() -> anyhow::Result<openssl::asn1::Asn1Integer> {
    let mut bn = BigNum::new()?;
    bn.rand(63, MsbOption::MAYBE_ZERO, false)?;
    Ok(bn.to_asn1_integer()?)
}

impl HubPki {
    /// A new CA and the hub's certificate in `dir` (made if missing).
    pub fn create(dir: &Path) -> anyhow::Result<HubPki> {
        std::fs::create_dir_all(dir).with_context(|| format!("create {}", dir.display()))?;
        let ca_key = key()?;
        let ca_name = name("aswhub test ePhyto Hub CA")?;
        let mut b = X509::builder()?;
        b.set_version(2)?;
        b.set_serial_number(&*serial()?)?;
        b.set_subject_name(&ca_name)?;
        b.set_issuer_name(&ca_name)?;
        b.set_pubkey(&ca_key)?;
        b.set_not_before(&*Asn1Time::days_from_now(0)?)?;
        b.set_not_after(&*Asn1Time::days_from_now(30)?)?;
        b.append_extension(BasicConstraints::new().critical().ca().build()?)?;
        b.append_extension(
            KeyUsage::new()
                .critical()
                .key_cert_sign()
                .crl_sign()
                .build()?,
        )?;
        b.sign(&ca_key, MessageDigest::sha256())?;
        let ca_cert = b.build();
        let ca = dir.join("hub-ca.pem");
        std::fs::write(&ca, ca_cert.to_pem()?)?;
        let mut pki = HubPki {
            ca,
            server: CertFiles {
                cert: PathBuf::new(),
                key: PathBuf::new(),
            },
            dir: dir.to_owned(),
            ca_cert,
            ca_key,
        };
        pki.server = pki.issue("localhost", true)?;
        Ok(pki)
    }

    /// A client certificate for `country` (common name = the code), made once.
    pub fn client(&self, country: &str) -> anyhow::Result<CertFiles> {
        let files = CertFiles {
            cert: self.dir.join(format!("client-{country}.pem")),
            key: self.dir.join(format!("client-{country}-key.pem")),
        };
        if files.cert.is_file() && files.key.is_file() {
            return Ok(files);
        }
        self.issue(country, false)
    }

    /// A certificate for `cn` signed by the CA: a server's (for `localhost` and 127.0.0.1) or
    /// a client's.
    fn issue(&self, cn: &str, server: bool) -> anyhow::Result<CertFiles> {
        let key = key()?;
        let mut b = X509::builder()?;
        b.set_version(2)?;
        b.set_serial_number(&*serial()?)?;
        b.set_subject_name(&*name(cn)?)?;
        b.set_issuer_name(self.ca_cert.subject_name())?;
        b.set_pubkey(&key)?;
        b.set_not_before(&*Asn1Time::days_from_now(0)?)?;
        b.set_not_after(&*Asn1Time::days_from_now(30)?)?;
        b.append_extension(BasicConstraints::new().build()?)?;
        b.append_extension(
            KeyUsage::new()
                .critical()
                .digital_signature()
                .key_encipherment()
                .build()?,
        )?;
        if server {
            b.append_extension(ExtendedKeyUsage::new().server_auth().build()?)?;
            let san = SubjectAlternativeName::new()
                .dns("localhost")
                .ip("127.0.0.1")
                .build(&b.x509v3_context(Some(&self.ca_cert), None))?;
            b.append_extension(san)?;
        } else {
            b.append_extension(ExtendedKeyUsage::new().client_auth().build()?)?;
        }
        b.sign(&self.ca_key, MessageDigest::sha256())?;
        let cert = b.build();
        let stem = if server {
            "server".to_owned()
        } else {
            format!("client-{cn}")
        };
        let files = CertFiles {
            cert: self.dir.join(format!("{stem}.pem")),
            key: self.dir.join(format!("{stem}-key.pem")),
        };
        std::fs::write(&files.cert, cert.to_pem()?)?;
        std::fs::write(&files.key, key.private_key_to_pem_pkcs8()?)?;
        Ok(files)
    }
}
