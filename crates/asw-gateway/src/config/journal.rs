//! `[journal]`: an SQLite file or a PostgreSQL URL.

use std::path::{Path, PathBuf};

use serde::Deserialize;

use super::{redact, resolve};

/// The journal: an embedded SQLite file (`path`), or a PostgreSQL database (`url`) that several
/// hubs on different hosts can share.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JournalConfig {
    /// SQLite database file (resolved against the configuration's folder); unused with `url`.
    pub path: PathBuf,
    /// `postgres://` URL, when the journal is in PostgreSQL.
    pub url: Option<String>,
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
}

/// Checks `[journal]`, a path resolved against `base`, pushing problems.
pub(super) fn check(raw: &RawJournal, base: &Path, problems: &mut Vec<String>) -> JournalConfig {
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
            JournalConfig { path, url: None }
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
            }
        }
        _ => {
            problems.push(
                "journal: give either path (SQLite file) or url (PostgreSQL), not both".into(),
            );
            JournalConfig {
                path: PathBuf::new(),
                url: None,
            }
        }
    }
}
