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
        let file_type = entry.file_type().map_err(|e| path_error("lstat", &entry.path(), &e))?;
        entries.push((entry.file_name(), file_type));
    }
    entries.sort_unstable_by(|a, b| a.0.cmp(&b.0));
    Ok(Some(entries))
}

/// Paths of the entries of `dir` that pass `keep`; wraps listing errors like the reference.
fn entries_where(dir: &Path, keep: fn(&FileType) -> bool) -> Result<Vec<PathBuf>, LaunchError> {
    let entries = sorted_entries(dir)
        .map_err(|e| LaunchError(format!("failed to list files in dir '{}': {}", dir.display(), e.0)))?
        .unwrap_or_default();
    Ok(entries
        .into_iter()
        .filter(|(_, t)| keep(t))
        .map(|(name, _)| dir.join(name))
        .collect())
}

/// Non-directory entries (symlinks included, even to directories, as the reference).
pub fn files_in(dir: &Path) -> Result<Vec<PathBuf>, LaunchError> {
    entries_where(dir, |t| !t.is_dir())
}

/// The launch layers of one buildpack: its real sub-directories (symlinks do not count).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BuildpackLayers {
    pub dir: PathBuf,
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
        match std::fs::metadata(&dir) {
            Ok(_) => {}
            Err(e) if e.kind() == ErrorKind::NotFound => continue,
            Err(e) => {
                return Err(LaunchError(format!(
                    "find buildpack directory: {}",
                    path_error("stat", &dir, &e).0
                )))
            }
        }
        let layers = entries_where(&dir, FileType::is_dir)
            .map_err(|e| LaunchError(format!("add layer root: {}", e.0)))?;
        out.push(BuildpackLayers { dir, layers });
    }
    Ok(out)
}

/// The directories holding `sub` scripts, in run order: per layer `<layer>/<sub>` then,
/// for a typed process, `<layer>/<sub>/<type>`. Used for `exec.d` and `profile.d`, which
/// the reference interleaves per layer (G-4) rather than in two global passes.
pub fn script_dirs(tree: &[BuildpackLayers], sub: &str, process_type: &str) -> Vec<PathBuf> {
    let mut dirs = Vec::new();
    for layer in tree.iter().flat_map(|bp| &bp.layers) {
        let generic = layer.join(sub);
        let typed = (!process_type.is_empty()).then(|| generic.join(process_type));
        dirs.push(generic);
        dirs.extend(typed);
    }
    dirs
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
        for d in ["0.7_buildpack/layer2", "0.7_buildpack/layer1", "0.8_buildpack/layer3"] {
            std::fs::create_dir_all(l.join(d)).unwrap();
        }
        std::fs::write(l.join("0.7_buildpack/file"), "").unwrap();
        std::os::unix::fs::symlink(l.join("0.8_buildpack/layer3"), l.join("0.7_buildpack/link"))
            .unwrap();
        let tree = launch_layers(
            l,
            &[bp("no-layers/buildpack"), bp("0.7/buildpack"), bp("0.8/buildpack")],
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
        let files = |t| -> Vec<PathBuf> {
            script_dirs(&tree, "profile.d", t)
                .iter()
                .flat_map(|d| files_in(d).unwrap())
                .collect()
        };
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
