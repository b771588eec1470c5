//! The shipped static binary (dist/launcher): its embedded self-description and a run
//! inside an empty chroot with static busybox as the only other program.
//!
//! `RELAUNCH_STATIC_LAUNCHER` names the binary (scripts/test.sh sets it to dist/launcher
//! after building it); when unset, this test runs scripts/build-launcher.sh itself.

mod common;

use std::os::unix::fs::PermissionsExt;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::Command;

use common::{is_root, run, Fixture};

fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

fn static_launcher() -> PathBuf {
    if let Some(p) = std::env::var_os("RELAUNCH_STATIC_LAUNCHER") {
        return PathBuf::from(p);
    }
    let status = Command::new("bash")
        .arg(repo_root().join("scripts/build-launcher.sh"))
        .status()
        .expect("run scripts/build-launcher.sh");
    assert!(status.success(), "scripts/build-launcher.sh failed");
    repo_root().join("dist/launcher")
}

/// Minimal ELF64 little-endian reader: section contents by name, and whether the file
/// asks for a dynamic loader (PT_INTERP).
struct Elf(Vec<u8>);

impl Elf {
    fn read(path: &Path) -> Elf {
        let bytes = std::fs::read(path).unwrap_or_else(|e| panic!("read {}: {e}", path.display()));
        assert_eq!(&bytes[..4], b"\x7fELF", "{} is not ELF", path.display());
        assert_eq!(bytes[4], 2, "ELF64 expected");
        Elf(bytes)
    }

    fn u16(&self, at: usize) -> usize {
        u16::from_le_bytes(self.0[at..at + 2].try_into().unwrap()) as usize
    }

    fn u32(&self, at: usize) -> usize {
        u32::from_le_bytes(self.0[at..at + 4].try_into().unwrap()) as usize
    }

    fn u64(&self, at: usize) -> usize {
        u64::from_le_bytes(self.0[at..at + 8].try_into().unwrap()) as usize
    }

    fn section(&self, wanted: &str) -> Option<&[u8]> {
        let (shoff, shentsize, shnum, shstrndx) = (
            self.u64(0x28),
            self.u16(0x3a),
            self.u16(0x3c),
            self.u16(0x3e),
        );
        let header = |i: usize| shoff + i * shentsize;
        let names_at = self.u64(header(shstrndx) + 24);
        (0..shnum).find_map(|i| {
            let h = header(i);
            let name_start = names_at + self.u32(h);
            let name_len = self.0[name_start..].iter().position(|&b| b == 0)?;
            (&self.0[name_start..name_start + name_len] == wanted.as_bytes()).then(|| {
                let (offset, size) = (self.u64(h + 24), self.u64(h + 32));
                &self.0[offset..offset + size]
            })
        })
    }

    fn wants_interpreter(&self) -> bool {
        let (phoff, phentsize, phnum) = (self.u64(0x20), self.u16(0x36), self.u16(0x38));
        (0..phnum).any(|i| self.u32(phoff + i * phentsize) == 3)
    }
}

fn assert_self_description(binary: &Path) {
    let elf = Elf::read(binary);
    let section = elf
        .section(".cnb_launcher")
        .unwrap_or_else(|| panic!("{} has no .cnb_launcher section", binary.display()));
    assert_ne!(section.last(), Some(&0), "no trailing NUL");
    let json: serde_json::Value = serde_json::from_slice(section).expect("section is JSON");
    assert_eq!(json["name"], "relaunch-launcher");
    assert_eq!(json["version"], env!("CARGO_PKG_VERSION"));
    assert_eq!(
        json["platform-apis"],
        serde_json::json!(launcher::api::PLATFORM_APIS)
    );
    assert_eq!(
        json["buildpack-apis"],
        serde_json::json!(launcher::api::BUILDPACK_APIS)
    );
    assert!(!section.iter().any(u8::is_ascii_whitespace), "compact JSON");
    assert!(section.starts_with(b"{\"name\":"), "name comes first");
}

#[test]
fn self_description_section_in_dev_and_static_builds() {
    assert_self_description(Path::new(common::LAUNCHER));
    let shipped = static_launcher();
    assert_self_description(&shipped);
    // The budget scripts/check-launcher-size.sh enforces: 640 KiB.
    let size = std::fs::metadata(&shipped).unwrap().len();
    assert!(size <= 640 * 1024, "{} is {size} bytes", shipped.display());
    assert!(
        !Elf::read(&shipped).wants_interpreter(),
        "{} must be statically linked",
        shipped.display()
    );
}

fn copy_exe(from: &Path, to: &Path) {
    std::fs::create_dir_all(to.parent().unwrap()).unwrap();
    std::fs::copy(from, to).unwrap_or_else(|e| panic!("copy {}: {e}", from.display()));
    std::fs::set_permissions(to, std::fs::Permissions::from_mode(0o755)).unwrap();
}

fn in_chroot(root: &Path, program: &str, args: &[&str]) -> Command {
    let mut cmd = Command::new(program);
    cmd.args(args)
        .env_clear()
        .env("PATH", "/cnb/process:/cnb/lifecycle:/bin")
        .env("CNB_PLATFORM_API", "0.15")
        .env("CNB_NO_COLOR", "1");
    let root = root.to_owned();
    // SAFETY: chroot/chdir are async-signal-safe syscalls; nothing allocates here.
    unsafe {
        cmd.pre_exec(move || {
            std::os::unix::fs::chroot(&root)?;
            std::env::set_current_dir("/")
        });
    }
    cmd
}

#[test]
fn runs_in_an_empty_root_with_static_busybox() {
    assert!(
        is_root(),
        "this test needs root to chroot(2); run it as root (CI does)"
    );
    let busybox = Path::new("/bin/busybox");
    assert!(
        busybox.exists() && !Elf::read(busybox).wants_interpreter(),
        "/bin/busybox must be the static busybox (Debian busybox-static; scripts/deps.sh installs it)"
    );
    let shipped = static_launcher();
    let f = Fixture::new("chroot");
    let root = f.dir("rootfs");
    copy_exe(&shipped, &root.join("cnb/lifecycle/launcher"));
    copy_exe(busybox, &root.join("bin/busybox"));
    std::fs::create_dir_all(root.join("cnb/process")).unwrap();
    std::os::unix::fs::symlink("/cnb/lifecycle/launcher", root.join("cnb/process/web")).unwrap();
    std::os::unix::fs::symlink("busybox", root.join("bin/sh")).unwrap();
    f.dir("rootfs/workspace");
    f.file(
        "rootfs/layers/config/metadata.toml",
        r#"[[buildpacks]]
id = "example/bp"
api = "0.12"
[[processes]]
type = "web"
command = ["busybox", "sh", "-c", "echo \"$GREETING $FROM_EXECD\"; pwd; exit 5"]
direct = true
buildpack-id = "example/bp"
"#,
    );
    f.file(
        "rootfs/layers/example_bp/layer/env.launch/GREETING",
        "hello",
    );
    f.exe(
        "rootfs/layers/example_bp/layer/exec.d/set-var",
        "#!/bin/sh\necho 'FROM_EXECD = \"from-exec.d\"' >&3\n",
    );

    // exec.d needs /dev/null for its stdin, as under the reference (a container has one).
    let out = run(&mut in_chroot(&root, "/cnb/process/web", &[]));
    out.assert_code(82)
        .assert_contains("exec.d/set-var': open /dev/null: no such file or directory\n");
    std::fs::create_dir(root.join("dev")).unwrap();
    let dev_null =
        std::ffi::CString::new(root.join("dev/null").into_os_string().into_encoded_bytes())
            .unwrap();
    // SAFETY: a valid path; creates the character device 1:3 (root only, checked above).
    let made = unsafe {
        libc::mknod(
            dev_null.as_ptr(),
            libc::S_IFCHR | 0o666,
            libc::makedev(1, 3),
        )
    };
    assert_eq!(made, 0, "mknod {}/dev/null", root.display());

    // Default /layers and /workspace; exec.d via /bin/sh; env file; PATH lookup; exit code.
    let out = run(&mut in_chroot(&root, "/cnb/process/web", &[]));
    out.assert_code(5);
    assert_eq!(out.text, "hello from-exec.d\n/workspace\n");

    // No /bin/bash in this root: a shell process fails like the reference.
    run(&mut in_chroot(
        &root,
        "/cnb/lifecycle/launcher",
        &["echo", "hi"],
    ))
    .assert_code(82)
    .assert_contains("ERROR: failed to launch: bash exec: no such file or directory\n");

    // A missing metadata.toml in a non-CNB root exits 1 (G-9).
    std::fs::remove_file(root.join("layers/config/metadata.toml")).unwrap();
    let out = run(&mut in_chroot(
        &root,
        "/cnb/lifecycle/launcher",
        &["--", "busybox", "true"],
    ));
    out.assert_code(1);
    assert_eq!(
        out.text,
        "ERROR: failed to read metadata: open /layers/config/metadata.toml: no such file or directory\n"
    );
}
