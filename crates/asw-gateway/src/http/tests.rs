//! The HTTP server against real connections: each route, readiness flipping, bad requests,
//! the bearer token, and TLS with a certificate made for the test.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};

use tokio::io::{AsyncReadExt, AsyncWriteExt};

use super::*;

/// A probe whose journal check the test turns on and off.
struct Fake {
    journal_ok: AtomicBool,
}

impl Probe for Fake {
    fn metrics(&self) -> String {
        "aswhub_up 1\n# EOF\n".to_owned()
    }

    fn readiness(&self) -> Vec<Check> {
        let journal = self.journal_ok.load(Ordering::SeqCst);
        vec![
            Check {
                name: "broker",
                ok: true,
                detail: "session up".into(),
            },
            Check {
                name: "journal",
                ok: journal,
                detail: if journal { "takes writes" } else { "read-only" }.into(),
            },
        ]
    }
}

async fn start(
    options: Options,
    extra: Router,
) -> (
    SocketAddr,
    Arc<Fake>,
    CancellationToken,
    tokio::task::JoinHandle<()>,
) {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let address = listener.local_addr().expect("address");
    let fake = Arc::new(Fake {
        journal_ok: AtomicBool::new(true),
    });
    let stop = CancellationToken::new();
    let server = tokio::spawn(serve(
        listener,
        routes(fake.clone()),
        extra,
        options,
        stop.clone(),
    ));
    (address, fake, stop, server)
}

/// Sends `request` on a fresh connection, half-closes, and returns all that came back.
async fn exchange(address: SocketAddr, request: &[u8]) -> String {
    let mut stream = tokio::net::TcpStream::connect(address)
        .await
        .expect("connect");
    stream.write_all(request).await.expect("write");
    stream.shutdown().await.expect("half-close");
    let mut response = Vec::new();
    let _ = stream.read_to_end(&mut response).await;
    String::from_utf8_lossy(&response).into_owned()
}

fn get_of(path: &str) -> Vec<u8> {
    format!("GET {path} HTTP/1.1\r\nHost: hub\r\n\r\n").into_bytes()
}

fn body(response: &str) -> &str {
    response.split_once("\r\n\r\n").map_or("", |(_, b)| b)
}

#[tokio::test]
async fn routes_answer_and_readiness_follows_the_checks() {
    let extra = Router::new().route("/console", get_route());
    let (address, fake, stop, server) = start(Options::default(), extra).await;

    let metrics = exchange(address, &get_of("/metrics")).await;
    assert!(metrics.starts_with("HTTP/1.1 200 OK\r\n"), "{metrics}");
    assert!(
        metrics.contains(&format!(
            "content-type: {}\r\n",
            crate::metrics::CONTENT_TYPE
        )),
        "{metrics}"
    );
    assert_eq!(body(&metrics), "aswhub_up 1\n# EOF\n");
    let health = exchange(address, &get_of("/healthz")).await;
    assert!(health.starts_with("HTTP/1.1 200 OK\r\n"), "{health}");
    assert_eq!(body(&health), "ok\n");

    let ready = exchange(address, &get_of("/readyz")).await;
    assert!(ready.starts_with("HTTP/1.1 200 OK\r\n"), "{ready}");
    let json: serde_json::Value = serde_json::from_str(body(&ready)).expect("json");
    assert_eq!(json["ready"], true);
    assert_eq!(json["checks"]["journal"]["ok"], true);
    assert_eq!(json["checks"]["broker"]["detail"], "session up");

    fake.journal_ok.store(false, Ordering::SeqCst);
    let unready = exchange(address, &get_of("/readyz")).await;
    assert!(
        unready.starts_with("HTTP/1.1 503 Service Unavailable\r\n"),
        "{unready}"
    );
    let json: serde_json::Value = serde_json::from_str(body(&unready)).expect("json");
    assert_eq!(json["ready"], false);
    assert_eq!(json["checks"]["journal"]["ok"], false);
    assert_eq!(json["checks"]["journal"]["detail"], "read-only");
    assert_eq!(json["checks"]["broker"]["ok"], true);
    let health = exchange(address, &get_of("/healthz")).await;
    assert!(
        health.starts_with("HTTP/1.1 200 "),
        "alive while unready: {health}"
    );
    fake.journal_ok.store(true, Ordering::SeqCst);
    assert!(
        exchange(address, &get_of("/readyz"))
            .await
            .starts_with("HTTP/1.1 200 ")
    );

    let merged = exchange(address, &get_of("/console")).await;
    assert_eq!(body(&merged), "console\n", "{merged}");

    stop.cancel();
    server.await.expect("server ends on cancel");
    assert!(
        tokio::net::TcpStream::connect(address).await.is_err(),
        "listener closed"
    );
}

fn get_route() -> axum::routing::MethodRouter {
    axum::routing::get(|| async { "console\n" })
}

#[tokio::test]
async fn bad_requests_get_4xx_and_the_server_goes_on() {
    let (address, _, stop, server) = start(Options::default(), Router::new()).await;
    let huge = [
        b"GET /metrics HTTP/1.1\r\nX: ".as_slice(),
        &[b'a'; 40_000],
        b"\r\n\r\n",
    ]
    .concat();
    let big_body = [
        b"POST /metrics HTTP/1.1\r\nContent-Length: 100000\r\n\r\n".as_slice(),
        &[b'a'; 100_000],
    ]
    .concat();
    for (request, expected) in [
        (&b"GET / HTTP/1.1\r\n\r\n"[..], "HTTP/1.1 404 "),
        (
            b"POST /metrics HTTP/1.1\r\nContent-Length: 0\r\n\r\n",
            "HTTP/1.1 404 ",
        ),
        (b"DELETE /readyz HTTP/1.1\r\n\r\n", "HTTP/1.1 404 "),
        (b"GET /metricsx HTTP/1.1\r\n\r\n", "HTTP/1.1 404 "),
        (b"GET /metrics/../etc HTTP/1.1\r\n\r\n", "HTTP/1.1 404 "),
        (b"\x00\xff\xfe garbage\r\n\r\n", "HTTP/1.1 400 "),
        (b"GET metrics HTTP/1.1\r\n\r\n", "HTTP/1.1 404 "),
        (b"BREW /coffee HTCPCP/1.0\r\n\r\n", "HTTP/1.1 400 "),
        (
            b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03\r\n\r\n",
            "HTTP/1.1 400 ",
        ),
        (&huge, "HTTP/1.1 431 "),
        (&big_body, "HTTP/1.1 404 "),
    ] {
        let response = exchange(address, request).await;
        assert!(
            response.starts_with(expected),
            "{:?} got {response:?}",
            String::from_utf8_lossy(&request[..request.len().min(60)])
        );
    }
    assert_eq!(
        exchange(address, b"").await,
        "",
        "nothing sent, nothing said"
    );
    let with_query = exchange(address, b"GET /metrics?x=1 HTTP/1.0\n\n").await;
    assert!(with_query.contains(" 200 OK\r\n"), "{with_query}");
    let again = exchange(address, &get_of("/metrics")).await;
    assert!(again.starts_with("HTTP/1.1 200 OK"), "{again}");
    stop.cancel();
    server.await.expect("server ends");
}

#[tokio::test]
async fn a_token_guards_the_metrics_but_not_the_probes_or_routes_with_their_own_login() {
    let token = "s3cret-token-0123456789";
    let options = Options {
        tls: None,
        token: Some(BearerToken::new(token)),
    };
    let extra = Router::new().route("/console", get_route());
    let (address, _, stop, server) = start(options, extra).await;
    let refused = exchange(address, &get_of("/metrics")).await;
    assert!(
        refused.starts_with("HTTP/1.1 401 Unauthorized\r\n"),
        "{refused}"
    );
    assert!(
        refused.contains("www-authenticate: Bearer\r\n"),
        "{refused}"
    );
    assert!(!refused.contains("aswhub_up"));
    // The console's routes log people in themselves; a browser brings no bearer token.
    let console = exchange(address, &get_of("/console")).await;
    assert!(console.starts_with("HTTP/1.1 200 "), "{console}");
    let nowhere = exchange(address, &get_of("/nowhere")).await;
    assert!(nowhere.starts_with("HTTP/1.1 404 "), "{nowhere}");
    for wrong in [
        "Bearer s3cret-token-012345678",
        "Bearer s3cret-token-01234567890",
        "Basic czNjcmV0LXRva2VuLTAxMjM0NTY3ODk=",
        "s3cret-token-0123456789",
        "Bearer",
    ] {
        let request = format!("GET /metrics HTTP/1.1\r\nAuthorization: {wrong}\r\n\r\n");
        let refused = exchange(address, request.as_bytes()).await;
        assert!(refused.starts_with("HTTP/1.1 401 "), "{wrong}: {refused}");
    }
    for scheme in ["Bearer", "bearer"] {
        let request = format!("GET /metrics HTTP/1.1\r\nAuthorization: {scheme} {token}\r\n\r\n");
        let ok = exchange(address, request.as_bytes()).await;
        assert!(ok.starts_with("HTTP/1.1 200 OK\r\n"), "{ok}");
        assert_eq!(body(&ok), "aswhub_up 1\n# EOF\n");
    }
    for probe in ["/healthz", "/readyz"] {
        let open = exchange(address, &get_of(probe)).await;
        assert!(open.starts_with("HTTP/1.1 200 "), "{probe}: {open}");
    }
    stop.cancel();
    server.await.expect("server ends");
}

/// A self-signed certificate for 127.0.0.1 and its key, written to `dir`.
fn certificate(dir: &std::path::Path) -> (TlsFiles, openssl::x509::X509) {
    use openssl::asn1::Asn1Time;
    use openssl::bn::BigNum;
    use openssl::ec::{EcGroup, EcKey};
    use openssl::hash::MessageDigest;
    use openssl::nid::Nid;
    use openssl::pkey::PKey;
    use openssl::x509::extension::SubjectAlternativeName;
    use openssl::x509::{X509, X509NameBuilder};

    let group = EcGroup::from_curve_name(Nid::X9_62_PRIME256V1).expect("curve");
    let key = PKey::from_ec_key(EcKey::generate(&group).expect("key")).expect("pkey");
    let mut name = X509NameBuilder::new().expect("name");
    name.append_entry_by_nid(Nid::COMMONNAME, "aswhub metrics test")
        .expect("cn");
    let name = name.build();
    let mut builder = X509::builder().expect("builder");
    builder.set_version(2).expect("version");
    let serial = BigNum::from_u32(1)
        .and_then(|n| n.to_asn1_integer())
        .expect("serial");
    builder.set_serial_number(&serial).expect("serial");
    builder.set_subject_name(&name).expect("subject");
    builder.set_issuer_name(&name).expect("issuer");
    builder.set_pubkey(&key).expect("pubkey");
    builder
        .set_not_before(&Asn1Time::days_from_now(0).expect("time"))
        .expect("not before");
    builder
        .set_not_after(&Asn1Time::days_from_now(1).expect("time"))
        .expect("not after");
    let san = SubjectAlternativeName::new()
        .ip("127.0.0.1")
        .build(&builder.x509v3_context(None, None))
        .expect("san");
    builder.append_extension(san).expect("extension");
    builder.sign(&key, MessageDigest::sha256()).expect("sign");
    let cert = builder.build();
    let files = TlsFiles {
        cert: dir.join("cert.pem"),
        key: dir.join("key.pem"),
    };
    std::fs::write(&files.cert, cert.to_pem().expect("pem")).expect("write cert");
    std::fs::write(&files.key, key.private_key_to_pem_pkcs8().expect("key pem"))
        .expect("write key");
    (files, cert)
}

#[tokio::test]
async fn tls_serves_https_and_refuses_plain_text() {
    use openssl::ssl::{SslConnector, SslVerifyMode};

    let dir = tempfile::tempdir().expect("dir");
    let (files, cert) = certificate(dir.path());
    let token = "s3cret-token-0123456789";
    let options = Options::from_config(&MetricsConfig {
        listen: None,
        token: Some(BearerToken::new(token)),
        tls: Some(files.clone()),
    })
    .expect("acceptor");
    let (address, _, stop, server) = start(options, Router::new()).await;

    let https = |request: String, trusted: bool| {
        let cert = cert.clone();
        async move {
            let mut connector = SslConnector::builder(SslMethod::tls_client()).expect("connector");
            if trusted {
                connector.cert_store_mut().add_cert(cert).expect("trust");
            }
            connector.set_verify(SslVerifyMode::PEER);
            let ssl = connector
                .build()
                .configure()
                .and_then(|c| c.into_ssl("127.0.0.1"))
                .expect("ssl");
            let tcp = tokio::net::TcpStream::connect(address)
                .await
                .expect("connect");
            let mut stream = tokio_openssl::SslStream::new(ssl, tcp).expect("stream");
            std::pin::Pin::new(&mut stream).connect().await?;
            stream.write_all(request.as_bytes()).await.expect("write");
            let mut response = Vec::new();
            let _ = stream.read_to_end(&mut response).await;
            Ok::<_, openssl::ssl::Error>(String::from_utf8_lossy(&response).into_owned())
        }
    };
    let request = format!(
        "GET /metrics HTTP/1.1\r\nAuthorization: Bearer {token}\r\nConnection: close\r\n\r\n"
    );
    let ok = https(request, true).await.expect("handshake");
    assert!(ok.starts_with("HTTP/1.1 200 OK\r\n"), "{ok}");
    assert_eq!(body(&ok), "aswhub_up 1\n# EOF\n");
    let no_token = https(
        "GET /metrics HTTP/1.1\r\nConnection: close\r\n\r\n".to_owned(),
        true,
    )
    .await
    .expect("handshake");
    assert!(no_token.starts_with("HTTP/1.1 401 "), "{no_token}");
    assert!(
        https(String::new(), false).await.is_err(),
        "a client that does not trust the certificate refuses it"
    );
    let plain = exchange(address, &get_of("/metrics")).await;
    assert!(
        !plain.contains("aswhub_up"),
        "no metrics in clear text: {plain:?}"
    );

    // A key that is not the certificate's is refused when the server is set up.
    let other_dir = tempfile::tempdir().expect("dir");
    let (mismatched, _) = certificate(other_dir.path());
    let wrong = TlsFiles {
        cert: files.cert,
        key: mismatched.key,
    };
    assert!(acceptor(&wrong).is_err());

    stop.cancel();
    server.await.expect("server ends");
}
