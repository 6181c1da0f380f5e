//! Test support for the gateway's unit tests: a hub of VN with partners TH and SG, their keys
//! and trust, real workers, a real SQLite journal in a temporary directory (with faults it can
//! be told to inject), and documents from the back-office and from partners.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use asw_journal::{
    Direction, Filter, Journal, JournalError, MessageRecord, MessageSummary, Operation, Overdue,
    OverdueQuery, Reason, Recorded, Replay, Subject, Transition, TransitionRecord,
};
use asw_model::document::Message;
use asw_model::sample::{self, SampleSpec};
use asw_model::xml::Limits;
use asw_model::{DocumentKind, Header, MemberState};
use asw_sign::keygen::{self, GeneratedKey, KeyAlgorithm};
use asw_sign::{Signer, TrustStore};
use bytes::Bytes;
use time::OffsetDateTime;
use uuid::Uuid;

use crate::pool::Pool;
use crate::process::{Accepted, Identity, Refusal, Refused, Signed, Unsendable, Worker};
use crate::work::Work;

/// A member state by its code.
pub(crate) fn state(code: &str) -> MemberState {
    MemberState::from_alpha2(code).expect("member state")
}

/// The hub of VN, its partners TH and SG, and a journal.
pub(crate) struct Fixture {
    pub(crate) vn: MemberState,
    pub(crate) th: MemberState,
    pub(crate) sg: MemberState,
    pub(crate) now: OffsetDateTime,
    keys: Vec<(MemberState, GeneratedKey)>,
    pub(crate) trust: Arc<TrustStore>,
    pub(crate) identity: Arc<Identity>,
    /// The journal, with faults on demand.
    pub(crate) journal: Arc<Faulty<Box<dyn Journal>>>,
    seed: AtomicU64,
    _dir: tempfile::TempDir,
}

impl Fixture {
    pub(crate) fn new() -> Fixture {
        let (vn, th, sg) = (state("VN"), state("TH"), state("SG"));
        let now = OffsetDateTime::now_utc();
        let key = |s| keygen::generate(s, KeyAlgorithm::EcP256, 30, now).expect("key");
        let keys = vec![(vn, key(vn)), (th, key(th)), (sg, key(sg))];
        let trust = Arc::new(
            TrustStore::from_pem(
                keys.iter()
                    .filter(|(s, _)| *s != vn)
                    .map(|(s, k)| (*s, &k.cert_pem[..])),
            )
            .expect("trust"),
        );
        let identity = Arc::new(Identity::new(vn, [th, sg].into_iter().collect()));
        let dir = tempfile::tempdir().expect("temporary directory");
        let journal = asw_journal::open(dir.path().join("journal.db")).expect("journal");
        Fixture {
            vn,
            th,
            sg,
            now,
            keys,
            trust,
            identity,
            journal: Arc::new(Faulty::new(journal)),
            seed: AtomicU64::new(1),
            _dir: dir,
        }
    }

    /// The key and certificate of `of`.
    pub(crate) fn key(&self, of: MemberState) -> &GeneratedKey {
        &self.keys.iter().find(|(s, _)| *s == of).expect("key").1
    }

    /// A worker of the hub, built on this thread.
    pub(crate) fn worker(&self) -> Worker {
        let key = self.key(self.vn);
        Worker::new(
            self.identity.clone(),
            &key.key_pem,
            &key.cert_pem,
            self.trust.clone(),
            Limits::default(),
        )
        .expect("worker")
    }

    /// A pool of one worker.
    pub(crate) fn pool(&self) -> Pool<Worker> {
        self.pool_of(|w| w)
    }

    /// A pool of one worker wrapped by `wrap`.
    pub(crate) fn pool_of<W: 'static>(&self, wrap: fn(Worker) -> W) -> Pool<W> {
        let (identity, trust) = (self.identity.clone(), self.trust.clone());
        let key = self.key(self.vn).clone();
        Pool::start(1, "test-worker", move || {
            Worker::new(
                identity.clone(),
                &key.key_pem,
                &key.cert_pem,
                trust.clone(),
                Limits::default(),
            )
            .map(wrap)
        })
        .expect("workers")
    }

    /// A new sample document of `kind` from `from` to `to`.
    pub(crate) fn document(
        &self,
        kind: DocumentKind,
        from: MemberState,
        to: MemberState,
    ) -> Message {
        sample::message(&SampleSpec {
            kind,
            from,
            to,
            items: 1,
            seed: self.seed.fetch_add(1, Ordering::Relaxed),
            created_at: self.now,
        })
    }

    /// The back-office's bytes of a new document of `kind` for TH.
    pub(crate) fn back_office_document(&self, kind: DocumentKind) -> (Header, Bytes) {
        let document = self.document(kind, self.vn, self.th);
        let xml = document.to_xml_compact().expect("xml");
        (document.header, Bytes::from(xml.into_bytes()))
    }

    /// `document` signed with the key of `signer`.
    pub(crate) fn signed_by(&self, signer: MemberState, document: &Message) -> Bytes {
        let key = self.key(signer);
        let xml = document.to_xml_compact().expect("xml");
        Signer::new(&key.key_pem, &key.cert_pem)
            .expect("signer")
            .sign(xml.as_bytes())
            .expect("signed")
            .into()
    }

    /// A new document of `kind` from TH to VN, signed by TH.
    pub(crate) fn partner_document(&self, kind: DocumentKind) -> Bytes {
        self.signed_by(self.th, &self.document(kind, self.th, self.vn))
    }

    /// An answer of `kind` from `from` to one of our documents (`original`), signed by `from`.
    pub(crate) fn answer(&self, kind: DocumentKind, from: MemberState, original: &Header) -> Bytes {
        let mut answer = self.document(kind, from, self.vn);
        answer.header.correlation_id = Some(original.message_id);
        self.signed_by(from, &answer)
    }
}

/// A journal that fails on demand, or a [`Work`] that panics instead of working, as a bug in
/// the worker would.
pub(crate) struct Faulty<T> {
    inner: T,
    /// The journal fault to inject into the next writes: transient or not.
    fault: Mutex<Option<bool>>,
}

impl Faulty<Worker> {
    pub(crate) fn panicking(worker: Worker) -> Faulty<Worker> {
        Faulty::new(worker)
    }
}

impl<T> Faulty<T> {
    pub(crate) fn new(inner: T) -> Faulty<T> {
        Faulty {
            inner,
            fault: Mutex::new(None),
        }
    }
}

impl Work for Faulty<Worker> {
    fn outbound(&mut self, _: &Bytes, _: &str, _: OffsetDateTime) -> Result<Signed, Unsendable> {
        panic!("injected fault in the worker");
    }

    fn inbound(
        &mut self,
        _: &Bytes,
        _: Option<&str>,
        _: &str,
        _: OffsetDateTime,
    ) -> Result<Accepted, Box<Refused>> {
        panic!("injected fault in the worker");
    }

    fn receipt(
        &mut self,
        original: &Header,
        reply_to: MemberState,
        reference: Option<&str>,
        refusals: &[Refusal],
        now: OffsetDateTime,
    ) -> Option<Result<Signed, Refusal>> {
        self.inner
            .receipt(original, reply_to, reference, refusals, now)
    }
}

impl Faulty<Box<dyn Journal>> {
    /// From now on, every record fails (transiently or not), until [`Faulty::heal`].
    pub(crate) fn fail_records(&self, transient: bool) {
        *self.fault.lock().expect("lock") = Some(transient);
    }

    /// No more faults.
    pub(crate) fn heal(&self) {
        *self.fault.lock().expect("lock") = None;
    }

    fn injected(&self, message_id: Uuid) -> Result<(), JournalError> {
        match *self.fault.lock().expect("lock") {
            None => Ok(()),
            Some(transient) => Err(JournalError::Database {
                operation: Operation::Record,
                subject: Subject::Message {
                    direction: Direction::Outbound,
                    message_id,
                },
                transient,
                source: "injected fault".into(),
            }),
        }
    }
}

impl Journal for Faulty<Box<dyn Journal>> {
    fn batches(&self) -> bool {
        self.inner.batches()
    }

    fn record(
        &self,
        direction: Direction,
        header: &Header,
        bytes: &[u8],
        state: asw_journal::State,
        at: OffsetDateTime,
    ) -> Result<Recorded, JournalError> {
        self.injected(header.message_id)?;
        self.inner.record(direction, header, bytes, state, at)
    }

    fn transition(
        &self,
        direction: Direction,
        message_id: Uuid,
        to: asw_journal::State,
        reason: Option<&Reason>,
        at: OffsetDateTime,
    ) -> Result<Transition, JournalError> {
        self.inner.transition(direction, message_id, to, reason, at)
    }

    fn transition_signed(
        &self,
        message_id: Uuid,
        signed: &[u8],
        at: OffsetDateTime,
    ) -> Result<Transition, JournalError> {
        self.inner.transition_signed(message_id, signed, at)
    }

    fn record_signed(
        &self,
        header: &Header,
        original: &[u8],
        signed: &[u8],
        at: OffsetDateTime,
    ) -> Result<Recorded, JournalError> {
        self.injected(header.message_id)?;
        self.inner.record_signed(header, original, signed, at)
    }

    fn bump_attempts(
        &self,
        direction: Direction,
        message_id: Uuid,
        reason: &Reason,
        at: OffsetDateTime,
    ) -> Result<u32, JournalError> {
        self.inner.bump_attempts(direction, message_id, reason, at)
    }

    fn transition_with_ref(
        &self,
        direction: Direction,
        message_id: Uuid,
        to: asw_journal::State,
        reason: Option<&Reason>,
        transport_ref: &str,
        at: OffsetDateTime,
    ) -> Result<Transition, JournalError> {
        self.inner
            .transition_with_ref(direction, message_id, to, reason, transport_ref, at)
    }

    fn find_by_transport_ref(
        &self,
        direction: Direction,
        transport_ref: &str,
    ) -> Result<Option<MessageRecord>, JournalError> {
        self.inner.find_by_transport_ref(direction, transport_ref)
    }

    fn record_settlement(
        &self,
        settlement: &asw_journal::ChannelSettlement,
    ) -> Result<asw_journal::ChannelSettlement, JournalError> {
        self.inner.record_settlement(settlement)
    }

    fn settlement(
        &self,
        channel: &str,
        reference: &str,
    ) -> Result<Option<asw_journal::ChannelSettlement>, JournalError> {
        self.inner.settlement(channel, reference)
    }

    fn replay(
        &self,
        direction: Direction,
        message_id: Uuid,
        actor: &str,
        at: OffsetDateTime,
    ) -> Result<Replay, JournalError> {
        self.inner.replay(direction, message_id, actor, at)
    }

    fn discard(
        &self,
        direction: Direction,
        message_id: Uuid,
        actor: &str,
        reason: &Reason,
        at: OffsetDateTime,
    ) -> Result<Transition, JournalError> {
        self.inner.discard(direction, message_id, actor, reason, at)
    }

    fn get(
        &self,
        direction: Direction,
        message_id: Uuid,
    ) -> Result<Option<MessageRecord>, JournalError> {
        self.inner.get(direction, message_id)
    }

    fn remove_settled(&self, removals: &[asw_journal::Removal]) -> Result<usize, JournalError> {
        self.inner.remove_settled(removals)
    }

    fn probe_write(&self) -> Result<(), JournalError> {
        self.inner.probe_write()
    }

    fn history(
        &self,
        direction: Direction,
        message_id: Uuid,
    ) -> Result<Vec<TransitionRecord>, JournalError> {
        self.inner.history(direction, message_id)
    }

    fn find_original(
        &self,
        direction: Direction,
        correlation_id: Uuid,
    ) -> Result<Option<MessageRecord>, JournalError> {
        self.inner.find_original(direction, correlation_id)
    }

    fn answers(&self, message_id: Uuid) -> Result<Vec<MessageSummary>, JournalError> {
        self.inner.answers(message_id)
    }

    fn list(&self, filter: &Filter) -> Result<Vec<MessageSummary>, JournalError> {
        self.inner.list(filter)
    }

    fn claim_overdue(
        &self,
        query: &OverdueQuery,
        at: OffsetDateTime,
    ) -> Result<Vec<Overdue>, JournalError> {
        self.inner.claim_overdue(query, at)
    }

    fn batch(&self, f: &mut dyn FnMut()) -> Result<(), JournalError> {
        self.inner.batch(f)
    }
}
