//! Exit codes and error values. Messages copy the reference lifecycle's wording and
//! its "context: cause" chaining, so operators see the same text from either launcher.

use std::fmt::Display;
use std::io;
use std::path::Path;

/// Generic failure; the reference uses it for an unreadable `metadata.toml` (G-9).
pub const EXIT_FAILED: i32 = 1;
pub const EXIT_PLATFORM_API: i32 = 11;
pub const EXIT_BUILDPACK_API: i32 = 12;
/// `LaunchError` in the reference's platform exit map.
pub const EXIT_LAUNCH: i32 = 82;

/// A fatal error: printed as `ERROR: <message>`, then the launcher exits with `code`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Failure {
    pub code: i32,
    pub message: String,
}

impl Failure {
    pub fn new(code: i32, message: impl Into<String>) -> Self {
        Failure {
            code,
            message: message.into(),
        }
    }
}

/// An error inside the launch step (process selection, env, exec.d, exec).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LaunchError(pub String);

impl LaunchError {
    pub fn new(msg: impl Into<String>) -> Self {
        LaunchError(msg.into())
    }

    /// The reference reports every launch error with exit 82.
    pub fn into_failure(self) -> Failure {
        Failure::new(EXIT_LAUNCH, format!("failed to launch: {}", self.0))
    }
}

impl Display for LaunchError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

/// Prefixes context, like the reference's `errors.Wrap`.
pub trait Context<T> {
    fn context(self, ctx: impl Display) -> Result<T, LaunchError>;
}

impl<T> Context<T> for Result<T, LaunchError> {
    fn context(self, ctx: impl Display) -> Result<T, LaunchError> {
        self.map_err(|e| LaunchError(format!("{ctx}: {}", e.0)))
    }
}

/// `<op> <path>: <errno text>`, the shape of the reference's path errors.
pub fn path_error(op: &str, path: &Path, err: &io::Error) -> LaunchError {
    LaunchError(format!("{op} {}: {}", path.display(), os_error_text(err)))
}

/// Lower-case errno text as the reference prints it (`no such file or directory`).
pub fn os_error_text(err: &io::Error) -> String {
    let Some(code) = err.raw_os_error() else {
        return err.to_string();
    };
    let known = match code {
        libc::ENOENT => "no such file or directory",
        libc::EACCES => "permission denied",
        libc::EPERM => "operation not permitted",
        libc::ENOTDIR => "not a directory",
        libc::EISDIR => "is a directory",
        libc::ENOEXEC => "exec format error",
        libc::ELOOP => "too many levels of symbolic links",
        libc::E2BIG => "argument list too long",
        libc::EINVAL => "invalid argument",
        libc::ENAMETOOLONG => "file name too long",
        libc::ETXTBSY => "text file busy",
        libc::ENOMEM => "cannot allocate memory",
        libc::EIO => "input/output error",
        _ => "",
    };
    if !known.is_empty() {
        return known.to_string();
    }
    // std renders "<strerror> (os error N)"; keep the strerror part, lower-cased first letter.
    let full = err.to_string();
    let text = full.split(" (os error").next().unwrap_or(&full);
    let mut chars = text.chars();
    match chars.next() {
        Some(c) => c.to_lowercase().chain(chars).collect(),
        None => full,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn errno_texts_are_go_style() {
        let e = io::Error::from_raw_os_error(libc::ENOENT);
        assert_eq!(os_error_text(&e), "no such file or directory");
        let e = io::Error::from_raw_os_error(libc::ENOSPC);
        let t = os_error_text(&e);
        assert!(t.starts_with("no space"), "{t}");
        assert!(!t.contains("os error"));
        assert_eq!(
            path_error(
                "open",
                Path::new("/x"),
                &io::Error::from_raw_os_error(libc::EACCES)
            )
            .0,
            "open /x: permission denied"
        );
    }

    #[test]
    fn context_chains_like_errors_wrap() {
        let r: Result<(), LaunchError> = Err(LaunchError::new("cause"));
        let e = r.context("inner").context("outer").unwrap_err();
        assert_eq!(e.0, "outer: inner: cause");
        let f = e.into_failure();
        assert_eq!(f.code, 82);
        assert_eq!(f.message, "failed to launch: outer: inner: cause");
    }
}
