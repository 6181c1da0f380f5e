//! Kinds as data through the real validator: an e-Phyto and its acknowledgement in the ASW
//! envelope, and a kind no code knows (the example AKFTA C/O of `schemas/samples/kinds/kr-co/`)
//! installed from a kinds directory, with its XSDs (two versions read side by side), its rules
//! as data and its receipt, which the hub writes.

use std::path::PathBuf;
use std::sync::Mutex;

use asw_model::document::{Document, Message, XmlBody};
use asw_model::sample::{self, SampleSpec};
use asw_model::{DocumentKind, Header, MemberState};
use asw_schema::{Validator, install_kinds};

mod common;

use common::schemas;

/// A deployment's schemas directory: the shipped XSDs and kinds, plus the example kind.
fn deployment(name: &str) -> PathBuf {
    let root = std::env::temp_dir().join(format!("aswhub-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&root);
    common::deployment(&root, true);
    root
}

/// The tests of this binary share the process's kinds and the directories their XSDs are
/// searched in: a deployment is installed, compiled and removed under this lock, and a validator
/// compiled under it too, so that none is compiled while a directory it found goes away.
static SCHEMAS: Mutex<bool> = Mutex::new(false);

/// A validator of the process's kinds, compiled under [`SCHEMAS`].
fn validator() -> Validator {
    let _held = SCHEMAS.lock().unwrap_or_else(|e| e.into_inner());
    Validator::new().expect("compiles")
}

/// Installs a deployment named `name` (the first to install finds the example kind unknown
/// before) and compiles a validator with its kinds; returns the kinds installed and the validator
/// (the deployment's files are gone: the validator holds what it compiled).
fn installed(name: &str) -> (Vec<DocumentKind>, Validator) {
    let mut installed = SCHEMAS.lock().unwrap_or_else(|e| e.into_inner());
    let root = deployment(name);
    if !*installed {
        assert!(
            "kr-co".parse::<DocumentKind>().is_err(),
            "unknown before it is installed"
        );
    }
    let kinds = install_kinds(&root.join("kinds")).expect("installs");
    *installed = true;
    let validator = Validator::new().expect("compiles with the installed kinds");
    let _ = std::fs::remove_dir_all(&root);
    (kinds, validator)
}

/// 1-based line of the first `needle` in `xml`.
fn line_of(xml: &str, needle: &str) -> u32 {
    1 + xml[..xml.find(needle).expect("needle")]
        .matches('\n')
        .count() as u32
}

fn state(code: &str) -> MemberState {
    MemberState::from_alpha2(code).expect("member state")
}

fn message(kind: DocumentKind, body: &str, seed: u64) -> String {
    let mut msg = sample::message(&SampleSpec {
        kind,
        from: state("VN"),
        to: state("TH"),
        items: 2,
        seed,
        created_at: SampleSpec::seeded_time(seed),
    });
    if !body.is_empty() {
        msg = Message {
            header: Header { ..msg.header },
            document: Document::Xml(XmlBody {
                kind,
                xml: body.to_owned(),
            }),
        };
    }
    msg.to_xml().expect("xml")
}

#[test]
fn an_ephyto_and_its_acknowledgement_validate_in_the_envelope() {
    let mut v = validator();
    for kind in [DocumentKind::Ephyto, DocumentKind::EphytoAck] {
        let xml = message(kind, "", 5);
        let valid = v
            .validate(xml.as_bytes())
            .unwrap_or_else(|p| panic!("{kind}: {p:#?}\n{xml}"));
        assert_eq!(valid.header().kind, kind);
        assert!(
            asw_model::reply::document_reference(valid.root()).is_some_and(|r| r.contains("-PC-")),
            "{kind}: the certificate number is the reference"
        );
    }
    // A body that breaks the SPS schema is refused by the XSD, with its line.
    let xml = message(DocumentKind::Ephyto, "", 5).replacen(
        "<rsm:SPSExchangedDocument>",
        "<rsm:SPSExchangedDocument><rsm:Unexpected/>",
        1,
    );
    let problems = v.validate(xml.as_bytes()).expect_err("invalid");
    assert_eq!(problems[0].rule, "XSD", "{problems:#?}");
    // An e-Form D body under an ephyto header: ENV-002.
    let formd = message(DocumentKind::FormD, "", 5).replacen(
        "<asw:DocumentKind>formd</asw:DocumentKind>",
        "<asw:DocumentKind>ephyto</asw:DocumentKind>",
        1,
    );
    let problems = v.validate(formd.as_bytes()).expect_err("mismatch");
    assert!(
        problems.iter().any(|p| p.rule == "ENV-002"),
        "{problems:#?}"
    );
}

#[test]
fn a_kind_from_a_kinds_directory_is_validated_with_its_xsd_and_its_rules() {
    let (installed, mut v) = installed("kinds-schema");
    let kind: DocumentKind = "kr-co".parse().expect("installed");
    assert!(installed.contains(&kind) && installed.contains(&DocumentKind::FormD));
    let body = std::fs::read_to_string(schemas().join("samples/kinds/kr-co/kr-co-body.xml"))
        .expect("body");
    let xml = message(kind, &body, 9);
    let valid = v
        .validate(xml.as_bytes())
        .unwrap_or_else(|p| panic!("{p:#?}\n{xml}"));
    assert_eq!(valid.header().kind, kind);
    assert_eq!(
        asw_model::reply::document_reference(valid.root()).as_deref(),
        Some("VN-AK-2026-000417")
    );
    // Its XSD: a country that is not two capitals.
    let bad = xml.replacen(
        "<co:Country>KR</co:Country>",
        "<co:Country>Korea</co:Country>",
        1,
    );
    let problems = v.validate(bad.as_bytes()).expect_err("invalid");
    assert_eq!(problems[0].rule, "XSD", "{problems:#?}");
    // Its rules, each reported with its id and the line of the element at fault.
    let bad = xml
        .replacen(
            "<co:OriginCriterion>WO</co:OriginCriterion>",
            "<co:OriginCriterion>XX</co:OriginCriterion>",
            1,
        )
        .replacen(
            "<co:Country>KR</co:Country>",
            "<co:Country>VN</co:Country>",
            1,
        );
    let problems = v.validate(bad.as_bytes()).expect_err("rules");
    let found: Vec<(&str, u32)> = problems.iter().map(|p| (p.rule, p.line)).collect();
    assert_eq!(
        found,
        [
            ("KRCO-001", line_of(&bad, "<co:OriginCriterion>")),
            // The importer's country: the second <co:Country>.
            ("KRCO-002", line_of(&bad, "<co:Importer>") + 2),
        ],
        "{problems:#?}"
    );
    assert!(problems[0].message.contains("\"XX\""), "{}", problems[0]);
}

/// The example kind's body of version 2.0 (`kr-co-2.xsd`: an `InvoiceNumber` required).
fn body_2() -> String {
    std::fs::read_to_string(schemas().join("samples/kinds/kr-co/kr-co-2-body.xml")).expect("body")
}

/// `xml` with its header's `DocumentVersion` set to `version`.
fn with_version(xml: &str, version: &str) -> String {
    xml.replacen(
        "<asw:DocumentVersion>1.0</asw:DocumentVersion>",
        &format!("<asw:DocumentVersion>{version}</asw:DocumentVersion>"),
        1,
    )
}

#[test]
fn each_document_is_checked_against_the_xsd_of_the_version_its_header_names() {
    let (_, mut v) = installed("kinds-versions");
    let kind: DocumentKind = "kr-co".parse().expect("installed");
    assert_eq!(kind.version(), "1.0", "the first listed is written");
    assert!(kind.reads_version("2.0") && kind.reads_version("2"));
    let one = std::fs::read_to_string(schemas().join("samples/kinds/kr-co/kr-co-body.xml"))
        .expect("body");
    let two = body_2();
    // Each version's document, under its version: accepted (`2` names 2.0).
    let xml_1 = message(kind, &one, 11);
    v.validate(xml_1.as_bytes())
        .unwrap_or_else(|p| panic!("1.0: {p:#?}\n{xml_1}"));
    for version in ["2.0", "2"] {
        let xml_2 = with_version(&message(kind, &two, 12), version);
        let valid = v
            .validate(xml_2.as_bytes())
            .unwrap_or_else(|p| panic!("{version}: {p:#?}\n{xml_2}"));
        assert_eq!(valid.header().version, version);
    }
    // A 2.0 document without the invoice number: refused by the 2.0 XSD, at the element that
    // comes where it is missing.
    let bad = with_version(&xml_1, "2.0");
    let problems = v.validate(bad.as_bytes()).expect_err("2.0 requires it");
    assert_eq!(problems.len(), 1, "{problems:#?}");
    assert_eq!(
        (problems[0].rule, problems[0].line),
        ("XSD", line_of(&bad, "<co:Exporter>")),
        "{problems:#?}"
    );
    assert!(
        problems[0].message.contains("InvoiceNumber"),
        "{}",
        problems[0]
    );
    // A 1.0 document with it: refused by the 1.0 XSD, at the element.
    let bad = with_version(&message(kind, &two, 12), "1.0");
    let problems = v
        .validate(bad.as_bytes())
        .expect_err("1.0 does not have it");
    assert_eq!(
        (problems[0].rule, problems[0].line),
        ("XSD", line_of(&bad, "<co:InvoiceNumber>")),
        "{problems:#?}"
    );
    // A version the kind does not read: ENV-003 at the header's DocumentVersion, whether the
    // body is valid for the written version or not (then with the XSD's problems).
    for body in [&one, &two] {
        let xml = with_version(&message(kind, body, 13), "3.0");
        let problems = v.validate(xml.as_bytes()).expect_err("3.0 is not read");
        let env = problems
            .iter()
            .find(|p| p.rule == "ENV-003")
            .unwrap_or_else(|| panic!("{problems:#?}"));
        assert_eq!(env.line, line_of(&xml, "<asw:DocumentVersion>"));
        assert!(env.message.contains("expected 1.0 or 2.0"), "{env}");
    }
    // A kind with one version is unchanged: an e-Form D of version 2.0 is ENV-003.
    let formd = with_version(&message(DocumentKind::FormD, "", 13), "2.0");
    let problems = v.validate(formd.as_bytes()).expect_err("not read");
    assert_eq!(problems[0].rule, "ENV-003", "{problems:#?}");
}

#[test]
fn the_receipt_of_a_kind_as_data_is_written_by_the_hub_and_valid_against_its_xsd() {
    use asw_model::document::Reason;
    use asw_model::reply;
    let (_, mut v) = installed("kinds-receipt");
    let kind: DocumentKind = "kr-co".parse().expect("installed");
    let ack_kind: DocumentKind = "kr-co-ack".parse().expect("installed");
    assert_eq!(kind.ack_kind(), Some(ack_kind));
    assert!(kind.receipt_by_hub() && ack_kind.is_receipt());
    let body = std::fs::read_to_string(schemas().join("samples/kinds/kr-co/kr-co-body.xml"))
        .expect("body");
    let original = v
        .validate(message(kind, &body, 14).as_bytes())
        .expect("valid");
    let header = original.header();
    let now = header.created_at + time::Duration::minutes(1);
    // Received.
    let receipt =
        reply::receipt(header, "VN-AK-2026-000417", Vec::new(), now).expect("the hub writes it");
    assert_eq!(receipt.header.kind, ack_kind);
    assert_eq!(receipt.header.correlation_id, Some(header.message_id));
    assert_eq!(
        (receipt.header.sender, receipt.header.receiver),
        (header.receiver, header.sender)
    );
    let xml = receipt.to_xml().expect("xml");
    let valid = v
        .validate_at(xml.as_bytes(), now)
        .unwrap_or_else(|p| panic!("{p:#?}\n{xml}"));
    assert_eq!(
        reply::answer_status(valid.root()).as_deref(),
        Some("received")
    );
    assert_eq!(
        reply::document_reference(valid.root()).as_deref(),
        Some("VN-AK-2026-000417")
    );
    // Rejected, with the reasons (escaped), read back as they were given.
    let reasons = vec![Reason {
        code: "KRCO-001".into(),
        text: "origin criterion <XX> & not AKFTA's".into(),
    }];
    let rejection = reply::receipt(header, "VN-AK-2026-000417", reasons, now).expect("written");
    let xml = rejection.to_xml().expect("xml");
    let valid = v
        .validate_at(xml.as_bytes(), now)
        .unwrap_or_else(|p| panic!("{p:#?}\n{xml}"));
    assert_eq!(
        reply::answer_status(valid.root()).as_deref(),
        Some("rejected")
    );
    assert_eq!(
        reply::answer_reasons(valid.root()),
        [(
            "KRCO-001".to_owned(),
            "origin criterion <XX> & not AKFTA's".to_owned()
        )]
    );
    // A rejection without a reason breaks the acknowledgement's rule, as an e-Form D's would.
    let start = xml.find("<r:Reason>").expect("reason");
    let end = xml.find("</r:Reason>").expect("reason") + "</r:Reason>".len();
    let bare = format!("{}{}", &xml[..start], &xml[end..]);
    let problems = v.validate_at(bare.as_bytes(), now).expect_err("RESP-002");
    assert_eq!(
        (problems[0].rule, problems[0].line),
        ("RESP-002", line_of(&bare, "<r:Status>")),
        "{problems:#?}"
    );
}
