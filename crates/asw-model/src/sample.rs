//! Valid sample documents for every kind and pair of member states, reproducible from a seed.
//! Used by `aswctl sample`, the tests, the demo and the benchmarks.

use time::{Date, Duration, OffsetDateTime};
use uuid::Uuid;

use crate::document::{
    Acdd, AcddConsignee, Acknowledgement, Amount, BorderTransportMeans, Certification,
    CustomsResponse, Document, ExporterDeclaration, Flags, FormD, FormDStatus, GoodsItem,
    IdentifiedParty, Invoice, Item, Items, Message, OriginCriterion, Packages, Party, Quantity,
    Reason, Transport, XmlBody,
};
use crate::{DocumentKind, Header, MemberState};

/// What sample to make.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SampleSpec {
    /// Kind of document.
    pub kind: DocumentKind,
    /// Sending member state.
    pub from: MemberState,
    /// Receiving member state.
    pub to: MemberState,
    /// Number of items (e-Form D and ACDD), at least 1.
    pub items: u32,
    /// Seed: the same spec gives the same document, byte for byte.
    pub seed: u64,
    /// Creation time written in the header; business dates are derived from it.
    pub created_at: OffsetDateTime,
}

impl SampleSpec {
    /// The creation time used when a seed is given and no time is: 2026-01-05T08:00:00Z plus
    /// up to 199 days derived from the seed, so samples are reproducible and never in the future.
    pub fn seeded_time(seed: u64) -> OffsetDateTime {
        let base = OffsetDateTime::from_unix_timestamp(1_767_600_000)
            .unwrap_or(OffsetDateTime::UNIX_EPOCH);
        base + Duration::days(i64::try_from(seed % 200).unwrap_or(0))
    }
}

/// Per-country facts used to make plausible samples.
struct CountryFacts {
    city: &'static str,
    port: &'static str,
    authority: &'static str,
    customs: &'static str,
}

fn facts(state: MemberState) -> CountryFacts {
    let (city, port, authority, customs) = match state.code() {
        "BN" => (
            "Bandar Seri Begawan",
            "BNMUA",
            "Ministry of Finance and Economy",
            "Royal Customs and Excise Department",
        ),
        "KH" => (
            "Phnom Penh",
            "KHPNH",
            "Ministry of Commerce",
            "General Department of Customs and Excise",
        ),
        "ID" => (
            "Jakarta",
            "IDTPP",
            "Ministry of Trade",
            "Directorate General of Customs and Excise",
        ),
        "LA" => (
            "Vientiane",
            "LAVTE",
            "Ministry of Industry and Commerce",
            "Lao Customs Department",
        ),
        "MY" => (
            "Port Klang",
            "MYPKG",
            "Ministry of Investment, Trade and Industry",
            "Royal Malaysian Customs Department",
        ),
        "MM" => (
            "Yangon",
            "MMRGN",
            "Ministry of Commerce",
            "Myanmar Customs Department",
        ),
        "PH" => ("Manila", "PHMNL", "Bureau of Customs", "Bureau of Customs"),
        "SG" => (
            "Singapore",
            "SGSIN",
            "Singapore Customs",
            "Singapore Customs",
        ),
        "TH" => (
            "Bangkok",
            "THLCH",
            "Department of Foreign Trade",
            "Thai Customs Department",
        ),
        _ => (
            "Ho Chi Minh City",
            "VNSGN",
            "Ministry of Industry and Trade",
            "General Department of Vietnam Customs",
        ),
    };
    CountryFacts {
        city,
        port,
        authority,
        customs,
    }
}

/// A small deterministic generator (SplitMix64): stable across platforms and crate versions.
pub(crate) struct Rng(pub(crate) u64);

impl Rng {
    pub(crate) fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    pub(crate) fn below(&mut self, n: u64) -> u64 {
        self.next() % n.max(1)
    }

    pub(crate) fn pick<'a, T>(&mut self, items: &'a [T]) -> &'a T {
        &items[usize::try_from(self.below(items.len() as u64)).unwrap_or(0)]
    }

    fn uuid(&mut self) -> Uuid {
        let mut bytes = [0u8; 16];
        bytes[..8].copy_from_slice(&self.next().to_le_bytes());
        bytes[8..].copy_from_slice(&self.next().to_le_bytes());
        uuid::Builder::from_random_bytes(bytes).into_uuid()
    }
}

const GOODS: &[(&str, &str, &str)] = &[
    ("Frozen shrimps, peeled", "030617", "KGM"),
    ("Robusta coffee beans, not roasted", "090111", "KGM"),
    ("Milled jasmine rice", "100630", "TNE"),
    ("Natural rubber, technically specified", "400122", "KGM"),
    ("Cotton T-shirts, knitted", "610910", "H87"),
    ("Footwear with rubber soles", "640299", "PR"),
    ("Printed circuit assemblies", "847330", "H87"),
    ("Wooden bedroom furniture", "940350", "SET"),
    ("Canned tuna in oil", "160414", "KGM"),
    ("Crude palm oil", "151110", "TNE"),
    ("Air conditioning machines", "84151010", "H87"),
    ("Refined white sugar", "1701991000", "TNE"),
];
const COMPANIES: &[&str] = &[
    "Mekong Agro Export Co., Ltd.",
    "Golden Lotus Trading JSC",
    "Andaman Seafood Public Co.",
    "Straits Electronics Pte. Ltd.",
    "Borneo Timber Works Sdn. Bhd.",
    "Irrawaddy Textiles Co., Ltd.",
    "Luzon Fresh Produce Corp.",
    "Java Coffee Roasters PT",
];
const CRITERIA: &[&str] = &["WO", "PE", "RVC", "RVC", "CTH", "CTSH", "CC", "PSR"];
const PACKAGES: &[&str] = &["CT", "BG", "PK", "PL", "CS", "DR"];

/// Builds the sample message described by `spec`.
pub fn message(spec: &SampleSpec) -> Message {
    let mut rng = Rng(spec.seed ^ 0x4153_5748_5542_0001);
    let header = Header {
        message_id: rng.uuid(),
        correlation_id: spec.kind.is_response().then(|| rng.uuid()),
        sender: spec.from,
        receiver: spec.to,
        kind: spec.kind,
        version: spec.kind.version().to_owned(),
        created_at: spec.created_at,
    };
    let today = spec.created_at.date();
    let items = spec.items.max(1);
    let document = match spec.kind {
        DocumentKind::FormD => Document::FormD(form_d(&mut rng, spec, today, items)),
        DocumentKind::Acdd => Document::Acdd(acdd(&mut rng, spec, today, items)),
        DocumentKind::FormDAck => Document::FormDAck(ack(&mut rng, spec, "FD")),
        DocumentKind::AcddAck => Document::AcddAck(ack(&mut rng, spec, "EX")),
        DocumentKind::FormDStatus => Document::FormDStatus(FormDStatus {
            reference_number: reference(&mut rng, spec.to, today, "FD"),
            status: "preferential-treatment-given".into(),
            reasons: Vec::new(),
            authority: facts(spec.from).customs.into(),
            date: today,
        }),
        DocumentKind::AcddResponse => Document::AcddResponse(CustomsResponse {
            declaration_number: reference(&mut rng, spec.to, today, "EX"),
            status: "accepted".into(),
            reasons: Vec::new(),
            office: facts(spec.from).customs.into(),
            issued_at: spec.created_at,
        }),
        DocumentKind::Ephyto => Document::Xml(XmlBody {
            kind: spec.kind,
            xml: crate::sps::certificate(&ephyto_spec(spec)),
        }),
        DocumentKind::EphytoAck => {
            let certificate = ephyto_spec(spec);
            Document::Xml(XmlBody {
                kind: spec.kind,
                xml: crate::sps::acknowledgement(
                    &crate::sps::certificate_number(&certificate),
                    spec.created_at - Duration::hours(2),
                    spec.created_at,
                ),
            })
        }
        // A kind described only as data: its root element, empty (a kinds directory may ship
        // a sample body, which `aswctl sample` uses instead).
        kind => {
            let (namespace, element) = kind.root_element();
            Document::Xml(XmlBody {
                kind,
                xml: format!("<k:{element} xmlns:k=\"{namespace}\"/>"),
            })
        }
    };
    Message { header, document }
}

/// The e-Phyto certificate a sample of `spec` carries (the sending state's organisation issues
/// it; a small attachment).
fn ephyto_spec(spec: &SampleSpec) -> crate::sps::EphytoSpec<'static> {
    let country = |s: MemberState| crate::sps::Country {
        code: s.code(),
        name: s.info().name,
    };
    crate::sps::EphytoSpec {
        exporter: country(spec.from),
        importer: country(spec.to),
        commodities: spec.items.max(1),
        attachment_bytes: 2048,
        seed: spec.seed,
        issued_at: spec.created_at,
    }
}

/// A document reference such as `VN-FD-2026-004711`.
fn reference(rng: &mut Rng, issuer: MemberState, date: Date, kind: &str) -> String {
    format!(
        "{}-{kind}-{}-{:06}",
        issuer.code(),
        date.year(),
        rng.below(1_000_000)
    )
}

fn form_d(rng: &mut Rng, spec: &SampleSpec, today: Date, items: u32) -> FormD {
    let from = facts(spec.from);
    let to = facts(spec.to);
    let certified = today;
    let invoice_date = certified - Duration::days(i64::try_from(rng.below(10)).unwrap_or(0) + 1);
    let rows = (1..=items)
        .map(|number| {
            let (description, hs, unit) = *rng.pick(GOODS);
            let criterion = *rng.pick(CRITERIA);
            let rvc = criterion == "RVC";
            Item {
                number,
                marks: format!(
                    "{}/{:04} MADE IN {}",
                    spec.from.code(),
                    number,
                    spec.from.info().name.to_uppercase()
                ),
                packages: Packages {
                    count: u32::try_from(rng.below(500)).unwrap_or(0) + 1,
                    kind_code: (*rng.pick(PACKAGES)).into(),
                },
                description: description.into(),
                hs_code: hs.into(),
                origin_criterion: OriginCriterion {
                    code: criterion.into(),
                    rvc_percentage: rvc.then(|| format!("{}", 40 + rng.below(40))),
                },
                quantity: Quantity {
                    unit: unit.into(),
                    value: format!("{}.{:02}", 1 + rng.below(20_000), rng.below(100)),
                },
                fob_value: (rvc || rng.below(2) == 0).then(|| Amount {
                    currency: "USD".into(),
                    value: format!("{}.{:02}", 100 + rng.below(250_000), rng.below(100)),
                }),
                invoice: Invoice {
                    number: format!("INV-{}-{:05}", today.year(), rng.below(100_000)),
                    date: invoice_date,
                },
            }
        })
        .collect();
    FormD {
        reference_number: reference(rng, spec.from, today, "FD"),
        issued_in: spec.from,
        exporter: Party {
            name: (*rng.pick(COMPANIES)).into(),
            address: format!("{} Harbour Road, {}", 1 + rng.below(400), from.city),
            country: spec.from.code().into(),
        },
        consignee: Party {
            name: (*rng.pick(COMPANIES)).into(),
            address: format!("{} Industrial Estate, {}", 1 + rng.below(400), to.city),
            country: spec.to.code().into(),
        },
        transport: Transport {
            departure_date: today + Duration::days(i64::try_from(rng.below(5)).unwrap_or(0)),
            vessel_or_flight: format!("MV ASEAN STAR V.{:03}", rng.below(1000)),
            port_of_loading: from.port.into(),
            port_of_discharge: to.port.into(),
        },
        official_use: None,
        items: Items { items: rows },
        declaration: ExporterDeclaration {
            producing_country: spec.from,
            importing_country: spec.to,
            place: from.city.into(),
            date: certified,
        },
        certification: Certification {
            authority: from.authority.into(),
            place: from.city.into(),
            date: certified,
            officer: "Certifying Officer No. 7".into(),
        },
        flags: Flags {
            third_country_invoicing: rng.below(10) == 0,
            ..Flags::default()
        },
    }
}

fn acdd(rng: &mut Rng, spec: &SampleSpec, today: Date, items: u32) -> Acdd {
    let to = facts(spec.to);
    let goods = (1..=items)
        .map(|sequence| {
            let (description, hs, unit) = *rng.pick(GOODS);
            GoodsItem {
                sequence,
                hs_code: hs.into(),
                description: Some(description.into()),
                quantity: Quantity {
                    unit: unit.into(),
                    value: format!("{}", 1 + rng.below(20_000)),
                },
                origin_country: Some(spec.from.code().into()),
            }
        })
        .collect();
    Acdd {
        declaration_number: reference(rng, spec.from, today, "EX"),
        export_country: spec.from,
        destination_country: spec.to,
        exporter: IdentifiedParty {
            id: format!("{}{:010}", spec.from.code(), rng.below(10_000_000_000)),
            name: (*rng.pick(COMPANIES)).into(),
        },
        consignee: AcddConsignee {
            name: (*rng.pick(COMPANIES)).into(),
            address: format!("{} Free Trade Zone, {}", 1 + rng.below(400), to.city),
        },
        agent: IdentifiedParty {
            id: format!("AG{:08}", rng.below(100_000_000)),
            name: "ASEAN Customs Brokerage Ltd.".into(),
        },
        departure_date: today,
        transport: BorderTransportMeans {
            mode_code: "1".into(),
            identification: Some(format!("MV ASEAN STAR V.{:03}", rng.below(1000))),
        },
        unloading_location: to.port.into(),
        items: goods,
    }
}

fn ack(rng: &mut Rng, spec: &SampleSpec, kind: &str) -> Acknowledgement {
    Acknowledgement {
        document_reference: reference(rng, spec.to, spec.created_at.date(), kind),
        received_at: spec.created_at,
        status: "received".into(),
        reasons: Vec::new(),
    }
}

/// A rejection reason, for tests and for acknowledgements built by the hub.
pub fn reason(code: &str, text: &str) -> Reason {
    Reason {
        code: code.into(),
        text: text.into(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(kind: DocumentKind, seed: u64) -> SampleSpec {
        SampleSpec {
            kind,
            from: MemberState::from_alpha2("VN").expect("VN"),
            to: MemberState::from_alpha2("TH").expect("TH"),
            items: 3,
            seed,
            created_at: SampleSpec::seeded_time(seed),
        }
    }

    #[test]
    fn same_seed_same_bytes_other_seed_other_bytes() {
        for kind in DocumentKind::ALL {
            let a = message(&spec(kind, 7)).to_xml().expect("xml");
            let b = message(&spec(kind, 7)).to_xml().expect("xml");
            let c = message(&spec(kind, 8)).to_xml().expect("xml");
            assert_eq!(a, b, "{kind}");
            assert_ne!(a, c, "{kind}");
        }
    }

    #[test]
    fn header_round_trips_through_the_reader() {
        for kind in DocumentKind::ALL {
            let msg = message(&spec(kind, 42));
            let xml = msg.to_xml().expect("xml");
            let header =
                Header::read(xml.as_bytes(), &crate::xml::Limits::default()).expect("header");
            assert_eq!(header, msg.header, "{kind}");
        }
    }

    #[test]
    fn form_d_snapshot() {
        let xml = message(&SampleSpec {
            items: 1,
            ..spec(DocumentKind::FormD, 1)
        })
        .to_xml()
        .expect("xml");
        expect_test::expect_file!["../tests/snapshots/formd-seed1.xml"].assert_eq(&xml);
    }
}
