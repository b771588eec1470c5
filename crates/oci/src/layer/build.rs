//! Deterministic layer builder: same entries → same tar, same gzip, same digests.
//! mtime 1980-01-01T00:00:01Z, uid/gid 0 unless set, modes kept, absolute entry names
//! without trailing slash (as the reference lifecycle writes them). The diffID and the
//! compressed digest are computed in the same pass that writes the blob.

use std::fs::{self, File};
use std::io::{self, Write};
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use flate2::{write::GzEncoder, Compression, GzBuilder};

use super::tar::{self, Header, Kind};
use crate::digest::{Digest, HashingWriter};
use crate::error::{Error, Result};
use crate::image::{BlobSource, Layer};
use crate::v1::{media_type, Descriptor};

/// 1980-01-01T00:00:01Z, the lifecycle's normalised timestamp.
pub const NORMALIZED_MTIME: u64 = 315_532_801;
pub const NORMALIZED_TIME: &str = "1980-01-01T00:00:01Z";
/// Fixed so output never depends on a default that could change; 1 (best speed, as
/// go-containerregistry's default) builds ~3.5× faster than 6 for a few % size.
const GZIP_LEVEL: u32 = 1;
/// New blobs above this size go to a temporary file instead of memory.
const SPILL_THRESHOLD: usize = 8 << 20;

#[derive(Debug, Clone)]
pub enum Content {
    Dir,
    Bytes(Vec<u8>),
    /// A file read at build time (its size is re-checked then).
    Path(PathBuf),
    Symlink(String),
}

#[derive(Debug, Clone)]
pub struct Entry {
    /// Name inside the layer, e.g. `/cnb/lifecycle/launcher`.
    pub path: String,
    pub mode: u32,
    pub uid: u64,
    pub gid: u64,
    pub content: Content,
}

impl Entry {
    pub fn dir(path: impl Into<String>, mode: u32) -> Entry {
        Entry::new(path, mode, Content::Dir)
    }
    pub fn file(path: impl Into<String>, mode: u32, bytes: impl Into<Vec<u8>>) -> Entry {
        Entry::new(path, mode, Content::Bytes(bytes.into()))
    }
    pub fn file_from(path: impl Into<String>, mode: u32, source: impl Into<PathBuf>) -> Entry {
        Entry::new(path, mode, Content::Path(source.into()))
    }
    pub fn symlink(path: impl Into<String>, target: impl Into<String>) -> Entry {
        Entry::new(path, 0o755, Content::Symlink(target.into()))
    }
    pub fn owned_by(mut self, uid: u64, gid: u64) -> Entry {
        self.uid = uid;
        self.gid = gid;
        self
    }
    fn new(path: impl Into<String>, mode: u32, content: Content) -> Entry {
        Entry {
            path: path.into(),
            mode: mode & 0o7777,
            uid: 0,
            gid: 0,
            content,
        }
    }
}

/// Collects entries in the order given (callers that need parity with the lifecycle order
/// entries as it does; directory trees are walked in sorted order).
#[derive(Debug, Clone, Default)]
pub struct LayerBuilder {
    entries: Vec<Entry>,
}

impl LayerBuilder {
    pub fn new() -> LayerBuilder {
        LayerBuilder::default()
    }

    pub fn entry(mut self, entry: Entry) -> LayerBuilder {
        self.entries.push(entry);
        self
    }

    pub fn entries(&self) -> &[Entry] {
        &self.entries
    }

    /// Adds `src` as `dest` and everything below it, depth first in byte order of names,
    /// with modes from the filesystem and owner 0:0 (see [`Entry::owned_by`] for others).
    pub fn dir_tree(mut self, src: &Path, dest: &str) -> Result<LayerBuilder> {
        walk(src, dest.trim_end_matches('/'), &mut self.entries)?;
        Ok(self)
    }

    /// The layer's diffID (sha256 of the tar) without compressing or keeping anything:
    /// enough to tell whether an existing layer can be reused instead.
    pub fn diff_id(&self) -> Result<Digest> {
        let mut tar_out = HashingWriter::new(io::sink());
        for e in &self.entries {
            write_entry(&mut tar_out, e)
                .map_err(|err| Error::io(format!("adding {} to layer", e.path), err))?;
        }
        tar::write_trailer(&mut tar_out).map_err(|e| Error::io("finishing layer", e))?;
        Ok(tar_out.finish().1)
    }

    /// Writes the tar + gzip blob and returns the layer (OCI gzip media type).
    pub fn build(&self) -> Result<Layer> {
        let sink = HashingWriter::new(Spill::default());
        let gz = GzBuilder::new()
            .mtime(0)
            .write(sink, Compression::new(GZIP_LEVEL));
        let mut tar_out = HashingWriter::new(gz);
        for e in &self.entries {
            write_entry(&mut tar_out, e)
                .map_err(|err| Error::io(format!("adding {} to layer", e.path), err))?;
        }
        let ctx = |e| Error::io("finishing layer", e);
        tar::write_trailer(&mut tar_out).map_err(ctx)?;
        let (gz, diff_id, _): (GzEncoder<_>, Digest, u64) = tar_out.finish();
        let (spill, digest, size) = gz.finish().map_err(ctx)?.finish();
        let source = spill.into_source().map_err(ctx)?;
        Ok(Layer {
            descriptor: Descriptor::new(media_type::OCI_LAYER_GZIP, digest, size),
            diff_id,
            source,
        })
    }
}

fn write_entry(out: &mut impl Write, e: &Entry) -> io::Result<()> {
    let (kind, size, link) = match &e.content {
        Content::Dir => (Kind::Dir, 0, ""),
        Content::Bytes(b) => (Kind::File, b.len() as u64, ""),
        Content::Path(p) => (Kind::File, fs::metadata(p)?.len(), ""),
        Content::Symlink(t) => (Kind::Symlink, 0, t.as_str()),
    };
    tar::write_header(
        out,
        &Header {
            name: &e.path,
            kind,
            mode: e.mode,
            uid: e.uid,
            gid: e.gid,
            size,
            mtime: NORMALIZED_MTIME,
            link,
        },
    )?;
    match &e.content {
        Content::Bytes(b) => out.write_all(b)?,
        Content::Path(p) => {
            let copied = io::copy(&mut File::open(p)?.take(size), out)?;
            if copied != size {
                return Err(io::Error::other(format!(
                    "{} changed size while being read",
                    p.display()
                )));
            }
        }
        Content::Dir | Content::Symlink(_) => {}
    }
    tar::pad(out, size)
}

use std::io::Read as _;

fn walk(src: &Path, dest: &str, out: &mut Vec<Entry>) -> Result<()> {
    let meta = fs::symlink_metadata(src)
        .map_err(|e| Error::io(format!("reading {}", src.display()), e))?;
    let mode = meta.permissions().mode();
    let ft = meta.file_type();
    if ft.is_dir() {
        out.push(Entry::dir(dest, mode));
        let mut children: Vec<_> = fs::read_dir(src)
            .map_err(|e| Error::io(format!("listing {}", src.display()), e))?
            .map(|r| r.map(|d| d.file_name()))
            .collect::<io::Result<_>>()
            .map_err(|e| Error::io(format!("listing {}", src.display()), e))?;
        children.sort();
        for name in children {
            let name_str = name.to_str().ok_or_else(|| {
                Error::invalid(
                    format!("file name {:?} in {}", name, src.display()),
                    "not UTF-8",
                )
            })?;
            walk(&src.join(&name), &format!("{dest}/{name_str}"), out)?;
        }
    } else if ft.is_file() {
        out.push(Entry::file_from(dest, mode, src));
    } else if ft.is_symlink() {
        let target = fs::read_link(src)
            .map_err(|e| Error::io(format!("reading link {}", src.display()), e))?;
        let target = target.to_str().ok_or_else(|| {
            Error::invalid(format!("link {}", src.display()), "target is not UTF-8")
        })?;
        // The link's own mode (0777 on Linux), as Go's tar.FileInfoHeader records it.
        out.push(Entry::new(dest, mode, Content::Symlink(target.into())));
    } else {
        return Err(Error::invalid(
            format!("{} (mode {:o})", src.display(), meta.mode()),
            "only directories, regular files and symlinks can go in a layer",
        ));
    }
    Ok(())
}

/// Memory buffer that moves to a temporary file past [`SPILL_THRESHOLD`].
#[derive(Default)]
struct Spill {
    mem: Vec<u8>,
    file: Option<io::BufWriter<tempfile::NamedTempFile>>,
}

impl Write for Spill {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        if self.file.is_none() && self.mem.len() + buf.len() > SPILL_THRESHOLD {
            let mut f = io::BufWriter::new(tempfile::NamedTempFile::new()?);
            f.write_all(&std::mem::take(&mut self.mem))?;
            self.file = Some(f);
        }
        match &mut self.file {
            Some(f) => f.write(buf),
            None => {
                self.mem.extend_from_slice(buf);
                Ok(buf.len())
            }
        }
    }
    fn flush(&mut self) -> io::Result<()> {
        self.file.as_mut().map_or(Ok(()), |f| f.flush())
    }
}

impl Spill {
    fn into_source(self) -> io::Result<BlobSource> {
        match self.file {
            None => Ok(BlobSource::Memory(Arc::new(self.mem))),
            Some(f) => {
                let f = f.into_inner().map_err(|e| e.into_error())?;
                Ok(BlobSource::File(Arc::new(f.into_temp_path())))
            }
        }
    }
}
