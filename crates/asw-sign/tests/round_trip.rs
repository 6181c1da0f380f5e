//! Signing and verifying every document kind with RSA-2048 and ECDSA P-256; the signed documents
//! still validate against the ASW schema; the signer refuses bad keys and bad documents; signers
//! and verifiers work side by side on several threads.

// A failed unwrap is a failed test.
#![allow(clippy::unwrap_used)]

mod common;

use std::sync::Arc;
use std::sync::mpsc;

use asw_model::xml::{self, Limits};
use asw_model::{DocumentKind, Header};
use asw_sign::keygen::{self, KeyAlgorithm};
use asw_sign::{SignError, SignatureAlgorithm, Signer, TrustStore, Verified, Verifier, uri};
use common::*;
use openssl::ec::{EcGroup, EcKey};
use openssl::nid::Nid;
use openssl::pkey::PKey;
use openssl::symm::Cipher;

fn assert_send_sync<T: Send + Sync>() {}

#[test]
fn shared_types_cross_threads() {
    assert_send_sync::<TrustStore>();
    assert_send_sync::<Verified>();
    assert_send_sync::<SignError>();
    assert_send_sync::<asw_sign::VerifyError>();
}

#[test]
fn every_kind_round_trips_with_rsa_and_ecdsa() {
    for (algorithm, expected) in [
        (KeyAlgorithm::Rsa2048, SignatureAlgorithm::RsaSha256),
        (KeyAlgorithm::EcP256, SignatureAlgorithm::EcdsaSha256),
    ] {
        let vn = party("VN", algorithm);
        let signer = Signer::new(&vn.key_pem, &vn.cert_pem).unwrap();
        assert_eq!(signer.algorithm(), expected);
        let trust = Arc::new(TrustStore::from_pem([(vn.state, vn.cert_pem.as_slice())]).unwrap());
        let verifier = Verifier::new(trust).unwrap();
        for kind in DocumentKind::ALL {
            let unsigned = sample_message(kind, "VN", "TH", 3);
            let signed = signer.sign(&unsigned).unwrap();
            let verified = verifier
                .verify(&signed, now())
                .unwrap_or_else(|e| panic!("{kind} {expected}: {} {e}", e.code()));
            let header = Header::read(&unsigned, &Limits::default()).unwrap();
            assert_eq!(verified.header(), &header, "{kind}");
            assert_eq!(verified.signer(), vn.state);
            assert_eq!(verified.bytes(), signed.as_slice());
            assert_eq!(verified.algorithm(), expected);
            assert_eq!(verified.fingerprint(), signer.certificate().fingerprint());
            assert_eq!(verified.fingerprint().len(), 64);
            assert_eq!(verified.subject(), "CN=aswhub VN, O=aswhub, C=VN");
            assert_schema_valid(&signed);
        }
    }
}

#[test]
fn signature_is_the_last_child_and_the_document_is_unchanged() {
    let vn = party("VN", KeyAlgorithm::EcP256);
    let signer = Signer::new(&vn.key_pem, &vn.cert_pem).unwrap();
    let unsigned = form_d("VN", "TH");
    let signed = signer.sign(&unsigned).unwrap();
    assert!(signed.starts_with(b"<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n"));
    let before = xml::parse(&unsigned, &Limits::default()).unwrap();
    let after = xml::parse(&signed, &Limits::default()).unwrap();
    assert_eq!(after.children.len(), before.children.len() + 1);
    assert_eq!(after.children[..2], before.children[..]);
    let signature = after.children.last().unwrap();
    assert!(signature.is(uri::DSIG, "Signature"));
    let signed_info = signature.child(uri::DSIG, "SignedInfo").unwrap();
    let reference = signed_info.child(uri::DSIG, "Reference").unwrap();
    assert_eq!(reference.attribute("URI"), Some(""));
    let transforms: Vec<_> = reference
        .child(uri::DSIG, "Transforms")
        .unwrap()
        .children
        .iter()
        .map(|t| t.attribute("Algorithm").unwrap())
        .collect();
    assert_eq!(transforms, [uri::ENVELOPED, uri::EXC_C14N]);
    assert_eq!(
        reference
            .child(uri::DSIG, "DigestMethod")
            .unwrap()
            .attribute("Algorithm"),
        Some(uri::SHA256)
    );
    assert_eq!(
        signed_info
            .child(uri::DSIG, "CanonicalizationMethod")
            .unwrap()
            .attribute("Algorithm"),
        Some(uri::EXC_C14N)
    );
    assert_eq!(
        signed_info
            .child(uri::DSIG, "SignatureMethod")
            .unwrap()
            .attribute("Algorithm"),
        Some(uri::ECDSA_SHA256)
    );
    assert!(
        signature
            .path(uri::DSIG, &["KeyInfo", "X509Data", "X509Certificate"])
            .is_some()
    );
}

#[test]
fn signer_refuses_weak_mismatched_unsupported_and_unreadable_keys() {
    let weak = rsa_party("VN", 1024);
    let err = Signer::new(&weak.key_pem, &weak.cert_pem).err().unwrap();
    assert_eq!(err.code(), "SIGN-WEAK-KEY");
    assert_eq!(
        err.to_string(),
        "the RSA 1024 key is too weak; RSA needs at least 2048 bits"
    );

    let vn = party("VN", KeyAlgorithm::Rsa2048);
    let th = party("TH", KeyAlgorithm::Rsa2048);
    let err = Signer::new(&vn.key_pem, &th.cert_pem).err().unwrap();
    assert!(matches!(err, SignError::KeyMismatch { .. }), "{err}");

    let p384 = PKey::from_ec_key(
        EcKey::generate(&EcGroup::from_curve_name(Nid::SECP384R1).unwrap()).unwrap(),
    )
    .unwrap();
    let cert =
        keygen::certificate(vn.state, &p384, now(), now() + time::Duration::days(1)).unwrap();
    let err = Signer::new(&p384.private_key_to_pem_pkcs8().unwrap(), &cert)
        .err()
        .unwrap();
    assert_eq!(err.code(), "SIGN-ALGORITHM");
    assert!(err.to_string().contains("EC secp384r1"), "{err}");

    let err = Signer::new(b"not a key", &vn.cert_pem).err().unwrap();
    assert_eq!(err.code(), "SIGN-KEY");
    let err = Signer::new(&vn.key_pem, b"not a certificate")
        .err()
        .unwrap();
    assert_eq!(err.code(), "SIGN-CERTIFICATE");

    // An encrypted key is refused without prompting on the terminal.
    let key = PKey::private_key_from_pem(&vn.key_pem).unwrap();
    let encrypted = key
        .private_key_to_pem_pkcs8_passphrase(Cipher::aes_256_cbc(), b"secret")
        .unwrap();
    let err = Signer::new(&encrypted, &vn.cert_pem).err().unwrap();
    assert_eq!(err.code(), "SIGN-KEY");
}

#[test]
fn signer_refuses_signed_unacceptable_and_non_asw_documents() {
    let vn = party("VN", KeyAlgorithm::EcP256);
    let signer = Signer::new(&vn.key_pem, &vn.cert_pem).unwrap();
    let signed = signer.sign(&form_d("VN", "TH")).unwrap();
    let err = signer.sign(&signed).unwrap_err();
    assert_eq!(err.code(), "SIGN-ALREADY-SIGNED");

    let dtd = String::from_utf8(form_d("VN", "TH")).unwrap().replacen(
        "?>",
        "?><!DOCTYPE m [<!ENTITY x SYSTEM \"file:///etc/passwd\">]>",
        1,
    );
    let err = signer.sign(dtd.as_bytes()).unwrap_err();
    assert_eq!(err.code(), "SIGN-DOCUMENT");
    assert!(err.to_string().contains("XML-DTD"), "{err}");

    let err = signer.sign(b"<a/>").unwrap_err();
    assert_eq!(err.code(), "SIGN-DOCUMENT");
    let err = signer
        .with_limits(Limits {
            max_bytes: 100,
            ..Limits::default()
        })
        .sign(&form_d("VN", "TH"))
        .unwrap_err();
    assert!(err.to_string().contains("XML-SIZE"), "{err}");
}

/// Every hostile shape the reader refuses is refused by the signer and the verifier with the
/// reader's rule, before libxml2 or libxmlsec1 see the bytes.
#[test]
fn hostile_shapes_are_refused_before_the_c_libraries() {
    let vn = party("VN", KeyAlgorithm::EcP256);
    let signer = Signer::new(&vn.key_pem, &vn.cert_pem).unwrap();
    let trust = Arc::new(TrustStore::from_pem([(vn.state, vn.cert_pem.as_slice())]).unwrap());
    let verifier = Verifier::new(trust).unwrap();
    for shape in asw_model::hostile::Shape::ALL {
        let Some(rule) = shape.refusal() else {
            continue;
        };
        let document = shape.document(Limits::DEFAULT_MAX_BYTES);
        let err = signer.sign(&document).unwrap_err();
        assert_eq!(err.code(), "SIGN-DOCUMENT", "{shape:?}: {err}");
        assert!(err.to_string().contains(rule), "{shape:?}: {err}");
        let err = verifier.verify(&document, now()).unwrap_err();
        assert!(
            matches!(&err, asw_sign::VerifyError::Xml(asw_model::ModelError::Xml { rule: r, .. }) if *r == rule),
            "{shape:?}: {err}"
        );
        assert_eq!(err.code(), "SIG-MALFORMED");
    }
    // A text node larger than libxml2's own 10,000,000-byte limit (an attachment in base64)
    // but within the document size limit is signed and verified.
    let attachment =
        asw_model::hostile::Shape::HugeText.signable_document(Limits::DEFAULT_MAX_BYTES - 4000);
    let signed = signer.sign(&attachment).unwrap();
    assert!(signed.len() <= Limits::DEFAULT_MAX_BYTES);
    verifier.verify(&signed, now()).unwrap();
}

#[test]
fn signers_and_verifiers_work_on_several_threads() {
    let vn = party("VN", KeyAlgorithm::Rsa2048);
    let th = party("TH", KeyAlgorithm::EcP256);
    let trust = Arc::new(
        TrustStore::from_pem([
            (vn.state, vn.cert_pem.as_slice()),
            (th.state, th.cert_pem.as_slice()),
        ])
        .unwrap(),
    );
    let (tx, rx) = mpsc::channel::<Verified>();
    let workers: Vec<_> = [vn, th]
        .into_iter()
        .map(|party| {
            let trust = Arc::clone(&trust);
            let tx = tx.clone();
            std::thread::spawn(move || {
                // Per-thread signer and verifier; only bytes, the trust store and proofs cross.
                let signer = Signer::new(&party.key_pem, &party.cert_pem).unwrap();
                let verifier = Verifier::new(trust).unwrap();
                let to = if party.state.code() == "VN" {
                    "TH"
                } else {
                    "VN"
                };
                for _ in 0..20 {
                    let signed = signer.sign(&form_d(party.state.code(), to)).unwrap();
                    tx.send(verifier.verify(&signed, now()).unwrap()).unwrap();
                }
            })
        })
        .collect();
    drop(tx);
    for worker in workers {
        worker.join().unwrap();
    }
    let proofs: Vec<Verified> = rx.iter().collect();
    assert_eq!(proofs.len(), 40);
    assert!(proofs.iter().all(|v| v.signer() == v.header().sender));
}

/// A document of many chunks (libxml2 reads the input and writes the output a few KB at a time):
/// the signed document is whole, verifies, and holds the same elements as the input.
#[test]
fn a_large_document_is_read_and_written_whole() {
    let vn = party("VN", KeyAlgorithm::EcP256);
    let signer = Signer::new(&vn.key_pem, &vn.cert_pem).unwrap();
    let trust = Arc::new(TrustStore::from_pem([(vn.state, vn.cert_pem.as_slice())]).unwrap());
    let verifier = Verifier::new(trust).unwrap();
    let unsigned = sample_message(DocumentKind::FormD, "VN", "TH", 400);
    assert!(unsigned.len() > 100_000, "{} bytes", unsigned.len());
    let signed = signer.sign(&unsigned).unwrap();
    assert!(signed.len() > unsigned.len());
    verifier.verify(&signed, now()).unwrap();
    let before = xml::parse(&unsigned, &Limits::default()).unwrap();
    let after = xml::parse(&signed, &Limits::default()).unwrap();
    assert_eq!(
        after.children[..after.children.len() - 1],
        before.children[..]
    );
    assert_schema_valid(&signed);
}

/// The verifier's read phase gives the header a message claims before anything is verified (a
/// forgery's too) and keeps the envelope header for a validator's screen; the verify phase then
/// decides exactly as `verify` does. The signer's read phase keeps the header the same way.
#[test]
fn the_read_phases_give_the_claimed_header_and_the_second_phases_decide() {
    let vn = party("VN", KeyAlgorithm::EcP256);
    let th = party("TH", KeyAlgorithm::EcP256);
    let trust = Arc::new(
        TrustStore::from_pem([
            (vn.state, vn.cert_pem.as_slice()),
            (th.state, th.cert_pem.as_slice()),
        ])
        .unwrap(),
    );
    let verifier = Verifier::new(trust).unwrap();
    let unsigned = sample_message(DocumentKind::FormD, "VN", "TH", 1);
    let genuine = Signer::new(&vn.key_pem, &vn.cert_pem)
        .unwrap()
        .sign(&unsigned)
        .unwrap();
    // Claims VN, signed by TH.
    let forged = Signer::new(&th.key_pem, &th.cert_pem)
        .unwrap()
        .sign(&unsigned)
        .unwrap();
    for (bytes, genuine) in [(&genuine, true), (&forged, false)] {
        let read = verifier.read(bytes::Bytes::copy_from_slice(bytes)).unwrap();
        assert_eq!(read.header().unwrap().sender, vn.state);
        let header = read
            .selection()
            .root
            .child(asw_model::ns::ENVELOPE, "Header");
        assert!(header.is_some());
        let decided = verifier
            .verify_read(read, now())
            .map(|(verified, _)| verified.header().clone());
        let whole = verifier
            .verify(bytes, now())
            .map(|verified| verified.header().clone());
        assert_eq!(decided, whole);
        assert_eq!(decided.is_ok(), genuine, "{decided:?}");
    }
    // Not well-formed: the read refuses; a header that cannot be read: the verify phase does.
    let truncated = bytes::Bytes::copy_from_slice(&genuine[..genuine.len() - 20]);
    let err = verifier.read(truncated).unwrap_err();
    assert!(matches!(err, asw_sign::VerifyError::Xml(_)), "{err}");
    let text = String::from_utf8(genuine.clone()).unwrap();
    let no_sender = text.replace("<asw:Sender>VN</asw:Sender>", "");
    assert_ne!(no_sender, text);
    let read = verifier.read(no_sender.into_bytes().into()).unwrap();
    assert!(read.header().is_none());
    let err = verifier.verify_read(read, now()).unwrap_err();
    assert!(matches!(err, asw_sign::VerifyError::Header(_)), "{err}");

    let signer = Signer::new(&vn.key_pem, &vn.cert_pem).unwrap();
    let read = signer.read(&unsigned).unwrap();
    assert!(
        read.selection()
            .root
            .child(asw_model::ns::ENVELOPE, "Header")
            .is_some()
    );
    let parsed = signer.parse_read(read).unwrap();
    let signed = signer.sign_parsed(parsed).unwrap();
    assert_eq!(verifier.verify(&signed, now()).unwrap().signer(), vn.state);
    let err = signer
        .parse_read(signer.read(&genuine).unwrap())
        .unwrap_err();
    assert_eq!(err.code(), "SIGN-ALREADY-SIGNED");
}
