//! The metrics endpoint of running hubs: scraped with a plain TCP client while documents go
//! through the real broker, the counters move by what was sent, and garbage gets an error.

use std::io::{Read, Write};
use std::net::SocketAddr;
use std::time::Duration;

use asw_e2e::{document, state, testbed_with};
use asw_model::DocumentKind;

use crate::{WAIT, is_doc, outcome, send_refused_formd};

/// The series of e-Form Ds VN queued for TH.
const QUEUED: &str =
    r#"aswhub_documents_total{pipeline="outbound",outcome="queued",partner="TH",kind="formd"}"#;

/// Sends `request` on a fresh connection and returns the whole response.
async fn exchange(address: SocketAddr, request: &'static [u8]) -> String {
    tokio::task::spawn_blocking(move || {
        let mut stream = std::net::TcpStream::connect(address).expect("connect");
        stream.write_all(request).expect("write");
        stream
            .shutdown(std::net::Shutdown::Write)
            .expect("half-close");
        let mut response = Vec::new();
        stream.read_to_end(&mut response).expect("read");
        String::from_utf8(response).expect("utf-8")
    })
    .await
    .expect("scrape task")
}

/// The metrics text of a hub.
pub(crate) async fn scrape(address: SocketAddr) -> String {
    let response = exchange(address, b"GET /metrics HTTP/1.1\r\nHost: hub\r\n\r\n").await;
    let (head, body) = response.split_once("\r\n\r\n").expect("head and body");
    assert!(head.starts_with("HTTP/1.1 200 OK\r\n"), "{head}");
    assert!(
        head.to_ascii_lowercase()
            .contains("\r\ncontent-type: application/openmetrics-text; version=1.0.0"),
        "{head}"
    );
    body.to_owned()
}

/// The value of one series (name with labels, as written), 0 when absent.
pub(crate) fn value(text: &str, series: &str) -> f64 {
    text.lines()
        .find_map(|l| l.strip_prefix(series)?.strip_prefix(' '))
        .map_or(0.0, |v| v.parse().expect("a number"))
}

/// Scrapes until `series` reaches `expected` (counters the hub bumps just after the broker
/// confirmed what the test waited for), or `WAIT` has passed; returns the last text.
pub(crate) async fn until(address: SocketAddr, series: &str, expected: f64) -> String {
    until_with(address, series, expected, |seen| seen == expected).await
}

/// Scrapes until `series` is at least `least` (the processing time of a delivery is recorded
/// once it is settled, after what the test can observe).
async fn until_at_least(address: SocketAddr, series: &str, least: f64) -> String {
    until_with(address, series, least, |seen| seen >= least).await
}

async fn until_with(
    address: SocketAddr,
    series: &str,
    expected: f64,
    done: impl Fn(f64) -> bool,
) -> String {
    let deadline = tokio::time::Instant::now() + WAIT;
    loop {
        let text = scrape(address).await;
        let seen = value(&text, series);
        if done(seen) {
            return text;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "{series} is {seen}, expected {expected}, in\n{text}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn counters_move_with_the_documents_and_garbage_is_refused() {
    let (tb, _dir) = testbed_with(&["VN", "TH"], |o| o.metrics = true).await;
    let (vn, th) = (state("VN"), state("TH"));
    let at = |s| {
        tb.hub(s)
            .and_then(|h| h.metrics_address())
            .expect("metrics address")
    };
    let (vn_metrics, th_metrics) = (at(vn), at(th));
    assert_ne!(vn_metrics.port(), 0, "the bound port, not the configured 0");

    let before = scrape(vn_metrics).await;
    assert_eq!(value(&before, "aswhub_broker_reconnects_total"), 0.0);
    assert_eq!(
        value(
            &before,
            r#"aswhub_trust_certificates_expiring{within_days="30"}"#
        ),
        0.0
    );
    assert_eq!(value(&before, "aswhub_trust_certificates"), 1.0);
    assert!(
        before.contains("\naswhub_journal_commits_total "),
        "the SQLite journal counts its commits"
    );

    // Two good e-Form Ds VN -> TH, the first sent twice by the back-office, and one VN refuses.
    let first = document(DocumentKind::FormD, "VN", "TH");
    let second = document(DocumentKind::FormD, "VN", "TH");
    let ids = [first.header.message_id, second.header.message_id];
    let first_xml = first.to_xml().expect("xml");
    tb.send(vn, DocumentKind::FormD, first_xml.as_bytes())
        .await
        .expect("send");
    tb.wait_for(th, "formd.VN", WAIT, |m| is_doc(m, "formd.VN", ids[0]))
        .await
        .expect("delivered");
    // Counted once journaled as queued: the resend then finds it there.
    until(vn_metrics, QUEUED, 1.0).await;
    tb.send(vn, DocumentKind::FormD, first_xml.as_bytes())
        .await
        .expect("send again");
    tb.send_document(&second).await.expect("send the second");
    for id in &ids {
        tb.wait_for(vn, "acknowledged", WAIT, |m| {
            outcome(m, "outcome.formd.TH", *id, "acknowledged")
        })
        .await
        .expect("acknowledged");
    }
    send_refused_formd(&tb).await;

    // Each counter is bumped just after the broker confirmed what it counts, so the test may see
    // the effect first: scrape until it is there.
    for (series, expected) in [
        (
            r#"aswhub_documents_total{pipeline="outbound",outcome="duplicate",partner="unknown",kind="unknown"}"#,
            1.0,
        ),
        (QUEUED, 2.0),
        (
            r#"aswhub_documents_total{pipeline="outbound",outcome="refused",partner="TH",kind="formd"}"#,
            1.0,
        ),
        (
            r#"aswhub_documents_total{pipeline="inbound",outcome="delivered",partner="TH",kind="formd-ack"}"#,
            2.0,
        ),
    ] {
        until(vn_metrics, series, expected).await;
    }
    // Every delivery VN settled was timed: at least the four outbound and two receipts.
    until_at_least(
        vn_metrics,
        r#"aswhub_processing_seconds_count{pipeline="outbound"}"#,
        4.0,
    )
    .await;
    until_at_least(
        vn_metrics,
        r#"aswhub_processing_seconds_count{pipeline="inbound"}"#,
        2.0,
    )
    .await;
    let vn_text = scrape(vn_metrics).await;
    for (series, expected) in [
        (QUEUED, 2.0),
        ("aswhub_broker_connected", 1.0),
        ("aswhub_broker_reconnects_total", 0.0),
        (r#"aswhub_journal_errors_total{operation="move"}"#, 0.0),
        // VN's documents reached TH through VN's push channel, which is up.
        (
            r#"aswhub_partner_channel_up{partner="TH",channel="push"}"#,
            1.0,
        ),
    ] {
        assert_eq!(value(&vn_text, series), expected, "{series} in\n{vn_text}");
    }
    assert!(
        value(&vn_text, "aswhub_journal_commits_total")
            > value(&before, "aswhub_journal_commits_total")
    );

    let th_text = until(
        th_metrics,
        r#"aswhub_documents_total{pipeline="inbound",outcome="answered",partner="VN",kind="formd-ack"}"#,
        2.0,
    )
    .await;
    assert_eq!(
        value(
            &th_text,
            r#"aswhub_documents_total{pipeline="inbound",outcome="delivered",partner="VN",kind="formd"}"#
        ),
        2.0,
        "{th_text}"
    );

    // Garbage and other paths get an answer, and the endpoint keeps serving.
    for (request, expected) in [
        (&b"BREW /coffee HTCPCP/1.0\r\n\r\n"[..], "HTTP/1.1 400 "),
        (
            b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03\r\n\r\n",
            "HTTP/1.1 400 ",
        ),
        (b"GET /metrics/../etc HTTP/1.1\r\n\r\n", "HTTP/1.1 404 "),
        (b"DELETE /metrics HTTP/1.1\r\n\r\n", "HTTP/1.1 404 "),
    ] {
        let response = exchange(vn_metrics, request).await;
        assert!(response.starts_with(expected), "{response}");
    }
    let after = scrape(vn_metrics).await;
    assert!(after.contains("# TYPE aswhub_documents counter\n"));
    assert!(after.ends_with("\n# EOF\n"));

    tb.stop_and_clean().await;
}

/// The answer to `GET path`: status code and body.
async fn get(address: SocketAddr, request: &'static [u8]) -> (u16, String) {
    let response = exchange(address, request).await;
    let (head, body) = response.split_once("\r\n\r\n").expect("head and body");
    let status = head
        .strip_prefix("HTTP/1.1 ")
        .and_then(|r| r.get(..3))
        .and_then(|s| s.parse().ok())
        .expect("status");
    (status, body.to_owned())
}

const READYZ: &[u8] = b"GET /readyz HTTP/1.1\r\nHost: hub\r\n\r\n";
const HEALTHZ: &[u8] = b"GET /healthz HTTP/1.1\r\nHost: hub\r\n\r\n";

/// Asks `/readyz` until it answers `status` (or `WAIT` has passed); returns its checks.
async fn readiness(address: SocketAddr, status: u16) -> serde_json::Value {
    let deadline = tokio::time::Instant::now() + WAIT;
    loop {
        let (seen, body) = get(address, READYZ).await;
        if seen == status {
            let json: serde_json::Value = serde_json::from_str(&body).expect("json");
            assert_eq!(json["ready"], status == 200, "{body}");
            return json["checks"].clone();
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "/readyz is {seen}, expected {status}: {body}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn readiness_follows_the_broker_session_and_the_trust_store() {
    let (tb, dir) = testbed_with(&["VN", "TH"], |o| o.metrics = true).await;
    let vn = tb.hub(state("VN")).expect("VN hub").clone();
    let at = vn.metrics_address().expect("metrics address");
    let checks = readiness(at, 200).await;
    for check in ["broker", "journal", "trust"] {
        assert_eq!(checks[check]["ok"], true, "{checks}");
    }

    // The trust store emptied and reloaded: nothing inbound could verify.
    let trust = dir.path().join("vn").join("trust");
    let away = dir.path().join("vn-trust-away");
    std::fs::rename(&trust, &away).expect("move the trust store away");
    std::fs::create_dir(&trust).expect("empty trust store");
    vn.reload_trust().expect("reload");
    let checks = readiness(at, 503).await;
    assert_eq!(checks["trust"]["ok"], false, "{checks}");
    assert_eq!(checks["broker"]["ok"], true, "{checks}");
    assert_eq!(get(at, HEALTHZ).await.0, 200, "alive while not ready");
    std::fs::remove_dir(&trust).expect("remove the empty one");
    std::fs::rename(&away, &trust).expect("trust store back");
    vn.reload_trust().expect("reload");
    readiness(at, 200).await;

    // A hub of the same configuration whose broker cannot be reached: alive, not ready.
    let config = dir.path().join("vn").join("hub.toml");
    let text = std::fs::read_to_string(&config).expect("config");
    let broker = text
        .lines()
        .find_map(|l| l.strip_prefix("url = \""))
        .and_then(|url| url.split('@').nth(1)?.split('/').next())
        .expect("broker host and port")
        .to_owned();
    let offline = dir.path().join("vn").join("offline.toml");
    std::fs::write(&offline, text.replacen(&broker, "127.0.0.1:9", 1)).expect("write");
    let hub = std::sync::Arc::new(
        asw_gateway::hub::Hub::new(asw_gateway::config::HubConfig::load(&offline).expect("load"))
            .expect("hub"),
    );
    // The console's routes join the same server.
    hub.add_routes(
        axum::Router::new().route("/console", axum::routing::get(|| async { "console\n" })),
    );
    let stop = tokio_util::sync::CancellationToken::new();
    let running = tokio::spawn({
        let (hub, stop) = (hub.clone(), stop.clone());
        async move { hub.run(stop).await }
    });
    let offline_at = hub.metrics_address().expect("metrics address");
    let checks = readiness(offline_at, 503).await;
    assert_eq!(checks["broker"]["ok"], false, "{checks}");
    assert_eq!(checks["journal"]["ok"], true, "{checks}");
    assert_eq!(checks["trust"]["ok"], true, "{checks}");
    assert_eq!(get(offline_at, HEALTHZ).await, (200, "ok\n".to_owned()));
    assert_eq!(
        get(offline_at, b"GET /console HTTP/1.1\r\n\r\n").await,
        (200, "console\n".to_owned())
    );
    stop.cancel();
    running.await.expect("hub task").expect("hub stops");

    tb.stop_and_clean().await;
}
