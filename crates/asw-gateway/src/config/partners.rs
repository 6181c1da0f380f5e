//! `[partners.<CC>]`: the member states this hub exchanges with, pull or push.

use std::collections::BTreeMap;

use asw_model::MemberState;
use serde::Deserialize;

use super::broker::amqp_urls;

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

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawPartner {
    link: LinkMode,
    url: Option<String>,
    urls: Option<Vec<String>>,
    password: Option<String>,
    password_env: Option<String>,
}

/// Checks every `[partners.<CC>]` of a hub serving `country`, pushing problems.
pub(super) fn check(
    raw: BTreeMap<String, RawPartner>,
    country: Option<MemberState>,
    problems: &mut Vec<String>,
) -> BTreeMap<MemberState, PartnerConfig> {
    let mut partners = BTreeMap::new();
    for (code, p) in raw {
        let key = format!("partners.{code}");
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
