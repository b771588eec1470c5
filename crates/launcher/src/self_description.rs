//! The machine-readable self-description embedded in the binary (section
//! `.cnb_launcher`), built at compile time from the same API lists the launcher checks,
//! and the decoder for other launchers' self-descriptions (the meta launcher reads them).

use crate::api::{BUILDPACK_APIS, PLATFORM_APIS};

/// The ELF section holding the compact JSON document.
pub const SECTION: &str = ".cnb_launcher";
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

/// A launcher's self-description: its JSON section, or a sidecar descriptor.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Described {
    pub name: String,
    pub version: String,
    pub platform_apis: Vec<String>,
    pub buildpack_apis: Vec<String>,
}

/// Decodes a self-description: a JSON object with string `name`/`version` and string
/// arrays `platform-apis`/`buildpack-apis`; other keys are skipped. The section may be
/// padded after the document with NULs or whitespace.
pub fn parse(section: &[u8]) -> Result<Described, String> {
    let end = section
        .iter()
        .position(|&b| b == 0)
        .unwrap_or(section.len());
    let mut p = Json {
        b: &section[..end],
        i: 0,
    };
    let mut d = Described::default();
    let mut seen = [false; 4];
    p.expect(b'{')?;
    if !p.eat(b'}') {
        loop {
            let key = p.string()?;
            p.expect(b':')?;
            let slot = ["name", "version", "platform-apis", "buildpack-apis"]
                .iter()
                .position(|k| *k == key);
            match slot {
                Some(0) => d.name = p.string()?,
                Some(1) => d.version = p.string()?,
                Some(2) => d.platform_apis = p.strings()?,
                Some(3) => d.buildpack_apis = p.strings()?,
                _ => p.skip_value(0)?,
            }
            if let Some(s) = slot {
                seen[s] = true;
            }
            if p.eat(b'}') {
                break;
            }
            p.expect(b',')?;
        }
    }
    p.ws();
    if p.i != p.b.len() {
        return Err(p.error("end of document"));
    }
    if let Some(missing) = seen.iter().position(|s| !s) {
        let key = ["name", "version", "platform-apis", "buildpack-apis"][missing];
        return Err(format!("missing key '{key}'"));
    }
    Ok(d)
}

/// The JSON subset self-descriptions use, with a nesting limit for skipped values.
struct Json<'a> {
    b: &'a [u8],
    i: usize,
}

impl Json<'_> {
    fn error(&self, wanted: &str) -> String {
        format!("JSON: expected {wanted} at byte {}", self.i)
    }

    fn ws(&mut self) {
        while self.b.get(self.i).is_some_and(u8::is_ascii_whitespace) {
            self.i += 1;
        }
    }

    fn eat(&mut self, c: u8) -> bool {
        self.ws();
        let hit = self.b.get(self.i) == Some(&c);
        self.i += usize::from(hit);
        hit
    }

    fn expect(&mut self, c: u8) -> Result<(), String> {
        if self.eat(c) {
            Ok(())
        } else {
            Err(self.error(&format!("'{}'", c as char)))
        }
    }

    fn string(&mut self) -> Result<String, String> {
        self.expect(b'"')?;
        let mut out = Vec::new();
        loop {
            let Some(&c) = self.b.get(self.i) else {
                return Err(self.error("'\"'"));
            };
            self.i += 1;
            match c {
                b'"' => return String::from_utf8(out).map_err(|_| self.error("UTF-8")),
                b'\\' => {
                    let e = self.b.get(self.i).copied();
                    self.i += 1;
                    let plain = match e {
                        Some(b'"') => '"',
                        Some(b'\\') => '\\',
                        Some(b'/') => '/',
                        Some(b'n') => '\n',
                        Some(b't') => '\t',
                        Some(b'r') => '\r',
                        Some(b'b') => '\u{8}',
                        Some(b'f') => '\u{c}',
                        Some(b'u') => {
                            let hex = self.b.get(self.i..self.i + 4).unwrap_or_default();
                            self.i += 4;
                            std::str::from_utf8(hex)
                                .ok()
                                .and_then(|h| u32::from_str_radix(h, 16).ok())
                                .and_then(char::from_u32)
                                .ok_or_else(|| self.error("a \\u escape of one character"))?
                        }
                        _ => return Err(self.error("an escape")),
                    };
                    out.extend_from_slice(plain.encode_utf8(&mut [0; 4]).as_bytes());
                }
                c if c < 0x20 => return Err(self.error("no control character")),
                c => out.push(c),
            }
        }
    }

    fn strings(&mut self) -> Result<Vec<String>, String> {
        self.expect(b'[')?;
        let mut out = Vec::new();
        if self.eat(b']') {
            return Ok(out);
        }
        loop {
            out.push(self.string()?);
            if self.eat(b']') {
                return Ok(out);
            }
            self.expect(b',')?;
        }
    }

    /// Skips any value (unknown keys), at most 16 levels deep.
    fn skip_value(&mut self, depth: usize) -> Result<(), String> {
        if depth > 16 {
            return Err(self.error("less nesting"));
        }
        self.ws();
        let close = match self.b.get(self.i) {
            Some(b'"') => return self.string().map(drop),
            Some(b'[') => b']',
            Some(b'{') => b'}',
            Some(c) if c.is_ascii_alphanumeric() || *c == b'-' => {
                while self
                    .b
                    .get(self.i)
                    .is_some_and(|c| c.is_ascii_alphanumeric() || b"+-.".contains(c))
                {
                    self.i += 1;
                }
                return Ok(());
            }
            _ => return Err(self.error("a value")),
        };
        self.i += 1;
        if self.eat(close) {
            return Ok(());
        }
        loop {
            if close == b'}' {
                self.string()?;
                self.expect(b':')?;
            }
            self.skip_value(depth + 1)?;
            if self.eat(close) {
                return Ok(());
            }
            self.expect(b',')?;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decodes_its_own_and_foreign_descriptions() {
        let own = parse(&JSON).unwrap();
        assert_eq!(own.name, NAME);
        assert_eq!(own.version, VERSION);
        assert_eq!(own.platform_apis, PLATFORM_APIS);
        assert_eq!(own.buildpack_apis, BUILDPACK_APIS);
        let padded = b" { \"buildpack-apis\" : [ ] , \"extra\": {\"a\": [1, true, null, -2.5e3]},\n\"name\":\"old \\\"\\u00e9\\\"\", \"version\":\"1\", \"platform-apis\":[\"0.6\"]}\n\0\0";
        let d = parse(padded).unwrap();
        assert_eq!(d.name, "old \"\u{e9}\"");
        assert_eq!(d.platform_apis, ["0.6"]);
        assert!(d.buildpack_apis.is_empty());
    }

    #[test]
    fn malformed_descriptions_are_errors() {
        for bad in [
            &b""[..],
            b"{",
            b"[]",
            b"{\"name\":1}",
            b"{\"name\":\"a\",\"version\":\"1\",\"platform-apis\":[\"0.7\"]}",
            b"{\"name\":\"a\"} trailing",
            b"{\"x\":[[[[[[[[[[[[[[[[[[[[]]]]]]]]]]]]]]]]]]]}",
            b"{\"name\":\"\\ud800\"}",
        ] {
            assert!(parse(bad).is_err(), "{:?}", String::from_utf8_lossy(bad));
        }
        assert_eq!(
            parse(b"{\"name\":\"a\",\"version\":\"1\",\"platform-apis\":[]}").unwrap_err(),
            "missing key 'buildpack-apis'"
        );
    }

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
