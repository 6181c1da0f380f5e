//! The parking lot `asw.parked` as aswctl reads it: the lot itself is the console's
//! ([`asw_console::parking`], shared with its actions); here the command-line filters and the
//! warnings on stderr.

use asw_console::parking::DELIVERY_WARNING;
pub use asw_console::parking::{InJournal, Parked, ParkingLot, Target};
use asw_model::xml::Limits;
use asw_model::{DocumentKind, MemberState};
use asw_route::names;
use time::OffsetDateTime;

use crate::when::When;

/// The connection name and consumer tag aswctl reads the lot with.
const CLIENT: &str = "aswctl";

/// Reads the lot ([`ParkingLot::read`]) as aswctl, warning on stderr when a message came back
/// often enough for RabbitMQ 4.0 to 4.2 to drop it soon.
pub async fn read(
    urls: &[String],
    tls: &asw_amqp::ClientTls,
    limit: u32,
    limits: &Limits,
) -> anyhow::Result<ParkingLot> {
    let lot = ParkingLot::read(CLIENT, urls, tls, limit, limits).await?;
    if let Some(most) = lot.most_deliveries().filter(|n| *n >= DELIVERY_WARNING) {
        eprintln!(
            "aswctl: warning: a message in {} was delivered {most} times; RabbitMQ 4.0 to 4.2 \
             count every read against a quorum queue's delivery limit (20 by default) and then \
             drop the message: give {} a policy without one (docs/OPERATIONS.md)",
            names::PARKED_QUEUE,
            names::PARKED_QUEUE
        );
    }
    Ok(lot)
}

/// Which parked messages a command looks at. Every option given narrows the selection.
#[derive(Debug, Clone, Default, clap::Args)]
pub struct ParkedFilter {
    /// Only messages to or from this member state.
    #[arg(long, value_name = "CC")]
    pub partner: Option<MemberState>,
    /// Only this document kind (formd, acdd, formd-ack, acdd-ack, formd-status, acdd-response).
    #[arg(long, value_name = "KIND")]
    pub kind: Option<DocumentKind>,
    /// Only messages parked in this stage (outbound, inbound, link.CC).
    #[arg(long, value_name = "STAGE")]
    pub stage: Option<String>,
    /// Only messages whose reason code or text contains TEXT (case-insensitive).
    #[arg(long, value_name = "TEXT")]
    pub reason: Option<String>,
    /// Only messages parked at or after T (RFC 3339, or a duration ago: 30m, 2h, 7d).
    #[arg(long, value_name = "T")]
    pub since: Option<When>,
}

impl ParkedFilter {
    /// True if `parked` passes, for the hub of `us`, at `now`.
    pub fn passes(&self, parked: &Parked, us: MemberState, now: OffsetDateTime) -> bool {
        let partner = self.partner.is_none_or(|p| {
            parked.partner(us) == Some(p)
                || parked
                    .header
                    .as_ref()
                    .is_some_and(|h| h.sender == p || h.receiver == p)
        });
        let kind = self.kind.is_none_or(|k| parked.kind() == Some(k));
        let stage = self
            .stage
            .as_deref()
            .is_none_or(|s| parked.stage.as_deref() == Some(s));
        let reason = self.reason.as_deref().is_none_or(|text| {
            let text = text.to_lowercase();
            [&parked.reason_code, &parked.reason]
                .into_iter()
                .flatten()
                .any(|r| r.to_lowercase().contains(&text))
        });
        let since = self
            .since
            .is_none_or(|since| parked.parked_at.is_some_and(|at| at >= since.resolve(now)));
        partner && kind && stage && reason && since
    }
}

/// Releases the lot, reporting a failure on stderr: nothing is lost by it.
pub async fn release(lot: ParkingLot) {
    if let Err(e) = lot.release().await {
        eprintln!("aswctl: warning: {e:#}");
    }
}

/// Notes on stderr when the lot was not read whole.
pub fn warn_if_partial(lot: &ParkingLot, limit: u32) {
    let ready = usize::try_from(lot.ready()).unwrap_or(usize::MAX);
    if lot.len() < ready {
        let why = if lot.ready() > limit {
            format!("--limit {limit}")
        } else {
            "another consumer holds the others".into()
        };
        eprintln!(
            "aswctl: read {} of the {} messages in {} ({why})",
            lot.len(),
            lot.ready(),
            names::PARKED_QUEUE
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use asw_amqp::{HeaderValue, Message, Properties};
    use asw_console::parking::SHORT_DIGEST;
    use asw_journal::Direction;
    use uuid::Uuid;

    #[test]
    fn targets() {
        let id = Uuid::new_v4();
        assert_eq!(id.to_string().parse::<Target>(), Ok(Target::Id(id)));
        assert_eq!(
            "sha256:ABCDEF0123".parse::<Target>(),
            Ok(Target::Digest("abcdef0123".into()))
        );
        assert!("sha256:abc".parse::<Target>().is_err());
        assert!("sha256:xyzxyzxyz".parse::<Target>().is_err());
        assert!("42".parse::<Target>().is_err());
    }

    #[test]
    fn reads_what_the_hub_wrote() {
        let body = b"not even XML".to_vec();
        let properties = Properties::new()
            .with_header(names::HEADER_STAGE, "inbound")
            .with_header(names::HEADER_REASON_CODE, "XML")
            .with_header(names::HEADER_REASON, "XML line 1: not XML")
            .with_header(names::HEADER_ATTEMPTS, 1i64)
            .with_header(names::HEADER_PARKED_AT, "2026-11-25T08:00:00Z")
            .with_header(names::HEADER_ROUTING_KEY, "TH")
            .with_header(names::HEADER_TRANSPORT_USER, "partner-TH");
        let message = Message {
            body,
            exchange: String::new(),
            routing_key: names::PARKED_QUEUE.into(),
            redelivered: false,
            properties,
        };
        let parked = Parked::from_message(message, &Limits::default(), "guest");
        assert_eq!(parked.message_id, None);
        assert!(parked.reference().starts_with("sha256:"));
        assert_eq!(parked.reference().len(), "sha256:".len() + SHORT_DIGEST);
        assert_eq!(parked.direction(), Some(Direction::Inbound));
        assert_eq!(
            parked.stage_queue().as_deref(),
            Some(names::HUB_INBOUND_QUEUE)
        );
        let th = MemberState::from_alpha2("TH");
        let vn = MemberState::from_alpha2("VN").expect("VN");
        assert_eq!(parked.partner(vn), th);
        assert_eq!(parked.attempts, Some(1));
        let now = OffsetDateTime::now_utc();
        let filter = |f: ParkedFilter| f.passes(&parked, vn, now);
        assert!(filter(ParkedFilter::default()));
        assert!(filter(ParkedFilter {
            partner: th,
            reason: Some("not xml".into()),
            stage: Some("inbound".into()),
            since: Some("2026-11-25T07:00:00Z".parse().expect("time")),
            ..ParkedFilter::default()
        }));
        assert!(!filter(ParkedFilter {
            stage: Some("outbound".into()),
            ..ParkedFilter::default()
        }));
        assert!(!filter(ParkedFilter {
            kind: Some(DocumentKind::FormD),
            ..ParkedFilter::default()
        }));
        assert!(!filter(ParkedFilter {
            since: Some("2026-11-25T09:00:00Z".parse().expect("time")),
            ..ParkedFilter::default()
        }));
        let target = Target::Digest(parked.sha256[..10].to_owned());
        assert!(parked.is(&target));
    }

    /// An `x-death` as RabbitMQ writes it, latest first.
    fn deaths(entries: &[(&str, &str, &str)]) -> HeaderValue {
        HeaderValue::Array(
            entries
                .iter()
                .map(|&(queue, reason, key)| {
                    HeaderValue::Table(
                        [
                            ("queue", HeaderValue::from(queue)),
                            ("reason", HeaderValue::from(reason)),
                            ("count", HeaderValue::Int(1)),
                            ("time", HeaderValue::Int(1_795_600_000)),
                            ("exchange", HeaderValue::from("asw.partner.in")),
                            (
                                "routing-keys",
                                HeaderValue::Array(vec![HeaderValue::from(key)]),
                            ),
                        ]
                        .into_iter()
                        .map(|(k, v)| (k.to_owned(), v))
                        .collect(),
                    )
                })
                .collect(),
        )
    }

    fn broker_parked(properties: Properties) -> Parked {
        let message = Message {
            body: b"<poison/>".to_vec(),
            exchange: String::new(),
            routing_key: names::PARKED_QUEUE.into(),
            redelivered: false,
            properties,
        };
        Parked::from_message(message, &Limits::default(), "aswhub")
    }

    #[test]
    fn reads_what_the_broker_parked_at_a_delivery_limit() {
        let vn = MemberState::from_alpha2("VN").expect("VN");
        // A partner's message, with headers it set to pass for something the hub moved.
        let parked = broker_parked(
            Properties::new()
                .with_user_id("partner-TH")
                .with_header(names::HEADER_TRANSPORT_USER, "partner-SG")
                .with_header(names::HEADER_ROUTING_KEY, "SG")
                .with_header(names::HEADER_ATTEMPTS, 1i64)
                .with_header(
                    names::HEADER_DEATH,
                    deaths(&[("asw.hub.inbound", "delivery_limit", "TH")]),
                ),
        );
        assert_eq!(parked.stage.as_deref(), Some("inbound"));
        assert_eq!(parked.reason_code.as_deref(), Some("DELIVERY-LIMIT"));
        assert!(
            parked
                .reason
                .as_deref()
                .is_some_and(|r| r.contains("asw.hub.inbound")),
            "{:?}",
            parked.reason
        );
        assert_eq!(parked.routing_key.as_deref(), Some("TH"));
        assert_eq!(parked.transport_user.as_deref(), Some("partner-TH"));
        assert_eq!(parked.attempts, None);
        assert_eq!(
            parked.parked_at.map(OffsetDateTime::unix_timestamp),
            Some(1_795_600_000)
        );
        assert_eq!(parked.stage_queue().as_deref(), Some("asw.hub.inbound"));
        assert_eq!(parked.partner(vn), MemberState::from_alpha2("TH"));

        // One the hub moved through a retry queue: its own headers say where it came from.
        let parked = broker_parked(
            Properties::new()
                .with_user_id("aswhub")
                .with_header(names::HEADER_TRANSPORT_USER, "partner-SG")
                .with_header(names::HEADER_ROUTING_KEY, "SG")
                .with_header(names::HEADER_ATTEMPTS, 2i64)
                .with_header(
                    names::HEADER_DEATH,
                    deaths(&[
                        ("asw.hub.inbound", "delivery_limit", "asw.hub.inbound"),
                        (
                            "asw.retry.inbound.1000",
                            "expired",
                            "asw.retry.inbound.1000",
                        ),
                    ]),
                ),
        );
        assert_eq!(parked.reason_code.as_deref(), Some("DELIVERY-LIMIT"));
        assert_eq!(parked.routing_key.as_deref(), Some("SG"));
        assert_eq!(parked.transport_user.as_deref(), Some("partner-SG"));
        assert_eq!(parked.attempts, Some(2));

        // From a partner's queue: the link's stage, outbound, replayed into that queue.
        let parked = broker_parked(Properties::new().with_header(
            names::HEADER_DEATH,
            deaths(&[("asw.partner.out.SG", "delivery_limit", "SG")]),
        ));
        assert_eq!(parked.stage.as_deref(), Some("link.SG"));
        assert_eq!(parked.direction(), Some(Direction::Outbound));
        assert_eq!(parked.stage_queue().as_deref(), Some("asw.partner.out.SG"));
        assert_eq!(parked.partner(vn), MemberState::from_alpha2("SG"));
        let filter = ParkedFilter {
            stage: Some("link.SG".into()),
            reason: Some("delivery-limit".into()),
            ..ParkedFilter::default()
        };
        assert!(filter.passes(&parked, vn, OffsetDateTime::now_utc()));

        // Expired last, or no x-death at all: not the broker's delivery limit.
        for properties in [
            Properties::new().with_header(
                names::HEADER_DEATH,
                deaths(&[
                    (
                        "asw.retry.inbound.1000",
                        "expired",
                        "asw.retry.inbound.1000",
                    ),
                    ("asw.hub.inbound", "delivery_limit", "TH"),
                ]),
            ),
            Properties::new().with_header(names::HEADER_REASON_CODE, "XSD"),
        ] {
            let parked = broker_parked(properties.with_header(names::HEADER_STAGE, "inbound"));
            assert_ne!(parked.reason_code.as_deref(), Some("DELIVERY-LIMIT"));
            assert_eq!(parked.stage.as_deref(), Some("inbound"));
        }
    }
}
