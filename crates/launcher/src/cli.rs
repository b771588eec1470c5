//! Start-up sequence of the reference `launcher` command: API checks, metadata,
//! process type from argv[0], then launch. No flags are parsed.

use std::ffi::{OsStr, OsString};
use std::os::unix::ffi::OsStrExt;
use std::path::PathBuf;

use crate::api::{self, DeprecationMode};
use crate::bundle;
use crate::env::Env;
use crate::errors::{Context, Failure};
use crate::launch::Launcher;
use crate::log::{parse_bool, Logger};
use crate::metadata::Metadata;
use crate::paths;
use crate::process::Selector;

pub const DEFAULT_LAYERS_DIR: &str = "/layers";
pub const DEFAULT_APP_DIR: &str = "/workspace";
pub const DEFAULT_EXEC_ENV: &str = "production";

/// The launcher's own inputs from the environment (empty values count as unset).
struct Inputs {
    no_color: bool,
    platform_api: String,
    deprecation_mode: DeprecationMode,
    layers_dir: PathBuf,
    app_dir: PathBuf,
    exec_env: String,
    process_type: String,
}

impl Inputs {
    fn read(environ: &[(OsString, OsString)]) -> Inputs {
        let lookup = |key: &str| {
            environ
                .iter()
                .find(|(k, _)| k.as_bytes() == key.as_bytes())
                .map(|(_, v)| v.as_os_str())
                .filter(|v| !v.is_empty())
        };
        let text = |key| {
            lookup(key)
                .map(|v| v.to_string_lossy().into_owned())
                .unwrap_or_default()
        };
        let path = |key, default: &str| PathBuf::from(lookup(key).unwrap_or(default.as_ref()));
        let exec_env = text("CNB_EXEC_ENV");
        Inputs {
            no_color: parse_bool(lookup("CNB_NO_COLOR").and_then(OsStr::to_str)),
            platform_api: text("CNB_PLATFORM_API"),
            deprecation_mode: DeprecationMode::from_env(
                lookup("CNB_DEPRECATION_MODE").and_then(OsStr::to_str),
            ),
            layers_dir: path("CNB_LAYERS_DIR", DEFAULT_LAYERS_DIR),
            app_dir: path("CNB_APP_DIR", DEFAULT_APP_DIR),
            exec_env: if exec_env.is_empty() {
                DEFAULT_EXEC_ENV.into()
            } else {
                exec_env
            },
            process_type: text("CNB_PROCESS_TYPE"),
        }
    }
}

/// Runs the launcher with this argv and environment. Returns the exit code only when
/// the launch failed (after printing `ERROR: ...` on stdout); on success it never returns.
pub fn run(args: &[OsString], environ: Vec<(OsString, OsString)>) -> i32 {
    let inputs = Inputs::read(&environ);
    let log = Logger::stdout(inputs.no_color);
    let failure = start(args, inputs, environ, &log);
    log.error(&failure.message);
    failure.code
}

fn start(
    args: &[OsString],
    inputs: Inputs,
    environ: Vec<(OsString, OsString)>,
    log: &Logger,
) -> Failure {
    let mode = inputs.deprecation_mode;
    // A refusal (exit 11/12) goes to the launcher bundle, if there is one (bundle.rs).
    let app = |metadata| bundle::App {
        platform_api: &inputs.platform_api,
        metadata,
        layers_dir: &inputs.layers_dir,
        args,
        environ: &environ,
    };
    let platform = match api::verify_platform_api(&inputs.platform_api, api::PLATFORM, mode, log) {
        Ok(v) => v,
        Err(f) => return bundle::dispatch(f, app(None), log),
    };
    let md = match Metadata::read(&paths::join(
        &inputs.layers_dir,
        &[b"config", b"metadata.toml"],
    )) {
        Ok(md) => md,
        Err(f) => return f,
    };
    for bp in &md.buildpacks {
        if let Err(f) = api::verify_buildpack_api(&bp.id, &bp.api, api::BUILDPACK, mode, log) {
            return bundle::dispatch(f, app(Some(&md)), log);
        }
    }
    let requested = &inputs.process_type;
    if !requested.is_empty() {
        log.warn(&format!(
            "CNB_PROCESS_TYPE is not supported in Platform API {platform}"
        ));
        log.warn(&format!(
            "Run with ENTRYPOINT '{requested}' to invoke the '{requested}' process type"
        ));
    }
    let argv0 = args.first().map(OsString::as_os_str).unwrap_or_default();
    let selector = Selector {
        platform,
        exec_env: &inputs.exec_env,
        processes: &md.processes,
        buildpacks: &md.buildpacks,
        default_type: process_type_from_argv0(argv0, &md),
    };
    let user_args = args.get(1..).unwrap_or_default();
    let selected = match selector
        .process_for(user_args)
        .context("determine start command")
    {
        Ok(p) => p,
        Err(e) => return e.into_failure(),
    };
    let launcher = Launcher {
        app_dir: inputs.app_dir,
        layers_dir: inputs.layers_dir,
        buildpacks: &md.buildpacks,
        env: Env::launch(environ),
    };
    launcher.launch(argv0, selected).into_failure()
}

/// The basename of argv[0] if it names a process in metadata (no exec-env filter here).
fn process_type_from_argv0<'m>(argv0: &OsStr, md: &'m Metadata) -> &'m str {
    let bytes = argv0.as_bytes();
    let base = &bytes[bytes.iter().rposition(|&b| b == b'/').map_or(0, |i| i + 1)..];
    md.processes
        .iter()
        .find(|p| p.process_type.as_bytes() == base)
        .map_or("", |p| p.process_type.as_str())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn argv0_basename_selects_process() {
        let md = Metadata::parse(
            b"[[processes]]\ntype = \"web\"\n[[processes]]\ntype = \"process.with.period\"\n",
        )
        .unwrap();
        assert_eq!(
            process_type_from_argv0("/cnb/process/web".as_ref(), &md),
            "web"
        );
        assert_eq!(process_type_from_argv0("web".as_ref(), &md), "web");
        assert_eq!(
            process_type_from_argv0("../x/process.with.period".as_ref(), &md),
            "process.with.period"
        );
        assert_eq!(
            process_type_from_argv0("/cnb/lifecycle/launcher".as_ref(), &md),
            ""
        );
        assert_eq!(
            process_type_from_argv0("/cnb/process/web/".as_ref(), &md),
            ""
        );
        assert_eq!(process_type_from_argv0("".as_ref(), &md), "");
    }
}
