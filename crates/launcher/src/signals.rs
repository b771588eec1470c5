//! Signal state as the reference leaves it. The Go runtime of the reference installs its
//! own handler for most signals at start-up (an inherited "ignore" is gone once it execs
//! the process or an exec.d program) and unblocks the signals it needs. Without this, a
//! process started under an ignored or blocked signal would see a different state under
//! our launcher than under the reference.

/// Ignored dispositions the Go runtime keeps: SIGHUP, SIGINT (respected when ignored),
/// SIGCONT, SIGTSTP, SIGTTIN, SIGTTOU (left at their default action), and the libc-internal
/// 32 and 34, where it installs no handler. 33 gets a handler (per-thread syscalls).
const KEPT_IGNORED: [i32; 8] = [1, 2, 18, 20, 21, 22, 32, 34];
/// Signals the Go runtime never leaves blocked (synchronous, fatal, preemption, internal).
const UNBLOCKED: [i32; 18] = [
    1, 2, 3, 4, 5, 6, 7, 8, 11, 15, 16, 17, 23, 27, 31, 32, 33, 34,
];

/// Resets inherited `SIG_IGN` dispositions (SIGPIPE, which Rust ignores, included) and
/// unblocks signals as the reference's runtime does, for this process and so for
/// everything it starts. Raw syscalls: libc refuses signals 32–34.
pub fn reset_like_go_runtime() {
    // Kernel `struct sigaction` (handler first); zeroed is SIG_DFL, no flags, empty mask.
    let default = [0u64; 4];
    for sig in 1..=64 {
        if sig == libc::SIGKILL || sig == libc::SIGSTOP || KEPT_IGNORED.contains(&sig) {
            continue;
        }
        if handler(sig) == Some(libc::SIG_IGN) {
            // SAFETY: a kernel-sized struct sigaction and the kernel's 8-byte sigset.
            unsafe {
                libc::syscall(
                    libc::SYS_rt_sigaction,
                    sig,
                    default.as_ptr(),
                    std::ptr::null_mut::<u64>(),
                    8,
                )
            };
        }
    }
    let unblock: u64 = UNBLOCKED.iter().fold(0, |m, s| m | 1 << (s - 1));
    // SAFETY: an 8-byte kernel sigset; the old set is not wanted.
    unsafe {
        libc::syscall(
            libc::SYS_rt_sigprocmask,
            libc::SIG_UNBLOCK,
            &unblock as *const u64,
            std::ptr::null_mut::<u64>(),
            8,
        );
    }
}

/// Bits (signal n at bit n-1) of the libc-internal signals 32-34 whose disposition in this
/// process is the default.
pub fn internal_at_default() -> u64 {
    (32..=34)
        .filter(|&sig| handler(sig) == Some(libc::SIG_DFL))
        .fold(0, |bits, sig| bits | 1 << (sig - 1))
}

/// The current handler of `sig` (`SIG_DFL`, `SIG_IGN` or a function).
fn handler(sig: i32) -> Option<libc::sighandler_t> {
    let mut old = [0u64; 4];
    // SAFETY: query only, into a buffer at least as large as the kernel's struct sigaction.
    let queried = unsafe {
        libc::syscall(
            libc::SYS_rt_sigaction,
            sig,
            std::ptr::null::<u64>(),
            old.as_mut_ptr(),
            8,
        )
    };
    (queried == 0).then_some(old[0] as libc::sighandler_t)
}
