//! Start-up floor for the launcher benchmark: a static program built with the same
//! target and profile that only `execve`s its first argument. Not shipped.

use std::ffi::CString;
use std::os::unix::ffi::OsStrExt;

fn main() {
    let args: Vec<CString> = std::env::args_os()
        .skip(1)
        .map(|a| CString::new(a.as_bytes()).expect("argument without NUL"))
        .collect();
    let Some(path) = args.first() else {
        eprintln!("usage: exec_floor <program> [args...]");
        std::process::exit(2);
    };
    let argv: Vec<*const libc::c_char> = args
        .iter()
        .map(|a| a.as_ptr())
        .chain([std::ptr::null()])
        .collect();
    // SAFETY: argv is NUL-terminated and outlives the call; environ is the process env.
    unsafe {
        libc::signal(libc::SIGPIPE, libc::SIG_DFL);
        libc::execv(path.as_ptr(), argv.as_ptr());
    }
    eprintln!("exec_floor: {}", std::io::Error::last_os_error());
    std::process::exit(127);
}
