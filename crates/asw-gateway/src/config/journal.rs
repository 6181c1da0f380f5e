//! `[journal]`: an SQLite file or a PostgreSQL URL.

use std::path::{Path, PathBuf};

use serde::Deserialize;

use asw_tls::TlsFiles;

use super::secrets::{Findings, RawTls, has_password, secret, with_password};
use super::{redact, resolve};

/// The journal: an embedded SQLite file (`path`), or a PostgreSQL database (`url`) that several
/// hubs on different hosts can share.
#[derive(Clone, PartialEq, Eq)]
pub struct JournalConfig {
    /// SQLite database file (resolved against the configuration's folder); unused with `url`.
    pub path: PathBuf,
    /// `postgres://` URL, when the journal is in PostgreSQL (with the password of
    /// `password*`, if given).
    pub url: Option<String>,
    /// TLS to PostgreSQL: `ca`, `cert`, `key`, `key_passphrase` (with `sslmode=verify-full`).
    pub tls: TlsFiles,
}

impl std::fmt::Debug for JournalConfig {
    /// The password redacted.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("JournalConfig")
            .field("path", &self.path)
            .field("url", &self.url.as_deref().map(redact))
            .field("tls", &self.tls)
            .finish()
    }
}

impl JournalConfig {
    /// What `asw_journal::open` takes: the URL, or the file's path.
    pub fn location(&self) -> String {
        self.url
            .clone()
            .unwrap_or_else(|| self.path.to_string_lossy().into_owned())
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawJournal {
    path: Option<PathBuf>,
    url: Option<String>,
    password: Option<String>,
    password_file: Option<PathBuf>,
    password_env: Option<String>,
    ca: Option<PathBuf>,
    cert: Option<PathBuf>,
    key: Option<PathBuf>,
    key_passphrase: Option<String>,
    key_passphrase_file: Option<PathBuf>,
    key_passphrase_env: Option<String>,
}

/// Checks `[journal]`, a path resolved against `base`, pushing problems.
pub(super) fn check(raw: RawJournal, base: &Path, findings: &mut Findings) -> JournalConfig {
    let password = secret(
        "journal.password",
        raw.password.clone(),
        raw.password_file.as_ref(),
        raw.password_env.as_ref(),
        base,
        findings,
    );
    let tls = RawTls {
        ca: raw.ca.clone(),
        cert: raw.cert.clone(),
        key: raw.key.clone(),
        key_passphrase: raw.key_passphrase.clone(),
        key_passphrase_file: raw.key_passphrase_file.clone(),
        key_passphrase_env: raw.key_passphrase_env.clone(),
    }
    .check("journal", base, findings);
    let mut journal = location(&raw, base, &mut findings.problems);
    journal.tls = tls;
    if let Some(url) = &journal.url {
        if let Some(password) = password {
            match with_password(url, &password) {
                Ok(with) if !has_password(url) => journal.url = Some(with),
                Ok(_) => findings.problems.push(format!(
                    "journal.url: {:?} carries a password, and journal.password* gives one: give one",
                    redact(url)
                )),
                Err(e) => findings
                    .problems
                    .push(format!("journal.url: {:?} {e}", redact(url))),
            }
        } else if has_password(url) {
            findings.warnings.push(
                "journal.url: the password is inline in the URL; use journal.password_file or \
                 journal.password_env"
                    .into(),
            );
        }
    }
    journal
}

fn location(raw: &RawJournal, base: &Path, problems: &mut Vec<String>) -> JournalConfig {
    match (&raw.path, &raw.url) {
        (Some(path), None) => {
            let path = resolve(base, path);
            match path.parent() {
                Some(dir) if !dir.as_os_str().is_empty() && !dir.is_dir() => {
                    problems.push(format!(
                        "journal.path: folder {} does not exist",
                        dir.display()
                    ));
                }
                _ => {}
            }
            JournalConfig {
                path,
                url: None,
                tls: TlsFiles::default(),
            }
        }
        (None, Some(url)) => {
            if !(url.starts_with("postgres://") || url.starts_with("postgresql://")) {
                problems.push(format!(
                    "journal.url: {:?} is not a postgres:// URL",
                    redact(url)
                ));
            }
            JournalConfig {
                path: PathBuf::new(),
                url: Some(url.clone()),
                tls: TlsFiles::default(),
            }
        }
        _ => {
            problems.push(
                "journal: give either path (SQLite file) or url (PostgreSQL), not both".into(),
            );
            JournalConfig {
                path: PathBuf::new(),
                url: None,
                tls: TlsFiles::default(),
            }
        }
    }
}
