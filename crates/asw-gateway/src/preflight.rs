//! `aswhub check-config` past the file itself: everything that can be checked before the runtime
//! starts, every problem at once. The signing key and certificate parse and belong together,
//! the trust store loads (and says which files it refused), the journal opens, and the broker,
//! management and partner URLs are well formed (every node's), every TLS file parses (a key
//! with its passphrase, and matching its certificate), and the metrics server's certificate and
//! key load.

use crate::config::{ConfigError, HubConfig};

/// Checks what `config` names, beyond its syntax: `Err` lists every problem, each naming its key.
pub fn check(config: &HubConfig, file: &std::path::Path) -> Result<(), ConfigError> {
    let mut problems = Vec::new();
    check_signing(config, &mut problems);
    if let Err(e) = asw_sign::TrustStore::load(&config.signing.trust_dir) {
        problems.push(format!("signing.trust_dir: {e}"));
    }
    if let Err(e) = asw_journal::open_with_tls(config.journal.location(), &config.journal.tls) {
        let key = if config.journal.url.is_some() {
            "journal.url"
        } else {
            "journal.path"
        };
        problems.push(format!("{key}: {e}"));
    }
    let key = |plural: bool, one: &'static str, many: &'static str| if plural { many } else { one };
    let broker_key = key(config.broker.urls.len() > 1, "broker.url", "broker.urls");
    for url in &config.broker.urls {
        if let Err(e) = asw_amqp::AmqpUrl::parse(url) {
            problems.push(format!("{broker_key}: {e}"));
        }
    }
    let management_key = key(
        config.broker.management_urls.len() > 1,
        "broker.management_url",
        "broker.management_urls",
    );
    for url in &config.broker.management_urls {
        if let Err(e) = url::Url::parse(url) {
            problems.push(format!("{management_key}: {url:?} is not a URL: {e}"));
        }
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
    let mut tls = vec![
        ("broker".to_owned(), &config.broker.tls),
        ("journal".to_owned(), &config.journal.tls),
    ];
    for (partner, p) in &config.partners {
        let partner_key = key(p.urls.len() > 1, "url", "urls");
        for url in &p.urls {
            if let Err(e) = asw_amqp::AmqpUrl::parse(url) {
                problems.push(format!("partners.{partner}.{partner_key}: {e}"));
            }
        }
        tls.push((format!("partners.{partner}"), &p.tls));
    }
    if let Some(hub) = &config.ephyto_hub {
        tls.push(("ephyto_hub".to_owned(), &hub.tls));
    }
    for (prefix, files) in tls {
        if let Err(e) = files.load(&prefix) {
            problems.push(e.to_string());
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
        && let Err(e) =
            asw_sign::Signer::with_passphrase(&key, config.signing.key_passphrase.as_deref(), &cert)
    {
        problems.push(format!(
            "signing.key, signing.certificate ({}, {}): {e}",
            config.signing.key.display(),
            config.signing.certificate.display()
        ));
    }
}
