//! A small blocking client of RabbitMQ's management HTTP API (`rabbitmq_management` plugin):
//! vhosts, users, permissions, policies and queue message counts. Run it off the async reactor
//! (`tokio::task::spawn_blocking`), as [`crate::apply`] does.

use std::collections::BTreeMap;
use std::io::Read;
use std::time::Duration;

use asw_route::{Argument, Permissions, Policy, TopicPermission};
use base64::Engine;
use serde::Deserialize;
use serde_json::json;

use asw_tls::ClientTls;

use crate::AmqpError;
use crate::address::{encode_component, redact};

/// How long one management call may take.
pub const MANAGEMENT_TIMEOUT: Duration = Duration::from_secs(30);

/// Most bytes of an error answer kept in [`AmqpError::Management`].
const DETAIL_LIMIT: u64 = 512;

/// A client of the management API at one base URL (`http://127.0.0.1:15672`), with basic auth.
#[derive(Clone)]
pub struct Management {
    agent: ureq::Agent,
    base: String,
    user: String,
    authorization: String,
}

/// ureq's TLS settings from ours: OpenSSL (through native-tls), our CAs or the system's.
fn ureq_tls(tls: &ClientTls) -> ureq::tls::TlsConfig {
    use ureq::tls::{Certificate, ClientCert, PrivateKey, RootCerts, TlsProvider};
    let roots = if tls.ca.is_empty() {
        RootCerts::PlatformVerifier
    } else {
        let certs: Vec<Certificate<'static>> = tls
            .ca
            .iter()
            .filter_map(|c| c.to_der().ok())
            .map(|der| Certificate::from_der(&der).to_owned())
            .collect();
        RootCerts::new_with_certs(&certs)
    };
    let client = tls.identity.as_ref().and_then(|identity| {
        let chain: Vec<Certificate<'static>> = identity
            .chain
            .iter()
            .filter_map(|c| c.to_der().ok())
            .map(|der| Certificate::from_der(&der).to_owned())
            .collect();
        let key = identity.key.private_key_to_pem_pkcs8().ok()?;
        let key = PrivateKey::from_pem(&key).ok()?;
        Some(ClientCert::new_with_certs(&chain, key))
    });
    ureq::tls::TlsConfig::builder()
        .provider(TlsProvider::NativeTls)
        .root_certs(roots)
        .client_cert(client)
        .build()
}

impl std::fmt::Debug for Management {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Management")
            .field("base", &self.base)
            .field("user", &self.user)
            .finish()
    }
}

/// A queue as the management API lists it. Message counts are statistics the broker refreshes
/// every few seconds (`collect_statistics_interval`, 5 s by default), not live values.
#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct QueueInfo {
    /// Name.
    pub name: String,
    /// `classic`, `quorum` or `stream`.
    #[serde(rename = "type", default)]
    pub queue_type: String,
    /// Durable.
    #[serde(default)]
    pub durable: bool,
    /// Arguments as declared.
    #[serde(default)]
    pub arguments: BTreeMap<String, serde_json::Value>,
    /// Messages ready plus unacknowledged.
    #[serde(default)]
    pub messages: u64,
    /// Messages ready for delivery.
    #[serde(default)]
    pub messages_ready: u64,
    /// Messages delivered and not yet acknowledged.
    #[serde(default)]
    pub messages_unacknowledged: u64,
    /// The policy that applies to it, if any.
    #[serde(default)]
    pub policy: Option<String>,
    /// The node that leads a quorum queue (`rabbit-1@host`); `None` for other types.
    #[serde(default)]
    pub leader: Option<String>,
    /// The nodes holding a replica of a quorum queue.
    #[serde(default)]
    pub members: Vec<String>,
}

/// A policy as the management API shows it.
#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct PolicyInfo {
    /// Name.
    pub name: String,
    /// Regular expression over names.
    pub pattern: String,
    /// `queues`, `exchanges` or `all`.
    #[serde(rename = "apply-to")]
    pub apply_to: String,
    /// Priority.
    pub priority: i64,
    /// The keys it sets.
    pub definition: BTreeMap<String, serde_json::Value>,
}

/// A client connection as the management API lists it.
#[derive(Debug, Clone, PartialEq, Eq, serde::Deserialize)]
pub struct ConnectionInfo {
    /// The broker's name for it (`127.0.0.1:50000 -> 127.0.0.1:5672`), used to close it.
    pub name: String,
    /// The user it authenticated as.
    #[serde(default)]
    pub user: String,
    /// What the client calls it (`connection_name` client property), if it said.
    #[serde(default)]
    pub client_properties: ClientProperties,
    /// The cluster node it is connected to (`rabbit-1@host`).
    #[serde(default)]
    pub node: String,
}

/// The client properties of a connection that aswhub cares about.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Deserialize)]
pub struct ClientProperties {
    /// The connection name the client gave.
    #[serde(default)]
    pub connection_name: Option<String>,
}

impl Management {
    /// A client of the API at `base_url` (`http://127.0.0.1:15672`), as `user`.
    pub fn new(base_url: &str, user: &str, password: &str) -> Management {
        Management::with_tls(base_url, user, password, &ClientTls::default())
    }

    /// A client like [`new`](Management::new); an `https://` URL trusts only `tls`'s CAs (the
    /// system's when it has none), verifies the server's name, and presents `tls`'s client
    /// certificate.
    pub fn with_tls(base_url: &str, user: &str, password: &str, tls: &ClientTls) -> Management {
        let config = ureq::Agent::config_builder()
            .http_status_as_error(false)
            .timeout_global(Some(MANAGEMENT_TIMEOUT))
            .tls_config(ureq_tls(tls))
            .build();
        let credentials =
            base64::engine::general_purpose::STANDARD.encode(format!("{user}:{password}"));
        Management {
            agent: config.into(),
            base: base_url.trim_end_matches('/').to_owned(),
            user: user.to_owned(),
            authorization: format!("Basic {credentials}"),
        }
    }

    /// A client of the first of `base_urls` (the management APIs of a cluster's nodes) whose
    /// API answers (`GET /api/overview`) as `user`; the last error when none does, an error
    /// when the list is empty.
    pub fn first_answering<U: AsRef<str>>(
        base_urls: &[U],
        user: &str,
        password: &str,
    ) -> Result<Management, AmqpError> {
        Management::first_answering_tls(base_urls, user, password, &ClientTls::default())
    }

    /// [`first_answering`](Management::first_answering), each client made with
    /// [`with_tls`](Management::with_tls).
    pub fn first_answering_tls<U: AsRef<str>>(
        base_urls: &[U],
        user: &str,
        password: &str,
        tls: &ClientTls,
    ) -> Result<Management, AmqpError> {
        let mut last = AmqpError::Management {
            method: "GET",
            path: "/api/overview".into(),
            status: None,
            detail: "no management API URL given".into(),
        };
        for base in base_urls {
            let management = Management::with_tls(base.as_ref(), user, password, tls);
            match management.call("GET", "/api/overview", None) {
                Ok(_) => return Ok(management),
                Err(error) => last = error,
            }
        }
        Err(last)
    }

    /// The user the client logs in as.
    pub fn user(&self) -> &str {
        &self.user
    }

    /// Creates `vhost` if it does not exist.
    pub fn ensure_vhost(&self, vhost: &str) -> Result<(), AmqpError> {
        let path = format!("/api/vhosts/{}", encode_component(vhost));
        self.put(&path, &json!({})).map(drop)
    }

    /// Deletes `vhost` with everything in it; deleting one that does not exist is not an error.
    pub fn delete_vhost(&self, vhost: &str) -> Result<(), AmqpError> {
        let path = format!("/api/vhosts/{}", encode_component(vhost));
        self.delete(&path)
    }

    /// Creates or updates user `name` with `password` and `tags` (e.g. `administrator`;
    /// none for a user that only speaks AMQP). An empty `password` leaves the user without
    /// one: it can only log in with a client certificate (EXTERNAL).
    pub fn ensure_user(&self, name: &str, password: &str, tags: &[&str]) -> Result<(), AmqpError> {
        let path = format!("/api/users/{}", encode_component(name));
        let body = if password.is_empty() {
            json!({ "password_hash": "", "tags": tags.join(",") })
        } else {
            json!({ "password": password, "tags": tags.join(",") })
        };
        self.put(&path, &body).map(drop)
    }

    /// Deletes user `name`; deleting one that does not exist is not an error.
    pub fn delete_user(&self, name: &str) -> Result<(), AmqpError> {
        let path = format!("/api/users/{}", encode_component(name));
        self.delete(&path)
    }

    /// Sets `user`'s permissions in `vhost` (regular expressions over resource names).
    pub fn set_permissions(
        &self,
        vhost: &str,
        user: &str,
        permissions: &Permissions,
    ) -> Result<(), AmqpError> {
        let path = format!(
            "/api/permissions/{}/{}",
            encode_component(vhost),
            encode_component(user)
        );
        let body = json!({
            "configure": permissions.configure,
            "write": permissions.write,
            "read": permissions.read,
        });
        self.put(&path, &body).map(drop)
    }

    /// Sets `user`'s topic permissions on `permission.exchange` in `vhost`: the routing keys it
    /// may publish (`write`) and bind (`read`) with there, as regular expressions.
    pub fn set_topic_permissions(
        &self,
        vhost: &str,
        user: &str,
        permission: &TopicPermission,
    ) -> Result<(), AmqpError> {
        let path = format!(
            "/api/topic-permissions/{}/{}",
            encode_component(vhost),
            encode_component(user)
        );
        let body = json!({
            "exchange": permission.exchange,
            "write": permission.write,
            "read": permission.read,
        });
        self.put(&path, &body).map(drop)
    }

    /// Creates or replaces `policy` in `vhost`. The broker applies a changed definition to the
    /// queues it matches at once, without their being declared again.
    pub fn set_policy(&self, vhost: &str, policy: &Policy) -> Result<(), AmqpError> {
        let path = format!(
            "/api/policies/{}/{}",
            encode_component(vhost),
            encode_component(&policy.name)
        );
        let definition: serde_json::Map<String, serde_json::Value> = policy
            .definition
            .iter()
            .map(|(key, value)| {
                let value = match value {
                    Argument::Str(s) => json!(s),
                    Argument::Int(i) => json!(i),
                };
                (key.clone(), value)
            })
            .collect();
        let body = json!({
            "pattern": policy.pattern,
            "apply-to": policy.apply_to.as_str(),
            "priority": policy.priority,
            "definition": definition,
        });
        self.put(&path, &body).map(drop)
    }

    /// Policy `name` of `vhost`, or `None` if there is none.
    pub fn policy(&self, vhost: &str, name: &str) -> Result<Option<PolicyInfo>, AmqpError> {
        let path = format!(
            "/api/policies/{}/{}",
            encode_component(vhost),
            encode_component(name)
        );
        let mut response = match self.call("GET", &path, None) {
            Ok(response) => response,
            Err(AmqpError::Management {
                status: Some(404), ..
            }) => return Ok(None),
            Err(error) => return Err(error),
        };
        response
            .body_mut()
            .read_json::<PolicyInfo>()
            .map(Some)
            .map_err(|e| self.error("GET", &path, Some(200), e.to_string()))
    }

    /// The queues of `vhost` with their message counts.
    pub fn queues(&self, vhost: &str) -> Result<Vec<QueueInfo>, AmqpError> {
        let path = format!("/api/queues/{}", encode_component(vhost));
        let mut response = self.call("GET", &path, None)?;
        response
            .body_mut()
            .read_json::<Vec<QueueInfo>>()
            .map_err(|e| self.error("GET", &path, Some(200), e.to_string()))
    }

    /// The client connections open to `vhost`.
    pub fn connections(&self, vhost: &str) -> Result<Vec<ConnectionInfo>, AmqpError> {
        let path = format!("/api/vhosts/{}/connections", encode_component(vhost));
        let mut response = self.call("GET", &path, None)?;
        response
            .body_mut()
            .read_json::<Vec<ConnectionInfo>>()
            .map_err(|e| self.error("GET", &path, Some(200), e.to_string()))
    }

    /// Closes a client connection by name, as an operator (or a failing network) would; closing
    /// one that is already gone is not an error.
    pub fn close_connection(&self, name: &str) -> Result<(), AmqpError> {
        let path = format!("/api/connections/{}", encode_component(name));
        self.delete(&path)
    }

    fn put(&self, path: &str, body: &serde_json::Value) -> Result<u16, AmqpError> {
        self.call("PUT", path, Some(body))
            .map(|response| response.status().as_u16())
    }

    fn delete(&self, path: &str) -> Result<(), AmqpError> {
        match self.call("DELETE", path, None) {
            Ok(_) => Ok(()),
            Err(AmqpError::Management {
                status: Some(404), ..
            }) => Ok(()),
            Err(error) => Err(error),
        }
    }

    /// One call; a status other than 2xx is an error carrying the start of the body.
    fn call(
        &self,
        method: &'static str,
        path: &str,
        body: Option<&serde_json::Value>,
    ) -> Result<ureq::http::Response<ureq::Body>, AmqpError> {
        let url = format!("{}{path}", self.base);
        let auth = self.authorization.as_str();
        let result = match (method, body) {
            ("PUT", Some(body)) => self
                .agent
                .put(&url)
                .header("Authorization", auth)
                .send_json(body),
            ("DELETE", _) => self.agent.delete(&url).header("Authorization", auth).call(),
            _ => self.agent.get(&url).header("Authorization", auth).call(),
        };
        let mut response = result.map_err(|e| self.error(method, path, None, e.to_string()))?;
        let status = response.status().as_u16();
        if (200..300).contains(&status) {
            return Ok(response);
        }
        let mut bytes = Vec::new();
        // The detail is best effort: a body that cannot be read leaves it short or empty.
        let _ = response
            .body_mut()
            .as_reader()
            .take(DETAIL_LIMIT)
            .read_to_end(&mut bytes);
        let detail = String::from_utf8_lossy(&bytes).into_owned();
        Err(self.error(method, path, Some(status), detail))
    }

    fn error(
        &self,
        method: &'static str,
        path: &str,
        status: Option<u16>,
        detail: String,
    ) -> AmqpError {
        AmqpError::Management {
            method,
            path: format!("{}{path}", redact(&self.base)),
            status,
            detail,
        }
    }
}
