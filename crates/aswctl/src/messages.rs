//! `aswctl messages list | show | trace`: what the journal knows about every message in and out,
//! and the whole conversation of a document (an e-Form D, its receipt and its status; an ACDD
//! and its Customs Response), matched by correlation id.

use anyhow::{Context, bail};
use asw_journal::{Direction, Filter, Journal, MessageRecord, MessageSummary, State};
use asw_model::{DocumentKind, MemberState};
use serde::Serialize;
use time::OffsetDateTime;
use uuid::Uuid;

use crate::Outcome;
use crate::operator::{Format, HubOptions, open_journal, print_json};
use crate::report::{
    DocumentView, HistoryView, SummaryView, history_table, print_document, print_lines, section,
    summary_lines, write_bytes,
};
use crate::table::{Table, or_dash};
use crate::when::{Age, When, short};

/// Arguments of `aswctl messages`.
#[derive(Debug, clap::Args)]
pub struct MessagesArgs {
    #[command(subcommand)]
    command: MessagesCommand,
}

#[derive(Debug, clap::Subcommand)]
enum MessagesCommand {
    /// List journaled messages, oldest update first.
    List(ListArgs),
    /// Show one message: its journal record, history and bytes.
    Show(ShowArgs),
    /// Show a document's whole conversation (the original and every answer), in time order.
    Trace(TraceArgs),
}

#[derive(Debug, clap::Args)]
struct ListArgs {
    #[command(flatten)]
    hub: HubOptions,
    /// Only this direction (inbound, outbound).
    #[arg(long, value_name = "DIRECTION")]
    direction: Option<Direction>,
    /// Only messages this member state sent or received.
    #[arg(long, value_name = "CC")]
    partner: Option<MemberState>,
    /// Only this document kind.
    #[arg(long, value_name = "KIND")]
    kind: Option<DocumentKind>,
    /// Only messages now in this state (received, signed, queued, sent, awaiting-ack,
    /// acknowledged, verified, delivered, rejected, failed, discarded).
    #[arg(long, value_name = "STATE")]
    state: Option<State>,
    /// Only messages last updated at or after T (RFC 3339, or a duration ago: 30m, 2h, 7d).
    #[arg(long, value_name = "T")]
    since: Option<When>,
    /// Only messages last updated before T (RFC 3339, or a duration ago).
    #[arg(long, value_name = "T")]
    until: Option<When>,
    /// Only messages not updated for at least D (30m, 2h, 7d): stuck ones, with --state.
    #[arg(long, value_name = "D")]
    older_than: Option<Age>,
    /// Newest first.
    #[arg(long)]
    newest_first: bool,
    /// At most this many messages.
    #[arg(long, default_value_t = Filter::DEFAULT_LIMIT)]
    limit: u32,
}

#[derive(Debug, clap::Args)]
struct ShowArgs {
    #[command(flatten)]
    hub: HubOptions,
    /// The message id.
    #[arg(value_name = "ID")]
    id: Uuid,
    /// Only the message of this direction (the same id may be journaled both ways).
    #[arg(long, value_name = "DIRECTION")]
    direction: Option<Direction>,
    /// Write only the exact journaled bytes to stdout (outbound: the signed document once signed).
    #[arg(long, conflicts_with = "format")]
    document: bool,
}

#[derive(Debug, clap::Args)]
struct TraceArgs {
    #[command(flatten)]
    hub: HubOptions,
    /// The id of any message of the conversation.
    #[arg(value_name = "ID")]
    id: Uuid,
}

/// Runs `aswctl messages`.
pub fn run(args: &MessagesArgs) -> anyhow::Result<Outcome> {
    match &args.command {
        MessagesCommand::List(a) => list(a),
        MessagesCommand::Show(a) => show(a),
        MessagesCommand::Trace(a) => trace(a),
    }
}

fn list(args: &ListArgs) -> anyhow::Result<Outcome> {
    let config = args.hub.load()?;
    let journal = open_journal(&config)?;
    let now = OffsetDateTime::now_utc();
    let until = [
        args.until.map(|u| u.resolve(now)),
        args.older_than.map(|Age(d)| now - d),
    ]
    .into_iter()
    .flatten()
    .min();
    let filter = Filter {
        direction: args.direction,
        kind: args.kind,
        partner: args.partner,
        state: args.state,
        since: args.since.map(|s| s.resolve(now)),
        until,
        newest_first: args.newest_first,
        limit: args.limit,
        ..Filter::default()
    };
    let messages = journal.list(&filter).context("listing the journal")?;
    match args.hub.format {
        Format::Json => {
            print_json(&messages.iter().map(SummaryView::from).collect::<Vec<_>>())?;
        }
        Format::Table => {
            let mut table = Table::new(&[
                "UPDATED AT",
                "DIRECTION",
                "STATE",
                "KIND",
                "FROM",
                "TO",
                "MESSAGE ID",
                "ATTEMPTS",
                "REASON",
            ]);
            for m in &messages {
                table.push(vec![
                    short(m.updated_at),
                    m.direction.to_string(),
                    m.state.to_string(),
                    m.header.kind.to_string(),
                    m.header.sender.to_string(),
                    m.header.receiver.to_string(),
                    m.header.message_id.to_string(),
                    m.attempts.to_string(),
                    m.reason
                        .as_ref()
                        .map(|r| r.text.clone())
                        .unwrap_or_default(),
                ]);
            }
            print!("{}", table.render());
            println!("{} message(s)", messages.len());
            if u32::try_from(messages.len()).unwrap_or(u32::MAX) >= args.limit {
                eprintln!("aswctl: the listing stops at --limit {}", args.limit);
            }
        }
    }
    Ok(Outcome::Success)
}

/// The records under `id`, of `direction` or both.
fn records(
    journal: &dyn Journal,
    id: Uuid,
    direction: Option<Direction>,
) -> anyhow::Result<Vec<MessageRecord>> {
    asw_console::query::records(journal, id, direction)
        .with_context(|| format!("reading message {id}"))
}

/// What `show` and `trace` call a message's channel reference ([`MessageSummary::transport_ref`]):
/// the only channel that gives one is the IPPC ePhyto Hub, with its delivery number.
const TRANSPORT_REF_LABEL: &str = "hub delivery number";

/// A message in full, as JSON.
#[derive(Debug, Serialize)]
struct MessageDetail {
    #[serde(flatten)]
    summary: SummaryView,
    /// The channel's reference (the IPPC hub's delivery number), if it gave one.
    #[serde(skip_serializing_if = "Option::is_none")]
    transport_ref: Option<String>,
    history: Vec<HistoryView>,
    document: DocumentView,
}

/// A message of a conversation, as JSON.
#[derive(Debug, Serialize)]
struct TraceEntry {
    #[serde(flatten)]
    summary: SummaryView,
    /// The channel's reference (the IPPC hub's delivery number), if it gave one.
    #[serde(skip_serializing_if = "Option::is_none")]
    transport_ref: Option<String>,
}

fn show(args: &ShowArgs) -> anyhow::Result<Outcome> {
    let config = args.hub.load()?;
    let journal = open_journal(&config)?;
    let found = records(&*journal, args.id, args.direction)?;
    if found.is_empty() {
        eprintln!("aswctl: {} is not in the journal", args.id);
        return Ok(Outcome::Failed);
    }
    if args.document {
        if found.len() > 1 {
            bail!("{} is journaled both ways: give --direction", args.id);
        }
        write_bytes(&found[0].bytes)?;
        return Ok(Outcome::Success);
    }
    let mut details = Vec::new();
    for record in &found {
        let s = &record.summary;
        let history = journal
            .history(s.direction, s.header.message_id)
            .context("reading the journal history")?;
        details.push((record, history));
    }
    match args.hub.format {
        Format::Json => {
            let json: Vec<MessageDetail> = details
                .iter()
                .map(|(r, h)| MessageDetail {
                    summary: SummaryView::from(&r.summary),
                    transport_ref: r.summary.transport_ref.clone(),
                    history: h.iter().map(HistoryView::from).collect(),
                    document: DocumentView::of(&r.bytes),
                })
                .collect();
            print_json(&json)?;
        }
        Format::Table => {
            for (n, (record, history)) in details.iter().enumerate() {
                if n > 0 {
                    println!("\n{}", "=".repeat(72));
                }
                let mut lines = summary_lines(&record.summary);
                if let Some(reference) = &record.summary.transport_ref {
                    lines.push((TRANSPORT_REF_LABEL, reference.clone()));
                }
                print_lines(&lines);
                section("history");
                print!("{}", history_table(history).render());
                print_document(&record.bytes);
            }
        }
    }
    Ok(Outcome::Success)
}

fn trace(args: &TraceArgs) -> anyhow::Result<Outcome> {
    let config = args.hub.load()?;
    let journal = open_journal(&config)?;
    let Some(conversation) = conversation(&*journal, args.id)? else {
        eprintln!("aswctl: {} is not in the journal", args.id);
        return Ok(Outcome::Failed);
    };
    match args.hub.format {
        Format::Json => {
            print_json(
                &conversation
                    .iter()
                    .map(|m| TraceEntry {
                        summary: SummaryView::from(m),
                        transport_ref: m.transport_ref.clone(),
                    })
                    .collect::<Vec<_>>(),
            )?;
        }
        Format::Table => {
            // The channel reference's column only where a message of the conversation has one.
            let referenced = conversation.iter().any(|m| m.transport_ref.is_some());
            let mut columns = vec![
                "FIRST SEEN",
                "DIRECTION",
                "KIND",
                "FROM",
                "TO",
                "STATE",
                "MESSAGE ID",
                "IN ANSWER TO",
            ];
            if referenced {
                columns.push("HUB DELIVERY NUMBER");
            }
            columns.push("REASON");
            let mut table = Table::new(&columns);
            for m in &conversation {
                let marker = if m.header.message_id == args.id {
                    "*"
                } else {
                    ""
                };
                let mut row = vec![
                    short(m.first_seen),
                    m.direction.to_string(),
                    m.header.kind.to_string(),
                    m.header.sender.to_string(),
                    m.header.receiver.to_string(),
                    m.state.to_string(),
                    format!("{}{marker}", m.header.message_id),
                    or_dash(m.header.correlation_id),
                ];
                if referenced {
                    row.push(or_dash(m.transport_ref.as_deref()));
                }
                row.push(
                    m.reason
                        .as_ref()
                        .map(|r| r.text.clone())
                        .unwrap_or_default(),
                );
                table.push(row);
            }
            print!("{}", table.render());
        }
    }
    Ok(Outcome::Success)
}

/// Every message of the conversation `id` belongs to, in time order; `None` if `id` is not
/// journaled.
fn conversation(journal: &dyn Journal, id: Uuid) -> anyhow::Result<Option<Vec<MessageSummary>>> {
    asw_console::query::conversation(journal, id).context("following the conversation")
}
