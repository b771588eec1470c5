//! OCI image layout directories (`oci:<dir>[:<tag>|@<digest>]`). Tags are index.json entries
//! annotated with `org.opencontainers.image.ref.name`. Writes are atomic: blobs go to a temp
//! file in the blob directory and are renamed into place once verified; index.json is
//! replaced by rename, last, under an advisory lock on the directory so that concurrent
//! writers (other processes included) never lose each other's tags.
//!
//! A layout is hostile input: `oci-layout` and `index.json` are validated, every file is
//! read through [`crate::local`] (regular files only, bounded), a blob already present is
//! verified before it is reused, and writes never go through a symlinked `blobs/` directory.

use std::fs::{self, File};
use std::io::{self, BufReader, Read, Write};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use serde_json::Value;
use tracing::warn;

use crate::digest::{check_digest, Digest, VerifyingReader};
use crate::error::{Error, Result};
use crate::local::{open_regular, read_bounded, read_open_bounded};
use crate::transport::{BlobReader, Location, ManifestRef, Mount, RawManifest, Transport};
use crate::v1::{media_type, to_canonical_json, Descriptor, Index};

const REF_NAME: &str = "org.opencontainers.image.ref.name";
const LAYOUT_FILE: &str = "oci-layout";
const LAYOUT_VERSION: &str = "1.0.0";
const LAYOUT_CONTENT: &[u8] = br#"{"imageLayoutVersion":"1.0.0"}"#;
/// Largest `oci-layout` file read (it holds one short JSON object).
const MAX_LAYOUT_FILE_SIZE: u64 = 4 << 10;
/// Largest index.json read: some 50,000 tagged manifests.
pub const MAX_INDEX_SIZE: u64 = 16 << 20;
/// Largest manifest read when no descriptor gives its size (by digest), as for registries.
pub const MAX_MANIFEST_SIZE: u64 = 8 << 20;

#[derive(Debug)]
pub struct Layout {
    dir: PathBuf,
}

impl Layout {
    /// Opens an existing layout; its `oci-layout` must say version 1.0.0.
    pub fn open(dir: impl Into<PathBuf>) -> Result<Layout> {
        let layout = Layout { dir: dir.into() };
        let marker = layout.dir.join(LAYOUT_FILE);
        let bytes = read_bounded(&marker, MAX_LAYOUT_FILE_SIZE, &marker.display().to_string())
            .map_err(|e| match e.is_missing_file() {
                true => Error::NotFound {
                    what: "OCI layout (oci-layout file)".into(),
                    location: layout.dir.display().to_string(),
                },
                false => e,
            })?;
        let version = serde_json::from_slice::<Value>(&bytes)
            .map_err(|e| Error::json(marker.display().to_string(), e))?
            .get("imageLayoutVersion")
            .cloned();
        if version.as_ref().and_then(Value::as_str) != Some(LAYOUT_VERSION) {
            return Err(Error::invalid(
                format!("OCI layout {}", layout.dir.display()),
                format!(
                    "oci-layout has imageLayoutVersion {}, not \"{LAYOUT_VERSION}\"",
                    version.map_or("(none)".into(), |v| v.to_string())
                ),
            ));
        }
        Ok(layout)
    }

    /// Opens a layout, creating an empty one (directory, oci-layout, index.json) if absent.
    pub fn create(dir: impl Into<PathBuf>) -> Result<Layout> {
        let layout = Layout { dir: dir.into() };
        let dir = &layout.dir;
        if fs::symlink_metadata(dir.join(LAYOUT_FILE)).is_err() {
            let ctx = |what: &str| format!("creating OCI layout {}: {what}", dir.display());
            fs::create_dir_all(dir).map_err(|e| Error::io(ctx("directory"), e))?;
            layout.writable_blob_dir("sha256")?;
            // Another process may be creating (and already tagging into) it right now.
            let _lock = lock_dir(dir)?;
            if !dir.join("index.json").exists() {
                write_atomic(
                    dir,
                    &dir.join("index.json"),
                    &to_canonical_json(&Index::empty_oci()),
                )?;
            }
            write_atomic(dir, &dir.join(LAYOUT_FILE), LAYOUT_CONTENT)?;
        }
        Layout::open(layout.dir)
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    pub fn blob_path(&self, digest: &Digest) -> PathBuf {
        self.blob_dir(digest).join(digest.hex())
    }

    fn blob_dir(&self, digest: &Digest) -> PathBuf {
        self.dir.join("blobs").join(digest.algorithm())
    }

    /// index.json, which must be an image index of schemaVersion 2.
    pub fn index(&self) -> Result<Index> {
        let path = self.dir.join("index.json");
        let what = path.display().to_string();
        let bytes = read_bounded(&path, MAX_INDEX_SIZE, &what)?;
        let index: Index = serde_json::from_slice(&bytes).map_err(|e| Error::json(&what, e))?;
        if index.schema_version != 2 {
            return Err(Error::invalid(
                what,
                format!("schemaVersion is {}, not 2", index.schema_version),
            ));
        }
        Ok(index)
    }

    /// Tags (ref names) in index.json order.
    pub fn tags(&self) -> Result<Vec<String>> {
        Ok(self
            .index()?
            .manifests
            .iter()
            .filter_map(|d| d.annotation(REF_NAME).map(String::from))
            .collect())
    }

    /// The descriptor for `tag`, or, without a tag, the only manifest in index.json.
    pub fn resolve(&self, tag: Option<&str>) -> Result<Descriptor> {
        let index = self.index()?;
        let not_found = |what: String| Error::NotFound {
            what,
            location: format!("oci:{}", self.dir.display()),
        };
        match tag {
            Some(t) => {
                let mut named = index
                    .manifests
                    .into_iter()
                    .filter(|d| d.annotation(REF_NAME) == Some(t));
                let first = named
                    .next()
                    .ok_or_else(|| not_found(format!("tag {t:?}")))?;
                match named.find(|d| d.digest != first.digest) {
                    None => Ok(first),
                    Some(other) => Err(Error::invalid(
                        format!("oci:{}", self.dir.display()),
                        format!(
                            "index.json names two manifests {t:?}: {} and {}",
                            first.digest, other.digest
                        ),
                    )),
                }
            }
            None => match <[Descriptor; 1]>::try_from(index.manifests) {
                Ok([only]) => Ok(only),
                Err(manifests) if manifests.is_empty() => Err(not_found("any manifest".into())),
                Err(manifests) => {
                    let n = manifests.len();
                    let tags: Vec<&str> = manifests
                        .iter()
                        .filter_map(|d| d.annotation(REF_NAME))
                        .collect();
                    Err(Error::invalid(
                        format!("oci:{}", self.dir.display()),
                        format!("index.json lists {n} manifests (tags: {}); name one with oci:<dir>:<tag>", tags.join(", ")),
                    ))
                }
            },
        }
    }

    /// A failed read of `what`: a missing file → `NotFound` in this layout.
    fn absent_as_not_found(&self, e: Error, what: String) -> Error {
        match e.is_missing_file() {
            true => Error::NotFound {
                what,
                location: format!("oci:{}", self.dir.display()),
            },
            false => e,
        }
    }

    fn write_blob_bytes(&self, digest: &Digest, bytes: &[u8]) -> Result<()> {
        if self.has_blob(digest, bytes.len() as u64)? {
            return Ok(());
        }
        self.put_blob(digest, bytes.len() as u64, &mut &bytes[..])
    }

    /// `blobs/<algorithm>`, created if missing; neither it nor `blobs` may be a symlink or
    /// anything but a directory, so that no write lands outside the layout.
    fn writable_blob_dir(&self, algorithm: &str) -> Result<PathBuf> {
        let mut dir = self.dir.clone();
        for part in ["blobs", algorithm] {
            dir.push(part);
            let ctx = || format!("writing to oci:{}", self.dir.display());
            match fs::symlink_metadata(&dir) {
                Ok(m) if m.is_dir() => {}
                Ok(m) => {
                    let kind = match m.file_type().is_symlink() {
                        true => "a symlink",
                        false => "not a directory",
                    };
                    return Err(Error::invalid(
                        format!("OCI layout {}", self.dir.display()),
                        format!(
                            "{} is {kind}; refusing to write blobs outside the layout",
                            dir.display()
                        ),
                    ));
                }
                Err(e) if e.kind() == io::ErrorKind::NotFound => match fs::create_dir(&dir) {
                    Err(e) if e.kind() != io::ErrorKind::AlreadyExists => {
                        return Err(Error::io(ctx(), e))
                    }
                    // Created (by us or a concurrent writer): check the whole path again.
                    _ => return self.writable_blob_dir(algorithm),
                },
                Err(e) => return Err(Error::io(ctx(), e)),
            }
        }
        Ok(dir)
    }

    fn set_tag(&self, tag: &str, desc: &Descriptor) -> Result<()> {
        let _lock = lock_dir(&self.dir)?;
        let mut index = self.index()?;
        index
            .manifests
            .retain(|d| d.annotation(REF_NAME) != Some(tag));
        let mut desc = desc.clone();
        let mut ann = desc.annotations.take().unwrap_or_default();
        ann.insert(REF_NAME.into(), Value::String(tag.into()));
        desc.annotations = Some(ann);
        index.manifests.push(desc);
        write_atomic(
            &self.dir,
            &self.dir.join("index.json"),
            &to_canonical_json(&index),
        )
    }
}

impl Transport for Layout {
    fn location(&self) -> Location {
        Location::Layout {
            dir: self.dir.clone(),
        }
    }

    fn get_manifest(&self, reference: &ManifestRef) -> Result<RawManifest> {
        let (digest, declared) = match reference {
            ManifestRef::Tag(t) => {
                let d = self.resolve(Some(t))?;
                (d.digest.clone(), Some(d))
            }
            ManifestRef::Digest(d) => (d.clone(), None),
        };
        let path = self.blob_path(&digest);
        let what = format!("manifest blob {}", path.display());
        digest.check_verifiable(&what)?;
        let absent = |e| self.absent_as_not_found(e, format!("manifest {digest}"));
        let (file, meta) = open_regular(&path, &what).map_err(absent)?;
        // The descriptor's size is the bound; without one, the general manifest cap.
        let bytes = match &declared {
            Some(d) if meta.len() != d.size => {
                return Err(Error::SizeMismatch {
                    what,
                    expected: d.size,
                    actual: meta.len(),
                })
            }
            Some(d) => read_open_bounded(file, meta.len(), d.size, &what)?,
            None => read_open_bounded(file, meta.len(), MAX_MANIFEST_SIZE, &what)?,
        };
        crate::digest::verify_bytes(&bytes, &digest, &what)?;
        let fallback = declared.map_or_else(|| media_type::OCI_MANIFEST.into(), |d| d.media_type);
        Ok(RawManifest::new(bytes, &fallback))
    }

    fn put_manifest(&self, reference: &ManifestRef, manifest: &RawManifest) -> Result<()> {
        let digest = manifest.digest();
        self.write_blob_bytes(&digest, &manifest.bytes)?;
        match reference {
            ManifestRef::Digest(d) => check_digest(d, &digest, "manifest to store"),
            ManifestRef::Tag(t) => self.set_tag(t, &manifest.descriptor()),
        }
    }

    fn blob_size(&self, digest: &Digest) -> Result<Option<u64>> {
        match fs::metadata(self.blob_path(digest)) {
            Ok(m) if m.is_file() => Ok(Some(m.len())),
            Ok(_) => Ok(None),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(Error::io(format!("checking blob {digest}"), e)),
        }
    }

    /// Present with the right size and content: a corrupt copy is not reused (the caller
    /// writes it again, replacing it).
    fn has_blob(&self, digest: &Digest, size: u64) -> Result<bool> {
        if self.blob_size(digest)? != Some(size) {
            return Ok(false);
        }
        let mut verified = self.open_blob_verified(digest, size)?;
        match io::copy(&mut verified, &mut io::sink()) {
            Ok(_) => Ok(true),
            Err(e) => {
                let e = Error::io(format!("checking blob {digest}"), e);
                if !matches!(e, Error::DigestMismatch { .. }) {
                    return Err(e);
                }
                warn!("{e}; writing it again");
                Ok(false)
            }
        }
    }

    fn open_blob(&self, digest: &Digest) -> Result<BlobReader<'_>> {
        let path = self.blob_path(digest);
        let (file, _) = open_regular(&path, &format!("blob {}", path.display()))
            .map_err(|e| self.absent_as_not_found(e, format!("blob {digest}")))?;
        Ok(Box::new(BufReader::new(file)))
    }

    fn put_blob(&self, digest: &Digest, size: u64, data: &mut dyn Read) -> Result<()> {
        let final_path = self.blob_path(digest);
        let parent = self.writable_blob_dir(digest.algorithm())?;
        let ctx = || format!("writing blob {digest} to oci:{}", self.dir.display());
        let tmp = tempfile::Builder::new()
            .prefix(".tmp-")
            .tempfile_in(&parent)
            .map_err(|e| Error::io(ctx(), e))?;
        let mut verified =
            VerifyingReader::new(data, digest.clone(), size, format!("blob {digest}"));
        let mut out = io::BufWriter::new(tmp);
        io::copy(&mut verified, &mut out).map_err(|e| Error::io(ctx(), e))?;
        let tmp = out
            .into_inner()
            .map_err(|e| Error::io(ctx(), e.into_error()))?;
        // Blobs are content, readable by anyone who can read the layout (tempfile uses 0600).
        fs::set_permissions(tmp.path(), fs::Permissions::from_mode(0o644))
            .map_err(|e| Error::io(ctx(), e))?;
        tmp.as_file().sync_all().map_err(|e| Error::io(ctx(), e))?;
        tmp.persist(&final_path)
            .map_err(|e| Error::io(ctx(), e.error))?;
        Ok(())
    }

    fn mount_blob(&self, digest: &Digest, size: u64, from: &Location) -> Result<Mount> {
        let Location::Layout { dir } = from else {
            return Ok(Mount::Unsupported);
        };
        if self.has_blob(digest, size)? {
            return Ok(Mount::Present);
        }
        let other = Layout::open(dir.clone())?;
        if other.blob_size(digest)?.is_none() {
            return Ok(Mount::Unsupported);
        }
        let mut src = other.open_blob(digest)?;
        self.put_blob(digest, size, &mut src)?;
        Ok(Mount::Mounted)
    }
}

/// Takes an exclusive advisory lock (flock) on the layout directory, held until the
/// returned handle drops. The directory, unlike index.json, is never replaced, so every
/// writer locks the same inode; flock also excludes other handles within this process.
fn lock_dir(dir: &Path) -> Result<File> {
    let ctx = || format!("locking OCI layout {}", dir.display());
    let handle = File::open(dir).map_err(|e| Error::io(ctx(), e))?;
    handle.lock().map_err(|e| Error::io(ctx(), e))?;
    Ok(handle)
}

/// Writes `bytes` to `path` via a temp file in `dir` + rename, so readers see old or new.
fn write_atomic(dir: &Path, path: &Path, bytes: &[u8]) -> Result<()> {
    let ctx = || format!("writing {}", path.display());
    let mut tmp = tempfile::Builder::new()
        .prefix(".tmp-")
        .tempfile_in(dir)
        .map_err(|e| Error::io(ctx(), e))?;
    tmp.write_all(bytes).map_err(|e| Error::io(ctx(), e))?;
    fs::set_permissions(tmp.path(), fs::Permissions::from_mode(0o644))
        .map_err(|e| Error::io(ctx(), e))?;
    tmp.as_file().sync_all().map_err(|e| Error::io(ctx(), e))?;
    tmp.persist(path).map_err(|e| Error::io(ctx(), e.error))?;
    Ok(())
}
