//! The bodies of aswhub's fuzz targets, in one place for the two callers: the cargo-fuzz project
//! in `fuzz/` (one `fuzz_target!` per function here, run by `deploy/fuzz.sh`) and the replay test
//! of this crate, which feeds every seed and regression input under `fuzz/` to them in
//! `cargo test`.
//!
//! Each target takes untrusted bytes and returns whether the component accepted them; the result
//! only tells the replay test that the seeds reach the deep paths. A target fails by panicking:
//! either the component panicked (a bug: untrusted input must only ever give an error) or one of
//! the properties asserted here does not hold. Time is fixed ([`now`]) so that a run depends on
//! the input alone.

use std::cell::RefCell;
use std::path::Path;
use std::sync::Arc;

use asw_gateway::config::HubConfig;
use asw_gateway::http;
use asw_model::bus::BusEnvelope;
use asw_model::xml::{self, Element, Limits};
use asw_model::{Header, ns};
use asw_schema::Validator;
use asw_sign::{TrustStore, Verifier, uri};
use openssl::x509::X509;
use time::OffsetDateTime;

/// A fuzz target: untrusted bytes in, whether they were accepted out.
pub type Target = fn(&[u8]) -> bool;

/// Every target by name; the names are those of `fuzz/fuzz_targets/*.rs`, of the seed folders
/// `fuzz/corpus/<name>/` and of the regression folders `fuzz/regressions/<name>/`.
pub const TARGETS: &[(&str, Target)] = &[
    ("reader", reader),
    ("validator", validator),
    ("verifier", verifier),
    ("envelope", envelope),
    ("config", config),
    ("metrics", metrics),
];

/// The targets that also take `schemas/samples/valid` and `schemas/samples/invalid` as seeds.
pub const XML_TARGETS: &[&str] = &["reader", "validator", "verifier", "envelope"];

/// The time every target runs at: 2027-01-01T00:00:00Z, after every sample's creation date (so
/// the samples pass the "not in the future" rules) and inside the validity of the certificates
/// in the verifier's seeds (made on 2026-12-01 for 100 years).
pub fn now() -> OffsetDateTime {
    // 2027-01-01T00:00:00Z is a valid timestamp; the epoch is never used.
    OffsetDateTime::from_unix_timestamp(1_798_761_600).unwrap_or(OffsetDateTime::UNIX_EPOCH)
}

/// Limits much smaller than the defaults (each of them), so that the fuzzer reaches every limit
/// check with small inputs.
const SMALL: Limits = Limits {
    max_bytes: 4096,
    max_depth: 4,
    max_attributes: 4,
    max_namespaces: 2,
    max_namespaces_total: 4,
    max_name_bytes: 16,
    max_value_bytes: 64,
    max_nodes: 64,
};

/// The bounded XML reader ([`xml::parse`] and [`xml::parse_selected`]) with the default limits
/// and with small ones.
///
/// Asserts that the reader judges a document the same whether it builds the whole tree or
/// nothing (the validator relies on it: it checks with the second and reads with the first),
/// and that small limits never accept what the default ones refuse.
pub fn reader(data: &[u8]) -> bool {
    let full = xml::parse(data, &Limits::default());
    let checked = xml::parse_selected(data, &Limits::default(), &|_: &str, _: &str| false);
    assert_eq!(
        full.is_ok(),
        checked.is_ok(),
        "parse and parse_selected disagree: {:?} / {:?}",
        full.as_ref().err(),
        checked.as_ref().err()
    );
    let small = xml::parse(data, &SMALL);
    assert!(
        small.is_err() || full.is_ok(),
        "accepted with small limits, refused with the defaults: {:?}",
        full.as_ref().err()
    );
    // A selection as the verifier makes it: headers and signatures wherever they are.
    let _ = xml::parse_selected(data, &SMALL, &|namespace: &str, name: &str| {
        (namespace == ns::ENVELOPE && name == "Header")
            || (namespace == uri::DSIG && name == "Signature")
    });
    full.is_ok()
}

thread_local! {
    /// libxml2's compiled schemas are not `Send`: one validator per fuzzing thread.
    static VALIDATOR: RefCell<Validator> = RefCell::new(
        // The schemas are built into the binary and compile (asw-schema's tests show it): a
        // failure here is a broken build or environment, reported as a crash on the first input.
        Validator::new().expect("the embedded schemas compile"),
    );
}

/// The validator ([`Validator::validate_at`]: bounded reader, XSD, business rules) at [`now`].
///
/// Asserts that an accepted message has the header the header reader reads from the same bytes.
pub fn validator(data: &[u8]) -> bool {
    let validated = VALIDATOR.with(|v| v.borrow_mut().validate_at(data, now()));
    match validated {
        Ok(validated) => {
            let header = Header::read(data, &Limits::default());
            assert_eq!(header.as_ref().ok(), Some(validated.header()));
            true
        }
        Err(problems) => {
            assert!(!problems.is_empty(), "refused without a problem");
            false
        }
    }
}

/// The signature verifier ([`Verifier::verify`]) at [`now`].
///
/// Its trust store holds the first `ds:X509Certificate` of the input itself, for the member
/// state the header names as sender: so every mutation that keeps a readable certificate and
/// header goes past the profile and trust checks into libxmlsec1's digest and signature checks,
/// and seeds signed once with a throw-away key stay verifiable (no key is committed). Inputs
/// without one get an empty store and stop at the trust check.
pub fn verifier(data: &[u8]) -> bool {
    let trust = embedded_trust(data).unwrap_or_else(|| {
        // An empty list of certificates cannot fail to load.
        TrustStore::from_pem([]).expect("an empty trust store")
    });
    // libxmlsec1 initialises once per process; if it cannot, nothing can be verified and
    // every input would be a false pass, so that is a crash.
    let verifier = Verifier::new(Arc::new(trust)).expect("libxmlsec1 initialises");
    match verifier.verify(data, now()) {
        Ok(verified) => {
            assert_eq!(verified.bytes(), data);
            assert_eq!(verified.signer(), verified.header().sender);
            true
        }
        Err(e) => {
            // Every refusal has a stable reason code for the dead-letter header.
            assert!(!e.code().is_empty());
            false
        }
    }
}

/// A trust store with the input's first certificate, for its header's sender.
fn embedded_trust(data: &[u8]) -> Option<TrustStore> {
    let root = xml::parse(data, &Limits::default()).ok()?;
    let sender = Header::from_message(&root).ok()?.sender;
    let certificate = first(&root, uri::DSIG, "X509Certificate")?;
    let base64: String = certificate
        .text
        .chars()
        .filter(|c| !c.is_ascii_whitespace())
        .collect();
    let der = openssl::base64::decode_block(&base64).ok()?;
    let pem = X509::from_der(&der).ok()?.to_pem().ok()?;
    TrustStore::from_pem([(sender, pem.as_slice())]).ok()
}

/// The first element with this name in document order.
fn first<'a>(element: &'a Element, namespace: &str, name: &str) -> Option<&'a Element> {
    if element.is(namespace, name) {
        return Some(element);
    }
    element
        .children
        .iter()
        .find_map(|child| first(child, namespace, name))
}

/// The envelope readers: the XML header ([`Header::read`]) and the protobuf bus envelope
/// ([`BusEnvelope::from_bytes`]), both on the same bytes.
///
/// Asserts that a decoded bus envelope encodes and decodes to itself.
pub fn envelope(data: &[u8]) -> bool {
    let header = Header::read(data, &Limits::default());
    let bus = BusEnvelope::from_bytes(data);
    if let Ok(bus) = &bus {
        assert_eq!(BusEnvelope::from_bytes(&bus.to_bytes()).as_ref(), Ok(bus));
    }
    header.is_ok() || bus.is_ok()
}

/// The configuration loader ([`HubConfig::parse`]) on the input as TOML. Relative paths in it
/// point into a folder that does not exist, so the file checks fail the same way every run.
///
/// Asserts that a refused configuration names at least one problem.
pub fn config(data: &[u8]) -> bool {
    let Ok(text) = std::str::from_utf8(data) else {
        return false;
    };
    match HubConfig::parse(text, Path::new("/nonexistent/aswhub-fuzz/aswhub.toml")) {
        Ok(_) => true,
        Err(e) => {
            assert!(!e.problems.is_empty(), "refused without a problem");
            false
        }
    }
}

/// The hub's HTTP server ([`http::answer`]: hyper's parser and our routes) on one connection
/// carrying `data`, the routes reading a fixed probe.
///
/// Asserts that the answer is nothing (an incomplete request), a 200 from one of the routes, or
/// a 4xx; never a 5xx.
pub fn metrics(data: &[u8]) -> bool {
    const BODY: &str = "aswhub_up 1\n# EOF\n";
    struct Fixed;
    impl http::Probe for Fixed {
        fn metrics(&self) -> String {
            BODY.to_owned()
        }
        fn readiness(&self) -> Vec<http::Check> {
            vec![http::Check {
                name: "fixed",
                ok: true,
                detail: String::new(),
            }]
        }
    }
    let response = http::answer(data, http::routes(Arc::new(Fixed)));
    if response.is_empty() {
        return false;
    }
    let text = String::from_utf8_lossy(&response);
    let status = text
        .strip_prefix("HTTP/1.1 ")
        .or_else(|| text.strip_prefix("HTTP/1.0 "))
        .and_then(|rest| rest.get(..3))
        .unwrap_or_else(|| panic!("not an HTTP response: {text:?}"));
    match status {
        "200" => true,
        "400" | "404" | "414" | "431" => false,
        other => panic!("unexpected status {other} in {text:?}"),
    }
}
