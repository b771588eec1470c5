//! The machine-readable self-description embedded in the binary (section
//! `.cnb_launcher`), built at compile time from the same API lists the launcher checks.

use crate::api::{BUILDPACK_APIS, PLATFORM_APIS};

pub const NAME: &str = "relaunch-launcher";
pub const VERSION: &str = env!("CARGO_PKG_VERSION");

const PARTS: [&str; 4] = [
    "{\"name\":\"",
    "\",\"version\":\"",
    "\",\"platform-apis\":[",
    "],\"buildpack-apis\":[",
];

const fn list_len(list: &[&str]) -> usize {
    let mut n = 0;
    let mut i = 0;
    while i < list.len() {
        n += list[i].len() + 2 + if i > 0 { 1 } else { 0 };
        i += 1;
    }
    n
}

/// Length of the compact JSON document.
pub const LEN: usize = PARTS[0].len()
    + NAME.len()
    + PARTS[1].len()
    + VERSION.len()
    + PARTS[2].len()
    + list_len(PLATFORM_APIS)
    + PARTS[3].len()
    + list_len(BUILDPACK_APIS)
    + 2;

const fn put(mut buf: [u8; LEN], mut at: usize, s: &str) -> ([u8; LEN], usize) {
    let b = s.as_bytes();
    let mut i = 0;
    while i < b.len() {
        // Values are inserted unescaped, so refuse anything that would need escaping.
        assert!(b[i] != b'"' && b[i] != b'\\' && b[i] >= 0x20);
        buf[at] = b[i];
        at += 1;
        i += 1;
    }
    (buf, at)
}

const fn put_raw(mut buf: [u8; LEN], mut at: usize, s: &str) -> ([u8; LEN], usize) {
    let b = s.as_bytes();
    let mut i = 0;
    while i < b.len() {
        buf[at] = b[i];
        at += 1;
        i += 1;
    }
    (buf, at)
}

const fn put_list(buf: [u8; LEN], at: usize, list: &[&str]) -> ([u8; LEN], usize) {
    let (mut buf, mut at) = (buf, at);
    let mut i = 0;
    while i < list.len() {
        if i > 0 {
            (buf, at) = put_raw(buf, at, ",");
        }
        (buf, at) = put_raw(buf, at, "\"");
        (buf, at) = put(buf, at, list[i]);
        (buf, at) = put_raw(buf, at, "\"");
        i += 1;
    }
    (buf, at)
}

const fn build() -> [u8; LEN] {
    let buf = [0u8; LEN];
    let (buf, at) = put_raw(buf, 0, PARTS[0]);
    let (buf, at) = put(buf, at, NAME);
    let (buf, at) = put_raw(buf, at, PARTS[1]);
    let (buf, at) = put(buf, at, VERSION);
    let (buf, at) = put_raw(buf, at, PARTS[2]);
    let (buf, at) = put_list(buf, at, PLATFORM_APIS);
    let (buf, at) = put_raw(buf, at, PARTS[3]);
    let (buf, at) = put_list(buf, at, BUILDPACK_APIS);
    let (buf, at) = put_raw(buf, at, "]}");
    assert!(at == LEN);
    buf
}

/// UTF-8 JSON, compact, no trailing NUL.
pub const JSON: [u8; LEN] = build();

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn json_is_the_documented_contract() {
        let text = std::str::from_utf8(&JSON).unwrap();
        assert_eq!(
            text,
            format!(
                "{{\"name\":\"relaunch-launcher\",\"version\":\"{}\",\"platform-apis\":[\"0.7\",\"0.8\",\"0.9\",\"0.10\",\"0.11\",\"0.12\",\"0.13\",\"0.14\",\"0.15\"],\"buildpack-apis\":[\"0.7\",\"0.8\",\"0.9\",\"0.10\",\"0.11\",\"0.12\"]}}",
                env!("CARGO_PKG_VERSION")
            )
        );
    }
}
