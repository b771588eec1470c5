//! One launch setup, flat enough to shrink and to keep as a JSON fixture: the files of a
//! temp root, how the launcher is invoked, its environment and stdin. `@ROOT@` in any
//! text stands for the temp root's path.

use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;

use serde::{Deserialize, Serialize};

pub const ROOT: &str = "@ROOT@";

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Case {
    /// argv[0]: `launcher` (through `cnb/lifecycle/launcher`), a process type (through
    /// `cnb/process/<type>`), or any other text used as-is.
    pub argv0: String,
    pub args: Vec<Bytes>,
    /// The whole initial environment (the harness adds nothing).
    pub env: Vec<(String, Bytes)>,
    pub stdin: Bytes,
    /// Signal dispositions the launcher inherits: ignored, and blocked.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub ignored_signals: Vec<i32>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub blocked_signals: Vec<i32>,
    pub files: Vec<Entry>,
}

/// A file system entry under the root, created in order.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Entry {
    pub path: String,
    #[serde(flatten)]
    pub kind: Kind,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase", tag = "type")]
pub enum Kind {
    File { contents: Bytes, mode: u32 },
    Dir,
    Symlink { target: String },
}

/// Bytes kept as a JSON string: UTF-8 text as itself, anything else as `hex:<hex>`.
#[derive(Debug, Clone, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Bytes(pub Vec<u8>);

impl From<&str> for Bytes {
    fn from(s: &str) -> Self {
        Bytes(s.as_bytes().to_vec())
    }
}

impl From<String> for Bytes {
    fn from(s: String) -> Self {
        Bytes(s.into_bytes())
    }
}

impl Serialize for Bytes {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match std::str::from_utf8(&self.0) {
            Ok(text) if !text.starts_with("hex:") => s.serialize_str(text),
            _ => s.serialize_str(&format!("hex:{}", hex(&self.0))),
        }
    }
}

impl<'de> Deserialize<'de> for Bytes {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let text = String::deserialize(d)?;
        let Some(digits) = text.strip_prefix("hex:") else {
            return Ok(Bytes(text.into_bytes()));
        };
        (0..digits.len())
            .step_by(2)
            .map(|i| u8::from_str_radix(digits.get(i..i + 2).unwrap_or("?"), 16))
            .collect::<Result<Vec<u8>, _>>()
            .map(Bytes)
            .map_err(serde::de::Error::custom)
    }
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// `@ROOT@` replaced by `root`.
pub fn rooted(bytes: &[u8], root: &Path) -> Vec<u8> {
    replace(bytes, ROOT.as_bytes(), root.as_os_str().as_bytes())
}

pub fn replace(haystack: &[u8], from: &[u8], to: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(haystack.len());
    let mut i = 0;
    while i < haystack.len() {
        if haystack[i..].starts_with(from) {
            out.extend_from_slice(to);
            i += from.len();
        } else {
            out.push(haystack[i]);
            i += 1;
        }
    }
    out
}

impl Case {
    /// Creates the case's files under `root` (which must exist and be empty). An entry
    /// that cannot be created (its parent is a file, its path is taken) is left out: the
    /// generator does not track what it already put where.
    pub fn materialize(&self, root: &Path) {
        for entry in &self.files {
            let _ = create(root, entry);
        }
    }
}

fn create(root: &Path, entry: &Entry) -> std::io::Result<()> {
    let path = root.join(&entry.path);
    if let Some(parent) = path.parent() {
        std::fs::create_dir_all(parent)?;
    }
    match &entry.kind {
        Kind::Dir => std::fs::create_dir_all(&path),
        Kind::File { contents, mode } => {
            if path.symlink_metadata().is_ok() {
                return Err(std::io::ErrorKind::AlreadyExists.into());
            }
            std::fs::write(&path, rooted(&contents.0, root))?;
            std::fs::set_permissions(&path, std::fs::Permissions::from_mode(*mode))
        }
        Kind::Symlink { target } => {
            let target = rooted(target.as_bytes(), root);
            std::os::unix::fs::symlink(std::ffi::OsStr::from_bytes(&target), &path)
        }
    }
}
