//! The IPPC ePhyto Hub as a partner channel, export side: the signed e-Phyto certificates for
//! one partner wait in `asw.ippc.out.<CC>` (the executor publishes them to `asw.partner.out`
//! with key `<CC>.ippc` instead of `<CC>`); this channel takes them one at a time, in order,
//! sends the bare SPS certificate of each with `DeliverEnvelope` and journals the returned
//! `hubDeliveryNumber` with the move to `sent` before it acknowledges the delivery. A hub that
//! is unreachable or fails transiently is retried with back-off while the document stays
//! unacknowledged (nothing is lost, nothing overtakes it); a document the hub refuses for good
//! is parked in `asw.parked` (stage `ippc`, routing key `<CC>.ippc`: a replay puts it back into
//! `asw.ippc.out.<CC>`), journaled `failed` (`EPHYTO-HUB-REFUSED`) and reported to the
//! back-office. A certificate whose journal record already holds a hub delivery number (it went
//! through before: a replay, a redelivery) is not delivered to the hub again: it moves to `sent`
//! with that number.
//!
//! A tracking task asks `GetEnvelopeTrackingInfo` every `track_every` for the partner's
//! certificates journaled `sent` (or `awaiting-ack`) with a delivery number and moves them as
//! [`ExportOutcome::of`] says, telling the back-office (`outcome.ephyto.<CC>`): `acknowledged`
//! (with the importer's warning as reason `EPHYTO-HUB-WARNING`) or `rejected`
//! (`EPHYTO-HUB-<tracking state>`, with the hub's message).

use std::sync::Arc;

use asw_amqp::{Backoff, Connection, Consumer, Delivery, Properties};
use asw_journal::{Direction, Filter, MessageSummary, Reason, State};
use asw_model::xml::Limits;
use asw_model::{DocumentKind, MemberState};
use asw_route::names;
use futures_util::FutureExt;
use futures_util::future::BoxFuture;
use tokio_util::sync::CancellationToken;
use tracing::{Instrument, info, info_span, warn};

use super::client::{CertificateType, Export, ExportOutcome, HubClient, HubError};
use crate::channel::{Health, PartnerChannel, next_delivery};
use crate::execute::journal_moves;
use crate::hub::{Inner, SessionEnd, now, on_journal};
use crate::metrics::JournalOperation;
use crate::outcome::{Outcome, OutcomeReason};
use crate::park::notify;
use crate::plan::Move;
use crate::publish::LanePublisher;

/// Reason code of a certificate the IPPC hub refused for good (`DeliverEnvelope`).
pub const REASON_REFUSED: &str = "EPHYTO-HUB-REFUSED";
/// Reason code of the importer's warning on a certificate delivered with warnings.
pub const REASON_WARNING: &str = "EPHYTO-HUB-WARNING";

const SPS_NS: &str = "urn:un:unece:uncefact:data:standard:SPSCertificate:17";
const RAM_NS: &str =
    "urn:un:unece:uncefact:data:standard:ReusableAggregateBusinessInformationEntity:21";

/// What `DeliverEnvelope` needs of a certificate, read from our signed envelope.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BareCertificate {
    /// The SPS certificate as it is in the envelope's body (its own namespace declarations).
    pub xml: Vec<u8>,
    /// `SPSExchangedDocument/ID`.
    pub nppo_number: String,
    /// From `SPSExchangedDocument/TypeCode` (657: re-export; otherwise export).
    pub certificate_type: CertificateType,
    /// `SPSExchangedDocument/StatusCode` (70 when absent).
    pub status: u16,
}

/// The bare SPS certificate carried in a signed ASW envelope: the bytes of its
/// `SPSCertificate` element, exactly as signed, with the fields of the hub's envelope header.
pub fn bare_certificate(signed: &[u8], limits: &Limits) -> Result<BareCertificate, String> {
    let text = std::str::from_utf8(signed).map_err(|e| format!("not UTF-8: {e}"))?;
    // The start tag: `<` then an optional prefix then `SPSCertificate`, then space or `>`.
    let mut at = 0;
    let (start, qname) = loop {
        let i = text[at..]
            .find("SPSCertificate")
            .map(|i| i + at)
            .ok_or("no SPSCertificate element in the envelope")?;
        let after = text[i + "SPSCertificate".len()..].chars().next();
        let open = text[..i].rfind('<');
        if let (Some(open), Some(c)) = (open, after)
            && (c.is_whitespace() || c == '>')
        {
            let name = &text[open + 1..i + "SPSCertificate".len()];
            if !name.starts_with('/')
                && name
                    .chars()
                    .all(|c| c.is_alphanumeric() || matches!(c, ':' | '_' | '-' | '.'))
            {
                break (open, name.to_owned());
            }
        }
        at = i + 1;
    };
    let close = format!("</{qname}>");
    let end = text
        .rfind(&close)
        .filter(|&e| e > start)
        .ok_or("the SPSCertificate element is not closed")?
        + close.len();
    let xml = text.as_bytes()[start..end].to_vec();
    let root = asw_model::xml::parse(&xml, limits).map_err(|e| e.to_string())?;
    if !root.is(SPS_NS, "SPSCertificate") {
        return Err("the body is not an SPSCertificate:17".into());
    }
    let field = |name: &str| {
        root.path(SPS_NS, &["SPSExchangedDocument"])
            .and_then(|d| d.child(RAM_NS, name))
            .map(|e| e.trimmed().to_owned())
            .unwrap_or_default()
    };
    let nppo_number = field("ID");
    if nppo_number.is_empty() {
        return Err("the certificate has no SPSExchangedDocument/ID".into());
    }
    let certificate_type = match field("TypeCode").as_str() {
        "657" => CertificateType::ReExport,
        _ => CertificateType::Export,
    };
    let status = field("StatusCode").parse().unwrap_or(70);
    Ok(BareCertificate {
        xml,
        nppo_number,
        certificate_type,
        status,
    })
}

/// The IPPC channel of one partner.
pub(crate) struct IppcChannel {
    partner: MemberState,
    client: Arc<HubClient>,
    track_every: std::time::Duration,
    health: Health,
}

impl IppcChannel {
    /// The channel to `partner` through the hub `client`, tracking every `track_every`.
    pub(crate) fn new(
        partner: MemberState,
        client: Arc<HubClient>,
        track_every: std::time::Duration,
    ) -> IppcChannel {
        IppcChannel {
            partner,
            client,
            track_every,
            health: Health::new("ippc-hub"),
        }
    }
}

impl PartnerChannel for IppcChannel {
    fn partner(&self) -> MemberState {
        self.partner
    }

    fn health(&self) -> &Health {
        &self.health
    }

    fn run(
        self: Arc<Self>,
        inner: Arc<Inner>,
        local: Arc<Connection>,
        stop: CancellationToken,
    ) -> BoxFuture<'static, Result<(), SessionEnd>> {
        let span = info_span!("ippc", partner = self.partner.code());
        async move {
            let tracking = track(&self, &inner, &local, &stop);
            let export = export(&self, &inner, &local, &stop);
            // Either ending (the session's end, or the local broker failing) ends both.
            tokio::select! {
                r = export => r,
                r = tracking => r,
            }
        }
        .instrument(span)
        .boxed()
    }
}

/// Runs a blocking call to the hub.
async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> Result<T, HubError> + Send + 'static,
) -> Result<T, HubError> {
    tokio::task::spawn_blocking(f)
        .await
        .unwrap_or_else(|e| Err(HubError::Setup(format!("the hub call panicked: {e}"))))
}

async fn export(
    channel: &IppcChannel,
    inner: &Inner,
    local: &Arc<Connection>,
    stop: &CancellationToken,
) -> Result<(), SessionEnd> {
    let queue = names::ippc_out_queue(channel.partner);
    let mut publisher = LanePublisher::open(local.clone()).await?;
    let mut consumer =
        Consumer::start(local.open_channel().await?, &queue, 1, "aswhub-ippc").await?;
    let backoff = Backoff::default();
    let us = inner.config.country;
    loop {
        let Some(delivery) = next_delivery(&mut consumer, &queue, stop).await? else {
            return Ok(());
        };
        let Delivery { message, acker } = delivery;
        let header = asw_model::Header::read(&message.body, &inner.config.limits.document).ok();
        let Some(header) = header else {
            // Only the executor publishes here, with our own signed envelope: nothing to do
            // with anything else but drop it loudly.
            warn!("A message without a readable ASW header in the IPPC queue; dropped.");
            acker.ack().await?;
            continue;
        };
        let id = header.message_id;
        // Delivered to the hub before (the journal holds its number): not again. A journal
        // that cannot say is asked again until it does: sending without knowing could deliver
        // the certificate twice.
        let read = || {
            let asked = on_journal(inner, move |_, j| j.get(Direction::Outbound, id));
            async move {
                match asked.await {
                    Ok(Ok(record)) => Ok(record.and_then(|r| r.summary.transport_ref)),
                    Ok(Err(e)) => Err(e.to_string()),
                    Err(e) => Err(e.to_string()),
                }
            }
        };
        let mut troubled = false;
        let failed = |e: &String, failures: u32| {
            troubled = true;
            inner
                .metrics
                .journal_error(JournalOperation::IppcDeliveredBefore);
            channel
                .health
                .set(false, format!("cannot read the journal: {e}"));
            warn!(message_id = %id, error = %e, failures, "Cannot tell from the journal whether the ePhyto hub took the certificate before; asking again.");
        };
        let Some(before) = until_read(read, &backoff, stop, failed).await else {
            let _ = acker.nack(true).await;
            return Ok(());
        };
        if troubled {
            channel.health.set(true, "the journal answers again");
        }
        if let Some(number) = before {
            info!(message_id = %id, hub_delivery_number = %number, "Delivered to the ePhyto hub before; not again.");
            journal_with_ref(inner, id, &number).await;
            acker.ack().await?;
            continue;
        }
        let bare = bare_certificate(&message.body, &inner.config.limits.document);
        let sent = match bare {
            Err(reason) => Err(HubError::Answer {
                operation: "DeliverEnvelope",
                reason: format!("cannot take the certificate out of the envelope: {reason}"),
            }),
            Ok(bare) => {
                let mut failures = 0u32;
                loop {
                    let client = channel.client.clone();
                    let (from, to) = (us.code().to_owned(), channel.partner.code().to_owned());
                    let b = bare.clone();
                    let call = blocking(move || {
                        client.deliver(&Export {
                            from: &from,
                            to: &to,
                            certificate_type: b.certificate_type,
                            certificate_status: b.status,
                            nppo_number: &b.nppo_number,
                            certificate: &b.xml,
                        })
                    });
                    let outcome = tokio::select! {
                        r = call => r,
                        () = stop.cancelled() => {
                            // Not sent (or not known to be): back to the queue, in order.
                            let _ = acker.nack(true).await;
                            return Ok(());
                        }
                    };
                    match outcome {
                        Err(e) if e.is_transient() => {
                            failures = failures.saturating_add(1);
                            channel.health.set(false, e.to_string());
                            warn!(message_id = %id, error = %e, failures, "The ePhyto hub failed; retrying.");
                            tokio::select! {
                                () = tokio::time::sleep(backoff.pause(failures)) => {}
                                () = stop.cancelled() => {
                                    let _ = acker.nack(true).await;
                                    return Ok(());
                                }
                            }
                        }
                        other => break other,
                    }
                }
            }
        };
        match sent {
            Ok(answer) => {
                channel
                    .health
                    .set(true, "the ePhyto hub takes our certificates");
                let number = answer.delivery_number;
                info!(message_id = %id, hub_delivery_number = %number, "Sent through the ePhyto hub.");
                journal_with_ref(inner, id, &number).await;
            }
            Err(e) => {
                warn!(message_id = %id, error = %e, "The ePhyto hub refused the certificate.");
                let reason = Reason::new(
                    REASON_REFUSED,
                    crate::publish::bounded(&e.to_string(), crate::publish::MAX_REASON_BYTES),
                );
                // Parked first (confirmed): a replay puts it back into this queue.
                let properties = parked_properties(id, channel.partner, &reason);
                publisher
                    .publish("", names::PARKED_QUEUE, &message.body, &properties)
                    .await?;
                let mut outcome = Outcome::new(
                    "rejected",
                    Some(id),
                    Some(header.kind),
                    Some(channel.partner),
                    now(),
                );
                outcome.reasons = vec![OutcomeReason::from(&reason)];
                notify(inner, &mut publisher, &outcome).await?;
                journal_moves(
                    inner,
                    vec![Move {
                        reason: Some(reason),
                        ..Move::new(Direction::Outbound, id, State::Failed)
                    }],
                )
                .await;
            }
        }
        acker.ack().await?;
    }
}

/// Asks `read` until it answers, pausing as `backoff` says after each failure (told to
/// `failed` with the failures so far); `None` if `stop` comes first.
async fn until_read<T, Fut>(
    mut read: impl FnMut() -> Fut,
    backoff: &Backoff,
    stop: &CancellationToken,
    mut failed: impl FnMut(&String, u32),
) -> Option<T>
where
    Fut: std::future::Future<Output = Result<T, String>>,
{
    let mut failures = 0u32;
    loop {
        let answer = tokio::select! {
            r = read() => r,
            () = stop.cancelled() => return None,
        };
        match answer {
            Ok(t) => return Some(t),
            Err(e) => {
                failures = failures.saturating_add(1);
                failed(&e, failures);
                tokio::select! {
                    () = tokio::time::sleep(backoff.pause(failures)) => {}
                    () = stop.cancelled() => return None,
                }
            }
        }
    }
}

/// The properties of a certificate the hub refused, parked: stage `ippc`, the reason, and the
/// routing key `<CC>.ippc` that names the queue a replay puts it back into.
fn parked_properties(id: uuid::Uuid, partner: MemberState, reason: &Reason) -> Properties {
    Properties::new()
        .with_message_id(id.to_string())
        .with_content_type(names::CONTENT_TYPE_XML)
        .with_header(names::HEADER_MESSAGE_ID, id.to_string())
        .with_header(names::HEADER_STAGE, super::importing::STAGE)
        .with_header(names::HEADER_REASON_CODE, reason.code.as_str())
        .with_header(names::HEADER_REASON, reason.text.as_str())
        .with_header(names::HEADER_ROUTING_KEY, names::ippc_out_key(partner))
        .with_header(super::importing::HEADER_CHANNEL, "ippc-hub")
        .with_header(
            names::HEADER_PARKED_AT,
            asw_model::document::format_timestamp(now()),
        )
}

/// Journals the move to `sent` with the hub's delivery number, retried until it holds (the hub
/// has the certificate: a journal left behind would never learn its number).
async fn journal_with_ref(inner: &Inner, id: uuid::Uuid, number: &str) {
    let backoff = Backoff::default();
    let mut failures = 0u32;
    loop {
        let n = number.to_owned();
        let done = on_journal(inner, move |_, j| {
            j.transition_with_ref(Direction::Outbound, id, State::Sent, None, &n, now())
        })
        .await;
        match done {
            Ok(Ok(t)) if t.reached() => return,
            Ok(Ok(t)) => {
                warn!(message_id = %id, outcome = ?t, "Journal refused the move to sent.");
                return;
            }
            Ok(Err(e)) if e.is_transient() => {}
            Ok(Err(e)) => {
                warn!(message_id = %id, error = %e, "Cannot journal the hub delivery number.");
                return;
            }
            Err(e) => {
                warn!(message_id = %id, error = %e, "Cannot journal the hub delivery number.");
                return;
            }
        }
        failures = failures.saturating_add(1);
        tokio::time::sleep(backoff.pause(failures)).await;
    }
}

/// The partner's certificates sent through the hub and not yet settled there: `sent`, or
/// `awaiting-ack` once `[acks]` reported them late.
fn pending(partner: MemberState, state: State) -> Filter {
    Filter {
        direction: Some(Direction::Outbound),
        kind: Some(DocumentKind::Ephyto),
        partner: Some(partner),
        state: Some(state),
        limit: Filter::DEFAULT_LIMIT,
        ..Filter::default()
    }
}

async fn track(
    channel: &IppcChannel,
    inner: &Inner,
    local: &Arc<Connection>,
    stop: &CancellationToken,
) -> Result<(), SessionEnd> {
    let mut publisher = LanePublisher::open(local.clone()).await?;
    loop {
        tokio::select! {
            () = stop.cancelled() => return Ok(()),
            () = tokio::time::sleep(channel.track_every) => {}
        }
        let partner = channel.partner;
        let listed = on_journal(inner, move |_, j| {
            let mut all = j.list(&pending(partner, State::Sent))?;
            all.extend(j.list(&pending(partner, State::AwaitingAck))?);
            Ok::<_, asw_journal::JournalError>(all)
        })
        .await;
        let sent: Vec<MessageSummary> = match listed {
            Ok(Ok(list)) => list
                .into_iter()
                .filter(|m| m.header.receiver == channel.partner && m.transport_ref.is_some())
                .collect(),
            Ok(Err(e)) => {
                warn!(error = %e, "Cannot list the certificates to track; next time.");
                continue;
            }
            Err(e) => {
                warn!(error = %e, "Cannot list the certificates to track; next time.");
                continue;
            }
        };
        for summary in sent {
            let Some(number) = summary.transport_ref.clone() else {
                continue;
            };
            let client = channel.client.clone();
            let n = number.clone();
            let answer = tokio::select! {
                r = blocking(move || client.tracking(&n)) => r,
                () = stop.cancelled() => return Ok(()),
            };
            let header = match answer {
                Ok(h) => h,
                Err(e) => {
                    channel.health.set(false, e.to_string());
                    warn!(hub_delivery_number = %number, error = %e, "Tracking failed; next time.");
                    break;
                }
            };
            let id = summary.header.message_id;
            let (to, name, reason) = match ExportOutcome::of(&header) {
                ExportOutcome::Pending => continue,
                ExportOutcome::Acknowledged { warning } => (
                    State::Acknowledged,
                    "acknowledged",
                    warning.map(|w| Reason::new(REASON_WARNING, w)),
                ),
                ExportOutcome::Rejected { tracking, reason } => (
                    State::Rejected,
                    "rejected",
                    Some(Reason::new(format!("EPHYTO-HUB-{tracking}"), reason)),
                ),
            };
            let mut outcome = Outcome::new(
                name,
                Some(id),
                Some(summary.header.kind),
                Some(channel.partner),
                now(),
            );
            outcome.reasons = reason.iter().map(OutcomeReason::from).collect();
            // Told first, then journaled: a crash between them tells it again, never loses it.
            notify(inner, &mut publisher, &outcome).await?;
            journal_moves(
                inner,
                vec![Move {
                    reason,
                    ..Move::new(Direction::Outbound, id, to)
                }],
            )
            .await;
            info!(message_id = %id, hub_delivery_number = %number, outcome = name, "Tracked.");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_bare_certificate_is_taken_out_of_the_envelope_as_signed() {
        let certificate =
            include_str!("../../../../../schemas/samples/ephyto/valid/ephyto-VN-TH.xml");
        let body = certificate
            .split_once("?>")
            .map_or(certificate, |(_, r)| r)
            .trim();
        let envelope = format!(
            "<?xml version=\"1.0\"?><asw:Message xmlns:asw=\"urn:x\"><asw:Header/><asw:Body>{body}</asw:Body><ds:Signature xmlns:ds=\"urn:ds\"/></asw:Message>"
        );
        let bare = bare_certificate(envelope.as_bytes(), &Limits::DEFAULT).expect("bare");
        assert_eq!(bare.xml, body.as_bytes());
        assert_eq!(bare.nppo_number, "VN-PC-2026-833723");
        assert_eq!(bare.certificate_type, CertificateType::Export);
        assert_eq!(bare.status, 70);
        let re_export = envelope.replace("<ram:TypeCode>851<", "<ram:TypeCode>657<");
        assert_eq!(
            bare_certificate(re_export.as_bytes(), &Limits::DEFAULT)
                .expect("bare")
                .certificate_type,
            CertificateType::ReExport
        );
        assert!(bare_certificate(b"<a:Message xmlns:a=\"urn:x\"/>", &Limits::DEFAULT).is_err());
    }

    fn quick() -> Backoff {
        Backoff {
            initial: std::time::Duration::from_millis(1),
            max: std::time::Duration::from_millis(2),
            ..Backoff::default()
        }
    }

    #[tokio::test]
    async fn a_journal_that_cannot_say_is_asked_again_until_it_answers() {
        let asked = std::cell::Cell::new(0u32);
        let mut told = Vec::new();
        let read = || {
            asked.set(asked.get() + 1);
            let n = asked.get();
            async move {
                if n < 3 {
                    Err(format!("locked {n}"))
                } else {
                    Ok(Some("hub-42".to_owned()))
                }
            }
        };
        let answer = until_read(read, &quick(), &CancellationToken::new(), |e, failures| {
            told.push((e.clone(), failures));
        })
        .await;
        assert_eq!(answer, Some(Some("hub-42".to_owned())));
        assert_eq!(asked.get(), 3);
        assert_eq!(
            told,
            vec![("locked 1".to_owned(), 1), ("locked 2".to_owned(), 2)]
        );
    }

    #[tokio::test]
    async fn a_stopping_channel_stops_asking_and_sends_nothing() {
        let stop = CancellationToken::new();
        let mut failures_seen = 0;
        let read = || async { Err::<Option<String>, _>("locked".to_owned()) };
        let answer = until_read(read, &quick(), &stop, |_, failures| {
            failures_seen = failures;
            if failures == 5 {
                stop.cancel();
            }
        })
        .await;
        assert_eq!(answer, None);
        assert_eq!(failures_seen, 5);
    }
}
