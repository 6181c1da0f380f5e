//! Tests of what a worker does to one document: real keys, trust and schemas, no I/O.

use super::*;
use crate::testing::Fixture;

/// A worker whose partners file is the shipped one with TH's row changed by `edit`.
fn worker_with_th(fixture: &Fixture, edit: impl Fn(&str) -> String) -> Worker {
    let kinds = asw_model::kinds::KindRegistry::shipped().expect("kinds");
    let shipped = PartnerTable::shipped(&kinds).expect("partners");
    let text = include_str!("../../../../schemas/partners.toml")
        .split("[[partner]]")
        .map(|row| {
            if row.contains("\ncode = \"TH\"") {
                edit(row)
            } else {
                row.to_owned()
            }
        })
        .collect::<Vec<_>>()
        .join("[[partner]]");
    let table = PartnerTable::parse("partners.toml", &text, &kinds).expect("parses");
    assert_ne!(table, shipped);
    let identity = Identity {
        agreed: Some(Arc::new(table)),
        ..Identity::new(fixture.vn, [fixture.th, fixture.sg].into_iter().collect())
    };
    let mut worker = fixture.worker();
    worker.identity = Arc::new(identity);
    worker
}

/// A worker whose partners file lets TH send us e-Form Ds only, and receive nothing but
/// ACDDs from us.
fn agreed_worker(fixture: &Fixture) -> Worker {
    worker_with_th(fixture, |row| {
        let sends = row.lines().find(|l| l.starts_with("sends")).expect("sends");
        let receives = row
            .lines()
            .find(|l| l.starts_with("receives"))
            .expect("receives");
        row.replace(sends, "sends = [\"formd\"]")
            .replace(receives, "receives = [\"acdd\"]")
    })
}

/// Outbound, the one libxml2 parse serves the XSD and then the signature: the signed bytes
/// are exactly those the signer alone makes from the same input (RSA PKCS#1 v1.5 signatures
/// are deterministic), so XSD validation left the tree as parsed.
#[test]
fn the_outbound_one_parse_signs_what_the_signer_alone_signs() {
    let fixture = Fixture::new();
    let now = OffsetDateTime::now_utc();
    let rsa =
        asw_sign::keygen::generate(fixture.vn, asw_sign::keygen::KeyAlgorithm::Rsa2048, 30, now)
            .expect("key");
    let mut worker = Worker::new(
        fixture.identity.clone(),
        &rsa.key_pem,
        &rsa.cert_pem,
        fixture.trust.clone(),
        Limits::default(),
    )
    .expect("worker");
    let signer = Signer::new(&rsa.key_pem, &rsa.cert_pem).expect("signer");
    for kind in [DocumentKind::FormD, DocumentKind::Acdd] {
        let (_, bytes) = fixture.back_office_document(kind);
        let signed = worker
            .outbound(&bytes, names::outbound_key(kind), now)
            .expect("valid and ours to send");
        assert_eq!(
            signed.bytes[..],
            signer.sign(&bytes).expect("signed")[..],
            "{kind}"
        );
    }
}

/// Every invalid sample is refused outbound with exactly the problems the validator finds on
/// its own parse (rule, line and message), whichever phase finds them.
#[test]
fn outbound_refusals_are_the_validators_problems_for_every_invalid_sample() {
    let fixture = Fixture::new();
    let mut worker = fixture.worker();
    let mut validator = Validator::new().expect("validator");
    let now = OffsetDateTime::now_utc();
    let dir =
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../schemas/samples/invalid");
    let mut count = 0;
    for entry in std::fs::read_dir(&dir).expect("samples") {
        let path = entry.expect("entry").path();
        let bytes = std::fs::read(&path).expect("sample");
        let expected: Vec<Refusal> = validator
            .validate_at(&bytes, now)
            .expect_err("an invalid sample")
            .iter()
            .map(Refusal::from_problem)
            .collect();
        let refused = worker
            .outbound(&bytes, "formd", now)
            .expect_err("an invalid sample");
        assert_eq!(refused.refusals, expected, "{}", path.display());
        count += 1;
    }
    assert!(count >= 30, "{count} samples");
}

/// Inbound, the tree the signature was verified on is validated: a signed document that
/// breaks its XSD is refused with the validator's problems, line numbers included.
#[test]
fn inbound_xsd_problems_keep_their_lines_on_the_verified_tree() {
    let fixture = Fixture::new();
    let mut worker = fixture.worker();
    let mut validator = Validator::new().expect("validator");
    let now = OffsetDateTime::now_utc();
    let document = fixture.document(DocumentKind::FormD, fixture.th, fixture.vn);
    let xml = document.to_xml().expect("xml");
    // An element the schema does not allow, on a line of its own far into the document.
    let close = xml.rfind("</").expect("a closing tag");
    let line = xml[..close].lines().count() + 1;
    let broken = format!("{}<Unexpected/>\n{}", &xml[..close], &xml[close..]);
    let key = fixture.key(fixture.th);
    let signed = Signer::new(&key.key_pem, &key.cert_pem)
        .expect("signer")
        .sign(broken.as_bytes())
        .expect("signed");
    let expected: Vec<Refusal> = validator
        .validate_at(&signed, now)
        .expect_err("not schema-valid")
        .iter()
        .map(Refusal::from_problem)
        .collect();
    assert_eq!(expected[0].code, "XSD");
    assert!(
        expected[0].text.starts_with(&format!("line {line}: ")),
        "{expected:?} (line {line})"
    );
    let refused = worker
        .inbound(&signed, Some("partner-TH"), "TH", now)
        .expect_err("not schema-valid");
    assert!(refused.verified);
    assert_eq!(refused.refusals, expected);
}

/// `xml` with an element its XSD does not allow, before the last closing tag.
fn breaking_its_xsd(xml: &str) -> String {
    let close = xml.rfind("</").expect("a closing tag");
    format!("{}<Unexpected/>{}", &xml[..close], &xml[close..])
}

/// Inbound documents that fail several checks at once are refused by the first check in
/// the order the hub has always applied: the transport's identity, the claimed sender
/// against the publisher, the bounded reader and the header, the signature, the partners
/// file and the receiver, then XSD and rules; with the header as the document claims it
/// and the flags that decide whether it is answered and journaled.
#[test]
fn inbound_documents_failing_several_checks_get_the_first_checks_refusal() {
    let fixture = Fixture::new();
    let (th, sg, vn) = (fixture.th, fixture.sg, fixture.vn);
    let mut worker = fixture.worker();
    let now = OffsetDateTime::now_utc();
    let sign = |by: MemberState, xml: &str| {
        let key = fixture.key(by);
        Signer::new(&key.key_pem, &key.cert_pem)
            .expect("signer")
            .sign(xml.as_bytes())
            .expect("signed")
    };
    let broken = |from, to| {
        let document = fixture.document(DocumentKind::FormD, from, to);
        breaking_its_xsd(&document.to_xml_compact().expect("xml"))
    };
    // Claims SG, is for SG, breaks its XSD, signed by TH.
    let forged = sign(th, &broken(sg, sg));
    // Claims TH, for SG, breaks its XSD: signed by SG, or by TH.
    let foreign = sign(sg, &broken(th, sg));
    let misrouted = sign(th, &broken(th, sg));
    // Claims TH, for us, breaks its XSD, signed by TH: as signed, and changed after.
    let invalid = sign(th, &broken(th, vn));
    let tampered = String::from_utf8(invalid.clone())
        .expect("UTF-8")
        .replace("<Unexpected/>", "<Unexpectee/>")
        .into_bytes();
    // Not well-formed (and so no header either), and a header that cannot be read.
    let truncated = misrouted[..misrouted.len() - 20].to_vec();
    let unreadable = String::from_utf8(misrouted.clone())
        .expect("UTF-8")
        .replace("<asw:Sender>TH</asw:Sender>", "<asw:Sender>XX</asw:Sender>")
        .into_bytes();
    assert_ne!(unreadable, misrouted);
    type Outcome = (Vec<String>, Option<String>, Option<MemberState>, bool);
    let mut outcome = |bytes: &[u8], user: &str| -> Outcome {
        let refused = worker
            .inbound(bytes, Some(user), "TH", now)
            .expect_err("refused");
        (
            refused.refusals.iter().map(|r| r.code.clone()).collect(),
            refused.header.map(|h| h.sender.code().to_owned()),
            refused.authenticated,
            refused.verified,
        )
    };
    let codes = |codes: &[&str]| codes.iter().map(|c| c.to_string()).collect::<Vec<_>>();
    let claims = |s: &str| Some(s.to_owned());
    let cases: [(&str, &[u8], &str, Outcome); 9] = [
        (
            "forged, another publisher",
            &forged,
            "partner-SG",
            (codes(&["TRANSPORT-001"]), claims("SG"), None, false),
        ),
        (
            "forged",
            &forged,
            "partner-TH",
            (codes(&["TRANSPORT-003"]), claims("SG"), Some(th), false),
        ),
        (
            "truncated, another publisher",
            &truncated,
            "partner-SG",
            (codes(&["TRANSPORT-001"]), None, None, false),
        ),
        (
            "truncated",
            &truncated,
            "partner-TH",
            (codes(&["SIG-MALFORMED"]), None, Some(th), false),
        ),
        (
            "unreadable header",
            &unreadable,
            "partner-TH",
            (codes(&["SIG-MALFORMED"]), None, Some(th), false),
        ),
        (
            "signed by SG",
            &foreign,
            "partner-TH",
            (codes(&["SIG-UNTRUSTED"]), claims("TH"), Some(th), false),
        ),
        (
            "tampered",
            &tampered,
            "partner-TH",
            (codes(&["SIG-DIGEST"]), claims("TH"), Some(th), false),
        ),
        (
            "misrouted",
            &misrouted,
            "partner-TH",
            (codes(&["ROUTE-004"]), claims("TH"), Some(th), true),
        ),
        (
            "invalid",
            &invalid,
            "partner-TH",
            (codes(&["XSD"]), claims("TH"), Some(th), true),
        ),
    ];
    for (name, bytes, user, expected) in cases {
        assert_eq!(outcome(bytes, user), expected, "{name}");
    }
    let refused = worker
        .inbound(&forged, Some("partner-TH"), "TH", now)
        .expect_err("forged");
    assert_eq!(
        refused.refusals[0].text,
        "the document claims sender SG but was published by partner-TH"
    );
    let refused = worker
        .inbound(&unreadable, Some("partner-TH"), "TH", now)
        .expect_err("unreadable");
    assert!(
        refused.refusals[0]
            .text
            .starts_with("the envelope header cannot be read: "),
        "{:?}",
        refused.refusals
    );
}

/// Outbound documents that fail several checks at once: the bounded reader's refusal
/// alone, then XSD problems alone, then every routing refusal, and the signer's refusal
/// only for a document that passed everything else.
#[test]
fn outbound_documents_failing_several_checks_get_the_first_checks_refusals() {
    let fixture = Fixture::new();
    let (th, sg, vn) = (fixture.th, fixture.sg, fixture.vn);
    let my = crate::testing::state("MY");
    let mut worker = fixture.worker();
    let now = OffsetDateTime::now_utc();
    let xml = |from, to| {
        fixture
            .document(DocumentKind::FormD, from, to)
            .to_xml_compact()
            .expect("xml")
            .into_bytes()
    };
    let ours = xml(vn, th);
    let truncated = ours[..ours.len() - 20].to_vec();
    let broken = breaking_its_xsd(&String::from_utf8(xml(th, my)).expect("UTF-8")).into_bytes();
    let misrouted = xml(th, my);
    let signed_ours = fixture
        .signed_by(vn, &fixture.document(DocumentKind::FormD, vn, th))
        .to_vec();
    let signed_theirs = fixture.partner_document(DocumentKind::FormD).to_vec();
    // Name, bytes, routing key, the codes refused with, and whether the header is known.
    type Case<'a> = (&'a str, &'a [u8], &'a str, &'a [&'a str], bool);
    let cases: [Case; 7] = [
        ("truncated", &truncated, "acdd", &["XML"], false),
        ("invalid and misrouted", &broken, "acdd", &["XSD"], true),
        (
            "misrouted",
            &misrouted,
            "acdd",
            &["ROUTE-001", "ROUTE-002", "ROUTE-003"],
            true,
        ),
        (
            "theirs, signed",
            &signed_theirs,
            "formd",
            &["ROUTE-002", "ROUTE-003"],
            true,
        ),
        (
            "ours, signed, another key",
            &signed_ours,
            "acdd",
            &["ROUTE-001"],
            true,
        ),
        (
            "ours, signed",
            &signed_ours,
            "formd",
            &["SIGN-ALREADY-SIGNED"],
            true,
        ),
        (
            "to SG, another key",
            &xml(vn, sg),
            "acdd",
            &["ROUTE-001"],
            true,
        ),
    ];
    for (name, bytes, key, expected, header) in cases {
        let refused = worker.outbound(bytes, key, now).expect_err(name);
        let codes: Vec<&str> = refused.refusals.iter().map(|r| r.code.as_str()).collect();
        if expected == ["XSD"] {
            // As many as the XSD finds, and nothing else.
            assert!(
                !codes.is_empty() && codes.iter().all(|c| *c == "XSD"),
                "{name}: {codes:?}"
            );
        } else {
            assert_eq!(codes, expected, "{name}");
        }
        assert_eq!(refused.header.is_some(), header, "{name}");
    }
}

#[test]
fn a_partner_the_file_lists_but_does_not_enable_is_refused_both_ways() {
    let fixture = Fixture::new();
    let mut worker = worker_with_th(&fixture, |row| {
        row.replace("enabled = true", "enabled = false")
    });
    let now = OffsetDateTime::now_utc();
    // Outbound: ROUTE-007 (not ROUTE-003: TH is known, only not enabled), before signing.
    let (_, formd) = fixture.back_office_document(DocumentKind::FormD);
    let refused = worker
        .outbound(&formd, "formd", now)
        .expect_err("TH is not enabled");
    let codes: Vec<&str> = refused.refusals.iter().map(|r| r.code.as_str()).collect();
    assert_eq!(codes, [ROUTE_DISABLED_RECEIVER]);
    assert_eq!(
        refused.refusals[0].text,
        "receiver TH is in the partners file but not enabled"
    );
    // Inbound: ROUTE-008, unauthenticated (never answered), before verification.
    let document = fixture.partner_document(DocumentKind::FormD);
    let refused = worker
        .inbound(&document, Some("partner-TH"), "TH", now)
        .expect_err("TH is not enabled");
    assert_eq!(refused.refusals[0].code, ROUTE_DISABLED_SENDER);
    assert_eq!(refused.authenticated, None);
    assert!(!refused.verified);
    // SG, enabled, is unaffected.
    let to_sg = fixture.document(DocumentKind::FormD, fixture.vn, fixture.sg);
    let bytes = to_sg.to_xml_compact().expect("xml");
    assert!(worker.outbound(bytes.as_bytes(), "formd", now).is_ok());
}

#[test]
fn a_kind_the_partner_may_not_send_or_does_not_receive_is_refused() {
    let fixture = Fixture::new();
    let mut worker = agreed_worker(&fixture);
    let now = OffsetDateTime::now_utc();
    // Inbound: TH may send an e-Form D, not an ACDD (ROUTE-006, after verification).
    let formd = fixture.partner_document(DocumentKind::FormD);
    assert!(
        worker
            .inbound(&formd, Some("partner-TH"), "TH", now)
            .is_ok()
    );
    let acdd = fixture.partner_document(DocumentKind::Acdd);
    let refused = worker
        .inbound(&acdd, Some("partner-TH"), "TH", now)
        .expect_err("TH may not send an ACDD");
    assert_eq!(refused.refusals[0].code, "ROUTE-006");
    assert!(refused.verified);
    // Outbound: TH receives an ACDD from us, not an e-Form D (ROUTE-005, before signing).
    let (_, acdd) = fixture.back_office_document(DocumentKind::Acdd);
    assert!(worker.outbound(&acdd, "acdd", now).is_ok());
    let (_, formd) = fixture.back_office_document(DocumentKind::FormD);
    let refused = worker
        .outbound(&formd, "formd", now)
        .expect_err("TH does not receive an e-Form D");
    assert_eq!(refused.refusals.len(), 1);
    assert_eq!(refused.refusals[0].code, "ROUTE-005");
}
