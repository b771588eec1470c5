//! Start-up floor for the launcher benchmark: a static program built with the same
//! target and profile that only `execve`s its first argument. Not shipped.

#[path = "support/argv.rs"]
mod support;

fn main() {
    let (args, argv) = support::exec_argv("exec_floor <program> [args...]");
    // SAFETY: argv is NUL-terminated and outlives the call; environ is the process env.
    unsafe {
        libc::signal(libc::SIGPIPE, libc::SIG_DFL);
        libc::execv(args[0].as_ptr(), argv.as_ptr());
    }
    eprintln!("exec_floor: {}", std::io::Error::last_os_error());
    std::process::exit(127);
}
