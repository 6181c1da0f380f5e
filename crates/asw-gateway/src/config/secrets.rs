//! Secrets and TLS files of every section: a password, key or passphrase given inline, in a
//! file (`*_file`) or in the environment (`*_env`); `ca`, `cert`, `key` of a connection. An inline
//! secret is a warning (`check-config` prints it), never an error.

use std::path::{Path, PathBuf};

use asw_tls::TlsFiles;
use serde::Deserialize;

use super::resolve;

/// What the problems and warnings of a check go into.
pub(super) struct Findings {
    /// Problems: the configuration cannot be used.
    pub(super) problems: Vec<String>,
    /// Warnings: it can, but should not be, like this.
    pub(super) warnings: Vec<String>,
}

/// A secret read from one of `key`, `key_file`, `key_env` (`key` names the setting, e.g.
/// `partners.TH.password`); `None` when none is given or it cannot be read (a problem).
pub(super) fn secret(
    key: &str,
    inline: Option<String>,
    file: Option<&PathBuf>,
    env: Option<&String>,
    base: &Path,
    findings: &mut Findings,
) -> Option<String> {
    match (inline, file, env) {
        (None, None, None) => None,
        (Some(value), None, None) => {
            findings.warnings.push(format!(
                "{key}: the secret is inline in the configuration; use {key}_file or {key}_env"
            ));
            Some(value)
        }
        (None, Some(path), None) => {
            let path = resolve(base, path);
            match std::fs::read_to_string(&path) {
                Ok(text) => {
                    let value = text.trim_end_matches(['\n', '\r']).to_owned();
                    if value.is_empty() {
                        findings
                            .problems
                            .push(format!("{key}_file: {} is empty", path.display()));
                        return None;
                    }
                    Some(value)
                }
                Err(e) => {
                    findings
                        .problems
                        .push(format!("{key}_file: cannot read {}: {e}", path.display()));
                    None
                }
            }
        }
        (None, None, Some(var)) => match std::env::var(var) {
            Ok(value) if !value.is_empty() => Some(value),
            _ => {
                findings
                    .problems
                    .push(format!("{key}_env: environment variable {var} is not set"));
                None
            }
        },
        _ => {
            findings
                .problems
                .push(format!("{key}: give one of {key}, {key}_file, {key}_env"));
            None
        }
    }
}

/// The TLS keys a connection's section may carry.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawTls {
    /// PEM CA certificates that sign the server's certificate.
    pub(super) ca: Option<PathBuf>,
    /// PEM client certificate.
    pub(super) cert: Option<PathBuf>,
    /// PEM private key of `cert`.
    pub(super) key: Option<PathBuf>,
    /// Passphrase of an encrypted `key`, inline.
    pub(super) key_passphrase: Option<String>,
    /// ... in a file.
    pub(super) key_passphrase_file: Option<PathBuf>,
    /// ... in an environment variable.
    pub(super) key_passphrase_env: Option<String>,
}

impl RawTls {
    /// The files, resolved against `base`; the section is `prefix` (`broker`, `partners.TH`).
    /// Whether they parse is `preflight`'s to check.
    pub(super) fn check(self, prefix: &str, base: &Path, findings: &mut Findings) -> TlsFiles {
        let key_passphrase = secret(
            &format!("{prefix}.key_passphrase"),
            self.key_passphrase,
            self.key_passphrase_file.as_ref(),
            self.key_passphrase_env.as_ref(),
            base,
            findings,
        );
        let files = TlsFiles {
            ca: self.ca.map(|p| resolve(base, &p)),
            cert: self.cert.map(|p| resolve(base, &p)),
            key: self.key.map(|p| resolve(base, &p)),
            key_passphrase,
        };
        for (name, path) in [
            ("ca", &files.ca),
            ("cert", &files.cert),
            ("key", &files.key),
        ] {
            if let Some(path) = path
                && !path.is_file()
            {
                findings.problems.push(format!(
                    "{prefix}.{name}: {} is not a readable file",
                    path.display()
                ));
            }
        }
        if files.cert.is_some() != files.key.is_some() {
            findings
                .problems
                .push(format!("{prefix}: give both cert and key, or neither"));
        }
        files
    }
}

/// Whether a URL's host is the loopback interface (`localhost`, `127.x.x.x`, `::1`).
pub(super) fn on_loopback(url: &str) -> bool {
    match url::Url::parse(url)
        .ok()
        .and_then(|u| u.host().map(|h| h.to_owned()))
    {
        // Hosts of schemes the url crate does not know (amqp) come as opaque names.
        Some(url::Host::Domain(name)) => {
            name.eq_ignore_ascii_case("localhost")
                || name
                    .trim_start_matches('[')
                    .trim_end_matches(']')
                    .parse::<std::net::IpAddr>()
                    .is_ok_and(|ip| ip.is_loopback())
        }
        Some(url::Host::Ipv4(ip)) => ip.is_loopback(),
        Some(url::Host::Ipv6(ip)) => ip.is_loopback(),
        None => false,
    }
}

/// `url` with `password` set for its user (the URL must name the user).
pub(super) fn with_password(url: &str, password: &str) -> Result<String, String> {
    let mut parsed = url::Url::parse(url).map_err(|e| e.to_string())?;
    if parsed.username().is_empty() {
        return Err("names no user to give the password to".into());
    }
    parsed
        .set_password(Some(password))
        .map_err(|()| "cannot carry a password".to_owned())?;
    Ok(parsed.to_string())
}

/// Whether a URL carries a password.
pub(super) fn has_password(url: &str) -> bool {
    url::Url::parse(url).is_ok_and(|u| u.password().is_some())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secrets_come_from_one_place_and_inline_ones_are_warned_about() {
        let dir = tempfile::tempdir().expect("dir");
        std::fs::write(dir.path().join("pw"), "from-a-file\n").expect("write");
        std::fs::write(dir.path().join("empty"), "").expect("write");
        // SAFETY of the test: a variable name no other test uses.
        let var = "ASWHUB_TEST_SECRET_8b1f".to_owned();
        let mut findings = Findings {
            problems: Vec::new(),
            warnings: Vec::new(),
        };
        let base = dir.path();
        let file = PathBuf::from("pw");
        assert_eq!(
            secret("x.password", None, Some(&file), None, base, &mut findings).as_deref(),
            Some("from-a-file")
        );
        assert!(findings.problems.is_empty() && findings.warnings.is_empty());
        assert_eq!(
            secret(
                "x.password",
                Some("inline".into()),
                None,
                None,
                base,
                &mut findings
            )
            .as_deref(),
            Some("inline")
        );
        assert_eq!(
            findings.warnings,
            [
                "x.password: the secret is inline in the configuration; use x.password_file or \
              x.password_env"
            ]
        );
        assert_eq!(
            secret("x.password", None, None, Some(&var), base, &mut findings),
            None
        );
        let empty = PathBuf::from("empty");
        assert_eq!(
            secret("x.password", None, Some(&empty), None, base, &mut findings),
            None
        );
        assert_eq!(
            secret(
                "x.password",
                Some("a".into()),
                Some(&file),
                None,
                base,
                &mut findings
            ),
            None
        );
        assert_eq!(
            findings.problems,
            [
                format!("x.password_env: environment variable {var} is not set"),
                format!("x.password_file: {} is empty", base.join("empty").display()),
                "x.password: give one of x.password, x.password_file, x.password_env".into(),
            ]
        );
    }

    #[test]
    fn loopback_and_passwords_in_urls() {
        for url in [
            "amqp://guest@127.0.0.1:5672/x",
            "amqps://guest@localhost/x",
            "amqp://[::1]/x",
            "http://127.0.0.2:15672",
        ] {
            assert!(on_loopback(url), "{url}");
        }
        for url in [
            "amqp://guest@10.0.0.1/x",
            "amqps://broker.example/x",
            "nonsense",
        ] {
            assert!(!on_loopback(url), "{url}");
        }
        let url = with_password("amqps://aswhub@h:5671/asw-vn", "p@ss:w/rd").expect("set");
        assert!(has_password(&url));
        assert_eq!(asw_model::redact::url(&url), "amqps://aswhub@h:5671/asw-vn");
        assert!(with_password("amqps://h/asw-vn", "x").is_err());
        assert!(!has_password("amqps://aswhub@h/x"));
    }
}
