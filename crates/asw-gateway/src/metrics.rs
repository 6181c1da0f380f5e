//! The hub's counters and gauges, kept in atomics (and, for the labelled document counter, a
//! small map behind a mutex held only for an increment), and their rendering in the Prometheus
//! text exposition format (version 0.0.4). Labels are low-cardinality: pipeline, outcome,
//! partner code, document kind, journal operation; never a message id.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::sync::Mutex;
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};
use std::time::Duration;

use asw_model::{DocumentKind, MemberState};
use asw_route::names;

/// A pipeline of the hub.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Pipeline {
    /// Back-office documents, validated, signed and queued for partners.
    Outbound,
    /// Partner documents, verified, validated and delivered to the back-office.
    Inbound,
}

impl Pipeline {
    /// Both pipelines.
    pub const ALL: [Pipeline; 2] = [Pipeline::Outbound, Pipeline::Inbound];

    /// The label value: the stage name (`outbound`, `inbound`).
    pub fn as_str(self) -> &'static str {
        match self {
            Pipeline::Outbound => names::stage::OUTBOUND,
            Pipeline::Inbound => names::stage::INBOUND,
        }
    }

    /// The pipeline of a stage name, as in the `x-asw-stage` header.
    pub fn from_stage(stage: &str) -> Option<Pipeline> {
        Pipeline::ALL.into_iter().find(|p| p.as_str() == stage)
    }

    fn index(self) -> usize {
        match self {
            Pipeline::Outbound => 0,
            Pipeline::Inbound => 1,
        }
    }
}

/// What became of a document: each is logged once and counted once.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum DocumentOutcome {
    /// Outbound: signed and queued for the partner.
    Queued,
    /// Inbound: verified and delivered to the back-office.
    Delivered,
    /// Seen before: dropped (outbound) or not delivered again (inbound).
    Duplicate,
    /// Refused for good (schema, rules, signature, routing) and parked.
    Refused,
    /// Given up after the retries were used up, and parked.
    Parked,
    /// A transient failure (or another hub's claim): put back with a delay.
    Retried,
    /// Inbound: one of the hub's own answers (receipt, rejection) queued for the partner.
    Answered,
    /// Outbound: no receipt in time, reported to the back-office.
    AwaitingAck,
    /// Outbound: no receipt in time, resent to the partner.
    Resent,
    /// The broker refused a publish it led to for that message alone (no queue bound, access,
    /// size), or the hub failed on it: parked with the reason.
    Undeliverable,
}

impl DocumentOutcome {
    /// The label value.
    pub fn as_str(self) -> &'static str {
        match self {
            DocumentOutcome::Queued => "queued",
            DocumentOutcome::Delivered => "delivered",
            DocumentOutcome::Duplicate => "duplicate",
            DocumentOutcome::Refused => "refused",
            DocumentOutcome::Parked => "parked",
            DocumentOutcome::Undeliverable => "undeliverable",
            DocumentOutcome::Retried => "retried",
            DocumentOutcome::Answered => "answered",
            DocumentOutcome::AwaitingAck => "awaiting-ack",
            DocumentOutcome::Resent => "resent",
        }
    }
}

/// A journal operation whose failure is counted.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum JournalOperation {
    /// Journaling a move after the broker confirmed it.
    Move,
    /// Looking for documents whose receipt is overdue.
    ClaimOverdue,
}

impl JournalOperation {
    /// The label value.
    pub fn as_str(self) -> &'static str {
        match self {
            JournalOperation::Move => "move",
            JournalOperation::ClaimOverdue => "claim-overdue",
        }
    }
}

/// Upper bounds of the processing time buckets, in seconds (`+Inf` is implied).
pub const BUCKETS: [f64; 10] = [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 10.0];

/// A histogram with the fixed [`BUCKETS`].
#[derive(Debug, Default)]
struct Histogram {
    /// Observations per bucket (not cumulative); the last one is above every bound.
    counts: [AtomicU64; BUCKETS.len() + 1],
    /// Sum of the observations, in microseconds.
    sum_micros: AtomicU64,
}

impl Histogram {
    fn observe(&self, took: Duration) {
        let seconds = took.as_secs_f64();
        let slot = BUCKETS
            .iter()
            .position(|&bound| seconds <= bound)
            .unwrap_or(BUCKETS.len());
        self.counts[slot].fetch_add(1, Ordering::Relaxed);
        let micros = u64::try_from(took.as_micros()).unwrap_or(u64::MAX);
        self.sum_micros.fetch_add(micros, Ordering::Relaxed);
    }
}

/// Document counter key: pipeline, outcome, partner code, kind.
type DocumentKey = (Pipeline, DocumentOutcome, &'static str, &'static str);

/// The label value of an unknown partner or kind (a document whose header could not be read).
pub const UNKNOWN: &str = "unknown";

/// The counters and gauges of one hub.
#[derive(Debug, Default)]
pub struct Metrics {
    documents: Mutex<BTreeMap<DocumentKey, u64>>,
    processing: [Histogram; 2],
    in_flight: [AtomicI64; 2],
    journal_errors: [AtomicU64; 2],
    broker_reconnects: AtomicU64,
    broker_connected: AtomicI64,
    link_failures: Mutex<BTreeMap<&'static str, u64>>,
    trust_files_refused: AtomicU64,
}

/// What is read from elsewhere at each scrape: the journal, the trust store, the channels.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Sampled {
    /// Each partner channel: partner code, channel kind, and 1 up, 0 down, -1 not known yet.
    pub channels: Vec<(&'static str, &'static str, i64)>,
    /// Journal transactions committed, when the journal counts them.
    pub journal_commits: Option<u64>,
    /// Trusted partner certificates.
    pub trust_certificates: usize,
    /// Of those, the ones that expire within the warning window.
    pub trust_expiring: usize,
    /// The warning window, in days.
    pub expiry_warning_days: u32,
}

/// Counts a delivery in progress until dropped.
#[derive(Debug)]
pub struct InFlight<'a> {
    gauge: &'a AtomicI64,
}

impl Drop for InFlight<'_> {
    fn drop(&mut self) {
        self.gauge.fetch_sub(1, Ordering::Relaxed);
    }
}

impl Metrics {
    /// Counts one document outcome.
    pub fn document(
        &self,
        pipeline: Pipeline,
        outcome: DocumentOutcome,
        partner: Option<MemberState>,
        kind: Option<DocumentKind>,
    ) {
        let key = (
            pipeline,
            outcome,
            partner.map_or(UNKNOWN, MemberState::code),
            kind.map_or(UNKNOWN, DocumentKind::as_str),
        );
        // A poisoned lock only means another thread panicked mid-increment: keep counting.
        let mut documents = self
            .documents
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        *documents.entry(key).or_default() += 1;
    }

    /// How many documents of that description were counted.
    pub fn documents(
        &self,
        pipeline: Pipeline,
        outcome: DocumentOutcome,
        partner: Option<MemberState>,
        kind: Option<DocumentKind>,
    ) -> u64 {
        let key = (
            pipeline,
            outcome,
            partner.map_or(UNKNOWN, MemberState::code),
            kind.map_or(UNKNOWN, DocumentKind::as_str),
        );
        self.documents
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .get(&key)
            .copied()
            .unwrap_or(0)
    }

    /// Records how long one delivery of `pipeline` took to settle.
    pub fn processed(&self, pipeline: Pipeline, took: Duration) {
        self.processing[pipeline.index()].observe(took);
    }

    /// Counts a delivery of `pipeline` in progress while the guard lives.
    pub fn in_flight(&self, pipeline: Pipeline) -> InFlight<'_> {
        let gauge = &self.in_flight[pipeline.index()];
        gauge.fetch_add(1, Ordering::Relaxed);
        InFlight { gauge }
    }

    /// Counts a failed journal operation.
    pub fn journal_error(&self, operation: JournalOperation) {
        let slot = match operation {
            JournalOperation::Move => 0,
            JournalOperation::ClaimOverdue => 1,
        };
        self.journal_errors[slot].fetch_add(1, Ordering::Relaxed);
    }

    /// Counts a broker session that ended and is started again.
    pub fn broker_reconnect(&self) {
        self.broker_reconnects.fetch_add(1, Ordering::Relaxed);
    }

    /// Whether the hub holds a broker connection now.
    pub fn broker_connected(&self, connected: bool) {
        self.broker_connected
            .store(i64::from(connected), Ordering::Relaxed);
    }

    /// How many files the last trust store reload refused.
    pub fn trust_files_refused(&self, files: usize) {
        self.trust_files_refused
            .store(u64::try_from(files).unwrap_or(u64::MAX), Ordering::Relaxed);
    }

    /// Counts a failed connection or push to a partner's broker.
    pub fn link_failure(&self, partner: MemberState) {
        *self
            .link_failures
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .entry(partner.code())
            .or_default() += 1;
    }

    /// Everything, in the Prometheus text format.
    pub fn render(&self, sampled: &Sampled) -> String {
        let mut out = String::with_capacity(4096);
        header(
            &mut out,
            "aswhub_documents_total",
            "counter",
            "Documents handled, by pipeline, outcome, partner and kind.",
        );
        let documents = self
            .documents
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clone();
        for ((pipeline, outcome, partner, kind), n) in documents {
            sample(
                &mut out,
                "aswhub_documents_total",
                &[
                    ("pipeline", pipeline.as_str()),
                    ("outcome", outcome.as_str()),
                    ("partner", partner),
                    ("kind", kind),
                ],
                n,
            );
        }
        header(
            &mut out,
            "aswhub_processing_seconds",
            "histogram",
            "Time from taking a delivery to settling it, by pipeline.",
        );
        for pipeline in Pipeline::ALL {
            let h = &self.processing[pipeline.index()];
            let mut cumulative = 0u64;
            for (i, bound) in BUCKETS.iter().enumerate() {
                cumulative += h.counts[i].load(Ordering::Relaxed);
                sample(
                    &mut out,
                    "aswhub_processing_seconds_bucket",
                    &[("pipeline", pipeline.as_str()), ("le", &bound.to_string())],
                    cumulative,
                );
            }
            cumulative += h.counts[BUCKETS.len()].load(Ordering::Relaxed);
            sample(
                &mut out,
                "aswhub_processing_seconds_bucket",
                &[("pipeline", pipeline.as_str()), ("le", "+Inf")],
                cumulative,
            );
            let sum = h.sum_micros.load(Ordering::Relaxed) as f64 / 1e6;
            sample(
                &mut out,
                "aswhub_processing_seconds_sum",
                &[("pipeline", pipeline.as_str())],
                sum,
            );
            sample(
                &mut out,
                "aswhub_processing_seconds_count",
                &[("pipeline", pipeline.as_str())],
                cumulative,
            );
        }
        header(
            &mut out,
            "aswhub_in_flight",
            "gauge",
            "Deliveries being processed now, by pipeline.",
        );
        for pipeline in Pipeline::ALL {
            sample(
                &mut out,
                "aswhub_in_flight",
                &[("pipeline", pipeline.as_str())],
                self.in_flight[pipeline.index()].load(Ordering::Relaxed),
            );
        }
        header(
            &mut out,
            "aswhub_journal_errors_total",
            "counter",
            "Journal operations that failed outside a document's steps, by operation.",
        );
        for (slot, operation) in [JournalOperation::Move, JournalOperation::ClaimOverdue]
            .into_iter()
            .enumerate()
        {
            sample(
                &mut out,
                "aswhub_journal_errors_total",
                &[("operation", operation.as_str())],
                self.journal_errors[slot].load(Ordering::Relaxed),
            );
        }
        if let Some(commits) = sampled.journal_commits {
            header(
                &mut out,
                "aswhub_journal_commits_total",
                "counter",
                "Journal transactions committed (one commit can carry the writes of several documents).",
            );
            sample(&mut out, "aswhub_journal_commits_total", &[], commits);
        }
        header(
            &mut out,
            "aswhub_broker_reconnects_total",
            "counter",
            "Broker sessions that ended (connection or channel failure) and were started again.",
        );
        sample(
            &mut out,
            "aswhub_broker_reconnects_total",
            &[],
            self.broker_reconnects.load(Ordering::Relaxed),
        );
        header(
            &mut out,
            "aswhub_broker_connected",
            "gauge",
            "1 while the hub holds a connection to its broker, else 0.",
        );
        sample(
            &mut out,
            "aswhub_broker_connected",
            &[],
            self.broker_connected.load(Ordering::Relaxed),
        );
        header(
            &mut out,
            "aswhub_partner_link_failures_total",
            "counter",
            "Failed connections or pushes to a partner's broker (push links), by partner.",
        );
        let links = self
            .link_failures
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clone();
        for (partner, n) in links {
            sample(
                &mut out,
                "aswhub_partner_link_failures_total",
                &[("partner", partner)],
                n,
            );
        }
        header(
            &mut out,
            "aswhub_trust_certificates",
            "gauge",
            "Partner certificates in the trust store.",
        );
        sample(
            &mut out,
            "aswhub_trust_certificates",
            &[],
            sampled.trust_certificates,
        );
        header(
            &mut out,
            "aswhub_trust_certificates_expiring",
            "gauge",
            "Partner certificates that expire within the warning window (signing.expiry_warning_days).",
        );
        sample(
            &mut out,
            "aswhub_trust_certificates_expiring",
            &[("within_days", &sampled.expiry_warning_days.to_string())],
            sampled.trust_expiring,
        );
        header(
            &mut out,
            "aswhub_trust_files_refused",
            "gauge",
            "Files or folders of the trust store that the last reload refused (their certificates are not trusted).",
        );
        sample(
            &mut out,
            "aswhub_trust_files_refused",
            &[],
            self.trust_files_refused.load(Ordering::Relaxed),
        );
        header(
            &mut out,
            "aswhub_partner_channel_up",
            "gauge",
            "1 while a partner's channel works (push: connected to its broker; pull: it reads its queue), 0 while it does not, -1 before the first check.",
        );
        for (partner, channel, up) in &sampled.channels {
            sample(
                &mut out,
                "aswhub_partner_channel_up",
                &[("partner", partner), ("channel", channel)],
                up,
            );
        }
        out
    }
}

fn header(out: &mut String, name: &str, kind: &str, help: &str) {
    // Writing to a String cannot fail.
    let _ = writeln!(out, "# HELP {name} {}", escape_help(help));
    let _ = writeln!(out, "# TYPE {name} {kind}");
}

fn sample(out: &mut String, name: &str, labels: &[(&str, &str)], value: impl std::fmt::Display) {
    out.push_str(name);
    if !labels.is_empty() {
        out.push('{');
        for (i, (label, v)) in labels.iter().enumerate() {
            if i > 0 {
                out.push(',');
            }
            let _ = write!(out, "{label}=\"{}\"", escape_label(v));
        }
        out.push('}');
    }
    let _ = writeln!(out, " {value}");
}

/// A label value as the text format wants it: backslash, double quote and line feed escaped.
pub fn escape_label(value: &str) -> String {
    let mut out = String::with_capacity(value.len());
    for c in value.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '"' => out.push_str("\\\""),
            '\n' => out.push_str("\\n"),
            c => out.push(c),
        }
    }
    out
}

/// A HELP text: backslash and line feed escaped.
fn escape_help(text: &str) -> String {
    text.replace('\\', "\\\\").replace('\n', "\\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn state(code: &str) -> MemberState {
        MemberState::from_alpha2(code).expect("member state")
    }

    fn lines_of<'a>(text: &'a str, name: &str) -> Vec<&'a str> {
        text.lines()
            .filter(|l| l.starts_with(name) && !l.starts_with('#'))
            .collect()
    }

    #[test]
    fn documents_are_counted_per_label_set_in_a_stable_order() {
        let m = Metrics::default();
        let th = Some(state("TH"));
        m.document(
            Pipeline::Outbound,
            DocumentOutcome::Queued,
            th,
            Some(DocumentKind::FormD),
        );
        m.document(
            Pipeline::Outbound,
            DocumentOutcome::Queued,
            th,
            Some(DocumentKind::FormD),
        );
        m.document(Pipeline::Inbound, DocumentOutcome::Refused, None, None);
        assert_eq!(
            m.documents(
                Pipeline::Outbound,
                DocumentOutcome::Queued,
                th,
                Some(DocumentKind::FormD)
            ),
            2
        );
        let text = m.render(&Sampled::default());
        assert_eq!(
            lines_of(&text, "aswhub_documents_total"),
            [
                r#"aswhub_documents_total{pipeline="outbound",outcome="queued",partner="TH",kind="formd"} 2"#,
                r#"aswhub_documents_total{pipeline="inbound",outcome="refused",partner="unknown",kind="unknown"} 1"#,
            ]
        );
        assert!(text.contains("# TYPE aswhub_documents_total counter\n"));
    }

    #[test]
    fn the_histogram_is_cumulative_with_sum_and_count() {
        let m = Metrics::default();
        m.processed(Pipeline::Inbound, Duration::from_millis(3));
        m.processed(Pipeline::Inbound, Duration::from_millis(40));
        m.processed(Pipeline::Inbound, Duration::from_secs(30));
        let text = m.render(&Sampled::default());
        let inbound: Vec<&str> = lines_of(&text, "aswhub_processing_seconds")
            .into_iter()
            .filter(|l| l.contains("pipeline=\"inbound\""))
            .collect();
        assert_eq!(
            inbound,
            [
                r#"aswhub_processing_seconds_bucket{pipeline="inbound",le="0.005"} 1"#,
                r#"aswhub_processing_seconds_bucket{pipeline="inbound",le="0.01"} 1"#,
                r#"aswhub_processing_seconds_bucket{pipeline="inbound",le="0.025"} 1"#,
                r#"aswhub_processing_seconds_bucket{pipeline="inbound",le="0.05"} 2"#,
                r#"aswhub_processing_seconds_bucket{pipeline="inbound",le="0.1"} 2"#,
                r#"aswhub_processing_seconds_bucket{pipeline="inbound",le="0.25"} 2"#,
                r#"aswhub_processing_seconds_bucket{pipeline="inbound",le="0.5"} 2"#,
                r#"aswhub_processing_seconds_bucket{pipeline="inbound",le="1"} 2"#,
                r#"aswhub_processing_seconds_bucket{pipeline="inbound",le="2.5"} 2"#,
                r#"aswhub_processing_seconds_bucket{pipeline="inbound",le="10"} 2"#,
                r#"aswhub_processing_seconds_bucket{pipeline="inbound",le="+Inf"} 3"#,
                r#"aswhub_processing_seconds_sum{pipeline="inbound"} 30.043"#,
                r#"aswhub_processing_seconds_count{pipeline="inbound"} 3"#,
            ]
        );
        assert!(text.contains(r#"aswhub_processing_seconds_count{pipeline="outbound"} 0"#));
        assert!(text.contains("# TYPE aswhub_processing_seconds histogram\n"));
    }

    #[test]
    fn gauges_follow_guards_and_sampled_values() {
        let m = Metrics::default();
        let first = m.in_flight(Pipeline::Outbound);
        let second = m.in_flight(Pipeline::Outbound);
        drop(first);
        m.broker_connected(true);
        m.broker_reconnect();
        m.journal_error(JournalOperation::ClaimOverdue);
        m.link_failure(state("SG"));
        let text = m.render(&Sampled {
            channels: vec![("TH", "push", 1), ("SG", "pull", 0)],
            journal_commits: Some(7),
            trust_certificates: 3,
            trust_expiring: 1,
            expiry_warning_days: 30,
        });
        for line in [
            r#"aswhub_in_flight{pipeline="outbound"} 1"#,
            r#"aswhub_in_flight{pipeline="inbound"} 0"#,
            "aswhub_broker_connected 1",
            r#"aswhub_partner_channel_up{partner="TH",channel="push"} 1"#,
            r#"aswhub_partner_channel_up{partner="SG",channel="pull"} 0"#,
            "aswhub_broker_reconnects_total 1",
            r#"aswhub_journal_errors_total{operation="move"} 0"#,
            r#"aswhub_journal_errors_total{operation="claim-overdue"} 1"#,
            "aswhub_journal_commits_total 7",
            r#"aswhub_partner_link_failures_total{partner="SG"} 1"#,
            "aswhub_trust_certificates 3",
            r#"aswhub_trust_certificates_expiring{within_days="30"} 1"#,
        ] {
            assert!(text.lines().any(|l| l == line), "{line} missing in\n{text}");
        }
        drop(second);
        let text = m.render(&Sampled::default());
        assert!(text.contains("aswhub_in_flight{pipeline=\"outbound\"} 0\n"));
        assert!(
            !text.contains("aswhub_journal_commits_total"),
            "no commit count without a journal that counts"
        );
    }

    #[test]
    fn every_family_has_help_and_type_and_every_line_is_well_formed() {
        let m = Metrics::default();
        m.document(Pipeline::Outbound, DocumentOutcome::Parked, None, None);
        let text = m.render(&Sampled::default());
        let mut typed = Vec::new();
        for line in text.lines() {
            if let Some(rest) = line.strip_prefix("# TYPE ") {
                typed.push(rest.split(' ').next().unwrap_or_default().to_owned());
                continue;
            }
            if line.starts_with("# HELP ") {
                continue;
            }
            let (series, value) = line.rsplit_once(' ').expect("name and value");
            assert!(value.parse::<f64>().is_ok(), "{line}");
            let name = series.split('{').next().unwrap_or_default();
            assert!(
                typed.iter().any(|t| name.starts_with(t.as_str())),
                "{name} has no TYPE before it"
            );
            assert!(
                name.chars()
                    .all(|c| c.is_ascii_lowercase() || c == '_' || c.is_ascii_digit()),
                "{name}"
            );
        }
        assert!(text.ends_with('\n'));
    }

    #[test]
    fn label_values_are_escaped() {
        assert_eq!(escape_label(r#"a"b\c"#), r#"a\"b\\c"#);
        assert_eq!(escape_label("line\nbreak"), "line\\nbreak");
        assert_eq!(escape_label("TH"), "TH");
        let mut out = String::new();
        sample(&mut out, "x_total", &[("l", "q\"\n")], 1);
        assert_eq!(out, "x_total{l=\"q\\\"\\n\"} 1\n");
        assert_eq!(Pipeline::from_stage("inbound"), Some(Pipeline::Inbound));
        assert_eq!(Pipeline::from_stage("sideways"), None);
    }
}
