//! The mover: one thread that journals the moves the broker's confirms stand for, for every lane
//! of both pipelines and for the IPPC channels. The moves that arrive while it journals a batch
//! go together into the next one: one commit for the moves of many documents, and no step
//! thread taken and held, per document, only to wait for it. It runs only on a journal whose
//! batch is one commit ([`Journal::batches`]: SQLite); on one that commits each write on its own
//! (PostgreSQL), one thread would do every commit in turn, so the moves of each delivery are
//! journaled on a step thread of their own, side by side ([`journal`] either way).
//!
//! A move that fails is retried by whoever asked ([`crate::execute::journal_moves`]); the mover
//! only says what became of each.

use std::panic::AssertUnwindSafe;
use std::sync::Arc;

use asw_journal::{Journal, Transition};
use tokio::sync::oneshot;

use crate::hub::now;
use crate::plan::Move;
use crate::pool::{PoolError, panic_text};

/// At most this many moves share one batch (what waits beyond them goes in the next).
const MOST_MOVES: usize = 512;

/// The mover thread's door: send it moves, wait for what became of them.
#[derive(Debug)]
pub(crate) struct Mover {
    requests: async_channel::Sender<Request>,
}

/// Moves of one caller, and where their results go.
struct Request {
    moves: Vec<Move>,
    done: oneshot::Sender<Result<Moved, PoolError>>,
}

/// What became of one caller's moves.
#[derive(Debug)]
pub(crate) struct Moved {
    /// Each move's result, in the order the caller gave them.
    pub(crate) results: Vec<Result<Transition, asw_journal::JournalError>>,
    /// Whether the batch they were part of was committed: when not, none of them holds.
    pub(crate) committed: Result<(), Uncommitted>,
}

/// A batch that was not committed, as each of its callers sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Uncommitted {
    /// Whether trying again later can help ([`asw_journal::JournalError::is_transient`]).
    pub(crate) transient: bool,
    /// What the journal said, with its causes.
    pub(crate) text: String,
}

impl std::fmt::Display for Uncommitted {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.text)
    }
}

impl Uncommitted {
    fn of(e: &asw_journal::JournalError) -> Uncommitted {
        Uncommitted {
            transient: e.is_transient(),
            text: asw_amqp::error_chain(e),
        }
    }
}

impl Mover {
    /// Starts the mover thread on `journal`. It ends when the last [`Mover`] handle is dropped
    /// and what was sent before is journaled.
    pub(crate) fn start(journal: Arc<dyn Journal>) -> std::io::Result<Mover> {
        let (requests, queue) = async_channel::unbounded::<Request>();
        std::thread::Builder::new()
            .name("asw-mover".into())
            .spawn(move || {
                while let Ok(first) = queue.recv_blocking() {
                    let mut batch = vec![first];
                    let mut count = batch[0].moves.len();
                    while count < MOST_MOVES {
                        match queue.try_recv() {
                            Ok(more) => {
                                count += more.moves.len();
                                batch.push(more);
                            }
                            Err(_) => break,
                        }
                    }
                    journal_batch(&*journal, batch, count);
                }
            })?;
        Ok(Mover { requests })
    }

    /// Journals `moves` in the mover's next batch and says what became of them; `Err` when the
    /// mover has stopped or panicked (nothing to retry here: the redelivery will).
    pub(crate) async fn apply(&self, moves: Vec<Move>) -> Result<Moved, PoolError> {
        let (done, answer) = oneshot::channel();
        self.requests
            .send(Request { moves, done })
            .await
            .map_err(|_| PoolError::Closed)?;
        answer.await.map_err(|_| PoolError::Closed)?
    }
}

/// Journals `moves` (`count` of them) in one journal batch: each move's result, and whether the
/// batch was committed.
pub(crate) fn journal<'a>(
    journal: &dyn Journal,
    moves: impl Iterator<Item = &'a Move>,
    count: usize,
) -> Moved {
    let at = now();
    let mut moves = Some(moves);
    let mut results = Vec::with_capacity(count);
    let committed = journal.batch(&mut || {
        if let Some(moves) = moves.take() {
            results = moves
                .map(|m| journal.transition(m.direction, m.id, m.to, m.reason.as_ref(), at))
                .collect();
        }
    });
    let committed = match committed {
        Ok(()) if results.len() == count => Ok(()),
        Ok(()) => Err(Uncommitted {
            transient: true,
            text: "the journal batch did not run".into(),
        }),
        Err(e) => Err(Uncommitted::of(&e)),
    };
    Moved { results, committed }
}

/// Journals the moves of `batch` (`count` in all) in one journal batch and answers each caller.
fn journal_batch(journal: &dyn Journal, batch: Vec<Request>, count: usize) {
    let ran = std::panic::catch_unwind(AssertUnwindSafe(|| {
        self::journal(journal, batch.iter().flat_map(|r| r.moves.iter()), count)
    }));
    let Moved { results, committed } = match ran {
        Ok(moved) => moved,
        Err(payload) => {
            let text = panic_text(&*payload);
            tracing::error!(panic = %text, "Journaling moves panicked.");
            for request in batch {
                let _ = request.done.send(Err(PoolError::Panicked(text.clone())));
            }
            return;
        }
    };
    let mut results = results.into_iter();
    for request in batch {
        let mine: Vec<_> = results.by_ref().take(request.moves.len()).collect();
        let _ = request.done.send(Ok(Moved {
            results: mine,
            committed: committed.clone(),
        }));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::Fixture;
    use asw_journal::{Direction, Recorded, State};
    use asw_model::DocumentKind;

    /// A back-office document journaled `signed`, by its id.
    fn signed(fixture: &Fixture) -> uuid::Uuid {
        let (header, bytes) = fixture.back_office_document(DocumentKind::FormD);
        let recorded = fixture
            .journal
            .record_signed(&header, &bytes, &bytes, fixture.now)
            .expect("recorded");
        assert!(matches!(recorded, Recorded::New));
        header.message_id
    }

    #[tokio::test]
    async fn moves_of_several_callers_are_journaled_and_answered_each() {
        let fixture = Fixture::new();
        let journal: Arc<dyn Journal> = fixture.journal.clone();
        let ids: Vec<_> = (0..3).map(|_| signed(&fixture)).collect();
        let mover = Arc::new(Mover::start(journal.clone()).expect("mover"));
        let mut calls = tokio::task::JoinSet::new();
        for &id in &ids {
            let mover = mover.clone();
            calls.spawn(async move {
                mover
                    .apply(vec![
                        Move::new(Direction::Outbound, id, State::Failed),
                        // Not allowed from failed: refused, the move before it holds.
                        Move::new(Direction::Outbound, id, State::Queued),
                    ])
                    .await
            });
        }
        while let Some(call) = calls.join_next().await {
            let moved = call.expect("joined").expect("answered");
            assert_eq!(moved.committed, Ok(()));
            assert_eq!(moved.results.len(), 2);
            assert!(matches!(moved.results[0], Ok(Transition::Moved { .. })));
            assert!(matches!(moved.results[1], Ok(Transition::Refused { .. })));
        }
        for id in ids {
            let record = journal
                .get(Direction::Outbound, id)
                .expect("read")
                .expect("journaled");
            assert_eq!(record.summary.state, State::Failed);
        }
    }

    #[tokio::test]
    async fn a_mover_whose_handles_are_gone_stops_after_its_work() {
        let fixture = Fixture::new();
        let journal: Arc<dyn Journal> = fixture.journal.clone();
        let id = signed(&fixture);
        let mover = Mover::start(journal.clone()).expect("mover");
        let moved = mover
            .apply(vec![Move::new(Direction::Outbound, id, State::Queued)])
            .await
            .expect("answered");
        assert_eq!(moved.committed, Ok(()));
        drop(mover);
        // The thread holds the journal until it ends; then this and the fixture's are the
        // last handles.
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
        while Arc::strong_count(&fixture.journal) > 2 {
            assert!(
                std::time::Instant::now() < deadline,
                "the mover thread did not stop"
            );
            std::thread::sleep(std::time::Duration::from_millis(10));
        }
    }
}
