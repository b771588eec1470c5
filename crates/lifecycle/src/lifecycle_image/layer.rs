//! The added layer: the layer holding `/cnb/lifecycle/launcher`, found from the top down,
//! rewritten with the replacement launcher and its SBOM.

use relaunch_oci::layer::read::{layer_files, FsEntry, FsKind};
use relaunch_oci::layer::{Content, Entry, LayerBuilder};
use relaunch_oci::{Digest, Image};

use super::{LifecycleImageError, Replacement, SBOM_FILES};
use crate::contract::APP_LAUNCHER_PATH;

/// Most file content read from the layer holding the launcher (upstream's is ~35 MB).
const LAYER_LIMIT: u64 = 512 << 20;
const WHITEOUT_PREFIX: &str = ".wh.";
const OPAQUE_WHITEOUT: &str = ".wh..wh..opq";

/// The entries (with contents) of the topmost layer holding `/cnb/lifecycle/launcher`,
/// reading layers from the top down and stopping there, so lower layers (the base image)
/// are never downloaded. `skip` is an earlier derivation's layer.
pub(super) fn launcher_layer_files(
    image: &Image,
    skip: Option<&Digest>,
    name: &str,
) -> Result<Vec<(FsEntry, Vec<u8>)>, LifecycleImageError> {
    let no_launcher = || LifecycleImageError::NoLauncher {
        image: name.to_string(),
    };
    for (i, layer) in image.layers().iter().enumerate().rev() {
        if Some(&layer.diff_id) == skip {
            continue;
        }
        let files = layer_files(layer, i, LAYER_LIMIT).map_err(|e| LifecycleImageError::Oci {
            image: name.to_string(),
            source: Box::new(e),
        })?;
        if files.iter().any(|(e, _)| e.path == APP_LAUNCHER_PATH) {
            return Ok(files);
        }
        if files.iter().any(|(e, _)| hides_launcher(e)) {
            return Err(no_launcher());
        }
    }
    Err(no_launcher())
}

/// Whether `e` hides a launcher in lower layers: a whiteout of it or of a parent, an opaque
/// whiteout in a parent, or a parent replaced by something that is not a directory.
fn hides_launcher(e: &FsEntry) -> bool {
    let is_parent = |p: &str| {
        APP_LAUNCHER_PATH
            .strip_prefix(p)
            .is_some_and(|rest| rest.starts_with('/'))
    };
    let (dir, file) = e.path.rsplit_once('/').unwrap_or(("", &e.path));
    if file == OPAQUE_WHITEOUT {
        return is_parent(dir);
    }
    if let Some(hidden) = file.strip_prefix(WHITEOUT_PREFIX) {
        let target = format!("{dir}/{hidden}");
        return target == APP_LAUNCHER_PATH || is_parent(&target);
    }
    e.kind != FsKind::Dir && is_parent(&e.path)
}

/// The launcher layer's entries with the launcher and its SBOM files swapped; returns the
/// builder, the SBOM files written and those whited out.
pub(super) fn rewrite(
    files: Vec<(FsEntry, Vec<u8>)>,
    launcher: &Replacement,
    name: &str,
) -> Result<(LayerBuilder, Vec<String>, Vec<String>), LifecycleImageError> {
    let original = files
        .iter()
        .map(|(e, _)| e)
        .rfind(|e| e.path == APP_LAUNCHER_PATH)
        .cloned()
        .expect("the launcher layer holds the launcher");
    if original.kind != FsKind::File {
        return Err(LifecycleImageError::LauncherNotAFile {
            image: name.to_string(),
            kind: match &original.kind {
                FsKind::Dir => "a directory".into(),
                FsKind::Symlink(t) => format!("a symlink to {t}"),
                FsKind::Hardlink(t) => format!("a hard link to {t}"),
                FsKind::File | FsKind::Other => "a special file".into(),
            },
        });
    }
    let cdx = SBOM_FILES[0];
    let sbom_in_layer = files.iter().any(|(e, _)| e.path == cdx);
    let ours = |path: &str, mode, uid, gid, bytes: &[u8]| Entry {
        path: path.to_string(),
        mode,
        uid,
        gid,
        content: Content::Bytes(bytes.to_vec()),
    };
    let mut builder = LayerBuilder::new();
    let mut written = Vec::new();
    for (e, data) in files {
        let whiteout_of_sbom = SBOM_FILES.iter().any(|f| {
            let (dir, file) = f.rsplit_once('/').unwrap_or(("", f));
            e.path == format!("{dir}/{WHITEOUT_PREFIX}{file}")
        });
        if whiteout_of_sbom {
            continue; // written again below
        }
        if e.path == APP_LAUNCHER_PATH {
            let (mode, uid, gid) = (original.mode, original.uid, original.gid);
            builder = builder.entry(ours(&e.path, mode, uid, gid, &launcher.binary.bytes));
            if let (Some(sbom), false) = (&launcher.sbom, sbom_in_layer) {
                // Upstream's mode and owner for SBOM files.
                builder = builder.entry(ours(cdx, 0o644, uid, gid, sbom));
                written.push(cdx.to_string());
            }
            continue;
        }
        if SBOM_FILES.contains(&e.path.as_str()) {
            if let (Some(sbom), true) = (&launcher.sbom, e.path == cdx) {
                builder = builder.entry(ours(cdx, e.mode, e.uid, e.gid, sbom));
                written.push(cdx.to_string());
            }
            continue;
        }
        let content = match e.kind {
            FsKind::Dir => Content::Dir,
            FsKind::File => Content::Bytes(data),
            FsKind::Symlink(target) => Content::Symlink(target),
            FsKind::Hardlink(_) | FsKind::Other => {
                return Err(LifecycleImageError::UnsupportedEntry {
                    image: name.to_string(),
                    path: e.path,
                })
            }
        };
        builder = builder.entry(Entry {
            path: e.path,
            mode: e.mode,
            uid: e.uid,
            gid: e.gid,
            content,
        });
    }
    // Whiteouts hide the Go launcher's SBOM files in the layer below.
    let mut removed = Vec::new();
    for path in SBOM_FILES {
        if !written.iter().any(|w| w == path) {
            let (dir, file) = path.rsplit_once('/').unwrap_or(("", path));
            let whiteout = format!("{dir}/{WHITEOUT_PREFIX}{file}");
            builder = builder.entry(Entry::file(whiteout, 0o644, Vec::new()));
            removed.push(path.to_string());
        }
    }
    Ok((builder, written, removed))
}
