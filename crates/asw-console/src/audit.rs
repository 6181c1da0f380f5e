//! The console's audit log: one JSON line for every action asked for (replay, discard), done
//! or refused, with the user, their role, the time and the outcome. Appended, never rewritten;
//! read newest first.

use std::io::{BufRead, Write};
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use serde::{Deserialize, Serialize};

/// One action asked for from the console.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AuditEntry {
    /// When (RFC 3339, UTC).
    pub at: String,
    /// The console user.
    pub user: String,
    /// Their role (`viewer`, `operator`).
    pub role: String,
    /// What was asked: `replay`, `replay-dry-run`, `discard`.
    pub action: String,
    /// The message (`direction/id`) or messages acted on.
    pub target: String,
    /// `done`, `refused` (not allowed), `failed` (allowed, but it did not work), `dry-run`.
    pub outcome: String,
    /// What happened, for a person (the discard reason, why it failed).
    pub detail: String,
}

/// The audit log file.
#[derive(Debug)]
pub struct AuditLog {
    path: PathBuf,
    lock: Mutex<()>,
}

/// The audit log could not be read or written.
#[derive(Debug, thiserror::Error)]
#[error("audit log {path}: {source}")]
pub struct AuditError {
    path: PathBuf,
    source: std::io::Error,
}

impl AuditLog {
    /// The log in `path` (created on the first entry).
    pub fn new(path: impl Into<PathBuf>) -> AuditLog {
        AuditLog {
            path: path.into(),
            lock: Mutex::new(()),
        }
    }

    /// Where it is.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Appends `entry` and flushes it to disk.
    pub fn append(&self, entry: &AuditEntry) -> Result<(), AuditError> {
        let fail = |source| AuditError {
            path: self.path.clone(),
            source,
        };
        let mut line = serde_json::to_string(entry).map_err(|e| fail(e.into()))?;
        line.push('\n');
        let _guard = self.lock.lock().unwrap_or_else(|e| e.into_inner());
        let mut file = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.path)
            .map_err(fail)?;
        file.write_all(line.as_bytes()).map_err(fail)?;
        file.sync_data().map_err(fail)
    }

    /// The entries newest first, skipping `offset`, at most `limit`. A line that does not
    /// parse (a torn last write) is skipped.
    pub fn read(&self, offset: usize, limit: usize) -> Result<Vec<AuditEntry>, AuditError> {
        let file = match std::fs::File::open(&self.path) {
            Ok(file) => file,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
            Err(source) => {
                return Err(AuditError {
                    path: self.path.clone(),
                    source,
                });
            }
        };
        let mut entries: Vec<AuditEntry> = std::io::BufReader::new(file)
            .lines()
            .map_while(Result::ok)
            .filter_map(|line| serde_json::from_str(&line).ok())
            .collect();
        entries.reverse();
        Ok(entries.into_iter().skip(offset).take(limit).collect())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn appends_and_reads_newest_first() {
        let dir = tempfile::tempdir().expect("dir");
        let log = AuditLog::new(dir.path().join("audit.jsonl"));
        assert!(log.read(0, 10).expect("empty").is_empty());
        for n in 0..3 {
            log.append(&AuditEntry {
                at: format!("2026-12-02T00:00:0{n}Z"),
                user: "ana".into(),
                role: "operator".into(),
                action: "replay".into(),
                target: format!("outbound/{n}"),
                outcome: "done".into(),
                detail: String::new(),
            })
            .expect("append");
        }
        std::fs::OpenOptions::new()
            .append(true)
            .open(log.path())
            .and_then(|mut f| f.write_all(b"{torn"))
            .expect("torn line");
        let read = log.read(1, 10).expect("read");
        let targets: Vec<&str> = read.iter().map(|e| e.target.as_str()).collect();
        assert_eq!(targets, ["outbound/1", "outbound/0"]);
    }
}
