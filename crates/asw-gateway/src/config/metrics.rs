//! `[metrics]`: where the hub serves its Prometheus metrics.

use serde::Deserialize;

/// The Prometheus metrics endpoint (`GET /metrics`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct MetricsConfig {
    /// Address (IP and port) to serve on; `None` (no `[metrics]` section): no endpoint.
    pub listen: Option<std::net::SocketAddr>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawMetrics {
    listen: String,
}

/// Checks `[metrics]` (absent: no endpoint), pushing problems.
pub(super) fn check(raw: Option<RawMetrics>, problems: &mut Vec<String>) -> MetricsConfig {
    MetricsConfig {
        listen: raw.and_then(|m| match m.listen.trim().parse::<std::net::SocketAddr>() {
            Ok(address) => Some(address),
            Err(_) => {
                problems.push(format!(
                    "metrics.listen: {:?} is not an IP address and port (127.0.0.1:9464)",
                    m.listen
                ));
                None
            }
        }),
    }
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
