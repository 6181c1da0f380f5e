//! How a delivery's steps get their CPU work done: the [`Work`] a step asks for (check and sign
//! an outbound document, verify an inbound one, sign the hub's own answer), done by a
//! [`Worker`] on its own thread or handed to one from a step thread ([`OnPool`]). Only bytes and
//! results cross threads, and the bytes are shared, not copied.

use asw_model::{Header, MemberState};
use bytes::Bytes;
use time::OffsetDateTime;

use crate::pool::{Pool, PoolError};
use crate::process::{
    Accepted, Refusal, Refused, STOPPING, Signed, Unsendable, Worker, is_acknowledged, panicked,
};

/// The CPU work of the pipelines (libxml2, xmlsec), as the steps ask for it.
pub trait Work {
    /// See [`Worker::outbound`].
    fn outbound(
        &mut self,
        bytes: &Bytes,
        routing_key: &str,
        now: OffsetDateTime,
    ) -> Result<Signed, Unsendable>;

    /// See [`Worker::inbound`]; the [`Accepted`] shares `bytes`.
    fn inbound(
        &mut self,
        bytes: &Bytes,
        user_id: Option<&str>,
        routing_key: &str,
        now: OffsetDateTime,
    ) -> Result<Accepted, Box<Refused>>;

    /// See [`Worker::receipt`].
    fn receipt(
        &mut self,
        original: &Header,
        reply_to: MemberState,
        reference: Option<&str>,
        refusals: &[Refusal],
        now: OffsetDateTime,
    ) -> Option<Result<Signed, Refusal>>;
}

impl Work for Worker {
    fn outbound(
        &mut self,
        bytes: &Bytes,
        routing_key: &str,
        now: OffsetDateTime,
    ) -> Result<Signed, Unsendable> {
        Worker::outbound(self, bytes, routing_key, now)
    }

    fn inbound(
        &mut self,
        bytes: &Bytes,
        user_id: Option<&str>,
        routing_key: &str,
        now: OffsetDateTime,
    ) -> Result<Accepted, Box<Refused>> {
        Worker::inbound_shared(self, bytes, user_id, routing_key, now)
    }

    fn receipt(
        &mut self,
        original: &Header,
        reply_to: MemberState,
        reference: Option<&str>,
        refusals: &[Refusal],
        now: OffsetDateTime,
    ) -> Option<Result<Signed, Refusal>> {
        Worker::receipt(self, original, reply_to, reference, refusals, now)
    }
}

/// [`Work`] handed to the worker pool from a thread that may block (a step thread): the inputs
/// go to the worker, the results come back. Fails only when the pool has stopped, or when the
/// job panicked (a refusal with [`crate::process::PANIC`]: the document is parked).
///
/// An accepted inbound document of a kind that is acknowledged has its receipt signed in the
/// same job, so the steps' [`Work::receipt`] for it costs no second trip to a worker (only a
/// copy of a document already answered leaves that receipt unused).
#[derive(Debug)]
pub struct OnPool<'a, W = Worker> {
    pool: &'a Pool<W>,
    prepared: Option<PreparedReceipt>,
}

/// A receipt signed ahead, and what it answers.
#[derive(Debug)]
struct PreparedReceipt {
    original: uuid::Uuid,
    reply_to: MemberState,
    reference: Option<String>,
    now: OffsetDateTime,
    receipt: Option<Result<Signed, Refusal>>,
}

impl<'a, W> OnPool<'a, W> {
    /// Work for the workers of `pool`.
    pub fn new(pool: &'a Pool<W>) -> OnPool<'a, W> {
        OnPool {
            pool,
            prepared: None,
        }
    }
}

impl<W: Work + 'static> Work for OnPool<'_, W> {
    fn outbound(
        &mut self,
        bytes: &Bytes,
        routing_key: &str,
        now: OffsetDateTime,
    ) -> Result<Signed, Unsendable> {
        let (bytes, routing_key) = (bytes.clone(), routing_key.to_owned());
        self.pool
            .run_blocking(move |w| w.outbound(&bytes, &routing_key, now))
            .unwrap_or_else(|closed| {
                Err(Unsendable {
                    header: None,
                    refusals: vec![stopped(closed)],
                })
            })
    }

    fn inbound(
        &mut self,
        bytes: &Bytes,
        user_id: Option<&str>,
        routing_key: &str,
        now: OffsetDateTime,
    ) -> Result<Accepted, Box<Refused>> {
        let (bytes, user_id, routing_key) = (
            bytes.clone(),
            user_id.map(str::to_owned),
            routing_key.to_owned(),
        );
        let done = self.pool.run_blocking(move |w| {
            let accepted = w.inbound(&bytes, user_id.as_deref(), &routing_key, now);
            let prepared = accepted.as_ref().ok().and_then(|a| {
                let header = a.verified.header();
                is_acknowledged(header.kind).then(|| PreparedReceipt {
                    original: header.message_id,
                    reply_to: header.sender,
                    reference: a.reference.clone(),
                    now,
                    receipt: w.receipt(header, header.sender, a.reference.as_deref(), &[], now),
                })
            });
            (accepted, prepared)
        });
        match done {
            Ok((accepted, prepared)) => {
                self.prepared = prepared;
                accepted
            }
            Err(closed) => Err(Box::new(Refused {
                header: None,
                reference: None,
                authenticated: None,
                verified: false,
                refusals: vec![stopped(closed)],
            })),
        }
    }

    fn receipt(
        &mut self,
        original: &Header,
        reply_to: MemberState,
        reference: Option<&str>,
        refusals: &[Refusal],
        now: OffsetDateTime,
    ) -> Option<Result<Signed, Refusal>> {
        if let Some(prepared) = self.prepared.take()
            && prepared.original == original.message_id
            && prepared.reply_to == reply_to
            && prepared.reference.as_deref() == reference
            && prepared.now == now
            && refusals.is_empty()
        {
            return prepared.receipt;
        }
        let (original, reference, refusals) = (
            original.clone(),
            reference.map(str::to_owned),
            refusals.to_vec(),
        );
        self.pool
            .run_blocking(move |w| {
                w.receipt(&original, reply_to, reference.as_deref(), &refusals, now)
            })
            .unwrap_or_else(|closed| Some(Err(stopped(closed))))
    }
}

/// The refusal standing for work that could not be done: because the hub is stopping (never a
/// verdict on the document), or because the work panicked (a bug: the document is parked).
fn stopped(error: PoolError) -> Refusal {
    match error {
        PoolError::Closed => Refusal {
            code: STOPPING.into(),
            text: error.to_string(),
        },
        PoolError::Panicked(text) => panicked(text),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::process::PANIC;
    use crate::testing::Fixture;
    use asw_model::DocumentKind;

    #[test]
    fn an_inbound_documents_receipt_is_signed_in_the_same_job_and_only_for_that_document() {
        let fx = Fixture::new();
        let pool = fx.pool();
        let signed = fx.partner_document(DocumentKind::FormD);
        let (th, now) = (fx.th, fx.now);

        let mut work = OnPool::new(&pool);
        let accepted = work
            .inbound(&signed, Some("partner-TH"), "TH", now)
            .expect("accepted");
        assert_eq!(pool.jobs_done(), 1);
        assert_eq!(
            accepted.verified.bytes().as_ptr(),
            signed.as_ptr(),
            "the verified bytes are the delivered ones, shared"
        );
        let header = accepted.verified.header().clone();
        let receipt = work
            .receipt(&header, th, accepted.reference.as_deref(), &[], now)
            .expect("a Form D is acknowledged")
            .expect("signed receipt");
        assert_eq!(
            pool.jobs_done(),
            1,
            "the receipt came with the verification"
        );
        assert_eq!(receipt.header.correlation_id, Some(header.message_id));
        assert_eq!(receipt.header.receiver, th);
        assert_eq!(receipt.header.sender, fx.vn);
        assert_eq!(receipt.header.kind, DocumentKind::FormDAck);
        // The same receipt asked again, or with other reasons, is signed by a worker.
        let again = work
            .receipt(&header, th, accepted.reference.as_deref(), &[], now)
            .expect("acknowledged")
            .expect("signed");
        assert_eq!(pool.jobs_done(), 2);
        assert_eq!(again.header, receipt.header);
        let refusal = Refusal {
            code: "X".into(),
            text: "no".into(),
        };
        let _ = work.inbound(&signed, Some("partner-TH"), "TH", now);
        let rejection = work
            .receipt(&header, th, accepted.reference.as_deref(), &[refusal], now)
            .expect("acknowledged")
            .expect("signed");
        assert_eq!(
            pool.jobs_done(),
            4,
            "a rejection is not the receipt signed ahead"
        );
        assert_ne!(rejection.bytes, receipt.bytes);
        pool.shutdown();
    }

    #[test]
    fn a_job_that_panics_is_a_refusal_with_the_panic_and_a_stopped_pool_one_to_retry() {
        let fx = Fixture::new();
        let pool = fx.pool_of(crate::testing::Faulty::panicking);
        let mut work = OnPool::new(&pool);
        let refused = work
            .outbound(&Bytes::from_static(b"<x/>"), "formd", fx.now)
            .expect_err("panicked");
        assert_eq!(refused.refusals[0].code, PANIC);
        assert!(refused.refusals[0].text.contains("injected"));
        pool.shutdown();
        assert_eq!(stopped(PoolError::Closed).code, STOPPING);
    }
}
