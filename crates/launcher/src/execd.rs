//! exec.d: run a buildpack executable with a pipe on fd 3 and apply the TOML
//! `NAME = "value"` pairs it writes there to the launch env.

use std::collections::BTreeMap;
use std::fs::File;
use std::io::Read;
use std::os::fd::{FromRawFd, OwnedFd, RawFd};
use std::os::unix::process::{CommandExt, ExitStatusExt};
use std::path::Path;
use std::process::{Command, ExitStatus};

use crate::env::Env;
use crate::errors::{os_error_text, LaunchError};
use crate::metadata::toml_error;

/// Runs one exec.d file in the launch env (cwd is already `<app>`) and applies its output.
pub fn run(path: &Path, env: &mut Env) -> Result<(), LaunchError> {
    let fail = |what: &str, detail: String| {
        LaunchError(format!("{what} exec.d file at path '{}': {detail}", path.display()))
    };
    let (read_end, write_end) =
        pipe().map_err(|e| LaunchError(format!("failed to create pipe: {}", os_error_text(&e))))?;
    let fd3 = std::os::fd::AsRawFd::as_raw_fd(&write_end);
    let mut cmd = Command::new(path);
    cmd.env_clear().envs(env.iter());
    // SAFETY: only async-signal-safe calls (dup2/fcntl) between fork and exec.
    unsafe {
        cmd.pre_exec(move || install_fd3(fd3));
    }
    let spawned = cmd.spawn();
    // Close our write end so that reading sees EOF when the child (and its children) finish.
    drop(write_end);
    let mut child = spawned.map_err(|e| {
        fail(
            "failed to execute",
            format!("fork/exec {}: {}", path.display(), os_error_text(&e)),
        )
    })?;
    let mut output = Vec::new();
    let read = File::from(read_end).read_to_end(&mut output);
    let status = child
        .wait()
        .map_err(|e| fail("failed to execute", os_error_text(&e)))?;
    if !status.success() {
        return Err(fail("failed to execute", exit_text(status)));
    }
    read.map_err(|e| fail("failed to read output from", os_error_text(&e)))?;
    let vars = parse_output(&output).map_err(|e| fail("failed to decode output from", e))?;
    for (k, v) in vars {
        env.set(k, v);
    }
    Ok(())
}

/// Decodes exec.d output: a TOML document of string values only. Public for fuzzing.
pub fn parse_output(output: &[u8]) -> Result<BTreeMap<String, String>, String> {
    let text = std::str::from_utf8(output).map_err(|e| format!("invalid UTF-8: {e}"))?;
    toml::from_str(text).map_err(|e| toml_error(text, &e))
}

fn pipe() -> std::io::Result<(OwnedFd, OwnedFd)> {
    let mut fds: [RawFd; 2] = [-1; 2];
    // SAFETY: fds is a valid 2-element array; O_CLOEXEC keeps them out of other children.
    if unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_CLOEXEC) } != 0 {
        return Err(std::io::Error::last_os_error());
    }
    // SAFETY: pipe2 succeeded, so both descriptors are open and owned by nobody else.
    Ok(unsafe { (OwnedFd::from_raw_fd(fds[0]), OwnedFd::from_raw_fd(fds[1])) })
}

/// In the child: make the pipe's write end fd 3, without close-on-exec.
fn install_fd3(fd: RawFd) -> std::io::Result<()> {
    // SAFETY: plain fd syscalls on descriptors owned by this (forked) process.
    let rc = unsafe {
        if fd == 3 {
            libc::fcntl(fd, libc::F_SETFD, 0)
        } else {
            libc::dup2(fd, 3)
        }
    };
    if rc < 0 {
        Err(std::io::Error::last_os_error())
    } else {
        Ok(())
    }
}

/// `exit status N` / `signal: killed`, as Go's `ExitError` prints them.
fn exit_text(status: ExitStatus) -> String {
    if let Some(code) = status.code() {
        return format!("exit status {code}");
    }
    let sig = status.signal().unwrap_or(0);
    let name = match sig {
        libc::SIGHUP => "hangup",
        libc::SIGINT => "interrupt",
        libc::SIGQUIT => "quit",
        libc::SIGABRT => "aborted",
        libc::SIGKILL => "killed",
        libc::SIGSEGV => "segmentation fault",
        libc::SIGPIPE => "broken pipe",
        libc::SIGTERM => "terminated",
        _ => return format!("signal: signal {sig}"),
    };
    format!("signal: {name}")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testutil::TempDir;
    use std::os::unix::fs::PermissionsExt;

    fn script(dir: &Path, name: &str, body: &str) -> std::path::PathBuf {
        let p = dir.join(name);
        std::fs::write(&p, format!("#!/bin/sh\n{body}")).unwrap();
        std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o755)).unwrap();
        p
    }

    #[test]
    fn parses_string_pairs_only() {
        let vars = parse_output(b"A = \"1\"\nOTHER_VAR = \"x y\"\n").unwrap();
        assert_eq!(vars["A"], "1");
        assert_eq!(vars["OTHER_VAR"], "x y");
        assert!(parse_output(b"").unwrap().is_empty());
        for bad in [&b"A = 1"[..], b"A = [\"x\"]", b"[t]\nA = \"x\"", b"garbage", b"A = \"\xff\""] {
            assert!(parse_output(bad).is_err(), "{:?}", String::from_utf8_lossy(bad));
        }
    }

    #[test]
    fn protocol_env_in_and_out() {
        // XD-1, XD-2: child env is exactly the launch env; output keys override.
        let tmp = TempDir::new();
        let p = script(
            tmp.path(),
            "execd",
            r#"v=SOME_VAL; [ -n "$APPEND_VAR" ] && v="$APPEND_VAR|SOME_VAL"
printf 'APPEND_VAR = "%s"\nOTHER_VAR = "OTHER_VAL"\n' "$v" >&3
[ -z "$NOT_PASSED" ] || exit 7
"#,
        );
        std::env::set_var("NOT_PASSED", "leak");
        let mut env = Env::default();
        env.set("PATH", "/usr/bin:/bin");
        run(&p, &mut env).unwrap();
        assert_eq!(env.get("APPEND_VAR"), "SOME_VAL");
        assert_eq!(env.get("OTHER_VAR"), "OTHER_VAL");
        env.set("APPEND_VAR", "ORIG_VAL");
        run(&p, &mut env).unwrap();
        assert_eq!(env.get("APPEND_VAR"), "ORIG_VAL|SOME_VAL");
    }

    #[test]
    fn failures_are_reported_with_the_path() {
        let tmp = TempDir::new();
        let mut env = Env::default();
        env.set("PATH", "/usr/bin:/bin");
        let d = tmp.path().display();

        let p = script(tmp.path(), "fails", "echo 'A = \"x\"' >&3; exit 3");
        let e = run(&p, &mut env).unwrap_err();
        assert_eq!(e.0, format!("failed to execute exec.d file at path '{d}/fails': exit status 3"));
        assert!(env.get("A").is_empty(), "output of a failed exec.d is not applied");

        let p = script(tmp.path(), "garbage", "printf 'not = toml = at all' >&3");
        let e = run(&p, &mut env).unwrap_err();
        assert!(
            e.0.starts_with(&format!("failed to decode output from exec.d file at path '{d}/garbage': ")),
            "{}",
            e.0
        );

        let p = tmp.path().join("not-executable");
        std::fs::write(&p, "A=1").unwrap();
        let e = run(&p, &mut env).unwrap_err();
        assert_eq!(
            e.0,
            format!("failed to execute exec.d file at path '{d}/not-executable': fork/exec {d}/not-executable: permission denied")
        );

        let p = script(tmp.path(), "killed", "kill -9 $$");
        let e = run(&p, &mut env).unwrap_err();
        assert!(e.0.ends_with(": signal: killed"), "{}", e.0);
    }
}
