//! `tracker`: the command-line entry point. Parses arguments, validates them into
//! settings, and hands each subcommand to its module in `cmd/`. This binary is the
//! only place that wires crates together and the only user of `anyhow`.
//!
//! Exit codes: 0 on success, 2 on bad input (a one-line error on stderr), 1 on any
//! other failure.

mod cmd;
mod pipeline;

use std::process::ExitCode;

use clap::{CommandFactory, Parser, Subcommand};

/// Real-time shipment tracking and ETA engine.
#[derive(Debug, Parser)]
#[command(name = "tracker", version, about)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Build and inspect road graphs.
    #[command(subcommand)]
    Graph(cmd::graph::GraphCommand),
    /// The fastest truck route between two points (JSON with `--json`).
    Route(cmd::route::RouteArgs),
    /// Map-match a trace file; GeoJSON of the matched path and of every fix.
    Match(cmd::matching::MatchArgs),
    /// Score the matcher on track folders with ground truth (route mismatch).
    MatchEval(cmd::matching::MatchEvalArgs),
    /// Replay timed traces and score the ETA against the real arrival and the
    /// free-flow baseline, by horizon.
    EtaEval(cmd::eta_eval::EtaEvalArgs),
    /// Export the prediction log, stop arrivals or orders of a time range as
    /// CSV or Parquet, for analysts' own tools.
    Export(cmd::export::ExportArgs),
    /// Run the portal: orders API, tracking pages and live updates.
    Serve(Box<cmd::serve::ServeArgs>),
    /// Manage tenants.
    #[command(subcommand)]
    Tenant(cmd::tenant::TenantCommand),
    /// Drive simulated trucks on a map and publish their positions to Kafka or
    /// the HTTP API (demo and load generator).
    Simulate(cmd::simulate::SimulateArgs),
}

fn main() -> ExitCode {
    // `serve --config FILE` settings become flags before clap parses, so they are
    // checked exactly like typed ones (`cmd/config_file.rs`).
    let args =
        match cmd::config_file::expand(std::env::args_os().collect(), &Cli::command(), &|name| {
            std::env::var_os(name)
        }) {
            Ok(args) => args,
            Err(err) => return report(err),
        };
    let cli = Cli::parse_from(args);
    let result = match cli.command {
        Command::Graph(command) => cmd::graph::run(command),
        Command::Route(args) => cmd::route::run(args),
        Command::Match(args) => cmd::matching::run_match(args),
        Command::MatchEval(args) => cmd::matching::run_eval(args),
        Command::EtaEval(args) => cmd::eta_eval::run(args),
        Command::Export(args) => cmd::export::run(args),
        Command::Serve(args) => cmd::serve::run(*args),
        Command::Tenant(command) => cmd::tenant::run(command),
        Command::Simulate(args) => cmd::simulate::run(args),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => report(err),
    }
}

/// One line on stderr (the chain of causes joined, as users script on it); exit
/// code 2 for bad input, 1 for anything else.
fn report(err: anyhow::Error) -> ExitCode {
    let bad_input = err.downcast_ref::<cmd::BadInput>().is_some();
    let message = err
        .chain()
        .map(|c| c.to_string())
        .collect::<Vec<_>>()
        .join(": ");
    cmd::output::eprint_line(&format!("error: {message}"));
    if bad_input {
        ExitCode::from(2)
    } else {
        ExitCode::FAILURE
    }
}
