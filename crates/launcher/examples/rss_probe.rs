//! Peak-RSS probe for the launcher benchmark: forks, execs its arguments in the child
//! and prints the child's `ru_maxrss` (KiB) and exit status as `<rss> <status>`.
//!
//! Built static like the launcher: a child starts out with its parent's address space and
//! the kernel counts that in `ru_maxrss`, so the parent has to be this small program
//! rather than the (much larger) benchmark driver.

#[path = "support/argv.rs"]
mod support;

fn main() {
    let (args, argv) = support::exec_argv("rss_probe <program> [args...]");
    // SAFETY: the child only calls async-signal-safe functions (signal, execv, _exit);
    // argv outlives both calls.
    unsafe {
        let pid = libc::fork();
        if pid == 0 {
            libc::signal(libc::SIGPIPE, libc::SIG_DFL);
            libc::execv(args[0].as_ptr(), argv.as_ptr());
            libc::_exit(127);
        }
        assert!(pid > 0, "fork: {}", std::io::Error::last_os_error());
        let mut status = 0;
        let mut usage: libc::rusage = std::mem::zeroed();
        assert!(
            libc::wait4(pid, &mut status, 0, &mut usage) == pid,
            "wait4 failed"
        );
        println!("{} {}", usage.ru_maxrss, libc::WEXITSTATUS(status));
    }
}
