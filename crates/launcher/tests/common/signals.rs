//! A defined signal state for a launch, set between fork and exec (raw syscalls only:
//! libc refuses signals 32–34).

/// Every signal at its default action, then `ignored` set to SIG_IGN and the mask set to
/// exactly `blocked`.
pub fn set_signal_state(ignored: &[i32], blocked: &[i32]) {
    let default = [0u64; 4];
    for sig in (1..=64).filter(|&s| s != libc::SIGKILL && s != libc::SIGSTOP) {
        // SAFETY: a kernel struct sigaction (all zero: SIG_DFL), 8-byte sigset.
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
    let ignore = [libc::SIG_IGN as u64, 0, 0, 0];
    for &sig in ignored {
        // SAFETY: a kernel struct sigaction (handler first, zeroed rest), 8-byte sigset.
        unsafe {
            libc::syscall(
                libc::SYS_rt_sigaction,
                sig,
                ignore.as_ptr(),
                std::ptr::null_mut::<u64>(),
                8,
            )
        };
    }
    let mask: u64 = blocked.iter().fold(0, |m, s| m | 1 << (s - 1));
    // SAFETY: an 8-byte kernel sigset.
    unsafe {
        libc::syscall(
            libc::SYS_rt_sigprocmask,
            libc::SIG_SETMASK,
            &mask as *const u64,
            std::ptr::null_mut::<u64>(),
            8,
        )
    };
}
