//! The launch environment: the inherited variables minus the launcher's own, layer
//! `bin`/`lib` directories and the env files of `env/`, `env.launch/`, `env.launch/<type>/`.
//! Names and values are bytes (`OsString`): file contents are never decoded or trimmed.

use std::collections::BTreeMap;
use std::ffi::{OsStr, OsString};
use std::io::ErrorKind;
use std::os::unix::ffi::{OsStrExt, OsStringExt};
use std::path::Path;

use crate::errors::{path_error, LaunchError};
use crate::paths;

/// Read by the launcher and never passed on to the process (reference exclude list).
pub const EXCLUDED_VARS: [&str; 5] = [
    "CNB_LAYERS_DIR",
    "CNB_APP_DIR",
    "CNB_PROCESS_TYPE",
    "CNB_PLATFORM_API",
    "CNB_DEPRECATION_MODE",
];
/// Dropped from `PATH` wherever they appear; the image puts them there for `/cnb/process/<type>`.
pub const PATH_DIRS_REMOVED: [&str; 2] = ["/cnb/process", "/cnb/lifecycle"];
/// Layer sub-directories prepended to variables at launch.
pub const ROOT_DIRS: [(&str, &str); 2] = [("bin", "PATH"), ("lib", "LD_LIBRARY_PATH")];

#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Env {
    vars: BTreeMap<OsString, OsString>,
}

impl Env {
    /// Builds the launch env from the launcher's own environment.
    pub fn launch(environ: impl IntoIterator<Item = (OsString, OsString)>) -> Env {
        let mut vars: BTreeMap<OsString, OsString> = environ
            .into_iter()
            .filter(|(k, _)| !EXCLUDED_VARS.iter().any(|x| k.as_bytes() == x.as_bytes()))
            .collect();
        if let Some(path) = vars.get_mut(OsStr::new("PATH")) {
            let kept: Vec<&[u8]> = path
                .as_bytes()
                .split(|&b| b == b':')
                .filter(|p| !PATH_DIRS_REMOVED.iter().any(|r| r.as_bytes() == *p))
                .collect();
            *path = OsString::from_vec(kept.join(&b':'));
        }
        Env { vars }
    }

    /// The value, or empty when unset (the reference does not distinguish the two).
    pub fn get(&self, key: &str) -> &OsStr {
        self.get_os(OsStr::new(key))
    }

    fn get_os(&self, key: &OsStr) -> &OsStr {
        self.vars
            .get(key)
            .map(OsString::as_os_str)
            .unwrap_or_default()
    }

    pub fn set(&mut self, key: impl Into<OsString>, value: impl Into<OsString>) {
        self.vars.insert(key.into(), value.into());
    }

    pub fn iter(&self) -> impl Iterator<Item = (&OsStr, &OsStr)> {
        self.vars
            .iter()
            .map(|(k, v)| (k.as_os_str(), v.as_os_str()))
    }

    /// Prepends `<layer>/bin` to PATH and `<layer>/lib` to LD_LIBRARY_PATH when they exist
    /// (`stat` follows symlinks; even a regular file counts, as in the reference).
    pub fn add_root_dir(&mut self, layer: &Path) -> Result<(), LaunchError> {
        let abs = paths::absolute(layer).map_err(|e| path_error("getwd", layer, &e))?;
        for (sub, var) in ROOT_DIRS {
            let child = paths::join(&abs, &[sub.as_bytes()]);
            match std::fs::metadata(&child) {
                Ok(_) => {}
                Err(e) if e.kind() == ErrorKind::NotFound => continue,
                Err(e) => return Err(path_error("stat", &child, &e)),
            }
            let value = prefixed(child.as_os_str().as_bytes(), b":", self.get(var).as_bytes());
            self.set(var, OsString::from_vec(value));
        }
        Ok(())
    }

    /// Applies every env file of `dir`. Returns false if `dir` does not exist.
    pub fn add_env_dir(&mut self, dir: &Path) -> Result<bool, LaunchError> {
        let files = read_env_files(dir).map_err(|e| {
            LaunchError(format!(
                "apply env files from dir '{}': {}",
                dir.display(),
                e.0
            ))
        })?;
        let Some(files) = files else { return Ok(false) };
        apply_env_files(self, &files);
        Ok(true)
    }
}

/// One file of an env directory: its name and raw contents.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EnvFile {
    pub name: OsString,
    pub contents: Vec<u8>,
}

/// Reads the non-directory entries of `dir`, sorted by name; symlinks are followed and
/// a symlink to a directory is skipped, a dangling one is an error.
fn read_env_files(dir: &Path) -> Result<Option<Vec<EnvFile>>, LaunchError> {
    let Some(names) = crate::layers::sorted_entries(dir)? else {
        return Ok(None);
    };
    let mut files = Vec::with_capacity(names.len());
    for (name, file_type) in names {
        if file_type.is_dir() {
            continue;
        }
        let path = dir.join(&name);
        if file_type.is_symlink() {
            let target = std::fs::metadata(&path).map_err(|e| path_error("stat", &path, &e))?;
            if target.is_dir() {
                continue;
            }
        }
        let contents = std::fs::read(&path).map_err(|e| path_error("open", &path, &e))?;
        files.push(EnvFile { name, contents });
    }
    Ok(Some(files))
}

/// Applies one directory's env files in order. `NAME.delim` is looked up among the same
/// files. Public so the fuzz target can drive it without a file system.
pub fn apply_env_files(env: &mut Env, files: &[EnvFile]) {
    for file in files {
        let name_bytes = file.name.as_bytes();
        let (name, action) = match name_bytes.iter().position(|&b| b == b'.') {
            Some(dot) => (&name_bytes[..dot], Some(&name_bytes[dot + 1..])),
            None => (name_bytes, None),
        };
        let name = OsStr::from_bytes(name);
        let old = env.get_os(name).as_bytes();
        let new = &file.contents[..];
        let value = match action {
            // The launcher's default action for unsuffixed files is override (every B API).
            None | Some(b"override") => new.to_vec(),
            Some(b"default") if old.is_empty() => new.to_vec(),
            Some(b"default") => continue,
            Some(b"prepend") => prefixed(new, delim(files, name, b""), old),
            Some(b"append") => appended(old, delim(files, name, b""), new),
            // `NAME.` names the reference's path-prepend action (default delimiter `:`).
            Some(b"") => prefixed(new, delim(files, name, b":"), old),
            // `.delim` and unknown suffixes are not actions.
            Some(_) => continue,
        };
        env.set(name, OsString::from_vec(value));
    }
}

fn delim<'a>(files: &'a [EnvFile], name: &OsStr, default: &'a [u8]) -> &'a [u8] {
    let mut wanted = name.as_bytes().to_vec();
    wanted.extend_from_slice(b".delim");
    files
        .iter()
        .find(|f| f.name.as_bytes() == wanted.as_slice())
        .map_or(default, |f| &f.contents[..])
}

/// `new + delim + old`; the delimiter is left out only when `old` is empty (an empty
/// `new` still adds it, as in the reference).
fn prefixed(new: &[u8], delim: &[u8], old: &[u8]) -> Vec<u8> {
    if old.is_empty() {
        return new.to_vec();
    }
    [new, delim, old].concat()
}

/// `old + delim + new`; the delimiter is left out only when `old` is empty.
fn appended(old: &[u8], delim: &[u8], new: &[u8]) -> Vec<u8> {
    if old.is_empty() {
        return new.to_vec();
    }
    [old, delim, new].concat()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testutil::TempDir;

    fn env_of(pairs: &[(&str, &str)]) -> Env {
        Env::launch(
            pairs
                .iter()
                .map(|(k, v)| (OsString::from(k), OsString::from(v))),
        )
    }

    fn sorted(env: &Env) -> Vec<String> {
        env.iter()
            .map(|(k, v)| format!("{}={}", k.to_string_lossy(), v.to_string_lossy()))
            .collect()
    }

    #[test]
    fn launch_env_excludes_cnb_vars_but_keeps_others() {
        // EN-11, EN-13
        let env = env_of(&[
            ("CNB_APP_DIR", "excluded"),
            ("CNB_LAYERS_DIR", "excluded"),
            ("CNB_PROCESS_TYPE", "excluded"),
            ("CNB_PLATFORM_API", "excluded"),
            ("CNB_DEPRECATION_MODE", "excluded"),
            ("CNB_FOO", "some=key"),
            ("CNB_EXEC_ENV", "test"),
            ("cnb_app_dir", "case-sensitive"),
        ]);
        assert_eq!(
            sorted(&env),
            [
                "CNB_EXEC_ENV=test",
                "CNB_FOO=some=key",
                "cnb_app_dir=case-sensitive"
            ]
        );
    }

    #[test]
    fn launch_env_strips_cnb_dirs_anywhere_in_path() {
        // EN-12
        let env = env_of(&[(
            "PATH",
            "/cnb/process:/usr/bin:/cnb/lifecycle:/bin:/cnb/process",
        )]);
        assert_eq!(env.get("PATH"), "/usr/bin:/bin");
        let env = env_of(&[("PATH", "/cnb/process:/cnb/lifecycle")]);
        assert_eq!(sorted(&env), ["PATH="]);
        let env = env_of(&[("PATH", "/cnb/process/:/cnb")]);
        assert_eq!(
            env.get("PATH"),
            "/cnb/process/:/cnb",
            "exact element match only"
        );
    }

    #[test]
    fn root_dirs_prepend_without_trailing_separator() {
        // EN-1, EN-2, EN-7
        let tmp = TempDir::new();
        std::fs::create_dir(tmp.path().join("bin")).unwrap();
        std::fs::create_dir(tmp.path().join("lib")).unwrap();
        let mut env = env_of(&[("PATH", "some"), ("LD_LIBRARY_PATH", "some-ld")]);
        env.add_root_dir(tmp.path()).unwrap();
        let d = tmp.path().display();
        assert_eq!(
            sorted(&env),
            [
                format!("LD_LIBRARY_PATH={d}/lib:some-ld"),
                format!("PATH={d}/bin:some")
            ]
        );
        let mut env = Env::default();
        env.add_root_dir(tmp.path()).unwrap();
        assert_eq!(
            sorted(&env),
            [format!("LD_LIBRARY_PATH={d}/lib"), format!("PATH={d}/bin")]
        );
        let mut env = Env::default();
        env.add_root_dir(&tmp.path().join("missing")).unwrap();
        assert_eq!(
            env,
            Env::default(),
            "children that do not exist are skipped"
        );
    }

    fn write(dir: &Path, name: &str, contents: &str) {
        std::fs::write(dir.join(name), contents).unwrap();
    }

    #[test]
    fn env_dir_suffixes() {
        // EN-3 (suffixed files behave the same whatever the default action)
        let tmp = TempDir::new();
        let d = tmp.path();
        for (n, v) in [
            ("VAR_APPEND.append", "value-append"),
            ("VAR_APPEND_NEW.append", "value-append"),
            ("VAR_APPEND_DELIM.append", "value-append-delim"),
            ("VAR_APPEND_DELIM_NEW.append", "value-append-delim"),
            ("VAR_APPEND_DELIM.delim", "[]"),
            ("VAR_APPEND_DELIM_NEW.delim", "[]"),
            ("VAR_PREPEND.prepend", "value-prepend"),
            ("VAR_PREPEND_NEW.prepend", "value-prepend"),
            ("VAR_PREPEND_DELIM.prepend", "value-prepend-delim"),
            ("VAR_PREPEND_DELIM_NEW.prepend", "value-prepend-delim"),
            ("VAR_PREPEND_DELIM.delim", "[]"),
            ("VAR_PREPEND_DELIM_NEW.delim", "[]"),
            ("VAR_DEFAULT.default", "value-default"),
            ("VAR_DEFAULT_NEW.default", "value-default"),
            ("VAR_OVERRIDE.override", "value-override"),
            ("VAR_OVERRIDE_NEW.override", "value-override"),
            ("VAR_IGNORE.ignore", "value-ignore"),
        ] {
            write(d, n, v);
        }
        std::fs::create_dir(d.join("some-dir")).unwrap();
        let mut env = env_of(&[
            ("VAR_APPEND", "value-append-orig"),
            ("VAR_APPEND_DELIM", "value-append-delim-orig"),
            ("VAR_PREPEND", "value-prepend-orig"),
            ("VAR_PREPEND_DELIM", "value-prepend-delim-orig"),
            ("VAR_DEFAULT", "value-default-orig"),
            ("VAR_OVERRIDE", "value-override-orig"),
        ]);
        env.add_env_dir(d).unwrap();
        assert_eq!(
            sorted(&env),
            [
                "VAR_APPEND=value-append-origvalue-append",
                "VAR_APPEND_DELIM=value-append-delim-orig[]value-append-delim",
                "VAR_APPEND_DELIM_NEW=value-append-delim",
                "VAR_APPEND_NEW=value-append",
                "VAR_DEFAULT=value-default-orig",
                "VAR_DEFAULT_NEW=value-default",
                "VAR_OVERRIDE=value-override",
                "VAR_OVERRIDE_NEW=value-override",
                "VAR_PREPEND=value-prependvalue-prepend-orig",
                "VAR_PREPEND_DELIM=value-prepend-delim[]value-prepend-delim-orig",
                "VAR_PREPEND_DELIM_NEW=value-prepend-delim",
                "VAR_PREPEND_NEW=value-prepend",
            ]
        );
    }

    #[test]
    fn unsuffixed_files_override_and_ignore_delim() {
        // EN-5
        let tmp = TempDir::new();
        let d = tmp.path();
        for (n, v) in [
            ("VAR_NORMAL", "value-normal"),
            ("VAR_NORMAL_NEW", "value-normal"),
            ("VAR_NORMAL_DELIM", "value-normal-delim"),
            ("VAR_NORMAL_DELIM_NEW", "value-normal-delim"),
            ("VAR_NORMAL_DELIM.delim", "[]"),
            ("VAR_NORMAL_DELIM_NEW.delim", "[]"),
        ] {
            write(d, n, v);
        }
        let mut env = env_of(&[
            ("VAR_NORMAL", "value-normal-orig"),
            ("VAR_NORMAL_DELIM", "value-normal-delim-orig"),
        ]);
        env.add_env_dir(d).unwrap();
        assert_eq!(
            sorted(&env),
            [
                "VAR_NORMAL=value-normal",
                "VAR_NORMAL_DELIM=value-normal-delim",
                "VAR_NORMAL_DELIM_NEW=value-normal-delim",
                "VAR_NORMAL_NEW=value-normal",
            ]
        );
    }

    fn file(name: &str, contents: &[u8]) -> EnvFile {
        EnvFile {
            name: name.into(),
            contents: contents.to_vec(),
        }
    }

    #[test]
    fn values_are_raw_bytes_not_trimmed() {
        // §6 item 1: trailing newline stays; non-UTF-8 is kept verbatim.
        let mut env = Env::default();
        apply_env_files(
            &mut env,
            &[
                file("A", b"worker-val\n"),
                file("B", b"\xff\xfe"),
                file("C.delim", b" \n"),
            ],
        );
        assert_eq!(env.get("A").as_bytes(), b"worker-val\n");
        assert_eq!(env.get("B").as_bytes(), b"\xff\xfe");
        assert!(env.get("C").is_empty());
    }

    #[test]
    fn sorted_order_decides_between_suffixes_of_one_name() {
        // §6 item 2: NAME, NAME.append, NAME.default, NAME.override, NAME.prepend
        let mut env = Env::default();
        apply_env_files(
            &mut env,
            &[
                file("V", b"plain"),
                file("V.append", b"app"),
                file("V.default", b"def"),
                file("V.delim", b","),
                file("V.override", b"over"),
                file("V.prepend", b"pre"),
            ],
        );
        assert_eq!(env.get("V"), "pre,over");
    }

    #[test]
    fn default_applies_only_when_empty_and_path_prepend_suffix() {
        let mut env = env_of(&[("E", ""), ("P", "/old")]);
        apply_env_files(
            &mut env,
            &[
                file("E.default", b"x"),
                file("P.", b"/new"),
                file("A.b.prepend", b"z"),
            ],
        );
        assert_eq!(env.get("E"), "x");
        assert_eq!(env.get("P"), "/new:/old");
        assert!(
            env.get("A").is_empty(),
            "unknown suffix `b.prepend` is ignored"
        );
    }

    #[test]
    fn empty_prepend_and_append_files_still_add_the_delimiter() {
        // Issue 11 item 2: the reference leaves out the delimiter only when the old value
        // is empty, so an empty file adds it (an empty PATH entry for `PATH.`).
        let mut env = env_of(&[("FOO", "orig"), ("BAR", "orig"), ("PATH", "/bin")]);
        apply_env_files(
            &mut env,
            &[
                file("BAR.append", b""),
                file("BAR.delim", b":"),
                file("FOO.delim", b":"),
                file("FOO.prepend", b""),
                file("NEW.append", b""),
                file("PATH.", b""),
            ],
        );
        assert_eq!(env.get("FOO"), ":orig");
        assert_eq!(env.get("BAR"), "orig:");
        assert_eq!(env.get("PATH"), ":/bin");
        assert_eq!(sorted(&env).len(), 4, "NEW is set, to empty");
        assert!(env.get("NEW").is_empty());
    }

    #[test]
    fn env_dir_symlinks() {
        let tmp = TempDir::new();
        let d = tmp.path();
        write(d, "REAL", "real-val");
        std::os::unix::fs::symlink(d.join("REAL"), d.join("SYM")).unwrap();
        std::fs::create_dir(d.join("sub")).unwrap();
        std::os::unix::fs::symlink(d.join("sub"), d.join("DIRLINK")).unwrap();
        let mut env = Env::default();
        env.add_env_dir(d).unwrap();
        assert_eq!(sorted(&env), ["REAL=real-val", "SYM=real-val"]);

        std::os::unix::fs::symlink(d.join("nowhere"), d.join("DANGLING")).unwrap();
        let err = Env::default().add_env_dir(d).unwrap_err();
        assert_eq!(
            err.0,
            format!(
                "apply env files from dir '{0}': stat {0}/DANGLING: no such file or directory",
                d.display()
            )
        );
    }

    #[test]
    fn missing_env_dir_is_fine_and_file_in_place_of_dir_is_an_error() {
        let tmp = TempDir::new();
        Env::default()
            .add_env_dir(&tmp.path().join("absent"))
            .unwrap();
        write(tmp.path(), "env", "not a dir");
        let err = Env::default()
            .add_env_dir(&tmp.path().join("env"))
            .unwrap_err();
        assert!(err.0.ends_with("not a directory"), "{}", err.0);
    }
}
