//! `[console]`: the operator console on the hub's HTTP server (the server of `[metrics]`): its
//! accounts file, its audit log and how long a session lasts. The section's presence turns the
//! console on; `listen` may name the server's address when `[metrics]` does not.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::Deserialize;

/// How long a console session lasts when the section does not say.
pub const DEFAULT_SESSION: Duration = Duration::from_secs(8 * 3600);

/// The operator console, when configured.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConsoleConfig {
    /// The accounts file (`aswctl console user add` writes it): names, roles, argon2id hashes.
    pub users: PathBuf,
    /// The audit log (JSON lines): every action asked for, done or refused.
    pub audit_log: PathBuf,
    /// How long a login lasts.
    pub session: Duration,
}

/// `[console]` as written.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawConsole {
    listen: Option<String>,
    users: Option<PathBuf>,
    audit_log: Option<PathBuf>,
    session: Option<String>,
}

/// Checks `[console]` against `[metrics]` (one HTTP server serves both): returns the console
/// and the listen address `[console]` gives the server when `[metrics]` gives none.
pub(super) fn check(
    raw: Option<RawConsole>,
    metrics_listen: Option<SocketAddr>,
    metrics_section: bool,
    base: &Path,
    problems: &mut Vec<String>,
) -> (Option<ConsoleConfig>, Option<SocketAddr>) {
    let Some(raw) = raw else {
        return (None, None);
    };
    let resolve = |p: &Path| {
        if p.is_absolute() {
            p.to_owned()
        } else {
            base.join(p)
        }
    };
    let mut listen = None;
    if let Some(text) = &raw.listen {
        match text.trim().parse::<SocketAddr>() {
            Ok(address) if metrics_section && metrics_listen != Some(address) => {
                problems.push(format!(
                    "console.listen: {address} differs from metrics.listen; the console is served by the same server: give one address"
                ));
            }
            Ok(address) => listen = Some(address),
            Err(_) => problems.push(format!(
                "console.listen: {text:?} is not an IP address and port (127.0.0.1:9464)"
            )),
        }
    }
    let session = match &raw.session {
        None => DEFAULT_SESSION,
        Some(text) => match humantime::parse_duration(text) {
            Ok(d) if d >= Duration::from_secs(60) => d,
            _ => {
                problems.push(format!(
                    "console.session: {text:?} is not a duration of a minute or more (8h, 30m)"
                ));
                DEFAULT_SESSION
            }
        },
    };
    let console = ConsoleConfig {
        users: resolve(
            raw.users
                .as_deref()
                .unwrap_or(Path::new("console-users.toml")),
        ),
        audit_log: resolve(
            raw.audit_log
                .as_deref()
                .unwrap_or(Path::new("console-audit.jsonl")),
        ),
        session,
    };
    (Some(console), listen)
}

#[cfg(test)]
mod tests {
    use crate::config::HubConfig;
    use crate::config::tests::{GOOD, setup};

    #[test]
    fn the_console_is_off_by_default_and_shares_the_metrics_server() {
        let dir = setup();
        let file = dir.path().join("hub.toml");
        let config = HubConfig::parse(GOOD, &file).expect("valid");
        assert_eq!(config.console, None);
        // [console] alone turns the server on, at its listen address or the default.
        let on = format!("{GOOD}[console]\nlisten = \"127.0.0.1:9555\"\nsession = \"30m\"\n");
        let config = HubConfig::parse(&on, &file).expect("valid");
        assert_eq!(config.metrics.listen, "127.0.0.1:9555".parse().ok());
        let console = config.console.expect("console");
        assert_eq!(console.users, dir.path().join("console-users.toml"));
        assert_eq!(console.audit_log, dir.path().join("console-audit.jsonl"));
        assert_eq!(console.session, std::time::Duration::from_secs(1800));
        let same = format!(
            "{GOOD}[metrics]\nlisten = \"127.0.0.1:9464\"\n[console]\nlisten = \"127.0.0.1:9464\"\n"
        );
        assert!(HubConfig::parse(&same, &file).is_ok());
        for (extra, says) in [
            (
                "[metrics]\nlisten = \"127.0.0.1:9464\"\n[console]\nlisten = \"127.0.0.1:9555\"\n",
                "console.listen: 127.0.0.1:9555 differs from metrics.listen",
            ),
            ("[console]\nsession = \"5s\"\n", "console.session: \"5s\""),
            (
                "[console]\nlisten = \"nowhere\"\n",
                "console.listen: \"nowhere\"",
            ),
        ] {
            let err = HubConfig::parse(&format!("{GOOD}{extra}"), &file).expect_err(extra);
            assert!(
                err.problems.iter().any(|p| p.starts_with(says)),
                "{extra}: {err}"
            );
        }
    }
}
