//! (7) The `xmlsec1` command-line tool signing and verifying one process per document.

use super::*;

/// (7) `xmlsec1 --sign` from a template and `xmlsec1 --verify`, one process per document.
pub(crate) fn xmlsec1(
    dir: &Path,
    signed_docs: &[Vec<u8>],
    count: usize,
) -> anyhow::Result<(f64, f64)> {
    let key = dir.join("th/key.pem");
    let cert = dir.join("th/cert.pem");
    let work = dir.join("xmlsec1");
    std::fs::create_dir_all(&work)?;
    let count = count.min(signed_docs.len()).max(1);
    let mut templates = Vec::new();
    for (i, doc) in signed_docs.iter().take(count).enumerate() {
        let text = String::from_utf8_lossy(doc).into_owned();
        let template = blank(
            &blank(&blank(&text, "ds:DigestValue"), "ds:SignatureValue"),
            "ds:X509Data",
        );
        let path = work.join(format!("t{i}.xml"));
        std::fs::write(&path, template)?;
        templates.push(path);
    }
    let started = Instant::now();
    for (i, template) in templates.iter().enumerate() {
        let out = work.join(format!("s{i}.xml"));
        let status = Command::new("xmlsec1")
            .args(["--sign", "--privkey-pem"])
            .arg(format!("{},{}", key.display(), cert.display()))
            .arg("--output")
            .arg(&out)
            .arg(template)
            .stderr(Stdio::null())
            .status()
            .context("running xmlsec1 (Debian package xmlsec1)")?;
        if !status.success() {
            bail!("xmlsec1 --sign failed on {}", template.display());
        }
    }
    let sign_rate = rate(count, started.elapsed());
    let started = Instant::now();
    for i in 0..count {
        let status = Command::new("xmlsec1")
            .args(["--verify", "--pubkey-cert-pem"])
            .arg(&cert)
            .args(["--enabled-reference-uris", "empty"])
            .arg(work.join(format!("s{i}.xml")))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()?;
        if !status.success() {
            bail!("xmlsec1 --verify failed");
        }
    }
    Ok((sign_rate, rate(count, started.elapsed())))
}

/// Empties the content of the first `<tag>...</tag>`.
pub(crate) fn blank(text: &str, tag: &str) -> String {
    let open = format!("<{tag}>");
    let close = format!("</{tag}>");
    match (text.find(&open), text.find(&close)) {
        (Some(a), Some(b)) if b > a => format!("{}{}{}", &text[..a + open.len()], "", &text[b..]),
        _ => text.to_owned(),
    }
}
