//! `aswctl sample` and `aswctl validate` as a user runs them: arguments, output, exit codes.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

fn aswctl(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_aswctl"))
        .args(args)
        .output()
        .expect("run aswctl")
}

fn aswctl_stdin(args: &[&str], input: &[u8]) -> Output {
    let mut child = Command::new(env!("CARGO_BIN_EXE_aswctl"))
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn aswctl");
    child
        .stdin
        .take()
        .expect("stdin")
        .write_all(input)
        .expect("write stdin");
    child.wait_with_output().expect("wait aswctl")
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

fn samples() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../schemas/samples")
}

#[test]
fn sample_is_reproducible_with_a_seed_and_fresh_without() {
    let a = aswctl(&[
        "sample", "formd", "--from", "VN", "--to", "TH", "--items", "5", "--seed", "11",
    ]);
    let b = aswctl(&[
        "sample", "formd", "--from", "vn", "--to", "th", "--items", "5", "--seed", "11",
    ]);
    assert!(a.status.success(), "{}", text(&a.stderr));
    assert_eq!(a.stdout, b.stdout);
    assert_eq!(text(&a.stdout).matches("<fd:Item>").count(), 5);
    let c = aswctl(&["sample", "formd", "--from", "VN", "--to", "TH"]);
    let d = aswctl(&["sample", "formd", "--from", "VN", "--to", "TH"]);
    assert_ne!(
        c.stdout, d.stdout,
        "without a seed every sample has a new message id"
    );
}

#[test]
fn every_sample_kind_validates_through_stdin() {
    for kind in [
        "formd",
        "acdd",
        "formd-ack",
        "acdd-ack",
        "formd-status",
        "acdd-response",
    ] {
        let sample = aswctl(&["sample", kind, "--from", "SG", "--to", "MY", "--seed", "3"]);
        assert!(sample.status.success(), "{kind}: {}", text(&sample.stderr));
        let out = aswctl_stdin(&["validate", "-"], &sample.stdout);
        assert_eq!(out.status.code(), Some(0), "{kind}: {}", text(&out.stderr));
        assert_eq!(text(&out.stdout), format!("-: valid {kind} SG -> MY\n"));
    }
}

#[test]
fn sample_usage_errors_exit_2() {
    for args in [
        &["sample", "formd", "--from", "VN", "--to", "VN"][..],
        &["sample", "formd", "--from", "VN", "--to", "TL"],
        &["sample", "invoice", "--from", "VN", "--to", "TH"],
        &["sample", "formd", "--from", "VN"],
    ] {
        let out = aswctl(args);
        assert_eq!(
            out.status.code(),
            Some(2),
            "{args:?}: {}",
            text(&out.stderr)
        );
        assert!(out.stdout.is_empty());
    }
}

#[test]
fn invalid_document_exits_1_with_file_line_rule() {
    let file = samples().join("invalid/FORMD-004-rvc-without-fob-value.xml");
    let valid = samples().join("valid/formd-VN-TH.xml");
    let out = aswctl(&[
        "validate",
        valid.to_str().expect("utf-8"),
        file.to_str().expect("utf-8"),
    ]);
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(
        text(&out.stderr),
        format!(
            "{}:100: FORMD-004 item 4 uses criterion RVC but has no FobValue\n",
            file.display()
        )
    );
}

#[test]
fn json_output_lists_every_file_and_problem() {
    let file = samples().join("invalid/XSD-hs-code-too-short.xml");
    let valid = samples().join("valid/acdd-VN-TH.xml");
    let out = aswctl(&[
        "validate",
        "--format",
        "json",
        valid.to_str().expect("utf-8"),
        file.to_str().expect("utf-8"),
    ]);
    assert_eq!(out.status.code(), Some(1));
    let reports: serde_json::Value = serde_json::from_slice(&out.stdout).expect("JSON on stdout");
    assert_eq!(reports[0]["valid"], true);
    assert_eq!(reports[0]["kind"], "acdd");
    assert_eq!(reports[1]["valid"], false);
    assert_eq!(reports[1]["problems"][0]["rule"], "XSD");
    assert_eq!(reports[1]["problems"][0]["line"], 41);
}

#[test]
fn unreadable_file_exits_2_even_next_to_valid_ones() {
    let valid = samples().join("valid/formd-VN-TH.xml");
    let out = aswctl(&[
        "validate",
        valid.to_str().expect("utf-8"),
        "/nonexistent/file.xml",
    ]);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        text(&out.stderr).contains("/nonexistent/file.xml"),
        "{}",
        text(&out.stderr)
    );
    let out = aswctl(&["validate"]);
    assert_eq!(out.status.code(), Some(2));
}

#[test]
fn size_limit_applies_to_stdin() {
    let valid = std::fs::read(samples().join("valid/formd-VN-TH.xml")).expect("read");
    let out = aswctl_stdin(&["validate", "--max-bytes", "1000", "-"], &valid);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        text(&out.stderr).starts_with("-:1: XML-SIZE "),
        "{}",
        text(&out.stderr)
    );
}

/// The document libxml2 2.9.14 needed 14.9 s for (40,000 attributes on one element) is refused
/// by the reader with its file, line and rule; the limits are those given on the command line.
#[test]
fn hostile_shapes_are_refused_by_the_reader_with_file_line_and_rule() {
    use asw_model::hostile::Shape;
    let many = Shape::ManyAttributes.document(500_000);
    let out = aswctl_stdin(&["validate", "-"], &many);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        text(&out.stderr).starts_with("-:2: XML-ATTRIBUTES more than 32 attributes on one element"),
        "{}",
        text(&out.stderr)
    );
    let few = Shape::ManyAttributes.document(Shape::ManyElements.document(0).len() + 150);
    let out = aswctl_stdin(&["validate", "-"], &few);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let out = aswctl_stdin(&["validate", "--max-attributes", "4", "-"], &few);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        text(&out.stderr).starts_with("-:2: XML-ATTRIBUTES more than 4 attributes"),
        "{}",
        text(&out.stderr)
    );
    let reference = Shape::NamespaceReference.document(0);
    let out = aswctl_stdin(&["validate", "--format", "json", "-"], &reference);
    assert_eq!(out.status.code(), Some(1));
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).expect("json");
    assert_eq!(report[0]["problems"][0]["rule"], "XML-NAMESPACE");
    assert_eq!(report[0]["problems"][0]["line"], 2);
}

/// `sample ephyto` makes certificates with a PDF attachment of hundreds of KiB; `validate`
/// recognises them by their root element and checks them against the e-Phyto XSD, within the
/// hub's default limits.
#[test]
fn ephyto_samples_validate_and_carry_a_large_attachment() {
    let cert = aswctl(&[
        "sample", "ephyto", "--from", "VN", "--to", "TH", "--items", "12", "--seed", "4",
    ]);
    assert!(cert.status.success(), "{}", text(&cert.stderr));
    let xml = text(&cert.stdout);
    assert!(
        xml.contains("<ram:AttachmentBinaryObject filename=\""),
        "an attachment"
    );
    assert!(cert.stdout.len() > 400_000, "{} bytes", cert.stdout.len());
    assert_eq!(xml.matches("<ram:IncludedSPSTradeLineItem>").count(), 12);
    let out = aswctl_stdin(&["validate", "-"], &cert.stdout);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    assert_eq!(text(&out.stdout), "-: valid ephyto VN -> TH\n");

    // The acknowledgement of the certificate the same seed makes names it.
    let ack = aswctl(&[
        "sample",
        "ephyto-ack",
        "--from",
        "TH",
        "--to",
        "VN",
        "--seed",
        "4",
    ]);
    assert!(ack.status.success(), "{}", text(&ack.stderr));
    let id = xml
        .split("<ram:ID>")
        .nth(1)
        .and_then(|s| s.split('<').next())
        .expect("certificate number");
    assert!(text(&ack.stdout).contains(&format!("<ram:ID>{id}</ram:ID>")));
    let out = aswctl_stdin(&["validate", "--format", "json", "-"], &ack.stdout);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).expect("json");
    assert_eq!(report[0]["kind"], "ephyto-ack");

    // A smaller size limit refuses the same certificate before libxml2 sees it.
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("ephyto.xml");
    std::fs::write(&path, &cert.stdout).expect("write");
    let path = path.to_str().expect("utf-8");
    let out = aswctl(&["validate", "--max-bytes", "100000", path]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        text(&out.stderr).starts_with(&format!("{path}:1: XML-SIZE ")),
        "{}",
        text(&out.stderr)
    );
}

#[test]
fn an_invalid_ephyto_certificate_exits_1_with_file_line_rule() {
    let file = samples().join("ephyto/invalid/XSD-type-code-not-a-number.xml");
    let out = aswctl(&["validate", file.to_str().expect("utf-8")]);
    assert_eq!(out.status.code(), Some(1));
    let stderr = text(&out.stderr);
    assert!(
        stderr.starts_with(&format!("{}:6: XSD ", file.display())) && stderr.contains("'PHYTO'"),
        "{stderr}"
    );
}

/// An e-Phyto goes to any partner of `schemas/partners.toml` that exchanges e-Phyto (Korea,
/// through the IPPC ePhyto Hub), not only to ASW member states; one that does not is a usage error.
#[test]
fn ephyto_samples_take_their_countries_from_the_partners_file() {
    let cert = aswctl(&[
        "sample",
        "ephyto",
        "--from",
        "VN",
        "--to",
        "kr",
        "--attachment-kib",
        "0",
        "--seed",
        "1",
    ]);
    assert!(cert.status.success(), "{}", text(&cert.stderr));
    assert!(text(&cert.stdout).contains("<ram:Name>Republic of Korea</ram:Name>"));
    assert!(!text(&cert.stdout).contains("AttachmentBinaryObject"));
    let out = aswctl_stdin(&["validate", "-"], &cert.stdout);
    assert_eq!(
        text(&out.stdout),
        "-: valid ephyto VN -> KR\n",
        "{}",
        text(&out.stderr)
    );
    // In the ASW envelope too: its Receiver is any partner code, KR a shipped row.
    let message = aswctl(&[
        "sample",
        "ephyto",
        "--asw",
        "--from",
        "VN",
        "--to",
        "KR",
        "--attachment-kib",
        "0",
    ]);
    assert!(message.status.success(), "{}", text(&message.stderr));
    let out = aswctl_stdin(&["validate", "-"], &message.stdout);
    assert_eq!(
        text(&out.stdout),
        "-: valid ephyto VN -> KR\n",
        "{}",
        text(&out.stderr)
    );
    for args in [
        &["sample", "ephyto", "--from", "VN", "--to", "RU"][..],
        &["sample", "ephyto", "--asw", "--from", "VN", "--to", "RU"],
        &["sample", "formd", "--from", "VN", "--to", "KR"],
        &["sample", "ephyto", "--from", "KR", "--to", "KR"],
    ] {
        let out = aswctl(args);
        assert_eq!(out.status.code(), Some(2), "{args:?}");
        assert!(out.stdout.is_empty());
    }
}

#[test]
fn sample_and_validate_take_a_kinds_directory_and_report_its_rules_with_their_lines() {
    let dir = tempfile::tempdir().expect("temp dir");
    asw_testbed::schemas_with_example_kind(dir.path());
    let kinds = dir.path().join("kinds");
    let kinds = kinds.to_str().expect("utf-8 path");
    let body = samples().join("kinds/kr-co/kr-co-body.xml");
    let body = body.to_str().expect("utf-8 path");
    // Unknown without the directory: a usage error.
    let out = aswctl(&[
        "sample", "kr-co", "--from", "VN", "--to", "TH", "--body", body,
    ]);
    assert_eq!(out.status.code(), Some(2), "{}", text(&out.stderr));
    let args = [
        "sample", "kr-co", "--kinds", kinds, "--from", "VN", "--to", "TH", "--body", body,
        "--seed", "3",
    ];
    let out = aswctl(&args);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let xml = text(&out.stdout);
    assert!(xml.contains("<asw:DocumentKind>kr-co</asw:DocumentKind>") && xml.contains("KoreaCO"));
    let out = aswctl_stdin(&["validate", "--kinds", kinds, "-"], xml.as_bytes());
    assert!(out.status.success(), "{}", text(&out.stderr));
    // Without the kinds directory the kind is unknown.
    let out = aswctl_stdin(&["validate", "-"], xml.as_bytes());
    assert_eq!(out.status.code(), Some(1), "{}", text(&out.stderr));
    // A broken rule of the kind: its id and line.
    let bad = xml.replacen(">WO<", ">XX<", 1);
    let line = 1 + bad[..bad.find(">XX<").expect("XX")].matches('\n').count();
    let out = aswctl_stdin(&["validate", "--kinds", kinds, "-"], bad.as_bytes());
    assert_eq!(out.status.code(), Some(1));
    let said = text(&out.stderr);
    assert!(said.contains(&format!("-:{line}: KRCO-001 ")), "{said}");
    // An e-Phyto in the ASW envelope validates as any message.
    let out = aswctl(&[
        "sample", "ephyto", "--asw", "--from", "VN", "--to", "TH", "--seed", "2",
    ]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let xml = text(&out.stdout);
    assert!(xml.contains("<asw:DocumentKind>ephyto</asw:DocumentKind>"));
    let out = aswctl_stdin(&["validate", "-"], xml.as_bytes());
    assert!(out.status.success(), "{}", text(&out.stderr));
}
