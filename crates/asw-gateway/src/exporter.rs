//! A tiny HTTP/1.1 responder for Prometheus scrapes: `GET /metrics` gets the metrics text,
//! anything else well-formed a 404, anything malformed or oversized a 400. One request per
//! connection, read within a bounded size and time, a bounded number of connections at once;
//! garbage input only ever gets an error response. Ends when its token is cancelled.

use std::sync::Arc;
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;
use tracing::warn;

/// The largest request (request line and headers) read; a larger one gets a 400.
pub const MAX_REQUEST_BYTES: usize = 8 * 1024;
/// How long a client may take to send its request.
const READ_TIMEOUT: Duration = Duration::from_secs(5);
/// How long a client may take to read the response.
const WRITE_TIMEOUT: Duration = Duration::from_secs(10);
/// How long a connection is kept after the response, for the client to close it.
const LINGER: Duration = Duration::from_secs(2);
/// The most input read and thrown away after the response.
const MAX_DRAIN_BYTES: usize = 64 * 1024;
/// Connections served at once; more are closed at once.
const MAX_CONNECTIONS: usize = 16;
/// The content type of the text exposition format.
pub const CONTENT_TYPE: &str = crate::metrics::CONTENT_TYPE;

/// Produces the metrics text for one scrape.
pub type Render = Arc<dyn Fn() -> String + Send + Sync>;

/// Serves scrapes on `listener` until `stop` is cancelled; connections still open then are
/// dropped.
pub async fn serve(listener: TcpListener, render: Render, stop: CancellationToken) {
    let mut connections = JoinSet::new();
    loop {
        while connections.try_join_next().is_some() {}
        let accepted = tokio::select! {
            () = stop.cancelled() => break,
            accepted = listener.accept() => accepted,
        };
        match accepted {
            Ok((stream, _)) if connections.len() < MAX_CONNECTIONS => {
                connections.spawn(respond(stream, render.clone()));
            }
            // Too many at once: closing it is the answer.
            Ok(_) => {}
            Err(e) => {
                // Out of file descriptors and the like: do not spin.
                warn!(error = %e, "Cannot accept a metrics connection.");
                tokio::select! {
                    () = stop.cancelled() => break,
                    () = tokio::time::sleep(Duration::from_millis(100)) => {}
                }
            }
        }
    }
    connections.shutdown().await;
}

/// Reads one request and answers it.
async fn respond(mut stream: TcpStream, render: Render) {
    let mut request = Vec::with_capacity(512);
    let read = tokio::time::timeout(READ_TIMEOUT, read_head(&mut stream, &mut request)).await;
    let response = match read {
        Ok(Ok(Head::Complete)) => answer(&request, &*render),
        Ok(Ok(Head::TooLarge | Head::Truncated)) => status(400, "Bad Request"),
        // Nothing sent, an I/O error or too slow: nothing worth answering.
        Ok(Ok(Head::Empty) | Err(_)) | Err(_) => return,
    };
    let _ = tokio::time::timeout(WRITE_TIMEOUT, async {
        stream.write_all(&response).await?;
        stream.shutdown().await
    })
    .await;
    // Read (a bounded amount of) what the client still sends before closing: closing with
    // unread input would reset the connection and could destroy the response in flight.
    let _ = tokio::time::timeout(LINGER, async {
        let mut sink = [0u8; 1024];
        let mut drained = 0;
        while drained < MAX_DRAIN_BYTES {
            match stream.read(&mut sink).await {
                Ok(0) | Err(_) => break,
                Ok(n) => drained += n,
            }
        }
    })
    .await;
}

/// How reading a request head ended.
#[derive(Debug, PartialEq, Eq)]
enum Head {
    /// The blank line after the headers was read.
    Complete,
    /// More than [`MAX_REQUEST_BYTES`] without the end of the headers.
    TooLarge,
    /// The client closed after sending part of a request.
    Truncated,
    /// The client closed without sending anything.
    Empty,
}

async fn read_head(stream: &mut TcpStream, buf: &mut Vec<u8>) -> std::io::Result<Head> {
    let mut chunk = [0u8; 1024];
    loop {
        let n = stream.read(&mut chunk).await?;
        if n == 0 {
            return Ok(if buf.is_empty() {
                Head::Empty
            } else {
                Head::Truncated
            });
        }
        buf.extend_from_slice(&chunk[..n]);
        if end_of_head(buf) {
            return Ok(Head::Complete);
        }
        if buf.len() > MAX_REQUEST_BYTES {
            return Ok(Head::TooLarge);
        }
    }
}

fn end_of_head(buf: &[u8]) -> bool {
    buf.windows(4).any(|w| w == b"\r\n\r\n") || buf.windows(2).any(|w| w == b"\n\n")
}

/// The response to a complete request head: what [`serve`] sends for these bytes (public for
/// the fuzz target in `asw-fuzz`).
pub fn answer(request: &[u8], render: &dyn Fn() -> String) -> Vec<u8> {
    let Some((method, target)) = request_line(request) else {
        return status(400, "Bad Request");
    };
    let path = target.split('?').next().unwrap_or(target);
    if method == "GET" && path == "/metrics" {
        let body = render();
        let mut response = format!(
            "HTTP/1.1 200 OK\r\nContent-Type: {CONTENT_TYPE}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
            body.len()
        )
        .into_bytes();
        response.extend_from_slice(body.as_bytes());
        response
    } else {
        status(404, "Not Found")
    }
}

/// Method and target of a well-formed HTTP/1.x request line.
fn request_line(request: &[u8]) -> Option<(&str, &str)> {
    let end = request.iter().position(|&b| b == b'\n')?;
    let line = std::str::from_utf8(&request[..end]).ok()?;
    let line = line.strip_suffix('\r').unwrap_or(line);
    let mut parts = line.split(' ');
    let (method, target, version) = (parts.next()?, parts.next()?, parts.next()?);
    let token = |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_alphanumeric());
    let well_formed = parts.next().is_none()
        && token(method)
        && target.starts_with('/')
        && target.bytes().all(|b| b.is_ascii_graphic())
        && matches!(version, "HTTP/1.0" | "HTTP/1.1");
    well_formed.then_some((method, target))
}

fn status(code: u16, reason: &str) -> Vec<u8> {
    let body = format!("{code} {reason}\n");
    format!(
        "HTTP/1.1 {code} {reason}\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    )
    .into_bytes()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Sends `request` on a fresh connection and returns everything the server answered.
    async fn exchange(address: std::net::SocketAddr, request: &[u8]) -> String {
        let mut stream = TcpStream::connect(address).await.expect("connect");
        stream.write_all(request).await.expect("write");
        stream.shutdown().await.expect("half-close");
        let mut response = Vec::new();
        stream
            .read_to_end(&mut response)
            .await
            .expect("read response");
        String::from_utf8(response).expect("utf-8 response")
    }

    async fn start() -> (
        std::net::SocketAddr,
        CancellationToken,
        tokio::task::JoinHandle<()>,
    ) {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let address = listener.local_addr().expect("address");
        let stop = CancellationToken::new();
        let render: Render = Arc::new(|| "aswhub_up 1\n".to_owned());
        let server = tokio::spawn(serve(listener, render, stop.clone()));
        (address, stop, server)
    }

    #[tokio::test]
    async fn metrics_are_served_and_everything_else_is_refused() {
        let (address, stop, server) = start().await;
        let ok = exchange(address, b"GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n").await;
        assert!(ok.starts_with("HTTP/1.1 200 OK\r\n"), "{ok}");
        assert!(ok.contains(&format!("Content-Type: {CONTENT_TYPE}\r\n")));
        assert!(ok.contains("Content-Length: 12\r\n"), "{ok}");
        assert!(ok.ends_with("\r\n\r\naswhub_up 1\n"), "{ok}");
        let with_query = exchange(address, b"GET /metrics?x=1 HTTP/1.0\n\n").await;
        assert!(with_query.starts_with("HTTP/1.1 200 OK"), "{with_query}");

        for (request, expected) in [
            (&b"GET / HTTP/1.1\r\n\r\n"[..], "HTTP/1.1 404 "),
            (b"POST /metrics HTTP/1.1\r\n\r\n", "HTTP/1.1 404 "),
            (b"GET /metricsx HTTP/1.1\r\n\r\n", "HTTP/1.1 404 "),
            (b"\x00\xff\xfe garbage\r\n\r\n", "HTTP/1.1 400 "),
            (b"GET /metrics\r\n\r\n", "HTTP/1.1 400 "),
            (b"GET /metrics HTTP/2.0\r\n\r\n", "HTTP/1.1 400 "),
            (b"GET  /metrics HTTP/1.1\r\n\r\n", "HTTP/1.1 400 "),
            (b"GET metrics HTTP/1.1\r\n\r\n", "HTTP/1.1 400 "),
            (b"GET /metrics HTTP/1.1", "HTTP/1.1 400 "),
            (b"\r\n\r\n", "HTTP/1.1 400 "),
        ] {
            let response = exchange(address, request).await;
            assert!(
                response.starts_with(expected),
                "{:?} got {response:?}",
                String::from_utf8_lossy(request)
            );
        }
        let huge = [b"GET /metrics HTTP/1.1\r\nX: ".as_slice(), &[b'a'; 20_000]].concat();
        let response = exchange(address, &huge).await;
        assert!(response.starts_with("HTTP/1.1 400 "), "{response}");
        assert_eq!(
            exchange(address, b"").await,
            "",
            "nothing sent, nothing said"
        );

        // Still serving after all that.
        let again = exchange(address, b"GET /metrics HTTP/1.1\r\n\r\n").await;
        assert!(again.starts_with("HTTP/1.1 200 OK"), "{again}");
        stop.cancel();
        server.await.expect("server ends on cancel");
        assert!(
            TcpStream::connect(address).await.is_err(),
            "listener closed"
        );
    }

    #[test]
    fn request_lines_are_parsed_strictly() {
        assert_eq!(
            request_line(b"GET /metrics HTTP/1.1\r\n"),
            Some(("GET", "/metrics"))
        );
        assert_eq!(request_line(b"GET /metrics HTTP/1.1"), None);
        assert_eq!(request_line(b"G\xc3\xa9T /metrics HTTP/1.1\r\n"), None);
        assert_eq!(request_line(b"GET /m\x7f HTTP/1.1\r\n"), None);
        assert_eq!(request_line(b"GET /metrics HTTP/1.1 extra\r\n"), None);
    }
}
