//! The hub's SOAP 1.1 dialect, as pure code: the requests of the operations the channel uses,
//! and their answers and faults read with the bounded XML reader (the hub's answers are
//! untrusted input like any partner's).

use asw_model::xml::{self, Element, Limits};

/// The hub's target namespace (operations and their parts, qualified).
pub const HUB_NS: &str = "http://ephyto.ippc.int/";
/// The hub's entities (the envelope's fields).
pub const ENTITIES_NS: &str = "http://ephyto.ippc.int/HUB.Entities";
/// SOAP 1.1.
pub const SOAP_NS: &str = "http://schemas.xmlsoap.org/soap/envelope/";

/// An operation of the hub the channel calls.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Operation {
    /// Export: hand an envelope to the hub.
    DeliverEnvelope,
    /// Import: the headers of what waits for us.
    GetImportEnvelopeHeaders,
    /// Import: one envelope.
    PullSingleImportEnvelope,
    /// Import settled: delivered.
    AcknowledgeEnvelopeReceipt,
    /// Import settled: delivered with a warning.
    AdvancedAcknowledgeEnvelopeReceipt,
    /// Import settled: not readable.
    AcknowledgeFailedEnvelopeReceipt,
    /// Export: where an envelope is.
    GetEnvelopeTrackingInfo,
}

impl Operation {
    /// Every operation the channel calls.
    pub const ALL: [Operation; 7] = [
        Operation::DeliverEnvelope,
        Operation::GetImportEnvelopeHeaders,
        Operation::PullSingleImportEnvelope,
        Operation::AcknowledgeEnvelopeReceipt,
        Operation::AdvancedAcknowledgeEnvelopeReceipt,
        Operation::AcknowledgeFailedEnvelopeReceipt,
        Operation::GetEnvelopeTrackingInfo,
    ];

    /// Its name in the WSDL (the request element's local name).
    pub fn name(self) -> &'static str {
        match self {
            Operation::DeliverEnvelope => "DeliverEnvelope",
            Operation::GetImportEnvelopeHeaders => "GetImportEnvelopeHeaders",
            Operation::PullSingleImportEnvelope => "PULLSingleImportEnvelope",
            Operation::AcknowledgeEnvelopeReceipt => "AcknowledgeEnvelopeReceipt",
            Operation::AdvancedAcknowledgeEnvelopeReceipt => "AdvancedAcknowledgeEnvelopeReceipt",
            Operation::AcknowledgeFailedEnvelopeReceipt => "AcknowledgeFailedEnvelopeReceipt",
            Operation::GetEnvelopeTrackingInfo => "GetEnvelopeTrackingInfo",
        }
    }

    /// Its `soapAction` in the WSDL's binding (not always derived from its name:
    /// `AdvancedAcknowledgeEnvelopeReceipt`'s is `.../NegativeAcknowledgeEnvelopeReceipt`).
    pub fn soap_action(self) -> &'static str {
        match self {
            Operation::DeliverEnvelope => "http://ephyto.ippc.int/IDeliveryService/DeliverEnvelope",
            Operation::GetImportEnvelopeHeaders => {
                "http://ephyto.ippc.int/IDeliveryService/GetImportEnvelopeHeaders"
            }
            Operation::PullSingleImportEnvelope => {
                "http://ephyto.ippc.int/IDeliveryService/PULLSingleImportEnvelope"
            }
            Operation::AcknowledgeEnvelopeReceipt => {
                "http://ephyto.ippc.int/IDeliveryService/AcknowledgeEnvelopeReceipt"
            }
            Operation::AdvancedAcknowledgeEnvelopeReceipt => {
                "http://ephyto.ippc.int/IDeliveryService/NegativeAcknowledgeEnvelopeReceipt"
            }
            Operation::AcknowledgeFailedEnvelopeReceipt => {
                "http://ephyto.ippc.int/IDeliveryService/AcknowledgeFailedEnvelopeReceipt"
            }
            Operation::GetEnvelopeTrackingInfo => {
                "http://ephyto.ippc.int/IDeliveryService/GetEnvelopeTrackingInfo"
            }
        }
    }
}

/// XML character escaping for text and attribute values.
pub fn escape(text: &str) -> String {
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

/// A request: the operation's element in a SOAP body, `parts` its children (already XML).
pub fn request(operation: Operation, parts: &str) -> String {
    format!(
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?><soap:Envelope xmlns:soap=\"{SOAP_NS}\"><soap:Body><hub:{op} xmlns:hub=\"{HUB_NS}\" xmlns:ent=\"{ENTITIES_NS}\">{parts}</hub:{op}></soap:Body></soap:Envelope>",
        op = operation.name()
    )
}

/// One simple part (`<hub:name>value</hub:name>`).
pub fn part(name: &str, value: &str) -> String {
    format!("<hub:{name}>{}</hub:{name}>", escape(value))
}

/// The header fields of an envelope to deliver, in the schema's order, and its Content.
pub fn envelope_fields(
    from: &str,
    to: &str,
    certificate_type: u16,
    certificate_status: u16,
    nppo_number: &str,
    content: &str,
) -> String {
    format!(
        "<hub:env><ent:From>{}</ent:From><ent:To>{}</ent:To><ent:CertificateType>{certificate_type}</ent:CertificateType><ent:CertificateStatus>{certificate_status}</ent:CertificateStatus><ent:NPPOCertificateNumber>{}</ent:NPPOCertificateNumber><ent:Content>{}</ent:Content></hub:env>",
        escape(from),
        escape(to),
        escape(nppo_number),
        escape(content)
    )
}

/// What an answer was: the operation's response element, or a fault.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Answer {
    /// The response element.
    Response(Element),
    /// A SOAP fault: its code's local name (`Client`, `Server`) and the message
    /// (`HubWebException`'s, else the fault string).
    Fault {
        /// `Client` or `Server` (SOAP 1.1), or what the hub wrote.
        code: String,
        /// The hub's message.
        message: String,
    },
}

/// Reads an answer; `Err` with why it is not a SOAP answer of that operation.
pub fn answer(bytes: &[u8], operation: Operation, limits: &Limits) -> Result<Answer, String> {
    let root = xml::parse(bytes, limits).map_err(|e| format!("not XML: {e}"))?;
    if root.namespace.as_ref() != SOAP_NS || root.name != "Envelope" {
        return Err(format!(
            "not a SOAP 1.1 envelope but {{{}}}{}",
            root.namespace, root.name
        ));
    }
    let body = child(&root, "Body").ok_or("a SOAP envelope without a Body")?;
    let first = body.children.first().ok_or("an empty SOAP Body")?;
    if first.namespace.as_ref() == SOAP_NS && first.name == "Fault" {
        let code = text(first, "faultcode");
        let code = code.rsplit(':').next().unwrap_or_default().to_owned();
        let message = child(first, "detail")
            .and_then(|d| child(d, "HubWebException"))
            .map(|h| text(h, "message"))
            .filter(|m| !m.is_empty())
            .unwrap_or_else(|| text(first, "faultstring"));
        return Ok(Answer::Fault { code, message });
    }
    let expected = format!("{}Response", operation.name());
    if first.namespace.as_ref() != HUB_NS || first.name != expected {
        return Err(format!(
            "expected {expected}, got {{{}}}{}",
            first.namespace, first.name
        ));
    }
    Ok(Answer::Response(first.clone()))
}

/// The first child named `name`.
pub fn child<'a>(e: &'a Element, name: &str) -> Option<&'a Element> {
    e.children.iter().find(|c| c.name == name)
}

/// The text of the first child named `name`, empty if none.
pub fn text(e: &Element, name: &str) -> String {
    child(e, name).map(|c| c.text.clone()).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The actions agree with the WSDL's binding, when the WSDL is beside the repository (the
    /// simulator's tests check every request against it in any case).
    #[test]
    fn soap_actions_are_the_wsdl_binding_s() {
        let path = std::env::var_os("ASWHUB_EPHYTO_WSDL").map_or_else(
            || {
                std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
                    .join("../../../shared/ephyto-hub/ephyto.wsdl")
            },
            std::path::PathBuf::from,
        );
        let wsdl = std::fs::read_to_string(&path).expect("the hub's WSDL (../shared/ephyto-hub)");
        let actions = asw_schema::wsdl::soap_actions(&wsdl);
        for op in Operation::ALL {
            assert_eq!(
                actions.get(op.name()).map(String::as_str),
                Some(op.soap_action()),
                "{}",
                op.name()
            );
        }
    }

    #[test]
    fn a_hub_web_exception_is_read_from_the_fault_detail() {
        let fault = format!(
            "<s:Envelope xmlns:s=\"{SOAP_NS}\"><s:Body><s:Fault><faultcode>s:Client</faultcode>\
             <faultstring>x</faultstring><detail><h:HubWebException xmlns:h=\"{HUB_NS}\">\
             <h:message>No such envelope</h:message></h:HubWebException></detail></s:Fault>\
             </s:Body></s:Envelope>"
        );
        let answer = answer(
            fault.as_bytes(),
            Operation::PullSingleImportEnvelope,
            &Limits::DEFAULT,
        );
        assert_eq!(
            answer,
            Ok(Answer::Fault {
                code: "Client".into(),
                message: "No such envelope".into()
            })
        );
        let other = format!(
            "<s:Envelope xmlns:s=\"{SOAP_NS}\"><s:Body><h:DeliverEnvelopeResponse xmlns:h=\"{HUB_NS}\"/></s:Body></s:Envelope>"
        );
        assert!(answer_is_err(&other, Operation::PullSingleImportEnvelope));
        assert!(answer_is_err(
            "<html>proxy error</html>",
            Operation::DeliverEnvelope
        ));
    }

    fn answer_is_err(text: &str, op: Operation) -> bool {
        answer(text.as_bytes(), op, &Limits::DEFAULT).is_err()
    }
}
