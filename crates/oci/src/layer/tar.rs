//! A minimal tar header writer that reproduces Go `archive/tar`'s USTAR output byte for byte
//! (the reference lifecycle writes its launcher layers with it), falling back to a PAX
//! extended header only for what USTAR cannot hold (long or non-ASCII names, huge sizes).

use std::io::{self, Write};

pub const BLOCK: usize = 512;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    File,
    Dir,
    Symlink,
}

impl Kind {
    fn flag(self) -> u8 {
        match self {
            Kind::File => b'0',
            Kind::Dir => b'5',
            Kind::Symlink => b'2',
        }
    }
}

pub struct Header<'a> {
    pub name: &'a str,
    pub kind: Kind,
    pub mode: u32,
    pub uid: u64,
    pub gid: u64,
    pub size: u64,
    pub mtime: u64,
    pub link: &'a str,
}

const MAX_OCTAL_7: u64 = 0o7777777;
const MAX_OCTAL_11: u64 = 0o77777777777;

/// Writes the header block(s) for one entry: USTAR when it can hold the entry (as Go picks
/// it), else a PAX extended header followed by the main header Go's `writePAXHeader` writes.
pub fn write_header(out: &mut impl Write, h: &Header<'_>) -> io::Result<()> {
    let split = split_ustar_name(h.name);
    // Go's allowedFormats: a long or non-ASCII name/link gets a record even when USTAR can
    // still split the name; the records only matter if something else rules USTAR out.
    let mut pax: Vec<(&str, String)> = Vec::new();
    if h.name.len() > 100 || !is_ascii(h.name) {
        pax.push(("path", h.name.to_string()));
    }
    let link_fits = h.link.len() <= 100 && is_ascii(h.link);
    if !link_fits {
        pax.push(("linkpath", h.link.to_string()));
    }
    let ids_fit = h.uid <= MAX_OCTAL_7 && h.gid <= MAX_OCTAL_7;
    if h.uid > MAX_OCTAL_7 {
        pax.push(("uid", h.uid.to_string()));
    }
    if h.gid > MAX_OCTAL_7 {
        pax.push(("gid", h.gid.to_string()));
    }
    let size_fits = h.size <= MAX_OCTAL_11;
    if !size_fits {
        pax.push(("size", h.size.to_string()));
    }
    if let (Some(split), true, true, true) = (split, link_fits, ids_fit, size_fits) {
        return out.write_all(&ustar_block(h, split, h.kind.flag()));
    }
    pax.sort();
    let records: Vec<u8> = pax.iter().flat_map(|(k, v)| pax_record(k, v)).collect();
    // writeRawFile: name path.Join(dir, "PaxHeaders.0", base), ASCII only, ≤100 bytes,
    // mode 0, mtime 0, no owner, and devmajor/devminor left as zero bytes.
    let (dir, base) = h.name.rsplit_once('/').unwrap_or(("", h.name));
    let joined = match (dir, h.name.starts_with('/')) {
        ("", false) => format!("PaxHeaders.0/{base}"),
        _ => format!("{dir}/PaxHeaders.0/{base}"),
    };
    let pax_name = truncate(&to_ascii(&joined), 100);
    let mut block = ustar_block(
        &Header {
            name: "",
            kind: Kind::File,
            mode: 0,
            uid: 0,
            gid: 0,
            size: records.len() as u64,
            mtime: 0,
            link: "",
        },
        ("", pax_name.trim_end_matches('/')),
        b'x',
    );
    block[329..345].fill(0);
    checksum(&mut block);
    out.write_all(&block)?;
    out.write_all(&records)?;
    pad(out, records.len() as u64)?;
    // The main header: ASCII-only name and link cut to 100 bytes, no prefix; fields that do
    // not fit are written as 0 (Go's formatOctal last resort).
    let name = truncate(&to_ascii(h.name), 100);
    let link = truncate(&to_ascii(h.link), 100);
    let fit = |v: u64, max: u64| if v > max { 0 } else { v };
    let block = ustar_block(
        &Header {
            link: &link,
            uid: fit(h.uid, MAX_OCTAL_7),
            gid: fit(h.gid, MAX_OCTAL_7),
            size: fit(h.size, MAX_OCTAL_11),
            ..*h
        },
        ("", &name),
        h.kind.flag(),
    );
    out.write_all(&block)
}

/// Go's isASCII: NUL counts as non-ASCII.
fn is_ascii(s: &str) -> bool {
    s.bytes().all(|b| b != 0 && b < 0x80)
}

/// Go's toASCII: drops every non-ASCII character (and NUL).
fn to_ascii(s: &str) -> String {
    s.chars().filter(|&c| c != '\0' && c.is_ascii()).collect()
}

/// Zero padding to the next block boundary after `len` bytes of content.
pub fn pad(out: &mut impl Write, len: u64) -> io::Result<()> {
    let rem = (len % BLOCK as u64) as usize;
    if rem != 0 {
        out.write_all(&[0u8; BLOCK][..BLOCK - rem])?;
    }
    Ok(())
}

/// The two zero blocks that end an archive (Go pads no further).
pub fn write_trailer(out: &mut impl Write) -> io::Result<()> {
    out.write_all(&[0u8; 2 * BLOCK])
}

fn truncate(s: &str, max: usize) -> String {
    let mut end = s.len().min(max);
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    s[..end].to_string()
}

/// Go's splitUSTARPath: `(prefix, name)` if `name` fits USTAR (ASCII, ≤100, or split at a
/// '/' into prefix ≤155 and a non-empty name ≤100).
fn split_ustar_name(name: &str) -> Option<(&str, &str)> {
    if !is_ascii(name) {
        return None;
    }
    if name.len() <= 100 {
        return Some(("", name));
    }
    let mut length = name.len();
    if length > 155 + 1 {
        length = 155 + 1;
    } else if name.as_bytes()[length - 1] == b'/' {
        length -= 1;
    }
    let i = name[..length].rfind('/')?;
    let (prefix, rest) = (&name[..i], &name[i + 1..]);
    (i > 0 && !rest.is_empty() && rest.len() <= 100 && prefix.len() <= 155)
        .then_some((prefix, rest))
}

fn pax_record(key: &str, value: &str) -> Vec<u8> {
    let body = format!(" {key}={value}\n");
    let mut len = body.len() + 1;
    while len != body.len() + len.to_string().len() {
        len = body.len() + len.to_string().len();
    }
    format!("{len}{body}").into_bytes()
}

/// Go formatOctal: zero-padded octal filling all but the last byte, then NUL.
fn octal(field: &mut [u8], value: u64) {
    let s = format!("{value:o}");
    let width = field.len() - 1;
    let padded = format!("{s:0>width$}");
    field[..width].copy_from_slice(&padded.as_bytes()[padded.len() - width..]);
    field[width] = 0;
}

fn ustar_block(h: &Header<'_>, (prefix, name): (&str, &str), flag: u8) -> [u8; BLOCK] {
    let mut b = [0u8; BLOCK];
    b[..name.len()].copy_from_slice(name.as_bytes());
    octal(&mut b[100..108], u64::from(h.mode));
    octal(&mut b[108..116], h.uid);
    octal(&mut b[116..124], h.gid);
    octal(&mut b[124..136], h.size);
    octal(&mut b[136..148], h.mtime);
    b[156] = flag;
    b[157..157 + h.link.len()].copy_from_slice(h.link.as_bytes());
    b[257..263].copy_from_slice(b"ustar\0");
    b[263..265].copy_from_slice(b"00");
    octal(&mut b[329..337], 0);
    octal(&mut b[337..345], 0);
    b[345..345 + prefix.len()].copy_from_slice(prefix.as_bytes());
    checksum(&mut b);
    b
}

/// Go's setFormat checksum: the field counted as spaces, then 6 octal digits, NUL, space.
fn checksum(b: &mut [u8; BLOCK]) {
    b[148..156].copy_from_slice(b"        ");
    let sum: u64 = b.iter().map(|&x| u64::from(x)).sum();
    octal(&mut b[148..155], sum);
    b[155] = b' ';
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn splits_long_names_like_go() {
        assert_eq!(split_ustar_name("/cnb"), Some(("", "/cnb")));
        let long = format!("/{}/{}", "a".repeat(120), "b".repeat(50));
        assert_eq!(split_ustar_name(&long), Some((&long[..121], &long[122..])));
        assert_eq!(split_ustar_name(&"c".repeat(101)), None);
        assert_eq!(split_ustar_name("/é"), None);
    }

    #[test]
    fn pax_record_length_counts_itself() {
        assert_eq!(pax_record("path", "x"), b"9 path=x\n");
        let r = pax_record("path", &"y".repeat(95));
        assert_eq!(r.len().to_string(), String::from_utf8_lossy(&r[..3]));
    }
}
