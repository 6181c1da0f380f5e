//! The AMQP plumbing the hub daemon is built on: connections with back-off, publishing with
//! broker confirms, consuming with bounded prefetch and explicit acks, declaring a hub's
//! topology, and the RabbitMQ management API for vhosts, users, permissions and policies.
//!
//! Built on lapin 4 over tokio. What lapin does not make obvious, and this crate handles:
//! - a publish is only done once confirmed; a nack, an unroutable `mandatory` message
//!   (`basic.return`) and a channel closed by the broker (e.g. a refused `user_id`) are errors
//!   ([`ConfirmingPublisher`]);
//! - an acknowledgement on a closed channel is an error, not a silent `false` ([`Acker`]);
//! - names longer than 255 bytes are errors, not panics;
//! - an IPv6 host in the URL is used as given (amq-protocol-uri would swap in `localhost`).
//!
//! The daemon's loop: ack the input only once the output is confirmed.
//!
//! ```no_run
//! use asw_amqp::{Backoff, ConfirmingPublisher, Consumer, Properties, connect_with_backoff};
//!
//! # async fn run() -> Result<(), asw_amqp::AmqpError> {
//! let url = "amqp://guest:guest@127.0.0.1:5672/asw-vn";
//! let connection = connect_with_backoff(url, "aswhub VN", &Backoff::default()).await?;
//! let mut consumer = Consumer::start(connection.open_channel().await?, "asw.hub.outbound", 100, "hub").await?;
//! let mut publisher = ConfirmingPublisher::new(connection.open_channel().await?).await?;
//! while let Some(delivery) = consumer.next().await {
//!     let delivery = delivery?;
//!     let signed = delivery.message.body.clone(); // validate and sign here
//!     let properties = Properties::new().with_content_type("application/xml");
//!     match publisher.publish("asw.partner.out", "TH", &signed, &properties).await {
//!         Ok(()) => delivery.acker.ack().await?,
//!         Err(error) if error.is_transient() => delivery.acker.nack(true).await?,
//!         Err(_) => delivery.acker.reject(false).await?, // park it with a reason instead
//!     }
//! }
//! # Ok(())
//! # }
//! ```

mod address;
mod apply;
mod connection;
mod consumer;
mod declare;
mod error;
mod management;
mod properties;
mod publisher;

pub use address::{AmqpUrl, redact, with_vhost};
pub use apply::{apply, apply_tls};
pub use connection::{
    Backoff, CONNECT_TIMEOUT, Channel, Connection, RPC_TIMEOUT, connect,
    connect_any_tls_with_backoff, connect_any_with_backoff, connect_tls, connect_with_backoff,
    error_chain,
};
pub use consumer::{Acker, Consumer, Delivery, Message};
pub use declare::{QueueCounts, declare, queue_counts, ready_messages};
pub use error::AmqpError;
pub use management::{
    ClientProperties, ConnectionInfo, MANAGEMENT_TIMEOUT, Management, PolicyInfo, QueueInfo,
};
pub use properties::{HeaderValue, Headers, MAX_HEADER_BYTES, Properties};
pub use publisher::{CONFIRM_TIMEOUT, ConfirmingPublisher, Outgoing, PublishError};

pub use asw_tls::{ClientTls, TlsError, TlsFiles};
