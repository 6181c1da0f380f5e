//! The e-Phyto schemas: the samples in `schemas/samples/ephyto/` through aswhub's own XSDs, and
//! the agreement of those XSDs with the IPPC ePhyto Hub's schemas (the inline schemas of the
//! hub's WSDL, `../shared/ephyto-hub/ephyto.wsdl`, extracted at test time) on a corpus of valid
//! and invalid certificates and acknowledgements.

use std::path::{Path, PathBuf};

use asw_model::sps::{self, Country, EphytoSpec};
use asw_model::xml::Limits;
use asw_schema::{DocumentValidator, Problem, SchemaSet};
use time::OffsetDateTime;

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

fn ours(entry: &str) -> DocumentValidator {
    let schemas = SchemaSet::embedded_entry(entry).expect("embedded schemas");
    DocumentValidator::with_schemas(&schemas, Limits::default()).expect("our XSD compiles")
}

fn files(dir: &str) -> Vec<PathBuf> {
    let dir = repo().join("schemas/samples/ephyto").join(dir);
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|e| e.expect("dir entry").path())
        .filter(|p| p.extension().is_some_and(|x| x == "xml"))
        .collect();
    files.sort();
    files
}

/// Our validator for a document: the acknowledgement's for an `SPSAcknowledgement` root, the
/// certificate's for anything else.
struct Ours {
    certificate: DocumentValidator,
    acknowledgement: DocumentValidator,
}

impl Ours {
    fn new() -> Ours {
        Ours {
            certificate: ours("sps-certificate-17.xsd"),
            acknowledgement: ours("sps-acknowledgement-17.xsd"),
        }
    }

    fn validate(&mut self, bytes: &[u8]) -> Result<(), Vec<Problem>> {
        let text = String::from_utf8_lossy(bytes);
        let v = if text.contains(":SPSAcknowledgement ") || text.contains(":SPSAcknowledgement>") {
            &mut self.acknowledgement
        } else {
            &mut self.certificate
        };
        v.validate(bytes).map(|_| ())
    }
}

#[test]
fn every_valid_ephyto_sample_validates_against_our_schema() {
    let mut v = Ours::new();
    let files = files("valid");
    assert!(files.len() >= 2, "a certificate and an acknowledgement");
    for file in files {
        let bytes = std::fs::read(&file).expect("read sample");
        if let Err(problems) = v.validate(&bytes) {
            panic!("{} should be valid: {problems:#?}", file.display());
        }
    }
}

#[test]
fn every_invalid_ephyto_sample_fails_with_its_rule_and_line() {
    let mut v = Ours::new();
    let files = files("invalid");
    assert!(files.len() >= 8, "{files:?}");
    for file in files {
        let bytes = std::fs::read(&file).expect("read sample");
        let text = String::from_utf8_lossy(&bytes);
        let expect = text
            .lines()
            .nth(1)
            .and_then(|l| l.strip_prefix("<!-- expect: "))
            .and_then(|l| l.strip_suffix(" -->"))
            .unwrap_or_else(|| panic!("{}: no expect comment on line 2", file.display()));
        let (rule, line) = expect.split_once(" line ").expect("RULE line N");
        let problems = v
            .validate(&bytes)
            .err()
            .unwrap_or_else(|| panic!("{} should be invalid", file.display()));
        let first = &problems[0];
        assert_eq!(
            (first.rule, first.line.to_string().as_str()),
            (rule, line),
            "{}: {problems:#?}",
            file.display()
        );
    }
}

/// The hub's WSDL: `ASWHUB_EPHYTO_WSDL`, or `../shared/ephyto-hub/ephyto.wsdl` beside the
/// repository. Missing, the test fails: an agreement that was not checked is not one.
fn hub_wsdl() -> PathBuf {
    let path = std::env::var_os("ASWHUB_EPHYTO_WSDL")
        .map(PathBuf::from)
        .unwrap_or_else(|| repo().join("../shared/ephyto-hub/ephyto.wsdl"));
    assert!(
        path.is_file(),
        "the IPPC ePhyto Hub's WSDL is not at {}: the agreement of our e-Phyto XSDs with the \
         hub's cannot be checked. Put the shared folder beside the repository (../shared/ephyto-hub/) \
         or set ASWHUB_EPHYTO_WSDL to the WSDL's path.",
        path.display()
    );
    path
}

/// Writes each inline schema of the WSDL to its own file in `dir`, its imports pointed at the
/// files of the other schemas, and a schema importing them all; returns that schema's path.
fn extract_hub_schemas(wsdl: &Path, dir: &Path) -> PathBuf {
    let text = std::fs::read_to_string(wsdl).expect("read the WSDL");
    let mut schemas = Vec::new();
    let mut rest = text.as_str();
    while let Some(start) = rest.find("<xs:schema ") {
        let end = rest[start..]
            .find("</xs:schema>")
            .map(|e| start + e + "</xs:schema>".len())
            .expect("every xs:schema of the WSDL is closed");
        schemas.push(rest[start..end].to_owned());
        rest = &rest[end..];
    }
    let namespace_of = |schema: &str| -> String {
        let at = schema
            .find("targetNamespace=\"")
            .map(|i| i + "targetNamespace=\"".len())
            .expect("every inline schema has a target namespace");
        schema[at..at + schema[at..].find('"').expect("quote")].to_owned()
    };
    let names: Vec<(String, String)> = schemas
        .iter()
        .enumerate()
        .map(|(i, s)| (namespace_of(s), format!("hub-{i}.xsd")))
        .collect();
    for wanted in [
        asw_model::ns::SPS_CERTIFICATE,
        asw_model::ns::SPS_ACKNOWLEDGEMENT,
        asw_model::ns::SPS_RAM,
        asw_model::ns::SPS_UDT,
    ] {
        assert!(
            names.iter().any(|(ns, _)| ns == wanted),
            "{} has no inline schema for {wanted}",
            wsdl.display()
        );
    }
    std::fs::create_dir_all(dir).expect("create the schema directory");
    for (schema, (_, file)) in schemas.iter().zip(&names) {
        let mut schema = schema.clone();
        for (ns, target) in &names {
            schema = schema.replace(
                &format!("<xs:import namespace=\"{ns}\"/>"),
                &format!("<xs:import namespace=\"{ns}\" schemaLocation=\"{target}\"/>"),
            );
        }
        std::fs::write(dir.join(file), schema).expect("write an extracted schema");
    }
    let imports: String = names
        .iter()
        .map(|(ns, file)| format!("  <xs:import namespace=\"{ns}\" schemaLocation=\"{file}\"/>\n"))
        .collect();
    let entry = dir.join("hub.xsd");
    std::fs::write(
        &entry,
        format!(
            "<xs:schema xmlns:xs=\"http://www.w3.org/2001/XMLSchema\">\n{imports}</xs:schema>\n"
        ),
    )
    .expect("write the entry schema");
    entry
}

fn hub() -> DocumentValidator {
    let dir = std::env::temp_dir().join(format!("aswhub-ephyto-hub-{}", std::process::id()));
    let entry = extract_hub_schemas(&hub_wsdl(), &dir);
    let v = DocumentValidator::with_schemas(&SchemaSet::from_file(&entry), Limits::default())
        .expect("the hub's schemas compile");
    // Compiled: libxml2 holds what it needs; the files can go.
    let _ = std::fs::remove_dir_all(&dir);
    v
}

fn country(code: &'static str) -> Country<'static> {
    let name = match code {
        "VN" => "Viet Nam",
        "TH" => "Thailand",
        "PH" => "Philippines",
        "ID" => "Indonesia",
        "KR" => "Republic of Korea",
        "NO" => "Norway",
        _ => "Malaysia",
    };
    Country { code, name }
}

fn generated(seed: u64, from: &'static str, to: &'static str, items: u32, kib: usize) -> String {
    sps::certificate(&EphytoSpec {
        exporter: country(from),
        importer: country(to),
        commodities: items,
        attachment_bytes: kib * 1024,
        seed,
        issued_at: OffsetDateTime::from_unix_timestamp(
            1_767_600_000 + 86_400 * i64::try_from(seed).unwrap_or(0),
        )
        .expect("time"),
    })
}

/// One corpus case: a name, the document, whether both schemas must accept it.
struct Case {
    name: String,
    bytes: Vec<u8>,
    valid: bool,
}

/// Applies `edits` (each must change something) to `base`.
fn mutated(base: &str, edits: &[(&str, &str)]) -> String {
    let mut doc = base.to_owned();
    for (from, to) in edits {
        assert!(doc.contains(from), "the base document has no {from:?}");
        doc = doc.replacen(from, to, 1);
    }
    doc
}

/// The text from the first `open` to the end of the following `close`.
fn span<'a>(doc: &'a str, open: &str, close: &str) -> &'a str {
    let start = doc.find(open).expect("open");
    let end = start + doc[start..].find(close).expect("close") + close.len();
    &doc[start..end]
}

fn corpus() -> Vec<Case> {
    let mut cases = Vec::new();
    for (dir, valid) in [("valid", true), ("invalid", false)] {
        for file in files(dir) {
            cases.push(Case {
                name: file.display().to_string(),
                bytes: std::fs::read(&file).expect("read sample"),
                valid,
            });
        }
    }
    let pairs = [
        ("VN", "TH"),
        ("PH", "ID"),
        ("TH", "KR"),
        ("ID", "PH"),
        ("MY", "NO"),
    ];
    for seed in 0..15u64 {
        let (from, to) = pairs[usize::try_from(seed).unwrap_or(0) % pairs.len()];
        let items = 1 + u32::try_from(seed % 7).unwrap_or(0);
        let kib = [0, 1, 4, 16, 64][usize::try_from(seed % 5).unwrap_or(0)];
        cases.push(Case {
            name: format!("generated certificate {seed} {from}->{to}, {items} items, {kib} KiB"),
            bytes: generated(seed, from, to, items, kib).into_bytes(),
            valid: true,
        });
        let at = OffsetDateTime::from_unix_timestamp(1_767_600_000).expect("time");
        cases.push(Case {
            name: format!("generated acknowledgement {seed}"),
            bytes: sps::acknowledgement(&format!("{from}-PC-2026-{seed:06}"), at, at).into_bytes(),
            valid: true,
        });
    }
    cases.push(Case {
        name: "a certificate with a 400 KiB attachment".into(),
        bytes: generated(99, "VN", "TH", 12, 400).into_bytes(),
        valid: true,
    });

    let base = generated(5, "VN", "TH", 2, 2);
    let issue = span(&base, "<ram:IssueDateTime>", "</ram:IssueDateTime>").to_owned();
    let actual = span(&base, "<ram:ActualDateTime>", "</ram:ActualDateTime>").to_owned();
    let rsm = asw_model::ns::SPS_CERTIFICATE;
    let xsi = "xmlns:xsi=\"http://www.w3.org/2001/XMLSchema-instance\"";
    let ds_open = "<ram:ActualDateTime><udt:DateTimeString>";
    let ds_close = "</udt:DateTimeString></ram:ActualDateTime>";
    let nil_issue = format!("<ram:IssueDateTime {xsi} xsi:nil=\"true\"/>");
    let valid_edits: Vec<(&str, Vec<(&str, &str)>)> = vec![
        (
            "a date that is not a date (the hub's schema does not check dates)",
            vec![("<udt:DateTimeString>2026-", "<udt:DateTimeString>05/01/")],
        ),
        (
            "an empty date string",
            vec![(
                actual.as_str(),
                "<ram:ActualDateTime><udt:DateTimeString/></ram:ActualDateTime>",
            )],
        ),
        (
            "a nil issue date",
            vec![(issue.as_str(), nil_issue.as_str())],
        ),
        (
            "anything inside IssueDateTime (xs:anyType)",
            vec![(
                issue.as_str(),
                "<ram:IssueDateTime when=\"today\"><When>5 January</When></ram:IssueDateTime>",
            )],
        ),
        (
            "a party type code with attributes",
            vec![(
                "</ram:Name>\n      <ram:SpecifiedSPSAddress>",
                "</ram:Name>\n      <ram:TypeCode listID=\"x\">CZ</ram:TypeCode>\n      <ram:SpecifiedSPSAddress>",
            )],
        ),
        (
            "the cargo nature, in no namespace as the hub's schema has it",
            vec![(
                "<ram:IncludedSPSConsignmentItem>\n",
                "<ram:IncludedSPSConsignmentItem>\n<NatureIdentificationSPSCargo><TypeCode>Fruit</TypeCode></NatureIdentificationSPSCargo>\n",
            )],
        ),
        (
            "a language on a description",
            vec![("<ram:Description>", "<ram:Description languageID=\"en\">")],
        ),
        (
            "a weight in exponent notation",
            vec![
                (
                    "<ram:NetWeightMeasure unitCode=\"KGM\">",
                    "<ram:NetWeightMeasure unitCode=\"KGM\">1.2E4</ram:NetWeightMeasure><!--",
                ),
                ("</ram:NetWeightMeasure>\n", "-->\n"),
            ],
        ),
        (
            "a country code no one has",
            vec![("<ram:ID>TH</ram:ID>", "<ram:ID>XX</ram:ID>")],
        ),
        (
            "a re-export certificate",
            vec![(
                "<ram:TypeCode>851</ram:TypeCode>",
                "<ram:TypeCode>657</ram:TypeCode>",
            )],
        ),
        (
            "a type code no list has (the hub's schema takes any integer)",
            vec![(
                "<ram:TypeCode>851</ram:TypeCode>",
                "<ram:TypeCode>999</ram:TypeCode>",
            )],
        ),
    ];
    let invalid_edits: Vec<(&str, Vec<(&str, &str)>)> = vec![
        (
            "no TypeCode",
            vec![("    <ram:TypeCode>851</ram:TypeCode>\n", "")],
        ),
        (
            "no StatusCode",
            vec![("    <ram:StatusCode>70</ram:StatusCode>\n", "")],
        ),
        (
            "a TypeCode that is not a number",
            vec![(
                "<ram:TypeCode>851</ram:TypeCode>",
                "<ram:TypeCode>851-PC</ram:TypeCode>",
            )],
        ),
        (
            "an empty TypeCode",
            vec![("<ram:TypeCode>851</ram:TypeCode>", "<ram:TypeCode/>")],
        ),
        (
            "a decimal StatusCode",
            vec![(
                "<ram:StatusCode>70</ram:StatusCode>",
                "<ram:StatusCode>70.0</ram:StatusCode>",
            )],
        ),
        (
            "the root in another version's namespace",
            vec![(":SPSCertificate:17\"", ":SPSCertificate:16\"")],
        ),
        (
            "the aggregates in another version's namespace",
            vec![(
                "ReusableAggregateBusinessInformationEntity:21\"",
                "ReusableAggregateBusinessInformationEntity:20\"",
            )],
        ),
        (
            "the date strings in another namespace",
            vec![("UnqualifiedDataType:21\"", "UnqualifiedDataType:20\"")],
        ),
        (
            "a consignor in the certificate's namespace",
            vec![
                ("<ram:ConsignorSPSParty>", "<rsm:ConsignorSPSParty>"),
                ("</ram:ConsignorSPSParty>", "</rsm:ConsignorSPSParty>"),
            ],
        ),
        (
            "a signing date as text, without DateTimeString",
            vec![
                (ds_open, "<ram:ActualDateTime>"),
                (ds_close, "</ram:ActualDateTime>"),
            ],
        ),
        (
            "a treatment start as text",
            vec![
                (
                    "<ram:StartDateTime><udt:DateTimeString>",
                    "<ram:StartDateTime>",
                ),
                (
                    "</udt:DateTimeString></ram:StartDateTime>",
                    "</ram:StartDateTime>",
                ),
            ],
        ),
        (
            "a transport mode in words",
            vec![(
                "<ram:ModeCode>1</ram:ModeCode>",
                "<ram:ModeCode>sea</ram:ModeCode>",
            )],
        ),
        (
            "no transport mode",
            vec![("      <ram:ModeCode>1</ram:ModeCode>\n", "")],
        ),
        (
            "a commodity without sequence number",
            vec![("<ram:SequenceNumeric>1</ram:SequenceNumeric>", "")],
        ),
        (
            "a sequence number in words",
            vec![(
                "<ram:SequenceNumeric>1</ram:SequenceNumeric>",
                "<ram:SequenceNumeric>one</ram:SequenceNumeric>",
            )],
        ),
        (
            "a package quantity in words",
            vec![("<ram:ItemQuantity>", "<ram:ItemQuantity>about ")],
        ),
        (
            "a package without level",
            vec![("<ram:LevelCode>1</ram:LevelCode>", "")],
        ),
        (
            "a clause number in words",
            vec![(
                "<ram:IncludedSPSClause>\n        <ram:ID>1</ram:ID>",
                "<ram:IncludedSPSClause>\n        <ram:ID>first</ram:ID>",
            )],
        ),
        (
            "a language on a clause (a plain string there)",
            vec![(
                "<ram:Content>This is to certify",
                "<ram:Content languageID=\"en\">This is to certify",
            )],
        ),
        (
            "an attachment with a mime code",
            vec![(
                "<ram:AttachmentBinaryObject filename=",
                "<ram:AttachmentBinaryObject mimeCode=\"application/pdf\" filename=",
            )],
        ),
        (
            "a second consignor after the consignee",
            vec![(
                "<ram:ExportSPSCountry>",
                "<ram:ConsignorSPSParty/>\n    <ram:ExportSPSCountry>",
            )],
        ),
        (
            "two exchanged documents",
            vec![(
                "<rsm:SPSConsignment>",
                "<rsm:SPSExchangedDocument><ram:TypeCode>851</ram:TypeCode><ram:StatusCode>70</ram:StatusCode></rsm:SPSExchangedDocument><rsm:SPSConsignment>",
            )],
        ),
        (
            "a container number in the aggregates' namespace",
            vec![
                ("<ID>MSKU", "<ram:ID>MSKU"),
                (
                    "</ID>\n      <ram:AffixedSPSSeal>",
                    "</ram:ID>\n      <ram:AffixedSPSSeal>",
                ),
            ],
        ),
        (
            "the cargo nature in the aggregates' namespace",
            vec![(
                "<ram:IncludedSPSConsignmentItem>\n",
                "<ram:IncludedSPSConsignmentItem>\n<ram:NatureIdentificationSPSCargo/>\n",
            )],
        ),
        (
            "an element the schema does not have",
            vec![(
                "<ram:IssuerSPSParty>",
                "<ram:Remarks>Inspected</ram:Remarks><ram:IssuerSPSParty>",
            )],
        ),
        (
            "text inside a party",
            vec![(
                "<ram:ConsignorSPSParty>",
                "<ram:ConsignorSPSParty>stray text",
            )],
        ),
        (
            "an attribute the schema does not have",
            vec![(
                "<ram:NetWeightMeasure unitCode=",
                "<ram:NetWeightMeasure unit=",
            )],
        ),
    ];
    for (valid, edits) in [(true, valid_edits), (false, invalid_edits)] {
        for (name, edit) in edits {
            cases.push(Case {
                name: name.to_owned(),
                bytes: mutated(&base, &edit).into_bytes(),
                valid,
            });
        }
    }
    cases.push(Case {
        name: "an empty certificate (everything is optional in the hub's schema)".into(),
        bytes: format!("<rsm:SPSCertificate xmlns:rsm=\"{rsm}\"/>").into_bytes(),
        valid: true,
    });

    let at = OffsetDateTime::from_unix_timestamp(1_767_600_000).expect("time");
    let ack = sps::acknowledgement("VN-PC-2026-000001", at, at);
    let ack_issue = span(&ack, "<ram:IssueDateTime>", "</ram:IssueDateTime>").to_owned();
    for (name, edit, valid) in [
        (
            "an acknowledgement with a nil date",
            vec![(ack_issue.as_str(), nil_issue.as_str())],
            true,
        ),
        (
            "an acknowledgement without status",
            vec![("    <ram:StatusCode>1</ram:StatusCode>\n", "")],
            false,
        ),
        (
            "an acknowledgement status in words",
            vec![("<ram:StatusCode>1<", "<ram:StatusCode>OK<")],
            false,
        ),
        (
            "an acknowledgement in another version's namespace",
            vec![(":SPSAcknowledgement:17\"", ":SPSAcknowledgement:16\"")],
            false,
        ),
        (
            "an acknowledgement of a document without type",
            vec![("      <ram:TypeCode>851</ram:TypeCode>\n", "")],
            false,
        ),
    ] {
        cases.push(Case {
            name: name.to_owned(),
            bytes: mutated(&ack, &edit).into_bytes(),
            valid,
        });
    }
    cases
}

#[test]
fn our_schemas_agree_with_the_hubs_on_every_certificate_of_the_corpus() {
    let mut hub = hub();
    let mut ours = Ours::new();
    let cases = corpus();
    let mut disagreements = Vec::new();
    let (mut valid, mut invalid) = (0, 0);
    for case in &cases {
        let theirs = hub.validate(&case.bytes).map(|_| ());
        let mine = ours.validate(&case.bytes);
        let line = |r: &Result<(), Vec<Problem>>| r.as_ref().err().map(|p| p[0].line);
        if theirs.is_ok() != mine.is_ok() || line(&theirs) != line(&mine) {
            disagreements.push(format!(
                "{}: the hub's schema says {theirs:?}, ours {mine:?}",
                case.name
            ));
        } else if theirs.is_ok() != case.valid {
            disagreements.push(format!(
                "{}: both schemas say {theirs:?}, the corpus expects {}",
                case.name,
                if case.valid { "valid" } else { "invalid" }
            ));
        }
        if case.valid {
            valid += 1;
        } else {
            invalid += 1;
        }
    }
    assert!(
        disagreements.is_empty(),
        "{} of {} cases:\n{}",
        disagreements.len(),
        cases.len(),
        disagreements.join("\n")
    );
    assert!(
        valid >= 40 && invalid >= 35,
        "{valid} valid, {invalid} invalid"
    );
}

/// Real certificates carry attachments of hundreds of KB; the hub's default `[limits]` admit a
/// certificate with 20 commodities and a 3 MiB attachment (4 MiB of base64 in one text node),
/// and both schemas accept it.
#[test]
fn the_default_limits_admit_a_certificate_with_megabytes_of_attachment() {
    let cert = generated(3, "TH", "KR", 20, 3 * 1024);
    assert!(cert.len() > 4_000_000, "{} bytes", cert.len());
    assert!(cert.len() < Limits::DEFAULT_MAX_BYTES);
    let mut ours = Ours::new();
    if let Err(problems) = ours.validate(cert.as_bytes()) {
        panic!("ours: {problems:#?}");
    }
    if let Err(problems) = hub().validate(cert.as_bytes()) {
        panic!("the hub's: {problems:#?}");
    }
}

/// Every XSD a shipped kind names is built into the binary and compiles as an entry point, and a
/// bare kind's sample validates against the XSD its kind file names.
#[test]
fn every_kinds_xsd_is_embedded_and_compiles() {
    let registry = asw_model::kinds::KindRegistry::shipped().expect("shipped kinds");
    for kind in registry.iter() {
        for version in &kind.versions {
            for xsd in &version.xsd {
                let schemas = SchemaSet::embedded_entry(xsd)
                    .unwrap_or_else(|e| panic!("{}: {xsd}: {e}", kind.wire));
                DocumentValidator::with_schemas(&schemas, Limits::default())
                    .unwrap_or_else(|e| panic!("{}: {xsd}: {e}", kind.wire));
            }
        }
    }
    for file in files("valid") {
        let bytes = std::fs::read(&file).expect("read");
        let root = asw_schema::root_element(&bytes, &Limits::default()).expect("root");
        let kind = registry
            .by_root(&root.namespace, &root.name)
            .unwrap_or_else(|| panic!("{}: no kind has this root", file.display()));
        assert!(kind.bare, "{}", kind.wire);
        let entry = &kind.written_version().xsd[0];
        let mut v = ours(entry);
        v.validate(&bytes)
            .unwrap_or_else(|p| panic!("{}: {p:#?}", file.display()));
    }
}
