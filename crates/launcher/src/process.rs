//! Process selection (`ProcessFor` in the reference): the argv[0] process type or a
//! user command, exec-env eligibility (Platform >= 0.15) and the argument rules.

use std::ffi::OsString;

use crate::api::Version;
use crate::errors::LaunchError;
use crate::metadata::{Buildpack, Process};

/// The process that will be launched. Argument words are bytes: user args need not be UTF-8.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Selected {
    /// Empty for user-provided commands, so no `<type>/` sub-directory applies.
    pub process_type: String,
    pub command: Vec<OsString>,
    pub args: Vec<OsString>,
    pub direct: bool,
    pub buildpack_id: String,
    /// As written in metadata (may be relative to `<app>`); empty means `<app>`.
    pub working_dir: String,
}

/// What selection needs to know.
#[derive(Debug, Clone, Copy)]
pub struct Selector<'a> {
    pub platform: Version,
    pub exec_env: &'a str,
    pub processes: &'a [Process],
    pub buildpacks: &'a [Buildpack],
    /// The argv[0] basename if it names a process in metadata, else empty.
    pub default_type: &'a str,
}

impl Selector<'_> {
    pub fn process_for(&self, cmd: &[OsString]) -> Result<Selected, LaunchError> {
        if self.default_type.is_empty() {
            return user_provided(cmd);
        }
        let process = self
            .processes
            .iter()
            .find(|p| p.process_type == self.default_type && self.eligible(p))
            .ok_or_else(|| {
                LaunchError(format!("process type {} was not found", self.default_type))
            })?;
        let mut selected = Selected {
            process_type: process.process_type.clone(),
            command: strings(&process.command),
            args: strings(&process.args),
            direct: process.direct,
            buildpack_id: process.buildpack_id.clone(),
            working_dir: process.working_dir.clone(),
        };
        if !self.platform.at_least(0, 10) {
            // Platform < 0.10: user args are always appended; command left as written.
            selected.args.extend(cmd.iter().cloned());
            return Ok(selected);
        }
        if selected.command.len() > 1 {
            // command[1:] are always-provided args; user args replace only `args`.
            let rest = selected.command.split_off(1);
            let defaults = std::mem::replace(&mut selected.args, rest);
            if cmd.is_empty() {
                selected.args.extend(defaults);
            } else {
                selected.args.extend(cmd.iter().cloned());
            }
        } else if !cmd.is_empty() {
            let bp = self
                .buildpacks
                .iter()
                .find(|bp| bp.id == process.buildpack_id)
                .ok_or_else(|| {
                    LaunchError(format!(
                        "failed to find buildpack for process {} with buildpack ID {}",
                        process.process_type, process.buildpack_id
                    ))
                })?;
            // APIs were verified at start-up, so this parses.
            let bp_api = Version::parse(&bp.api).unwrap_or(Version::new(0, 0));
            if bp_api.at_least(0, 9) {
                selected.args = cmd.to_vec();
            } else {
                selected.args.extend(cmd.iter().cloned());
            }
        }
        Ok(selected)
    }

    /// Platform >= 0.15: eligible if `exec-env` is empty, has `*` or has `<exec-env>`.
    fn eligible(&self, p: &Process) -> bool {
        !self.platform.at_least(0, 15)
            || p.exec_env.is_empty()
            || p.exec_env.iter().any(|e| e == "*" || e == self.exec_env)
    }
}

fn user_provided(cmd: &[OsString]) -> Result<Selected, LaunchError> {
    match cmd {
        [] => Err(LaunchError::new(
            "when there is no default process a command is required",
        )),
        // `--` alone is not direct mode: it becomes a shell command named `--` (G-11).
        [dashes, command, args @ ..] if dashes == "--" => Ok(Selected {
            command: vec![command.clone()],
            args: args.to_vec(),
            direct: true,
            ..Selected::default()
        }),
        [command, args @ ..] => Ok(Selected {
            command: vec![command.clone()],
            args: args.to_vec(),
            ..Selected::default()
        }),
    }
}

fn strings(v: &[String]) -> Vec<OsString> {
    v.iter().map(OsString::from).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn proc(t: &str, command: &[&str], args: &[&str], bp: &str, exec_env: &[&str]) -> Process {
        Process {
            process_type: t.into(),
            command: command.iter().map(|s| s.to_string()).collect(),
            args: args.iter().map(|s| s.to_string()).collect(),
            buildpack_id: bp.into(),
            exec_env: exec_env.iter().map(|s| s.to_string()).collect(),
            ..Process::default()
        }
    }

    fn bps() -> Vec<Buildpack> {
        vec![
            Buildpack {
                id: "some-buildpack".into(),
                api: "0.8".into(),
            },
            Buildpack {
                id: "some-newer-buildpack".into(),
                api: "0.9".into(),
            },
        ]
    }

    fn fixture() -> Vec<Process> {
        vec![
            proc(
                "some-type",
                &["some-command"],
                &["some-arg1", "some-arg2"],
                "some-buildpack",
                &[],
            ),
            proc(
                "other-type",
                &["other-command"],
                &["other-arg1", "other-arg2"],
                "some-buildpack",
                &[],
            ),
            proc(
                "type-with-always-and-overridable-args",
                &["some-command", "always-arg"],
                &["overridable-arg"],
                "some-newer-buildpack",
                &[],
            ),
            proc(
                "type-with-overridable-arg",
                &["some-command"],
                &["overridable-arg"],
                "some-newer-buildpack",
                &[],
            ),
        ]
    }

    fn os(v: &[&str]) -> Vec<OsString> {
        v.iter().map(OsString::from).collect()
    }

    fn select(platform: &str, default: &str, cmd: &[&str]) -> Result<Selected, LaunchError> {
        let processes = fixture();
        let buildpacks = bps();
        Selector {
            platform: Version::parse(platform).unwrap(),
            exec_env: "production",
            processes: &processes,
            buildpacks: &buildpacks,
            default_type: default,
        }
        .process_for(&os(cmd))
    }

    #[test]
    fn user_provided_processes() {
        for platform in ["0.15", "0.9"] {
            // P-1 / P-10
            let p = select(
                platform,
                "",
                &["--", "user-command", "user-arg1", "user-arg2"],
            )
            .unwrap();
            assert_eq!(
                p,
                Selected {
                    command: os(&["user-command"]),
                    args: os(&["user-arg1", "user-arg2"]),
                    direct: true,
                    ..Selected::default()
                }
            );
            // P-2 / P-11
            let p = select(platform, "", &["user-command", "user-arg1", "user-arg2"]).unwrap();
            assert_eq!(
                p,
                Selected {
                    command: os(&["user-command"]),
                    args: os(&["user-arg1", "user-arg2"]),
                    ..Selected::default()
                }
            );
            // P-3 / P-12
            let e = select(platform, "", &[]).unwrap_err();
            assert_eq!(
                e.0,
                "when there is no default process a command is required"
            );
            // P-9 / P-15
            let e = select(platform, "missing-type", &["x"]).unwrap_err();
            assert_eq!(e.0, "process type missing-type was not found");
        }
        // G-11: a lone `--` is a shell command named `--`.
        let p = select("0.15", "", &["--"]).unwrap();
        assert_eq!((p.command, p.direct), (os(&["--"]), false));
    }

    #[test]
    fn platform_0_10_and_later_argument_rules() {
        // P-4
        let p = select(
            "0.15",
            "type-with-always-and-overridable-args",
            &["user-arg1", "user-arg2"],
        )
        .unwrap();
        assert_eq!(p.command, os(&["some-command"]));
        assert_eq!(p.args, os(&["always-arg", "user-arg1", "user-arg2"]));
        assert_eq!(p.process_type, "type-with-always-and-overridable-args");
        assert_eq!(p.buildpack_id, "some-newer-buildpack");
        // P-5
        let p = select("0.15", "type-with-always-and-overridable-args", &[]).unwrap();
        assert_eq!(p.command, os(&["some-command"]));
        assert_eq!(p.args, os(&["always-arg", "overridable-arg"]));
        // P-6: B >= 0.9 replaces
        let p = select(
            "0.15",
            "type-with-overridable-arg",
            &["user-arg1", "user-arg1"],
        )
        .unwrap();
        assert_eq!(p.args, os(&["user-arg1", "user-arg1"]));
        // P-7
        let p = select("0.15", "type-with-overridable-arg", &[]).unwrap();
        assert_eq!(p.args, os(&["overridable-arg"]));
        // P-8: B < 0.9 appends
        let p = select("0.15", "some-type", &["user-arg1", "user-arg1"]).unwrap();
        assert_eq!(
            p.args,
            os(&["some-arg1", "some-arg2", "user-arg1", "user-arg1"])
        );
    }

    #[test]
    fn platform_before_0_10_always_appends() {
        // P-13, P-14
        let p = select(
            "0.9",
            "type-with-overridable-arg",
            &["user-arg1", "user-arg1"],
        )
        .unwrap();
        assert_eq!(p.args, os(&["overridable-arg", "user-arg1", "user-arg1"]));
        let p = select("0.9", "type-with-overridable-arg", &[]).unwrap();
        assert_eq!(p.args, os(&["overridable-arg"]));
        // multi-entry command is left untouched below 0.10
        let p = select("0.9", "type-with-always-and-overridable-args", &["u"]).unwrap();
        assert_eq!(p.command, os(&["some-command", "always-arg"]));
        assert_eq!(p.args, os(&["overridable-arg", "u"]));
    }

    #[test]
    fn unknown_buildpack_with_user_args() {
        let processes = vec![proc("web", &["x"], &[], "gone", &[])];
        let s = Selector {
            platform: Version::new(0, 12),
            exec_env: "production",
            processes: &processes,
            buildpacks: &[],
            default_type: "web",
        };
        assert_eq!(
            s.process_for(&os(&["a"])).unwrap_err().0,
            "failed to find buildpack for process web with buildpack ID gone"
        );
        assert!(
            s.process_for(&[]).is_ok(),
            "no user args: no buildpack lookup"
        );
    }

    fn exec_env_fixture() -> Vec<Process> {
        vec![
            proc("web", &["web"], &["--port", "8080"], "some-buildpack", &[]),
            proc("prod-only", &["p"], &[], "some-buildpack", &["production"]),
            proc("test-only", &["t"], &[], "some-buildpack", &["test"]),
            proc(
                "multi-env",
                &["m"],
                &[],
                "some-buildpack",
                &["production", "test"],
            ),
            proc("wildcard", &["w"], &[], "some-buildpack", &["*"]),
            proc(
                "duplicate",
                &["prod-version"],
                &[],
                "some-buildpack",
                &["production"],
            ),
            proc(
                "duplicate",
                &["test-version"],
                &[],
                "some-buildpack",
                &["test"],
            ),
        ]
    }

    fn select_env(platform: &str, exec_env: &str, default: &str) -> Result<Selected, LaunchError> {
        let processes = exec_env_fixture();
        let buildpacks = bps();
        Selector {
            platform: Version::parse(platform).unwrap(),
            exec_env,
            processes: &processes,
            buildpacks: &buildpacks,
            default_type: default,
        }
        .process_for(&[])
    }

    #[test]
    fn exec_env_filtering() {
        // no filtering below 0.15
        assert_eq!(
            select_env("0.14", "test", "prod-only").unwrap().command,
            os(&["p"])
        );
        // X-2 .. X-5
        for t in ["web", "wildcard", "test-only", "multi-env"] {
            assert_eq!(select_env("0.15", "test", t).unwrap().process_type, t);
        }
        //
        let e = select_env("0.15", "test", "prod-only").unwrap_err();
        assert_eq!(e.0, "process type prod-only was not found");
        // first eligible definition wins
        assert_eq!(
            select_env("0.15", "test", "duplicate").unwrap().command,
            os(&["test-version"])
        );
        //
        assert_eq!(select_env("0.15", "", "web").unwrap().process_type, "web");
        assert!(select_env("0.15", "", "prod-only").is_err());
    }
}
