//! The program the differential fuzzer's launches end in: it appends what it saw (argv,
//! cwd, open fds, blocked and ignored signals, environment sorted by name, stdin) to `seen` next to its own `bin/` directory.
//! Built by the harness with `rustc`; not part of any crate.

#![no_main]

use std::io::{Read, Write};

/// A C `main` without Rust's runtime set-up, which would ignore SIGPIPE before the
/// probe could see how the launcher left it.
#[no_mangle]
pub extern "C" fn main(_argc: i32, _argv: *const *const u8) -> i32 {
    let exe = std::env::current_exe().expect("current_exe");
    let root = exe.parent().and_then(|bin| bin.parent()).expect("<root>/bin/probe");
    let argv: Vec<_> = std::env::args_os().collect();
    let cwd = std::env::current_dir().map(|d| d.into_os_string());
    let mut env: Vec<_> = std::env::vars_os().collect();
    env.sort();
    let mut stdin = Vec::new();
    let stdin = std::io::stdin().read_to_end(&mut stdin).map(|_| stdin);
    let mut report = format!("argv: {argv:?}\ncwd: {cwd:?}\n");
    // Open descriptors (but the one this listing reads) and the signal masks.
    let own = format!("/proc/{}/fd", std::process::id());
    let mut fds: Vec<u32> = std::fs::read_dir("/proc/self/fd")
        .map(|d| {
            d.filter_map(|e| e.ok())
                .filter(|e| std::fs::read_link(e.path()).map_or(true, |t| t.as_os_str() != own.as_str()))
                .filter_map(|e| e.file_name().to_str()?.parse().ok())
                .collect()
        })
        .unwrap_or_default();
    fds.sort();
    report.push_str(&format!("fds: {fds:?}\n"));
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    for line in status.lines() {
        if ["SigBlk:", "SigIgn:"].iter().any(|p| line.starts_with(p)) {
            report.push_str(line);
            report.push('\n');
        }
    }
    for (k, v) in env {
        report.push_str(&format!("env: {k:?}={v:?}\n"));
    }
    report.push_str(&format!("stdin: {:?}\n", stdin.map(|s| String::from_utf8_lossy(&s).into_owned())));
    let mut out = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(root.join("seen"))
        .expect("open seen");
    out.write_all(report.as_bytes()).expect("write seen");
    let code = argv
        .iter()
        .find_map(|a| a.to_str()?.strip_prefix("exit=")?.parse().ok())
        .unwrap_or(0);
    std::process::exit(code);
}
