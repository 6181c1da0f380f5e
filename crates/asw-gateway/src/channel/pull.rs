//! The pull channel: the partner's gateway reads `asw.partner.out.<CC>` from our broker and
//! publishes its documents into our `asw.partner.in` itself, so the hub carries nothing. The
//! channel watches whether the partner is reading: up while its queue has a consumer.

use std::sync::Arc;
use std::time::Duration;

use asw_amqp::Connection;
use asw_model::MemberState;
use asw_route::names;
use futures_util::FutureExt;
use futures_util::future::BoxFuture;
use tokio_util::sync::CancellationToken;

use super::{Health, PartnerChannel};
use crate::hub::{Inner, SessionEnd};

/// How often the pull channel looks at its partner's queue.
pub const CHECK_EVERY: Duration = Duration::from_secs(10);

/// A partner that pulls.
#[derive(Debug)]
pub(crate) struct Pull {
    partner: MemberState,
    health: Health,
}

impl Pull {
    /// The pull channel of `partner`.
    pub(crate) fn new(partner: MemberState) -> Pull {
        Pull {
            partner,
            health: Health::new("pull"),
        }
    }
}

impl PartnerChannel for Pull {
    fn partner(&self) -> MemberState {
        self.partner
    }

    fn health(&self) -> &Health {
        &self.health
    }

    fn run(
        self: Arc<Self>,
        _inner: Arc<Inner>,
        local: Arc<Connection>,
        stop: CancellationToken,
    ) -> BoxFuture<'static, Result<(), SessionEnd>> {
        async move {
            let queue = names::partner_out_queue(self.partner);
            loop {
                // A channel of its own each time: a passive declare of a missing queue closes it.
                let counted = match local.open_channel().await {
                    Ok(channel) => {
                        let counts = asw_amqp::queue_counts(&channel, &queue).await;
                        let _ = channel.close().await;
                        counts
                    }
                    Err(e) => return Err(e.into()),
                };
                match counted {
                    Ok(c) if c.consumers > 0 => self.health.set(
                        true,
                        format!(
                            "{} consumer(s), {} document(s) waiting",
                            c.consumers, c.ready
                        ),
                    ),
                    Ok(c) => self.health.set(
                        false,
                        format!("nobody reads {queue}; {} document(s) waiting", c.ready),
                    ),
                    Err(e) => self
                        .health
                        .set(false, format!("cannot look at {queue}: {e}")),
                }
                tokio::select! {
                    () = stop.cancelled() => return Ok(()),
                    () = tokio::time::sleep(CHECK_EVERY) => {}
                }
            }
        }
        .boxed()
    }
}
