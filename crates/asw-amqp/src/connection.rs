//! Connections and channels to one vhost, that remember where they point so every error can say
//! so, and connecting again with capped exponential back-off.

use std::sync::Arc;
use std::time::Duration;

use lapin::ConnectionProperties;
use lapin::options::ConfirmSelectOptions;
use tracing::{info, warn};

use asw_tls::ClientTls;

use crate::{AmqpError, AmqpUrl};

/// How long connecting (TCP, TLS, AMQP handshake, login) may take.
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(15);

/// How long one broker round trip (open a channel, declare, set prefetch, consume, cancel, ack...)
/// may take. Shorter than the hub's grace period (20 s, `asw_gateway::hub::GRACE`): a call the
/// broker leaves unanswered while it stops or starts, with the connection still open, must fail
/// before a session that is ending gives up waiting for its tasks.
pub const RPC_TIMEOUT: Duration = Duration::from_secs(15);

/// How often a call on a channel looks whether its channel (or connection) is still open.
const STATUS_CHECK: Duration = Duration::from_millis(100);

/// How long a call that found its channel closed still waits for the reason the broker gave,
/// which reaches the call just after the state changes (a 403, say).
pub(crate) const CLOSE_REASON_GRACE: Duration = Duration::from_millis(500);

/// Where a connection points: what errors and logs name.
#[derive(Debug)]
pub(crate) struct Endpoint {
    pub(crate) url: String,
    pub(crate) vhost: String,
}

/// A connection to one vhost of the broker.
///
/// Dropping it (and its channels) closes it; [`Connection::close`] closes it cleanly first.
/// It does not reconnect by itself: when it is lost, every channel operation fails with a
/// transient error, and the owner builds a new one with [`connect_with_backoff`].
pub struct Connection {
    inner: lapin::Connection,
    endpoint: Arc<Endpoint>,
}

impl std::fmt::Debug for Connection {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Connection")
            .field("url", &self.endpoint.url)
            .field("connected", &self.is_connected())
            .finish()
    }
}

impl Connection {
    /// Opens a channel.
    pub async fn open_channel(&self) -> Result<Channel, AmqpError> {
        let opening = until_closed(|| self.is_connected(), self.inner.create_channel());
        let inner = within(&self.endpoint.vhost, "open a channel", opening)
            .await?
            .map_err(|source| AmqpError::Channel {
                vhost: self.endpoint.vhost.clone(),
                action: "open a channel",
                source: Box::new(source),
            })?;
        Ok(Channel {
            inner,
            endpoint: self.endpoint.clone(),
        })
    }

    /// Whether the connection is up.
    pub fn is_connected(&self) -> bool {
        self.inner.status().connected()
    }

    /// The vhost.
    pub fn vhost(&self) -> &str {
        &self.endpoint.vhost
    }

    /// The URL, password removed.
    pub fn url(&self) -> &str {
        &self.endpoint.url
    }

    /// The lapin connection, for what this crate does not wrap.
    pub fn lapin(&self) -> &lapin::Connection {
        &self.inner
    }

    /// Closes the connection cleanly (reply 200). Closing one already closed is not an error.
    pub async fn close(&self) -> Result<(), AmqpError> {
        if !self.is_connected() {
            return Ok(());
        }
        let closing = self.inner.close(200, "Bye".into());
        match within(&self.endpoint.vhost, "close the connection", closing).await? {
            Ok(()) => Ok(()),
            Err(_) if !self.is_connected() => Ok(()),
            Err(source) => Err(AmqpError::Channel {
                vhost: self.endpoint.vhost.clone(),
                action: "close the connection",
                source: Box::new(source),
            }),
        }
    }
}

/// A channel on a [`Connection`], cheap to clone (clones share the channel).
///
/// A channel error (access refused, precondition failed, a refused `user_id`) closes the
/// channel for good: open another one.
#[derive(Clone)]
pub struct Channel {
    inner: lapin::Channel,
    endpoint: Arc<Endpoint>,
}

impl std::fmt::Debug for Channel {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Channel")
            .field("id", &self.inner.id())
            .field("vhost", &self.endpoint.vhost)
            .field("open", &self.is_open())
            .finish()
    }
}

impl Channel {
    /// Whether the channel is usable.
    pub fn is_open(&self) -> bool {
        self.inner.status().connected()
    }

    /// The vhost.
    pub fn vhost(&self) -> &str {
        &self.endpoint.vhost
    }

    /// The lapin channel, for what this crate does not wrap.
    pub fn lapin(&self) -> &lapin::Channel {
        &self.inner
    }

    /// Closes the channel cleanly; closing one already closed is not an error.
    pub async fn close(&self) -> Result<(), AmqpError> {
        if !self.is_open() {
            return Ok(());
        }
        match within(
            self.vhost(),
            "close a channel",
            self.inner.close(200, "Bye".into()),
        )
        .await?
        {
            Ok(()) => Ok(()),
            Err(_) if !self.is_open() => Ok(()),
            Err(source) => Err(self.error("close a channel", source)),
        }
    }

    /// Puts the channel in publisher-confirm mode.
    pub(crate) async fn confirm_select(&self) -> Result<(), AmqpError> {
        let action = "enable publisher confirms";
        self.call(
            action,
            self.inner.confirm_select(ConfirmSelectOptions::default()),
        )
        .await?
        .map_err(|source| self.error(action, source))
    }

    /// Awaits `future`, a call on this channel, for at most [`RPC_TIMEOUT`], and ends it with an
    /// error as soon as the channel is found closed (see [`until_closed`]): on a dead connection
    /// a call ends within a fraction of a second instead of holding its caller.
    pub(crate) async fn call<T>(
        &self,
        action: &str,
        future: impl Future<Output = lapin::Result<T>>,
    ) -> Result<lapin::Result<T>, AmqpError> {
        within(
            self.vhost(),
            action,
            until_closed(|| self.is_open(), future),
        )
        .await
    }

    pub(crate) fn error(&self, action: &'static str, source: lapin::Error) -> AmqpError {
        AmqpError::Channel {
            vhost: self.endpoint.vhost.clone(),
            action,
            source: Box::new(source),
        }
    }
}

/// Awaits `future`, or fails soon after `open` says its channel or connection closed (checked
/// every 100 ms; the future then has [`CLOSE_REASON_GRACE`] to finish with the broker's own
/// reason). lapin fails what is pending when it learns that a connection died, but a call whose
/// answer is lost with the connection must not depend on that alone.
pub(crate) async fn until_closed<T>(
    open: impl Fn() -> bool,
    future: impl Future<Output = lapin::Result<T>>,
) -> lapin::Result<T> {
    tokio::pin!(future);
    let mut check = tokio::time::interval(STATUS_CHECK);
    loop {
        tokio::select! {
            done = &mut future => return done,
            _ = check.tick() => {
                if !open() {
                    if let Ok(done) = tokio::time::timeout(CLOSE_REASON_GRACE, &mut future).await {
                        return done;
                    }
                    return Err(lapin::ErrorKind::InvalidChannelState(
                        lapin::ChannelState::Closed,
                        "the channel closed before the broker answered",
                    )
                    .into());
                }
            }
        }
    }
}

/// Awaits `future` for at most [`RPC_TIMEOUT`].
pub(crate) async fn within<T>(
    vhost: &str,
    action: &str,
    future: impl Future<Output = T>,
) -> Result<T, AmqpError> {
    within_for(RPC_TIMEOUT, vhost, action, future).await
}

/// Awaits `future` for at most `after`.
pub(crate) async fn within_for<T>(
    after: Duration,
    vhost: &str,
    action: &str,
    future: impl Future<Output = T>,
) -> Result<T, AmqpError> {
    tokio::time::timeout(after, future)
        .await
        .map_err(|_| AmqpError::Timeout {
            vhost: vhost.to_owned(),
            action: action.to_owned(),
            after,
        })
}

/// Connects to the vhost named in `url` (`amqp://` or `amqps://`, vhost percent-encoded in the
/// path), naming the connection `connection_name` in the management UI. One attempt, bounded
/// by [`CONNECT_TIMEOUT`]. `amqps://` trusts the system's CAs and presents no certificate: see
/// [`connect_tls`].
pub async fn connect(url: &str, connection_name: &str) -> Result<Connection, AmqpError> {
    connect_tls(url, connection_name, &ClientTls::default()).await
}

/// Connects like [`connect`]; an `amqps://` URL trusts only `tls`'s CAs (the system's when it
/// has none), verifies the broker's name against its certificate, and presents `tls`'s client
/// certificate (with `?auth_mechanism=external` in the URL the broker takes the user name from
/// it). A refused certificate fails with a permanent error.
pub async fn connect_tls(
    url: &str,
    connection_name: &str,
    tls: &ClientTls,
) -> Result<Connection, AmqpError> {
    let url = AmqpUrl::parse(url)?;
    let properties = ConnectionProperties::default().with_connection_name(connection_name.into());
    let connect_error = |source: lapin::Error| AmqpError::Connect {
        url: url.redacted().to_owned(),
        source: Box::new(source),
    };
    let config = owned_tls_config(tls).map_err(|e| AmqpError::InvalidUrl {
        url: url.redacted().to_owned(),
        reason: e.to_string(),
    })?;
    let runtime = lapin::runtime::default_runtime().map_err(connect_error)?;
    let connecting =
        lapin::Connection::connect_uri_with_config(url.to_uri(), properties, config, runtime);
    let inner = within_for(CONNECT_TIMEOUT, url.redacted(), "connect", connecting)
        .await?
        .map_err(connect_error)?;
    Ok(Connection {
        inner,
        endpoint: Arc::new(Endpoint {
            url: url.redacted().to_owned(),
            vhost: url.vhost().to_owned(),
        }),
    })
}

/// lapin's TLS settings from ours.
fn owned_tls_config(tls: &ClientTls) -> Result<lapin::tcp::OwnedTLSConfig, asw_tls::TlsError> {
    let ca = tls.ca_pem();
    Ok(lapin::tcp::OwnedTLSConfig {
        identity: tls
            .identity_pem()?
            .map(|(pem, key)| lapin::tcp::OwnedIdentity::PKCS8 { pem, key }),
        cert_chain: (!ca.is_empty()).then_some(ca),
    })
}

/// Exponential back-off with a cap: attempt n waits `initial * factor^(n-1)`, at most `max`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Backoff {
    /// Delay after the first failure.
    pub initial: Duration,
    /// Longest delay.
    pub max: Duration,
    /// Growth factor between attempts.
    pub factor: u32,
    /// Attempts in all before giving up; `None` tries until cancelled.
    pub max_attempts: Option<u32>,
}

impl Default for Backoff {
    /// 250 ms, doubling, at most 30 s, forever.
    fn default() -> Self {
        Backoff {
            initial: Duration::from_millis(250),
            max: Duration::from_secs(30),
            factor: 2,
            max_attempts: None,
        }
    }
}

impl Backoff {
    /// The delay after failed attempt `attempt` (1-based).
    pub fn delay(&self, attempt: u32) -> Duration {
        let growth = self
            .factor
            .max(1)
            .checked_pow(attempt.saturating_sub(1))
            .unwrap_or(u32::MAX);
        self.initial.saturating_mul(growth).min(self.max)
    }

    /// How long to wait after failed attempt `attempt`: a random time between half of
    /// [`delay`](Backoff::delay) and all of it ("equal jitter"), so that many clients that
    /// lost the same broker at once do not all come back at the same instant.
    pub fn pause(&self, attempt: u32) -> Duration {
        let ceiling = self.delay(attempt);
        let half = ceiling / 2;
        half + half.mul_f64(random_fraction())
    }
}

/// A number in [0, 1) that differs between calls (from the standard library's randomly keyed
/// hasher: jitter needs no better randomness than that).
fn random_fraction() -> f64 {
    use std::hash::{BuildHasher, Hasher};
    let mut hasher = std::collections::hash_map::RandomState::new().build_hasher();
    hasher.write_u64(0);
    (hasher.finish() >> 11) as f64 / (1u64 << 53) as f64
}

/// Connects like [`connect`], retrying transient failures (broker unreachable or restarting)
/// with `backoff`, logging each failure. Permanent failures (bad credentials, unknown vhost,
/// invalid URL) return at once. Cancel it by dropping the future (e.g. in `tokio::select!`
/// with a shutdown signal).
pub async fn connect_with_backoff(
    url: &str,
    connection_name: &str,
    backoff: &Backoff,
) -> Result<Connection, AmqpError> {
    connect_any_with_backoff(&[url], connection_name, backoff).await
}

/// Connects like [`connect_with_backoff`] to the first of `urls` that answers: the nodes of one
/// RabbitMQ cluster, each URL naming the same vhost and user. One attempt tries every URL in
/// turn, starting one further along the list than the attempt before (so a node that went away
/// is not always tried first); `backoff` applies between attempts, and its `max_attempts`
/// counts attempts, not URLs. A permanent failure on any URL returns at once: the nodes of a
/// cluster share users and vhosts. No URL at all is an invalid URL.
pub async fn connect_any_with_backoff<U: AsRef<str>>(
    urls: &[U],
    connection_name: &str,
    backoff: &Backoff,
) -> Result<Connection, AmqpError> {
    connect_any_tls_with_backoff(urls, connection_name, &ClientTls::default(), backoff).await
}

/// Connects like [`connect_any_with_backoff`], each attempt like [`connect_tls`] with `tls`.
pub async fn connect_any_tls_with_backoff<U: AsRef<str>>(
    urls: &[U],
    connection_name: &str,
    tls: &ClientTls,
    backoff: &Backoff,
) -> Result<Connection, AmqpError> {
    if urls.is_empty() {
        return Err(AmqpError::InvalidUrl {
            url: String::new(),
            reason: "no broker URL given".into(),
        });
    }
    let mut attempt = 0u32;
    loop {
        attempt = attempt.saturating_add(1);
        let first = usize::try_from(attempt - 1).unwrap_or(0) % urls.len();
        let mut last_error = None;
        for offset in 0..urls.len() {
            let url = urls[(first + offset) % urls.len()].as_ref();
            match connect_tls(url, connection_name, tls).await {
                Ok(connection) => {
                    info!(url = connection.url(), attempt, "Connected to the broker");
                    return Ok(connection);
                }
                Err(error) if !error.is_transient() => {
                    warn!(
                        url = crate::redact(url),
                        attempt,
                        error = %error_chain(&error),
                        "Cannot connect to the broker, giving up"
                    );
                    return Err(error);
                }
                Err(error) => {
                    if urls.len() > 1 {
                        warn!(
                            url = crate::redact(url),
                            attempt,
                            error = %error_chain(&error),
                            "Cannot connect to this broker node, trying the next"
                        );
                    }
                    last_error = Some((url, error));
                }
            }
        }
        let Some((url, error)) = last_error else {
            // Not reached: `urls` is not empty, so the loop tried one and kept its error.
            return Err(AmqpError::InvalidUrl {
                url: String::new(),
                reason: "no broker URL given".into(),
            });
        };
        let redacted = crate::redact(url);
        if backoff.max_attempts.is_some_and(|max| attempt >= max) {
            warn!(
                url = redacted,
                attempt,
                error = %error_chain(&error),
                "Cannot connect to the broker, giving up"
            );
            return Err(error);
        }
        let delay = backoff.pause(attempt);
        warn!(
            url = redacted,
            attempt,
            delay_ms = u64::try_from(delay.as_millis()).unwrap_or(u64::MAX),
            error = %error_chain(&error),
            "Cannot connect to the broker, retrying"
        );
        tokio::time::sleep(delay).await;
    }
}

/// An error and its sources, joined with `: ` (`error: cause: cause`), for one log field or
/// reason.
pub fn error_chain(error: &dyn std::error::Error) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_call_ends_soon_after_its_channel_closes_and_not_before() {
        let open = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(true));
        let flag = open.clone();
        let started = tokio::time::Instant::now();
        let closer = tokio::spawn(async move {
            tokio::time::sleep(Duration::from_millis(300)).await;
            flag.store(false, std::sync::atomic::Ordering::SeqCst);
        });
        // An answer that never comes (lost with the connection).
        let never = std::future::pending::<lapin::Result<()>>();
        let ended = until_closed(|| open.load(std::sync::atomic::Ordering::SeqCst), never).await;
        let took = started.elapsed();
        assert!(ended.is_err());
        // Closed at 300 ms, seen within 100 ms, then the reason's 500 ms.
        assert!(
            took >= Duration::from_millis(800) && took <= Duration::from_secs(3),
            "{took:?}"
        );
        closer.await.expect("closer");
        // An answer that comes while the channel is open is the result.
        let answered = until_closed(|| true, async { Ok(7) }).await;
        assert_eq!(answered.expect("answered"), 7);
        // One that comes just after the channel closed (the broker's reason) still counts.
        let late = until_closed(|| false, async {
            tokio::time::sleep(Duration::from_millis(200)).await;
            Ok(8)
        })
        .await;
        assert_eq!(late.expect("the reason in time"), 8);
    }

    #[test]
    fn backoff_grows_then_caps() {
        let backoff = Backoff {
            initial: Duration::from_millis(100),
            max: Duration::from_secs(1),
            factor: 2,
            max_attempts: None,
        };
        let delays: Vec<u128> = (1..=6).map(|n| backoff.delay(n).as_millis()).collect();
        assert_eq!(delays, [100, 200, 400, 800, 1000, 1000]);
        assert_eq!(backoff.delay(1_000), Duration::from_secs(1));
        // Each pause lies between half the delay and the delay, and they differ.
        let pauses: Vec<Duration> = (0..50).map(|_| backoff.pause(3)).collect();
        let ceiling = backoff.delay(3);
        assert!(
            pauses.iter().all(|p| *p >= ceiling / 2 && *p <= ceiling),
            "{pauses:?}"
        );
        assert!(
            pauses.iter().any(|p| *p != pauses[0]),
            "jittered: {pauses:?}"
        );
    }
}
