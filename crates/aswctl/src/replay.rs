//! `aswctl replay`: puts parked messages back into the stage where they failed, as the original,
//! through [`asw_console::settle`] (the console replays with the same code; its module says how).

use asw_amqp::ConfirmingPublisher;
use asw_console::settle::{Replayer, unmatched};
use time::OffsetDateTime;

use crate::Outcome;
use crate::operator::{HubOptions, actor, open_journal, runtime};
use crate::parked::{DEFAULT_LIMIT, print_settled};
use crate::parking::{ParkedFilter, Target, release, warn_if_partial};

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
        let mut lot = crate::parking::read(
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
