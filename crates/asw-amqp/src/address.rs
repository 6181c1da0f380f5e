//! AMQP URLs: parsing (vhost percent-decoded, IPv6 hosts kept), pointing a URL at a vhost, and the
//! password-free form that logs and errors show.

use lapin::uri::AMQPUri;
use url::{Host, Url};

use crate::AmqpError;

/// A parsed `amqp://` or `amqps://` URL.
///
/// `amqp://user:pass@127.0.0.1:5672/asw-vn` names vhost `asw-vn`; `%2f` stands for `/`; a URL
/// without a path names `/`, one with an empty path (`.../`) names the empty vhost.
#[derive(Clone)]
pub struct AmqpUrl {
    uri: AMQPUri,
    redacted: String,
}

impl AmqpUrl {
    /// Parses an AMQP URL.
    pub fn parse(url: &str) -> Result<AmqpUrl, AmqpError> {
        let redacted = redact(url);
        let invalid = |reason: String| AmqpError::InvalidUrl {
            url: redacted.clone(),
            reason,
        };
        let mut uri: AMQPUri = url.parse().map_err(invalid)?;
        // amq-protocol-uri 10.6 reads the host with `Url::domain`, which is `None` for an IPv6
        // literal: `amqp://[::1]/` would silently connect to `localhost`. Keep the literal.
        let parsed = Url::parse(url).map_err(|e| invalid(e.to_string()))?;
        match parsed.host() {
            Some(Host::Ipv6(ip)) => uri.authority.host = ip.to_string(),
            Some(Host::Ipv4(ip)) => uri.authority.host = ip.to_string(),
            Some(Host::Domain(_)) => {}
            None => return Err(invalid("no host".into())),
        }
        Ok(AmqpUrl { uri, redacted })
    }

    /// The vhost, decoded.
    pub fn vhost(&self) -> &str {
        &self.uri.vhost
    }

    /// The user name, decoded (`guest` when the URL has none).
    pub fn user(&self) -> &str {
        &self.uri.authority.userinfo.username
    }

    /// The host name or IP address.
    pub fn host(&self) -> &str {
        &self.uri.authority.host
    }

    /// The port.
    pub fn port(&self) -> u16 {
        self.uri.authority.port
    }

    /// Whether the URL asks for TLS (`amqps://`).
    pub fn is_tls(&self) -> bool {
        matches!(self.uri.scheme, lapin::uri::AMQPScheme::AMQPS)
    }

    /// The URL without its password, for logs and errors.
    pub fn redacted(&self) -> &str {
        &self.redacted
    }

    /// The URI lapin connects to.
    pub(crate) fn to_uri(&self) -> AMQPUri {
        self.uri.clone()
    }
}

impl std::fmt::Debug for AmqpUrl {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_tuple("AmqpUrl").field(&self.redacted).finish()
    }
}

impl std::fmt::Display for AmqpUrl {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.redacted)
    }
}

/// `url` with its path replaced by `vhost`, percent-encoded: `with_vhost("amqp://h", "/")` is
/// `amqp://h/%2F`, `with_vhost("amqp://h/old", "asw-vn")` is `amqp://h/asw-vn`.
pub fn with_vhost(url: &str, vhost: &str) -> Result<String, AmqpError> {
    let mut parsed = Url::parse(url).map_err(|e| AmqpError::InvalidUrl {
        url: redact(url),
        reason: e.to_string(),
    })?;
    parsed.set_path(&format!("/{}", encode_component(vhost)));
    Ok(parsed.into())
}

/// `url` as shown in logs and errors: without its password (see [`asw_model::redact::url`]).
pub fn redact(url: &str) -> String {
    asw_model::redact::url(url)
}

/// Percent-encodes everything but RFC 3986 unreserved characters, for one URL path segment
/// (a vhost or user name in a management API path, a vhost in an AMQP URL).
pub(crate) fn encode_component(value: &str) -> String {
    let mut out = String::with_capacity(value.len());
    for byte in value.bytes() {
        if byte.is_ascii_alphanumeric() || matches!(byte, b'-' | b'.' | b'_' | b'~') {
            out.push(char::from(byte));
        } else {
            out.push_str(&format!("%{byte:02X}"));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_vhost_and_keeps_ip_hosts() {
        let url = AmqpUrl::parse("amqp://guest:secret@127.0.0.1:5672/asw-vn").expect("url");
        assert_eq!(url.vhost(), "asw-vn");
        assert_eq!(url.user(), "guest");
        assert_eq!(url.host(), "127.0.0.1");
        assert_eq!(url.port(), 5672);
        assert!(!url.is_tls());
        assert_eq!(url.redacted(), "amqp://guest@127.0.0.1:5672/asw-vn");
        assert!(!format!("{url:?} {url}").contains("secret"));

        let url = AmqpUrl::parse("amqps://partner-TH:p%40ss@10.1.2.3/%2F").expect("url");
        assert_eq!(url.vhost(), "/");
        assert_eq!(url.user(), "partner-TH");
        assert_eq!(url.host(), "10.1.2.3");
        assert_eq!(url.port(), 5671);
        assert!(url.is_tls());
        assert_eq!(url.to_uri().authority.userinfo.password, "p@ss");

        let url = AmqpUrl::parse("amqp://[::1]:5673").expect("url");
        assert_eq!((url.host(), url.port(), url.vhost()), ("::1", 5673, "/"));
    }

    #[test]
    fn rejects_other_schemes() {
        let error = AmqpUrl::parse("http://guest:secret@host/").expect_err("http");
        assert!(matches!(error, AmqpError::InvalidUrl { .. }));
        assert!(!error.to_string().contains("secret"), "{error}");
    }

    #[test]
    fn points_a_url_at_a_vhost() {
        assert_eq!(
            with_vhost("amqp://guest:guest@127.0.0.1:5672", "asw-vn").expect("url"),
            "amqp://guest:guest@127.0.0.1:5672/asw-vn"
        );
        assert_eq!(
            with_vhost("amqp://h:5672/old", "/").expect("url"),
            "amqp://h:5672/%2F"
        );
        let odd = with_vhost("amqp://h", "a b/c%").expect("url");
        assert_eq!(odd, "amqp://h/a%20b%2Fc%25");
        assert_eq!(AmqpUrl::parse(&odd).expect("url").vhost(), "a b/c%");
    }

    #[test]
    fn redacts_passwords() {
        assert_eq!(redact("amqp://u:pw@h/v"), "amqp://u@h/v");
        assert_eq!(redact("amqp://h/v"), "amqp://h/v");
        assert_eq!(redact("amqp://u:pw@h:notaport/v"), "amqp://u@h:notaport/v");
    }
}
