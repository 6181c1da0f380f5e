//! Every connection on TLS (`deploy/tls.sh`'s test PKI): two hubs exchange an e-Form D with its
//! receipt and status and an ACDD with its Customs Response over `amqps://` (push links too), the
//! management API over `https://` and PostgreSQL journals with `sslmode=verify-full`; a wrong CA
//! or a wrong server name is refused with an error naming the connection.

use std::path::PathBuf;
use std::time::Duration;

use asw_e2e::{document, state, testbed_with};
use asw_gateway::config::HubConfig;
use asw_gateway::hub::Hub;
use asw_model::DocumentKind;
use asw_route::names;
use asw_testbed::{Received, Testbed};

const WAIT: Duration = Duration::from_secs(30);

/// The test PKI that `deploy/tls.sh` makes.
fn pki() -> PathBuf {
    std::env::var_os("ASWHUB_PKI").map_or_else(|| "/var/lib/aswhub-pki".into(), PathBuf::from)
}

pub(crate) fn psql(sql: &str) -> String {
    let out = std::process::Command::new("psql")
        .args([
            "-h",
            "127.0.0.1",
            "-U",
            "postgres",
            "-d",
            "postgres",
            "-Atc",
            sql,
        ])
        .output()
        .expect("psql (deploy/setup.sh starts PostgreSQL)");
    assert!(
        out.status.success(),
        "{sql}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).trim().to_owned()
}

/// A testbed of `codes` with every connection on TLS, each hub with a PostgreSQL journal in a
/// schema of its own (`<tag>_<cc>`, also the connections' application name), dropped by the
/// returned guard.
async fn tls_testbed(codes: &[&str], external: &[&str]) -> (Testbed, tempfile::TempDir, Schemas) {
    let tag = format!("aswt_{}", &uuid::Uuid::new_v4().simple().to_string()[..10]);
    let schemas = Schemas {
        names: codes
            .iter()
            .map(|c| format!("{tag}_{}", c.to_lowercase()))
            .collect(),
    };
    for name in &schemas.names {
        psql(&format!("CREATE SCHEMA {name}"));
    }
    let external: Vec<_> = external.iter().map(|c| state(c)).collect();
    let (tb, dir) = testbed_with(codes, |options| {
        options.amqp = "amqps://guest:guest@localhost:5671".into();
        options.management_url = "https://localhost:15671".into();
        options.journal_url = Some(format!(
            "postgres://postgres@localhost:5432/postgres?options=-csearch_path%3D{tag}_{{cc}}\
             &application_name={tag}_{{cc}}&sslmode=verify-full"
        ));
        options.tls.ca = Some(pki().join("ca.pem"));
        options.external = external;
    })
    .await;
    (tb, dir, schemas)
}

/// Test schemas, dropped at the end.
pub(crate) struct Schemas {
    pub(crate) names: Vec<String>,
}

impl Drop for Schemas {
    fn drop(&mut self) {
        for name in &self.names {
            psql(&format!("DROP SCHEMA IF EXISTS {name} CASCADE"));
        }
    }
}

fn is_doc(m: &Received, key: &str, id: uuid::Uuid) -> bool {
    m.routing_key == key && m.header(names::HEADER_MESSAGE_ID) == Some(id.to_string().as_str())
}

fn outcome(m: &Received, key: &str, id: uuid::Uuid, what: &str) -> bool {
    is_doc(m, key, id) && m.header(names::HEADER_OUTCOME) == Some(what)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_full_exchange_runs_with_every_connection_on_tls() {
    let (tb, _dir, schemas) = tls_testbed(&["VN", "TH"], &[]).await;
    let (vn, th) = (state("VN"), state("TH"));

    // e-Form D VN -> TH, TH's signed receipt back to VN, then TH's status of it.
    let form_d = document(DocumentKind::FormD, "VN", "TH");
    let id = form_d.header.message_id;
    tb.send_document(&form_d).await.expect("send");
    tb.wait_for(th, "formd.VN", WAIT, |m| is_doc(m, "formd.VN", id))
        .await
        .expect("delivered over TLS");
    tb.wait_for(vn, "receipt", WAIT, |m| {
        m.routing_key == "formd-ack.TH"
            && m.properties.correlation_id.as_deref() == Some(id.to_string().as_str())
    })
    .await
    .expect("receipt");
    let mut status = document(DocumentKind::FormDStatus, "TH", "VN");
    status.header.correlation_id = Some(id);
    tb.send_document(&status).await.expect("send status");
    tb.wait_for(vn, "status outcome", WAIT, |m| {
        outcome(m, "outcome.formd.TH", id, "status")
    })
    .await
    .expect("status outcome");

    // ACDD TH -> VN, and VN customs' Customs Response.
    let acdd = document(DocumentKind::Acdd, "TH", "VN");
    let acdd_id = acdd.header.message_id;
    tb.send_document(&acdd).await.expect("send");
    tb.wait_for(vn, "acdd.TH", WAIT, |m| is_doc(m, "acdd.TH", acdd_id))
        .await
        .expect("delivered");
    let mut response = document(DocumentKind::AcddResponse, "VN", "TH");
    response.header.correlation_id = Some(acdd_id);
    tb.send_document(&response).await.expect("send");
    tb.wait_for(th, "acdd-response.VN", WAIT, |m| {
        is_doc(m, "acdd-response.VN", response.header.message_id)
    })
    .await
    .expect("response delivered");
    tb.wait_for(th, "status outcome", WAIT, |m| {
        outcome(m, "outcome.acdd.VN", acdd_id, "status")
    })
    .await
    .expect("status outcome");

    // Every connection in the two vhosts is TLS (the hubs', the push links', the back-offices'),
    // and so is every journal connection.
    let vhosts = [tb.options().vhost(vn), tb.options().vhost(th)];
    let out = std::process::Command::new("rabbitmqctl")
        .args(["-q", "list_connections", "vhost", "ssl", "name"])
        .output()
        .expect("rabbitmqctl");
    let listed = String::from_utf8_lossy(&out.stdout).into_owned();
    let ours: Vec<&str> = listed
        .lines()
        .filter(|l| vhosts.iter().any(|v| l.starts_with(&format!("{v}\t"))))
        .collect();
    assert!(ours.len() >= 4, "the hubs' connections: {listed}");
    assert!(
        ours.iter().all(|l| l.split('\t').nth(1) == Some("true")),
        "every connection is TLS: {ours:?}"
    );
    for name in &schemas.names {
        let row = psql(&format!(
            "SELECT count(*), coalesce(bool_and(s.ssl), false) FROM pg_stat_ssl s \
             JOIN pg_stat_activity a USING (pid) WHERE a.application_name = '{name}'"
        ));
        let (count, all_tls) = row.split_once('|').expect("count|ssl");
        assert!(count.parse::<u32>().expect("count") >= 1, "{name}: {row}");
        assert_eq!(all_tls, "t", "{name}'s journal connections are TLS");
    }
    tb.stop_and_clean().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_wrong_ca_or_server_name_is_refused_naming_the_connection() {
    let (tb, _dir, _schemas) = tls_testbed(&["VN", "TH"], &["VN"]).await;
    let vn = state("VN");
    let file = tb.config_file(vn).expect("VN's configuration").to_owned();
    let good = HubConfig::load(&file).expect("config");
    let other_ca = pki().join("other-ca/ca.pem");
    let chain = |e: &dyn std::error::Error| asw_amqp::error_chain(e);

    // The broker with another CA: the hub stops at once, naming the URL (no password).
    let mut config = good.clone();
    config.broker.tls.ca = Some(other_ca.clone());
    let hub = Hub::new(config).expect("a hub");
    let ran = tokio::time::timeout(WAIT, hub.run(tokio_util::sync::CancellationToken::new()))
        .await
        .expect("gives up, does not retry a refused certificate");
    let error = chain(&ran.expect_err("refused"));
    let url = asw_model::redact::url(&good.broker.url);
    assert!(
        error.contains(&format!("cannot connect to {url}"))
            && error.contains("certificate verify failed")
            && !error.contains("guest:guest"),
        "{error}"
    );

    // A name the broker's certificate does not carry.
    let mut config = good.clone();
    config.broker.urls = vec![good.broker.url.replace("localhost", "127.0.0.2")];
    let hub = Hub::new(config).expect("a hub");
    let ran = tokio::time::timeout(WAIT, hub.run(tokio_util::sync::CancellationToken::new()))
        .await
        .expect("gives up");
    let error = chain(&ran.expect_err("refused"));
    assert!(
        error.contains("127.0.0.2:5671") && error.contains("certificate verify failed"),
        "{error}"
    );

    // The journal with another CA: the hub does not start.
    let mut config = good.clone();
    config.journal.tls.ca = Some(other_ca);
    let Err(error) = Hub::new(config) else {
        panic!("a journal behind an untrusted certificate opened");
    };
    let error = chain(&error);
    assert!(
        error.contains("cannot open the journal at postgres://postgres@localhost:5432/")
            && error.contains("certificate verify failed"),
        "{error}"
    );
    tb.stop_and_clean().await;
}
