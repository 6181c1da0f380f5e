//! A simulated IPPC ePhyto Hub, for the tests and the demo: the WSDL's delivery
//! (`DeliverEnvelope`), import (`GetImportEnvelopeHeaders`, `PULLSingleImportEnvelope`),
//! acknowledgement (`AcknowledgeEnvelopeReceipt`, `AdvancedAcknowledgeEnvelopeReceipt`,
//! `AcknowledgeFailedEnvelopeReceipt`) and tracking (`GetEnvelopeTrackingInfo`) operations,
//! SOAP 1.1 over HTTPS with client certificates ([`pki`]).
//!
//! Every request, and every answer the simulator makes, is validated against the WSDL's inline
//! schemas with libxml2 (`asw_schema::wsdl`): a request that does not validate is answered with
//! a SOAP fault and recorded as a violation, and [`EphytoHub::assert_clean`] (also run when the
//! hub is dropped) fails the test. The caller's country is its certificate's common name;
//! envelopes are kept per receiving country with the hub's tracking states.

pub mod pki;

use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::fmt::Write as _;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use anyhow::Context;
use asw_model::xml::{self, Element, Limits};
use asw_schema::{DocumentValidator, SchemaSet};
use axum::Router;
use axum::body::Bytes;
use axum::extract::{Extension, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use base64::Engine as _;
use hyper_util::rt::TokioIo;
use hyper_util::service::TowerToHyperService;
use openssl::nid::Nid;
use openssl::ssl::{Ssl, SslAcceptor, SslFiletype, SslMethod, SslVerifyMode};
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

pub use pki::{CertFiles, HubPki};

/// The hub's target namespace (operations and their parts).
pub const HUB_NS: &str = "http://ephyto.ippc.int/";
/// The hub's entities (envelope header fields).
pub const ENTITIES_NS: &str = "http://ephyto.ippc.int/HUB.Entities";
const SOAP_NS: &str = asw_schema::wsdl::SOAP11;
/// The path the simulator serves the service on (as the real hub: `/hub/DeliveryService`).
pub const SERVICE_PATH: &str = "/hub/DeliveryService";

/// The hub's WSDL: `ASWHUB_EPHYTO_WSDL`, or `../shared/ephyto-hub/ephyto.wsdl` beside the
/// repository.
pub fn wsdl_path() -> PathBuf {
    std::env::var_os("ASWHUB_EPHYTO_WSDL").map_or_else(
        || Path::new(env!("CARGO_MANIFEST_DIR")).join("../../../shared/ephyto-hub/ephyto.wsdl"),
        PathBuf::from,
    )
}

/// A tracking state, as the hub has them (`HUBTrackingInfo`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Tracking {
    /// Waiting for the importing country to pull and acknowledge it.
    PendingDelivery,
    /// Acknowledged.
    Delivered,
    /// Acknowledged with a warning.
    DeliveredWithWarnings,
    /// The importing country could not read it.
    DeliveredNotReadable,
    /// The hub could not deliver it.
    FailedDelivery,
    /// No such envelope.
    EnvelopeNotExists,
}

impl Tracking {
    /// The name in the WSDL's enumeration.
    pub fn as_str(self) -> &'static str {
        match self {
            Tracking::PendingDelivery => "PendingDelivery",
            Tracking::Delivered => "Delivered",
            Tracking::DeliveredWithWarnings => "DeliveredWithWarnings",
            Tracking::DeliveredNotReadable => "DeliveredNotReadable",
            Tracking::FailedDelivery => "FailedDelivery",
            Tracking::EnvelopeNotExists => "EnvelopeNotExists",
        }
    }
}

/// An envelope as the hub keeps it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredEnvelope {
    /// The hub's delivery number.
    pub number: String,
    /// Exporting country.
    pub from: String,
    /// Importing country.
    pub to: String,
    /// 851 (export) or 657 (re-export).
    pub certificate_type: i32,
    /// The certificate's status (70 issued, 39 approved, 40 withdrawn...).
    pub certificate_status: i32,
    /// The exporting NPPO's certificate number.
    pub nppo_number: String,
    /// `Content` as it was delivered (base64 or raw XML text).
    pub content: String,
    /// Where it is.
    pub tracking: Tracking,
    /// The hub's message for a warning or a failure.
    pub message: Option<String>,
}

/// What an injected envelope carries as `Content`.
#[derive(Debug, Clone)]
pub enum InjectedContent {
    /// These bytes base64-encoded (what the known client and most NPPOs send).
    Base64(Vec<u8>),
    /// This text as it is (raw XML, or anything).
    Text(String),
}

/// A fault to answer the next request with, whatever it is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum InjectedFault {
    /// An HTTP status with an empty body (503: the hub is down for maintenance).
    Http(u16),
    /// A `HubWebException` with this message, as a `soap:Server` fault.
    Hub(String),
}

#[derive(Default)]
struct State_ {
    envelopes: BTreeMap<String, StoredEnvelope>,
    next: u64,
    violations: Vec<String>,
    faults: VecDeque<(Option<String>, InjectedFault)>,
    requests: Vec<(String, String)>,
}

/// Bytes to validate, and where the result goes.
type ValidationJob = (Vec<u8>, tokio::sync::oneshot::Sender<Result<(), String>>);

struct Shared {
    state: Mutex<State_>,
    receiving: BTreeSet<String>,
    actions: BTreeMap<String, String>,
    validate: std::sync::mpsc::SyncSender<ValidationJob>,
}

impl Shared {
    fn state(&self) -> MutexGuard<'_, State_> {
        self.state
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    async fn validate(&self, bytes: Vec<u8>) -> Result<(), String> {
        let (tx, rx) = tokio::sync::oneshot::channel();
        self.validate
            .send((bytes, tx))
            .map_err(|_| "the validator thread is gone".to_owned())?;
        rx.await
            .map_err(|_| "the validator thread is gone".to_owned())?
    }
}

/// A running simulated hub. Stops when dropped.
pub struct EphytoHub {
    shared: Arc<Shared>,
    addr: SocketAddr,
    /// Its PKI (CA, server certificate, clients').
    pub pki: HubPki,
    stop: CancellationToken,
}

impl std::fmt::Debug for EphytoHub {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EphytoHub")
            .field("addr", &self.addr)
            .finish_non_exhaustive()
    }
}

impl EphytoHub {
    /// Starts a hub on 127.0.0.1 (a free port) whose registered NPPOs are `countries` (the ones
    /// it delivers to; an envelope for another country is `FailedDelivery`), with a new PKI in
    /// `dir` and the WSDL at [`wsdl_path`]. Must run inside a tokio runtime.
    pub async fn start(dir: &Path, countries: &[&str]) -> anyhow::Result<EphytoHub> {
        let pki = HubPki::create(dir)?;
        for c in countries {
            pki.client(c)?;
        }
        let wsdl_file = wsdl_path();
        let wsdl = std::fs::read_to_string(&wsdl_file).with_context(|| {
            format!(
                "the IPPC ePhyto Hub's WSDL is not at {} (put ../shared beside the repository \
                 or set ASWHUB_EPHYTO_WSDL)",
                wsdl_file.display()
            )
        })?;
        let schema_dir = dir.join("wsdl-schemas");
        let entry = asw_schema::wsdl::write_soap_schemas(&wsdl, &schema_dir)?;
        let (validate, requests) = std::sync::mpsc::sync_channel::<ValidationJob>(64);
        let (ready_tx, ready_rx) = std::sync::mpsc::channel();
        std::thread::Builder::new()
            .name("ephyto-hub-xsd".into())
            .spawn(move || {
                let limits = Limits {
                    max_bytes: 32 << 20,
                    ..Limits::DEFAULT
                };
                let mut v =
                    match DocumentValidator::with_schemas(&SchemaSet::from_file(&entry), limits) {
                        Ok(v) => {
                            let _ = ready_tx.send(Ok(()));
                            v
                        }
                        Err(e) => {
                            let _ = ready_tx.send(Err(e.to_string()));
                            return;
                        }
                    };
                for (bytes, reply) in requests {
                    let result = v.validate(&bytes).map(|_| ()).map_err(|problems| {
                        problems
                            .iter()
                            .map(ToString::to_string)
                            .collect::<Vec<_>>()
                            .join("; ")
                    });
                    let _ = reply.send(result);
                }
            })?;
        ready_rx
            .recv()
            .context("the validator thread")?
            .map_err(|e| anyhow::anyhow!("the WSDL's schemas do not compile: {e}"))?;

        let mut acceptor = SslAcceptor::mozilla_intermediate_v5(SslMethod::tls_server())?;
        acceptor.set_certificate_chain_file(&pki.server.cert)?;
        acceptor.set_private_key_file(&pki.server.key, SslFiletype::PEM)?;
        acceptor.set_ca_file(&pki.ca)?;
        acceptor.set_verify(SslVerifyMode::PEER | SslVerifyMode::FAIL_IF_NO_PEER_CERT);
        let acceptor = acceptor.build();

        let shared = Arc::new(Shared {
            state: Mutex::new(State_::default()),
            receiving: countries.iter().map(|c| (*c).to_owned()).collect(),
            actions: asw_schema::wsdl::soap_actions(&wsdl),
            validate,
        });
        let listener = TcpListener::bind("127.0.0.1:0").await?;
        let addr = listener.local_addr()?;
        let stop = CancellationToken::new();
        let app = Router::new()
            .route(SERVICE_PATH, post(soap))
            .with_state(shared.clone());
        tokio::spawn(serve(listener, acceptor, app, stop.clone()));
        Ok(EphytoHub {
            shared,
            addr,
            pki,
            stop,
        })
    }

    /// The service URL (`https://localhost:<port>/hub/DeliveryService`).
    pub fn url(&self) -> String {
        format!("https://localhost:{}{SERVICE_PATH}", self.addr.port())
    }

    /// The `[ephyto_hub]` section of a hub configuration for this simulator, logging in with
    /// `client`'s certificate, tracking and polling every `every`.
    pub fn section(&self, client: &str, every: Duration) -> anyhow::Result<String> {
        let files = self.pki.client(client)?;
        Ok(format!(
            "[ephyto_hub]\nurl = {:?}\nca = {:?}\ncert = {:?}\nkey = {:?}\ntrack_every = \"{ms}ms\"\nimport_every = \"{ms}ms\"\n",
            self.url(),
            self.pki.ca.display().to_string(),
            files.cert.display().to_string(),
            files.key.display().to_string(),
            ms = every.as_millis(),
        ))
    }

    /// Puts an envelope from `from` to `to` in `to`'s import queue, as another NPPO would have
    /// delivered it; returns its delivery number.
    pub fn inject(
        &self,
        from: &str,
        to: &str,
        nppo_number: &str,
        content: InjectedContent,
    ) -> String {
        let content = match content {
            InjectedContent::Base64(bytes) => {
                base64::engine::general_purpose::STANDARD.encode(bytes)
            }
            InjectedContent::Text(text) => text,
        };
        let mut state = self.shared.state();
        store(
            &mut state,
            &self.shared.receiving,
            from,
            to,
            851,
            70,
            nppo_number,
            content,
        )
    }

    /// The envelope with this delivery number.
    pub fn envelope(&self, number: &str) -> Option<StoredEnvelope> {
        self.shared.state().envelopes.get(number).cloned()
    }

    /// Every envelope, by delivery number.
    pub fn envelopes(&self) -> Vec<StoredEnvelope> {
        self.shared.state().envelopes.values().cloned().collect()
    }

    /// Sets an envelope's tracking state (what the importing side did, or the hub giving up).
    pub fn set_tracking(&self, number: &str, tracking: Tracking, message: Option<&str>) {
        if let Some(e) = self.shared.state().envelopes.get_mut(number) {
            e.tracking = tracking;
            e.message = message.map(str::to_owned);
        }
    }

    /// Answers the next request with `fault` (queued: several answer several requests).
    pub fn fail_next(&self, fault: InjectedFault) {
        self.shared.state().faults.push_back((None, fault));
    }

    /// Answers the next call of `operation` (its WSDL name) with `fault`.
    pub fn fail_next_call(&self, operation: &str, fault: InjectedFault) {
        self.shared
            .state()
            .faults
            .push_back((Some(operation.to_owned()), fault));
    }

    /// The operations called so far, with the caller's country, in order.
    pub fn requests(&self) -> Vec<(String, String)> {
        self.shared.state().requests.clone()
    }

    /// Requests (and answers) that did not validate against the WSDL's schemas.
    pub fn violations(&self) -> Vec<String> {
        self.shared.state().violations.clone()
    }

    /// Takes the violations recorded so far (for a test that sends a bad request on purpose).
    pub fn take_violations(&self) -> Vec<String> {
        std::mem::take(&mut self.shared.state().violations)
    }

    /// Fails unless every request and answer so far validated.
    pub fn assert_clean(&self) {
        let violations = self.violations();
        assert!(
            violations.is_empty(),
            "requests to the simulated ePhyto Hub that break the WSDL: {violations:#?}"
        );
    }
}

impl Drop for EphytoHub {
    fn drop(&mut self) {
        self.stop.cancel();
        if !std::thread::panicking() {
            self.assert_clean();
        }
    }
}

#[allow(clippy::too_many_arguments)]
fn store(
    state: &mut State_,
    receiving: &BTreeSet<String>,
    from: &str,
    to: &str,
    certificate_type: i32,
    certificate_status: i32,
    nppo_number: &str,
    content: String,
) -> String {
    state.next += 1;
    let number = format!("{from}{to}{:08}", state.next);
    let (tracking, message) = if receiving.contains(to) {
        (Tracking::PendingDelivery, None)
    } else {
        (
            Tracking::FailedDelivery,
            Some(format!(
                "The NPPO of {to} is not registered to receive envelopes."
            )),
        )
    };
    state.envelopes.insert(
        number.clone(),
        StoredEnvelope {
            number: number.clone(),
            from: from.to_owned(),
            to: to.to_owned(),
            certificate_type,
            certificate_status,
            nppo_number: nppo_number.to_owned(),
            content,
            tracking,
            message,
        },
    );
    number
}

/// The country of a connection: its client certificate's common name.
#[derive(Clone)]
struct Caller(String);

async fn serve(listener: TcpListener, acceptor: SslAcceptor, app: Router, stop: CancellationToken) {
    loop {
        let accepted = tokio::select! {
            () = stop.cancelled() => return,
            accepted = listener.accept() => accepted,
        };
        let Ok((stream, _)) = accepted else { continue };
        let Ok(ssl) = Ssl::new(acceptor.context()) else {
            continue;
        };
        let app = app.clone();
        let stop = stop.clone();
        tokio::spawn(async move {
            let Ok(mut stream) = tokio_openssl::SslStream::new(ssl, stream) else {
                return;
            };
            if std::pin::Pin::new(&mut stream).accept().await.is_err() {
                return;
            }
            let Some(country) = stream.ssl().peer_certificate().and_then(|c| {
                c.subject_name()
                    .entries_by_nid(Nid::COMMONNAME)
                    .next()
                    .and_then(|e| e.data().to_string().ok())
            }) else {
                return;
            };
            let app = app.layer(Extension(Caller(country)));
            let conn = hyper::server::conn::http1::Builder::new()
                .serve_connection(TokioIo::new(stream), TowerToHyperService::new(app));
            tokio::select! {
                () = stop.cancelled() => {}
                _ = conn => {}
            }
        });
    }
}

fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            _ => out.push(c),
        }
    }
    out
}

fn child<'a>(e: &'a Element, name: &str) -> Option<&'a Element> {
    e.children.iter().find(|c| c.name == name)
}

fn text(e: &Element, name: &str) -> String {
    child(e, name).map(|c| c.text.clone()).unwrap_or_default()
}

/// A SOAP answer: a body and its status.
struct Answer {
    status: StatusCode,
    body: String,
    /// Whether it is a SOAP answer to check against the WSDL (not an injected HTTP error).
    soap: bool,
}

fn envelope(body: &str) -> String {
    format!(
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?><soap:Envelope xmlns:soap=\"{SOAP_NS}\"><soap:Body>{body}</soap:Body></soap:Envelope>"
    )
}

fn fault(code: &str, message: &str) -> Answer {
    Answer {
        status: StatusCode::INTERNAL_SERVER_ERROR,
        soap: true,
        body: envelope(&format!(
            "<soap:Fault><faultcode>soap:{code}</faultcode><faultstring>{m}</faultstring><detail><ns1:HubWebException xmlns:ns1=\"{HUB_NS}\"><ns1:message>{m}</ns1:message></ns1:HubWebException></detail></soap:Fault>",
            m = escape(message)
        )),
    }
}

fn ok(operation: &str, inner: &str) -> Answer {
    Answer {
        status: StatusCode::OK,
        soap: true,
        body: envelope(&format!(
            "<ns1:{operation}Response xmlns:ns1=\"{HUB_NS}\" xmlns:h=\"{ENTITIES_NS}\">{inner}</ns1:{operation}Response>"
        )),
    }
}

/// The header fields of an envelope, in the schema's order.
fn header_fields(e: &StoredEnvelope) -> String {
    let mut out = format!(
        "<h:From>{}</h:From><h:To>{}</h:To><h:CertificateType>{}</h:CertificateType><h:CertificateStatus>{}</h:CertificateStatus><h:NPPOCertificateNumber>{}</h:NPPOCertificateNumber><h:hubDeliveryNumber>{}</h:hubDeliveryNumber><h:HUBTrackingInfo>{}</h:HUBTrackingInfo>",
        escape(&e.from),
        escape(&e.to),
        e.certificate_type,
        e.certificate_status,
        escape(&e.nppo_number),
        escape(&e.number),
        e.tracking.as_str()
    );
    if let Some(m) = &e.message {
        let _ = write!(
            out,
            "<h:hubDeliveryErrorMessage>{}</h:hubDeliveryErrorMessage>",
            escape(m)
        );
    }
    out
}

async fn soap(
    State(shared): State<Arc<Shared>>,
    Extension(Caller(caller)): Extension<Caller>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let answer = handle(&shared, &caller, &headers, &body).await;
    // Our own answers must speak the WSDL too.
    let checked = if answer.soap {
        shared.validate(answer.body.clone().into_bytes()).await
    } else {
        Ok(())
    };
    if let Err(problems) = checked {
        shared
            .state()
            .violations
            .push(format!("the simulator's own answer: {problems}"));
    }
    (
        answer.status,
        [(header::CONTENT_TYPE, "text/xml; charset=utf-8")],
        answer.body,
    )
        .into_response()
}

async fn handle(shared: &Shared, caller: &str, headers: &HeaderMap, body: &[u8]) -> Answer {
    if let Err(problems) = shared.validate(body.to_vec()).await {
        shared
            .state()
            .violations
            .push(format!("a request from {caller}: {problems}"));
        return fault(
            "Client",
            &format!("The request does not validate: {problems}"),
        );
    }
    let limits = Limits {
        max_bytes: 32 << 20,
        ..Limits::DEFAULT
    };
    let root = match xml::parse(body, &limits) {
        Ok(root) => root,
        Err(e) => return fault("Client", &format!("The request is not XML: {e}")),
    };
    let Some(request) = child(&root, "Body").and_then(|b| b.children.first()) else {
        return fault("Client", "The SOAP body is empty.");
    };
    let operation = request.name.clone();
    let action = headers
        .get("soapaction")
        .and_then(|v| v.to_str().ok())
        .map(|v| v.trim_matches('"').to_owned());
    let expected = shared.actions.get(&operation).cloned().unwrap_or_default();
    if action.as_deref() != Some(expected.as_str()) {
        shared.state().violations.push(format!(
            "a request from {caller}: SOAPAction {action:?} for {operation} (expected {expected})"
        ));
        return fault("Client", "The SOAPAction does not name the operation.");
    }
    let mut state = shared.state();
    state.requests.push((operation.clone(), caller.to_owned()));
    let injected = state
        .faults
        .iter()
        .position(|(op, _)| op.as_ref().is_none_or(|op| *op == operation))
        .and_then(|at| state.faults.remove(at))
        .map(|(_, fault)| fault);
    if let Some(injected) = injected {
        return match injected {
            InjectedFault::Http(status) => Answer {
                status: StatusCode::from_u16(status).unwrap_or(StatusCode::SERVICE_UNAVAILABLE),
                body: String::new(),
                soap: false,
            },
            InjectedFault::Hub(message) => fault("Server", &message),
        };
    }
    let number = text(request, "hubTrackingNumber");
    match operation.as_str() {
        "DeliverEnvelope" => {
            let Some(env) = child(request, "env") else {
                return fault("Client", "No env.");
            };
            let from = text(env, "From");
            if from != caller {
                return fault(
                    "Client",
                    &format!(
                        "From {from} is not the country of the client certificate ({caller})."
                    ),
                );
            }
            let certificate_type: i32 = text(env, "CertificateType").parse().unwrap_or(0);
            if certificate_type != 851 && certificate_type != 657 {
                return fault(
                    "Client",
                    &format!("CertificateType {certificate_type} is neither 851 nor 657."),
                );
            }
            let content = text(env, "Content");
            if content.is_empty() {
                return fault("Client", "The envelope has no Content.");
            }
            let number = store(
                &mut state,
                &shared.receiving,
                &from,
                &text(env, "To"),
                certificate_type,
                text(env, "CertificateStatus").parse().unwrap_or(0),
                &text(env, "NPPOCertificateNumber"),
                content,
            );
            let stored = &state.envelopes[&number];
            ok(
                "DeliverEnvelope",
                &format!(
                    "<ns1:DeliverEnvelopeResult>{}</ns1:DeliverEnvelopeResult>",
                    header_fields(stored)
                ),
            )
        }
        "GetImportEnvelopeHeaders" => {
            let country =
                child(request, "countryCode").map_or_else(|| caller.to_owned(), |c| c.text.clone());
            if country != caller {
                return fault(
                    "Client",
                    &format!("{caller} may not read the imports of {country}."),
                );
            }
            let headers: String = state
                .envelopes
                .values()
                .filter(|e| e.to == caller && e.tracking == Tracking::PendingDelivery)
                .map(|e| format!("<h:EnvelopeHeader>{}</h:EnvelopeHeader>", header_fields(e)))
                .collect();
            ok(
                "GetImportEnvelopeHeaders",
                &format!(
                    "<ns1:GetImportEnvelopeHeadersResult>{headers}</ns1:GetImportEnvelopeHeadersResult>"
                ),
            )
        }
        "PULLSingleImportEnvelope" => match state.envelopes.get(&number) {
            Some(e) if e.to == caller => ok(
                "PULLSingleImportEnvelope",
                &format!(
                    "<ns1:PULLSingleImportEnvelopeResult>{}<h:Content>{}</h:Content></ns1:PULLSingleImportEnvelopeResult>",
                    header_fields(e),
                    escape(&e.content)
                ),
            ),
            _ => fault("Client", &format!("No envelope {number} for {caller}.")),
        },
        "AcknowledgeEnvelopeReceipt"
        | "AdvancedAcknowledgeEnvelopeReceipt"
        | "AcknowledgeFailedEnvelopeReceipt" => {
            let (tracking, message) = match operation.as_str() {
                "AcknowledgeEnvelopeReceipt" => (Tracking::Delivered, None),
                "AdvancedAcknowledgeEnvelopeReceipt" => (
                    Tracking::DeliveredWithWarnings,
                    Some(text(request, "warningMessage")),
                ),
                _ => (
                    Tracking::DeliveredNotReadable,
                    Some(text(request, "message")),
                ),
            };
            match state.envelopes.get_mut(&number) {
                Some(e) if e.to == caller && e.tracking == Tracking::PendingDelivery => {
                    e.tracking = tracking;
                    e.message = message;
                    if operation == "AcknowledgeEnvelopeReceipt" {
                        ok(&operation, "")
                    } else {
                        ok(&operation, "<ns1:return>OK</ns1:return>")
                    }
                }
                Some(e) if e.to == caller => fault(
                    "Client",
                    &format!(
                        "Envelope {number} is already acknowledged ({}).",
                        e.tracking.as_str()
                    ),
                ),
                _ => fault("Client", &format!("No envelope {number} for {caller}.")),
            }
        }
        "GetEnvelopeTrackingInfo" => {
            let inner = match state.envelopes.get(&number) {
                Some(e) if e.from == caller || e.to == caller => header_fields(e),
                _ => format!(
                    "<h:From></h:From><h:To></h:To><h:CertificateType>0</h:CertificateType><h:CertificateStatus>0</h:CertificateStatus><h:NPPOCertificateNumber></h:NPPOCertificateNumber><h:hubDeliveryNumber>{}</h:hubDeliveryNumber><h:HUBTrackingInfo>EnvelopeNotExists</h:HUBTrackingInfo>",
                    escape(&number)
                ),
            };
            ok(
                "GetEnvelopeTrackingInfo",
                &format!(
                    "<ns1:GetEnvelopeTrackingInfoResult>{inner}</ns1:GetEnvelopeTrackingInfoResult>"
                ),
            )
        }
        other => fault(
            "Server",
            &format!("The simulator does not implement {other}."),
        ),
    }
}
