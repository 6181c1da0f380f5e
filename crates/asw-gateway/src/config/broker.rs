//! `[broker]`: the local broker's nodes and management API, and the AMQP URL checks that
//! partner links share.

use std::path::{Path, PathBuf};

use asw_tls::TlsFiles;
use serde::Deserialize;

use super::redact;
use super::secrets::{Findings, RawTls, has_password, on_loopback, secret, with_password};

/// The local broker.
#[derive(Clone, PartialEq, Eq)]
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
    /// TLS of the AMQP connections (`amqps://`) and of the management API (`https://`): `ca`,
    /// `cert`, `key`, `key_passphrase`.
    pub tls: TlsFiles,
}

impl std::fmt::Debug for BrokerConfig {
    /// Passwords redacted.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let redacted: Vec<String> = self.urls.iter().map(|u| redact(u)).collect();
        f.debug_struct("BrokerConfig")
            .field("urls", &redacted)
            .field("management_urls", &self.management_urls)
            .field("management_user", &self.management_user)
            .field("management_password", &"<redacted>")
            .field("prefetch", &self.prefetch)
            .field("delivery_limit", &self.delivery_limit)
            .field("tls", &self.tls)
            .finish()
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawBroker {
    url: Option<String>,
    urls: Option<Vec<String>>,
    management_url: Option<String>,
    management_urls: Option<Vec<String>>,
    #[serde(default = "default_guest")]
    management_user: String,
    management_password: Option<String>,
    management_password_file: Option<PathBuf>,
    management_password_env: Option<String>,
    password: Option<String>,
    password_file: Option<PathBuf>,
    password_env: Option<String>,
    ca: Option<PathBuf>,
    cert: Option<PathBuf>,
    key: Option<PathBuf>,
    key_passphrase: Option<String>,
    key_passphrase_file: Option<PathBuf>,
    key_passphrase_env: Option<String>,
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

/// Checks `[broker]`, pushing problems; the section as far as it could be read.
pub(super) fn check(raw: RawBroker, base: &Path, findings: &mut Findings) -> BrokerConfig {
    let mut broker_urls = amqp_urls(
        "broker",
        raw.url.clone(),
        raw.urls.clone(),
        &mut findings.problems,
    );
    let key = if raw.urls.is_some() {
        "broker.urls"
    } else {
        "broker.url"
    };
    let password = secret(
        "broker.password",
        raw.password,
        raw.password_file.as_ref(),
        raw.password_env.as_ref(),
        base,
        findings,
    );
    if let Some(password) = &password {
        for url in &mut broker_urls {
            if has_password(url) {
                findings.problems.push(format!(
                    "{key}: {:?} carries a password, and broker.password* gives one: give one",
                    redact(url)
                ));
                continue;
            }
            match with_password(url, password) {
                Ok(with) => *url = with,
                Err(e) => findings
                    .problems
                    .push(format!("{key}: {:?} {e}", redact(url))),
            }
        }
    }
    for url in &broker_urls {
        let user = user_of(url);
        // A URL that does not parse is preflight's to report (`AmqpUrl::parse`).
        if user == "guest" && url::Url::parse(url).is_ok() && !on_loopback(url) {
            findings.problems.push(format!(
                "{key}: {:?}: the guest user can only log in on loopback; give the hub a user \
                 of its own",
                redact(url)
            ));
        } else if password.is_none() && has_password(url) && !(user == "guest" && on_loopback(url))
        {
            findings.warnings.push(format!(
                "{key}: {:?}: the password is inline in the URL; use broker.password_file or \
                 broker.password_env",
                redact(url)
            ));
        }
    }
    let management_password = secret(
        "broker.management_password",
        raw.management_password,
        raw.management_password_file.as_ref(),
        raw.management_password_env.as_ref(),
        base,
        findings,
    );
    let tls = RawTls {
        ca: raw.ca,
        cert: raw.cert,
        key: raw.key,
        key_passphrase: raw.key_passphrase,
        key_passphrase_file: raw.key_passphrase_file,
        key_passphrase_env: raw.key_passphrase_env,
    }
    .check("broker", base, findings);
    let problems = &mut findings.problems;
    if broker_urls.is_empty() && raw.url.is_none() && raw.urls.is_none() {
        problems.push("broker.url: the broker's AMQP URL is required (or urls)".into());
    }
    let management_urls = match (&raw.management_url, &raw.management_urls) {
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
    let management_key = if raw.management_urls.is_some() {
        "broker.management_urls"
    } else {
        "broker.management_url"
    };
    for url in &management_urls {
        if !url.starts_with("http://") && !url.starts_with("https://") {
            problems.push(format!("{management_key}: {url:?} is not an http(s) URL"));
        } else if raw.management_user == "guest" && !on_loopback(url) {
            problems.push(format!(
                "broker.management_user: guest can only log in on loopback, not at {url:?}"
            ));
        }
    }
    if raw.prefetch == 0 {
        problems.push("broker.prefetch: must be at least 1".into());
    }
    if !(1..=asw_route::MAX_DELIVERY_LIMIT).contains(&raw.delivery_limit) {
        problems.push(format!(
            "broker.delivery_limit: {} is not between 1 and {}",
            raw.delivery_limit,
            asw_route::MAX_DELIVERY_LIMIT
        ));
    }
    BrokerConfig {
        url: broker_urls.first().cloned().unwrap_or_default(),
        urls: broker_urls,
        management_url: management_urls.first().cloned().unwrap_or_default(),
        management_urls,
        management_user: raw.management_user,
        management_password: management_password.unwrap_or_else(default_guest),
        prefetch: raw.prefetch,
        delivery_limit: raw.delivery_limit,
        tls,
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
pub(super) fn amqp_urls(
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::HubConfig;
    use crate::config::redact;
    use crate::config::tests::{GOOD, setup};
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
