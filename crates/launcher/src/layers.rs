//! Walking `<layers>`: buildpack directories in `[[buildpacks]]` order, their layer
//! sub-directories and the files of `exec.d/` and `profile.d/`, all sorted by name.

use std::ffi::OsString;
use std::fs::FileType;
use std::io::ErrorKind;
use std::path::{Path, PathBuf};

use crate::errors::{path_error, LaunchError};
use crate::metadata::Buildpack;
use crate::paths;

/// Entries of `dir` sorted by name, or `None` if `dir` does not exist.
pub fn sorted_entries(dir: &Path) -> Result<Option<Vec<(OsString, FileType)>>, LaunchError> {
    let reader = match std::fs::read_dir(dir) {
        Ok(r) => r,
        Err(e) if e.kind() == ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(path_error("open", dir, &e)),
    };
    let mut entries = Vec::new();
    for entry in reader {
        let entry = entry.map_err(|e| path_error("readdirent", dir, &e))?;
        let file_type = entry
            .file_type()
            .map_err(|e| path_error("lstat", &entry.path(), &e))?;
        entries.push((entry.file_name(), file_type));
    }
    entries.sort_unstable_by(|a, b| a.0.cmp(&b.0));
    Ok(Some(entries))
}

/// Paths of the entries of `dir` that pass `keep` (`None`: no such dir); wraps
/// listing errors like the reference.
fn entries_where(
    dir: &Path,
    keep: fn(&FileType) -> bool,
) -> Result<Option<Vec<PathBuf>>, LaunchError> {
    let entries = sorted_entries(dir).map_err(|e| {
        LaunchError(format!(
            "failed to list files in dir '{}': {}",
            dir.display(),
            e.0
        ))
    })?;
    Ok(entries.map(|entries| {
        entries
            .into_iter()
            .filter(|(_, t)| keep(t))
            .map(|(name, _)| dir.join(name))
            .collect()
    }))
}

/// Script files to run or source, in order: per layer `<layer>/<sub>/*` then, for a
/// typed process, `<layer>/<sub>/<type>/*`. Used for `exec.d` and `profile.d`, which the
/// reference interleaves per layer (G-4) rather than in two global passes. Non-directory
/// entries count (symlinks included, even to directories, as in the reference).
pub fn scripts(
    tree: &[BuildpackLayers],
    sub: &str,
    process_type: &str,
) -> Result<Vec<PathBuf>, LaunchError> {
    let not_dir = |t: &FileType| !t.is_dir();
    let mut files = Vec::new();
    for layer in tree.iter().flat_map(|bp| &bp.layers) {
        let generic = layer.join(sub);
        let Some(found) = entries_where(&generic, not_dir)? else {
            continue; // no <sub>/ means no <sub>/<type>/ either
        };
        files.extend(found);
        if !process_type.is_empty() {
            files.extend(entries_where(&generic.join(process_type), not_dir)?.unwrap_or_default());
        }
    }
    Ok(files)
}

/// The launch layers of one buildpack: its real sub-directories (symlinks do not count).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BuildpackLayers {
    pub layers: Vec<PathBuf>,
}

/// Lists every buildpack's layers once; buildpacks without a directory are skipped.
/// Errors carry the context the reference reports first (during env setup).
pub fn launch_layers(
    layers_dir: &Path,
    buildpacks: &[Buildpack],
) -> Result<Vec<BuildpackLayers>, LaunchError> {
    let mut out = Vec::with_capacity(buildpacks.len());
    for bp in buildpacks {
        let dir = paths::join(layers_dir, &[paths::escape_id(&bp.id).as_bytes()]);
        // List directly (one syscall less than the reference's stat + open); on failure,
        // stat to report the same error the reference would.
        let layers = match entries_where(&dir, FileType::is_dir) {
            Ok(Some(layers)) => layers,
            Ok(None) => continue,
            Err(list_err) => {
                return Err(match std::fs::metadata(&dir) {
                    Err(e) if e.kind() != ErrorKind::NotFound => LaunchError(format!(
                        "find buildpack directory: {}",
                        path_error("stat", &dir, &e).0
                    )),
                    _ => LaunchError(format!("add layer root: {}", list_err.0)),
                })
            }
        };
        out.push(BuildpackLayers { layers });
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testutil::TempDir;

    fn bp(id: &str) -> Buildpack {
        Buildpack {
            id: id.into(),
            api: "0.9".into(),
        }
    }

    #[test]
    fn layers_in_buildpack_order_sorted_and_missing_skipped() {
        let tmp = TempDir::new();
        let l = tmp.path();
        for d in [
            "0.7_buildpack/layer2",
            "0.7_buildpack/layer1",
            "0.8_buildpack/layer3",
        ] {
            std::fs::create_dir_all(l.join(d)).unwrap();
        }
        std::fs::write(l.join("0.7_buildpack/file"), "").unwrap();
        std::os::unix::fs::symlink(l.join("0.8_buildpack/layer3"), l.join("0.7_buildpack/link"))
            .unwrap();
        let tree = launch_layers(
            l,
            &[
                bp("no-layers/buildpack"),
                bp("0.7/buildpack"),
                bp("0.8/buildpack"),
            ],
        )
        .unwrap();
        let got: Vec<_> = tree.iter().flat_map(|b| b.layers.clone()).collect();
        assert_eq!(
            got,
            [
                l.join("0.7_buildpack/layer1"),
                l.join("0.7_buildpack/layer2"),
                l.join("0.8_buildpack/layer3")
            ]
        );
    }

    #[test]
    fn scripts_interleave_generic_and_typed_per_layer() {
        // reference S-10 / S-11 ordering
        let tmp = TempDir::new();
        let l = tmp.path();
        for f in [
            "0.7_buildpack/layer/profile.d/prof1",
            "0.7_buildpack/layer/profile.d/some-process-type/prof1",
            "0.8_buildpack/layer/profile.d/prof2",
            "0.8_buildpack/layer/profile.d/some-process-type/prof2",
        ] {
            let p = l.join(f);
            std::fs::create_dir_all(p.parent().unwrap()).unwrap();
            std::fs::write(p, "").unwrap();
        }
        let tree = launch_layers(l, &[bp("0.7/buildpack"), bp("0.8/buildpack")]).unwrap();
        let files = |t| scripts(&tree, "profile.d", t).unwrap();
        let untyped = files("");
        assert_eq!(
            untyped,
            [
                l.join("0.7_buildpack/layer/profile.d/prof1"),
                l.join("0.8_buildpack/layer/profile.d/prof2")
            ]
        );
        let typed = files("some-process-type");
        assert_eq!(
            typed,
            [
                l.join("0.7_buildpack/layer/profile.d/prof1"),
                l.join("0.7_buildpack/layer/profile.d/some-process-type/prof1"),
                l.join("0.8_buildpack/layer/profile.d/prof2"),
                l.join("0.8_buildpack/layer/profile.d/some-process-type/prof2"),
            ]
        );
    }

    #[test]
    fn listing_errors_name_the_directory() {
        let tmp = TempDir::new();
        std::fs::write(tmp.path().join("a_b"), "a file, not a dir").unwrap();
        let err = launch_layers(tmp.path(), &[bp("a/b")]).unwrap_err();
        assert_eq!(
            err.0,
            format!(
                "add layer root: failed to list files in dir '{0}/a_b': open {0}/a_b: not a directory",
                tmp.path().display()
            )
        );
    }
}
