//! TLS against the real local broker, as `deploy/tls.sh` set it up (listener 5671 on 127.0.0.1
//! and 127.0.0.2, management over https on 15671, the test PKI in `ASWHUB_PKI` or
//! `/var/lib/aswhub-pki`): the broker's certificate and name are verified, a wrong CA or name is
//! refused with an error naming the URL, and a client certificate logs in with EXTERNAL.

use std::path::PathBuf;

use asw_amqp::{ClientTls, Management, TlsFiles, connect_tls};

/// The test PKI that `deploy/tls.sh` makes.
fn pki() -> PathBuf {
    std::env::var_os("ASWHUB_PKI")
        .map_or_else(|| PathBuf::from("/var/lib/aswhub-pki"), PathBuf::from)
}

/// TLS trusting the CA in `ca` (relative to the PKI), with the client certificate `client` if any.
fn tls(ca: &str, client: Option<&str>) -> ClientTls {
    TlsFiles {
        ca: Some(pki().join(ca)),
        cert: client.map(|c| pki().join(format!("{c}.pem"))),
        key: client.map(|c| pki().join(format!("{c}.key"))),
        key_passphrase: None,
    }
    .load("broker")
    .expect("the test PKI (bash deploy/tls.sh)")
}

fn chain(error: &dyn std::error::Error) -> String {
    asw_amqp::error_chain(error)
}

#[tokio::test]
async fn amqps_verifies_the_broker_and_refuses_a_wrong_ca_or_name() {
    let url = "amqps://guest:guest@127.0.0.1:5671/%2F";
    let good = tls("ca.pem", None);
    let connection = connect_tls(url, "test tls", &good)
        .await
        .expect("amqps with the test CA");
    connection.open_channel().await.expect("a channel");
    connection.close().await.expect("close");

    // The name is checked too: localhost is in the certificate.
    let connection = connect_tls("amqps://guest:guest@localhost:5671/%2F", "test tls", &good)
        .await
        .expect("amqps by name");
    connection.close().await.expect("close");

    for (what, url, tls) in [
        ("another CA", url, tls("other-ca/ca.pem", None)),
        ("the system's CAs", url, ClientTls::default()),
        (
            "a name the certificate does not carry",
            "amqps://guest:guest@127.0.0.2:5671/%2F",
            good.clone(),
        ),
    ] {
        let error = connect_tls(url, "test tls", &tls).await.expect_err(what);
        let text = chain(&error);
        assert!(
            text.contains(&asw_model::redact::url(url)) && !text.contains("guest:guest"),
            "{what}: the URL, redacted: {text}"
        );
        assert!(text.contains("certificate verify failed"), "{what}: {text}");
        assert!(
            !error.is_transient(),
            "{what}: a refused certificate is permanent: {text}"
        );
    }
}

#[tokio::test]
async fn a_client_certificate_logs_in_with_external() {
    let management = Management::with_tls(
        "https://localhost:15671",
        "guest",
        "guest",
        &tls("ca.pem", None),
    );
    let user = "partner-BN";
    management
        .ensure_user(user, "unused-password-1", &[])
        .expect("user");
    management
        .set_permissions(
            "/",
            user,
            &asw_route::Permissions {
                configure: "^$".into(),
                write: "^$".into(),
                read: "^$".into(),
            },
        )
        .expect("permissions");
    let url = "amqps://127.0.0.1:5671/%2F?auth_mechanism=external";
    let connection = connect_tls(
        url,
        "test external",
        &tls("ca.pem", Some("clients/partner-BN")),
    )
    .await
    .expect("EXTERNAL with partner-BN's certificate");
    // The broker lists connections with a delay of a few seconds.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    loop {
        let info = management.connections("/").expect("connections");
        if info.iter().any(|c| {
            c.user == user
                && c.client_properties.connection_name.as_deref() == Some("test external")
        }) {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "logged in as {user}: {info:?}"
        );
        tokio::time::sleep(std::time::Duration::from_millis(250)).await;
    }
    connection.close().await.expect("close");
    // Without a certificate, EXTERNAL has nothing to log in with.
    let error = connect_tls(url, "test external", &tls("ca.pem", None))
        .await
        .expect_err("no certificate");
    assert!(!error.is_transient(), "{}", chain(&error));
    // A certificate from another CA is refused in the handshake (under TLS 1.3 the client
    // only sees the connection end, which looks like any lost connection).
    connect_tls(
        url,
        "test external",
        &tls("ca.pem", Some("other-ca/partner-TH")),
    )
    .await
    .expect_err("another CA's certificate");
    management.delete_user(user).expect("delete user");
}

#[test]
fn the_management_api_over_https_verifies_the_server() {
    let good = Management::with_tls(
        "https://localhost:15671",
        "guest",
        "guest",
        &tls("ca.pem", None),
    );
    good.queues("/").expect("https with the test CA");
    for (what, url, tls) in [
        (
            "another CA",
            "https://localhost:15671",
            tls("other-ca/ca.pem", None),
        ),
        (
            "the system's CAs",
            "https://localhost:15671",
            ClientTls::default(),
        ),
        (
            "a wrong name",
            "https://127.0.0.2:15671",
            tls("ca.pem", None),
        ),
    ] {
        let error = Management::with_tls(url, "guest", "guest", &tls)
            .queues("/")
            .expect_err(what);
        let text = chain(&error);
        assert!(text.contains(url), "{what}: names the URL: {text}");
    }
}
