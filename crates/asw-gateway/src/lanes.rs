//! A pipeline's lanes: one stage queue consumed with a bounded prefetch, its deliveries handed
//! to `[limits] lanes` lanes, each with its own confirming channel; and how one delivery is
//! settled (`settle`, the one place): acknowledged once everything it led to was confirmed or it
//! was parked, unacknowledged only when the broker session failed.

use std::panic::AssertUnwindSafe;
use std::sync::Arc;

use asw_amqp::{AmqpError, Connection, Consumer, Delivery};
use asw_model::Header;
use asw_route::names;
use futures_util::FutureExt;
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;
use tracing::{Instrument, info_span};

use crate::hub::{Inner, SessionEnd};
use crate::incoming::Incoming;
use crate::metrics;
use crate::park::{Parked, park_failure, park_refused};
use crate::pool::panic_text;
use crate::process::{Refusal, panicked};
use crate::publish::{Failure, LanePublisher};

/// The two pipelines of a hub.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Pipeline {
    /// Back-office documents going out (`asw.hub.outbound`).
    Outbound,
    /// Partner documents coming in (`asw.hub.inbound`).
    Inbound,
}

impl Pipeline {
    fn metric(self) -> metrics::Pipeline {
        match self {
            Pipeline::Outbound => metrics::Pipeline::Outbound,
            Pipeline::Inbound => metrics::Pipeline::Inbound,
        }
    }

    fn queue(self) -> &'static str {
        match self {
            Pipeline::Outbound => names::HUB_OUTBOUND_QUEUE,
            Pipeline::Inbound => names::HUB_INBOUND_QUEUE,
        }
    }

    fn stage(self) -> &'static str {
        match self {
            Pipeline::Outbound => names::stage::OUTBOUND,
            Pipeline::Inbound => names::stage::INBOUND,
        }
    }
}

/// Consumes one stage queue with `[limits] lanes` deliveries in progress at a time.
pub(crate) async fn consume(
    inner: Arc<Inner>,
    connection: Arc<Connection>,
    pipeline: Pipeline,
    stop: CancellationToken,
) -> Result<(), SessionEnd> {
    let tag = format!("aswhub-{}-{}", inner.config.country, pipeline.stage());
    // The lanes' channels first, then the consumer; all of it given up at once when the
    // session ends meanwhile (64 slow but answered calls could otherwise outlast the grace
    // period of a shutdown or of a broker restart).
    let setup = async {
        let mut publishers = Vec::with_capacity(inner.config.limits.lanes);
        for _ in 0..inner.config.limits.lanes {
            publishers.push(LanePublisher::open(connection.clone()).await?);
        }
        let channel = connection.open_channel().await?;
        let consumer = Consumer::start(
            channel,
            pipeline.queue(),
            inner.config.broker.prefetch,
            &tag,
        )
        .await?;
        Ok::<_, AmqpError>((consumer, publishers))
    };
    let (mut consumer, publishers) = tokio::select! {
        set = setup => set?,
        () = stop.cancelled() => return Ok(()),
    };
    let (tx, rx) = async_channel::bounded::<Delivery>(inner.config.limits.lanes);
    let mut lanes = JoinSet::new();
    for publisher in publishers {
        lanes.spawn(lane(
            inner.clone(),
            connection.clone(),
            publisher,
            rx.clone(),
            pipeline,
            stop.clone(),
        ));
    }
    let result = loop {
        tokio::select! {
            () = stop.cancelled() => break Ok(()),
            ended = lanes.join_next() => {
                // A lane only ends early when its channel failed.
                break match ended {
                    Some(Ok(Err(e))) => Err(e.into()),
                    _ => Ok(()),
                };
            }
            next = consumer.next() => match next {
                Some(Ok(delivery)) => {
                    // Wait for a free lane, but not past the end of the session: when the
                    // connection dies every lane fails and cancels it, and nobody would ever
                    // take this delivery (it stays unacknowledged and comes back).
                    tokio::select! {
                        sent = tx.send(delivery) => if sent.is_err() {
                            break Ok(());
                        },
                        () = stop.cancelled() => break Ok(()),
                    }
                }
                Some(Err(e)) => break Err(e.into()),
                None => break Err(SessionEnd::Cancelled(pipeline.queue().to_owned())),
            },
        }
    };
    // Stop new deliveries, let the lanes finish what they hold.
    let _ = consumer.cancel().await;
    tx.close();
    while lanes.join_next().await.is_some() {}
    result
}

async fn lane(
    inner: Arc<Inner>,
    connection: Arc<Connection>,
    mut publisher: LanePublisher,
    deliveries: async_channel::Receiver<Delivery>,
    pipeline: Pipeline,
    stop: CancellationToken,
) -> Result<(), AmqpError> {
    while let Ok(delivery) = deliveries.recv().await {
        let span = info_span!(
            "delivery",
            stage = pipeline.stage(),
            message_id = tracing::field::Empty,
            partner = tracing::field::Empty,
            kind = tracing::field::Empty
        );
        let in_flight = inner.metrics.in_flight(pipeline.metric());
        let took = std::time::Instant::now();
        let settled = settle(&inner, &connection, &mut publisher, delivery, pipeline)
            .instrument(span)
            .await;
        inner.metrics.processed(pipeline.metric(), took.elapsed());
        drop(in_flight);
        if let Err(e) = settled {
            // The broker failed under us: the delivery stays unacknowledged and comes back.
            stop.cancel();
            return Err(e);
        }
    }
    Ok(())
}

/// Handles one delivery and settles it: acknowledged once everything it led to was confirmed or
/// it was parked; returned to its queue only if even the parking lot refused it (its delivery
/// limit then dead-letters it). `Err` only when the broker session failed. A body over the size
/// limit is parked before it is parsed; a panic while handling parks the delivery with
/// the panic's text and the lane goes on with a new channel.
async fn settle(
    inner: &Inner,
    connection: &Arc<Connection>,
    publisher: &mut LanePublisher,
    delivery: Delivery,
    pipeline: Pipeline,
) -> Result<(), AmqpError> {
    let Delivery { message, acker } = delivery;
    // Read once: the body is shared from here on, not copied.
    let incoming = Incoming::read(&inner.own_user, message);
    let stage = pipeline.stage();
    let max = inner.config.limits.document.max_bytes;
    let handled = if incoming.body.len() > max {
        Err(Failure::Fault(Refusal {
            code: "XML-SIZE".into(),
            text: format!(
                "the message is {} bytes long, more than the {max} allowed (limits.max_document_bytes)",
                incoming.body.len()
            ),
        }))
    } else {
        let handling = match pipeline {
            Pipeline::Outbound => crate::outbound::outbound(inner, publisher, &incoming).boxed(),
            Pipeline::Inbound => crate::inbound::inbound(inner, publisher, &incoming).boxed(),
        };
        match AssertUnwindSafe(handling).catch_unwind().await {
            Ok(handled) => handled,
            Err(payload) => {
                let text = panic_text(&*payload);
                tracing::error!(panic = %text, "Handling a delivery panicked; parking it.");
                // The publisher may have been cut off mid-publish: start on a fresh channel.
                *publisher = LanePublisher::open(connection.clone()).await?;
                Err(Failure::Fault(panicked(text)))
            }
        }
    };
    let parked = match handled {
        Ok(()) => return acker.ack().await,
        Err(Failure::Session(e)) => return Err(e),
        Err(Failure::Refused { error, header }) => {
            park_refused(inner, publisher, &incoming, stage, &error, header.as_ref()).await?
        }
        Err(Failure::Fault(refusal)) => {
            // Only the hub's own outbound header is trusted enough to journal by.
            let header = (pipeline == Pipeline::Outbound)
                .then(|| Header::read(&incoming.body, &inner.config.limits.document).ok())
                .flatten();
            park_failure(inner, publisher, &incoming, stage, refusal, header.as_ref()).await?
        }
    };
    if parked == Parked::Refused {
        acker.nack(true).await
    } else {
        acker.ack().await
    }
}
