//! Interoperability with the reference implementation, the `xmlsec1` command-line tool, in both
//! directions: our signatures verify with `xmlsec1 --verify`, and documents signed by
//! `xmlsec1 --sign` from a template of our profile verify with our verifier. `xmlsec1` must be
//! on PATH (CI installs it): without it these tests fail, they do not skip.

// A failed unwrap is a failed test.
#![allow(clippy::unwrap_used)]

mod common;

use std::ffi::OsStr;
use std::path::Path;
use std::sync::Arc;

use asw_model::DocumentKind;
use asw_sign::keygen::KeyAlgorithm;
use asw_sign::{Signer, TrustStore, Verifier, uri};
use common::*;

/// An unsigned message with a `ds:Signature` template appended, as a partner would write it.
fn template(unsigned: &[u8], method: &str, digest: &str) -> String {
    let signature = format!(
        r#"<ds:Signature xmlns:ds="http://www.w3.org/2000/09/xmldsig#">
<ds:SignedInfo>
<ds:CanonicalizationMethod Algorithm="{c14n}"/>
<ds:SignatureMethod Algorithm="{method}"/>
<ds:Reference URI="">
<ds:Transforms>
<ds:Transform Algorithm="{enveloped}"/>
<ds:Transform Algorithm="{c14n}"/>
</ds:Transforms>
<ds:DigestMethod Algorithm="{digest}"/>
<ds:DigestValue/>
</ds:Reference>
</ds:SignedInfo>
<ds:SignatureValue/>
<ds:KeyInfo><ds:X509Data/></ds:KeyInfo>
</ds:Signature>
</asw:Message>"#,
        c14n = uri::EXC_C14N,
        enveloped = uri::ENVELOPED,
    );
    String::from_utf8(unsigned.to_vec())
        .unwrap()
        .replacen("</asw:Message>", &signature, 1)
}

fn write(dir: &Path, name: &str, bytes: &[u8]) -> std::path::PathBuf {
    let path = dir.join(name);
    std::fs::write(&path, bytes).unwrap();
    path
}

/// `xmlsec1 --sign` of `template` with `party`'s key and certificate.
fn xmlsec1_sign(party: &Party, template: &str) -> Vec<u8> {
    let dir = tempfile::tempdir().unwrap();
    let key = write(dir.path(), "key.pem", &party.key_pem);
    let cert = write(dir.path(), "cert.pem", &party.cert_pem);
    let input = write(dir.path(), "template.xml", template.as_bytes());
    let output = dir.path().join("signed.xml");
    let mut key_and_cert = key.into_os_string();
    key_and_cert.push(",");
    key_and_cert.push(cert.as_os_str());
    let out = run_tool(
        "xmlsec1",
        &[
            OsStr::new("--sign"),
            OsStr::new("--privkey-pem"),
            &key_and_cert,
            OsStr::new("--enabled-reference-uris"),
            OsStr::new("empty"),
            OsStr::new("--output"),
            output.as_os_str(),
            input.as_os_str(),
        ],
    );
    assert!(
        out.status.success(),
        "xmlsec1 --sign failed:\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    std::fs::read(output).unwrap()
}

/// `xmlsec1 --verify` of `signed` with the public key of `cert_pem`; true if it verifies.
fn xmlsec1_verifies(signed: &[u8], cert_pem: &[u8], trusted: bool) -> bool {
    let dir = tempfile::tempdir().unwrap();
    let cert = write(dir.path(), "cert.pem", cert_pem);
    let input = write(dir.path(), "signed.xml", signed);
    let key_option = if trusted {
        "--trusted-pem"
    } else {
        "--pubkey-cert-pem"
    };
    let out = run_tool(
        "xmlsec1",
        &[
            OsStr::new("--verify"),
            OsStr::new(key_option),
            cert.as_os_str(),
            OsStr::new("--enabled-reference-uris"),
            OsStr::new("empty"),
            input.as_os_str(),
        ],
    );
    out.status.success()
}

#[test]
fn our_signatures_verify_with_xmlsec1() {
    for algorithm in [KeyAlgorithm::Rsa2048, KeyAlgorithm::EcP256] {
        let th = party("TH", algorithm);
        let signer = Signer::new(&th.key_pem, &th.cert_pem).unwrap();
        for kind in [DocumentKind::FormD, DocumentKind::AcddResponse] {
            let signed = signer.sign(&sample_message(kind, "TH", "VN", 4)).unwrap();
            assert!(
                xmlsec1_verifies(&signed, &th.cert_pem, false),
                "xmlsec1 --verify --pubkey-cert-pem refused our {algorithm:?} signature of {kind}:\n{}",
                String::from_utf8_lossy(&signed)
            );
            assert!(
                xmlsec1_verifies(&signed, &th.cert_pem, true),
                "xmlsec1 --verify --trusted-pem refused our {algorithm:?} signature of {kind}"
            );
            // And xmlsec1 notices tampering, so the checks above mean something.
            let tampered = String::from_utf8(signed).unwrap().replacen(
                "<asw:Receiver>VN<",
                "<asw:Receiver>SG<",
                1,
            );
            assert!(!xmlsec1_verifies(tampered.as_bytes(), &th.cert_pem, false));
        }
    }
}

#[test]
fn xmlsec1_signatures_verify_with_ours() {
    for (algorithm, method) in [
        (KeyAlgorithm::Rsa2048, uri::RSA_SHA256),
        (KeyAlgorithm::EcP256, uri::ECDSA_SHA256),
    ] {
        let sg = party("SG", algorithm);
        let trust = TrustStore::from_pem([(sg.state, sg.cert_pem.as_slice())]).unwrap();
        let verifier = Verifier::new(Arc::new(trust)).unwrap();
        for kind in [DocumentKind::Acdd, DocumentKind::FormDAck] {
            let unsigned = sample_message(kind, "SG", "MY", 2);
            let signed = xmlsec1_sign(&sg, &template(&unsigned, method, uri::SHA256));
            let verified = verifier.verify(&signed, now()).unwrap_or_else(|e| {
                panic!("{} {e}\n{}", e.code(), String::from_utf8_lossy(&signed))
            });
            assert_eq!(verified.signer(), sg.state);
            assert_eq!(verified.header().kind, kind);
            assert_schema_valid(&signed);
        }
    }
}

#[test]
fn xmlsec1_signatures_with_weak_algorithms_or_keys_are_refused() {
    let vn = party("VN", KeyAlgorithm::Rsa2048);
    let weak = rsa_party("VN", 1024);
    let trust = TrustStore::from_pem([(vn.state, vn.cert_pem.as_slice())]).unwrap();
    let verifier = Verifier::new(Arc::new(trust)).unwrap();
    let unsigned = form_d("VN", "TH");

    let sha1 = xmlsec1_sign(
        &vn,
        &template(
            &unsigned,
            uri::RSA_SHA256,
            "http://www.w3.org/2000/09/xmldsig#sha1",
        ),
    );
    assert!(
        xmlsec1_verifies(&sha1, &vn.cert_pem, false),
        "control: xmlsec1 accepts its own SHA-1"
    );
    let err = verifier.verify(&sha1, now()).unwrap_err();
    assert_eq!(err.code(), "SIG-ALGORITHM", "{err}");

    let rsa_sha1 = xmlsec1_sign(
        &vn,
        &template(
            &unsigned,
            "http://www.w3.org/2000/09/xmldsig#rsa-sha1",
            uri::SHA256,
        ),
    );
    let err = verifier.verify(&rsa_sha1, now()).unwrap_err();
    assert_eq!(err.code(), "SIG-ALGORITHM", "{err}");

    let rsa_1024 = xmlsec1_sign(&weak, &template(&unsigned, uri::RSA_SHA256, uri::SHA256));
    assert!(
        xmlsec1_verifies(&rsa_1024, &weak.cert_pem, false),
        "control: xmlsec1 accepts RSA-1024"
    );
    let err = verifier.verify(&rsa_1024, now()).unwrap_err();
    assert_eq!(err.code(), "SIG-WEAK-KEY", "{err}");
}
