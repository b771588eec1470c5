//! Reads one named section of an ELF file with a few positioned reads (header, section
//! table, section names, the section): enough to find a delegate's `.cnb_launcher`
//! self-description without loading a multi-MiB binary. ELF32/ELF64, either byte order.

use std::fs::File;
use std::io;
use std::os::unix::fs::FileExt;

/// Section names and self-descriptions are small; anything larger is not ours.
const MAX_NAMES: u64 = 1 << 20;
pub const MAX_SECTION: u64 = 64 << 10;

/// Why a file's section could not be read.
#[derive(Debug, PartialEq, Eq)]
pub enum ElfError {
    NotElf,
    Malformed(&'static str),
    Io(String),
}

impl std::fmt::Display for ElfError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ElfError::NotElf => f.write_str("not an ELF file"),
            ElfError::Malformed(what) => write!(f, "malformed ELF file: {what}"),
            ElfError::Io(e) => f.write_str(e),
        }
    }
}

impl From<io::Error> for ElfError {
    fn from(e: io::Error) -> Self {
        if e.kind() == io::ErrorKind::UnexpectedEof {
            ElfError::Malformed("truncated")
        } else {
            ElfError::Io(crate::errors::os_error_text(&e))
        }
    }
}

struct Layout {
    wide: bool,
    little: bool,
}

impl Layout {
    fn uint(&self, b: &[u8], at: usize, len: usize) -> u64 {
        let bytes = &b[at..at + len];
        let fold = |acc: u64, x: &u8| acc << 8 | u64::from(*x);
        if self.little {
            bytes.iter().rev().fold(0, fold)
        } else {
            bytes.iter().fold(0, fold)
        }
    }

    /// An address-sized field: 4 bytes in ELF32, 8 in ELF64.
    fn word(&self, b: &[u8], at32: usize, at64: usize) -> u64 {
        if self.wide {
            self.uint(b, at64, 8)
        } else {
            self.uint(b, at32, 4)
        }
    }
}

fn read_at(file: &File, offset: u64, len: u64) -> Result<Vec<u8>, ElfError> {
    let mut buf = vec![0; usize::try_from(len).map_err(|_| ElfError::Malformed("size"))?];
    file.read_exact_at(&mut buf, offset)?;
    Ok(buf)
}

/// Contents of section `name`, `Ok(None)` when the file has no such section. A section
/// larger than [`MAX_SECTION`] is an error.
pub fn section(file: &File, name: &str) -> Result<Option<Vec<u8>>, ElfError> {
    let mut ident = [0u8; 64];
    let n = file.read_at(&mut ident, 0)?;
    if n < 52 || &ident[..4] != b"\x7fELF" {
        return Err(ElfError::NotElf);
    }
    let l = Layout {
        wide: ident[4] == 2,
        little: ident[5] == 1,
    };
    if !matches!(ident[4], 1 | 2) || !matches!(ident[5], 1 | 2) || (l.wide && n < 64) {
        return Err(ElfError::Malformed("header"));
    }
    let shoff = l.word(&ident, 0x20, 0x28);
    let (entsize, count, names_index) = if l.wide {
        (
            l.uint(&ident, 0x3a, 2),
            l.uint(&ident, 0x3c, 2),
            l.uint(&ident, 0x3e, 2),
        )
    } else {
        (
            l.uint(&ident, 0x2e, 2),
            l.uint(&ident, 0x30, 2),
            l.uint(&ident, 0x32, 2),
        )
    };
    if shoff == 0 || count == 0 {
        return Ok(None);
    }
    let min_entsize = if l.wide { 64 } else { 40 };
    if entsize < min_entsize || names_index >= count {
        return Err(ElfError::Malformed("section header table"));
    }
    let table = read_at(file, shoff, entsize * count)?;
    let header = |i: u64| &table[(i * entsize) as usize..((i + 1) * entsize) as usize];
    // (offset, size) of a section's contents.
    let extent = |h: &[u8]| (l.word(h, 0x10, 0x18), l.word(h, 0x14, 0x20));
    let (names_at, names_len) = extent(header(names_index));
    if names_len > MAX_NAMES {
        return Err(ElfError::Malformed("section names too large"));
    }
    let names = read_at(file, names_at, names_len)?;
    for i in 0..count {
        let h = header(i);
        let start = l.uint(h, 0, 4) as usize;
        let Some(rest) = names.get(start..) else {
            return Err(ElfError::Malformed("section name offset"));
        };
        let end = rest.iter().position(|&b| b == 0).unwrap_or(rest.len());
        if &rest[..end] == name.as_bytes() {
            let (at, len) = extent(h);
            if len > MAX_SECTION {
                return Err(ElfError::Malformed("section too large"));
            }
            return read_at(file, at, len).map(Some);
        }
    }
    Ok(None)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testutil::{elf_with_section, TempDir};

    fn write(tmp: &TempDir, name: &str, bytes: &[u8]) -> File {
        let p = tmp.path().join(name);
        std::fs::write(&p, bytes).unwrap();
        File::open(p).unwrap()
    }

    #[test]
    fn reads_a_named_section_in_every_class_and_byte_order() {
        let tmp = TempDir::new();
        for (wide, little) in [(true, true), (true, false), (false, true), (false, false)] {
            let elf = elf_with_section(wide, little, Some(b"{\"x\":1}"));
            let f = write(&tmp, "elf", &elf);
            assert_eq!(
                section(&f, ".cnb_launcher").unwrap().as_deref(),
                Some(&b"{\"x\":1}"[..]),
                "wide={wide} little={little}"
            );
            assert_eq!(section(&f, ".cnb").unwrap(), None, "prefix is not a match");
            let f = write(&tmp, "plain", &elf_with_section(wide, little, None));
            assert_eq!(section(&f, ".cnb_launcher").unwrap(), None);
        }
    }

    #[test]
    fn refuses_non_elf_truncated_and_oversized_input() {
        let tmp = TempDir::new();
        let f = write(&tmp, "script", b"#!/bin/sh\necho hi\n");
        assert_eq!(section(&f, ".x"), Err(ElfError::NotElf));
        let mut elf = elf_with_section(true, true, Some(b"{}"));
        elf.truncate(elf.len() - 10);
        let f = write(&tmp, "truncated", &elf);
        assert_eq!(
            section(&f, ".cnb_launcher"),
            Err(ElfError::Malformed("truncated"))
        );
        let big = vec![b' '; MAX_SECTION as usize + 1];
        let f = write(&tmp, "big", &elf_with_section(true, true, Some(&big)));
        assert_eq!(
            section(&f, ".cnb_launcher"),
            Err(ElfError::Malformed("section too large"))
        );
    }
}
