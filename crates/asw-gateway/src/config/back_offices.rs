//! `[[back_office]]`: the back-office systems (ministries) with a broker identity of their own,
//! each allowed to send only its kinds and given only what it receives. Without any, every
//! back-office shares the hub's vhost as before (the demo's and tests' shared queue).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use asw_model::{DocumentKind, MemberState};
use serde::Deserialize;

use super::partners::PartnerAuth;
use super::secrets::{Findings, secret};

/// One back-office system: its broker user and what it may send and receives.
#[derive(Clone, PartialEq, Eq)]
pub struct BackOfficeConfig {
    /// Its broker user (RabbitMQ users belong to the broker, not to a vhost).
    pub name: String,
    /// Kinds it may publish to `asw.outbound`; it gets their outcomes.
    pub sends: Vec<DocumentKind>,
    /// Kinds the hub delivers to it.
    pub receives: Vec<DocumentKind>,
    /// Partners it receives them from; empty: every partner.
    pub from: Vec<MemberState>,
    /// How it logs in: its password, or a client certificate whose CN is `name` (EXTERNAL).
    pub auth: PartnerAuth,
    /// Its password; empty with `auth = "certificate"`.
    pub password: String,
}

impl std::fmt::Debug for BackOfficeConfig {
    /// The password redacted.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BackOfficeConfig")
            .field("name", &self.name)
            .field("sends", &self.sends)
            .field("receives", &self.receives)
            .field("from", &self.from)
            .field("auth", &self.auth)
            .field("password", &"<redacted>")
            .finish()
    }
}

impl BackOfficeConfig {
    /// Its routes on the broker, as `aswctl topology apply` declares them.
    pub fn routes(&self) -> asw_route::BackOffice {
        asw_route::BackOffice {
            name: self.name.clone(),
            sends: self.sends.clone(),
            receives: self.receives.clone(),
            from: self.from.clone(),
        }
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawBackOffice {
    name: String,
    #[serde(default)]
    sends: Vec<String>,
    #[serde(default)]
    receives: Vec<String>,
    #[serde(default)]
    from: Vec<String>,
    #[serde(default)]
    auth: PartnerAuth,
    password: Option<String>,
    password_file: Option<PathBuf>,
    password_env: Option<String>,
}

/// Longest back-office name (it is a broker user and part of two queue names).
const MAX_NAME: usize = 64;

/// Checks every `[[back_office]]` of a hub whose own broker user is `own_user` and whose
/// partners are `partners`, pushing problems and warnings.
pub(super) fn check(
    raw: Vec<RawBackOffice>,
    own_user: Option<&str>,
    partners: &[MemberState],
    base: &Path,
    findings: &mut Findings,
) -> Vec<BackOfficeConfig> {
    let mut offices: Vec<BackOfficeConfig> = Vec::new();
    let mut senders: BTreeMap<DocumentKind, String> = BTreeMap::new();
    for (n, b) in raw.into_iter().enumerate() {
        let key = format!("back_office[{n}] ({})", b.name);
        let problems = &mut findings.problems;
        let name_ok = !b.name.is_empty()
            && b.name.len() <= MAX_NAME
            && b.name
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
            && b.name.starts_with(|c: char| c.is_ascii_alphanumeric());
        if !name_ok {
            problems.push(format!(
                "{key}.name: {:?} must be 1 to {MAX_NAME} letters, digits, '-' or '_', \
                 starting with a letter or digit",
                b.name
            ));
        }
        if b.name.starts_with("partner-") {
            problems.push(format!(
                "{key}.name: partner-* names are the partners' broker users"
            ));
        }
        if Some(b.name.as_str()) == own_user {
            problems.push(format!(
                "{key}.name: {} is the hub's own broker user",
                b.name
            ));
        }
        if offices.iter().any(|o| o.name == b.name) {
            problems.push(format!("{key}.name: {} is given twice", b.name));
        }
        let kinds = |field: &str, names: &[String], problems: &mut Vec<String>| {
            let mut kinds = Vec::new();
            for name in names {
                match name.parse::<DocumentKind>() {
                    Ok(kind) if !kinds.contains(&kind) => kinds.push(kind),
                    Ok(_) => problems.push(format!("{key}.{field}: {name} is given twice")),
                    Err(_) => problems.push(format!(
                        "{key}.{field}: {name:?} is not a document kind (formd, acdd, formd-ack, \
                         acdd-ack, formd-status, acdd-response)"
                    )),
                }
            }
            kinds
        };
        let sends = kinds("sends", &b.sends, problems);
        let receives = kinds("receives", &b.receives, problems);
        if b.sends.is_empty() && b.receives.is_empty() {
            problems.push(format!("{key}: it sends nothing and receives nothing"));
        }
        for &kind in &sends {
            // Outcomes are routed by kind (`outcome.<kind>.<receiver>`): a kind sent by two
            // back-offices would tell each about the other's documents.
            if let Some(other) = senders.insert(kind, b.name.clone()) {
                problems.push(format!(
                    "{key}.sends: {kind} is sent by {other} already; each kind is sent by one \
                     back-office, which gets its outcomes"
                ));
            }
        }
        let mut from = Vec::new();
        for code in &b.from {
            match MemberState::from_alpha2(code) {
                Some(state) if partners.contains(&state) => from.push(state),
                _ => problems.push(format!("{key}.from: {code:?} is not a configured partner")),
            }
        }
        let password = secret(
            &format!("{key}.password"),
            b.password,
            b.password_file.as_ref(),
            b.password_env.as_ref(),
            base,
            findings,
        );
        let problems = &mut findings.problems;
        let password = match (b.auth, password) {
            (PartnerAuth::Certificate, Some(_)) => {
                problems.push(format!(
                    "{key}: auth = \"certificate\" logs {} in with its certificate: give no \
                     password",
                    b.name
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
                        "{key}: password (or password_file, password_env, or auth = \
                         \"certificate\") of user {} is required",
                        b.name
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
            offices.push(BackOfficeConfig {
                name: b.name,
                sends,
                receives,
                from,
                auth: b.auth,
                password,
            });
        }
    }
    if !offices.is_empty() {
        // What partners send that no back-office takes is parked DELIVERY-UNROUTABLE.
        for kind in DocumentKind::all() {
            let missed: Vec<&str> = partners
                .iter()
                .filter(|&&p| {
                    !offices.iter().any(|o| {
                        o.receives.contains(&kind) && (o.from.is_empty() || o.from.contains(&p))
                    })
                })
                .map(|p| p.code())
                .collect();
            if !missed.is_empty() {
                findings.warnings.push(format!(
                    "back_office: none receives {kind} from {}: such documents will be parked \
                     (DELIVERY-UNROUTABLE) and get no receipt",
                    missed.join(", ")
                ));
            }
        }
    }
    offices
}

#[cfg(test)]
mod tests {
    use crate::config::HubConfig;
    use crate::config::PartnerAuth;
    use crate::config::tests::{GOOD, setup};
    use asw_model::DocumentKind;

    const MINISTRIES: &str = r#"
[[back_office]]
name = "trade-ministry"
sends = ["formd", "formd-status"]
receives = ["formd", "formd-ack", "formd-status"]
password_file = "trade-pw"

[[back_office]]
name = "customs"
sends = ["acdd", "acdd-response"]
receives = ["acdd", "acdd-ack", "acdd-response"]
auth = "certificate"

[[back_office]]
name = "plant-protection"
sends = ["ephyto"]
receives = ["ephyto", "ephyto-ack"]
password_env = "PATH"
"#;

    #[test]
    fn back_offices_are_read_with_their_kinds_senders_and_secrets() {
        let dir = setup();
        std::fs::write(dir.path().join("trade-pw"), "trade-s3cret\n").expect("write");
        let file = dir.path().join("hub.toml");
        let config = HubConfig::parse(&format!("{GOOD}{MINISTRIES}"), &file).expect("valid");
        let [trade, customs, _plants] = config.back_offices.as_slice() else {
            panic!("{:?}", config.back_offices);
        };
        assert_eq!(trade.name, "trade-ministry");
        assert_eq!(
            trade.sends,
            [DocumentKind::FormD, DocumentKind::FormDStatus]
        );
        assert_eq!(trade.password, "trade-s3cret");
        assert!(trade.from.is_empty());
        assert_eq!(
            (customs.auth, customs.password.as_str()),
            (PartnerAuth::Certificate, "")
        );
        assert_eq!(customs.receives.len(), 3);
        assert!(
            config
                .warnings
                .iter()
                .all(|w| !w.starts_with("back_office")),
            "every kind is received: {:?}",
            config.warnings
        );
        assert!(!format!("{config:?}").contains("trade-s3cret"));
        // The topology `aswctl topology apply` declares: the users, their queues.
        let topology = config.topology();
        let users: Vec<&str> = topology.users.iter().map(|u| u.name.as_str()).collect();
        assert_eq!(
            users,
            [
                "partner-SG",
                "partner-TH",
                "trade-ministry",
                "customs",
                "plant-protection"
            ]
        );
        assert_eq!(config.broker_password(&topology.users[2]), "trade-s3cret");
        assert_eq!(config.broker_password(&topology.users[3]), "");
        assert!(
            topology
                .queues
                .iter()
                .any(|q| q.name == "asw.backoffice.customs.documents")
        );
    }

    #[test]
    fn every_back_office_problem_is_named() {
        let dir = setup();
        let file = dir.path().join("hub.toml");
        let bad = r#"
[[back_office]]
name = "partner-XX"
sends = ["formd", "invoice"]
from = ["SG", "MY"]
password = "short"

[[back_office]]
name = "guest"
sends = ["formd"]
receives = ["formd", "formd"]

[[back_office]]
name = "two words"
auth = "certificate"
password = "long-enough-password"
"#;
        let err = HubConfig::parse(&format!("{GOOD}{bad}"), &file).expect_err("invalid");
        let problems: Vec<&str> = err.problems.iter().map(String::as_str).collect();
        assert_eq!(
            problems,
            [
                "back_office[0] (partner-XX).name: partner-* names are the partners' broker users",
                "back_office[0] (partner-XX).sends: \"invoice\" is not a document kind (formd, \
                 acdd, formd-ack, acdd-ack, formd-status, acdd-response)",
                "back_office[0] (partner-XX).from: \"MY\" is not a configured partner",
                "back_office[0] (partner-XX).password: use at least 8 characters",
                "back_office[1] (guest).name: guest is the hub's own broker user",
                "back_office[1] (guest).receives: formd is given twice",
                "back_office[1] (guest).sends: formd is sent by partner-XX already; each kind is \
                 sent by one back-office, which gets its outcomes",
                "back_office[1] (guest): password (or password_file, password_env, or auth = \
                 \"certificate\") of user guest is required",
                "back_office[2] (two words).name: \"two words\" must be 1 to 64 letters, digits, \
                 '-' or '_', starting with a letter or digit",
                "back_office[2] (two words): it sends nothing and receives nothing",
                "back_office[2] (two words): auth = \"certificate\" logs two words in with its \
                 certificate: give no password",
            ]
        );
    }

    #[test]
    fn kinds_no_back_office_receives_are_warned_about() {
        let dir = setup();
        let file = dir.path().join("hub.toml");
        let only_trade = r#"
[[back_office]]
name = "trade-ministry"
sends = ["formd"]
receives = ["formd", "formd-ack", "formd-status"]
from = ["TH"]
password_env = "PATH"
"#;
        let config = HubConfig::parse(&format!("{GOOD}{only_trade}"), &file).expect("valid");
        let warned: Vec<&str> = config
            .warnings
            .iter()
            .filter(|w| w.starts_with("back_office"))
            .map(String::as_str)
            .collect();
        // acdd, acdd-ack, acdd-response, ephyto and ephyto-ack from every partner; formd,
        // formd-ack and formd-status from SG.
        assert_eq!(warned.len(), 8, "{warned:?}");
        assert!(warned.contains(
            &"back_office: none receives formd from SG: such documents will be parked \
              (DELIVERY-UNROUTABLE) and get no receipt"
        ));
        assert!(warned.contains(
            &"back_office: none receives acdd from SG, TH: such documents will be parked \
              (DELIVERY-UNROUTABLE) and get no receipt"
        ));
    }
}
