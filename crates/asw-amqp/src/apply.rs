//! `apply`: make a hub's vhost match its topology from scratch or from any earlier state:
//! vhost, permissions, partner and back-office users and policies (management API), then exchanges, queues and
//! bindings (AMQP).

use asw_route::{Permissions, Topology, User};
use tracing::{info, warn};

use crate::connection::error_chain;
use asw_tls::ClientTls;

use crate::{AmqpError, Management, connect_tls, declare, with_vhost};

/// Makes `vhost` hold `topology`: creates the vhost, gives the management user (the admin,
/// e.g. `guest`) full permissions in it, creates or updates each partner and back-office user
/// with the password `passwords` gives it and sets its permissions and topic permissions, creates or replaces the topology's policies
/// (before the queues, so that they are covered from the start; a changed policy applies to
/// existing queues without their being declared again), then declares exchanges, queues and
/// bindings over AMQP, connecting to `amqp_url` pointed at `vhost` (the URL's own path is
/// ignored; its user should be the admin). Idempotent.
///
/// The passwords are asked for before the returned future starts, so the future is `Send`
/// even though `passwords` need not be.
pub fn apply<'a>(
    management: &'a Management,
    amqp_url: &'a str,
    vhost: &'a str,
    topology: &'a Topology,
    passwords: &dyn Fn(&User) -> String,
) -> impl Future<Output = Result<(), AmqpError>> + Send + 'a {
    apply_tls(
        management,
        amqp_url,
        &DEFAULT_TLS,
        vhost,
        topology,
        passwords,
    )
}

/// No CA, no client certificate.
static DEFAULT_TLS: std::sync::LazyLock<ClientTls> = std::sync::LazyLock::new(ClientTls::default);

/// [`apply`], connecting to `amqp_url` with `tls` (see [`crate::connect_tls`]). A user whose
/// password is empty gets none: it logs in with its certificate (EXTERNAL).
pub fn apply_tls<'a>(
    management: &'a Management,
    amqp_url: &'a str,
    tls: &'a ClientTls,
    vhost: &'a str,
    topology: &'a Topology,
    passwords: &dyn Fn(&User) -> String,
) -> impl Future<Output = Result<(), AmqpError>> + Send + 'a {
    let users: Vec<(User, String)> = topology
        .users
        .iter()
        .map(|user| (user.clone(), passwords(user)))
        .collect();
    async move {
        let admin = management.clone();
        let vhost_name = vhost.to_owned();
        let user_count = users.len();
        let policies = topology.policies.clone();
        tokio::task::spawn_blocking(move || -> Result<(), AmqpError> {
            admin.ensure_vhost(&vhost_name)?;
            let everything = Permissions {
                configure: ".*".into(),
                write: ".*".into(),
                read: ".*".into(),
            };
            admin.set_permissions(&vhost_name, admin.user(), &everything)?;
            for (user, password) in &users {
                admin.ensure_user(&user.name, password, &[])?;
                admin.set_permissions(&vhost_name, &user.name, &user.permissions)?;
                for topic in &user.topic_permissions {
                    admin.set_topic_permissions(&vhost_name, &user.name, topic)?;
                }
            }
            for policy in &policies {
                admin.set_policy(&vhost_name, policy)?;
            }
            Ok(())
        })
        .await
        .map_err(|join| AmqpError::Management {
            method: "PUT",
            path: format!("/api/vhosts/{vhost}"),
            status: None,
            detail: format!("the management task failed: {join}"),
        })??;

        let url = with_vhost(amqp_url, vhost)?;
        let connection = connect_tls(&url, "aswhub topology", tls).await?;
        let declared = async {
            let channel = connection.open_channel().await?;
            declare(&channel, topology).await
        }
        .await;
        if let Err(error) = connection.close().await {
            warn!(vhost, error = %error_chain(&error), "Cannot close the topology connection");
        }
        declared?;
        info!(
            vhost,
            exchanges = topology.exchanges.len(),
            queues = topology.queues.len(),
            bindings = topology.bindings.len(),
            users = user_count,
            policies = topology.policies.len(),
            "Applied the topology"
        );
        Ok(())
    }
}
