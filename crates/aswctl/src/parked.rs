//! `aswctl parked list | show | discard`: what is in the parking lot `asw.parked`, why, and what
//! the journal says about it; and discarding what should never be sent or delivered.
//! (`aswctl replay` puts parked messages back.)

use std::collections::BTreeMap;

use anyhow::{Context, anyhow};
use asw_amqp::HeaderValue;
use asw_gateway::config::HubConfig;
use asw_journal::{Journal, Reason, TransitionRecord};
use base64::Engine;
use serde::Serialize;
use time::OffsetDateTime;

use crate::Outcome;
use crate::operator::{Format, HubOptions, actor, open_journal, print_json, runtime};
use crate::parking::{
    InJournal, Parked, ParkedFilter, ParkingLot, Target, release, warn_if_partial,
};
use crate::report::{
    DocumentView, HistoryView, SummaryView, history_table, print_document, print_lines, section,
    write_bytes,
};
use crate::table::{Table, or_dash};
use crate::when::{rfc3339, short};
pub use asw_console::settle::Settled;
use asw_console::settle::{discard_one, unmatched};

/// Default and largest number of parked messages a command reads.
pub const DEFAULT_LIMIT: u32 = 1000;

/// Arguments of `aswctl parked`.
#[derive(Debug, clap::Args)]
pub struct ParkedArgs {
    #[command(subcommand)]
    command: ParkedCommand,
}

#[derive(Debug, clap::Subcommand)]
enum ParkedCommand {
    /// List what is parked: message id, kind, partner, stage, reason, attempts, when, journal state.
    List(ListArgs),
    /// Show parked messages in full: headers, reason, journal history and the document.
    Show(ShowArgs),
    /// Discard parked messages for good: journaled with who and why, then removed from the lot.
    Discard(DiscardArgs),
}

#[derive(Debug, clap::Args)]
struct ListArgs {
    #[command(flatten)]
    hub: HubOptions,
    #[command(flatten)]
    filter: ParkedFilter,
    /// Read at most this many parked messages.
    #[arg(long, default_value_t = DEFAULT_LIMIT, value_parser = clap::value_parser!(u32).range(1..=65535))]
    limit: u32,
}

#[derive(Debug, clap::Args)]
struct ShowArgs {
    #[command(flatten)]
    hub: HubOptions,
    /// Message id, or sha256:PREFIX for a parked message without one.
    #[arg(value_name = "ID")]
    target: Target,
    /// Write only the exact parked bytes to stdout (to fix them, or to hand them over).
    #[arg(long, conflicts_with = "format")]
    document: bool,
    /// Read at most this many parked messages.
    #[arg(long, default_value_t = DEFAULT_LIMIT, value_parser = clap::value_parser!(u32).range(1..=65535))]
    limit: u32,
}

#[derive(Debug, clap::Args)]
struct DiscardArgs {
    #[command(flatten)]
    hub: HubOptions,
    /// Message ids, or sha256:PREFIX for parked messages without one.
    #[arg(value_name = "ID", required = true)]
    targets: Vec<Target>,
    /// Why they are discarded (journaled).
    #[arg(long, value_name = "TEXT")]
    reason: String,
    /// Who discards them (journaled); default $USER.
    #[arg(long, value_name = "NAME")]
    actor: Option<String>,
    /// Read at most this many parked messages.
    #[arg(long, default_value_t = DEFAULT_LIMIT, value_parser = clap::value_parser!(u32).range(1..=65535))]
    limit: u32,
}

/// Runs `aswctl parked`.
pub fn run(args: &ParkedArgs) -> anyhow::Result<Outcome> {
    match &args.command {
        ParkedCommand::List(a) => list(a),
        ParkedCommand::Show(a) => show(a),
        ParkedCommand::Discard(a) => discard(a),
    }
}

/// A parked message as JSON (`parked list`).
#[derive(Debug, Serialize)]
struct ParkedView {
    /// The message id, or `sha256:` and the start of the digest.
    reference: String,
    message_id: Option<String>,
    stage: Option<String>,
    kind: Option<&'static str>,
    sender: Option<&'static str>,
    receiver: Option<&'static str>,
    partner: Option<&'static str>,
    reason_code: Option<String>,
    reason: Option<String>,
    attempts: Option<i64>,
    parked_at: Option<String>,
    #[serde(skip)]
    parked_at_utc: Option<OffsetDateTime>,
    routing_key: Option<String>,
    transport_user: Option<String>,
    /// State in the journal: a state, `other:<state>` (another document holds the id),
    /// `not-recorded`, or `-` (no id).
    journal: String,
    broker_deliveries: Option<i64>,
    sha256: String,
}

impl ParkedView {
    fn of(p: &Parked, config: &HubConfig, journal: &InJournal) -> ParkedView {
        ParkedView {
            reference: p.reference(),
            message_id: p.message_id.map(|i| i.to_string()),
            stage: p.stage.clone(),
            kind: p.kind().map(|k| k.as_str()),
            sender: p.header.as_ref().map(|h| h.sender.code()),
            receiver: p.header.as_ref().map(|h| h.receiver.code()),
            partner: p.partner(config.country).map(|s| s.code()),
            reason_code: p.reason_code.clone(),
            reason: p.reason.clone(),
            attempts: p.attempts,
            parked_at: p.parked_at.map(rfc3339),
            parked_at_utc: p.parked_at,
            routing_key: p.routing_key.clone(),
            transport_user: p.transport_user.clone(),
            journal: journal.label(),
            broker_deliveries: p.broker_deliveries,
            sha256: p.sha256.clone(),
        }
    }
}

fn list(args: &ListArgs) -> anyhow::Result<Outcome> {
    let config = args.hub.load()?;
    let journal = open_journal(&config)?;
    let now = OffsetDateTime::now_utc();
    let views = runtime()?.block_on(async {
        let lot = crate::parking::read(
            &config.broker.urls,
            &config.broker.tls.load("broker")?,
            args.limit,
            &config.limits.document,
        )
        .await?;
        // On a thread of its own: the PostgreSQL journal's client blocks on a runtime of its
        // own, which cannot start inside this one.
        let views = std::thread::scope(|s| {
            s.spawn(|| views(&lot, &*journal, &config, &args.filter, now))
                .join()
                .unwrap_or_else(|panic| std::panic::resume_unwind(panic))
        });
        warn_if_partial(&lot, args.limit);
        release(lot).await;
        views
    })?;
    match args.hub.format {
        Format::Json => print_json(&views)?,
        Format::Table => {
            let mut table = Table::new(&[
                "MESSAGE ID",
                "STAGE",
                "KIND",
                "PARTNER",
                "CODE",
                "ATTEMPTS",
                "PARKED AT",
                "JOURNAL",
                "REASON",
            ]);
            for v in &views {
                table.push(vec![
                    v.reference.clone(),
                    or_dash(v.stage.as_deref()),
                    or_dash(v.kind),
                    or_dash(v.partner),
                    or_dash(v.reason_code.as_deref()),
                    or_dash(v.attempts),
                    or_dash(v.parked_at_utc.map(short)),
                    v.journal.clone(),
                    v.reason.clone().unwrap_or_default(),
                ]);
            }
            print!("{}", table.render());
            println!("{} parked message(s)", views.len());
        }
    }
    Ok(Outcome::Success)
}

fn views(
    lot: &ParkingLot,
    journal: &dyn Journal,
    config: &HubConfig,
    filter: &ParkedFilter,
    now: OffsetDateTime,
) -> anyhow::Result<Vec<ParkedView>> {
    lot.messages()
        .filter(|(_, p)| filter.passes(p, config.country, now))
        .map(|(_, p)| Ok(ParkedView::of(p, config, &InJournal::of(journal, p)?)))
        .collect()
}

/// A parked message in full, as JSON (`parked show`).
#[derive(Debug, Serialize)]
struct ParkedDetail {
    #[serde(flatten)]
    parked: ParkedView,
    headers: BTreeMap<String, serde_json::Value>,
    /// The journal record under the id, if any (`journal` says whether it is this message).
    journal_record: Option<SummaryView>,
    history: Vec<HistoryView>,
    document: DocumentView,
}

fn show(args: &ShowArgs) -> anyhow::Result<Outcome> {
    let config = args.hub.load()?;
    let journal = open_journal(&config)?;
    let found = runtime()?.block_on(async {
        let lot = crate::parking::read(
            &config.broker.urls,
            &config.broker.tls.load("broker")?,
            args.limit,
            &config.limits.document,
        )
        .await?;
        let found: Vec<Parked> = lot
            .messages()
            .filter(|(_, p)| p.is(&args.target))
            .map(|(_, p)| p.clone())
            .collect();
        warn_if_partial(&lot, args.limit);
        release(lot).await;
        anyhow::Ok(found)
    })?;
    if found.is_empty() {
        eprintln!("aswctl: {} is not in asw.parked", args.target);
        return Ok(Outcome::Failed);
    }
    if args.document {
        if found.len() > 1 {
            return Err(anyhow!(
                "{} parked messages match {}: name one by sha256:PREFIX",
                found.len(),
                args.target
            ));
        }
        write_bytes(&found[0].body)?;
        return Ok(Outcome::Success);
    }
    let mut details = Vec::new();
    for p in &found {
        let in_journal = InJournal::of(&*journal, p)?;
        let history = match in_journal.summary() {
            Some(s) => journal
                .history(s.direction, s.header.message_id)
                .context("reading the journal history")?,
            None => Vec::new(),
        };
        details.push((p, in_journal, history));
    }
    match args.hub.format {
        Format::Json => {
            let json: Vec<ParkedDetail> = details
                .iter()
                .map(|(p, in_journal, history)| ParkedDetail {
                    parked: ParkedView::of(p, &config, in_journal),
                    headers: p
                        .properties
                        .headers
                        .iter()
                        .map(|(k, v)| (k.clone(), header_json(v)))
                        .collect(),
                    journal_record: in_journal.summary().map(SummaryView::from),
                    history: history.iter().map(HistoryView::from).collect(),
                    document: DocumentView::of(&p.body),
                })
                .collect();
            print_json(&json)?;
        }
        Format::Table => {
            for (n, (p, in_journal, history)) in details.iter().enumerate() {
                if n > 0 {
                    println!("\n{}", "=".repeat(72));
                }
                print_parked(p, &config, in_journal, history);
            }
        }
    }
    Ok(Outcome::Success)
}

fn print_parked(
    p: &Parked,
    config: &HubConfig,
    in_journal: &InJournal,
    history: &[TransitionRecord],
) {
    let mut lines = vec![("message id", p.reference())];
    lines.push(("stage", or_dash(p.stage.as_deref())));
    if let Some(h) = &p.header {
        lines.push(("kind", h.kind.to_string()));
        lines.push((
            "sender -> receiver",
            format!("{} -> {}", h.sender, h.receiver),
        ));
    } else {
        lines.push(("kind", "- (the envelope header cannot be read)".into()));
    }
    lines.extend([
        ("partner", or_dash(p.partner(config.country))),
        ("reason code", or_dash(p.reason_code.as_deref())),
        ("reason", or_dash(p.reason.as_deref())),
        ("attempts", or_dash(p.attempts)),
        ("parked at", or_dash(p.parked_at.map(rfc3339))),
        ("routing key", or_dash(p.routing_key.as_deref())),
        ("published by", or_dash(p.transport_user.as_deref())),
        ("sha256", p.sha256.clone()),
        ("journal", journal_note(in_journal)),
    ]);
    print_lines(&lines);
    section("headers");
    let headers: Vec<(&str, String)> = p
        .properties
        .headers
        .iter()
        .map(|(k, v)| (k.as_str(), header_text(v)))
        .collect();
    print_lines(&headers);
    if let Some(s) = in_journal.summary() {
        section(&format!(
            "journal history ({} {})",
            s.direction, s.header.message_id
        ));
        print!("{}", history_table(history).render());
    }
    print_document(&p.body);
}

/// What the journal holds under the id, in a sentence.
fn journal_note(in_journal: &InJournal) -> String {
    match in_journal {
        InJournal::NoKey => "- (no message id)".into(),
        InJournal::NotRecorded => {
            "not recorded (refused before it was journaled, e.g. its signature did not verify)"
                .into()
        }
        InJournal::Same(s) => format!("{} (this document)", s.state),
        InJournal::Other(s) => format!(
            "{} (a different document holds this id: sha256 {})",
            s.state,
            s.digest_hex()
        ),
    }
}

/// A header for people: the bus envelope as `field=value` pairs, other bytes by their length.
fn header_text(value: &HeaderValue) -> String {
    use serde_json::Value;
    match (value, header_json(value)) {
        (HeaderValue::Str(s), _) => s.clone(),
        (HeaderValue::Bytes(_), Value::Object(envelope)) => envelope
            .iter()
            .filter(|(_, v)| !matches!(v, Value::String(s) if s.is_empty()))
            .map(|(k, v)| match v {
                Value::String(s) => format!("{k}={s}"),
                other => format!("{k}={other}"),
            })
            .collect::<Vec<_>>()
            .join(" "),
        (HeaderValue::Bytes(b), _) => format!("({} bytes)", b.len()),
        (_, json) => json.to_string(),
    }
}

/// A header as JSON: the bus envelope decoded, other bytes in base64.
fn header_json(value: &HeaderValue) -> serde_json::Value {
    use serde_json::Value;
    match value {
        HeaderValue::Str(s) => Value::String(s.clone()),
        HeaderValue::Int(i) => Value::from(*i),
        HeaderValue::Bool(b) => Value::Bool(*b),
        HeaderValue::Float(f) => Value::from(*f),
        HeaderValue::Bytes(b) => match asw_model::bus::BusEnvelope::from_bytes(b) {
            Ok(e) => serde_json::json!({
                "message_id": e.message_id,
                "stage": e.stage,
                "attempts": e.attempts,
                "first_seen_unix_ms": e.first_seen_unix_ms,
                "stage_started_unix_ms": e.stage_started_unix_ms,
                "signer": e.signer,
                "signer_fingerprint": e.signer_fingerprint,
                "reason_code": e.reason_code,
                "reason": e.reason,
            }),
            Err(_) => Value::String(base64::engine::general_purpose::STANDARD.encode(b)),
        },
        HeaderValue::Array(a) => Value::Array(a.iter().map(header_json).collect()),
        HeaderValue::Table(t) => {
            Value::Object(t.iter().map(|(k, v)| (k.clone(), header_json(v))).collect())
        }
        HeaderValue::Void => Value::Null,
    }
}

/// Prints settled items as a table or JSON; the exit outcome: 1 if a target was not parked.
pub fn print_settled(format: Format, settled: &[Settled]) -> anyhow::Result<Outcome> {
    for s in settled.iter().filter(|s| s.outcome == "error") {
        eprintln!("aswctl: {}: {}", s.target, s.detail);
    }
    match format {
        Format::Json => print_json(&settled)?,
        Format::Table => {
            let mut table =
                Table::new(&["MESSAGE ID", "DIRECTION", "OUTCOME", "JOURNAL", "DETAIL"]);
            for s in settled {
                table.push(vec![
                    s.target.clone(),
                    or_dash(s.direction),
                    s.outcome.to_owned(),
                    s.journal.clone(),
                    s.detail.clone(),
                ]);
            }
            print!("{}", table.render());
        }
    }
    let errors = settled.iter().filter(|s| s.outcome == "error").count();
    if errors > 0 {
        return Err(anyhow!("{errors} of {} failed (see above)", settled.len()));
    }
    Ok(if settled.iter().any(|s| s.outcome == "not-parked") {
        Outcome::Failed
    } else {
        Outcome::Success
    })
}

fn discard(args: &DiscardArgs) -> anyhow::Result<Outcome> {
    let config = args.hub.load()?;
    let journal = open_journal(&config)?;
    let actor = actor(args.actor.as_deref())?;
    let reason = Reason::new("DISCARDED", args.reason.clone());
    let settled = runtime()?.block_on(async {
        let mut lot = crate::parking::read(
            &config.broker.urls,
            &config.broker.tls.load("broker")?,
            args.limit,
            &config.limits.document,
        )
        .await?;
        warn_if_partial(&lot, args.limit);
        let mut settled = Vec::new();
        for target in &args.targets {
            let indexes: Vec<usize> = lot
                .messages()
                .filter(|(_, p)| p.is(target))
                .map(|(i, _)| i)
                .collect();
            if indexes.is_empty() {
                settled.push(unmatched(&*journal, target, "discard"));
            }
            for index in indexes {
                settled.push(discard_one(&mut lot, index, &*journal, &actor, &reason).await);
            }
        }
        release(lot).await;
        anyhow::Ok(settled)
    })?;
    print_settled(args.hub.format, &settled)
}
