//! Every way a message must be refused, each with its reason code: tampering, wrong or foreign
//! certificates, expired and not-yet-valid certificates, missing, multiple and misplaced
//! signatures, signature wrapping, weak algorithms and keys, hostile XML.

// A failed unwrap is a failed test.
#![allow(clippy::unwrap_used)]

mod common;

use std::sync::Arc;

use asw_model::DocumentKind;
use asw_sign::keygen::KeyAlgorithm;
use asw_sign::{Signer, TrustStore, Verified, Verifier, VerifyError};
use common::*;
use time::Duration;

struct World {
    vn: Party,
    th: Party,
    my: Party,
    verifier: Verifier,
}

/// VN (RSA), TH (EC) and MY (RSA) are trusted, each for itself.
fn world() -> World {
    let vn = party("VN", KeyAlgorithm::Rsa2048);
    let th = party("TH", KeyAlgorithm::EcP256);
    let my = party("MY", KeyAlgorithm::Rsa2048);
    let trust = TrustStore::from_pem([
        (vn.state, vn.cert_pem.as_slice()),
        (th.state, th.cert_pem.as_slice()),
        (my.state, my.cert_pem.as_slice()),
    ])
    .unwrap();
    let verifier = Verifier::new(Arc::new(trust)).unwrap();
    World {
        vn,
        th,
        my,
        verifier,
    }
}

fn sign(party: &Party, xml: &[u8]) -> String {
    let signer = Signer::new(&party.key_pem, &party.cert_pem).unwrap();
    String::from_utf8(signer.sign(xml).unwrap()).unwrap()
}

fn refuse(world: &World, xml: &str) -> VerifyError {
    match world.verifier.verify(xml.as_bytes(), now()) {
        Ok(verified) => panic!("accepted: {verified:?}\n{xml}"),
        Err(e) => e,
    }
}

fn assert_code(world: &World, xml: &str, code: &str) -> VerifyError {
    let err = refuse(world, xml);
    assert_eq!(err.code(), code, "{err}");
    err
}

/// The `<ds:Signature ...>...</ds:Signature>` text of a signed document.
fn signature_text(signed: &str) -> &str {
    let start = signed.find("<ds:Signature").unwrap();
    let end = signed.find("</ds:Signature>").unwrap() + "</ds:Signature>".len();
    &signed[start..end]
}

fn between<'a>(text: &'a str, open: &str, close: &str) -> &'a str {
    let start = text.find(open).unwrap() + open.len();
    let end = start + text[start..].find(close).unwrap();
    &text[start..end]
}

#[test]
fn the_signed_document_itself_verifies() {
    let w = world();
    let signed = sign(&w.vn, &form_d("VN", "TH"));
    let verified: Verified = w.verifier.verify(signed.as_bytes(), now()).unwrap();
    assert_eq!(verified.signer(), w.vn.state);
}

#[test]
fn tampered_content_header_or_signature_value() {
    let w = world();
    let signed = sign(&w.vn, &form_d("VN", "TH"));
    let count = between(&signed, "<fd:Count>", "</fd:Count>");
    let tampered = signed.replacen(
        &format!("<fd:Count>{count}</fd:Count>"),
        &format!("<fd:Count>{count}0</fd:Count>"),
        1,
    );
    let err = assert_code(&w, &tampered, "SIG-DIGEST");
    assert_eq!(
        err.to_string(),
        "the digest does not match: the signed content was changed"
    );
    let rerouted = signed.replacen("<asw:Receiver>TH<", "<asw:Receiver>SG<", 1);
    assert_code(&w, &rerouted, "SIG-DIGEST");
    let commented = signed.replacen("<asw:Body>", "<asw:Body><fd:Note>added</fd:Note>", 1);
    assert_code(&w, &commented, "SIG-DIGEST");

    let value = between(&signed, "<ds:SignatureValue>", "</ds:SignatureValue>");
    let mut flipped = value.to_owned().into_bytes();
    flipped[10] = if flipped[10] == b'A' { b'B' } else { b'A' };
    let bad_value = signed.replacen(value, std::str::from_utf8(&flipped).unwrap(), 1);
    assert_code(&w, &bad_value, "SIG-INVALID");
    let digest = between(&signed, "<ds:DigestValue>", "</ds:DigestValue>");
    let bad_digest = signed.replacen(digest, "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=", 1);
    assert_code(&w, &bad_digest, "SIG-DIGEST");
}

#[test]
fn comments_and_cdata_do_not_change_what_is_signed_or_read() {
    // Exclusive c14n without comments ignores comments and CDATA markup, and so does the
    // bounded reader: the header read is the one that was signed (no comment truncation).
    let w = world();
    let signed = sign(&w.vn, &form_d("VN", "TH"));
    let commented = signed
        .replacen("<asw:Sender>VN<", "<asw:Sender>V<!-- x -->N<", 1)
        .replacen("<asw:Receiver>TH<", "<asw:Receiver><![CDATA[TH]]><", 1);
    let verified = w.verifier.verify(commented.as_bytes(), now()).unwrap();
    assert_eq!(verified.header().sender.code(), "VN");
    assert_eq!(verified.header().receiver.code(), "TH");
    assert_eq!(verified.bytes(), commented.as_bytes());
}

#[test]
fn certificate_not_in_the_trust_store() {
    let w = world();
    let stranger = party("VN", KeyAlgorithm::Rsa2048);
    let signed = sign(&stranger, &form_d("VN", "TH"));
    let err = assert_code(&w, &signed, "SIG-UNTRUSTED");
    assert!(matches!(err, VerifyError::Untrusted { .. }), "{err:?}");
    assert!(
        err.to_string().contains("not trusted for sender VN"),
        "{err}"
    );
}

#[test]
fn certificate_of_another_member_state_is_a_forgery() {
    let w = world();
    // MY signs, validly, a document that claims to come from TH.
    let forged = sign(&w.my, &form_d("TH", "VN"));
    let err = assert_code(&w, &forged, "SIG-UNTRUSTED");
    assert!(
        matches!(err, VerifyError::ForeignCertificate { .. }),
        "{err:?}"
    );
    assert!(
        err.to_string()
            .starts_with("the document claims sender TH but is signed with a certificate of MY"),
        "{err}"
    );
    // The same certificate is fine for MY's own documents.
    let genuine = sign(&w.my, &form_d("MY", "VN"));
    assert!(w.verifier.verify(genuine.as_bytes(), now()).is_ok());
}

#[test]
fn key_info_swapped_for_another_trusted_certificate() {
    // The verifier uses the key of the trusted certificate it matched, never KeyInfo's key alone:
    // a signature by one VN key with KeyInfo naming another trusted VN certificate fails.
    let vn_old = party("VN", KeyAlgorithm::Rsa2048);
    let vn_new = party("VN", KeyAlgorithm::Rsa2048);
    let trust = TrustStore::from_pem([
        (vn_old.state, vn_old.cert_pem.as_slice()),
        (vn_new.state, vn_new.cert_pem.as_slice()),
    ])
    .unwrap();
    let verifier = Verifier::new(Arc::new(trust)).unwrap();
    let by_old = sign(&vn_old, &form_d("VN", "TH"));
    let by_new = sign(&vn_new, &form_d("VN", "TH"));
    let old_cert = between(&by_old, "<ds:X509Certificate>", "</ds:X509Certificate>");
    let new_cert = between(&by_new, "<ds:X509Certificate>", "</ds:X509Certificate>");
    let swapped = by_old.replacen(old_cert, new_cert, 1);
    let err = verifier.verify(swapped.as_bytes(), now()).unwrap_err();
    assert_eq!(err.code(), "SIG-INVALID", "{err}");
}

#[test]
fn expired_and_not_yet_valid_certificates() {
    let expired = party_valid(
        "VN",
        KeyAlgorithm::EcP256,
        now() - Duration::days(400),
        now() - Duration::days(1),
    );
    let future = party_valid(
        "TH",
        KeyAlgorithm::EcP256,
        now() + Duration::days(1),
        now() + Duration::days(400),
    );
    let trust = TrustStore::from_pem([
        (expired.state, expired.cert_pem.as_slice()),
        (future.state, future.cert_pem.as_slice()),
    ])
    .unwrap();
    let verifier = Verifier::new(Arc::new(trust)).unwrap();

    let signed = sign(&expired, &form_d("VN", "TH"));
    let err = verifier.verify(signed.as_bytes(), now()).unwrap_err();
    assert_eq!(err.code(), "SIG-EXPIRED", "{err}");
    assert!(err.to_string().contains("expired at 20"), "{err}");
    // Checked at the time given: the same document was fine while the certificate was valid.
    assert!(
        verifier
            .verify(signed.as_bytes(), now() - Duration::days(2))
            .is_ok()
    );

    let signed = sign(&future, &form_d("TH", "VN"));
    let err = verifier.verify(signed.as_bytes(), now()).unwrap_err();
    assert_eq!(err.code(), "SIG-NOT-YET-VALID", "{err}");
    assert!(
        verifier
            .verify(signed.as_bytes(), now() + Duration::days(2))
            .is_ok()
    );
}

#[test]
fn missing_and_multiple_signatures() {
    let w = world();
    let unsigned = String::from_utf8(form_d("VN", "TH")).unwrap();
    let err = assert_code(&w, &unsigned, "SIG-MISSING");
    assert_eq!(
        err.to_string(),
        "the document is not signed: no ds:Signature"
    );

    let signed = sign(&w.vn, &form_d("VN", "TH"));
    let signature = signature_text(&signed);
    let twice = signed.replacen("</asw:Message>", &format!("{signature}</asw:Message>"), 1);
    let err = assert_code(&w, &twice, "SIG-MULTIPLE");
    assert!(err.to_string().contains("2 ds:Signature elements"), "{err}");

    // A second signature hidden in the body counts too.
    let hidden = signed.replacen("<asw:Body>", &format!("<asw:Body>{signature}"), 1);
    assert_code(&w, &hidden, "SIG-MULTIPLE");
}

#[test]
fn signature_moved_inside_the_body_or_not_last() {
    let w = world();
    let signed = sign(&w.vn, &form_d("VN", "TH"));
    let signature = signature_text(&signed);
    let moved = signed.replacen(signature, "", 1).replacen(
        "</asw:Body>",
        &format!("{signature}</asw:Body>"),
        1,
    );
    let err = assert_code(&w, &moved, "SIG-WRAPPING");
    assert!(
        err.to_string()
            .contains("ds:Signature is not a child of the root element"),
        "{err}"
    );

    let before_body = signed.replacen(signature, "", 1).replacen(
        "<asw:Body>",
        &format!("{signature}<asw:Body>"),
        1,
    );
    let err = assert_code(&w, &before_body, "SIG-WRAPPING");
    assert!(err.to_string().contains("not the last child"), "{err}");
}

#[test]
fn wrapping_with_a_copied_signed_element() {
    let w = world();
    let genuine = sign(&w.vn, &form_d("VN", "TH"));
    let body = format!(
        "<asw:Body>{}</asw:Body>",
        between(&genuine, "<asw:Body>", "</asw:Body>")
    );
    let evil_body = body.replacen("<fd:Count>", "<fd:Count>9", 1);

    // Classic wrapping: the original signed body is kept inside ds:Object, the real one changed.
    let signature = signature_text(&genuine);
    let with_object = signature.replacen(
        "</ds:Signature>",
        &format!("<ds:Object>{body}</ds:Object></ds:Signature>"),
        1,
    );
    let wrapped = genuine
        .replacen(signature, &with_object, 1)
        .replacen(&body, &evil_body, 1);
    let err = assert_code(&w, &wrapped, "SIG-WRAPPING");
    assert!(err.to_string().contains("ds:Object"), "{err}");

    // The copy kept as a second Body elsewhere in the document: the digest covers everything.
    let copied = genuine.replacen(&body, &format!("{evil_body}{body}"), 1);
    assert_code(&w, &copied, "SIG-DIGEST");

    // The whole genuine message wrapped inside a forged one, signature moved to the new root.
    let inner = genuine
        .trim_start_matches("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n")
        .replacen(signature, "", 1);
    let forged = String::from_utf8(form_d("VN", "SG")).unwrap().replacen(
        "</asw:Body>",
        &format!("</asw:Body><x:W xmlns:x=\"urn:x\">{inner}</x:W>{signature}"),
        1,
    );
    let err = refuse(&w, &forged);
    assert!(
        ["SIG-DIGEST", "SIG-WRAPPING"].contains(&err.code()),
        "{err}"
    );
}

#[test]
fn references_other_than_the_whole_document() {
    let w = world();
    let signed = sign(&w.vn, &form_d("VN", "TH"));
    let by_id = signed
        .replacen("<asw:Body>", "<asw:Body Id=\"x\">", 1)
        .replacen("<ds:Reference URI=\"\">", "<ds:Reference URI=\"#x\">", 1);
    let err = assert_code(&w, &by_id, "SIG-WRAPPING");
    assert!(err.to_string().contains("Reference URI \"#x\""), "{err}");
    let external = signed.replacen(
        "<ds:Reference URI=\"\">",
        "<ds:Reference URI=\"http://example.org/doc.xml\">",
        1,
    );
    assert_code(&w, &external, "SIG-WRAPPING");
    let no_uri = signed.replacen("<ds:Reference URI=\"\">", "<ds:Reference>", 1);
    assert_code(&w, &no_uri, "SIG-WRAPPING");

    let reference = format!(
        "<ds:Reference URI=\"\">{}</ds:Reference>",
        between(&signed, "<ds:Reference URI=\"\">", "</ds:Reference>")
    );
    let two = signed.replacen(&reference, &format!("{reference}{reference}"), 1);
    let err = assert_code(&w, &two, "SIG-WRAPPING");
    assert!(err.to_string().contains("2 References"), "{err}");
}

#[test]
fn transforms_other_than_enveloped_then_exclusive_c14n() {
    let w = world();
    let signed = sign(&w.vn, &form_d("VN", "TH"));
    let xpath = signed.replacen(
        "</ds:Transforms>",
        "<ds:Transform Algorithm=\"http://www.w3.org/TR/1999/REC-xpath-19991116\"><ds:XPath>not(ancestor-or-self::asw:Body)</ds:XPath></ds:Transform></ds:Transforms>",
        1,
    );
    assert_code(&w, &xpath, "SIG-WRAPPING");
    let only_enveloped = signed.replacen(
        "<ds:Transform Algorithm=\"http://www.w3.org/2001/10/xml-exc-c14n#\"/>",
        "",
        1,
    );
    assert_code(&w, &only_enveloped, "SIG-WRAPPING");
    let xslt = signed.replacen(
        "http://www.w3.org/2001/10/xml-exc-c14n#\"/>\n</ds:Transforms>",
        "http://www.w3.org/TR/1999/REC-xslt-19991116\"/>\n</ds:Transforms>",
        1,
    );
    assert_code(&w, &xslt, "SIG-WRAPPING");
}

#[test]
fn weak_and_foreign_algorithms() {
    let w = world();
    let signed = sign(&w.vn, &form_d("VN", "TH"));
    let sha1 = signed.replacen(
        "http://www.w3.org/2001/04/xmlenc#sha256",
        "http://www.w3.org/2000/09/xmldsig#sha1",
        1,
    );
    let err = assert_code(&w, &sha1, "SIG-ALGORITHM");
    assert!(err.to_string().contains("SHA-1 is weak"), "{err}");
    let rsa_sha1 = signed.replacen(
        "http://www.w3.org/2001/04/xmldsig-more#rsa-sha256",
        "http://www.w3.org/2000/09/xmldsig#rsa-sha1",
        1,
    );
    let err = assert_code(&w, &rsa_sha1, "SIG-ALGORITHM");
    assert!(err.to_string().contains("SHA-1 is weak"), "{err}");
    let hmac = signed.replacen(
        "http://www.w3.org/2001/04/xmldsig-more#rsa-sha256",
        "http://www.w3.org/2001/04/xmldsig-more#hmac-sha256",
        1,
    );
    assert_code(&w, &hmac, "SIG-ALGORITHM");
    let inclusive = signed.replacen(
        "<ds:CanonicalizationMethod Algorithm=\"http://www.w3.org/2001/10/xml-exc-c14n#\"/>",
        "<ds:CanonicalizationMethod Algorithm=\"http://www.w3.org/TR/2001/REC-xml-c14n-20010315\"/>",
        1,
    );
    assert_code(&w, &inclusive, "SIG-ALGORITHM");
    // A signature method that does not fit the trusted certificate's key.
    let mismatch = signed.replacen(
        "http://www.w3.org/2001/04/xmldsig-more#rsa-sha256",
        "http://www.w3.org/2001/04/xmldsig-more#ecdsa-sha256",
        1,
    );
    let err = assert_code(&w, &mismatch, "SIG-ALGORITHM");
    assert!(err.to_string().contains("does not fit"), "{err}");
}

#[test]
fn weak_rsa_1024_certificate() {
    let w = world();
    let weak = rsa_party("VN", 1024);
    let signed = sign(&w.vn, &form_d("VN", "TH"));
    let weak_b64: String = String::from_utf8(weak.cert_pem.clone())
        .unwrap()
        .lines()
        .filter(|l| !l.starts_with("-----"))
        .collect();
    let cert = between(&signed, "<ds:X509Certificate>", "</ds:X509Certificate>");
    let swapped = signed.replacen(cert, &weak_b64, 1);
    let err = assert_code(&w, &swapped, "SIG-WEAK-KEY");
    assert!(err.to_string().contains("weak RSA 1024 key"), "{err}");
}

#[test]
fn incomplete_signatures_are_malformed() {
    let w = world();
    let signed = sign(&w.vn, &form_d("VN", "TH"));
    let key_info = format!(
        "<ds:KeyInfo>{}</ds:KeyInfo>",
        between(&signed, "<ds:KeyInfo>", "</ds:KeyInfo>")
    );
    let no_key_info = signed.replacen(&key_info, "", 1);
    assert_code(&w, &no_key_info, "SIG-MALFORMED");
    let no_cert = signed.replacen(&key_info, "<ds:KeyInfo><ds:X509Data/></ds:KeyInfo>", 1);
    assert_code(&w, &no_cert, "SIG-MALFORMED");
    let cert = between(&signed, "<ds:X509Certificate>", "</ds:X509Certificate>");
    let garbage_cert = signed.replacen(cert, "bm90IGEgY2VydGlmaWNhdGU=", 1);
    assert_code(&w, &garbage_cert, "SIG-MALFORMED");
    let not_base64 = signed.replacen(cert, "%%%", 1);
    assert_code(&w, &not_base64, "SIG-MALFORMED");
    let bad_sender = signed.replacen("<asw:Sender>VN<", "<asw:Sender>XX<", 1);
    let err = assert_code(&w, &bad_sender, "SIG-MALFORMED");
    assert!(matches!(err, VerifyError::Header(_)), "{err:?}");
}

#[test]
fn garbage_truncated_and_dtd_input() {
    let w = world();
    for garbage in ["", "garbage", "<", "\u{feff}", "<asw:Message>", "<a></b>"] {
        assert_code(&w, garbage, "SIG-MALFORMED");
    }
    assert_eq!(
        w.verifier
            .verify(b"\xff\xfe<\x00a\x00/\x00>\x00", now())
            .unwrap_err()
            .code(),
        "SIG-MALFORMED"
    );
    let signed = sign(&w.th, &form_d("TH", "VN"));
    let truncated = &signed[..signed.len() / 2];
    assert_code(&w, truncated, "SIG-MALFORMED");

    let xxe = signed.replacen(
        "?>",
        "?>\n<!DOCTYPE asw:Message [<!ENTITY xxe SYSTEM \"file:///etc/passwd\">]>",
        1,
    );
    let xxe = xxe.replacen("<fd:Count>", "<fd:Count>&xxe;", 1);
    let err = assert_code(&w, &xxe, "SIG-MALFORMED");
    assert!(err.to_string().contains("DOCTYPE is not allowed"), "{err}");
    let laughs = signed.replacen(
        "?>",
        "?>\n<!DOCTYPE m [<!ENTITY a \"aaaa\"><!ENTITY b \"&a;&a;&a;&a;\">]>",
        1,
    );
    assert_code(&w, &laughs, "SIG-MALFORMED");
    let entity = signed.replacen("<fd:Count>", "<fd:Count>&undefined;", 1);
    assert_code(&w, &entity, "SIG-MALFORMED");
}

#[test]
fn hostile_bytes_never_panic_and_truncations_never_verify() {
    let w = world();
    for kind in [DocumentKind::FormDAck, DocumentKind::AcddResponse] {
        let signed = sign(&w.vn, &sample_message(kind, "VN", "TH", 1));
        let bytes = signed.as_bytes();
        for cut in (0..bytes.len()).step_by(37) {
            assert!(
                w.verifier.verify(&bytes[..cut], now()).is_err(),
                "cut at {cut}"
            );
        }
        // Flip bytes all over the document: errors or (for insignificant bytes) success, never a
        // panic or a crash inside the C libraries.
        let mut state = 0x2545_f491_4f6c_dd1d_u64;
        for _ in 0..400 {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            let mut mutated = bytes.to_vec();
            let at = usize::try_from(state % bytes.len() as u64).unwrap();
            mutated[at] ^= 1 << (state >> 61);
            let _ = w.verifier.verify(&mutated, now());
        }
    }
}
