//! `[ephyto_hub]`: the IPPC ePhyto Hub this hub exchanges e-Phyto certificates through, for the
//! partners whose channel for a kind is `ippc-hub` in the partners file.

use std::path::{Path, PathBuf};
use std::time::Duration;

use asw_model::MemberState;
use asw_model::partners::{ChannelKind, PartnerTable};
use asw_tls::TlsFiles;
use serde::Deserialize;

use super::acks::parse_duration;
use super::secrets::{Findings, RawTls};

/// The IPPC ePhyto Hub's service and our client certificate at it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EphytoHubConfig {
    /// The `DeliveryService` endpoint (`https://.../hub/DeliveryService`).
    pub url: String,
    /// `ca` (the hub's certificate's CAs; none: the system's), `cert` and `key` (our client
    /// certificate, the hub's login), `key_passphrase`.
    pub tls: TlsFiles,
    /// How often the tracking of exported certificates is asked (`track_every`, default 60 s).
    pub track_every: Duration,
    /// How often the hub is polled for certificates to import (`import_every`, default 60 s).
    pub import_every: Duration,
    /// Refuse schema-invalid imports instead of delivering them with warnings (`strict`).
    pub strict: bool,
}

impl EphytoHubConfig {
    /// The default tracking interval.
    pub const DEFAULT_TRACK_EVERY: Duration = Duration::from_secs(60);
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawEphytoHub {
    url: String,
    track_every: Option<String>,
    import_every: Option<String>,
    #[serde(default)]
    strict: bool,
    ca: Option<PathBuf>,
    cert: Option<PathBuf>,
    key: Option<PathBuf>,
    key_passphrase: Option<String>,
    key_passphrase_file: Option<PathBuf>,
    key_passphrase_env: Option<String>,
}

/// Checks `[ephyto_hub]`, pushing problems.
pub(super) fn check(
    raw: Option<RawEphytoHub>,
    base: &Path,
    findings: &mut Findings,
) -> Option<EphytoHubConfig> {
    let raw = raw?;
    let key = "ephyto_hub";
    if !raw.url.starts_with("https://") || url::Url::parse(&raw.url).is_err() {
        findings.problems.push(format!(
            "{key}.url: {:?} is not an https:// URL (the hub is reached over TLS only)",
            raw.url
        ));
    }
    if raw.cert.is_none() || raw.key.is_none() {
        findings.problems.push(format!(
            "{key}: cert and key are required (the hub knows us by our client certificate)"
        ));
    }
    let mut interval = |name: &str, text: Option<&str>| match text.map(parse_duration) {
        None => EphytoHubConfig::DEFAULT_TRACK_EVERY,
        Some(Ok(d)) if d >= Duration::from_millis(100) && d <= Duration::from_secs(86_400) => d,
        Some(Ok(_)) => {
            findings
                .problems
                .push(format!("{key}.{name}: between 100ms and 1d"));
            EphytoHubConfig::DEFAULT_TRACK_EVERY
        }
        Some(Err(e)) => {
            findings.problems.push(format!("{key}.{name}: {e}"));
            EphytoHubConfig::DEFAULT_TRACK_EVERY
        }
    };
    let track_every = interval("track_every", raw.track_every.as_deref());
    let import_every = interval("import_every", raw.import_every.as_deref());
    let tls = RawTls {
        ca: raw.ca,
        cert: raw.cert,
        key: raw.key,
        key_passphrase: raw.key_passphrase,
        key_passphrase_file: raw.key_passphrase_file,
        key_passphrase_env: raw.key_passphrase_env,
    }
    .check(key, base, findings);
    Some(EphytoHubConfig {
        url: raw.url,
        tls,
        track_every,
        import_every,
        strict: raw.strict,
    })
}

/// The configured partners that send us some kind through the IPPC hub, per their rows.
pub fn ippc_senders(
    table: &PartnerTable,
    partners: impl IntoIterator<Item = MemberState>,
) -> Vec<MemberState> {
    partners
        .into_iter()
        .filter(|state| {
            table.iter().any(|row| {
                row.code == state.code()
                    && row
                        .sends
                        .iter()
                        .any(|k| row.channel_for(k) == Some(ChannelKind::IppcHub))
            })
        })
        .collect()
}

/// The kinds each configured partner receives from us through the IPPC hub, per its row.
pub fn ippc_kinds(
    table: &PartnerTable,
    partners: impl IntoIterator<Item = MemberState>,
) -> Vec<(MemberState, Vec<String>)> {
    partners
        .into_iter()
        .filter_map(|state| {
            let row = table.iter().find(|p| p.code == state.code())?;
            let kinds: Vec<String> = row
                .receives
                .iter()
                .filter(|k| row.channel_for(k) == Some(ChannelKind::IppcHub))
                .cloned()
                .collect();
            (!kinds.is_empty()).then_some((state, kinds))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use asw_model::MemberState;

    use crate::config::HubConfig;
    use crate::config::tests::{GOOD, setup};

    /// GOOD with a partners file in which TH takes e-Phyto through the IPPC hub, and `extra`.
    fn with_ippc_th(dir: &std::path::Path, extra: &str) -> String {
        let shipped = include_str!("../../../../schemas/partners.toml");
        let rows: Vec<String> = shipped
            .split("[[partner]]")
            .map(|row| {
                if row.contains("\ncode = \"TH\"") {
                    row.replace(
                        "channel = \"asw-broker\"\n",
                        "channel = \"asw-broker\"\n[partner.channels]\nephyto = \"ippc-hub\"\n",
                    )
                } else {
                    row.to_owned()
                }
            })
            .collect();
        let file = dir.join("partners.toml");
        std::fs::write(&file, rows.join("[[partner]]")).expect("write");
        format!(
            "partners_file = {:?}\n{GOOD}{extra}",
            file.display().to_string()
        )
    }

    #[test]
    fn a_partner_on_the_ippc_hub_needs_the_hub_section_and_routes_its_ephyto_there() {
        let dir = setup();
        let file = dir.path().join("hub.toml");
        let err = HubConfig::parse(&with_ippc_th(dir.path(), ""), &file).expect_err("no hub");
        assert!(
            err.to_string().contains(
                "partners.TH: the partners file sends ephyto to TH through the IPPC ePhyto Hub: \
                 configure [ephyto_hub]"
            ),
            "{err}"
        );
        let plain = "\n[ephyto_hub]\nurl = \"http://hub.example/hub/DeliveryService\"\n";
        let err = HubConfig::parse(&with_ippc_th(dir.path(), plain), &file).expect_err("http");
        let text = err.to_string();
        assert!(text.contains("ephyto_hub.url: \"http://"), "{text}");
        assert!(
            text.contains("ephyto_hub: cert and key are required"),
            "{text}"
        );
        let good = "\n[ephyto_hub]\nurl = \"https://hub.example/hub/DeliveryService\"\n\
                    cert = \"vn-cert.pem\"\nkey = \"vn-key.pem\"\ntrack_every = \"5s\"\n";
        let config = HubConfig::parse(&with_ippc_th(dir.path(), good), &file).expect("valid");
        let th = MemberState::from_alpha2("TH").expect("TH");
        let sg = MemberState::from_alpha2("SG").expect("SG");
        assert_eq!(config.ippc_partners(), vec![th]);
        assert!(config.via_ippc(th, "ephyto"));
        assert!(!config.via_ippc(th, "formd"));
        assert!(!config.via_ippc(sg, "ephyto"));
        let hub = config.ephyto_hub.as_ref().expect("hub");
        assert_eq!(hub.track_every, std::time::Duration::from_secs(5));
        // Its queue, bound to TH.ippc beside TH's own.
        let topology = config.topology();
        assert!(topology.queues.iter().any(|q| q.name == "asw.ippc.out.TH"));
        assert!(
            topology
                .bindings
                .iter()
                .any(|b| b.exchange == "asw.partner.out"
                    && b.queue == "asw.ippc.out.TH"
                    && b.routing_key == "TH.ippc")
        );
        assert!(!topology.queues.iter().any(|q| q.name == "asw.ippc.out.SG"));
        // Without a partner on the hub, the section changes nothing.
        let shipped = HubConfig::parse(&format!("{GOOD}{good}"), &file).expect("valid");
        assert!(shipped.ippc_partners().is_empty());
    }

    #[test]
    fn a_partner_enabled_with_every_kind_on_the_ippc_hub_needs_no_section_of_its_own() {
        let dir = setup();
        let file = dir.path().join("hub.toml");
        let partners = dir.path().join("partners-kr.toml");
        let shipped = include_str!("../../../../schemas/partners.toml");
        let enabled: Vec<String> = shipped
            .split("[[partner]]")
            .map(|row| {
                if row.contains("\ncode = \"KR\"") {
                    row.replace("enabled = false", "enabled = true")
                } else {
                    row.to_owned()
                }
            })
            .collect();
        std::fs::write(&partners, enabled.join("[[partner]]")).expect("write");
        let with_kr = format!(
            "partners_file = {:?}\n{GOOD}",
            partners.display().to_string()
        );
        let err = HubConfig::parse(&with_kr, &file).expect_err("no hub");
        assert!(
            err.to_string().contains(
                "partners.KR: the partners file sends ephyto, ephyto-ack to KR through the IPPC \
                 ePhyto Hub: configure [ephyto_hub]"
            ),
            "{err}"
        );
        let good = "\n[ephyto_hub]\nurl = \"https://hub.example/hub/DeliveryService\"\n\
                    cert = \"vn-cert.pem\"\nkey = \"vn-key.pem\"\n";
        let config = HubConfig::parse(&format!("{with_kr}{good}"), &file).expect("valid");
        let kr = MemberState::from_alpha2("KR").expect("a shipped row");
        assert_eq!(config.ippc_only, vec![kr]);
        assert!(!config.partners.contains_key(&kr));
        assert!(config.all_partners().contains(&kr));
        assert_eq!(config.ippc_partners(), vec![kr]);
        assert_eq!(config.ippc_senders(), vec![kr]);
        assert!(config.via_ippc(kr, "ephyto"));
        let topology = config.topology();
        assert!(topology.queues.iter().any(|q| q.name == "asw.ippc.out.KR"));
        assert!(
            !topology
                .queues
                .iter()
                .any(|q| q.name == "asw.partner.out.KR")
        );
        assert!(!topology.users.iter().any(|u| u.name == "partner-KR"));
        // The shipped file: KR is known but not enabled, so no partner, and a section for it
        // is refused.
        let shipped = HubConfig::parse(&format!("{GOOD}{good}"), &file).expect("valid");
        assert!(shipped.ippc_only.is_empty());
        let section = "\n[partners.KR]\nlink = \"pull\"\npassword = \"secret-kr\"\n";
        let err = HubConfig::parse(&format!("{GOOD}{good}{section}"), &file).expect_err("off");
        assert!(
            err.to_string()
                .contains("partners.KR: KR is not enabled in the partners file"),
            "{err}"
        );
    }
}
