//! `aswctl export --since T --until T -o FILE`: for auditors, the exact bytes of every message
//! the journal holds for a period (signed as received from partners, signed as sent by us), an
//! index, and the certificates to check the signatures with, in one tar archive. Every signed
//! message in it verifies with `xmlsec1 --verify --pubkey-cert-pem certificates/<CC>/...`.

use std::path::PathBuf;

use anyhow::Context;
use asw_journal::{Direction, Filter};
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
struct IndexEntry {
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
}

/// Runs `aswctl export`.
pub fn run(args: &ExportArgs) -> anyhow::Result<Outcome> {
    let config = args.hub.load()?;
    let journal = open_journal(&config)?;
    let now = OffsetDateTime::now_utc();
    let since = args.since.resolve(now);
    let until = args.until.map_or(now, |u| u.resolve(now));
    let file = std::fs::File::create(&args.output)
        .with_context(|| format!("cannot create {}", args.output.display()))?;
    let mut archive = tar::Builder::new(file);
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
            let id = summary.header.message_id;
            let Some(record) = journal.get(direction, id).context("reading the journal")? else {
                continue;
            };
            let name = format!(
                "messages/{}_{}_{}_{}.xml",
                rfc3339(summary.first_seen).replace(':', ""),
                direction,
                summary.header.kind,
                id
            );
            append(&mut archive, &name, &record.bytes)?;
            let signed = record
                .bytes
                .windows(b"<ds:Signature".len())
                .any(|w| w == b"<ds:Signature");
            index.push(IndexEntry {
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
            });
        }
    }
    // The certificates to verify with: ours, and every partner's from the trust store.
    let own = std::fs::read(&config.signing.certificate)
        .with_context(|| format!("reading {}", config.signing.certificate.display()))?;
    append(
        &mut archive,
        &format!("certificates/{}/own.pem", config.country),
        &own,
    )?;
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
                append(&mut archive, &name, &bytes)?;
            }
        }
    }
    let json = serde_json::to_vec_pretty(&serde_json::json!({
        "country": config.country.code(),
        "since": rfc3339(since),
        "until": rfc3339(until),
        "messages": index,
    }))?;
    append(&mut archive, "index.json", &json)?;
    archive
        .into_inner()
        .context("finishing the archive")?
        .sync_all()
        .context("writing the archive")?;
    println!(
        "{}: {} message(s) from {} to {}",
        args.output.display(),
        index.len(),
        rfc3339(since),
        rfc3339(until)
    );
    Ok(Outcome::Success)
}

fn append(
    archive: &mut tar::Builder<std::fs::File>,
    name: &str,
    bytes: &[u8],
) -> anyhow::Result<()> {
    let mut header = tar::Header::new_gnu();
    header.set_size(u64::try_from(bytes.len()).unwrap_or(u64::MAX));
    header.set_mode(0o644);
    header.set_mtime(u64::try_from(OffsetDateTime::now_utc().unix_timestamp()).unwrap_or(0));
    header.set_cksum();
    archive
        .append_data(&mut header, name, bytes)
        .with_context(|| format!("adding {name} to the archive"))
}
