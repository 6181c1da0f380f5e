//! (6) Memory: the hub's peak RSS with many documents queued, and the peak to validate and sign
//! one large e-Form D (measured in child processes).

use super::*;

/// (6) Queues `args.rss_docs` documents, runs a fresh hub on them and samples its peak RSS; adds
/// the row and returns the peak in MB.
pub(crate) async fn rss(
    args: &Args,
    admin: &Connection,
    config: &Path,
    outbound_docs: &[Vec<u8>],
    rows: &mut Vec<Row>,
) -> anyhow::Result<f64> {
    println!("rss: queueing {} documents...", args.rss_docs);
    let mut queued = 0;
    while queued < args.rss_docs {
        let batch = (args.rss_docs - queued).min(outbound_docs.len());
        publish_all(
            admin,
            names::OUTBOUND_EXCHANGE,
            "formd",
            &outbound_docs[..batch],
            None,
        )
        .await?;
        queued += batch;
    }
    let mut hub = start_hub(config)?;
    let deadline = Instant::now() + Duration::from_secs(args.rss_seconds);
    let mut peak = 0u64;
    while Instant::now() < deadline {
        peak = peak.max(hub.peak_kb());
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    peak = peak.max(hub.peak_kb());
    stop_hub(&mut hub)?;
    let rss_mb = peak as f64 / 1024.0;
    rows.push(Row {
        figure: format!(
            "(6) hub peak RSS, {} documents queued, {} s",
            args.rss_docs, args.rss_seconds
        ),
        value: format!("{rss_mb:.1} MB"),
        note: "VmHWM of the aswhub process, sampled every 200 ms".into(),
    });
    Ok(rss_mb)
}

/// (6) For each size in MB, an e-Form D of about that size validated and signed in a child
/// process of its own, which reports its peak memory (see [`big_child`]).
pub(crate) fn big_documents(
    dir: &Path,
    key: &Path,
    cert: &Path,
    sizes_mb: &[usize],
) -> anyhow::Result<Vec<Row>> {
    let (vn, th) = (state("VN"), state("TH"));
    let mut rows = Vec::new();
    for &target_mb in sizes_mb {
        let (bytes, items) = big_document(vn, th, (target_mb * 1_000_000).saturating_sub(200_000))?;
        let file = dir.join(format!("big-{target_mb}.xml"));
        std::fs::write(&file, &bytes)?;
        let child = |phase: &str| -> anyhow::Result<String> {
            let out = Command::new(std::env::current_exe()?)
                .arg("--big")
                .arg(&file)
                .args(["--big-phase", phase])
                .env("ASW_BENCH_KEY", key)
                .env("ASW_BENCH_CERT", cert)
                .output()?;
            let text = String::from_utf8_lossy(&out.stdout).trim().to_owned();
            if !out.status.success() {
                bail!(
                    "large document child ({phase}) failed: {text} {}",
                    String::from_utf8_lossy(&out.stderr)
                );
            }
            Ok(text)
        };
        let both = child("both")?;
        // Each phase alone in a fresh process: its own peak, without memory the other left.
        let alone = |phase: &str| -> anyhow::Result<String> {
            let text = child(phase)?;
            Ok(text
                .split(';')
                .nth(1)
                .and_then(|t| t.split(" above").next())
                .unwrap_or("?")
                .trim()
                .trim_start_matches("peak ")
                .to_owned())
        };
        let (validate, sign) = (alone("validate")?, alone("sign")?);
        rows.push(Row {
            figure: format!(
                "(6) validate + sign one {:.1} MB e-Form D ({items} items)",
                bytes.len() as f64 / 1e6
            ),
            value: both.split(';').next().unwrap_or("?").to_owned(),
            note: format!(
                "{}; alone: validate {validate}, sign {sign}",
                both.split(';').nth(1).unwrap_or("").trim()
            ),
        });
    }
    Ok(rows)
}

/// An e-Form D of about `bytes` bytes (compact XML), and its item count.
pub(crate) fn big_document(
    from: MemberState,
    to: MemberState,
    bytes: usize,
) -> anyhow::Result<(Vec<u8>, u32)> {
    let one = document(DocumentKind::FormD, from, to, 10, 1)
        .to_xml_compact()?
        .len();
    let two = document(DocumentKind::FormD, from, to, 20, 1)
        .to_xml_compact()?
        .len();
    let per_item = (two - one) / 10;
    let items = u32::try_from(bytes.saturating_sub(one) / per_item.max(1) + 10).unwrap_or(u32::MAX);
    Ok((
        document(DocumentKind::FormD, from, to, items, 1)
            .to_xml_compact()?
            .into_bytes(),
        items,
    ))
}

/// Child mode: read one large document, validate and/or sign it, print "PEAK; details".
///
/// Peak memory is the kernel's high-water mark of this process's resident set (`VmHWM`), so it
/// counts every allocation that was touched, Rust's and libxml2's or libxmlsec1's alike, and
/// is taken above what the process held once the document was read (the input bytes, the
/// compiled schemas, the key).
pub(crate) fn big_child(file: &Path, phase: Phase) -> anyhow::Result<()> {
    let key = std::fs::read(std::env::var("ASW_BENCH_KEY")?)?;
    let cert = std::fs::read(std::env::var("ASW_BENCH_CERT")?)?;
    let mut validator = asw_schema::Validator::new()?;
    let signer = Signer::new(&key, &cert)?;
    let mut bytes = Vec::new();
    std::fs::File::open(file)?.read_to_end(&mut bytes)?;
    let before = status_kb("VmHWM:").max(status_kb("VmRSS:"));
    let started = Instant::now();
    if phase != Phase::Sign
        && let Err(problems) = validator.validate(&bytes)
    {
        bail!("the large document is invalid: {:?}", problems.first());
    }
    let validated = started.elapsed();
    let signed = if phase == Phase::Validate {
        0
    } else {
        signer.sign(&bytes)?.len()
    };
    let took = started.elapsed();
    let peak = status_kb("VmHWM:");
    let grew = peak.saturating_sub(before) as f64 * 1024.0;
    println!(
        "{:.1}x size; peak {:.0} MB above {:.0} MB before, {:.0} ms (validate {:.0} ms, sign {:.0} ms), signed {} B",
        grew / bytes.len() as f64,
        grew / 1e6,
        before as f64 / 1024.0,
        took.as_secs_f64() * 1000.0,
        validated.as_secs_f64() * 1000.0,
        (took - validated).as_secs_f64() * 1000.0,
        signed
    );
    Ok(())
}

pub(crate) fn status_kb(field: &str) -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .unwrap_or_default()
        .lines()
        .find(|l| l.starts_with(field))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|v| v.parse().ok())
        .unwrap_or(0)
}
