//! `aswctl demo --keep-running`: prints READY once the hubs are up, then anyone can publish to
//! `asw.outbound` with an AMQP client and watch `asw.inbound` of the other vhost, and log in to
//! the console it printed with the demo login it printed; SIGTERM stops it.

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use asw_amqp::{Consumer, Properties};
use asw_model::sample::{self, SampleSpec};
use asw_model::{DocumentKind, MemberState};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn keep_running_prints_ready_serves_any_amqp_client_and_stops_on_sigterm() {
    let dir = tempfile::tempdir().expect("temp dir");
    let tag = uuid::Uuid::new_v4().simple().to_string();
    let prefix = format!("aswt-{}-", &tag[..10]);
    let mut child = Command::new(env!("CARGO_BIN_EXE_aswctl"))
        .args(["demo", "--keep-running", "--vhost-prefix", &prefix, "--dir"])
        .arg(dir.path())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("start the demo");
    let stdout = child.stdout.take().expect("stdout");
    let ready = tokio::task::spawn_blocking(move || {
        let mut before = Vec::new();
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            if line == "READY" {
                return Some(before);
            }
            before.push(line);
        }
        None
    });
    let printed = tokio::time::timeout(Duration::from_secs(60), ready)
        .await
        .expect("READY in time")
        .expect("join")
        .expect("READY");
    // The console's URL and a demo login that works there.
    let url = printed
        .iter()
        .find_map(|l| l.strip_prefix("Console of VN: http://"))
        .and_then(|rest| rest.strip_suffix('/'))
        .unwrap_or_else(|| panic!("the console's URL in {printed:?}"));
    let login = printed
        .iter()
        .find_map(|l| l.strip_prefix("Demo login: user "))
        .unwrap_or_else(|| panic!("a demo login in {printed:?}"));
    let (user, rest) = login.split_once(", password \"").expect("user, password");
    let password = rest.split('"').next().expect("password");
    let body = format!("user={user}&password={}", password.replace(' ', "+"));
    let head = tokio::task::spawn_blocking({
        let url = url.to_owned();
        move || {
            use std::io::{Read, Write};
            let mut stream = std::net::TcpStream::connect(&url).expect("connect to the console");
            write!(
                stream,
                "POST /login HTTP/1.1\r\nHost: hub\r\nConnection: close\r\nContent-Type: application/x-www-form-urlencoded\r\nContent-Length: {}\r\n\r\n{body}",
                body.len()
            )
            .expect("write");
            let mut response = String::new();
            stream.read_to_string(&mut response).expect("read");
            response
        }
    })
    .await
    .expect("login");
    assert!(head.starts_with("HTTP/1.1 303"), "{head}");
    assert!(head.contains("asw_console="), "{head}");

    // A plain AMQP client: publish an e-Form D in VN's vhost, read TH's asw.inbound.
    let th = asw_amqp::connect(
        &format!("amqp://guest:guest@127.0.0.1:5672/{prefix}th"),
        "test back-office",
    )
    .await
    .expect("TH");
    // Our own queue on TH's asw.inbound, as a back-office would bind it.
    let ours = asw_route::Topology {
        exchanges: Vec::new(),
        queues: vec![asw_route::Queue {
            name: "test.inbound".into(),
            arguments: vec![(
                "x-queue-type".into(),
                asw_route::Argument::Str("quorum".into()),
            )],
        }],
        bindings: vec![asw_route::Binding {
            exchange: "asw.inbound".into(),
            queue: "test.inbound".into(),
            routing_key: "#".into(),
        }],
        users: Vec::new(),
        policies: Vec::new(),
    };
    let channel = th.open_channel().await.expect("channel");
    asw_amqp::declare(&channel, &ours)
        .await
        .expect("declare our queue");
    let mut consumer = Consumer::start(channel, "test.inbound", 10, "t")
        .await
        .expect("consume");
    let created_at = time::OffsetDateTime::now_utc();
    let (from, to) = (
        MemberState::from_alpha2("VN").expect("VN"),
        MemberState::from_alpha2("TH").expect("TH"),
    );
    let doc = sample::message(&SampleSpec {
        kind: DocumentKind::FormD,
        from,
        to,
        items: 1,
        seed: 5,
        created_at,
    });
    asw_e2e::publish_once(
        &format!("amqp://guest:guest@127.0.0.1:5672/{prefix}vn"),
        "test back-office",
        "asw.outbound",
        "formd",
        doc.to_xml().expect("xml").as_bytes(),
        &Properties::new().with_content_type("application/xml"),
    )
    .await
    .expect("publish");
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    let id = doc.header.message_id.to_string();
    loop {
        let delivery = tokio::time::timeout_at(deadline, consumer.next())
            .await
            .expect("in time")
            .expect("open")
            .expect("delivery");
        let m = &delivery.message;
        let found =
            m.routing_key == "formd.VN" && m.properties.message_id.as_deref() == Some(id.as_str());
        delivery.acker.ack().await.expect("ack");
        if found {
            break;
        }
    }
    let _ = th.close().await;

    let started = Instant::now();
    let pid = child.id().to_string();
    assert!(
        Command::new("kill")
            .args(["-TERM", &pid])
            .status()
            .expect("kill")
            .success()
    );
    let status = child.wait().expect("wait");
    assert_eq!(status.code(), Some(0));
    assert!(started.elapsed() < Duration::from_secs(25));
    let management = asw_amqp::Management::new("http://127.0.0.1:15672", "guest", "guest");
    for cc in ["vn", "th"] {
        management
            .delete_vhost(&format!("{prefix}{cc}"))
            .expect("clean up");
    }
}
