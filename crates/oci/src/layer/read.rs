//! Safe reading of layers: list an image's merged file tree (whiteouts applied) and read one
//! file out of it. Entry names are normalised to absolute form (`./a/`, `a`, `/a` → `/a`);
//! names with `..` components are refused, symlinks are resolved inside the image root only,
//! and files larger than the caller's limit are refused before their bytes are read.

use std::collections::BTreeMap;
use std::io::Read;

use super::blob::drain;
use crate::error::{Error, Result};
use crate::image::{Image, Layer};

const WHITEOUT_PREFIX: &str = ".wh.";
const OPAQUE_WHITEOUT: &str = ".wh..wh..opq";
const MAX_LINK_HOPS: usize = 40;

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FsKind {
    File,
    Dir,
    Symlink(String),
    /// Hard link to another absolute path in the image.
    Hardlink(String),
    /// Devices, fifos: listed, never read.
    Other,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FsEntry {
    /// Absolute, normalised (`/cnb/lifecycle/launcher`).
    pub path: String,
    pub kind: FsKind,
    pub mode: u32,
    pub uid: u64,
    pub gid: u64,
    pub size: u64,
    /// Index of the layer (0 = bottom) that provides this entry.
    pub layer: usize,
}

fn unsafe_entry(layer: &Layer, path: &str, reason: &str) -> Error {
    Error::UnsafeEntry {
        layer: layer.diff_id.to_string(),
        path: path.to_string(),
        reason: reason.to_string(),
    }
}

/// `./a//b/` → `/a/b`; `None` for the root itself; error on `..`.
pub fn normalize(name: &str) -> std::result::Result<Option<String>, &'static str> {
    let mut parts = Vec::new();
    for c in name.split('/') {
        match c {
            "" | "." => {}
            ".." => return Err("path traversal (\"..\")"),
            c => parts.push(c),
        }
    }
    Ok((!parts.is_empty()).then(|| format!("/{}", parts.join("/"))))
}

/// `/a/b` → (`/a`, `b`); `/a` → (``, `a`): the root is the empty string.
fn parent_and_name(path: &str) -> (&str, &str) {
    path.rsplit_once('/').unwrap_or(("", path))
}

/// Removes everything below `dir` (not `dir` itself). Paths below `dir` sort between
/// `dir/` and `dir0` ('0' follows '/'), so this is a range, not a scan of the whole tree.
fn remove_below(tree: &mut BTreeMap<String, FsEntry>, dir: &str) {
    let below: Vec<String> = tree
        .range(format!("{dir}/")..format!("{dir}0"))
        .map(|(p, _)| p.clone())
        .collect();
    for p in below {
        tree.remove(&p);
    }
}

/// Entries of one layer as stored (whiteout markers included), names normalised.
pub fn layer_entries(layer: &Layer, index: usize) -> Result<Vec<FsEntry>> {
    scan_layer(layer, index, None)
}

/// Entries of one layer (whiteout markers included, names normalised), each with the
/// contents of regular files; the contents together may be at most `limit` bytes. For
/// rewriting a layer from a single download.
pub fn layer_files(layer: &Layer, index: usize, limit: u64) -> Result<Vec<(FsEntry, Vec<u8>)>> {
    let mut contents = Vec::new();
    let mut total = 0u64;
    let mut visit = |e: &FsEntry, data: &mut dyn Read| -> Result<()> {
        if e.kind != FsKind::File {
            contents.push(Vec::new());
            return Ok(());
        }
        total = total.saturating_add(e.size);
        if total > limit {
            return Err(Error::TooLarge {
                path: format!("layer {} (at {})", layer.diff_id, e.path),
                size: total,
                limit,
            });
        }
        let ctx = |err| {
            Error::io(
                format!("reading {} in layer {}", e.path, layer.diff_id),
                err,
            )
        };
        contents.push(read_limited(data, e.size, limit).map_err(ctx)?);
        Ok(())
    };
    let entries = scan_layer(layer, index, Some(&mut visit))?;
    Ok(entries.into_iter().zip(contents).collect())
}

/// Sees each entry of a layer with a reader over its contents, while the layer is listed.
type Visit<'v> = &'v mut dyn FnMut(&FsEntry, &mut dyn Read) -> Result<()>;

fn scan_layer(layer: &Layer, index: usize, mut visit: Option<Visit<'_>>) -> Result<Vec<FsEntry>> {
    let tar = layer.open_tar()?;
    let mut archive = tar::Archive::new(tar);
    let ctx = |e| Error::io(format!("reading layer {}", layer.diff_id), e);
    let mut out = Vec::new();
    for entry in archive.entries().map_err(ctx)? {
        let mut entry = entry.map_err(ctx)?;
        let raw_path = String::from_utf8_lossy(&entry.path_bytes()).into_owned();
        let Some(path) = normalize(&raw_path).map_err(|r| unsafe_entry(layer, &raw_path, r))?
        else {
            continue;
        };
        let h = entry.header();
        let link = || {
            entry
                .link_name_bytes()
                .map(|l| String::from_utf8_lossy(&l).into_owned())
                .unwrap_or_default()
        };
        let kind = match h.entry_type() {
            tar::EntryType::Regular | tar::EntryType::Continuous => FsKind::File,
            tar::EntryType::Directory => FsKind::Dir,
            tar::EntryType::Symlink => FsKind::Symlink(link()),
            tar::EntryType::Link => {
                let target = link();
                match normalize(&target) {
                    Ok(Some(t)) => FsKind::Hardlink(t),
                    _ => {
                        return Err(unsafe_entry(
                            layer,
                            &path,
                            "hard link target escapes the image root",
                        ))
                    }
                }
            }
            _ => FsKind::Other,
        };
        let fs_entry = FsEntry {
            path,
            kind,
            mode: h.mode().map_err(ctx)? & 0o7777,
            uid: h.uid().map_err(ctx)?,
            gid: h.gid().map_err(ctx)?,
            size: entry.size(),
            layer: index,
        };
        if let Some(v) = visit.as_mut() {
            v(&fs_entry, &mut entry)?;
        }
        out.push(fs_entry);
    }
    drain(
        archive.into_inner(),
        &format!("reading layer {}", layer.diff_id),
    )?;
    Ok(out)
}

/// The merged file tree of `image`, sorted by path, with whiteouts applied.
pub fn list_files(image: &Image) -> Result<Vec<FsEntry>> {
    Ok(merge_layers(image, None)?.into_values().collect())
}

fn merge_layers(image: &Image, mut visit: Option<Visit<'_>>) -> Result<BTreeMap<String, FsEntry>> {
    let mut tree: BTreeMap<String, FsEntry> = BTreeMap::new();
    for (i, layer) in image.layers().iter().enumerate() {
        let entries = scan_layer(layer, i, visit.as_mut().map(|v| &mut **v as _))?;
        // Whiteouts hide lower layers only, whatever their position within this layer.
        for e in &entries {
            let (dir, name) = parent_and_name(&e.path);
            if name == OPAQUE_WHITEOUT {
                remove_below(&mut tree, dir);
            } else if let Some(hidden) = name.strip_prefix(WHITEOUT_PREFIX) {
                let target = format!("{dir}/{hidden}");
                tree.remove(&target);
                remove_below(&mut tree, &target);
            }
        }
        for e in entries {
            let name = parent_and_name(&e.path).1;
            if name.starts_with(WHITEOUT_PREFIX) {
                continue;
            }
            if e.kind != FsKind::Dir {
                remove_below(&mut tree, &e.path);
            }
            tree.insert(e.path.clone(), e);
        }
    }
    Ok(tree)
}

/// Reads at most `limit + 1` bytes of an entry whose header declares `size`: the declared
/// size is the tar's word, so no more than a little of it is reserved up front.
fn read_limited(
    entry: &mut (impl Read + ?Sized),
    size: u64,
    limit: u64,
) -> std::io::Result<Vec<u8>> {
    let mut data = Vec::with_capacity(size.min(1 << 20) as usize);
    entry.take(limit.saturating_add(1)).read_to_end(&mut data)?;
    Ok(data)
}

/// Resolves `path` in `tree` following symlinks (absolute targets are relative to the image
/// root; relative ones to the link's directory; escaping the root is an error).
fn resolve<'a>(tree: &'a BTreeMap<String, FsEntry>, path: &str) -> Result<&'a FsEntry> {
    let not_found = |p: &str| Error::NotFound {
        what: format!("path {p}"),
        location: "image filesystem".into(),
    };
    let mut pending: Vec<String> = path
        .split('/')
        .filter(|c| !c.is_empty())
        .rev()
        .map(String::from)
        .collect();
    let mut current: Vec<String> = Vec::new();
    let mut hops = 0;
    while let Some(c) = pending.pop() {
        match c.as_str() {
            "." => continue,
            ".." => {
                if current.pop().is_none() {
                    return Err(Error::UnsafeEntry {
                        layer: "image filesystem".into(),
                        path: path.into(),
                        reason: "symlink escapes the image root".into(),
                    });
                }
                continue;
            }
            _ => {}
        }
        current.push(c);
        let here = format!("/{}", current.join("/"));
        let entry = tree.get(&here).ok_or_else(|| not_found(&here))?;
        let target = match &entry.kind {
            FsKind::Symlink(t) => t.clone(),
            FsKind::Hardlink(t) => t.clone(),
            _ => continue,
        };
        hops += 1;
        if hops > MAX_LINK_HOPS {
            return Err(Error::invalid(
                format!("path {path}"),
                "too many levels of symbolic links",
            ));
        }
        current.pop();
        if target.starts_with('/') {
            current.clear();
        }
        pending.extend(
            target
                .split('/')
                .filter(|c| !c.is_empty())
                .rev()
                .map(String::from),
        );
    }
    let final_path = format!("/{}", current.join("/"));
    tree.get(&final_path).ok_or_else(|| not_found(&final_path))
}

/// Reads one regular file from the image (symlinks followed inside the image), refusing
/// files larger than `limit` bytes.
pub fn read_file(image: &Image, path: &str, limit: u64) -> Result<(FsEntry, Vec<u8>)> {
    let wanted = normalize(path).ok().flatten().unwrap_or_default();
    // The bytes of the path are taken while the layers are listed, so a file that needs no
    // symlink resolution costs no second download of its layer: (layer index, contents) of
    // the last regular file seen at `wanted`.
    let mut found: Option<(usize, Vec<u8>)> = None;
    let mut capture = |e: &FsEntry, data: &mut dyn Read| -> Result<()> {
        if e.kind == FsKind::File && e.path == wanted && e.size <= limit {
            let ctx = |err| Error::io(format!("reading {} in layer {}", e.path, e.layer), err);
            found = Some((e.layer, read_limited(data, e.size, limit).map_err(ctx)?));
        }
        Ok(())
    };
    let tree = merge_layers(image, Some(&mut capture))?;
    let entry = resolve(&tree, path)?.clone();
    if entry.kind != FsKind::File {
        return Err(Error::invalid(
            format!("path {path}"),
            format!("{} is not a regular file", entry.path),
        ));
    }
    if entry.size > limit {
        return Err(Error::TooLarge {
            path: entry.path.clone(),
            size: entry.size,
            limit,
        });
    }
    match found {
        // Taken during the listing from the layer that provides the resolved entry.
        Some((layer, data)) if layer == entry.layer && entry.path == wanted => Ok((entry, data)),
        // Reached through a symlink or hard link: read the target's layer again.
        _ => read_from_layer(image, entry, limit),
    }
}

fn read_from_layer(image: &Image, entry: FsEntry, limit: u64) -> Result<(FsEntry, Vec<u8>)> {
    let layer = &image.layers()[entry.layer];
    let ctx = |e| {
        Error::io(
            format!("reading {} from layer {}", entry.path, layer.diff_id),
            e,
        )
    };
    let mut archive = tar::Archive::new(layer.open_tar()?);
    let mut found = None;
    for tar_entry in archive.entries().map_err(ctx)? {
        let mut tar_entry = tar_entry.map_err(ctx)?;
        let name = String::from_utf8_lossy(&tar_entry.path_bytes()).into_owned();
        if normalize(&name).ok().flatten().as_deref() == Some(entry.path.as_str()) {
            // The last entry with this name in the layer wins, as in list_files.
            found = Some(read_limited(&mut tar_entry, entry.size, limit).map_err(ctx)?);
        }
    }
    drain(
        archive.into_inner(),
        &format!("reading layer {}", layer.diff_id),
    )?;
    let data = found.ok_or_else(|| Error::NotFound {
        what: format!("path {}", entry.path),
        location: format!("layer {}", layer.diff_id),
    })?;
    Ok((entry, data))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(path: &str) -> (String, FsEntry) {
        let e = FsEntry {
            path: path.into(),
            kind: FsKind::File,
            mode: 0o644,
            uid: 0,
            gid: 0,
            size: 0,
            layer: 0,
        };
        (path.into(), e)
    }

    #[test]
    fn remove_below_takes_descendants_only() {
        let paths = ["/a", "/a/b", "/a/b/c", "/a-b", "/a.b", "/ab", "/a0", "/b"];
        let mut tree: BTreeMap<String, FsEntry> = paths.iter().map(|p| entry(p)).collect();
        remove_below(&mut tree, "/a");
        let left: Vec<&str> = tree.keys().map(String::as_str).collect();
        assert_eq!(left, ["/a", "/a-b", "/a.b", "/a0", "/ab", "/b"]);
        remove_below(&mut tree, "");
        assert!(tree.is_empty());
    }

    #[test]
    fn names_normalise_to_absolute_paths() {
        assert_eq!(normalize("./a//b/").unwrap().as_deref(), Some("/a/b"));
        assert_eq!(normalize("/cnb").unwrap().as_deref(), Some("/cnb"));
        assert_eq!(normalize("./").unwrap(), None);
        assert!(normalize("a/../b").is_err());
        assert_eq!(parent_and_name("/a/b"), ("/a", "b"));
        assert_eq!(parent_and_name("/a"), ("", "a"));
    }
}
