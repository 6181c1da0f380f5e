//! The hub's configuration: one TOML file, parsed and checked before anything starts. Every
//! problem is reported at once (`aswhub check-config` exits 64 if there is any).

mod acks;
mod back_offices;
mod broker;
mod console;
mod ephyto_hub;
mod journal;
mod limits;
mod metrics;
mod partners;
mod secrets;
mod signing;

use std::collections::BTreeMap;
use std::fmt;
use std::path::{Path, PathBuf};

use asw_model::MemberState;
use asw_model::kinds::KindRegistry;
use asw_model::partners::PartnerTable;
use asw_route::{RetryPolicy, Topology};
use serde::Deserialize;

pub use acks::AcksConfig;
pub use back_offices::BackOfficeConfig;
pub use broker::{BrokerConfig, vhost_of};
pub use console::ConsoleConfig;
pub use ephyto_hub::{EphytoHubConfig, ippc_kinds, ippc_senders};
pub use journal::JournalConfig;
pub use limits::LimitsConfig;
pub use metrics::MetricsConfig;
pub use partners::{LinkMode, PartnerAuth, PartnerConfig};
pub use signing::SigningConfig;

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
    /// Back-office systems with broker identities of their own (`[[back_office]]`); none: every
    /// back-office shares the vhost, and the hub does not check who sends what.
    pub back_offices: Vec<BackOfficeConfig>,
    /// What the hub does about documents whose receipt is late.
    pub acks: AcksConfig,
    /// Where the hub serves its metrics.
    pub metrics: MetricsConfig,
    /// The operator console on the HTTP server, when `[console]` is present.
    pub console: Option<ConsoleConfig>,
    /// The kinds directory (`kinds_dir`; `None`: the kinds shipped in the binary), installed
    /// at start-up; its parent holds the kinds' XSDs.
    pub kinds_dir: Option<PathBuf>,
    /// The kinds it describes (or the shipped ones).
    pub kinds: KindRegistry,
    /// The partners file (`partners_file`; default: the shipped `schemas/partners.toml`): the
    /// kinds each partner may send us and receive from us.
    pub partner_table: PartnerTable,
    /// The partners that exchange only through the IPPC ePhyto Hub: the rows of the partners
    /// file that are enabled, are not this hub's country nor a `[partners.<CC>]`, and send
    /// every kind they exchange through the hub (Korea, once enabled). They need no section of
    /// their own, only `[ephyto_hub]`.
    pub ippc_only: Vec<MemberState>,
    /// The IPPC ePhyto Hub (`[ephyto_hub]`), for the partners whose channel for a kind is
    /// `ippc-hub` in the partners file.
    pub ephyto_hub: Option<EphytoHubConfig>,
    /// What is usable but unwise (a secret inline in the file): `check-config` prints these.
    pub warnings: Vec<String>,
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
    broker: broker::RawBroker,
    signing: signing::RawSigning,
    journal: journal::RawJournal,
    #[serde(default)]
    limits: limits::RawLimits,
    #[serde(default)]
    retry: limits::RawRetry,
    #[serde(default)]
    partners: BTreeMap<String, partners::RawPartner>,
    #[serde(default)]
    back_office: Vec<back_offices::RawBackOffice>,
    #[serde(default)]
    acks: acks::RawAcks,
    metrics: Option<metrics::RawMetrics>,
    console: Option<console::RawConsole>,
    kinds_dir: Option<PathBuf>,
    partners_file: Option<PathBuf>,
    ephyto_hub: Option<ephyto_hub::RawEphytoHub>,
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
        let kinds_dir = raw.kinds_dir.map(|d| resolve(&base, &d));
        let kinds = match &kinds_dir {
            // Installed as soon as read (additive, idempotent), so that every kind name of the
            // configuration parses, the directory's kinds included.
            Some(dir) => asw_schema::install_kinds(dir)
                .and_then(|_| KindRegistry::load_dir(dir))
                .map_err(|e| format!("kinds_dir: {e}")),
            None => KindRegistry::shipped().map_err(|e| format!("kinds: {e}")),
        };
        let kinds_read = kinds.is_ok();
        let kinds = kinds.unwrap_or_else(|problem| {
            problems.push(problem);
            KindRegistry::default()
        });
        let partners_file = raw.partners_file.map(|f| resolve(&base, &f));
        // The partners file names kinds: read against kinds that could not be read, it would
        // only report those again.
        let table = match &partners_file {
            _ if !kinds_read => None,
            Some(file) => Some(PartnerTable::load(file, &kinds)),
            None => Some(PartnerTable::shipped(&kinds)),
        };
        // Installed as soon as read, so that every partner code of the configuration parses,
        // the rows the file adds included, and `MemberState::all()` is its enabled rows.
        let partner_table = match table.map(|t| t.and_then(|t| MemberState::install(&t).map(|_| t)))
        {
            Some(Ok(table)) => table,
            Some(Err(e)) => {
                problems.push(format!("partners_file: {e}"));
                PartnerTable::default()
            }
            None => PartnerTable::default(),
        };
        let country = MemberState::from_alpha2(&raw.country);
        if country.is_none() {
            problems.push(format!(
                "country: {:?} is not an ASW member state",
                raw.country
            ));
        }
        let mut findings = secrets::Findings {
            problems,
            warnings: Vec::new(),
        };
        let broker = broker::check(raw.broker, &base, &mut findings);
        let signing = signing::check(raw.signing, &base, &mut findings);
        let journal = journal::check(raw.journal, &base, &mut findings);
        let mut problems = std::mem::take(&mut findings.problems);
        let limits = limits::check(&raw.limits, &mut problems);
        let retry = limits::check_retry(raw.retry, &mut problems);
        let acks = acks::check(&raw.acks, &mut problems);
        let metrics_section = raw.metrics.is_some();
        let mut metrics = metrics::check(raw.metrics, &base, &mut problems);
        let (console, console_listen) = console::check(
            raw.console,
            metrics.listen,
            metrics_section,
            &base,
            &mut problems,
        );
        if console.is_some() && metrics.listen.is_none() {
            metrics.listen = Some(console_listen.unwrap_or(crate::http::config::DEFAULT_LISTEN));
        }
        findings.problems = problems;
        let partners = partners::check(raw.partners, country, &base, &mut findings);
        let ephyto_hub = ephyto_hub::check(raw.ephyto_hub, &base, &mut findings);
        if findings.problems.is_empty() {
            let listed = |code: &str| partner_table.iter().find(|p| p.code == code);
            for state in partners.keys().copied().chain(country) {
                match listed(state.code()) {
                    Some(row) if row.enabled => {}
                    Some(_) => findings.problems.push(format!(
                        "partners.{state}: {state} is not enabled in the partners file"
                    )),
                    None => findings.problems.push(format!(
                        "partners.{state}: {state} is not in the partners file"
                    )),
                }
            }
        }
        let ippc_only = ippc_only(&partner_table, country, &partners);
        let all_partners: Vec<MemberState> = partners
            .keys()
            .copied()
            .chain(ippc_only.iter().copied())
            .collect();
        if ephyto_hub.is_none() {
            let receivers = ippc_kinds(&partner_table, all_partners.iter().copied());
            for (state, kinds) in &receivers {
                findings.problems.push(format!(
                    "partners.{state}: the partners file sends {} to {state} through the IPPC \
                     ePhyto Hub: configure [ephyto_hub]",
                    kinds.join(", ")
                ));
            }
            for state in ippc_senders(&partner_table, all_partners.iter().copied()) {
                if !receivers.iter().any(|(r, _)| *r == state) {
                    findings.problems.push(format!(
                        "partners.{state}: the partners file has {state} send us documents \
                         through the IPPC ePhyto Hub: configure [ephyto_hub]"
                    ));
                }
            }
        }
        let own_user = url::Url::parse(&broker.url)
            .ok()
            .map(|u| u.username().to_owned());
        let back_offices = back_offices::check(
            raw.back_office,
            own_user.as_deref(),
            &all_partners,
            &base,
            &mut findings,
        );
        let secrets::Findings { problems, warnings } = findings;
        match (country, problems.is_empty()) {
            (Some(country), true) => Ok(HubConfig {
                country,
                broker,
                signing,
                journal,
                limits,
                retry,
                partners,
                back_offices,
                acks,
                metrics,
                console,
                kinds_dir,
                kinds,
                partner_table,
                ippc_only,
                ephyto_hub,
                warnings,
            }),
            _ => Err(fail(problems)),
        }
    }

    /// The partners with a link to their ASW broker (`[partners.<CC>]`), in table order.
    pub fn partner_states(&self) -> Vec<MemberState> {
        self.partners.keys().copied().collect()
    }

    /// Every partner this hub exchanges with: those of [`partner_states`](Self::partner_states)
    /// and those of [`ippc_only`](Self::ippc_only), in table order.
    pub fn all_partners(&self) -> Vec<MemberState> {
        let mut all: Vec<MemberState> = self
            .partner_states()
            .into_iter()
            .chain(self.ippc_only.iter().copied())
            .collect();
        all.sort_unstable();
        all
    }

    /// Everything `aswctl topology apply` declares for this hub: its queues and partner users,
    /// and each back-office's user and queues.
    pub fn topology(&self) -> Topology {
        let routes: Vec<asw_route::BackOffice> = self
            .back_offices
            .iter()
            .map(BackOfficeConfig::routes)
            .collect();
        Topology::hub(
            self.country,
            &self.partner_states(),
            &self.retry,
            self.broker.delivery_limit,
        )
        .with_back_offices(&routes)
        .with_ippc_partners(&self.ippc_partners())
        .with_ippc_imports(!self.ippc_senders().is_empty())
    }

    /// The partners that receive some kind from us through the IPPC ePhyto Hub (partners file);
    /// empty without `[ephyto_hub]`.
    pub fn ippc_partners(&self) -> Vec<MemberState> {
        if self.ephyto_hub.is_none() {
            return Vec::new();
        }
        ippc_kinds(&self.partner_table, self.all_partners())
            .into_iter()
            .map(|(state, _)| state)
            .collect()
    }

    /// The partners that send us some kind through the IPPC ePhyto Hub (partners file); empty
    /// without `[ephyto_hub]`.
    pub fn ippc_senders(&self) -> Vec<MemberState> {
        if self.ephyto_hub.is_none() {
            return Vec::new();
        }
        ippc_senders(&self.partner_table, self.all_partners())
    }

    /// The routes (kind, receiver) that travel through the IPPC ePhyto Hub: the hub's tracking
    /// follows them to their outcome, so the `[acks]` watcher leaves them alone. Empty without
    /// `[ephyto_hub]`.
    pub fn ippc_routes(&self) -> Vec<(asw_model::DocumentKind, MemberState)> {
        if self.ephyto_hub.is_none() {
            return Vec::new();
        }
        ippc_kinds(&self.partner_table, self.partner_states())
            .into_iter()
            .flat_map(|(state, kinds)| {
                kinds
                    .into_iter()
                    .filter_map(move |k| asw_model::DocumentKind::from_wire(&k).map(|k| (k, state)))
            })
            .collect()
    }

    /// True if a document of `kind` for `receiver` travels through the IPPC ePhyto Hub.
    pub fn via_ippc(&self, receiver: MemberState, kind: &str) -> bool {
        self.ephyto_hub.is_some()
            && self.partner_table.iter().any(|p| {
                p.code == receiver.code()
                    && p.may_receive(kind)
                    && p.channel_for(kind) == Some(asw_model::partners::ChannelKind::IppcHub)
            })
    }

    /// The password of a user of [`topology`](Self::topology): a partner's or a back-office's;
    /// empty for one that logs in with its certificate (or that this configuration does not
    /// know).
    pub fn broker_password(&self, user: &asw_route::User) -> String {
        match user.partner {
            Some(partner) => self
                .partners
                .get(&partner)
                .map(|p| p.password.clone())
                .unwrap_or_default(),
            None => self
                .back_offices
                .iter()
                .find(|b| b.name == user.name)
                .map(|b| b.password.clone())
                .unwrap_or_default(),
        }
    }

    /// The vhost named in the broker URL (`/` when none).
    pub fn vhost(&self) -> String {
        vhost_of(&self.broker.url)
    }
}

/// The enabled rows of `table` that exchange only through the IPPC ePhyto Hub and are neither
/// `country` nor one of `partners`, in table order.
fn ippc_only(
    table: &PartnerTable,
    country: Option<MemberState>,
    partners: &BTreeMap<MemberState, PartnerConfig>,
) -> Vec<MemberState> {
    let mut found: Vec<MemberState> = table
        .enabled()
        .filter(|row| row.ippc_only())
        .filter_map(|row| MemberState::from_alpha2(&row.code))
        .filter(|state| Some(*state) != country && !partners.contains_key(state))
        .collect();
    found.sort_unstable();
    found
}

/// `path` resolved against the configuration's folder `base` (unless it is absolute).
fn resolve(base: &Path, path: &Path) -> PathBuf {
    if path.is_absolute() {
        path.to_owned()
    } else {
        base.join(path)
    }
}

/// The URL without its password, for logs and errors (see [`asw_model::redact::url`]).
pub fn redact(url: &str) -> String {
    asw_model::redact::url(url)
}

#[cfg(test)]
mod tests {
    use super::*;

    pub(super) fn setup() -> tempfile::TempDir {
        let dir = tempfile::tempdir().expect("temp dir");
        std::fs::write(dir.path().join("vn-key.pem"), "key").expect("write");
        std::fs::write(dir.path().join("vn-cert.pem"), "cert").expect("write");
        std::fs::create_dir(dir.path().join("trust")).expect("mkdir");
        dir
    }

    pub(super) const GOOD: &str = r#"
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
    fn the_kinds_directory_and_the_partners_file_are_read_and_checked() {
        let dir = setup();
        let file = dir.path().join("hub.toml");
        let config = HubConfig::parse(GOOD, &file).expect("valid");
        assert_eq!(config.kinds_dir, None);
        assert!(config.kinds.get("ephyto").is_some(), "the shipped kinds");
        let th = config.partner_table.iter().find(|p| p.code == "TH");
        assert!(th.is_some_and(|p| p.may_send("formd")));
        let shipped = include_str!("../../../../schemas/partners.toml");
        let disabled = shipped
            .split("[[partner]]")
            .map(|row| {
                if row.contains("code = \"SG\"") {
                    row.replace("enabled = true", "enabled = false")
                } else {
                    row.to_owned()
                }
            })
            .collect::<Vec<_>>()
            .join("[[partner]]");
        std::fs::write(dir.path().join("partners.toml"), disabled).expect("write");
        let text = GOOD.replace(
            "country = \"VN\"",
            "country = \"VN\"\npartners_file = \"partners.toml\"\nkinds_dir = \"nowhere/kinds\"",
        );
        let err = HubConfig::parse(&text, &file).expect_err("no kinds there");
        assert_eq!(err.problems.len(), 1, "{err}");
        assert!(err.problems[0].starts_with("kinds_dir: "), "{err}");
        let text = GOOD.replace(
            "country = \"VN\"",
            "country = \"VN\"\npartners_file = \"partners.toml\"",
        );
        let err = HubConfig::parse(&text, &file).expect_err("SG disabled");
        assert_eq!(
            err.problems,
            ["partners.SG: SG is not enabled in the partners file"]
        );
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
    fn tls_files_secrets_from_files_and_certificate_partners() {
        let dir = setup();
        let file = dir.path().join("hub.toml");
        for name in ["ca.pem", "hub.pem", "hub.key"] {
            std::fs::write(dir.path().join(name), "pem").expect("write");
        }
        std::fs::write(dir.path().join("broker-pw"), "s3cret@:/x\n").expect("write");
        std::fs::write(dir.path().join("mgmt-pw"), "m4nage\n").expect("write");
        let text = GOOD
            .replace(
                "url = \"amqp://guest:guest@127.0.0.1:5672/asw-vn\"",
                "url = \"amqps://aswhub@broker.example:5671/asw-vn\"\npassword_file = \"broker-pw\"\n\
                 management_url = \"https://broker.example:15671\"\nmanagement_user = \"ops\"\n\
                 management_password_file = \"mgmt-pw\"\nca = \"ca.pem\"\ncert = \"hub.pem\"\n\
                 key = \"hub.key\"",
            )
            .replace(
                "link = \"pull\"\npassword = \"secret-sg\"",
                "link = \"pull\"\nauth = \"certificate\"",
            )
            .replace(
                "path = \"journal.db\"",
                "url = \"postgres://aswhub@db.example/asw?sslmode=verify-full\"\nca = \"ca.pem\"",
            );
        let config = HubConfig::parse(&text, &file).expect("valid");
        assert_eq!(
            asw_model::redact::url(&config.broker.url),
            "amqps://aswhub@broker.example:5671/asw-vn"
        );
        assert!(
            config.broker.url.contains("s3cret"),
            "{}",
            config.broker.url
        );
        assert_eq!(config.broker.management_password, "m4nage");
        assert_eq!(config.broker.tls.ca, Some(dir.path().join("ca.pem")));
        assert_eq!(config.broker.tls.key, Some(dir.path().join("hub.key")));
        assert_eq!(config.journal.tls.ca, Some(dir.path().join("ca.pem")));
        let sg = &config.partners[&MemberState::from_alpha2("SG").expect("SG")];
        assert_eq!(
            (sg.auth, sg.password.as_str()),
            (PartnerAuth::Certificate, "")
        );
        // The partner TH's inline password is a warning, not an error.
        assert_eq!(
            config.warnings,
            [
                "partners.TH.password: the secret is inline in the configuration; use \
              partners.TH.password_file or partners.TH.password_env"
            ]
        );
        let debug = format!("{config:?}");
        for secret in ["s3cret", "m4nage", "secret-th", "secret-vn"] {
            assert!(!debug.contains(secret), "Debug shows {secret}: {debug}");
        }

        // guest off loopback, a certificate partner with a password, half an identity.
        let bad = text
            .replace("aswhub@broker.example", "guest@broker.example")
            .replace("management_user = \"ops\"", "management_user = \"guest\"")
            .replace(
                "auth = \"certificate\"",
                "auth = \"certificate\"\npassword = \"secret-sg\"",
            )
            .replace("key = \"hub.key\"", "");
        let err = HubConfig::parse(&bad, &file).expect_err("invalid");
        let text = err.to_string();
        assert_eq!(err.problems.len(), 4, "{text}");
        assert!(
            text.contains("broker.url: \"amqps://guest@broker.example:5671/asw-vn\": the guest user can only log in on loopback"),
            "{text}"
        );
        assert!(
            text.contains("broker.management_user: guest can only log in on loopback"),
            "{text}"
        );
        assert!(
            text.contains("broker: give both cert and key, or neither"),
            "{text}"
        );
        assert!(
            text.contains(
                "partners.SG: auth = \"certificate\" logs partner-SG in with its certificate"
            ),
            "{text}"
        );
    }
}
