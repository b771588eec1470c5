//! The launcher binary: validation (regular, executable, ELF) and its embedded
//! self-description, read from the ELF section `.cnb_launcher` without executing it.

use std::os::unix::fs::PermissionsExt;
use std::path::Path;

use object::{Architecture, Object, ObjectSection};
use relaunch_oci::{local, Platform};
use serde::{Deserialize, Serialize};

use crate::apis::ApiList;

/// Largest launcher read from a file or an image (the reference Go launcher is under 4 MiB).
pub const LAUNCHER_SIZE_LIMIT: u64 = 64 << 20;

/// Name of the ELF section holding the launcher's compact JSON self-description.
pub use launcher::self_description::SECTION;

/// What a launcher says about itself.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Descriptor {
    pub name: String,
    pub version: String,
    #[serde(rename = "platform-apis")]
    pub platform_apis: ApiList,
    #[serde(rename = "buildpack-apis")]
    pub buildpack_apis: ApiList,
}

#[derive(Debug, thiserror::Error)]
pub enum LauncherFileError {
    #[error("cannot read launcher '{origin}': {cause}")]
    Io {
        origin: String,
        cause: std::io::Error,
    },
    #[error("launcher '{origin}' is not a regular file")]
    NotRegular { origin: String },
    #[error(
        "launcher '{origin}' is {size} bytes, more than the limit of {LAUNCHER_SIZE_LIMIT} bytes"
    )]
    TooLarge { origin: String, size: u64 },
    #[error("launcher '{origin}' is not executable (mode {mode:04o}); it must be mode 0755")]
    NotExecutable { origin: String, mode: u32 },
    #[error("launcher '{origin}' is not an ELF executable ({reason})")]
    NotElf { origin: String, reason: String },
    #[error("launcher '{origin}' has a malformed {SECTION} section: {reason}")]
    BadDescriptor { origin: String, reason: String },
    #[error("launcher '{origin}' is built for {machine}, but {image} is {platform}; give a launcher built for {platform}")]
    WrongArchitecture {
        origin: String,
        machine: String,
        image: String,
        platform: String,
    },
}

/// A validated launcher executable and, when it has one, its self-description.
#[derive(Debug, Clone)]
pub struct LauncherBinary {
    /// Where it came from (file path or `image:/cnb/lifecycle/launcher`), for messages.
    pub origin: String,
    pub bytes: Vec<u8>,
    pub descriptor: Option<Descriptor>,
}

impl LauncherBinary {
    /// Reads and validates a launcher file; symlinks are followed like the exporter does.
    /// Type, mode and size are checked on the open file before a byte is read, and no
    /// more than [`LAUNCHER_SIZE_LIMIT`] is read (a FIFO or device is refused, not read).
    pub fn from_file(path: &Path) -> Result<Self, LauncherFileError> {
        let origin = path.display().to_string();
        let (file, meta) = match local::open_regular(path, &format!("launcher '{origin}'")) {
            Ok(opened) => opened,
            Err(relaunch_oci::Error::Io { cause, .. }) => {
                return Err(LauncherFileError::Io { origin, cause })
            }
            Err(_) => return Err(LauncherFileError::NotRegular { origin }),
        };
        let mode = meta.permissions().mode();
        check_executable(&origin, mode)?;
        let bytes = local::read_open_bounded(file, meta.len(), LAUNCHER_SIZE_LIMIT, &origin)
            .map_err(|e| match e {
                relaunch_oci::Error::Io { cause, .. } => LauncherFileError::Io {
                    origin: origin.clone(),
                    cause,
                },
                relaunch_oci::Error::TooLarge { size, .. } => LauncherFileError::TooLarge {
                    origin: origin.clone(),
                    size,
                },
                _ => LauncherFileError::NotRegular {
                    origin: origin.clone(),
                },
            })?;
        Self::from_bytes(origin, bytes, mode)
    }

    /// Validates launcher bytes taken from somewhere with a known file mode (e.g. a tar entry).
    pub fn from_bytes(
        origin: String,
        bytes: Vec<u8>,
        mode: u32,
    ) -> Result<Self, LauncherFileError> {
        check_executable(&origin, mode)?;
        let descriptor = read_descriptor(&bytes).map_err(|e| match e {
            DescriptorError::NotElf(reason) => LauncherFileError::NotElf {
                origin: origin.clone(),
                reason,
            },
            DescriptorError::Malformed(reason) => LauncherFileError::BadDescriptor {
                origin: origin.clone(),
                reason,
            },
        })?;
        Ok(LauncherBinary {
            origin,
            bytes,
            descriptor,
        })
    }
}

impl LauncherBinary {
    /// Refuses a launcher whose ELF machine cannot run on `platform` (the image's config
    /// `architecture`, e.g. `arm64`); an image that names no architecture is not checked.
    /// `image` names the image in the message (e.g. "the run image").
    pub fn ensure_runs_on(
        &self,
        platform: &Platform,
        image: &str,
    ) -> Result<(), LauncherFileError> {
        if platform.architecture.is_empty() {
            return Ok(());
        }
        let machine = elf_architecture(&self.bytes).map_err(|e| LauncherFileError::NotElf {
            origin: self.origin.clone(),
            reason: e.to_string(),
        })?;
        if machine == platform.architecture {
            return Ok(());
        }
        Err(LauncherFileError::WrongArchitecture {
            origin: self.origin.clone(),
            machine,
            image: image.to_string(),
            platform: platform.to_string(),
        })
    }
}

/// The ELF's machine as an OCI/Go architecture name (`amd64`, `arm64`, ...); machines
/// without one are named as the `object` crate does.
pub fn elf_architecture(elf: &[u8]) -> Result<String, DescriptorError> {
    let file = object::File::parse(elf).map_err(|e| DescriptorError::NotElf(e.to_string()))?;
    let little = file.is_little_endian();
    let name = match file.architecture() {
        Architecture::X86_64 => "amd64",
        Architecture::Aarch64 => "arm64",
        Architecture::Arm => "arm",
        Architecture::I386 => "386",
        Architecture::Riscv64 => "riscv64",
        Architecture::PowerPc64 if little => "ppc64le",
        Architecture::PowerPc64 => "ppc64",
        Architecture::S390x => "s390x",
        Architecture::Mips64 if little => "mips64le",
        Architecture::Mips64 => "mips64",
        Architecture::LoongArch64 => "loong64",
        other => return Ok(format!("{other:?}")),
    };
    Ok(name.to_string())
}

fn check_executable(origin: &str, mode: u32) -> Result<(), LauncherFileError> {
    if mode & 0o111 == 0 {
        return Err(LauncherFileError::NotExecutable {
            origin: origin.to_string(),
            mode: mode & 0o7777,
        });
    }
    Ok(())
}

#[derive(Debug, thiserror::Error)]
pub enum DescriptorError {
    #[error("not an ELF file: {0}")]
    NotElf(String),
    #[error("malformed {SECTION} section: {0}")]
    Malformed(String),
}

/// Returns the self-description of an ELF executable, `None` when it has no such section.
pub fn read_descriptor(elf: &[u8]) -> Result<Option<Descriptor>, DescriptorError> {
    if !elf.starts_with(b"\x7fELF") {
        return Err(DescriptorError::NotElf("missing \\x7fELF magic".into()));
    }
    let file = object::File::parse(elf).map_err(|e| DescriptorError::NotElf(e.to_string()))?;
    let Some(section) = file.section_by_name(SECTION) else {
        return Ok(None);
    };
    let data = section
        .data()
        .map_err(|e| DescriptorError::Malformed(e.to_string()))?;
    // The launcher's own decoder (the meta launcher reads delegates with it), so a
    // description relaunch accepts is one the launcher accepts. It ends at the first NUL
    // (the section may be padded); surrounding whitespace is insignificant.
    let d = launcher::self_description::parse(data).map_err(DescriptorError::Malformed)?;
    let list = |l: &[String]| {
        l.iter()
            .map(|s| s.parse())
            .collect::<Result<Vec<crate::apis::Api>, _>>()
            .map(ApiList::new)
            .map_err(|e| DescriptorError::Malformed(e.to_string()))
    };
    Ok(Some(Descriptor {
        platform_apis: list(&d.platform_apis)?,
        buildpack_apis: list(&d.buildpack_apis)?,
        name: d.name,
        version: d.version,
    }))
}

/// Byte range of the `.cnb_launcher` section's contents inside the file, if present.
pub fn descriptor_range(elf: &[u8]) -> Result<Option<std::ops::Range<usize>>, DescriptorError> {
    let file = object::File::parse(elf).map_err(|e| DescriptorError::NotElf(e.to_string()))?;
    Ok(file
        .section_by_name(SECTION)
        .and_then(|s| s.file_range())
        .map(|(off, len)| off as usize..(off + len) as usize))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::elf_with;

    const JSON: &[u8] = br#"{"name":"relaunch-launcher","version":"1.2.3","platform-apis":["0.7","0.15"],"buildpack-apis":["0.7","0.12"]}"#;

    #[test]
    fn reads_the_self_description_section() {
        let d = read_descriptor(&elf_with(Some(JSON))).unwrap().unwrap();
        assert_eq!(d.version, "1.2.3");
        assert_eq!(d.platform_apis.to_label(), "0.7,0.15");
        let mut padded = JSON.to_vec();
        padded.extend([0u8; 7]);
        assert_eq!(
            read_descriptor(&elf_with(Some(&padded))).unwrap().unwrap(),
            d
        );
    }

    /// Type and mode are checked before a byte is read, and the size bounds the read: a
    /// FIFO is refused without blocking, a sparse 2 GiB file without reading it.
    #[test]
    fn launcher_files_are_checked_before_they_are_read() {
        let dir = tempfile::tempdir().unwrap();
        let path = |name: &str| dir.path().join(name);
        let run = |args: &[&str]| {
            assert!(std::process::Command::new(args[0])
                .args(&args[1..])
                .status()
                .unwrap()
                .success())
        };
        let fifo = path("fifo");
        run(&["mkfifo", "-m", "0755", fifo.to_str().unwrap()]);
        assert!(matches!(
            LauncherBinary::from_file(&fifo),
            Err(LauncherFileError::NotRegular { .. })
        ));
        let big = path("big");
        run(&["truncate", "-s", "2G", big.to_str().unwrap()]);
        let err = LauncherBinary::from_file(&big).unwrap_err();
        assert!(
            matches!(err, LauncherFileError::NotExecutable { .. }),
            "{err}"
        );
        run(&["chmod", "0755", big.to_str().unwrap()]);
        let err = LauncherBinary::from_file(&big).unwrap_err();
        assert!(
            matches!(err, LauncherFileError::TooLarge { size, .. } if size == 2 << 30),
            "{err}"
        );
        let err = LauncherBinary::from_file(&path("absent")).unwrap_err();
        assert_eq!(
            err.to_string(),
            format!(
                "cannot read launcher '{}': No such file or directory (os error 2)",
                path("absent").display()
            )
        );
    }

    #[test]
    fn elf_without_section_has_no_descriptor_and_non_elf_is_refused() {
        assert_eq!(read_descriptor(&elf_with(None)).unwrap(), None);
        assert!(matches!(
            read_descriptor(b"#!/bin/sh\n"),
            Err(DescriptorError::NotElf(_))
        ));
        assert!(matches!(
            read_descriptor(&elf_with(Some(b"{not json"))),
            Err(DescriptorError::Malformed(_))
        ));
    }

    #[test]
    fn a_launcher_must_match_the_images_architecture() {
        let launcher = LauncherBinary::from_bytes("l".into(), elf_with(None), 0o755).unwrap();
        assert_eq!(elf_architecture(&launcher.bytes).unwrap(), "amd64");
        let amd64 = Platform::parse("linux/amd64").unwrap();
        launcher.ensure_runs_on(&amd64, "run").unwrap();
        launcher
            .ensure_runs_on(&Platform::default(), "run")
            .unwrap();
        let arm64 = Platform::parse("linux/arm64/v8").unwrap();
        let e = launcher
            .ensure_runs_on(&arm64, "the run image")
            .unwrap_err();
        assert_eq!(
            e.to_string(),
            "launcher 'l' is built for amd64, but the run image is linux/arm64/v8; give a launcher built for linux/arm64/v8"
        );
    }

    #[test]
    fn launcher_files_must_be_regular_executable_elf() {
        let dir = std::env::temp_dir().join(format!("lc-desc-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let write = |name: &str, bytes: &[u8], mode: u32| {
            let p = dir.join(name);
            std::fs::write(&p, bytes).unwrap();
            std::fs::set_permissions(&p, std::fs::Permissions::from_mode(mode)).unwrap();
            p
        };
        let ok = write("ok", &elf_with(Some(JSON)), 0o755);
        assert!(LauncherBinary::from_file(&ok).unwrap().descriptor.is_some());
        let e = LauncherBinary::from_file(&write("noexec", &elf_with(None), 0o644)).unwrap_err();
        assert!(e.to_string().contains("not executable (mode 0644)"), "{e}");
        let e = LauncherBinary::from_file(&write("script", b"#!/bin/sh\n", 0o755)).unwrap_err();
        assert!(e.to_string().contains("is not an ELF executable"), "{e}");
        let e = LauncherBinary::from_file(&dir).unwrap_err();
        assert!(e.to_string().contains("not a regular file"), "{e}");
        let e = LauncherBinary::from_file(&dir.join("missing")).unwrap_err();
        assert!(e.to_string().contains("cannot read launcher"), "{e}");
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
