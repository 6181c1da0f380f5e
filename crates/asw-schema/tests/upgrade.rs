//! A MIG upgrade of a built-in kind, as a deployment would make it: its kinds directory lists
//! e-Form D 1.0 and a 2.0 in the same namespace with an XSD of its own, and each e-Form D is
//! checked against the XSD of the version its header names, although the envelope schema itself
//! imports the 1.0 XSD. (A binary of its own: installing changes the process's e-Form D.)

use std::path::Path;

use asw_model::sample::{self, SampleSpec};
use asw_model::{DocumentKind, MemberState};
use asw_schema::{Validator, install_kinds};

mod common;

use common::schemas;

/// A deployment's schemas directory: the shipped XSDs and kinds (not the example kind), e-Form D
/// 2.0 added (its XSD the 1.0 one with a required `Remarks` after `IssuedIn`).
fn deployment(root: &Path) {
    common::deployment(root, false);
    let xsd = std::fs::read_to_string(schemas().join("formd-1.xsd")).expect("formd-1.xsd");
    let issued_in = "<xs:element name=\"IssuedIn\" type=\"cmn:MemberStateCode\"/>";
    assert!(xsd.contains(issued_in));
    let xsd_2 = xsd.replacen(
        issued_in,
        &format!("{issued_in}\n        <xs:element name=\"Remarks\" type=\"xs:string\"/>"),
        1,
    );
    std::fs::write(root.join("formd-2.xsd"), xsd_2).expect("write");
    let toml = std::fs::read_to_string(root.join("kinds/formd.toml")).expect("formd.toml");
    let one = "[[versions]]\nversion = \"1.0\"\nxsd = [\"formd-1.xsd\"]\n";
    assert!(toml.contains(one));
    let toml = toml.replacen(
        one,
        &format!("{one}\n[[versions]]\nversion = \"2.0\"\nxsd = [\"formd-2.xsd\"]\n"),
        1,
    );
    std::fs::write(root.join("kinds/formd.toml"), toml).expect("write");
}

/// 1-based line of the first `needle` in `xml`.
fn line_of(xml: &str, needle: &str) -> u32 {
    1 + xml[..xml.find(needle).expect("needle")]
        .matches('\n')
        .count() as u32
}

#[test]
fn a_built_in_kind_read_in_two_versions_checks_each_against_its_own_xsd() {
    let root = std::env::temp_dir().join(format!("aswhub-upgrade-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&root);
    deployment(&root);
    install_kinds(&root.join("kinds")).expect("installs");
    assert!(DocumentKind::FormD.reads_version("2.0"));
    assert_eq!(DocumentKind::FormD.version(), "1.0", "1.0 is still written");
    let mut v = Validator::new().expect("compiles");
    let _ = std::fs::remove_dir_all(&root);
    let state = |c: &str| MemberState::from_alpha2(c).expect("member state");
    let xml_1 = sample::message(&SampleSpec {
        kind: DocumentKind::FormD,
        from: state("VN"),
        to: state("TH"),
        items: 2,
        seed: 21,
        created_at: SampleSpec::seeded_time(21),
    })
    .to_xml()
    .expect("xml");
    let version = |xml: &str, v: &str| {
        xml.replacen(
            "<asw:DocumentVersion>1.0</asw:DocumentVersion>",
            &format!("<asw:DocumentVersion>{v}</asw:DocumentVersion>"),
            1,
        )
    };
    // 1.0 as before.
    v.validate(xml_1.as_bytes())
        .unwrap_or_else(|p| panic!("{p:#?}\n{xml_1}"));
    // A 2.0 header over the 1.0 body: the 2.0 XSD misses its Remarks.
    let bad = version(&xml_1, "2.0");
    let problems = v
        .validate(bad.as_bytes())
        .expect_err("2.0 requires Remarks");
    assert_eq!(
        (problems[0].rule, problems[0].line),
        ("XSD", line_of(&bad, "<fd:Exporter>")),
        "{problems:#?}"
    );
    assert!(problems[0].message.contains("Remarks"), "{}", problems[0]);
    // The 2.0 body under 2.0: accepted; under 1.0: refused by the 1.0 XSD.
    let with_remarks = xml_1.replacen(
        "</fd:IssuedIn>",
        "</fd:IssuedIn>\n      <fd:Remarks>Issued under MIG 2.0</fd:Remarks>",
        1,
    );
    let xml_2 = version(&with_remarks, "2.0");
    v.validate(xml_2.as_bytes())
        .unwrap_or_else(|p| panic!("{p:#?}\n{xml_2}"));
    let problems = v
        .validate(with_remarks.as_bytes())
        .expect_err("1.0 has no Remarks");
    assert_eq!(
        (problems[0].rule, problems[0].line),
        ("XSD", line_of(&with_remarks, "<fd:Remarks>")),
        "{problems:#?}"
    );
}
