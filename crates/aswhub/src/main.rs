//! `aswhub`: the daemon. A thin shell over `asw_gateway`: parse the command line, check the
//! configuration before anything starts (exit 64 listing every problem), then run the hub until
//! SIGTERM or SIGINT, draining in-flight messages within the grace period. SIGHUP re-reads the
//! trust store.

use std::path::PathBuf;
use std::process::ExitCode;

use asw_gateway::config::HubConfig;
use asw_gateway::hub::Hub;
use clap::{Parser, Subcommand};
use tokio_util::sync::CancellationToken;

/// Exit code for a configuration that cannot be used (EX_CONFIG).
const EXIT_CONFIG: u8 = 64;

/// aswhub: the ASEAN Single Window hub of one member state.
#[derive(Debug, Parser)]
#[command(name = "aswhub", version, about)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run the hub.
    Run {
        /// Configuration file (TOML).
        #[arg(long, short)]
        config: PathBuf,
    },
    /// Check a configuration file and report every problem (exit 64 if any).
    CheckConfig {
        /// Configuration file (TOML).
        #[arg(long, short)]
        config: PathBuf,
    },
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| "info,lapin=warn".into()),
        )
        .with_writer(std::io::stderr)
        .init();
    let (Command::Run { config } | Command::CheckConfig { config }) = &cli.command;
    let config = match HubConfig::load(config) {
        Ok(config) => config,
        Err(e) => {
            eprintln!("aswhub: {e}");
            return ExitCode::from(EXIT_CONFIG);
        }
    };
    match cli.command {
        Command::CheckConfig { config: file } => {
            for warning in &config.warnings {
                eprintln!("aswhub: warning: {warning}");
            }
            if let Err(e) = asw_gateway::preflight::check(&config, &file) {
                eprintln!("aswhub: {e}");
                return ExitCode::from(EXIT_CONFIG);
            }
            for warning in asw_gateway::preflight::warnings(&config) {
                eprintln!("aswhub: warning: {warning}");
            }
            println!(
                "configuration is valid: {} with {} partner(s), vhost {}",
                config.country,
                config.all_partners().len(),
                config.vhost()
            );
            ExitCode::SUCCESS
        }
        Command::Run { .. } => match run(config) {
            Ok(()) => ExitCode::SUCCESS,
            Err(e) => {
                eprintln!("aswhub: {e:#}");
                ExitCode::FAILURE
            }
        },
    }
}

fn run(config: HubConfig) -> anyhow::Result<()> {
    for warning in &config.warnings {
        tracing::warn!(warning = %warning, "Configuration to fix");
    }
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .max_blocking_threads(8)
        .build()?;
    runtime.block_on(async {
        let console = config.console.clone();
        let hub = std::sync::Arc::new(Hub::new(config)?);
        if let Some(console) = console {
            let console = asw_console::Console::of_hub(&hub, &console);
            hub.add_routes(asw_console::routes(std::sync::Arc::new(console)));
        }
        let shutdown = CancellationToken::new();
        let signals = shutdown.clone();
        tokio::spawn(async move {
            asw_gateway::signals::terminated().await;
            tracing::info!("Shutdown requested; draining in-flight messages.");
            signals.cancel();
        });
        // SIGHUP, and once an hour, re-read the trust store (certificate rollover without restart).
        let reloading = hub.clone();
        tokio::spawn(async move {
            use tokio::signal::unix::{SignalKind, signal};
            let Ok(mut hangup) = signal(SignalKind::hangup()) else { return };
            let mut hourly = tokio::time::interval(std::time::Duration::from_secs(3600));
            hourly.tick().await;
            loop {
                tokio::select! {
                    _ = hangup.recv() => {}
                    _ = hourly.tick() => {}
                }
                if let Err(e) = reloading.reload_trust() {
                    tracing::error!(error = %e, "Cannot read the trust store folder; keeping the certificates loaded before.");
                }
            }
        });
        hub.run(shutdown).await?;
        Ok(())
    })
}
