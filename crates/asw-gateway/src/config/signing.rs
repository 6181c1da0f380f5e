//! `[signing]`: this member state's key and certificate, and the trust store.

use std::path::{Path, PathBuf};

use serde::Deserialize;

use super::resolve;
use super::secrets::{Findings, secret};

/// Signing and verification material.
#[derive(Clone, PartialEq, Eq)]
pub struct SigningConfig {
    /// PEM private key of this member state.
    pub key: PathBuf,
    /// PEM certificate of that key.
    pub certificate: PathBuf,
    /// Trust store: one folder per member state with its certificates.
    pub trust_dir: PathBuf,
    /// Warn about certificates expiring within this many days.
    pub expiry_warning_days: u32,
    /// Passphrase of an encrypted `key` (`key_passphrase`, `key_passphrase_file`,
    /// `key_passphrase_env`).
    pub key_passphrase: Option<String>,
}

impl std::fmt::Debug for SigningConfig {
    /// The passphrase redacted.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SigningConfig")
            .field("key", &self.key)
            .field("certificate", &self.certificate)
            .field("trust_dir", &self.trust_dir)
            .field("expiry_warning_days", &self.expiry_warning_days)
            .field(
                "key_passphrase",
                &self.key_passphrase.as_ref().map(|_| "<redacted>"),
            )
            .finish()
    }
}

/// The widest `signing.expiry_warning_days` (ten years), added to the clock at every scrape.
const MAX_EXPIRY_WARNING_DAYS: u32 = 3_650;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawSigning {
    key: PathBuf,
    certificate: PathBuf,
    trust_dir: PathBuf,
    #[serde(default = "default_expiry_days")]
    expiry_warning_days: u32,
    key_passphrase: Option<String>,
    key_passphrase_file: Option<PathBuf>,
    key_passphrase_env: Option<String>,
}

fn default_expiry_days() -> u32 {
    30
}

/// Checks `[signing]`, paths resolved against `base`, pushing problems.
pub(super) fn check(raw: RawSigning, base: &Path, findings: &mut Findings) -> SigningConfig {
    let key_passphrase = secret(
        "signing.key_passphrase",
        raw.key_passphrase,
        raw.key_passphrase_file.as_ref(),
        raw.key_passphrase_env.as_ref(),
        base,
        findings,
    );
    let problems = &mut findings.problems;
    let signing = SigningConfig {
        key: resolve(base, &raw.key),
        certificate: resolve(base, &raw.certificate),
        trust_dir: resolve(base, &raw.trust_dir),
        expiry_warning_days: raw.expiry_warning_days,
        key_passphrase,
    };
    if raw.expiry_warning_days > MAX_EXPIRY_WARNING_DAYS {
        problems.push(format!(
            "signing.expiry_warning_days: {} is not between 0 and {MAX_EXPIRY_WARNING_DAYS}",
            raw.expiry_warning_days
        ));
    }
    for (key, path) in [
        ("signing.key", &signing.key),
        ("signing.certificate", &signing.certificate),
    ] {
        if !path.is_file() {
            problems.push(format!("{key}: {} is not a readable file", path.display()));
        }
    }
    if !signing.trust_dir.is_dir() {
        problems.push(format!(
            "signing.trust_dir: {} is not a directory",
            signing.trust_dir.display()
        ));
    }
    signing
}
