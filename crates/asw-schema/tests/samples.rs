//! The samples in `schemas/samples/`, generated samples for every kind and pair of member states,
//! and hostile inputs, through the real validator.

use std::path::{Path, PathBuf};

use asw_model::sample::{self, SampleSpec};
use asw_model::xml::Limits;
use asw_model::{DocumentKind, MemberState};
use asw_schema::rules::RULES;
use asw_schema::{Problem, Validator};

fn samples(dir: &str) -> Vec<PathBuf> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../schemas/samples")
        .join(dir);
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|e| e.expect("dir entry").path())
        .filter(|p| p.extension().is_some_and(|x| x == "xml"))
        .collect();
    files.sort();
    files
}

fn validator() -> Validator {
    Validator::new().expect("the embedded schemas compile")
}

#[test]
fn every_valid_sample_validates() {
    let mut v = validator();
    let files = samples("valid");
    assert!(
        files.len() >= 6,
        "expected a valid sample per kind, found {files:?}"
    );
    for file in files {
        let bytes = std::fs::read(&file).expect("read sample");
        if let Err(problems) = v.validate(&bytes) {
            panic!("{} should be valid: {problems:#?}", file.display());
        }
    }
}

/// Reads `<!-- expect: RULE line N -->` from an invalid sample.
fn expectation(bytes: &[u8], file: &Path) -> (String, u32) {
    let text = String::from_utf8_lossy(bytes);
    let start = text
        .find("<!-- expect: ")
        .unwrap_or_else(|| panic!("{} has no expect comment", file.display()));
    let rest = &text[start + "<!-- expect: ".len()..];
    let rest = &rest[..rest.find(" -->").expect("comment end")];
    let (rule, line) = rest.split_once(" line ").expect("RULE line N");
    (rule.to_owned(), line.parse().expect("line number"))
}

#[test]
fn every_invalid_sample_fails_with_its_rule_and_line() {
    let mut v = validator();
    let files = samples("invalid");
    for file in &files {
        let bytes = std::fs::read(file).expect("read sample");
        let (rule, line) = expectation(&bytes, file);
        let name = file
            .file_name()
            .and_then(|n| n.to_str())
            .expect("file name");
        assert!(
            name.starts_with(&format!("{rule}-")),
            "{name} must be named after its rule {rule}"
        );
        let problems = match v.validate(&bytes) {
            Ok(_) => panic!("{name} should be invalid"),
            Err(problems) => problems,
        };
        assert!(
            problems.iter().all(|p| p.rule == rule),
            "{name}: expected only {rule} problems, got {problems:#?}"
        );
        assert!(
            problems.iter().any(|p| p.line == line),
            "{name}: expected a {rule} problem on line {line}, got {problems:#?}"
        );
    }
}

#[test]
fn every_business_rule_has_an_invalid_sample() {
    let names: Vec<String> = samples("invalid")
        .iter()
        .filter_map(|p| p.file_name().and_then(|n| n.to_str()).map(str::to_owned))
        .collect();
    for (id, what) in RULES.iter().filter(|(id, _)| *id != "ENV-000") {
        assert!(
            names.iter().any(|n| n.starts_with(&format!("{id}-"))),
            "rule {id} ({what}) has no sample in schemas/samples/invalid/"
        );
    }
}

#[test]
fn generated_samples_validate_for_every_kind_and_pair() {
    let mut v = validator();
    let mut count = 0;
    for kind in DocumentKind::ALL {
        for from in MemberState::all() {
            for to in MemberState::all().filter(|&to| to != from) {
                let seed = count;
                let spec = SampleSpec {
                    kind,
                    from,
                    to,
                    items: 4,
                    seed,
                    created_at: SampleSpec::seeded_time(seed),
                };
                let xml = sample::message(&spec).to_xml().expect("serialise");
                if let Err(problems) = v.validate(xml.as_bytes()) {
                    panic!("{kind} {from} -> {to} (seed {seed}) is invalid: {problems:#?}\n{xml}");
                }
                count += 1;
            }
        }
    }
    assert_eq!(count, 6 * 10 * 9);
}

#[test]
fn a_form_d_with_many_items_validates() {
    let mut v = validator();
    let (from, to) = (
        MemberState::from_alpha2("VN").expect("VN"),
        MemberState::from_alpha2("TH").expect("TH"),
    );
    let spec = SampleSpec {
        kind: DocumentKind::FormD,
        from,
        to,
        items: 2_000,
        seed: 9,
        created_at: SampleSpec::seeded_time(9),
    };
    let xml = sample::message(&spec).to_xml().expect("serialise");
    let valid = v
        .validate(xml.as_bytes())
        .expect("a 2,000-item Form D is valid");
    assert_eq!(valid.header().kind, DocumentKind::FormD);
}

fn only_rule(result: Result<asw_schema::Validated, Vec<Problem>>) -> &'static str {
    let problems = result.expect_err("should be rejected");
    assert_eq!(problems.len(), 1, "{problems:#?}");
    problems[0].rule
}

#[test]
fn hostile_inputs_are_rejected_without_panic_or_blowup() {
    let mut v = validator();
    // 50 MB of otherwise plausible XML: refused on size before any parsing.
    let mut big =
        b"<?xml version=\"1.0\"?><asw:Message xmlns:asw=\"urn:aswhub:asw:envelope:1\">".to_vec();
    big.resize(50 * 1024 * 1024, b' ');
    assert_eq!(only_rule(v.validate(&big)), "XML-SIZE");
    // A million nested elements.
    let deep = "<a>".repeat(1_000_000);
    assert_eq!(only_rule(v.validate(deep.as_bytes())), "XML-DEPTH");
    // UTF-16 with a byte-order mark is not UTF-8.
    assert_eq!(
        only_rule(v.validate(&[0xff, 0xfe, b'<', 0, b'a', 0, b'/', 0, b'>', 0])),
        "XML-ENCODING"
    );
    // Empty and binary input.
    assert_eq!(only_rule(v.validate(b"")), "XML");
    assert_eq!(only_rule(v.validate(b"\x00\x01\x02")), "XML");
    // Well-formed XML that is no ASW message.
    assert_eq!(only_rule(v.validate(b"<html><body/></html>")), "XSD");
}

#[test]
fn every_truncation_of_a_document_is_an_error_not_a_panic() {
    let mut v = validator();
    let xml = std::fs::read(
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../../schemas/samples/valid/formd-VN-TH.xml"),
    )
    .expect("read sample");
    let end = xml.iter().rposition(|&b| b == b'>').expect("closing tag");
    for cut in (0..end).step_by(7) {
        let problems = v
            .validate(&xml[..cut])
            .expect_err("a truncated document is invalid");
        assert!(!problems.is_empty());
    }
}

#[test]
fn limits_are_configurable() {
    let xml = std::fs::read(
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../../schemas/samples/valid/formd-VN-TH.xml"),
    )
    .expect("read sample");
    let schemas = asw_schema::SchemaSet::embedded().expect("schemas");
    let mut small = Validator::with_schemas(
        &schemas,
        Limits {
            max_bytes: 1024,
            ..Limits::default()
        },
    )
    .expect("validator");
    assert_eq!(only_rule(small.validate(&xml)), "XML-SIZE");
    let mut shallow = Validator::with_schemas(
        &schemas,
        Limits {
            max_depth: 4,
            ..Limits::default()
        },
    )
    .expect("validator");
    assert_eq!(only_rule(shallow.validate(&xml)), "XML-DEPTH");
}
