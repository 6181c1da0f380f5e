//! `aswhub check-config`: a usable file exits 0, an unusable one exits 64 naming every problem.

use std::process::Command;

fn check(config: &std::path::Path) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_aswhub"))
        .args(["check-config", "--config"])
        .arg(config)
        .output()
        .expect("run aswhub")
}

#[test]
fn good_and_bad_configurations() {
    let dir = tempfile::tempdir().expect("temp dir");
    let vn = asw_model::MemberState::from_alpha2("VN").expect("VN");
    let now = time::OffsetDateTime::now_utc();
    let key = asw_sign::keygen::generate(vn, asw_sign::keygen::KeyAlgorithm::EcP256, 30, now)
        .expect("key");
    std::fs::write(dir.path().join("key.pem"), &key.key_pem).expect("write");
    std::fs::write(dir.path().join("cert.pem"), &key.cert_pem).expect("write");
    std::fs::create_dir(dir.path().join("trust")).expect("mkdir");
    let good = r#"
country = "VN"
[broker]
url = "amqp://guest:guest@127.0.0.1:5672/asw-vn"
[signing]
key = "key.pem"
certificate = "cert.pem"
trust_dir = "trust"
[journal]
path = "journal.db"
[partners.TH]
link = "pull"
password_file = "th.password"
"#;
    // The partner's password in a file of its own: an inline one is warned about.
    std::fs::write(dir.path().join("th.password"), "a-long-secret\n").expect("write");
    let file = dir.path().join("hub.toml");
    std::fs::write(&file, good).expect("write");
    let out = check(&file);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(
        String::from_utf8_lossy(&out.stdout),
        "configuration is valid: VN with 1 partner(s), vhost asw-vn\n"
    );

    assert!(out.stderr.is_empty(), "no warning");

    // A wildcard metrics address is taken, with a warning.
    std::fs::write(
        &file,
        format!("{good}[metrics]\nlisten = \"0.0.0.0:9464\"\n"),
    )
    .expect("write");
    let out = check(&file);
    assert_eq!(out.status.code(), Some(0));
    assert_eq!(
        String::from_utf8_lossy(&out.stderr),
        "aswhub: warning: metrics.listen: 0.0.0.0:9464 listens on every interface (and anyone \
         who reaches it may read it: set token_file or token_env); bind a loopback or \
         management address\n"
    );
    // TLS files that are not a certificate and its key are a problem.
    std::fs::write(
        &file,
        format!("{good}[metrics]\ncert = \"cert.pem\"\nkey = \"trust/../cert.pem\"\n"),
    )
    .expect("write");
    let out = check(&file);
    assert_eq!(out.status.code(), Some(64));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("metrics.cert, metrics.key ("), "{stderr}");

    let bad = good
        .replace("\"VN\"", "\"XX\"")
        .replace("key.pem", "nope.pem")
        .replace("link = \"pull\"", "link = \"push\"");
    std::fs::write(&file, bad).expect("write");
    let out = check(&file);
    assert_eq!(out.status.code(), Some(64));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("3 problem(s)"), "{stderr}");
    for key in ["country", "signing.key", "partners.TH.url"] {
        assert!(stderr.contains(key), "{key} missing from: {stderr}");
    }
    for (listen, code) in [
        ("127.0.0.1:9464", 0),
        ("[::1]:0", 0),
        ("localhost:9464", 64),
    ] {
        std::fs::write(&file, format!("{good}[metrics]\nlisten = \"{listen}\"\n")).expect("write");
        let out = check(&file);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(code), "{listen}: {stderr}");
        if code == 64 {
            assert!(
                stderr.contains("1 problem(s)")
                    && stderr.contains("metrics.listen: \"localhost:9464\""),
                "{stderr}"
            );
        }
    }
    let out = check(&dir.path().join("missing.toml"));
    assert_eq!(out.status.code(), Some(64));
}

#[test]
fn what_the_file_names_is_checked_before_the_hub_starts_every_problem_at_once() {
    let dir = tempfile::tempdir().expect("temp dir");
    // Files that exist but cannot be used: a key and a certificate that do not parse, a
    // partner certificate that does not parse, a journal that is not a database.
    std::fs::write(dir.path().join("key.pem"), "not a key").expect("write");
    std::fs::write(dir.path().join("cert.pem"), "not a certificate").expect("write");
    std::fs::create_dir_all(dir.path().join("trust/TH")).expect("mkdir");
    std::fs::write(dir.path().join("trust/TH/th.pem"), "not a certificate").expect("write");
    std::fs::write(dir.path().join("journal.db"), "not a database, not at all").expect("write");
    let config = r#"
country = "VN"
[broker]
url = "amqp://guest:guest@127.0.0.1:5672/asw-vn"
[signing]
key = "key.pem"
certificate = "cert.pem"
trust_dir = "trust"
[journal]
path = "journal.db"
[partners.TH]
link = "pull"
password_file = "th.password"
"#;
    // The partner's password in a file of its own: an inline one is warned about.
    std::fs::write(dir.path().join("th.password"), "a-long-secret\n").expect("write");
    let file = dir.path().join("hub.toml");
    std::fs::write(&file, config).expect("write");
    let out = check(&file);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(64), "{stderr}");
    for key in [
        "signing.key, signing.certificate",
        "signing.trust_dir:",
        "journal.path:",
    ] {
        assert!(stderr.contains(key), "{key} missing from: {stderr}");
    }
    assert!(stderr.contains("3 problem(s)"), "{stderr}");
}
