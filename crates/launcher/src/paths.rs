//! Lexical path handling with Go `filepath.Join`/`Clean` semantics, so the paths the
//! launcher hands out (PATH entries, profile and exec.d paths) match the reference.

use std::ffi::OsString;
use std::os::unix::ffi::{OsStrExt, OsStringExt};
use std::path::{Path, PathBuf};

/// Go `filepath.Clean`: collapse `//`, drop `.`, resolve `..` lexically, no trailing `/`.
pub fn clean(path: &Path) -> PathBuf {
    let bytes = path.as_os_str().as_bytes();
    let rooted = bytes.first() == Some(&b'/');
    let mut parts: Vec<&[u8]> = Vec::new();
    for part in bytes.split(|&b| b == b'/') {
        match part {
            b"" | b"." => {}
            b".." => match parts.last() {
                Some(last) if *last != b".." => {
                    parts.pop();
                }
                _ if rooted => {}
                _ => parts.push(part),
            },
            _ => parts.push(part),
        }
    }
    let mut out = Vec::with_capacity(bytes.len());
    if rooted {
        out.push(b'/');
    }
    for (i, part) in parts.iter().enumerate() {
        if i > 0 {
            out.push(b'/');
        }
        out.extend_from_slice(part);
    }
    if out.is_empty() {
        out.push(b'.');
    }
    PathBuf::from(OsString::from_vec(out))
}

/// Go `filepath.Join(base, elems...)`: joins non-empty elements, then cleans.
pub fn join(base: &Path, elems: &[&[u8]]) -> PathBuf {
    let mut joined = base.as_os_str().as_bytes().to_vec();
    for e in elems.iter().filter(|e| !e.is_empty()) {
        if !joined.is_empty() {
            joined.push(b'/');
        }
        joined.extend_from_slice(e);
    }
    if joined.is_empty() {
        return PathBuf::new();
    }
    clean(Path::new(std::ffi::OsStr::from_bytes(&joined)))
}

/// Go `filepath.Abs`: relative paths are taken from the current directory.
pub fn absolute(path: &Path) -> std::io::Result<PathBuf> {
    if path.is_absolute() {
        Ok(clean(path))
    } else {
        Ok(clean(&std::env::current_dir()?.join(path)))
    }
}

/// Buildpack ID to directory name (`/` becomes `_`).
pub fn escape_id(id: &str) -> String {
    id.replace('/', "_")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn clean_matches_go() {
        for (input, want) in [
            ("", "."),
            ("/", "/"),
            ("a//b/./c/", "a/b/c"),
            ("/../a", "/a"),
            ("../a/..", ".."),
            ("a/../..", ".."),
            ("/layers/", "/layers"),
            ("/a/b/../c", "/a/c"),
        ] {
            assert_eq!(clean(Path::new(input)), Path::new(want), "{input:?}");
        }
    }

    #[test]
    fn join_skips_empty_and_cleans() {
        assert_eq!(
            join(Path::new("/layers/"), &[b"a_b", b"", b"layer"]),
            Path::new("/layers/a_b/layer")
        );
        assert_eq!(join(Path::new("rel"), &[b"x"]), Path::new("rel/x"));
        assert_eq!(escape_id("a/b/c"), "a_b_c");
    }
}
