//! `aswctl console user add | remove | list`: the operator console's accounts, in the file the
//! `[console] users` key names. Passwords are read from stdin (one line) and stored only as
//! argon2id hashes.

use std::io::BufRead;

use anyhow::{Context, bail};
use asw_console::users::{Role, Users};

use crate::Outcome;
use crate::operator::{Format, HubOptions, print_json};
use crate::table::Table;

/// Arguments of `aswctl console`.
#[derive(Debug, clap::Args)]
pub struct ConsoleArgs {
    #[command(subcommand)]
    command: ConsoleCommand,
}

#[derive(Debug, clap::Subcommand)]
enum ConsoleCommand {
    /// Manage the console's accounts.
    #[command(subcommand)]
    User(UserCommand),
}

#[derive(Debug, clap::Subcommand)]
enum UserCommand {
    /// Add an account; its password is read from stdin (one line, at least 12 characters).
    Add {
        #[command(flatten)]
        hub: HubOptions,
        /// The login name.
        name: String,
        /// viewer (read) or operator (read, replay, discard).
        #[arg(long, value_parser = ["viewer", "operator"])]
        role: String,
    },
    /// Remove an account (its sessions end at their expiry; logins stop at once).
    Remove {
        #[command(flatten)]
        hub: HubOptions,
        /// The login name.
        name: String,
    },
    /// List the accounts and their roles.
    List {
        #[command(flatten)]
        hub: HubOptions,
    },
}

/// The accounts file of the configuration's `[console]` section.
fn users_file(hub: &HubOptions) -> anyhow::Result<std::path::PathBuf> {
    let config = hub.load()?;
    match config.console {
        Some(console) => Ok(console.users),
        None => bail!(
            "{} has no [console] section: add one to turn the console on",
            hub.config.display()
        ),
    }
}

/// Runs `aswctl console ...`.
pub fn run(args: &ConsoleArgs) -> anyhow::Result<Outcome> {
    let ConsoleCommand::User(command) = &args.command;
    match command {
        UserCommand::Add { hub, name, role } => {
            let path = users_file(hub)?;
            let role: Role = role.parse()?;
            let mut line = String::new();
            std::io::stdin()
                .lock()
                .read_line(&mut line)
                .context("reading the password from stdin")?;
            let password = line.trim_end_matches(['\r', '\n']);
            let mut users = Users::load(&path)?;
            users.add(name, role, password)?;
            users.save(&path)?;
            println!("{name} added as {role} to {}", path.display());
        }
        UserCommand::Remove { hub, name } => {
            let path = users_file(hub)?;
            let mut users = Users::load(&path)?;
            if !users.remove(name) {
                eprintln!("aswctl: there is no user {name} in {}", path.display());
                return Ok(Outcome::Failed);
            }
            users.save(&path)?;
            println!("{name} removed from {}", path.display());
        }
        UserCommand::List { hub } => {
            let users = Users::load(&users_file(hub)?)?;
            match hub.format {
                Format::Json => print_json(
                    &users
                        .all()
                        .iter()
                        .map(|u| serde_json::json!({ "name": u.name, "role": u.role.as_str() }))
                        .collect::<Vec<_>>(),
                )?,
                Format::Table => {
                    let mut table = Table::new(&["NAME", "ROLE"]);
                    for u in users.all() {
                        table.push(vec![u.name.clone(), u.role.to_string()]);
                    }
                    print!("{}", table.render());
                }
            }
        }
    }
    Ok(Outcome::Success)
}
