//! The hub's counters, gauges and histogram, kept in a `prometheus-client` registry, and their
//! exposition in the OpenMetrics text format (which Prometheus negotiates by itself). Labels are
//! low-cardinality: pipeline, outcome, partner code, document kind, journal operation; never a
//! message id. Every label value is one of our own static names or a number, so none needs
//! escaping (the encoder does not escape).

use std::marker::PhantomData;
use std::time::Duration;

use asw_model::{DocumentKind, MemberState};
use asw_route::names;
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::encoding::text::{encode_eof, encode_registry};
use prometheus_client::metrics::counter::{ConstCounter, Counter};
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::Registry;

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
    /// Reading whether the IPPC hub took an e-Phyto certificate before (its delivery number).
    IppcDeliveredBefore,
}

impl JournalOperation {
    /// The label value.
    pub fn as_str(self) -> &'static str {
        match self {
            JournalOperation::Move => "move",
            JournalOperation::ClaimOverdue => "claim-overdue",
            JournalOperation::IppcDeliveredBefore => "ippc-delivered-before",
        }
    }
}

/// Upper bounds of the processing time buckets, in seconds (`+Inf` is implied).
pub const BUCKETS: [f64; 10] = [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 10.0];

/// The content type of what [`Metrics::render`] writes.
pub const CONTENT_TYPE: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";

/// The label value of an unknown partner or kind (a document whose header could not be read).
pub const UNKNOWN: &str = "unknown";

/// Labels of `aswhub_documents_total`.
#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct DocumentLabels {
    pipeline: &'static str,
    outcome: &'static str,
    partner: &'static str,
    kind: &'static str,
}

impl DocumentLabels {
    fn new(
        pipeline: Pipeline,
        outcome: DocumentOutcome,
        partner: Option<MemberState>,
        kind: Option<DocumentKind>,
    ) -> DocumentLabels {
        DocumentLabels {
            pipeline: pipeline.as_str(),
            outcome: outcome.as_str(),
            partner: partner.map_or(UNKNOWN, MemberState::code),
            kind: kind.map_or(UNKNOWN, DocumentKind::as_str),
        }
    }
}

/// The label of the per-pipeline series.
#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct PipelineLabel {
    pipeline: &'static str,
}

/// The label of `aswhub_journal_errors_total`.
#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct OperationLabel {
    operation: &'static str,
}

/// The label of `aswhub_partner_link_failures_total`.
#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct PartnerLabel {
    partner: &'static str,
}

/// The labels of `aswhub_partner_channel_up`.
#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ChannelLabels {
    partner: &'static str,
    channel: &'static str,
}

/// The label of `aswhub_trust_certificates_expiring`.
#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct WindowLabel {
    within_days: u32,
}

/// The counters and gauges of one hub. Cloning a metric of `prometheus-client` shares it, so
/// the fields below are handles on what `registry` encodes.
#[derive(Debug)]
pub struct Metrics {
    registry: Registry,
    documents: Family<DocumentLabels, Counter>,
    /// Indexed by [`Pipeline::index`].
    processing: [Histogram; 2],
    in_flight: [Gauge; 2],
    journal_errors: Family<OperationLabel, Counter>,
    broker_reconnects: Counter,
    broker_connected: Gauge,
    /// When [`Metrics::broker_connected`] last changed the gauge (`None`: never).
    broker_since: std::sync::Mutex<Option<time::OffsetDateTime>>,
    link_failures: Family<PartnerLabel, Counter>,
    trust_files_refused: Gauge,
}

/// The hub's broker session as the metrics keep it, for the console.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BrokerSession {
    /// Whether the hub holds a broker connection now.
    pub connected: bool,
    /// Since when it does (or does not); `None` before the first connection.
    pub since: Option<time::OffsetDateTime>,
    /// Sessions that ended and were started again since the hub started.
    pub reconnects: u64,
}

impl Default for Metrics {
    fn default() -> Metrics {
        let mut registry = Registry::default();
        // Counters are registered without their `_total`: the encoder adds it to the samples.
        let documents = Family::<DocumentLabels, Counter>::default();
        registry.register(
            "aswhub_documents",
            "Documents handled, by pipeline, outcome, partner and kind",
            documents.clone(),
        );
        let processing_family = Family::<PipelineLabel, Histogram>::new_with_constructor(
            (|| Histogram::new(BUCKETS)) as fn() -> Histogram,
        );
        registry.register(
            "aswhub_processing_seconds",
            "Time from taking a delivery to settling it, by pipeline",
            processing_family.clone(),
        );
        let in_flight_family = Family::<PipelineLabel, Gauge>::default();
        registry.register(
            "aswhub_in_flight",
            "Deliveries being processed now, by pipeline",
            in_flight_family.clone(),
        );
        // Every pipeline and operation is shown from the start, at 0.
        let per_pipeline = |p: Pipeline| PipelineLabel {
            pipeline: p.as_str(),
        };
        let processing =
            Pipeline::ALL.map(|p| processing_family.get_or_create_owned(&per_pipeline(p)));
        let in_flight =
            Pipeline::ALL.map(|p| in_flight_family.get_or_create_owned(&per_pipeline(p)));
        let journal_errors = Family::<OperationLabel, Counter>::default();
        for operation in [
            JournalOperation::Move,
            JournalOperation::ClaimOverdue,
            JournalOperation::IppcDeliveredBefore,
        ] {
            drop(journal_errors.get_or_create(&OperationLabel {
                operation: operation.as_str(),
            }));
        }
        registry.register(
            "aswhub_journal_errors",
            "Journal operations that failed outside a document's steps, by operation",
            journal_errors.clone(),
        );
        let broker_reconnects = Counter::default();
        registry.register(
            "aswhub_broker_reconnects",
            "Broker sessions that ended (connection or channel failure) and were started again",
            broker_reconnects.clone(),
        );
        let broker_connected = Gauge::default();
        registry.register(
            "aswhub_broker_connected",
            "1 while the hub holds a connection to its broker, else 0",
            broker_connected.clone(),
        );
        let link_failures = Family::<PartnerLabel, Counter>::default();
        registry.register(
            "aswhub_partner_link_failures",
            "Failed connections or pushes to a partner's broker (push links), by partner",
            link_failures.clone(),
        );
        let trust_files_refused = Gauge::default();
        registry.register(
            "aswhub_trust_files_refused",
            "Files or folders of the trust store that the last reload refused (their certificates are not trusted)",
            trust_files_refused.clone(),
        );
        Metrics {
            registry,
            documents,
            processing,
            in_flight,
            journal_errors,
            broker_reconnects,
            broker_connected,
            broker_since: std::sync::Mutex::new(None),
            link_failures,
            trust_files_refused,
        }
    }
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

impl Sampled {
    /// A registry holding these values, encoded after the hub's own at each scrape.
    fn registry(&self) -> Registry {
        let gauge = |n: usize| {
            let g = Gauge::<i64>::default();
            g.set(i64::try_from(n).unwrap_or(i64::MAX));
            g
        };
        let mut registry = Registry::default();
        if let Some(commits) = self.journal_commits {
            registry.register(
                "aswhub_journal_commits",
                "Journal transactions committed (one commit can carry the writes of several documents)",
                ConstCounter::new(commits),
            );
        }
        registry.register(
            "aswhub_trust_certificates",
            "Partner certificates in the trust store",
            gauge(self.trust_certificates),
        );
        let expiring = Family::<WindowLabel, Gauge>::default();
        expiring
            .get_or_create(&WindowLabel {
                within_days: self.expiry_warning_days,
            })
            .set(i64::try_from(self.trust_expiring).unwrap_or(i64::MAX));
        registry.register(
            "aswhub_trust_certificates_expiring",
            "Partner certificates that expire within the warning window (signing.expiry_warning_days)",
            expiring,
        );
        let channels = Family::<ChannelLabels, Gauge>::default();
        for &(partner, channel, up) in &self.channels {
            channels
                .get_or_create(&ChannelLabels { partner, channel })
                .set(up);
        }
        registry.register(
            "aswhub_partner_channel_up",
            "1 while a partner's channel works (push: connected to its broker; pull: it reads its queue), 0 while it does not, -1 before the first check",
            channels,
        );
        registry
    }
}

/// Counts a delivery in progress until dropped.
#[derive(Debug)]
pub struct InFlight<'a> {
    gauge: Gauge,
    _metrics: PhantomData<&'a Metrics>,
}

impl Drop for InFlight<'_> {
    fn drop(&mut self) {
        self.gauge.dec();
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
        self.documents
            .get_or_create(&DocumentLabels::new(pipeline, outcome, partner, kind))
            .inc();
    }

    /// How many documents of that description were counted.
    pub fn documents(
        &self,
        pipeline: Pipeline,
        outcome: DocumentOutcome,
        partner: Option<MemberState>,
        kind: Option<DocumentKind>,
    ) -> u64 {
        self.documents
            .get(&DocumentLabels::new(pipeline, outcome, partner, kind))
            .map_or(0, |c| c.get())
    }

    /// Records how long one delivery of `pipeline` took to settle.
    pub fn processed(&self, pipeline: Pipeline, took: Duration) {
        self.processing[pipeline.index()].observe(took.as_secs_f64());
    }

    /// Counts a delivery of `pipeline` in progress while the guard lives.
    pub fn in_flight(&self, pipeline: Pipeline) -> InFlight<'_> {
        let gauge = self.in_flight[pipeline.index()].clone();
        gauge.inc();
        InFlight {
            gauge,
            _metrics: PhantomData,
        }
    }

    /// Counts a failed journal operation.
    pub fn journal_error(&self, operation: JournalOperation) {
        self.journal_errors
            .get_or_create(&OperationLabel {
                operation: operation.as_str(),
            })
            .inc();
    }

    /// Counts a broker session that ended and is started again.
    pub fn broker_reconnect(&self) {
        self.broker_reconnects.inc();
    }

    /// Whether the hub holds a broker connection now.
    pub fn broker_connected(&self, connected: bool) {
        let before = self.broker_connected.set(i64::from(connected));
        let mut since = self
            .broker_since
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if before != i64::from(connected) || since.is_none() {
            *since = Some(time::OffsetDateTime::now_utc());
        }
    }

    /// The broker session now: connected or not, since when, how many reconnects.
    pub fn broker_session(&self) -> BrokerSession {
        let since = *self
            .broker_since
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        BrokerSession {
            connected: self.is_broker_connected(),
            since,
            reconnects: self.broker_reconnects.get(),
        }
    }

    /// Whether the hub held a broker connection at the last change (for `/readyz`).
    pub fn is_broker_connected(&self) -> bool {
        self.broker_connected.get() == 1
    }

    /// How many files the last trust store reload refused.
    pub fn trust_files_refused(&self, files: usize) {
        self.trust_files_refused
            .set(i64::try_from(files).unwrap_or(i64::MAX));
    }

    /// Makes the push link's failure series of `partner` exist at 0, before any failure: a series
    /// that first appears at 1 shows no `increase()` to Prometheus, and its alert would miss the
    /// first failures.
    pub fn declare_link(&self, partner: MemberState) {
        let _created = self.link_failures.get_or_create(&PartnerLabel {
            partner: partner.code(),
        });
    }

    /// Counts a failed connection or push to a partner's broker.
    pub fn link_failure(&self, partner: MemberState) {
        self.link_failures
            .get_or_create(&PartnerLabel {
                partner: partner.code(),
            })
            .inc();
    }

    /// Everything, in the OpenMetrics text format ([`CONTENT_TYPE`]), ending with `# EOF`.
    pub fn render(&self, sampled: &Sampled) -> String {
        let mut out = String::with_capacity(4096);
        // Writing to a String cannot fail, and our label sets always encode.
        let _ = encode_registry(&mut out, &self.registry);
        let _ = encode_registry(&mut out, &sampled.registry());
        let _ = encode_eof(&mut out);
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn state(code: &str) -> MemberState {
        MemberState::from_alpha2(code).expect("member state")
    }

    /// The sample lines of `name`, sorted (a family's series come in no particular order).
    fn lines_of<'a>(text: &'a str, name: &str) -> Vec<&'a str> {
        let mut lines: Vec<&str> = text
            .lines()
            .filter(|l| l.starts_with(name) && !l.starts_with('#'))
            .collect();
        lines.sort_unstable();
        lines
    }

    #[test]
    fn documents_are_counted_per_label_set() {
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
        assert_eq!(
            m.documents(Pipeline::Outbound, DocumentOutcome::Parked, th, None),
            0
        );
        let text = m.render(&Sampled::default());
        assert_eq!(
            lines_of(&text, "aswhub_documents_total"),
            [
                r#"aswhub_documents_total{pipeline="inbound",outcome="refused",partner="unknown",kind="unknown"} 1"#,
                r#"aswhub_documents_total{pipeline="outbound",outcome="queued",partner="TH",kind="formd"} 2"#,
            ],
            "asking for a count does not make a series"
        );
        assert!(text.contains("# TYPE aswhub_documents counter\n"));
    }

    #[test]
    fn the_histogram_is_cumulative_with_sum_and_count() {
        let m = Metrics::default();
        m.processed(Pipeline::Inbound, Duration::from_millis(3));
        m.processed(Pipeline::Inbound, Duration::from_millis(40));
        m.processed(Pipeline::Inbound, Duration::from_secs(30));
        let text = m.render(&Sampled::default());
        let inbound: Vec<&str> = text
            .lines()
            .filter(|l| l.starts_with("aswhub_processing_seconds"))
            .filter(|l| l.contains("pipeline=\"inbound\""))
            .collect();
        assert_eq!(
            inbound,
            [
                r#"aswhub_processing_seconds_sum{pipeline="inbound"} 30.043"#,
                r#"aswhub_processing_seconds_count{pipeline="inbound"} 3"#,
                r#"aswhub_processing_seconds_bucket{le="0.005",pipeline="inbound"} 1"#,
                r#"aswhub_processing_seconds_bucket{le="0.01",pipeline="inbound"} 1"#,
                r#"aswhub_processing_seconds_bucket{le="0.025",pipeline="inbound"} 1"#,
                r#"aswhub_processing_seconds_bucket{le="0.05",pipeline="inbound"} 2"#,
                r#"aswhub_processing_seconds_bucket{le="0.1",pipeline="inbound"} 2"#,
                r#"aswhub_processing_seconds_bucket{le="0.25",pipeline="inbound"} 2"#,
                r#"aswhub_processing_seconds_bucket{le="0.5",pipeline="inbound"} 2"#,
                r#"aswhub_processing_seconds_bucket{le="1.0",pipeline="inbound"} 2"#,
                r#"aswhub_processing_seconds_bucket{le="2.5",pipeline="inbound"} 2"#,
                r#"aswhub_processing_seconds_bucket{le="10.0",pipeline="inbound"} 2"#,
                r#"aswhub_processing_seconds_bucket{le="+Inf",pipeline="inbound"} 3"#,
            ]
        );
        assert!(text.contains("aswhub_processing_seconds_count{pipeline=\"outbound\"} 0\n"));
        assert!(text.contains("# TYPE aswhub_processing_seconds histogram\n"));
    }

    #[test]
    fn gauges_follow_guards_and_sampled_values() {
        let m = Metrics::default();
        let first = m.in_flight(Pipeline::Outbound);
        let second = m.in_flight(Pipeline::Outbound);
        drop(first);
        assert!(!m.is_broker_connected());
        assert_eq!(m.broker_session().since, None);
        m.broker_connected(true);
        assert!(m.is_broker_connected());
        let up = m.broker_session();
        assert!(up.connected && up.since.is_some(), "{up:?}");
        m.broker_reconnect();
        assert_eq!(m.broker_session().reconnects, 1);
        m.journal_error(JournalOperation::ClaimOverdue);
        m.link_failure(state("SG"));
        m.trust_files_refused(2);
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
            r#"aswhub_journal_errors_total{operation="ippc-delivered-before"} 0"#,
            "aswhub_journal_commits_total 7",
            r#"aswhub_partner_link_failures_total{partner="SG"} 1"#,
            "aswhub_trust_certificates 3",
            r#"aswhub_trust_certificates_expiring{within_days="30"} 1"#,
            "aswhub_trust_files_refused 2",
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
        m.link_failure(state("SG"));
        let text = m.render(&Sampled {
            channels: vec![("SG", "push", 0)],
            journal_commits: Some(1),
            ..Sampled::default()
        });
        let mut typed = Vec::new();
        let mut helped = Vec::new();
        for line in text.lines() {
            if let Some(rest) = line.strip_prefix("# TYPE ") {
                typed.push(rest.split(' ').next().unwrap_or_default().to_owned());
                continue;
            }
            if let Some(rest) = line.strip_prefix("# HELP ") {
                helped.push(rest.split(' ').next().unwrap_or_default().to_owned());
                continue;
            }
            if line == "# EOF" {
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
        assert_eq!(typed, helped, "one HELP for each TYPE");
        for family in [
            "aswhub_documents",
            "aswhub_processing_seconds",
            "aswhub_in_flight",
            "aswhub_journal_errors",
            "aswhub_journal_commits",
            "aswhub_broker_reconnects",
            "aswhub_broker_connected",
            "aswhub_partner_link_failures",
            "aswhub_trust_certificates",
            "aswhub_trust_certificates_expiring",
            "aswhub_trust_files_refused",
            "aswhub_partner_channel_up",
        ] {
            assert!(typed.iter().any(|t| t == family), "{family} missing");
        }
        assert!(text.ends_with("\n# EOF\n"), "one EOF, at the end");
        // A family without a series yet is left out (metadata alone tells a scraper nothing).
        let quiet = Metrics::default().render(&Sampled::default());
        assert!(!quiet.contains("aswhub_partner_link_failures"), "{quiet}");
        assert!(!quiet.contains("aswhub_documents"), "{quiet}");
        assert_eq!(text.matches("# EOF").count(), 1);
    }

    #[test]
    fn stages_name_pipelines() {
        assert_eq!(Pipeline::from_stage("inbound"), Some(Pipeline::Inbound));
        assert_eq!(Pipeline::from_stage("outbound"), Some(Pipeline::Outbound));
        assert_eq!(Pipeline::from_stage("sideways"), None);
    }
}
