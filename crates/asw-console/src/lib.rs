//! The operator console of aswhub: a JSON API (and, on top of it, pages) served by the hub's
//! own HTTP server beside `/metrics`, over the hub's journal, partner channels and trust store.
//! Also the home of the journal queries `aswctl` shares with it ([`query`], [`views`]).
//!
//! The daemon builds a [`Console`] from its running hub ([`Console::of_hub`]) and adds
//! [`routes`] to the hub's server; tests build one over any journal ([`Console::new`]).
//! Everything but `/login` asks for a session ([`auth`]).

pub mod actions;
pub mod api;
pub mod audit;
pub mod auth;
pub mod pages;
pub mod parking;
pub mod query;
pub mod settle;
pub mod users;
pub mod views;

use std::sync::Arc;

use asw_gateway::channel::ChannelStatus;
use asw_gateway::config::ConsoleConfig;
use asw_gateway::hub::Hub;
use asw_journal::Journal;
use asw_model::MemberState;
use asw_sign::TrustSnapshot;

pub use audit::{AuditEntry, AuditLog};
pub use auth::Sessions;

/// The channels' health now.
pub type ChannelsFn = dyn Fn() -> Vec<ChannelStatus> + Send + Sync;
/// The trust store now.
pub type TrustFn = dyn Fn() -> Arc<TrustSnapshot> + Send + Sync;
/// The hub's broker session now.
pub type BrokerSessionFn = dyn Fn() -> asw_gateway::metrics::BrokerSession + Send + Sync;

/// What the console reads and acts on.
pub struct Console {
    /// The hub's journal.
    pub journal: Arc<dyn Journal>,
    /// The member state the hub serves.
    pub country: MemberState,
    /// The partner member states.
    pub partners: Vec<MemberState>,
    /// The certificates expiring within this many days are flagged.
    pub expiry_warning_days: u32,
    /// The partner channels' health.
    pub channels: Box<ChannelsFn>,
    /// The trust store.
    pub trust: Box<TrustFn>,
    /// Who did what from the console.
    pub audit: AuditLog,
    /// Who is logged in.
    pub sessions: Sessions,
    /// The hub's broker, for replay and discard; `None`: those actions answer 503.
    pub broker: Option<actions::BrokerAccess>,
    /// The hub's broker session as its metrics keep it; `None`: a console without a hub.
    pub broker_session: Option<Box<BrokerSessionFn>>,
}

impl std::fmt::Debug for Console {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Console")
            .field("country", &self.country)
            .field("partners", &self.partners)
            .finish_non_exhaustive()
    }
}

impl Console {
    /// A console over the parts given.
    pub fn new(
        journal: Arc<dyn Journal>,
        country: MemberState,
        partners: Vec<MemberState>,
        channels: Box<ChannelsFn>,
        trust: Box<TrustFn>,
        audit: AuditLog,
        sessions: Sessions,
    ) -> Console {
        Console {
            journal,
            country,
            partners,
            expiry_warning_days: asw_sign::DEFAULT_EXPIRY_WARNING_DAYS,
            channels,
            trust,
            audit,
            sessions,
            broker: None,
            broker_session: None,
        }
    }

    /// The console of a running hub, as its `[console]` section says.
    pub fn of_hub(hub: &Arc<Hub>, console: &ConsoleConfig) -> Console {
        let config = hub.config();
        let audit = AuditLog::new(&console.audit_log);
        let sessions = Sessions::new(
            &console.users,
            console.session,
            config.metrics.tls.is_some(),
        );
        let (channels, trust, metrics) = (hub.clone(), hub.clone(), hub.metrics().clone());
        Console {
            journal: hub.journal(),
            country: config.country,
            partners: config.partner_states(),
            expiry_warning_days: config.signing.expiry_warning_days,
            channels: Box::new(move || channels.channels()),
            trust: Box::new(move || trust.trust()),
            audit,
            sessions,
            broker: Some(actions::BrokerAccess {
                broker: config.broker.clone(),
                limits: config.limits.document,
            }),
            broker_session: Some(Box::new(move || metrics.broker_session())),
        }
    }
}

/// All the console's routes: `/login` and `/logout` open, the API and the pages behind a
/// session.
pub fn routes(console: Arc<Console>) -> axum::Router {
    let api = api::routes(console.clone())
        .merge(pages::routes(console.clone()))
        .layer(axum::middleware::from_fn_with_state(
            console.clone(),
            auth::require_session,
        ));
    auth::routes(console).merge(api)
}
