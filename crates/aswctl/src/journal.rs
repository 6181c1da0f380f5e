//! `aswctl journal archive --before T -o FILE`: keeps the journal bounded over the years. The
//! settled messages last updated before `T` (delivered, acknowledged, rejected, discarded, and our
//! answers that await nothing) go into a tar archive laid out like `aswctl export`'s, with their
//! exact bytes and their history, and only then leave the journal. A message still in flight, or
//! one an operator is to act on (`failed`), never leaves it.

use std::path::PathBuf;

use anyhow::Context;
use asw_journal::{Direction, Filter, Removal, State};
use asw_model::DocumentKind;
use time::OffsetDateTime;

use crate::Outcome;
use crate::export::Archive;
use crate::operator::{HubOptions, open_journal};
use crate::when::{When, rfc3339};

/// Arguments of `aswctl journal`.
#[derive(Debug, clap::Args)]
pub struct JournalArgs {
    #[command(subcommand)]
    command: JournalCommand,
}

#[derive(Debug, clap::Subcommand)]
enum JournalCommand {
    /// Move settled messages last updated before a date into an archive file, then out of the journal.
    Archive(ArchiveArgs),
}

/// Arguments of `aswctl journal archive`.
#[derive(Debug, clap::Args)]
struct ArchiveArgs {
    #[command(flatten)]
    hub: HubOptions,
    /// Archive what was last updated before this instant: RFC 3339 or a duration ago (`365d`).
    #[arg(long, value_name = "T")]
    before: When,
    /// The tar archive to write; it must not exist yet.
    #[arg(long, short, value_name = "FILE")]
    output: PathBuf,
    /// Messages per step: each step is written to the archive and made durable, then removed
    /// from the journal in one transaction.
    #[arg(long, default_value_t = 1000, value_parser = clap::value_parser!(u32).range(1..=100_000))]
    batch: u32,
}

/// Runs `aswctl journal ...`.
pub fn run(args: &JournalArgs) -> anyhow::Result<Outcome> {
    match &args.command {
        JournalCommand::Archive(args) => archive(args),
    }
}

/// The listings that together give every settled message: a state in a direction, narrowed to
/// one kind where settling depends on the kind.
fn settled_listings() -> Vec<(Direction, State, Option<DocumentKind>)> {
    let mut listings = Vec::new();
    for direction in Direction::ALL {
        for state in direction.states() {
            let kinds: Vec<DocumentKind> = DocumentKind::all()
                .into_iter()
                .filter(|k| state.settled(direction, *k))
                .collect();
            if kinds.len() == DocumentKind::all().len() {
                listings.push((direction, state, None));
            } else {
                listings.extend(kinds.into_iter().map(|k| (direction, state, Some(k))));
            }
        }
    }
    listings
}

fn archive(args: &ArchiveArgs) -> anyhow::Result<Outcome> {
    let config = args.hub.load()?;
    let journal = open_journal(&config)?;
    let now = OffsetDateTime::now_utc();
    let before = args.before.resolve(now);
    let mut archive = Archive::create(&args.output, true)?;
    let (mut archived, mut removed, mut part) = (0usize, 0usize, 0u32);
    let mut parts = Vec::new();
    for (direction, state, kind) in settled_listings() {
        loop {
            let filter = Filter {
                direction: Some(direction),
                state: Some(state),
                kind,
                until: Some(before),
                limit: args.batch,
                ..Filter::default()
            };
            let listed = journal.list(&filter).context("listing the journal")?;
            if listed.is_empty() {
                break;
            }
            let mut index = Vec::with_capacity(listed.len());
            let mut removals = Vec::with_capacity(listed.len());
            for summary in &listed {
                if let Some(entry) = archive.message(journal.as_ref(), summary, true)? {
                    index.push(entry);
                    removals.push(Removal {
                        direction,
                        message_id: summary.header.message_id,
                        updated_at: summary.updated_at,
                    });
                }
            }
            part += 1;
            let name = format!("index/{part:06}.json");
            let json = serde_json::to_vec_pretty(&serde_json::json!({ "messages": index }))?;
            archive.add(&name, &json)?;
            parts.push(name);
            // Durable in the archive before it leaves the journal.
            archive.sync()?;
            let gone = journal
                .remove_settled(&removals)
                .context("removing the archived messages from the journal")?;
            archived += index.len();
            removed += gone;
            // What is listed again next is what this step could not remove (moved meanwhile,
            // say): stop rather than archive it twice.
            if gone == 0 {
                break;
            }
        }
    }
    archive.certificates(&config)?;
    let json = serde_json::to_vec_pretty(&serde_json::json!({
        "country": config.country.code(),
        "before": rfc3339(before),
        "archived_at": rfc3339(now),
        "messages": archived,
        "removed_from_journal": removed,
        "parts": parts,
    }))?;
    archive.add("index.json", &json)?;
    archive.finish()?;
    println!(
        "{}: {archived} message(s) last updated before {} archived, {removed} removed from the journal",
        args.output.display(),
        rfc3339(before),
    );
    if removed < archived {
        println!(
            "{} archived message(s) moved while being archived and stay in the journal too",
            archived - removed
        );
    }
    Ok(Outcome::Success)
}
