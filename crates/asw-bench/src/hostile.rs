//! (8) Hostile document shapes at the size limit: CPU time to accept or refuse each.

use super::*;

/// (8) Every hostile shape (`asw_model::hostile`) at the size limit, and valid e-Form Ds of
/// `items` items and of about the size limit as the baseline: the CPU time the bounded reader
/// alone (its first pass, building nothing), the hub's outbound
/// path (validator: reader, XSD, rules) and inbound path (verifier: reader, signature profile,
/// then libxmlsec1) take to accept or refuse each, the least of three runs. The verifier gets
/// each shape signed by a trusted key where the signer accepts it (a hostile partner), since
/// it reads documents before the schema does. Printed, never asserted.
pub(crate) fn hostile(items: u32) -> anyhow::Result<Vec<Row>> {
    use asw_model::hostile::Shape;
    let (vn, th) = (state("VN"), state("TH"));
    println!("preparing the hostile documents...");
    let key = asw_sign::keygen::generate(
        vn,
        asw_sign::keygen::KeyAlgorithm::EcP256,
        1,
        OffsetDateTime::now_utc(),
    )?;
    let signer = Signer::new(&key.key_pem, &key.cert_pem)?;
    let trust = TrustStore::from_pem([(vn, key.cert_pem.as_slice())])?;
    let verifier = asw_sign::Verifier::new(Arc::new(trust))?;
    let mut validator = asw_schema::Validator::new()?;
    let limit = Limits::default().max_bytes;

    let small = document(DocumentKind::FormD, vn, th, items, 8)
        .to_xml_compact()?
        .into_bytes();
    let (big, big_items) = big_document(vn, th, limit.saturating_sub(200_000))?;
    let mut cases = vec![
        (format!("valid e-Form D, {items} items"), small),
        (format!("valid e-Form D, {big_items} items"), big),
    ];
    let mut signed = vec![signer.sign(&cases[0].1)?, signer.sign(&cases[1].1)?];
    for shape in Shape::ALL {
        cases.push((shape.name().to_owned(), shape.document(limit)));
        // What a partner with a trusted key could send: the shape signed (outside the signature
        // element). The signer refuses what the reader refuses: that is then verified unsigned.
        let signable = shape.signable_document(limit.saturating_sub(4000));
        match signer.sign(&signable) {
            Ok(bytes) => signed.push(bytes),
            Err(e) => {
                println!("  {}: the signer refuses it: {e}", shape.name());
                signed.push(signable);
            }
        }
    }
    let mut rows = Vec::new();
    for ((name, bytes), signed) in cases.into_iter().zip(signed) {
        let limits = Limits::default();
        let (reader_ms, _) = least_cpu_ms(|| {
            let read = asw_model::xml::parse_selected(&bytes, &limits, &|_: &str, _: &str| false);
            format!("{}", read.is_ok())
        });
        let (validate_ms, validated) = least_cpu_ms(|| match validator.validate(&bytes) {
            Ok(_) => "accepted".to_owned(),
            Err(problems) => format!("{} line {}", problems[0].rule, problems[0].line),
        });
        let (verify_ms, verified) =
            least_cpu_ms(
                || match verifier.verify(&signed, OffsetDateTime::now_utc()) {
                    Ok(_) => "verified".to_owned(),
                    Err(e) => match &e {
                        asw_sign::VerifyError::Xml(asw_model::ModelError::Xml { rule, .. }) => {
                            format!("{} ({rule})", e.code())
                        }
                        _ => e.code().to_owned(),
                    },
                },
            );
        rows.push(Row {
            figure: format!("(8) {name}: reader / validate / verify CPU"),
            value: format!("{reader_ms:.1}/{validate_ms:.1}/{verify_ms:.1} ms"),
            note: format!(
                "{:.1} MB; validate: {validated}; verify (signed by a trusted key if it can be): {verified}",
                bytes.len() as f64 / 1e6
            ),
        });
    }
    Ok(rows)
}

/// Runs `work` three times and returns the least CPU time of this thread it took, in
/// milliseconds, with what the last run returned.
pub(crate) fn least_cpu_ms(mut work: impl FnMut() -> String) -> (f64, String) {
    let mut least = f64::INFINITY;
    let mut outcome = String::new();
    for _ in 0..3 {
        let before = thread_cpu_ns();
        outcome = work();
        let took = thread_cpu_ns().saturating_sub(before) as f64 / 1e6;
        least = least.min(took);
    }
    (least, outcome)
}

/// CPU time this thread has run, in nanoseconds (`CLOCK_THREAD_CPUTIME_ID`: exact, where
/// `/proc` counts in scheduler ticks).
pub(crate) fn thread_cpu_ns() -> u64 {
    let t = rustix::time::clock_gettime(rustix::time::ClockId::ThreadCPUTime);
    u64::try_from(t.tv_sec).unwrap_or(0) * 1_000_000_000 + u64::try_from(t.tv_nsec).unwrap_or(0)
}
