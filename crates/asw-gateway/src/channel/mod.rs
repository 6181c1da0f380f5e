//! Partner channels: how signed documents reach a partner and how a partner's documents reach
//! the inbound pipeline, one implementation per way of talking to a partner, behind one trait.
//!
//! Whatever the channel, the outbound pipeline publishes a partner's signed documents to
//! `asw.partner.out` (key = the partner's code), so they wait in `asw.partner.out.<CC>` until
//! the channel has carried them; and the inbound pipeline takes the partner's documents from
//! `asw.hub.inbound`. A channel only moves documents between those queues and the partner, with
//! bounded prefetch (back-pressure: nothing is taken that cannot be carried now), and reports
//! its health. A new channel (a SOAP hub, AS4) is a new module here and its configuration.
//!
//! - [`pull`]: the partner's gateway connects to our broker as `partner-<CC>`, reads
//!   `asw.partner.out.<CC>` and publishes into `asw.partner.in` itself. Up while it consumes.
//! - [`push`]: our hub connects to the partner's broker and publishes there what waits in
//!   `asw.partner.out.<CC>`. Up while that connection carries documents.
//! - [`ippc`]: the IPPC ePhyto Hub (SOAP over HTTPS) for the kinds the partners file sends
//!   through it: the outbound pipeline publishes those with key `<CC>.ippc`, so they wait in
//!   `asw.ippc.out.<CC>` for the partner's IPPC channel ([`ippc::export`]); imports are polled
//!   by one task of the hub ([`ippc::importing`]).

pub mod ippc;
pub mod pull;
pub mod push;

use std::sync::{Arc, Mutex};

use asw_amqp::{Connection, Consumer, Delivery};
use asw_model::MemberState;
use futures_util::future::BoxFuture;
use time::OffsetDateTime;
use tokio_util::sync::CancellationToken;

use crate::config::{LinkMode, PartnerConfig};
use crate::hub::{Inner, SessionEnd};

/// One way of exchanging documents with one partner.
pub(crate) trait PartnerChannel: Send + Sync {
    /// The partner.
    fn partner(&self) -> MemberState;

    /// Its health, as the channel last saw it.
    fn health(&self) -> &Health;

    /// Carries documents for one broker session of the hub (`local`): until `stop`, or until
    /// the local broker fails (`Err`, which ends the session). A partner that is down or
    /// refuses is the channel's own business: it waits and retries, and documents wait in
    /// their queue.
    fn run(
        self: Arc<Self>,
        inner: Arc<Inner>,
        local: Arc<Connection>,
        stop: CancellationToken,
    ) -> BoxFuture<'static, Result<(), SessionEnd>>;
}

/// The channel of a configured partner.
pub(crate) fn for_partner(
    partner: MemberState,
    config: &PartnerConfig,
) -> Result<Arc<dyn PartnerChannel>, asw_tls::TlsError> {
    Ok(match config.link {
        LinkMode::Pull => Arc::new(pull::Pull::new(partner)),
        LinkMode::Push => {
            let tls = config.tls.load(&format!("partners.{}", partner.code()))?;
            Arc::new(push::Push::new(partner, config.urls.clone(), tls))
        }
    })
}

/// The IPPC ePhyto Hub client of a configuration, when `[ephyto_hub]` is set and some
/// configured partner sends or receives a kind through the hub.
pub(crate) fn ippc_client(
    config: &crate::config::HubConfig,
) -> Result<Option<Arc<ippc::HubClient>>, crate::hub::HubError> {
    let Some(hub) = &config.ephyto_hub else {
        return Ok(None);
    };
    if config.ippc_partners().is_empty() && config.ippc_senders().is_empty() {
        return Ok(None);
    }
    let tls = hub.tls.load("ephyto_hub")?;
    ippc::HubClient::new(&hub.url, &tls)
        .map(|c| Some(Arc::new(c)))
        .map_err(|e| crate::hub::HubError::EphytoHub(e.to_string()))
}

/// The IPPC ePhyto Hub channels of a configuration: one per partner that receives some kind
/// from us through the hub (`[ephyto_hub]` and the partners file), sharing one client.
pub(crate) fn ippc_channels(
    config: &crate::config::HubConfig,
    client: Option<&Arc<ippc::HubClient>>,
) -> Vec<Arc<dyn PartnerChannel>> {
    let (Some(hub), Some(client)) = (&config.ephyto_hub, client) else {
        return Vec::new();
    };
    config
        .ippc_partners()
        .into_iter()
        .map(|partner| {
            Arc::new(ippc::export::IppcChannel::new(
                partner,
                client.clone(),
                hub.track_every,
            )) as Arc<dyn PartnerChannel>
        })
        .collect()
}

/// The next delivery a channel takes from `queue` (consumed by `consumer` on the local broker),
/// or `None` once `stop` comes first, the consumer then cancelled. A consumer that fails, or
/// that the broker cancelled, ends the session (`Err`).
pub(crate) async fn next_delivery(
    consumer: &mut Consumer,
    queue: &str,
    stop: &CancellationToken,
) -> Result<Option<Delivery>, SessionEnd> {
    tokio::select! {
        () = stop.cancelled() => {
            let _ = consumer.cancel().await;
            Ok(None)
        }
        next = consumer.next() => match next {
            Some(Ok(d)) => Ok(Some(d)),
            Some(Err(e)) => Err(e.into()),
            None => Err(SessionEnd::Cancelled(queue.to_owned())),
        },
    }
}

/// Whether a channel works, and since when.
#[derive(Debug)]
pub struct Health {
    channel: &'static str,
    state: Mutex<HealthState>,
}

#[derive(Debug, Clone)]
struct HealthState {
    up: Option<bool>,
    since: OffsetDateTime,
    detail: String,
}

/// A channel's health at one moment, for metrics, logs and the console.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChannelStatus {
    /// The partner.
    pub partner: MemberState,
    /// `pull`, `push` or `ippc-hub`.
    pub channel: &'static str,
    /// `Some(true)` up, `Some(false)` down, `None` not known yet.
    pub up: Option<bool>,
    /// Since when it is so.
    pub since: OffsetDateTime,
    /// What the channel last saw (a consumer count, the partner broker's error).
    pub detail: String,
}

impl Health {
    /// Not known yet, for channel `channel`.
    pub(crate) fn new(channel: &'static str) -> Health {
        Health {
            channel,
            state: Mutex::new(HealthState {
                up: None,
                since: OffsetDateTime::now_utc(),
                detail: "not checked yet".into(),
            }),
        }
    }

    /// Records what the channel saw; `since` moves only when up or down changes.
    pub(crate) fn set(&self, up: bool, detail: impl Into<String>) {
        let mut state = self
            .state
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if state.up != Some(up) {
            state.up = Some(up);
            state.since = OffsetDateTime::now_utc();
        }
        state.detail = detail.into();
    }

    /// The status of `partner`'s channel now.
    pub(crate) fn status(&self, partner: MemberState) -> ChannelStatus {
        let state = self
            .state
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clone();
        ChannelStatus {
            partner,
            channel: self.channel,
            up: state.up,
            since: state.since,
            detail: state.detail,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn health_keeps_since_while_the_state_stays() {
        let th = MemberState::from_alpha2("TH").expect("TH");
        let health = Health::new("push");
        assert_eq!(health.status(th).up, None);
        health.set(false, "refused");
        let down = health.status(th);
        assert_eq!((down.up, down.detail.as_str()), (Some(false), "refused"));
        std::thread::sleep(std::time::Duration::from_millis(5));
        health.set(false, "refused again");
        let still = health.status(th);
        assert_eq!(
            still.since, down.since,
            "still down since the first failure"
        );
        assert_eq!(still.detail, "refused again");
        health.set(true, "connected");
        let up = health.status(th);
        assert_eq!(up.up, Some(true));
        assert!(up.since > down.since);
        assert_eq!(up.channel, "push");
    }
}
