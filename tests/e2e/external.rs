//! Partners that log in with X.509 client certificates (RabbitMQ's EXTERNAL mechanism, user name
//! from the certificate's CN), tested with an independent client (Python's pika): a partner
//! holding another state's certificate cannot publish as that state nor read its queue.

use asw_amqp::Management;
use asw_e2e::{state, testbed_with};
use asw_gateway::config::{HubConfig, PartnerAuth};
use asw_route::Topology;
use asw_testbed::partner_password;

/// pika, as a partner gateway: argv = vhost, the certificate's stem in the PKI, the state it
/// acts for. Prints one line per attempt: `<what> ok` or `<what> refused <reason>`.
const PARTNER: &str = r#"
import ssl, sys, pika
pki, vhost, stem, target = sys.argv[1:5]
def connect(credentials, cert=True):
    ctx = ssl.create_default_context(cafile=pki + "/ca.pem")
    if cert:
        ctx.load_cert_chain(pki + "/clients/" + stem + ".pem", pki + "/clients/" + stem + ".key")
    params = pika.ConnectionParameters(host="localhost", port=5671, virtual_host=vhost,
        ssl_options=pika.SSLOptions(ctx, "localhost"), credentials=credentials,
        connection_attempts=1)
    return pika.BlockingConnection(params)
def attempt(what, action):
    try:
        action()
        print(what, "ok")
    except Exception as e:
        print(what, "refused", type(e).__name__, str(e).replace("\n", " "))
def login():
    connect(pika.credentials.ExternalCredentials()).close()
def publish_as_target():
    c = connect(pika.credentials.ExternalCredentials())
    ch = c.channel()
    ch.confirm_delivery()
    ch.basic_publish("asw.partner.in", "formd", b"<x/>",
        pika.BasicProperties(user_id="partner-" + target), mandatory=True)
    c.close()
def read(queue):
    def go():
        c = connect(pika.credentials.ExternalCredentials())
        c.channel().basic_get(queue)
        c.close()
    return go
def password_login():
    connect(pika.PlainCredentials("partner-" + target, "any-password-at-all"), cert=False).close()
attempt("login", login)
attempt("publish-as-" + target, publish_as_target)
attempt("read-" + target, read("asw.partner.out." + target))
attempt("read-own", read("asw.partner.out." + stem.split("-")[1]))
attempt("password-login-" + target, password_login)
"#;

fn pki() -> String {
    std::env::var("ASWHUB_PKI").unwrap_or_else(|_| "/var/lib/aswhub-pki".into())
}

/// What pika said for each attempt, acting with `stem`'s certificate against `target`.
fn partner(vhost: &str, stem: &str, target: &str) -> Vec<(String, String)> {
    let out = std::process::Command::new("/usr/bin/python3")
        .args(["-c", PARTNER, &pki(), vhost, stem, target])
        .output()
        .expect("python3 with pika (deploy/setup.sh installs python3-pika)");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(|l| {
            let (what, rest) = l.split_once(' ').unwrap_or((l, ""));
            (what.to_owned(), rest.to_owned())
        })
        .collect()
}

fn said<'a>(lines: &'a [(String, String)], what: &str) -> &'a str {
    lines
        .iter()
        .find(|(w, _)| w == what)
        .map_or("(nothing)", |(_, r)| r.as_str())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_partner_cannot_use_another_states_certificate_to_act_as_it() {
    // VN's hub with partners LA and MM, both logging in with certificates (no passwords).
    let (tb, _dir) = testbed_with(&["VN", "LA", "MM"], |options| {
        options.amqp = "amqps://guest:guest@localhost:5671".into();
        options.management_url = "https://localhost:15671".into();
        options.tls.ca = Some(format!("{}/ca.pem", pki()).into());
        options.pull = true;
        options.external = vec![state("VN"), state("LA"), state("MM")];
    })
    .await;
    let vn = state("VN");
    let file = tb.config_file(vn).expect("VN config").to_owned();
    let mut text = std::fs::read_to_string(&file).expect("read");
    for code in ["LA", "MM"] {
        text = text.replace(
            &format!("password = \"{}\"", partner_password(state(code))),
            "auth = \"certificate\"",
        );
    }
    std::fs::write(&file, &text).expect("write");
    let config = HubConfig::load(&file).expect("config");
    for code in ["LA", "MM"] {
        assert_eq!(config.partners[&state(code)].auth, PartnerAuth::Certificate);
    }
    // What `aswctl topology apply` does with that configuration.
    let tls = config.broker.tls.load("broker").expect("tls");
    let management = Management::with_tls(
        &config.broker.management_url,
        &config.broker.management_user,
        &config.broker.management_password,
        &tls,
    );
    let topology = Topology::hub(
        vn,
        &config.partner_states(),
        &config.retry,
        config.broker.delivery_limit,
    );
    let passwords = |u: &asw_route::User| config.broker_password(u);
    asw_amqp::apply_tls(
        &management,
        &config.broker.url,
        &tls,
        &config.vhost(),
        &topology,
        &passwords,
    )
    .await
    .expect("topology with certificate partners");
    let vhost = config.vhost();

    let v = vhost.clone();
    let lines = tokio::task::spawn_blocking(move || partner(&v, "partner-MM", "LA"))
        .await
        .expect("pika");
    // MM's certificate logs MM in, reads MM's queue, and nothing of LA's.
    assert_eq!(said(&lines, "login"), "ok", "{lines:?}");
    assert_eq!(said(&lines, "read-own"), "ok", "{lines:?}");
    let publish = said(&lines, "publish-as-LA");
    assert!(
        publish.starts_with("refused") && publish.contains("PRECONDITION_FAILED"),
        "MM cannot publish as LA: {lines:?}"
    );
    let read = said(&lines, "read-LA");
    assert!(
        read.starts_with("refused") && read.contains("ACCESS_REFUSED"),
        "MM cannot read LA's queue: {lines:?}"
    );
    // partner-LA has no password: without its certificate, nobody logs in as LA.
    assert!(
        said(&lines, "password-login-LA").starts_with("refused"),
        "{lines:?}"
    );
    // And LA's own certificate reads LA's queue.
    let v = vhost.clone();
    let lines = tokio::task::spawn_blocking(move || partner(&v, "partner-LA", "MM"))
        .await
        .expect("pika");
    assert_eq!(said(&lines, "read-own"), "ok", "{lines:?}");
    assert!(said(&lines, "read-MM").starts_with("refused"), "{lines:?}");

    // Put the testbed's passwords back on the shared users before cleaning up.
    for code in ["LA", "MM"] {
        let user = asw_route::names::partner_user(state(code));
        management
            .ensure_user(&user, &partner_password(state(code)), &[])
            .expect("restore");
    }
    tb.stop_and_clean().await;
}
