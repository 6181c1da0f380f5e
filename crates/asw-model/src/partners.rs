//! Partners as data: `schemas/partners.toml` lists the partners a hub can know (code, name,
//! network or agreement, the kinds each may send us and receive from us, the channel, per kind),
//! read and checked here against the kinds. The model's partner type, [`crate::MemberState`], is
//! a handle into a process-wide table built from the shipped file and the hub's own
//! ([`crate::MemberState::install`]).

use std::collections::BTreeMap;
use std::ops::Range;
use std::path::Path;

use serde::Deserialize;
use toml::Spanned;

use crate::ModelError;
use crate::kinds::{KindRegistry, line_of, toml_error};

/// How documents travel to and from a partner.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum ChannelKind {
    /// The ASW partner brokers (AMQP), signed in the ASW envelope.
    AswBroker,
    /// The IPPC ePhyto Hub (SOAP), for kinds that travel bare.
    IppcHub,
}

impl ChannelKind {
    /// The name in the file (`asw-broker`, `ippc-hub`).
    pub fn as_str(self) -> &'static str {
        match self {
            ChannelKind::AswBroker => "asw-broker",
            ChannelKind::IppcHub => "ippc-hub",
        }
    }
}

/// One partner, as its row describes it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Partner {
    /// ISO 3166-1 alpha-2 code, the identity used everywhere in aswhub.
    pub code: String,
    /// ISO 3166-1 alpha-3 code.
    pub alpha3: String,
    /// Short English name.
    pub name: String,
    /// The network or agreement the exchange rests on (`asw`, `akfta`, `eaeu`).
    pub network: String,
    /// Whether a hub exchanges with it (shipped: the ASEAN member states on the ASW).
    pub enabled: bool,
    /// Kinds it may send us.
    pub sends: Vec<String>,
    /// Kinds we may send it.
    pub receives: Vec<String>,
    /// The channel of every kind not overridden; none when it exchanges no kind.
    pub channel: Option<ChannelKind>,
    /// Per-kind channel overrides.
    pub channels: BTreeMap<String, ChannelKind>,
}

impl Partner {
    /// The channel a document of `kind` travels on to or from this partner, if it exchanges it.
    pub fn channel_for(&self, kind: &str) -> Option<ChannelKind> {
        if !self.sends.iter().chain(&self.receives).any(|k| k == kind) {
            return None;
        }
        self.channels.get(kind).copied().or(self.channel)
    }

    /// True if it may send us documents of `kind`.
    pub fn may_send(&self, kind: &str) -> bool {
        self.sends.iter().any(|k| k == kind)
    }

    /// True if we may send it documents of `kind`.
    pub fn may_receive(&self, kind: &str) -> bool {
        self.receives.iter().any(|k| k == kind)
    }

    /// True if it exchanges some kind and every kind through the IPPC ePhyto Hub: it needs no
    /// link to an ASW partner broker (Korea as shipped).
    pub fn ippc_only(&self) -> bool {
        let mut kinds = self.sends.iter().chain(&self.receives).peekable();
        kinds.peek().is_some() && kinds.all(|k| self.channel_for(k) == Some(ChannelKind::IppcHub))
    }
}

/// Every partner a hub can know, in file order.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct PartnerTable {
    partners: Vec<Partner>,
}

const SHIPPED: &str = include_str!("../../../schemas/partners.toml");

impl PartnerTable {
    /// The partners shipped in `schemas/partners.toml`, as built into this binary.
    pub fn shipped(kinds: &KindRegistry) -> Result<PartnerTable, ModelError> {
        PartnerTable::parse("partners.toml", SHIPPED, kinds)
    }

    /// Reads a partners file.
    pub fn load(path: &Path, kinds: &KindRegistry) -> Result<PartnerTable, ModelError> {
        let text = std::fs::read_to_string(path).map_err(|e| ModelError::Data {
            file: path.display().to_string(),
            line: 0,
            key: String::new(),
            message: e.to_string(),
        })?;
        PartnerTable::parse(&path.display().to_string(), &text, kinds)
    }

    /// Reads the TOML text of a partners file named `file` (for errors), checking every kind
    /// against `kinds`.
    pub fn parse(file: &str, text: &str, kinds: &KindRegistry) -> Result<PartnerTable, ModelError> {
        let raw: RawFile = toml::from_str(text).map_err(|e| toml_error(file, text, &e))?;
        let at = |span: Range<usize>, key: &str, message: String| ModelError::Data {
            file: file.to_owned(),
            line: line_of(text, span.start),
            key: key.to_owned(),
            message,
        };
        let mut partners: Vec<Partner> = Vec::with_capacity(raw.partner.len());
        for row in raw.partner {
            let code = row.code.get_ref();
            if code.len() != 2 || !code.bytes().all(|b| b.is_ascii_uppercase()) {
                return Err(at(
                    row.code.span(),
                    "partner.code",
                    format!("{code:?} is not an ISO 3166-1 alpha-2 code"),
                ));
            }
            let alpha3 = row.alpha3.get_ref();
            if alpha3.len() != 3 || !alpha3.bytes().all(|b| b.is_ascii_uppercase()) {
                return Err(at(
                    row.alpha3.span(),
                    "partner.alpha3",
                    format!("{alpha3:?} is not an ISO 3166-1 alpha-3 code"),
                ));
            }
            if let Some(other) = partners
                .iter()
                .find(|p| p.code == *code || p.alpha3 == *alpha3)
            {
                return Err(at(
                    row.code.span(),
                    "partner.code",
                    format!("{code} / {alpha3} is listed twice (also as {})", other.code),
                ));
            }
            if row.name.trim().is_empty() || row.network.trim().is_empty() {
                return Err(at(
                    row.code.span(),
                    "partner.name",
                    format!("{code} needs a name and a network"),
                ));
            }
            for (key, list) in [
                ("partner.sends", &row.sends),
                ("partner.receives", &row.receives),
            ] {
                for (i, kind) in list.iter().enumerate() {
                    if kinds.get(kind.get_ref()).is_none() {
                        return Err(at(
                            kind.span(),
                            key,
                            format!("{code}: no kind {:?} (schemas/kinds/)", kind.get_ref()),
                        ));
                    }
                    if list[..i].iter().any(|k| k.get_ref() == kind.get_ref()) {
                        return Err(at(
                            kind.span(),
                            key,
                            format!("{code}: {} is listed twice", kind.get_ref()),
                        ));
                    }
                }
            }
            let exchanged = |kind: &str| {
                row.sends
                    .iter()
                    .chain(&row.receives)
                    .any(|k| k.get_ref() == kind)
            };
            let mut channels = BTreeMap::new();
            for (kind, channel) in &row.channels {
                if !exchanged(kind) {
                    return Err(at(
                        channel.span(),
                        &format!("partner.channels.{kind}"),
                        format!("{code} neither sends nor receives {kind}"),
                    ));
                }
                channels.insert(kind.clone(), *channel.get_ref());
            }
            let channel = row.channel.as_ref().map(|c| *c.get_ref());
            let partner = Partner {
                code: code.clone(),
                alpha3: alpha3.clone(),
                name: row.name,
                network: row.network,
                enabled: row.enabled,
                sends: row.sends.iter().map(|k| k.get_ref().clone()).collect(),
                receives: row.receives.iter().map(|k| k.get_ref().clone()).collect(),
                channel,
                channels,
            };
            for kind in partner.sends.iter().chain(&partner.receives) {
                let span = row.code.span();
                match partner.channel_for(kind) {
                    None => {
                        return Err(at(
                            span,
                            "partner.channel",
                            format!("{code} exchanges {kind} but names no channel for it"),
                        ));
                    }
                    Some(ChannelKind::IppcHub) if !kinds.get(kind).is_some_and(|k| k.bare) => {
                        return Err(at(
                            span,
                            "partner.channel",
                            format!(
                                "{code}: {kind} cannot go through the IPPC ePhyto Hub, which \
                                 carries only kinds that travel bare"
                            ),
                        ));
                    }
                    Some(_) => {}
                }
            }
            partners.push(partner);
        }
        Ok(PartnerTable { partners })
    }

    /// Every partner, in file order.
    pub fn iter(&self) -> impl Iterator<Item = &Partner> {
        self.partners.iter()
    }

    /// The partners a hub exchanges with (`enabled = true`).
    pub fn enabled(&self) -> impl Iterator<Item = &Partner> {
        self.partners.iter().filter(|p| p.enabled)
    }

    /// The partner with this alpha-2 code (exact, upper case).
    pub fn get(&self, code: &str) -> Option<&Partner> {
        self.partners.iter().find(|p| p.code == code)
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawFile {
    #[serde(default)]
    partner: Vec<RawPartner>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawPartner {
    code: Spanned<String>,
    alpha3: Spanned<String>,
    name: String,
    network: String,
    #[serde(default)]
    enabled: bool,
    sends: Vec<Spanned<String>>,
    receives: Vec<Spanned<String>>,
    channel: Option<Spanned<ChannelKind>>,
    #[serde(default)]
    channels: BTreeMap<String, Spanned<ChannelKind>>,
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::MemberState;

    fn kinds() -> KindRegistry {
        KindRegistry::shipped().expect("shipped kinds")
    }

    /// The ten ASEAN member states, in the order ASEAN lists them, enabled on the ASW; the rows
    /// a deployment enables are there and disabled; every row is a member state of the process.
    #[test]
    fn the_asean_rows_are_the_member_states() {
        let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../schemas/partners.toml");
        let table = PartnerTable::load(&path, &kinds()).expect("the shipped partners load");
        assert_eq!(table, PartnerTable::shipped(&kinds()).expect("embedded"));
        let asean: Vec<&Partner> = table
            .iter()
            .filter(|p| p.network == "asw" && p.enabled)
            .collect();
        let codes: Vec<&str> = asean.iter().map(|p| p.code.as_str()).collect();
        assert_eq!(
            codes,
            ["BN", "KH", "ID", "LA", "MY", "MM", "PH", "SG", "TH", "VN"]
        );
        for row in table.iter() {
            let state = MemberState::from_alpha2(&row.code).expect("a member state");
            let info = state.info();
            assert_eq!(
                (info.alpha3, info.name, info.network),
                (row.alpha3.as_str(), row.name.as_str(), row.network.as_str())
            );
        }
        for row in &asean {
            for kind in crate::DocumentKind::ALL {
                assert!(
                    row.may_send(kind.as_str()) && row.may_receive(kind.as_str()),
                    "{}",
                    row.code
                );
                assert_eq!(row.channel_for(kind.as_str()), Some(ChannelKind::AswBroker));
            }
        }
        let enabled: Vec<&str> = table.enabled().map(|p| p.code.as_str()).collect();
        assert_eq!(enabled, codes, "only the ten are enabled as shipped");
        for code in ["TL", "KR", "AM", "BY", "KZ", "KG", "RU"] {
            let row = table
                .get(code)
                .unwrap_or_else(|| panic!("{code} has a row"));
            assert!(!row.enabled, "{code}");
        }
        let kr = table.get("KR").expect("KR");
        assert_eq!(kr.channel_for("ephyto"), Some(ChannelKind::IppcHub));
        assert_eq!(kr.channel_for("formd"), None);
        assert!(!kr.may_send("formd"));
        assert!(kr.ippc_only());
        assert!(!table.get("TH").expect("TH").ippc_only());
        assert!(
            !table.get("RU").expect("RU").ippc_only(),
            "exchanges nothing yet"
        );
    }

    const TH: &str = "[[partner]]\ncode = \"TH\"\nalpha3 = \"THA\"\nname = \"Thailand\"\n\
        network = \"asw\"\nenabled = true\nsends = [\"formd\", \"ephyto\"]\n\
        receives = [\"formd-ack\"]\nchannel = \"asw-broker\"\n";

    fn error(text: &str) -> String {
        PartnerTable::parse("partners.toml", text, &kinds())
            .expect_err("refused")
            .to_string()
    }

    #[test]
    fn a_kind_may_take_another_channel_and_errors_name_file_line_and_key() {
        let text = format!("{TH}[partner.channels]\nephyto = \"ippc-hub\"\n");
        let table = PartnerTable::parse("partners.toml", &text, &kinds()).expect("valid");
        let th = table.get("TH").expect("TH");
        assert_eq!(th.channel_for("formd"), Some(ChannelKind::AswBroker));
        assert_eq!(th.channel_for("ephyto"), Some(ChannelKind::IppcHub));
        assert_eq!(th.channel_for("acdd"), None);

        assert_eq!(
            error(&TH.replace("\"ephyto\"]", "\"invoice\"]")),
            "partners.toml:7: partner.sends: TH: no kind \"invoice\" (schemas/kinds/)"
        );
        assert_eq!(
            error(&TH.replace("asw-broker", "smtp")),
            "partners.toml:9: partner.channel: unknown variant `smtp`, expected `asw-broker` \
             or `ippc-hub`"
        );
        assert_eq!(
            error(&format!("{TH}[partner.channels]\nformd = \"ippc-hub\"\n")),
            "partners.toml:2: partner.channel: TH: formd cannot go through the IPPC ePhyto \
             Hub, which carries only kinds that travel bare"
        );
        assert_eq!(
            error(&format!("{TH}[partner.channels]\nacdd = \"ippc-hub\"\n")),
            "partners.toml:11: partner.channels.acdd: TH neither sends nor receives acdd"
        );
        assert_eq!(
            error(&format!("{TH}{}", TH.replace("Thailand", "Siam"))),
            "partners.toml:11: partner.code: TH / THA is listed twice (also as TH)"
        );
        assert_eq!(
            error(&TH.replace("code = \"TH\"", "code = \"Th\"")),
            "partners.toml:2: partner.code: \"Th\" is not an ISO 3166-1 alpha-2 code"
        );
        assert_eq!(
            error(&TH.replace("channel = \"asw-broker\"\n", "")),
            "partners.toml:2: partner.channel: TH exchanges formd but names no channel for it"
        );
    }
}
