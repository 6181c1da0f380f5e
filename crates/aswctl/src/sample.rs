//! `aswctl sample`: print a valid unsigned sample document: an ASW message, or a bare e-Phyto
//! certificate or acknowledgement (valid against the IPPC ePhyto Hub's schema).

use std::io::Write;

use anyhow::Context;
use asw_model::kinds::KindRegistry;
use asw_model::partners::{Partner, PartnerTable};
use asw_model::sample::{self, SampleSpec};
use asw_model::sps::{self, Country, EphytoSpec};
use asw_model::{DocumentKind, MemberState};
use time::OffsetDateTime;

use crate::Outcome;

/// Arguments of `aswctl sample`.
#[derive(Debug, clap::Args)]
pub struct SampleArgs {
    /// Document kind: formd, acdd, formd-ack, acdd-ack, formd-status, acdd-response (ASW
    /// messages), ephyto or ephyto-ack (bare UN/CEFACT SPS certificate and acknowledgement;
    /// in the ASW envelope with `--asw`), or any kind of `--kinds`.
    kind: String,
    /// Sending member state (ISO 3166 alpha-2).
    ///
    /// For ephyto and ephyto-ack: any partner of `schemas/partners.toml` that exchanges e-Phyto
    /// (KR included).
    #[arg(long, value_parser = parse_code)]
    from: String,
    /// Receiving member state (ISO 3166 alpha-2).
    #[arg(long, value_parser = parse_code)]
    to: String,
    /// Number of items of an e-Form D or ACDD, of commodities of an e-Phyto.
    #[arg(long, default_value_t = 3, value_parser = clap::value_parser!(u32).range(1..=100_000))]
    items: u32,
    /// Size of an e-Phyto's PDF attachment in KiB (0: none).
    #[arg(long, default_value_t = 300, value_parser = clap::value_parser!(u32).range(0..=8192))]
    attachment_kib: u32,
    /// Seed: the same seed gives the same document. Without it, ids and times are fresh.
    #[arg(long)]
    seed: Option<u64>,
    /// A kinds directory (a deployment's `schemas/kinds/`) whose kinds join the shipped ones.
    #[arg(long)]
    kinds: Option<std::path::PathBuf>,
    /// ephyto and ephyto-ack: the ASW message carrying the certificate or acknowledgement.
    #[arg(long)]
    asw: bool,
    /// For a kind described only as data: the body (its root element) to put in the envelope.
    #[arg(long)]
    body: Option<std::path::PathBuf>,
}

/// What `aswctl sample` can make.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SampleKind {
    /// An ASW message of this kind.
    Asw(DocumentKind),
    /// A bare SPS certificate (kind `ephyto`).
    Ephyto,
    /// A bare SPS acknowledgement (kind `ephyto-ack`), of the certificate the same seed makes.
    EphytoAck,
}

fn parse_sample_kind(s: &str, asw: bool) -> Result<SampleKind, String> {
    match s {
        "ephyto" if !asw => Ok(SampleKind::Ephyto),
        "ephyto-ack" if !asw => Ok(SampleKind::EphytoAck),
        _ => parse_kind(s)
            .map(SampleKind::Asw)
            .map_err(|e| format!("{e}, ephyto, ephyto-ack")),
    }
}

/// Parses a document kind for clap.
pub fn parse_kind(s: &str) -> Result<DocumentKind, String> {
    s.parse().map_err(|_| {
        let names: Vec<_> = DocumentKind::all().iter().map(|k| k.as_str()).collect();
        format!("expected one of {}", names.join(", "))
    })
}

/// Upper-cases a country code for clap; which codes a kind takes is checked by [`run`].
fn parse_code(s: &str) -> Result<String, String> {
    Ok(s.to_ascii_uppercase())
}

/// Parses the code of an enabled partner (as shipped: the ten ASEAN member states).
pub fn parse_state(s: &str) -> Result<MemberState, String> {
    s.parse()
        .ok()
        .filter(|state: &MemberState| state.enabled())
        .ok_or_else(|| {
            let codes: Vec<_> = MemberState::all().map(MemberState::code).collect();
            format!(
                "not an ASW member state; expected one of {}",
                codes.join(" ")
            )
        })
}

/// Runs `aswctl sample`.
pub fn run(args: &SampleArgs) -> anyhow::Result<Outcome> {
    if let Some(dir) = &args.kinds {
        asw_schema::install_kinds(dir)
            .with_context(|| format!("installing the kinds of {}", dir.display()))?;
    }
    let sample_kind = parse_sample_kind(&args.kind, args.asw)
        .map_err(|e| anyhow::anyhow!("{}: {e}", args.kind))?;
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
    let kind = match sample_kind {
        SampleKind::Asw(kind) => kind,
        SampleKind::Ephyto | SampleKind::EphytoAck => return ephyto(args, seed, created_at),
    };
    // An e-Phyto in the envelope goes to any partner that exchanges e-Phyto (KR included), as
    // the bare one does; the other kinds between enabled partners.
    let party = |code: &str| -> anyhow::Result<MemberState> {
        if [DocumentKind::Ephyto, DocumentKind::EphytoAck].contains(&kind) {
            let partner = ephyto_partner(code)?;
            return MemberState::from_alpha2(&partner.code)
                .with_context(|| format!("{code} is not a known partner"));
        }
        parse_state(code).map_err(|e| anyhow::anyhow!("{e}"))
    };
    let from = party(&args.from).with_context(|| format!("--from {}", args.from))?;
    let to = party(&args.to).with_context(|| format!("--to {}", args.to))?;
    let spec = SampleSpec {
        kind,
        from,
        to,
        items: args.items,
        seed,
        created_at,
    };
    let mut message = sample::message(&spec);
    let typed = DocumentKind::ALL.contains(&kind)
        || [DocumentKind::Ephyto, DocumentKind::EphytoAck].contains(&kind);
    if let Some(file) = &args.body {
        let xml = std::fs::read_to_string(file)
            .with_context(|| format!("reading the body {}", file.display()))?;
        message.document =
            asw_model::document::Document::Xml(asw_model::document::XmlBody { kind, xml });
    } else if !typed {
        anyhow::bail!("no sample is built in for kind {kind}: give its body with --body FILE");
    }
    let xml = message.to_xml().context("serialising the sample")?;
    std::io::stdout()
        .lock()
        .write_all(xml.as_bytes())
        .context("writing to stdout")?;
    Ok(Outcome::Success)
}

/// The row of a partner that exchanges e-Phyto in the shipped `schemas/partners.toml`.
fn ephyto_partner(code: &str) -> anyhow::Result<Partner> {
    let kinds = KindRegistry::shipped().context("reading the shipped kinds")?;
    let partners = PartnerTable::shipped(&kinds).context("reading the shipped partners")?;
    let exchanging: Vec<&str> = partners
        .iter()
        .filter(|p| p.channel_for("ephyto").is_some())
        .map(|p| p.code.as_str())
        .collect();
    partners
        .get(code)
        .filter(|p| p.channel_for("ephyto").is_some())
        .cloned()
        .ok_or_else(|| {
            anyhow::anyhow!(
                "{code} exchanges no e-Phyto in schemas/partners.toml; expected one of {}",
                exchanging.join(" ")
            )
        })
}

/// Prints a bare e-Phyto certificate, or the acknowledgement of the one the same seed makes
/// (sent by `--from`, the importing side, to `--to`, which issued the certificate).
fn ephyto(args: &SampleArgs, seed: u64, created_at: OffsetDateTime) -> anyhow::Result<Outcome> {
    let (from, to) = (ephyto_partner(&args.from)?, ephyto_partner(&args.to)?);
    fn country(p: &Partner) -> Country<'_> {
        Country {
            code: p.code.as_str(),
            name: p.name.as_str(),
        }
    }
    let acknowledging = args.kind == "ephyto-ack";
    let (exporter, importer) = if acknowledging {
        (&to, &from)
    } else {
        (&from, &to)
    };
    // With a seed the certificate is the one `sample ephyto` makes with that seed, and the
    // acknowledgement an hour later; without, the acknowledgement is now.
    let (issued_at, acknowledged_at) = match (acknowledging, args.seed) {
        (true, None) => (created_at - time::Duration::hours(1), created_at),
        _ => (created_at, created_at + time::Duration::hours(1)),
    };
    let spec = EphytoSpec {
        exporter: country(exporter),
        importer: country(importer),
        commodities: args.items,
        attachment_bytes: usize::try_from(args.attachment_kib).unwrap_or(0) * 1024,
        seed,
        issued_at,
    };
    let xml = if acknowledging {
        sps::acknowledgement(&sps::certificate_number(&spec), issued_at, acknowledged_at)
    } else {
        sps::certificate(&spec)
    };
    std::io::stdout()
        .lock()
        .write_all(xml.as_bytes())
        .context("writing to stdout")?;
    Ok(Outcome::Success)
}
