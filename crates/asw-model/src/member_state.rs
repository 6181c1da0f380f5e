//! The partners a hub can know (the ASEAN member states on the ASW, and the others a deployment
//! enables), as a process-wide table built from the partners file.
//!
//! A [`MemberState`] is a small `Copy` handle into that table. The table starts with every row
//! of the shipped `schemas/partners.toml`, built into the binary, in file order (the ten ASEAN
//! member states first, then Timor-Leste, Korea and the EAEU members, disabled); a hub installs
//! its own partners file with [`MemberState::install`] when it reads its configuration, which
//! adds the rows the process does not know yet and sets which rows are enabled. Rows are added,
//! never removed: a handle stays valid for the process.
//!
//! Invariant: whether a partner is enabled here is process-wide (the last installed file says);
//! a hub's routing decisions ask its own [`PartnerTable`], so two hubs in one process (tests)
//! with different files decide each by its own.

use std::fmt;
use std::str::FromStr;
use std::sync::{LazyLock, RwLock};

use crate::ModelError;
use crate::kinds::KindRegistry;
use crate::partners::{Partner, PartnerTable};

/// One partner as the process knows it: the identity columns of its row in the partners file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MemberStateInfo {
    /// ISO 3166-1 alpha-2 code, the identity used everywhere in aswhub.
    pub alpha2: &'static str,
    /// ISO 3166-1 alpha-3 code.
    pub alpha3: &'static str,
    /// Short English name.
    pub name: &'static str,
    /// The network or agreement the exchange rests on (`asw`, `akfta`, `eaeu`).
    pub network: &'static str,
}

/// A row of the table: its identity (leaked, so handles lend `&'static` data; rows are few and
/// never removed) and whether the last installed partners file enables it.
#[derive(Debug, Clone, Copy)]
struct Row {
    info: &'static MemberStateInfo,
    enabled: bool,
}

static TABLE: LazyLock<RwLock<Vec<Row>>> = LazyLock::new(|| {
    // Invariant: the shipped kinds and partners are embedded and checked by this crate's tests
    // (`partners::tests::the_asean_rows_are_the_member_states`), so they load.
    #[allow(clippy::expect_used)]
    let shipped = KindRegistry::shipped()
        .and_then(|kinds| PartnerTable::shipped(&kinds))
        .expect("the shipped partners load");
    RwLock::new(
        shipped
            .iter()
            .map(|p| Row {
                info: leak(p),
                enabled: p.enabled,
            })
            .collect(),
    )
});

fn leak(partner: &Partner) -> &'static MemberStateInfo {
    let text = |s: &str| -> &'static str { Box::leak(s.to_owned().into_boxed_str()) };
    Box::leak(Box::new(MemberStateInfo {
        alpha2: text(&partner.code),
        alpha3: text(&partner.alpha3),
        name: text(&partner.name),
        network: text(&partner.network),
    }))
}

fn table() -> std::sync::RwLockReadGuard<'static, Vec<Row>> {
    // A poisoned lock only means a panic elsewhere while installing; the table is still whole
    // (rows are pushed or changed one at a time).
    TABLE.read().unwrap_or_else(|e| e.into_inner())
}

fn handles(rows: &[Row], keep: impl Fn(&Row) -> bool) -> std::vec::IntoIter<MemberState> {
    rows.iter()
        .enumerate()
        .filter(|(_, row)| keep(row))
        .filter_map(|(i, _)| u16::try_from(i).ok())
        .map(MemberState)
        .collect::<Vec<_>>()
        .into_iter()
}

/// A partner of the hub (an ASEAN member state on the ASW, or another the partners file
/// lists); only rows of the process's partner table can be built.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct MemberState(u16);

impl MemberState {
    /// The enabled partners, in table order (shipped: the ten ASEAN member states).
    pub fn all() -> std::vec::IntoIter<MemberState> {
        handles(&table(), |row| row.enabled)
    }

    /// Every partner the process knows, enabled or not, in table order.
    pub fn known() -> std::vec::IntoIter<MemberState> {
        handles(&table(), |_| true)
    }

    /// The partner with this alpha-2 code (exact, upper case), enabled or not.
    pub fn from_alpha2(code: &str) -> Option<MemberState> {
        table()
            .iter()
            .position(|row| row.info.alpha2 == code)
            .and_then(|i| u16::try_from(i).ok())
            .map(MemberState)
    }

    /// Installs a hub's partners file: adds its rows the process does not know yet, and makes
    /// exactly its enabled rows the enabled ones. A row already known must keep its alpha-3
    /// code (the identity of a handle never changes); its name and network may change. Returns
    /// the handles of the file's rows, in its order.
    pub fn install(partners: &PartnerTable) -> Result<Vec<MemberState>, ModelError> {
        let refused = |code: &str, message: String| ModelError::Data {
            file: "partners file".into(),
            line: 0,
            key: format!("partner.{code}"),
            message,
        };
        let mut rows = TABLE.write().unwrap_or_else(|e| e.into_inner());
        // Checked before anything changes, so that a refused file leaves the table as it was.
        for partner in partners.iter() {
            let same_code = rows.iter().find(|r| r.info.alpha2 == partner.code);
            let same_alpha3 = rows.iter().find(|r| r.info.alpha3 == partner.alpha3);
            match (same_code, same_alpha3) {
                (Some(row), _) if row.info.alpha3 != partner.alpha3 => {
                    return Err(refused(
                        &partner.code,
                        format!(
                            "{} is {} in this process, not {}",
                            partner.code, row.info.alpha3, partner.alpha3
                        ),
                    ));
                }
                (None, Some(row)) => {
                    return Err(refused(
                        &partner.code,
                        format!(
                            "{} is already the alpha-3 code of {}",
                            partner.alpha3, row.info.alpha2
                        ),
                    ));
                }
                _ => {}
            }
        }
        if rows.len() + partners.iter().count() > usize::from(u16::MAX) {
            return Err(refused("*", "too many partners".into()));
        }
        for row in rows.iter_mut() {
            row.enabled = false;
        }
        let mut out = Vec::new();
        for partner in partners.iter() {
            let at = match rows.iter().position(|r| r.info.alpha2 == partner.code) {
                Some(at) => {
                    let info = rows[at].info;
                    if info.name != partner.name || info.network != partner.network {
                        rows[at].info = leak(partner);
                    }
                    rows[at].enabled = partner.enabled;
                    at
                }
                None => {
                    rows.push(Row {
                        info: leak(partner),
                        enabled: partner.enabled,
                    });
                    rows.len() - 1
                }
            };
            // Bounded above: the table holds at most u16::MAX rows.
            out.extend(u16::try_from(at).ok().map(MemberState));
        }
        Ok(out)
    }

    /// The table row of this partner.
    pub fn info(self) -> &'static MemberStateInfo {
        // Invariant: handles are only made from indices of the table, which never shrinks.
        table()[usize::from(self.0)].info
    }

    /// True if the last installed partners file (or the shipped one) enables this partner.
    pub fn enabled(self) -> bool {
        table()[usize::from(self.0)].enabled
    }

    /// ISO 3166-1 alpha-2 code, e.g. `VN`.
    pub fn code(self) -> &'static str {
        self.info().alpha2
    }

    /// Lower-case alpha-2 code, as used in vhost names (`asw-vn`).
    pub fn lower(self) -> String {
        self.code().to_ascii_lowercase()
    }
}

impl FromStr for MemberState {
    type Err = ModelError;

    /// Accepts the alpha-2 code of any known partner, enabled or not, in either case.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        MemberState::from_alpha2(&s.to_ascii_uppercase())
            .ok_or_else(|| ModelError::UnknownMemberState(s.to_owned()))
    }
}

impl fmt::Display for MemberState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.code())
    }
}

impl fmt::Debug for MemberState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.code())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const ASEAN: [&str; 10] = ["BN", "KH", "ID", "LA", "MY", "MM", "PH", "SG", "TH", "VN"];

    #[test]
    fn the_shipped_rows_are_known_and_the_ten_enabled() {
        // Another test of this binary may install a file; the shipped rows stay known, first.
        let known: Vec<_> = MemberState::known().map(MemberState::code).collect();
        assert_eq!(
            &known[..17],
            [
                "BN", "KH", "ID", "LA", "MY", "MM", "PH", "SG", "TH", "VN", "TL", "KR", "AM", "BY",
                "KZ", "KG", "RU"
            ]
        );
        let mut alpha3: Vec<_> = MemberState::known().map(|m| m.info().alpha3).collect();
        alpha3.sort_unstable();
        alpha3.dedup();
        assert_eq!(alpha3.len(), known.len());
        let kr = MemberState::from_alpha2("KR").expect("KR is a shipped row");
        assert_eq!(
            (kr.info().alpha3, kr.info().name, kr.info().network),
            ("KOR", "Republic of Korea", "akfta")
        );
        assert_eq!(
            MemberState::from_alpha2("VN").map(|v| v.info().network),
            Some("asw")
        );
    }

    #[test]
    fn parses_either_case_and_rejects_others() {
        assert_eq!("vn".parse::<MemberState>().map(MemberState::code), Ok("VN"));
        assert_eq!(
            "TH".parse::<MemberState>().map(|m| m.lower()),
            Ok("th".to_owned())
        );
        // Known, though disabled as shipped.
        assert_eq!("tl".parse::<MemberState>().map(MemberState::code), Ok("TL"));
        assert_eq!(
            "XX".parse::<MemberState>(),
            Err(ModelError::UnknownMemberState("XX".into()))
        );
        assert!("".parse::<MemberState>().is_err());
        assert!("VNM".parse::<MemberState>().is_err());
    }

    /// The shipped file with KR enabled, and a row the shipped file does not have.
    fn deployment() -> PartnerTable {
        let kinds = KindRegistry::shipped().expect("kinds");
        let text = include_str!("../../../schemas/partners.toml")
            .split("[[partner]]")
            .map(|row| {
                if row.contains("\ncode = \"KR\"") {
                    row.replace("enabled = false", "enabled = true")
                } else {
                    row.to_owned()
                }
            })
            .collect::<Vec<_>>()
            .join("[[partner]]")
            + "\n[[partner]]\ncode = \"JP\"\nalpha3 = \"JPN\"\nname = \"Japan\"\n\
               network = \"ajcep\"\nenabled = true\nsends = [\"ephyto\"]\n\
               receives = [\"ephyto\"]\nchannel = \"ippc-hub\"\n";
        PartnerTable::parse("partners.toml", &text, &kinds).expect("parses")
    }

    /// One test installs, so that the other tests of this binary see the shipped flags (they
    /// only read what installing never changes: the known rows and their identity).
    #[test]
    fn installing_a_file_adds_its_rows_and_sets_which_are_enabled() {
        assert_eq!(
            MemberState::all()
                .map(MemberState::code)
                .collect::<Vec<_>>(),
            ASEAN,
            "as shipped"
        );
        assert!(MemberState::from_alpha2("JP").is_none());
        let installed = MemberState::install(&deployment()).expect("installs");
        let jp = MemberState::from_alpha2("JP").expect("now known");
        assert_eq!(installed.last(), Some(&jp));
        assert_eq!((jp.info().name, jp.info().network), ("Japan", "ajcep"));
        let kr = MemberState::from_alpha2("KR").expect("KR");
        assert!(kr.enabled() && jp.enabled());
        let enabled: Vec<_> = MemberState::all().map(MemberState::code).collect();
        assert_eq!(enabled[..10], ASEAN);
        assert_eq!(enabled[10..], ["KR", "JP"]);
        // Again: the same handles.
        assert_eq!(
            MemberState::install(&deployment()).expect("again"),
            installed
        );
        // A known code under another alpha-3, or a new code under a known alpha-3: refused,
        // and nothing changes.
        let kinds = KindRegistry::shipped().expect("kinds");
        let row = |code: &str, alpha3: &str| {
            let text = format!(
                "[[partner]]\ncode = \"{code}\"\nalpha3 = \"{alpha3}\"\nname = \"X\"\n\
                 network = \"x\"\nsends = []\nreceives = []\n"
            );
            PartnerTable::parse("partners.toml", &text, &kinds).expect("parses")
        };
        let err = MemberState::install(&row("KR", "KRR")).expect_err("alpha-3 changed");
        assert!(
            err.to_string().contains("KR is KOR in this process"),
            "{err}"
        );
        let err = MemberState::install(&row("QQ", "KOR")).expect_err("alpha-3 taken");
        assert!(
            err.to_string()
                .contains("KOR is already the alpha-3 code of KR"),
            "{err}"
        );
        assert!(MemberState::from_alpha2("QQ").is_none());
        assert!(kr.enabled());
        // The shipped file again: the ten enabled, the added row still known.
        MemberState::install(&PartnerTable::shipped(&kinds).expect("shipped")).expect("installs");
        assert_eq!(
            MemberState::all()
                .map(MemberState::code)
                .collect::<Vec<_>>(),
            ASEAN
        );
        assert!(!jp.enabled() && !kr.enabled());
        assert_eq!("jp".parse::<MemberState>(), Ok(jp));
    }
}
