//! The multicall `rebaser`: the lifecycle v0.21 rebaser's command line — single-dash Go
//! flags (each from the Platform API that introduced it), `CNB_*` variables, positional
//! names (the first is the image, the rest more tags) — with its `ERROR:`/`Warning:` lines
//! on stdout and its exit codes, so a platform can put it at /cnb/lifecycle/rebaser.

use std::path::PathBuf;
use std::process::ExitCode;

use relaunch_lifecycle::apis::Api;
use relaunch_lifecycle::launcher::Overrides;
use relaunch_lifecycle::rebase::{LauncherSwap, LATEST_PLATFORM_API, OLDEST_PLATFORM_API};
use relaunch_oci::Digest;

use super::session::{Job, Session, Settings, Status};
use super::write_report;
use crate::cmd::images::resolve_launcher;
use crate::cmd::Global;

const FAILED: u8 = 1;
/// Go's flag package: undefined flag, missing value, bad value.
const BAD_FLAG: u8 = 2;
const INVALID_ARGS: u8 = 3;
const PLATFORM_API: u8 = 11;
const REBASE_ERROR: u8 = 72;

#[derive(Clone, Copy, PartialEq)]
enum Kind {
    Bool,
    Text,
    Int,
    /// Repeatable, values collected.
    List,
}

struct Flag {
    name: &'static str,
    kind: Kind,
    /// The Platform API from which the flag exists.
    since: Api,
    usage: &'static str,
}

const fn flag(name: &'static str, kind: Kind, since: Api, usage: &'static str) -> Flag {
    Flag {
        name,
        kind,
        since,
        usage,
    }
}

const ALL: Api = OLDEST_PLATFORM_API;
const FLAGS: [Flag; 16] = [
    flag("daemon", Kind::Bool, ALL, "export to docker daemon"),
    flag(
        "force",
        Kind::Bool,
        Api::new(0, 12),
        "execute rebase even if operation is unsafe",
    ),
    flag(
        "gid",
        Kind::Int,
        ALL,
        "GID of user's group in the stack's build and run images",
    ),
    flag(
        "image",
        Kind::Text,
        ALL,
        "[deprecated] reference to run image",
    ),
    flag(
        "insecure-registry",
        Kind::List,
        Api::new(0, 13),
        "insecure registries",
    ),
    flag(
        "log-level",
        Kind::Text,
        ALL,
        "logging level (default \"info\")",
    ),
    flag(
        "no-color",
        Kind::Bool,
        ALL,
        "disable color output (default true)",
    ),
    flag(
        "previous-image",
        Kind::Text,
        Api::new(0, 11),
        "reference to previous image",
    ),
    flag(
        "report",
        Kind::Text,
        ALL,
        "path to report.toml (default \"<layers>/report.toml\")",
    ),
    flag("run-image", Kind::Text, ALL, "reference to run image"),
    flag(
        "uid",
        Kind::Int,
        ALL,
        "UID of user in the stack's build and run images",
    ),
    flag("version", Kind::Bool, ALL, "show version"),
    flag("help", Kind::Bool, ALL, "show usage"),
    // relaunch's own, not in the reference (which has no such flags to clash with).
    flag(
        "decouple",
        Kind::Bool,
        ALL,
        "(relaunch) also switch a binary-mode app to the run image's launcher",
    ),
    flag(
        "launcher-image",
        Kind::Text,
        ALL,
        "(relaunch) replace the launcher layer with this launcher (file or image)",
    ),
    flag(
        "launcher-must-match",
        Kind::List,
        ALL,
        "(relaunch) only apps whose launcher layer diffID is listed",
    ),
];

/// Flags as given: name → values (the last wins for single-valued ones).
#[derive(Default)]
struct Given {
    values: Vec<(&'static str, String)>,
    positional: Vec<String>,
}

impl Given {
    fn last(&self, name: &str) -> Option<&str> {
        self.values
            .iter()
            .rev()
            .find(|(n, _)| *n == name)
            .map(|(_, v)| v.as_str())
    }
    fn all<'a>(&'a self, name: &'a str) -> impl Iterator<Item = &'a str> + 'a {
        self.values
            .iter()
            .filter(move |(n, _)| *n == name)
            .map(|(_, v)| v.as_str())
    }
    fn set(&self, name: &str) -> bool {
        self.last(name).is_some_and(|v| parse_bool(v) == Some(true))
    }
}

/// Go's `strconv.ParseBool`.
fn parse_bool(v: &str) -> Option<bool> {
    match v {
        "1" | "t" | "T" | "TRUE" | "true" | "True" => Some(true),
        "0" | "f" | "F" | "FALSE" | "false" | "False" => Some(false),
        _ => None,
    }
}

/// Go's `flag.Parse`: flags until the first non-flag argument or `--`.
fn parse_flags(args: &[String], api: Api) -> Result<Given, String> {
    let mut given = Given::default();
    let mut i = 0;
    while i < args.len() {
        let arg = &args[i];
        if arg == "--" {
            i += 1;
            break;
        }
        if !arg.starts_with('-') || arg == "-" {
            break;
        }
        let body = arg.strip_prefix("--").unwrap_or(&arg[1..]);
        if body.is_empty() || body.starts_with('-') || body.starts_with('=') {
            return Err(format!("bad flag syntax: {arg}"));
        }
        let (name, inline) = match body.split_once('=') {
            Some((n, v)) => (n, Some(v.to_string())),
            None => (body, None),
        };
        let Some(f) = FLAGS.iter().find(|f| f.name == name && api >= f.since) else {
            return Err(format!("flag provided but not defined: -{name}"));
        };
        let value = match (f.kind, inline) {
            (Kind::Bool, None) => "true".to_string(),
            (Kind::Bool, Some(v)) if parse_bool(&v).is_some() => v,
            (Kind::Bool, Some(v)) => {
                return Err(format!(
                    "invalid boolean value {v:?} for -{name}: parse error"
                ))
            }
            (_, Some(v)) => v,
            (_, None) if i + 1 < args.len() => {
                i += 1;
                args[i].clone()
            }
            (_, None) => return Err(format!("flag needs an argument: -{name}")),
        };
        if f.kind == Kind::Int && value.parse::<i64>().is_err() {
            return Err(format!(
                "invalid value {value:?} for flag -{name}: parse error"
            ));
        }
        given.values.push((f.name, value));
        i += 1;
    }
    given.positional = args[i..].to_vec();
    Ok(given)
}

fn usage(api: Api) -> String {
    let mut out = String::from("Usage of rebaser:\n");
    for f in FLAGS.iter().filter(|f| api >= f.since && f.name != "help") {
        let kind = match f.kind {
            Kind::Bool => "",
            Kind::Text => " string",
            Kind::Int => " int",
            Kind::List => " value",
        };
        out += &format!("  -{}{kind}\n    \t{}\n", f.name, f.usage);
    }
    out
}

fn error(code: u8, message: &str) -> ExitCode {
    outln!("ERROR: {message}");
    ExitCode::from(code)
}

fn env(name: &str) -> Option<String> {
    std::env::var(name).ok().filter(|v| !v.is_empty())
}

pub fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let Some(api_value) = env("CNB_PLATFORM_API") else {
        return error(PLATFORM_API, "failed to get platform API version; please set 'CNB_PLATFORM_API' to specify the desired platform API version");
    };
    let Ok(api) = api_value.parse::<Api>() else {
        return error(
            PLATFORM_API,
            &format!("failed to parse platform API '{api_value}'"),
        );
    };
    if !(OLDEST_PLATFORM_API..=LATEST_PLATFORM_API).contains(&api) {
        return error(
            PLATFORM_API,
            &format!("failed to set platform API: platform API version '{api_value}' is incompatible with the lifecycle"),
        );
    }
    let given = match parse_flags(&args, api) {
        Ok(g) => g,
        Err(e) => {
            eprint!("{e}\n{}", usage(api));
            return ExitCode::from(BAD_FLAG);
        }
    };
    if given.set("help") {
        eprint!("{}", usage(api));
        return ExitCode::SUCCESS;
    }
    if given.set("version") {
        outln!("relaunch {}", env!("CARGO_PKG_VERSION"));
        return ExitCode::SUCCESS;
    }
    match run(&given, api) {
        Ok(code) => code,
        Err((code, message)) => error(code, &message),
    }
}

fn run(given: &Given, api: Api) -> Result<ExitCode, (u8, String)> {
    let invalid = |m: &str| (INVALID_ARGS, m.to_string());
    let Some((image, extra_tags)) = given.positional.split_first() else {
        return Err(invalid(
            "failed to parse arguments: at least one image argument is required",
        ));
    };
    for flag in given.positional.iter().filter(|a| a.starts_with('-')) {
        outln!("Warning: Warning: unconsumed flag-like positional arg: \n\t{flag}\n\t This will not be interpreted as a flag.\n\t Did you mean to put this before the first positional argument?");
    }
    if given.set("daemon") || env("CNB_USE_DAEMON").and_then(|v| parse_bool(&v)) == Some(true) {
        return Err(invalid(
            "failed to resolve inputs: -daemon is not supported: relaunch rebases images in registries and OCI layouts only",
        ));
    }
    let env_run = env("CNB_RUN_IMAGE");
    let mut run_image = given
        .last("run-image")
        .map(String::from)
        .or(env_run.clone());
    if let Some(deprecated) = given.last("image").filter(|v| !v.is_empty()) {
        if run_image.is_some() && run_image != env_run {
            return Err(invalid(
                "failed to resolve inputs: supply only one of -run-image or (deprecated) -image",
            ));
        }
        run_image = Some(deprecated.to_string());
    }
    let previous = given
        .last("previous-image")
        .map(String::from)
        .or_else(|| env("CNB_PREVIOUS_IMAGE"))
        .filter(|_| api >= Api::new(0, 11));
    let force = api >= Api::new(0, 12)
        && (given.set("force")
            || env("CNB_FORCE_REBASE").and_then(|v| parse_bool(&v)) == Some(true));
    // Plain HTTP for loopback and private addresses is the engine's rule (go-containerregistry's),
    // so only the registries the user names are insecure.
    let insecure: Vec<String> = given.all("insecure-registry").map(String::from).collect();
    let report = given
        .last("report")
        .map(PathBuf::from)
        .or_else(|| env("CNB_REPORT_PATH").map(PathBuf::from))
        .unwrap_or_else(|| {
            PathBuf::from(env("CNB_LAYERS_DIR").unwrap_or_else(|| "/layers".into()))
                .join("report.toml")
        });
    let global = Global {
        insecure_registry: insecure,
        registry_ca: Vec::new(),
        timeout: None,
        verbose: 0,
        session: Default::default(),
        options: Default::default(),
    };
    // Adds CNB_INSECURE_REGISTRIES (read at every Platform API, not only from 0.13).
    let mut options = global.transport_options();
    options.insecure_registries.dedup();
    let launcher_must_match = given
        .all("launcher-must-match")
        .map(|d| {
            Digest::parse(d).map_err(|e| {
                (
                    INVALID_ARGS,
                    format!("failed to parse arguments: -launcher-must-match: {e}"),
                )
            })
        })
        .collect::<Result<Vec<_>, _>>()?;
    let launcher = match given.last("launcher-image") {
        Some(spec) => {
            let resolved =
                resolve_launcher(&global, spec, &Overrides::default(), None).map_err(|e| {
                    (
                        INVALID_ARGS,
                        format!("failed to resolve inputs: -launcher-image: {e:#}"),
                    )
                })?;
            Some(LauncherSwap::new(resolved).map_err(|e| (FAILED, e.to_string()))?)
        }
        None => None,
    };
    let settings = Settings {
        platform_api: api,
        force,
        decouple: given.set("decouple"),
        launcher_must_match,
    };
    let session =
        Session::new(options, settings, launcher).map_err(|e| (FAILED, format!("{e:#}")))?;
    let outcome = session.rebase(&Job {
        image: image.clone(),
        extra_tags: extra_tags.to_vec(),
        previous,
        run_image,
    });
    for w in &outcome.warnings {
        outln!("Warning: {w}");
    }
    if let Some(f) = &outcome.failure {
        return Err((f.exit_code(), f.to_string()));
    }
    if outcome.status == Status::Unchanged {
        outln!("Image {image} is already on this run image; nothing to push");
    } else {
        outln!("Saving {image}...");
    }
    let digest = outcome.new_digest.as_ref().map(ToString::to_string);
    outln!("*** Images ({}):", digest.unwrap_or_default());
    for tag in &outcome.tags {
        outln!("      {tag}");
    }
    write_report(&report, &outcome).map_err(|e| {
        (
            REBASE_ERROR,
            format!("failed to write rebase report: {e:#}"),
        )
    })?;
    Ok(ExitCode::SUCCESS)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(args: &[&str], api: &str) -> Result<Given, String> {
        let args: Vec<String> = args.iter().map(|s| s.to_string()).collect();
        parse_flags(&args, api.parse().unwrap())
    }

    #[test]
    fn go_flag_syntax() {
        let g = parse(
            &[
                "-run-image",
                "r",
                "--force",
                "-report=x.toml",
                "app",
                "-tag",
            ],
            "0.15",
        )
        .unwrap();
        assert_eq!(g.last("run-image"), Some("r"));
        assert!(g.set("force"));
        assert_eq!(g.last("report"), Some("x.toml"));
        assert_eq!(g.positional, ["app", "-tag"]);
        let g = parse(&["-force=false", "--", "-x"], "0.15").unwrap();
        assert!(!g.set("force"));
        assert_eq!(g.positional, ["-x"]);
    }

    #[test]
    fn flags_exist_from_their_platform_api_and_errors_are_gos() {
        assert_eq!(
            parse(&["-force", "x"], "0.11").err().unwrap(),
            "flag provided but not defined: -force"
        );
        assert_eq!(
            parse(&["-run-image"], "0.15").err().unwrap(),
            "flag needs an argument: -run-image"
        );
        assert_eq!(
            parse(&["-force=maybe", "x"], "0.15").err().unwrap(),
            "invalid boolean value \"maybe\" for -force: parse error"
        );
        assert!(parse(&["-insecure-registry", "h", "x"], "0.12").is_err());
        assert!(parse(&["-insecure-registry", "h", "x"], "0.13").is_ok());
    }
}
