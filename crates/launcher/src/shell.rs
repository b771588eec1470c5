//! The bash strategy for shell processes: one `/bin/bash` that sources the profiles,
//! changes to the working directory and `exec`s a nested bash with the command.

use std::ffi::{OsStr, OsString};
use std::os::unix::ffi::OsStrExt;

/// Hard-coded, as in the reference; needed only for shell processes.
pub const BASH: &str = "/bin/bash";

/// A shell launch as the reference's `ShellProcess`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ShellProcess {
    /// No args: `command` is a bash script; else each word is evaluated as one token.
    pub script: bool,
    /// The launcher's own argv[0], which profiles see as `$0`.
    pub caller: OsString,
    /// Command entries joined with spaces.
    pub command: OsString,
    pub args: Vec<OsString>,
    pub profiles: Vec<OsString>,
    pub working_dir: OsString,
}

impl ShellProcess {
    /// `source "<p>"` lines, `cd "<wd>"`, then the exec line. Paths are inserted raw,
    /// without escaping, exactly like the reference.
    pub fn script_text(&self) -> Vec<u8> {
        let mut s = Vec::with_capacity(256);
        for p in &self.profiles {
            s.extend_from_slice(b"source \"");
            s.extend_from_slice(p.as_bytes());
            s.extend_from_slice(b"\"\n");
        }
        s.extend_from_slice(b"cd \"");
        s.extend_from_slice(self.working_dir.as_bytes());
        s.extend_from_slice(b"\"\n");
        if self.script {
            s.extend_from_slice(br#"exec bash -c "$@""#);
        } else {
            s.extend_from_slice(br#"exec bash -c '"$(eval echo \"$0\")""#);
            for i in 1..=self.args.len() {
                s.extend_from_slice(format!(r#" "$(eval echo \"${{{i}}}\")""#).as_bytes());
            }
            s.extend_from_slice(br#"' "${@:1}""#);
        }
        s
    }

    /// `bash -c <script> <caller> <command> <args...>`.
    pub fn argv(&self) -> Vec<OsString> {
        let mut argv = Vec::with_capacity(self.args.len() + 5);
        argv.push(OsString::from("bash"));
        argv.push(OsString::from("-c"));
        argv.push(OsStr::from_bytes(&self.script_text()).to_owned());
        argv.push(self.caller.clone());
        argv.push(self.command.clone());
        argv.extend(self.args.iter().cloned());
        argv
    }
}

/// Joins command entries with spaces (empty when there are none).
pub fn join_command(entries: &[OsString]) -> OsString {
    let mut out = Vec::new();
    for (i, e) in entries.iter().enumerate() {
        if i > 0 {
            out.push(b' ');
        }
        out.extend_from_slice(e.as_bytes());
    }
    OsStr::from_bytes(&out).to_owned()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testutil::TempDir;
    use std::process::Command;

    fn os(v: &[&str]) -> Vec<OsString> {
        v.iter().map(OsString::from).collect()
    }

    fn shell(
        script: bool,
        command: &str,
        args: &[&str],
        profiles: &[&str],
        wd: &str,
    ) -> ShellProcess {
        ShellProcess {
            script,
            caller: "some-profile-argv0".into(),
            command: command.into(),
            args: os(args),
            profiles: os(profiles),
            working_dir: wd.into(),
        }
    }

    #[test]
    fn script_shape_matches_reference() {
        let p = shell(
            false,
            "echo",
            &["a", "b", "c"],
            &["/l/p1", ".profile"],
            "/w",
        );
        assert_eq!(
            String::from_utf8(p.script_text()).unwrap(),
            "source \"/l/p1\"\nsource \".profile\"\ncd \"/w\"\nexec bash -c '\"$(eval echo \\\"$0\\\")\" \"$(eval echo \\\"${1}\\\")\" \"$(eval echo \\\"${2}\\\")\" \"$(eval echo \\\"${3}\\\")\"' \"${@:1}\""
        );
        let p = shell(true, "printf x", &[], &[], "");
        assert_eq!(
            String::from_utf8(p.script_text()).unwrap(),
            "cd \"\"\nexec bash -c \"$@\""
        );
        let argv = p.argv();
        assert_eq!(&argv[..2], &os(&["bash", "-c"])[..]);
        assert_eq!(&argv[3..], &os(&["some-profile-argv0", "printf x"])[..]);
        assert_eq!(join_command(&os(&["a", "b c"])), "a b c");
        assert_eq!(join_command(&[]), "");
    }

    /// Runs the generated bash in a child (instead of exec) and returns its stdout.
    fn run(p: &ShellProcess, cwd: &std::path::Path) -> String {
        let argv = p.argv();
        let out = Command::new(BASH)
            .arg0(&argv[0])
            .args(&argv[1..])
            .env_clear()
            .env("SOME_VAR", "some-val")
            .env("PATH", "/usr/bin:/bin")
            .current_dir(cwd)
            .output()
            .unwrap();
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    use std::os::unix::process::CommandExt;

    fn profiles(dir: &std::path::Path) -> Vec<String> {
        let files = [
            ("print_argv0", "echo \"profile argv0: '$0'\"\n"),
            ("print_env", "echo \"SOME_VAR: '$SOME_VAR'\"\n"),
            ("set_env", "export PROFILE_VAR=some-profile-var\n"),
            ("pwd", "echo \"profile directory: $(pwd)\"\n"),
        ];
        files
            .iter()
            .map(|(n, c)| {
                std::fs::write(dir.join(n), c).unwrap();
                dir.join(n).display().to_string()
            })
            .collect()
    }

    /// B-1..B-3 / B-9..B-11: print_argv0, print_env, set_env were sourced before the command.
    #[track_caller]
    fn assert_three_profiles_ran(out: &str) {
        assert!(out.contains("profile argv0: 'some-profile-argv0'"), "{out}");
        assert!(out.contains("SOME_VAR: 'some-val'"), "{out}");
        assert!(out.contains("profile env: 'some-profile-var'"), "{out}");
    }

    #[test]
    fn bash_behaviour_b1_to_b12() {
        let tmp = TempDir::new();
        let prof = profiles(tmp.path());
        let three = [prof[0].as_str(), prof[1].as_str(), prof[2].as_str()];
        let cwd = tmp.path();

        // Token mode: printf "profile env: '%s'" "$PROFILE_VAR" after `profiles`.
        let print_profile_var = |profiles: &[&str]| {
            shell(
                false,
                "printf",
                &["profile env: '%s'", "$PROFILE_VAR"],
                profiles,
                "",
            )
        };
        // B-1..B-3
        let out = run(
            &shell(
                true,
                r#"printf "profile env: '%s'" "$PROFILE_VAR""#,
                &[],
                &three,
                "",
            ),
            cwd,
        );
        assert_three_profiles_ran(&out);
        // B-4
        let out = run(
            &shell(true, r#"printf "SOME_VAR: '%s'" "$SOME_VAR""#, &[], &[], ""),
            cwd,
        );
        assert!(out.contains("SOME_VAR: 'some-val'"), "{out}");
        // B-5: in script mode args become $0, $1 ... of the nested bash
        let mut p = shell(true, r#"printf "SOME_ARG: '%s'" "$1""#, &[], &[], "");
        p.args = os(&["bash", "some arg1"]);
        assert!(run(&p, cwd).contains("SOME_ARG: 'some arg1'"));
        // B-6: ${10} handled
        let ten = [
            "one", "two", "three", "four", "five", "six", "seven", "eight", "nine", "ten",
        ];
        let out = run(&shell(false, "echo", &ten, &[], ""), cwd);
        assert!(
            out.contains("one two three four five six seven eight nine ten"),
            "{out}"
        );
        // B-7: profiles run in the launcher's cwd, cd "" is a no-op
        let out = run(&print_profile_var(&[prof[3].as_str()]), cwd);
        assert!(
            out.contains(&format!("profile directory: {}", cwd.display())),
            "{out}"
        );
        // B-8: the command runs in the working directory
        let wd = TempDir::new();
        let out = run(
            &shell(
                false,
                "echo",
                &["Process working directory: $(pwd)"],
                &three,
                &wd.path().display().to_string(),
            ),
            cwd,
        );
        assert!(
            out.contains(&format!(
                "Process working directory: {}",
                wd.path().display()
            )),
            "{out}"
        );
        // B-9..B-11
        let out = run(&print_profile_var(&three), cwd);
        assert_three_profiles_ran(&out);
        // B-12
        let out = run(
            &shell(false, "printf", &["SOME_VAR: '%s'", "$SOME_VAR"], &[], ""),
            cwd,
        );
        assert!(out.contains("SOME_VAR: 'some-val'"), "{out}");
    }
}
