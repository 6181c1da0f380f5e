//! The trust store: for each member state, the certificates whose signatures are accepted on
//! messages claiming that member state as sender.
//!
//! On disk it is a directory with one folder per member state, named by its alpha-2 code, each
//! holding PEM certificates (`trust/TH/th-2026.pem`, `trust/TH/th-2027.pem`: several per state
//! allow key rollover). It is shared by all verifier threads (`Send + Sync`) and can be reloaded
//! while they run: a reload builds a new snapshot and swaps it in whole.
//!
//! Loading at start-up is strict: any bad file or folder is an error and nothing is trusted. A
//! reload fails closed instead: it applies what it could read and reports the rest, so a removed
//! certificate is gone even when another file is broken, and a certificate whose file became
//! unreadable is no longer trusted; only a trust directory that cannot be listed at all leaves
//! the store as it was.

use std::collections::{HashMap, HashSet};
use std::fs;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, PoisonError, RwLock};

use asw_model::MemberState;
use openssl::x509::X509;
use time::OffsetDateTime;

use crate::algorithm::SignatureAlgorithm;
use crate::certificate::{self, CertificateInfo};

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
    #[error("{}: certificate {fingerprint} is already trusted for {other_state} ({}); a certificate belongs to one member state, so it is trusted for neither", path.display(), other_path.display())]
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
    /// A certificate's keyUsage extension exists and does not allow digitalSignature.
    #[error("{}: certificate {fingerprint} ({subject}) may not verify signatures: its keyUsage extension allows {usage} but not digitalSignature", path.display())]
    KeyUsage {
        /// The file.
        path: PathBuf,
        /// SHA-256 fingerprint of the certificate.
        fingerprint: String,
        /// Subject of the certificate.
        subject: String,
        /// The usages the extension allows, e.g. `keyEncipherment`.
        usage: String,
    },
    /// `reload` was called on a store built in memory.
    #[error("the trust store was built in memory and has no directory to reload from")]
    NotReloadable,
    /// A reload skipped some files; what it could read is trusted now (see [`TrustReload`]).
    #[error("{0}")]
    Incomplete(TrustReload),
}

impl TrustError {
    /// The file or folder at fault; `None` for [`NotReloadable`](TrustError::NotReloadable) and
    /// [`Incomplete`](TrustError::Incomplete), which name no single one.
    pub fn path(&self) -> Option<&Path> {
        match self {
            TrustError::Io { path, .. }
            | TrustError::UnknownFolder { path }
            | TrustError::NotAFolder { path }
            | TrustError::Pem { path, .. }
            | TrustError::NoCertificate { path }
            | TrustError::PrivateKey { path }
            | TrustError::Key { path, .. }
            | TrustError::Duplicate { path, .. }
            | TrustError::KeyUsage { path, .. } => Some(path),
            TrustError::NotReloadable | TrustError::Incomplete(_) => None,
        }
    }
}

/// What a reload applied: the certificates trusted now, and the files and folders it skipped.
#[derive(Debug)]
pub struct TrustReload {
    /// Certificates trusted after the reload.
    pub loaded: usize,
    /// Each file or folder skipped, with why (each error names its path, see
    /// [`TrustError::path`]). None of the certificates in a skipped file is trusted.
    pub problems: Vec<TrustError>,
}

impl std::fmt::Display for TrustReload {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "the trust store was reloaded with {} certificate(s); {} bad file(s) or folder(s) skipped, their certificates not trusted",
            self.loaded,
            self.problems.len()
        )?;
        for (i, problem) in self.problems.iter().enumerate() {
            write!(f, "{} {problem}", if i == 0 { ':' } else { ';' })?;
        }
        Ok(())
    }
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

    /// Adds the certificates of one PEM file, all or none of them.
    fn add_pem(&mut self, state: MemberState, pem: &[u8], path: &Path) -> Result<(), TrustError> {
        let certificates = read_pem(state, pem, path)?;
        for certificate in &certificates {
            if let Some(existing) = self.find(&certificate.der)
                && existing.state != state
            {
                return Err(TrustError::Duplicate {
                    path: path.into(),
                    other_path: existing.path.clone(),
                    other_state: existing.state,
                    fingerprint: certificate.info.fingerprint().to_owned(),
                });
            }
        }
        for certificate in certificates {
            // The same certificate twice for one member state (two files, or twice in one
            // file) is trusted once.
            if self.find(&certificate.der).is_none() {
                self.by_der
                    .insert(certificate.der.clone(), self.certificates.len());
                self.certificates.push(certificate);
            }
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

    /// Reads `dir`: the certificates of every good file, and each bad file or folder with why,
    /// in directory order. Only a `dir` that cannot be listed is an error.
    fn read(dir: &Path) -> Result<(TrustSnapshot, Vec<TrustError>), TrustError> {
        let mut snapshot = TrustSnapshot::default();
        let mut problems = Vec::new();
        for folder in sorted_entries(dir)? {
            let Some(name) = visible_name(&folder) else {
                continue;
            };
            if let Err(problem) = snapshot.add_folder(&folder, &name, &mut problems) {
                problems.push(problem);
            }
        }
        // A certificate found for two member states is trusted for neither: the second file
        // is among the problems, and the first occurrence goes too.
        let ambiguous: HashSet<String> = problems
            .iter()
            .filter_map(|p| match p {
                TrustError::Duplicate { fingerprint, .. } => Some(fingerprint.clone()),
                _ => None,
            })
            .collect();
        snapshot
            .certificates
            .retain(|c| !ambiguous.contains(c.info.fingerprint()));
        Ok((snapshot.sorted(), problems))
    }

    /// Adds the certificates of one member-state folder; a bad file in it goes to `problems`,
    /// a bad folder is the error.
    fn add_folder(
        &mut self,
        folder: &Path,
        name: &str,
        problems: &mut Vec<TrustError>,
    ) -> Result<(), TrustError> {
        let meta = fs::metadata(folder).map_err(|source| TrustError::Io {
            path: folder.into(),
            source,
        })?;
        if !meta.is_dir() {
            return Err(TrustError::NotAFolder {
                path: folder.into(),
            });
        }
        let Some(state) = MemberState::from_alpha2(name) else {
            return Err(TrustError::UnknownFolder {
                path: folder.into(),
            });
        };
        for file in sorted_entries(folder)? {
            if visible_name(&file).is_none()
                || !file
                    .extension()
                    .is_some_and(|e| e.eq_ignore_ascii_case("pem"))
            {
                continue;
            }
            let added = fs::read(&file)
                .map_err(|source| TrustError::Io {
                    path: file.clone(),
                    source,
                })
                .and_then(|pem| self.add_pem(state, &pem, &file));
            if let Err(problem) = added {
                problems.push(problem);
            }
        }
        Ok(())
    }
}

/// The certificates of one PEM file for `state`, each checked against the profile.
fn read_pem(
    state: MemberState,
    pem: &[u8],
    path: &Path,
) -> Result<Vec<TrustedCertificate>, TrustError> {
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
    let mut read = Vec::with_capacity(certificates.len());
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
        certificate::signing_usage(&certificate).map_err(|usage| TrustError::KeyUsage {
            path: path.into(),
            fingerprint: info.fingerprint().to_owned(),
            subject: info.subject().to_owned(),
            usage,
        })?;
        read.push(TrustedCertificate {
            state,
            path: path.into(),
            info,
            algorithm,
            der,
        });
    }
    Ok(read)
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
    /// Strict, for start-up: the first bad file or folder (in directory order) is the error and
    /// no store is made, so a hub does not start with a trust store other than the operator's.
    pub fn load(dir: impl Into<PathBuf>) -> Result<TrustStore, TrustError> {
        let dir = dir.into();
        let (snapshot, problems) = TrustSnapshot::read(&dir)?;
        if let Some(problem) = problems.into_iter().next() {
            return Err(problem);
        }
        Ok(TrustStore {
            dir: Some(dir),
            current: RwLock::new(Arc::new(snapshot)),
            generation: AtomicU64::new(1),
        })
    }

    /// Builds a store from PEM certificates in memory (tests, benchmarks); it cannot be reloaded.
    /// Strict like [`load`](TrustStore::load).
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

    /// Reads the directory again and swaps in what it could read, failing closed: removed
    /// files are gone, added good files are in, and a bad file or folder is skipped, its
    /// certificates no longer trusted even if an earlier version of it was good. Returns how
    /// many certificates are trusted now and each skipped file or folder with why (log each,
    /// count them). The error ([`NotReloadable`](TrustError::NotReloadable), or
    /// [`Io`](TrustError::Io) on the directory itself, which cannot be listed) changes nothing.
    pub fn reload_report(&self) -> Result<TrustReload, TrustError> {
        let dir = self.dir.as_deref().ok_or(TrustError::NotReloadable)?;
        let (snapshot, problems) = TrustSnapshot::read(dir)?;
        let loaded = snapshot.len();
        *self.current.write().unwrap_or_else(PoisonError::into_inner) = Arc::new(snapshot);
        self.generation.fetch_add(1, Ordering::AcqRel);
        Ok(TrustReload { loaded, problems })
    }

    /// [`reload_report`](TrustStore::reload_report) for callers that want the count only: it
    /// applies the same, and a skipped file is the error [`Incomplete`](TrustError::Incomplete),
    /// which says how many certificates are trusted now and lists every skipped file.
    pub fn reload(&self) -> Result<usize, TrustError> {
        let report = self.reload_report()?;
        if report.problems.is_empty() {
            Ok(report.loaded)
        } else {
            Err(TrustError::Incomplete(report))
        }
    }

    /// The certificates as they are now.
    pub fn snapshot(&self) -> Arc<TrustSnapshot> {
        // A poisoned lock still holds a complete snapshot: only whole `Arc`s are ever stored.
        Arc::clone(&self.current.read().unwrap_or_else(PoisonError::into_inner))
    }

    /// Increases with every reload that swapped a snapshot in (with or without skipped files);
    /// verifiers use it to drop cached keys.
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
