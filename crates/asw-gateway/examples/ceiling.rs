//! The ceiling's work on one thread, for a profiler: `ceiling outbound|inbound N` runs the
//! worker's outbound (validate + sign) or inbound (verify + validate) step on N e-Form D
//! documents of 10 items (about 7 KB), signed with RSA-2048 as the benchmark's are. Run it under
//! `valgrind --tool=callgrind` and divide the instruction counts by N (minus a run with N = 0,
//! the set-up). `ceiling big ITEMS` signs one e-Form D of ITEMS items and prints its peak
//! memory.

use std::sync::Arc;

use asw_gateway::process::{Identity, Worker};
use asw_model::sample::{self, SampleSpec};
use asw_model::xml::Limits;
use asw_model::{DocumentKind, MemberState};
use asw_sign::keygen::{self, KeyAlgorithm};
use asw_sign::{Signer, TrustStore};
use time::OffsetDateTime;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let direction = args.next().unwrap_or_else(|| "outbound".into());
    let n: u64 = args.next().unwrap_or_else(|| "100".into()).parse()?;
    let vn = MemberState::from_alpha2("VN").ok_or("VN")?;
    let th = MemberState::from_alpha2("TH").ok_or("TH")?;
    let now = OffsetDateTime::now_utc();
    let vn_key = keygen::generate(vn, KeyAlgorithm::Rsa2048, 30, now)?;
    let th_key = keygen::generate(th, KeyAlgorithm::Rsa2048, 30, now)?;
    let trust = Arc::new(TrustStore::from_pem([(th, th_key.cert_pem.as_slice())])?);
    let identity = Arc::new(Identity::new(vn, [th].into_iter().collect()));
    let mut worker = Worker::new(
        identity,
        &vn_key.key_pem,
        &vn_key.cert_pem,
        trust,
        Limits::default(),
    )?;
    let th_signer = Signer::new(&th_key.key_pem, &th_key.cert_pem)?;
    let document = |from, to, seed| {
        sample::message(&SampleSpec {
            kind: DocumentKind::FormD,
            from,
            to,
            items: 10,
            seed,
            created_at: now,
        })
        .to_xml_compact()
    };
    let docs: Vec<Vec<u8>> = (0..if direction == "big" { 0 } else { n })
        .map(|i| match direction.as_str() {
            "inbound" => Ok(th_signer.sign(document(th, vn, i)?.as_bytes())?),
            _ => Ok(document(vn, th, i)?.into_bytes()),
        })
        .collect::<Result<_, Box<dyn std::error::Error>>>()?;
    if direction == "big" {
        // One document of `n` items through the outbound step: the peak memory above what the
        // process held before (VmHWM), against the document's size.
        let bytes = document(vn, th, 1)?;
        let big = sample::message(&SampleSpec {
            kind: DocumentKind::FormD,
            from: vn,
            to: th,
            items: u32::try_from(n)?,
            seed: 1,
            created_at: now,
        })
        .to_xml_compact()?
        .into_bytes();
        drop(bytes);
        let before = status_kb("VmHWM:").max(status_kb("VmRSS:"));
        let signed = worker
            .outbound(&big, "formd", now)
            .map_err(|e| format!("{e:?}"))?;
        let grew = status_kb("VmHWM:").saturating_sub(before) as f64 * 1024.0;
        println!(
            "big: {} B, signed {} B, peak {:.1} MB above before: {:.1}x size",
            big.len(),
            signed.bytes.len(),
            grew / 1e6,
            grew / big.len() as f64
        );
        return Ok(());
    }
    let mut ok = 0;
    for doc in &docs {
        let passed = match direction.as_str() {
            "inbound" => worker.inbound(doc, Some("partner-TH"), "TH", now).is_ok(),
            _ => worker.outbound(doc, "formd", now).is_ok(),
        };
        ok += u64::from(passed);
    }
    println!("{direction}: {ok} of {n} documents passed");
    Ok(())
}

/// A field of /proc/self/status in kB (0 when it cannot be read).
fn status_kb(field: &str) -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with(field))
                .and_then(|l| l.split_whitespace().nth(1))
                .and_then(|v| v.parse().ok())
        })
        .unwrap_or(0)
}
