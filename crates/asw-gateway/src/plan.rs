//! A delivery's plan: what handling it comes to, decided before any of it is done, as data. The
//! decision (`outbound::plan`, `inbound::plan`) is a function of the delivery, the journal's
//! answers and the worker's results; one executor (`execute::execute`) carries out any plan.
//!
//! A plan names the publishes to make, in order, each carrying the proof it needs (a
//! [`Signed`] for a partner queue, a [`Verified`] for a back-office, an [`Outcome`] for the
//! back-office's outcomes); the journal moves their confirms stand for; the one event that says
//! what became of the delivery; and how the delivery is settled.

use asw_journal::{Direction, Journal, JournalError, Reason, State};
use asw_model::Header;
use asw_sign::Verified;
use uuid::Uuid;

use crate::events::Event;
use crate::outcome::Outcome;
use crate::process::{Refusal, STOPPING, Signed};

/// What to do with one delivery.
#[derive(Debug)]
pub(crate) struct Plan {
    /// The trusted header of the document the delivery carries (the hub's own outbound
    /// document, a verified inbound one): a publish the broker refuses parks the delivery
    /// under it, journaled `failed`.
    pub(crate) header: Option<Header>,
    /// True when the delivery holds its message's claim in the journal: a broker session that
    /// fails mid-plan gives the claim up at once (`claims::Abandoned`).
    pub(crate) claims: bool,
    /// Published in this order, each confirmed before the next.
    pub(crate) publishes: Vec<Publish>,
    /// What became of the delivery, emitted once the publishes were confirmed and their moves
    /// journaled.
    pub(crate) event: Option<Event<'static>>,
    /// How the delivery is settled at the end.
    pub(crate) settle: Settle,
}

/// One publish of a plan.
#[derive(Debug)]
pub(crate) enum Publish {
    /// A document the hub signed, to its receiver's partner queue; journaled `queued` once
    /// confirmed.
    Document(Signed),
    /// The hub's signed receipt of the document delivered, to the partner queue; journaled
    /// `queued` once confirmed (`Answered`).
    Receipt(Signed),
    /// The hub's signed rejection of a refused document, to the partner queue; journaled
    /// `queued` once confirmed (`Answered`). One the broker refuses (no partner queue) is
    /// journaled `failed` and the plan goes on: the document it answers is parked anyway.
    Rejection(Signed),
    /// A partner's document, verified, to its back-office (`<kind>.<sender>`): the exact bytes
    /// the verification saw. Journaled `delivered` once confirmed.
    Deliver {
        /// The proof: only the worker's verification makes one.
        verified: Verified,
        /// An earlier attempt got as far as publishing it and its outcome is unknown (a confirm
        /// lost with the connection, a crash): delivered marked as a possible duplicate.
        possible_duplicate: bool,
    },
    /// What became of one of our documents, from the partner's answer, to its back-office. One
    /// no back-office takes parks the answer, whose replay reports it again.
    Answer(Outcome),
    /// An outcome the hub itself reports (`rejected`, `failed`) to the back-office. One no
    /// back-office takes is parked itself, in stage `outcome`.
    Notify(Outcome),
}

impl Publish {
    /// The journal move its confirm stands for.
    pub(crate) fn confirmed(&self) -> Option<Move> {
        match self {
            Publish::Document(signed) | Publish::Receipt(signed) | Publish::Rejection(signed) => {
                Some(Move::new(
                    Direction::Outbound,
                    signed.header.message_id,
                    State::Queued,
                ))
            }
            Publish::Deliver { verified, .. } => Some(Move::new(
                Direction::Inbound,
                verified.header().message_id,
                State::Delivered,
            )),
            Publish::Answer(_) | Publish::Notify(_) => None,
        }
    }
}

/// A journal move: a message to a state, with a reason.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Move {
    /// Which way the message travels.
    pub(crate) direction: Direction,
    /// Its id.
    pub(crate) id: Uuid,
    /// Where it goes.
    pub(crate) to: State,
    /// Why, when it is parked.
    pub(crate) reason: Option<Reason>,
}

impl Move {
    /// A move without a reason.
    pub(crate) fn new(direction: Direction, id: Uuid, to: State) -> Move {
        Move {
            direction,
            id,
            to,
            reason: None,
        }
    }
}

/// How a delivery ends, once the publishes and moves of its plan are done.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Settle {
    /// Acknowledged: done.
    Ack,
    /// A transient failure (the journal, the workers stopping): into a retry queue with the
    /// attempt counted, parked once the attempts are used up.
    Retry(String),
    /// Another consumer holds the message's claim: looked at again after the shortest delay,
    /// without counting an attempt.
    Wait(String),
    /// Refused for good: into the parking lot with every reason, then acknowledged.
    Park {
        /// Its header, when readable.
        header: Option<Header>,
        /// Why.
        refusals: Vec<Refusal>,
    },
}

impl Plan {
    /// Nothing to publish or journal: settle the delivery as `settle` says.
    pub(crate) fn settle(settle: Settle) -> Plan {
        Plan {
            header: None,
            claims: false,
            publishes: Vec::new(),
            event: None,
            settle,
        }
    }

    /// Try again later, for `why`.
    pub(crate) fn retry(why: impl Into<String>) -> Plan {
        Plan::settle(Settle::Retry(why.into()))
    }

    /// Look again later: another consumer holds the claim.
    pub(crate) fn wait(why: impl Into<String>) -> Plan {
        Plan::settle(Settle::Wait(why.into()))
    }

    /// The journal moves the plan's publishes stand for, all confirmed.
    #[cfg(test)]
    pub(crate) fn moves(&self) -> Vec<Move> {
        self.publishes
            .iter()
            .filter_map(Publish::confirmed)
            .collect()
    }
}

/// Runs `step` as one journal batch and returns its plan once what it wrote is committed, or a
/// retry when it was not (nothing it decided may be acted on).
pub(crate) fn in_batch(journal: &dyn Journal, step: impl FnOnce() -> Plan) -> Plan {
    let mut step = Some(step);
    let mut plan = None;
    let committed = journal.batch(&mut || {
        if let Some(step) = step.take() {
            plan = Some(step());
        }
    });
    match (committed, plan) {
        (Ok(()), Some(plan)) => plan,
        (Err(e), _) => Plan::retry(e.to_string()),
        (Ok(()), None) => Plan::retry("the journal batch did not run"),
    }
}

/// The code of a refusal that says the journal failed for good on the document (not a verdict
/// on it: its back-office hears `failed`).
pub const JOURNAL: &str = "JOURNAL";

/// The refusal standing for a journal error that is not transient.
pub(crate) fn journal_refusal(e: &JournalError) -> Refusal {
    Refusal {
        code: JOURNAL.into(),
        text: e.to_string(),
    }
}

/// True when the work was not done because the workers stopped: a reason to retry, never a
/// verdict on the document.
pub(crate) fn stopping(refusals: &[Refusal]) -> bool {
    refusals.iter().any(|r| r.code == STOPPING)
}

/// The journal's reason for a refused document: the first refusal's code, every refusal's text.
pub(crate) fn reason_of(refusals: &[Refusal]) -> Reason {
    match refusals.first() {
        Some(first) => Reason::new(first.code.clone(), crate::process::summary(refusals)),
        None => Reason::new("UNKNOWN", "no reason given"),
    }
}
