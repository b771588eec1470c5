//! `<layers>/config/metadata.toml`: the part the launcher decodes (processes and
//! buildpacks); unknown keys are ignored, like the reference decoder.

use std::path::Path;

use toml::de::{DeTable, DeValue};
use toml::Spanned;

use crate::errors::{os_error_text, Failure, EXIT_FAILED};

#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Metadata {
    pub processes: Vec<Process>,
    pub buildpacks: Vec<Buildpack>,
}

#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Buildpack {
    pub id: String,
    pub api: String,
}

#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Process {
    pub process_type: String,
    /// `command`: a string (Platform < 0.10 writers) or an array (>= 0.10); both are
    /// accepted whatever the Platform API.
    pub command: Vec<String>,
    pub args: Vec<String>,
    pub direct: bool,
    pub buildpack_id: String,
    pub working_dir: String,
    pub exec_env: Vec<String>,
}

impl Metadata {
    /// Decodes metadata.toml content; unknown keys are ignored. Public for the fuzz target.
    ///
    /// Decoding walks the parsed document by hand instead of using serde derive: it keeps
    /// the static binary tens of KiB smaller (see docs/launcher.md).
    pub fn parse(bytes: &[u8]) -> Result<Metadata, String> {
        let text = utf8(bytes)?;
        let doc = DeTable::parse(text).map_err(|e| toml_error(text, &e))?;
        let d = Decoder { text };
        let root = doc.get_ref();
        let mut md = Metadata::default();
        for t in d.tables(root, "buildpacks")? {
            md.buildpacks.push(Buildpack {
                id: d.string(t, "id")?,
                api: d.string(t, "api")?,
            });
        }
        for t in d.tables(root, "processes")? {
            md.processes.push(Process {
                process_type: d.string(t, "type")?,
                command: d.command(t)?,
                args: d.strings(t, "args")?,
                direct: d.boolean(t, "direct")?,
                buildpack_id: d.string(t, "buildpack-id")?,
                working_dir: d.string(t, "working-dir")?,
                exec_env: d.strings(t, "exec-env")?,
            });
        }
        Ok(md)
    }

    /// Reads `<layers>/config/metadata.toml`; failures exit 1 as in the reference.
    pub fn read(path: &Path) -> Result<Metadata, Failure> {
        let fail = |detail: String| {
            Failure::new(EXIT_FAILED, format!("failed to read metadata: {detail}"))
        };
        let bytes = std::fs::read(path).map_err(|e| {
            let op = if e.raw_os_error() == Some(libc::EISDIR) {
                "read"
            } else {
                "open"
            };
            fail(format!("{op} {}: {}", path.display(), os_error_text(&e)))
        })?;
        Metadata::parse(&bytes).map_err(fail)
    }

    /// First process with this type, without exec-env filtering (argv[0] matching).
    pub fn find_process(&self, process_type: &str) -> Option<&Process> {
        self.processes
            .iter()
            .find(|p| p.process_type == process_type)
    }
}

/// Typed access to a parsed document with `toml: line N: ...` errors.
pub struct Decoder<'t> {
    pub text: &'t str,
}

type Value<'i> = Spanned<DeValue<'i>>;

impl<'t> Decoder<'t> {
    fn error(&self, at: &Value<'_>, key: &str, expected: &str) -> String {
        format!(
            "toml: line {}: '{key}': expected {expected}, found {}",
            line_of(self.text.as_bytes(), at.span().start),
            at.get_ref().type_str()
        )
    }

    /// `[[key]]`: an array of tables (absent: none).
    fn tables<'a, 'i>(
        &self,
        t: &'a DeTable<'i>,
        key: &str,
    ) -> Result<Vec<&'a DeTable<'i>>, String> {
        let Some(v) = t.get(key) else {
            return Ok(Vec::new());
        };
        let err = || self.error(v, key, "an array of tables");
        let items = v.get_ref().as_array().ok_or_else(err)?;
        items
            .iter()
            .map(|i| i.get_ref().as_table().ok_or_else(err))
            .collect()
    }

    /// A string field (absent: empty).
    pub fn string(&self, t: &DeTable<'_>, key: &str) -> Result<String, String> {
        match t.get(key) {
            None => Ok(String::new()),
            Some(v) => v
                .get_ref()
                .as_str()
                .map(str::to_owned)
                .ok_or_else(|| self.error(v, key, "a string")),
        }
    }

    fn boolean(&self, t: &DeTable<'_>, key: &str) -> Result<bool, String> {
        match t.get(key) {
            None => Ok(false),
            Some(v) => v
                .get_ref()
                .as_bool()
                .ok_or_else(|| self.error(v, key, "a boolean")),
        }
    }

    /// `command`: a string or an array of strings. Like the reference (BurntSushi decodes
    /// into `string` or `[]string`), any other entry type is a decode error.
    fn command(&self, t: &DeTable<'_>) -> Result<Vec<String>, String> {
        match t.get("command").map(|v| (v, v.get_ref())) {
            None => Ok(Vec::new()),
            Some((_, DeValue::String(s))) => Ok(vec![s.to_string()]),
            Some((v, _)) => self.array_of_strings(v, "command", "a string or an array of strings"),
        }
    }

    /// An array of strings (absent: empty).
    fn strings(&self, t: &DeTable<'_>, key: &str) -> Result<Vec<String>, String> {
        match t.get(key) {
            None => Ok(Vec::new()),
            Some(v) => self.array_of_strings(v, key, "an array of strings"),
        }
    }

    fn array_of_strings(
        &self,
        v: &Value<'_>,
        key: &str,
        expected: &str,
    ) -> Result<Vec<String>, String> {
        let items = v
            .get_ref()
            .as_array()
            .ok_or_else(|| self.error(v, key, expected))?;
        // An entry of the wrong type is reported with its own type and line.
        items
            .iter()
            .map(|i| {
                i.get_ref()
                    .as_str()
                    .map(str::to_owned)
                    .ok_or_else(|| self.error(i, key, expected))
            })
            .collect()
    }
}

/// 1-based line of a byte offset.
fn line_of(bytes: &[u8], offset: usize) -> usize {
    1 + bytes.iter().take(offset).filter(|&&b| b == b'\n').count()
}

/// The document as text; invalid UTF-8 is reported like the reference's TOML lexer
/// (`toml: line N: invalid UTF-8 byte: 0xNN`).
pub fn utf8(bytes: &[u8]) -> Result<&str, String> {
    std::str::from_utf8(bytes).map_err(|e| {
        let at = e.valid_up_to();
        let line = line_of(bytes, at);
        let byte = bytes.get(at).copied().unwrap_or_default();
        format!("toml: line {line}: invalid UTF-8 byte: 0x{byte:02x}")
    })
}

/// One-line TOML error: `toml: line N: <message>` (the crate's own text spans lines).
pub fn toml_error(text: &str, err: &toml::de::Error) -> String {
    let message = err.message().trim_end().replace('\n', "; ");
    match err.span() {
        Some(span) => format!(
            "toml: line {}: {message}",
            line_of(text.as_bytes(), span.start)
        ),
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
"#,
        )
        .unwrap();
        let cmds: Vec<_> = md.processes.iter().map(|p| p.command.clone()).collect();
        assert_eq!(cmds[0], ["other cmd with spaces"]);
        assert_eq!(cmds[1], ["some-cmd", "more"]);
        assert_eq!(cmds[2], ["other cmd with spaces", "other more"]);
        assert_eq!(cmds[3], ["\\r"]);
        assert!(cmds[4].is_empty());
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
        assert_eq!(p.command, ["node", "srv.js"]);
        assert_eq!(p.args, ["--port", "8080"]);
        assert!(p.direct);
        assert_eq!(p.buildpack_id, "a/b");
        assert_eq!(p.working_dir, "sub");
        assert_eq!(p.exec_env, ["production"]);
        assert!(md.find_process("worker").is_none());
    }

    #[test]
    fn malformed_documents_are_errors_not_panics() {
        crate::testutil::assert_all_rejected(
            Metadata::parse,
            &[
                b"[[processes]]\ncommand = 5\n",
                b"[[processes]]\ncommand = [[\"a\"]]\n",
                b"[[processes]]\nargs = [1]\n",
                b"processes = 5",
                b"[[buildpacks]]\napi = 0.9\n",
                b"this is not toml",
                b"\xff\xfe",
            ],
        );
        assert_eq!(Metadata::parse(b"").unwrap(), Metadata::default());
    }

    #[test]
    fn command_entries_must_be_strings_like_the_reference() {
        // BurntSushi decodes `command` into `string` or `[]string`: no stringification.
        for (entry, found) in [
            ("1", "integer"),
            ("true", "boolean"),
            ("1.5", "float"),
            ("[\"a\"]", "array"),
            ("{a = \"b\"}", "table"),
        ] {
            let doc = format!("[[processes]]\ntype = \"t\"\ncommand = [\"x\", {entry}]\n");
            assert_eq!(
                Metadata::parse(doc.as_bytes()).unwrap_err(),
                format!("toml: line 3: 'command': expected a string or an array of strings, found {found}"),
                "{entry}"
            );
        }
        assert_eq!(
            Metadata::parse(b"[[processes]]\ncommand = 1.5\n").unwrap_err(),
            "toml: line 2: 'command': expected a string or an array of strings, found float"
        );
    }

    #[test]
    fn error_texts_name_the_line() {
        assert_eq!(
            Metadata::parse(b"[[buildpacks]]\nid = \"a\"\n\n[[processes]]\nargs = [1]\n")
                .unwrap_err(),
            "toml: line 5: 'args': expected an array of strings, found integer"
        );
        assert_eq!(
            Metadata::parse(b"[[processes]]\ntype = \"\xff\"\n").unwrap_err(),
            "toml: line 2: invalid UTF-8 byte: 0xff"
        );
        let e = Metadata::parse(b"[[processes]]\n\n[[processes]\n").unwrap_err();
        assert!(e.starts_with("toml: line 3: "), "{e}");
        assert!(!e.contains('\n'), "{e}");
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
