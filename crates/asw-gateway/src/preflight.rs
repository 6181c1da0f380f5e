//! `aswhub check-config` past the file itself: everything that can be checked before the runtime
//! starts, every problem at once. The signing key and certificate parse and belong together,
//! the trust store loads (and says which files it refused), the journal opens, and the broker,
//! management and partner URLs are well formed, the metrics server's certificate and key load.

use crate::config::{ConfigError, HubConfig};

/// Checks what `config` names, beyond its syntax: `Err` lists every problem, each naming its key.
pub fn check(config: &HubConfig, file: &std::path::Path) -> Result<(), ConfigError> {
    let mut problems = Vec::new();
    check_signing(config, &mut problems);
    if let Err(e) = asw_sign::TrustStore::load(&config.signing.trust_dir) {
        problems.push(format!("signing.trust_dir: {e}"));
    }
    if let Err(e) = asw_journal::open(config.journal.location()) {
        let key = if config.journal.url.is_some() {
            "journal.url"
        } else {
            "journal.path"
        };
        problems.push(format!("{key}: {e}"));
    }
    if let Err(e) = asw_amqp::AmqpUrl::parse(&config.broker.url) {
        problems.push(format!("broker.url: {e}"));
    }
    if let Err(e) = url::Url::parse(&config.broker.management_url) {
        problems.push(format!(
            "broker.management_url: {:?} is not a URL: {e}",
            config.broker.management_url
        ));
    }
    if let Some(files) = &config.metrics.tls
        && let Err(e) = crate::http::acceptor(files)
    {
        problems.push(format!(
            "metrics.cert, metrics.key ({}, {}): {e}",
            files.cert.display(),
            files.key.display()
        ));
    }
    for (partner, p) in &config.partners {
        if let Some(url) = &p.url
            && let Err(e) = asw_amqp::AmqpUrl::parse(url)
        {
            problems.push(format!("partners.{partner}.url: {e}"));
        }
    }
    if problems.is_empty() {
        Ok(())
    } else {
        Err(ConfigError {
            file: file.to_owned(),
            problems,
        })
    }
}

/// What is usable but unwise, for `check-config` to print (the hub logs the same at start).
pub fn warnings(config: &HubConfig) -> Vec<String> {
    config.metrics.warnings()
}

fn check_signing(config: &HubConfig, problems: &mut Vec<String>) {
    let read =
        |key: &str, path: &std::path::Path, problems: &mut Vec<String>| match std::fs::read(path) {
            Ok(bytes) => Some(bytes),
            Err(e) => {
                problems.push(format!("{key}: cannot read {}: {e}", path.display()));
                None
            }
        };
    let key = read("signing.key", &config.signing.key, problems);
    let cert = read("signing.certificate", &config.signing.certificate, problems);
    if let (Some(key), Some(cert)) = (key, cert)
        && let Err(e) = asw_sign::Signer::new(&key, &cert)
    {
        problems.push(format!(
            "signing.key, signing.certificate ({}, {}): {e}",
            config.signing.key.display(),
            config.signing.certificate.display()
        ));
    }
}
