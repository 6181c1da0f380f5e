//! Helpers shared by the asw-sign integration tests: fresh keys and certificates made at test
//! time (never committed), trust directories, sample messages and the external tools.

#![allow(dead_code, clippy::unwrap_used)]

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use asw_model::sample::{self, SampleSpec};
use asw_model::{DocumentKind, MemberState};
use asw_sign::keygen::{self, KeyAlgorithm};
use openssl::asn1::{Asn1Integer, Asn1Time};
use openssl::bn::{BigNum, MsbOption};
use openssl::hash::MessageDigest;
use openssl::nid::Nid;
use openssl::pkey::{PKey, Private};
use openssl::rsa::Rsa;
use openssl::x509::{X509, X509Extension, X509NameBuilder};
use tempfile::TempDir;
use time::{Duration, OffsetDateTime};

/// A member state's key pair and certificate (PEM).
#[derive(Clone)]
pub struct Party {
    pub state: MemberState,
    pub key_pem: Vec<u8>,
    pub cert_pem: Vec<u8>,
}

pub fn state(code: &str) -> MemberState {
    MemberState::from_alpha2(code).unwrap()
}

pub fn now() -> OffsetDateTime {
    OffsetDateTime::now_utc()
}

/// A party with a fresh key, valid from an hour ago for a year.
pub fn party(code: &str, algorithm: KeyAlgorithm) -> Party {
    let key = keygen::private_key(algorithm).unwrap();
    party_with_key(
        code,
        &key,
        now() - Duration::hours(1),
        now() + Duration::days(365),
    )
}

/// A party with a fresh key and the given validity period.
pub fn party_valid(
    code: &str,
    algorithm: KeyAlgorithm,
    not_before: OffsetDateTime,
    not_after: OffsetDateTime,
) -> Party {
    let key = keygen::private_key(algorithm).unwrap();
    party_with_key(code, &key, not_before, not_after)
}

/// A party with an RSA key of `bits` bits (e.g. a weak 1024-bit one).
pub fn rsa_party(code: &str, bits: u32) -> Party {
    let key = PKey::from_rsa(Rsa::generate(bits).unwrap()).unwrap();
    party_with_key(
        code,
        &key,
        now() - Duration::hours(1),
        now() + Duration::days(365),
    )
}

pub fn party_with_key(
    code: &str,
    key: &PKey<Private>,
    not_before: OffsetDateTime,
    not_after: OffsetDateTime,
) -> Party {
    let state = state(code);
    Party {
        state,
        key_pem: key.private_key_to_pem_pkcs8().unwrap(),
        cert_pem: keygen::certificate(state, key, not_before, not_after).unwrap(),
    }
}

/// A party with a fresh EC P-256 key whose self-signed certificate carries `key_usage` as its
/// keyUsage extension, or no keyUsage extension at all for `None`.
pub fn party_with_key_usage(code: &str, key_usage: Option<X509Extension>) -> Party {
    let state = state(code);
    let key = keygen::private_key(KeyAlgorithm::EcP256).unwrap();
    let mut name = X509NameBuilder::new().unwrap();
    name.append_entry_by_nid(Nid::COUNTRYNAME, state.code())
        .unwrap();
    name.append_entry_by_nid(Nid::COMMONNAME, &format!("key usage test {code}"))
        .unwrap();
    let name = name.build();
    let mut serial = BigNum::new().unwrap();
    serial.rand(127, MsbOption::MAYBE_ZERO, false).unwrap();
    let mut builder = X509::builder().unwrap();
    builder.set_version(2).unwrap();
    builder
        .set_serial_number(&Asn1Integer::from_bn(&serial).unwrap())
        .unwrap();
    builder.set_subject_name(&name).unwrap();
    builder.set_issuer_name(&name).unwrap();
    builder.set_pubkey(&key).unwrap();
    let from = Asn1Time::from_unix((now() - Duration::hours(1)).unix_timestamp()).unwrap();
    let until = Asn1Time::from_unix((now() + Duration::days(365)).unix_timestamp()).unwrap();
    builder.set_not_before(&from).unwrap();
    builder.set_not_after(&until).unwrap();
    if let Some(extension) = key_usage {
        builder.append_extension(extension).unwrap();
    }
    builder.sign(&key, MessageDigest::sha256()).unwrap();
    Party {
        state,
        key_pem: key.private_key_to_pem_pkcs8().unwrap(),
        cert_pem: builder.build().to_pem().unwrap(),
    }
}

/// A trust directory with each party's certificate in its member state's folder.
pub fn trust_dir(parties: &[&Party]) -> TempDir {
    let dir = tempfile::tempdir().unwrap();
    for (i, party) in parties.iter().enumerate() {
        add_to_trust_dir(dir.path(), party, &format!("cert-{i}.pem"));
    }
    dir
}

pub fn add_to_trust_dir(dir: &Path, party: &Party, file: &str) -> PathBuf {
    let folder = dir.join(party.state.code());
    std::fs::create_dir_all(&folder).unwrap();
    let path = folder.join(file);
    std::fs::write(&path, &party.cert_pem).unwrap();
    path
}

/// A sample message of `kind` from `from` to `to` with `items` items.
pub fn sample_message(kind: DocumentKind, from: &str, to: &str, items: u32) -> Vec<u8> {
    let seed = 7;
    sample::message(&SampleSpec {
        kind,
        from: state(from),
        to: state(to),
        items,
        seed,
        created_at: SampleSpec::seeded_time(seed),
    })
    .to_xml()
    .unwrap()
    .into_bytes()
}

pub fn form_d(from: &str, to: &str) -> Vec<u8> {
    sample_message(DocumentKind::FormD, from, to, 3)
}

/// The workspace root (for `schemas/`).
pub fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .ancestors()
        .nth(2)
        .unwrap()
        .to_path_buf()
}

/// Runs an external tool that the tests need; fails the test with a clear message if it is
/// not installed (CI installs it), never skips.
pub fn run_tool(tool: &str, args: &[&std::ffi::OsStr]) -> Output {
    match Command::new(tool).args(args).output() {
        Ok(output) => output,
        Err(e) => panic!(
            "cannot run `{tool}` ({e}): the interoperability tests need it on PATH \
             (Debian: apt-get install xmlsec1 libxml2-utils)"
        ),
    }
}

/// Checks `xml` against the ASW envelope schema with `xmllint`.
pub fn assert_schema_valid(xml: &[u8]) {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("message.xml");
    std::fs::write(&file, xml).unwrap();
    let schema = workspace_root().join("schemas/asw-envelope-1.xsd");
    let out = run_tool(
        "xmllint",
        &[
            "--noout".as_ref(),
            "--nonet".as_ref(),
            "--schema".as_ref(),
            schema.as_os_str(),
            file.as_os_str(),
        ],
    );
    assert!(
        out.status.success(),
        "xmllint rejected the signed document:\n{}\n{}",
        String::from_utf8_lossy(&out.stderr),
        String::from_utf8_lossy(xml)
    );
}
