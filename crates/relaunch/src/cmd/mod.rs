//! Subcommands and what they share: global flags, tracing, progress, exit handling.

pub mod check;
pub mod copy;
pub mod couple;
pub mod demo;
pub mod export;
pub mod images;
pub mod inspect;
pub mod lifecycle_image;
mod preflight;
mod progress;
pub mod rebase;
mod report_html;
pub mod run_image;

use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use relaunch_oci::{Session, TransportOptions};

pub use progress::BarProgress;

/// Flags accepted by every subcommand.
#[derive(clap::Args, Debug)]
pub struct Global {
    /// Registry (host[:port], or host for any port) reached over HTTPS without certificate
    /// verification, falling back to plain HTTP; repeatable. Also read from
    /// CNB_INSECURE_REGISTRIES (comma-separated). localhost, 127.0.0.1, ::1 and private
    /// IPv4 addresses may fall back to plain HTTP without it.
    #[arg(long = "insecure-registry", value_name = "HOST", global = true)]
    pub insecure_registry: Vec<String>,
    /// Deadline for all registry traffic of the command (e.g. 90s, 10m, 1h; a bare number
    /// is seconds): requests, retries and credential helpers end with an error when it passes.
    #[arg(long, value_name = "DURATION", value_parser = parse_duration, global = true)]
    pub timeout: Option<Duration>,
    /// PEM file of CA certificates to trust for HTTPS registries, besides the built-in
    /// Mozilla roots; repeatable. SSL_CERT_FILE, when set, is trusted the same way.
    #[arg(long = "registry-ca", value_name = "FILE", global = true)]
    pub registry_ca: Vec<PathBuf>,
    /// More logging on stderr (-v info, -vv debug, -vvv trace); RUST_LOG overrides.
    #[arg(short, long, action = clap::ArgAction::Count, global = true)]
    pub verbose: u8,
    /// Built once: every repository the command opens shares its registry client.
    #[arg(skip)]
    options: OnceLock<TransportOptions>,
    /// Repositories opened by this process, sharing one registry client (token cache,
    /// connections, counters).
    #[arg(skip)]
    session: OnceLock<Session>,
}

/// `90`, `90s`, `10m`, `1h`.
fn parse_duration(text: &str) -> Result<Duration, String> {
    let (number, unit) = match text.find(|c: char| !c.is_ascii_digit()) {
        Some(i) => text.split_at(i),
        None => (text, "s"),
    };
    let seconds = match unit {
        "s" => 1,
        "m" => 60,
        "h" => 3600,
        _ => {
            return Err(format!(
                "{text:?}: expected a number of seconds, or with s, m or h"
            ))
        }
    };
    number
        .parse::<u64>()
        .ok()
        .filter(|n| *n > 0)
        .and_then(|n| n.checked_mul(seconds))
        .map(Duration::from_secs)
        .ok_or_else(|| format!("{text:?}: expected a positive whole number"))
}

impl Global {
    /// The process's session, configured from the flags on first use.
    pub fn session(&self) -> &Session {
        self.session
            .get_or_init(|| Session::new(self.transport_options()))
    }

    /// The command's transport options; clones share one registry client.
    pub fn transport_options(&self) -> TransportOptions {
        self.options.get_or_init(|| self.build_options()).clone()
    }

    fn build_options(&self) -> TransportOptions {
        let mut extra_root_certs = self.registry_ca.clone();
        extra_root_certs.extend(
            std::env::var_os("SSL_CERT_FILE")
                .filter(|v| !v.is_empty())
                .map(PathBuf::from),
        );
        let opts = TransportOptions {
            insecure_registries: self.insecure_registry.clone(),
            extra_root_certs,
            deadline: self.timeout.map(|t| Instant::now() + t),
            ..TransportOptions::default()
        };
        match std::env::var("CNB_INSECURE_REGISTRIES") {
            Ok(list) => opts.with_env_list(&list),
            Err(_) => opts,
        }
    }

    pub fn init_tracing(&self) {
        let default = match self.verbose {
            0 => "warn",
            1 => "info",
            2 => "debug",
            _ => "trace",
        };
        let filter = tracing_subscriber::EnvFilter::try_from_default_env()
            .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(default));
        tracing_subscriber::fmt()
            .with_env_filter(filter)
            .with_writer(std::io::stderr)
            .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
            .with_target(false)
            .init();
    }
}

/// Exit status when stdout was closed under us: 128 + SIGPIPE, what a shell reports for a
/// Unix tool that SIGPIPE ended (Rust ignores the signal, so writes fail instead).
const CLOSED_STDOUT: i32 = 128 + 13;

/// Writes one line of output. A closed stdout (`relaunch inspect … | head -0`) ends the
/// process quietly, as it would `cat`; any other write failure is reported the same way.
pub fn print_line(args: std::fmt::Arguments<'_>) {
    use std::io::Write;
    let mut out = std::io::stdout().lock();
    if let Err(e) = out.write_fmt(args).and_then(|()| out.write_all(b"\n")) {
        if e.kind() != std::io::ErrorKind::BrokenPipe {
            eprintln!("ERROR: writing to stdout: {e}");
        }
        std::process::exit(CLOSED_STDOUT);
    }
}

/// Prints an error chain and maps it to the process exit code.
pub fn finish(result: anyhow::Result<ExitCode>) -> ExitCode {
    match result {
        Ok(code) => code,
        Err(err) => {
            eprintln!("ERROR: {err:#}");
            ExitCode::FAILURE
        }
    }
}
