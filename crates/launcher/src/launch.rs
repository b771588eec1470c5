//! `LaunchProcess`: chdir to `<app>`, build the env (layer roots, env files), run exec.d,
//! then replace the launcher directly or through bash.

use std::ffi::{OsStr, OsString};
use std::io::ErrorKind;
use std::path::{Path, PathBuf};

use crate::env::Env;
use crate::errors::{os_error_text, path_error, Context, LaunchError};
use crate::exec::{execve, go_quote, look_path};
use crate::execd;
use crate::layers;
use crate::metadata::Buildpack;
use crate::paths;
use crate::process::Selected;
use crate::shell::{join_command, ShellProcess, BASH};

/// Relative on purpose: bash resolves it from `<app>`, the cwd when profiles are sourced.
pub const APP_PROFILE: &str = ".profile";

#[derive(Debug)]
pub struct Launcher<'a> {
    pub app_dir: PathBuf,
    pub layers_dir: PathBuf,
    pub buildpacks: &'a [Buildpack],
    pub env: Env,
}

impl Launcher<'_> {
    /// Launches `proc`; returns only if the launch failed.
    pub fn launch(mut self, caller: &OsStr, proc: Selected) -> LaunchError {
        match self.prepare(&proc) {
            Ok(()) => {
                let working_dir = if proc.working_dir.is_empty() {
                    self.app_dir.clone().into_os_string()
                } else {
                    OsString::from(&proc.working_dir)
                };
                if proc.direct {
                    self.launch_direct(&proc, &working_dir)
                } else {
                    match self.shell_process(caller, &proc, working_dir) {
                        Ok(shell) => self.launch_shell(&shell),
                        Err(e) => e,
                    }
                }
            }
            Err(e) => e,
        }
    }

    /// Everything before the exec: app dir, launch env, exec.d. Like the reference, each
    /// pass lists `<layers>` again, per buildpack, just before it acts on it.
    fn prepare(&mut self, proc: &Selected) -> Result<(), LaunchError> {
        std::env::set_current_dir(&self.app_dir).map_err(|e| {
            LaunchError(format!(
                "change to app directory: {}",
                path_error("chdir", &self.app_dir, &e).0
            ))
        })?;
        let process_type = proc.process_type.as_str();
        let env = &mut self.env;
        layers::each_buildpack(&self.layers_dir, self.buildpacks, |bp_dir| {
            layers::each_layer(bp_dir, |layer| env.add_root_dir(layer))
                .context("add layer root")?;
            layers::each_layer(bp_dir, |layer| add_layer_env(env, layer, process_type))
                .context("add layer env")
        })
        .context("modify env")?;
        layers::each_buildpack(&self.layers_dir, self.buildpacks, |bp_dir| {
            layers::each_layer(bp_dir, |layer| {
                layers::each_script(layer, "exec.d", process_type, |p| execd::run(p, env))
            })
        })
        .context("exec.d")
    }

    fn launch_direct(&self, proc: &Selected, working_dir: &OsStr) -> LaunchError {
        let path_var = self.env.get("PATH");
        if path_var.as_encoded_bytes().contains(&0) {
            return LaunchError::new("set path: setenv: invalid argument");
        }
        let Some(command) = proc.command.first() else {
            return LaunchError(format!(
                "no command provided for process type {}",
                go_quote(&proc.process_type)
            ));
        };
        let binary = match look_path(command, path_var) {
            Ok(b) => b,
            Err(e) => return LaunchError(format!("path lookup: {e}")),
        };
        // Already in <app> (absolute) when no working-dir is set; a relative <app> is
        // entered again, as the reference does.
        let in_place = proc.working_dir.is_empty() && self.app_dir.is_absolute();
        if !in_place {
            if let Err(e) = std::env::set_current_dir(working_dir) {
                return LaunchError(format!(
                    "change directory: {}",
                    path_error("chdir", Path::new(working_dir), &e).0
                ));
            }
        }
        // argv[0] is the command as written; only the exec path is resolved.
        let argv: Vec<&OsStr> = proc
            .command
            .iter()
            .chain(&proc.args)
            .map(|a| a.as_os_str())
            .collect();
        let err = execve(&binary, &argv, &self.env);
        LaunchError(format!("direct exec: {}", os_error_text(&err)))
    }

    /// The bash launch of a shell process: profiles, script or token mode.
    fn shell_process(
        &self,
        caller: &OsStr,
        proc: &Selected,
        working_dir: OsString,
    ) -> Result<ShellProcess, LaunchError> {
        let profiles = self.profiles(&proc.process_type).context("find profiles")?;
        if !proc.args.is_empty()
            && !proc.buildpack_id.is_empty()
            && !self.buildpacks.iter().any(|bp| bp.id == proc.buildpack_id)
        {
            return Err(LaunchError(format!(
                "process type '{}' provided by unknown buildpack '{}'",
                proc.process_type, proc.buildpack_id
            )));
        }
        Ok(ShellProcess {
            script: proc.args.is_empty(),
            caller: caller.to_owned(),
            command: join_command(&proc.command),
            args: proc.args.clone(),
            profiles,
            working_dir,
        })
    }

    fn launch_shell(&self, shell: &ShellProcess) -> LaunchError {
        let argv = shell.argv();
        let argv: Vec<&OsStr> = argv.iter().map(OsString::as_os_str).collect();
        let err = execve(Path::new(BASH), &argv, &self.env);
        LaunchError(format!("bash exec: {}", os_error_text(&err)))
    }

    /// Layer `profile.d` scripts (generic then typed, per layer), then `<app>/.profile`.
    fn profiles(&self, process_type: &str) -> Result<Vec<OsString>, LaunchError> {
        let mut profiles: Vec<OsString> = Vec::new();
        layers::each_buildpack(&self.layers_dir, self.buildpacks, |bp_dir| {
            layers::each_layer(bp_dir, |layer| {
                layers::each_script(layer, "profile.d", process_type, |p| {
                    profiles.push(p.as_os_str().to_owned());
                    Ok(())
                })
            })
        })?;
        let app_profile = paths::join(&self.app_dir, &[APP_PROFILE.as_bytes()]);
        match std::fs::metadata(&app_profile) {
            Ok(meta) if !meta.is_dir() => profiles.push(APP_PROFILE.into()),
            Ok(_) => {}
            Err(e) if e.kind() == ErrorKind::NotFound => {}
            Err(e) => {
                return Err(LaunchError(format!(
                    "failed to determine if app profile script exists at path '{}': {}",
                    app_profile.display(),
                    path_error("stat", &app_profile, &e).0
                )))
            }
        }
        Ok(profiles)
    }
}

/// The env files of one layer: `env/`, `env.launch/`, then `env.launch/<type>/`.
fn add_layer_env(env: &mut Env, layer: &Path, process_type: &str) -> Result<(), LaunchError> {
    env.add_env_dir(&layer.join("env"))?;
    let launch = layer.join("env.launch");
    // No env.launch/ means no env.launch/<type>/ either: skip the second lookup.
    if env.add_env_dir(&launch)? && !process_type.is_empty() {
        env.add_env_dir(&launch.join(process_type))?;
    }
    Ok(())
}
