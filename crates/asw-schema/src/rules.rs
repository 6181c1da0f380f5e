//! Business rules an XSD cannot express. Each has a stable id, used in error output, in
//! rejection reasons sent to partners, and in the names of the invalid samples in
//! `schemas/samples/invalid/`.

use std::collections::BTreeSet;

use asw_model::kinds::WrittenAs;
use asw_model::xml::Element;
use asw_model::{DocumentKind, Header, ns};
use time::format_description::well_known::Rfc3339;
use time::macros::format_description;
use time::{Date, Duration, OffsetDateTime};

use crate::Problem;

/// Every business rule: id and what it requires.
pub const RULES: &[(&str, &str)] = &[
    ("ENV-000", "the envelope header can be read"),
    ("ENV-001", "sender and receiver are different member states"),
    (
        "ENV-002",
        "the body holds the kind of document the header names",
    ),
    ("ENV-003", "the document version is one this hub reads"),
    ("ENV-004", "the message was not created in the future"),
    (
        "RESP-001",
        "an acknowledgement or response names the message it answers (CorrelationId)",
    ),
    (
        "RESP-002",
        "a rejection or refusal gives at least one reason",
    ),
    (
        "FORMD-001",
        "the e-Form D is issued in the sending member state",
    ),
    (
        "FORMD-002",
        "the e-Form D's importing country is the receiving member state",
    ),
    (
        "FORMD-003",
        "item numbers are unique and consecutive from 1",
    ),
    (
        "FORMD-004",
        "an item with origin criterion RVC has an FOB value",
    ),
    (
        "FORMD-005",
        "an RVC percentage is given with criterion RVC, and only with it",
    ),
    ("FORMD-006", "no invoice is dated after the certification"),
    (
        "FORMD-007",
        "certification, declaration and invoice dates are not in the future",
    ),
    ("FORMD-008", "departure is within a year of certification"),
    (
        "ACDD-001",
        "the ACDD's export country is the sender and its destination the receiver",
    ),
    ("ACDD-002", "every goods item names its country of origin"),
    (
        "ACDD-003",
        "goods item serial numbers are unique and consecutive from 1",
    ),
    ("ACDD-004", "departure is not more than a year away"),
];

/// Days a date may lie after "now" before it counts as in the future (time zones, clock skew).
const SKEW_DAYS: i64 = 1;

/// Checks every business rule on a schema-valid message and returns the problems found.
pub fn check(header: &Header, root: &Element, now: OffsetDateTime) -> Vec<Problem> {
    let mut out = Vec::new();
    let header_el = root.child(ns::ENVELOPE, "Header");
    let header_line = |name: &str| {
        header_el
            .and_then(|h| h.child(ns::ENVELOPE, name))
            .map_or(root.line, |e| e.line)
    };
    if header.sender == header.receiver {
        out.push(Problem::new(
            header_line("Receiver"),
            "ENV-001",
            format!("sender and receiver are both {}", header.sender),
        ));
    }
    if !header.kind.reads_version(&header.version) {
        out.push(unread_version(
            header.kind,
            &header.version,
            header_line("DocumentVersion"),
        ));
    }
    if header.created_at > now + Duration::days(SKEW_DAYS) {
        out.push(Problem::new(
            header_line("CreatedAt"),
            "ENV-004",
            format!(
                "message created in the future ({})",
                header.created_at.format(&Rfc3339).unwrap_or_default()
            ),
        ));
    }
    if header.kind.is_response() && header.correlation_id.is_none() {
        out.push(Problem::new(
            header_line("MessageId"),
            "RESP-001",
            format!(
                "a {} must carry the CorrelationId of the message it answers",
                header.kind
            ),
        ));
    }
    let Some(document) = root
        .child(ns::ENVELOPE, "Body")
        .and_then(|b| b.children.first())
    else {
        return out;
    };
    let body_kind = DocumentKind::from_root_element(&document.namespace, &document.name);
    if body_kind != Some(header.kind) {
        out.push(Problem::new(
            document.line,
            "ENV-002",
            format!(
                "header says {} but the body holds {}",
                header.kind, document.name
            ),
        ));
        return out;
    }
    let today = now.date();
    match header.kind {
        DocumentKind::FormD => form_d(header, document, today, &mut out),
        DocumentKind::Acdd => acdd(header, document, today, &mut out),
        DocumentKind::FormDAck => reasons_required(document, ns::ACK, &["rejected"], &mut out),
        DocumentKind::AcddAck => reasons_required(document, ns::ACK, &["rejected"], &mut out),
        DocumentKind::FormDStatus => reasons_required(
            document,
            ns::FORMD_STATUS,
            &["rejected", "preferential-treatment-not-given"],
            &mut out,
        ),
        DocumentKind::AcddResponse => {
            reasons_required(document, ns::ACDD_RESPONSE, &["rejected"], &mut out)
        }
        // Every other kind brings its rules as data; a receipt the hub writes as the ASW
        // acknowledgement is held to the acknowledgement's rule too.
        kind => {
            if kind.def().written_as == Some(WrittenAs::AswAcknowledgement) {
                reasons_required(
                    document,
                    &kind.def().root.namespace,
                    &["rejected"],
                    &mut out,
                );
            }
            data_rules(kind, document, &mut out)
        }
    }
    out
}

/// ENV-003: the header names a version of `kind` this hub does not read (at `line`, the
/// header's `DocumentVersion`).
pub(crate) fn unread_version(kind: DocumentKind, version: &str, line: u32) -> Problem {
    Problem::new(
        line,
        "ENV-003",
        format!(
            "document version {version} is not supported for {kind} (expected {})",
            kind.def()
                .versions
                .iter()
                .map(|v| v.version.as_str())
                .collect::<Vec<_>>()
                .join(" or ")
        ),
    )
}

/// The element at `path` (local names from `from`'s children down).
fn at_path<'a>(from: &'a Element, path: &[String]) -> Option<&'a Element> {
    path.iter().try_fold(from, |at, name| {
        at.children.iter().find(|c| &c.name == name)
    })
}

/// Checks the rules a kind's file lists (`[[rules]]`, docs/SCHEMAS.md): each problem carries the
/// rule's id and the line of the element at fault (of the nearest element found on the path
/// when the element is missing).
fn data_rules(kind: DocumentKind, doc: &Element, out: &mut Vec<Problem>) {
    for rule in &kind.def().rules {
        let id = rule.id.as_str();
        let Some(element) = at_path(doc, &rule.path) else {
            let line = (0..rule.path.len())
                .rev()
                .find_map(|n| at_path(doc, &rule.path[..n]))
                .map_or(doc.line, |e| e.line);
            out.push(Problem::new(
                line,
                id,
                format!("{} ({} is missing)", rule.message, rule.path.join("/")),
            ));
            continue;
        };
        let text = element.trimmed();
        let broken = (!rule.one_of.is_empty() && !rule.one_of.iter().any(|v| v == text))
            || rule.max_len.is_some_and(|n| text.chars().count() > n)
            || (!rule.differs_from.is_empty()
                && at_path(doc, &rule.differs_from).is_some_and(|other| other.trimmed() == text));
        if broken {
            out.push(Problem::new(
                element.line,
                id,
                format!("{} (found {text:?})", rule.message),
            ));
        }
    }
}

fn date(e: &Element) -> Option<Date> {
    // Schema-valid xs:date values may carry a time zone suffix; the calendar date is what counts.
    let text = e.trimmed();
    Date::parse(text.get(..10)?, format_description!("[year]-[month]-[day]")).ok()
}

fn form_d(header: &Header, doc: &Element, today: Date, out: &mut Vec<Problem>) {
    let fd = ns::FORMD;
    if let Some(issued_in) = doc.child(fd, "IssuedIn")
        && issued_in.trimmed() != header.sender.code()
    {
        out.push(Problem::new(
            issued_in.line,
            "FORMD-001",
            format!(
                "issued in {} but sent by {}",
                issued_in.trimmed(),
                header.sender
            ),
        ));
    }
    if let Some(importing) = doc.path(fd, &["ExporterDeclaration", "ImportingCountry"])
        && importing.trimmed() != header.receiver.code()
    {
        out.push(Problem::new(
            importing.line,
            "FORMD-002",
            format!(
                "importing country is {} but the receiver is {}",
                importing.trimmed(),
                header.receiver
            ),
        ));
    }
    let certification = doc.path(fd, &["Certification", "Date"]);
    let certified = certification.and_then(date);
    let items: Vec<&Element> = doc
        .child(fd, "Items")
        .map(|i| i.children_named(fd, "Item").collect())
        .unwrap_or_default();
    numbering(
        items.iter().filter_map(|i| i.child(fd, "ItemNumber")),
        "FORMD-003",
        "item number",
        out,
    );
    for item in &items {
        let number = item.child(fd, "ItemNumber").map_or("?", Element::trimmed);
        let criterion = item.path(fd, &["OriginCriterion", "Code"]);
        let is_rvc = criterion.is_some_and(|c| c.trimmed() == "RVC");
        if is_rvc && item.child(fd, "FobValue").is_none() {
            let line = criterion.map_or(item.line, |c| c.line);
            out.push(Problem::new(
                line,
                "FORMD-004",
                format!("item {number} uses criterion RVC but has no FobValue"),
            ));
        }
        let percentage = item.path(fd, &["OriginCriterion", "RvcPercentage"]);
        match (is_rvc, percentage) {
            (true, None) => out.push(Problem::new(
                criterion.map_or(item.line, |c| c.line),
                "FORMD-005",
                format!("item {number} uses criterion RVC but gives no RvcPercentage"),
            )),
            (false, Some(p)) => out.push(Problem::new(
                p.line,
                "FORMD-005",
                format!(
                    "item {number} gives an RvcPercentage with criterion {}",
                    criterion.map_or("?", Element::trimmed)
                ),
            )),
            _ => {}
        }
        if let Some(invoice_date) = item.path(fd, &["Invoice", "Date"]) {
            let invoiced = date(invoice_date);
            if let (Some(invoiced), Some(certified)) = (invoiced, certified)
                && invoiced > certified
            {
                out.push(Problem::new(
                        invoice_date.line,
                        "FORMD-006",
                        format!("item {number}: invoice dated {invoiced} is after certification on {certified}"),
                    ));
            }
            future(
                invoice_date,
                &format!("item {number}: invoice date"),
                today,
                "FORMD-007",
                out,
            );
        }
    }
    if let Some(c) = certification {
        future(c, "certification date", today, "FORMD-007", out);
    }
    if let Some(d) = doc.path(fd, &["ExporterDeclaration", "Date"]) {
        future(d, "exporter's declaration date", today, "FORMD-007", out);
    }
    if let (Some(departure), Some(certified)) =
        (doc.path(fd, &["Transport", "DepartureDate"]), certified)
        && let Some(departs) = date(departure)
        && (departs - certified).whole_days().abs() > 366
    {
        out.push(Problem::new(
            departure.line,
            "FORMD-008",
            format!("departure on {departs} is more than a year from certification on {certified}"),
        ));
    }
}

fn future(e: &Element, what: &str, today: Date, rule: &'static str, out: &mut Vec<Problem>) {
    if let Some(d) = date(e)
        && d > today + Duration::days(SKEW_DAYS)
    {
        out.push(Problem::new(
            e.line,
            rule,
            format!("{what} {d} is in the future"),
        ));
    }
}

/// Checks that numbers are exactly 1, 2, 3... in document order.
fn numbering<'a>(
    numbers: impl Iterator<Item = &'a Element>,
    rule: &'static str,
    what: &str,
    out: &mut Vec<Problem>,
) {
    let mut seen = BTreeSet::new();
    for (index, element) in numbers.enumerate() {
        let expected = index + 1;
        let value = element
            .trimmed()
            .trim_start_matches('+')
            .parse::<usize>()
            .ok();
        match value {
            Some(n) if !seen.insert(n) => {
                out.push(Problem::new(
                    element.line,
                    rule,
                    format!("{what} {n} appears more than once"),
                ));
            }
            Some(n) if n != expected => {
                out.push(Problem::new(
                    element.line,
                    rule,
                    format!("{what} is {n}, expected {expected}"),
                ));
            }
            Some(_) => {}
            None => out.push(Problem::new(
                element.line,
                rule,
                format!("{what} {:?} is not a number", element.trimmed()),
            )),
        }
    }
}

fn acdd(header: &Header, doc: &Element, today: Date, out: &mut Vec<Problem>) {
    let a = ns::ACDD;
    for (name, expected, role) in [
        ("ExportCountry", header.sender, "sender"),
        ("DestinationCountry", header.receiver, "receiver"),
    ] {
        if let Some(e) = doc.child(a, name)
            && e.trimmed() != expected.code()
        {
            out.push(Problem::new(
                e.line,
                "ACDD-001",
                format!("{name} is {} but the {role} is {expected}", e.trimmed()),
            ));
        }
    }
    let items: Vec<&Element> = doc.children_named(a, "GoodsItem").collect();
    numbering(
        items.iter().filter_map(|i| i.child(a, "SequenceNumeric")),
        "ACDD-003",
        "goods item serial number",
        out,
    );
    for item in &items {
        if item.child(a, "OriginCountry").is_none() {
            let number = item
                .child(a, "SequenceNumeric")
                .map_or("?", Element::trimmed);
            out.push(Problem::new(
                item.line,
                "ACDD-002",
                format!("goods item {number} has no OriginCountry"),
            ));
        }
    }
    if let Some(departure) = doc.child(a, "DepartureDate")
        && let Some(d) = date(departure)
        && d > today + Duration::days(366)
    {
        out.push(Problem::new(
            departure.line,
            "ACDD-004",
            format!("departure on {d} is more than a year away"),
        ));
    }
}

fn reasons_required(doc: &Element, namespace: &str, statuses: &[&str], out: &mut Vec<Problem>) {
    if let Some(status) = doc.child(namespace, "Status")
        && statuses.contains(&status.trimmed())
        && doc.child(namespace, "Reason").is_none()
    {
        out.push(Problem::new(
            status.line,
            "RESP-002",
            format!("status {} needs at least one Reason", status.trimmed()),
        ));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rule_ids_are_unique_and_well_formed() {
        let ids: BTreeSet<&str> = RULES.iter().map(|(id, _)| *id).collect();
        assert_eq!(ids.len(), RULES.len());
        for id in ids {
            let (prefix, number) = id.rsplit_once('-').expect("PREFIX-NNN");
            assert!(["ENV", "RESP", "FORMD", "ACDD"].contains(&prefix), "{id}");
            assert_eq!(number.len(), 3, "{id}");
        }
    }
}
