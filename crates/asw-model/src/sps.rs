//! e-Phyto sample documents: UN/CEFACT SPS certificates (`SPSCertificate:17`) and their
//! acknowledgements (`SPSAcknowledgement:17`), valid against the IPPC ePhyto Hub's schema and
//! aswhub's own (`schemas/sps-*.xsd`), reproducible from a seed. Used by `aswctl sample ephyto`
//! and the tests.
//!
//! The content is realistic (consignor, consignee, consignment, commodities with their
//! treatments and additional declarations, the authentication block, the paper certificate as a
//! PDF attachment); the codes are illustrative where the hub's code lists are not public.

use std::fmt::Write as _;

use base64::Engine as _;
use quick_xml::escape::escape;
use time::format_description::well_known::Rfc3339;
use time::{Duration, OffsetDateTime};

use crate::ns;
use crate::sample::Rng;

/// A country as a certificate names it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Country<'a> {
    /// ISO 3166-1 alpha-2 code.
    pub code: &'a str,
    /// English name.
    pub name: &'a str,
}

/// What e-Phyto sample to make.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EphytoSpec<'a> {
    /// The exporting country (its plant protection organisation issues the certificate).
    pub exporter: Country<'a>,
    /// The importing country.
    pub importer: Country<'a>,
    /// Number of commodities (trade line items), at least 1.
    pub commodities: u32,
    /// Approximate size of the PDF attachment in bytes (0: no attachment). Written as base64,
    /// so the certificate grows by about 4/3 of it.
    pub attachment_bytes: usize,
    /// Seed: the same spec gives the same document, byte for byte.
    pub seed: u64,
    /// When the certificate was issued; the other dates derive from it.
    pub issued_at: OffsetDateTime,
}

/// The `TypeCode` of a phytosanitary certificate for export.
pub const TYPE_EXPORT: u32 = 851;
/// The `TypeCode` of a phytosanitary certificate for re-export.
pub const TYPE_REEXPORT: u32 = 657;
/// The `StatusCode` of an issued certificate.
pub const STATUS_ISSUED: u32 = 70;

/// The plant protection organisation, the place of issue and of inspection, a port, a region.
struct Nppo {
    name: &'static str,
    city: &'static str,
    port: (&'static str, &'static str),
    region: &'static str,
    officer: &'static str,
}

fn nppo(code: &str) -> Nppo {
    let (name, city, port, region, officer) = match code {
        "BN" => (
            "Department of Agriculture and Agrifood",
            "Bandar Seri Begawan",
            ("BNMUA", "Muara"),
            "Brunei-Muara",
            "Awang Haji Yusof",
        ),
        "KH" => (
            "General Directorate of Agriculture",
            "Phnom Penh",
            ("KHPNH", "Phnom Penh"),
            "Battambang",
            "Sok Dara",
        ),
        "ID" => (
            "Indonesian Quarantine Authority",
            "Jakarta",
            ("IDTPP", "Tanjung Priok"),
            "East Java",
            "Siti Rahayu",
        ),
        "LA" => (
            "Department of Agriculture",
            "Vientiane",
            ("LAVTE", "Vientiane"),
            "Champasak",
            "Bounmy Phommachanh",
        ),
        "MY" => (
            "Department of Agriculture Malaysia",
            "Putrajaya",
            ("MYPKG", "Port Klang"),
            "Johor",
            "Nur Aisyah binti Ahmad",
        ),
        "MM" => (
            "Plant Protection Division, Department of Agriculture",
            "Yangon",
            ("MMRGN", "Yangon"),
            "Mandalay",
            "Daw Khin Myint",
        ),
        "PH" => (
            "Bureau of Plant Industry",
            "Manila",
            ("PHMNL", "Manila"),
            "Davao del Norte",
            "Maria Santos",
        ),
        "SG" => (
            "National Parks Board",
            "Singapore",
            ("SGSIN", "Singapore"),
            "Singapore",
            "Tan Wei Ming",
        ),
        "TH" => (
            "Department of Agriculture",
            "Bangkok",
            ("THLCH", "Laem Chabang"),
            "Chanthaburi",
            "Somchai Wongsa",
        ),
        "VN" => (
            "Plant Protection Department",
            "Ho Chi Minh City",
            ("VNSGN", "Ho Chi Minh City"),
            "Binh Thuan",
            "Nguyen Van An",
        ),
        "KR" => (
            "Animal and Plant Quarantine Agency",
            "Gimcheon",
            ("KRPUS", "Busan"),
            "Jeju",
            "Kim Min-jun",
        ),
        _ => (
            "National Plant Protection Organization",
            "the capital",
            ("", "the main port"),
            "the main producing region",
            "Authorized Officer",
        ),
    };
    Nppo {
        name,
        city,
        port,
        region,
        officer,
    }
}

/// A commodity: description, common and scientific name, HS code and heading, intended use,
/// package type, additional declaration, treatment.
struct Commodity {
    description: &'static str,
    common: &'static str,
    scientific: &'static str,
    hs: (&'static str, &'static str),
    intended_use: &'static str,
    package: &'static str,
    declaration: &'static str,
    treatment: Treatment,
}

/// A treatment: type, duration (value, unit) and one characteristic (description, value, unit).
#[derive(Clone, Copy)]
struct Treatment {
    kind: &'static str,
    duration: (f64, &'static str),
    characteristic: (&'static str, f64, &'static str),
}

const VAPOUR_HEAT: Treatment = Treatment {
    kind: "Vapour heat treatment",
    duration: (20.0, "MIN"),
    characteristic: ("Fruit pulp temperature", 46.5, "CEL"),
};
const COLD: Treatment = Treatment {
    kind: "Cold treatment",
    duration: (15.0, "DAY"),
    characteristic: ("Fruit pulp temperature", 1.1, "CEL"),
};
const FUMIGATION: Treatment = Treatment {
    kind: "Fumigation with phosphine",
    duration: (120.0, "HUR"),
    characteristic: ("Concentration (g/m3)", 2.0, ""),
};
const HEAT: Treatment = Treatment {
    kind: "Heat treatment",
    duration: (30.0, "MIN"),
    characteristic: ("Core temperature", 56.0, "CEL"),
};

const COMMODITIES: &[Commodity] = &[
    Commodity {
        description: "Fresh dragon fruit",
        common: "Dragon fruit",
        scientific: "Selenicereus undatus",
        hs: ("081090", "Other fresh fruit"),
        intended_use: "Consumption",
        package: "CT",
        declaration: "The fruit was produced in a registered orchard and treated with vapour heat \
                      against fruit flies (Bactrocera dorsalis, Bactrocera correcta).",
        treatment: VAPOUR_HEAT,
    },
    Commodity {
        description: "Fresh mangoes",
        common: "Mango",
        scientific: "Mangifera indica",
        hs: ("080450", "Guavas, mangoes and mangosteens, fresh or dried"),
        intended_use: "Consumption",
        package: "CT",
        declaration: "The consignment was inspected and found free from Sternochetus mangiferae.",
        treatment: VAPOUR_HEAT,
    },
    Commodity {
        description: "Fresh longans",
        common: "Longan",
        scientific: "Dimocarpus longan",
        hs: ("081090", "Other fresh fruit"),
        intended_use: "Consumption",
        package: "BX",
        declaration: "The fruit was cold treated in transit under the supervision of the \
                      exporting country's plant protection organisation.",
        treatment: COLD,
    },
    Commodity {
        description: "Milled rice",
        common: "Rice",
        scientific: "Oryza sativa",
        hs: ("100630", "Semi-milled or wholly milled rice"),
        intended_use: "Consumption",
        package: "BG",
        declaration: "The consignment is free from Trogoderma granarium.",
        treatment: FUMIGATION,
    },
    Commodity {
        description: "Green coffee beans, not roasted",
        common: "Coffee",
        scientific: "Coffea canephora",
        hs: ("090111", "Coffee, not roasted, not decaffeinated"),
        intended_use: "Processing",
        package: "BG",
        declaration: "The consignment is free from Hypothenemus hampei in a live stage.",
        treatment: FUMIGATION,
    },
    Commodity {
        description: "Sawn rubberwood, kiln dried",
        common: "Rubberwood",
        scientific: "Hevea brasiliensis",
        hs: ("440729", "Tropical wood, sawn lengthwise"),
        intended_use: "Processing",
        package: "PX",
        declaration: "The wood is free from bark and was heat treated to a core temperature of \
                      56 degrees Celsius for 30 minutes.",
        treatment: HEAT,
    },
];

const CONSIGNORS: &[&str] = &[
    "Mekong Fresh Fruit Export Co., Ltd.",
    "Golden Lotus Agro JSC",
    "Highland Coffee Traders Co., Ltd.",
    "Southern Rice Milling Corp.",
    "Delta Agricultural Export Co., Ltd.",
    "Tropical Harvest Trading Co., Ltd.",
];
const CONSIGNEES: &[&str] = &[
    "Fresh Market Import Co., Ltd.",
    "Green Valley Foods Co., Ltd.",
    "Harbour Fruit Distribution Co.",
    "Pacific Produce Import Co., Ltd.",
    "Golden Grain Trading Co., Ltd.",
];
const VESSELS: &[&str] = &[
    "MV Mekong Star",
    "MV Straits Pioneer",
    "MV Golden Harvest",
    "MV Andaman Bay",
];
/// The certifying statement of the IPPC model phytosanitary certificate (ISPM 12).
const CERTIFYING_STATEMENT: &str = "This is to certify that the plants, plant products or other \
     regulated articles described herein have been inspected and/or tested according to \
     appropriate official procedures and are considered to be free from the quarantine pests \
     specified by the importing contracting party and to conform with the current \
     phytosanitary requirements of the importing contracting party, including those for \
     regulated non-quarantine pests.";

/// The certificate number of the sample `spec` describes (`VN-PC-2026-004711`), the same one
/// [`certificate`] writes.
pub fn certificate_number(spec: &EphytoSpec<'_>) -> String {
    let mut rng = Rng(spec.seed ^ 0x4550_4859_544f_0001);
    number(&mut rng, spec)
}

fn number(rng: &mut Rng, spec: &EphytoSpec<'_>) -> String {
    format!(
        "{}-PC-{}-{:06}",
        spec.exporter.code,
        spec.issued_at.year(),
        rng.below(1_000_000)
    )
}

/// Writes the SPS certificate `spec` describes, as UTF-8 XML.
pub fn certificate(spec: &EphytoSpec<'_>) -> String {
    let mut rng = Rng(spec.seed ^ 0x4550_4859_544f_0001);
    let id = number(&mut rng, spec);
    let from = nppo(spec.exporter.code);
    let to = nppo(spec.importer.code);
    let issued = timestamp(spec.issued_at);
    let mut x = String::with_capacity(4096 + spec.attachment_bytes * 4 / 3);
    let _ = write!(
        x,
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n\
         <rsm:SPSCertificate xmlns:rsm=\"{}\" xmlns:ram=\"{}\" xmlns:udt=\"{}\">\n",
        ns::SPS_CERTIFICATE,
        ns::SPS_RAM,
        ns::SPS_UDT
    );
    x.push_str("  <rsm:SPSExchangedDocument>\n");
    text(&mut x, 4, "Name", "Phytosanitary Certificate");
    text(&mut x, 4, "ID", &id);
    text(&mut x, 4, "TypeCode", &TYPE_EXPORT.to_string());
    text(&mut x, 4, "StatusCode", &STATUS_ISSUED.to_string());
    date_time(&mut x, 4, "IssueDateTime", &issued);
    open(&mut x, 4, "IssuerSPSParty");
    text(&mut x, 6, "Name", from.name);
    close(&mut x, 4, "IssuerSPSParty");
    note(
        &mut x,
        "Distinguishing marks",
        &format!("{id}/1 to {id}/{}", spec.commodities.max(1)),
    );
    note(
        &mut x,
        "Place of origin",
        &format!("{}, {}", from.region, spec.exporter.name),
    );
    if spec.attachment_bytes > 0 {
        let pdf = pdf(&mut rng, &id, spec, spec.attachment_bytes);
        open(&mut x, 4, "ReferenceSPSReferencedDocument");
        date_time(&mut x, 6, "IssueDateTime", &issued);
        text(&mut x, 6, "TypeCode", &TYPE_EXPORT.to_string());
        text(&mut x, 6, "RelationshipTypeCode", "AAL");
        text(&mut x, 6, "ID", &format!("{id}-PDF"));
        let _ = write!(
            x,
            "      <ram:AttachmentBinaryObject filename=\"{}.pdf\">",
            escape(id.as_str())
        );
        base64_wrapped(&mut x, &pdf);
        x.push_str("</ram:AttachmentBinaryObject>\n");
        text(
            &mut x,
            6,
            "Information",
            "The certificate as printed and signed",
        );
        close(&mut x, 4, "ReferenceSPSReferencedDocument");
    }
    open(&mut x, 4, "SignatorySPSAuthentication");
    date_time(&mut x, 6, "ActualDateTime", &issued);
    open(&mut x, 6, "IssueSPSLocation");
    text(&mut x, 8, "Name", from.city);
    close(&mut x, 6, "IssueSPSLocation");
    open(&mut x, 6, "ProviderSPSParty");
    text(&mut x, 8, "Name", from.name);
    open(&mut x, 8, "SpecifiedSPSPerson");
    text(&mut x, 10, "Name", from.officer);
    close(&mut x, 8, "SpecifiedSPSPerson");
    close(&mut x, 6, "ProviderSPSParty");
    open(&mut x, 6, "IncludedSPSClause");
    text(&mut x, 8, "ID", "1");
    text(&mut x, 8, "Content", CERTIFYING_STATEMENT);
    close(&mut x, 6, "IncludedSPSClause");
    close(&mut x, 4, "SignatorySPSAuthentication");
    x.push_str("  </rsm:SPSExchangedDocument>\n  <rsm:SPSConsignment>\n");
    let consignor = *rng.pick(CONSIGNORS);
    let street = rng.below(900);
    party(
        &mut x,
        "ConsignorSPSParty",
        consignor,
        street,
        from.city,
        spec.exporter,
    );
    let consignee = *rng.pick(CONSIGNEES);
    let street = rng.below(900);
    party(
        &mut x,
        "ConsigneeSPSParty",
        consignee,
        street,
        to.city,
        spec.importer,
    );
    for (element, country) in [
        ("ExportSPSCountry", spec.exporter),
        ("ImportSPSCountry", spec.importer),
    ] {
        open(&mut x, 4, element);
        text(&mut x, 6, "ID", country.code);
        text(&mut x, 6, "Name", country.name);
        close(&mut x, 4, element);
    }
    open(&mut x, 4, "UnloadingBaseportSPSLocation");
    if !to.port.0.is_empty() {
        text(&mut x, 6, "ID", to.port.0);
    }
    text(&mut x, 6, "Name", to.port.1);
    close(&mut x, 4, "UnloadingBaseportSPSLocation");
    open(&mut x, 4, "ExaminationSPSEvent");
    open(&mut x, 6, "OccurrenceSPSLocation");
    text(
        &mut x,
        8,
        "Name",
        &format!("{}, {}", from.port.1, spec.exporter.name),
    );
    close(&mut x, 6, "OccurrenceSPSLocation");
    close(&mut x, 4, "ExaminationSPSEvent");
    open(&mut x, 4, "MainCarriageSPSTransportMovement");
    text(&mut x, 6, "ModeCode", "1");
    open(&mut x, 6, "UsedSPSTransportMeans");
    let vessel = *rng.pick(VESSELS);
    text(&mut x, 8, "Name", vessel);
    close(&mut x, 6, "UsedSPSTransportMeans");
    close(&mut x, 4, "MainCarriageSPSTransportMovement");
    // The hub's schema puts these two IDs in no namespace; aswhub's follows it.
    let _ = write!(
        x,
        "    <ram:UtilizedSPSTransportEquipment>\n      <ID>MSKU{:07}</ID>\n      \
         <ram:AffixedSPSSeal>\n        <ID>SL{:08}</ID>\n      </ram:AffixedSPSSeal>\n    \
         </ram:UtilizedSPSTransportEquipment>\n",
        rng.below(10_000_000),
        rng.below(100_000_000)
    );
    open(&mut x, 4, "IncludedSPSConsignmentItem");
    for n in 1..=spec.commodities.max(1) {
        let start = spec.issued_at - Duration::days(2);
        trade_line_item(&mut x, &mut rng, n, spec, &from, start);
    }
    close(&mut x, 4, "IncludedSPSConsignmentItem");
    x.push_str("  </rsm:SPSConsignment>\n</rsm:SPSCertificate>\n");
    x
}

/// Writes the acknowledgement of certificate `certificate_id` issued at `issued_at`, as the
/// importing side sends it at `acknowledged_at` (status 1: received).
pub fn acknowledgement(
    certificate_id: &str,
    issued_at: OffsetDateTime,
    acknowledged_at: OffsetDateTime,
) -> String {
    acknowledgement_with(
        certificate_id,
        issued_at,
        acknowledged_at,
        ACK_RECEIVED,
        "Certificate received and readable",
    )
}

/// The acknowledgement `StatusCode` of a certificate received and readable.
pub const ACK_RECEIVED: u32 = 1;
/// The acknowledgement `StatusCode` this hub writes for a certificate it refused (the reasons
/// in `ReasonInformation`).
pub const ACK_REJECTED: u32 = 2;

/// Writes an acknowledgement of certificate `certificate_id` with `status` and `reason`.
pub fn acknowledgement_with(
    certificate_id: &str,
    issued_at: OffsetDateTime,
    acknowledged_at: OffsetDateTime,
    status: u32,
    reason: &str,
) -> String {
    let mut x = String::with_capacity(1024);
    let _ = write!(
        x,
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n\
         <rsm:SPSAcknowledgement xmlns:rsm=\"{}\" xmlns:ram=\"{}\" xmlns:udt=\"{}\">\n  \
         <rsm:SPSAcknowledgementDocument>\n",
        ns::SPS_ACKNOWLEDGEMENT,
        ns::SPS_RAM,
        ns::SPS_UDT
    );
    date_time(&mut x, 4, "IssueDateTime", &timestamp(acknowledged_at));
    text(&mut x, 4, "StatusCode", &status.to_string());
    text(&mut x, 4, "ReasonInformation", reason);
    open(&mut x, 4, "ReferenceSPSReferencedDocument");
    date_time(&mut x, 6, "IssueDateTime", &timestamp(issued_at));
    text(&mut x, 6, "TypeCode", &TYPE_EXPORT.to_string());
    text(&mut x, 6, "ID", certificate_id);
    close(&mut x, 4, "ReferenceSPSReferencedDocument");
    x.push_str("  </rsm:SPSAcknowledgementDocument>\n</rsm:SPSAcknowledgement>\n");
    x
}

fn trade_line_item(
    x: &mut String,
    rng: &mut Rng,
    n: u32,
    spec: &EphytoSpec<'_>,
    from: &Nppo,
    start: OffsetDateTime,
) {
    let c = rng.pick(COMMODITIES);
    let packages = 100 + rng.below(1900);
    let net = packages * (5 + rng.below(20));
    let gross = net + packages / 2 + 1;
    open(x, 6, "IncludedSPSTradeLineItem");
    text(x, 8, "SequenceNumeric", &n.to_string());
    text(x, 8, "Description", c.description);
    text(x, 8, "CommonName", c.common);
    text(x, 8, "ScientificName", c.scientific);
    text(x, 8, "IntendedUse", c.intended_use);
    let _ = writeln!(
        x,
        "        <ram:NetWeightMeasure unitCode=\"KGM\">{net}</ram:NetWeightMeasure>\n        \
         <ram:GrossWeightMeasure unitCode=\"KGM\">{gross}</ram:GrossWeightMeasure>"
    );
    open(x, 8, "AdditionalInformationSPSNote");
    text(x, 10, "Subject", "Additional declaration");
    text(x, 10, "Content", c.declaration);
    close(x, 8, "AdditionalInformationSPSNote");
    open(x, 8, "ApplicableSPSClassification");
    text(x, 10, "SystemName", "Harmonized System");
    text(x, 10, "ClassCode", c.hs.0);
    text(x, 10, "ClassName", c.hs.1);
    close(x, 8, "ApplicableSPSClassification");
    open(x, 8, "PhysicalSPSPackage");
    text(x, 10, "LevelCode", "1");
    text(x, 10, "TypeCode", c.package);
    text(x, 10, "ItemQuantity", &packages.to_string());
    close(x, 8, "PhysicalSPSPackage");
    open(x, 8, "OriginSPSCountry");
    text(x, 10, "ID", spec.exporter.code);
    text(x, 10, "Name", spec.exporter.name);
    open(x, 10, "SubordinateSPSCountrySubDivision");
    text(x, 12, "Name", from.region);
    text(x, 12, "HierarchicalLevelCode", "1");
    close(x, 10, "SubordinateSPSCountrySubDivision");
    close(x, 8, "OriginSPSCountry");
    let t = c.treatment;
    let seconds = match t.duration.1 {
        "MIN" => 60.0,
        "HUR" => 3600.0,
        _ => 86_400.0,
    };
    // Whole seconds: a duration in these units is never fractional here.
    let end = start + Duration::seconds_f64(t.duration.0 * seconds);
    open(x, 8, "AppliedSPSProcess");
    text(x, 10, "TypeCode", t.kind);
    open(x, 10, "CompletionSPSPeriod");
    date_time(x, 12, "StartDateTime", &timestamp(start));
    date_time(x, 12, "EndDateTime", &timestamp(end));
    let _ = writeln!(
        x,
        "            <ram:DurationMeasure unitCode=\"{}\">{}</ram:DurationMeasure>",
        t.duration.1, t.duration.0
    );
    close(x, 10, "CompletionSPSPeriod");
    open(x, 10, "ApplicableSPSProcessCharacteristic");
    text(x, 12, "Description", t.characteristic.0);
    if t.characteristic.2.is_empty() {
        let _ = writeln!(
            x,
            "            <ram:ValueMeasure>{}</ram:ValueMeasure>",
            t.characteristic.1
        );
    } else {
        let _ = writeln!(
            x,
            "            <ram:ValueMeasure unitCode=\"{}\">{}</ram:ValueMeasure>",
            t.characteristic.2, t.characteristic.1
        );
    }
    close(x, 10, "ApplicableSPSProcessCharacteristic");
    close(x, 8, "AppliedSPSProcess");
    close(x, 6, "IncludedSPSTradeLineItem");
}

fn party(x: &mut String, element: &str, name: &str, street: u64, city: &str, country: Country<'_>) {
    open(x, 4, element);
    text(x, 6, "Name", name);
    open(x, 6, "SpecifiedSPSAddress");
    text(x, 8, "LineOne", &format!("{} Harbour Road", street + 1));
    text(x, 8, "LineTwo", city);
    text(x, 8, "LineThree", country.name);
    close(x, 6, "SpecifiedSPSAddress");
    close(x, 4, element);
}

fn note(x: &mut String, subject: &str, content: &str) {
    open(x, 4, "IncludedSPSNote");
    text(x, 6, "Subject", subject);
    text(x, 6, "Content", content);
    close(x, 4, "IncludedSPSNote");
}

fn timestamp(t: OffsetDateTime) -> String {
    let t = t.replace_nanosecond(0).unwrap_or(t);
    t.format(&Rfc3339)
        .unwrap_or_else(|_| "1970-01-01T00:00:00Z".to_owned())
}

fn indent(x: &mut String, n: usize) {
    x.extend(std::iter::repeat_n(' ', n));
}

fn open(x: &mut String, n: usize, element: &str) {
    indent(x, n);
    let _ = writeln!(x, "<ram:{element}>");
}

fn close(x: &mut String, n: usize, element: &str) {
    indent(x, n);
    let _ = writeln!(x, "</ram:{element}>");
}

fn text(x: &mut String, n: usize, element: &str, value: &str) {
    indent(x, n);
    let _ = writeln!(x, "<ram:{element}>{}</ram:{element}>", escape(value));
}

fn date_time(x: &mut String, n: usize, element: &str, value: &str) {
    indent(x, n);
    let _ = writeln!(
        x,
        "<ram:{element}><udt:DateTimeString>{}</udt:DateTimeString></ram:{element}>",
        escape(value)
    );
}

fn base64_wrapped(x: &mut String, bytes: &[u8]) {
    let encoded = base64::engine::general_purpose::STANDARD.encode(bytes);
    // 76 characters a line, as MIME writes it; base64 is ASCII, so byte chunks are characters.
    for line in encoded.as_bytes().chunks(76) {
        x.push('\n');
        x.push_str(std::str::from_utf8(line).unwrap_or_default());
    }
    x.push('\n');
}

/// A well-formed one-page PDF of about `size` bytes: the certificate's number and parties as
/// text, and an embedded image-like stream of pseudo-random bytes that brings it to the size of
/// a scanned, signed paper certificate.
fn pdf(rng: &mut Rng, id: &str, spec: &EphytoSpec<'_>, size: usize) -> Vec<u8> {
    let content = format!(
        "BT /F1 16 Tf 72 760 Td (Phytosanitary Certificate {}) Tj ET\n\
         BT /F1 11 Tf 72 730 Td (From the plant protection organisation of {} to that of {}) Tj ET\n",
        pdf_string(id),
        pdf_string(spec.exporter.name),
        pdf_string(spec.importer.name)
    );
    let padding = size.saturating_sub(900 + content.len());
    let mut scan = Vec::with_capacity(padding);
    while scan.len() < padding {
        scan.extend_from_slice(&rng.next().to_le_bytes());
    }
    scan.truncate(padding);
    let mut out: Vec<u8> = b"%PDF-1.4\n%\xe2\xe3\xcf\xd3\n".to_vec();
    let mut offsets = Vec::new();
    let objects: Vec<Vec<u8>> = vec![
        b"<< /Type /Catalog /Pages 2 0 R >>".to_vec(),
        b"<< /Type /Pages /Kids [3 0 R] /Count 1 >>".to_vec(),
        b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 595 842] /Contents 4 0 R \
           /Resources << /Font << /F1 5 0 R >> /XObject << /Im1 6 0 R >> >> >>"
            .to_vec(),
        stream(b"", content.as_bytes()),
        b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>".to_vec(),
        stream(
            b"/Type /XObject /Subtype /Image /Width 1 /Height 1 /ColorSpace /DeviceGray \
              /BitsPerComponent 8 ",
            &scan,
        ),
    ];
    for (i, body) in objects.iter().enumerate() {
        offsets.push(out.len());
        out.extend_from_slice(format!("{} 0 obj\n", i + 1).as_bytes());
        out.extend_from_slice(body);
        out.extend_from_slice(b"\nendobj\n");
    }
    let xref = out.len();
    let mut table = format!("xref\n0 {}\n0000000000 65535 f \n", objects.len() + 1);
    for offset in offsets {
        let _ = writeln!(table, "{offset:010} 00000 n ");
    }
    let _ = write!(
        table,
        "trailer\n<< /Size {} /Root 1 0 R >>\nstartxref\n{xref}\n%%EOF\n",
        objects.len() + 1
    );
    out.extend_from_slice(table.as_bytes());
    out
}

fn stream(dictionary: &[u8], data: &[u8]) -> Vec<u8> {
    let mut s = b"<< ".to_vec();
    s.extend_from_slice(dictionary);
    s.extend_from_slice(format!("/Length {} >>\nstream\n", data.len()).as_bytes());
    s.extend_from_slice(data);
    s.extend_from_slice(b"\nendstream");
    s
}

fn pdf_string(s: &str) -> String {
    s.chars()
        .filter(char::is_ascii)
        .flat_map(|c| match c {
            '(' | ')' | '\\' => vec!['\\', c],
            c => vec![c],
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::xml::{self, Limits};

    fn spec(attachment_bytes: usize) -> EphytoSpec<'static> {
        EphytoSpec {
            exporter: Country {
                code: "VN",
                name: "Viet Nam",
            },
            importer: Country {
                code: "TH",
                name: "Thailand",
            },
            commodities: 3,
            attachment_bytes,
            seed: 7,
            issued_at: OffsetDateTime::from_unix_timestamp(1_767_600_000).expect("time"),
        }
    }

    #[test]
    fn same_seed_same_bytes_and_the_reader_accepts_it() {
        let a = certificate(&spec(2000));
        assert_eq!(a, certificate(&spec(2000)));
        let root = xml::parse(a.as_bytes(), &Limits::default()).expect("well-formed");
        assert!(root.is(ns::SPS_CERTIFICATE, "SPSCertificate"));
        let id = root
            .path(ns::SPS_CERTIFICATE, &["SPSExchangedDocument"])
            .and_then(|d| d.child(ns::SPS_RAM, "ID"))
            .map(|e| e.trimmed().to_owned());
        assert_eq!(id, Some(certificate_number(&spec(2000))));
        let items = root
            .path(ns::SPS_CERTIFICATE, &["SPSConsignment"])
            .and_then(|c| c.child(ns::SPS_RAM, "IncludedSPSConsignmentItem"))
            .map(|i| {
                i.children_named(ns::SPS_RAM, "IncludedSPSTradeLineItem")
                    .count()
            });
        assert_eq!(items, Some(3));
    }

    #[test]
    fn the_attachment_is_a_pdf_of_the_size_asked() {
        let cert = certificate(&spec(300_000));
        let root = xml::parse(cert.as_bytes(), &Limits::default()).expect("default limits");
        let attachment = root
            .path(ns::SPS_CERTIFICATE, &["SPSExchangedDocument"])
            .and_then(|d| {
                d.path(
                    ns::SPS_RAM,
                    &["ReferenceSPSReferencedDocument", "AttachmentBinaryObject"],
                )
            })
            .expect("attachment");
        let b64: String = attachment.text.split_whitespace().collect();
        let pdf = base64::engine::general_purpose::STANDARD
            .decode(b64)
            .expect("base64");
        assert!(pdf.starts_with(b"%PDF-1.4"), "a PDF");
        assert!(pdf.ends_with(b"%%EOF\n"));
        assert!(
            (290_000..=310_000).contains(&pdf.len()),
            "{} bytes",
            pdf.len()
        );
        // The xref offsets point at the objects.
        let text = String::from_utf8_lossy(&pdf);
        let startxref: usize = text
            .rsplit("startxref\n")
            .next()
            .and_then(|t| t.lines().next())
            .and_then(|n| n.parse().ok())
            .expect("startxref");
        assert!(pdf[startxref..].starts_with(b"xref\n"));
        assert!(cert.len() > 400_000, "{} bytes", cert.len());
    }

    #[test]
    fn the_acknowledgement_names_the_certificate() {
        let at = OffsetDateTime::from_unix_timestamp(1_767_600_000).expect("time");
        let ack = acknowledgement("VN-PC-2026-000001", at, at + Duration::hours(1));
        let root = xml::parse(ack.as_bytes(), &Limits::default()).expect("well-formed");
        assert!(root.is(ns::SPS_ACKNOWLEDGEMENT, "SPSAcknowledgement"));
        assert!(ack.contains("<ram:ID>VN-PC-2026-000001</ram:ID>"));
    }
}
