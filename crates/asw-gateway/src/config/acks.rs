//! `[acks]`: what the hub does about receipts that do not come, and the duration syntax.

use serde::Deserialize;

/// Receipts that do not come: after `timeout`, an outbound e-Form D or ACDD queued or sent to a
/// partner moves to `awaiting-ack` and the back-office gets an `awaiting-ack` outcome; it is
/// resent (same bytes, same id) up to `resend` times, `timeout` apart.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AcksConfig {
    /// How long a receipt may take, from queued or sent (and from each resend).
    pub timeout: std::time::Duration,
    /// Automatic resends at most, in total across hubs sharing the journal (0: never).
    pub resend: u32,
    /// How often the hub looks for overdue documents.
    pub check_every: std::time::Duration,
}

impl AcksConfig {
    /// The default timeout: 15 minutes.
    pub const DEFAULT_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(15 * 60);
    /// The default check interval: 30 seconds.
    pub const DEFAULT_CHECK_EVERY: std::time::Duration = std::time::Duration::from_secs(30);
}

impl Default for AcksConfig {
    /// A 15 minute timeout, no resend, a check every 30 seconds.
    fn default() -> AcksConfig {
        AcksConfig {
            timeout: AcksConfig::DEFAULT_TIMEOUT,
            resend: 0,
            check_every: AcksConfig::DEFAULT_CHECK_EVERY,
        }
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub(super) struct RawAcks {
    timeout: String,
    resend: u32,
    check_every: String,
}

impl Default for RawAcks {
    fn default() -> Self {
        RawAcks {
            timeout: "15m".into(),
            resend: 0,
            check_every: "30s".into(),
        }
    }
}

/// The most resends a configuration may ask for.
const MAX_RESENDS: u32 = 100;

/// The longest `acks.timeout` and `acks.check_every`: both are added to and subtracted from
/// clock readings, so the bound keeps that arithmetic far from overflow.
const MAX_ACK_DURATION: std::time::Duration = std::time::Duration::from_secs(30 * 86_400);

/// A duration written as a whole number and a unit: `500ms`, `30s`, `15m`, `2h`, `1d`.
pub(super) fn parse_duration(text: &str) -> Result<std::time::Duration, String> {
    let text = text.trim();
    // One whole number and one unit of ours; humantime does the arithmetic.
    let split = text
        .find(|c: char| !c.is_ascii_digit())
        .ok_or_else(|| format!("{text:?} has no unit (ms, s, m, h or d)"))?;
    let unit = &text[split..];
    if split == 0 {
        return Err(format!("{text:?} does not start with a whole number"));
    }
    if !matches!(unit, "ms" | "s" | "m" | "h" | "d") {
        return Err(format!("{text:?}: unit {unit:?} is not ms, s, m, h or d"));
    }
    let too_long = || format!("{text:?} is too long");
    match humantime::parse_duration(text) {
        // Durations are counted in milliseconds: one that does not fit is too long.
        Ok(d) if u64::try_from(d.as_millis()).is_err() => Err(too_long()),
        Ok(d) => Ok(d),
        // humantime counts in nanoseconds; what fits in milliseconds is still a duration (the
        // caller's bounds then refuse it), what does not is too long.
        Err(humantime::DurationError::NumberOverflow) => {
            let n: u64 = text[..split].parse().map_err(|_| too_long())?;
            let per_unit = humantime::parse_duration(&format!("1{unit}"))
                .ok()
                .and_then(|d| u64::try_from(d.as_millis()).ok())
                .ok_or_else(too_long)?;
            n.checked_mul(per_unit)
                .map(std::time::Duration::from_millis)
                .ok_or_else(too_long)
        }
        Err(e) => Err(format!("{text:?}: {e}")),
    }
}

/// Checks `[acks]`, pushing problems.
pub(super) fn check(raw: &RawAcks, problems: &mut Vec<String>) -> AcksConfig {
    let mut duration = |key: &str, text: &str| match parse_duration(text) {
        Ok(d) if d.is_zero() || d > MAX_ACK_DURATION => {
            problems.push(format!("{key}: {text:?} is not between 1ms and 30d"));
            None
        }
        Ok(d) => Some(d),
        Err(e) => {
            problems.push(format!("{key}: {e}"));
            None
        }
    };
    let ack_timeout = duration("acks.timeout", &raw.timeout);
    let check_every = duration("acks.check_every", &raw.check_every);
    if raw.resend > MAX_RESENDS {
        problems.push(format!(
            "acks.resend: {} is above {MAX_RESENDS}",
            raw.resend
        ));
    }
    AcksConfig {
        timeout: ack_timeout.unwrap_or(AcksConfig::DEFAULT_TIMEOUT),
        resend: raw.resend,
        check_every: check_every.unwrap_or(AcksConfig::DEFAULT_CHECK_EVERY),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::HubConfig;
    use crate::config::tests::{GOOD, setup};

    #[test]
    fn acks_have_defaults_take_short_durations_and_refuse_bad_values() {
        let dir = setup();
        let file = dir.path().join("hub.toml");
        let config = HubConfig::parse(GOOD, &file).expect("valid");
        assert_eq!(config.acks, AcksConfig::default());
        let short =
            format!("{GOOD}[acks]\ntimeout = \"2s\"\nresend = 2\ncheck_every = \"250ms\"\n");
        let config = HubConfig::parse(&short, &file).expect("valid");
        assert_eq!(
            config.acks,
            AcksConfig {
                timeout: std::time::Duration::from_secs(2),
                resend: 2,
                check_every: std::time::Duration::from_millis(250),
            }
        );
        let bad = format!("{GOOD}[acks]\ntimeout = \"15\"\nresend = 101\ncheck_every = \"0s\"\n");
        let err = HubConfig::parse(&bad, &file).expect_err("invalid");
        let text = err.to_string();
        assert_eq!(err.problems.len(), 3, "{text}");
        assert!(text.contains("acks.timeout: \"15\" has no unit"), "{text}");
        assert!(text.contains("acks.resend: 101 is above 100"), "{text}");
        assert!(
            text.contains("acks.check_every: \"0s\" is not between 1ms and 30d"),
            "{text}"
        );
        assert_eq!(
            parse_duration("15m"),
            Ok(std::time::Duration::from_secs(900))
        );
        assert!(parse_duration("1w").is_err());
        assert!(parse_duration("s").is_err());
    }
}
