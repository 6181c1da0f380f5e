//! The IPPC ePhyto Hub as a partner channel, import side: every `import_every`, one
//! [`Importer::poll`] for our country with the journal's settlements ([`JournalSettled`]),
//! delivering each certificate to `asw.inbound` as `ephyto.<from>` (confirmed before the hub is
//! told) and parking what is refused in `asw.parked` (stage `ippc`, the importer's reason code).
//!
//! A delivered certificate carries `x-asw-channel: ippc-hub`, `x-asw-hub-delivery-number`, a
//! message id derived from the delivery number (UUID v5, the same if the hub lists it again) and,
//! for a readable but invalid certificate, its problems in `x-asw-warnings`.
//!
//! A delivered certificate is journaled as an inbound message like any other (kind `ephyto`,
//! from the exporting country to us, that message id, the certificate's bytes as pulled), with
//! the hub delivery number as its `transport_ref` and, when delivered with warnings, them as its
//! reason (`EPHYTO-WARNINGS`): recorded `verified` before the publish, moved to `delivered` once
//! the broker confirmed it. An import already journaled `delivered` (the hub lists it again and
//! its settlement was lost) is not published again; the settlement by hub delivery number
//! guards the rest.
//!
//! A parked import an operator replays comes back through `asw.ippc.in` (with its delivery
//! number and `x-asw-routing-key: ephyto.<from>`): it is read and validated again, as a poll
//! would, and delivered (journaled as above) or parked again. The IPPC hub is not told again:
//! it was told when the import was first refused.

use std::sync::Arc;

use asw_amqp::{Backoff, Connection, Consumer, Delivery, HeaderValue, Properties};
use asw_journal::{Direction, Journal, JournalError, Reason, Recorded, State};
use asw_model::{DocumentKind, Header, MemberState};
use asw_route::names;
use tokio_util::sync::CancellationToken;
use tracing::{info, warn};

use super::client::{EnvelopeHeader, HubClient, Pulled};
use super::import::{Import, ImportOutcome, ImportSink, Importer, Refused, clip};
use super::settled::JournalSettled;
use crate::channel::next_delivery;
use crate::hub::{Inner, SessionEnd};
use crate::publish::LanePublisher;

/// Header of an import: the channel it came through (`ippc-hub`).
pub const HEADER_CHANNEL: &str = "x-asw-channel";
/// Header of an import: the IPPC hub's delivery number.
pub const HEADER_HUB_DELIVERY_NUMBER: &str = names::HEADER_HUB_DELIVERY_NUMBER;
/// Header of an import delivered with schema problems: them, `rule line N: message; ...`.
pub const HEADER_WARNINGS: &str = "x-asw-warnings";
/// Stage of a parked import.
pub const STAGE: &str = names::stage::IPPC;
/// Reason code journaled with an import delivered with schema problems (the text: them).
pub const REASON_WARNINGS: &str = "EPHYTO-WARNINGS";
/// Tries at a journal write of an import before the poll leaves it to the next one.
const JOURNAL_TRIES: u32 = 5;

/// The message id of an import: UUID v5 of `ippc:<delivery number>`.
pub fn import_message_id(number: &str) -> uuid::Uuid {
    uuid::Uuid::new_v5(
        &uuid::Uuid::NAMESPACE_URL,
        format!("ippc:{number}").as_bytes(),
    )
}

/// The journal header of an import: kind `ephyto` from `from` to `us`, under
/// [`import_message_id`].
pub fn import_header(import: &Import, from: MemberState, us: MemberState) -> Header {
    Header {
        message_id: import_message_id(&import.delivery_number),
        correlation_id: None,
        sender: from,
        receiver: us,
        kind: DocumentKind::Ephyto,
        version: DocumentKind::Ephyto.version().to_owned(),
        created_at: crate::hub::now(),
    }
}

/// The text of an import's problems, `rule line N: message; ...`.
fn warnings_text(import: &Import) -> String {
    import
        .warnings
        .iter()
        .map(|p| format!("{} line {}: {}", p.rule, p.line, p.message))
        .collect::<Vec<_>>()
        .join("; ")
}

/// Runs a journal write, again with back-off while it fails transiently (at most
/// [`JOURNAL_TRIES`] times); the error chain otherwise.
fn journaled<T>(mut write: impl FnMut() -> Result<T, JournalError>) -> Result<T, String> {
    let backoff = Backoff::default();
    let mut tries = 0u32;
    loop {
        tries += 1;
        match write() {
            Ok(t) => return Ok(t),
            Err(e) if e.is_transient() && tries < JOURNAL_TRIES => {
                std::thread::sleep(backoff.pause(tries));
            }
            Err(e) => return Err(format!("journal: {e}")),
        }
    }
}

/// Publishes from the importer's thread, blocking on the runtime, and journals what it delivers.
struct Sink {
    handle: tokio::runtime::Handle,
    publisher: LanePublisher,
    journal: Arc<dyn Journal>,
    us: MemberState,
}

impl Sink {
    /// Journals the import `verified` unless it is journaled already; true if it was delivered
    /// already (nothing more to do).
    fn journal_verified(&self, header: &Header, import: &Import) -> Result<bool, String> {
        let id = header.message_id;
        if let Some(record) = journaled(|| self.journal.get(Direction::Inbound, id))? {
            return Ok(record.summary.state == State::Delivered);
        }
        let at = header.created_at;
        match journaled(|| {
            self.journal.record(
                Direction::Inbound,
                header,
                &import.certificate,
                State::Verified,
                at,
            )
        })? {
            Recorded::New => Ok(false),
            // Another hub sharing the journal pulled it in the same instant.
            Recorded::Existing(record) => Ok(record.summary.state == State::Delivered),
            Recorded::Conflict(c) => Ok(c.existing.summary.state == State::Delivered),
        }
    }

    /// Journals the import `delivered` with its hub delivery number and warnings.
    fn journal_delivered(&self, id: uuid::Uuid, import: &Import) -> Result<(), String> {
        let reason = (!import.warnings.is_empty()).then(|| {
            Reason::new(
                REASON_WARNINGS,
                crate::publish::bounded(&warnings_text(import), crate::publish::MAX_REASON_BYTES),
            )
        });
        let moved = journaled(|| {
            self.journal.transition_with_ref(
                Direction::Inbound,
                id,
                State::Delivered,
                reason.as_ref(),
                &import.delivery_number,
                crate::hub::now(),
            )
        })?;
        if !moved.reached() {
            warn!(message_id = %id, outcome = ?moved, "Journal refused the import's move to delivered.");
        }
        Ok(())
    }
}

impl ImportSink for Sink {
    fn deliver(&mut self, import: &Import) -> Result<(), String> {
        let from = MemberState::from_alpha2(&import.from)
            .ok_or_else(|| format!("{} is not a member state", import.from))?;
        let header = import_header(import, from, self.us);
        if self.journal_verified(&header, import)? {
            info!(hub_delivery_number = %import.delivery_number, "Import delivered before; not again.");
            return Ok(());
        }
        let message_id = header.message_id;
        let id = message_id.to_string();
        let mut properties = Properties::new()
            .with_message_id(id.clone())
            .with_content_type(names::CONTENT_TYPE_XML)
            .with_header(names::HEADER_MESSAGE_ID, id)
            .with_header(HEADER_CHANNEL, "ippc-hub")
            .with_header(HEADER_HUB_DELIVERY_NUMBER, import.delivery_number.as_str());
        if !import.warnings.is_empty() {
            let text = warnings_text(import);
            properties = properties.with_header(
                HEADER_WARNINGS,
                crate::publish::bounded(&text, crate::publish::MAX_REASON_BYTES),
            );
        }
        let key = names::inbound_key(DocumentKind::Ephyto, from);
        self.handle
            .block_on(self.publisher.publish(
                names::INBOUND_EXCHANGE,
                &key,
                &import.certificate,
                &properties,
            ))
            .map_err(|e| e.to_string())?;
        // Delivered: a failure to journal it now still settles it (its settlement guards a
        // second delivery), so it is logged, not returned.
        if let Err(e) = self.journal_delivered(message_id, import) {
            warn!(message_id = %message_id, error = %e, "Cannot journal the import delivered.");
        }
        Ok(())
    }

    fn park(&mut self, refused: &Refused) -> Result<(), String> {
        let id = import_message_id(&refused.number).to_string();
        let properties = Properties::new()
            .with_message_id(id.clone())
            .with_content_type("text/plain")
            .with_header(names::HEADER_MESSAGE_ID, id)
            // Where a replay comes from: `asw.ippc.in` reads the sender here.
            .with_header(
                names::HEADER_ROUTING_KEY,
                format!("{}.{}", DocumentKind::Ephyto.as_str(), refused.from),
            )
            .with_header(names::HEADER_STAGE, STAGE)
            .with_header(names::HEADER_REASON_CODE, refused.reason)
            .with_header(
                names::HEADER_REASON,
                crate::publish::bounded(&refused.message, crate::publish::MAX_REASON_BYTES),
            )
            .with_header(HEADER_CHANNEL, "ippc-hub")
            .with_header(HEADER_HUB_DELIVERY_NUMBER, refused.number.as_str())
            .with_header(
                names::HEADER_PARKED_AT,
                asw_model::document::format_timestamp(crate::hub::now()),
            );
        self.handle
            .block_on(self.publisher.publish(
                "",
                names::PARKED_QUEUE,
                refused.content.as_bytes(),
                &properties,
            ))
            .map_err(|e| e.to_string())
    }
}

/// Polls the hub every `import_every` until `stop`; a failed local broker ends the session.
pub(crate) async fn run(
    inner: Arc<Inner>,
    client: Arc<HubClient>,
    local: Arc<Connection>,
    stop: CancellationToken,
) -> Result<(), SessionEnd> {
    let Some(hub) = inner.config.ephyto_hub.clone() else {
        return Ok(());
    };
    let partners: Vec<String> = inner
        .config
        .ippc_senders()
        .iter()
        .map(|p| p.code().to_owned())
        .collect();
    let us = inner.config.country;
    let country = us.code().to_owned();
    let limits = inner.config.limits.document;
    let mut publisher = Some(LanePublisher::open(local.clone()).await?);
    let mut replays = Consumer::start(
        local.open_channel().await?,
        names::IPPC_IN_QUEUE,
        1,
        "aswhub-ippc-import",
    )
    .await?;
    let mut next_poll = tokio::time::Instant::now() + hub.import_every;
    loop {
        let replayed = tokio::select! {
            () = tokio::time::sleep_until(next_poll) => None,
            next = next_delivery(&mut replays, names::IPPC_IN_QUEUE, &stop) => match next? {
                Some(d) => Some(d),
                None => return Ok(()),
            },
        };
        if let Some(delivery) = replayed {
            let Some(taken) = publisher.take() else {
                return Ok(());
            };
            let again = Again {
                us,
                partners: partners.clone(),
                strict: hub.strict,
                limits,
            };
            publisher = Some(replay(&inner, &local, taken, delivery, again).await?);
            continue;
        }
        next_poll = tokio::time::Instant::now() + hub.import_every;
        let Some(taken) = publisher.take() else {
            return Ok(());
        };
        let handle = tokio::runtime::Handle::current();
        let (client, journal) = (client.clone(), inner.journal.clone());
        let (country, partners) = (country.clone(), partners.clone());
        let strict = hub.strict;
        let polled = tokio::task::spawn_blocking(move || {
            let mut sink = Sink {
                handle,
                publisher: taken,
                journal: journal.clone(),
                us,
            };
            let report = Importer::new(&country, partners, strict, limits)
                .map(|mut importer| {
                    importer.poll(&client, &mut JournalSettled::new(journal), &mut sink)
                })
                .map_err(|e| e.to_string());
            (sink.publisher, report)
        })
        .await;
        let Ok((back, report)) = polled else {
            warn!("The import poll panicked; next time.");
            publisher = Some(LanePublisher::open(local.clone()).await?);
            continue;
        };
        publisher = Some(back);
        match report {
            Err(e) => warn!(error = %e, "Cannot set up the importer."),
            Ok(report) => {
                for outcome in &report.outcomes {
                    match outcome {
                        ImportOutcome::NotDelivered { number, error } => {
                            warn!(hub_delivery_number = %number, %error, "Import not delivered; next poll.");
                        }
                        other => info!(outcome = ?other, "Imported from the ePhyto hub."),
                    }
                }
                if let Some(e) = report.error {
                    warn!(error = %e, "The ePhyto hub failed during an import poll; next time.");
                }
            }
        }
    }
}

/// What reading a replayed import again needs: the importer's settings.
struct Again {
    us: MemberState,
    partners: Vec<String>,
    strict: bool,
    limits: asw_model::xml::Limits,
}

/// Reads an import an operator replayed (`asw.ippc.in`) again and delivers or parks it as a
/// poll would, without telling the IPPC hub; acknowledged once that is confirmed, returned to
/// the queue when it is not (its delivery limit parks one that keeps failing).
async fn replay(
    inner: &Inner,
    local: &Arc<Connection>,
    publisher: LanePublisher,
    delivery: Delivery,
    again: Again,
) -> Result<LanePublisher, SessionEnd> {
    let Delivery { message, acker } = delivery;
    let text = |name: &str| {
        message
            .properties
            .header(name)
            .and_then(HeaderValue::as_str)
            .map(str::to_owned)
    };
    let number = text(names::HEADER_HUB_DELIVERY_NUMBER);
    let from =
        text(names::HEADER_ROUTING_KEY).and_then(|k| k.strip_prefix("ephyto.").map(str::to_owned));
    let (Some(number), Some(from)) = (number, from) else {
        warn!("A replayed import without its delivery number or sender; dropped.");
        acker.ack().await?;
        return Ok(publisher);
    };
    let handle = tokio::runtime::Handle::current();
    let journal = inner.journal.clone();
    let content = String::from_utf8_lossy(&message.body).into_owned();
    let joined = tokio::task::spawn_blocking(move || {
        let Again {
            us,
            partners,
            strict,
            limits,
        } = again;
        let mut sink = Sink {
            handle,
            publisher,
            journal,
            us,
        };
        let country = us.code().to_owned();
        let done = Importer::new(&country, partners, strict, limits)
            .map_err(|e| e.to_string())
            .and_then(|mut importer| {
                let pulled = Pulled {
                    header: EnvelopeHeader {
                        from: from.clone(),
                        to: country.clone(),
                        delivery_number: number.clone(),
                        ..EnvelopeHeader::default()
                    },
                    content,
                };
                match importer.read(&pulled) {
                    Ok((certificate, warnings)) => sink
                        .deliver(&Import {
                            delivery_number: number.clone(),
                            from,
                            nppo_number: String::new(),
                            certificate,
                            warnings,
                        })
                        .map(|()| "delivered"),
                    Err((reason, message)) => sink
                        .park(&Refused {
                            number: number.clone(),
                            from,
                            reason,
                            message: clip(message),
                            content: pulled.content,
                        })
                        .map(|()| "parked again"),
                }
            });
        (sink.publisher, number, done)
    })
    .await;
    let Ok((publisher, number, done)) = joined else {
        warn!("Reading a replayed import panicked; returned to its queue.");
        acker.nack(true).await?;
        return Ok(LanePublisher::open(local.clone()).await?);
    };
    match done {
        Ok(what) => {
            info!(hub_delivery_number = %number, outcome = what, "Replayed import read again.");
            acker.ack().await?;
        }
        Err(error) => {
            warn!(hub_delivery_number = %number, %error, "A replayed import was not handed over; returned to its queue.");
            acker.nack(true).await?;
        }
    }
    Ok(publisher)
}
