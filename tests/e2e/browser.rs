//! The operator console in a real browser: headless Chromium (Debian's) driven by Playwright
//! (`tests/browser/`, installed by `deploy/setup.sh`) against the console of running hubs,
//! after documents went through them. Screenshots land in `target/browser-screenshots/`.

use std::path::{Path, PathBuf};
use std::process::Command;

use asw_e2e::{document, state, testbed_with};
use asw_model::DocumentKind;
use asw_testbed::CONSOLE_USERS;

use crate::{WAIT, outcome};

/// `tests/browser/`, where the scripts and their `node_modules` are.
fn scripts() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("browser")
}

/// Runs `node tests/browser/<script>` with `env`; panics with its output unless it exits 0.
fn node(script: &str, env: &[(&str, String)]) {
    let dir = scripts();
    assert!(
        dir.join("node_modules/playwright-core").is_dir(),
        "tests/browser has no node_modules: run deploy/setup.sh (npm ci there)"
    );
    assert!(
        Path::new("/usr/bin/chromium").exists(),
        "no /usr/bin/chromium: run deploy/setup.sh"
    );
    let output = Command::new("node")
        .arg(script)
        .current_dir(&dir)
        .envs(env.iter().map(|(k, v)| (*k, v.as_str())))
        .output()
        .expect("node runs");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    println!("{script}:\n{text}");
    assert!(output.status.success(), "{script} failed:\n{text}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_console_in_a_browser_finds_opens_and_refuses() {
    let (tb, _dir) = testbed_with(&["VN", "TH"], |o| o.console = true).await;
    let vn = state("VN");
    let address = tb
        .hub(vn)
        .and_then(|h| h.metrics_address())
        .expect("the console's address");
    let good = document(DocumentKind::FormD, "VN", "TH");
    let good_id = good.header.message_id;
    tb.send_document(&good).await.expect("send");
    let bad = document(DocumentKind::FormD, "VN", "TH");
    let bad_id = bad.header.message_id;
    let xml = bad.to_xml().expect("xml").replacen(
        "<fd:IssuedIn>VN</fd:IssuedIn>",
        "<fd:IssuedIn>MY</fd:IssuedIn>",
        1,
    );
    tb.send(vn, DocumentKind::FormD, xml.as_bytes())
        .await
        .expect("send the bad one");
    tb.wait_for(vn, "acknowledged", WAIT, |m| {
        outcome(m, "outcome.formd.TH", good_id, "acknowledged")
    })
    .await
    .expect("acknowledged");
    tb.wait_for(vn, "rejected", WAIT, |m| {
        outcome(m, "outcome.formd.TH", bad_id, "rejected")
    })
    .await
    .expect("rejected");

    let [
        (operator, _, operator_password),
        (viewer, _, viewer_password),
    ] = CONSOLE_USERS;
    let shots = Path::new(env!("CARGO_MANIFEST_DIR")).join("../target/browser-screenshots");
    let env = [
        ("ASW_CONSOLE_URL", format!("http://{address}")),
        ("ASW_OPERATOR_USER", operator.to_owned()),
        ("ASW_OPERATOR_PASSWORD", operator_password.to_owned()),
        ("ASW_VIEWER_USER", viewer.to_owned()),
        ("ASW_VIEWER_PASSWORD", viewer_password.to_owned()),
        ("ASW_GOOD_ID", good_id.to_string()),
        ("ASW_BAD_ID", bad_id.to_string()),
        ("ASW_SCREENSHOTS", shots.display().to_string()),
    ];
    tokio::task::spawn_blocking(move || {
        node("console.mjs", &env);
        node("refusals.mjs", &env);
    })
    .await
    .expect("the browser scripts");
    tb.stop_and_clean().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_parked_document_replayed_from_the_parked_page_reaches_the_back_office_once() {
    let th = state("TH");
    // TH's ministry takes e-Form D (and outcomes, receipts) only: VN's ACDD is parked at TH.
    let (tb, _dir) = testbed_with(&["VN", "TH"], |o| {
        o.console = true;
        o.back_office_keys.insert(
            th,
            vec!["formd.#".into(), "formd-ack.#".into(), "outcome.#".into()],
        );
    })
    .await;
    let address = tb
        .hub(th)
        .and_then(|h| h.metrics_address())
        .expect("the console's address");
    let acdd = document(DocumentKind::Acdd, "VN", "TH");
    let id = acdd.header.message_id;
    tb.send_document(&acdd).await.expect("send");
    crate::console::until_parked(&tb, th, 1).await;
    crate::console::bind_back_office(&tb, th, "acdd.#").await;

    let [(operator, _, operator_password), _] = CONSOLE_USERS;
    let shots = Path::new(env!("CARGO_MANIFEST_DIR")).join("../target/browser-screenshots");
    let env = [
        ("ASW_CONSOLE_URL", format!("http://{address}")),
        ("ASW_OPERATOR_USER", operator.to_owned()),
        ("ASW_OPERATOR_PASSWORD", operator_password.to_owned()),
        ("ASW_PARKED_ID", id.to_string()),
        ("ASW_SCREENSHOTS", shots.display().to_string()),
    ];
    tokio::task::spawn_blocking(move || node("replay.mjs", &env))
        .await
        .expect("the browser script");
    let delivered = |tb: &asw_testbed::Testbed| {
        tb.received(th)
            .iter()
            .filter(|m| {
                m.routing_key == "acdd.VN"
                    && m.header(asw_route::names::HEADER_MESSAGE_ID)
                        == Some(id.to_string().as_str())
            })
            .count()
    };
    tb.wait_for(th, "the replayed ACDD", WAIT, |m| {
        m.routing_key == "acdd.VN"
            && m.header(asw_route::names::HEADER_MESSAGE_ID) == Some(id.to_string().as_str())
    })
    .await
    .expect("delivered");
    let journal = tb.hub(th).expect("TH").journal();
    let deadline = tokio::time::Instant::now() + WAIT;
    loop {
        let state = journal
            .get(asw_journal::Direction::Inbound, id)
            .expect("read")
            .map(|r| r.summary.state.to_string());
        if state.as_deref() == Some("delivered") {
            break;
        }
        assert!(tokio::time::Instant::now() < deadline, "{state:?}");
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    assert_eq!(delivered(&tb), 1, "delivered once");
    tb.stop_and_clean().await;
}
