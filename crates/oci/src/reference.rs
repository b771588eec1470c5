//! Image references: `oci:<dir>[:<name>][@<digest>]` (OCI image layout, as skopeo reads it) or a registry
//! reference in the distribution grammar, `[host[:port]/]path[:tag][@digest]`, with Docker
//! Hub defaults. Errors name the part that is wrong.

use std::fmt;
use std::net::Ipv6Addr;
use std::path::PathBuf;
use std::str::FromStr;

use crate::digest::Digest;
use crate::error::{Error, Result};
use crate::transport::ManifestRef;

const DOCKER_HUB: &str = "docker.io";
pub const DEFAULT_TAG: &str = "latest";
/// Longest name (host and path) the distribution grammar accepts.
const NAME_MAX: usize = 255;

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ImageRef {
    /// OCI image layout directory; `tag` is the image name (`org.opencontainers.image.ref.name`,
    /// may hold ':' and '/'), `digest` selects a manifest by digest (how `runImage.reference`
    /// names a layout image).
    Layout {
        dir: PathBuf,
        tag: Option<String>,
        digest: Option<Digest>,
    },
    Registry(RegistryRef),
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RegistryRef {
    /// host[:port]; Docker Hub is `docker.io`.
    pub registry: String,
    /// e.g. `library/busybox`.
    pub repository: String,
    pub tag: Option<String>,
    pub digest: Option<Digest>,
}

impl RegistryRef {
    /// What to fetch: the digest if given (it wins over a tag), else the tag, else `latest`.
    pub fn manifest_ref(&self) -> ManifestRef {
        match (&self.digest, &self.tag) {
            (Some(d), _) => ManifestRef::Digest(d.clone()),
            (None, Some(t)) => ManifestRef::Tag(t.clone()),
            (None, None) => ManifestRef::Tag(DEFAULT_TAG.into()),
        }
    }

    fn parse(s: &str) -> Result<RegistryRef> {
        let bad = |reason: String| Error::InvalidReference {
            reference: s.to_string(),
            reason,
        };
        let (rest, digest) = match s.split_once('@') {
            Some((r, d)) => (r, Some(parse_digest(d).map_err(bad)?)),
            None => (s, None),
        };
        // A tag follows the last ':' only if no '/' follows it (else the ':' is a port's).
        let (name, tag) = match rest.rfind(':') {
            Some(i) if !rest[i + 1..].contains('/') => (&rest[..i], Some(&rest[i + 1..])),
            _ => (rest, None),
        };
        if name.is_empty() {
            return Err(bad("missing repository name".into()));
        }
        if name.len() > NAME_MAX {
            return Err(bad(format!(
                "name is {} characters long, more than {NAME_MAX}",
                name.len()
            )));
        }
        // The first component is a registry host if it looks like one (as Docker decides,
        // except that an uppercase name is reported as a bad path, not taken for a host).
        let (registry, path) = match name.split_once('/') {
            Some((first, path)) if first.contains(['.', ':', '[']) || first == "localhost" => {
                check_host(first).map_err(bad)?;
                (first.to_string(), path)
            }
            _ => (DOCKER_HUB.to_string(), name),
        };
        check_path(path).map_err(bad)?;
        if let Some(t) = tag {
            if !valid_tag(t) {
                return Err(bad(format!(
                    "tag {t:?} must be 1 to 128 of A-Z a-z 0-9 _ . - and not start with . or -"
                )));
            }
        }
        let registry = match registry.as_str() {
            "index.docker.io" | "registry-1.docker.io" => DOCKER_HUB.to_string(),
            _ => registry,
        };
        let repository = if registry == DOCKER_HUB && !path.contains('/') {
            format!("library/{path}")
        } else {
            path.to_string()
        };
        Ok(RegistryRef {
            registry,
            repository,
            tag: tag.map(String::from),
            digest,
        })
    }
}

/// `[\w][\w.-]{0,127}`.
fn valid_tag(t: &str) -> bool {
    let word = |b: u8| b.is_ascii_alphanumeric() || b == b'_';
    t.len() <= 128
        && t.as_bytes().first().is_some_and(|&b| word(b))
        && t.bytes().all(|b| word(b) || b == b'.' || b == b'-')
}

/// `algorithm:hex`; only sha256 is supported (the grammar allows others).
fn parse_digest(d: &str) -> std::result::Result<Digest, String> {
    let algorithm = d.split_once(':').map_or("", |(a, _)| a);
    if algorithm.is_empty() {
        return Err(format!("digest {d:?} must be <algorithm>:<hex>"));
    }
    if algorithm != "sha256" {
        return Err(format!(
            "digest algorithm {algorithm:?} is not supported (only sha256)"
        ));
    }
    Digest::parse(d).map_err(|_| format!("digest {d:?} must be sha256: and 64 lowercase hex"))
}

/// `host[:port]`: DNS name (components of letters, digits and inner '-'), IPv4, or `[IPv6]`.
fn check_host(host: &str) -> std::result::Result<(), String> {
    let (name, port) = if let Some(v6) = host.strip_prefix('[') {
        let (addr, after) = v6
            .split_once(']')
            .ok_or_else(|| format!("registry host {host:?} lacks the ']' of an IPv6 address"))?;
        if addr.parse::<Ipv6Addr>().is_err() {
            return Err(format!(
                "{addr:?} in registry host {host:?} is not an IPv6 address"
            ));
        }
        match after {
            "" => (None, None),
            _ => match after.strip_prefix(':') {
                Some(port) => (None, Some(port)),
                None => return Err(format!("registry host {host:?}: junk after ']'")),
            },
        }
    } else {
        match host.split_once(':') {
            Some((name, port)) => (Some(name), Some(port)),
            None => (Some(host), None),
        }
    };
    if let Some(port) = port {
        if port.is_empty() || !port.bytes().all(|b| b.is_ascii_digit()) {
            return Err(format!(
                "port {port:?} of registry host {host:?} is not a number"
            ));
        }
    }
    let component_ok = |c: &str| {
        let b = c.as_bytes();
        !b.is_empty()
            && b[0].is_ascii_alphanumeric()
            && b[b.len() - 1].is_ascii_alphanumeric()
            && b.iter().all(|&x| x.is_ascii_alphanumeric() || x == b'-')
    };
    match name {
        Some(name) if !name.split('.').all(component_ok) => Err(format!(
            "registry host {name:?} must be dot-separated letters, digits and inner '-'"
        )),
        _ => Ok(()),
    }
}

/// Path components: lowercase letters and digits, separated inside by '.', '_', '__' or
/// runs of '-'.
fn check_path(path: &str) -> std::result::Result<(), String> {
    for component in path.split('/') {
        if !valid_path_component(component) {
            return Err(format!(
                "repository path component {component:?} must be lowercase letters and digits, \
                 separated by '.', '_', '__' or '-'"
            ));
        }
    }
    Ok(())
}

fn valid_path_component(c: &str) -> bool {
    let alnum = |b: u8| b.is_ascii_lowercase() || b.is_ascii_digit();
    let b = c.as_bytes();
    if b.is_empty() || !alnum(b[0]) || !alnum(b[b.len() - 1]) {
        return false;
    }
    // Every run of non-alphanumerics must be one separator.
    c.split(|ch: char| ch.is_ascii_lowercase() || ch.is_ascii_digit())
        .filter(|sep| !sep.is_empty())
        .all(|sep| matches!(sep, "." | "_" | "__") || sep.bytes().all(|b| b == b'-'))
}

impl fmt::Display for RegistryRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.registry, self.repository)?;
        if let Some(t) = &self.tag {
            write!(f, ":{t}")?;
        }
        if let Some(d) = &self.digest {
            write!(f, "@{d}")?;
        }
        Ok(())
    }
}

impl ImageRef {
    pub fn parse(s: &str) -> Result<ImageRef> {
        match s.strip_prefix("oci:") {
            Some(rest) => parse_layout(s, rest),
            None => Ok(ImageRef::Registry(RegistryRef::parse(s)?)),
        }
    }

    /// A layout reference by tag.
    pub fn layout(dir: impl Into<PathBuf>, tag: Option<&str>) -> ImageRef {
        ImageRef::Layout {
            dir: dir.into(),
            tag: tag.map(String::from),
            digest: None,
        }
    }
}

/// As containers/image (skopeo) parses `oci:` references: the directory ends at the first
/// ':', the rest is the image name (`org.opencontainers.image.ref.name`), which may itself
/// hold ':' (`oci:/d:app:binary` → `/d`, `app:binary`). A trailing `@sha256:<hex>` selects
/// a manifest by digest (a relaunch extension: how `runImage.reference` names a layout image).
fn parse_layout(full: &str, rest: &str) -> Result<ImageRef> {
    let bad = |reason: String| Error::InvalidReference {
        reference: full.to_string(),
        reason,
    };
    let (rest, digest) = match rest.rsplit_once('@') {
        Some((before, d)) if looks_like_digest(d) => (before, Some(parse_digest(d).map_err(bad)?)),
        _ => (rest, None),
    };
    let (dir, name) = match rest.split_once(':') {
        Some((dir, name)) => (dir, Some(name)),
        None => (rest, None),
    };
    if dir.is_empty() {
        return Err(bad(
            "missing layout directory (oci:<dir>[:<name>][@<digest>])".into(),
        ));
    }
    let name = match name {
        Some(n) if n.starts_with('@') && n[1..].bytes().all(|b| b.is_ascii_digit()) => {
            return Err(bad(format!(
                "source index {n} (skopeo's oci:<dir>:@<index>) is not supported; name the image or its digest"
            )))
        }
        Some(n) if !valid_layout_image_name(n) => {
            return Err(bad(format!(
                "image name {n:?} must be '/'-separated components of letters and digits \
                 joined by one of - . _ : @ + or --"
            )))
        }
        // `oci:<dir>:` names no image, as with skopeo.
        Some("") | None => None,
        Some(n) => Some(n.to_string()),
    };
    Ok(ImageRef::Layout {
        dir: PathBuf::from(dir),
        tag: name,
        digest,
    })
}

/// An OCI `org.opencontainers.image.ref.name` as containers/image accepts it.
fn valid_layout_image_name(name: &str) -> bool {
    name.is_empty()
        || name.split('/').all(|component| {
            let b = component.as_bytes();
            let mut i = 0;
            while i < b.len() {
                let run = b[i..]
                    .iter()
                    .take_while(|c| c.is_ascii_alphanumeric())
                    .count();
                if run == 0 {
                    return false;
                }
                i += run;
                if i == b.len() {
                    return true;
                }
                // One separator between alphanumeric runs: - . _ : @ + or "--".
                i += match &b[i..] {
                    [b'-', b'-', ..] => 2,
                    [b'-' | b'.' | b'_' | b':' | b'@' | b'+', ..] => 1,
                    _ => return false,
                };
            }
            false // empty, or ends with a separator
        })
}

/// `<letters/digits>:<hex>`: meant as a digest, so parsed (and refused if bad) as one.
fn looks_like_digest(s: &str) -> bool {
    s.split_once(':').is_some_and(|(algorithm, hex)| {
        !algorithm.is_empty()
            && algorithm.bytes().all(|b| b.is_ascii_alphanumeric())
            && !hex.is_empty()
            && hex.bytes().all(|b| b.is_ascii_hexdigit())
    })
}

impl FromStr for ImageRef {
    type Err = Error;
    fn from_str(s: &str) -> Result<ImageRef> {
        ImageRef::parse(s)
    }
}

impl fmt::Display for ImageRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ImageRef::Layout { dir, tag, digest } => {
                write!(f, "oci:{}", dir.display())?;
                if let Some(t) = tag {
                    write!(f, ":{t}")?;
                }
                if let Some(d) = digest {
                    write!(f, "@{d}")?;
                }
                Ok(())
            }
            ImageRef::Registry(r) => r.fmt(f),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn reg(s: &str) -> RegistryRef {
        match ImageRef::parse(s).unwrap() {
            ImageRef::Registry(r) => r,
            other => panic!("{other:?}"),
        }
    }

    fn reason(s: &str) -> String {
        match ImageRef::parse(s) {
            Err(Error::InvalidReference { reason, .. }) => reason,
            other => panic!("{s}: {other:?}"),
        }
    }

    #[test]
    fn layout_refs() {
        assert_eq!(
            ImageRef::parse("oci:/tmp/x:v1").unwrap(),
            ImageRef::layout("/tmp/x", Some("v1"))
        );
        assert_eq!(
            ImageRef::parse("oci:rel/dir").unwrap(),
            ImageRef::layout("rel/dir", None)
        );
        assert!(ImageRef::parse("oci:").is_err());
        assert_eq!(
            ImageRef::parse("oci:/a:b/c").unwrap().to_string(),
            "oci:/a:b/c"
        );
    }

    /// As containers/image: the directory ends at the first ':'; the image name may hold ':'.
    #[test]
    fn layout_refs_split_at_the_first_colon() {
        let cases = [
            ("oci:/d:app:binary", "/d", Some("app:binary")),
            ("oci:/d:a/b:c", "/d", Some("a/b:c")),
            (
                "oci:/d:registry.io/app:v1.2-rc",
                "/d",
                Some("registry.io/app:v1.2-rc"),
            ),
            ("oci:/d:a--b+c@x", "/d", Some("a--b+c@x")),
            ("oci:rel:v1", "rel", Some("v1")),
            ("oci:/d:", "/d", None),
        ];
        for (input, dir, name) in cases {
            assert_eq!(
                ImageRef::parse(input).unwrap(),
                ImageRef::layout(dir, name),
                "{input}"
            );
        }
        let d = Digest::of(b"m");
        assert_eq!(
            ImageRef::parse(&format!("oci:/d:app:binary@{d}")).unwrap(),
            ImageRef::Layout {
                dir: "/d".into(),
                tag: Some("app:binary".into()),
                digest: Some(d.clone())
            }
        );
        for bad in [
            "oci:/d:-x",
            "oci:/d:a::b",
            "oci:/d:a/",
            "oci:/d:a b",
            "oci:/d:a---b",
        ] {
            assert!(reason(bad).contains("image name"), "{bad}");
        }
        assert!(reason("oci::x").contains("missing layout directory"));
        assert!(reason("oci:/d:@0").contains("source index @0"));
    }

    #[test]
    fn layout_refs_by_digest() {
        let d = Digest::of(b"m");
        let r = ImageRef::parse(&format!("oci:/l/app@{d}")).unwrap();
        assert_eq!(
            r,
            ImageRef::Layout {
                dir: "/l/app".into(),
                tag: None,
                digest: Some(d.clone())
            }
        );
        assert_eq!(r.to_string(), format!("oci:/l/app@{d}"));
        // '@' in a directory name without a digest after it stays part of the path.
        assert_eq!(
            ImageRef::parse("oci:/l/a@b:v1").unwrap(),
            ImageRef::layout("/l/a@b", Some("v1"))
        );
        assert!(reason("oci:/l/app@sha256:abc").contains("64 lowercase hex"));
        assert!(reason("oci:/l/app@sha512:abc").contains("\"sha512\" is not supported"));
        assert!(reason(&format!("oci:@{d}")).contains("missing layout directory"));
    }

    #[test]
    fn registry_refs() {
        let r = reg("busybox");
        assert_eq!(
            (r.registry.as_str(), r.repository.as_str()),
            ("docker.io", "library/busybox")
        );
        assert_eq!(r.manifest_ref(), ManifestRef::Tag("latest".into()));
        let r = reg("localhost:5000/a/b:v2");
        assert_eq!(r.registry, "localhost:5000");
        assert_eq!(r.repository, "a/b");
        assert_eq!(r.tag.as_deref(), Some("v2"));
        let d = Digest::of(b"x");
        let r = reg(&format!("127.0.0.1:5000/app:t@{d}"));
        assert_eq!(r.manifest_ref(), ManifestRef::Digest(d.clone()));
        assert_eq!(r.to_string(), format!("127.0.0.1:5000/app:t@{d}"));
        assert_eq!(reg("index.docker.io/foo/bar").registry, "docker.io");
        assert_eq!(
            reg("paketobuildpacks/run").repository,
            "paketobuildpacks/run"
        );
    }

    #[test]
    fn distribution_grammar_is_accepted() {
        let r = reg("[::1]:5000/team/app:v1");
        assert_eq!(
            (r.registry.as_str(), r.repository.as_str()),
            ("[::1]:5000", "team/app")
        );
        assert_eq!(reg("[fe80::1]/app").registry, "[fe80::1]");
        assert_eq!(
            reg("my-registry.example.com/app").registry,
            "my-registry.example.com"
        );
        for path in ["a.b", "a_b", "a__b", "a-b", "a---b", "a1/b2.c_d__e-f"] {
            assert_eq!(reg(&format!("host.io/{path}")).repository, path);
        }
        assert_eq!(reg("a:_x").tag.as_deref(), Some("_x"));
        assert_eq!(
            reg(&format!("a:{}", "t".repeat(128))).tag.unwrap().len(),
            128
        );
    }

    #[test]
    fn grammar_errors_name_the_bad_part() {
        let cases = [
            ("UPPER/case", "path component \"UPPER\""),
            ("host:5000/", "path component \"\""),
            ("host.io/a//b", "path component \"\""),
            ("host.io/a___b", "path component \"a___b\""),
            ("host.io/a._b", "path component \"a._b\""),
            ("host.io/-a", "path component \"-a\""),
            ("host.io/a-", "path component \"a-\""),
            ("a:b:c/d:!", "registry host \"a:b:c\""),
            ("host.io:x/app", "port \"x\""),
            ("host.io:/app", "port \"\""),
            ("-host.io/app", "registry host \"-host.io\""),
            ("ho_st.io/app", "registry host \"ho_st.io\""),
            ("[::1/app", "lacks the ']'"),
            ("[zz::1]:5000/app", "not an IPv6 address"),
            ("[::1]x/app", "junk after ']'"),
            ("app:.v1", "tag \".v1\""),
            ("app:-v1", "tag \"-v1\""),
            ("app:v!", "tag \"v!\""),
            ("app:", "tag \"\""),
            ("a@sha256:zz", "digest \"sha256:zz\""),
            ("a@md5:00", "\"md5\" is not supported"),
            ("a@nocolon", "<algorithm>:<hex>"),
            (":tag", "missing repository name"),
        ];
        for (input, expected) in cases {
            let why = reason(input);
            assert!(why.contains(expected), "{input}: {why}");
        }
        let long = format!("host.io/{}", "a".repeat(250));
        assert!(reason(&long).contains("more than 255"));
        assert!(reason(&format!("a:{}", "t".repeat(129))).contains("tag"));
    }
}
