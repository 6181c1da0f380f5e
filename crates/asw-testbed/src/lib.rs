//! A set of hubs on the local broker, one vhost per member state, with a back-office queue in
//! each: what `aswctl demo` runs and what the end-to-end tests drive. Keys, certificates, trust
//! stores, configuration files and journals are made fresh in a directory.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use anyhow::Context;
use asw_amqp::{ConfirmingPublisher, Connection, Consumer, Management, Properties};
use asw_model::{DocumentKind, MemberState};
use asw_route::{Argument, Binding, Queue, names};
use asw_sign::keygen::{self, KeyAlgorithm};
use time::OffsetDateTime;
use tokio::sync::Notify;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use asw_gateway::config::HubConfig;
use asw_gateway::hub::Hub;

pub mod ephyto_hub;
pub mod guard;
pub mod process;

pub use guard::{PgSchema, Vhosts};
pub use process::HubProcess;

/// Where the broker is and how to name things.
#[derive(Debug, Clone)]
pub struct TestbedOptions {
    /// Member states, each with a hub.
    pub countries: Vec<MemberState>,
    /// Directory for keys, trust stores, configuration and journals (made if missing).
    pub dir: PathBuf,
    /// AMQP URL of the broker without vhost, with the admin user (`amqp://guest:guest@127.0.0.1:5672`).
    pub amqp: String,
    /// Management API URL.
    pub management_url: String,
    /// Management (admin) user and password.
    pub admin: (String, String),
    /// Vhost names are this prefix plus the lower-case code (`asw-` gives `asw-vn`).
    pub vhost_prefix: String,
    /// Worker threads per hub.
    pub workers: usize,
    /// Lanes per pipeline of every hub (`[limits] lanes`).
    pub lanes: usize,
    /// Member states whose hub is not started in-process: configuration, keys and topology are
    /// made, and the caller runs `aswhub` for them.
    pub external: Vec<MemberState>,
    /// Partners pull their documents (nothing is pushed): documents for a partner stay in
    /// `asw.partner.out.<CC>` (benchmarks count them there).
    pub pull: bool,
    /// Unacknowledged deliveries per consumer in each hub.
    pub prefetch: u16,
    /// A PostgreSQL journal URL for every hub instead of a SQLite file each (the URL should
    /// give each hub its own schema, or they share one journal).
    pub journal_url: Option<String>,
    /// The `[acks]` section of every hub (the default when `None`).
    pub acks: Option<asw_gateway::config::AcksConfig>,
    /// Every hub serves its metrics on a free port of 127.0.0.1 (see
    /// [`Hub::metrics_address`]).
    pub metrics: bool,
    /// Every hub serves the operator console beside its metrics (implies `metrics`), with the
    /// accounts of [`CONSOLE_USERS`].
    pub console: bool,
    /// The routing keys the back-office queue of a member state is bound with in `asw.inbound`;
    /// `#` (everything) for the states not listed. A back-office that binds only some kinds.
    pub back_office_keys: BTreeMap<MemberState, Vec<String>>,
    /// TLS of every connection (`amqps://` in `amqp`, `https://` in `management_url`,
    /// `sslmode=verify-full` in `journal_url`): written as `ca`, `cert`, `key` into every hub's
    /// `[broker]`, `[journal]` and push `[partners.<CC>]`, and used by the testbed's own
    /// connections. Empty: none.
    pub tls: asw_amqp::TlsFiles,
    /// Every hub has two `[[back_office]]` systems with broker identities of their own
    /// ([`MINISTRIES`]: the trade ministry, customs and plant protection), each publishing as its own user and
    /// consuming its own queues, instead of the one shared [`BACK_OFFICE_QUEUE`].
    pub ministries: bool,
    /// Top-level keys added to every hub's configuration (`kinds_dir = "..."`,
    /// `partners_file = "..."`), one per line.
    pub hub_toml: String,
    /// Sections added at the end of one hub's configuration (`[ephyto_hub]` with that hub's
    /// client certificate).
    pub hub_sections: BTreeMap<MemberState, String>,
}

impl TestbedOptions {
    /// The local broker with guest/guest, vhosts `asw-<cc>`, files in `dir`.
    pub fn local(countries: Vec<MemberState>, dir: PathBuf) -> TestbedOptions {
        TestbedOptions {
            countries,
            dir,
            amqp: "amqp://guest:guest@127.0.0.1:5672".into(),
            management_url: "http://127.0.0.1:15672".into(),
            admin: ("guest".into(), "guest".into()),
            vhost_prefix: "asw-".into(),
            workers: 1,
            lanes: asw_gateway::hub::LANES,
            external: Vec::new(),
            pull: false,
            prefetch: 100,
            journal_url: None,
            acks: None,
            metrics: false,
            console: false,
            back_office_keys: BTreeMap::new(),
            tls: asw_amqp::TlsFiles::default(),
            ministries: false,
            hub_toml: String::new(),
            hub_sections: BTreeMap::new(),
        }
    }

    /// The vhost of a member state's hub.
    pub fn vhost(&self, state: MemberState) -> String {
        format!("{}{}", self.vhost_prefix, state.lower())
    }

    /// The broker user of a ministry (`trade-ministry`, `customs`) of a member state's hub:
    /// users belong to the broker, so it is named after the hub's vhost (`asw-vn-customs`).
    pub fn ministry_user(&self, state: MemberState, ministry: &str) -> String {
        format!("{}-{ministry}", self.vhost(state))
    }

    /// The broker users of every ministry, when [`ministries`](Self::ministries) is set.
    pub fn ministry_users(&self) -> Vec<String> {
        if !self.ministries {
            return Vec::new();
        }
        self.countries
            .iter()
            .flat_map(|&s| {
                MINISTRIES
                    .iter()
                    .map(move |m| self.ministry_user(s, m.name))
            })
            .collect()
    }
}

/// A back-office system of every hub when [`TestbedOptions::ministries`] is set.
#[derive(Debug, Clone, Copy)]
pub struct Ministry {
    /// Its name (the broker user is [`TestbedOptions::ministry_user`]).
    pub name: &'static str,
    /// Kinds it sends.
    pub sends: &'static [DocumentKind],
    /// Kinds it receives (from every partner).
    pub receives: &'static [DocumentKind],
}

/// The trade ministry (e-Form D and its status), customs (ACDD and its Customs Response), as in
/// docs/OPERATIONS.md, and the plant protection organisation (e-Phyto).
pub const MINISTRIES: [Ministry; 3] = [
    Ministry {
        name: "trade-ministry",
        sends: &[DocumentKind::FormD, DocumentKind::FormDStatus],
        receives: &[
            DocumentKind::FormD,
            DocumentKind::FormDAck,
            DocumentKind::FormDStatus,
        ],
    },
    Ministry {
        name: "customs",
        sends: &[DocumentKind::Acdd, DocumentKind::AcddResponse],
        receives: &[
            DocumentKind::Acdd,
            DocumentKind::AcddAck,
            DocumentKind::AcddResponse,
        ],
    },
    Ministry {
        name: "plant-protection",
        sends: &[DocumentKind::Ephyto],
        receives: &[DocumentKind::Ephyto, DocumentKind::EphytoAck],
    },
];

/// The shipped partners file (`schemas/partners.toml`) with the row of `code` changed by
/// `edit` (say, Korea enabled), for a deployment's `partners_file`.
pub fn shipped_partners_with(code: &str, edit: impl Fn(&str) -> String) -> String {
    include_str!("../../../schemas/partners.toml")
        .split("[[partner]]")
        .map(|row| {
            if row.contains(&format!("\ncode = \"{code}\"")) {
                edit(row)
            } else {
                row.to_owned()
            }
        })
        .collect::<Vec<_>>()
        .join("[[partner]]")
}

/// Makes a deployment's schemas directory in `root` from the source tree's `schemas/`: the
/// shipped XSDs (`*.xsd`) beside a `kinds/` with the shipped kinds (`kinds/*`), plus the example
/// kind of `samples/kinds/kr-co/` (its `.toml` files into `kinds/`, its XSDs beside the others).
pub fn schemas_with_example_kind(root: &Path) {
    let schemas = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../schemas");
    std::fs::create_dir_all(root.join("kinds")).expect("mkdir");
    for entry in std::fs::read_dir(&schemas).expect("schemas") {
        let path = entry.expect("entry").path();
        if path.extension().is_some_and(|x| x == "xsd") {
            std::fs::copy(&path, root.join(path.file_name().expect("name"))).expect("copy");
        }
    }
    for entry in std::fs::read_dir(schemas.join("kinds")).expect("kinds") {
        let path = entry.expect("entry").path();
        std::fs::copy(
            &path,
            root.join("kinds").join(path.file_name().expect("name")),
        )
        .expect("copy");
    }
    // The example kind and its receipt: the kind files into kinds/, the XSDs beside the others.
    for entry in std::fs::read_dir(schemas.join("samples/kinds/kr-co")).expect("example") {
        let path = entry.expect("entry").path();
        let name = path.file_name().expect("name");
        match path.extension().and_then(|x| x.to_str()) {
            Some("toml") => std::fs::copy(&path, root.join("kinds").join(name)),
            Some("xsd") => std::fs::copy(&path, root.join(name)),
            _ => continue,
        }
        .expect("copy");
    }
}

/// The password of a ministry's broker user in testbeds.
pub fn ministry_password(user: &str) -> String {
    format!("aswhub-testbed-{user}")
}

/// The console accounts of every testbed hub with [`TestbedOptions::console`]: name, role,
/// password.
pub const CONSOLE_USERS: [(&str, asw_console::users::Role, &str); 2] = [
    (
        "olga",
        asw_console::users::Role::Operator,
        "operator password 1",
    ),
    ("vic", asw_console::users::Role::Viewer, "viewer password 1"),
];

/// A message a back-office received from its hub's `asw.inbound`.
#[derive(Debug, Clone)]
pub struct Received {
    /// The queue it was read from ([`BACK_OFFICE_QUEUE`], or a ministry's own).
    pub queue: String,
    /// Routing key (`formd.VN`, `outcome.formd.TH`...).
    pub routing_key: String,
    /// Body (the signed document, or outcome JSON).
    pub body: Vec<u8>,
    /// Properties and headers.
    pub properties: Properties,
}

impl Received {
    /// A string header.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.properties.header(name).and_then(|v| v.as_str())
    }

    /// True when the hub marked it a possible duplicate ([`names::HEADER_POSSIBLE_DUPLICATE`]).
    pub fn possible_duplicate(&self) -> bool {
        marked_possible_duplicate(&self.properties)
    }
}

/// True when a delivery's properties mark it a possible duplicate
/// ([`names::HEADER_POSSIBLE_DUPLICATE`]).
pub fn marked_possible_duplicate(properties: &Properties) -> bool {
    matches!(
        properties.header(names::HEADER_POSSIBLE_DUPLICATE),
        Some(asw_amqp::HeaderValue::Bool(true))
    )
}

/// How many of the copies of one message id, given in arrival order as whether each was marked a
/// possible duplicate, a back-office takes when it drops the marked copies of an id it has taken.
pub fn taken_by_deduplicating_back_office(marks: impl IntoIterator<Item = bool>) -> usize {
    marks.into_iter().fold(0, |taken, marked| {
        if taken > 0 && marked {
            taken
        } else {
            taken + 1
        }
    })
}

/// The back-office systems of one member state: one sharing the hub's vhost, or its ministries.
struct BackOffice {
    connections: Vec<Connection>,
    senders: Vec<OfficeSender>,
    received: Arc<Mutex<Vec<Received>>>,
    notify: Arc<Notify>,
}

/// How one back-office system publishes.
struct OfficeSender {
    /// Kinds it sends; `None`: every kind.
    sends: Option<&'static [DocumentKind]>,
    /// The `user_id` it sets (its own broker user), if any.
    user: Option<String>,
    publisher: tokio::sync::Mutex<ConfirmingPublisher>,
}

/// Reads `consumer` into `received` until `token` is cancelled or the consumer ends.
fn listen(
    mut consumer: Consumer,
    received: Arc<Mutex<Vec<Received>>>,
    notify: Arc<Notify>,
    token: CancellationToken,
) -> JoinHandle<()> {
    tokio::spawn(async move {
        loop {
            let next = tokio::select! {
                () = token.cancelled() => return,
                next = consumer.next() => next,
            };
            let Some(Ok(delivery)) = next else { return };
            let m = delivery.message;
            if let Ok(mut list) = received.lock() {
                list.push(Received {
                    queue: consumer.queue().to_owned(),
                    routing_key: m.routing_key,
                    body: m.body,
                    properties: m.properties,
                });
            }
            notify.notify_waiters();
            let _ = delivery.acker.ack().await;
        }
    })
}

/// Running hubs and their back-offices.
pub struct Testbed {
    options: TestbedOptions,
    stop: CancellationToken,
    hubs: Vec<JoinHandle<()>>,
    handles: BTreeMap<MemberState, Arc<Hub>>,
    offices: BTreeMap<MemberState, BackOffice>,
    listeners: Vec<JoinHandle<()>>,
    configs: BTreeMap<MemberState, PathBuf>,
    /// Tells the hubs and back-offices to stop if the testbed is dropped without
    /// [`Testbed::stop`] (a failed test); before `vhosts`, so they stop first.
    _stop_on_drop: tokio_util::sync::DropGuard,
    /// Deletes the vhosts if the testbed is dropped without [`Testbed::stop`].
    vhosts: Vhosts,
}

/// Queue of the demo back-office in each vhost, bound to everything in `asw.inbound`.
pub const BACK_OFFICE_QUEUE: &str = "backoffice.all";

/// `amqp` (a broker URL without vhost, with any user) as `user` with `password`, in `vhost`.
fn amqp_as(amqp: &str, user: &str, password: &str, vhost: &str) -> String {
    let (scheme, rest) = amqp.split_once("://").unwrap_or(("amqp", amqp));
    let host = rest.rsplit_once('@').map_or(rest, |(_, h)| h);
    format!("{scheme}://{user}:{password}@{host}/{vhost}")
}

/// The password of user `partner-CC` in testbeds (the same in every vhost, since RabbitMQ users
/// are global).
pub fn partner_password(state: MemberState) -> String {
    format!("aswhub-testbed-{}", state.lower())
}

impl Testbed {
    /// Makes keys and configurations, (re)creates the vhosts and their topology, starts a hub per
    /// member state and a back-office listener per vhost.
    pub async fn start(options: TestbedOptions) -> anyhow::Result<Testbed> {
        let tls = options.tls.load("testbed")?;
        let management = Management::with_tls(
            &options.management_url,
            &options.admin.0,
            &options.admin.1,
            &tls,
        );
        // The TLS keys of a section, when the testbed uses TLS.
        let tls_keys = {
            let mut keys = String::new();
            for (name, path) in [
                ("ca", &options.tls.ca),
                ("cert", &options.tls.cert),
                ("key", &options.tls.key),
            ] {
                if let Some(path) = path {
                    keys.push_str(&format!("{name} = {:?}\n", path.display().to_string()));
                }
            }
            keys
        };
        // From here on, whatever fails leaves no vhost behind.
        let vhosts = Vhosts::of(&options);
        let now = OffsetDateTime::now_utc();
        std::fs::create_dir_all(&options.dir)
            .with_context(|| format!("creating {}", options.dir.display()))?;
        // Keys and certificates of every member state.
        let mut certs = BTreeMap::new();
        for &state in &options.countries {
            let dir = options.dir.join(state.lower());
            let _ = std::fs::remove_dir_all(&dir);
            std::fs::create_dir_all(&dir)?;
            let key = keygen::generate(state, KeyAlgorithm::Rsa2048, 365, now)?;
            std::fs::write(dir.join("key.pem"), &key.key_pem)?;
            std::fs::write(dir.join("cert.pem"), &key.cert_pem)?;
            certs.insert(state, key.cert_pem);
        }
        let mut configs = BTreeMap::new();
        for &state in &options.countries {
            let dir = options.dir.join(state.lower());
            let partners: Vec<MemberState> = options
                .countries
                .iter()
                .copied()
                .filter(|&p| p != state)
                .collect();
            for &p in &partners {
                let trust = dir.join("trust").join(p.code());
                std::fs::create_dir_all(&trust)?;
                std::fs::write(trust.join(format!("{}.pem", p.lower())), &certs[&p])?;
            }
            std::fs::create_dir_all(dir.join("trust"))?;
            let mut toml = format!(
                "# aswhub configuration of {state}, written by the testbed.\ncountry = \"{state}\"\n{}\n[broker]\nurl = \"{}/{}\"\nmanagement_url = \"{}\"\nmanagement_user = \"{}\"\nmanagement_password = \"{}\"\nprefetch = {}\n{tls_keys}\n[signing]\nkey = \"key.pem\"\ncertificate = \"cert.pem\"\ntrust_dir = \"trust\"\n\n[journal]\n{}\n{}\n[limits]\nworkers = {}\nlanes = {}\n\n[retry]\ndelays_ms = [200, 1000]\nmax_attempts = 3\n",
                options.hub_toml,
                options.amqp,
                options.vhost(state),
                options.management_url,
                options.admin.0,
                options.admin.1,
                options.prefetch,
                match &options.journal_url {
                    // `{cc}` in it: each hub its own database or schema.
                    Some(url) => format!("url = \"{}\"", url.replace("{cc}", &state.lower())),
                    None => "path = \"journal.db\"".to_owned(),
                },
                if options.journal_url.is_some() {
                    tls_keys.as_str()
                } else {
                    ""
                },
                options.workers,
                options.lanes,
            );
            if let Some(acks) = &options.acks {
                toml.push_str(&format!(
                    "\n[acks]\ntimeout = \"{}ms\"\nresend = {}\ncheck_every = \"{}ms\"\n",
                    acks.timeout.as_millis(),
                    acks.resend,
                    acks.check_every.as_millis(),
                ));
            }
            if options.metrics || options.console {
                toml.push_str("\n[metrics]\nlisten = \"127.0.0.1:0\"\n");
            }
            if options.console {
                toml.push_str("\n[console]\nusers = \"console-users\"\n");
                let mut users = asw_console::users::Users::default();
                for (name, role, password) in CONSOLE_USERS {
                    users.add(name, role, password)?;
                }
                users.save(&dir.join("console-users"))?;
            }
            for &p in &partners {
                let (scheme, host) = options
                    .amqp
                    .split_once("://")
                    .map_or(("amqp", options.amqp.as_str()), |(s, r)| {
                        (s, r.rsplit_once('@').map_or(r, |(_, h)| h))
                    });
                if options.pull {
                    toml.push_str(&format!(
                        "\n[partners.{p}]\nlink = \"pull\"\npassword = \"{}\"\n",
                        partner_password(p),
                    ));
                    continue;
                }
                toml.push_str(&format!(
                    "\n[partners.{p}]\nlink = \"push\"\nurl = \"{scheme}://{}:{}@{host}/{}\"\npassword = \"{}\"\n{tls_keys}",
                    names::partner_user(state),
                    partner_password(state),
                    options.vhost(p),
                    partner_password(p),
                ));
            }
            if options.ministries {
                for ministry in MINISTRIES {
                    let user = options.ministry_user(state, ministry.name);
                    let file = format!("{}.password", ministry.name);
                    std::fs::write(dir.join(&file), ministry_password(&user))?;
                    let quoted = |kinds: &[DocumentKind]| {
                        kinds
                            .iter()
                            .map(|k| format!("{:?}", k.as_str()))
                            .collect::<Vec<_>>()
                            .join(", ")
                    };
                    toml.push_str(&format!(
                        "\n[[back_office]]\nname = \"{user}\"\nsends = [{}]\nreceives = [{}]\npassword_file = \"{file}\"\n",
                        quoted(ministry.sends),
                        quoted(ministry.receives),
                    ));
                }
            }
            if let Some(sections) = options.hub_sections.get(&state) {
                toml.push('\n');
                toml.push_str(sections);
            }
            let file = dir.join("hub.toml");
            std::fs::write(&file, toml)?;
            configs.insert(state, file);
        }
        // Fresh vhosts with the hub topology and a back-office queue.
        for (&state, file) in &configs {
            let config = HubConfig::load(file)?;
            let vhost = options.vhost(state);
            let admin = management.clone();
            let v = vhost.clone();
            tokio::task::spawn_blocking(move || {
                admin.delete_vhost(&v).map_err(anyhow::Error::from)
            })
            .await??;
            // What `aswctl topology apply` declares, and the shared back-office queue when the
            // back-offices have no identities of their own.
            let mut topology = config.topology();
            if !options.ministries {
                topology.queues.push(Queue {
                    name: BACK_OFFICE_QUEUE.into(),
                    arguments: vec![("x-queue-type".into(), Argument::Str("quorum".into()))],
                });
                let all = vec!["#".to_owned()];
                for key in options.back_office_keys.get(&state).unwrap_or(&all) {
                    topology.bindings.push(Binding {
                        exchange: names::INBOUND_EXCHANGE.into(),
                        queue: BACK_OFFICE_QUEUE.into(),
                        routing_key: key.clone(),
                    });
                }
            }
            let password = |u: &asw_route::User| config.broker_password(u);
            asw_amqp::apply_tls(
                &management,
                &options.amqp,
                &tls,
                &vhost,
                &topology,
                &password,
            )
            .await?;
        }
        let stop = CancellationToken::new();
        let mut hubs = Vec::new();
        let mut handles = BTreeMap::new();
        for (&state, file) in configs
            .iter()
            .filter(|(s, _)| !options.external.contains(s))
        {
            let config = HubConfig::load(file)?;
            let console = config.console.clone();
            let hub = Arc::new(Hub::new(config)?);
            if let Some(console) = console {
                let console = asw_console::Console::of_hub(&hub, &console);
                hub.add_routes(asw_console::routes(Arc::new(console)));
            }
            handles.insert(state, hub.clone());
            let token = stop.clone();
            hubs.push(tokio::spawn(async move {
                if let Err(e) = hub.run(token).await {
                    tracing::error!(error = %e, "Hub stopped with an error.");
                }
            }));
        }
        let mut offices = BTreeMap::new();
        let mut listeners = Vec::new();
        for &state in &options.countries {
            let vhost = options.vhost(state);
            let received = Arc::new(Mutex::new(Vec::new()));
            let notify = Arc::new(Notify::new());
            let mut office = BackOffice {
                connections: Vec::new(),
                senders: Vec::new(),
                received: received.clone(),
                notify: notify.clone(),
            };
            if options.ministries {
                for ministry in MINISTRIES {
                    let user = options.ministry_user(state, ministry.name);
                    let url = amqp_as(&options.amqp, &user, &ministry_password(&user), &vhost);
                    let connection =
                        asw_amqp::connect_tls(&url, &format!("testbed {user}"), &tls).await?;
                    let publisher =
                        ConfirmingPublisher::new(connection.open_channel().await?).await?;
                    for queue in [
                        names::back_office_documents_queue(&user),
                        names::back_office_outcomes_queue(&user),
                    ] {
                        let consumer =
                            Consumer::start(connection.open_channel().await?, &queue, 100, &user)
                                .await?;
                        listeners.push(listen(
                            consumer,
                            received.clone(),
                            notify.clone(),
                            stop.clone(),
                        ));
                    }
                    office.senders.push(OfficeSender {
                        sends: Some(ministry.sends),
                        user: Some(user),
                        publisher: tokio::sync::Mutex::new(publisher),
                    });
                    office.connections.push(connection);
                }
            } else {
                let url = format!("{}/{vhost}", options.amqp);
                let connection = asw_amqp::connect_tls(&url, "testbed back-office", &tls).await?;
                let publisher = ConfirmingPublisher::new(connection.open_channel().await?).await?;
                let consumer = Consumer::start(
                    connection.open_channel().await?,
                    BACK_OFFICE_QUEUE,
                    100,
                    "back-office",
                )
                .await?;
                listeners.push(listen(consumer, received, notify, stop.clone()));
                office.senders.push(OfficeSender {
                    sends: None,
                    user: None,
                    publisher: tokio::sync::Mutex::new(publisher),
                });
                office.connections.push(connection);
            }
            offices.insert(state, office);
        }
        Ok(Testbed {
            options,
            _stop_on_drop: stop.clone().drop_guard(),
            stop,
            hubs,
            handles,
            offices,
            listeners,
            configs,
            vhosts,
        })
    }

    /// The configuration file of a member state's hub.
    pub fn config_file(&self, state: MemberState) -> Option<&Path> {
        self.configs.get(&state).map(PathBuf::as_path)
    }

    /// The running hub of a member state.
    pub fn hub(&self, state: MemberState) -> Option<&Arc<Hub>> {
        self.handles.get(&state)
    }

    /// The options the testbed runs with.
    pub fn options(&self) -> &TestbedOptions {
        &self.options
    }

    /// A back-office of `from` publishes a document to `asw.outbound` (routing key = kind).
    pub async fn send(
        &self,
        from: MemberState,
        kind: DocumentKind,
        bytes: &[u8],
    ) -> anyhow::Result<()> {
        let office = self
            .offices
            .get(&from)
            .context("no back-office for that member state")?
            .senders
            .iter()
            .find(|s| s.sends.is_none_or(|kinds| kinds.contains(&kind)))
            .with_context(|| format!("no back-office of {from} sends {kind}"))?;
        let mut properties = Properties::new().with_content_type(names::CONTENT_TYPE_XML);
        if let Some(user) = &office.user {
            properties = properties.with_user_id(user.as_str());
        }
        office
            .publisher
            .lock()
            .await
            .publish(
                names::OUTBOUND_EXCHANGE,
                names::outbound_key(kind),
                bytes,
                &properties,
            )
            .await?;
        Ok(())
    }

    /// The back-office of a document's sender publishes it (as XML) to `asw.outbound`.
    pub async fn send_document(
        &self,
        document: &asw_model::document::Message,
    ) -> anyhow::Result<()> {
        let xml = document.to_xml()?;
        self.send(document.header.sender, document.header.kind, xml.as_bytes())
            .await
    }

    /// Waits until `at`'s back-office has received a message matching `predicate`, and returns
    /// it; fails after `timeout`.
    pub async fn wait_for(
        &self,
        at: MemberState,
        what: &str,
        timeout: Duration,
        predicate: impl Fn(&Received) -> bool,
    ) -> anyhow::Result<Received> {
        let office = self
            .offices
            .get(&at)
            .context("no back-office for that member state")?;
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            let notified = office.notify.notified();
            if let Some(found) = office
                .received
                .lock()
                .ok()
                .and_then(|l| l.iter().find(|m| predicate(m)).cloned())
            {
                return Ok(found);
            }
            if tokio::time::timeout_at(deadline, notified).await.is_err() {
                anyhow::bail!("{at}'s back-office did not receive {what} within {timeout:?}");
            }
        }
    }

    /// Everything `at`'s back-office received so far.
    pub fn received(&self, at: MemberState) -> Vec<Received> {
        self.offices
            .get(&at)
            .and_then(|o| o.received.lock().ok().map(|l| l.clone()))
            .unwrap_or_default()
    }

    /// Stops the hubs (draining) and the back-offices; the vhosts stay.
    pub async fn stop(mut self) {
        self.halt().await;
        self.vhosts.keep();
    }

    /// Stops, then deletes the vhosts.
    pub async fn stop_and_clean(mut self) {
        self.halt().await;
        let mut vhosts = self.vhosts;
        let _ = tokio::task::spawn_blocking(move || vhosts.delete()).await;
    }

    async fn halt(&mut self) {
        self.stop.cancel();
        for h in std::mem::take(&mut self.hubs)
            .into_iter()
            .chain(std::mem::take(&mut self.listeners))
        {
            let _ = h.await;
        }
        for office in std::mem::take(&mut self.offices).into_values() {
            for connection in &office.connections {
                let _ = connection.close().await;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::taken_by_deduplicating_back_office as taken;

    #[test]
    fn a_deduplicating_back_office_drops_only_marked_copies_of_ids_it_has_taken() {
        assert_eq!(taken([]), 0);
        assert_eq!(taken([false]), 1);
        assert_eq!(taken([true]), 1, "a marked copy of an unseen id is new");
        assert_eq!(taken([false, true, true]), 1);
        assert_eq!(taken([true, true]), 1);
        assert_eq!(
            taken([false, false]),
            2,
            "an unmarked second copy is taken again"
        );
        assert_eq!(taken([true, false]), 2);
    }
}
