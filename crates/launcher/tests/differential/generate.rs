//! Random but plausible launch setups, deterministic from a seed. Each one is what an app
//! image could hold: APIs (valid and not), `metadata.toml` (processes, commands as strings
//! and arrays, args, direct, default, working-dir, buildpack-id, exec-env, odd types and
//! key cases, malformed TOML), selection by argv[0], user arguments and `--`, env files with
//! every suffix and odd contents, `profile.d`, `.profile`, exec.d programs (valid or invalid
//! TOML, failures, reading stdin, changing `<layers>`), stdin and the initial environment.
//!
//! Inputs the reference itself handles nondeterministically (two type errors in one
//! document, one field spelled in two cases, exec.d programs printing the unordered env)
//! are not generated.

use crate::case::{Bytes, Case, Entry, Kind};

#[path = "generate_layers.rs"]
mod layers;

/// splitmix64: small, fast, and the same sequence everywhere.
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Rng {
        Rng(seed)
    }

    pub fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    pub fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }

    /// True with probability `percent`/100.
    pub fn chance(&mut self, percent: u64) -> bool {
        self.next() % 100 < percent
    }

    pub fn pick<'a, T>(&mut self, items: &'a [T]) -> &'a T {
        &items[self.below(items.len())]
    }
}

/// The seed of case `index` of a run seeded with `seed`.
pub fn case_seed(seed: u64, index: u64) -> u64 {
    Rng::new(seed ^ index.wrapping_mul(0xd6e8_feb8_6659_fd93)).next()
}

const TYPES: &[&str] = &["web", "worker", "task", "process.with.period", "launcher"];
const BUILDPACKS: &[&str] = &["bp/a", "bp-b", "c"];
const VARS: &[&str] = &["FOO", "BAR", "BAZ", "PATH", "LD_LIBRARY_PATH"];
const WORDS: &[&str] = &[
    "a",
    "b c",
    "$FOO",
    "${BAR:-unset}",
    "'q'",
    "\"dq\"",
    "exit=3",
    "--",
    "-x",
    "",
    "ü",
    "*",
    "$(echo sub)",
    "a\\b",
];

/// A TOML value as text, for arrays whose entries need not be strings.
const ODD_ENTRIES: &[&str] = &[
    "1",
    "true",
    "2.5",
    "[\"x\", 1]",
    "{b = 1, a = \"z\"}",
    "1e6",
    "-0.0",
    "0x1F",
    "123456.0",
    "1e-5",
    "1979-05-27T07:32:00Z",
    "1979-05-27",
    "nan",
    "-inf",
];

pub fn case(seed: u64) -> Case {
    let g = Gen {
        rng: Rng::new(seed),
        files: Vec::new(),
        type_error_left: true,
    };
    g.build()
}

struct Gen {
    rng: Rng,
    files: Vec<Entry>,
    /// The reference reports one of several type errors at random: allow one per document.
    type_error_left: bool,
}

fn toml_str(s: &str) -> String {
    let mut out = String::from("\"");
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            c if (c as u32) < 0x20 || c == '\u{7f}' => {
                out.push_str(&format!("\\u{:04X}", c as u32))
            }
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

impl Gen {
    fn file(&mut self, path: &str, contents: impl Into<Bytes>, mode: u32) {
        self.files.push(Entry {
            path: path.into(),
            kind: Kind::File {
                contents: contents.into(),
                mode,
            },
        });
    }

    fn dir(&mut self, path: &str) {
        self.files.push(Entry {
            path: path.into(),
            kind: Kind::Dir,
        });
    }

    fn symlink(&mut self, path: &str, target: &str) {
        self.files.push(Entry {
            path: path.into(),
            kind: Kind::Symlink {
                target: target.into(),
            },
        });
    }

    fn script(&mut self, path: &str, body: &str) {
        let mode = if self.rng.chance(5) { 0o644 } else { 0o755 };
        self.file(path, format!("#!/bin/sh\n{body}\n"), mode);
    }

    fn build(mut self) -> Case {
        let r = &mut self.rng;
        let platform = if r.chance(8) {
            r.pick(&[
                "", "0.6", "0.16", "bad-api", "v0.10", "1.0", " 0.9", "0.9.1",
            ])
            .to_string()
        } else {
            format!("0.{}", 7 + r.below(9))
        };
        let n_bps = self.rng.below(4);
        let buildpacks: Vec<(&str, String)> = (0..n_bps)
            .map(|i| {
                let api = if self.rng.chance(4) {
                    self.rng.pick(&["0.6", "0.13", "x", ""]).to_string()
                } else {
                    format!("0.{}", 7 + self.rng.below(6))
                };
                (BUILDPACKS[i], api)
            })
            .collect();
        let n_procs = self.rng.below(5);
        let types: Vec<&str> = (0..n_procs).map(|_| *self.rng.pick(TYPES)).collect();

        if !self.rng.chance(3) {
            let md = self.metadata(&buildpacks, &types);
            self.file("layers/config/metadata.toml", md, 0o644);
        }
        if !self.rng.chance(3) {
            self.dir("workspace");
        }
        if self.rng.chance(30) {
            self.dir("workspace/sub");
        }
        if self.rng.chance(15) {
            let profile = self.rng.pick(&[
                "export BAR=from-dot-profile\n",
                "echo dot-profile \"$0\"\n",
                "exit 7\n",
            ]);
            self.file("workspace/.profile", *profile, 0o644);
        } else if self.rng.chance(3) {
            self.dir("workspace/.profile");
        }
        for (id, _) in &buildpacks {
            self.buildpack_dir(&id.replace('/', "_"), &types);
        }
        if self.rng.chance(5) {
            // A directory for a buildpack that metadata does not list: never read.
            self.script("layers/unlisted/l/exec.d/x", "echo unlisted");
        }

        let argv0 = match self.rng.below(10) {
            0..=3 => "launcher".to_string(),
            4..=7 => self.rng.pick(TYPES).to_string(),
            8 => format!("@ROOT@/cnb/process/{}", self.rng.pick(TYPES)),
            _ => self
                .rng
                .pick(&["web", "/cnb/process/", "lifecycle"])
                .to_string(),
        };
        let args = self.user_args();
        let env = self.environment(&platform);
        let stdin = if self.rng.chance(40) {
            "one\ntwo\n"
        } else {
            ""
        };
        let mut signals = |percent| -> Vec<i32> {
            if !self.rng.chance(percent) {
                return Vec::new();
            }
            let mut sigs: Vec<i32> = (0..1 + self.rng.below(6))
                .map(|_| {
                    *self.rng.pick(&[
                        1, 2, 3, 5, 10, 13, 15, 17, 18, 20, 21, 23, 28, 32, 33, 34, 40, 64,
                    ])
                })
                .collect();
            sigs.sort();
            sigs.dedup();
            sigs
        };
        let ignored_signals = signals(10);
        let blocked_signals = signals(10);
        Case {
            argv0,
            args,
            env,
            stdin: stdin.into(),
            ignored_signals,
            blocked_signals,
            files: self.files,
        }
    }

    fn user_args(&mut self) -> Vec<Bytes> {
        let r = &mut self.rng;
        let mut args: Vec<Bytes> = match r.below(8) {
            0 | 1 => vec![],
            2 => vec!["--".into(), "probe".into()],
            3 => vec![
                "--".into(),
                (*r.pick(&[
                    "probe",
                    "@ROOT@/bin/probe",
                    "echo",
                    "nope",
                    "./probe",
                    "@ROOT@/bin",
                ]))
                .into(),
            ],
            4 => vec![(*r.pick(&[
                "probe",
                "echo hi; probe",
                "probe \"$FOO\"",
                "exit 4",
                "probe $BAR",
            ]))
            .into()],
            5 => vec!["--".into()],
            _ => vec![],
        };
        for _ in 0..r.below(4) {
            args.push((*r.pick(WORDS)).into());
        }
        if r.chance(3) {
            args.push(Bytes(b"\xffraw".to_vec()));
        }
        args
    }

    fn environment(&mut self, platform: &str) -> Vec<(String, Bytes)> {
        let r = &mut self.rng;
        let mut env: Vec<(String, Bytes)> = Vec::new();
        let path = match r.below(12) {
            0 => None,
            1 => Some("@ROOT@/bin:/usr/bin:/bin:"),
            2 => Some(":@ROOT@/bin:/usr/bin:/bin"),
            3 => Some("/usr/bin:/bin:@ROOT@/bin:/cnb/process"),
            _ => Some("/cnb/process:/cnb/lifecycle:@ROOT@/bin:/usr/local/bin:/usr/bin:/bin"),
        };
        if let Some(p) = path {
            env.push(("PATH".into(), p.into()));
        }
        if !r.chance(3) {
            env.push(("CNB_PLATFORM_API".into(), platform.into()));
        }
        env.push(("CNB_LAYERS_DIR".into(), "@ROOT@/layers".into()));
        env.push(("CNB_APP_DIR".into(), "@ROOT@/workspace".into()));
        match r.below(10) {
            0 => {}
            1 => env.push((
                "CNB_NO_COLOR".into(),
                (*r.pick(&["false", "1", "yes", "TRUE"])).into(),
            )),
            _ => env.push(("CNB_NO_COLOR".into(), "true".into())),
        }
        if r.chance(30) {
            env.push((
                "CNB_EXEC_ENV".into(),
                (*r.pick(&["production", "test", ""])).into(),
            ));
        }
        if r.chance(5) {
            env.push(("CNB_PROCESS_TYPE".into(), "web".into()));
        }
        if r.chance(5) {
            env.push((
                "CNB_DEPRECATION_MODE".into(),
                (*r.pick(&["quiet", "error", "warn"])).into(),
            ));
        }
        if !r.chance(20) {
            env.push(("FOO".into(), "orig".into()));
        }
        if r.chance(30) {
            env.push(("BAR".into(), (*r.pick(&["", "bar", "a:b"])).into()));
        }
        if r.chance(20) {
            env.push(("LD_LIBRARY_PATH".into(), "/orig/lib".into()));
        }
        if r.chance(5) {
            env.push(("RAW".into(), Bytes(b"\xfe\xff".to_vec())));
        }
        if r.chance(5) {
            env.push(("CNB_FOO".into(), "kept".into()));
        }
        env
    }

    /// `metadata.toml`: rendered by hand so keys, types and syntax can be odd.
    fn metadata(&mut self, buildpacks: &[(&str, String)], types: &[&str]) -> Bytes {
        let mut doc = String::new();
        let bps_key = self.spelling("buildpacks");
        for (id, api) in buildpacks {
            doc.push_str(&format!("[[{bps_key}]]\n"));
            let id_key = self.spelling("id");
            doc.push_str(&format!("{id_key} = {}\n", toml_str(id)));
            if !self.rng.chance(3) {
                let api_key = self.spelling("api");
                let api_value = if self.type_error(2) {
                    "0.9".into()
                } else {
                    toml_str(api)
                };
                doc.push_str(&format!("{api_key} = {api_value}\n"));
            }
            if self.rng.chance(20) {
                doc.push_str("version = \"1.0\"\n");
            }
        }
        let procs_key = self.spelling("processes");
        for t in types {
            doc.push_str(&format!("\n[[{procs_key}]]\n"));
            self.process(&mut doc, t, buildpacks);
        }
        if self.rng.chance(10) {
            doc.push_str("\n[[labels]]\nkey = \"k\"\nvalue = \"v\"\n");
        }
        if self.rng.chance(6) {
            doc = self.malformed(doc, &procs_key);
        }
        doc.into()
    }

    /// A field's key, now and then in another case (Go's EqualFold also folds K and ſ).
    fn spelling(&mut self, key: &str) -> String {
        if !self.rng.chance(8) {
            return key.into();
        }
        match self.rng.below(4) {
            0 => key.to_uppercase(),
            1 => {
                let mut c = key.chars();
                c.next()
                    .map(|f| f.to_uppercase().chain(c).collect())
                    .unwrap_or_default()
            }
            2 if key.contains('s') || key.contains('k') => {
                toml_str(&key.replacen('s', "\u{17f}", 1).replacen('k', "\u{212a}", 1))
            }
            _ => key.replace('-', "_"),
        }
    }

    /// Whether to put a wrongly typed value here (at most one per document).
    fn type_error(&mut self, percent: u64) -> bool {
        if self.type_error_left && self.rng.chance(percent) {
            self.type_error_left = false;
            return true;
        }
        false
    }

    fn process(&mut self, doc: &mut String, t: &str, buildpacks: &[(&str, String)]) {
        let line = |doc: &mut String, key: String, value: String| {
            doc.push_str(&format!("{key} = {value}\n"));
        };
        if !self.rng.chance(3) {
            let k = self.spelling("type");
            line(doc, k, toml_str(t));
        }
        let direct = self.rng.chance(50);
        if !self.rng.chance(3) {
            let k = self.spelling("command");
            let v = self.command(direct);
            line(doc, k, v);
        }
        if self.rng.chance(50) {
            let k = self.spelling("args");
            let v = if self.type_error(3) {
                self.rng
                    .pick(&["\"one\"", "[\"a\", 1]", "[[\"x\"]]"])
                    .to_string()
            } else {
                self.string_array(3)
            };
            line(doc, k, v);
        }
        if direct || self.rng.chance(20) {
            let k = self.spelling("direct");
            let v = if self.type_error(3) {
                "\"true\"".to_string()
            } else {
                direct.to_string()
            };
            line(doc, k, v);
        }
        if self.rng.chance(25) {
            let k = self.spelling("default");
            let v = if self.type_error(15) {
                self.rng.pick(&["1", "\"yes\"", "[true]"]).to_string()
            } else {
                self.rng.chance(50).to_string()
            };
            line(doc, k, v);
        }
        if self.rng.chance(70) {
            let k = self.spelling("buildpack-id");
            let id = match buildpacks {
                [] => "gone".to_string(),
                _ if self.rng.chance(10) => "gone".to_string(),
                _ => self.rng.pick(buildpacks).0.to_string(),
            };
            let v = if self.type_error(2) {
                "7".into()
            } else {
                toml_str(&id)
            };
            line(doc, k, v);
        }
        if self.rng.chance(30) {
            let k = self.spelling("working-dir");
            let wd = *self
                .rng
                .pick(&["sub", "@ROOT@/workspace/sub", "missing", "@ROOT@", ".", ""]);
            let v = if self.type_error(2) {
                "1".into()
            } else {
                toml_str(wd)
            };
            line(doc, k, v);
        }
        if self.rng.chance(25) {
            let k = self.spelling("exec-env");
            let v = if self.type_error(2) {
                "\"production\"".to_string()
            } else {
                let envs = self.rng.pick(&[
                    "[\"production\"]",
                    "[\"test\"]",
                    "[\"*\"]",
                    "[]",
                    "[\"production\", \"test\"]",
                ]);
                envs.to_string()
            };
            line(doc, k, v);
        }
    }

    fn command(&mut self, direct: bool) -> String {
        let program = if direct {
            *self.rng.pick(&[
                "probe",
                "@ROOT@/bin/probe",
                "echo",
                "true",
                "false",
                "nope",
                "tool",
                "",
            ])
        } else {
            *self.rng.pick(&[
                "probe",
                "probe \"$FOO\" $BAR",
                "echo shell; probe",
                "exit 3",
                "tool",
                "probe exit=5",
                "cd / && probe",
            ])
        };
        match self.rng.below(10) {
            0..=2 => toml_str(program),
            3 => "[]".into(),
            4 if self.type_error(4) => self
                .rng
                .pick(&["5", "1.5", "{a = \"b\"}", "true"])
                .to_string(),
            _ => {
                let mut entries = vec![toml_str(program)];
                for _ in 0..self.rng.below(3) {
                    if self.rng.chance(25) {
                        entries.push(self.rng.pick(ODD_ENTRIES).to_string());
                    } else {
                        entries.push(toml_str(self.rng.pick::<&str>(WORDS)));
                    }
                }
                format!("[{}]", entries.join(", "))
            }
        }
    }

    fn string_array(&mut self, max: usize) -> String {
        let items: Vec<String> = (0..self.rng.below(max + 1))
            .map(|_| toml_str(self.rng.pick::<&str>(WORDS)))
            .collect();
        format!("[{}]", items.join(", "))
    }

    /// Breaks the document in one of the ways hand-edited files break.
    /// `procs_key` is the document's spelling of `processes`: a table under another spelling
    /// would be a second key for the same field, which the reference picks between at random.
    fn malformed(&mut self, doc: String, procs_key: &str) -> String {
        let lines: Vec<&str> = doc.lines().collect();
        if lines.is_empty() {
            return "not toml".into();
        }
        let at = self.rng.below(lines.len());
        let mut out: Vec<String> = lines.iter().map(|l| l.to_string()).collect();
        match self.rng.below(9) {
            0 => out[at].push_str(" = "),
            1 => out.insert(at, "[[processes]".into()),
            2 => out.insert(at, lines[at].to_string()), // a duplicate key or table
            3 => out[at] = out[at].replace('"', ""),
            4 => out.insert(at, "key = \"unterminated".into()),
            5 => out.insert(at, "dup = 1\ndup = 2".into()),
            6 => out.insert(at, format!("[{procs_key}]")),
            7 => out.insert(at, "x = [1, \"a\"".into()),
            _ => out.insert(at, "bad\u{1}control = 1".into()),
        }
        out.join("\n") + "\n"
    }
}
