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
use openssl::x509::extension::KeyUsage;
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

    // A broken edit fails closed: the certificate that file held is no longer trusted, and the
    // error says so and names the file.
    std::fs::write(
        &added,
        "-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n",
    )
    .unwrap();
    let generation = trust.generation();
    let err = trust.reload().unwrap_err();
    assert!(matches!(err, TrustError::Incomplete(_)), "{err}");
    let text = err.to_string();
    assert!(
        text.starts_with(
            "the trust store was reloaded with 0 certificate(s); 1 bad file(s) or folder(s) \
             skipped, their certificates not trusted: /"
        ),
        "{text}"
    );
    assert!(
        text.contains("VN/vn-2027.pem: not a readable PEM certificate: "),
        "{text}"
    );
    assert!(trust.generation() > generation);
    assert_eq!(trust.snapshot().len(), 0);
    assert_eq!(
        verifier.verify(&by_second, now()).unwrap_err().code(),
        "SIG-UNTRUSTED"
    );
}

#[test]
fn reload_applies_what_it_can_read_and_reports_the_rest() {
    let kept = party("VN", KeyAlgorithm::EcP256);
    let removed = party("VN", KeyAlgorithm::EcP256);
    let broken = party("TH", KeyAlgorithm::EcP256);
    let added = party("MY", KeyAlgorithm::EcP256);
    let dir = trust_dir(&[&kept, &removed, &broken]);
    let trust = Arc::new(TrustStore::load(dir.path()).unwrap());
    let verifier = Verifier::new(Arc::clone(&trust)).unwrap();
    let by_kept = sign(&kept, "VN", "TH");
    let by_removed = sign(&removed, "VN", "TH");
    let by_broken = sign(&broken, "TH", "VN");
    let by_added = sign(&added, "MY", "TH");
    for signed in [&by_kept, &by_removed, &by_broken] {
        assert!(verifier.verify(signed, now()).is_ok());
    }

    // One certificate removed, one added, one file broken, and three mistakes beside them.
    std::fs::remove_file(dir.path().join("VN/cert-1.pem")).unwrap();
    add_to_trust_dir(dir.path(), &added, "my.pem");
    std::fs::write(dir.path().join("TH/cert-2.pem"), "no longer a certificate").unwrap();
    std::fs::create_dir(dir.path().join("XX")).unwrap();
    std::fs::write(dir.path().join("notes.pem"), &kept.cert_pem).unwrap();
    std::fs::write(dir.path().join("MY/key.pem"), &added.key_pem).unwrap();

    let report = trust.reload_report().unwrap();
    assert_eq!(report.loaded, 2);
    let problems: Vec<String> = report
        .problems
        .iter()
        .map(|p| {
            let path = p.path().unwrap();
            assert!(
                p.to_string().starts_with(&path.display().to_string()),
                "{p}"
            );
            let path = path.strip_prefix(dir.path()).unwrap();
            format!("{}: {}", path.display(), kind(p))
        })
        .collect();
    assert_eq!(
        problems,
        [
            "MY/key.pem: private key",
            "TH/cert-2.pem: no certificate",
            "XX: unknown folder",
            "notes.pem: not a folder",
        ]
    );
    assert!(verifier.verify(&by_kept, now()).is_ok());
    assert!(verifier.verify(&by_added, now()).is_ok());
    for signed in [&by_removed, &by_broken] {
        assert_eq!(
            verifier.verify(signed, now()).unwrap_err().code(),
            "SIG-UNTRUSTED"
        );
    }

    // Mended: everything is back, with no problem left.
    std::fs::remove_file(dir.path().join("MY/key.pem")).unwrap();
    std::fs::remove_file(dir.path().join("notes.pem")).unwrap();
    std::fs::remove_dir(dir.path().join("XX")).unwrap();
    add_to_trust_dir(dir.path(), &broken, "cert-2.pem");
    assert_eq!(trust.reload().unwrap(), 3);
    assert!(verifier.verify(&by_broken, now()).is_ok());
}

fn kind(problem: &TrustError) -> &'static str {
    match problem {
        TrustError::Io { .. } => "cannot read",
        TrustError::UnknownFolder { .. } => "unknown folder",
        TrustError::NotAFolder { .. } => "not a folder",
        TrustError::Pem { .. } => "PEM",
        TrustError::NoCertificate { .. } => "no certificate",
        TrustError::PrivateKey { .. } => "private key",
        TrustError::Key { .. } => "key",
        TrustError::Duplicate { .. } => "duplicate",
        TrustError::KeyUsage { .. } => "key usage",
        TrustError::NotReloadable => "not reloadable",
        TrustError::Incomplete(_) => "incomplete",
    }
}

#[test]
fn reload_trusts_a_certificate_found_for_two_member_states_for_neither() {
    let vn = party("VN", KeyAlgorithm::EcP256);
    let vn_next = party("VN", KeyAlgorithm::EcP256);
    let th = party("TH", KeyAlgorithm::EcP256);
    let dir = trust_dir(&[&th]);
    // Two certificates in one file.
    let both = [vn.cert_pem.as_slice(), vn_next.cert_pem.as_slice()].concat();
    std::fs::create_dir(dir.path().join("VN")).unwrap();
    std::fs::write(dir.path().join("VN/vn.pem"), both).unwrap();
    let trust = Arc::new(TrustStore::load(dir.path()).unwrap());
    assert_eq!(trust.snapshot().len(), 3);

    // VN's certificate also lands in TH's folder: whichever member state it belongs to, a
    // message signed with it claims neither. The file that comes second in directory order
    // (VN/vn.pem) is skipped whole, like any bad file, VN's next certificate with it.
    std::fs::write(dir.path().join("TH/zz-copy.pem"), &vn.cert_pem).unwrap();
    let report = trust.reload_report().unwrap();
    assert_eq!(report.loaded, 1);
    assert_eq!(report.problems.len(), 1);
    assert!(matches!(report.problems[0], TrustError::Duplicate { .. }));
    let problem = report.problems[0].to_string();
    assert!(problem.contains("VN/vn.pem: certificate "), "{problem}");
    assert!(
        problem.contains("is already trusted for TH") && problem.contains("TH/zz-copy.pem"),
        "{problem}"
    );
    assert!(
        problem.ends_with("so it is trusted for neither"),
        "{problem}"
    );
    let verifier = Verifier::new(Arc::clone(&trust)).unwrap();
    assert!(verifier.verify(&sign(&th, "TH", "VN"), now()).is_ok());
    for (signer, from, to) in [(&vn, "VN", "TH"), (&vn, "TH", "VN"), (&vn_next, "VN", "TH")] {
        assert_eq!(
            verifier
                .verify(&sign(signer, from, to), now())
                .unwrap_err()
                .code(),
            "SIG-UNTRUSTED"
        );
    }
}

#[test]
fn reload_of_a_directory_that_cannot_be_listed_changes_nothing() {
    let vn = party("VN", KeyAlgorithm::EcP256);
    let dir = trust_dir(&[&vn]);
    let path = dir.path().to_path_buf();
    let trust = Arc::new(TrustStore::load(&path).unwrap());
    let generation = trust.generation();
    dir.close().unwrap();
    let err = trust.reload_report().unwrap_err();
    assert!(matches!(err, TrustError::Io { .. }), "{err}");
    assert_eq!(err.path(), Some(path.as_path()));
    assert_eq!(trust.generation(), generation);
    let verifier = Verifier::new(Arc::clone(&trust)).unwrap();
    assert!(verifier.verify(&sign(&vn, "VN", "TH"), now()).is_ok());
}

#[test]
fn a_certificate_whose_key_usage_excludes_signatures_is_refused() {
    let usage = |build: fn(&mut KeyUsage) -> &mut KeyUsage| {
        let mut usage = KeyUsage::new();
        build(usage.critical()).build().unwrap()
    };
    let encipher_only = party_with_key_usage("VN", Some(usage(KeyUsage::key_encipherment)));
    let commitment_only = party_with_key_usage("VN", Some(usage(KeyUsage::non_repudiation)));
    let signing = party_with_key_usage("VN", Some(usage(KeyUsage::digital_signature)));
    let unrestricted = party_with_key_usage("VN", None);

    // At start-up: the load fails and names the file.
    let dir = trust_dir(&[&signing, &encipher_only]);
    let err = load_error(dir.path());
    assert!(matches!(err, TrustError::KeyUsage { .. }), "{err}");
    let text = err.to_string();
    assert!(text.contains("VN/cert-1.pem: certificate "), "{text}");
    assert!(
        text.ends_with(
            "may not verify signatures: its keyUsage extension allows keyEncipherment but not digitalSignature"
        ),
        "{text}"
    );
    // nonRepudiation alone is refused too: the profile asks for digitalSignature.
    let err = load_error(trust_dir(&[&commitment_only]).path());
    assert!(
        err.to_string().contains("allows nonRepudiation but not"),
        "{err}"
    );
    let err = TrustStore::from_pem([(encipher_only.state, encipher_only.cert_pem.as_slice())])
        .unwrap_err();
    assert!(matches!(err, TrustError::KeyUsage { .. }), "{err}");

    // At a reload: the file is a problem and its certificate is never used.
    let dir = trust_dir(&[&signing, &unrestricted]);
    let trust = Arc::new(TrustStore::load(dir.path()).unwrap());
    add_to_trust_dir(dir.path(), &encipher_only, "encipher.pem");
    let report = trust.reload_report().unwrap();
    assert_eq!(report.loaded, 2);
    assert_eq!(report.problems.len(), 1);
    assert!(matches!(report.problems[0], TrustError::KeyUsage { .. }));
    assert!(
        report.problems[0]
            .path()
            .unwrap()
            .ends_with("VN/encipher.pem")
    );

    // With digitalSignature, or with no keyUsage extension, certificates sign and verify.
    let verifier = Verifier::new(Arc::clone(&trust)).unwrap();
    for party in [&signing, &unrestricted] {
        let verified = verifier.verify(&sign(party, "VN", "TH"), now()).unwrap();
        assert_eq!(verified.signer(), state("VN"));
    }

    // Our own key: a signer refuses such a certificate, whatever a partner would do.
    for party in [&encipher_only, &commitment_only] {
        let err = Signer::new(&party.key_pem, &party.cert_pem).err().unwrap();
        assert_eq!(err.code(), "SIGN-KEY-USAGE");
        assert!(
            err.to_string().contains("but not digitalSignature"),
            "{err}"
        );
    }
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
