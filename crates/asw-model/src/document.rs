//! The ASW message and its business documents as Rust types, serialised to XML with quick-xml and
//! serde. Element names carry the prefixes that [`Message::NAMESPACES`] declares on the root.

use serde::{Serialize, Serializer};
use time::format_description::well_known::Rfc3339;
use time::{Date, OffsetDateTime};

use crate::{DocumentKind, Header, MemberState, ns};

/// A whole ASW message: envelope header and one business document (unsigned).
#[derive(Debug, Clone, PartialEq)]
pub struct Message {
    /// The envelope header.
    pub header: Header,
    /// The business document.
    pub document: Document,
}

/// One of the business documents an ASW message can carry.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub enum Document {
    /// ATIGA e-Form D.
    #[serde(rename = "fd:FormD")]
    FormD(FormD),
    /// ASEAN Customs Declaration Document.
    #[serde(rename = "acdd:ACDD")]
    Acdd(Acdd),
    /// Receipt acknowledgement of an e-Form D.
    #[serde(rename = "ack:FormDAck")]
    FormDAck(Acknowledgement),
    /// Receipt acknowledgement of an ACDD.
    #[serde(rename = "ack:AcddAck")]
    AcddAck(Acknowledgement),
    /// e-Form D status / utilization notification.
    #[serde(rename = "fds:FormDStatus")]
    FormDStatus(FormDStatus),
    /// Customs Response to an ACDD.
    #[serde(rename = "acr:CustomsResponse")]
    AcddResponse(CustomsResponse),
    /// A document of a kind described only as data (e-Phyto, a kind from a kinds directory):
    /// its body as XML, written into the envelope as it is.
    #[serde(skip)]
    Xml(XmlBody),
}

/// The body of a document the model does not type: its kind and its XML (one root element; an
/// XML declaration is dropped when written into the envelope).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct XmlBody {
    /// The kind.
    pub kind: DocumentKind,
    /// The body's XML.
    pub xml: String,
}

/// Stands for an [`XmlBody`] while the envelope is serialised.
const BODY_MARK: &str = "@@ASWHUB-BODY@@";

impl Document {
    /// The kind of this document.
    pub fn kind(&self) -> DocumentKind {
        match self {
            Document::FormD(_) => DocumentKind::FormD,
            Document::Acdd(_) => DocumentKind::Acdd,
            Document::FormDAck(_) => DocumentKind::FormDAck,
            Document::AcddAck(_) => DocumentKind::AcddAck,
            Document::FormDStatus(_) => DocumentKind::FormDStatus,
            Document::AcddResponse(_) => DocumentKind::AcddResponse,
            Document::Xml(body) => body.kind,
        }
    }
}

impl Message {
    /// Prefixes and namespaces declared on the root element of every message written.
    pub const NAMESPACES: [(&'static str, &'static str); 7] = [
        ("asw", ns::ENVELOPE),
        ("cmn", ns::COMMON),
        ("fd", ns::FORMD),
        ("acdd", ns::ACDD),
        ("ack", ns::ACK),
        ("fds", ns::FORMD_STATUS),
        ("acr", ns::ACDD_RESPONSE),
    ];

    /// The message as UTF-8 XML, with an XML declaration, indented (for people and samples).
    pub fn to_xml(&self) -> Result<String, quick_xml::SeError> {
        self.write(true)
    }

    /// The message as UTF-8 XML, with an XML declaration, without indentation (for the wire).
    pub fn to_xml_compact(&self) -> Result<String, quick_xml::SeError> {
        self.write(false)
    }

    fn write(&self, indent: bool) -> Result<String, quick_xml::SeError> {
        let wire = WireMessage {
            xmlns_asw: ns::ENVELOPE,
            xmlns_cmn: ns::COMMON,
            xmlns_fd: ns::FORMD,
            xmlns_acdd: ns::ACDD,
            xmlns_ack: ns::ACK,
            xmlns_fds: ns::FORMD_STATUS,
            xmlns_acr: ns::ACDD_RESPONSE,
            header: WireHeader::from(&self.header),
            body: WireBody {
                document: &self.document,
            },
        };
        let mut out = String::from("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n");
        let mut serializer = quick_xml::se::Serializer::new(&mut out);
        if indent {
            serializer.indent(' ', 2);
        }
        if matches!(self.document, Document::Xml(_)) {
            wire.with_body(WireMark { mark: BODY_MARK })
                .serialize(serializer)?;
        } else {
            wire.serialize(serializer)?;
        }
        if let Document::Xml(body) = &self.document {
            let xml = body.xml.trim();
            let xml = match xml.strip_prefix("<?xml") {
                Some(rest) => rest.split_once("?>").map_or("", |(_, r)| r).trim(),
                None => xml,
            };
            out = out.replacen(BODY_MARK, xml, 1);
        }
        out.push('\n');
        Ok(out)
    }
}

#[derive(Serialize)]
#[serde(rename = "asw:Message")]
struct WireMessage<B> {
    #[serde(rename = "@xmlns:asw")]
    xmlns_asw: &'static str,
    #[serde(rename = "@xmlns:cmn")]
    xmlns_cmn: &'static str,
    #[serde(rename = "@xmlns:fd")]
    xmlns_fd: &'static str,
    #[serde(rename = "@xmlns:acdd")]
    xmlns_acdd: &'static str,
    #[serde(rename = "@xmlns:ack")]
    xmlns_ack: &'static str,
    #[serde(rename = "@xmlns:fds")]
    xmlns_fds: &'static str,
    #[serde(rename = "@xmlns:acr")]
    xmlns_acr: &'static str,
    #[serde(rename = "asw:Header")]
    header: WireHeader,
    #[serde(rename = "asw:Body")]
    body: B,
}

impl<B> WireMessage<B> {
    fn with_body<C>(self, body: C) -> WireMessage<C> {
        WireMessage {
            xmlns_asw: self.xmlns_asw,
            xmlns_cmn: self.xmlns_cmn,
            xmlns_fd: self.xmlns_fd,
            xmlns_acdd: self.xmlns_acdd,
            xmlns_ack: self.xmlns_ack,
            xmlns_fds: self.xmlns_fds,
            xmlns_acr: self.xmlns_acr,
            header: self.header,
            body,
        }
    }
}

#[derive(Serialize)]
struct WireHeader {
    #[serde(rename = "asw:MessageId")]
    message_id: String,
    #[serde(rename = "asw:CorrelationId", skip_serializing_if = "Option::is_none")]
    correlation_id: Option<String>,
    #[serde(rename = "asw:Sender")]
    sender: &'static str,
    #[serde(rename = "asw:Receiver")]
    receiver: &'static str,
    #[serde(rename = "asw:DocumentKind")]
    kind: &'static str,
    #[serde(rename = "asw:DocumentVersion")]
    version: String,
    #[serde(rename = "asw:CreatedAt")]
    created_at: String,
}

impl From<&Header> for WireHeader {
    fn from(h: &Header) -> Self {
        WireHeader {
            message_id: h.message_id.to_string(),
            correlation_id: h.correlation_id.map(|u| u.to_string()),
            sender: h.sender.code(),
            receiver: h.receiver.code(),
            kind: h.kind.as_str(),
            version: h.version.clone(),
            created_at: format_timestamp(h.created_at),
        }
    }
}

#[derive(Serialize)]
struct WireBody<'a> {
    #[serde(rename = "$value")]
    document: &'a Document,
}

#[derive(Serialize)]
struct WireMark {
    #[serde(rename = "$text")]
    mark: &'static str,
}

/// Formats a timestamp as RFC 3339 (`2026-01-05T08:00:00Z`).
pub fn format_timestamp(t: OffsetDateTime) -> String {
    // Formatting a valid OffsetDateTime as RFC 3339 only fails for years beyond 9999, which
    // cannot be built from the inputs we accept; fall back to the unix time rather than panic.
    t.format(&Rfc3339)
        .unwrap_or_else(|_| t.unix_timestamp().to_string())
}

fn serialize_date<S: Serializer>(date: &Date, serializer: S) -> Result<S::Ok, S::Error> {
    serializer.serialize_str(&format!(
        "{:04}-{:02}-{:02}",
        date.year(),
        u8::from(date.month()),
        date.day()
    ))
}

fn serialize_timestamp<S: Serializer>(
    t: &OffsetDateTime,
    serializer: S,
) -> Result<S::Ok, S::Error> {
    serializer.serialize_str(&format_timestamp(*t))
}

fn serialize_state<S: Serializer>(state: &MemberState, serializer: S) -> Result<S::Ok, S::Error> {
    serializer.serialize_str(state.code())
}

/// A decimal amount with its ISO 4217 currency (`<FobValue currencyID="USD">12.50</FobValue>`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Amount {
    /// ISO 4217 code.
    #[serde(rename = "@currencyID")]
    pub currency: String,
    /// The decimal value as written.
    #[serde(rename = "$text")]
    pub value: String,
}

/// A decimal quantity with its UN/ECE Rec. 20 unit (`<Quantity unitCode="KGM">120</Quantity>`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Quantity {
    /// UN/ECE Rec. 20 code.
    #[serde(rename = "@unitCode")]
    pub unit: String,
    /// The decimal value as written.
    #[serde(rename = "$text")]
    pub value: String,
}

/// A reason code and text, for rejections and refusals.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Reason {
    /// Short code, e.g. `FORMD-004` or `SIG-DIGEST`.
    #[serde(rename = "cmn:Code")]
    pub code: String,
    /// Readable explanation.
    #[serde(rename = "cmn:Text")]
    pub text: String,
}

/// ATIGA e-Form D (boxes of Annex 7 in comments).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct FormD {
    /// Reference number (top of the form).
    #[serde(rename = "fd:ReferenceNumber")]
    pub reference_number: String,
    /// "Issued in": the exporting member state.
    #[serde(rename = "fd:IssuedIn", serialize_with = "serialize_state")]
    pub issued_in: MemberState,
    /// Box 1.
    #[serde(rename = "fd:Exporter")]
    pub exporter: Party,
    /// Box 2.
    #[serde(rename = "fd:Consignee")]
    pub consignee: Party,
    /// Box 3.
    #[serde(rename = "fd:Transport")]
    pub transport: Transport,
    /// Box 4, filled in by the importing country.
    #[serde(rename = "fd:OfficialUse", skip_serializing_if = "Option::is_none")]
    pub official_use: Option<OfficialUse>,
    /// Boxes 5 to 10.
    #[serde(rename = "fd:Items")]
    pub items: Items,
    /// Box 11.
    #[serde(rename = "fd:ExporterDeclaration")]
    pub declaration: ExporterDeclaration,
    /// Box 12.
    #[serde(rename = "fd:Certification")]
    pub certification: Certification,
    /// Box 13.
    #[serde(rename = "fd:Flags")]
    pub flags: Flags,
}

/// Exporter or consignee of an e-Form D.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Party {
    /// Name.
    #[serde(rename = "fd:Name")]
    pub name: String,
    /// Postal address.
    #[serde(rename = "fd:Address")]
    pub address: String,
    /// ISO 3166-1 alpha-2 country.
    #[serde(rename = "fd:Country")]
    pub country: String,
}

/// Box 3: means of transport and route.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Transport {
    /// Departure date.
    #[serde(rename = "fd:DepartureDate", serialize_with = "serialize_date")]
    pub departure_date: Date,
    /// Vessel name and voyage, or flight number.
    #[serde(rename = "fd:VesselOrFlight")]
    pub vessel_or_flight: String,
    /// UN/LOCODE of the port of loading.
    #[serde(rename = "fd:PortOfLoading")]
    pub port_of_loading: String,
    /// UN/LOCODE of the port of discharge.
    #[serde(rename = "fd:PortOfDischarge")]
    pub port_of_discharge: String,
}

/// Box 4: for official use by the importing country.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct OfficialUse {
    /// `given` or `not-given`.
    #[serde(rename = "fd:PreferentialTreatment")]
    pub preferential_treatment: String,
    /// Why it was not given.
    #[serde(rename = "fd:Reason", skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
}

/// The item rows of an e-Form D.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Items {
    /// One or more items, numbered from 1.
    #[serde(rename = "fd:Item")]
    pub items: Vec<Item>,
}

/// One item row (boxes 5 to 10).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Item {
    /// Box 5.
    #[serde(rename = "fd:ItemNumber")]
    pub number: u32,
    /// Box 6.
    #[serde(rename = "fd:MarksAndNumbers")]
    pub marks: String,
    /// Box 7: number and kind of packages.
    #[serde(rename = "fd:Packages")]
    pub packages: Packages,
    /// Box 7: description of goods.
    #[serde(rename = "fd:Description")]
    pub description: String,
    /// Box 7: HS code.
    #[serde(rename = "fd:HsCode")]
    pub hs_code: String,
    /// Box 8.
    #[serde(rename = "fd:OriginCriterion")]
    pub origin_criterion: OriginCriterion,
    /// Box 9: gross weight or other quantity.
    #[serde(rename = "fd:Quantity")]
    pub quantity: Quantity,
    /// Box 9: FOB value (required with RVC).
    #[serde(rename = "fd:FobValue", skip_serializing_if = "Option::is_none")]
    pub fob_value: Option<Amount>,
    /// Box 10.
    #[serde(rename = "fd:Invoice")]
    pub invoice: Invoice,
}

/// Box 7: number and kind of packages.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Packages {
    /// Number of packages.
    #[serde(rename = "fd:Count")]
    pub count: u32,
    /// UN/ECE Rec. 21 package type.
    #[serde(rename = "fd:KindCode")]
    pub kind_code: String,
}

/// Box 8: origin criterion.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct OriginCriterion {
    /// `WO`, `PE`, `RVC`, `CTH`, `CTSH`, `CC` or `PSR`.
    #[serde(rename = "fd:Code")]
    pub code: String,
    /// Regional value content percentage, with `RVC`.
    #[serde(rename = "fd:RvcPercentage", skip_serializing_if = "Option::is_none")]
    pub rvc_percentage: Option<String>,
}

/// Box 10: invoice number and date.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Invoice {
    /// Invoice number.
    #[serde(rename = "fd:Number")]
    pub number: String,
    /// Invoice date.
    #[serde(rename = "fd:Date", serialize_with = "serialize_date")]
    pub date: Date,
}

/// Box 11: the exporter's declaration.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ExporterDeclaration {
    /// Where the goods were produced.
    #[serde(rename = "fd:ProducingCountry", serialize_with = "serialize_state")]
    pub producing_country: MemberState,
    /// Where they are exported to.
    #[serde(rename = "fd:ImportingCountry", serialize_with = "serialize_state")]
    pub importing_country: MemberState,
    /// Place of the declaration.
    #[serde(rename = "fd:Place")]
    pub place: String,
    /// Date of the declaration.
    #[serde(rename = "fd:Date", serialize_with = "serialize_date")]
    pub date: Date,
}

/// Box 12: certification by the issuing authority.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Certification {
    /// Issuing authority.
    #[serde(rename = "fd:Authority")]
    pub authority: String,
    /// Place of certification.
    #[serde(rename = "fd:Place")]
    pub place: String,
    /// Date of certification.
    #[serde(rename = "fd:Date", serialize_with = "serialize_date")]
    pub date: Date,
    /// Certifying officer.
    #[serde(rename = "fd:Officer")]
    pub officer: String,
}

/// Box 13: flags.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize)]
pub struct Flags {
    /// Third-country invoicing.
    #[serde(rename = "fd:ThirdCountryInvoicing")]
    pub third_country_invoicing: bool,
    /// Back-to-back certificate.
    #[serde(rename = "fd:BackToBack")]
    pub back_to_back: bool,
    /// Issued retroactively.
    #[serde(rename = "fd:IssuedRetroactively")]
    pub issued_retroactively: bool,
    /// Exhibition.
    #[serde(rename = "fd:Exhibition")]
    pub exhibition: bool,
    /// De minimis.
    #[serde(rename = "fd:DeMinimis")]
    pub de_minimis: bool,
    /// Accumulation.
    #[serde(rename = "fd:Accumulation")]
    pub accumulation: bool,
    /// Partial cumulation.
    #[serde(rename = "fd:PartialCumulation")]
    pub partial_cumulation: bool,
}

/// ASEAN Customs Declaration Document (WCO Data Model names).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Acdd {
    /// Permit (export declaration) number.
    #[serde(rename = "acdd:DeclarationNumber")]
    pub declaration_number: String,
    /// Exporting member state.
    #[serde(rename = "acdd:ExportCountry", serialize_with = "serialize_state")]
    pub export_country: MemberState,
    /// Destination member state.
    #[serde(rename = "acdd:DestinationCountry", serialize_with = "serialize_state")]
    pub destination_country: MemberState,
    /// Exporter id and name.
    #[serde(rename = "acdd:Exporter")]
    pub exporter: IdentifiedParty,
    /// Consignee name and address.
    #[serde(rename = "acdd:Consignee")]
    pub consignee: AcddConsignee,
    /// Declaring agent id and name.
    #[serde(rename = "acdd:Agent")]
    pub agent: IdentifiedParty,
    /// Departure date.
    #[serde(rename = "acdd:DepartureDate", serialize_with = "serialize_date")]
    pub departure_date: Date,
    /// Outward transport.
    #[serde(rename = "acdd:BorderTransportMeans")]
    pub transport: BorderTransportMeans,
    /// UN/LOCODE of the port of discharge.
    #[serde(rename = "acdd:UnloadingLocation")]
    pub unloading_location: String,
    /// Goods items, numbered from 1.
    #[serde(rename = "acdd:GoodsItem")]
    pub items: Vec<GoodsItem>,
}

/// A party known by id and name (ACDD exporter, declaring agent).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct IdentifiedParty {
    /// Registration id.
    #[serde(rename = "acdd:ID")]
    pub id: String,
    /// Name.
    #[serde(rename = "acdd:Name")]
    pub name: String,
}

/// ACDD consignee.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct AcddConsignee {
    /// Name.
    #[serde(rename = "acdd:Name")]
    pub name: String,
    /// Address.
    #[serde(rename = "acdd:Address")]
    pub address: String,
}

/// ACDD outward transport.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct BorderTransportMeans {
    /// UN/ECE Rec. 19 mode (1 sea, 3 road, 4 air...).
    #[serde(rename = "acdd:ModeCode")]
    pub mode_code: String,
    /// Vessel, flight or vehicle.
    #[serde(
        rename = "acdd:Identification",
        skip_serializing_if = "Option::is_none"
    )]
    pub identification: Option<String>,
}

/// ACDD goods item.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct GoodsItem {
    /// Item serial number.
    #[serde(rename = "acdd:SequenceNumeric")]
    pub sequence: u32,
    /// HS code.
    #[serde(rename = "acdd:HsCode")]
    pub hs_code: String,
    /// Description of goods.
    #[serde(rename = "acdd:Description", skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    /// Quantity and unit.
    #[serde(rename = "acdd:Quantity")]
    pub quantity: Quantity,
    /// Country of origin (required by rule ACDD-002).
    #[serde(rename = "acdd:OriginCountry", skip_serializing_if = "Option::is_none")]
    pub origin_country: Option<String>,
}

/// Receipt acknowledgement of an e-Form D or an ACDD.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Acknowledgement {
    /// Reference of the acknowledged document.
    #[serde(rename = "ack:DocumentReference")]
    pub document_reference: String,
    /// When the receiving hub accepted or rejected it.
    #[serde(rename = "ack:ReceivedAt", serialize_with = "serialize_timestamp")]
    pub received_at: OffsetDateTime,
    /// `received` or `rejected`.
    #[serde(rename = "ack:Status")]
    pub status: String,
    /// Why it was rejected.
    #[serde(rename = "ack:Reason", skip_serializing_if = "Vec::is_empty")]
    pub reasons: Vec<Reason>,
}

/// e-Form D status / utilization notification.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct FormDStatus {
    /// Reference number of the e-Form D.
    #[serde(rename = "fds:ReferenceNumber")]
    pub reference_number: String,
    /// `accepted`, `rejected`, `preferential-treatment-given`, `preferential-treatment-not-given`
    /// or `verification-requested`.
    #[serde(rename = "fds:Status")]
    pub status: String,
    /// Why (required when rejected or not given).
    #[serde(rename = "fds:Reason", skip_serializing_if = "Vec::is_empty")]
    pub reasons: Vec<Reason>,
    /// The importing country's authority.
    #[serde(rename = "fds:Authority")]
    pub authority: String,
    /// Date of the decision.
    #[serde(rename = "fds:Date", serialize_with = "serialize_date")]
    pub date: Date,
}

/// Customs Response to an ACDD.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct CustomsResponse {
    /// Declaration number of the ACDD answered.
    #[serde(rename = "acr:DeclarationNumber")]
    pub declaration_number: String,
    /// `accepted`, `rejected` or `under-review`.
    #[serde(rename = "acr:Status")]
    pub status: String,
    /// Why (required when rejected).
    #[serde(rename = "acr:Reason", skip_serializing_if = "Vec::is_empty")]
    pub reasons: Vec<Reason>,
    /// The importing customs office.
    #[serde(rename = "acr:Office")]
    pub office: String,
    /// When the response was issued.
    #[serde(rename = "acr:IssuedAt", serialize_with = "serialize_timestamp")]
    pub issued_at: OffsetDateTime,
}
