//! `aswctl demo`: hubs for two (or all ten) member states on the local broker, each in its own
//! vhost `asw-<cc>`, playing real exchanges and printing them: an e-Form D goes out, arrives
//! verified, its receipt acknowledgement and a customs status come back; the same for an ACDD and
//! its Customs Response; and an e-Phyto (the UN/CEFACT SPS certificate in the ASW envelope) and
//! the receiving hub's signed acknowledgement. Exits 0 only if every step happened.
//!
//! Beyond ASEAN: the demo's partners file enables Korea (a shipped row, disabled as shipped:
//! network akfta, e-Phyto through the IPPC ePhyto Hub), and a local simulator of the IPPC hub
//! (the test-support crate's, speaking the hub's WSDL over HTTPS with client certificates)
//! stands between them: the first hub's e-Phyto goes to Korea through it and is tracked to
//! acknowledged, and Korea's certificate for it comes back through it. Without the hub's WSDL
//! (`../shared/ephyto-hub/`, or `ASWHUB_EPHYTO_WSDL`) that part is skipped, and said so.
//!
//! Each hub has three back-office systems with broker identities of their own
//! (`[[back_office]]`): the trade ministry sends and receives e-Form Ds and their statuses,
//! customs ACDDs and their Customs Responses, plant protection e-Phytos, each as its own user
//! into and from its own queues.
//!
//! With `--keep-running` it prints `READY` once the hubs are up and leaves them running until
//! SIGTERM or SIGINT, for anyone to publish to `asw.outbound` with any AMQP client (the
//! back-offices then share the hub's vhost, no `[[back_office]]`, as guest). Each hub then
//! serves the operator console too: before `READY` it prints a line
//! `Console of VN: http://127.0.0.1:PORT/` for each, and one with the demo logins.

use std::path::PathBuf;
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use asw_model::document::{Document, Message};
use asw_model::sample::{self, SampleSpec};
use asw_model::{DocumentKind, MemberState};
use asw_route::names;
use asw_testbed::ephyto_hub::{EphytoHub, InjectedContent, Tracking};
use asw_testbed::{Received, Testbed, TestbedOptions};
use time::OffsetDateTime;

use crate::Outcome;

/// How long one step may take before the demo fails.
const STEP_TIMEOUT: Duration = Duration::from_secs(60);

/// Arguments of `aswctl demo`.
#[derive(Debug, clap::Args)]
pub struct DemoArgs {
    /// Member states with a hub: `VN,TH` (default) or `all`; each sends to each of the others.
    #[arg(long, default_value = "VN,TH")]
    countries: String,
    /// Print READY once the hubs are up and keep them running until SIGTERM, playing nothing.
    #[arg(long)]
    keep_running: bool,
    /// Directory for keys, trust stores, configurations and journals.
    #[arg(long, default_value = "target/aswhub-demo")]
    dir: PathBuf,
    /// Broker AMQP URL, without vhost, with an administrator user.
    #[arg(long, default_value = "amqp://guest:guest@127.0.0.1:5672")]
    amqp: String,
    /// RabbitMQ management API URL.
    #[arg(long, default_value = "http://127.0.0.1:15672")]
    management: String,
    /// Vhosts are this prefix and the lower-case member state code.
    #[arg(long, default_value = "asw-", hide = true)]
    vhost_prefix: String,
}

fn parse_countries(list: &str) -> anyhow::Result<Vec<MemberState>> {
    if list.eq_ignore_ascii_case("all") {
        return Ok(MemberState::all().collect());
    }
    let mut states = Vec::new();
    for code in list.split(',').map(str::trim).filter(|c| !c.is_empty()) {
        let state: MemberState = code
            .parse()
            .with_context(|| format!("--countries: {code:?}"))?;
        if !states.contains(&state) {
            states.push(state);
        }
    }
    if states.len() < 2 {
        bail!("--countries needs at least two member states");
    }
    Ok(states)
}

/// Runs `aswctl demo`.
pub fn run(args: &DemoArgs) -> anyhow::Result<Outcome> {
    let countries = parse_countries(&args.countries)?;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    runtime.block_on(async {
        let mut options = TestbedOptions::local(countries.clone(), args.dir.clone());
        options.amqp = args.amqp.trim_end_matches('/').to_owned();
        options.management_url = args.management.clone();
        options.vhost_prefix = args.vhost_prefix.clone();
        options.ministries = !args.keep_running;
        options.console = args.keep_running;
        let started = Instant::now();
        // The IPPC hub simulator and Korea, for the played demo (not with --keep-running).
        let ippc = if args.keep_running {
            None
        } else {
            ippc_hub(&args.dir, &countries, &mut options).await?
        };
        let testbed = Testbed::start(options).await.context("starting the hubs")?;
        let vhosts: Vec<String> = countries
            .iter()
            .map(|&c| testbed.options().vhost(c))
            .collect();
        println!(
            "Hubs up for {} in vhosts {} ({} ms)",
            list(&countries),
            vhosts.join(", "),
            started.elapsed().as_millis()
        );
        if !args.keep_running {
            for ministry in asw_testbed::MINISTRIES {
                let kinds: Vec<&str> = ministry.sends.iter().map(|k| k.as_str()).collect();
                println!(
                    "Back-office {} of each hub: its own broker user ({}), sends {} only, \
                     reads its own queues only",
                    ministry.name,
                    testbed.options().ministry_user(countries[0], ministry.name),
                    kinds.join(", ")
                );
            }
        }
        if args.keep_running {
            for &c in &countries {
                if let Some(address) = testbed.hub(c).and_then(|h| h.metrics_address()) {
                    println!("Console of {c}: http://{address}/");
                }
            }
            let logins: Vec<String> = asw_testbed::CONSOLE_USERS
                .iter()
                .map(|(user, role, password)| {
                    format!("user {user}, password \"{password}\" ({role})")
                })
                .collect();
            println!("Demo login: {}", logins.join("; "));
            println!("READY");
            use std::io::Write;
            let _ = std::io::stdout().flush();
            asw_gateway::signals::terminated().await;
            testbed.stop().await;
            return Ok(Outcome::Success);
        }
        let mut result = Ok(());
        'pairs: for &from in &countries {
            for &to in countries.iter().filter(|&&to| to != from) {
                if let Err(e) = play_formd(&testbed, from, to)
                    .await
                    .and(play_acdd(&testbed, from, to).await)
                    .and(play_ephyto(&testbed, from, to).await)
                {
                    result = Err(e);
                    break 'pairs;
                }
            }
        }
        if let (Ok(()), Some((hub, korea))) = (&result, &ippc) {
            result = play_ippc(&testbed, hub, countries[0], *korea).await;
        }
        testbed.stop().await;
        match result {
            Ok(()) => {
                let pairs = countries.len() * (countries.len() - 1);
                println!(
                    "Demo passed: {pairs} pair(s), every step confirmed ({} ms).",
                    started.elapsed().as_millis()
                );
                Ok(Outcome::Success)
            }
            Err(e) => Err(e.context("the demo failed")),
        }
    })
}

/// How often the hubs track their exports at the simulated IPPC hub and poll it for imports.
const IPPC_EVERY: Duration = Duration::from_millis(200);

/// Starts the IPPC hub simulator in `dir` for `countries` and Korea, and has every hub enable
/// Korea (the shipped partners file with its row enabled) and log in to the simulator;
/// `None` (said so) when the hub's WSDL is not there.
async fn ippc_hub(
    dir: &std::path::Path,
    countries: &[MemberState],
    options: &mut TestbedOptions,
) -> anyhow::Result<Option<(EphytoHub, MemberState)>> {
    let wsdl = asw_testbed::ephyto_hub::wsdl_path();
    if !wsdl.is_file() {
        println!(
            "e-Phyto through the IPPC ePhyto Hub: skipped (its WSDL is not at {})",
            wsdl.display()
        );
        return Ok(None);
    }
    let korea: MemberState = "KR"
        .parse()
        .context("Korea's row in schemas/partners.toml")?;
    // Absolute: the hubs' configurations, in folders of their own, name its files.
    let sim_dir = std::path::absolute(dir.join("ephyto-hub"))?;
    let _ = std::fs::remove_dir_all(&sim_dir);
    std::fs::create_dir_all(&sim_dir)?;
    let mut codes: Vec<&str> = countries.iter().map(|c| c.code()).collect();
    codes.push(korea.code());
    let hub = EphytoHub::start(&sim_dir, &codes)
        .await
        .context("starting the IPPC ePhyto Hub simulator")?;
    let partners = sim_dir.join("partners.toml");
    std::fs::write(
        &partners,
        asw_testbed::shipped_partners_with(korea.code(), |row| {
            row.replace("enabled = false", "enabled = true")
        }),
    )?;
    options.hub_toml = format!("partners_file = {:?}\n", partners.display().to_string());
    for &c in countries {
        options
            .hub_sections
            .insert(c, hub.section(c.code(), IPPC_EVERY)?);
    }
    println!(
        "IPPC ePhyto Hub simulator at {}; the partners file enables {} ({}, network {}, \
         e-Phyto through the IPPC hub)",
        hub.url(),
        korea.code(),
        korea.info().name,
        korea.info().network
    );
    Ok(Some((hub, korea)))
}

/// Waits until `found` finds something at the simulator.
async fn at_hub<T>(what: &str, found: impl Fn() -> Option<T>) -> anyhow::Result<T> {
    let deadline = Instant::now() + STEP_TIMEOUT;
    loop {
        if let Some(t) = found() {
            return Ok(t);
        }
        if Instant::now() > deadline {
            bail!("timed out waiting for {what} at the IPPC hub");
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// The bare certificate an e-Phyto message carries, and its number (its first `ram:ID`).
fn certificate_of(message: &Message) -> anyhow::Result<(String, String)> {
    let Document::Xml(body) = &message.document else {
        bail!("an e-Phyto has an XML body");
    };
    let xml = body.xml.trim();
    let xml = xml
        .strip_prefix("<?xml")
        .and_then(|r| r.split_once("?>"))
        .map_or(xml, |(_, r)| r)
        .trim();
    let number = xml
        .split_once("<ram:ID>")
        .and_then(|(_, r)| r.split_once('<'))
        .map(|(n, _)| n.to_owned())
        .context("the certificate's number")?;
    Ok((xml.to_owned(), number))
}

/// `from`'s e-Phyto to Korea through the IPPC hub, tracked to acknowledged; then Korea's
/// certificate for `from`, imported from the hub and delivered to `from`'s back-office.
async fn play_ippc(
    testbed: &Testbed,
    hub: &EphytoHub,
    from: MemberState,
    korea: MemberState,
) -> anyhow::Result<()> {
    let t0 = Instant::now();
    let ephyto = fresh(DocumentKind::Ephyto, from, korea, 2);
    let id = ephyto.header.message_id;
    let (_, number) = certificate_of(&ephyto)?;
    println!("e-Phyto {number} ({id}) {from} -> {korea} through the IPPC ePhyto Hub");
    testbed
        .send(from, DocumentKind::Ephyto, ephyto.to_xml()?.as_bytes())
        .await?;
    step(t0, from, "sent the e-Phyto to asw.outbound".into());
    let envelope = at_hub("the exported envelope", || {
        hub.envelopes()
            .into_iter()
            .find(|e| e.nppo_number == number)
    })
    .await?;
    println!(
        "{:>6} ms  IPPC hub        took it with DeliverEnvelope ({} -> {}), delivery number {}",
        t0.elapsed().as_millis(),
        envelope.from,
        envelope.to,
        envelope.number
    );
    hub.set_tracking(&envelope.number, Tracking::Delivered, None);
    println!(
        "{:>6} ms  IPPC hub        {korea}'s NPPO pulled and acknowledged it: tracking Delivered",
        t0.elapsed().as_millis()
    );
    let outcome_key = names::outcome_key(DocumentKind::Ephyto, korea);
    testbed
        .wait_for(from, "the acknowledgement outcome", STEP_TIMEOUT, |m| {
            is_outcome(m, &outcome_key, id, "acknowledged")
        })
        .await?;
    step(
        t0,
        from,
        format!("told on {outcome_key}: acknowledged (the hub's tracking)"),
    );

    let t0 = Instant::now();
    let theirs = fresh(DocumentKind::Ephyto, korea, from, 2);
    let (certificate, number) = certificate_of(&theirs)?;
    println!("e-Phyto {number} {korea} -> {from} through the IPPC ePhyto Hub");
    let delivery = hub.inject(
        korea.code(),
        from.code(),
        &number,
        InjectedContent::Base64(certificate.clone().into_bytes()),
    );
    println!(
        "{:>6} ms  IPPC hub        {korea}'s NPPO delivered it for {from}, delivery number {delivery}",
        t0.elapsed().as_millis()
    );
    let key = names::inbound_key(DocumentKind::Ephyto, korea);
    let got = testbed
        .wait_for(from, "the imported e-Phyto", STEP_TIMEOUT, |m| {
            m.routing_key == key && m.header("x-asw-hub-delivery-number") == Some(delivery.as_str())
        })
        .await?;
    if got.body != certificate.as_bytes() {
        bail!("the imported certificate is not the one {korea} delivered");
    }
    step(
        t0,
        from,
        format!(
            "received {korea}'s SPS certificate on {} (through {})",
            got.routing_key,
            got.header("x-asw-channel").unwrap_or("?")
        ),
    );
    at_hub("the import's acknowledgement", || {
        hub.envelope(&delivery)
            .filter(|e| e.tracking == Tracking::Delivered)
    })
    .await?;
    println!(
        "{:>6} ms  IPPC hub        {from}'s hub acknowledged it once delivered: tracking Delivered",
        t0.elapsed().as_millis()
    );
    Ok(())
}

fn list(states: &[MemberState]) -> String {
    states
        .iter()
        .map(|s| s.code())
        .collect::<Vec<_>>()
        .join(", ")
}

fn now() -> OffsetDateTime {
    let now = OffsetDateTime::now_utc();
    now.replace_nanosecond(0).unwrap_or(now)
}

fn fresh(kind: DocumentKind, from: MemberState, to: MemberState, items: u32) -> Message {
    let created_at = now();
    let seed = u64::try_from(created_at.unix_timestamp_nanos() % i128::from(u64::MAX)).unwrap_or(0)
        ^ rand_seed();
    sample::message(&SampleSpec {
        kind,
        from,
        to,
        items,
        seed,
        created_at,
    })
}

fn rand_seed() -> u64 {
    uuid::Uuid::new_v4().as_u64_pair().0
}

fn reference_of(message: &Message) -> String {
    match &message.document {
        Document::FormD(d) => d.reference_number.clone(),
        Document::Acdd(d) => d.declaration_number.clone(),
        _ => String::new(),
    }
}

/// Makes `reply` answer `original`.
fn answering(mut reply: Message, original: &Message) -> Message {
    reply.header.correlation_id = Some(original.header.message_id);
    let reference = reference_of(original);
    match &mut reply.document {
        Document::FormDStatus(s) => s.reference_number = reference,
        Document::AcddResponse(r) => r.declaration_number = reference,
        _ => {}
    }
    reply
}

fn is_document(m: &Received, key: &str, id: uuid::Uuid) -> bool {
    m.routing_key == key && m.header(names::HEADER_MESSAGE_ID) == Some(id.to_string().as_str())
}

fn is_outcome(m: &Received, key: &str, id: uuid::Uuid, outcome: &str) -> bool {
    m.routing_key == key
        && m.header(names::HEADER_MESSAGE_ID) == Some(id.to_string().as_str())
        && m.header(names::HEADER_OUTCOME) == Some(outcome)
}

fn step(t0: Instant, who: MemberState, what: String) {
    println!(
        "{:>6} ms  {who} back-office  {what}",
        t0.elapsed().as_millis()
    );
}

async fn play_formd(testbed: &Testbed, from: MemberState, to: MemberState) -> anyhow::Result<()> {
    let t0 = Instant::now();
    let form_d = fresh(DocumentKind::FormD, from, to, 3);
    let id = form_d.header.message_id;
    println!("e-Form D {} ({id}) {from} -> {to}", reference_of(&form_d));
    testbed
        .send(from, DocumentKind::FormD, form_d.to_xml()?.as_bytes())
        .await?;
    step(t0, from, "sent the e-Form D to asw.outbound".into());
    let got = testbed
        .wait_for(to, "the e-Form D", STEP_TIMEOUT, |m| {
            is_document(m, &names::inbound_key(DocumentKind::FormD, from), id)
        })
        .await?;
    step(
        t0,
        to,
        format!(
            "received it on {} (signature by {} verified, certificate {}...)",
            got.routing_key,
            got.header("x-asw-signer").unwrap_or("?"),
            &got.header("x-asw-signer-fingerprint")
                .unwrap_or("?")
                .chars()
                .take(16)
                .collect::<String>()
        ),
    );
    let outcome_key = names::outcome_key(DocumentKind::FormD, to);
    let ack = testbed
        .wait_for(from, "the receipt outcome", STEP_TIMEOUT, |m| {
            is_outcome(m, &outcome_key, id, "acknowledged")
        })
        .await?;
    step(
        t0,
        from,
        format!("told on {}: acknowledged by {to}", ack.routing_key),
    );
    let ack_key = names::inbound_key(DocumentKind::FormDAck, to);
    let receipt = testbed
        .wait_for(from, "the receipt acknowledgement", STEP_TIMEOUT, |m| {
            m.routing_key == ack_key
                && m.properties.correlation_id.as_deref() == Some(id.to_string().as_str())
        })
        .await?;
    step(
        t0,
        from,
        format!("received {to}'s signed receipt on {}", receipt.routing_key),
    );
    let status = answering(fresh(DocumentKind::FormDStatus, to, from, 1), &form_d);
    let status_id = status.header.message_id;
    testbed
        .send(to, DocumentKind::FormDStatus, status.to_xml()?.as_bytes())
        .await?;
    step(
        t0,
        to,
        "sent the customs status: preferential treatment given".into(),
    );
    testbed
        .wait_for(from, "the status", STEP_TIMEOUT, |m| {
            is_document(
                m,
                &names::inbound_key(DocumentKind::FormDStatus, to),
                status_id,
            )
        })
        .await?;
    let told = testbed
        .wait_for(from, "the status outcome", STEP_TIMEOUT, |m| {
            is_outcome(m, &outcome_key, id, "status")
        })
        .await?;
    let said: serde_json::Value = serde_json::from_slice(&told.body).unwrap_or_default();
    step(
        t0,
        from,
        format!(
            "received the status on formd-status.{to}: {}",
            said["status"].as_str().unwrap_or("?")
        ),
    );
    Ok(())
}

async fn play_acdd(testbed: &Testbed, from: MemberState, to: MemberState) -> anyhow::Result<()> {
    let t0 = Instant::now();
    let acdd = fresh(DocumentKind::Acdd, from, to, 2);
    let id = acdd.header.message_id;
    println!("ACDD {} ({id}) {from} -> {to}", reference_of(&acdd));
    testbed
        .send(from, DocumentKind::Acdd, acdd.to_xml()?.as_bytes())
        .await?;
    step(t0, from, "sent the ACDD to asw.outbound".into());
    let got = testbed
        .wait_for(to, "the ACDD", STEP_TIMEOUT, |m| {
            is_document(m, &names::inbound_key(DocumentKind::Acdd, from), id)
        })
        .await?;
    step(
        t0,
        to,
        format!(
            "received it on {} (signature by {} verified)",
            got.routing_key,
            got.header("x-asw-signer").unwrap_or("?")
        ),
    );
    let outcome_key = names::outcome_key(DocumentKind::Acdd, to);
    testbed
        .wait_for(from, "the receipt outcome", STEP_TIMEOUT, |m| {
            is_outcome(m, &outcome_key, id, "acknowledged")
        })
        .await?;
    step(
        t0,
        from,
        format!("told on {outcome_key}: acknowledged by {to}"),
    );
    let response = answering(fresh(DocumentKind::AcddResponse, to, from, 1), &acdd);
    let response_id = response.header.message_id;
    testbed
        .send(
            to,
            DocumentKind::AcddResponse,
            response.to_xml()?.as_bytes(),
        )
        .await?;
    step(t0, to, "sent the Customs Response: accepted".into());
    testbed
        .wait_for(from, "the Customs Response", STEP_TIMEOUT, |m| {
            is_document(
                m,
                &names::inbound_key(DocumentKind::AcddResponse, to),
                response_id,
            )
        })
        .await?;
    testbed
        .wait_for(from, "the response outcome", STEP_TIMEOUT, |m| {
            is_outcome(m, &outcome_key, id, "status")
        })
        .await?;
    step(
        t0,
        from,
        format!("received the Customs Response on acdd-response.{to}: accepted"),
    );
    Ok(())
}

async fn play_ephyto(testbed: &Testbed, from: MemberState, to: MemberState) -> anyhow::Result<()> {
    let t0 = Instant::now();
    let ephyto = fresh(DocumentKind::Ephyto, from, to, 2);
    let id = ephyto.header.message_id;
    println!("e-Phyto ({id}) {from} -> {to} over the ASW");
    testbed
        .send(from, DocumentKind::Ephyto, ephyto.to_xml()?.as_bytes())
        .await?;
    step(t0, from, "sent the e-Phyto to asw.outbound".into());
    let got = testbed
        .wait_for(to, "the e-Phyto", STEP_TIMEOUT, |m| {
            is_document(m, &names::inbound_key(DocumentKind::Ephyto, from), id)
        })
        .await?;
    step(
        t0,
        to,
        format!(
            "received the SPS certificate on {} (signature by {} verified)",
            got.routing_key,
            got.header("x-asw-signer").unwrap_or("?")
        ),
    );
    let outcome_key = names::outcome_key(DocumentKind::Ephyto, to);
    testbed
        .wait_for(from, "the acknowledgement outcome", STEP_TIMEOUT, |m| {
            is_outcome(m, &outcome_key, id, "acknowledged")
        })
        .await?;
    step(
        t0,
        from,
        format!("told on {outcome_key}: acknowledged by {to}"),
    );
    let ack_key = names::inbound_key(DocumentKind::EphytoAck, to);
    let ack = testbed
        .wait_for(from, "the SPS acknowledgement", STEP_TIMEOUT, |m| {
            m.routing_key == ack_key
                && m.properties.correlation_id.as_deref() == Some(id.to_string().as_str())
        })
        .await?;
    step(
        t0,
        from,
        format!(
            "received {to}'s signed SPS acknowledgement on {}",
            ack.routing_key
        ),
    );
    Ok(())
}
