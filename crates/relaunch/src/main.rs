//! `relaunch`: launcher decoupling for Cloud Native Buildpacks images.
//! Each subcommand lives in `cmd/<name>.rs` with an `Args` struct and a `run` function;
//! adding one is a variant here plus a match arm.

mod cmd;

use std::process::ExitCode;

use clap::{Parser, Subcommand};

#[derive(Parser)]
#[command(name = "relaunch", version, about = "Launcher decoupling for CNB app images")]
struct Cli {
    #[command(flatten)]
    global: cmd::Global,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Copy an image or index between OCI layouts and registries (mounting blobs where possible).
    Copy(cmd::copy::Args),
    /// Show an image's manifest, config, layers, labels, history and CNB launcher facts.
    Inspect(cmd::inspect::Args),
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    cli.global.init_tracing();
    let result = match cli.command {
        Command::Copy(args) => cmd::copy::run(&cli.global, args),
        Command::Inspect(args) => cmd::inspect::run(&cli.global, args),
    };
    cmd::finish(result)
}
