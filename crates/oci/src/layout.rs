//! OCI image layout directories (`oci:<dir>[:<tag>|@<digest>]`). Tags are index.json entries
//! annotated with `org.opencontainers.image.ref.name`. Writes are atomic: blobs go to a temp
//! file in the blob directory and are renamed into place once verified; index.json is
//! replaced by rename, last, under an advisory lock on the directory so that concurrent
//! writers (other processes included) never lose each other's tags.

use std::fs::{self, File};
use std::io::{self, BufReader, Read, Write};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use serde_json::Value;

use crate::digest::{check_digest, Digest, VerifyingReader};
use crate::error::{Error, Result};
use crate::transport::{BlobReader, Location, ManifestRef, Mount, RawManifest, Transport};
use crate::v1::{media_type, to_canonical_json, Descriptor, Index};

const REF_NAME: &str = "org.opencontainers.image.ref.name";
const LAYOUT_FILE: &str = "oci-layout";
const LAYOUT_CONTENT: &[u8] = br#"{"imageLayoutVersion":"1.0.0"}"#;

#[derive(Debug)]
pub struct Layout {
    dir: PathBuf,
}

impl Layout {
    /// Opens an existing layout.
    pub fn open(dir: impl Into<PathBuf>) -> Result<Layout> {
        let dir = dir.into();
        let marker = dir.join(LAYOUT_FILE);
        if !marker.is_file() {
            return Err(Error::NotFound {
                what: "OCI layout (oci-layout file)".into(),
                location: dir.display().to_string(),
            });
        }
        Ok(Layout { dir })
    }

    /// Opens a layout, creating an empty one (directory, oci-layout, index.json) if absent.
    pub fn create(dir: impl Into<PathBuf>) -> Result<Layout> {
        let dir = dir.into();
        if !dir.join(LAYOUT_FILE).is_file() {
            let ctx = |what: &str| format!("creating OCI layout {}: {what}", dir.display());
            fs::create_dir_all(dir.join("blobs/sha256")).map_err(|e| Error::io(ctx("blobs"), e))?;
            // Another process may be creating (and already tagging into) it right now.
            let _lock = lock_dir(&dir)?;
            if !dir.join("index.json").exists() {
                write_atomic(
                    &dir,
                    &dir.join("index.json"),
                    &to_canonical_json(&Index::empty_oci()),
                )?;
            }
            write_atomic(&dir, &dir.join(LAYOUT_FILE), LAYOUT_CONTENT)?;
        }
        Layout::open(dir)
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

    pub fn index(&self) -> Result<Index> {
        let path = self.dir.join("index.json");
        let bytes =
            fs::read(&path).map_err(|e| Error::io(format!("reading {}", path.display()), e))?;
        serde_json::from_slice(&bytes).map_err(|e| Error::json(path.display().to_string(), e))
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
            Some(t) => index
                .manifests
                .into_iter()
                .find(|d| d.annotation(REF_NAME) == Some(t))
                .ok_or_else(|| not_found(format!("tag {t:?}"))),
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

    /// A failed read of `what` at `path`: absent → `NotFound` in this layout.
    fn read_error(&self, e: io::Error, what: String, path: &Path) -> Error {
        match e.kind() {
            io::ErrorKind::NotFound => Error::NotFound {
                what,
                location: format!("oci:{}", self.dir.display()),
            },
            _ => Error::io(format!("reading {}", path.display()), e),
        }
    }

    fn write_blob_bytes(&self, digest: &Digest, bytes: &[u8]) -> Result<()> {
        if self.blob_path(digest).is_file() {
            return Ok(());
        }
        self.put_blob(digest, bytes.len() as u64, &mut &bytes[..])
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
                (d.digest, Some(d.media_type))
            }
            ManifestRef::Digest(d) => (d.clone(), None),
        };
        let path = self.blob_path(&digest);
        let bytes =
            fs::read(&path).map_err(|e| self.read_error(e, format!("manifest {digest}"), &path))?;
        crate::digest::verify_bytes(
            &bytes,
            &digest,
            &format!("manifest blob {}", path.display()),
        )?;
        let fallback = declared.unwrap_or_else(|| media_type::OCI_MANIFEST.into());
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

    fn open_blob(&self, digest: &Digest) -> Result<BlobReader<'_>> {
        let path = self.blob_path(digest);
        let f =
            File::open(&path).map_err(|e| self.read_error(e, format!("blob {digest}"), &path))?;
        Ok(Box::new(BufReader::new(f)))
    }

    fn put_blob(&self, digest: &Digest, size: u64, data: &mut dyn Read) -> Result<()> {
        let final_path = self.blob_path(digest);
        let parent = self.blob_dir(digest);
        let ctx = || format!("writing blob {digest} to oci:{}", self.dir.display());
        fs::create_dir_all(&parent).map_err(|e| Error::io(ctx(), e))?;
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
        if self.blob_size(digest)? == Some(size) {
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
