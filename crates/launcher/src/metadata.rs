//! `<layers>/config/metadata.toml`: the part the launcher decodes (processes and
//! buildpacks); unknown keys are ignored, like the reference decoder.

use std::path::Path;

use toml::de::{DeTable, DeValue};
use toml::Spanned;

use crate::errors::{os_error_text, Failure, EXIT_FAILED};
use crate::exec::go_quote;
use crate::go_text::{equal_fold, go_sprint, go_type, key_text};

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
    /// Decodes metadata.toml content like the reference's BurntSushi decoder: unknown keys
    /// are ignored, keys match their field case-insensitively (an exact match wins, else
    /// the first in byte order), every key the reference decodes is type-checked, and
    /// non-string `command` entries are converted as Go's `fmt.Sprint` prints them.
    /// Public for the fuzz target.
    ///
    /// Decoding walks the parsed document by hand instead of using serde derive: it keeps
    /// the static binary tens of KiB smaller (see docs/launcher.md).
    pub fn parse(bytes: &[u8]) -> Result<Metadata, String> {
        let text = utf8(bytes)?;
        let doc = parse_document(text)?;
        let d = Decoder { text };
        let root = doc.get_ref();
        let mut md = Metadata::default();
        for (t, at) in d.tables(root, "buildpacks", "launch.Buildpack")?.iter() {
            md.buildpacks.push(Buildpack {
                id: d.string(t, "id", at)?,
                api: d.string(t, "api", at)?,
            });
        }
        for (t, at) in d.tables(root, "processes", "launch.Process")?.iter() {
            d.boolean(t, "default", at)?;
            md.processes.push(Process {
                process_type: d.string(t, "type", at)?,
                command: d.command(t, at)?,
                args: d.strings(t, "args", at)?,
                direct: d.boolean(t, "direct", at)?,
                buildpack_id: d.string(t, "buildpack-id", at)?,
                working_dir: d.string(t, "working-dir", at)?,
                exec_env: d.strings(t, "exec-env", at)?,
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

/// Typed access to a parsed document with the reference's
/// `toml: line N (last key "a.b"): ...` errors.
pub struct Decoder<'t> {
    pub text: &'t str,
}

type Value<'i> = Spanned<DeValue<'i>>;

/// The tables of one `[[array]]`, each with the key path the reference names in errors.
struct Tables<'a, 'i> {
    path: String,
    tables: Vec<&'a DeTable<'i>>,
}

impl<'a, 'i> Tables<'a, 'i> {
    fn iter(&self) -> impl Iterator<Item = (&'a DeTable<'i>, &Self)> + '_ {
        self.tables.iter().map(move |t| (*t, self))
    }
}

impl<'t> Decoder<'t> {
    /// The line where a value starts; none for a table only implied by a dotted key or a
    /// `[a.b]` header (its span is a key's, not a `{` or `[`), which the reference's decoder
    /// has no position for.
    fn line(&self, v: &Value<'_>) -> Option<usize> {
        let start = v.span().start;
        let explicit =
            !v.get_ref().is_table() || matches!(self.text.as_bytes().get(start), Some(b'{' | b'['));
        explicit.then(|| line_of(self.text.as_bytes(), start))
    }

    /// BurntSushi's error shape: the line is where the last definition of the key path
    /// starts its value (the decoder keeps one position per dotted path).
    fn error(&self, line: Option<usize>, path: &str, message: impl std::fmt::Display) -> String {
        let path = go_quote(path);
        match line {
            Some(line) => format!("toml: line {line} (last key {path}): {message}"),
            None => format!("toml: (last key {path}): {message}"),
        }
    }

    fn mismatch(&self, line: Option<usize>, path: &str, found: &DeValue<'_>, dst: &str) -> String {
        self.error(
            line,
            path,
            format_args!(
                "incompatible types: TOML value has type {}; destination has type {dst}",
                go_type(found, "any")
            ),
        )
    }

    /// A field of an array element: its path and the line of its last definition in any
    /// element of the array.
    fn at(&self, tables: &Tables<'_, '_>, key: &str) -> (Option<usize>, String) {
        let line = tables
            .tables
            .iter()
            .rev()
            .find_map(|t| t.get(key))
            .and_then(|v| self.line(v));
        (line, format!("{}.{}", tables.path, key_text(key)))
    }

    /// `[[name]]` at the top level: an array of tables (absent: none).
    fn tables<'a, 'i>(
        &self,
        root: &'a DeTable<'i>,
        name: &str,
        go_struct: &str,
    ) -> Result<Tables<'a, 'i>, String> {
        let Some((key, v)) = field(root, name) else {
            return Ok(Tables {
                path: String::new(),
                tables: Vec::new(),
            });
        };
        let path = key_text(key);
        let items = v
            .get_ref()
            .as_array()
            .ok_or_else(|| self.mismatch(self.line(v), &path, v.get_ref(), "slice"))?;
        let tables = items
            .iter()
            .map(|i| {
                i.get_ref().as_table().ok_or_else(|| {
                    self.error(
                        self.line(v),
                        &path,
                        format_args!(
                            "type mismatch for {go_struct}: expected table but found {}",
                            go_type(i.get_ref(), "any")
                        ),
                    )
                })
            })
            .collect::<Result<_, _>>()?;
        Ok(Tables { path, tables })
    }

    /// A string field (absent: empty).
    fn string(
        &self,
        t: &DeTable<'_>,
        name: &str,
        tables: &Tables<'_, '_>,
    ) -> Result<String, String> {
        match field(t, name) {
            None => Ok(String::new()),
            Some((key, v)) => v.get_ref().as_str().map(str::to_owned).ok_or_else(|| {
                let (line, path) = self.at(tables, key);
                self.mismatch(line, &path, v.get_ref(), "string")
            }),
        }
    }

    fn boolean(
        &self,
        t: &DeTable<'_>,
        name: &str,
        tables: &Tables<'_, '_>,
    ) -> Result<bool, String> {
        match field(t, name) {
            None => Ok(false),
            Some((key, v)) => v.get_ref().as_bool().ok_or_else(|| {
                let (line, path) = self.at(tables, key);
                self.mismatch(line, &path, v.get_ref(), "boolean")
            }),
        }
    }

    /// An array of strings (absent: empty).
    fn strings(
        &self,
        t: &DeTable<'_>,
        name: &str,
        tables: &Tables<'_, '_>,
    ) -> Result<Vec<String>, String> {
        let Some((key, v)) = field(t, name) else {
            return Ok(Vec::new());
        };
        let fail = |found: &DeValue<'_>, dst| {
            let (line, path) = self.at(tables, key);
            self.mismatch(line, &path, found, dst)
        };
        let items = v
            .get_ref()
            .as_array()
            .ok_or_else(|| fail(v.get_ref(), "slice"))?;
        items
            .iter()
            .map(|i| {
                i.get_ref()
                    .as_str()
                    .map(str::to_owned)
                    .ok_or_else(|| fail(i.get_ref(), "string"))
            })
            .collect()
    }

    /// `command`: a string, or an array whose entries are printed as Go's `fmt.Sprint`
    /// does (the reference's `RawCommand.UnmarshalTOML`); any other type is an error.
    fn command(&self, t: &DeTable<'_>, tables: &Tables<'_, '_>) -> Result<Vec<String>, String> {
        let Some((key, v)) = field(t, "command") else {
            return Ok(Vec::new());
        };
        let fail = |found: &DeValue<'_>| {
            let (line, path) = self.at(tables, key);
            let mut data = String::new();
            go_sprint(found, &mut data);
            self.error(
                line,
                &path,
                format_args!(
                    "unknown command type {} with data {data}",
                    go_type(found, "interface {}")
                ),
            )
        };
        match v.get_ref() {
            DeValue::String(s) => Ok(vec![s.to_string()]),
            DeValue::Array(items) => Ok(items
                .iter()
                .map(|i| {
                    let mut s = String::new();
                    go_sprint(i.get_ref(), &mut s);
                    s
                })
                .collect()),
            other => Err(fail(other)),
        }
    }

    /// A value of the exec.d output map: strings only (BurntSushi's map decoding: exact
    /// key, no case folding).
    pub fn map_string(&self, key: &str, v: &Value<'_>) -> Result<String, String> {
        v.get_ref()
            .as_str()
            .map(str::to_owned)
            .ok_or_else(|| self.mismatch(self.line(v), &key_text(key), v.get_ref(), "string"))
    }
}

/// The key that decodes into field `name`: an exact match, else the first key (in byte
/// order) equal under Go's `strings.EqualFold`. Field names are lower-case ASCII.
fn field<'a, 'i>(t: &'a DeTable<'i>, name: &str) -> Option<(&'a str, &'a Value<'i>)> {
    let found = t
        .get_key_value(name)
        .or_else(|| t.iter().find(|(k, _)| equal_fold(k.get_ref(), name)))?;
    Some((found.0.get_ref(), found.1))
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
/// Parses a TOML document; on error reports the one that comes first in the text, as the
/// reference's single-pass parser does (the `toml` crate reports a malformed string only
/// after later structural errors).
pub fn parse_document(text: &str) -> Result<Spanned<DeTable<'_>>, String> {
    let (doc, errors) = DeTable::parse_recoverable(text);
    match errors
        .iter()
        .min_by_key(|e| e.span().map_or(usize::MAX, |s| s.start))
    {
        Some(first) => Err(toml_error(text, first)),
        None => Ok(doc),
    }
}

/// The line is counted as the reference's lexer does: an error found at a newline is
/// reported on the line that newline starts...
fn toml_error(text: &str, err: &toml::de::Error) -> String {
    let message = err.message().trim_end().replace('\n', "; ");
    match err.span() {
        Some(span) => {
            // ... except inside a string, which it reports on the string's own line.
            let at_newline =
                text.as_bytes().get(span.start) == Some(&b'\n') && !message.contains("string");
            let line = line_of(text.as_bytes(), span.start) + usize::from(at_newline);
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
    fn command_entries_are_converted_like_go_fmt() {
        // Issue 11 item 3: RawCommand.UnmarshalTOML applies fmt.Sprint to each entry.
        let md = Metadata::parse(
            br#"[[processes]]
type = "t"
command = ["probe", 1, true, 2.5, ["x", 2], {b = 1, a = "z"}, 0x10, -0.0, 1e6, 123456.0, 1e-5, 0.0001, inf, nan,
  1_000.250_0, 0.000012e3, -7E+22, 3e-7, -inf, +1.5, 100e-2, 0e5,
  1979-05-27T07:32:00Z, 1979-05-27T07:32:00.5-07:00, 1979-05-27T07:32:00, 1979-05-27, 07:32:00]
"#,
        )
        .unwrap();
        assert_eq!(
            md.processes[0].command,
            [
                "probe",
                "1",
                "true",
                "2.5",
                "[x 2]",
                "map[a:z b:1]",
                "16",
                "-0",
                "1e+06",
                "123456",
                "1e-05",
                "0.0001",
                "+Inf",
                "NaN",
                "1000.25",
                "0.012",
                "-7e+22",
                "3e-07",
                "-Inf",
                "1.5",
                "1",
                "0",
                "1979-05-27 07:32:00 +0000 UTC",
                "1979-05-27 07:32:00.5 -0700 -0700",
                "1979-05-27 07:32:00 +0000 datetime-local",
                "1979-05-27 00:00:00 +0000 date-local",
                "0000-01-01 07:32:00 +0000 time-local",
            ]
        );
        for (value, go_type, data) in [
            ("1", "int64", "1"),
            ("1.5", "float64", "1.5"),
            ("true", "bool", "true"),
            ("{a = \"b\"}", "map[string]interface {}", "map[a:b]"),
        ] {
            let doc = format!("[[processes]]\ntype = \"t\"\ncommand = {value}\n");
            assert_eq!(
                Metadata::parse(doc.as_bytes()).unwrap_err(),
                format!("toml: line 3 (last key \"processes.command\"): unknown command type {go_type} with data {data}"),
            );
        }
    }

    #[test]
    fn keys_match_case_insensitively_exact_first() {
        // Issue 11 item 4: BurntSushi falls back to strings.EqualFold on field names.
        let md = Metadata::parse(
            "[[Processes]]\nTYPE = \"web\"\nCommand = [\"a\"]\nWorking-Dir = \"w\"\nDirect = true\n\
             Exec-Env = [\"x\"]\n\"ARG\u{17F}\" = [\"b\"]\n\"buildpac\u{212A}-id\" = \"bp\"\n\
             [[BuildPacks]]\nID = \"bp\"\nApi = \"0.9\"\n\
             [[Processes]]\ntype = \"exact\"\nTYPE = \"folded\"\n"
                .as_bytes(),
        )
        .unwrap();
        assert_eq!(
            md.buildpacks,
            [Buildpack {
                id: "bp".into(),
                api: "0.9".into()
            }]
        );
        let p = &md.processes[0];
        assert_eq!(
            (
                p.process_type.as_str(),
                p.working_dir.as_str(),
                p.buildpack_id.as_str()
            ),
            ("web", "w", "bp")
        );
        assert_eq!(
            (p.command.clone(), p.args.clone()),
            (vec!["a".to_string()], vec!["b".to_string()])
        );
        assert!(p.direct);
        assert_eq!(p.exec_env, ["x"]);
        assert_eq!(md.processes[1].process_type, "exact");
        // Not a fold: dotless i, Turkish capital I.
        let md = Metadata::parse("[[processes]]\n\"t\u{131}pe\" = \"x\"\n".as_bytes()).unwrap();
        assert_eq!(md.processes[0].process_type, "");
        // Both spellings present (nondeterministic in the reference): the exact key wins.
        assert_eq!(md.processes.len(), 1);
        let md = Metadata::parse(b"[[processes]]\nType = \"folded\"\ntype = \"exact\"\n").unwrap();
        assert_eq!(md.processes[0].process_type, "exact");
    }

    #[test]
    fn every_decoded_key_is_type_checked() {
        // Issue 11 item 5: `default` is decoded (and checked) though the launcher ignores it.
        for (doc, want) in [
            (
                "[[processes]]\ntype = \"a\"\ndefault = 1\n",
                "toml: line 3 (last key \"processes.default\"): incompatible types: TOML value has type int64; destination has type boolean",
            ),
            (
                "[[processes]]\nDefault = \"yes\"\n",
                "toml: line 2 (last key \"processes.Default\"): incompatible types: TOML value has type string; destination has type boolean",
            ),
            (
                "[[processes]]\nargs = [\"a\", 1]\n",
                "toml: line 2 (last key \"processes.args\"): incompatible types: TOML value has type int64; destination has type string",
            ),
            (
                "[[processes]]\nexec-env = \"x\"\n",
                "toml: line 2 (last key \"processes.exec-env\"): incompatible types: TOML value has type string; destination has type slice",
            ),
            (
                "processes = [1]\n",
                "toml: line 1 (last key \"processes\"): type mismatch for launch.Process: expected table but found int64",
            ),
            (
                "[[buildpacks]]\napi = 0.9\n",
                "toml: line 2 (last key \"buildpacks.api\"): incompatible types: TOML value has type float64; destination has type string",
            ),
            // The line is that of the key path's last definition, in any element.
            (
                "[[processes]]\nworking-dir = 1\n[[processes]]\nworking-dir = \"ok\"\n",
                "toml: line 4 (last key \"processes.working-dir\"): incompatible types: TOML value has type int64; destination has type string",
            ),
        ] {
            assert_eq!(Metadata::parse(doc.as_bytes()).unwrap_err(), want, "{doc}");
        }
        let md = Metadata::parse(b"[[processes]]\ntype = \"a\"\ndefault = true\nPlatformAPI = 1\n")
            .unwrap();
        assert_eq!(md.processes[0].process_type, "a");
    }

    #[test]
    fn error_texts_name_the_line() {
        assert_eq!(
            Metadata::parse(b"[[processes]]\ntype = \"\xff\"\n").unwrap_err(),
            "toml: line 2: invalid UTF-8 byte: 0xff"
        );
        // An error found at a newline is on the next line, as the reference counts.
        let e = Metadata::parse(b"[[processes]]\n\n[[processes]\n").unwrap_err();
        assert!(e.starts_with("toml: line 4: "), "{e}");
        let e = Metadata::parse(b"[[processes]]\n\n[[processes]").unwrap_err();
        assert!(e.starts_with("toml: line 3: "), "{e}");
        let e = Metadata::parse(b"a = \"unterminated\nb = 1\n").unwrap_err();
        assert!(e.starts_with("toml: line 1: "), "{e}");
        // The first error in the text, not the first the parser reports.
        let e = Metadata::parse(b"x = 1\na = \"two\nlines|\"\n").unwrap_err();
        assert!(e.starts_with("toml: line 2: "), "{e}");
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
