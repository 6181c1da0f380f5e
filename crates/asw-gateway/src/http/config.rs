//! The `[metrics]` section: where the hub's HTTP server listens, and whether it asks for a
//! bearer token and speaks TLS. Parsed with every problem reported at once, like the rest of
//! the configuration.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use serde::Deserialize;
use sha2::{Digest, Sha256};

/// The address served when `[metrics]` gives none: loopback only.
pub const DEFAULT_LISTEN: SocketAddr =
    SocketAddr::new(std::net::IpAddr::V4(std::net::Ipv4Addr::LOCALHOST), 9464);

/// The shortest bearer token taken.
pub const MIN_TOKEN_CHARS: usize = 16;

/// The hub's HTTP server (`/metrics`, `/healthz`, `/readyz`, and the console's routes).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct MetricsConfig {
    /// Address (IP and port) to serve on; `None` (no `[metrics]` section): no server.
    pub listen: Option<SocketAddr>,
    /// The token `/metrics` asks for (`Authorization: Bearer`); not the health probes, nor the
    /// console, which logs people in itself.
    pub token: Option<BearerToken>,
    /// Certificate and key to serve HTTPS with; `None`: plain HTTP.
    pub tls: Option<TlsFiles>,
}

impl MetricsConfig {
    /// What `check-config` and the start of the hub warn about: a wildcard address.
    pub fn warnings(&self) -> Vec<String> {
        let mut warnings = Vec::new();
        if let Some(address) = self.listen
            && address.ip().is_unspecified()
        {
            let guard = match (&self.token, &self.tls) {
                (Some(_), Some(_)) => "",
                (Some(_), None) => " (a token, but in clear text: set cert and key)",
                (None, _) => {
                    " (and anyone who reaches it may read it: set token_file or token_env)"
                }
            };
            warnings.push(format!(
                "metrics.listen: {address} listens on every interface{guard}; bind a loopback or management address"
            ));
        }
        warnings
    }
}

/// A secret compared in constant time; its `Debug` does not show it.
#[derive(Clone, PartialEq, Eq)]
pub struct BearerToken {
    digest: [u8; 32],
}

impl BearerToken {
    /// The token `text`.
    pub fn new(text: &str) -> BearerToken {
        BearerToken {
            digest: Sha256::digest(text.as_bytes()).into(),
        }
    }

    /// Whether `presented` is the token. The digests of both are compared in constant time, so
    /// neither the content nor the length of the token leaks through timing.
    pub fn matches(&self, presented: &str) -> bool {
        let presented: [u8; 32] = Sha256::digest(presented.as_bytes()).into();
        openssl::memcmp::eq(&self.digest, &presented)
    }
}

impl std::fmt::Debug for BearerToken {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("BearerToken(<redacted>)")
    }
}

/// A PEM certificate (chain) and its private key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TlsFiles {
    /// The certificate chain, leaf first.
    pub cert: PathBuf,
    /// The private key (unencrypted PEM).
    pub key: PathBuf,
}

/// `[metrics]` as written.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawMetrics {
    listen: Option<String>,
    token_file: Option<PathBuf>,
    token_env: Option<String>,
    cert: Option<PathBuf>,
    key: Option<PathBuf>,
}

impl MetricsConfig {
    /// The section from its raw form; relative paths are taken from `base` (the folder of the
    /// configuration file). Each problem is pushed onto `problems`, naming its key.
    pub(crate) fn from_raw(
        raw: Option<RawMetrics>,
        base: &Path,
        problems: &mut Vec<String>,
    ) -> MetricsConfig {
        let Some(raw) = raw else {
            return MetricsConfig::default();
        };
        let resolve = |p: &Path| {
            if p.is_absolute() {
                p.to_owned()
            } else {
                base.join(p)
            }
        };
        let listen = match &raw.listen {
            None => Some(DEFAULT_LISTEN),
            Some(text) => match text.trim().parse::<SocketAddr>() {
                Ok(address) => Some(address),
                Err(_) => {
                    problems.push(format!(
                        "metrics.listen: {text:?} is not an IP address and port (127.0.0.1:9464)"
                    ));
                    None
                }
            },
        };
        let token_text = match (&raw.token_file, &raw.token_env) {
            (Some(_), Some(_)) => {
                problems.push("metrics: give token_file or token_env, not both".into());
                None
            }
            (Some(file), None) => {
                let path = resolve(file);
                match std::fs::read_to_string(&path) {
                    Ok(text) => Some(("metrics.token_file", text.trim().to_owned())),
                    Err(e) => {
                        problems.push(format!(
                            "metrics.token_file: cannot read {}: {e}",
                            path.display()
                        ));
                        None
                    }
                }
            }
            (None, Some(var)) => match std::env::var(var) {
                Ok(text) => Some(("metrics.token_env", text.trim().to_owned())),
                Err(_) => {
                    problems.push(format!(
                        "metrics.token_env: environment variable {var} is not set"
                    ));
                    None
                }
            },
            (None, None) => None,
        };
        let token = token_text.and_then(|(key, text)| {
            if text.chars().count() < MIN_TOKEN_CHARS {
                problems.push(format!(
                    "{key}: the token has fewer than {MIN_TOKEN_CHARS} characters"
                ));
                None
            } else if !text.bytes().all(|b| b.is_ascii_graphic()) {
                problems.push(format!(
                    "{key}: the token may hold only visible ASCII characters (no spaces)"
                ));
                None
            } else {
                Some(BearerToken::new(&text))
            }
        });
        let tls = match (&raw.cert, &raw.key) {
            (Some(cert), Some(key)) => {
                let files = TlsFiles {
                    cert: resolve(cert),
                    key: resolve(key),
                };
                for (name, path) in [("metrics.cert", &files.cert), ("metrics.key", &files.key)] {
                    if !path.is_file() {
                        problems.push(format!("{name}: {} is not a readable file", path.display()));
                    }
                }
                Some(files)
            }
            (None, None) => None,
            _ => {
                problems.push("metrics: give both cert and key for TLS, or neither".into());
                None
            }
        };
        MetricsConfig { listen, token, tls }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str, base: &Path) -> (MetricsConfig, Vec<String>) {
        let raw: RawMetrics = toml::from_str(text).expect("toml");
        let mut problems = Vec::new();
        let config = MetricsConfig::from_raw(Some(raw), base, &mut problems);
        (config, problems)
    }

    #[test]
    fn loopback_by_default_and_a_warning_for_a_wildcard() {
        let dir = tempfile::tempdir().expect("dir");
        let (config, problems) = parse("", dir.path());
        assert!(problems.is_empty(), "{problems:?}");
        assert_eq!(config.listen, Some(DEFAULT_LISTEN));
        assert!(config.warnings().is_empty());
        assert_eq!(
            MetricsConfig::from_raw(None, dir.path(), &mut Vec::new()).listen,
            None
        );
        for wildcard in ["0.0.0.0:9464", "[::]:9464"] {
            let (config, problems) = parse(&format!("listen = {wildcard:?}"), dir.path());
            assert!(problems.is_empty(), "{problems:?}");
            let warnings = config.warnings();
            assert_eq!(warnings.len(), 1, "{warnings:?}");
            assert!(
                warnings[0].starts_with(&format!(
                    "metrics.listen: {wildcard} listens on every interface"
                )),
                "{warnings:?}"
            );
            assert!(warnings[0].contains("token_file"), "{warnings:?}");
        }
    }

    #[test]
    fn the_token_comes_from_a_file_or_the_environment_and_is_compared_whole() {
        let dir = tempfile::tempdir().expect("dir");
        std::fs::write(dir.path().join("token"), "s3cret-token-0123456789\n").expect("write");
        let (config, problems) = parse("token_file = \"token\"", dir.path());
        assert!(problems.is_empty(), "{problems:?}");
        let token = config.token.expect("token");
        assert!(token.matches("s3cret-token-0123456789"));
        assert!(!token.matches("s3cret-token-012345678"));
        assert!(!token.matches("s3cret-token-0123456789\n"));
        assert!(!token.matches(""));
        assert_eq!(format!("{token:?}"), "BearerToken(<redacted>)");

        // SAFETY of the test: the variable name is unique to this test.
        let var = "ASWHUB_TEST_METRICS_TOKEN_7F3A";
        let (_, problems) = parse(&format!("token_env = {var:?}"), dir.path());
        assert_eq!(
            problems,
            [format!(
                "metrics.token_env: environment variable {var} is not set"
            )]
        );

        std::fs::write(dir.path().join("short"), "short").expect("write");
        std::fs::write(dir.path().join("spaced"), "with spaces inside it").expect("write");
        for (text, expected) in [
            (
                "token_file = \"short\"",
                "metrics.token_file: the token has fewer than 16 characters",
            ),
            (
                "token_file = \"spaced\"",
                "metrics.token_file: the token may hold only visible ASCII characters (no spaces)",
            ),
            (
                "token_file = \"token\"\ntoken_env = \"X\"",
                "metrics: give token_file or token_env, not both",
            ),
            (
                "cert = \"token\"",
                "metrics: give both cert and key for TLS, or neither",
            ),
            (
                "listen = \"localhost:9464\"",
                "metrics.listen: \"localhost:9464\" is not",
            ),
            (
                "token_file = \"missing\"",
                "metrics.token_file: cannot read ",
            ),
            ("cert = \"a.pem\"\nkey = \"token\"", "metrics.cert: "),
        ] {
            let (_, problems) = parse(text, dir.path());
            assert_eq!(problems.len(), 1, "{text}: {problems:?}");
            assert!(problems[0].starts_with(expected), "{text}: {problems:?}");
        }
        assert!(
            toml::from_str::<RawMetrics>("port = 1").is_err(),
            "unknown keys refused"
        );
    }
}
