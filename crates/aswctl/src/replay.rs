//! `aswctl replay`: puts parked messages back into the stage where they failed, as the original.
//!
//! For each parked message: the journal first takes it out of its parked state
//! ([`Journal::replay`], with the operator's name and the time); then its exact bytes are
//! published to the stage's queue (`asw.hub.outbound`, `asw.hub.inbound`, or
//! `asw.partner.out.<CC>` for a partner link) by the hub's own broker user, with its message id
//! and the `x-asw-routing-key` / `x-asw-transport-user` it was first published with, which is how
//! the pipeline recognises a message the hub moved itself. A message the broker parked at its
//! queue's delivery limit (`DELIVERY-LIMIT`) has no such headers of the hub's: they come from its
//! `x-death` and its broker-validated `user_id` instead (see [`Parked::from_message`]). Only once
//! the broker confirmed that publish is it removed from `asw.parked`. A crash in between leaves
//! it in both places, which is harmless: the journal knows it by its id, so the hub neither sends
//! nor delivers it twice, and running the replay again finishes the job.

use anyhow::{Context, anyhow, bail};
use asw_amqp::{ConfirmingPublisher, Properties};
use asw_journal::{Journal, Replay};
use asw_route::names;
use time::OffsetDateTime;

use crate::Outcome;
use crate::operator::{HubOptions, actor, open_journal, runtime};
use crate::parked::{DEFAULT_LIMIT, Settled, error_item, print_settled, unmatched};
use crate::parking::{
    InJournal, Parked, ParkedFilter, ParkingLot, Target, release, warn_if_partial,
};

/// Arguments of `aswctl replay`.
#[derive(Debug, clap::Args)]
pub struct ReplayArgs {
    #[command(flatten)]
    hub: HubOptions,
    /// Message ids to replay, or sha256:PREFIX for parked messages without one.
    #[arg(
        value_name = "ID",
        required_unless_present = "all",
        conflicts_with = "all"
    )]
    targets: Vec<Target>,
    /// Replay every parked message that passes the filters.
    #[arg(long)]
    all: bool,
    #[command(flatten)]
    filter: ParkedFilter,
    /// Say what would be replayed; change nothing.
    #[arg(long)]
    dry_run: bool,
    /// Who replays (journaled); default $USER.
    #[arg(long, value_name = "NAME")]
    actor: Option<String>,
    /// Read at most this many parked messages.
    #[arg(long, default_value_t = DEFAULT_LIMIT, value_parser = clap::value_parser!(u32).range(1..=65535))]
    limit: u32,
}

/// Runs `aswctl replay`.
pub fn run(args: &ReplayArgs) -> anyhow::Result<Outcome> {
    let config = args.hub.load()?;
    let journal = open_journal(&config)?;
    // A dry run journals nothing, so it needs no name.
    let actor = match actor(args.actor.as_deref()) {
        Err(_) if args.dry_run => "-".to_owned(),
        named => named?,
    };
    let own_user = asw_amqp::AmqpUrl::parse(&config.broker.url)?
        .user()
        .to_owned();
    let now = OffsetDateTime::now_utc();
    let settled = runtime()?.block_on(async {
        let mut lot = ParkingLot::read(
            &config.broker.urls,
            &config.broker.tls.load("broker")?,
            args.limit,
            &config.limits.document,
        )
        .await?;
        warn_if_partial(&lot, args.limit);
        let mut publisher =
            ConfirmingPublisher::new(lot.connection().open_channel().await?).await?;
        let mut chosen: Vec<usize> = Vec::new();
        let mut settled = Vec::new();
        if args.all {
            chosen.extend(
                lot.messages()
                    .filter(|(_, p)| args.filter.passes(p, config.country, now))
                    .map(|(i, _)| i),
            );
        } else {
            for target in &args.targets {
                let found: Vec<usize> = lot
                    .messages()
                    .filter(|(i, p)| {
                        p.is(target)
                            && args.filter.passes(p, config.country, now)
                            && !chosen.contains(i)
                    })
                    .map(|(i, _)| i)
                    .collect();
                if found.is_empty() {
                    settled.push(unmatched(&*journal, target, "replay"));
                }
                chosen.extend(found);
            }
        }
        let replay = Replayer {
            journal: &*journal,
            actor: &actor,
            own_user: &own_user,
            dry_run: args.dry_run,
        };
        for index in chosen {
            settled.push(replay.one(&mut lot, &mut publisher, index).await);
        }
        release(lot).await;
        anyhow::Ok(settled)
    })?;
    if settled.is_empty() {
        eprintln!("aswctl: nothing parked passes the filters");
    }
    print_settled(args.hub.format, &settled)
}

struct Replayer<'a> {
    journal: &'a dyn Journal,
    actor: &'a str,
    own_user: &'a str,
    dry_run: bool,
}

impl Replayer<'_> {
    async fn one(
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
                anyhow!("parked in stage {stage}, which aswctl cannot replay"),
            );
        };
        let in_journal = match InJournal::of(self.journal, &parked) {
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
        let journal_note = match self.journal_replay(&in_journal) {
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
        publisher
            .publish("", queue, &parked.body, &properties)
            .await
            .with_context(|| format!("republishing to {queue}"))
    }
}
