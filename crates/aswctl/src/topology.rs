//! `aswctl topology apply --config FILE`: declares a hub's vhost, partner users, permissions
//! and policies (management API), exchanges, quorum queues, retry queues and bindings (AMQP).
//! Idempotent: running it again changes nothing. A changed `[broker] delivery_limit` only
//! changes the policy, which the broker applies to the existing queues.

use std::path::PathBuf;

use anyhow::Context;
use asw_gateway::config::HubConfig;
use asw_route::Topology;

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
    let topology = Topology::hub(
        config.country,
        &config.partner_states(),
        &config.retry,
        config.broker.delivery_limit,
    );
    let management = asw_amqp::Management::new(
        &config.broker.management_url,
        &config.broker.management_user,
        &config.broker.management_password,
    );
    let vhost = config.vhost();
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    let passwords = |user: &asw_route::User| {
        config
            .partners
            .get(&user.partner)
            .map(|p| p.password.clone())
            .unwrap_or_default()
    };
    runtime
        .block_on(asw_amqp::apply(
            &management,
            &config.broker.url,
            &vhost,
            &topology,
            &passwords,
        ))
        .with_context(|| {
            format!(
                "applying the topology of {} to vhost {vhost}",
                config.country
            )
        })?;
    println!(
        "vhost {vhost}: {} exchanges, {} queues, {} bindings, {} partner users, {} policies \
         (delivery limit {} into {})",
        topology.exchanges.len(),
        topology.queues.len(),
        topology.bindings.len(),
        topology.users.len(),
        topology.policies.len(),
        config.broker.delivery_limit,
        asw_route::names::PARKED_QUEUE
    );
    Ok(Outcome::Success)
}
