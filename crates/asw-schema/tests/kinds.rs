//! Kinds as data through the real validator: an e-Phyto and its acknowledgement in the ASW
//! envelope, and a kind no code knows (the example AKFTA C/O of `schemas/samples/kinds/kr-co/`)
//! installed from a kinds directory, with its XSD and its rules as data.

use std::path::{Path, PathBuf};

use asw_model::document::{Document, Message, XmlBody};
use asw_model::sample::{self, SampleSpec};
use asw_model::{DocumentKind, Header, MemberState};
use asw_schema::{Validator, install_kinds};

fn schemas() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../schemas")
}

/// A deployment's schemas directory: the shipped XSDs and kinds, plus the example kind.
fn deployment(name: &str) -> PathBuf {
    let root = std::env::temp_dir().join(format!("aswhub-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&root);
    std::fs::create_dir_all(root.join("kinds")).expect("mkdir");
    for entry in std::fs::read_dir(schemas()).expect("schemas") {
        let path = entry.expect("entry").path();
        if path.extension().is_some_and(|x| x == "xsd") {
            std::fs::copy(&path, root.join(path.file_name().expect("name"))).expect("copy");
        }
    }
    for entry in std::fs::read_dir(schemas().join("kinds")).expect("kinds") {
        let path = entry.expect("entry").path();
        std::fs::copy(
            &path,
            root.join("kinds").join(path.file_name().expect("name")),
        )
        .expect("copy");
    }
    let example = schemas().join("samples/kinds/kr-co");
    std::fs::copy(example.join("kr-co.toml"), root.join("kinds/kr-co.toml")).expect("copy");
    std::fs::copy(example.join("kr-co-1.xsd"), root.join("kr-co-1.xsd")).expect("copy");
    root
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
    let mut v = Validator::new().expect("compiles");
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
    let root = deployment("kinds-schema");
    // Before it is installed the kind is unknown.
    assert!("kr-co".parse::<DocumentKind>().is_err());
    let installed = install_kinds(&root.join("kinds")).expect("installs");
    let kind: DocumentKind = "kr-co".parse().expect("installed");
    assert!(installed.contains(&kind) && installed.contains(&DocumentKind::FormD));
    let body = std::fs::read_to_string(schemas().join("samples/kinds/kr-co/kr-co-body.xml"))
        .expect("body");
    let mut v = Validator::new().expect("compiles with the new kind");
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
    let line_of = |xml: &str, needle: &str| {
        1 + xml[..xml.find(needle).expect("needle")]
            .matches('\n')
            .count() as u32
    };
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
    let _ = std::fs::remove_dir_all(&root);
}
