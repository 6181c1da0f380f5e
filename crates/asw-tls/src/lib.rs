//! TLS settings of one connection (the CA that signs the server's certificate, our client
//! certificate, its key and the key's passphrase), read and parsed once into a [`ClientTls`]
//! that the broker, management API and PostgreSQL clients all take. The server's name is always
//! verified: nothing here turns verification off.

use std::fmt;
use std::path::{Path, PathBuf};

use openssl::pkey::{PKey, Private};
use openssl::ssl::{SslConnector, SslConnectorBuilder, SslMethod, SslVerifyMode};
use openssl::x509::X509;

/// Where a connection's TLS material lives, as configured (`ca`, `cert`, `key`,
/// `key_passphrase`). All empty: TLS (when the URL asks for it) with the system's CAs and no
/// client certificate.
#[derive(Clone, Default, PartialEq, Eq)]
pub struct TlsFiles {
    /// PEM file of the CA certificates that sign the server's certificate (replaces the system's).
    pub ca: Option<PathBuf>,
    /// PEM file of our client certificate (and its chain, leaf first).
    pub cert: Option<PathBuf>,
    /// PEM file of the certificate's private key, encrypted or not.
    pub key: Option<PathBuf>,
    /// Passphrase of an encrypted `key`.
    pub key_passphrase: Option<String>,
}

impl fmt::Debug for TlsFiles {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TlsFiles")
            .field("ca", &self.ca)
            .field("cert", &self.cert)
            .field("key", &self.key)
            .field(
                "key_passphrase",
                &self.key_passphrase.as_ref().map(|_| "<redacted>"),
            )
            .finish()
    }
}

/// A TLS setting that could not be used. `setting` names the configuration key
/// (`broker.ca`, `partners.TH.key`).
#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    /// A file could not be read.
    #[error("{setting}: cannot read {}: {source}", path.display())]
    Read {
        /// The setting.
        setting: String,
        /// The file.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// A file is not what the setting needs.
    #[error("{setting}: {} {reason}", path.display())]
    Invalid {
        /// The setting.
        setting: String,
        /// The file.
        path: PathBuf,
        /// What is wrong.
        reason: String,
    },
    /// A certificate without a key, or a key without a certificate.
    #[error("{prefix}: give both cert and key, or neither")]
    Incomplete {
        /// The section (`broker`, `partners.TH`).
        prefix: String,
    },
    /// OpenSSL refused to build a connector.
    #[error("{prefix}: cannot set up TLS: {source}")]
    Setup {
        /// The section.
        prefix: String,
        /// Why.
        source: openssl::error::ErrorStack,
    },
}

/// A certificate chain and an unencrypted PKCS#8 key, both PEM.
pub type PemIdentity = (Vec<u8>, Vec<u8>);

/// A client certificate with its private key.
#[derive(Clone)]
pub struct Identity {
    /// The certificate, then its chain.
    pub chain: Vec<X509>,
    /// The private key, decrypted.
    pub key: PKey<Private>,
}

/// TLS material of one connection, read and checked: build connectors from it.
#[derive(Clone, Default)]
pub struct ClientTls {
    /// The CAs that sign the server's certificate; empty: the system's.
    pub ca: Vec<X509>,
    /// Our client certificate, if we present one.
    pub identity: Option<Identity>,
    /// The section it was configured in, for errors (`broker`, `journal`, `partners.TH`).
    pub prefix: String,
}

impl fmt::Debug for ClientTls {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ClientTls")
            .field("prefix", &self.prefix)
            .field("ca", &self.ca.len())
            .field("identity", &self.identity.is_some())
            .finish()
    }
}

impl TlsFiles {
    /// Whether nothing is set.
    pub fn is_empty(&self) -> bool {
        self.ca.is_none() && self.cert.is_none() && self.key.is_none()
    }

    /// Reads and parses every file; `prefix` is the section the keys are in (`broker`,
    /// `partners.TH`), named in errors.
    pub fn load(&self, prefix: &str) -> Result<ClientTls, TlsError> {
        let ca = match &self.ca {
            Some(path) => {
                let setting = format!("{prefix}.ca");
                let pem = read(&setting, path)?;
                let certs = X509::stack_from_pem(&pem).map_err(|e| invalid(&setting, path, e))?;
                if certs.is_empty() {
                    return Err(TlsError::Invalid {
                        setting,
                        path: path.clone(),
                        reason: "holds no PEM certificate".into(),
                    });
                }
                certs
            }
            None => Vec::new(),
        };
        let identity = match (&self.cert, &self.key) {
            (None, None) => None,
            (Some(cert), Some(key)) => {
                let setting = format!("{prefix}.cert");
                let pem = read(&setting, cert)?;
                let chain = X509::stack_from_pem(&pem).map_err(|e| invalid(&setting, cert, e))?;
                let Some(leaf) = chain.first() else {
                    return Err(TlsError::Invalid {
                        setting,
                        path: cert.clone(),
                        reason: "holds no PEM certificate".into(),
                    });
                };
                let key_setting = format!("{prefix}.key");
                let key_pem = read(&key_setting, key)?;
                let key_value =
                    private_key(&key_pem, self.key_passphrase.as_deref()).map_err(|reason| {
                        TlsError::Invalid {
                            setting: key_setting.clone(),
                            path: key.clone(),
                            reason,
                        }
                    })?;
                let matches = leaf
                    .public_key()
                    .map(|public| public.public_eq(&key_value))
                    .unwrap_or(false);
                if !matches {
                    return Err(TlsError::Invalid {
                        setting: key_setting,
                        path: key.clone(),
                        reason: format!("is not the key of the certificate {}", cert.display()),
                    });
                }
                Some(Identity {
                    chain,
                    key: key_value,
                })
            }
            _ => {
                return Err(TlsError::Incomplete {
                    prefix: prefix.to_owned(),
                });
            }
        };
        Ok(ClientTls {
            ca,
            identity,
            prefix: prefix.to_owned(),
        })
    }
}

/// A PEM private key, decrypted with `passphrase` when it is encrypted.
pub fn private_key(pem: &[u8], passphrase: Option<&str>) -> Result<PKey<Private>, String> {
    let encrypted = is_encrypted_pem(pem);
    match (encrypted, passphrase) {
        (true, None) => Err("is an encrypted key: give its passphrase".into()),
        (true, Some(pass)) => PKey::private_key_from_pem_passphrase(pem, pass.as_bytes())
            .map_err(|_| "cannot be decrypted with the passphrase given".into()),
        (false, _) => {
            PKey::private_key_from_pem(pem).map_err(|e| format!("is not a PEM private key: {e}"))
        }
    }
}

/// Whether PEM text holds an encrypted private key (PKCS#8 `ENCRYPTED PRIVATE KEY`, or a
/// traditional key with a `Proc-Type: 4,ENCRYPTED` header).
pub fn is_encrypted_pem(pem: &[u8]) -> bool {
    let text = String::from_utf8_lossy(pem);
    text.contains("-----BEGIN ENCRYPTED PRIVATE KEY-----")
        || text.contains("Proc-Type: 4,ENCRYPTED")
}

impl ClientTls {
    /// Whether it sets anything beyond the system's defaults.
    pub fn is_default(&self) -> bool {
        self.ca.is_empty() && self.identity.is_none()
    }

    /// The CA certificates as PEM text (empty when the system's are used).
    pub fn ca_pem(&self) -> String {
        let mut pem = String::new();
        for cert in &self.ca {
            if let Ok(bytes) = cert.to_pem() {
                pem.push_str(&String::from_utf8_lossy(&bytes));
            }
        }
        pem
    }

    /// The client certificate chain as PEM, and the key as unencrypted PKCS#8 PEM (held in
    /// memory only, for clients that take PEM).
    pub fn identity_pem(&self) -> Result<Option<PemIdentity>, TlsError> {
        let Some(identity) = &self.identity else {
            return Ok(None);
        };
        let setup = |source| TlsError::Setup {
            prefix: self.prefix.clone(),
            source,
        };
        let mut chain = Vec::new();
        for cert in &identity.chain {
            chain.extend(cert.to_pem().map_err(setup)?);
        }
        let key = identity.key.private_key_to_pem_pkcs8().map_err(setup)?;
        Ok(Some((chain, key)))
    }

    /// An OpenSSL connector that trusts [`ca`](Self::ca) only (or the system's CAs), presents
    /// the identity, and verifies the peer (the caller's `connect` verifies the name).
    pub fn connector(&self) -> Result<SslConnector, TlsError> {
        self.connector_builder()
            .map(SslConnectorBuilder::build)
            .map_err(|source| TlsError::Setup {
                prefix: self.prefix.clone(),
                source,
            })
    }

    fn connector_builder(&self) -> Result<SslConnectorBuilder, openssl::error::ErrorStack> {
        let mut builder = SslConnector::builder(SslMethod::tls_client())?;
        builder.set_verify(SslVerifyMode::PEER);
        if !self.ca.is_empty() {
            let mut store = openssl::x509::store::X509StoreBuilder::new()?;
            for cert in &self.ca {
                store.add_cert(cert.clone())?;
            }
            builder.set_verify_cert_store(store.build())?;
        }
        if let Some(identity) = &self.identity {
            let mut chain = identity.chain.iter();
            if let Some(leaf) = chain.next() {
                builder.set_certificate(leaf)?;
            }
            for extra in chain {
                builder.add_extra_chain_cert(extra.clone())?;
            }
            builder.set_private_key(&identity.key)?;
            builder.check_private_key()?;
        }
        Ok(builder)
    }
}

fn read(setting: &str, path: &Path) -> Result<Vec<u8>, TlsError> {
    std::fs::read(path).map_err(|source| TlsError::Read {
        setting: setting.to_owned(),
        path: path.to_owned(),
        source,
    })
}

fn invalid(setting: &str, path: &Path, error: openssl::error::ErrorStack) -> TlsError {
    TlsError::Invalid {
        setting: setting.to_owned(),
        path: path.to_owned(),
        reason: format!("is not PEM certificates: {error}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use openssl::asn1::Asn1Time;
    use openssl::hash::MessageDigest;
    use openssl::symm::Cipher;
    use openssl::x509::X509NameBuilder;

    fn self_signed(cn: &str) -> (X509, PKey<Private>) {
        let key = PKey::from_rsa(openssl::rsa::Rsa::generate(2048).expect("rsa")).expect("pkey");
        let mut name = X509NameBuilder::new().expect("name");
        name.append_entry_by_text("CN", cn).expect("cn");
        let name = name.build();
        let mut builder = X509::builder().expect("builder");
        builder.set_version(2).expect("version");
        builder.set_subject_name(&name).expect("subject");
        builder.set_issuer_name(&name).expect("issuer");
        builder.set_pubkey(&key).expect("pubkey");
        builder
            .set_not_before(&Asn1Time::days_from_now(0).expect("time"))
            .expect("not before");
        builder
            .set_not_after(&Asn1Time::days_from_now(1).expect("time"))
            .expect("not after");
        builder.sign(&key, MessageDigest::sha256()).expect("sign");
        (builder.build(), key)
    }

    #[test]
    fn files_are_read_checked_and_named_in_errors() {
        let dir = tempfile::tempdir().expect("dir");
        let (cert, key) = self_signed("partner-TH");
        let (_, other_key) = self_signed("other");
        let path = |name: &str| dir.path().join(name);
        std::fs::write(path("cert.pem"), cert.to_pem().expect("pem")).expect("write");
        std::fs::write(
            path("key.pem"),
            key.private_key_to_pem_pkcs8().expect("pem"),
        )
        .expect("write");
        let encrypted = key
            .private_key_to_pem_pkcs8_passphrase(Cipher::aes_256_cbc(), b"open sesame")
            .expect("pem");
        std::fs::write(path("enc.pem"), encrypted).expect("write");
        std::fs::write(
            path("other.pem"),
            other_key.private_key_to_pem_pkcs8().expect("pem"),
        )
        .expect("write");
        std::fs::write(path("junk.pem"), "not a certificate").expect("write");

        let files = |ca: &str, cert: &str, key: &str, pass: Option<&str>| TlsFiles {
            ca: (!ca.is_empty()).then(|| path(ca)),
            cert: (!cert.is_empty()).then(|| path(cert)),
            key: (!key.is_empty()).then(|| path(key)),
            key_passphrase: pass.map(str::to_owned),
        };
        let tls = files("cert.pem", "cert.pem", "key.pem", None)
            .load("broker")
            .expect("loads");
        assert_eq!(tls.ca.len(), 1);
        assert!(tls.identity.is_some());
        tls.connector().expect("connector");
        let (chain, pkcs8) = tls.identity_pem().expect("pem").expect("identity");
        assert!(String::from_utf8_lossy(&chain).contains("BEGIN CERTIFICATE"));
        assert!(String::from_utf8_lossy(&pkcs8).contains("BEGIN PRIVATE KEY"));

        // The encrypted key with its passphrase works; without it, or with a wrong one, not.
        files("", "cert.pem", "enc.pem", Some("open sesame"))
            .load("partners.TH")
            .expect("decrypted");
        let error = |f: TlsFiles| f.load("partners.TH").expect_err("refused").to_string();
        let text = error(files("", "cert.pem", "enc.pem", None));
        assert!(
            text.starts_with("partners.TH.key: ") && text.ends_with("give its passphrase"),
            "{text}"
        );
        let text = error(files("", "cert.pem", "enc.pem", Some("wrong")));
        assert!(text.contains("cannot be decrypted"), "{text}");
        let text = error(files("", "cert.pem", "other.pem", None));
        assert!(text.contains("is not the key of the certificate"), "{text}");
        let text = error(files("junk.pem", "", "", None));
        assert!(text.starts_with("partners.TH.ca: "), "{text}");
        let text = error(files("missing.pem", "", "", None));
        assert!(text.starts_with("partners.TH.ca: cannot read"), "{text}");
        let text = error(files("", "cert.pem", "", None));
        assert_eq!(text, "partners.TH: give both cert and key, or neither");
        assert!(
            !format!("{:?}", files("", "", "", Some("open sesame"))).contains("sesame"),
            "Debug hides the passphrase"
        );
    }
}
