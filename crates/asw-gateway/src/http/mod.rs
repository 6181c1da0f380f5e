//! The hub's HTTP server: `GET /metrics` (OpenMetrics text), `GET /healthz` (200 while the
//! process runs) and `GET /readyz` (200 when the broker session is up, the journal takes writes
//! and the trust store holds certificates; 503 otherwise, with a JSON body naming each check).
//! axum routes on hyper's HTTP/1.1, optionally behind TLS (OpenSSL) and a bearer token.
//!
//! The operator console adds its routes to the same server: [`serve`] takes the built-in
//! [`routes`], which the bearer token guards (but for the health probes), and a [`Router`] of
//! routes with a login of their own, which it does not. Requests are bounded (head size, body size,
//! time, connections at once); a malformed request gets a 4xx from hyper, never a panic.

pub mod config;

use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::extract::{DefaultBodyLimit, Request, State};
use axum::http::{StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::service::TowerToHyperService;
use openssl::ssl::{Ssl, SslAcceptor, SslFiletype, SslMethod};
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::TcpListener;
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;
use tracing::{debug, warn};

pub use config::{BearerToken, MetricsConfig, TlsFiles};

/// The largest request head (request line and headers) read, in bytes; a larger one gets a
/// 431. (hyper's smallest read buffer is 8 KiB.)
pub const MAX_HEAD_BYTES: usize = 16 * 1024;
/// The largest request body taken by a route that reads one.
pub const MAX_BODY_BYTES: usize = 64 * 1024;
/// How long a client may take to send a request head (and the TLS handshake before it).
const READ_TIMEOUT: Duration = Duration::from_secs(5);
/// How long one connection may stay open, requests and responses together.
const CONNECTION_LIFETIME: Duration = Duration::from_secs(60);
/// How long a readiness check may take before it counts as failed.
const CHECK_TIMEOUT: Duration = Duration::from_secs(5);
/// Connections served at once; more are closed at once.
pub const MAX_CONNECTIONS: usize = 16;

/// The result of one readiness check.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Check {
    /// What was checked: `broker`, `journal`, `trust`.
    pub name: &'static str,
    /// Whether it passed.
    pub ok: bool,
    /// What was seen, for a person.
    pub detail: String,
}

/// What the built-in routes read from the hub.
pub trait Probe: Send + Sync + 'static {
    /// The metrics text, in the OpenMetrics format.
    fn metrics(&self) -> String;
    /// Every readiness check, in a fixed order. May block (it may ask the journal), so it is
    /// called off the reactor.
    fn readiness(&self) -> Vec<Check>;
}

/// `/metrics`, `/healthz` and `/readyz` over `probe`. Merge other routes into it before
/// [`serve`]; any other path, or another method on these paths, gets a 404.
pub fn routes(probe: Arc<dyn Probe>) -> Router {
    Router::new()
        .route("/metrics", get(metrics))
        .route("/healthz", get(healthz))
        .route("/readyz", get(readyz))
        .with_state(probe)
}

async fn metrics(State(probe): State<Arc<dyn Probe>>) -> Response {
    (
        [(header::CONTENT_TYPE, crate::metrics::CONTENT_TYPE)],
        probe.metrics(),
    )
        .into_response()
}

async fn healthz() -> Response {
    plain(StatusCode::OK, "ok\n")
}

async fn readyz(State(probe): State<Arc<dyn Probe>>) -> Response {
    let checks = tokio::time::timeout(
        CHECK_TIMEOUT,
        tokio::task::spawn_blocking(move || probe.readiness()),
    )
    .await;
    let checks = match checks {
        Ok(Ok(checks)) => checks,
        Ok(Err(e)) => vec![Check {
            name: "probe",
            ok: false,
            detail: format!("the checks failed: {e}"),
        }],
        Err(_) => vec![Check {
            name: "probe",
            ok: false,
            detail: format!("the checks took more than {CHECK_TIMEOUT:?}"),
        }],
    };
    let ready = checks.iter().all(|c| c.ok);
    let body = serde_json::json!({
        "ready": ready,
        "checks": checks
            .iter()
            .map(|c| (c.name.to_owned(), serde_json::json!({ "ok": c.ok, "detail": c.detail })))
            .collect::<serde_json::Map<_, _>>(),
    });
    let status = if ready {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    (
        status,
        [(header::CONTENT_TYPE, "application/json")],
        format!("{body}\n"),
    )
        .into_response()
}

fn plain(status: StatusCode, text: &'static str) -> Response {
    (
        status,
        [(header::CONTENT_TYPE, "text/plain; charset=utf-8")],
        text,
    )
        .into_response()
}

async fn not_found() -> Response {
    plain(StatusCode::NOT_FOUND, "404 Not Found\n")
}

/// Asks every request to the built-in routes for the bearer token, except the health probes (an orchestrator's
/// probes rarely carry one, and they tell nothing secret).
async fn require_token(
    State(token): State<Arc<BearerToken>>,
    request: Request,
    next: Next,
) -> Response {
    let path = request.uri().path();
    if path == "/healthz" || path == "/readyz" {
        return next.run(request).await;
    }
    let presented = request
        .headers()
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| {
            let (scheme, token) = v.split_once(' ')?;
            scheme.eq_ignore_ascii_case("bearer").then(|| token.trim())
        });
    match presented {
        Some(presented) if token.matches(presented) => next.run(request).await,
        _ => (
            StatusCode::UNAUTHORIZED,
            [
                (header::WWW_AUTHENTICATE, "Bearer"),
                (header::CONTENT_TYPE, "text/plain; charset=utf-8"),
            ],
            "401 Unauthorized\n",
        )
            .into_response(),
    }
}

/// How the server speaks: plain or TLS, with or without a token.
#[derive(Clone, Default)]
pub struct Options {
    /// Serve HTTPS with this acceptor.
    pub tls: Option<SslAcceptor>,
    /// Ask for this bearer token.
    pub token: Option<BearerToken>,
}

impl std::fmt::Debug for Options {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Options")
            .field("tls", &self.tls.is_some())
            .field("token", &self.token)
            .finish()
    }
}

impl Options {
    /// The options of `config`: loads and checks the certificate and key when TLS is set.
    pub fn from_config(config: &MetricsConfig) -> Result<Options, openssl::error::ErrorStack> {
        let tls = config.tls.as_ref().map(acceptor).transpose()?;
        Ok(Options {
            tls,
            token: config.token.clone(),
        })
    }
}

/// A TLS acceptor (Mozilla's intermediate settings: TLS 1.2 and 1.3) for `files`.
pub fn acceptor(files: &TlsFiles) -> Result<SslAcceptor, openssl::error::ErrorStack> {
    let mut builder = SslAcceptor::mozilla_intermediate_v5(SslMethod::tls_server())?;
    builder.set_certificate_chain_file(&files.cert)?;
    builder.set_private_key_file(&files.key, SslFiletype::PEM)?;
    builder.check_private_key()?;
    Ok(builder.build())
}

/// The whole application: `app` behind the token check when one is set, `own_login` (routes
/// with a login of their own: the console's) beside it without, the server's own limits, and
/// 404 for the rest.
fn application(app: Router, own_login: Router, token: Option<BearerToken>) -> Router {
    let app = match token {
        // Layered before the merge: it wraps `app`'s routes only.
        Some(token) => app.layer(axum::middleware::from_fn_with_state(
            Arc::new(token),
            require_token,
        )),
        None => app,
    };
    app.merge(own_login)
        .fallback(not_found)
        .method_not_allowed_fallback(not_found)
        .layer(DefaultBodyLimit::max(MAX_BODY_BYTES))
}

/// Serves `app` and `own_login` (see [`application`]) on `listener` until `stop` is cancelled;
/// connections still open then are dropped.
pub async fn serve(
    listener: TcpListener,
    app: Router,
    own_login: Router,
    options: Options,
    stop: CancellationToken,
) {
    let app = application(app, own_login, options.token);
    let mut connections = JoinSet::new();
    loop {
        while connections.try_join_next().is_some() {}
        let accepted = tokio::select! {
            () = stop.cancelled() => break,
            accepted = listener.accept() => accepted,
        };
        match accepted {
            Ok((stream, _)) if connections.len() < MAX_CONNECTIONS => {
                let app = app.clone();
                let tls = options.tls.clone();
                connections.spawn(async move {
                    let _ = tokio::time::timeout(CONNECTION_LIFETIME, async move {
                        match tls {
                            None => connection(stream, app).await,
                            Some(acceptor) => {
                                if let Some(stream) = handshake(&acceptor, stream).await {
                                    connection(stream, app).await;
                                }
                            }
                        }
                    })
                    .await;
                });
            }
            // Too many at once: closing it is the answer.
            Ok(_) => {}
            Err(e) => {
                // Out of file descriptors and the like: do not spin.
                warn!(error = %e, "Cannot accept an HTTP connection.");
                tokio::select! {
                    () = stop.cancelled() => break,
                    () = tokio::time::sleep(Duration::from_millis(100)) => {}
                }
            }
        }
    }
    connections.shutdown().await;
}

/// The TLS handshake on a new connection, within the read timeout.
async fn handshake(
    acceptor: &SslAcceptor,
    stream: tokio::net::TcpStream,
) -> Option<tokio_openssl::SslStream<tokio::net::TcpStream>> {
    let ssl = Ssl::new(acceptor.context()).ok()?;
    let mut stream = tokio_openssl::SslStream::new(ssl, stream).ok()?;
    match tokio::time::timeout(READ_TIMEOUT, std::pin::Pin::new(&mut stream).accept()).await {
        Ok(Ok(())) => Some(stream),
        Ok(Err(e)) => {
            debug!(error = %e, "TLS handshake failed.");
            None
        }
        Err(_) => None,
    }
}

/// Serves the requests of one connection.
async fn connection<I>(io: I, app: Router)
where
    I: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let served = hyper::server::conn::http1::Builder::new()
        .timer(TokioTimer::new())
        // A client that half-closes after its request still gets the response.
        .half_close(true)
        .header_read_timeout(READ_TIMEOUT)
        .max_buf_size(MAX_HEAD_BYTES)
        .serve_connection(TokioIo::new(io), TowerToHyperService::new(app))
        .await;
    if let Err(e) = served {
        debug!(error = %e, "HTTP connection ended with an error.");
    }
}

/// The bytes `serve` would answer to `request`, sent on one plain connection that the client
/// then half-closes (for the fuzz target in `asw-fuzz`: hyper's parser and our routes on
/// untrusted bytes). Runs on a runtime of its own.
pub fn answer(request: &[u8], app: Router) -> Vec<u8> {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let Ok(runtime) = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    else {
        return Vec::new();
    };
    let app = application(app, Router::new(), None);
    runtime.block_on(async move {
        let (mut client, server) = tokio::io::duplex(MAX_HEAD_BYTES * 4);
        let served = tokio::spawn(connection(server, app));
        let mut response = Vec::new();
        let exchange = async {
            client.write_all(request).await?;
            client.shutdown().await?;
            client.read_to_end(&mut response).await
        };
        let _ = tokio::time::timeout(Duration::from_secs(10), exchange).await;
        served.abort();
        response
    })
}

#[cfg(test)]
mod tests;
