//! `[partners.<CC>]`: the member states this hub exchanges with, pull or push.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use asw_model::MemberState;
use serde::Deserialize;

use asw_tls::TlsFiles;

use super::broker::amqp_urls;
use super::secrets::{Findings, RawTls, secret};

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

/// How the partner's user `partner-<CC>` logs in to our broker.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum PartnerAuth {
    /// With the configured password (PLAIN).
    #[default]
    Password,
    /// With an X.509 client certificate whose CN is `partner-<CC>` (EXTERNAL, over TLS); the
    /// user has no password.
    Certificate,
}

/// One partner member state.
#[derive(Clone, PartialEq, Eq)]
pub struct PartnerConfig {
    /// Pull or push.
    pub link: LinkMode,
    /// The partner's broker URL (push), including its vhost; we connect as `partner-<our CC>`.
    /// The first of [`urls`](Self::urls).
    pub url: Option<String>,
    /// Every node of the partner's broker (`url`, or the `urls` of a cluster); empty for pull.
    pub urls: Vec<String>,
    /// Password of the user `partner-<CC>` in our vhost, so the partner can connect to us;
    /// empty when it logs in with its certificate.
    pub password: String,
    /// How `partner-<CC>` logs in to our broker.
    pub auth: PartnerAuth,
    /// TLS of the push link to the partner's broker: `ca`, `cert`, `key`, `key_passphrase`
    /// (with `?auth_mechanism=external` in the URL, the certificate is the login).
    pub tls: TlsFiles,
}

impl std::fmt::Debug for PartnerConfig {
    /// Passwords redacted.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let redacted: Vec<String> = self.urls.iter().map(|u| super::redact(u)).collect();
        f.debug_struct("PartnerConfig")
            .field("link", &self.link)
            .field("urls", &redacted)
            .field("password", &"<redacted>")
            .field("auth", &self.auth)
            .field("tls", &self.tls)
            .finish()
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawPartner {
    link: LinkMode,
    url: Option<String>,
    urls: Option<Vec<String>>,
    password: Option<String>,
    password_file: Option<PathBuf>,
    password_env: Option<String>,
    #[serde(default)]
    auth: PartnerAuth,
    ca: Option<PathBuf>,
    cert: Option<PathBuf>,
    key: Option<PathBuf>,
    key_passphrase: Option<String>,
    key_passphrase_file: Option<PathBuf>,
    key_passphrase_env: Option<String>,
}

/// Checks every `[partners.<CC>]` of a hub serving `country`, pushing problems.
pub(super) fn check(
    raw: BTreeMap<String, RawPartner>,
    country: Option<MemberState>,
    base: &Path,
    findings: &mut Findings,
) -> BTreeMap<MemberState, PartnerConfig> {
    let mut partners = BTreeMap::new();
    for (code, p) in raw {
        let key = format!("partners.{code}");
        let problems = &mut findings.problems;
        let Some(state) = MemberState::from_alpha2(&code) else {
            problems.push(format!("{key}: {code:?} is not an ASW member state"));
            continue;
        };
        if Some(state) == country {
            problems.push(format!("{key}: a hub is not its own partner"));
        }
        let given = p.url.is_some() || p.urls.is_some();
        let partner_urls = amqp_urls(&key, p.url.clone(), p.urls.clone(), problems);
        if p.link == LinkMode::Push && !given {
            problems.push(format!(
                "{key}.url: a push link needs the partner's broker URL"
            ));
        }
        let password = secret(
            &format!("{key}.password"),
            p.password,
            p.password_file.as_ref(),
            p.password_env.as_ref(),
            base,
            findings,
        );
        let tls = RawTls {
            ca: p.ca,
            cert: p.cert,
            key: p.key,
            key_passphrase: p.key_passphrase,
            key_passphrase_file: p.key_passphrase_file,
            key_passphrase_env: p.key_passphrase_env,
        }
        .check(&key, base, findings);
        let problems = &mut findings.problems;
        let password = match (p.auth, password) {
            (PartnerAuth::Certificate, Some(_)) => {
                problems.push(format!(
                    "{key}: auth = \"certificate\" logs partner-{code} in with its certificate: \
                     give no password"
                ));
                None
            }
            (PartnerAuth::Certificate, None) => Some(String::new()),
            (PartnerAuth::Password, None) => {
                if !problems
                    .iter()
                    .any(|p| p.starts_with(&format!("{key}.password")))
                {
                    problems.push(format!(
                        "{key}: password (or password_file, password_env) of user partner-{code} \
                         is required"
                    ));
                }
                None
            }
            (PartnerAuth::Password, Some(password)) => {
                if password.len() < 8 {
                    problems.push(format!("{key}.password: use at least 8 characters"));
                }
                Some(password)
            }
        };
        if let Some(password) = password {
            partners.insert(
                state,
                PartnerConfig {
                    link: p.link,
                    url: partner_urls.first().cloned(),
                    urls: partner_urls,
                    password,
                    auth: p.auth,
                    tls,
                },
            );
        }
    }
    partners
}

#[cfg(test)]
mod tests {
    use crate::config::HubConfig;
    use crate::config::tests::{GOOD, setup};

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
}
