//! `<layers>/config/metadata.toml`: the part the launcher decodes (processes and
//! buildpacks); unknown keys are ignored, like the reference decoder.

use std::fmt;
use std::path::Path;

use serde::de::{self, Deserializer, SeqAccess, Visitor};
use serde::Deserialize;

use crate::errors::{os_error_text, Failure, EXIT_FAILED};

#[derive(Debug, Default, Clone, PartialEq, Deserialize)]
pub struct Metadata {
    #[serde(default)]
    pub processes: Vec<Process>,
    #[serde(default)]
    pub buildpacks: Vec<Buildpack>,
}

#[derive(Debug, Default, Clone, PartialEq, Eq, Deserialize)]
#[serde(default)]
pub struct Buildpack {
    pub id: String,
    pub api: String,
}

#[derive(Debug, Default, Clone, PartialEq, Eq, Deserialize)]
#[serde(default)]
pub struct Process {
    #[serde(rename = "type")]
    pub process_type: String,
    pub command: Command,
    pub args: Vec<String>,
    pub direct: bool,
    #[serde(rename = "buildpack-id")]
    pub buildpack_id: String,
    #[serde(rename = "working-dir")]
    pub working_dir: String,
    #[serde(rename = "exec-env")]
    pub exec_env: Vec<String>,
}

/// `command`: a string (Platform < 0.10 writers) or an array (>= 0.10); both are
/// accepted whatever the Platform API. Array scalars are stringified like Go's `fmt.Sprint`.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Command(pub Vec<String>);

impl<'de> Deserialize<'de> for Command {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_any(CommandVisitor)
    }
}

struct CommandVisitor;

impl<'de> Visitor<'de> for CommandVisitor {
    type Value = Command;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a command string or an array of strings")
    }

    fn visit_str<E: de::Error>(self, v: &str) -> Result<Command, E> {
        Ok(Command(vec![v.to_owned()]))
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Command, A::Error> {
        let mut entries = Vec::new();
        while let Some(Scalar(s)) = seq.next_element()? {
            entries.push(s);
        }
        Ok(Command(entries))
    }
}

struct Scalar(String);

impl<'de> Deserialize<'de> for Scalar {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct ScalarVisitor;
        impl Visitor<'_> for ScalarVisitor {
            type Value = Scalar;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a string, number or boolean")
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<Scalar, E> {
                Ok(Scalar(v.to_owned()))
            }
            fn visit_i64<E: de::Error>(self, v: i64) -> Result<Scalar, E> {
                Ok(Scalar(v.to_string()))
            }
            fn visit_u64<E: de::Error>(self, v: u64) -> Result<Scalar, E> {
                Ok(Scalar(v.to_string()))
            }
            fn visit_f64<E: de::Error>(self, v: f64) -> Result<Scalar, E> {
                Ok(Scalar(v.to_string()))
            }
            fn visit_bool<E: de::Error>(self, v: bool) -> Result<Scalar, E> {
                Ok(Scalar(v.to_string()))
            }
        }
        d.deserialize_any(ScalarVisitor)
    }
}

impl Metadata {
    /// Decodes metadata.toml content. Public for the fuzz target.
    pub fn parse(bytes: &[u8]) -> Result<Metadata, String> {
        let text = std::str::from_utf8(bytes)
            .map_err(|e| format!("invalid UTF-8 in TOML document: {e}"))?;
        toml::from_str(text).map_err(|e| toml_error(text, &e))
    }

    /// Reads `<layers>/config/metadata.toml`; failures exit 1 as in the reference.
    pub fn read(path: &Path) -> Result<Metadata, Failure> {
        let fail = |detail: String| Failure::new(EXIT_FAILED, format!("failed to read metadata: {detail}"));
        let bytes = std::fs::read(path).map_err(|e| {
            let op = if e.raw_os_error() == Some(libc::EISDIR) { "read" } else { "open" };
            fail(format!("{op} {}: {}", path.display(), os_error_text(&e)))
        })?;
        Metadata::parse(&bytes).map_err(fail)
    }

    /// First process with this type, without exec-env filtering (argv[0] matching).
    pub fn find_process(&self, process_type: &str) -> Option<&Process> {
        self.processes.iter().find(|p| p.process_type == process_type)
    }
}

/// One-line TOML error: `toml: line N: <message>` (the crate's own text spans lines).
pub fn toml_error(text: &str, err: &toml::de::Error) -> String {
    let message = err.message().trim_end().replace('\n', "; ");
    match err.span() {
        Some(span) => {
            let end = span.start.min(text.len());
            let line = 1 + text.as_bytes()[..end].iter().filter(|&&b| b == b'\n').count();
            format!("toml: line {line}: {message}")
        }
        None => format!("toml: {message}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn command_string_or_array() {
        let md = Metadata::parse(
            br#"
[[processes]]
type = "a"
command = "other cmd with spaces"
[[processes]]
type = "b"
command = ["some-cmd", "more"]
[[processes]]
type = "c"
command = ["other cmd with spaces", "other more"]
[[processes]]
type = "d"
command = ["\\r"]
[[processes]]
type = "e"
command = []
[[processes]]
type = "f"
command = ["x", 1, true]
"#,
        )
        .unwrap();
        let cmds: Vec<_> = md.processes.iter().map(|p| p.command.0.clone()).collect();
        assert_eq!(cmds[0], ["other cmd with spaces"]);
        assert_eq!(cmds[1], ["some-cmd", "more"]);
        assert_eq!(cmds[2], ["other cmd with spaces", "other more"]);
        assert_eq!(cmds[3], ["\\r"]);
        assert!(cmds[4].is_empty());
        assert_eq!(cmds[5], ["x", "1", "true"]);
    }

    #[test]
    fn full_process_and_unknown_keys() {
        let md = Metadata::parse(
            br#"
buildpack-default-process-type = "web"
[[buildpacks]]
id = "a/b"
version = "1"
api = "0.12"
[[processes]]
type = "web"
command = ["node", "srv.js"]
args = ["--port", "8080"]
direct = true
default = true
buildpack-id = "a/b"
working-dir = "sub"
exec-env = ["production"]
[[labels]]
key = "k"
value = "v"
[[slices]]
paths = ["x"]
"#,
        )
        .unwrap();
        assert_eq!(
            md.buildpacks,
            [Buildpack {
                id: "a/b".into(),
                api: "0.12".into()
            }]
        );
        let p = md.find_process("web").unwrap();
        assert_eq!(p.command.0, ["node", "srv.js"]);
        assert_eq!(p.args, ["--port", "8080"]);
        assert!(p.direct);
        assert_eq!(p.buildpack_id, "a/b");
        assert_eq!(p.working_dir, "sub");
        assert_eq!(p.exec_env, ["production"]);
        assert!(md.find_process("worker").is_none());
    }

    #[test]
    fn malformed_documents_are_errors_not_panics() {
        for bad in [
            &b"[[processes]]\ncommand = 5\n"[..],
            b"[[processes]]\ncommand = [[\"a\"]]\n",
            b"[[processes]]\nargs = [1]\n",
            b"processes = 5",
            b"[[buildpacks]]\napi = 0.9\n",
            b"this is not toml",
            b"\xff\xfe",
        ] {
            assert!(Metadata::parse(bad).is_err(), "{:?}", String::from_utf8_lossy(bad));
        }
        assert_eq!(Metadata::parse(b"").unwrap(), Metadata::default());
    }

    #[test]
    fn read_errors_exit_1() {
        let f = Metadata::read(Path::new("/nonexistent-dir/config/metadata.toml")).unwrap_err();
        assert_eq!(f.code, 1);
        assert_eq!(
            f.message,
            "failed to read metadata: open /nonexistent-dir/config/metadata.toml: no such file or directory"
        );
    }
}
