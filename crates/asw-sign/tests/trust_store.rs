//! The trust store: several certificates per member state, reload without restart (also while
//! verifier threads run), the expiry report, and load errors that name the file at fault.

// A failed unwrap is a failed test.
#![allow(clippy::unwrap_used)]

mod common;

use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use asw_sign::keygen::KeyAlgorithm;
use asw_sign::{DEFAULT_EXPIRY_WARNING_DAYS, Signer, TrustError, TrustStore, Verifier};
use common::*;
use time::Duration;

fn sign(party: &Party, from: &str, to: &str) -> Vec<u8> {
    Signer::new(&party.key_pem, &party.cert_pem)
        .unwrap()
        .sign(&form_d(from, to))
        .unwrap()
}

#[test]
fn several_certificates_per_member_state() {
    let th_old = party("TH", KeyAlgorithm::Rsa2048);
    let th_new = party("TH", KeyAlgorithm::EcP256);
    let vn = party("VN", KeyAlgorithm::EcP256);
    let dir = trust_dir(&[&th_old, &th_new, &vn]);
    // Not certificates: ignored.
    std::fs::write(dir.path().join("TH/README.txt"), "rollover 2027").unwrap();
    std::fs::write(dir.path().join("TH/.swp"), "editor file").unwrap();
    std::fs::write(dir.path().join(".gitkeep"), "").unwrap();

    let trust = Arc::new(TrustStore::load(dir.path()).unwrap());
    let snapshot = trust.snapshot();
    assert_eq!(snapshot.len(), 3);
    assert_eq!(snapshot.for_state(state("TH")).count(), 2);
    assert_eq!(snapshot.for_state(state("MY")).count(), 0);
    assert!(
        snapshot
            .certificates()
            .iter()
            .all(|c| c.path().starts_with(dir.path()))
    );
    let verifier = Verifier::new(Arc::clone(&trust)).unwrap();
    for signer in [&th_old, &th_new] {
        let verified = verifier.verify(&sign(signer, "TH", "VN"), now()).unwrap();
        assert_eq!(verified.signer(), state("TH"));
    }
    assert!(verifier.verify(&sign(&vn, "VN", "TH"), now()).is_ok());
}

#[test]
fn reload_picks_up_added_and_removed_certificates() {
    let first = party("VN", KeyAlgorithm::Rsa2048);
    let second = party("VN", KeyAlgorithm::Rsa2048);
    let dir = trust_dir(&[&first]);
    let trust = Arc::new(TrustStore::load(dir.path()).unwrap());
    let verifier = Verifier::new(Arc::clone(&trust)).unwrap();
    let by_first = sign(&first, "VN", "TH");
    let by_second = sign(&second, "VN", "TH");
    assert!(verifier.verify(&by_first, now()).is_ok());
    assert_eq!(
        verifier.verify(&by_second, now()).unwrap_err().code(),
        "SIG-UNTRUSTED"
    );
    let generation = trust.generation();

    let added = add_to_trust_dir(dir.path(), &second, "vn-2027.pem");
    assert_eq!(trust.reload().unwrap(), 2);
    assert!(trust.generation() > generation);
    assert!(verifier.verify(&by_second, now()).is_ok());

    std::fs::remove_file(dir.path().join("VN/cert-0.pem")).unwrap();
    assert_eq!(trust.reload().unwrap(), 1);
    assert_eq!(
        verifier.verify(&by_first, now()).unwrap_err().code(),
        "SIG-UNTRUSTED"
    );
    assert!(verifier.verify(&by_second, now()).is_ok());

    // A broken edit is refused and the store keeps what it had.
    std::fs::write(
        &added,
        "-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n",
    )
    .unwrap();
    let err = trust.reload().unwrap_err();
    assert!(err.to_string().contains("vn-2027.pem"), "{err}");
    assert!(verifier.verify(&by_second, now()).is_ok());
}

#[test]
fn reload_while_verifier_threads_run() {
    let vn = party("VN", KeyAlgorithm::EcP256);
    let th = party("TH", KeyAlgorithm::EcP256);
    let dir = trust_dir(&[&vn]);
    let trust = Arc::new(TrustStore::load(dir.path()).unwrap());
    let by_vn = Arc::new(sign(&vn, "VN", "TH"));
    let stop = Arc::new(AtomicBool::new(false));
    let workers: Vec<_> = (0..2)
        .map(|_| {
            let (trust, by_vn, stop) = (Arc::clone(&trust), Arc::clone(&by_vn), Arc::clone(&stop));
            std::thread::spawn(move || {
                let verifier = Verifier::new(trust).unwrap();
                let mut verified = 0;
                while !stop.load(Ordering::Relaxed) || verified == 0 {
                    verifier.verify(&by_vn, now()).unwrap();
                    verified += 1;
                }
                verified
            })
        })
        .collect();
    for i in 0..10 {
        add_to_trust_dir(dir.path(), &th, &format!("th-{i}.pem"));
        trust.reload().unwrap();
    }
    stop.store(true, Ordering::Relaxed);
    for worker in workers {
        assert!(worker.join().unwrap() > 0);
    }
}

#[test]
fn expiry_report() {
    let soon = party_valid(
        "TH",
        KeyAlgorithm::EcP256,
        now() - Duration::days(300),
        now() + Duration::days(10),
    );
    let later = party_valid(
        "TH",
        KeyAlgorithm::EcP256,
        now() - Duration::days(1),
        now() + Duration::days(200),
    );
    let expired = party_valid(
        "VN",
        KeyAlgorithm::EcP256,
        now() - Duration::days(300),
        now() - Duration::days(3),
    );
    let dir = trust_dir(&[&soon, &later, &expired]);
    let trust = TrustStore::load(dir.path()).unwrap();
    let report = trust.expiring_within(DEFAULT_EXPIRY_WARNING_DAYS, now());
    let mut states: Vec<_> = report
        .iter()
        .map(|c| (c.member_state().code(), c.info().days_left(now())))
        .collect();
    states.sort();
    assert_eq!(states, [("TH", 9), ("VN", -3)]);
    assert_eq!(trust.expiring_within(5, now()).len(), 1);
    assert_eq!(trust.expiring_within(365, now()).len(), 3);
    // Sorted by member state, then by end of validity.
    let order: Vec<_> = trust
        .snapshot()
        .certificates()
        .iter()
        .map(|c| c.info().days_left(now()))
        .collect();
    assert_eq!(order, [9, 199, -3]);
}

fn load_error(dir: &Path) -> TrustError {
    TrustStore::load(dir).unwrap_err()
}

#[test]
fn load_errors_name_the_file() {
    let vn = party("VN", KeyAlgorithm::EcP256);

    let dir = trust_dir(&[&vn]);
    std::fs::create_dir(dir.path().join("XX")).unwrap();
    let err = load_error(dir.path());
    assert!(matches!(err, TrustError::UnknownFolder { .. }), "{err}");
    assert!(err.to_string().contains("/XX: unknown folder"), "{err}");

    let dir = trust_dir(&[]);
    std::fs::create_dir(dir.path().join("vn")).unwrap();
    assert!(matches!(
        load_error(dir.path()),
        TrustError::UnknownFolder { .. }
    ));

    let dir = trust_dir(&[&vn]);
    std::fs::write(dir.path().join("VN.pem"), &vn.cert_pem).unwrap();
    let err = load_error(dir.path());
    assert!(err.to_string().contains("VN.pem: not a folder"), "{err}");

    let dir = trust_dir(&[&vn]);
    std::fs::write(dir.path().join("VN/garbage.pem"), "hello").unwrap();
    let err = load_error(dir.path());
    assert!(
        err.to_string()
            .contains("garbage.pem: holds no certificate"),
        "{err}"
    );

    let dir = trust_dir(&[&vn]);
    let pem = String::from_utf8(vn.cert_pem.clone()).unwrap();
    let broken = pem.replacen("MII", "M!I", 1);
    std::fs::write(dir.path().join("VN/broken.pem"), broken).unwrap();
    let err = load_error(dir.path());
    assert!(matches!(err, TrustError::Pem { .. }), "{err}");
    assert!(err.to_string().contains("broken.pem"), "{err}");

    let dir = trust_dir(&[&vn]);
    std::fs::write(dir.path().join("VN/key.pem"), &vn.key_pem).unwrap();
    let err = load_error(dir.path());
    assert!(
        err.to_string().contains("key.pem: holds a private key"),
        "{err}"
    );

    let weak = rsa_party("VN", 1024);
    let dir = trust_dir(&[&weak]);
    let err = load_error(dir.path());
    assert!(err.to_string().contains("RSA 1024"), "{err}");
    assert!(err.to_string().contains("cert-0.pem"), "{err}");

    let dir = trust_dir(&[&vn]);
    std::fs::create_dir(dir.path().join("TH")).unwrap();
    std::fs::write(dir.path().join("TH/copy.pem"), &vn.cert_pem).unwrap();
    let err = load_error(dir.path());
    assert!(matches!(err, TrustError::Duplicate { .. }), "{err}");
    assert!(err.to_string().contains("TH/copy.pem"), "{err}");

    let err = load_error(Path::new("/nonexistent/trust"));
    assert!(
        err.to_string()
            .starts_with("/nonexistent/trust: cannot read"),
        "{err}"
    );

    let memory = TrustStore::from_pem([(vn.state, vn.cert_pem.as_slice())]).unwrap();
    assert!(matches!(memory.reload(), Err(TrustError::NotReloadable)));
}
