//! The alerting rules and the Grafana dashboard of deploy/prometheus against a running hub:
//! promtool checks and unit-tests the rules, every series they and the dashboard read is one the
//! hub exports with the labels they use, and the rules fire on the hub's own series.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::process::Command;

use asw_e2e::{document, state, testbed_with};
use asw_model::DocumentKind;

use crate::metrics::{scrape, until};
use crate::{WAIT, is_doc, send_refused_formd};

/// The series of e-Form Ds VN refused before sending them to TH.
const REFUSED: &str =
    r#"aswhub_documents_total{pipeline="outbound",outcome="refused",partner="TH",kind="formd"}"#;

/// Labels Prometheus adds at scrape time or that histograms carry: never in the hub's own
/// label sets, or always there.
const ADDED_BY_PROMETHEUS: [&str; 3] = ["instance", "job", "le"];

fn prometheus_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../deploy/prometheus")
}

/// Runs promtool in `dir`; panics with its output unless it succeeded.
fn promtool(dir: &Path, args: &[&str]) -> String {
    let out = Command::new("promtool")
        .args(args)
        .current_dir(dir)
        .output()
        .unwrap_or_else(|e| {
            panic!("promtool (Debian's prometheus package, which deploy/setup.sh installs): {e}")
        });
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(out.status.success(), "promtool {args:?} failed:\n{text}");
    text
}

/// One exported series: its name and labels.
type Series = (String, BTreeMap<String, String>);

/// The series of a scrape in the text exposition format (our label values hold no quotes).
fn series_of(text: &str) -> Vec<Series> {
    let mut all = Vec::new();
    for line in text
        .lines()
        .filter(|l| !l.starts_with('#') && !l.is_empty())
    {
        let (selector, _value) = line.rsplit_once(' ').expect("a value");
        let (name, labels) = match selector.split_once('{') {
            Some((name, rest)) => (name, rest.strip_suffix('}').expect("closing brace")),
            None => (selector, ""),
        };
        let labels = labels
            .split(',')
            .filter(|l| !l.is_empty())
            .map(|l| {
                let (k, v) = l.split_once('=').expect("label=value");
                (k.to_owned(), v.trim_matches('"').to_owned())
            })
            .collect();
        all.push((name.to_owned(), labels));
    }
    all
}

/// What one PromQL expression reads: `(metric, label names matched)` for each selector, and the
/// label names of its `by (...)` clauses.
fn reads(expr: &str) -> (Vec<(String, BTreeSet<String>)>, BTreeSet<String>) {
    let mut selectors = Vec::new();
    let mut rest = expr;
    while let Some(at) = rest.find("aswhub_") {
        let tail = &rest[at..];
        let end = tail
            .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
            .unwrap_or(tail.len());
        let name = tail[..end].to_owned();
        let mut labels = BTreeSet::new();
        if let Some(matchers) = tail[end..].strip_prefix('{') {
            let close = matchers.find('}').expect("closing brace");
            for matcher in matchers[..close].split(',') {
                let label = matcher
                    .split(['=', '!'])
                    .next()
                    .expect("a label name")
                    .trim();
                labels.insert(label.to_owned());
            }
        }
        selectors.push((name, labels));
        rest = &tail[end..];
    }
    let mut grouped = BTreeSet::new();
    let mut rest = expr;
    while let Some(at) = rest.find("by (") {
        let tail = &rest[at + 4..];
        let close = tail.find(')').expect("closing parenthesis");
        grouped.extend(tail[..close].split(',').map(|l| l.trim().to_owned()));
        rest = &tail[close..];
    }
    (selectors, grouped)
}

/// The expressions of the rules file (one `expr:` line each) and of the dashboard.
fn expressions() -> Vec<(String, String)> {
    let dir = prometheus_dir();
    let rules = std::fs::read_to_string(dir.join("aswhub-rules.yml")).expect("rules");
    let mut all: Vec<(String, String)> = rules
        .lines()
        .filter_map(|l| l.trim().strip_prefix("expr: "))
        .map(|e| ("aswhub-rules.yml".to_owned(), e.to_owned()))
        .collect();
    assert!(all.len() >= 10, "{} rules read", all.len());
    let dashboard: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(dir.join("grafana-aswhub.json")).expect("dashboard"),
    )
    .expect("the dashboard is JSON");
    let panels = dashboard["panels"].as_array().expect("panels");
    for panel in panels {
        for target in panel["targets"].as_array().expect("targets") {
            let expr = target["expr"].as_str().expect("expr");
            all.push((
                format!("dashboard panel {}", panel["title"]),
                expr.to_owned(),
            ));
        }
    }
    all
}

/// The rules file without annotations (their texts are the static unit tests' business), so a
/// test built from live series need only predict each alert's labels.
fn rules_without_annotations() -> String {
    let rules = std::fs::read_to_string(prometheus_dir().join("aswhub-rules.yml")).expect("rules");
    let mut kept = String::new();
    let mut skipping_deeper_than = None;
    for line in rules.lines() {
        let indent = line.len() - line.trim_start().len();
        if let Some(depth) = skipping_deeper_than {
            if indent > depth {
                continue;
            }
            skipping_deeper_than = None;
        }
        if line.trim() == "annotations:" {
            skipping_deeper_than = Some(indent);
            continue;
        }
        kept.push_str(line);
        kept.push('\n');
    }
    kept
}

/// A series as promtool's input notation, with an `instance` as Prometheus would add it.
fn notation((name, labels): &Series) -> String {
    let mut parts: Vec<String> = labels.iter().map(|(k, v)| format!("{k}=\"{v}\"")).collect();
    parts.push("instance=\"vn:9464\"".to_owned());
    format!("{name}{{{}}}", parts.join(","))
}

/// The expected labels of an alert on `series`: its own labels among `kept`, the instance and
/// the severity, as promtool's flow mapping.
fn alert_labels((_, labels): &Series, kept: &[&str], severity: &str) -> String {
    let mut parts: Vec<String> = labels
        .iter()
        .filter(|(k, _)| kept.contains(&k.as_str()))
        .map(|(k, v)| format!("{k}: \"{v}\""))
        .collect();
    parts.push("instance: \"vn:9464\"".to_owned());
    parts.push(format!("severity: {severity}"));
    format!("{{{}}}", parts.join(", "))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn alerting_rules_and_dashboard_read_what_a_running_hub_exports() {
    // The shipped rules are valid and pass their own unit tests.
    let dir = prometheus_dir();
    let checked = promtool(&dir, &["check", "rules", "aswhub-rules.yml"]);
    assert!(checked.contains("SUCCESS"), "{checked}");
    promtool(&dir, &["test", "rules", "aswhub-rules.test.yml"]);

    // A hub that has queued one e-Form D and refused another.
    let (tb, _dir) = testbed_with(&["VN", "TH"], |o| o.metrics = true).await;
    let (vn, th) = (state("VN"), state("TH"));
    let address = tb
        .hub(vn)
        .and_then(|h| h.metrics_address())
        .expect("metrics address");
    let good = document(DocumentKind::FormD, "VN", "TH");
    tb.send_document(&good).await.expect("send");
    tb.wait_for(th, "formd.VN", WAIT, |m| {
        is_doc(m, "formd.VN", good.header.message_id)
    })
    .await
    .expect("delivered");
    send_refused_formd(&tb).await;
    until(address, REFUSED, 1.0).await;
    let text = scrape(address).await;
    tb.stop_and_clean().await;

    let exported = series_of(&text);
    let mut labels_of: BTreeMap<&str, BTreeSet<&str>> = BTreeMap::new();
    for (name, labels) in &exported {
        labels_of
            .entry(name)
            .or_default()
            .extend(labels.keys().map(String::as_str));
    }

    // Every metric a rule or a panel reads is exported, with every label it matches or groups by.
    for (place, expr) in expressions() {
        let (selectors, grouped) = reads(&expr);
        // `up` is Prometheus' own series of each scrape, the only other one a rule may read.
        assert!(
            !selectors.is_empty() || expr.starts_with("up{"),
            "{place} reads no aswhub metric: {expr}"
        );
        let mut available = BTreeSet::new();
        for (metric, matched) in &selectors {
            let Some(labels) = labels_of.get(metric.as_str()) else {
                panic!("{place} reads {metric}, which the hub does not export:\n{text}");
            };
            for label in matched {
                assert!(
                    labels.contains(label.as_str())
                        || ADDED_BY_PROMETHEUS.contains(&label.as_str()),
                    "{place} matches {metric} on `{label}`, a label the hub does not give it: {expr}"
                );
            }
            available.extend(labels.iter().copied());
        }
        for label in &grouped {
            assert!(
                available.contains(label.as_str()) || ADDED_BY_PROMETHEUS.contains(&label.as_str()),
                "{place} groups by `{label}`, which none of its series has: {expr}"
            );
        }
    }

    // The rules fire on the series as the hub writes them (names, labels and values), not only on
    // the hand-written ones of the static tests.
    let find = |name: &str, wanted: &[(&str, &str)]| -> Series {
        exported
            .iter()
            .find(|(n, l)| {
                n == name
                    && wanted
                        .iter()
                        .all(|(k, v)| l.get(*k).map(String::as_str) == Some(*v))
            })
            .cloned()
            .unwrap_or_else(|| panic!("no {name} {wanted:?} in\n{text}"))
    };
    let channel = find(
        "aswhub_partner_channel_up",
        &[("partner", "TH"), ("channel", "push")],
    );
    let refused = find(
        "aswhub_documents_total",
        &[("outcome", "refused"), ("partner", "TH")],
    );
    let queued = find(
        "aswhub_documents_total",
        &[("outcome", "queued"), ("partner", "TH")],
    );
    let connected = find("aswhub_broker_connected", &[]);
    let expiring = find("aswhub_trust_certificates_expiring", &[]);
    let scratch = tempfile::tempdir().expect("tempdir");
    std::fs::write(
        scratch.path().join("rules.yml"),
        rules_without_annotations(),
    )
    .expect("rules");
    let test = format!(
        r#"rule_files: [rules.yml]
evaluation_interval: 1m
tests:
  - interval: 1m
    input_series:
      - {{series: '{channel}', values: '1 0x15'}}
      - {{series: '{refused}', values: '0 1 1 1'}}
      - {{series: '{queued}', values: '0+10x15'}}
      - {{series: '{connected}', values: '1 0x10'}}
      - {{series: '{expiring}', values: '0 2x5'}}
    alert_rule_test:
      - {{eval_time: 12m, alertname: AswhubPartnerChannelDown, exp_alerts: [{{exp_labels: {channel_alert}}}]}}
      - {{eval_time: 3m, alertname: AswhubDocumentsRefused, exp_alerts: [{{exp_labels: {refused_alert}}}]}}
      - {{eval_time: 3m, alertname: AswhubDocumentsParked, exp_alerts: []}}
      - {{eval_time: 8m, alertname: AswhubBrokerSessionLost, exp_alerts: [{{exp_labels: {connected_alert}}}]}}
      - {{eval_time: 2m, alertname: AswhubCertificatesExpiring, exp_alerts: [{{exp_labels: {expiring_alert}}}]}}
"#,
        channel = notation(&channel),
        refused = notation(&refused),
        queued = notation(&queued),
        connected = notation(&connected),
        expiring = notation(&expiring),
        channel_alert = alert_labels(&channel, &["partner", "channel"], "page"),
        refused_alert = alert_labels(&refused, &["pipeline", "partner", "kind"], "ticket"),
        connected_alert = alert_labels(&connected, &[], "page"),
        expiring_alert = alert_labels(&expiring, &["within_days"], "ticket"),
    );
    std::fs::write(scratch.path().join("live.test.yml"), &test).expect("test file");
    promtool(scratch.path(), &["test", "rules", "live.test.yml"]);
}
