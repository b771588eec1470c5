//! The meta launcher against real delegates: the stand-in "old launcher" (ELF
//! self-description, Platform/Buildpack API 0.6 only, prints its argv) and the reference Go
//! launcher (sidecar descriptor), bundled beside a copy of the built launcher.

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;

use common::delegates::{reference_launcher, standin_delegate};
use common::{run, Fixture, Run, LAUNCHER};

const GO_SIDECAR: &str = "name = \"lifecycle\"\nversion = \"0.21.17\"\nplatform-apis = [\"0.7\", \"0.8\", \"0.9\", \"0.10\", \"0.11\", \"0.12\", \"0.13\", \"0.14\", \"0.15\"]\nbuildpack-apis = [\"0.7\", \"0.8\", \"0.9\", \"0.10\", \"0.11\", \"0.12\"]\n";

/// A fixture with its own copy of the launcher at `bin/launcher` (so `bin/launcher.d` is
/// this test's bundle) and `cnb/process/web` pointing at it.
struct Bundle {
    f: Fixture,
}

impl Bundle {
    fn new(name: &str, buildpack_api: &str) -> Bundle {
        let f = Fixture::new(name);
        f.exe("bin/launcher", std::fs::read(LAUNCHER).unwrap());
        std::os::unix::fs::symlink(f.path("bin/launcher"), f.path("cnb/process/web")).unwrap();
        f.dir("workspace");
        f.file(
            "layers/config/metadata.toml",
            format!("[[buildpacks]]\nid = \"some/bp\"\napi = \"{buildpack_api}\"\n\n[[processes]]\ntype = \"web\"\ncommand = [\"echo\", \"built-in ran web\"]\ndirect = true\nbuildpack-id = \"some/bp\"\n"),
        );
        Bundle { f }
    }

    fn dir(&self) -> PathBuf {
        self.f.dir("bin/launcher.d")
    }

    fn delegate(&self, name: &str, from: &Path, sidecar: Option<&str>) {
        self.f.exe(
            &format!("bin/launcher.d/{name}"),
            std::fs::read(from).unwrap(),
        );
        if let Some(toml) = sidecar {
            self.f.file(&format!("bin/launcher.d/{name}.toml"), toml);
        }
    }

    fn web(&self, platform: &str) -> Command {
        let mut cmd = self
            .f
            .command_at(&self.f.path("cnb/process/web"), "layers", "workspace");
        cmd.env("CNB_PLATFORM_API", platform).args(["a", "b c"]);
        cmd
    }

    fn run(&self, platform: &str) -> Run {
        run(&mut self.web(platform))
    }
}

#[test]
fn no_or_an_empty_bundle_behaves_like_the_plain_launcher() {
    let b = Bundle::new("bundle-empty", "0.12");
    let plain = b.run("0.6");
    plain.assert_code(11).assert_stdout("ERROR: failed to set platform API: platform API version '0.6' is incompatible with the lifecycle\n");
    // A file by that name (e.g. a build tool's dep file) is no bundle either.
    b.f.file("bin/launcher.d", "launcher: src/main.rs\n");
    let file = b.run("0.6");
    assert_eq!((file.code, &file.text), (plain.code, &plain.text));
    std::fs::remove_file(b.f.path("bin/launcher.d")).unwrap();
    b.dir();
    let empty = b.run("0.6");
    assert_eq!((empty.code, &empty.text), (plain.code, &plain.text));
    b.run("0.15")
        .assert_code(0)
        .assert_stdout("built-in ran web a b c\n");
}

/// The common case costs nothing: an app the built-in serves never makes the launcher look
/// for its bundle (strace: no `/proc/self/exe`, no `launcher.d`), while a refused one does.
#[test]
fn the_bundle_is_only_looked_at_when_the_built_in_refuses() {
    let b = Bundle::new("bundle-strace", "0.12");
    b.dir();
    let trace = |platform: &str| {
        let log = b.f.path(&format!("strace-{platform}.txt"));
        let web = b.web(platform);
        let mut cmd = Command::new("strace");
        cmd.args(["-f", "-e", "trace=file,getdents64", "-o"])
            .arg(&log)
            .arg(web.get_program())
            .args(web.get_args())
            .env_clear()
            .envs(web.get_envs().filter_map(|(k, v)| Some((k, v?))));
        let out = cmd
            .output()
            .expect("run strace (Debian package strace, scripts/deps.sh)");
        (out.status.code(), std::fs::read_to_string(&log).unwrap())
    };
    let (code, served) = trace("0.15");
    assert_eq!(code, Some(0), "{served}");
    assert!(
        !served.contains("/proc/self/exe") && !served.contains("launcher.d"),
        "{served}"
    );
    let (code, refused) = trace("0.6");
    assert_eq!(code, Some(11), "{refused}");
    assert!(
        refused.contains("readlink(\"/proc/self/exe\"") && refused.contains("launcher.d"),
        "{refused}"
    );
}

#[test]
fn dispatches_to_the_first_delegate_covering_the_app() {
    let standin = standin_delegate();
    let b = Bundle::new("bundle-dispatch", "0.6");
    b.delegate("01-standin", &standin, None);
    let reference = reference_launcher();
    if let Some(go) = &reference {
        b.delegate("02-lifecycle", go, Some(GO_SIDECAR));
    }
    let web = b.f.path("cnb/process/web");
    // Only the stand-in supports Platform 0.6 with Buildpack 0.6: argv[0] and args unchanged.
    b.run("0.6").assert_code(0).assert_stdout(&format!(
        "standin-old-launcher 0.6.0: argv=[{:?}, \"a\", \"b c\"] CNB_PLATFORM_API=0.6\n",
        web.display().to_string()
    ));
    // Platform 0.15 with Buildpack 0.6: each API is in some launcher, none has both.
    let mixed = b.run("0.15");
    mixed.assert_code(12);
    let lines: Vec<&str> = mixed.text.lines().collect();
    assert_eq!(lines[0], "ERROR: failed to set API for buildpack 'some/bp': buildpack API version '0.6' is incompatible with the lifecycle");
    assert!(
        lines[1].starts_with("ERROR: no launcher of the bundle "),
        "{}",
        mixed.text
    );
    mixed.assert_contains("built-in (relaunch-launcher ");
    mixed.assert_contains(
        "01-standin (standin-old-launcher 0.6.0): Platform APIs 0.6; Buildpack APIs 0.6",
    );
    if reference.is_some() {
        mixed.assert_contains("02-lifecycle (lifecycle 0.21.17): Platform APIs 0.7,0.8,");
    }
    // No launcher supports Platform 0.5: exit 11, the reference's message first.
    let none = b.run("0.5");
    none.assert_code(11);
    assert!(none.text.starts_with("ERROR: failed to set platform API: platform API version '0.5' is incompatible with the lifecycle\nERROR: no launcher of the bundle"), "{}", none.text);
}

#[test]
fn the_built_in_serves_what_it_covers_and_delegates_follow_name_order() {
    let Some(go) = reference_launcher() else {
        return;
    };
    let standin = standin_delegate();
    let b = Bundle::new("bundle-order", "0.12");
    // The reference launcher first, its sidecar claiming 0.6 too: it wins over the
    // stand-in for 0.6 apps, and the built-in still serves 0.15.
    let claims_0_6 = GO_SIDECAR.replace("[\"0.7\", \"0.8\"", "[\"0.6\", \"0.7\", \"0.8\"");
    b.delegate("10-standin", &standin, None);
    b.delegate("05-lifecycle", &go, Some(&claims_0_6));
    b.run("0.15")
        .assert_code(0)
        .assert_stdout("built-in ran web a b c\n");
    // The Go launcher now runs and refuses 0.6 itself: the same output as running it directly.
    let via_bundle = b.run("0.6");
    let mut direct = b.web("0.6");
    direct.arg0_as(&b.f.path("cnb/process/web"), &go);
    let direct = run(&mut direct);
    assert_eq!(direct.code, Some(11), "{}", direct.text);
    assert_eq!(
        (via_bundle.code, &via_bundle.text),
        (direct.code, &direct.text)
    );
}

#[test]
fn a_broken_bundle_is_an_error_naming_the_entry() {
    let b = Bundle::new("bundle-broken", "0.6");
    let dir = b.dir();
    let expect = |want: &str| {
        let r = b.run("0.6");
        r.assert_code(82);
        r.assert_contains(&format!(
            "ERROR: failed to launch: launcher bundle: {}/",
            dir.display()
        ));
        r.assert_contains(want);
    };
    b.f.exe("bin/launcher.d/01-script", "#!/bin/sh\necho hi\n");
    expect("01-script: not an ELF file, and no sidecar descriptor");
    b.f.file("bin/launcher.d/01-script.toml", "name = ");
    expect("01-script: 01-script.toml: toml: line 1:");
    b.f.file(
        "bin/launcher.d/01-script.toml",
        "name = \"x\"\nversion = \"1\"\nplatform-apis = []\nbuildpack-apis = [\"0.6\"]\n",
    );
    expect("01-script: 'platform-apis' lists no API");
    b.f.file("bin/launcher.d/00-orphan.toml", GO_SIDECAR);
    expect("00-orphan.toml: descriptor without a delegate of that name");
    std::fs::remove_file(b.f.path("bin/launcher.d/00-orphan.toml")).unwrap();
    b.f.exe(
        "bin/launcher.d/00-no-description",
        std::fs::read("/bin/true").unwrap(),
    );
    expect("00-no-description: no .cnb_launcher self-description and no sidecar descriptor");
}

trait Arg0 {
    /// Runs `program` with argv[0] set to `arg0`, as a dispatching launcher execs it.
    fn arg0_as(&mut self, arg0: &Path, program: &Path);
}

impl Arg0 for Command {
    fn arg0_as(&mut self, arg0: &Path, program: &Path) {
        use std::os::unix::process::CommandExt;
        let mut direct = Command::new(program);
        direct.arg0(arg0);
        direct.args(self.get_args());
        direct.env_clear();
        for (k, v) in self.get_envs() {
            if let Some(v) = v {
                direct.env(k, v);
            }
        }
        *self = direct;
    }
}
