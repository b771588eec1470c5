//! Replacing the launcher with the process: PATH lookup in the launch env (Go
//! `exec.LookPath` rules) and `execve` without forking.

use std::ffi::{CString, OsStr, OsString};
use std::io;
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};

use crate::env::Env;
use crate::errors::os_error_text;
use crate::paths;

/// Finds `file` like Go's `exec.LookPath`, using `path_var` as PATH. The error text is
/// the reference's (`exec: "x": executable file not found in $PATH`).
pub fn look_path(file: &OsStr, path_var: &OsStr) -> Result<PathBuf, String> {
    let quoted = go_quote(file.as_bytes());
    if file.as_bytes().contains(&b'/') {
        return match find_executable(Path::new(file)) {
            Ok(()) => Ok(PathBuf::from(file)),
            Err(e) => Err(format!("exec: {quoted}: {e}")),
        };
    }
    // Like Go's filepath.SplitList, an empty PATH has no entries (not one empty entry).
    let dirs = path_var.as_bytes().split(|&b| b == b':');
    for dir in dirs.filter(|_| !path_var.is_empty()) {
        let dir = if dir.is_empty() { &b"."[..] } else { dir };
        let candidate = paths::join(Path::new(OsStr::from_bytes(dir)), &[file.as_bytes()]);
        if find_executable(&candidate).is_ok() {
            if !candidate.is_absolute() {
                return Err(format!(
                    "exec: {quoted}: cannot run executable found relative to current directory"
                ));
            }
            return Ok(candidate);
        }
    }
    Err(format!(
        "exec: {quoted}: executable file not found in $PATH"
    ))
}

fn find_executable(path: &Path) -> Result<(), String> {
    let meta = std::fs::metadata(path)
        .map_err(|e| format!("stat {}: {}", path.display(), os_error_text(&e)))?;
    if meta.is_dir() {
        return Err("is a directory".into());
    }
    let c = cstring(path.as_os_str()).map_err(|e| os_error_text(&e))?;
    // SAFETY: c is a valid NUL-terminated path.
    if unsafe { libc::faccessat(libc::AT_FDCWD, c.as_ptr(), libc::X_OK, libc::AT_EACCESS) } != 0 {
        return Err(os_error_text(&io::Error::last_os_error()));
    }
    Ok(())
}

/// Replaces this process with `path`; returns only on failure.
pub fn execve(path: &Path, argv: &[&OsStr], env: &Env) -> io::Error {
    match c_envp(env).and_then(|envp| exec_inner(path, argv, envp)) {
        Ok(never) => match never {},
        Err(e) => e,
    }
}

/// [`execve`] with the environment exactly as given (order kept): hands a launch over to
/// another launcher.
pub fn execve_environ(path: &Path, argv: &[&OsStr], environ: &[(OsString, OsString)]) -> io::Error {
    let envp: io::Result<Vec<CString>> = environ
        .iter()
        .map(|(k, v)| {
            let mut kv = k.clone();
            kv.push("=");
            kv.push(v);
            cstring(&kv)
        })
        .collect();
    match envp.and_then(|envp| exec_inner(path, argv, envp)) {
        Ok(never) => match never {},
        Err(e) => e,
    }
}

enum Never {}

fn exec_inner(path: &Path, argv: &[&OsStr], envp: Vec<CString>) -> io::Result<Never> {
    let path = cstring(path.as_os_str())?;
    let argv = c_argv(argv)?;
    let argv_ptrs = null_terminated(&argv);
    let envp_ptrs = null_terminated(&envp);
    // SAFETY: the Rust runtime ignores SIGPIPE and ignored signals survive execve; the
    // process must start with the default disposition, as under the reference.
    unsafe {
        libc::signal(libc::SIGPIPE, libc::SIG_DFL);
        libc::execve(path.as_ptr(), argv_ptrs.as_ptr(), envp_ptrs.as_ptr());
    }
    Err(io::Error::last_os_error())
}

/// argv words as C strings.
pub fn c_argv(argv: &[&OsStr]) -> io::Result<Vec<CString>> {
    argv.iter().map(|a| cstring(a)).collect()
}

/// `NAME=value` C strings of the launch env.
pub fn c_envp(env: &Env) -> io::Result<Vec<CString>> {
    env.iter()
        .map(|(k, v)| {
            let mut kv = Vec::with_capacity(k.len() + v.len() + 2);
            kv.extend_from_slice(k.as_bytes());
            kv.push(b'=');
            kv.extend_from_slice(v.as_bytes());
            CString::new(kv).map_err(|_| io::Error::from_raw_os_error(libc::EINVAL))
        })
        .collect()
}

pub fn null_terminated(v: &[CString]) -> Vec<*const libc::c_char> {
    v.iter()
        .map(|c| c.as_ptr())
        .chain([std::ptr::null()])
        .collect()
}

/// A C string; an interior NUL is EINVAL, as Go reports it.
pub fn cstring(s: &OsStr) -> io::Result<CString> {
    CString::new(s.as_bytes()).map_err(|_| io::Error::from_raw_os_error(libc::EINVAL))
}

/// Go's `%q` (`strconv.Quote`): double-quoted; `"`, `\\`, control characters and
/// non-printable characters escaped; bytes that are not UTF-8 as `\xNN`.
pub fn go_quote(s: impl AsRef<[u8]>) -> String {
    use std::fmt::Write;
    let mut out = String::with_capacity(s.as_ref().len() + 2);
    out.push('"');
    for chunk in s.as_ref().utf8_chunks() {
        for c in chunk.valid().chars() {
            let _ = match c {
                '"' => write!(out, "\\\""),
                '\\' => write!(out, "\\\\"),
                '\x07' => write!(out, "\\a"),
                '\x08' => write!(out, "\\b"),
                '\x0c' => write!(out, "\\f"),
                '\n' => write!(out, "\\n"),
                '\r' => write!(out, "\\r"),
                '\t' => write!(out, "\\t"),
                '\x0b' => write!(out, "\\v"),
                c if c < ' ' || c == '\x7f' => write!(out, "\\x{:02x}", c as u32),
                c if c.is_control() => write!(out, "\\u{:04x}", c as u32),
                c => {
                    out.push(c);
                    Ok(())
                }
            };
        }
        for b in chunk.invalid() {
            let _ = write!(out, "\\x{b:02x}");
        }
    }
    out.push('"');
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testutil::TempDir;
    use std::os::unix::fs::PermissionsExt;

    #[test]
    fn look_path_rules() {
        let tmp = TempDir::new();
        let bin = tmp.path().join("bin");
        std::fs::create_dir(&bin).unwrap();
        std::fs::write(bin.join("tool"), "#!/bin/sh\n").unwrap();
        std::fs::set_permissions(bin.join("tool"), std::fs::Permissions::from_mode(0o755)).unwrap();
        std::fs::write(bin.join("data"), "").unwrap();
        let path_var = format!("/nonexistent:{}", bin.display());

        assert_eq!(
            look_path("tool".as_ref(), path_var.as_ref()).unwrap(),
            bin.join("tool")
        );
        assert_eq!(
            look_path("sh".as_ref(), "/nonexistent:".as_ref()).unwrap_err(),
            r#"exec: "sh": executable file not found in $PATH"#
        );
        assert_eq!(
            look_path("nope".as_ref(), "".as_ref()).unwrap_err(),
            r#"exec: "nope": executable file not found in $PATH"#
        );
        // A hit in a relative PATH entry is refused, like Go's ErrDot.
        let depth = std::env::current_dir().unwrap().components().count() - 1;
        let relative = format!(
            "{}{}",
            "../".repeat(depth),
            bin.display().to_string().trim_start_matches('/')
        );
        assert_eq!(
            look_path("tool".as_ref(), relative.as_ref()).unwrap_err(),
            r#"exec: "tool": cannot run executable found relative to current directory"#
        );
        let abs = bin.join("tool");
        assert_eq!(look_path(abs.as_os_str(), "".as_ref()).unwrap(), abs);
        let missing = bin.join("missing");
        assert_eq!(
            look_path(missing.as_os_str(), "".as_ref()).unwrap_err(),
            format!(
                r#"exec: "{0}": stat {0}: no such file or directory"#,
                missing.display()
            )
        );
        assert_eq!(
            look_path(bin.as_os_str(), "".as_ref()).unwrap_err(),
            format!(r#"exec: "{}": is a directory"#, bin.display())
        );
        assert_eq!(
            look_path("tool".as_ref(), format!("rel:{}", bin.display()).as_ref()).unwrap(),
            bin.join("tool"),
            "relative dirs that do not hold the file are skipped"
        );
    }

    #[test]
    fn quoting_like_go() {
        assert_eq!(go_quote(""), r#""""#);
        assert_eq!(go_quote("a \"b\"\\\n"), r#""a \"b\"\\\n""#);
        assert_eq!(
            go_quote(b"\xffraw\x07\x01\xc2\x85"),
            r#""\xffraw\a\x01\u0085""#
        );
    }

    #[test]
    fn interior_nul_is_einval() {
        let e = cstring(OsStr::from_bytes(b"a\0b")).unwrap_err();
        assert_eq!(os_error_text(&e), "invalid argument");
    }
}
