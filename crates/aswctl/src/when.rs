//! Times on the command line: an RFC 3339 instant (`2026-11-25T08:00:00Z`) or a duration counted
//! back from now (`90s`, `30m`, `2h`, `7d`, `2w`, `1h30m`).

use std::fmt;
use std::str::FromStr;

use time::format_description::well_known::Rfc3339;
use time::{Duration, OffsetDateTime};

/// An instant given either as a time or as how long ago.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum When {
    /// This instant.
    At(OffsetDateTime),
    /// This long before the command runs.
    Ago(Duration),
}

impl When {
    /// The instant, with `now` the time the command started.
    pub fn resolve(self, now: OffsetDateTime) -> OffsetDateTime {
        match self {
            When::At(t) => t,
            When::Ago(d) => now - d,
        }
    }
}

impl FromStr for When {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        if let Ok(t) = OffsetDateTime::parse(s, &Rfc3339) {
            return Ok(When::At(t));
        }
        parse_duration(s).map(When::Ago).map_err(|_| {
            format!(
                "{s:?} is neither an RFC 3339 time (2026-11-25T08:00:00Z) nor a duration (30m, 2h, 7d)"
            )
        })
    }
}

/// A duration such as `7d`, given on its own (`--older-than`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Age(pub Duration);

impl FromStr for Age {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        parse_duration(s).map(Age)
    }
}

impl fmt::Display for Age {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}s", self.0.whole_seconds())
    }
}

/// Parses `90s`, `30m`, `2h`, `7d`, `2w` and sums like `1h30m`. Units: s, m, h, d, w; no
/// spaces, signs or other units (humantime, which does the arithmetic, would take more).
pub fn parse_duration(s: &str) -> Result<Duration, String> {
    let bad = || format!("{s:?} is not a duration such as 90s, 30m, 2h, 7d or 1h30m");
    let text = s.trim();
    let unit = |c: char| matches!(c, 's' | 'm' | 'h' | 'd' | 'w');
    let mut previous = None;
    for c in text.chars() {
        let well_placed = if c.is_ascii_digit() {
            true
        } else {
            // A unit follows a digit, and one unit ends each part.
            unit(c) && previous.is_some_and(|p: char| p.is_ascii_digit())
        };
        if !well_placed {
            return Err(bad());
        }
        previous = Some(c);
    }
    if !previous.is_some_and(unit) {
        return Err(bad());
    }
    let std = humantime::parse_duration(text).map_err(|_| bad())?;
    Duration::try_from(std).map_err(|_| bad())
}

/// An instant as RFC 3339 with its full precision (UTC as the journal returns it), for JSON and
/// detail views.
pub fn rfc3339(t: OffsetDateTime) -> String {
    asw_model::document::format_timestamp(t)
}

/// An instant in UTC to the second, fixed width (`2026-11-25T08:00:00Z`), for table columns.
pub fn short(t: OffsetDateTime) -> String {
    let t = t.to_offset(time::UtcOffset::UTC);
    format!(
        "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}Z",
        t.year(),
        u8::from(t.month()),
        t.day(),
        t.hour(),
        t.minute(),
        t.second()
    )
}

#[cfg(test)]
mod tests {
    use time::macros::datetime;

    use super::*;

    #[test]
    fn durations() {
        assert_eq!(parse_duration("90s"), Ok(Duration::seconds(90)));
        assert_eq!(parse_duration("30m"), Ok(Duration::minutes(30)));
        assert_eq!(parse_duration("2h"), Ok(Duration::hours(2)));
        assert_eq!(parse_duration("7d"), Ok(Duration::days(7)));
        assert_eq!(parse_duration("2w"), Ok(Duration::days(14)));
        assert_eq!(parse_duration("1h30m"), Ok(Duration::minutes(90)));
        for bad in [
            "",
            "h",
            "7",
            "7x",
            "-7d",
            "7 d",
            "d7",
            "99999999999999999999d",
        ] {
            assert!(parse_duration(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn instants_and_ago() {
        let now = datetime!(2026-11-25 12:00 UTC);
        let at: When = "2026-11-25T08:00:00+07:00".parse().expect("RFC 3339");
        assert_eq!(at.resolve(now), datetime!(2026-11-25 01:00 UTC));
        let ago: When = "2h".parse().expect("duration");
        assert_eq!(ago.resolve(now), datetime!(2026-11-25 10:00 UTC));
        assert_eq!(
            short(datetime!(2026-11-25 08:00:00.123456 +07:00)),
            "2026-11-25T01:00:00Z"
        );
        let err = "yesterday".parse::<When>().expect_err("neither");
        assert!(err.contains("RFC 3339"), "{err}");
    }
}
