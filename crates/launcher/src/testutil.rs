//! Test-only helpers.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};

/// A fresh directory under the system temp dir, removed on drop.
pub struct TempDir(PathBuf);

impl TempDir {
    pub fn new() -> TempDir {
        static COUNTER: AtomicUsize = AtomicUsize::new(0);
        let n = COUNTER.fetch_add(1, Ordering::Relaxed);
        let dir = std::env::temp_dir().join(format!("launcher-unit-{}-{n}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        TempDir(dir)
    }

    pub fn path(&self) -> &Path {
        &self.0
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// Asserts `parse` refuses every document in `bad` with an error rather than a value.
pub fn assert_all_rejected<T, E>(parse: impl Fn(&[u8]) -> Result<T, E>, bad: &[&[u8]]) {
    for doc in bad {
        assert!(parse(doc).is_err(), "{:?}", String::from_utf8_lossy(doc));
    }
}

/// A minimal ELF file (no code): header, the section-name table and, when given, a
/// `.cnb_launcher` section with `contents`. `wide`: ELF64; `little`: little-endian.
pub fn elf_with_section(wide: bool, little: bool, contents: Option<&[u8]>) -> Vec<u8> {
    let put = |out: &mut Vec<u8>, v: u64, len: usize| {
        let bytes = v.to_le_bytes();
        if little {
            out.extend_from_slice(&bytes[..len]);
        } else {
            out.extend(bytes[..len].iter().rev());
        }
    };
    let word = if wide { 8 } else { 4 };
    let (ehsize, shentsize) = if wide { (64, 64) } else { (52, 40) };
    let names = b"\0.shstrtab\0.cnb_launcher\0";
    let data = contents.unwrap_or_default();
    let names_at = ehsize as u64;
    let data_at = names_at + names.len() as u64;
    let shoff = data_at + data.len() as u64;
    let count = if contents.is_some() { 3 } else { 2 };

    let mut out = vec![0x7f, b'E', b'L', b'F', if wide { 2 } else { 1 }];
    out.extend([if little { 1 } else { 2 }, 1, 0]);
    out.resize(16, 0);
    put(&mut out, 2, 2); // e_type: EXEC
    put(&mut out, 62, 2); // e_machine
    put(&mut out, 1, 4); // e_version
    put(&mut out, 0, word); // e_entry
    put(&mut out, 0, word); // e_phoff
    put(&mut out, shoff, word);
    put(&mut out, 0, 4); // e_flags
    put(&mut out, ehsize as u64, 2);
    put(&mut out, 0, 2); // e_phentsize
    put(&mut out, 0, 2); // e_phnum
    put(&mut out, shentsize as u64, 2);
    put(&mut out, count, 2);
    put(&mut out, 1, 2); // e_shstrndx
    assert_eq!(out.len(), ehsize);
    out.extend_from_slice(names);
    out.extend_from_slice(data);
    let header = |out: &mut Vec<u8>, name: u64, kind: u64, at: u64, size: u64| {
        let start = out.len();
        put(out, name, 4);
        put(out, kind, 4);
        put(out, 0, word); // flags
        put(out, 0, word); // addr
        put(out, at, word);
        put(out, size, word);
        out.resize(start + shentsize, 0);
    };
    header(&mut out, 0, 0, 0, 0);
    header(&mut out, 1, 3, names_at, names.len() as u64);
    if contents.is_some() {
        header(&mut out, 11, 1, data_at, data.len() as u64);
    }
    out
}
