//! `[metrics]`: where the hub serves its HTTP endpoints (`/metrics`, `/healthz`, `/readyz`),
//! with its token and TLS; the section is read by [`crate::http::config`].

use std::path::Path;

pub use crate::http::config::MetricsConfig;
pub(super) use crate::http::config::RawMetrics;

/// Checks `[metrics]` (absent: no endpoint), pushing problems.
pub(super) fn check(
    raw: Option<RawMetrics>,
    base: &Path,
    problems: &mut Vec<String>,
) -> MetricsConfig {
    MetricsConfig::from_raw(raw, base, problems)
}

#[cfg(test)]
mod tests {
    use crate::config::HubConfig;
    use crate::config::tests::{GOOD, setup};

    #[test]
    fn metrics_are_off_by_default_and_need_an_ip_and_port() {
        let dir = setup();
        let file = dir.path().join("hub.toml");
        let config = HubConfig::parse(GOOD, &file).expect("valid");
        assert_eq!(config.metrics.listen, None);
        let on = format!("{GOOD}[metrics]\nlisten = \"127.0.0.1:9464\"\n");
        let config = HubConfig::parse(&on, &file).expect("valid");
        assert_eq!(
            config.metrics.listen,
            Some(std::net::SocketAddr::from(([127, 0, 0, 1], 9464)))
        );
        let v6 = format!("{GOOD}[metrics]\nlisten = \"[::1]:0\"\n");
        assert!(HubConfig::parse(&v6, &file).is_ok());
        for bad in ["localhost:9464", "127.0.0.1", "127.0.0.1:99999", ""] {
            let text = format!("{GOOD}[metrics]\nlisten = \"{bad}\"\n");
            let err = HubConfig::parse(&text, &file).expect_err(bad);
            assert_eq!(err.problems.len(), 1, "{err}");
            assert!(
                err.problems[0].starts_with(&format!("metrics.listen: {bad:?} is not")),
                "{err}"
            );
        }
        let unknown = format!("{GOOD}[metrics]\nlisten = \"127.0.0.1:1\"\nport = 1\n");
        assert!(HubConfig::parse(&unknown, &file).is_err());
    }
}
