//! relaunch run as `rebaser` (argv[0]): the reference rebaser's report and naming cases
//! (`phase/rebaser_test.go`, reference §4.4) against a real registry, and its exit codes.
//! The reference's "image has an ID identifier" case needs a Docker daemon, which relaunch
//! does not drive (`-daemon` is refused with exit 3).

mod support;

use std::path::Path;
use std::process::{Command, Output};

use relaunch_lifecycle::descriptor::LauncherBinary;
use relaunch_lifecycle::rebase::STACK_ID_LABEL;
use relaunch_oci::mutate;
use relaunch_testkit::{Auth, Registry};
use serde_json::Value;
use support::{base_run_image, export_built, launcher_path, stamp, Store};

struct Rebaser {
    dir: tempfile::TempDir,
}

impl Rebaser {
    fn new() -> Rebaser {
        let dir = tempfile::tempdir().unwrap();
        std::os::unix::fs::symlink(env!("CARGO_BIN_EXE_relaunch"), dir.path().join("rebaser"))
            .unwrap();
        Rebaser { dir }
    }

    fn report_path(&self) -> std::path::PathBuf {
        self.dir.path().join("report.toml")
    }

    fn run(&self, api: Option<&str>, args: &[&str]) -> Output {
        let mut cmd = Command::new(self.dir.path().join("rebaser"));
        cmd.args(args)
            .env_remove("CNB_PLATFORM_API")
            .env_remove("CNB_RUN_IMAGE")
            .env("CNB_REPORT_PATH", self.report_path())
            .env("DOCKER_CONFIG", self.dir.path());
        if let Some(api) = api {
            cmd.env("CNB_PLATFORM_API", api);
        }
        cmd.output().unwrap()
    }

    fn report(&self) -> Value {
        let text = std::fs::read_to_string(self.report_path()).unwrap();
        serde_json::to_value(toml::from_str::<toml::Value>(&text).unwrap()).unwrap()
    }
}

fn stdout(out: &Output) -> String {
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// An app exported onto `run:current`, which now holds a newer run image.
fn world(scratch: &Path) -> Store {
    let store = Store::Registry(Registry::start(Auth::Anonymous));
    let launcher = launcher_path();
    let mut base = base_run_image(&store, scratch);
    mutate::set_labels(
        &mut base,
        [(STACK_ID_LABEL, Some("io.buildpacks.stacks.relaunch"))],
    )
    .unwrap();
    store.put(&base, "run", "base");
    stamp(&store, &launcher, "current", &[]);
    let run = store.get("run", "current");
    export_built(
        &store,
        &run,
        "current",
        &LauncherBinary::from_file(&launcher).unwrap(),
    );
    store.put(&base, "run", "current");
    store
}

/// Rebases `app:built` to `out` plus `:foo` and `:bar`; returns the rebaser.
fn rebase_to(store: &Store, out: &str) -> Rebaser {
    let r = Rebaser::new();
    let (extra1, extra2) = (store.r("app", "foo"), store.r("app", "bar"));
    let result = r.run(
        Some("0.15"),
        &[
            "-previous-image",
            &store.r("app", "built"),
            out,
            &extra1,
            &extra2,
        ],
    );
    assert!(result.status.success(), "{}", stdout(&result));
    r
}

mod app_image_and_run_image_exist {
    use super::*;

    #[test]
    fn saves_to_all_names() {
        let scratch = tempfile::tempdir().unwrap();
        let store = world(scratch.path());
        rebase_to(&store, &store.r("app", "built"));
        let rebased = store.get("app", "built");
        for tag in ["foo", "bar"] {
            assert_eq!(store.get("app", tag).digest(), rebased.digest(), "{tag}");
        }
        let base = store.get("run", "current");
        assert_eq!(rebased.diff_ids()[..1], base.diff_ids()[..]);
    }

    #[test]
    fn adds_all_names_to_report() {
        let scratch = tempfile::tempdir().unwrap();
        let store = world(scratch.path());
        let r = rebase_to(&store, &store.r("app", "built"));
        let want: Vec<String> = ["built", "foo", "bar"]
            .iter()
            .map(|t| store.r("app", t))
            .collect();
        assert_eq!(r.report()["image"]["tags"], serde_json::json!(want));
    }

    #[test]
    fn report_toml_image_has_a_digest_identifier_add_the_digest_to_the_report() {
        let scratch = tempfile::tempdir().unwrap();
        let store = world(scratch.path());
        let r = rebase_to(&store, &store.r("app", "built"));
        assert_eq!(
            r.report()["image"]["digest"],
            store.get("app", "built").digest().as_str()
        );
    }

    #[test]
    fn report_toml_checking_the_image_manifest_add_the_manifest_size_to_the_report() {
        let scratch = tempfile::tempdir().unwrap();
        let store = world(scratch.path());
        let r = rebase_to(&store, &store.r("app", "built"));
        let size = store.get("app", "built").raw_manifest().bytes.len();
        assert_eq!(r.report()["image"]["manifest-size"], size as i64);
    }

    #[test]
    fn outputimageref_is_different_than_previous_image_saves_using_outputimageref_not_previous_image(
    ) {
        let scratch = tempfile::tempdir().unwrap();
        let store = world(scratch.path());
        let before = store.get("app", "built").digest();
        let r = rebase_to(&store, &store.r("app", "fizz"));
        assert_eq!(
            store.get("app", "built").digest(),
            before,
            "previous image untouched"
        );
        let fizz = store.get("app", "fizz");
        assert_eq!(store.get("app", "foo").digest(), fizz.digest());
        assert_eq!(
            r.report()["image"]["tags"][0],
            store.r("app", "fizz").as_str()
        );
    }
}

#[test]
fn exit_codes_and_messages_are_the_lifecycles() {
    let r = Rebaser::new();
    let cases: [(Option<&str>, &[&str], i32, &str); 6] = [
        (None, &["x"], 11, "ERROR: failed to get platform API version; please set 'CNB_PLATFORM_API' to specify the desired platform API version"),
        (Some("0.16"), &["x"], 11, "ERROR: failed to set platform API: platform API version '0.16' is incompatible with the lifecycle"),
        (Some("0.15"), &[], 3, "ERROR: failed to parse arguments: at least one image argument is required"),
        (Some("0.15"), &["-image", "a", "-run-image", "b", "x"], 3, "ERROR: failed to resolve inputs: supply only one of -run-image or (deprecated) -image"),
        (Some("0.15"), &["-daemon", "x"], 3, "ERROR: failed to resolve inputs: -daemon is not supported"),
        (Some("0.15"), &["-run-image", "127.0.0.1:1/run", "127.0.0.1:1/app"], 72, "ERROR: failed to set app image: failed to access image to rebase"),
    ];
    for (api, args, code, says) in cases {
        let out = r.run(api, args);
        assert_eq!(out.status.code(), Some(code), "{args:?}: {}", stdout(&out));
        assert!(stdout(&out).starts_with(says), "{args:?}: {}", stdout(&out));
    }
    for (api, args) in [
        ("0.15", &["-bogus", "x"][..]),
        ("0.11", &["-force", "x"][..]),
    ] {
        let out = r.run(Some(api), args);
        assert_eq!(out.status.code(), Some(2), "{args:?}");
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(err.starts_with("flag provided but not defined: -"), "{err}");
    }
}

/// relaunch's own single-dash flags: `-launcher-image` swaps the launcher layer in place.
#[test]
fn relaunch_flags_launcher_image_swaps_the_launcher_layer() {
    use relaunch_lifecycle::app::lifecycle_metadata;
    use relaunch_lifecycle::fixtures::{bumped_version, with_launcher_version};
    use std::os::unix::fs::PermissionsExt;

    let scratch = tempfile::tempdir().unwrap();
    let store = world(scratch.path());
    let launcher = LauncherBinary::from_file(&launcher_path()).unwrap();
    let version = bumped_version(&launcher.descriptor.clone().unwrap().version);
    let newer = scratch.path().join("launcher-new");
    std::fs::write(
        &newer,
        with_launcher_version(&launcher.bytes, &version).unwrap(),
    )
    .unwrap();
    std::fs::set_permissions(&newer, std::fs::Permissions::from_mode(0o755)).unwrap();
    let before = store.get("app", "built");
    let r = Rebaser::new();
    let out = r.run(
        Some("0.15"),
        &[
            "-launcher-image",
            newer.to_str().unwrap(),
            "-previous-image",
            &store.r("app", "built"),
            &store.r("app", "swapped"),
        ],
    );
    assert!(out.status.success(), "{}", stdout(&out));
    let swapped = store.get("app", "swapped");
    let (old, index) = lifecycle_metadata(&before).unwrap();
    let (new, new_index) = lifecycle_metadata(&swapped).unwrap();
    assert_eq!(index, new_index);
    assert_ne!(old.launcher.sha, new.launcher.sha);
    assert_eq!(swapped.layers().len(), before.layers().len());
    assert_eq!(
        swapped.diff_ids()[..index],
        before.diff_ids()[..index],
        "launcher swap only: the base is not touched"
    );
}
