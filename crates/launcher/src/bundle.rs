//! The meta launcher. When the built-in implementation refuses an app (its Platform API or
//! one of its Buildpack APIs is not supported: exit 11 / 12), the launch goes to the first
//! delegate of the bundle directory beside the resolved launcher, `<launcher>.d/`, whose
//! API lists cover the app; it is `execve`d with the original argv and environment.
//! Only the refusal path comes here: an app the built-in serves costs nothing extra.
//!
//! Order: entries by file name, byte-wise (`run-image add-launcher` writes `NN-<name>`).
//! A delegate describes itself in its `.cnb_launcher` ELF section or, taking precedence, in
//! a sidecar `<name>.toml` (`name`, `version`, `platform-apis`, `buildpack-apis`).

use std::ffi::{OsStr, OsString};
use std::io::{ErrorKind, Read};
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};

use crate::api::{self, covers, ApiLists, DeprecationMode, Version};
use crate::elf;
use crate::errors::{os_error_text, Failure, LaunchError, EXIT_PLATFORM_API};
use crate::exec::execve_environ;
use crate::log::Logger;
use crate::metadata::{parse_document, utf8, Metadata};
use crate::paths;
use crate::self_description::{self, Described, SECTION};

/// Suffix of sidecar descriptors.
pub const SIDECAR: &str = ".toml";
const SIDECAR_LIMIT: u64 = 64 << 10;

/// The API lists of one launcher; the selection rule is defined on this trait so the
/// tooling (relaunch check, decouple, the rebaser) decides exactly as the launcher does.
pub trait Supports {
    fn supports_platform(&self, api: Version) -> bool;
    fn supports_buildpack(&self, api: Version) -> bool;

    /// Runs an app with this Platform API and these Buildpack APIs.
    fn covers(&self, platform: Version, buildpacks: &[Version]) -> bool {
        self.supports_platform(platform) && buildpacks.iter().all(|b| self.supports_buildpack(*b))
    }
}

/// Dispatch order: the first launcher (built-in first, then delegates) covering the app.
pub fn first_covering<L: Supports>(
    launchers: &[L],
    platform: Version,
    buildpacks: &[Version],
) -> Option<usize> {
    launchers
        .iter()
        .position(|l| l.covers(platform, buildpacks))
}

/// A launcher of the bundle as the dispatcher sees it.
#[derive(Debug, Clone)]
pub struct Candidate {
    /// File name in the bundle, or `built-in`.
    pub entry: String,
    pub described: Described,
    platform: Vec<Version>,
    buildpack: Vec<Version>,
}

impl Supports for Candidate {
    fn supports_platform(&self, api: Version) -> bool {
        self.platform.iter().any(|s| covers(*s, api))
    }
    fn supports_buildpack(&self, api: Version) -> bool {
        self.buildpack.iter().any(|s| covers(*s, api))
    }
}

impl Candidate {
    pub fn new(entry: &str, described: Described) -> Result<Candidate, String> {
        let parse = |key: &str, list: &[String]| -> Result<Vec<Version>, String> {
            if list.is_empty() {
                return Err(format!("'{key}' lists no API"));
            }
            list.iter()
                .map(|s| Version::parse(s).ok_or_else(|| format!("'{key}': bad API '{s}'")))
                .collect()
        };
        Ok(Candidate {
            entry: entry.to_string(),
            platform: parse("platform-apis", &described.platform_apis)?,
            buildpack: parse("buildpack-apis", &described.buildpack_apis)?,
            described,
        })
    }

    /// This binary's own implementation.
    pub fn built_in() -> Candidate {
        let described = Described {
            name: self_description::NAME.into(),
            version: self_description::VERSION.into(),
            platform_apis: api::PLATFORM_APIS.iter().map(|s| s.to_string()).collect(),
            buildpack_apis: api::BUILDPACK_APIS.iter().map(|s| s.to_string()).collect(),
        };
        Candidate::new("built-in", described).expect("the built-in lists parse")
    }

    /// `01-old (old-launcher 1.0): Platform APIs 0.6; Buildpack APIs 0.6`
    fn summary(&self) -> String {
        let d = &self.described;
        format!(
            "{} ({} {}): Platform APIs {}; Buildpack APIs {}",
            self.entry,
            d.name,
            d.version,
            d.platform_apis.join(","),
            d.buildpack_apis.join(",")
        )
    }
}

/// The app as the launcher was asked to start it.
pub struct App<'a> {
    pub platform_api: &'a str,
    /// Already read, or read here (only once a non-empty bundle exists).
    pub metadata: Option<&'a Metadata>,
    pub layers_dir: &'a Path,
    pub args: &'a [OsString],
    pub environ: &'a [(OsString, OsString)],
}

/// Called with the built-in's refusal of `app`: execs a covering delegate (and never
/// returns), or returns the failure to report. Without a bundle directory, or with an
/// empty one, that is `refusal` itself: the plain launcher's behaviour.
pub fn dispatch(refusal: Failure, app: App<'_>, log: &Logger) -> Failure {
    let Some(platform) = Version::parse(app.platform_api) else {
        return refusal;
    };
    let Some(dir) = bundle_dir() else {
        return refusal;
    };
    let entries = match list(&dir) {
        Ok(e) if e.delegates.is_empty() && e.sidecars.is_empty() => return refusal,
        Ok(e) => e,
        // Not a directory (cargo, for one, writes a `<binary>.d` dep file): no bundle.
        Err(e) if e.kind() == ErrorKind::NotFound || e.raw_os_error() == Some(libc::ENOTDIR) => {
            return refusal
        }
        Err(e) => return broken(&dir, "", &os_error_text(&e)),
    };
    let read;
    let metadata = match app.metadata {
        Some(md) => Some(md),
        None => {
            // Unreadable metadata: select by Platform API; the delegate reports the error.
            read = Metadata::read(&paths::join(app.layers_dir, &[b"config", b"metadata.toml"]));
            read.as_ref().ok()
        }
    };
    let buildpacks: Vec<(&str, &str, Version)> = metadata
        .map(|md| {
            md.buildpacks
                .iter()
                .filter_map(|b| Some((b.id.as_str(), b.api.as_str(), Version::parse(&b.api)?)))
                .collect()
        })
        .unwrap_or_default();
    let versions: Vec<Version> = buildpacks.iter().map(|b| b.2).collect();
    let mut seen = vec![Candidate::built_in()];
    if seen[0].covers(platform, &versions) {
        // Refused for another reason (a malformed API): no delegate changes that.
        return refusal;
    }
    if let Some(orphan) = entries
        .sidecars
        .iter()
        .find(|s| !entries.delegates.contains(s))
    {
        let name = format!("{}{SIDECAR}", orphan.to_string_lossy());
        return broken(&dir, &name, "descriptor without a delegate of that name");
    }
    for name in &entries.delegates {
        let entry = name.to_string_lossy();
        let path = dir.join(name);
        let has_sidecar = entries.sidecars.contains(name);
        let candidate = match describe(&path, has_sidecar).and_then(|d| Candidate::new(&entry, d)) {
            Ok(c) => c,
            Err(e) => return broken(&dir, &entry, &e),
        };
        if candidate.covers(platform, &versions) {
            let argv: Vec<&OsStr> = app.args.iter().map(OsString::as_os_str).collect();
            let err = execve_environ(&path, &argv, app.environ);
            return LaunchError(format!("exec {}: {}", path.display(), os_error_text(&err)))
                .into_failure();
        }
        seen.push(candidate);
    }
    none_fits(refusal, platform, &buildpacks, &seen, &dir, log)
}

/// `<resolved launcher>.d`: the bundle belongs to the binary, wherever symlinks led.
fn bundle_dir() -> Option<PathBuf> {
    let mut exe = std::fs::read_link("/proc/self/exe").ok()?.into_os_string();
    exe.push(".d");
    Some(exe.into())
}

struct Entries {
    /// Delegate file names, in dispatch order.
    delegates: Vec<OsString>,
    /// Delegate names that have a sidecar `<name>.toml`.
    sidecars: Vec<OsString>,
}

fn list(dir: &Path) -> std::io::Result<Entries> {
    let mut delegates = Vec::new();
    let mut sidecars = Vec::new();
    for entry in std::fs::read_dir(dir)? {
        let name = entry?.file_name();
        match name.as_bytes().strip_suffix(SIDECAR.as_bytes()) {
            Some(stem) => sidecars.push(OsStr::from_bytes(stem).to_owned()),
            None => delegates.push(name),
        }
    }
    delegates.sort_unstable_by(|a, b| a.as_bytes().cmp(b.as_bytes()));
    Ok(Entries {
        delegates,
        sidecars,
    })
}

/// A delegate's description: its sidecar if it has one, else its ELF section.
fn describe(path: &Path, has_sidecar: bool) -> Result<Described, String> {
    if has_sidecar {
        let mut sidecar = path.as_os_str().to_owned();
        sidecar.push(SIDECAR);
        return read_sidecar(Path::new(&sidecar));
    }
    let file = std::fs::File::open(path).map_err(|e| os_error_text(&e))?;
    match elf::section(&file, SECTION) {
        Ok(Some(json)) => self_description::parse(&json).map_err(|e| format!("{SECTION}: {e}")),
        Ok(None) => Err(format!(
            "no {SECTION} self-description and no sidecar descriptor"
        )),
        Err(e) => Err(format!("{e}, and no sidecar descriptor")),
    }
}

/// `<name>.toml`: `name`, `version`, `platform-apis`, `buildpack-apis`.
pub fn parse_sidecar(bytes: &[u8]) -> Result<Described, String> {
    let text = utf8(bytes)?;
    let doc = parse_document(text)?;
    let root = doc.get_ref();
    let value = |key: &str| {
        root.get(key)
            .map(|v| v.get_ref())
            .ok_or(format!("missing key '{key}'"))
    };
    let string = |key: &str| {
        value(key)?
            .as_str()
            .map(str::to_owned)
            .ok_or(format!("'{key}' must be a string"))
    };
    let strings = |key: &str| {
        let wrong = || format!("'{key}' must be an array of strings");
        value(key)?
            .as_array()
            .ok_or_else(wrong)?
            .iter()
            .map(|v| v.get_ref().as_str().map(str::to_owned).ok_or_else(wrong))
            .collect::<Result<Vec<_>, _>>()
    };
    Ok(Described {
        name: string("name")?,
        version: string("version")?,
        platform_apis: strings("platform-apis")?,
        buildpack_apis: strings("buildpack-apis")?,
    })
}

fn read_sidecar(path: &Path) -> Result<Described, String> {
    let name = path.file_name().unwrap_or_default().to_string_lossy();
    let mut bytes = Vec::new();
    std::fs::File::open(path)
        .and_then(|f| f.take(SIDECAR_LIMIT + 1).read_to_end(&mut bytes))
        .map_err(|e| format!("{name}: {}", os_error_text(&e)))?;
    if bytes.len() as u64 > SIDECAR_LIMIT {
        return Err(format!("{name}: larger than {SIDECAR_LIMIT} bytes"));
    }
    parse_sidecar(&bytes).map_err(|e| format!("{name}: {e}"))
}

/// A broken bundle is an error, never a silent fallback to the plain launcher.
fn broken(dir: &Path, entry: &str, reason: &str) -> Failure {
    let at = paths::join(dir, &[entry.as_bytes()]);
    LaunchError(format!("launcher bundle: {}: {reason}", at.display())).into_failure()
}

/// Nothing covers the app: exit 11 if no launcher supports its Platform API, else 12, with
/// the reference's message (as the first launcher supporting the Platform API words it),
/// then one line listing what the bundle supports.
fn none_fits(
    refusal: Failure,
    platform: Version,
    buildpacks: &[(&str, &str, Version)],
    launchers: &[Candidate],
    dir: &Path,
    log: &Logger,
) -> Failure {
    let reference = match launchers.iter().find(|l| l.supports_platform(platform)) {
        None if refusal.code == EXIT_PLATFORM_API => refusal,
        None => Failure::new(
            EXIT_PLATFORM_API,
            format!("failed to set platform API: platform API version '{platform}' is incompatible with the lifecycle"),
        ),
        Some(l) => {
            let supported: Vec<&str> = l.described.buildpack_apis.iter().map(String::as_str).collect();
            let lists = ApiLists {
                supported: &supported,
                deprecated: &[],
            };
            buildpacks
                .iter()
                .find_map(|(id, requested, _)| {
                    api::verify_buildpack_api(id, requested, lists, DeprecationMode::Quiet, log).err()
                })
                .unwrap_or(refusal)
        }
    };
    log.error(&reference.message);
    let apis: Vec<String> = buildpacks.iter().map(|b| b.2.to_string()).collect();
    let summaries: Vec<String> = launchers.iter().map(Candidate::summary).collect();
    Failure::new(
        reference.code,
        format!(
            "no launcher of the bundle {} supports Platform API {platform} with Buildpack APIs [{}]; the bundle has: {}",
            dir.display(),
            apis.join(","),
            summaries.join(" | ")
        ),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn candidate(platform: &[&str], buildpack: &[&str]) -> Candidate {
        let own = |l: &[&str]| l.iter().map(|s| s.to_string()).collect();
        let d = Described {
            name: "x".into(),
            version: "1".into(),
            platform_apis: own(platform),
            buildpack_apis: own(buildpack),
        };
        Candidate::new("01-x", d).unwrap()
    }

    fn v(s: &str) -> Version {
        Version::parse(s).unwrap()
    }

    #[test]
    fn first_launcher_covering_platform_and_every_buildpack_wins() {
        let bundle = [
            Candidate::built_in(),
            candidate(&["0.6"], &["0.2", "0.6"]),
            candidate(&["0.6", "0.7"], &["0.2", "0.6", "0.7"]),
            candidate(&["1.2"], &["1.0"]),
        ];
        assert_eq!(first_covering(&bundle, v("0.15"), &[v("0.12")]), Some(0));
        assert_eq!(first_covering(&bundle, v("0.6"), &[v("0.2")]), Some(1));
        // Platform 0.7 is built-in, Buildpack 0.2 is not: only a delegate has both.
        assert_eq!(
            first_covering(&bundle, v("0.7"), &[v("0.2"), v("0.9")]),
            None
        );
        assert_eq!(
            first_covering(&bundle, v("0.7"), &[v("0.2"), v("0.7")]),
            Some(2)
        );
        assert_eq!(
            first_covering(&bundle, v("1.1"), &[v("1.0")]),
            Some(3),
            "1.x covers lower minors"
        );
        assert_eq!(first_covering(&bundle, v("1.3"), &[]), None);
        assert_eq!(first_covering(&bundle, v("0.5"), &[]), None);
    }

    #[test]
    fn descriptors_need_parsable_non_empty_lists() {
        let d = |p: &[&str]| Described {
            platform_apis: p.iter().map(|s| s.to_string()).collect(),
            buildpack_apis: vec!["0.7".into()],
            ..Described::default()
        };
        assert_eq!(
            Candidate::new("a", d(&[])).unwrap_err(),
            "'platform-apis' lists no API"
        );
        assert_eq!(
            Candidate::new("a", d(&["x"])).unwrap_err(),
            "'platform-apis': bad API 'x'"
        );
    }

    #[test]
    fn sidecar_descriptor() {
        let d = parse_sidecar(
            b"name = \"lifecycle\"\nversion = \"0.21.17\"\nplatform-apis = [\"0.7\", \"0.15\"]\nbuildpack-apis = [\"0.7\"]\n",
        )
        .unwrap();
        assert_eq!(d.name, "lifecycle");
        assert_eq!(d.platform_apis, ["0.7", "0.15"]);
        assert_eq!(
            parse_sidecar(
                b"name = \"a\"\nversion = \"1\"\nplatform-apis = \"0.7\"\nbuildpack-apis = []\n"
            )
            .unwrap_err(),
            "'platform-apis' must be an array of strings"
        );
        assert_eq!(
            parse_sidecar(b"name = \"a\"\nplatform-apis = []\n").unwrap_err(),
            "missing key 'version'"
        );
        assert!(parse_sidecar(b"name = ")
            .unwrap_err()
            .starts_with("toml: line 1"));
    }
}
