//! Helpers of the operator tests: `aswctl` run as an operator runs it against a testbed hub,
//! and waits on what it lists.

// Each helper is used by some of the tests.
#![allow(dead_code)]

use std::process::Command;
use std::time::Duration;

use asw_e2e::url_as;
use asw_model::MemberState;
use asw_model::document::Message as Document;
use asw_route::names;
use asw_testbed::{Received, Testbed};
use serde_json::Value;
use uuid::Uuid;

pub const WAIT: Duration = Duration::from_secs(30);

/// What one run of aswctl gave.
#[derive(Debug)]
pub struct Run {
    pub code: Option<i32>,
    pub stdout: String,
    pub stderr: String,
}

impl Run {
    pub fn json(&self) -> Value {
        serde_json::from_str(&self.stdout)
            .unwrap_or_else(|e| panic!("not JSON ({e}): {}\n{}", self.stdout, self.stderr))
    }

    pub fn assert_code(&self, code: i32) -> &Run {
        assert_eq!(self.code, Some(code), "{self:#?}");
        self
    }
}

/// Runs `aswctl ARGS --config <hub of at>` (off the runtime the hubs run on).
pub async fn ctl(tb: &Testbed, at: MemberState, args: &[&str]) -> Run {
    let config = tb.config_file(at).expect("a hub").to_owned();
    let args: Vec<String> = args.iter().map(|a| (*a).to_owned()).collect();
    let output = tokio::task::spawn_blocking(move || {
        Command::new(env!("CARGO_BIN_EXE_aswctl"))
            .args(&args)
            .arg("--config")
            .arg(&config)
            .output()
    })
    .await
    .expect("join")
    .expect("run aswctl");
    Run {
        code: output.status.code(),
        stdout: String::from_utf8_lossy(&output.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
    }
}

/// `parked list --format json` with extra arguments.
pub async fn parked(tb: &Testbed, at: MemberState, extra: &[&str]) -> Vec<Value> {
    let mut args = vec!["parked", "list", "--format", "json"];
    args.extend(extra);
    let run = ctl(tb, at, &args).await;
    run.assert_code(0);
    run.json().as_array().expect("an array").clone()
}

pub fn ids(list: &[Value]) -> Vec<String> {
    list.iter()
        .map(|v| v["message_id"].as_str().unwrap_or("-").to_owned())
        .collect()
}

/// Waits until `id` is parked with reason `code`, and returns its listing.
pub async fn until_parked(tb: &Testbed, at: MemberState, id: Uuid, code: &str) -> Value {
    let deadline = tokio::time::Instant::now() + WAIT;
    loop {
        let found = parked(tb, at, &[])
            .await
            .into_iter()
            .find(|p| p["message_id"] == id.to_string().as_str() && p["reason_code"] == code);
        if let Some(found) = found {
            return found;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "{id} was not parked with {code} in time"
        );
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
}

/// Waits until the journal of `at` holds `id` in `state`, and returns `messages show` of it.
pub async fn until_state(tb: &Testbed, at: MemberState, id: Uuid, state: &str) -> Value {
    let deadline = tokio::time::Instant::now() + WAIT;
    loop {
        let run = ctl(
            tb,
            at,
            &["messages", "show", &id.to_string(), "--format", "json"],
        )
        .await;
        if run.code == Some(0) && run.json()[0]["state"] == state {
            return run.json()[0].clone();
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "{id} did not become {state} in time: {run:#?}"
        );
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
}

pub fn events(history: &Value) -> Vec<(String, String)> {
    history
        .as_array()
        .expect("history")
        .iter()
        .map(|h| {
            (
                h["event"].as_str().unwrap_or_default().to_owned(),
                h["to"].as_str().unwrap_or_default().to_owned(),
            )
        })
        .collect()
}

pub fn pair(event: &str, to: &str) -> (String, String) {
    (event.to_owned(), to.to_owned())
}

pub fn is_doc(m: &Received, key: &str, id: Uuid) -> bool {
    m.routing_key == key && m.header(names::HEADER_MESSAGE_ID) == Some(id.to_string().as_str())
}

pub fn count(tb: &Testbed, at: MemberState, key: &str, id: Uuid) -> usize {
    tb.received(at)
        .iter()
        .filter(|m| is_doc(m, key, id))
        .count()
}

pub fn rejected_outcome(m: &Received, id: Uuid) -> bool {
    m.routing_key == "outcome.formd.TH"
        && m.header(names::HEADER_MESSAGE_ID) == Some(id.to_string().as_str())
        && m.header(names::HEADER_OUTCOME) == Some("rejected")
}

/// An e-Form D the FORMD-001 rule refuses (issued in MY, sent by VN).
pub fn invalid(d: &Document) -> String {
    d.to_xml().expect("xml").replacen(
        "<fd:IssuedIn>VN</fd:IssuedIn>",
        "<fd:IssuedIn>MY</fd:IssuedIn>",
        1,
    )
}

/// Binds `key` on `asw.inbound` to the testbed back-office queue of `at`, as a ministry would
/// once it takes a new kind.
pub async fn bind_back_office(tb: &Testbed, at: MemberState, key: &str) {
    let url = url_as(tb, at, "guest", "guest");
    let connection = asw_amqp::connect(&url, "test binding")
        .await
        .expect("connect");
    let channel = connection.open_channel().await.expect("channel");
    let topology = asw_route::Topology {
        bindings: vec![asw_route::Binding {
            exchange: names::INBOUND_EXCHANGE.into(),
            queue: asw_testbed::BACK_OFFICE_QUEUE.into(),
            routing_key: key.into(),
        }],
        exchanges: Vec::new(),
        queues: Vec::new(),
        users: Vec::new(),
        policies: Vec::new(),
    };
    asw_amqp::declare(&channel, &topology).await.expect("bind");
    let _ = connection.close().await;
}
