//! (11) The cost of a document by its size, 1 KB to the 10 MiB limit: the CPU per document of
//! the outbound work (validate, then sign) and of the inbound work (verify, then validate) on
//! one thread, and the rate and bytes per second that makes. Memory by size is figure (6).

use super::*;
use crate::hostile::least_cpu_ms;

/// The target sizes, in bytes (the largest 0.2 MB under the 10 MiB limit, as figure (6)).
const SIZES: [usize; 5] = [1_000, 10_000, 100_000, 1_000_000, 10_000_000];

/// (11) One row per size: outbound and inbound CPU per document, least of three runs, each run
/// repeating small documents until it has handled about 2 MB.
pub(crate) fn by_size() -> anyhow::Result<Vec<Row>> {
    let (vn, th) = (state("VN"), state("TH"));
    println!("preparing documents of 1 KB to 10 MB...");
    let key = asw_sign::keygen::generate(
        vn,
        asw_sign::keygen::KeyAlgorithm::Rsa2048,
        1,
        OffsetDateTime::now_utc(),
    )?;
    let signer = Signer::new(&key.key_pem, &key.cert_pem)?;
    let trust = TrustStore::from_pem([(vn, key.cert_pem.as_slice())])?;
    let verifier = asw_sign::Verifier::new(Arc::new(trust))?;
    let mut validator = asw_schema::Validator::new()?;
    let mut rows = Vec::new();
    for target in SIZES {
        let target = target.min(Limits::default().max_bytes.saturating_sub(200_000));
        // The smallest e-Form D has one item; below that size it is the 1 KB row.
        let (bytes, items) = if target <= 10_000 {
            let items = if target <= 1_000 { 1 } else { 10 };
            let xml = document(DocumentKind::FormD, vn, th, items, 11).to_xml_compact()?;
            (xml.into_bytes(), items)
        } else {
            big_document(vn, th, target)?
        };
        let signed = signer.sign(&bytes)?;
        let reps = (2_000_000 / bytes.len()).max(1);
        let (out_ms, outbound) = least_cpu_ms(|| {
            for _ in 0..reps {
                if let Err(problems) = validator.validate(&bytes) {
                    return format!("invalid: {}", problems[0].rule);
                }
                if let Err(e) = signer.sign(&bytes) {
                    return format!("unsigned: {e}");
                }
            }
            "ok".to_owned()
        });
        let (in_ms, inbound) = least_cpu_ms(|| {
            for _ in 0..reps {
                if let Err(e) = verifier.verify(&signed, OffsetDateTime::now_utc()) {
                    return format!("unverified: {}", e.code());
                }
                if let Err(problems) = validator.validate(&signed) {
                    return format!("invalid: {}", problems[0].rule);
                }
            }
            "ok".to_owned()
        });
        if outbound != "ok" || inbound != "ok" {
            bail!(
                "the {} B document: outbound {outbound}, inbound {inbound}",
                bytes.len()
            );
        }
        let (out_ms, in_ms) = (out_ms / reps as f64, in_ms / reps as f64);
        let mb = bytes.len() as f64 / 1e6;
        rows.push(Row {
            figure: format!(
                "(11) {} B e-Form D ({items} items): CPU out / in per document",
                bytes.len()
            ),
            value: format!("{out_ms:.2}/{in_ms:.2} ms"),
            note: format!(
                "per thread {:.0}/{:.0} per s, {:.1}/{:.1} MB/s",
                1000.0 / out_ms,
                1000.0 / in_ms,
                mb * 1000.0 / out_ms,
                mb * 1000.0 / in_ms
            ),
        });
    }
    Ok(rows)
}
