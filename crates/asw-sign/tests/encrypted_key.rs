//! Encrypted PEM private keys sign once decrypted with their passphrase (PKCS#8 and traditional
//! encryption); a missing or wrong passphrase is a key error, never a prompt.

use std::sync::Arc;

use asw_model::MemberState;
use asw_model::sample::{self, SampleSpec};
use asw_sign::keygen::{self, KeyAlgorithm};
use asw_sign::{SignError, Signer, TrustStore, Verifier};
use openssl::pkey::PKey;
use openssl::symm::Cipher;
use time::OffsetDateTime;

#[test]
fn an_encrypted_key_signs_with_its_passphrase_only() {
    let vn = MemberState::from_alpha2("VN").expect("VN");
    let th = MemberState::from_alpha2("TH").expect("TH");
    let now = OffsetDateTime::now_utc();
    let key = keygen::generate(vn, KeyAlgorithm::Rsa2048, 30, now).expect("keygen");
    let pkey = PKey::private_key_from_pem(&key.key_pem).expect("key");
    let pkcs8 = pkey
        .private_key_to_pem_pkcs8_passphrase(Cipher::aes_256_cbc(), b"correct horse")
        .expect("encrypt");
    let traditional = pkey
        .rsa()
        .expect("rsa")
        .private_key_to_pem_passphrase(Cipher::aes_128_cbc(), b"correct horse")
        .expect("encrypt");
    assert!(String::from_utf8_lossy(&traditional).contains("Proc-Type: 4,ENCRYPTED"));
    let unsigned = sample::message(&SampleSpec {
        kind: asw_model::DocumentKind::FormD,
        from: vn,
        to: th,
        items: 1,
        seed: 7,
        created_at: SampleSpec::seeded_time(7),
    })
    .to_xml()
    .expect("xml");
    let trust = Arc::new(TrustStore::from_pem([(vn, key.cert_pem.as_slice())]).expect("trust"));
    for encrypted in [&pkcs8, &traditional] {
        let signer = Signer::with_passphrase(encrypted, Some("correct horse"), &key.cert_pem)
            .expect("decrypted");
        let signed = signer.sign(unsigned.as_bytes()).expect("sign");
        let verified = Verifier::new(trust.clone())
            .expect("verifier")
            .verify(&signed, now)
            .expect("verifies");
        assert_eq!(verified.signer(), vn);
        for (passphrase, says) in [
            (None, "give its passphrase"),
            (Some("wrong"), "cannot be decrypted"),
        ] {
            let Err(SignError::Key(text)) =
                Signer::with_passphrase(encrypted, passphrase, &key.cert_pem)
            else {
                panic!("{passphrase:?}: not a key error");
            };
            assert!(text.contains(says), "{text}");
        }
        assert!(matches!(
            Signer::new(encrypted, &key.cert_pem),
            Err(SignError::Key(_))
        ));
    }
    // An unencrypted key ignores a passphrase.
    Signer::with_passphrase(&key.key_pem, Some("unused"), &key.cert_pem).expect("plain key");
}
