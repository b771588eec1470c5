//! `relaunch rebase --from-file`: every listed image rebased by one [`Session`] (one
//! registry client, each run image read once, a `--launcher-image` layer built once)
//! through the fleet runner, each written back to its own reference.

use std::process::ExitCode;

use serde_json::Value;
use tracing::warn;

use super::session::{Job, Outcome, Session, Status};
use super::Args;
use crate::fleet::{self, Runner, Words};

/// Runs the fleet and returns the exit status (see [`fleet::Summary::exit_code`]).
pub fn run(session: &Session, args: &Args) -> anyhow::Result<ExitCode> {
    if args.report.is_some() {
        warn!("--report / CNB_REPORT_PATH is ignored with --from-file; use --json");
    }
    let items = args.fleet.items()?;
    let traffic = || session.counters();
    let runner =
        Runner::new(&args.fleet, Words { changed: "rebased" }, args.json).with_traffic(&traffic);
    let summary = runner.run(items, |item| {
        Ok(fleet_outcome(session.rebase(&Job {
            image: item.reference.clone(),
            run_image: args.run_image.clone(),
            ..Job::default()
        })))
    });
    Ok(ExitCode::from(summary.exit_code()))
}

fn fleet_outcome(o: Outcome) -> fleet::Outcome {
    let reason = o.failure.as_ref().map(ToString::to_string);
    let old = o.old_digest.clone();
    let mut out = match (o.status, o.old_digest, o.new_digest) {
        (Status::Rebased, Some(old), Some(new)) => fleet::Outcome::changed(old, new),
        (Status::Unchanged, Some(old), _) => fleet::Outcome::unchanged(old),
        (Status::Refused, ..) => fleet::Outcome::refused(old, reason.unwrap_or_default()),
        _ => fleet::Outcome::failed(old, reason.unwrap_or_default()),
    };
    let mut put = |k: &str, v: Value| {
        if !v.is_null() {
            out.details.insert(k.into(), v);
        }
    };
    put("run-image", o.run_image.into());
    if let Some((previous, now)) = o.launcher {
        put("previous-launcher-sha", previous.into());
        put("launcher-sha", now.into());
    }
    if !o.warnings.is_empty() {
        put("warnings", o.warnings.into());
    }
    out
}
