//! Shared by the decoupling end-to-end tests: where images live (OCI layout or a real
//! registry), running the `relaunch` binary, and the launcher under test.

#![allow(dead_code)] // each test file uses a different subset

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use relaunch_lifecycle::fixtures::run_image_from_rootfs;
use relaunch_oci::{
    write_image, Digest, Image, ImageRef, Layout, NoProgress, Repo, TransportOptions,
};
use relaunch_testkit::{busybox_rootfs, skopeo_copy, Registry};

/// The static launcher under test: `RELAUNCH_STATIC_LAUNCHER` (set by scripts/test.sh), else
/// the workspace's dist/launcher.
pub fn launcher_path() -> PathBuf {
    let path = std::env::var_os("RELAUNCH_STATIC_LAUNCHER")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("../../dist/launcher"));
    assert!(
        path.is_file(),
        "launcher {} not found: run scripts/build-launcher.sh or set RELAUNCH_STATIC_LAUNCHER",
        path.display()
    );
    path
}

/// Where a test keeps its images.
pub enum Store {
    Layout(PathBuf),
    Registry(Registry),
}

impl Store {
    /// Reference for the `relaunch` CLI.
    pub fn r(&self, repo: &str, tag: &str) -> String {
        match self {
            Store::Layout(dir) => format!("oci:{}:{tag}", dir.join(repo).display()),
            Store::Registry(reg) => format!("{}/{repo}:{tag}", reg.host()),
        }
    }

    /// Digest reference, as `runImage.reference` records it.
    pub fn digest_ref(&self, repo: &str, digest: &Digest) -> String {
        match self {
            Store::Layout(dir) => format!("oci:{}@{digest}", dir.join(repo).display()),
            Store::Registry(reg) => format!("{}/{repo}@{digest}", reg.host()),
        }
    }

    /// Reference for skopeo.
    pub fn skopeo(&self, repo: &str, tag: &str) -> String {
        match self {
            Store::Layout(dir) => format!("oci:{}:{tag}", dir.join(repo).display()),
            Store::Registry(reg) => format!("docker://{}/{repo}:{tag}", reg.host()),
        }
    }

    fn opts(&self) -> TransportOptions {
        match self {
            Store::Layout(_) => TransportOptions::default(),
            Store::Registry(reg) => TransportOptions {
                insecure_registries: vec![reg.host()],
            },
        }
    }

    pub fn put(&self, image: &Image, repo: &str, tag: &str) {
        let r = ImageRef::parse(&self.r(repo, tag)).unwrap();
        let target = Repo::create(&r, &self.opts()).unwrap();
        write_image(
            image,
            target.transport.as_ref(),
            &[tag.to_string()],
            &NoProgress,
        )
        .unwrap();
    }

    pub fn get(&self, repo: &str, tag: &str) -> Image {
        let r = ImageRef::parse(&self.r(repo, tag)).unwrap();
        Repo::open(&r, &self.opts())
            .unwrap()
            .load_image(None)
            .unwrap()
    }

    pub fn exists(&self, repo: &str, tag: &str) -> bool {
        match self {
            Store::Layout(dir) => Layout::open(dir.join(repo))
                .and_then(|l| l.tags())
                .is_ok_and(|tags| tags.iter().any(|t| t == tag)),
            Store::Registry(_) => {
                let r = ImageRef::parse(&self.r(repo, tag)).unwrap();
                match Repo::open(&r, &self.opts()).unwrap().load() {
                    Ok(_) => true,
                    Err(e) if e.is_not_found() => false,
                    Err(e) => panic!("probing {repo}:{tag}: {e}"),
                }
            }
        }
    }

    /// An OCI layout holding `repo:tag`, for umoci.
    pub fn layout_of(&self, repo: &str, tag: &str, scratch: &Path) -> PathBuf {
        match self {
            Store::Layout(dir) => dir.join(repo),
            Store::Registry(_) => {
                let dir = scratch.join(format!("unpack-{repo}-{tag}"));
                skopeo_copy(
                    &self.skopeo(repo, tag),
                    &format!("oci:{}:{tag}", dir.display()),
                    &[],
                );
                dir
            }
        }
    }

    /// Runs `relaunch ARGS` (with `--insecure-registry` for a registry store).
    pub fn relaunch(&self, args: &[&str]) -> Output {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_relaunch"));
        cmd.args(args).env_remove("CNB_INSECURE_REGISTRIES");
        if let Store::Registry(reg) = self {
            cmd.args(["--insecure-registry", &reg.host()]);
        }
        cmd.output().unwrap()
    }
}

pub fn stdout(out: &Output) -> String {
    String::from_utf8_lossy(&out.stdout).into_owned()
}

pub fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

/// Asserts success and returns stdout.
pub fn ok(out: Output) -> String {
    assert!(
        out.status.success(),
        "relaunch failed ({}):\n{}\n{}",
        out.status,
        stdout(&out),
        stderr(&out)
    );
    stdout(&out)
}

/// Asserts failure with `code` and returns stderr.
pub fn fails(out: Output, code: i32) -> String {
    assert_eq!(
        out.status.code(),
        Some(code),
        "expected exit {code}:\n{}\n{}",
        stdout(&out),
        stderr(&out)
    );
    stderr(&out)
}

/// The busybox/bash run image from the testkit's root filesystem, stored as `run:base`.
pub fn base_run_image(store: &Store, scratch: &Path) -> Image {
    let rootfs = scratch.join("rootfs");
    busybox_rootfs(&rootfs);
    let image = run_image_from_rootfs(&rootfs).unwrap();
    store.put(&image, "run", "base");
    image
}
