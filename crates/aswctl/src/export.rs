//! `aswctl export --since T --until T -o FILE`: for auditors, the exact bytes of every message
//! the journal holds for a period (signed as received from partners, signed as sent by us), an
//! index, and the certificates to check the signatures with, in one tar archive. Every signed
//! message in it verifies with `xmlsec1 --verify --pubkey-cert-pem certificates/<CC>/...`.

use std::path::{Path, PathBuf};

use anyhow::Context;
use asw_gateway::config::HubConfig;
use asw_journal::{Direction, Filter, Journal, MessageSummary};
use serde::Serialize;
use time::OffsetDateTime;

use crate::Outcome;
use crate::operator::{HubOptions, open_journal};
use crate::when::{When, rfc3339};

/// Arguments of `aswctl export`.
#[derive(Debug, clap::Args)]
pub struct ExportArgs {
    #[command(flatten)]
    hub: HubOptions,
    /// First instant of the period (messages last updated at or after it): RFC 3339 or a duration ago.
    #[arg(long, value_name = "T")]
    since: When,
    /// End of the period (exclusive); now when not given.
    #[arg(long, value_name = "T")]
    until: Option<When>,
    /// The tar archive to write.
    #[arg(long, short, value_name = "FILE")]
    output: PathBuf,
}

/// One line of the archive's index.
#[derive(Debug, Serialize)]
pub(crate) struct IndexEntry {
    file: String,
    message_id: String,
    direction: String,
    kind: String,
    sender: String,
    receiver: String,
    correlation_id: Option<String>,
    state: String,
    first_seen: String,
    updated_at: String,
    bytes: usize,
    signed: bool,
    /// The message's history, where the archive keeps it (`journal archive`, which removes it
    /// from the journal).
    #[serde(skip_serializing_if = "Option::is_none")]
    history: Option<Vec<HistoryEntry>>,
}

/// One row of a message's history, as archived.
#[derive(Debug, Serialize)]
struct HistoryEntry {
    event: String,
    from: Option<String>,
    to: String,
    at: String,
    reason_code: Option<String>,
    reason_text: Option<String>,
    actor: String,
}

/// A tar archive of messages with their exact bytes and the certificates to verify them with,
/// written as `aswctl export` and `aswctl journal archive` lay it out.
pub(crate) struct Archive {
    builder: tar::Builder<std::fs::File>,
}

impl Archive {
    /// Starts the archive at `path`; an existing file is never overwritten when `fresh`.
    pub(crate) fn create(path: &Path, fresh: bool) -> anyhow::Result<Archive> {
        let mut options = std::fs::OpenOptions::new();
        options.write(true);
        if fresh {
            options.create_new(true);
        } else {
            options.create(true).truncate(true);
        }
        let file = options
            .open(path)
            .with_context(|| format!("cannot create {}", path.display()))?;
        Ok(Archive {
            builder: tar::Builder::new(file),
        })
    }

    /// Adds one message's exact bytes (and its history, when `with_history`); `None` when the
    /// journal no longer has it.
    pub(crate) fn message(
        &mut self,
        journal: &dyn Journal,
        summary: &MessageSummary,
        with_history: bool,
    ) -> anyhow::Result<Option<IndexEntry>> {
        let direction = summary.direction;
        let id = summary.header.message_id;
        let Some(record) = journal.get(direction, id).context("reading the journal")? else {
            return Ok(None);
        };
        let name = format!(
            "messages/{}_{}_{}_{}.xml",
            rfc3339(summary.first_seen).replace(':', ""),
            direction,
            summary.header.kind,
            id
        );
        self.add(&name, &record.bytes)?;
        let history = if with_history {
            let rows = journal
                .history(direction, id)
                .context("reading the journal")?;
            Some(
                rows.into_iter()
                    .map(|r| HistoryEntry {
                        event: r.event.to_string(),
                        from: r.from.map(|s| s.to_string()),
                        to: r.to.to_string(),
                        at: rfc3339(r.at),
                        reason_code: r.reason.as_ref().map(|r| r.code.clone()),
                        reason_text: r.reason.map(|r| r.text),
                        actor: r.actor,
                    })
                    .collect(),
            )
        } else {
            None
        };
        let signed = record
            .bytes
            .windows(b"<ds:Signature".len())
            .any(|w| w == b"<ds:Signature");
        Ok(Some(IndexEntry {
            file: name,
            message_id: id.to_string(),
            direction: direction.to_string(),
            kind: summary.header.kind.to_string(),
            sender: summary.header.sender.to_string(),
            receiver: summary.header.receiver.to_string(),
            correlation_id: summary.header.correlation_id.map(|c| c.to_string()),
            state: summary.state.to_string(),
            first_seen: rfc3339(summary.first_seen),
            updated_at: rfc3339(summary.updated_at),
            bytes: record.bytes.len(),
            signed,
            history,
        }))
    }

    /// Adds the certificates to verify with: the hub's own, and every partner's from the trust
    /// store, under `certificates/<CC>/`.
    pub(crate) fn certificates(&mut self, config: &HubConfig) -> anyhow::Result<()> {
        let own = std::fs::read(&config.signing.certificate)
            .with_context(|| format!("reading {}", config.signing.certificate.display()))?;
        self.add(&format!("certificates/{}/own.pem", config.country), &own)?;
        if let Ok(states) = std::fs::read_dir(&config.signing.trust_dir) {
            for state in states.flatten() {
                let Ok(certs) = std::fs::read_dir(state.path()) else {
                    continue;
                };
                for cert in certs.flatten() {
                    let bytes = std::fs::read(cert.path())
                        .with_context(|| format!("reading {}", cert.path().display()))?;
                    let name = format!(
                        "certificates/{}/{}",
                        state.file_name().to_string_lossy(),
                        cert.file_name().to_string_lossy()
                    );
                    self.add(&name, &bytes)?;
                }
            }
        }
        Ok(())
    }

    /// Adds a file.
    pub(crate) fn add(&mut self, name: &str, bytes: &[u8]) -> anyhow::Result<()> {
        let mut header = tar::Header::new_gnu();
        header.set_size(u64::try_from(bytes.len()).unwrap_or(u64::MAX));
        header.set_mode(0o644);
        header.set_mtime(u64::try_from(OffsetDateTime::now_utc().unix_timestamp()).unwrap_or(0));
        header.set_cksum();
        self.builder
            .append_data(&mut header, name, bytes)
            .with_context(|| format!("adding {name} to the archive"))
    }

    /// Makes everything added so far durable: a crash after it leaves a readable archive holding
    /// at least those files.
    pub(crate) fn sync(&mut self) -> anyhow::Result<()> {
        self.builder
            .get_mut()
            .sync_data()
            .context("writing the archive to disk")
    }

    /// Ends the archive and makes it durable.
    pub(crate) fn finish(self) -> anyhow::Result<()> {
        self.builder
            .into_inner()
            .context("finishing the archive")?
            .sync_all()
            .context("writing the archive")
    }
}

/// Runs `aswctl export`.
pub fn run(args: &ExportArgs) -> anyhow::Result<Outcome> {
    let config = args.hub.load()?;
    let journal = open_journal(&config)?;
    let now = OffsetDateTime::now_utc();
    let since = args.since.resolve(now);
    let until = args.until.map_or(now, |u| u.resolve(now));
    let mut archive = Archive::create(&args.output, false)?;
    let mut index = Vec::new();
    for direction in [Direction::Outbound, Direction::Inbound] {
        let filter = Filter {
            direction: Some(direction),
            since: Some(since),
            until: Some(until),
            limit: u32::MAX,
            ..Filter::default()
        };
        for summary in journal.list(&filter).context("listing the journal")? {
            if let Some(entry) = archive.message(journal.as_ref(), &summary, false)? {
                index.push(entry);
            }
        }
    }
    archive.certificates(&config)?;
    let json = serde_json::to_vec_pretty(&serde_json::json!({
        "country": config.country.code(),
        "since": rfc3339(since),
        "until": rfc3339(until),
        "messages": index,
    }))?;
    archive.add("index.json", &json)?;
    archive.finish()?;
    println!(
        "{}: {} message(s) from {} to {}",
        args.output.display(),
        index.len(),
        rfc3339(since),
        rfc3339(until)
    );
    Ok(Outcome::Success)
}
