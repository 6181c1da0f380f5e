//! The member states connected to the ASW, kept as data so a new one (Timor-Leste) is one row.

use std::fmt;
use std::str::FromStr;

use crate::ModelError;

/// One member state as the ASW knows it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MemberStateInfo {
    /// ISO 3166-1 alpha-2 code, the identity used everywhere in aswhub.
    pub alpha2: &'static str,
    /// ISO 3166-1 alpha-3 code.
    pub alpha3: &'static str,
    /// Short English name.
    pub name: &'static str,
}

/// The member states connected to the ASW, in the order ASEAN lists them.
pub const MEMBER_STATES: &[MemberStateInfo] = &[
    MemberStateInfo {
        alpha2: "BN",
        alpha3: "BRN",
        name: "Brunei Darussalam",
    },
    MemberStateInfo {
        alpha2: "KH",
        alpha3: "KHM",
        name: "Cambodia",
    },
    MemberStateInfo {
        alpha2: "ID",
        alpha3: "IDN",
        name: "Indonesia",
    },
    MemberStateInfo {
        alpha2: "LA",
        alpha3: "LAO",
        name: "Lao PDR",
    },
    MemberStateInfo {
        alpha2: "MY",
        alpha3: "MYS",
        name: "Malaysia",
    },
    MemberStateInfo {
        alpha2: "MM",
        alpha3: "MMR",
        name: "Myanmar",
    },
    MemberStateInfo {
        alpha2: "PH",
        alpha3: "PHL",
        name: "Philippines",
    },
    MemberStateInfo {
        alpha2: "SG",
        alpha3: "SGP",
        name: "Singapore",
    },
    MemberStateInfo {
        alpha2: "TH",
        alpha3: "THA",
        name: "Thailand",
    },
    MemberStateInfo {
        alpha2: "VN",
        alpha3: "VNM",
        name: "Viet Nam",
    },
];

/// A member state of the ASW; only values from [`MEMBER_STATES`] can be built.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct MemberState(u8);

impl MemberState {
    /// Every member state, in table order.
    pub fn all() -> impl Iterator<Item = MemberState> {
        (0..MEMBER_STATES.len()).map(|i| MemberState(i as u8))
    }

    /// The member state with this alpha-2 code (exact, upper case).
    pub fn from_alpha2(code: &str) -> Option<MemberState> {
        MEMBER_STATES
            .iter()
            .position(|m| m.alpha2 == code)
            .map(|i| MemberState(i as u8))
    }

    /// The table row of this member state.
    pub fn info(self) -> &'static MemberStateInfo {
        &MEMBER_STATES[usize::from(self.0)]
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

    /// Accepts the alpha-2 code in either case.
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

    #[test]
    fn ten_states_with_unique_codes() {
        let codes: Vec<_> = MemberState::all().map(MemberState::code).collect();
        assert_eq!(
            codes,
            ["BN", "KH", "ID", "LA", "MY", "MM", "PH", "SG", "TH", "VN"]
        );
        let mut alpha3: Vec<_> = MEMBER_STATES.iter().map(|m| m.alpha3).collect();
        alpha3.sort_unstable();
        alpha3.dedup();
        assert_eq!(alpha3.len(), MEMBER_STATES.len());
    }

    #[test]
    fn parses_either_case_and_rejects_others() {
        assert_eq!("vn".parse::<MemberState>().map(MemberState::code), Ok("VN"));
        assert_eq!(
            "TH".parse::<MemberState>().map(|m| m.lower()),
            Ok("th".to_owned())
        );
        assert_eq!(
            "TL".parse::<MemberState>(),
            Err(ModelError::UnknownMemberState("TL".into()))
        );
        assert!("".parse::<MemberState>().is_err());
        assert!("VNM".parse::<MemberState>().is_err());
    }
}
