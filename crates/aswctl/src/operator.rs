//! What the operator commands share: the hub's configuration, its journal and broker, the
//! operator's name for the journal, and the output format.

use std::path::PathBuf;

use anyhow::{Context, bail};
use asw_gateway::config::HubConfig;
use asw_journal::Journal;
use serde::Serialize;

/// Output format of the operator commands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Format {
    /// Aligned columns for people.
    Table,
    /// JSON on stdout, for scripts.
    Json,
}

/// The options every operator command takes.
#[derive(Debug, Clone, clap::Args)]
pub struct HubOptions {
    /// The hub's configuration file (TOML): its member state, broker and journal.
    #[arg(long, short, value_name = "FILE")]
    pub config: PathBuf,
    /// Output format.
    #[arg(long, value_enum, default_value_t = Format::Table)]
    pub format: Format,
}

impl HubOptions {
    /// Reads and checks the configuration.
    pub fn load(&self) -> anyhow::Result<HubConfig> {
        let config = HubConfig::load(&self.config)?;
        // The hub's kinds directory, so that every kind its journal holds has a name here.
        if let Some(dir) = &config.kinds_dir {
            asw_schema::install_kinds(dir)
                .with_context(|| format!("installing the kinds of {}", dir.display()))?;
        }
        Ok(config)
    }
}

/// Opens the hub's journal (SQLite file or PostgreSQL URL, as the configuration says) through the
/// [`Journal`] trait. A SQLite journal must exist: an operator command never creates one (a wrong
/// configuration would otherwise show an empty hub).
pub fn open_journal(config: &HubConfig) -> anyhow::Result<Box<dyn Journal>> {
    let journal = &config.journal;
    if journal.url.is_some() {
        // The error names the database with its password removed.
        return asw_journal::open_with_tls(journal.location(), &journal.tls)
            .context("opening the hub's journal");
    }
    let path = &journal.path;
    if !path.exists() {
        bail!(
            "there is no journal at {} (the [journal] path of the configuration): is this the configuration of a hub that ran?",
            path.display()
        );
    }
    asw_journal::open(path).with_context(|| format!("opening the journal {}", path.display()))
}

/// The operator's name for the journal: `--actor`, else `$USER`, else `$LOGNAME`.
pub fn actor(given: Option<&str>) -> anyhow::Result<String> {
    let from_env = || {
        ["USER", "LOGNAME"]
            .into_iter()
            .find_map(|v| std::env::var(v).ok())
    };
    match given.map(str::to_owned).or_else(from_env) {
        Some(name) if !name.trim().is_empty() => Ok(name.trim().to_owned()),
        _ => bail!("who is acting? Give --actor NAME (neither $USER nor $LOGNAME is set)"),
    }
}

/// A runtime for the broker work of one command.
pub fn runtime() -> anyhow::Result<tokio::runtime::Runtime> {
    Ok(tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?)
}

/// Prints `value` as pretty JSON on stdout.
pub fn print_json(value: &impl Serialize) -> anyhow::Result<()> {
    println!(
        "{}",
        serde_json::to_string_pretty(value).context("serialising the output")?
    );
    Ok(())
}
