//! `aswctl topology apply --config FILE`: declares a hub's vhost, partner and back-office users,
//! permissions, topic permissions and policies (management API), exchanges, quorum queues,
//! retry queues, back-office queues and bindings (AMQP).
//! Idempotent: running it again changes nothing. A changed `[broker] delivery_limit` only
//! changes the policy, which the broker applies to the existing queues.

use std::path::PathBuf;

use anyhow::Context;
use asw_gateway::config::HubConfig;

use crate::Outcome;

/// Arguments of `aswctl topology`.
#[derive(Debug, clap::Args)]
pub struct TopologyArgs {
    #[command(subcommand)]
    command: TopologyCommand,
}

#[derive(Debug, clap::Subcommand)]
enum TopologyCommand {
    /// Declare everything the hub of a configuration needs on its broker.
    Apply {
        /// Hub configuration file (TOML).
        #[arg(long, short)]
        config: PathBuf,
    },
}

/// Runs `aswctl topology`.
pub fn run(args: &TopologyArgs) -> anyhow::Result<Outcome> {
    let TopologyCommand::Apply { config } = &args.command;
    let config = HubConfig::load(config)?;
    let topology = config.topology();
    // The nodes of a cluster share the management API's view: use the first that answers.
    let tls = config.broker.tls.load("broker")?;
    let management = asw_amqp::Management::first_answering_tls(
        &config.broker.management_urls,
        &config.broker.management_user,
        &config.broker.management_password,
        &tls,
    )
    .context("reaching the broker's management API")?;
    let vhost = config.vhost();
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    let passwords = |user: &asw_route::User| config.broker_password(user);
    // Declared through the first node that takes the connection.
    let mut applied = Err(anyhow::anyhow!("no broker URL"));
    for (n, url) in config.broker.urls.iter().enumerate() {
        match runtime.block_on(asw_amqp::apply_tls(
            &management,
            url,
            &tls,
            &vhost,
            &topology,
            &passwords,
        )) {
            // Everything `apply` does is idempotent: a transient failure on one node is retried
            // whole on the next.
            Err(e) if e.is_transient() && n + 1 < config.broker.urls.len() => {
                eprintln!("{e}; trying the next broker node");
            }
            outcome => {
                applied = outcome.map_err(anyhow::Error::from);
                break;
            }
        }
    }
    applied.with_context(|| {
        format!(
            "applying the topology of {} to vhost {vhost}",
            config.country
        )
    })?;
    println!(
        "vhost {vhost}: {} exchanges, {} queues, {} bindings, {} partner users, {} back-office \
         users, {} policies (delivery limit {} into {})",
        topology.exchanges.len(),
        topology.queues.len(),
        topology.bindings.len(),
        topology.users.len() - config.back_offices.len(),
        config.back_offices.len(),
        topology.policies.len(),
        config.broker.delivery_limit,
        asw_route::names::PARKED_QUEUE
    );
    Ok(Outcome::Success)
}
