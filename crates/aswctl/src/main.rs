//! `aswctl`: the aswhub operator and developer CLI.
//!
//! `main` parses the command line, runs the command, prints the error chain once and maps the
//! outcome to the exit codes of the CLI contract (0 success, 1 a checked thing failed, 2 usage or
//! I/O error).

use std::process::ExitCode;

use clap::{Parser, Subcommand};

mod console;
mod demo;
mod export;
mod input;
mod journal;
mod messages;
mod operator;
mod parked;
mod parking;
mod replay;
mod report;
mod sample;
mod signing;
mod table;
mod topology;
mod validate;
mod when;

/// aswhub operator and developer CLI.
#[derive(Debug, Parser)]
#[command(name = "aswctl", version, about)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Print a valid unsigned sample document on stdout.
    Sample(sample::SampleArgs),
    /// Validate documents against the ASW schemas and business rules.
    Validate(validate::ValidateArgs),
    /// Run hubs on the local broker and play e-Form D and ACDD exchanges between them.
    Demo(demo::DemoArgs),
    /// Make a private key and a self-signed certificate for a member state.
    Keygen(signing::KeygenArgs),
    /// Sign a document with a private key and its certificate.
    Sign(signing::SignArgs),
    /// Verify signed documents against a trust directory.
    Verify(signing::VerifyArgs),
    /// Inspect the trust directory.
    Trust(signing::TrustArgs),
    /// Declare a hub's broker topology (vhost, users, exchanges, queues, bindings).
    Topology(topology::TopologyArgs),
    /// What is parked in asw.parked and why; discard what must never go through.
    Parked(parked::ParkedArgs),
    /// Put parked messages back into the stage where they failed, as the original.
    Replay(replay::ReplayArgs),
    /// What the journal knows: messages, their history, whole conversations.
    Messages(messages::MessagesArgs),
    /// The operator console's accounts (`console user add|remove|list`).
    Console(console::ConsoleArgs),
    /// Export the exact bytes of every message of a period, with an index and certificates, for auditors.
    Export(export::ExportArgs),
    /// Keep the journal bounded: archive settled messages and remove them from it.
    Journal(journal::JournalArgs),
}

/// What a command reports: success, or that what it checked failed (exit 1).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// Everything checked was fine.
    Success,
    /// Something checked was not (invalid document, bad signature, expiring certificate).
    Failed,
}

fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => {
            // clap prints help and version on stdout with exit 0, usage errors with exit 2.
            let _ = e.print();
            return ExitCode::from(u8::try_from(e.exit_code()).unwrap_or(2));
        }
    };
    let result = match cli.command {
        Command::Sample(args) => sample::run(&args),
        Command::Validate(args) => validate::run(&args),
        Command::Demo(args) => demo::run(&args),
        Command::Keygen(args) => signing::keygen(&args),
        Command::Sign(args) => signing::sign(&args),
        Command::Verify(args) => signing::verify(&args),
        Command::Trust(args) => signing::trust(&args),
        Command::Topology(args) => topology::run(&args),
        Command::Parked(args) => parked::run(&args),
        Command::Replay(args) => replay::run(&args),
        Command::Messages(args) => messages::run(&args),
        Command::Console(args) => console::run(&args),
        Command::Export(args) => export::run(&args),
        Command::Journal(args) => journal::run(&args),
    };
    match result {
        Ok(Outcome::Success) => ExitCode::SUCCESS,
        Ok(Outcome::Failed) => ExitCode::from(1),
        Err(e) => {
            eprintln!("aswctl: {e:#}");
            ExitCode::from(2)
        }
    }
}
