//! The operator console in a real browser: headless Chromium (Debian's) driven by Playwright
//! (`tests/browser/`, installed by `deploy/setup.sh`) against the console of running hubs,
//! after documents went through them. Screenshots land in `target/browser-screenshots/`.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::Command;

use asw_e2e::{document, state, testbed_with};
use asw_model::DocumentKind;
use asw_testbed::CONSOLE_USERS;

use crate::console::{
    acdd_parked_at_th, bind_back_office, console_address, deliveries, send_good_and_bad_formd,
    until_inbound_in, until_parked,
};
use crate::{WAIT, is_doc};

/// `tests/browser/`, where the scripts and their `node_modules` are.
fn scripts() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("browser")
}

/// What every script is given: the console at `address`, the testbed's operator and viewer
/// (`CONSOLE_USERS`) and where the screenshots go; a test adds its documents' ids.
fn console_env(address: SocketAddr) -> Vec<(&'static str, String)> {
    let [
        (operator, _, operator_password),
        (viewer, _, viewer_password),
    ] = CONSOLE_USERS;
    let shots = Path::new(env!("CARGO_MANIFEST_DIR")).join("../target/browser-screenshots");
    vec![
        ("ASW_CONSOLE_URL", format!("http://{address}")),
        ("ASW_OPERATOR_USER", operator.to_owned()),
        ("ASW_OPERATOR_PASSWORD", operator_password.to_owned()),
        ("ASW_VIEWER_USER", viewer.to_owned()),
        ("ASW_VIEWER_PASSWORD", viewer_password.to_owned()),
        ("ASW_SCREENSHOTS", shots.display().to_string()),
    ]
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
    let address = console_address(&tb, vn);
    let (good_id, bad_id) = send_good_and_bad_formd(&tb).await;

    let mut env = console_env(address);
    env.extend([
        ("ASW_GOOD_ID", good_id.to_string()),
        ("ASW_BAD_ID", bad_id.to_string()),
    ]);
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
    let (tb, _dir) = acdd_parked_at_th(None).await;
    let address = console_address(&tb, th);
    let acdd = document(DocumentKind::Acdd, "VN", "TH");
    let id = acdd.header.message_id;
    tb.send_document(&acdd).await.expect("send");
    until_parked(&tb, th, 1).await;
    bind_back_office(&tb, th, "acdd.#").await;

    let mut env = console_env(address);
    env.push(("ASW_PARKED_ID", id.to_string()));
    tokio::task::spawn_blocking(move || node("replay.mjs", &env))
        .await
        .expect("the browser script");
    tb.wait_for(th, "the replayed ACDD", WAIT, |m| is_doc(m, "acdd.VN", id))
        .await
        .expect("delivered");
    let journal = tb.hub(th).expect("TH").journal();
    until_inbound_in(journal.as_ref(), id, "delivered").await;
    assert_eq!(deliveries(&tb, th, "acdd.VN", id), 1, "delivered once");
    tb.stop_and_clean().await;
}
