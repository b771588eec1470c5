//! The exporter's command line: the reference's flags and `CNB_*` variables, accepted with
//! one dash (Go's `flag` package) or two.

use std::path::PathBuf;

use crate::cmd::Global;
use clap::builder::BoolishValueParser;
use clap::Parser;

/// The exporter's flags. Single-dash spellings (`-app`) are accepted as the reference's Go
/// `flag` package accepts them; booleans as Go's `strconv.ParseBool` (`true`, `1`, `t`, …).
#[derive(Parser, Debug)]
#[command(
    name = "exporter",
    version,
    about = "Export a CNB app image (lifecycle exporter)"
)]
pub struct Args {
    /// Path to app directory.
    #[arg(long, env = "CNB_APP_DIR", default_value = "/workspace")]
    pub app: PathBuf,
    /// Path to layers directory.
    #[arg(long, env = "CNB_LAYERS_DIR", default_value = "/layers")]
    pub layers: PathBuf,
    /// Path to group.toml (default <layers>/group.toml).
    #[arg(long, env = "CNB_GROUP_PATH")]
    pub group: Option<PathBuf>,
    /// Path to analyzed.toml (default <layers>/analyzed.toml).
    #[arg(long, env = "CNB_ANALYZED_PATH")]
    pub analyzed: Option<PathBuf>,
    /// Path to run.toml (Platform >= 0.12).
    #[arg(long, env = "CNB_RUN_PATH", default_value = "/cnb/run.toml")]
    pub run: PathBuf,
    /// Path to stack.toml (Platform < 0.12).
    #[arg(long, env = "CNB_STACK_PATH", default_value = "/cnb/stack.toml")]
    pub stack: PathBuf,
    /// Reference to the run image (default: analyzed.toml's [run-image] reference).
    #[arg(long = "run-image", alias = "image", env = "CNB_RUN_IMAGE")]
    pub run_image: Option<String>,
    /// Launcher binary to package (`-launcher`, or the proposal's `--launcher-path`).
    #[arg(long, alias = "launcher-path", env = "CNB_LAUNCHER_PATH")]
    pub launcher: Option<PathBuf>,
    /// Write the launcher layer as a symlink to the launcher the run image advertises.
    #[arg(long, env = "CNB_LAUNCHER_IN_RUN_IMAGE", num_args = 0..=1, require_equals = true, default_missing_value = "true", value_parser = BoolishValueParser::new())]
    pub launcher_in_run_image: Option<bool>,
    /// Directory with the launcher's SBOMs (Platform >= 0.11).
    #[arg(long = "launcher-sbom", default_value = "/cnb/lifecycle")]
    pub launcher_sbom: PathBuf,
    /// Default process type.
    #[arg(long = "process-type", env = "CNB_PROCESS_TYPE")]
    pub process_type: Option<String>,
    /// Path to project-metadata.toml (default <layers>/project-metadata.toml).
    #[arg(long = "project-metadata", env = "CNB_PROJECT_METADATA_PATH")]
    pub project_metadata: Option<PathBuf>,
    /// Path to report.toml (default <layers>/report.toml).
    #[arg(long, env = "CNB_REPORT_PATH")]
    pub report: Option<PathBuf>,
    /// UID of the build user (owner of layer contents).
    #[arg(long, env = "CNB_USER_ID", default_value_t = 0)]
    pub uid: u64,
    /// GID of the build user's group.
    #[arg(long, env = "CNB_GROUP_ID", default_value_t = 0)]
    pub gid: u64,
    /// Registry flags shared with every command (`-insecure-registry`, `--registry-ca`,
    /// `--timeout`; CNB_INSECURE_REGISTRIES, SSL_CERT_FILE). Loopback and private addresses
    /// may use plain HTTP without `-insecure-registry`, as the reference reaches them.
    #[command(flatten)]
    pub global: Global,
    /// Export to OCI layouts under -layout-dir instead of a registry.
    #[arg(long, env = "CNB_USE_LAYOUT", num_args = 0..=1, require_equals = true, default_missing_value = "true", value_parser = BoolishValueParser::new())]
    pub layout: Option<bool>,
    /// Root of the OCI layouts (`<dir>/<registry>/<repository>/<tag>`).
    #[arg(long = "layout-dir", env = "CNB_LAYOUT_DIR")]
    pub layout_dir: Option<PathBuf>,
    /// Logging level: debug, info, warn, error.
    #[arg(long = "log-level", env = "CNB_LOG_LEVEL", default_value = "info")]
    pub log_level: String,
    /// Disable color output (output is never coloured).
    #[arg(long = "no-color", env = "CNB_NO_COLOR", num_args = 0..=1, require_equals = true, default_missing_value = "true", value_parser = BoolishValueParser::new())]
    pub no_color: Option<bool>,
    /// Not supported (no Docker daemon): parsed and refused.
    #[arg(long, env = "CNB_USE_DAEMON", num_args = 0..=1, require_equals = true, default_missing_value = "true", value_parser = BoolishValueParser::new())]
    pub daemon: Option<bool>,
    /// Not supported: parsed and refused.
    #[arg(long = "cache-image", env = "CNB_CACHE_IMAGE")]
    pub cache_image: Option<String>,
    /// Not supported: parsed and refused.
    #[arg(long = "cache-dir", env = "CNB_CACHE_DIR")]
    pub cache_dir: Option<PathBuf>,
    /// Not supported (daemon only): parsed and refused.
    #[arg(long = "launch-cache", env = "CNB_LAUNCH_CACHE_DIR")]
    pub launch_cache: Option<PathBuf>,
    /// Not supported (run-image extensions): parsed and refused.
    #[arg(long, env = "CNB_EXTENDED_DIR")]
    pub extended: Option<PathBuf>,
    /// Accepted for compatibility (layers are always built in parallel).
    #[arg(long, env = "CNB_PARALLEL_EXPORT", num_args = 0..=1, require_equals = true, default_missing_value = "true", value_parser = BoolishValueParser::new())]
    pub parallel: Option<bool>,
    /// Image tags to write (registry references, or names mapped into -layout-dir).
    #[arg(value_name = "IMAGE")]
    pub tags: Vec<String>,
}

/// Go's `flag` accepts `-name` and `--name`: rewrite the single-dash form for clap.
pub fn go_flags(args: impl IntoIterator<Item = String>) -> Vec<String> {
    args.into_iter()
        .map(|a| match a.strip_prefix('-') {
            Some(rest) if rest.len() > 1 && !rest.starts_with('-') => format!("--{rest}"),
            _ => a,
        })
        .collect()
}
