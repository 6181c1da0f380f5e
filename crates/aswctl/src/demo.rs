//! `aswctl demo`: plays an exchange between two member states and prints it step by step.
//!
//! Until the hub daemon exists this runs in-process, without the broker: Viet Nam issues an
//! e-Form D for Thailand, both sides validate it, and Thailand answers with a receipt
//! acknowledgement and a status notification correlated to it.

use anyhow::{Context, bail};
use asw_model::document::{Document, Message};
use asw_model::sample::{self, SampleSpec};
use asw_model::{DocumentKind, Header, MemberState};
use asw_schema::Validator;
use time::OffsetDateTime;

use crate::Outcome;

/// Arguments of `aswctl demo`.
#[derive(Debug, clap::Args)]
pub struct DemoArgs {
    /// Exporting member state.
    #[arg(long, default_value = "VN", value_parser = crate::sample::parse_state)]
    from: MemberState,
    /// Importing member state.
    #[arg(long, default_value = "TH", value_parser = crate::sample::parse_state)]
    to: MemberState,
}

/// Runs `aswctl demo`.
pub fn run(args: &DemoArgs) -> anyhow::Result<Outcome> {
    if args.from == args.to {
        bail!("--from and --to are both {}", args.from);
    }
    let mut validator = Validator::new().context("loading the ASW schemas")?;
    let now = OffsetDateTime::now_utc();
    let now = now.replace_nanosecond(0).unwrap_or(now);
    let seed = u64::try_from(now.unix_timestamp()).unwrap_or(0);
    let spec = |kind, from, to, seed| SampleSpec {
        kind,
        from,
        to,
        items: 3,
        seed,
        created_at: now,
    };

    let form_d = sample::message(&spec(DocumentKind::FormD, args.from, args.to, seed));
    step(&mut validator, "back-office", &form_d)?;

    let mut ack = sample::message(&spec(DocumentKind::FormDAck, args.to, args.from, seed + 1));
    answer(&mut ack, &form_d);
    step(&mut validator, "hub", &ack)?;

    let mut status = sample::message(&spec(
        DocumentKind::FormDStatus,
        args.to,
        args.from,
        seed + 2,
    ));
    answer(&mut status, &form_d);
    step(&mut validator, "customs", &status)?;

    println!("demo: every step passed");
    Ok(Outcome::Success)
}

/// Makes `reply` answer `original`: correlation id and document reference.
fn answer(reply: &mut Message, original: &Message) {
    reply.header.correlation_id = Some(original.header.message_id);
    let reference = match &original.document {
        Document::FormD(d) => d.reference_number.clone(),
        Document::Acdd(d) => d.declaration_number.clone(),
        _ => return,
    };
    match &mut reply.document {
        Document::FormDAck(a) | Document::AcddAck(a) => a.document_reference = reference,
        Document::FormDStatus(s) => s.reference_number = reference,
        Document::AcddResponse(r) => r.declaration_number = reference,
        _ => {}
    }
}

fn step(validator: &mut Validator, who: &str, message: &Message) -> anyhow::Result<()> {
    let xml = message.to_xml().context("serialising")?;
    let h: &Header = &message.header;
    match validator.validate(xml.as_bytes()) {
        Ok(_) => {
            let answers = h
                .correlation_id
                .map(|c| format!(" answering {c}"))
                .unwrap_or_default();
            println!(
                "{} {:<8} {} -> {}  {:<13} {}{}  valid ({} bytes)",
                h.created_at.time(),
                who,
                h.sender,
                h.receiver,
                h.kind,
                h.message_id,
                answers,
                xml.len()
            );
            Ok(())
        }
        Err(problems) => {
            for p in &problems {
                eprintln!("{} {}: {p}", h.kind, h.message_id);
            }
            bail!("the {} from {} is invalid", h.kind, h.sender)
        }
    }
}
