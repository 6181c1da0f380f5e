//! `aswctl sample`: print a valid unsigned sample document.

use std::io::Write;

use anyhow::Context;
use asw_model::sample::{self, SampleSpec};
use asw_model::{DocumentKind, MemberState};
use time::OffsetDateTime;

use crate::Outcome;

/// Arguments of `aswctl sample`.
#[derive(Debug, clap::Args)]
pub struct SampleArgs {
    /// Document kind: formd, acdd, formd-ack, acdd-ack, formd-status or acdd-response.
    #[arg(value_parser = parse_kind)]
    kind: DocumentKind,
    /// Sending member state (ISO 3166 alpha-2).
    #[arg(long, value_parser = parse_state)]
    from: MemberState,
    /// Receiving member state (ISO 3166 alpha-2).
    #[arg(long, value_parser = parse_state)]
    to: MemberState,
    /// Number of items of an e-Form D or ACDD.
    #[arg(long, default_value_t = 3, value_parser = clap::value_parser!(u32).range(1..=100_000))]
    items: u32,
    /// Seed: the same seed gives the same document. Without it, ids and times are fresh.
    #[arg(long)]
    seed: Option<u64>,
}

/// Parses a document kind for clap.
pub fn parse_kind(s: &str) -> Result<DocumentKind, String> {
    s.parse().map_err(|_| {
        let names: Vec<_> = DocumentKind::ALL.iter().map(|k| k.as_str()).collect();
        format!("expected one of {}", names.join(", "))
    })
}

/// Parses a member state code for clap.
pub fn parse_state(s: &str) -> Result<MemberState, String> {
    s.parse().map_err(|_| {
        let codes: Vec<_> = MemberState::all().map(MemberState::code).collect();
        format!(
            "not an ASW member state; expected one of {}",
            codes.join(" ")
        )
    })
}

/// Runs `aswctl sample`.
pub fn run(args: &SampleArgs) -> anyhow::Result<Outcome> {
    if args.from == args.to {
        anyhow::bail!(
            "--from and --to are both {}: a document goes to another member state",
            args.from
        );
    }
    let (seed, created_at) = match args.seed {
        Some(seed) => (seed, SampleSpec::seeded_time(seed)),
        None => {
            let now = OffsetDateTime::now_utc();
            let now = now.replace_nanosecond(0).unwrap_or(now);
            (
                u64::try_from(now.unix_timestamp_nanos() % i128::from(u64::MAX)).unwrap_or(0)
                    ^ u64::from(std::process::id()),
                now,
            )
        }
    };
    let spec = SampleSpec {
        kind: args.kind,
        from: args.from,
        to: args.to,
        items: args.items,
        seed,
        created_at,
    };
    let xml = sample::message(&spec)
        .to_xml()
        .context("serialising the sample")?;
    std::io::stdout()
        .lock()
        .write_all(xml.as_bytes())
        .context("writing to stdout")?;
    Ok(Outcome::Success)
}
