//! What a worker does to one document, without any I/O: the outbound checks and signature, the
//! inbound identity checks, verification and validation, and signing the hub's own answers.
//! Each decision is a value the pipelines turn into broker actions.

use std::collections::BTreeSet;
use std::sync::Arc;

use asw_model::document::{Message, Reason};
use asw_model::partners::Partner;
use asw_model::partners::PartnerTable;
use asw_model::xml::Limits;
use asw_model::{DocumentKind, Header, MemberState, reply};
use asw_route::names;
use asw_schema::{Problem, SchemaSet, Validated, Validator};
use asw_sign::{Signer, TrustStore, Unverified, Verified, Verifier};
use bytes::Bytes;
use time::OffsetDateTime;

/// Who this hub is: the facts every decision needs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Identity {
    /// The member state this hub serves.
    pub country: MemberState,
    /// The partners it exchanges with.
    pub partners: BTreeSet<MemberState>,
    /// The kinds each partner may send us and receive from us (the partners file); `None`
    /// agrees every kind with every partner.
    pub agreed: Option<Arc<PartnerTable>>,
}

impl Identity {
    /// An identity that agrees every kind with its partners (tests, benchmarks).
    pub fn new(country: MemberState, partners: BTreeSet<MemberState>) -> Identity {
        Identity {
            country,
            partners,
            agreed: None,
        }
    }

    fn row(&self, partner: MemberState) -> Option<&Partner> {
        self.agreed
            .as_ref()?
            .iter()
            .find(|p| p.code == partner.code())
    }

    /// True if the partners file lists `partner` but does not enable it (`None` agrees every
    /// partner).
    pub fn disabled(&self, partner: MemberState) -> bool {
        self.row(partner).is_some_and(|p| !p.enabled)
    }

    /// True if `partner` may send us documents of `kind`.
    pub fn may_send(&self, partner: MemberState, kind: DocumentKind) -> bool {
        self.agreed.is_none() || self.row(partner).is_some_and(|p| p.may_send(kind.as_str()))
    }

    /// True if we may send `partner` documents of `kind`.
    pub fn may_receive(&self, partner: MemberState, kind: DocumentKind) -> bool {
        self.agreed.is_none()
            || self
                .row(partner)
                .is_some_and(|p| p.may_receive(kind.as_str()))
    }
}

/// A reason a document was refused, with a stable code.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refusal {
    /// Stable code: a rule id (`XSD`, `FORMD-004`), a signature code (`SIG-UNTRUSTED`), or a
    /// routing/transport code (`ROUTE-001`, `TRANSPORT-001`).
    pub code: String,
    /// One readable sentence, with the line when there is one.
    pub text: String,
}

impl Refusal {
    fn new(code: &str, text: impl Into<String>) -> Refusal {
        Refusal {
            code: code.to_owned(),
            text: text.into(),
        }
    }

    fn from_problem(p: &Problem) -> Refusal {
        Refusal {
            code: p.rule.to_owned(),
            text: format!("line {}: {}", p.line, p.message),
        }
    }

    /// As a reason in an acknowledgement.
    pub fn to_reason(&self) -> Reason {
        Reason {
            code: self.code.clone(),
            text: self.text.clone(),
        }
    }
}

/// Summary of refusals for a log line or header: the first one and how many more.
pub fn summary(refusals: &[Refusal]) -> String {
    match refusals {
        [] => "no reason given".into(),
        [one] => format!("{} {}", one.code, one.text),
        [first, rest @ ..] => format!("{} {} (and {} more)", first.code, first.text, rest.len()),
    }
}

/// A document the hub signed (a back-office document, or one of the hub's own answers), ready
/// for a partner: its header and signed bytes, shared. The only thing a publish to a partner
/// queue takes.
#[derive(Debug, Clone)]
pub struct Signed {
    /// The envelope header.
    pub header: Header,
    /// The signed document.
    pub bytes: Bytes,
}

/// An outbound document that can never be sent as it is.
#[derive(Debug, Clone)]
pub struct Unsendable {
    /// The header, when it could be read.
    pub header: Option<Header>,
    /// Every problem.
    pub refusals: Vec<Refusal>,
}

/// An inbound document that passed every check.
#[derive(Debug, Clone)]
pub struct Accepted {
    /// The verified document.
    pub verified: Verified,
    /// Its business reference (Form D reference or ACDD declaration number, or the reference an
    /// answer names).
    pub reference: Option<String>,
    /// For answers: the status they report and their reasons.
    pub status: Option<String>,
    /// Reasons an answer gives, as (code, text).
    pub reasons: Vec<(String, String)>,
}

/// An inbound document that was refused.
#[derive(Debug, Clone)]
pub struct Refused {
    /// The header, when it could be read.
    pub header: Option<Header>,
    /// The business reference, when it could be read.
    pub reference: Option<String>,
    /// The member state the transport authenticated (user id and routing key agree, and it is
    /// a partner). Only such a sender is answered with a signed rejection.
    pub authenticated: Option<MemberState>,
    /// True when the signature was verified (the document was refused later, as invalid or
    /// misrouted): only then is the header trustworthy enough to journal under its message id,
    /// so a forgery can never block the genuine message that carries the same id.
    pub verified: bool,
    /// Every problem.
    pub refusals: Vec<Refusal>,
}

/// A worker's own libxml2 and xmlsec state. Not `Send`: built on the worker thread.
pub struct Worker {
    validator: Validator,
    signer: Signer,
    verifier: Verifier,
    identity: Arc<Identity>,
    limits: Limits,
}

impl std::fmt::Debug for Worker {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Worker")
            .field("identity", &self.identity)
            .finish_non_exhaustive()
    }
}

/// Why a worker could not be built.
#[derive(Debug, thiserror::Error)]
pub enum WorkerError {
    /// The schemas could not be loaded.
    #[error(transparent)]
    Schema(#[from] asw_schema::SchemaError),
    /// The signing key or certificate is unusable.
    #[error(transparent)]
    Sign(#[from] asw_sign::SignError),
    /// The verifier could not be set up.
    #[error(transparent)]
    Verify(#[from] asw_sign::VerifyError),
}

impl Worker {
    /// Builds a worker's state from PEM bytes and the shared trust store.
    pub fn new(
        identity: Arc<Identity>,
        key_pem: &[u8],
        cert_pem: &[u8],
        trust: Arc<TrustStore>,
        limits: Limits,
    ) -> Result<Worker, WorkerError> {
        let validator = Validator::with_schemas(&SchemaSet::embedded()?, limits)?;
        let signer = Signer::new(key_pem, cert_pem)?.with_limits(limits);
        let verifier = Verifier::new(trust)?.with_limits(limits);
        Ok(Worker {
            validator,
            signer,
            verifier,
            identity,
            limits,
        })
    }

    /// The reader limits this worker applies.
    pub fn limits(&self) -> &Limits {
        &self.limits
    }

    /// Outbound: validate a back-office document, check it is ours to send where the routing key
    /// says, and sign it.
    pub fn outbound(
        &mut self,
        bytes: &[u8],
        routing_key: &str,
        now: OffsetDateTime,
    ) -> Result<Signed, Unsendable> {
        let limits = self.limits;
        let invalid = |problems: Vec<Problem>| Unsendable {
            header: Header::read(bytes, &limits).ok(),
            refusals: problems.iter().map(Refusal::from_problem).collect(),
        };
        let (valid, signed) = self.validate_and_sign(bytes, now).map_err(invalid)?;
        let header = valid.header().clone();
        drop(valid);
        let mut refusals = Vec::new();
        if routing_key != names::outbound_key(header.kind) {
            refusals.push(Refusal::new(
                "ROUTE-001",
                format!(
                    "routing key {routing_key:?} does not match the document kind {}",
                    header.kind
                ),
            ));
        }
        if header.sender != self.identity.country {
            refusals.push(Refusal::new(
                "ROUTE-002",
                format!(
                    "sender {} is not this hub's member state {}",
                    header.sender, self.identity.country
                ),
            ));
        }
        if self.identity.disabled(header.receiver) {
            refusals.push(Refusal::new(
                ROUTE_DISABLED_RECEIVER,
                format!(
                    "receiver {} is in the partners file but not enabled",
                    header.receiver
                ),
            ));
        } else if !self.identity.partners.contains(&header.receiver) {
            refusals.push(Refusal::new(
                "ROUTE-003",
                format!("receiver {} is not a configured partner", header.receiver),
            ));
        } else if !self.identity.may_receive(header.receiver, header.kind) {
            refusals.push(Refusal::new(
                "ROUTE-005",
                format!(
                    "{} does not receive {} from us (partners file)",
                    header.receiver, header.kind
                ),
            ));
        }
        if !refusals.is_empty() {
            return Err(Unsendable {
                header: Some(header),
                refusals,
            });
        }
        match signed {
            Ok(signed) => Ok(Signed {
                header,
                bytes: signed.into(),
            }),
            Err(e) => Err(Unsendable {
                header: Some(header),
                refusals: vec![Refusal::new(e.code(), e.to_string())],
            }),
        }
    }

    /// Inbound: check the transport identity (`user_id` and routing key), verify the signature
    /// against the claimed sender's certificates, check it is for us, and validate it.
    pub fn inbound(
        &mut self,
        bytes: &[u8],
        user_id: Option<&str>,
        routing_key: &str,
        now: OffsetDateTime,
    ) -> Result<Accepted, Box<Refused>> {
        self.inbound_shared(&Bytes::copy_from_slice(bytes), user_id, routing_key, now)
    }

    /// [`inbound`](Worker::inbound) for bytes already shared: the [`Accepted`] holds them
    /// without a copy.
    pub fn inbound_shared(
        &mut self,
        shared: &Bytes,
        user_id: Option<&str>,
        routing_key: &str,
        now: OffsetDateTime,
    ) -> Result<Accepted, Box<Refused>> {
        let bytes: &[u8] = shared;
        // One bounded read, the verifier's, serves the transport check (the sender the header
        // claims), the verification and the validator's screen; the rules' tree is built
        // later, after libxml2's is freed. A refusal of the reader is the verifier's, reported
        // after the transport checks as it always was.
        let read = self.verifier.read(shared.clone());
        let header = read.as_ref().ok().and_then(Unverified::header).cloned();
        let refused = |authenticated, refusals| {
            Box::new(Refused {
                reference: None,
                header: header.clone(),
                authenticated,
                verified: false,
                refusals,
            })
        };
        let transport = user_id.and_then(names::partner_of_user);
        let Some(transport) = transport.filter(|t| t.code() == routing_key) else {
            return Err(refused(
                None,
                vec![Refusal::new(
                    "TRANSPORT-001",
                    format!(
                        "published by user {:?} with routing key {routing_key:?}: they must name the same partner",
                        user_id.unwrap_or("(none)")
                    ),
                )],
            ));
        };
        if self.identity.disabled(transport) {
            return Err(refused(
                None,
                vec![Refusal::new(
                    ROUTE_DISABLED_SENDER,
                    format!("sender {transport} is in the partners file but not enabled"),
                )],
            ));
        }
        if !self.identity.partners.contains(&transport) {
            return Err(refused(
                None,
                vec![Refusal::new(
                    "TRANSPORT-002",
                    format!("{transport} is not a configured partner"),
                )],
            ));
        }
        if let Some(h) = &header
            && h.sender != transport
        {
            return Err(refused(
                Some(transport),
                vec![Refusal::new(
                    "TRANSPORT-003",
                    format!(
                        "the document claims sender {} but was published by partner-{transport}",
                        h.sender
                    ),
                )],
            ));
        }
        let unverifiable = |e: asw_sign::VerifyError| {
            refused(Some(transport), vec![Refusal::new(e.code(), e.to_string())])
        };
        let unverified = read.map_err(unverifiable)?;
        // The XSD the verified tree is validated against, named by the header the verifier's
        // reader kept (validator and verifier have this worker's limits).
        let screened = self.validator.screen_selected(unverified.selection());
        let (verified, parsed) = self
            .verifier
            .verify_read(unverified, now)
            .map_err(unverifiable)?;
        let header = verified.header().clone();
        if !self.identity.may_send(transport, header.kind) {
            let mut refused = refused(
                Some(transport),
                vec![Refusal::new(
                    "ROUTE-006",
                    format!(
                        "{transport} may not send us {} (partners file)",
                        header.kind
                    ),
                )],
            );
            refused.verified = true;
            return Err(refused);
        }
        if header.receiver != self.identity.country {
            let mut misrouted = refused(
                Some(transport),
                vec![Refusal::new(
                    "ROUTE-004",
                    format!(
                        "the document is for {}, not for {}",
                        header.receiver, self.identity.country
                    ),
                )],
            );
            misrouted.verified = true;
            return Err(misrouted);
        }
        // XSD on the verified tree, freed before the reader's tree for the rules is built.
        let validated = self.validator.check_schema(screened, parsed.libxml());
        drop(parsed);
        match validated.and_then(|valid| self.validator.check_rules(valid, bytes, now)) {
            Ok(valid) => Ok(Accepted {
                reference: reply::document_reference(valid.root()),
                status: header
                    .kind
                    .is_response()
                    .then(|| reply::answer_status(valid.root()))
                    .flatten(),
                reasons: reply::answer_reasons(valid.root()),
                verified,
            }),
            Err(problems) => Err(Box::new(Refused {
                reference: asw_model::xml::parse(bytes, &self.limits)
                    .ok()
                    .and_then(|r| reply::document_reference(&r)),
                header: Some(header),
                authenticated: Some(transport),
                verified: true,
                refusals: problems.iter().map(Refusal::from_problem).collect(),
            })),
        }
    }

    /// Serialises, validates and signs a message the hub writes itself (acknowledgements).
    pub fn sign_own(&mut self, message: &Message, now: OffsetDateTime) -> Result<Vec<u8>, Refusal> {
        let xml = message
            .to_xml()
            .map_err(|e| Refusal::new("HUB-XML", e.to_string()))?;
        let (_, signed) = self
            .validate_and_sign(xml.as_bytes(), now)
            .map_err(|problems| {
                // The hub wrote something its own schemas refuse: a bug, reported loudly.
                Refusal::new(
                    "HUB-INVALID",
                    problems
                        .iter()
                        .map(ToString::to_string)
                        .collect::<Vec<_>>()
                        .join("; "),
                )
            })?;
        signed.map_err(|e| Refusal::new(e.code(), e.to_string()))
    }

    /// Validates `bytes` and signs them on one bounded read and one libxml2 parse: the
    /// signer's bounded reader first (nothing reaches libxml2 before it accepted the bytes),
    /// the validator's screen of what it read, the XSD on the signer's tree, the
    /// signature, then the business rules. Signed before the rules, so that libxml2's tree is
    /// freed before the reader's tree for the rules is built (on a large document each is
    /// several times its size); a signature made for a document refused later is dropped.
    /// `Err`: the validation problems.
    fn validate_and_sign(
        &mut self,
        bytes: &[u8],
        now: OffsetDateTime,
    ) -> Result<(Validated, SignedOrNot), Vec<Problem>> {
        // One bounded read, the signer's, for the validator's screen and the signer. Validator
        // and signer have this worker's limits and the reader's refusals do not depend on what
        // it keeps, so its refusal is the validator's problem, as the validator's own read
        // would report it.
        let read = self
            .signer
            .read(bytes)
            .map_err(|e| vec![Problem::from(e)])?;
        let screened = self.validator.screen_selected(read.selection());
        match self.signer.parse_read(read) {
            Ok(unsigned) => {
                let schema_valid = self.validator.check_schema(screened, unsigned.libxml())?;
                let signed = self.signer.sign_parsed(unsigned);
                let valid = self.validator.check_rules(schema_valid, bytes, now)?;
                Ok((valid, signed))
            }
            // The signer refused the document (no readable header, signed already) or libxml2
            // failed: validation problems come first, as they always did, so the document is
            // validated on a parse of the validator's own.
            Err(e) => Ok((self.validator.validate_at(bytes, now)?, Err(e))),
        }
    }

    /// The receipt (or rejection) answering an e-Form D or ACDD, signed; `None` for other kinds.
    pub fn receipt(
        &mut self,
        original: &Header,
        reply_to: MemberState,
        reference: Option<&str>,
        refusals: &[Refusal],
        now: OffsetDateTime,
    ) -> Option<Result<Signed, Refusal>> {
        let reasons = refusals.iter().map(Refusal::to_reason).collect();
        let mut message = reply::receipt(original, reference.unwrap_or("UNKNOWN"), reasons, now)?;
        message.header.sender = self.identity.country;
        message.header.receiver = reply_to;
        Some(self.sign_own(&message, now).map(|bytes| Signed {
            header: message.header.clone(),
            bytes: bytes.into(),
        }))
    }
}

/// The signed bytes of a valid document, or why it could not be signed.
type SignedOrNot = Result<Vec<u8>, asw_sign::SignError>;

/// The refusal standing for a panic while handling a document: parked with the panic's text.
pub fn panicked(text: String) -> Refusal {
    Refusal {
        code: PANIC.into(),
        text: format!("the hub failed on this document (a bug, please report it): {text}"),
    }
}

/// The code of an outbound document for a partner the partners file lists but does not enable.
pub const ROUTE_DISABLED_RECEIVER: &str = "ROUTE-007";

/// The code of an inbound document from a partner the partners file lists but does not enable.
pub const ROUTE_DISABLED_SENDER: &str = "ROUTE-008";

/// The code of a refusal that says the hub's own code panicked on the document.
pub const PANIC: &str = "HUB-PANIC";

/// The code of a refusal that only says the hub was stopping: never a verdict on the document.
pub const STOPPING: &str = "HUB-STOPPING";

/// True for kinds the hub acknowledges on receipt.
pub fn is_acknowledged(kind: DocumentKind) -> bool {
    kind.ack_kind().is_some()
}

#[cfg(test)]
mod tests;
