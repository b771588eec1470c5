//! `relaunch rebase` and the multicall `rebaser`: both build a [`session::Session`] and
//! run [`session::Session::rebase`] on one image; they differ only in how they read flags
//! and print (the rebaser speaks the reference lifecycle's flags, messages and exit codes).

mod fleet;
pub mod rebaser;
pub mod session;

use std::path::Path;
use std::process::ExitCode;

use anyhow::Context;
use relaunch_lifecycle::apis::{Api, ApiList};
use relaunch_lifecycle::launcher::Overrides;
use relaunch_lifecycle::rebase::{LauncherSwap, LATEST_PLATFORM_API};
use relaunch_oci::Digest;

use super::images::resolve_launcher;
use super::Global;
use crate::fleet::FleetArgs;
use session::{Job, Outcome, Session, Settings, Status};

#[derive(clap::Args, Debug)]
pub struct Args {
    /// The image to rebase and write back: oci:<dir>[:<tag>] or [host[:port]/]repo[:tag].
    #[arg(required_unless_present = "from_file", conflicts_with = "from_file")]
    pub image: Option<String>,
    /// More names for the result (written with the same manifest).
    #[arg(conflicts_with = "from_file")]
    pub extra_tags: Vec<String>,
    /// Run image to rebase onto (default: the one the app's runImage metadata names).
    #[arg(long, env = "CNB_RUN_IMAGE")]
    pub run_image: Option<String>,
    /// Rebase this image instead of IMAGE (e.g. a digest reference); IMAGE is only written.
    #[arg(long, conflicts_with = "from_file")]
    pub previous_image: Option<String>,
    /// Override the checks the reference lets -force override, and the launcher API checks.
    #[arg(long, env = "CNB_FORCE_REBASE")]
    pub force: bool,
    /// Write report.toml ([image] tags, digest, manifest-size) here.
    #[arg(long, value_name = "FILE", env = "CNB_REPORT_PATH")]
    pub report: Option<std::path::PathBuf>,
    /// Also switch a binary-mode app to a symlink to the new run image's launcher.
    #[arg(long, conflicts_with = "launcher_image")]
    pub decouple: bool,
    /// Replace the app's launcher layer in place with one for this launcher: a file, or an
    /// image or layout holding /cnb/lifecycle/launcher (e.g. a lifecycle image).
    #[arg(long, value_name = "FILE|IMAGE")]
    pub launcher_image: Option<String>,
    /// Only rebase apps whose launcher layer (launcher.sha) is one of these diffIDs; repeatable.
    #[arg(long, value_name = "DIFFID")]
    pub launcher_must_match: Vec<Digest>,
    /// Platform APIs of a --launcher-image that does not declare them (comma-separated).
    #[arg(long, value_name = "LIST")]
    pub platform_apis: Option<ApiList>,
    /// Buildpack APIs of a --launcher-image that does not declare them (comma-separated).
    #[arg(long, value_name = "LIST")]
    pub buildpack_apis: Option<ApiList>,
    /// Version of a --launcher-image that does not declare one.
    #[arg(long, value_name = "VERSION")]
    pub launcher_version: Option<String>,
    /// The Platform API the rebase follows (name check from 0.12, base.* labels from 0.12).
    #[arg(long, env = "CNB_PLATFORM_API", default_value_t = LATEST_PLATFORM_API.to_string())]
    pub platform_api: String,
    /// Print the outcome as JSON, with the registry traffic it cost (fleet mode: one JSON
    /// object per image and a summary line).
    #[arg(long)]
    pub json: bool,
    #[command(flatten)]
    pub fleet: FleetArgs,
}

pub fn run(global: &Global, args: Args) -> anyhow::Result<ExitCode> {
    let platform_api: Api = args
        .platform_api
        .parse()
        .with_context(|| format!("--platform-api {}", args.platform_api))?;
    let launcher = match &args.launcher_image {
        Some(spec) => {
            let overrides = Overrides {
                platform_apis: args.platform_apis.clone(),
                buildpack_apis: args.buildpack_apis.clone(),
                version: args.launcher_version.clone(),
            };
            Some(LauncherSwap::new(resolve_launcher(
                global, spec, &overrides, None,
            )?)?)
        }
        None => None,
    };
    let settings = Settings {
        platform_api,
        force: args.force,
        decouple: args.decouple,
        launcher_must_match: args.launcher_must_match.clone(),
    };
    let session = Session::new(global.transport_options(), settings, launcher)?;
    let Some(image) = &args.image else {
        return fleet::run(&session, &args);
    };
    args.fleet.refuse_without_list()?;
    let outcome = session.rebase(&Job {
        image: image.clone(),
        extra_tags: args.extra_tags.clone(),
        previous: args.previous_image.clone(),
        run_image: args.run_image.clone(),
    });
    if let (Some(path), None) = (&args.report, &outcome.failure) {
        write_report(path, &outcome)?;
    }
    if args.json {
        let mut out = outcome.to_json();
        let c = session.counters();
        // Requests exclude the 401 by which a new client learns the auth scheme.
        out["registry"] = serde_json::json!({
            "requests": c.total_requests() - c.auth_challenges,
            "by-method": c.requests,
            "auth-challenges": c.auth_challenges,
            "bytes-down": c.bytes_downloaded(),
            "bytes-up": c.bytes_uploaded(),
            "downloaded": c.downloaded.iter().map(|(d, n)| (d.to_string(), *n)).collect::<std::collections::BTreeMap<_, _>>(),
        });
        outln!("{out:#}");
    } else {
        print_outcome(&outcome);
    }
    Ok(match &outcome.failure {
        None => ExitCode::SUCCESS,
        Some(f) => ExitCode::from(f.exit_code()),
    })
}

fn print_outcome(o: &Outcome) {
    for w in &o.warnings {
        outln!("Warning: {w}");
    }
    let digest = |d: &Option<Digest>| d.as_ref().map(ToString::to_string).unwrap_or_default();
    match (&o.failure, o.status) {
        (Some(f), _) => eprintln!("ERROR: {f}"),
        (None, Status::Unchanged) => outln!(
            "unchanged: {} is already on {} with this launcher ({}); nothing pushed",
            o.reference,
            o.run_image.as_deref().unwrap_or("its run image"),
            digest(&o.new_digest)
        ),
        (None, _) => {
            outln!(
                "rebased {}{}: {} -> {}",
                o.reference,
                o.run_image
                    .as_deref()
                    .map(|r| format!(" onto {r}"))
                    .unwrap_or_default(),
                digest(&o.old_digest),
                digest(&o.new_digest)
            );
            if let Some((old, new)) = o.launcher.as_ref().filter(|(a, b)| a != b) {
                outln!("launcher layer {old} -> {new}");
            }
        }
    }
    if o.failure.is_none() && o.tags.len() > 1 {
        outln!("names: {}", o.tags.join(", "));
    }
}

/// report.toml as the reference writes it: `[image]` tags, digest, manifest-size (the
/// latter omitted when zero). Strings are written as JSON strings, which are valid TOML
/// basic strings for everything an image name can hold.
pub fn write_report(path: &Path, o: &Outcome) -> anyhow::Result<()> {
    let mut toml = String::from("[image]\n");
    let tags: Vec<String> = o
        .tags
        .iter()
        .map(|t| serde_json::json!(t).to_string())
        .collect();
    toml += &format!("  tags = [{}]\n", tags.join(", "));
    if let Some(d) = &o.new_digest {
        toml += &format!("  digest = \"{d}\"\n");
    }
    if o.manifest_size > 0 {
        toml += &format!("  manifest-size = {}\n", o.manifest_size);
    }
    std::fs::write(path, toml).with_context(|| format!("writing {}", path.display()))
}
