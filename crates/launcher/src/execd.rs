//! exec.d: run a buildpack executable with a pipe on fd 3 and apply the TOML
//! `NAME = "value"` pairs it writes there to the launch env.

use std::collections::BTreeMap;
use std::ffi::CString;
use std::fs::File;
use std::io::{self, Read};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};

use std::path::Path;

use crate::env::Env;
use crate::errors::{os_error_text, LaunchError};
use crate::exec::{c_argv, c_envp, null_terminated};
use crate::metadata::{parse_document, utf8, Decoder};

/// Runs one exec.d file in the launch env (cwd is already `<app>`) and applies its output.
pub fn run(path: &Path, env: &mut Env) -> Result<(), LaunchError> {
    let fail = |what: &str, detail: String| {
        LaunchError(format!(
            "{what} exec.d file at path '{}': {detail}",
            path.display()
        ))
    };
    let (read_end, write_end) =
        pipe().map_err(|e| LaunchError(format!("failed to create pipe: {}", os_error_text(&e))))?;
    // As Go's exec.Cmd starts it: stdin from a fresh /dev/null (never the app's stdin),
    // then the environment check, then the spawn.
    let stdin = File::open("/dev/null").map_err(|e| {
        fail(
            "failed to execute",
            format!("open /dev/null: {}", os_error_text(&e)),
        )
    })?;
    let envp = c_envp(env).map_err(|_| {
        fail(
            "failed to execute",
            "exec: environment variable contains NUL".into(),
        )
    })?;
    let spawned = spawn(path, &envp, &stdin, &write_end);
    // Close our write end so that reading sees EOF when the child (and its children) finish.
    drop(write_end);
    let pid = spawned.map_err(|e| {
        fail(
            "failed to execute",
            format!("fork/exec {}: {}", path.display(), os_error_text(&e)),
        )
    })?;
    let mut output = Vec::new();
    let read = File::from(read_end).read_to_end(&mut output);
    let status = wait(pid).map_err(|e| fail("failed to execute", os_error_text(&e)))?;
    if status != 0 {
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
    let text = utf8(output)?;
    let doc = parse_document(text)?;
    let d = Decoder { text };
    doc.get_ref()
        .iter()
        .map(|(k, v)| Ok((k.get_ref().to_string(), d.map_string(k.get_ref(), v)?)))
        .collect()
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

/// Starts `path` with `stdin` as fd 0, the pipe's write end as fd 3, stdout/stderr
/// inherited, exactly `envp` as its environment and SIGPIPE back at its default (Rust
/// ignores it).
fn spawn(path: &Path, envp: &[CString], stdin: &File, fd3: &OwnedFd) -> io::Result<libc::pid_t> {
    let argv = c_argv(&[path.as_os_str()])?;
    let (argv_ptrs, envp_ptrs) = (null_terminated(&argv), null_terminated(envp));
    // SAFETY: the attr/action objects are initialised before use and destroyed after;
    // every pointer handed to posix_spawn stays alive until it returns.
    unsafe {
        let mut actions: libc::posix_spawn_file_actions_t = std::mem::zeroed();
        let mut attr: libc::posix_spawnattr_t = std::mem::zeroed();
        libc::posix_spawn_file_actions_init(&mut actions);
        libc::posix_spawnattr_init(&mut attr);
        libc::posix_spawn_file_actions_adddup2(&mut actions, stdin.as_raw_fd(), 0);
        // dup2 onto itself clears close-on-exec (musl and glibc >= 2.34 follow POSIX here).
        libc::posix_spawn_file_actions_adddup2(&mut actions, fd3.as_raw_fd(), 3);
        let mut sigdefault: libc::sigset_t = std::mem::zeroed();
        libc::sigemptyset(&mut sigdefault);
        libc::sigaddset(&mut sigdefault, libc::SIGPIPE);
        // libc-internal signals 32-34 that are at their default here stay so in the child
        // (glibc's posix_spawn would set them to ignored). sigaddset refuses them, so set
        // their bits directly: both glibc and musl keep signal n at bit n-1.
        let bits = &mut sigdefault as *mut libc::sigset_t as *mut u64;
        *bits |= crate::signals::internal_at_default();
        libc::posix_spawnattr_setsigdefault(&mut attr, &sigdefault);
        libc::posix_spawnattr_setflags(&mut attr, libc::POSIX_SPAWN_SETSIGDEF as libc::c_short);
        let mut pid: libc::pid_t = 0;
        let rc = libc::posix_spawn(
            &mut pid,
            argv[0].as_ptr(),
            &actions,
            &attr,
            argv_ptrs.as_ptr() as *const *mut libc::c_char,
            envp_ptrs.as_ptr() as *const *mut libc::c_char,
        );
        libc::posix_spawn_file_actions_destroy(&mut actions);
        libc::posix_spawnattr_destroy(&mut attr);
        if rc != 0 {
            return Err(io::Error::from_raw_os_error(rc));
        }
        Ok(pid)
    }
}

/// Waits for `pid`; returns the raw wait status.
fn wait(pid: libc::pid_t) -> io::Result<libc::c_int> {
    let mut status = 0;
    loop {
        // SAFETY: pid is our child; status is a valid out-pointer.
        if unsafe { libc::waitpid(pid, &mut status, 0) } >= 0 {
            return Ok(status);
        }
        let err = io::Error::last_os_error();
        if err.kind() != io::ErrorKind::Interrupted {
            return Err(err);
        }
    }
}

/// `exit status N` / `signal: killed`, as Go's `ExitError` prints them.
fn exit_text(status: libc::c_int) -> String {
    if libc::WIFEXITED(status) {
        return format!("exit status {}", libc::WEXITSTATUS(status));
    }
    let sig = libc::WTERMSIG(status);
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
    use std::os::unix::ffi::OsStrExt;
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
        crate::testutil::assert_all_rejected(
            parse_output,
            &[
                b"A = 1",
                b"A = [\"x\"]",
                b"[t]\nA = \"x\"",
                b"garbage",
                b"A = \"\xff\"",
            ],
        );
    }

    #[test]
    fn decode_errors_in_the_references_words() {
        let mismatch =
            "incompatible types: TOML value has type map[string]any; destination has type string";
        for (output, want) in [
            ("A = 1", "toml: line 1 (last key \"A\"): incompatible types: TOML value has type int64; destination has type string".to_string()),
            ("\n[t]\nA = \"x\"", format!("toml: line 2 (last key \"t\"): {mismatch}")),
            ("T = {a = \"b\"}", format!("toml: line 1 (last key \"T\"): {mismatch}")),
            // A table only implied by a dotted key has no position in the reference.
            ("\na.b = \"x\"", format!("toml: (last key \"a\"): {mismatch}")),
        ] {
            assert_eq!(parse_output(output.as_bytes()).unwrap_err(), want, "{output}");
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
"#,
        );
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
        assert_eq!(
            e.0,
            format!("failed to execute exec.d file at path '{d}/fails': exit status 3")
        );
        assert!(
            env.get("A").is_empty(),
            "output of a failed exec.d is not applied"
        );

        let p = script(tmp.path(), "garbage", "printf 'not = toml = at all' >&3");
        let e = run(&p, &mut env).unwrap_err();
        assert!(
            e.0.starts_with(&format!(
                "failed to decode output from exec.d file at path '{d}/garbage': "
            )),
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

        // Issue 11 item 7: Go's exec.Cmd refuses the env before any fork/exec.
        let p = script(tmp.path(), "ok", "true");
        let mut with_nul = env.clone();
        with_nul.set("BAD", std::ffi::OsStr::from_bytes(b"a\0b"));
        let e = run(&p, &mut with_nul).unwrap_err();
        assert_eq!(
            e.0,
            format!("failed to execute exec.d file at path '{d}/ok': exec: environment variable contains NUL")
        );

        let p = script(tmp.path(), "killed", "kill -9 $$");
        let e = run(&p, &mut env).unwrap_err();
        assert!(e.0.ends_with(": signal: killed"), "{}", e.0);
    }
}
