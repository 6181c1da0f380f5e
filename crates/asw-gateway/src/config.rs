//! The hub's configuration: one TOML file, parsed and checked before anything starts. Every
//! problem is reported at once (`aswhub check-config` exits 64 if there is any).

use std::collections::BTreeMap;
use std::fmt;
use std::path::{Path, PathBuf};

use asw_model::MemberState;
use asw_model::xml::Limits;
use asw_route::RetryPolicy;
use serde::Deserialize;

/// How signed documents reach a partner.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LinkMode {
    /// They wait in `asw.partner.out.<CC>` for the partner to pull as user `partner-<CC>`.
    Pull,
    /// The hub pushes them to the partner's broker, as user `partner-<our CC>`, into its
    /// `asw.partner.in`.
    Push,
}

/// The whole configuration, checked.
#[derive(Debug, Clone, PartialEq)]
pub struct HubConfig {
    /// The member state this hub serves.
    pub country: MemberState,
    /// The local broker.
    pub broker: BrokerConfig,
    /// Signing key, certificate and trust store.
    pub signing: SigningConfig,
    /// Where the journal lives.
    pub journal: JournalConfig,
    /// Size, depth and concurrency limits.
    pub limits: LimitsConfig,
    /// Back-off of transient failures.
    pub retry: RetryPolicy,
    /// Partner member states, in code order.
    pub partners: BTreeMap<MemberState, PartnerConfig>,
    /// What the hub does about documents whose receipt is late.
    pub acks: AcksConfig,
    /// Where the hub serves its metrics.
    pub metrics: MetricsConfig,
}

/// The HTTP server of `/metrics` and the health probes (`[metrics]`; see [`crate::http::config`]).
pub use crate::http::config::MetricsConfig;

/// Receipts that do not come: after `timeout`, an outbound e-Form D or ACDD queued or sent to a
/// partner moves to `awaiting-ack` and the back-office gets an `awaiting-ack` outcome; it is
/// resent (same bytes, same id) up to `resend` times, `timeout` apart.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AcksConfig {
    /// How long a receipt may take, from queued or sent (and from each resend).
    pub timeout: std::time::Duration,
    /// Automatic resends at most, in total across hubs sharing the journal (0: never).
    pub resend: u32,
    /// How often the hub looks for overdue documents.
    pub check_every: std::time::Duration,
}

impl AcksConfig {
    /// The default timeout: 15 minutes.
    pub const DEFAULT_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(15 * 60);
    /// The default check interval: 30 seconds.
    pub const DEFAULT_CHECK_EVERY: std::time::Duration = std::time::Duration::from_secs(30);
}

impl Default for AcksConfig {
    /// A 15 minute timeout, no resend, a check every 30 seconds.
    fn default() -> AcksConfig {
        AcksConfig {
            timeout: AcksConfig::DEFAULT_TIMEOUT,
            resend: 0,
            check_every: AcksConfig::DEFAULT_CHECK_EVERY,
        }
    }
}

/// The local broker.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BrokerConfig {
    /// AMQP URL including the hub's vhost (`amqp://guest:guest@127.0.0.1:5672/asw-vn`): the
    /// first of [`urls`](Self::urls).
    pub url: String,
    /// Every node the hub may connect to (`url`, or the `urls` of a cluster), each naming the
    /// same vhost; the hub moves to another when its node goes away.
    pub urls: Vec<String>,
    /// Management HTTP API (used by `aswctl topology apply`): the first of
    /// [`management_urls`](Self::management_urls).
    pub management_url: String,
    /// Every management API address; commands use the first that answers.
    pub management_urls: Vec<String>,
    /// Management API user.
    pub management_user: String,
    /// Management API password.
    pub management_password: String,
    /// Unacknowledged deliveries per consumer.
    pub prefetch: u16,
    /// How often a message may come back to a queue the hub or a partner consumes (a consumer
    /// crashed on it, or returned it) before the broker parks it with `DELIVERY-LIMIT`: the
    /// policy `aswctl topology apply` sets (1 to [`asw_route::MAX_DELIVERY_LIMIT`]).
    pub delivery_limit: u32,
}

/// Signing and verification material.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SigningConfig {
    /// PEM private key of this member state.
    pub key: PathBuf,
    /// PEM certificate of that key.
    pub certificate: PathBuf,
    /// Trust store: one folder per member state with its certificates.
    pub trust_dir: PathBuf,
    /// Warn about certificates expiring within this many days.
    pub expiry_warning_days: u32,
}

/// The journal: an embedded SQLite file (`path`), or a PostgreSQL database (`url`) that several
/// hubs on different hosts can share.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JournalConfig {
    /// SQLite database file (resolved against the configuration's folder); unused with `url`.
    pub path: PathBuf,
    /// `postgres://` URL, when the journal is in PostgreSQL.
    pub url: Option<String>,
}

impl JournalConfig {
    /// What `asw_journal::open` takes: the URL, or the file's path.
    pub fn location(&self) -> String {
        self.url
            .clone()
            .unwrap_or_else(|| self.path.to_string_lossy().into_owned())
    }
}

/// Limits.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LimitsConfig {
    /// Reader limits for documents.
    pub document: Limits,
    /// Worker threads for XML and signature work.
    pub workers: usize,
    /// Deliveries each pipeline works on at once (see [`crate::hub::LANES`], the default).
    pub lanes: usize,
}

/// One partner member state.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PartnerConfig {
    /// Pull or push.
    pub link: LinkMode,
    /// The partner's broker URL (push), including its vhost; we connect as `partner-<our CC>`.
    /// The first of [`urls`](Self::urls).
    pub url: Option<String>,
    /// Every node of the partner's broker (`url`, or the `urls` of a cluster); empty for pull.
    pub urls: Vec<String>,
    /// Password of the user `partner-<CC>` in our vhost, so the partner can connect to us.
    pub password: String,
}

/// A configuration that could not be used, with every problem found.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub struct ConfigError {
    /// The configuration file.
    pub file: PathBuf,
    /// Each problem, one sentence naming the key.
    pub problems: Vec<String>,
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}: {} problem(s)",
            self.file.display(),
            self.problems.len()
        )?;
        for p in &self.problems {
            write!(f, "\n  {p}")?;
        }
        Ok(())
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawConfig {
    country: String,
    broker: RawBroker,
    signing: RawSigning,
    journal: RawJournal,
    #[serde(default)]
    limits: RawLimits,
    #[serde(default)]
    retry: RawRetry,
    #[serde(default)]
    partners: BTreeMap<String, RawPartner>,
    #[serde(default)]
    acks: RawAcks,
    metrics: Option<crate::http::config::RawMetrics>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
struct RawAcks {
    timeout: String,
    resend: u32,
    check_every: String,
}

impl Default for RawAcks {
    fn default() -> Self {
        RawAcks {
            timeout: "15m".into(),
            resend: 0,
            check_every: "30s".into(),
        }
    }
}

/// The most resends a configuration may ask for.
const MAX_RESENDS: u32 = 100;

/// The longest `acks.timeout` and `acks.check_every`: both are added to and subtracted from
/// clock readings, so the bound keeps that arithmetic far from overflow.
const MAX_ACK_DURATION: std::time::Duration = std::time::Duration::from_secs(30 * 86_400);

/// The widest `signing.expiry_warning_days` (ten years), added to the clock at every scrape.
const MAX_EXPIRY_WARNING_DAYS: u32 = 3_650;

/// The longest retry delay, in milliseconds (one day).
const MAX_RETRY_DELAY_MS: u32 = 86_400_000;

/// The most retry delays: each is a queue per pipeline stage on the broker.
const MAX_RETRY_DELAYS: usize = 20;

/// The most attempts of a delivery before it is parked.
const MAX_ATTEMPTS: u32 = 1_000;

/// A duration written as a whole number and a unit: `500ms`, `30s`, `15m`, `2h`, `1d`.
fn parse_duration(text: &str) -> Result<std::time::Duration, String> {
    let text = text.trim();
    // One whole number and one unit of ours; humantime does the arithmetic.
    let split = text
        .find(|c: char| !c.is_ascii_digit())
        .ok_or_else(|| format!("{text:?} has no unit (ms, s, m, h or d)"))?;
    let unit = &text[split..];
    if split == 0 {
        return Err(format!("{text:?} does not start with a whole number"));
    }
    if !matches!(unit, "ms" | "s" | "m" | "h" | "d") {
        return Err(format!("{text:?}: unit {unit:?} is not ms, s, m, h or d"));
    }
    let too_long = || format!("{text:?} is too long");
    match humantime::parse_duration(text) {
        // Durations are counted in milliseconds: one that does not fit is too long.
        Ok(d) if u64::try_from(d.as_millis()).is_err() => Err(too_long()),
        Ok(d) => Ok(d),
        // humantime counts in nanoseconds; what fits in milliseconds is still a duration (the
        // caller's bounds then refuse it), what does not is too long.
        Err(humantime::DurationError::NumberOverflow) => {
            let n: u64 = text[..split].parse().map_err(|_| too_long())?;
            let per_unit = humantime::parse_duration(&format!("1{unit}"))
                .ok()
                .and_then(|d| u64::try_from(d.as_millis()).ok())
                .ok_or_else(too_long)?;
            n.checked_mul(per_unit)
                .map(std::time::Duration::from_millis)
                .ok_or_else(too_long)
        }
        Err(e) => Err(format!("{text:?}: {e}")),
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawBroker {
    url: Option<String>,
    urls: Option<Vec<String>>,
    management_url: Option<String>,
    management_urls: Option<Vec<String>>,
    #[serde(default = "default_guest")]
    management_user: String,
    #[serde(default = "default_guest")]
    management_password: String,
    #[serde(default = "default_prefetch")]
    prefetch: u16,
    #[serde(default = "default_delivery_limit")]
    delivery_limit: u32,
}

fn default_management_url() -> String {
    "http://127.0.0.1:15672".into()
}
fn default_guest() -> String {
    "guest".into()
}
fn default_prefetch() -> u16 {
    200
}
fn default_delivery_limit() -> u32 {
    asw_route::DEFAULT_DELIVERY_LIMIT
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawSigning {
    key: PathBuf,
    certificate: PathBuf,
    trust_dir: PathBuf,
    #[serde(default = "default_expiry_days")]
    expiry_warning_days: u32,
}

fn default_expiry_days() -> u32 {
    30
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawJournal {
    path: Option<PathBuf>,
    url: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
struct RawLimits {
    max_document_bytes: usize,
    max_depth: usize,
    max_attributes: usize,
    max_namespaces: usize,
    max_namespaces_total: usize,
    max_name_bytes: usize,
    max_value_bytes: usize,
    max_nodes: usize,
    workers: usize,
    lanes: usize,
}

impl Default for RawLimits {
    fn default() -> Self {
        RawLimits {
            max_document_bytes: Limits::DEFAULT_MAX_BYTES,
            max_depth: Limits::DEFAULT_MAX_DEPTH,
            max_attributes: Limits::DEFAULT_MAX_ATTRIBUTES,
            max_namespaces: Limits::DEFAULT_MAX_NAMESPACES,
            max_namespaces_total: Limits::DEFAULT_MAX_NAMESPACES_TOTAL,
            max_name_bytes: Limits::DEFAULT_MAX_NAME_BYTES,
            max_value_bytes: Limits::DEFAULT_MAX_VALUE_BYTES,
            max_nodes: Limits::DEFAULT_MAX_NODES,
            workers: std::thread::available_parallelism().map_or(2, usize::from),
            lanes: crate::hub::LANES,
        }
    }
}

impl RawLimits {
    /// Every reader limit beyond max_document_bytes and max_depth out of its range, one problem
    /// each. The lower bounds leave room for the hub's own documents (8 namespace declarations,
    /// names of 26 bytes); the upper bounds keep the work per document linear and small in
    /// libxml2 and libxmlsec1 too.
    fn check_reader(&self, problems: &mut Vec<String>) {
        let mut between = |key: &str, value: usize, low: usize, high: usize| {
            if !(low..=high).contains(&value) {
                problems.push(format!(
                    "limits.{key}: {value} is not between {low} and {high}"
                ));
            }
        };
        between("max_attributes", self.max_attributes, 1, 256);
        between("max_namespaces", self.max_namespaces, 8, 256);
        between("max_namespaces_total", self.max_namespaces_total, 16, 4096);
        between("max_name_bytes", self.max_name_bytes, 64, 4096);
        between("max_value_bytes", self.max_value_bytes, 256, 1 << 20);
        between("max_nodes", self.max_nodes, 1000, 100_000_000);
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
struct RawRetry {
    delays_ms: Vec<u32>,
    max_attempts: u32,
}

impl Default for RawRetry {
    fn default() -> Self {
        let policy = RetryPolicy::default();
        RawRetry {
            delays_ms: policy.delays_ms,
            max_attempts: policy.max_attempts,
        }
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawPartner {
    link: LinkMode,
    url: Option<String>,
    urls: Option<Vec<String>>,
    password: Option<String>,
    password_env: Option<String>,
}

impl HubConfig {
    /// Reads and checks a configuration file. Relative paths in it are relative to its folder.
    pub fn load(file: &Path) -> Result<HubConfig, ConfigError> {
        let text = std::fs::read_to_string(file).map_err(|e| ConfigError {
            file: file.to_owned(),
            problems: vec![format!("cannot read the file: {e}")],
        })?;
        HubConfig::parse(&text, file)
    }

    /// Parses and checks configuration text; `file` names it in errors and anchors relative paths.
    pub fn parse(text: &str, file: &Path) -> Result<HubConfig, ConfigError> {
        let fail = |problems: Vec<String>| ConfigError {
            file: file.to_owned(),
            problems,
        };
        let raw: RawConfig =
            toml::from_str(text).map_err(|e| fail(vec![e.to_string().trim().to_owned()]))?;
        let base = file.parent().map(Path::to_owned).unwrap_or_default();
        let mut problems = Vec::new();
        let country = MemberState::from_alpha2(&raw.country);
        if country.is_none() {
            problems.push(format!(
                "country: {:?} is not an ASW member state",
                raw.country
            ));
        }
        let broker_urls = amqp_urls(
            "broker",
            raw.broker.url.clone(),
            raw.broker.urls.clone(),
            &mut problems,
        );
        if broker_urls.is_empty() && raw.broker.url.is_none() && raw.broker.urls.is_none() {
            problems.push("broker.url: the broker's AMQP URL is required (or urls)".into());
        }
        let management_urls = match (&raw.broker.management_url, &raw.broker.management_urls) {
            (Some(_), Some(_)) => {
                problems.push("broker: give management_url or management_urls, not both".into());
                Vec::new()
            }
            (Some(url), None) => vec![url.clone()],
            (None, Some(urls)) if urls.is_empty() => {
                problems.push("broker.management_urls: give at least one URL".into());
                Vec::new()
            }
            (None, Some(urls)) => urls.clone(),
            (None, None) => vec![default_management_url()],
        };
        let management_key = if raw.broker.management_urls.is_some() {
            "broker.management_urls"
        } else {
            "broker.management_url"
        };
        for url in &management_urls {
            if !url.starts_with("http://") && !url.starts_with("https://") {
                problems.push(format!("{management_key}: {url:?} is not an http(s) URL"));
            }
        }
        if raw.broker.prefetch == 0 {
            problems.push("broker.prefetch: must be at least 1".into());
        }
        if !(1..=asw_route::MAX_DELIVERY_LIMIT).contains(&raw.broker.delivery_limit) {
            problems.push(format!(
                "broker.delivery_limit: {} is not between 1 and {}",
                raw.broker.delivery_limit,
                asw_route::MAX_DELIVERY_LIMIT
            ));
        }
        let resolve = |p: &Path| {
            if p.is_absolute() {
                p.to_owned()
            } else {
                base.join(p)
            }
        };
        let signing = SigningConfig {
            key: resolve(&raw.signing.key),
            certificate: resolve(&raw.signing.certificate),
            trust_dir: resolve(&raw.signing.trust_dir),
            expiry_warning_days: raw.signing.expiry_warning_days,
        };
        if raw.signing.expiry_warning_days > MAX_EXPIRY_WARNING_DAYS {
            problems.push(format!(
                "signing.expiry_warning_days: {} is not between 0 and {MAX_EXPIRY_WARNING_DAYS}",
                raw.signing.expiry_warning_days
            ));
        }
        for (key, path) in [
            ("signing.key", &signing.key),
            ("signing.certificate", &signing.certificate),
        ] {
            if !path.is_file() {
                problems.push(format!("{key}: {} is not a readable file", path.display()));
            }
        }
        if !signing.trust_dir.is_dir() {
            problems.push(format!(
                "signing.trust_dir: {} is not a directory",
                signing.trust_dir.display()
            ));
        }
        let journal = match (&raw.journal.path, &raw.journal.url) {
            (Some(path), None) => {
                let path = resolve(path);
                match path.parent() {
                    Some(dir) if !dir.as_os_str().is_empty() && !dir.is_dir() => {
                        problems.push(format!(
                            "journal.path: folder {} does not exist",
                            dir.display()
                        ));
                    }
                    _ => {}
                }
                JournalConfig { path, url: None }
            }
            (None, Some(url)) => {
                if !(url.starts_with("postgres://") || url.starts_with("postgresql://")) {
                    problems.push(format!(
                        "journal.url: {:?} is not a postgres:// URL",
                        redact(url)
                    ));
                }
                JournalConfig {
                    path: PathBuf::new(),
                    url: Some(url.clone()),
                }
            }
            _ => {
                problems.push(
                    "journal: give either path (SQLite file) or url (PostgreSQL), not both".into(),
                );
                JournalConfig {
                    path: PathBuf::new(),
                    url: None,
                }
            }
        };
        raw.limits.check_reader(&mut problems);
        if raw.limits.workers == 0 || raw.limits.workers > 256 {
            problems.push(format!(
                "limits.workers: {} is not between 1 and 256",
                raw.limits.workers
            ));
        }
        if raw.limits.lanes == 0 || raw.limits.lanes > 1024 {
            problems.push(format!(
                "limits.lanes: {} is not between 1 and 1024",
                raw.limits.lanes
            ));
        }
        if raw.limits.max_document_bytes < 1024 {
            problems.push(format!(
                "limits.max_document_bytes: {} is below 1024",
                raw.limits.max_document_bytes
            ));
        }
        if !(8..=256).contains(&raw.limits.max_depth) {
            problems.push(format!(
                "limits.max_depth: {} is not between 8 and 256",
                raw.limits.max_depth
            ));
        }
        if raw.retry.delays_ms.is_empty() || raw.retry.delays_ms.len() > MAX_RETRY_DELAYS {
            problems.push(format!(
                "retry.delays_ms: {} delays is not between 1 and {MAX_RETRY_DELAYS}",
                raw.retry.delays_ms.len()
            ));
        }
        for delay in &raw.retry.delays_ms {
            if !(1..=MAX_RETRY_DELAY_MS).contains(delay) {
                problems.push(format!(
                    "retry.delays_ms: {delay} is not between 1 and {MAX_RETRY_DELAY_MS} (one day)"
                ));
            }
        }
        if raw.retry.delays_ms.windows(2).any(|w| w[0] >= w[1]) {
            problems.push("retry.delays_ms: delays must increase".into());
        }
        if !(1..=MAX_ATTEMPTS).contains(&raw.retry.max_attempts) {
            problems.push(format!(
                "retry.max_attempts: {} is not between 1 and {MAX_ATTEMPTS}",
                raw.retry.max_attempts
            ));
        }
        let mut duration = |key: &str, text: &str| match parse_duration(text) {
            Ok(d) if d.is_zero() || d > MAX_ACK_DURATION => {
                problems.push(format!("{key}: {text:?} is not between 1ms and 30d"));
                None
            }
            Ok(d) => Some(d),
            Err(e) => {
                problems.push(format!("{key}: {e}"));
                None
            }
        };
        let ack_timeout = duration("acks.timeout", &raw.acks.timeout);
        let check_every = duration("acks.check_every", &raw.acks.check_every);
        if raw.acks.resend > MAX_RESENDS {
            problems.push(format!(
                "acks.resend: {} is above {MAX_RESENDS}",
                raw.acks.resend
            ));
        }
        let acks = AcksConfig {
            timeout: ack_timeout.unwrap_or(AcksConfig::DEFAULT_TIMEOUT),
            resend: raw.acks.resend,
            check_every: check_every.unwrap_or(AcksConfig::DEFAULT_CHECK_EVERY),
        };
        let metrics = MetricsConfig::from_raw(raw.metrics, &base, &mut problems);
        let mut partners = BTreeMap::new();
        for (code, p) in raw.partners {
            let key = format!("partners.{code}");
            let Some(state) = MemberState::from_alpha2(&code) else {
                problems.push(format!("{key}: {code:?} is not an ASW member state"));
                continue;
            };
            if Some(state) == country {
                problems.push(format!("{key}: a hub is not its own partner"));
            }
            let given = p.url.is_some() || p.urls.is_some();
            let partner_urls = amqp_urls(&key, p.url.clone(), p.urls.clone(), &mut problems);
            if p.link == LinkMode::Push && !given {
                problems.push(format!(
                    "{key}.url: a push link needs the partner's broker URL"
                ));
            }
            let password = match (p.password, p.password_env) {
                (Some(pw), None) => Some(pw),
                (None, Some(var)) => match std::env::var(&var) {
                    Ok(pw) => Some(pw),
                    Err(_) => {
                        problems.push(format!(
                            "{key}.password_env: environment variable {var} is not set"
                        ));
                        None
                    }
                },
                (Some(_), Some(_)) => {
                    problems.push(format!("{key}: give password or password_env, not both"));
                    None
                }
                (None, None) => {
                    problems.push(format!(
                        "{key}: password (or password_env) of user partner-{code} is required"
                    ));
                    None
                }
            };
            if let Some(password) = password {
                if password.len() < 8 {
                    problems.push(format!("{key}.password: use at least 8 characters"));
                }
                partners.insert(
                    state,
                    PartnerConfig {
                        link: p.link,
                        url: partner_urls.first().cloned(),
                        urls: partner_urls,
                        password,
                    },
                );
            }
        }
        match (country, problems.is_empty()) {
            (Some(country), true) => Ok(HubConfig {
                country,
                broker: BrokerConfig {
                    url: broker_urls.first().cloned().unwrap_or_default(),
                    urls: broker_urls,
                    management_url: management_urls.first().cloned().unwrap_or_default(),
                    management_urls,
                    management_user: raw.broker.management_user,
                    management_password: raw.broker.management_password,
                    prefetch: raw.broker.prefetch,
                    delivery_limit: raw.broker.delivery_limit,
                },
                signing,
                journal,
                limits: LimitsConfig {
                    document: Limits {
                        max_bytes: raw.limits.max_document_bytes,
                        max_depth: raw.limits.max_depth,
                        max_attributes: raw.limits.max_attributes,
                        max_namespaces: raw.limits.max_namespaces,
                        max_namespaces_total: raw.limits.max_namespaces_total,
                        max_name_bytes: raw.limits.max_name_bytes,
                        max_value_bytes: raw.limits.max_value_bytes,
                        max_nodes: raw.limits.max_nodes,
                    },
                    workers: raw.limits.workers,
                    lanes: raw.limits.lanes,
                },
                retry: RetryPolicy {
                    delays_ms: raw.retry.delays_ms,
                    max_attempts: raw.retry.max_attempts,
                },
                partners,
                acks,
                metrics,
            }),
            _ => Err(fail(problems)),
        }
    }

    /// The partner member states.
    pub fn partner_states(&self) -> Vec<MemberState> {
        self.partners.keys().copied().collect()
    }

    /// The vhost named in the broker URL (`/` when none).
    pub fn vhost(&self) -> String {
        vhost_of(&self.broker.url)
    }
}

/// The vhost of an AMQP URL, percent-decoded (`/` when the URL names none).
pub fn vhost_of(url: &str) -> String {
    let after_scheme = url.split_once("://").map_or(url, |(_, rest)| rest);
    let path = after_scheme.split_once('/').map(|(_, p)| p).unwrap_or("");
    let path = path.split('?').next().unwrap_or("");
    if path.is_empty() {
        "/".into()
    } else {
        percent_decode(path)
    }
}

fn percent_decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%'
            && i + 2 < bytes.len()
            && let Some(v) = s
                .get(i + 1..i + 3)
                .and_then(|h| u8::from_str_radix(h, 16).ok())
        {
            out.push(v);
            i += 3;
            continue;
        }
        out.push(bytes[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// The AMQP URLs of `section` (`broker`, `partners.TH`): its `url`, or its `urls` (the nodes
/// of a cluster, each naming the same vhost). Problems are pushed; none given is empty.
fn amqp_urls(
    section: &str,
    url: Option<String>,
    urls: Option<Vec<String>>,
    problems: &mut Vec<String>,
) -> Vec<String> {
    let (key, list) = match (url, urls) {
        (Some(_), Some(_)) => {
            problems.push(format!("{section}: give url or urls, not both"));
            return Vec::new();
        }
        (Some(url), None) => (format!("{section}.url"), vec![url]),
        (None, Some(urls)) => (format!("{section}.urls"), urls),
        (None, None) => return Vec::new(),
    };
    if list.is_empty() {
        problems.push(format!("{key}: give at least one URL"));
    }
    let before = problems.len();
    for url in &list {
        check_amqp_url(&key, url, problems);
    }
    if problems.len() == before
        && let Some(first) = list.first()
    {
        let vhost = vhost_of(first);
        if let Some(other) = list.iter().find(|u| vhost_of(u) != vhost) {
            problems.push(format!(
                "{key}: {:?} names vhost {:?}, the first URL {vhost:?}: the nodes of one \
                 cluster share the vhost",
                redact(other),
                vhost_of(other)
            ));
        }
        let user = user_of(first);
        if let Some(other) = list.iter().find(|u| user_of(u) != user) {
            problems.push(format!(
                "{key}: {:?} logs in as {:?}, the first URL as {user:?}: use one user for \
                 every node",
                redact(other),
                user_of(other)
            ));
        }
    }
    list
}

/// The user an AMQP URL logs in as (empty when it names none).
fn user_of(url: &str) -> &str {
    let after_scheme = url.split_once("://").map_or(url, |(_, rest)| rest);
    match after_scheme
        .split_once('/')
        .map_or(after_scheme, |(authority, _)| authority)
        .rsplit_once('@')
    {
        Some((userinfo, _)) => userinfo.split(':').next().unwrap_or(""),
        None => "",
    }
}

fn check_amqp_url(key: &str, url: &str, problems: &mut Vec<String>) {
    if !(url.starts_with("amqp://") || url.starts_with("amqps://")) {
        problems.push(format!(
            "{key}: {:?} is not an amqp:// or amqps:// URL",
            redact(url)
        ));
    }
}

/// The URL without its password, for logs and errors (see [`asw_model::redact::url`]).
pub fn redact(url: &str) -> String {
    asw_model::redact::url(url)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn setup() -> tempfile::TempDir {
        let dir = tempfile::tempdir().expect("temp dir");
        std::fs::write(dir.path().join("vn-key.pem"), "key").expect("write");
        std::fs::write(dir.path().join("vn-cert.pem"), "cert").expect("write");
        std::fs::create_dir(dir.path().join("trust")).expect("mkdir");
        dir
    }

    const GOOD: &str = r#"
country = "VN"
[broker]
url = "amqp://guest:guest@127.0.0.1:5672/asw-vn"
[signing]
key = "vn-key.pem"
certificate = "vn-cert.pem"
trust_dir = "trust"
[journal]
path = "journal.db"
[partners.TH]
link = "push"
url = "amqp://partner-VN:secret-vn@127.0.0.1:5672/asw-th"
password = "secret-th"
[partners.SG]
link = "pull"
password = "secret-sg"
"#;

    #[test]
    fn a_good_file_resolves_paths_and_defaults() {
        let dir = setup();
        let file = dir.path().join("hub.toml");
        let config = HubConfig::parse(GOOD, &file).expect("valid");
        assert_eq!(config.country.code(), "VN");
        assert_eq!(config.vhost(), "asw-vn");
        assert_eq!(config.signing.key, dir.path().join("vn-key.pem"));
        assert_eq!(config.journal.path, dir.path().join("journal.db"));
        assert_eq!(config.broker.prefetch, 200);
        assert_eq!(config.broker.delivery_limit, 20);
        assert_eq!(config.retry, RetryPolicy::default());
        let codes: Vec<_> = config.partner_states().iter().map(|s| s.code()).collect();
        assert_eq!(codes, ["SG", "TH"]);
        assert_eq!(
            config.partners[&config.partner_states()[1]].link,
            LinkMode::Push
        );
    }

    #[test]
    fn the_delivery_limit_is_bounded() {
        let dir = setup();
        let file = dir.path().join("hub.toml");
        let with = |limit: &str| {
            GOOD.replace("[signing]", &format!("delivery_limit = {limit}\n[signing]"))
        };
        let config = HubConfig::parse(&with("3"), &file).expect("valid");
        assert_eq!(config.broker.delivery_limit, 3);
        for bad in ["0", "1001"] {
            let err = HubConfig::parse(&with(bad), &file).expect_err("out of bounds");
            let text = err.to_string();
            assert!(
                text.contains(&format!(
                    "broker.delivery_limit: {bad} is not between 1 and 1000"
                )),
                "{text}"
            );
        }
    }

    #[test]
    fn a_cluster_is_several_urls_of_one_vhost() {
        let dir = setup();
        let file = dir.path().join("hub.toml");
        let config = HubConfig::parse(GOOD, &file).expect("valid");
        assert_eq!(config.broker.urls, std::slice::from_ref(&config.broker.url));
        assert_eq!(config.broker.management_urls, ["http://127.0.0.1:15672"]);
        let th = &config.partners[&config.partner_states()[1]];
        assert_eq!(th.urls, [th.url.clone().expect("push url")]);
        let cluster = GOOD
            .replace(
                "url = \"amqp://guest:guest@127.0.0.1:5672/asw-vn\"",
                "urls = [\"amqp://guest:guest@127.0.0.1:5681/asw-vn\", \
                 \"amqp://guest:guest@127.0.0.1:5682/asw-vn\"]\n\
                 management_urls = [\"http://127.0.0.1:15681\", \"http://127.0.0.1:15682\"]",
            )
            .replace(
                "url = \"amqp://partner-VN:secret-vn@127.0.0.1:5672/asw-th\"",
                "urls = [\"amqp://partner-VN:secret-vn@10.0.0.1/asw-th\", \
                 \"amqp://partner-VN:secret-vn@10.0.0.2/asw-th\"]",
            );
        let config = HubConfig::parse(&cluster, &file).expect("valid");
        assert_eq!(
            config.broker.url,
            "amqp://guest:guest@127.0.0.1:5681/asw-vn"
        );
        assert_eq!(config.broker.urls.len(), 2);
        assert_eq!(config.broker.management_url, "http://127.0.0.1:15681");
        assert_eq!(config.broker.management_urls.len(), 2);
        assert_eq!(config.vhost(), "asw-vn");
        let th = &config.partners[&config.partner_states()[1]];
        assert_eq!(
            th.url.as_deref(),
            Some("amqp://partner-VN:secret-vn@10.0.0.1/asw-th")
        );
        assert_eq!(th.urls.len(), 2);

        let bad = cluster
            .replace("5682/asw-vn", "5682/asw-th")
            .replace("[broker]\n", "[broker]\nmanagement_url = \"http://x\"\n")
            .replace(
                "10.0.0.2/asw-th\"]",
                "10.0.0.2/asw-th\"]\nurl = \"amqp://y\"",
            )
            .replace("link = \"pull\"", "link = \"pull\"\nurls = []");
        let err = HubConfig::parse(&bad, &file).expect_err("invalid");
        let text = err.to_string();
        assert_eq!(err.problems.len(), 4, "{text}");
        assert!(
            text.contains(
                "broker.urls: \"amqp://guest@127.0.0.1:5682/asw-th\" names vhost \"asw-th\""
            ),
            "{text}"
        );
        assert!(
            text.contains("broker: give management_url or management_urls, not both"),
            "{text}"
        );
        assert!(
            text.contains("partners.TH: give url or urls, not both"),
            "{text}"
        );
        assert!(
            text.contains("partners.SG.urls: give at least one URL"),
            "{text}"
        );
        let other_user = cluster.replace("guest:guest@127.0.0.1:5682", "admin:pw@127.0.0.1:5682");
        let err = HubConfig::parse(&other_user, &file).expect_err("invalid");
        let text = err.to_string();
        assert_eq!(err.problems.len(), 1, "{text}");
        assert!(
            text.contains(
                "127.0.0.1:5682/asw-vn\" logs in as \"admin\", the first URL as \"guest\": use \
                 one user for every node"
            ),
            "{text}"
        );
        assert!(!text.contains(":pw@"), "the password is not shown: {text}");
    }

    #[test]
    fn every_problem_is_reported_at_once() {
        let dir = setup();
        let bad = GOOD
            .replace("country = \"VN\"", "country = \"XX\"")
            .replace("amqp://guest", "http://guest")
            .replace("vn-key.pem", "missing-key.pem")
            .replace(
                "[partners.SG]\nlink = \"pull\"\npassword = \"secret-sg\"",
                "[partners.ZZ]\nlink = \"push\"\npassword = \"x\"",
            );
        let err = HubConfig::parse(&bad, &dir.path().join("hub.toml")).expect_err("invalid");
        let text = err.to_string();
        assert_eq!(err.problems.len(), 4, "{text}");
        assert!(
            text.contains("country: \"XX\" is not an ASW member state"),
            "{text}"
        );
        assert!(text.contains("broker.url"), "{text}");
        assert!(text.contains("signing.key"), "{text}");
        assert!(text.contains("partners.ZZ"), "{text}");
    }

    #[test]
    fn acks_have_defaults_take_short_durations_and_refuse_bad_values() {
        let dir = setup();
        let file = dir.path().join("hub.toml");
        let config = HubConfig::parse(GOOD, &file).expect("valid");
        assert_eq!(config.acks, AcksConfig::default());
        let short =
            format!("{GOOD}[acks]\ntimeout = \"2s\"\nresend = 2\ncheck_every = \"250ms\"\n");
        let config = HubConfig::parse(&short, &file).expect("valid");
        assert_eq!(
            config.acks,
            AcksConfig {
                timeout: std::time::Duration::from_secs(2),
                resend: 2,
                check_every: std::time::Duration::from_millis(250),
            }
        );
        let bad = format!("{GOOD}[acks]\ntimeout = \"15\"\nresend = 101\ncheck_every = \"0s\"\n");
        let err = HubConfig::parse(&bad, &file).expect_err("invalid");
        let text = err.to_string();
        assert_eq!(err.problems.len(), 3, "{text}");
        assert!(text.contains("acks.timeout: \"15\" has no unit"), "{text}");
        assert!(text.contains("acks.resend: 101 is above 100"), "{text}");
        assert!(
            text.contains("acks.check_every: \"0s\" is not between 1ms and 30d"),
            "{text}"
        );
        assert_eq!(
            parse_duration("15m"),
            Ok(std::time::Duration::from_secs(900))
        );
        assert!(parse_duration("1w").is_err());
        assert!(parse_duration("s").is_err());
    }

    #[test]
    fn values_that_feed_clock_arithmetic_are_bounded() {
        let dir = setup();
        let file = dir.path().join("hub.toml");
        let problems = |extra: &str, replace: (&str, &str)| {
            let text = format!("{}{extra}", GOOD.replace(replace.0, replace.1));
            match HubConfig::parse(&text, &file) {
                Ok(_) => Vec::new(),
                Err(err) => err.problems,
            }
        };
        let none = ("", "");
        // The widest values accepted.
        let widest = "[retry]\ndelays_ms = [1, 86400000]\nmax_attempts = 1000\n\
                      [acks]\ntimeout = \"30d\"\ncheck_every = \"720h\"\n";
        let expiry = (
            "trust_dir = \"trust\"",
            "trust_dir = \"trust\"\nexpiry_warning_days = 3650",
        );
        assert_eq!(problems(widest, expiry), Vec::<String>::new());
        let zero_days = (
            "trust_dir = \"trust\"",
            "trust_dir = \"trust\"\nexpiry_warning_days = 0",
        );
        assert_eq!(problems("", zero_days), Vec::<String>::new());

        // One step beyond, and far beyond (where the hub's clock arithmetic would overflow).
        for (days, millis) in [
            ("3651", "2592000001ms"),
            ("4294967295", "18446744073709551615ms"),
        ] {
            let expiry = (
                "trust_dir = \"trust\"",
                format!("trust_dir = \"trust\"\nexpiry_warning_days = {days}"),
            );
            let acks = format!("[acks]\ntimeout = \"{millis}\"\ncheck_every = \"{millis}\"\n");
            assert_eq!(
                problems(&acks, (expiry.0, &expiry.1)),
                [
                    format!("signing.expiry_warning_days: {days} is not between 0 and 3650"),
                    format!("acks.timeout: \"{millis}\" is not between 1ms and 30d"),
                    format!("acks.check_every: \"{millis}\" is not between 1ms and 30d"),
                ]
            );
        }
        assert_eq!(
            problems("[acks]\ntimeout = \"99999999999999999999d\"\n", none),
            ["acks.timeout: \"99999999999999999999d\" is too long"]
        );
        assert_eq!(
            problems("[acks]\ntimeout = \"213503982334601d\"\n", none),
            ["acks.timeout: \"213503982334601d\" is too long"]
        );

        let retry = "[retry]\ndelays_ms = [0, 86400001, 4294967295]\nmax_attempts = 1001\n";
        assert_eq!(
            problems(retry, none),
            [
                "retry.delays_ms: 0 is not between 1 and 86400000 (one day)",
                "retry.delays_ms: 86400001 is not between 1 and 86400000 (one day)",
                "retry.delays_ms: 4294967295 is not between 1 and 86400000 (one day)",
                "retry.max_attempts: 1001 is not between 1 and 1000",
            ]
        );
        let many: Vec<String> = (1..=21).map(|i| (i * 1000).to_string()).collect();
        let retry = format!(
            "[retry]\ndelays_ms = [{}]\nmax_attempts = 0\n",
            many.join(", ")
        );
        assert_eq!(
            problems(&retry, none),
            [
                "retry.delays_ms: 21 delays is not between 1 and 20",
                "retry.max_attempts: 0 is not between 1 and 1000",
            ]
        );
        assert_eq!(
            problems("[retry]\ndelays_ms = []\n", none),
            ["retry.delays_ms: 0 delays is not between 1 and 20"]
        );
    }

    #[test]
    fn lanes_default_to_the_hub_constant_and_must_be_between_1_and_1024() {
        let dir = setup();
        let file = dir.path().join("hub.toml");
        let config = HubConfig::parse(GOOD, &file).expect("valid");
        assert_eq!(config.limits.lanes, crate::hub::LANES);
        let few = format!("{GOOD}[limits]\nlanes = 8\n");
        assert_eq!(
            HubConfig::parse(&few, &file).expect("valid").limits.lanes,
            8
        );
        for bad in [0, 1025] {
            let text = format!("{GOOD}[limits]\nlanes = {bad}\n");
            let err = HubConfig::parse(&text, &file).expect_err("invalid");
            assert!(
                err.to_string()
                    .contains(&format!("limits.lanes: {bad} is not between 1 and 1024")),
                "{err}"
            );
        }
    }

    #[test]
    fn document_limits_have_defaults_are_read_and_checked() {
        let dir = setup();
        let file = dir.path().join("hub.toml");
        let config = HubConfig::parse(GOOD, &file).expect("valid");
        assert_eq!(config.limits.document, Limits::default());
        let set = format!(
            "{GOOD}[limits]\nmax_document_bytes = 2000000\nmax_depth = 16\nmax_attributes = 8\nmax_namespaces = 10\nmax_namespaces_total = 20\nmax_name_bytes = 100\nmax_value_bytes = 1000\nmax_nodes = 50000\n"
        );
        assert_eq!(
            HubConfig::parse(&set, &file)
                .expect("valid")
                .limits
                .document,
            Limits {
                max_bytes: 2_000_000,
                max_depth: 16,
                max_attributes: 8,
                max_namespaces: 10,
                max_namespaces_total: 20,
                max_name_bytes: 100,
                max_value_bytes: 1000,
                max_nodes: 50_000,
            }
        );
        let bad = format!(
            "{GOOD}[limits]\nmax_document_bytes = 10\nmax_depth = 7\nmax_attributes = 0\nmax_namespaces = 257\nmax_namespaces_total = 15\nmax_name_bytes = 4097\nmax_value_bytes = 255\nmax_nodes = 999\n"
        );
        let err = HubConfig::parse(&bad, &file).expect_err("invalid");
        let text = err.to_string();
        assert_eq!(err.problems.len(), 8, "{text}");
        for problem in [
            "limits.max_document_bytes: 10 is below 1024",
            "limits.max_depth: 7 is not between 8 and 256",
            "limits.max_attributes: 0 is not between 1 and 256",
            "limits.max_namespaces: 257 is not between 8 and 256",
            "limits.max_namespaces_total: 15 is not between 16 and 4096",
            "limits.max_name_bytes: 4097 is not between 64 and 4096",
            "limits.max_value_bytes: 255 is not between 256 and 1048576",
            "limits.max_nodes: 999 is not between 1000 and 100000000",
        ] {
            assert!(
                err.problems.iter().any(|p| p == problem),
                "{problem}: {text}"
            );
        }
    }

    #[test]
    fn metrics_are_off_by_default_and_need_an_ip_and_port() {
        let dir = setup();
        let file = dir.path().join("hub.toml");
        let config = HubConfig::parse(GOOD, &file).expect("valid");
        assert_eq!(config.metrics.listen, None);
        let on = format!("{GOOD}[metrics]\nlisten = \"127.0.0.1:9464\"\n");
        let config = HubConfig::parse(&on, &file).expect("valid");
        assert_eq!(
            config.metrics.listen,
            Some(std::net::SocketAddr::from(([127, 0, 0, 1], 9464)))
        );
        let v6 = format!("{GOOD}[metrics]\nlisten = \"[::1]:0\"\n");
        assert!(HubConfig::parse(&v6, &file).is_ok());
        for bad in ["localhost:9464", "127.0.0.1", "127.0.0.1:99999", ""] {
            let text = format!("{GOOD}[metrics]\nlisten = \"{bad}\"\n");
            let err = HubConfig::parse(&text, &file).expect_err(bad);
            assert_eq!(err.problems.len(), 1, "{err}");
            assert!(
                err.problems[0].starts_with(&format!("metrics.listen: {bad:?} is not")),
                "{err}"
            );
        }
        let unknown = format!("{GOOD}[metrics]\nlisten = \"127.0.0.1:1\"\nport = 1\n");
        assert!(HubConfig::parse(&unknown, &file).is_err());
    }

    #[test]
    fn unknown_keys_and_syntax_errors_are_named() {
        let dir = setup();
        let err = HubConfig::parse(
            &GOOD.replace("[journal]", "[journal]\npth = 1"),
            &dir.path().join("hub.toml"),
        )
        .expect_err("unknown key");
        assert!(err.to_string().contains("pth"), "{err}");
        let err = HubConfig::parse("country = ", &dir.path().join("hub.toml")).expect_err("syntax");
        assert_eq!(err.problems.len(), 1);
    }

    #[test]
    fn push_needs_url_and_passwords_are_required() {
        let dir = setup();
        let bad = GOOD
            .replace(
                "url = \"amqp://partner-VN:secret-vn@127.0.0.1:5672/asw-th\"\n",
                "",
            )
            .replace("password = \"secret-sg\"\n", "");
        let err = HubConfig::parse(&bad, &dir.path().join("hub.toml")).expect_err("invalid");
        assert_eq!(err.problems.len(), 2, "{err}");
        assert!(
            err.to_string()
                .contains("partners.TH.url: a push link needs"),
            "{err}"
        );
        assert!(err.to_string().contains("partners.SG: password"), "{err}");
    }

    #[test]
    fn urls_are_redacted_and_vhosts_decoded() {
        assert_eq!(
            redact("amqp://partner-VN:secret@host:5672/asw-th"),
            "amqp://partner-VN@host:5672/asw-th"
        );
        assert_eq!(vhost_of("amqp://u:p@h:5672/%2F"), "/");
        assert_eq!(vhost_of("amqp://u:p@h:5672"), "/");
        assert_eq!(vhost_of("amqps://u:p@h/asw-th?heartbeat=10"), "asw-th");
    }
}
