//! The IPPC ePhyto Hub as a partner channel, import side: every `import_every`, one
//! [`Importer::poll`] for our country with the journal's settlements ([`JournalSettled`]),
//! delivering each certificate to `asw.inbound` as `ephyto.<from>` (confirmed before the hub is
//! told) and parking what is refused in `asw.parked` (stage `ippc`, the importer's reason code).
//!
//! A delivered certificate carries `x-asw-channel: ippc-hub`, `x-asw-hub-delivery-number`, a
//! message id derived from the delivery number (UUID v5, the same if the hub lists it again) and,
//! for a readable but invalid certificate, its problems in `x-asw-warnings`. Imports are not
//! journaled as inbound messages (they have no ASW envelope); their settlements are.

use std::sync::Arc;

use asw_amqp::{Connection, Properties};
use asw_model::MemberState;
use asw_route::names;
use tokio_util::sync::CancellationToken;
use tracing::{info, warn};

use super::client::HubClient;
use super::import::{Import, ImportOutcome, ImportSink, Importer, Refused};
use super::settled::JournalSettled;
use crate::hub::{Inner, SessionEnd};
use crate::publish::LanePublisher;

/// Header of an import: the channel it came through (`ippc-hub`).
pub const HEADER_CHANNEL: &str = "x-asw-channel";
/// Header of an import: the IPPC hub's delivery number.
pub const HEADER_HUB_DELIVERY_NUMBER: &str = "x-asw-hub-delivery-number";
/// Header of an import delivered with schema problems: them, `rule line N: message; ...`.
pub const HEADER_WARNINGS: &str = "x-asw-warnings";
/// Stage of a parked import.
pub const STAGE: &str = "ippc";

/// The message id of an import: UUID v5 of `ippc:<delivery number>`.
pub fn import_message_id(number: &str) -> uuid::Uuid {
    uuid::Uuid::new_v5(
        &uuid::Uuid::NAMESPACE_URL,
        format!("ippc:{number}").as_bytes(),
    )
}

/// Publishes from the importer's thread, blocking on the runtime.
struct Sink {
    handle: tokio::runtime::Handle,
    publisher: LanePublisher,
}

impl ImportSink for Sink {
    fn deliver(&mut self, import: &Import) -> Result<(), String> {
        let from = MemberState::from_alpha2(&import.from)
            .ok_or_else(|| format!("{} is not a member state", import.from))?;
        let id = import_message_id(&import.delivery_number).to_string();
        let mut properties = Properties::new()
            .with_message_id(id.clone())
            .with_content_type(names::CONTENT_TYPE_XML)
            .with_header(names::HEADER_MESSAGE_ID, id)
            .with_header(HEADER_CHANNEL, "ippc-hub")
            .with_header(HEADER_HUB_DELIVERY_NUMBER, import.delivery_number.as_str());
        if !import.warnings.is_empty() {
            let text = import
                .warnings
                .iter()
                .map(|p| format!("{} line {}: {}", p.rule, p.line, p.message))
                .collect::<Vec<_>>()
                .join("; ");
            properties = properties.with_header(
                HEADER_WARNINGS,
                crate::publish::bounded(&text, crate::publish::MAX_REASON_BYTES),
            );
        }
        let key = names::inbound_key(asw_model::DocumentKind::Ephyto, from);
        self.handle
            .block_on(self.publisher.publish(
                names::INBOUND_EXCHANGE,
                &key,
                &import.certificate,
                &properties,
            ))
            .map_err(|e| e.to_string())
    }

    fn park(&mut self, refused: &Refused) -> Result<(), String> {
        let properties = Properties::new()
            .with_content_type("text/plain")
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
    let country = inner.config.country.code().to_owned();
    let limits = inner.config.limits.document;
    let mut publisher = Some(LanePublisher::open(local.clone()).await?);
    loop {
        tokio::select! {
            () = stop.cancelled() => return Ok(()),
            () = tokio::time::sleep(hub.import_every) => {}
        }
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
