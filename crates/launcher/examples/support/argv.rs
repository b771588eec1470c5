//! Shared by the benchmark's helper programs: their own arguments as an `execv` argv.

use std::ffi::{CString, OsStr, OsString};

/// The arguments after argv[0] as C strings and the NULL-terminated pointer array that
/// `execv` takes (the pointers borrow the strings' heap buffers, so keep both alive).
/// Exits 2 with `usage` when there are none.
pub fn exec_argv(usage: &str) -> (Vec<CString>, Vec<*const libc::c_char>) {
    let args: Vec<OsString> = std::env::args_os().skip(1).collect();
    if args.is_empty() {
        eprintln!("usage: {usage}");
        std::process::exit(2);
    }
    let words: Vec<&OsStr> = args.iter().map(OsString::as_os_str).collect();
    let strings = launcher::exec::c_argv(&words).expect("argument without NUL");
    let pointers = launcher::exec::null_terminated(&strings);
    (strings, pointers)
}
