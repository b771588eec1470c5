//! Shared by the decoupling end-to-end tests: where images live (OCI layout or a real
//! registry), running the `relaunch` binary, and the launcher under test.

#![allow(dead_code)] // each test file uses a different subset

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::Arc;

use relaunch_lifecycle::apis::Api;
use relaunch_lifecycle::descriptor::LauncherBinary;
use relaunch_lifecycle::fixtures::{export_app, run_image_from_rootfs, sample_app, RunImageRef};
use relaunch_oci::remote::{ClientConfig, CredentialSource, RegistryClient, RegistryTransport};
use relaunch_oci::v1::Index;
use relaunch_oci::{
    read, write_image, write_index, Artifact, Child, Digest, Image, ImageOrIndex, IndexManifest,
    Layout, ManifestRef, NoProgress, Repo, Transport,
};
use relaunch_testkit::{busybox_rootfs, runc_run, skopeo_copy, Registry};

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

/// The reference multicall lifecycle (test oracle): `RELAUNCH_REFERENCE_DIR`, else
/// `shared/reference/lifecycle-v0.21.17` beside the repository (or beside a directory holding
/// it, as with git worktrees). `None` when absent: differential tests then say SKIPPED.
pub fn reference_lifecycle() -> Option<PathBuf> {
    const BINARY: &str = "lifecycle-v0.21.17";
    if let Some(dir) = std::env::var_os("RELAUNCH_REFERENCE_DIR") {
        return Some(PathBuf::from(dir).join(BINARY)).filter(|p| p.is_file());
    }
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .ancestors()
        .skip(2)
        .map(|dir| dir.join("shared/reference").join(BINARY))
        .find(|p| p.is_file())
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

    /// The repository `repo` with this store's credentials (registry: from its docker config).
    fn transport(&self, repo: &str) -> Arc<dyn Transport> {
        match self {
            Store::Layout(dir) => Arc::new(Layout::create(dir.join(repo)).unwrap()),
            Store::Registry(reg) => {
                let config = ClientConfig {
                    insecure_registries: vec![reg.host()],
                    credentials: CredentialSource::DockerConfigDir(reg.docker_config_dir()),
                    ..ClientConfig::default()
                };
                let client = Arc::new(RegistryClient::new(config));
                Arc::new(RegistryTransport::new(client, &reg.host(), repo))
            }
        }
    }

    pub fn put(&self, image: &Image, repo: &str, tag: &str) {
        write_image(
            image,
            self.transport(repo).as_ref(),
            &[tag.to_string()],
            &NoProgress,
        )
        .unwrap();
    }

    /// Stores an index over `images` (platforms from their configs) as `repo:tag`.
    pub fn put_index(&self, images: &[Image], repo: &str, tag: &str) {
        let mut index = Index::empty_oci();
        index.manifests = images.iter().map(IndexManifest::child_descriptor).collect();
        let children: Vec<Child> = images.iter().cloned().map(Child::from).collect();
        write_index(
            &IndexManifest::new(index),
            &children,
            self.transport(repo).as_ref(),
            &[tag.to_string()],
            &NoProgress,
        )
        .unwrap();
    }

    /// The image or index stored as `repo:tag`, every platform loaded.
    pub fn get_all(&self, repo: &str, tag: &str) -> ImageOrIndex {
        let transport = self.transport(repo);
        let repo = Repo {
            transport,
            reference: ManifestRef::Tag(tag.into()),
        };
        ImageOrIndex::load(&repo).unwrap_or_else(|e| panic!("reading {tag}: {e}"))
    }

    fn load(&self, repo: &str, tag: &str) -> relaunch_oci::Result<Image> {
        match read::load(&self.transport(repo), &ManifestRef::Tag(tag.into()))? {
            Artifact::Image(image) => Ok(image),
            Artifact::Index(_) => panic!("{repo}:{tag} is an index"),
        }
    }

    pub fn get(&self, repo: &str, tag: &str) -> Image {
        self.load(repo, tag)
            .unwrap_or_else(|e| panic!("reading {repo}:{tag}: {e}"))
    }

    pub fn exists(&self, repo: &str, tag: &str) -> bool {
        if let Store::Layout(dir) = self {
            if !dir.join(repo).exists() {
                return false;
            }
        }
        match self.load(repo, tag) {
            Ok(_) => true,
            Err(e) if e.is_not_found() => false,
            Err(e) => panic!("probing {repo}:{tag}: {e}"),
        }
    }

    /// Extra arguments skopeo needs for this store (registry credentials).
    pub fn skopeo_args(&self) -> Vec<String> {
        match self {
            Store::Layout(_) => Vec::new(),
            Store::Registry(reg) => vec![format!(
                "--authfile={}",
                reg.docker_config_dir().join("config.json").display()
            )],
        }
    }

    /// An OCI layout holding `repo:tag`, for umoci.
    pub fn layout_of(&self, repo: &str, tag: &str, scratch: &Path) -> PathBuf {
        match self {
            Store::Layout(dir) => dir.join(repo),
            Store::Registry(_) => {
                let dir = scratch.join(format!("unpack-{repo}-{tag}"));
                let args = self.skopeo_args();
                let args: Vec<&str> = args.iter().map(String::as_str).collect();
                self.explain_failure(|| {
                    skopeo_copy(
                        &self.skopeo(repo, tag),
                        &format!("oci:{}:{tag}", dir.display()),
                        &args,
                    )
                });
                dir
            }
        }
    }

    /// Runs `f`; if it panics on a registry store, first prints what the token server saw
    /// (who asked for which scopes, with or without credentials) and the authfile, which
    /// tells an auth failure's cause.
    pub fn explain_failure<T>(&self, f: impl FnOnce() -> T) -> T {
        let Store::Registry(reg) = self else {
            return f();
        };
        // Taken before `f`: looking it up afterwards would recreate a missing file.
        let authfile = reg.docker_config_dir().join("config.json");
        match std::panic::catch_unwind(std::panic::AssertUnwindSafe(f)) {
            Ok(v) => v,
            Err(panic) => {
                eprintln!(
                    "token server requests: {:#?}\n{}: {:?}",
                    reg.token_requests(),
                    authfile.display(),
                    std::fs::read_to_string(&authfile)
                );
                std::panic::resume_unwind(panic)
            }
        }
    }

    /// Runs `relaunch ARGS` (with `--insecure-registry` for a registry store).
    pub fn relaunch(&self, args: &[&str]) -> Output {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_relaunch"));
        cmd.args(args).env_remove("CNB_INSECURE_REGISTRIES");
        if let Store::Registry(reg) = self {
            cmd.args(["--insecure-registry", &reg.host()])
                .env("DOCKER_CONFIG", reg.docker_config_dir());
        }
        cmd.output().unwrap()
    }

    /// `relaunch decouple APP --tag OUT EXTRA...`
    pub fn decouple(&self, app: &str, out: &str, extra: &[&str]) -> Output {
        self.writing(&["decouple", app], out, extra)
    }

    /// `relaunch recouple APP --launcher LAUNCHER --tag OUT`
    pub fn recouple(&self, app: &str, launcher: &str, out: &str) -> Output {
        self.writing(&["recouple", app, "--launcher", launcher], out, &[])
    }

    /// `relaunch run-image add-launcher RUN --launcher LAUNCHER --tag OUT EXTRA...`
    pub fn add_launcher(&self, run: &str, launcher: &str, out: &str, extra: &[&str]) -> Output {
        let head = ["run-image", "add-launcher", run, "--launcher", launcher];
        self.writing(&head, out, extra)
    }

    /// `relaunch HEAD... --tag OUT EXTRA...`
    fn writing(&self, head: &[&str], out: &str, extra: &[&str]) -> Output {
        let mut args = head.to_vec();
        args.extend(["--tag", out]);
        args.extend_from_slice(extra);
        self.relaunch(&args)
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

/// Runs the unpacked `bundle` with runc, asserts the container succeeded and returns its
/// stdout.
pub fn run_container(bundle: &Path) -> String {
    let out = runc_run(bundle, None, &[]);
    assert!(
        out.status.success(),
        "container failed: {}\n{}",
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

/// The launcher with its ELF machine set to AArch64 (e_machine, offset 18): what a
/// cross-built launcher looks like to the architecture check; its self-description is kept.
pub fn arm64_build(amd64: &[u8]) -> Vec<u8> {
    let mut bytes = amd64.to_vec();
    bytes[18..20].copy_from_slice(&0xb7u16.to_le_bytes());
    bytes
}

/// The busybox/bash run image from the testkit's root filesystem, stored as `run:base`.
pub fn base_run_image(store: &Store, scratch: &Path) -> Image {
    let rootfs = scratch.join("rootfs");
    busybox_rootfs(&rootfs);
    let image = run_image_from_rootfs(&rootfs).unwrap();
    store.put(&image, "run", "base");
    image
}

/// `relaunch run-image add-launcher` from `run:base` to `run:TAG`; returns stdout.
pub fn stamp(store: &Store, launcher: &Path, tag: &str, extra: &[&str]) -> String {
    ok(store.add_launcher(
        &store.r("run", "base"),
        launcher.to_str().unwrap(),
        &store.r("run", tag),
        extra,
    ))
}

/// The sample app at Platform API 0.10 exported onto `run` (stored as `run:RUN_TAG`) with
/// `launcher` in its binary launcher layer, as the lifecycle would; stored as `app:built`.
pub fn export_built(store: &Store, run: &Image, run_tag: &str, launcher: &LauncherBinary) -> Image {
    let run_ref = RunImageRef {
        image: store.r("run", run_tag),
        reference: store.digest_ref("run", &run.digest()),
    };
    let version = &launcher
        .descriptor
        .as_ref()
        .expect("the launcher describes itself")
        .version;
    let built = export_app(
        run,
        &run_ref,
        &sample_app(Api::new(0, 10)),
        &launcher.bytes,
        version,
    )
    .unwrap();
    store.put(&built, "app", "built");
    built
}
