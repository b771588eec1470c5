//! Env-file application: the input is split into `name\0contents\0` records (one env
//! directory), applied in sorted order to an env with a few preset variables.
#![no_main]

use std::ffi::OsString;
use std::os::unix::ffi::{OsStrExt, OsStringExt};

use launcher::env::{apply_env_files, Env, EnvFile};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let mut parts = data.split(|&b| b == 0);
    let mut files = Vec::new();
    while let (Some(name), Some(contents)) = (parts.next(), parts.next()) {
        files.push(EnvFile {
            name: OsString::from_vec(name.to_vec()),
            contents: contents.to_vec(),
        });
    }
    files.sort_by(|a, b| a.name.cmp(&b.name));
    let mut env = Env::launch([
        (OsString::from("PATH"), OsString::from("/usr/bin:/bin")),
        (OsString::from("EMPTY"), OsString::new()),
    ]);
    apply_env_files(&mut env, &files);
    // Every variable set comes from a file name's part before the first dot.
    for (name, _) in env.iter() {
        let known = name == "PATH"
            || name == "EMPTY"
            || files
                .iter()
                .any(|f| f.name.as_bytes().split(|&b| b == b'.').next() == Some(name.as_bytes()));
        assert!(known, "unexpected variable {name:?}");
    }
});
