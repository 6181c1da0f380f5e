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
