//! The trust store: for each member state, the certificates whose signatures are accepted on
//! messages claiming that member state as sender.
//!
//! On disk it is a directory with one folder per member state, named by its alpha-2 code, each
//! holding PEM certificates (`trust/TH/th-2026.pem`, `trust/TH/th-2027.pem`: several per state
//! allow key rollover). It is shared by all verifier threads (`Send + Sync`) and can be reloaded
//! while they run: a reload builds a new snapshot and swaps it in only if the whole directory
//! loaded, so a broken edit never empties the store.

use std::collections::HashMap;
use std::fs;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, PoisonError, RwLock};

use asw_model::MemberState;
use openssl::x509::X509;
use time::OffsetDateTime;

use crate::algorithm::SignatureAlgorithm;
use crate::certificate::CertificateInfo;

/// Certificates expiring within this many days are reported by default.
pub const DEFAULT_EXPIRY_WARNING_DAYS: u32 = 30;

/// Why the trust store could not be loaded. Each names the file or folder at fault.
#[derive(Debug, thiserror::Error)]
pub enum TrustError {
    /// A file or folder could not be read.
    #[error("{}: cannot read", path.display())]
    Io {
        /// The file or folder.
        path: PathBuf,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },
    /// A folder is not named by a member state code.
    #[error("{}: unknown folder; the trust directory holds one folder per member state, named by its code (BN, KH, ID, LA, MY, MM, PH, SG, TH, VN)", path.display())]
    UnknownFolder {
        /// The folder.
        path: PathBuf,
    },
    /// A file sits where only member-state folders are expected.
    #[error("{}: not a folder; the trust directory holds one folder per member state", path.display())]
    NotAFolder {
        /// The file.
        path: PathBuf,
    },
    /// A `.pem` file is not readable PEM.
    #[error("{}: not a readable PEM certificate: {detail}", path.display())]
    Pem {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        detail: String,
    },
    /// A `.pem` file holds no certificate.
    #[error("{}: holds no certificate", path.display())]
    NoCertificate {
        /// The file.
        path: PathBuf,
    },
    /// A `.pem` file holds a private key, which has no place in a trust store.
    #[error("{}: holds a private key; the trust store takes certificates only", path.display())]
    PrivateKey {
        /// The file.
        path: PathBuf,
    },
    /// A certificate's key is too weak or of a type the profile does not accept.
    #[error("{}: certificate {fingerprint} ({subject}) has a {key} key; only RSA of at least 2048 bits or EC P-256 is accepted", path.display())]
    Key {
        /// The file.
        path: PathBuf,
        /// SHA-256 fingerprint of the certificate.
        fingerprint: String,
        /// Subject of the certificate.
        subject: String,
        /// The key, e.g. `RSA 1024`.
        key: String,
    },
    /// The same certificate is trusted for two member states.
    #[error("{}: certificate {fingerprint} is already trusted for {other_state} ({}); a certificate belongs to one member state", path.display(), other_path.display())]
    Duplicate {
        /// The file where it was found the second time.
        path: PathBuf,
        /// Where it was found first.
        other_path: PathBuf,
        /// The member state it was found for first.
        other_state: MemberState,
        /// SHA-256 fingerprint of the certificate.
        fingerprint: String,
    },
    /// `reload` was called on a store built in memory.
    #[error("the trust store was built in memory and has no directory to reload from")]
    NotReloadable,
}

/// A certificate of the trust store.
#[derive(Clone, PartialEq, Eq)]
pub struct TrustedCertificate {
    state: MemberState,
    path: PathBuf,
    info: CertificateInfo,
    algorithm: SignatureAlgorithm,
    der: Vec<u8>,
}

impl TrustedCertificate {
    /// The member state it is trusted for.
    pub fn member_state(&self) -> MemberState {
        self.state
    }

    /// The file it was loaded from (`memory:CC/N` for stores built in memory).
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Subject, fingerprint, validity and key.
    pub fn info(&self) -> &CertificateInfo {
        &self.info
    }

    /// The signature algorithm its key is used with.
    pub fn algorithm(&self) -> SignatureAlgorithm {
        self.algorithm
    }

    /// The DER encoding, compared byte for byte with the certificate in a signature.
    pub fn der(&self) -> &[u8] {
        &self.der
    }
}

impl std::fmt::Debug for TrustedCertificate {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TrustedCertificate")
            .field("state", &self.state)
            .field("path", &self.path)
            .field("info", &self.info)
            .field("algorithm", &self.algorithm)
            .finish_non_exhaustive()
    }
}

/// An immutable view of the trust store at one moment.
#[derive(Debug, Default)]
pub struct TrustSnapshot {
    certificates: Vec<TrustedCertificate>,
    by_der: HashMap<Vec<u8>, usize>,
}

impl TrustSnapshot {
    /// Every certificate, by member state (table order), then by end of validity.
    pub fn certificates(&self) -> &[TrustedCertificate] {
        &self.certificates
    }

    /// The certificates trusted for `state`.
    pub fn for_state(&self, state: MemberState) -> impl Iterator<Item = &TrustedCertificate> {
        self.certificates.iter().filter(move |c| c.state == state)
    }

    /// The certificate with exactly this DER encoding, whatever member state it is trusted for.
    pub fn find(&self, der: &[u8]) -> Option<&TrustedCertificate> {
        self.by_der.get(der).and_then(|&i| self.certificates.get(i))
    }

    /// The certificates no longer valid `days` days after `now` (expired ones included).
    pub fn expiring_within(&self, days: u32, now: OffsetDateTime) -> Vec<&TrustedCertificate> {
        self.certificates
            .iter()
            .filter(|c| c.info.expires_within(days, now))
            .collect()
    }

    /// Number of certificates.
    pub fn len(&self) -> usize {
        self.certificates.len()
    }

    /// True if there is no certificate at all.
    pub fn is_empty(&self) -> bool {
        self.certificates.is_empty()
    }

    fn add_pem(&mut self, state: MemberState, pem: &[u8], path: &Path) -> Result<(), TrustError> {
        if pem.windows(11).any(|w| w == b"PRIVATE KEY") {
            return Err(TrustError::PrivateKey { path: path.into() });
        }
        let certificates = X509::stack_from_pem(pem).map_err(|e| TrustError::Pem {
            path: path.into(),
            detail: e.to_string(),
        })?;
        if certificates.is_empty() {
            return Err(TrustError::NoCertificate { path: path.into() });
        }
        for certificate in certificates {
            let pem_error = |detail: String| TrustError::Pem {
                path: path.into(),
                detail,
            };
            let der = certificate.to_der().map_err(|e| pem_error(e.to_string()))?;
            let (info, class) = CertificateInfo::read(&certificate).map_err(pem_error)?;
            let algorithm = class.algorithm().map_err(|_| TrustError::Key {
                path: path.into(),
                fingerprint: info.fingerprint().to_owned(),
                subject: info.subject().to_owned(),
                key: info.key().to_owned(),
            })?;
            if let Some(existing) = self.find(&der) {
                if existing.state == state {
                    continue;
                }
                return Err(TrustError::Duplicate {
                    path: path.into(),
                    other_path: existing.path.clone(),
                    other_state: existing.state,
                    fingerprint: info.fingerprint().to_owned(),
                });
            }
            self.by_der.insert(der.clone(), self.certificates.len());
            self.certificates.push(TrustedCertificate {
                state,
                path: path.into(),
                info,
                algorithm,
                der,
            });
        }
        Ok(())
    }

    fn sorted(mut self) -> TrustSnapshot {
        self.certificates
            .sort_by_key(|c| (c.state, c.info.not_after()));
        self.by_der = self
            .certificates
            .iter()
            .enumerate()
            .map(|(i, c)| (c.der.clone(), i))
            .collect();
        self
    }

    fn load(dir: &Path) -> Result<TrustSnapshot, TrustError> {
        let mut snapshot = TrustSnapshot::default();
        for folder in sorted_entries(dir)? {
            let Some(name) = visible_name(&folder) else {
                continue;
            };
            let meta = fs::metadata(&folder).map_err(|source| TrustError::Io {
                path: folder.clone(),
                source,
            })?;
            if !meta.is_dir() {
                return Err(TrustError::NotAFolder { path: folder });
            }
            let Some(state) = MemberState::from_alpha2(&name) else {
                return Err(TrustError::UnknownFolder { path: folder });
            };
            for file in sorted_entries(&folder)? {
                if visible_name(&file).is_none()
                    || !file
                        .extension()
                        .is_some_and(|e| e.eq_ignore_ascii_case("pem"))
                {
                    continue;
                }
                let pem = fs::read(&file).map_err(|source| TrustError::Io {
                    path: file.clone(),
                    source,
                })?;
                snapshot.add_pem(state, &pem, &file)?;
            }
        }
        Ok(snapshot.sorted())
    }
}

fn sorted_entries(dir: &Path) -> Result<Vec<PathBuf>, TrustError> {
    let io = |source| TrustError::Io {
        path: dir.into(),
        source,
    };
    let mut paths = Vec::new();
    for entry in fs::read_dir(dir).map_err(io)? {
        paths.push(entry.map_err(io)?.path());
    }
    paths.sort();
    Ok(paths)
}

/// The file name, unless it is hidden (`.gitkeep`, editor files) or not UTF-8.
fn visible_name(path: &Path) -> Option<String> {
    let name = path.file_name()?.to_str()?;
    (!name.starts_with('.')).then(|| name.to_owned())
}

/// The trust store, shared by every verifier thread (`Send + Sync`) and reloadable.
#[derive(Debug)]
pub struct TrustStore {
    dir: Option<PathBuf>,
    current: RwLock<Arc<TrustSnapshot>>,
    generation: AtomicU64,
}

impl TrustStore {
    /// Loads the store from `dir` (one folder per member state, `*.pem` certificates inside).
    pub fn load(dir: impl Into<PathBuf>) -> Result<TrustStore, TrustError> {
        let dir = dir.into();
        let snapshot = TrustSnapshot::load(&dir)?;
        Ok(TrustStore {
            dir: Some(dir),
            current: RwLock::new(Arc::new(snapshot)),
            generation: AtomicU64::new(1),
        })
    }

    /// Builds a store from PEM certificates in memory (tests, benchmarks); it cannot be reloaded.
    pub fn from_pem<'a>(
        entries: impl IntoIterator<Item = (MemberState, &'a [u8])>,
    ) -> Result<TrustStore, TrustError> {
        let mut snapshot = TrustSnapshot::default();
        for (i, (state, pem)) in entries.into_iter().enumerate() {
            snapshot.add_pem(state, pem, Path::new(&format!("memory:{state}/{i}")))?;
        }
        Ok(TrustStore {
            dir: None,
            current: RwLock::new(Arc::new(snapshot.sorted())),
            generation: AtomicU64::new(1),
        })
    }

    /// Reads the directory again and swaps the new certificates in, returning how many there are.
    /// On error the store keeps the certificates it had.
    pub fn reload(&self) -> Result<usize, TrustError> {
        let dir = self.dir.as_deref().ok_or(TrustError::NotReloadable)?;
        let snapshot = Arc::new(TrustSnapshot::load(dir)?);
        let count = snapshot.len();
        *self.current.write().unwrap_or_else(PoisonError::into_inner) = snapshot;
        self.generation.fetch_add(1, Ordering::AcqRel);
        Ok(count)
    }

    /// The certificates as they are now.
    pub fn snapshot(&self) -> Arc<TrustSnapshot> {
        // A poisoned lock still holds a complete snapshot: only whole `Arc`s are ever stored.
        Arc::clone(&self.current.read().unwrap_or_else(PoisonError::into_inner))
    }

    /// Increases with every successful reload; verifiers use it to drop cached keys.
    pub fn generation(&self) -> u64 {
        self.generation.load(Ordering::Acquire)
    }

    /// The directory the store loads from, if any.
    pub fn directory(&self) -> Option<&Path> {
        self.dir.as_deref()
    }

    /// The certificates no longer valid `days` days after `now` (expired ones included).
    pub fn expiring_within(&self, days: u32, now: OffsetDateTime) -> Vec<TrustedCertificate> {
        self.snapshot()
            .expiring_within(days, now)
            .into_iter()
            .cloned()
            .collect()
    }
}
