//! `aswctl console user add | remove | list` against a running hub's console: an account added
//! can log in at once, one removed cannot, and the file holds argon2id hashes only.

use std::io::{Read, Write};
use std::net::SocketAddr;
use std::process::{Command, Stdio};

use asw_e2e::{state, testbed_with};
use asw_model::MemberState;
use asw_testbed::Testbed;

/// Runs `aswctl console user ARGS --config <hub of at>` with `stdin`; exit code, stdout, stderr.
async fn user(tb: &Testbed, at: MemberState, args: &[&str], stdin: &str) -> (i32, String, String) {
    let config = tb.config_file(at).expect("a hub").to_owned();
    let args: Vec<String> = args.iter().map(|a| (*a).to_owned()).collect();
    let stdin = stdin.to_owned();
    tokio::task::spawn_blocking(move || {
        let mut child = Command::new(env!("CARGO_BIN_EXE_aswctl"))
            .args(["console", "user"])
            .args(&args)
            .arg("--config")
            .arg(&config)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("run aswctl");
        child
            .stdin
            .take()
            .expect("stdin")
            .write_all(stdin.as_bytes())
            .expect("write stdin");
        let output = child.wait_with_output().expect("wait");
        (
            output.status.code().unwrap_or(-1),
            String::from_utf8_lossy(&output.stdout).into_owned(),
            String::from_utf8_lossy(&output.stderr).into_owned(),
        )
    })
    .await
    .expect("join")
}

/// The status of a login as `name` with `password`.
async fn login(address: SocketAddr, name: &str, password: &str) -> u16 {
    let body = format!("user={name}&password={}", password.replace(' ', "+"));
    let request = format!(
        "POST /login HTTP/1.1\r\nHost: hub\r\nContent-Type: application/x-www-form-urlencoded\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    );
    tokio::task::spawn_blocking(move || {
        let mut stream = std::net::TcpStream::connect(address).expect("connect");
        stream.write_all(request.as_bytes()).expect("write");
        stream
            .shutdown(std::net::Shutdown::Write)
            .expect("half-close");
        let mut response = String::new();
        stream.read_to_string(&mut response).expect("read");
        response[9..12].parse().expect("status")
    })
    .await
    .expect("join")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn accounts_added_and_removed_with_aswctl_log_in_or_not_at_once() {
    let (tb, _dir) = testbed_with(&["VN", "TH"], |o| o.console = true).await;
    let vn = state("VN");
    let address = tb
        .hub(vn)
        .and_then(|h| h.metrics_address())
        .expect("the console's address");
    let password = "a long enough secret";
    assert_eq!(login(address, "ana", password).await, 401);

    let (code, out, err) = user(
        &tb,
        vn,
        &["add", "ana", "--role", "operator"],
        &format!("{password}\n"),
    )
    .await;
    assert_eq!(code, 0, "{out}{err}");
    assert_eq!(
        login(address, "ana", password).await,
        303,
        "logs in at once"
    );
    let file = tb
        .config_file(vn)
        .and_then(|c| c.parent())
        .expect("dir")
        .join("console-users");
    let text = std::fs::read_to_string(&file).expect("accounts file");
    assert!(text.contains("ana operator $argon2id$"), "{text}");
    assert!(!text.contains(password), "never the password itself");

    let (code, out, _) = user(&tb, vn, &["list", "--format", "json"], "").await;
    assert_eq!(code, 0);
    let listed: serde_json::Value = serde_json::from_str(&out).expect("JSON");
    assert!(
        listed
            .as_array()
            .expect("array")
            .iter()
            .any(|u| u["name"] == "ana" && u["role"] == "operator"),
        "{out}"
    );
    // Refused (an error, exit 2): a taken name, a short password.
    let (code, _, err) = user(
        &tb,
        vn,
        &["add", "ana", "--role", "viewer"],
        "another long secret\n",
    )
    .await;
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("exists"), "{err}");
    let (code, _, err) = user(&tb, vn, &["add", "bo", "--role", "viewer"], "short\n").await;
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("fewer than 12"), "{err}");

    let (code, out, err) = user(&tb, vn, &["remove", "ana"], "").await;
    assert_eq!(code, 0, "{out}{err}");
    assert_eq!(
        login(address, "ana", password).await,
        401,
        "removed: no login"
    );
    let (code, _, _) = user(&tb, vn, &["remove", "ana"], "").await;
    assert_eq!(code, 1, "not there any more");
    tb.stop_and_clean().await;
}
