//! `aswctl export`: the auditor's archive holds the exact bytes of every message of the period,
//! an index, and the certificates with which each signed message verifies under `xmlsec1`.

use std::process::Command;
use std::time::Duration;

use asw_e2e::{document, state, testbed};
use asw_model::DocumentKind;
use asw_route::names;
use serde_json::Value;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_export_holds_every_message_with_an_index_and_verifies_with_xmlsec1() {
    let (tb, _dir) = testbed(&["VN", "TH"]).await;
    let vn = state("VN");
    let form_d = document(DocumentKind::FormD, "VN", "TH");
    let id = form_d.header.message_id;
    tb.send_document(&form_d).await.expect("send");
    tb.wait_for(vn, "acknowledged", Duration::from_secs(30), |m| {
        m.routing_key == "outcome.formd.TH"
            && m.header(names::HEADER_MESSAGE_ID) == Some(id.to_string().as_str())
            && m.header(names::HEADER_OUTCOME) == Some("acknowledged")
    })
    .await
    .expect("acknowledged");

    let out = tempfile::tempdir().expect("temp dir");
    let archive = out.path().join("audit.tar");
    let config = tb.config_file(vn).expect("VN config").to_owned();
    let run = Command::new(env!("CARGO_BIN_EXE_aswctl"))
        .args(["export", "--since", "1h", "--config"])
        .arg(&config)
        .arg("-o")
        .arg(&archive)
        .output()
        .expect("run aswctl export");
    assert!(
        run.status.success(),
        "{}",
        String::from_utf8_lossy(&run.stderr)
    );
    let untar = Command::new("tar")
        .arg("-xf")
        .arg(&archive)
        .current_dir(out.path())
        .status()
        .expect("tar");
    assert!(untar.success());

    let index: Value =
        serde_json::from_slice(&std::fs::read(out.path().join("index.json")).expect("index"))
            .expect("JSON");
    let messages = index["messages"].as_array().expect("messages");
    let find = |direction: &str, kind: &str| {
        messages
            .iter()
            .find(|m| m["direction"] == direction && m["kind"] == kind)
            .unwrap_or_else(|| panic!("no {direction} {kind} in {index}"))
    };
    let sent = find("outbound", "formd");
    assert_eq!(sent["message_id"], id.to_string());
    assert_eq!(sent["state"], "acknowledged");
    let receipt = find("inbound", "formd-ack");
    assert_eq!(receipt["correlation_id"], id.to_string());
    assert_eq!(receipt["state"], "delivered");

    // Every signed message verifies with the reference tool and its signer's certificate.
    for m in messages.iter().filter(|m| m["signed"] == true) {
        let sender = m["sender"].as_str().expect("sender");
        let cert_dir = out.path().join("certificates").join(sender);
        let cert = std::fs::read_dir(&cert_dir)
            .expect("certificates")
            .flatten()
            .next()
            .expect("a certificate")
            .path();
        let file = out.path().join(m["file"].as_str().expect("file"));
        let verified = Command::new("xmlsec1")
            .args([
                "--verify",
                "--enabled-reference-uris",
                "empty",
                "--pubkey-cert-pem",
            ])
            .arg(&cert)
            .arg(&file)
            .output()
            .expect("xmlsec1 (Debian package xmlsec1)");
        assert!(
            verified.status.success(),
            "{}: {}",
            file.display(),
            String::from_utf8_lossy(&verified.stderr)
        );
    }
    assert!(messages.iter().filter(|m| m["signed"] == true).count() >= 2);
    tb.stop_and_clean().await;
}
