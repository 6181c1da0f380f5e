//! Replaying and discarding parked messages, as `aswctl replay` / `aswctl parked discard` and the
//! console's `POST /api/replay` / `POST /api/discard` do: one code path for both.
//!
//! A replay puts parked messages back into the stage where they failed, as the original.
//!
//! For each parked message: the journal first takes it out of its parked state
//! ([`Journal::replay`], with the operator's name and the time); then its exact bytes are
//! published to the stage's queue (`asw.hub.outbound`, `asw.hub.inbound`,
//! `asw.partner.out.<CC>` for a partner link, `asw.ippc.out.<CC>` / `asw.ippc.in` for the IPPC
//! ePhyto Hub's stage `ippc`) by the hub's own broker user, with its message id
//! and the `x-asw-routing-key` / `x-asw-transport-user` it was first published with, which is how
//! the pipeline recognises a message the hub moved itself. A message the broker parked at its
//! queue's delivery limit (`DELIVERY-LIMIT`) has no such headers of the hub's: they come from its
//! `x-death` and its broker-validated `user_id` instead (see [`Parked::from_message`]). Only once
//! the broker confirmed that publish is it removed from `asw.parked`. A crash in between leaves
//! it in both places, which is harmless: the journal knows it by its id, so the hub neither sends
//! nor delivers it twice, and running the replay again finishes the job.

use anyhow::{Context, anyhow, bail};
use asw_amqp::{ConfirmingPublisher, Properties};
use asw_journal::{Journal, Reason, Replay, Transition};
use asw_route::names;
use serde::Serialize;
use time::OffsetDateTime;

use crate::parking::{InJournal, Parked, ParkingLot, Target};

/// Runs a journal call on a thread of its own. The journal blocks, and PostgreSQL's client on a
/// tokio runtime of its own, which tokio refuses inside an async task (it panics): the replay and
/// the discard run in one, in `aswctl` as in the console.
fn off_async<T: Send>(call: impl FnOnce() -> T + Send) -> T {
    std::thread::scope(|scope| {
        scope
            .spawn(call)
            .join()
            .unwrap_or_else(|panic| std::panic::resume_unwind(panic))
    })
}

/// What became of one parked message or one target (`parked discard`, `replay`).
#[derive(Debug, Clone, Serialize)]
pub struct Settled {
    /// The id or `sha256:` reference.
    pub target: String,
    /// `inbound` or `outbound`, when known.
    pub direction: Option<&'static str>,
    /// What happened: `replayed`, `would-replay`, `discarded`, `already-done`, `in-flight`,
    /// `not-parked` or `error`.
    pub outcome: &'static str,
    /// What the journal did or says.
    pub journal: String,
    /// A sentence for people.
    pub detail: String,
}

/// The outcome for a target that matched nothing in the lot: a no-op if the journal says it is
/// done or in flight, else not parked.
pub fn unmatched(journal: &dyn Journal, target: &Target, verb: &str) -> Settled {
    let mut settled = Settled {
        target: target.to_string(),
        direction: None,
        outcome: "not-parked",
        journal: "-".into(),
        detail: "not in asw.parked".into(),
    };
    let Target::Id(id) = target else {
        return settled;
    };
    let records = off_async(|| {
        asw_journal::Direction::ALL
            .into_iter()
            .filter_map(|d| journal.get(d, *id).ok().flatten())
            .collect::<Vec<_>>()
    });
    let Some(record) = records.first() else {
        settled.detail = "not in asw.parked, nor in the journal".into();
        return settled;
    };
    let s = &record.summary;
    settled.direction = Some(s.direction.as_str());
    settled.journal = s.state.to_string();
    if s.state.is_done() {
        settled.outcome = "already-done";
        settled.detail = format!("already {}: nothing to {verb}", s.state);
    } else if !s.state.is_parked() {
        settled.outcome = "in-flight";
        settled.detail = format!("{}: the hub is working on it", s.state);
    } else {
        settled.detail = format!(
            "{} in the journal but not in asw.parked (a partner's rejection, or removed before)",
            s.state
        );
    }
    settled
}

/// Discards the message at `index` of `lot`: journaled (`DISCARDED`, by `actor`, with
/// `reason`), then removed from the lot.
pub async fn discard_one(
    lot: &mut ParkingLot,
    index: usize,
    journal: &dyn Journal,
    actor: &str,
    reason: &Reason,
) -> Settled {
    let Some(p) = lot.message(index) else {
        return error_item("?".into(), None, anyhow!("no parked message {index}"));
    };
    let target = p.reference();
    let direction = p.direction().map(|d| d.as_str());
    let journaled = off_async(|| InJournal::of(journal, p)).and_then(|in_journal| {
        Ok(match in_journal {
            InJournal::Same(s) => {
                let moved = off_async(|| {
                    journal.discard(
                        s.direction,
                        s.header.message_id,
                        actor,
                        reason,
                        OffsetDateTime::now_utc(),
                    )
                })
                .context("journaling the discard")?;
                match moved {
                    Transition::Moved { from } => format!("{from} -> discarded"),
                    Transition::AlreadyThere => "already discarded".into(),
                    Transition::AlreadyPast { current } | Transition::Refused { current } => {
                        format!("{current}, left as it is")
                    }
                }
            }
            other => format!("{}, left as it is", other.label()),
        })
    });
    let journal_note = match journaled {
        Ok(note) => note,
        Err(e) => return error_item(target, direction, e),
    };
    match lot.remove(index).await {
        Ok(()) => Settled {
            target,
            direction,
            outcome: "discarded",
            journal: journal_note,
            detail: format!("removed from asw.parked by {actor}"),
        },
        Err(e) => error_item(target, direction, e),
    }
}

/// An item that failed, with the error chain as detail.
pub fn error_item(target: String, direction: Option<&'static str>, e: anyhow::Error) -> Settled {
    Settled {
        target,
        direction,
        outcome: "error",
        journal: "-".into(),
        detail: format!("{e:#}"),
    }
}

/// Replays parked messages: the journal first, then the republish, then the removal from the
/// lot (see the module).
pub struct Replayer<'a> {
    /// The hub's journal.
    pub journal: &'a dyn Journal,
    /// Who replays (journaled).
    pub actor: &'a str,
    /// The hub's own broker user (the replayed copy's `user_id`).
    pub own_user: &'a str,
    /// Only say what would happen.
    pub dry_run: bool,
}

impl Replayer<'_> {
    /// Replays the message at `index` of `lot`, publishing with `publisher` (on the lot's
    /// connection): what became of it.
    pub async fn one(
        &self,
        lot: &mut ParkingLot,
        publisher: &mut ConfirmingPublisher,
        index: usize,
    ) -> Settled {
        let Some(parked) = lot.message(index).cloned() else {
            return error_item("?".into(), None, anyhow!("no parked message {index}"));
        };
        let target = parked.reference();
        let direction = parked.direction().map(|d| d.as_str());
        let settled = |outcome, journal: String, detail: String| Settled {
            target: target.clone(),
            direction,
            outcome,
            journal,
            detail,
        };
        if parked.stage.as_deref() == Some(names::stage::OUTCOME) {
            return self.outcome(lot, publisher, index, &parked).await;
        }
        let Some(queue) = parked.stage_queue() else {
            // Stages are outbound, inbound and link.CC; anything else the broker parked from
            // a queue no stage consumes.
            let stage = parked.stage.as_deref().unwrap_or("(none)");
            return error_item(
                target.clone(),
                direction,
                anyhow!("parked in stage {stage}, which cannot be replayed"),
            );
        };
        let in_journal = match off_async(|| InJournal::of(self.journal, &parked)) {
            Ok(j) => j,
            Err(e) => return error_item(target.clone(), direction, e),
        };
        // Whatever document holds the id: once that id is delivered or acknowledged, replaying
        // cannot add anything (the hub would drop the copy).
        if let Some(s) = in_journal.summary()
            && s.state.is_done()
        {
            let whose = match in_journal {
                InJournal::Other(_) => {
                    "; the parked copy is a different document under that id (discard it)"
                }
                _ => "",
            };
            return settled(
                "already-done",
                s.state.to_string(),
                format!("already {}: nothing to replay{whose}", s.state),
            );
        }
        if self.dry_run {
            return settled(
                "would-replay",
                in_journal.label(),
                format!("would put it back into {queue}"),
            );
        }
        let journal_note = match off_async(|| self.journal_replay(&in_journal)) {
            Ok(Ok(note)) => note,
            Ok(Err(done)) => {
                return settled(
                    "already-done",
                    done.clone(),
                    format!("already {done}: nothing to replay"),
                );
            }
            Err(e) => return error_item(target.clone(), direction, e),
        };
        if let Err(e) = self.republish(publisher, &parked, &queue).await {
            return error_item(
                target.clone(),
                direction,
                e.context(format!(
                    "journal: {journal_note}; the message stays parked: run the replay again"
                )),
            );
        }
        if let Err(e) = lot.remove(index).await {
            return error_item(
                target.clone(),
                direction,
                e.context(format!(
                    "republished to {queue}, but the parked copy stays: discard it"
                )),
            );
        }
        settled(
            "replayed",
            journal_note,
            format!("put back into {queue} by {}", self.actor),
        )
    }

    /// Takes the message out of its parked state in the journal. The inner error is the state
    /// of a message found done meanwhile.
    fn journal_replay(&self, in_journal: &InJournal) -> anyhow::Result<Result<String, String>> {
        let s = match in_journal {
            InJournal::Same(s) => s,
            InJournal::NoKey => return Ok(Ok("- (no message id)".into())),
            InJournal::NotRecorded => return Ok(Ok("not recorded".into())),
            InJournal::Other(s) => {
                return Ok(Ok(format!(
                    "{} is another document's, left as it is",
                    s.state
                )));
            }
        };
        let replayed = self
            .journal
            .replay(
                s.direction,
                s.header.message_id,
                self.actor,
                OffsetDateTime::now_utc(),
            )
            .context("journaling the replay")?;
        Ok(match replayed {
            Replay::Replayed { from, to } => Ok(format!("{from} -> {to}")),
            // Replayed before, and the republish did not finish: publish it now.
            Replay::NotParked { current } => Ok(format!("already {current}")),
            Replay::AlreadyDone { current } => Err(current.to_string()),
        })
    }

    /// Publishes the exact parked bytes to the stage queue as the hub itself, and waits for the
    /// broker's confirm. The pipelines need the routing key it first came with; a partner link
    /// does not (it publishes under our own code).
    /// Replays an outcome no back-office took (stage `outcome`): the same JSON republished to
    /// `asw.inbound` with its routing key, once a queue is bound for it. Outcomes are not
    /// journaled, so nothing changes in the journal.
    async fn outcome(
        &self,
        lot: &mut ParkingLot,
        publisher: &mut ConfirmingPublisher,
        index: usize,
        parked: &Parked,
    ) -> Settled {
        let target = parked.reference();
        let settled = |outcome, detail: String| Settled {
            target: target.clone(),
            direction: None,
            outcome,
            journal: "- (an outcome)".into(),
            detail,
        };
        let Some(key) = parked.routing_key.clone() else {
            return error_item(
                target.clone(),
                None,
                anyhow!(
                    "an outcome without its {} header",
                    names::HEADER_ROUTING_KEY
                ),
            );
        };
        if self.dry_run {
            return settled(
                "would-replay",
                format!("would publish it to {} as {key}", names::INBOUND_EXCHANGE),
            );
        }
        let mut properties = Properties::new().with_content_type("application/json");
        for name in [names::HEADER_OUTCOME, names::HEADER_MESSAGE_ID] {
            if let Some(value) = parked.properties.header(name).and_then(|v| v.as_str()) {
                properties = properties.with_header(name, value);
            }
        }
        if let Err(e) = publisher
            .publish(names::INBOUND_EXCHANGE, &key, &parked.body, &properties)
            .await
        {
            return error_item(
                target.clone(),
                None,
                anyhow::Error::from(e).context(format!(
                    "publishing to {} as {key}; it stays parked",
                    names::INBOUND_EXCHANGE
                )),
            );
        }
        if let Err(e) = lot.remove(index).await {
            return error_item(
                target.clone(),
                None,
                e.context("republished, but the parked copy stays: discard it"),
            );
        }
        settled(
            "replayed",
            format!(
                "published to {} as {key} by {}",
                names::INBOUND_EXCHANGE,
                self.actor
            ),
        )
    }

    async fn republish(
        &self,
        publisher: &mut ConfirmingPublisher,
        parked: &Parked,
        queue: &str,
    ) -> anyhow::Result<()> {
        let routing_key = match (parked.link_partner(), parked.routing_key.as_deref()) {
            (_, Some(key)) => Some(key),
            (Some(_), None) => None,
            (None, None) => bail!(
                "it has no {} header: the stage cannot tell where it came from",
                names::HEADER_ROUTING_KEY
            ),
        };
        let mut properties = Properties::new()
            .with_user_id(self.own_user)
            .with_content_type(
                parked
                    .properties
                    .content_type
                    .clone()
                    .unwrap_or_else(|| names::CONTENT_TYPE_XML.into()),
            );
        if let Some(key) = routing_key {
            properties = properties.with_header(names::HEADER_ROUTING_KEY, key);
        }
        if let Some(user) = &parked.transport_user {
            properties = properties.with_header(names::HEADER_TRANSPORT_USER, user.as_str());
        }
        if let Some(id) = parked.message_id {
            properties = properties
                .with_message_id(id.to_string())
                .with_header(names::HEADER_MESSAGE_ID, id.to_string());
        }
        if let Some(c) = &parked.properties.correlation_id {
            properties = properties.with_correlation_id(c.clone());
        }
        // An IPPC import: the hub reads it again under its delivery number.
        if let Some(number) = parked
            .properties
            .header(names::HEADER_HUB_DELIVERY_NUMBER)
            .and_then(|v| v.as_str())
        {
            properties = properties.with_header(names::HEADER_HUB_DELIVERY_NUMBER, number);
        }
        publisher
            .publish("", queue, &parked.body, &properties)
            .await
            .with_context(|| format!("republishing to {queue}"))
    }
}
