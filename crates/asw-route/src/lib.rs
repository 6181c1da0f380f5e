//! Where ASW documents go on the broker, as pure code: the names of exchanges, queues, routing
//! keys and headers (the broker contract back-offices and partner gateways rely on), and the
//! topology a hub declares in its vhost.

pub mod names;
mod topology;

pub use topology::{
    Argument, BackOffice, Binding, DEFAULT_DELIVERY_LIMIT, Exchange, ExchangeKind,
    MAX_DELIVERY_LIMIT, PARKED_DELIVERY_LIMIT, POLICY_PRIORITY, Permissions, Policy, PolicyTarget,
    Queue, RetryPolicy, TopicPermission, Topology, User,
};
