//! Image references: `oci:<dir>[:<tag>]` (OCI image layout) or a registry reference
//! `[host[:port]/]repo[:tag][@digest]` with Docker Hub defaults.

use std::fmt;
use std::path::PathBuf;
use std::str::FromStr;

use crate::digest::Digest;
use crate::error::{Error, Result};
use crate::transport::ManifestRef;

pub const DOCKER_HUB: &str = "docker.io";
pub const DEFAULT_TAG: &str = "latest";

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ImageRef {
    /// OCI image layout directory; `tag` selects via `org.opencontainers.image.ref.name`.
    Layout {
        dir: PathBuf,
        tag: Option<String>,
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

    /// Same repository, other manifest (e.g. a digest reference for `runImage.reference`).
    pub fn with_digest(&self, digest: Digest) -> RegistryRef {
        RegistryRef {
            digest: Some(digest),
            tag: None,
            ..self.clone()
        }
    }

    fn parse(s: &str) -> Result<RegistryRef> {
        let bad = |reason: &str| Error::InvalidReference {
            reference: s.to_string(),
            reason: reason.to_string(),
        };
        let (rest, digest) = match s.split_once('@') {
            Some((r, d)) => (r, Some(Digest::parse(d)?)),
            None => (s, None),
        };
        // A tag is after the last ':' only if no '/' follows it (else it is a port).
        let (name, tag) = match rest.rfind(':') {
            Some(i) if !rest[i + 1..].contains('/') => (&rest[..i], Some(&rest[i + 1..])),
            _ => (rest, None),
        };
        let (registry, repository) = match name.split_once('/') {
            Some((first, path))
                if first.contains('.') || first.contains(':') || first == "localhost" =>
            {
                (first.to_string(), path.to_string())
            }
            _ => (DOCKER_HUB.to_string(), name.to_string()),
        };
        let registry = match registry.as_str() {
            "index.docker.io" | "registry-1.docker.io" => DOCKER_HUB.to_string(),
            _ => registry,
        };
        let repository = if registry == DOCKER_HUB && !repository.contains('/') {
            format!("library/{repository}")
        } else {
            repository
        };
        if repository.is_empty() {
            return Err(bad("missing repository name"));
        }
        let repo_ok = repository.split('/').all(|c| {
            !c.is_empty()
                && c.bytes().all(|b| {
                    b.is_ascii_lowercase() || b.is_ascii_digit() || matches!(b, b'.' | b'_' | b'-')
                })
                && c.as_bytes()[0].is_ascii_alphanumeric()
        });
        if !repo_ok {
            return Err(bad(
                "repository must be lowercase letters, digits and separators ._-/",
            ));
        }
        if let Some(t) = tag {
            if !valid_tag(t) {
                return Err(bad("tag must match [A-Za-z0-9_][A-Za-z0-9_.-]{0,127}"));
            }
        }
        Ok(RegistryRef {
            registry,
            repository,
            tag: tag.map(String::from),
            digest,
        })
    }
}

pub fn valid_tag(t: &str) -> bool {
    !t.is_empty()
        && t.len() <= 128
        && (t.as_bytes()[0].is_ascii_alphanumeric() || t.as_bytes()[0] == b'_')
        && t.bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'.' | b'-'))
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
}

fn parse_layout(full: &str, rest: &str) -> Result<ImageRef> {
    // The tag follows the last ':' when what follows is a valid tag (paths may hold ':').
    let (dir, tag) = match rest.rfind(':') {
        Some(i) if valid_tag(&rest[i + 1..]) => (&rest[..i], Some(rest[i + 1..].to_string())),
        _ => (rest, None),
    };
    if dir.is_empty() {
        return Err(Error::InvalidReference {
            reference: full.to_string(),
            reason: "missing layout directory (oci:<dir>[:<tag>])".into(),
        });
    }
    Ok(ImageRef::Layout {
        dir: PathBuf::from(dir),
        tag,
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
            ImageRef::Layout { dir, tag } => {
                write!(f, "oci:{}", dir.display())?;
                if let Some(t) = tag {
                    write!(f, ":{t}")?;
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

    #[test]
    fn layout_refs() {
        assert_eq!(
            ImageRef::parse("oci:/tmp/x:v1").unwrap(),
            ImageRef::Layout {
                dir: "/tmp/x".into(),
                tag: Some("v1".into())
            }
        );
        assert_eq!(
            ImageRef::parse("oci:rel/dir").unwrap(),
            ImageRef::Layout {
                dir: "rel/dir".into(),
                tag: None
            }
        );
        assert!(ImageRef::parse("oci:").is_err());
        assert_eq!(
            ImageRef::parse("oci:/a:b/c").unwrap().to_string(),
            "oci:/a:b/c"
        );
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
        for bad in ["UPPER/case", "host:5000/", "a@sha256:zz", "a:b:c/d:!"] {
            assert!(ImageRef::parse(bad).is_err(), "{bad}");
        }
    }
}
