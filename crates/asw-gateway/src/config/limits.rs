//! `[limits]` and `[retry]`: document reader limits, concurrency, and the back-off of
//! transient failures.

use asw_model::xml::Limits;
use asw_route::RetryPolicy;
use serde::Deserialize;

/// Limits.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LimitsConfig {
    /// Reader limits for documents.
    pub document: Limits,
    /// Worker threads for XML and signature work.
    pub workers: usize,
    /// Deliveries each pipeline works on at once (see [`crate::hub::LANES`], the default).
    pub lanes: usize,
}

/// The longest retry delay, in milliseconds (one day).
const MAX_RETRY_DELAY_MS: u32 = 86_400_000;

/// The most retry delays: each is a queue per pipeline stage on the broker.
const MAX_RETRY_DELAYS: usize = 20;

/// The most attempts of a delivery before it is parked.
const MAX_ATTEMPTS: u32 = 1_000;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub(super) struct RawLimits {
    max_document_bytes: usize,
    max_depth: usize,
    max_attributes: usize,
    max_namespaces: usize,
    max_namespaces_total: usize,
    max_name_bytes: usize,
    max_value_bytes: usize,
    max_nodes: usize,
    workers: usize,
    lanes: usize,
}

impl Default for RawLimits {
    fn default() -> Self {
        RawLimits {
            max_document_bytes: Limits::DEFAULT_MAX_BYTES,
            max_depth: Limits::DEFAULT_MAX_DEPTH,
            max_attributes: Limits::DEFAULT_MAX_ATTRIBUTES,
            max_namespaces: Limits::DEFAULT_MAX_NAMESPACES,
            max_namespaces_total: Limits::DEFAULT_MAX_NAMESPACES_TOTAL,
            max_name_bytes: Limits::DEFAULT_MAX_NAME_BYTES,
            max_value_bytes: Limits::DEFAULT_MAX_VALUE_BYTES,
            max_nodes: Limits::DEFAULT_MAX_NODES,
            workers: std::thread::available_parallelism().map_or(2, usize::from),
            lanes: crate::hub::LANES,
        }
    }
}

impl RawLimits {
    /// Every reader limit beyond max_document_bytes and max_depth out of its range, one problem
    /// each. The lower bounds leave room for the hub's own documents (8 namespace declarations,
    /// names of 26 bytes); the upper bounds keep the work per document linear and small in
    /// libxml2 and libxmlsec1 too.
    fn check_reader(&self, problems: &mut Vec<String>) {
        let mut between = |key: &str, value: usize, low: usize, high: usize| {
            if !(low..=high).contains(&value) {
                problems.push(format!(
                    "limits.{key}: {value} is not between {low} and {high}"
                ));
            }
        };
        between("max_attributes", self.max_attributes, 1, 256);
        between("max_namespaces", self.max_namespaces, 8, 256);
        between("max_namespaces_total", self.max_namespaces_total, 16, 4096);
        between("max_name_bytes", self.max_name_bytes, 64, 4096);
        between("max_value_bytes", self.max_value_bytes, 256, 1 << 20);
        between("max_nodes", self.max_nodes, 1000, 100_000_000);
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub(super) struct RawRetry {
    delays_ms: Vec<u32>,
    max_attempts: u32,
}

impl Default for RawRetry {
    fn default() -> Self {
        let policy = RetryPolicy::default();
        RawRetry {
            delays_ms: policy.delays_ms,
            max_attempts: policy.max_attempts,
        }
    }
}

/// Checks `[limits]`, pushing problems.
pub(super) fn check(raw: &RawLimits, problems: &mut Vec<String>) -> LimitsConfig {
    raw.check_reader(problems);
    if raw.workers == 0 || raw.workers > 256 {
        problems.push(format!(
            "limits.workers: {} is not between 1 and 256",
            raw.workers
        ));
    }
    if raw.lanes == 0 || raw.lanes > 1024 {
        problems.push(format!(
            "limits.lanes: {} is not between 1 and 1024",
            raw.lanes
        ));
    }
    if raw.max_document_bytes < 1024 {
        problems.push(format!(
            "limits.max_document_bytes: {} is below 1024",
            raw.max_document_bytes
        ));
    }
    if !(8..=256).contains(&raw.max_depth) {
        problems.push(format!(
            "limits.max_depth: {} is not between 8 and 256",
            raw.max_depth
        ));
    }
    LimitsConfig {
        document: Limits {
            max_bytes: raw.max_document_bytes,
            max_depth: raw.max_depth,
            max_attributes: raw.max_attributes,
            max_namespaces: raw.max_namespaces,
            max_namespaces_total: raw.max_namespaces_total,
            max_name_bytes: raw.max_name_bytes,
            max_value_bytes: raw.max_value_bytes,
            max_nodes: raw.max_nodes,
        },
        workers: raw.workers,
        lanes: raw.lanes,
    }
}

/// Checks `[retry]`, pushing problems.
pub(super) fn check_retry(raw: RawRetry, problems: &mut Vec<String>) -> RetryPolicy {
    if raw.delays_ms.is_empty() || raw.delays_ms.len() > MAX_RETRY_DELAYS {
        problems.push(format!(
            "retry.delays_ms: {} delays is not between 1 and {MAX_RETRY_DELAYS}",
            raw.delays_ms.len()
        ));
    }
    for delay in &raw.delays_ms {
        if !(1..=MAX_RETRY_DELAY_MS).contains(delay) {
            problems.push(format!(
                "retry.delays_ms: {delay} is not between 1 and {MAX_RETRY_DELAY_MS} (one day)"
            ));
        }
    }
    if raw.delays_ms.windows(2).any(|w| w[0] >= w[1]) {
        problems.push("retry.delays_ms: delays must increase".into());
    }
    if !(1..=MAX_ATTEMPTS).contains(&raw.max_attempts) {
        problems.push(format!(
            "retry.max_attempts: {} is not between 1 and {MAX_ATTEMPTS}",
            raw.max_attempts
        ));
    }
    RetryPolicy {
        delays_ms: raw.delays_ms,
        max_attempts: raw.max_attempts,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::HubConfig;
    use crate::config::tests::{GOOD, setup};

    #[test]
    fn lanes_default_to_the_hub_constant_and_must_be_between_1_and_1024() {
        let dir = setup();
        let file = dir.path().join("hub.toml");
        let config = HubConfig::parse(GOOD, &file).expect("valid");
        assert_eq!(config.limits.lanes, crate::hub::LANES);
        let few = format!("{GOOD}[limits]\nlanes = 8\n");
        assert_eq!(
            HubConfig::parse(&few, &file).expect("valid").limits.lanes,
            8
        );
        for bad in [0, 1025] {
            let text = format!("{GOOD}[limits]\nlanes = {bad}\n");
            let err = HubConfig::parse(&text, &file).expect_err("invalid");
            assert!(
                err.to_string()
                    .contains(&format!("limits.lanes: {bad} is not between 1 and 1024")),
                "{err}"
            );
        }
    }

    #[test]
    fn document_limits_have_defaults_are_read_and_checked() {
        let dir = setup();
        let file = dir.path().join("hub.toml");
        let config = HubConfig::parse(GOOD, &file).expect("valid");
        assert_eq!(config.limits.document, Limits::default());
        let set = format!(
            "{GOOD}[limits]\nmax_document_bytes = 2000000\nmax_depth = 16\nmax_attributes = 8\nmax_namespaces = 10\nmax_namespaces_total = 20\nmax_name_bytes = 100\nmax_value_bytes = 1000\nmax_nodes = 50000\n"
        );
        assert_eq!(
            HubConfig::parse(&set, &file)
                .expect("valid")
                .limits
                .document,
            Limits {
                max_bytes: 2_000_000,
                max_depth: 16,
                max_attributes: 8,
                max_namespaces: 10,
                max_namespaces_total: 20,
                max_name_bytes: 100,
                max_value_bytes: 1000,
                max_nodes: 50_000,
            }
        );
        let bad = format!(
            "{GOOD}[limits]\nmax_document_bytes = 10\nmax_depth = 7\nmax_attributes = 0\nmax_namespaces = 257\nmax_namespaces_total = 15\nmax_name_bytes = 4097\nmax_value_bytes = 255\nmax_nodes = 999\n"
        );
        let err = HubConfig::parse(&bad, &file).expect_err("invalid");
        let text = err.to_string();
        assert_eq!(err.problems.len(), 8, "{text}");
        for problem in [
            "limits.max_document_bytes: 10 is below 1024",
            "limits.max_depth: 7 is not between 8 and 256",
            "limits.max_attributes: 0 is not between 1 and 256",
            "limits.max_namespaces: 257 is not between 8 and 256",
            "limits.max_namespaces_total: 15 is not between 16 and 4096",
            "limits.max_name_bytes: 4097 is not between 64 and 4096",
            "limits.max_value_bytes: 255 is not between 256 and 1048576",
            "limits.max_nodes: 999 is not between 1000 and 100000000",
        ] {
            assert!(
                err.problems.iter().any(|p| p == problem),
                "{problem}: {text}"
            );
        }
    }
}
