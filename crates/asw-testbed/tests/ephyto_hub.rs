//! The simulated IPPC ePhyto Hub driven by an independent SOAP client: Python `zeep` loading
//! the hub's WSDL from `../shared` (installed by deploy/setup.sh in `target/zeep-venv`, or the
//! interpreter `ASWHUB_ZEEP_PYTHON` names), over HTTPS with client certificates. Every request
//! zeep makes must validate against the WSDL's schemas (the simulator checks them all).

use std::path::{Path, PathBuf};
use std::process::Command;

use asw_model::sps::{self, Country, EphytoSpec};
use asw_testbed::ephyto_hub::{EphytoHub, InjectedContent, Tracking, wsdl_path};

fn python() -> PathBuf {
    std::env::var_os("ASWHUB_ZEEP_PYTHON").map_or_else(
        || Path::new(env!("CARGO_MANIFEST_DIR")).join("../../target/zeep-venv/bin/python"),
        PathBuf::from,
    )
}

fn certificate() -> String {
    sps::certificate(&EphytoSpec {
        exporter: Country {
            code: "VN",
            name: "Viet Nam",
        },
        importer: Country {
            code: "TH",
            name: "Thailand",
        },
        commodities: 2,
        attachment_bytes: 4096,
        seed: 7,
        issued_at: time::OffsetDateTime::from_unix_timestamp(1_767_600_000).expect("time"),
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn zeep_from_the_wsdl_delivers_lists_pulls_acknowledges_and_tracks() {
    let dir = tempfile::tempdir().expect("dir");
    let hub = EphytoHub::start(dir.path(), &["VN", "TH"])
        .await
        .expect("hub");
    let cert = dir.path().join("certificate.xml");
    std::fs::write(&cert, certificate()).expect("write");
    let python = python();
    assert!(
        python.is_file(),
        "no Python with zeep at {} (deploy/setup.sh makes target/zeep-venv, or set ASWHUB_ZEEP_PYTHON)",
        python.display()
    );
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/ephyto_zeep.py");
    let pki = hub.pki.ca.parent().expect("pki dir").to_owned();
    let out = tokio::task::spawn_blocking({
        let url = hub.url();
        let ca = hub.pki.ca.clone();
        move || {
            Command::new(&python)
                .arg(script)
                .arg(wsdl_path())
                .arg(url)
                .arg(pki)
                .arg(ca)
                .arg(cert)
                .output()
                .expect("run python")
        }
    })
    .await
    .expect("join");
    assert!(
        out.status.success(),
        "zeep failed: {}\n{}\n{:?}",
        String::from_utf8_lossy(&out.stderr),
        String::from_utf8_lossy(&out.stdout),
        hub.violations()
    );
    hub.assert_clean();
    let json: serde_json::Value = serde_json::from_slice(&out.stdout).expect("json");
    let numbers: Vec<String> = json["delivered"]
        .as_array()
        .expect("delivered")
        .iter()
        .map(|d| {
            assert_eq!(d[1], "PendingDelivery", "{json}");
            d[0].as_str().expect("number").to_owned()
        })
        .collect();
    assert_eq!(numbers.len(), 3);
    assert_eq!(json["headers"].as_array().map(Vec::len), Some(3), "{json}");
    assert_eq!(json["headers"][1][1], "VN");
    assert_eq!(json["headers"][1][2], "VN-ZEEP-1");
    assert_eq!(json["contents"], serde_json::json!([true, true, true]));
    let tracking = &json["tracking"];
    assert_eq!(tracking[&numbers[0]][0], "Delivered");
    assert_eq!(
        tracking[&numbers[1]],
        serde_json::json!(["DeliveredWithWarnings", "SPS-XSD line 12"])
    );
    assert_eq!(
        tracking[&numbers[2]],
        serde_json::json!(["DeliveredNotReadable", "not XML"])
    );
    assert_eq!(json["after"], 0, "settled envelopes are no longer listed");
    let forged = json["forged"].as_str().expect("forged");
    assert!(
        forged.contains("not the country of the client certificate"),
        "{forged}"
    );
    // The hub's state agrees with what zeep saw.
    let stored = hub.envelope(&numbers[1]).expect("stored");
    assert_eq!((stored.from.as_str(), stored.to.as_str()), ("VN", "TH"));
    assert_eq!(stored.tracking, Tracking::DeliveredWithWarnings);
    let ops: Vec<String> = hub.requests().into_iter().map(|(op, _)| op).collect();
    for op in [
        "DeliverEnvelope",
        "GetImportEnvelopeHeaders",
        "PULLSingleImportEnvelope",
        "AcknowledgeEnvelopeReceipt",
        "AdvancedAcknowledgeEnvelopeReceipt",
        "AcknowledgeFailedEnvelopeReceipt",
        "GetEnvelopeTrackingInfo",
    ] {
        assert!(ops.iter().any(|o| o == op), "{op} not called: {ops:?}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_request_that_breaks_the_wsdl_is_a_fault_and_a_violation() {
    let dir = tempfile::tempdir().expect("dir");
    let hub = EphytoHub::start(dir.path(), &["VN", "TH"])
        .await
        .expect("hub");
    let number = hub.inject("TH", "VN", "TH-1", InjectedContent::Text("<x/>".into()));
    assert_eq!(
        hub.envelope(&number).expect("stored").tracking,
        Tracking::PendingDelivery
    );
    // curl with VN's certificate: an AcknowledgeEnvelopeReceipt without its hubTrackingNumber.
    let client = hub.pki.client("VN").expect("client");
    let body = format!(
        "<s:Envelope xmlns:s=\"http://schemas.xmlsoap.org/soap/envelope/\"><s:Body>\
         <e:AcknowledgeEnvelopeReceipt xmlns:e=\"http://ephyto.ippc.int/\"><e:wrong>{number}</e:wrong>\
         </e:AcknowledgeEnvelopeReceipt></s:Body></s:Envelope>"
    );
    let out = Command::new("curl")
        .args(["-s", "--cacert"])
        .arg(&hub.pki.ca)
        .arg("--cert")
        .arg(&client.cert)
        .arg("--key")
        .arg(&client.key)
        .args([
            "-H",
            "SOAPAction: \"http://ephyto.ippc.int/IDeliveryService/AcknowledgeEnvelopeReceipt\"",
            "-H",
            "Content-Type: text/xml",
            "--data-binary",
            &body,
            &hub.url(),
        ])
        .output()
        .expect("curl");
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.contains("<faultcode>soap:Client</faultcode>"),
        "{text}"
    );
    assert!(text.contains("does not validate"), "{text}");
    // The violation was this test's purpose: taken, so the check at drop passes.
    let violations = hub.take_violations();
    assert_eq!(violations.len(), 1, "{violations:?}");
    assert!(
        violations[0].contains("a request from VN"),
        "{violations:?}"
    );
    assert_eq!(
        hub.envelope(&number).expect("stored").tracking,
        Tracking::PendingDelivery
    );
    // Without a client certificate there is no answer at all.
    let out = Command::new("curl")
        .args(["-s", "-o", "/dev/null", "-w", "%{http_code}", "--cacert"])
        .arg(&hub.pki.ca)
        .args(["--data-binary", &body, &hub.url()])
        .output()
        .expect("curl");
    assert_eq!(String::from_utf8_lossy(&out.stdout), "000");
    hub.assert_clean();
}
