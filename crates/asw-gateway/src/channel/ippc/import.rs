//! Import from the hub, as the known client does it: list what waits, pull each envelope,
//! decode its `Content` (base64, or raw XML), validate the certificate against our own XSD, hand
//! it to the back-office, and only once that is confirmed settle it with the hub:
//! - valid: `AcknowledgeEnvelopeReceipt` (the hub shows Delivered);
//! - readable but invalid: delivered with the problems as warnings (rule ids and lines) and
//!   `AdvancedAcknowledgeEnvelopeReceipt` with them (DeliveredWithWarnings); with `strict`,
//!   refused like an unreadable one;
//! - unreadable (not base64 nor XML, not well-formed, not an SPS certificate), or from a
//!   country that is not a configured partner: `AcknowledgeFailedEnvelopeReceipt` with the
//!   reason (DeliveredNotReadable), once it is parked with a reason code.
//!
//! An envelope listed again (our acknowledgement was lost) is recognised by its hub delivery
//! number and given the same acknowledgement again, never delivered or parked twice.

use std::collections::{BTreeMap, BTreeSet};

use asw_model::xml::Limits;
use asw_schema::{DocumentValidator, Problem, SchemaError, SchemaSet};
use base64::Engine as _;

use super::client::{HubClient, HubError, Pulled};

/// Reason code of an envelope whose content cannot be read as an SPS certificate.
pub const REASON_UNREADABLE: &str = "EPHYTO-UNREADABLE";
/// Reason code of a schema-invalid certificate refused by a strict partner setting.
pub const REASON_INVALID: &str = "EPHYTO-INVALID";
/// Reason code of an envelope from a country that is not a configured partner of the channel.
pub const REASON_UNKNOWN_SENDER: &str = "EPHYTO-UNKNOWN-SENDER";
/// The longest warning or failure message sent to the hub.
pub const MAX_HUB_MESSAGE: usize = 2000;

/// How an envelope was settled with the hub, kept by hub delivery number so that an envelope
/// listed again (our acknowledgement was lost) gets the same acknowledgement and nothing else.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Settlement {
    /// Delivered to the back-office; the warning sent with `AdvancedAcknowledgeEnvelopeReceipt`,
    /// if any.
    Delivered {
        /// The warning.
        warning: Option<String>,
    },
    /// Parked; the reason sent with `AcknowledgeFailedEnvelopeReceipt`.
    Refused {
        /// The reason.
        message: String,
    },
}

/// The envelopes already settled (the journal in the hub: [`JournalSettled`](super::JournalSettled)).
/// An error is a store that cannot answer now: the envelope is left unsettled on the hub and
/// comes again at the next poll.
pub trait Settled {
    /// How this number was settled, if it was.
    fn settlement(&self, number: &str) -> Result<Option<Settlement>, String>;
    /// Records it settled.
    fn record(&mut self, number: &str, settlement: Settlement) -> Result<(), String>;
}

impl Settled for BTreeMap<String, Settlement> {
    fn settlement(&self, number: &str) -> Result<Option<Settlement>, String> {
        Ok(self.get(number).cloned())
    }
    fn record(&mut self, number: &str, settlement: Settlement) -> Result<(), String> {
        self.insert(number.to_owned(), settlement);
        Ok(())
    }
}

/// Where imports go: the back-office, or the parking lot. Each returns once the publish is
/// confirmed; an error leaves the envelope unsettled on the hub, pulled again next time.
pub trait ImportSink {
    /// Delivers a certificate to the back-office.
    fn deliver(&mut self, import: &Import) -> Result<(), String>;
    /// Parks a refused envelope with its reason code.
    fn park(&mut self, refused: &Refused) -> Result<(), String>;
}

/// An envelope refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refused {
    /// The hub's delivery number.
    pub number: String,
    /// The exporting country as the hub says.
    pub from: String,
    /// `EPHYTO-UNREADABLE`, `EPHYTO-INVALID`, `EPHYTO-UNKNOWN-SENDER`.
    pub reason: &'static str,
    /// What is sent to the hub.
    pub message: String,
    /// The content as pulled.
    pub content: String,
}

/// A readable certificate: its bytes and its schema problems (empty when valid).
pub type Readable = (Vec<u8>, Vec<Problem>);
/// Why an envelope is refused: the reason code and the message for the hub.
pub type Refusal = (&'static str, String);

/// A certificate for the back-office.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Import {
    /// The hub's delivery number.
    pub delivery_number: String,
    /// The exporting country (a configured partner).
    pub from: String,
    /// The exporter's certificate number.
    pub nppo_number: String,
    /// The certificate's XML.
    pub certificate: Vec<u8>,
    /// Schema problems (rule, line, message), empty for a valid certificate.
    pub warnings: Vec<Problem>,
}

/// What became of one envelope.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ImportOutcome {
    /// Delivered and acknowledged (warnings empty) or acknowledged with them.
    Delivered {
        /// The hub's delivery number.
        number: String,
        /// The problems sent as the warning.
        warnings: Vec<Problem>,
    },
    /// Settled before: given the same acknowledgement again, nothing else.
    Duplicate {
        /// The hub's delivery number.
        number: String,
    },
    /// Parked, then refused with `AcknowledgeFailedEnvelopeReceipt`.
    Refused(Refused),
    /// The back-office delivery or the park was not confirmed: not acknowledged, pulled again
    /// next time.
    NotDelivered {
        /// The hub's delivery number.
        number: String,
        /// Why.
        error: String,
    },
}

/// What one poll did, up to the hub's first failure (then `error`: the rest waits for the
/// next poll; what was settled is settled).
#[derive(Debug, Default)]
pub struct PollReport {
    /// One per envelope handled.
    pub outcomes: Vec<ImportOutcome>,
    /// The failure that ended the poll early.
    pub error: Option<HubError>,
}

/// The import side of one country's channel. Holds libxml2 objects: one thread.
pub struct Importer {
    country: String,
    partners: BTreeSet<String>,
    strict: bool,
    validator: DocumentValidator,
    limits: Limits,
}

impl std::fmt::Debug for Importer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Importer")
            .field("country", &self.country)
            .field("partners", &self.partners)
            .field("strict", &self.strict)
            .finish_non_exhaustive()
    }
}

/// The content's bytes: base64-decoded, or the text itself where it is XML.
fn decode(content: &str) -> Result<Vec<u8>, String> {
    let trimmed = content.trim();
    if trimmed.starts_with('<') {
        return Ok(trimmed.as_bytes().to_vec());
    }
    let compact: String = trimmed
        .chars()
        .filter(|c| !c.is_ascii_whitespace())
        .collect();
    base64::engine::general_purpose::STANDARD
        .decode(compact.as_bytes())
        .map_err(|e| format!("Content is neither XML nor base64: {e}"))
}

/// The text cut to [`MAX_HUB_MESSAGE`] bytes on a char boundary.
pub(crate) fn clip(mut text: String) -> String {
    if text.len() > MAX_HUB_MESSAGE {
        let mut at = MAX_HUB_MESSAGE;
        while !text.is_char_boundary(at) {
            at -= 1;
        }
        text.truncate(at);
    }
    text
}

fn problems_text(problems: &[Problem]) -> String {
    clip(
        problems
            .iter()
            .map(|p| format!("{} line {}: {}", p.rule, p.line, p.message))
            .collect::<Vec<_>>()
            .join("; "),
    )
}

impl Importer {
    /// The importer of `country` taking envelopes from `partners`; `strict` refuses invalid
    /// certificates.
    pub fn new(
        country: &str,
        partners: impl IntoIterator<Item = String>,
        strict: bool,
        limits: Limits,
    ) -> Result<Importer, SchemaError> {
        let schemas = SchemaSet::embedded_entry("sps-certificate-17.xsd")?;
        Ok(Importer {
            country: country.to_owned(),
            partners: partners.into_iter().collect(),
            strict,
            validator: DocumentValidator::with_schemas(&schemas, limits)?,
            limits,
        })
    }

    /// What a pulled envelope holds: a certificate with its problems, or why it is refused.
    pub fn read(&mut self, pulled: &Pulled) -> Result<Readable, Refusal> {
        if !self.partners.contains(&pulled.header.from) {
            return Err((
                REASON_UNKNOWN_SENDER,
                format!(
                    "{} is not a partner of this NPPO's channel.",
                    pulled.header.from
                ),
            ));
        }
        let bytes = decode(&pulled.content).map_err(|e| (REASON_UNREADABLE, e))?;
        let root = asw_schema::root_element(&bytes, &self.limits)
            .map_err(|p| (REASON_UNREADABLE, format!("Not readable XML: {p}")))?;
        if root.namespace != asw_model::ns::SPS_CERTIFICATE || root.name != "SPSCertificate" {
            return Err((
                REASON_UNREADABLE,
                format!(
                    "Not an SPS certificate: the root is {{{}}}{}.",
                    root.namespace, root.name
                ),
            ));
        }
        match self.validator.validate(&bytes) {
            Ok(_) => Ok((bytes, Vec::new())),
            Err(problems) if self.strict => Err((REASON_INVALID, problems_text(&problems))),
            Err(problems) => Ok((bytes, problems)),
        }
    }

    /// One poll: every envelope waiting for us, each delivered (or parked) through `sink` and
    /// only then settled with the hub.
    pub fn poll(
        &mut self,
        hub: &HubClient,
        settled: &mut dyn Settled,
        sink: &mut dyn ImportSink,
    ) -> PollReport {
        let mut report = PollReport::default();
        let headers = match hub.import_headers(&self.country) {
            Ok(headers) => headers,
            Err(e) => {
                report.error = Some(e);
                return report;
            }
        };
        for header in headers {
            if let Err(e) = self.one(hub, &header.delivery_number, settled, sink, &mut report) {
                report.error = Some(e);
                break;
            }
        }
        report
    }

    fn one(
        &mut self,
        hub: &HubClient,
        number: &str,
        settled: &mut dyn Settled,
        sink: &mut dyn ImportSink,
        report: &mut PollReport,
    ) -> Result<(), HubError> {
        let number = number.to_owned();
        let known = match settled.settlement(&number) {
            Ok(known) => known,
            Err(error) => {
                // Not pulled, not acknowledged: it waits on the hub for the next poll.
                report
                    .outcomes
                    .push(ImportOutcome::NotDelivered { number, error });
                return Ok(());
            }
        };
        if let Some(settlement) = known {
            acknowledge(hub, &number, &settlement)?;
            report.outcomes.push(ImportOutcome::Duplicate { number });
            return Ok(());
        }
        let pulled = hub.pull(&number)?;
        let (settlement, outcome) = match self.read(&pulled) {
            Err((reason, message)) => {
                let refused = Refused {
                    number: number.clone(),
                    from: pulled.header.from.clone(),
                    reason,
                    message: clip(message),
                    content: pulled.content,
                };
                if let Err(error) = sink.park(&refused) {
                    report
                        .outcomes
                        .push(ImportOutcome::NotDelivered { number, error });
                    return Ok(());
                }
                (
                    Settlement::Refused {
                        message: refused.message.clone(),
                    },
                    ImportOutcome::Refused(refused),
                )
            }
            Ok((certificate, warnings)) => {
                let import = Import {
                    delivery_number: number.clone(),
                    from: pulled.header.from.clone(),
                    nppo_number: pulled.header.nppo_number.clone(),
                    certificate,
                    warnings,
                };
                if let Err(error) = sink.deliver(&import) {
                    report
                        .outcomes
                        .push(ImportOutcome::NotDelivered { number, error });
                    return Ok(());
                }
                let warning =
                    (!import.warnings.is_empty()).then(|| problems_text(&import.warnings));
                (
                    Settlement::Delivered { warning },
                    ImportOutcome::Delivered {
                        number: number.clone(),
                        warnings: import.warnings,
                    },
                )
            }
        };
        // Recorded before the hub is told: a lost acknowledgement repeats it, never the delivery.
        // Not recorded, it is not acknowledged either: the hub lists it again, and the sink
        // (which saw it) must recognise it by its delivery number.
        if let Err(error) = settled.record(&number, settlement.clone()) {
            report.outcomes.push(ImportOutcome::NotDelivered {
                number,
                error: format!("handed over, but its settlement was not recorded: {error}"),
            });
            return Ok(());
        }
        acknowledge(hub, &number, &settlement)?;
        report.outcomes.push(outcome);
        Ok(())
    }
}

/// The acknowledgement a settlement calls for.
fn acknowledge(hub: &HubClient, number: &str, settlement: &Settlement) -> Result<(), HubError> {
    match settlement {
        Settlement::Delivered { warning: None } => hub.acknowledge(number),
        Settlement::Delivered {
            warning: Some(warning),
        } => hub.acknowledge_with_warning(number, warning),
        Settlement::Refused { message } => hub.acknowledge_failed(number, message),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn content_is_base64_or_raw_xml() {
        assert_eq!(decode("  <a/>\n").expect("raw"), b"<a/>");
        assert_eq!(decode("PGEv\nPg==").expect("base64"), b"<a/>");
        assert!(decode("not base64 !").is_err());
    }

    #[test]
    fn messages_to_the_hub_are_clipped_on_a_char_boundary() {
        let text = clip("é".repeat(MAX_HUB_MESSAGE));
        assert!(text.len() <= MAX_HUB_MESSAGE && text.len() >= MAX_HUB_MESSAGE - 1);
    }
}
