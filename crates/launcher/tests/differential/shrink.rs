//! Shrinking a failing case: drop files, arguments, variables, stdin and single lines of
//! text files for as long as the launchers still disagree.

use crate::case::{Bytes, Case, Kind};

/// The smallest case reachable by single removals for which `fails` still holds.
pub fn shrink(mut case: Case, fails: impl Fn(&Case) -> bool) -> Case {
    'outer: loop {
        for candidate in smaller(&case) {
            if fails(&candidate) {
                case = candidate;
                continue 'outer;
            }
        }
        return case;
    }
}

/// Every case one removal smaller than `case`, coarse removals first.
fn smaller(case: &Case) -> Vec<Case> {
    let mut out = Vec::new();
    for i in 0..case.files.len() {
        let mut c = case.clone();
        let removed = c.files.remove(i);
        // Entries under a removed directory go with it.
        let prefix = format!("{}/", removed.path);
        c.files.retain(|e| !e.path.starts_with(&prefix));
        out.push(c);
    }
    for i in 0..case.args.len() {
        let mut c = case.clone();
        c.args.remove(i);
        out.push(c);
    }
    for i in 0..case.env.len() {
        let mut c = case.clone();
        c.env.remove(i);
        out.push(c);
    }
    if !case.stdin.0.is_empty() {
        let mut c = case.clone();
        c.stdin = Bytes::default();
        out.push(c);
    }
    if case.argv0 != "launcher" {
        let mut c = case.clone();
        c.argv0 = "launcher".into();
        out.push(c);
    }
    for (i, entry) in case.files.iter().enumerate() {
        let Kind::File { contents, mode } = &entry.kind else {
            continue;
        };
        let lines: Vec<&[u8]> = contents.0.split_inclusive(|&b| b == b'\n').collect();
        for skip in 0..lines.len() {
            // Keep a script's `#!` line: without it the case fails for another reason.
            if skip == 0 && contents.0.starts_with(b"#!") {
                continue;
            }
            let mut c = case.clone();
            let kept: Vec<u8> = lines
                .iter()
                .enumerate()
                .filter(|(n, _)| *n != skip)
                .flat_map(|(_, l)| l.iter().copied())
                .collect();
            c.files[i].kind = Kind::File {
                contents: Bytes(kept),
                mode: *mode,
            };
            out.push(c);
        }
    }
    out
}
