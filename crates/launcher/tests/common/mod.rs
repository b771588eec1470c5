//! Fixture trees in temp dirs and a runner for the built `launcher` binary.
#![allow(dead_code)] // each test file uses a different subset

pub mod delegates;
pub mod signals;

use std::ffi::OsStr;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::atomic::{AtomicUsize, Ordering};

pub const LAUNCHER: &str = env!("CARGO_BIN_EXE_launcher");

/// A world-readable temp dir (tests may drop to an unprivileged user), removed on drop.
pub struct Fixture {
    pub root: PathBuf,
}

impl Fixture {
    pub fn new(name: &str) -> Fixture {
        static N: AtomicUsize = AtomicUsize::new(0);
        let root = std::env::temp_dir().join(format!(
            "launcher-it-{name}-{}-{}",
            std::process::id(),
            N.fetch_add(1, Ordering::Relaxed)
        ));
        let _ = std::fs::remove_dir_all(&root);
        std::fs::create_dir_all(&root).unwrap();
        std::fs::set_permissions(&root, std::fs::Permissions::from_mode(0o755)).unwrap();
        let f = Fixture { root };
        f.dir("cnb/lifecycle");
        f.dir("cnb/process");
        std::os::unix::fs::symlink(LAUNCHER, f.path("cnb/lifecycle/launcher")).unwrap();
        f
    }

    pub fn path(&self, rel: &str) -> PathBuf {
        self.root.join(rel)
    }

    pub fn dir(&self, rel: &str) -> PathBuf {
        let p = self.path(rel);
        std::fs::create_dir_all(&p).unwrap();
        p
    }

    pub fn file(&self, rel: &str, contents: impl AsRef<[u8]>) -> PathBuf {
        self.file_mode(rel, contents, 0o644)
    }

    pub fn exe(&self, rel: &str, contents: impl AsRef<[u8]>) -> PathBuf {
        self.file_mode(rel, contents, 0o755)
    }

    fn file_mode(&self, rel: &str, contents: impl AsRef<[u8]>, mode: u32) -> PathBuf {
        let p = self.path(rel);
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(&p, contents).unwrap();
        std::fs::set_permissions(&p, std::fs::Permissions::from_mode(mode)).unwrap();
        p
    }

    /// `cnb/process/<type>` -> `../lifecycle/launcher` -> the built binary.
    pub fn process_link(&self, process_type: &str) -> PathBuf {
        let link = self.path(&format!("cnb/process/{process_type}"));
        if !link.exists() {
            std::os::unix::fs::symlink("../lifecycle/launcher", &link).unwrap();
        }
        link
    }

    /// A command for the launcher invoked as `entrypoint` with a clean environment.
    pub fn command(&self, entrypoint: &str, layers: &str, app: &str) -> Command {
        let program = if entrypoint == "launcher" {
            self.path("cnb/lifecycle/launcher")
        } else {
            self.process_link(entrypoint)
        };
        self.command_at(&program, layers, app)
    }

    /// A command running `program` (any path to the launcher) with a clean environment.
    pub fn command_at(&self, program: &Path, layers: &str, app: &str) -> Command {
        let mut cmd = Command::new(program);
        cmd.env_clear()
            .env(
                "PATH",
                "/cnb/process:/cnb/lifecycle:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
            )
            .env("CNB_LAYERS_DIR", self.path(layers))
            .env("CNB_APP_DIR", self.path(app))
            .env("CNB_NO_COLOR", "true");
        cmd
    }

    /// [`Fixture::command`] on `layers`/`workspace` with `CNB_PLATFORM_API` and user args.
    pub fn launch(&self, entrypoint: &str, platform: &str, args: &[&str]) -> Command {
        let mut cmd = self.command(entrypoint, "layers", "workspace");
        cmd.env("CNB_PLATFORM_API", platform).args(args);
        cmd
    }
}

impl Drop for Fixture {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.root);
    }
}

/// Output of a finished launch: combined stdout+stderr as text, and the exit code.
pub struct Run {
    pub code: Option<i32>,
    pub stdout: Vec<u8>,
    pub text: String,
}

pub fn run(cmd: &mut Command) -> Run {
    let Output {
        status,
        stdout,
        stderr,
    } = cmd.output().expect("spawn launcher");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&stdout),
        String::from_utf8_lossy(&stderr)
    );
    Run {
        code: status.code(),
        stdout,
        text,
    }
}

impl Run {
    #[track_caller]
    pub fn assert_contains(&self, want: &str) -> &Run {
        assert!(
            self.text.contains(want),
            "output does not contain {want:?}:\n{}",
            self.text
        );
        self
    }

    #[track_caller]
    pub fn assert_stdout(&self, want: &str) -> &Run {
        assert_eq!(
            String::from_utf8_lossy(&self.stdout),
            want,
            "stdout; all output:\n{}",
            self.text
        );
        self
    }

    #[track_caller]
    pub fn assert_code(&self, code: i32) -> &Run {
        assert_eq!(self.code, Some(code), "exit code; output:\n{}", self.text);
        self
    }
}

pub fn is_root() -> bool {
    // SAFETY: geteuid has no preconditions.
    unsafe { libc::geteuid() == 0 }
}

pub fn os(s: &str) -> &OsStr {
    OsStr::new(s)
}

pub fn display(p: &Path) -> String {
    p.display().to_string()
}
