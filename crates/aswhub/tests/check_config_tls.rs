//! `aswhub check-config` and TLS and secrets: every TLS file must parse (a key matching its
//! certificate, an encrypted one opening with its passphrase), every broker node's URL is
//! checked, and a secret inline in the file is a warning, not an error.

use std::process::Command;

fn check(config: &std::path::Path) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_aswhub"))
        .args(["check-config", "--config"])
        .arg(config)
        .output()
        .expect("run aswhub")
}

#[test]
fn tls_files_must_parse_and_inline_secrets_are_warned_about() {
    let dir = tempfile::tempdir().expect("temp dir");
    let path = |name: &str| dir.path().join(name);
    let vn = asw_model::MemberState::from_alpha2("VN").expect("VN");
    let now = time::OffsetDateTime::now_utc();
    let key = asw_sign::keygen::generate(vn, asw_sign::keygen::KeyAlgorithm::EcP256, 30, now)
        .expect("key");
    let other = asw_sign::keygen::generate(vn, asw_sign::keygen::KeyAlgorithm::EcP256, 30, now)
        .expect("key");
    // An encrypted signing key, its passphrase in a file.
    let encrypted = openssl::pkey::PKey::private_key_from_pem(&key.key_pem)
        .expect("key")
        .private_key_to_pem_pkcs8_passphrase(openssl::symm::Cipher::aes_256_cbc(), b"pass phrase")
        .expect("encrypt");
    std::fs::write(path("key.pem"), &encrypted).expect("write");
    std::fs::write(path("passphrase"), "pass phrase\n").expect("write");
    std::fs::write(path("cert.pem"), &key.cert_pem).expect("write");
    std::fs::write(path("other-key.pem"), &other.key_pem).expect("write");
    std::fs::write(path("junk.pem"), "not a certificate").expect("write");
    std::fs::create_dir(path("trust")).expect("mkdir");
    let good = r#"
country = "VN"
[broker]
urls = ["amqps://guest:guest@127.0.0.1:5671/asw-vn", "amqps://guest:guest@localhost:5671/asw-vn"]
ca = "cert.pem"
[signing]
key = "key.pem"
key_passphrase_file = "passphrase"
certificate = "cert.pem"
trust_dir = "trust"
[journal]
path = "journal.db"
[partners.TH]
link = "pull"
password = "a-long-secret"
"#;
    let file = path("hub.toml");
    std::fs::write(&file, good).expect("write");
    let out = check(&file);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{stderr}");
    assert_eq!(
        stderr,
        "aswhub: warning: partners.TH.password: the secret is inline in the configuration; use \
         partners.TH.password_file or partners.TH.password_env\n"
    );

    let bad = good
        .replace(
            "ca = \"cert.pem\"",
            "ca = \"junk.pem\"\ncert = \"cert.pem\"\nkey = \"other-key.pem\"",
        )
        .replace("key_passphrase_file = \"passphrase\"\n", "")
        .replace(
            "\"amqps://guest:guest@localhost:5671/asw-vn\"",
            "\"amqps://guest:guest@localhost:99999/asw-vn\"",
        );
    std::fs::write(&file, bad).expect("write");
    let out = check(&file);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(64), "{stderr}");
    for problem in [
        "broker.urls: ",
        "broker.ca: ",
        "signing.key, signing.certificate",
    ] {
        assert!(stderr.contains(problem), "{problem} missing from: {stderr}");
    }
    assert!(
        stderr.contains("localhost:99999"),
        "the second node's URL: {stderr}"
    );
}
