//! The gateway's IPPC ePhyto Hub client (`asw_gateway::channel::ippc`) against the simulated
//! hub: export with tracking mapped to outcomes, import of clean, base64, raw, invalid and
//! unreadable envelopes with their acknowledgements, duplicates, the strict setting, the
//! classification of faults and HTTP errors, and the hub's certificate verified.

use std::collections::BTreeMap;
use std::path::Path;

use asw_gateway::channel::ippc::{
    CertificateType, Export, ExportOutcome, HubClient, HubError, Import, ImportOutcome, ImportSink,
    Importer, JournalSettled, Refused, Settlement,
};
use asw_model::xml::Limits;
use asw_testbed::ephyto_hub::{EphytoHub, HubPki, InjectedContent, InjectedFault, Tracking};
use asw_tls::TlsFiles;

fn sample(name: &str) -> Vec<u8> {
    std::fs::read(
        Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../../schemas/samples/ephyto")
            .join(name),
    )
    .expect("sample")
}

fn client(hub: &EphytoHub, country: &str) -> HubClient {
    client_with_ca(hub, country, &hub.pki.ca)
}

fn client_with_ca(hub: &EphytoHub, country: &str, ca: &Path) -> HubClient {
    let files = hub.pki.client(country).expect("client certificate");
    let tls = TlsFiles {
        ca: Some(ca.to_owned()),
        cert: Some(files.cert),
        key: Some(files.key),
        key_passphrase: None,
    }
    .load("partners.KR")
    .expect("tls");
    HubClient::new(&hub.url(), &tls).expect("client")
}

/// A back-office and parking lot that keep what they get; `fail` refuses that delivery number.
#[derive(Default)]
struct Sink {
    fail: Option<String>,
    imports: Vec<Import>,
    parked: Vec<Refused>,
}

impl ImportSink for Sink {
    fn deliver(&mut self, import: &Import) -> Result<(), String> {
        if self.fail.as_deref() == Some(import.delivery_number.as_str()) {
            return Err("the back-office publish was not confirmed".into());
        }
        self.imports.push(import.clone());
        Ok(())
    }
    fn park(&mut self, refused: &Refused) -> Result<(), String> {
        self.parked.push(refused.clone());
        Ok(())
    }
}

/// Runs blocking client code off the runtime the simulator serves on.
async fn blocking<T: Send + 'static>(f: impl FnOnce() -> T + Send + 'static) -> T {
    tokio::task::spawn_blocking(f).await.expect("join")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn export_returns_the_delivery_number_and_tracking_moves_the_document() {
    let dir = tempfile::tempdir().expect("dir");
    let hub = EphytoHub::start(dir.path(), &["VN", "TH"])
        .await
        .expect("hub");
    let vn = client(&hub, "VN");
    let certificate = sample("valid/ephyto-VN-TH.xml");
    let (vn, delivered, to_kr) = blocking(move || {
        let export = |to: &'static str| Export {
            from: "VN",
            to,
            certificate_type: CertificateType::Export,
            certificate_status: 70,
            nppo_number: "VN-2026-0001",
            certificate: &certificate,
        };
        let delivered = vn.deliver(&export("TH")).expect("delivered");
        let to_kr = vn.deliver(&export("KR")).expect("accepted for KR");
        (vn, delivered, to_kr)
    })
    .await;
    assert!(!delivered.delivery_number.is_empty());
    assert_eq!(delivered.tracking, "PendingDelivery");
    let stored = hub.envelope(&delivered.delivery_number).expect("stored");
    assert_eq!(
        (stored.certificate_type, stored.certificate_status),
        (851, 70)
    );
    assert_eq!(stored.nppo_number, "VN-2026-0001");

    let number = delivered.delivery_number.clone();
    let outcome = |vn: HubClient, number: String| {
        blocking(move || {
            let header = vn.tracking(&number).expect("tracking");
            (vn, ExportOutcome::of(&header))
        })
    };
    let (vn, pending) = outcome(vn, number.clone()).await;
    assert_eq!(pending, ExportOutcome::Pending);
    hub.set_tracking(&number, Tracking::Delivered, None);
    let (vn, done) = outcome(vn, number.clone()).await;
    assert_eq!(done, ExportOutcome::Acknowledged { warning: None });
    hub.set_tracking(
        &number,
        Tracking::DeliveredWithWarnings,
        Some("SPS line 40: unknown code"),
    );
    let (vn, warned) = outcome(vn, number.clone()).await;
    assert_eq!(
        warned,
        ExportOutcome::Acknowledged {
            warning: Some("SPS line 40: unknown code".into())
        }
    );
    hub.set_tracking(
        &number,
        Tracking::DeliveredNotReadable,
        Some("cannot parse"),
    );
    let (vn, unreadable) = outcome(vn, number.clone()).await;
    assert_eq!(
        unreadable,
        ExportOutcome::Rejected {
            tracking: "DeliveredNotReadable".into(),
            reason: "cannot parse".into()
        }
    );
    // KR is not registered with this hub: it fails the delivery, with its message.
    let (vn, failed) = outcome(vn, to_kr.delivery_number.clone()).await;
    match failed {
        ExportOutcome::Rejected { tracking, reason } => {
            assert_eq!(tracking, "FailedDelivery");
            assert!(reason.contains("not registered"), "{reason}");
        }
        other => panic!("{other:?}"),
    }
    let (_, unknown) = outcome(vn, "VNTH99999999".into()).await;
    assert!(
        matches!(unknown, ExportOutcome::Rejected { ref tracking, .. } if tracking == "EnvelopeNotExists")
    );
    hub.assert_clean();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn import_delivers_clean_and_invalid_refuses_unreadable_and_never_delivers_twice() {
    let dir = tempfile::tempdir().expect("dir");
    let hub = EphytoHub::start(dir.path(), &["VN", "TH", "KR"])
        .await
        .expect("hub");
    let valid = sample("valid/ephyto-VN-TH.xml");
    let invalid = sample("invalid/XSD-consignee-before-consignor.xml");
    let clean = hub.inject("VN", "TH", "VN-1", InjectedContent::Base64(valid.clone()));
    let raw = hub.inject(
        "VN",
        "TH",
        "VN-2",
        InjectedContent::Text(String::from_utf8(valid.clone()).expect("utf-8")),
    );
    let warned = hub.inject("VN", "TH", "VN-3", InjectedContent::Base64(invalid.clone()));
    let garbage = hub.inject(
        "VN",
        "TH",
        "VN-4",
        InjectedContent::Text("%%% not a certificate".into()),
    );
    let broken = hub.inject(
        "VN",
        "TH",
        "VN-5",
        InjectedContent::Base64(b"<rsm:SPSCertificate".to_vec()),
    );
    let stranger = hub.inject("KR", "TH", "KR-1", InjectedContent::Base64(valid.clone()));
    let failing = hub.inject("VN", "TH", "VN-6", InjectedContent::Base64(valid.clone()));
    let other_country = hub.inject("VN", "KR", "VN-7", InjectedContent::Base64(valid.clone()));

    let th = client(&hub, "TH");
    let fail = failing.clone();
    let (th, outcomes, sink, mut settled) = blocking(move || {
        let mut importer =
            Importer::new("TH", ["VN".to_owned()], false, Limits::DEFAULT).expect("importer");
        let mut settled = BTreeMap::new();
        let mut sink = Sink {
            fail: Some(fail),
            ..Sink::default()
        };
        let report = importer.poll(&th, &mut settled, &mut sink);
        assert!(report.error.is_none(), "{:?}", report.error);
        (th, report.outcomes, sink, settled)
    })
    .await;
    let imports = &sink.imports;
    assert_eq!(sink.parked.len(), 3, "{:?}", sink.parked);
    let by_number = |n: &str| {
        outcomes
            .iter()
            .find(|o| format!("{o:?}").contains(n))
            .cloned()
    };
    assert_eq!(outcomes.len(), 7, "{outcomes:#?}");
    assert_eq!(imports.len(), 3, "clean, raw and invalid");
    assert!(imports.iter().all(|i| i.from == "VN"));
    assert!(
        imports[0].certificate == valid,
        "base64 decoded to the exact bytes"
    );
    assert!(
        imports[1].certificate == valid.trim_ascii(),
        "raw XML taken as it is"
    );
    assert!(imports[0].warnings.is_empty() && imports[1].warnings.is_empty());
    let warnings = &imports[2].warnings;
    assert_eq!(
        (warnings[0].rule, warnings[0].line),
        ("XSD", 6),
        "{warnings:?}"
    );
    let tracking = |n: &str| hub.envelope(n).expect("stored");
    assert_eq!(tracking(&clean).tracking, Tracking::Delivered);
    assert_eq!(tracking(&raw).tracking, Tracking::Delivered);
    let w = tracking(&warned);
    assert_eq!(w.tracking, Tracking::DeliveredWithWarnings);
    let warning = w.message.clone().unwrap_or_default();
    assert!(warning.starts_with("XSD line 6: "), "{warning}");
    for (n, reason) in [
        (&garbage, "EPHYTO-UNREADABLE"),
        (&broken, "EPHYTO-UNREADABLE"),
        (&stranger, "EPHYTO-UNKNOWN-SENDER"),
    ] {
        assert_eq!(tracking(n).tracking, Tracking::DeliveredNotReadable, "{n}");
        match by_number(n) {
            Some(ImportOutcome::Refused(refused)) => {
                assert_eq!(refused.reason, reason);
                assert_eq!(
                    tracking(n).message.as_deref(),
                    Some(refused.message.as_str())
                );
                assert!(
                    sink.parked.contains(&refused),
                    "parked before the hub was told"
                );
            }
            other => panic!("{n}: {other:?}"),
        }
    }
    assert!(matches!(
        by_number(&failing),
        Some(ImportOutcome::NotDelivered { .. })
    ));
    assert_eq!(
        tracking(&failing).tracking,
        Tracking::PendingDelivery,
        "not acknowledged"
    );
    assert_eq!(
        tracking(&other_country).tracking,
        Tracking::PendingDelivery,
        "KR's, not ours"
    );

    // Our acknowledgements of `clean`, `warned` and `garbage` were lost: the hub lists them
    // again. Each gets the same acknowledgement, and is not delivered or parked again; the one
    // whose delivery failed is delivered now.
    hub.set_tracking(&clean, Tracking::PendingDelivery, None);
    hub.set_tracking(&warned, Tracking::PendingDelivery, None);
    hub.set_tracking(&garbage, Tracking::PendingDelivery, None);
    let garbage_number = garbage.clone();
    let (outcomes, sink) = blocking(move || {
        let mut importer =
            Importer::new("TH", ["VN".to_owned()], false, Limits::DEFAULT).expect("importer");
        let mut sink = Sink::default();
        let report = importer.poll(&th, &mut settled, &mut sink);
        assert!(report.error.is_none(), "{:?}", report.error);
        assert!(matches!(
            settled.get(&garbage_number),
            Some(Settlement::Refused { .. })
        ));
        (report.outcomes, sink)
    })
    .await;
    let imports: Vec<String> = sink
        .imports
        .iter()
        .map(|i| i.delivery_number.clone())
        .collect();
    assert!(sink.parked.is_empty(), "not parked twice");
    // The same acknowledgement as the first time.
    assert_eq!(tracking(&warned).tracking, Tracking::DeliveredWithWarnings);
    assert_eq!(tracking(&garbage).tracking, Tracking::DeliveredNotReadable);
    assert_eq!(imports, vec![failing.clone()]);
    assert!(
        outcomes.contains(&ImportOutcome::Duplicate {
            number: clean.clone()
        }),
        "{outcomes:?}"
    );
    assert_eq!(tracking(&clean).tracking, Tracking::Delivered);
    assert_eq!(tracking(&failing).tracking, Tracking::Delivered);
    hub.assert_clean();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_strict_partner_refuses_an_invalid_certificate() {
    let dir = tempfile::tempdir().expect("dir");
    let hub = EphytoHub::start(dir.path(), &["VN", "TH"])
        .await
        .expect("hub");
    let number = hub.inject(
        "VN",
        "TH",
        "VN-1",
        InjectedContent::Base64(sample("invalid/XSD-missing-type-code.xml")),
    );
    let th = client(&hub, "TH");
    let (outcomes, delivered) = blocking(move || {
        let mut importer =
            Importer::new("TH", ["VN".to_owned()], true, Limits::DEFAULT).expect("importer");
        let mut sink = Sink::default();
        let report = importer.poll(&th, &mut BTreeMap::new(), &mut sink);
        assert!(report.error.is_none(), "{:?}", report.error);
        (report.outcomes, sink.imports.len())
    })
    .await;
    assert_eq!(delivered, 0);
    assert!(
        matches!(
            &outcomes[..],
            [ImportOutcome::Refused(r)] if r.reason == "EPHYTO-INVALID"
        ),
        "{outcomes:?}"
    );
    assert_eq!(
        hub.envelope(&number).expect("stored").tracking,
        Tracking::DeliveredNotReadable
    );
    hub.assert_clean();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn faults_and_http_errors_are_classified_and_the_hub_certificate_is_verified() {
    let dir = tempfile::tempdir().expect("dir");
    let hub = EphytoHub::start(dir.path(), &["VN", "TH"])
        .await
        .expect("hub");
    hub.fail_next(InjectedFault::Http(503));
    hub.fail_next(InjectedFault::Hub(
        "The hub is busy, try again later.".into(),
    ));
    let th = client(&hub, "TH");
    let other = HubPki::create(&dir.path().join("other")).expect("other pki");
    let wrong_ca = client_with_ca(&hub, "TH", &other.ca);
    let (unavailable, busy, unknown, untrusted) = blocking(move || {
        (
            th.import_headers("TH").expect_err("503"),
            th.import_headers("TH").expect_err("busy"),
            th.pull("VNTH00000042").expect_err("unknown envelope"),
            wrong_ca.import_headers("TH").expect_err("untrusted hub"),
        )
    })
    .await;
    assert!(
        matches!(unavailable, HubError::Http { status: 503, .. }),
        "{unavailable:?}"
    );
    assert!(unavailable.is_transient());
    assert!(
        matches!(&busy, HubError::Fault { code, message, .. } if code == "Server" && message.contains("busy")),
        "{busy:?}"
    );
    assert!(busy.is_transient());
    assert!(
        matches!(&unknown, HubError::Fault { code, .. } if code == "Client"),
        "{unknown:?}"
    );
    assert!(!unknown.is_transient(), "{unknown}");
    assert!(
        matches!(untrusted, HubError::Unreachable { .. }),
        "{untrusted:?}"
    );
    // A hub that is down: transient.
    let url = hub.url();
    drop(hub);
    let files = other.client("TH").expect("cert");
    let tls = TlsFiles {
        ca: Some(other.ca.clone()),
        cert: Some(files.cert),
        key: Some(files.key),
        key_passphrase: None,
    }
    .load("partners.KR")
    .expect("tls");
    let down = blocking(move || {
        // The dropped hub's port, nothing listening any more (or soon).
        let client = HubClient::new(&url, &tls).expect("client");
        client.import_headers("TH").expect_err("down")
    })
    .await;
    assert!(down.is_transient(), "{down:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_hub_failure_mid_poll_loses_nothing_and_delivers_nothing_twice() {
    let dir = tempfile::tempdir().expect("dir");
    let hub = EphytoHub::start(dir.path(), &["VN", "TH"])
        .await
        .expect("hub");
    let valid = sample("valid/ephyto-VN-TH.xml");
    let first = hub.inject("VN", "TH", "VN-1", InjectedContent::Base64(valid.clone()));
    let second = hub.inject("VN", "TH", "VN-2", InjectedContent::Base64(valid));
    // The acknowledgement of the first is lost in a hub failure.
    hub.fail_next_call(
        "AcknowledgeEnvelopeReceipt",
        InjectedFault::Hub("Internal error".into()),
    );
    let th = client(&hub, "TH");
    let (first_poll, second_poll, delivered) = blocking(move || {
        let mut importer =
            Importer::new("TH", ["VN".to_owned()], false, Limits::DEFAULT).expect("importer");
        let mut settled = BTreeMap::new();
        let mut sink = Sink::default();
        let first_poll = importer.poll(&th, &mut settled, &mut sink);
        let second_poll = importer.poll(&th, &mut settled, &mut sink);
        let delivered: Vec<String> = sink
            .imports
            .iter()
            .map(|i| i.delivery_number.clone())
            .collect();
        (first_poll, second_poll, delivered)
    })
    .await;
    let error = first_poll.error.expect("the hub failed");
    assert!(error.is_transient(), "{error:?}");
    assert!(first_poll.outcomes.is_empty(), "{:?}", first_poll.outcomes);
    assert!(second_poll.error.is_none(), "{:?}", second_poll.error);
    assert_eq!(
        second_poll.outcomes.first(),
        Some(&ImportOutcome::Duplicate {
            number: first.clone()
        })
    );
    assert_eq!(delivered, vec![first.clone(), second.clone()], "each once");
    assert_eq!(
        hub.envelope(&first).expect("stored").tracking,
        Tracking::Delivered
    );
    assert_eq!(
        hub.envelope(&second).expect("stored").tracking,
        Tracking::Delivered
    );
    hub.assert_clean();
}

/// The settlements kept in the journal survive a restart: the importer and its store made anew
/// over the same journal file acknowledge the envelope whose acknowledgement was lost, and
/// deliver nothing twice.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn settlements_in_the_journal_survive_a_restart_and_nothing_is_delivered_twice() {
    let dir = tempfile::tempdir().expect("dir");
    let hub = EphytoHub::start(dir.path(), &["VN", "TH"])
        .await
        .expect("hub");
    let valid = sample("valid/ephyto-VN-TH.xml");
    let first = hub.inject("VN", "TH", "VN-1", InjectedContent::Base64(valid));
    let garbage = hub.inject(
        "VN",
        "TH",
        "VN-2",
        InjectedContent::Text("not base64 !".into()),
    );
    // The acknowledgement of the first is lost in a hub failure, which ends the poll.
    hub.fail_next_call(
        "AcknowledgeEnvelopeReceipt",
        InjectedFault::Hub("Internal error".into()),
    );
    let th = client(&hub, "TH");
    let path = dir.path().join("journal.db");
    let (first_poll, second_poll, delivered, parked) = blocking(move || {
        let poll = |sink: &mut Sink| {
            let journal: std::sync::Arc<dyn asw_journal::Journal> =
                std::sync::Arc::new(asw_journal::SqliteJournal::open(&path).expect("journal"));
            let mut importer =
                Importer::new("TH", ["VN".to_owned()], false, Limits::DEFAULT).expect("importer");
            importer.poll(&th, &mut JournalSettled::new(journal), sink)
        };
        let mut sink = Sink::default();
        let first_poll = poll(&mut sink);
        let second_poll = poll(&mut sink);
        let delivered: Vec<String> = sink
            .imports
            .iter()
            .map(|i| i.delivery_number.clone())
            .collect();
        let parked: Vec<String> = sink.parked.iter().map(|r| r.number.clone()).collect();
        (first_poll, second_poll, delivered, parked)
    })
    .await;
    assert!(first_poll.error.is_some(), "the hub failed");
    assert!(second_poll.error.is_none(), "{:?}", second_poll.error);
    assert_eq!(
        second_poll.outcomes.first(),
        Some(&ImportOutcome::Duplicate {
            number: first.clone()
        }),
        "{:?}",
        second_poll.outcomes
    );
    assert_eq!(delivered, vec![first.clone()], "delivered once");
    assert_eq!(parked, vec![garbage.clone()], "parked once");
    assert_eq!(
        hub.envelope(&first).expect("stored").tracking,
        Tracking::Delivered
    );
    assert_eq!(
        hub.envelope(&garbage).expect("stored").tracking,
        Tracking::DeliveredNotReadable
    );
    hub.assert_clean();
}
