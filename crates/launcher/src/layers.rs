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

/// Runs `f` on each buildpack's directory in `[[buildpacks]]` order, like the reference's
/// `eachBuildpack`: a missing directory is skipped, any other `stat` failure is an error.
/// Every pass (env, exec.d, profiles) looks again, so it sees what exec.d changed.
pub fn each_buildpack(
    layers_dir: &Path,
    buildpacks: &[Buildpack],
    mut f: impl FnMut(&Path) -> Result<(), LaunchError>,
) -> Result<(), LaunchError> {
    for bp in buildpacks {
        let dir = paths::join(layers_dir, &[paths::escape_id(&bp.id).as_bytes()]);
        match std::fs::metadata(&dir) {
            Ok(_) => f(&dir)?,
            Err(e) if e.kind() == ErrorKind::NotFound => {}
            Err(e) => {
                return Err(LaunchError(format!(
                    "find buildpack directory: {}",
                    path_error("stat", &dir, &e).0
                )))
            }
        }
    }
    Ok(())
}

/// Runs `f` on each layer of a buildpack directory (its real sub-directories; symlinks do
/// not count), listed when called.
pub fn each_layer(
    bp_dir: &Path,
    f: impl FnMut(&Path) -> Result<(), LaunchError>,
) -> Result<(), LaunchError> {
    each_entry(bp_dir, FileType::is_dir, f)
}

/// Runs `f` on each non-directory entry of `dir` (symlinks count, even to directories, as
/// in the reference), listed when called: an exec.d program may change what comes next.
pub fn each_file(
    dir: &Path,
    f: impl FnMut(&Path) -> Result<(), LaunchError>,
) -> Result<(), LaunchError> {
    each_entry(dir, |t| !t.is_dir(), f)
}

/// `f` on each file of `<layer>/<sub>/`, then (typed process) of `<layer>/<sub>/<type>/`,
/// each directory listed just before its files are used (reference S-10/S-11 order).
pub fn each_script(
    layer: &Path,
    sub: &str,
    process_type: &str,
    mut f: impl FnMut(&Path) -> Result<(), LaunchError>,
) -> Result<(), LaunchError> {
    let generic = layer.join(sub);
    each_file(&generic, &mut f)?;
    if process_type.is_empty() {
        return Ok(());
    }
    each_file(&generic.join(process_type), f)
}

fn each_entry(
    dir: &Path,
    keep: fn(&FileType) -> bool,
    mut f: impl FnMut(&Path) -> Result<(), LaunchError>,
) -> Result<(), LaunchError> {
    for path in entries_where(dir, keep)?.unwrap_or_default() {
        f(&path)?;
    }
    Ok(())
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

    fn layers(layers_dir: &Path, bps: &[Buildpack]) -> Result<Vec<PathBuf>, LaunchError> {
        let mut out = Vec::new();
        each_buildpack(layers_dir, bps, |dir| {
            each_layer(dir, |layer| {
                out.push(layer.to_owned());
                Ok(())
            })
        })?;
        Ok(out)
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
        let got = layers(
            l,
            &[
                bp("no-layers/buildpack"),
                bp("0.7/buildpack"),
                bp("0.8/buildpack"),
            ],
        )
        .unwrap();
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
        let files = |process_type: &str| {
            let mut out = Vec::new();
            each_buildpack(l, &[bp("0.7/buildpack"), bp("0.8/buildpack")], |dir| {
                each_layer(dir, |layer| {
                    each_script(layer, "profile.d", process_type, |p| {
                        out.push(p.to_owned());
                        Ok(())
                    })
                })
            })
            .unwrap();
            out
        };
        assert_eq!(
            files(""),
            [
                l.join("0.7_buildpack/layer/profile.d/prof1"),
                l.join("0.8_buildpack/layer/profile.d/prof2")
            ]
        );
        assert_eq!(
            files("some-process-type"),
            [
                l.join("0.7_buildpack/layer/profile.d/prof1"),
                l.join("0.7_buildpack/layer/profile.d/some-process-type/prof1"),
                l.join("0.8_buildpack/layer/profile.d/prof2"),
                l.join("0.8_buildpack/layer/profile.d/some-process-type/prof2"),
            ]
        );
    }

    #[test]
    fn files_are_listed_when_reached() {
        // Issue 11 item 6: a file created by an earlier action is seen by a later listing.
        let tmp = TempDir::new();
        let d = tmp.path();
        std::fs::write(d.join("a"), "").unwrap();
        std::fs::create_dir(d.join("dir")).unwrap();
        let mut seen = Vec::new();
        each_file(d, |p| {
            seen.push(p.to_owned());
            std::fs::write(d.join("z"), "").unwrap();
            Ok(())
        })
        .unwrap();
        assert_eq!(seen, [d.join("a")], "one listing per call");
        let mut again = Vec::new();
        each_file(d, |p| {
            again.push(p.to_owned());
            Ok(())
        })
        .unwrap();
        assert_eq!(again, [d.join("a"), d.join("z")]);
    }

    #[test]
    fn listing_errors_name_the_directory() {
        let tmp = TempDir::new();
        std::fs::write(tmp.path().join("a_b"), "a file, not a dir").unwrap();
        let err = layers(tmp.path(), &[bp("a/b")]).unwrap_err();
        assert_eq!(
            err.0,
            format!(
                "failed to list files in dir '{0}/a_b': open {0}/a_b: not a directory",
                tmp.path().display()
            )
        );
        let err = layers(&tmp.path().join("a_b"), &[bp("c")]).unwrap_err();
        assert_eq!(
            err.0,
            format!(
                "find buildpack directory: stat {0}/a_b/c: not a directory",
                tmp.path().display()
            )
        );
    }
}
