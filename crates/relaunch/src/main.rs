//! `relaunch`: launcher decoupling for Cloud Native Buildpacks images.
//! Each subcommand lives in `cmd/<name>.rs` with an `Args` struct and a `run` function;
//! adding one is a variant here plus a match arm.

/// `println!` for command output, without the panic on a closed stdout (see
/// `cmd::print_line`).
macro_rules! outln {
    ($($arg:tt)*) => {
        $crate::cmd::print_line(format_args!($($arg)*))
    };
}

mod cmd;
mod fleet;

use std::process::ExitCode;

use clap::{Parser, Subcommand};

#[derive(Parser)]
#[command(
    name = "relaunch",
    version,
    about = "Launcher decoupling for CNB app images"
)]
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
    /// Run-image operations (stamp a launcher into a run image).
    RunImage(cmd::run_image::Args),
    /// Replace the app's launcher binary by a symlink to the run image's launcher.
    Decouple(cmd::couple::DecoupleArgs),
    /// Put a launcher binary back into a decoupled app image.
    Recouple(cmd::couple::RecoupleArgs),
    /// Will the app start with a run image's launcher? Exit 2 when it would not.
    Check(cmd::check::Args),
    /// Export an app image from a layers directory (the lifecycle exporter; also run as
    /// `exporter` through a symlink). Single-dash flags as the lifecycle spells them work too.
    Export(Box<cmd::export::Args>),
    /// Derive a lifecycle image whose /cnb/lifecycle/launcher (and its SBOM) is relaunch's
    /// launcher, for `pack build --lifecycle-image`, builders and kpack ClusterLifecycles.
    LifecycleImage(cmd::lifecycle_image::Args),
    /// Rebase an app image onto a new run image and/or swap its launcher layer (drop-in
    /// for the lifecycle rebaser, which is also this binary when run as `rebaser`).
    Rebase(cmd::rebase::Args),
    /// Run the whole decoupling story on OCI layouts in a local directory.
    Demo(cmd::demo::Args),
}

fn main() -> ExitCode {
    // Lossy, never a panic on a non-UTF-8 argument (clap reports those itself).
    let argv: Vec<String> = std::env::args_os()
        .map(|a| a.to_string_lossy().into_owned())
        .collect();
    let name = argv
        .first()
        .and_then(|a| std::path::Path::new(a).file_name())
        .and_then(|n| n.to_str())
        .unwrap_or_default();
    // Multicall, as the lifecycle binary: run as `rebaser` (e.g. a symlink at
    // /cnb/lifecycle/rebaser) it is the lifecycle's rebaser, as `exporter` its exporter,
    // flags and all.
    if name == "rebaser" {
        return cmd::rebase::rebaser::main();
    }
    if name == "exporter" {
        return cmd::export::multicall(argv);
    }
    // `relaunch export -app …`: the exporter's single-dash flags work here too.
    if argv.get(1).map(String::as_str) == Some("export") {
        let mut args = vec![format!("{name} export")];
        args.extend(argv.into_iter().skip(2));
        return cmd::export::multicall(args);
    }
    let cli = Cli::parse();
    cli.global.init_tracing();
    let result = match cli.command {
        Command::Copy(args) => cmd::copy::run(&cli.global, args),
        Command::Inspect(args) => cmd::inspect::run(&cli.global, args),
        Command::RunImage(args) => cmd::run_image::run(&cli.global, args),
        Command::Decouple(args) => cmd::couple::run_decouple(&cli.global, args),
        Command::Recouple(args) => cmd::couple::run_recouple(&cli.global, args),
        Command::Check(args) => cmd::check::run(&cli.global, args),
        Command::LifecycleImage(args) => cmd::lifecycle_image::run(&cli.global, args),
        Command::Rebase(args) => cmd::rebase::run(&cli.global, args),
        Command::Demo(args) => cmd::demo::run(&cli.global, args),
        Command::Export(args) => return cmd::export::run(*args),
    };
    cmd::finish(result)
}
