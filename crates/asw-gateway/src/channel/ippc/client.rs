//! The hub's web service over HTTPS with our client certificate, verifying the hub's
//! certificate against the configured CAs and its name: one blocking call per operation (run it
//! where blocking is allowed, `spawn_blocking`), each failure classified transient or permanent.

use std::time::Duration;

use asw_model::xml::Limits;
use asw_tls::ClientTls;
use base64::Engine as _;

use super::soap::{self, Answer, Operation, part};

/// How long one call may take, connect to last byte.
pub const CALL_TIMEOUT: Duration = Duration::from_secs(60);
/// The largest answer read (a pulled certificate with its attachments; the hub's own limit is
/// of this order).
pub const MAX_ANSWER_BYTES: u64 = 32 << 20;

/// A failed call.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum HubError {
    /// No answer: connection refused or reset, TLS failure, timeout.
    #[error("the ePhyto hub at {url} cannot be reached: {reason}")]
    Unreachable {
        /// The service URL.
        url: String,
        /// Why.
        reason: String,
    },
    /// An HTTP status without a SOAP fault.
    #[error("the ePhyto hub answered {operation} with HTTP {status}")]
    Http {
        /// The operation.
        operation: &'static str,
        /// The status.
        status: u16,
    },
    /// A SOAP fault (`HubWebException`).
    #[error("the ePhyto hub refused {operation} ({code}): {message}")]
    Fault {
        /// The operation.
        operation: &'static str,
        /// `Client` (our request is wrong) or `Server` (the hub failed).
        code: String,
        /// The hub's message.
        message: String,
    },
    /// An answer that is not what the WSDL says.
    #[error("the ePhyto hub's answer to {operation} is not usable: {reason}")]
    Answer {
        /// The operation.
        operation: &'static str,
        /// What is wrong with it.
        reason: String,
    },
    /// The client cannot be built from its settings (TLS material).
    #[error("the ePhyto hub client cannot be set up: {0}")]
    Setup(String),
}

impl HubError {
    /// Whether trying again later may succeed: the hub unreachable, a 5xx, 408 or 429, a
    /// `soap:Server` fault, a garbled answer (a proxy's error page). Permanent: other 4xx, a
    /// `soap:Client` fault (the request is wrong, or the hub does not know the envelope), setup.
    pub fn is_transient(&self) -> bool {
        match self {
            HubError::Unreachable { .. } | HubError::Answer { .. } => true,
            HubError::Http { status, .. } => *status >= 500 || *status == 408 || *status == 429,
            HubError::Fault { code, .. } => code != "Client",
            HubError::Setup(_) => false,
        }
    }
}

/// A hub envelope's header, as `GetImportEnvelopeHeaders`, `DeliverEnvelope` and
/// `GetEnvelopeTrackingInfo` answer it.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct EnvelopeHeader {
    /// Exporting country.
    pub from: String,
    /// Importing country.
    pub to: String,
    /// 851 export, 657 re-export.
    pub certificate_type: String,
    /// The certificate's status code.
    pub certificate_status: String,
    /// The exporting NPPO's certificate number.
    pub nppo_number: String,
    /// The hub's delivery number.
    pub delivery_number: String,
    /// `HUBTrackingInfo`.
    pub tracking: String,
    /// `hubDeliveryErrorMessage`.
    pub error_message: Option<String>,
}

impl EnvelopeHeader {
    fn read(e: &asw_model::xml::Element) -> EnvelopeHeader {
        let message = soap::text(e, "hubDeliveryErrorMessage");
        EnvelopeHeader {
            from: soap::text(e, "From"),
            to: soap::text(e, "To"),
            certificate_type: soap::text(e, "CertificateType"),
            certificate_status: soap::text(e, "CertificateStatus"),
            nppo_number: soap::text(e, "NPPOCertificateNumber"),
            delivery_number: soap::text(e, "hubDeliveryNumber"),
            tracking: soap::text(e, "HUBTrackingInfo"),
            error_message: (!message.is_empty()).then_some(message),
        }
    }
}

/// A certificate to export.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Export<'a> {
    /// Our country.
    pub from: &'a str,
    /// The importing country.
    pub to: &'a str,
    /// 851 (export) or 657 (re-export).
    pub certificate_type: CertificateType,
    /// The certificate's status code (70 issued, 39 approved, 40 withdrawn...).
    pub certificate_status: u16,
    /// Our NPPO's certificate number.
    pub nppo_number: &'a str,
    /// The SPS certificate, schema-valid (sent base64-encoded, as the known client does).
    pub certificate: &'a [u8],
}

/// `CertificateType`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CertificateType {
    /// 851, a phytosanitary certificate.
    Export,
    /// 657, a re-export certificate.
    ReExport,
}

impl CertificateType {
    /// The code.
    pub fn code(self) -> u16 {
        match self {
            CertificateType::Export => 851,
            CertificateType::ReExport => 657,
        }
    }
}

/// What tracking says of an exported envelope, as the hub's outcome for our document.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ExportOutcome {
    /// Not yet settled by the importing country (`PendingDelivery`).
    Pending,
    /// `Delivered` (no warning) or `DeliveredWithWarnings` (the hub's message).
    Acknowledged {
        /// The importing country's warning.
        warning: Option<String>,
    },
    /// `FailedDelivery`, `DeliveredNotReadable`, `EnvelopeNotExists`: with the hub's message.
    Rejected {
        /// The tracking state.
        tracking: String,
        /// The hub's message (or the state's meaning when the hub gave none).
        reason: String,
    },
}

impl ExportOutcome {
    /// The outcome a tracking answer means.
    pub fn of(header: &EnvelopeHeader) -> ExportOutcome {
        let message = header.error_message.clone();
        match header.tracking.as_str() {
            "Delivered" => ExportOutcome::Acknowledged { warning: None },
            "DeliveredWithWarnings" => ExportOutcome::Acknowledged {
                warning: Some(message.unwrap_or_else(|| "delivered with warnings".into())),
            },
            "FailedDelivery" | "DeliveredNotReadable" | "EnvelopeNotExists" => {
                ExportOutcome::Rejected {
                    tracking: header.tracking.clone(),
                    reason: message.unwrap_or_else(|| match header.tracking.as_str() {
                        "FailedDelivery" => "the hub could not deliver it".into(),
                        "DeliveredNotReadable" => "the importing country could not read it".into(),
                        _ => "the hub has no such envelope".into(),
                    }),
                }
            }
            _ => ExportOutcome::Pending,
        }
    }
}

/// A pulled envelope: its header and `Content` as the hub holds it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Pulled {
    /// The header.
    pub header: EnvelopeHeader,
    /// `Content`, as text (base64 or raw XML).
    pub content: String,
}

/// A client of one hub for one country.
pub struct HubClient {
    agent: ureq::Agent,
    url: String,
    limits: Limits,
}

impl std::fmt::Debug for HubClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HubClient")
            .field("url", &self.url)
            .finish_non_exhaustive()
    }
}

fn ureq_tls(tls: &ClientTls) -> Result<ureq::tls::TlsConfig, HubError> {
    use ureq::tls::{Certificate, ClientCert, PrivateKey, RootCerts, TlsProvider};
    let der = |c: &openssl::x509::X509| {
        c.to_der()
            .map(|d| Certificate::from_der(&d).to_owned())
            .map_err(|e| HubError::Setup(e.to_string()))
    };
    let roots = if tls.ca.is_empty() {
        RootCerts::PlatformVerifier
    } else {
        RootCerts::new_with_certs(&tls.ca.iter().map(der).collect::<Result<Vec<_>, _>>()?)
    };
    let identity = tls.identity.as_ref().ok_or_else(|| {
        HubError::Setup(format!(
            "{}: the hub needs a client certificate",
            tls.prefix
        ))
    })?;
    let chain = identity
        .chain
        .iter()
        .map(der)
        .collect::<Result<Vec<_>, _>>()?;
    let key = identity
        .key
        .private_key_to_pem_pkcs8()
        .map_err(|e| HubError::Setup(e.to_string()))?;
    let key = PrivateKey::from_pem(&key)
        .map_err(|e| HubError::Setup(e.to_string()))?
        .to_owned();
    Ok(ureq::tls::TlsConfig::builder()
        .provider(TlsProvider::NativeTls)
        .root_certs(roots)
        .client_cert(Some(ClientCert::new_with_certs(&chain, key)))
        .build())
}

impl HubClient {
    /// A client of the service at `url` presenting `tls`'s client certificate and trusting
    /// `tls`'s CAs (or the system's) for the hub's certificate.
    pub fn new(url: &str, tls: &ClientTls) -> Result<HubClient, HubError> {
        let config = ureq::Agent::config_builder()
            .http_status_as_error(false)
            .timeout_global(Some(CALL_TIMEOUT))
            .tls_config(ureq_tls(tls)?)
            .build();
        Ok(HubClient {
            agent: config.into(),
            url: url.to_owned(),
            limits: Limits {
                max_bytes: usize::try_from(MAX_ANSWER_BYTES).unwrap_or(usize::MAX),
                ..Limits::DEFAULT
            },
        })
    }

    /// One call: the response element, or the failure classified.
    fn call(&self, operation: Operation, parts: &str) -> Result<asw_model::xml::Element, HubError> {
        let body = soap::request(operation, parts);
        let response = self
            .agent
            .post(&self.url)
            .header("SOAPAction", format!("\"{}\"", operation.soap_action()))
            .content_type("text/xml; charset=utf-8")
            .send(body.as_bytes());
        let mut response = response.map_err(|e| HubError::Unreachable {
            url: self.url.clone(),
            reason: e.to_string(),
        })?;
        let status = response.status().as_u16();
        let bytes = response
            .body_mut()
            .with_config()
            .limit(MAX_ANSWER_BYTES)
            .read_to_vec()
            .map_err(|e| HubError::Unreachable {
                url: self.url.clone(),
                reason: format!("reading the answer: {e}"),
            })?;
        match (status, soap::answer(&bytes, operation, &self.limits)) {
            (_, Ok(Answer::Fault { code, message })) => Err(HubError::Fault {
                operation: operation.name(),
                code,
                message,
            }),
            (200, Ok(Answer::Response(e))) => Ok(e),
            (200, Err(reason)) => Err(HubError::Answer {
                operation: operation.name(),
                reason,
            }),
            (status, _) => Err(HubError::Http {
                operation: operation.name(),
                status,
            }),
        }
    }

    /// `DeliverEnvelope`: the header the hub answers, with its `hubDeliveryNumber`.
    pub fn deliver(&self, export: &Export<'_>) -> Result<EnvelopeHeader, HubError> {
        let content = base64::engine::general_purpose::STANDARD.encode(export.certificate);
        let parts = soap::envelope_fields(
            export.from,
            export.to,
            export.certificate_type.code(),
            export.certificate_status,
            export.nppo_number,
            &content,
        );
        let answer = self.call(Operation::DeliverEnvelope, &parts)?;
        let header = soap::child(&answer, "DeliverEnvelopeResult")
            .map(EnvelopeHeader::read)
            .filter(|h| !h.delivery_number.is_empty())
            .ok_or(HubError::Answer {
                operation: "DeliverEnvelope",
                reason: "no hubDeliveryNumber".into(),
            })?;
        if header.from != export.from || header.to != export.to {
            return Err(HubError::Answer {
                operation: "DeliverEnvelope",
                reason: format!(
                    "the hub recorded {} -> {}, we sent {} -> {}",
                    header.from, header.to, export.from, export.to
                ),
            });
        }
        Ok(header)
    }

    /// `GetEnvelopeTrackingInfo`.
    pub fn tracking(&self, number: &str) -> Result<EnvelopeHeader, HubError> {
        let answer = self.call(
            Operation::GetEnvelopeTrackingInfo,
            &part("hubTrackingNumber", number),
        )?;
        soap::child(&answer, "GetEnvelopeTrackingInfoResult")
            .map(EnvelopeHeader::read)
            .ok_or(HubError::Answer {
                operation: "GetEnvelopeTrackingInfo",
                reason: "no result".into(),
            })
    }

    /// `GetImportEnvelopeHeaders` for our country.
    pub fn import_headers(&self, country: &str) -> Result<Vec<EnvelopeHeader>, HubError> {
        let answer = self.call(
            Operation::GetImportEnvelopeHeaders,
            &part("countryCode", country),
        )?;
        Ok(soap::child(&answer, "GetImportEnvelopeHeadersResult")
            .map(|r| {
                r.children
                    .iter()
                    .filter(|c| c.name == "EnvelopeHeader")
                    .map(EnvelopeHeader::read)
                    .collect()
            })
            .unwrap_or_default())
    }

    /// `PULLSingleImportEnvelope`.
    pub fn pull(&self, number: &str) -> Result<Pulled, HubError> {
        let answer = self.call(
            Operation::PullSingleImportEnvelope,
            &part("hubTrackingNumber", number),
        )?;
        let result =
            soap::child(&answer, "PULLSingleImportEnvelopeResult").ok_or(HubError::Answer {
                operation: "PULLSingleImportEnvelope",
                reason: "no envelope".into(),
            })?;
        Ok(Pulled {
            header: EnvelopeHeader::read(result),
            content: soap::text(result, "Content"),
        })
    }

    /// `AcknowledgeEnvelopeReceipt`: delivered.
    pub fn acknowledge(&self, number: &str) -> Result<(), HubError> {
        self.call(
            Operation::AcknowledgeEnvelopeReceipt,
            &part("hubTrackingNumber", number),
        )
        .map(drop)
    }

    /// `AdvancedAcknowledgeEnvelopeReceipt`: delivered with a warning.
    pub fn acknowledge_with_warning(&self, number: &str, warning: &str) -> Result<(), HubError> {
        let parts = part("hubTrackingNumber", number) + &part("warningMessage", warning);
        self.call(Operation::AdvancedAcknowledgeEnvelopeReceipt, &parts)
            .map(drop)
    }

    /// `AcknowledgeFailedEnvelopeReceipt`: not readable, with the reason.
    pub fn acknowledge_failed(&self, number: &str, reason: &str) -> Result<(), HubError> {
        let parts = part("hubTrackingNumber", number) + &part("message", reason);
        self.call(Operation::AcknowledgeFailedEnvelopeReceipt, &parts)
            .map(drop)
    }
}
