//! Support for the end-to-end tests: a testbed of hubs in vhosts of their own, and helpers to
//! act as a partner gateway or an operator would.

use std::path::Path;
use std::time::Duration;

use anyhow::Context;
use asw_amqp::{ConfirmingPublisher, Consumer, Message, Properties};
use asw_model::document::Message as Document;
use asw_model::sample::{self, SampleSpec};
use asw_model::{DocumentKind, MemberState};
use asw_route::names;
use asw_testbed::{Testbed, TestbedOptions, partner_password};
use time::OffsetDateTime;

/// A member state by code.
pub fn state(code: &str) -> MemberState {
    MemberState::from_alpha2(code).unwrap_or_else(|| panic!("{code} is not a member state"))
}

/// Starts hubs for `codes` in vhosts named `aswt-<random>-<cc>`, so tests run in parallel.
pub async fn testbed(codes: &[&str]) -> (Testbed, tempfile::TempDir) {
    testbed_with(codes, |_| {}).await
}

/// Like [`testbed`], with the options changed by `adjust` first.
pub async fn testbed_with(
    codes: &[&str],
    adjust: impl FnOnce(&mut TestbedOptions),
) -> (Testbed, tempfile::TempDir) {
    let dir = tempfile::tempdir().expect("temp dir");
    let countries = codes.iter().map(|c| state(c)).collect();
    let mut options = TestbedOptions::local(countries, dir.path().to_owned());
    let tag = uuid::Uuid::new_v4().simple().to_string();
    options.vhost_prefix = format!("aswt-{}-", &tag[..10]);
    adjust(&mut options);
    let testbed = Testbed::start(options).await.expect("testbed starts");
    (testbed, dir)
}

/// A fresh valid unsigned document.
pub fn document(kind: DocumentKind, from: &str, to: &str) -> Document {
    let created_at = OffsetDateTime::now_utc();
    let seed = uuid::Uuid::new_v4().as_u64_pair().0;
    sample::message(&SampleSpec {
        kind,
        from: state(from),
        to: state(to),
        items: 3,
        seed,
        created_at,
    })
}

/// The AMQP URL of a member state's vhost in the testbed, as `user`.
pub fn url_as(testbed: &Testbed, vhost_of: MemberState, user: &str, password: &str) -> String {
    format!(
        "amqp://{user}:{password}@127.0.0.1:5672/{}",
        testbed.options().vhost(vhost_of)
    )
}

/// Publishes `bytes` into `to`'s `asw.partner.in` as user `partner-<as_partner>` with routing key
/// `routing_key`, the way a partner gateway would.
pub async fn publish_as_partner(
    testbed: &Testbed,
    to: MemberState,
    as_partner: MemberState,
    routing_key: &str,
    bytes: &[u8],
) -> anyhow::Result<()> {
    publish_as_partner_with(
        testbed,
        to,
        as_partner,
        routing_key,
        bytes,
        Properties::new(),
    )
    .await
}

/// Like [`publish_as_partner`], with extra properties (headers a partner chose to set).
pub async fn publish_as_partner_with(
    testbed: &Testbed,
    to: MemberState,
    as_partner: MemberState,
    routing_key: &str,
    bytes: &[u8],
    extra: Properties,
) -> anyhow::Result<()> {
    let user = names::partner_user(as_partner);
    let url = url_as(testbed, to, &user, &partner_password(as_partner));
    let properties = extra
        .with_content_type(names::CONTENT_TYPE_XML)
        .with_user_id(user);
    publish_once(
        &url,
        "e2e partner",
        names::PARTNER_IN_EXCHANGE,
        routing_key,
        bytes,
        &properties,
    )
    .await
    .context("publishing as a partner")
}

/// Connects to `url` (as connection `name`), publishes `bytes` to `exchange` with `routing_key`
/// and `properties`, waits for the broker's confirm and closes the connection.
pub async fn publish_once(
    url: &str,
    name: &str,
    exchange: &str,
    routing_key: &str,
    bytes: &[u8],
    properties: &Properties,
) -> anyhow::Result<()> {
    let connection = asw_amqp::connect(url, name).await?;
    let mut publisher = ConfirmingPublisher::new(connection.open_channel().await?).await?;
    let published = publisher
        .publish(exchange, routing_key, bytes, properties)
        .await;
    let _ = connection.close().await;
    Ok(published?)
}

/// Takes up to `count` messages from `queue` in `at`'s vhost (as the admin), waiting at most
/// `timeout` for them.
pub async fn take(
    testbed: &Testbed,
    at: MemberState,
    queue: &str,
    count: usize,
    timeout: Duration,
) -> Vec<Message> {
    let url = url_as(testbed, at, "guest", "guest");
    let connection = asw_amqp::connect(&url, "e2e operator")
        .await
        .expect("connect");
    let channel = connection.open_channel().await.expect("channel");
    let mut consumer = Consumer::start(channel, queue, 100, "e2e")
        .await
        .expect("consume");
    let mut out = Vec::new();
    let deadline = tokio::time::Instant::now() + timeout;
    while out.len() < count {
        match tokio::time::timeout_at(deadline, consumer.next()).await {
            Ok(Some(Ok(delivery))) => {
                delivery.acker.ack().await.expect("ack");
                out.push(delivery.message);
            }
            _ => break,
        }
    }
    let _ = connection.close().await;
    out
}

/// A deployment's schemas directory: the shipped XSDs and kinds plus the example kind (see
/// [`asw_testbed::schemas_with_example_kind`]), and a partners file in which VN and TH (not SG)
/// exchange it; returns the hub configuration's keys naming them (for
/// [`TestbedOptions::hub_toml`]).
pub fn deployment_with_example_kind(root: &Path) -> String {
    asw_testbed::schemas_with_example_kind(root);
    let shipped = Path::new(env!("CARGO_MANIFEST_DIR")).join("../schemas/partners.toml");
    let shipped = std::fs::read_to_string(shipped).expect("partners");
    let rows: Vec<String> = shipped
        .split("[[partner]]")
        .map(|row| {
            if row.contains("code = \"VN\"") || row.contains("code = \"TH\"") {
                row.replace(
                    "\"ephyto-ack\"]",
                    "\"ephyto-ack\", \"kr-co\", \"kr-co-ack\"]",
                )
            } else {
                row.to_owned()
            }
        })
        .collect();
    std::fs::write(root.join("partners.toml"), rows.join("[[partner]]")).expect("write");
    format!(
        "kinds_dir = {:?}\npartners_file = {:?}\n",
        root.join("kinds").display().to_string(),
        root.join("partners.toml").display().to_string()
    )
}

/// The IPPC ePhyto Hub channel's deployments in tests: the partners file and `[ephyto_hub]`
/// section for the simulated hub, and what the simulator holds.
pub mod ippc {
    use std::path::Path;
    use std::time::Duration;

    use asw_model::document::{Document, Message};
    use asw_testbed::ephyto_hub::{EphytoHub, StoredEnvelope};

    /// The longest a wait for the simulator may take.
    pub const WAIT: Duration = Duration::from_secs(30);

    /// A partners file in which `code`'s e-Phyto goes through the IPPC hub, named by
    /// `partners_file` (for every hub), and the `[ephyto_hub]` section of the simulator with
    /// `client`'s certificate (for that hub alone).
    pub fn deployment(dir: &Path, hub: &EphytoHub, code: &str, client: &str) -> (String, String) {
        let partners = partners_file(dir, code, |row| {
            row.replace(
                "channel = \"asw-broker\"\n",
                "channel = \"asw-broker\"\n[partner.channels]\nephyto = \"ippc-hub\"\n",
            )
        });
        (partners, hub_section(hub, client))
    }

    /// The shipped partners file with `code`'s row changed by `edit`, written in `dir`, as the
    /// `partners_file` line of a hub's configuration.
    pub fn partners_file(dir: &Path, code: &str, edit: impl Fn(&str) -> String) -> String {
        let partners = dir.join(format!("partners-{}.toml", code.to_ascii_lowercase()));
        std::fs::write(&partners, asw_testbed::shipped_partners_with(code, edit)).expect("write");
        format!("partners_file = {:?}\n", partners.display().to_string())
    }

    /// The `[ephyto_hub]` section of the simulator with `client`'s certificate, tracking and
    /// importing every 200 ms.
    pub fn hub_section(hub: &EphytoHub, client: &str) -> String {
        hub.section(client, Duration::from_millis(200))
            .expect("the client certificate")
    }

    /// Hubs for VN and TH on the local broker and the simulated IPPC hub, `on_hub`'s e-Phyto
    /// going through the IPPC hub (for every hub) and `client` (the other one) holding its
    /// client certificate there; `adjust` changes the testbed's options further.
    pub struct IppcExchange {
        /// The simulated IPPC ePhyto Hub.
        pub hub: EphytoHub,
        /// The hubs.
        pub tb: asw_testbed::Testbed,
        /// The simulator's and the testbed's folders, removed when dropped: bind them
        /// (`dirs: _dirs`) for as long as the exchange runs.
        pub dirs: (tempfile::TempDir, tempfile::TempDir),
    }

    impl IppcExchange {
        /// Starts it (see [`IppcExchange`]).
        pub async fn start(
            on_hub: &str,
            client: &str,
            adjust: impl FnOnce(&mut asw_testbed::TestbedOptions),
        ) -> IppcExchange {
            let sim_dir = tempfile::tempdir().expect("dir");
            let hub = EphytoHub::start(sim_dir.path(), &["VN", "TH"])
                .await
                .expect("the simulated ePhyto hub");
            let (hub_toml, section) = deployment(sim_dir.path(), &hub, on_hub, client);
            let (tb, dir) = super::testbed_with(&["VN", "TH"], |o| {
                o.hub_toml = hub_toml;
                o.hub_sections.insert(super::state(client), section);
                adjust(o);
            })
            .await;
            IppcExchange {
                hub,
                tb,
                dirs: (sim_dir, dir),
            }
        }
    }

    /// Waits (at most [`WAIT`]) for the simulator to hold an envelope with this NPPO certificate number.
    pub async fn envelope_of(hub: &EphytoHub, nppo_number: &str) -> StoredEnvelope {
        let deadline = tokio::time::Instant::now() + WAIT;
        loop {
            if let Some(e) = hub
                .envelopes()
                .into_iter()
                .find(|e| e.nppo_number == nppo_number)
            {
                return e;
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "no envelope {nppo_number} at the hub; requests: {:?}",
                hub.requests()
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// How many `DeliverEnvelope` calls the simulator has answered or failed.
    pub fn delivers(hub: &EphytoHub) -> usize {
        hub.requests()
            .iter()
            .filter(|(operation, _)| operation == "DeliverEnvelope")
            .count()
    }

    /// Waits (at most [`WAIT`]) until `journal` holds outbound message `id` with the IPPC hub's
    /// delivery number (journaled with `sent`), and returns its record.
    pub async fn until_numbered(
        journal: &dyn asw_journal::Journal,
        id: uuid::Uuid,
    ) -> asw_journal::MessageRecord {
        let deadline = tokio::time::Instant::now() + WAIT;
        loop {
            let record = journal
                .get(asw_journal::Direction::Outbound, id)
                .expect("journal")
                .expect("journaled");
            if record.summary.transport_ref.is_some() {
                return record;
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "message {id} never journaled sent with its hub delivery number"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// Publishes `signed`, a copy of outbound message `id`, straight into the IPPC export queue
    /// for `to` in `of`'s vhost (as a replay run again after the first went through would).
    pub async fn publish_copy(
        tb: &asw_testbed::Testbed,
        of: asw_model::MemberState,
        to: asw_model::MemberState,
        id: uuid::Uuid,
        signed: &[u8],
    ) {
        let properties = super::Properties::new()
            .with_message_id(id.to_string())
            .with_content_type(super::names::CONTENT_TYPE_XML)
            .with_header(super::names::HEADER_MESSAGE_ID, id.to_string());
        super::publish_once(
            &super::url_as(tb, of, "guest", "guest"),
            "test",
            "",
            &super::names::ippc_out_queue(to),
            signed,
            &properties,
        )
        .await
        .expect("publish the copy");
    }

    /// The SPS certificate in an e-Phyto's body, without its XML declaration.
    pub fn certificate_of(doc: &Message) -> String {
        let Document::Xml(body) = &doc.document else {
            panic!("an e-Phyto has an XML body");
        };
        let xml = body.xml.trim();
        xml.strip_prefix("<?xml")
            .and_then(|r| r.split_once("?>"))
            .map_or(xml, |(_, r)| r)
            .trim()
            .to_owned()
    }

    /// The certificate's number (its first `ram:ID`: `SPSExchangedDocument/ID`).
    pub fn number_of(xml: &str) -> String {
        let start = xml.find("<ram:ID>").expect("ID") + "<ram:ID>".len();
        let end = xml[start..].find('<').expect("end") + start;
        xml[start..end].to_owned()
    }
}
