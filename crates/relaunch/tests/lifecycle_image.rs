//! `relaunch lifecycle-image` end to end: a lifecycle image laid out like upstream's, built
//! from the reference lifecycle v0.21.17 (`../shared/reference/`), is derived; the derived
//! image's `/cnb/lifecycle/exporter` exports an app onto a run image in a real registry, and
//! the app runs under runc with relaunch's launcher and its SBOM. Bad input fails with one
//! line and writes nothing; a multi-arch index gets a launcher per architecture.

mod support;

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::Command;

use relaunch_lifecycle::descriptor::read_descriptor;
use relaunch_lifecycle::fixtures::{
    run_image_from_rootfs, upstream_lifecycle_image, LifecycleFiles, PHASES,
};
use relaunch_lifecycle::lifecycle_image::{LauncherRecord, LAUNCHER_LABEL, SBOM_FILES};
use relaunch_oci::layer::read::read_file;
use relaunch_oci::layer::Content;
use relaunch_oci::v1::Flavor;
use relaunch_oci::{Image, NoProgress};
use relaunch_testkit::{busybox_rootfs, runc_run, skopeo_inspect, umoci_unpack, Auth, Registry};
use serde_json::Value;
use support::{arm64_build, fails, launcher_path, ok, stdout, Store};

const PLATFORM_APIS: [&str; 9] = [
    "0.7", "0.8", "0.9", "0.10", "0.11", "0.12", "0.13", "0.14", "0.15",
];
const BUILDPACK_APIS: [&str; 6] = ["0.7", "0.8", "0.9", "0.10", "0.11", "0.12"];

/// `RELAUNCH_REFERENCE_DIR`, else `../shared/reference/` beside the repository; `None`
/// (with the reason printed) when the reference binaries are not there.
fn reference_dir() -> Option<PathBuf> {
    let dir = std::env::var_os("RELAUNCH_REFERENCE_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("../../../shared/reference"));
    if dir.join("lifecycle-v0.21.17").is_file() && dir.join("lifecycle-v0.21.17-launcher").is_file()
    {
        return Some(dir);
    }
    eprintln!(
        "SKIPPED: the reference lifecycle is not at {} (lifecycle-v0.21.17, lifecycle-v0.21.17-launcher)",
        dir.display()
    );
    None
}

fn strings(apis: &[&str]) -> Vec<String> {
    apis.iter().map(|a| a.to_string()).collect()
}

/// The upstream-shaped lifecycle image of the reference v0.21.17 binaries.
fn reference_lifecycle_image(reference: &Path) -> Image {
    upstream_lifecycle_image(&LifecycleFiles {
        version: "0.21.17".into(),
        platform_apis: strings(&PLATFORM_APIS),
        buildpack_apis: strings(&BUILDPACK_APIS),
        architecture: "amd64".into(),
        lifecycle: Content::Path(reference.join("lifecycle-v0.21.17")),
        launcher: Content::Path(reference.join("lifecycle-v0.21.17-launcher")),
    })
    .unwrap()
}

/// A lifecycle image with small stand-in binaries (for tests that never run them).
fn small_lifecycle_image(arch: &str, platform_apis: &[&str]) -> Image {
    upstream_lifecycle_image(&LifecycleFiles {
        version: "0.21.17".into(),
        platform_apis: strings(platform_apis),
        buildpack_apis: strings(&BUILDPACK_APIS),
        architecture: arch.into(),
        lifecycle: Content::Bytes(b"lifecycle stand-in".to_vec()),
        launcher: Content::Bytes(format!("go launcher for {arch}").into_bytes()),
    })
    .unwrap()
}

fn relaunch(args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_relaunch"))
        .args(args)
        .env_remove("CNB_INSECURE_REGISTRIES")
        .output()
        .unwrap()
}

fn write(path: &Path, contents: &str, mode: u32) {
    fs::create_dir_all(path.parent().unwrap()).unwrap();
    fs::write(path, contents).unwrap();
    fs::set_permissions(path, fs::Permissions::from_mode(mode)).unwrap();
}

/// A layers directory as the builder leaves it: one buildpack (API 0.12) with a launch
/// layer holding an env file and an exec.d program, and a `web` process printing both.
fn layers_fixture(layers: &Path, run_image: &str, run_digest_ref: &str) {
    let bp = "example/hello";
    write(
        &layers.join("group.toml"),
        &format!("[[group]]\nid = \"{bp}\"\nversion = \"1.0.0\"\napi = \"0.12\"\n"),
        0o644,
    );
    write(
        &layers.join("analyzed.toml"),
        &format!("[run-image]\nreference = \"{run_digest_ref}\"\nimage = \"{run_image}\"\n"),
        0o644,
    );
    let layer = layers.join("example_hello/greeting");
    write(
        &layers.join("example_hello/greeting.toml"),
        "[types]\nlaunch = true\n",
        0o644,
    );
    write(
        &layer.join("env.launch/GREETING.override"),
        "hello from env",
        0o644,
    );
    write(
        &layer.join("exec.d/set-origin"),
        "#!/bin/sh\necho 'ORIGIN = \"set by exec.d\"' >&3\n",
        0o755,
    );
    write(
        &layers.join("config/metadata.toml"),
        &format!(
            r#"[[buildpacks]]
id = "{bp}"
version = "1.0.0"
api = "0.12"

[[processes]]
type = "web"
command = ["/bin/sh"]
args = ["-c", "echo \"$GREETING / $ORIGIN\""]
direct = true
buildpack-id = "{bp}"
"#
        ),
        0o644,
    );
}

#[test]
fn the_reference_exporter_of_a_derived_lifecycle_image_ships_relaunchs_launcher() {
    let Some(reference) = reference_dir() else {
        return;
    };
    relaunch_testkit::require_root();
    let launcher = launcher_path();
    let sbom_path = PathBuf::from(format!("{}.cdx.json", launcher.display()));
    assert!(
        sbom_path.is_file(),
        "{} missing: scripts/build-launcher.sh writes it",
        sbom_path.display()
    );
    let ours = fs::read(&launcher).unwrap();
    let our_sbom = fs::read(&sbom_path).unwrap();
    let tmp = tempfile::tempdir().unwrap();
    let t = tmp.path();

    // 1. Upstream-shaped lifecycle image → derived image.
    let store = Store::Layout(t.join("layouts"));
    let source = reference_lifecycle_image(&reference);
    store.put(&source, "lifecycle", "0.21.17");
    let started = std::time::Instant::now();
    let out = ok(relaunch(&[
        "lifecycle-image",
        &store.r("lifecycle", "0.21.17"),
        "--launcher",
        launcher.to_str().unwrap(),
        "--tag",
        &store.r("lifecycle", "relaunch"),
        "--json",
    ]));
    let report: Value = serde_json::from_str(&out).unwrap();
    let record: LauncherRecord =
        serde_json::from_value(report["platforms"][0]["launcher"].clone()).unwrap();
    assert_eq!(record.source, source.digest());
    assert_eq!(record.sbom, [SBOM_FILES[0]]);
    assert_eq!(record.removed, SBOM_FILES[1..]);
    let elapsed = started.elapsed();
    let derived = store.get("lifecycle", "relaunch");
    let top = &derived.layers()[derived.layers().len() - 1];
    eprintln!(
        "relaunch lifecycle-image (v0.21.17, layout to layout): {:.2} s; added layer {} bytes (lifecycle layer {} bytes)",
        elapsed.as_secs_f64(),
        top.descriptor.size,
        source.layers()[1].descriptor.size
    );
    assert_eq!(derived.layers().len(), source.layers().len() + 1);
    assert_eq!(
        derived.diff_ids()[..source.layers().len()],
        source.diff_ids()[..]
    );
    let label: LauncherRecord =
        serde_json::from_str(&derived.label(LAUNCHER_LABEL).unwrap()).unwrap();
    assert_eq!(label, record);
    for l in [
        "io.buildpacks.lifecycle.apis",
        "io.buildpacks.lifecycle.version",
    ] {
        assert_eq!(derived.label(l), source.label(l), "{l} kept");
    }

    // 2. skopeo and umoci accept it; its /cnb/lifecycle is upstream's with our launcher.
    let layout = t.join("layouts/lifecycle");
    let inspected = skopeo_inspect(&format!("oci:{}:relaunch", layout.display()), &[]);
    assert_eq!(inspected["Layers"].as_array().unwrap().len(), 3);
    let bundle = t.join("lifecycle-bundle");
    umoci_unpack(&layout, "relaunch", &bundle);
    let cnb = bundle.join("rootfs/cnb/lifecycle");
    assert_eq!(fs::read(cnb.join("launcher")).unwrap(), ours);
    let mode = fs::metadata(cnb.join("launcher"))
        .unwrap()
        .permissions()
        .mode();
    assert_eq!(mode & 0o7777, 0o755, "the original mode");
    assert_eq!(
        fs::read(cnb.join("launcher.sbom.cdx.json")).unwrap(),
        our_sbom
    );
    for gone in ["launcher.sbom.spdx.json", "launcher.sbom.syft.json"] {
        assert!(!cnb.join(gone).exists(), "{gone} removed");
    }
    assert!(
        cnb.join("lifecycle.sbom.spdx.json").exists(),
        "lifecycle SBOMs kept"
    );
    for phase in PHASES {
        assert_eq!(
            fs::read_link(cnb.join(phase)).unwrap(),
            Path::new("lifecycle")
        );
    }

    // pack (builder `lifecycle.uri = "docker://…"`) and kpack take only the last layer of a
    // lifecycle image: extracted alone, it holds the same /cnb/lifecycle.
    let blob = layout
        .join("blobs/sha256")
        .join(top.descriptor.digest.hex());
    let alone = t.join("top-layer");
    fs::create_dir_all(&alone).unwrap();
    let untar = Command::new("tar")
        .arg("-xzf")
        .arg(&blob)
        .arg("-C")
        .arg(&alone)
        .output()
        .unwrap();
    assert!(untar.status.success(), "{untar:?}");
    assert_eq!(tree_of(&alone.join("cnb/lifecycle")), tree_of(&cnb));

    // 3. The derived image's exporter exports an app onto a run image in a registry.
    let registry = Registry::start(Auth::Anonymous);
    let host = registry.host();
    let rootfs = t.join("rootfs");
    busybox_rootfs(&rootfs);
    let mut run = run_image_from_rootfs(&rootfs).unwrap();
    // Docker media types: the reference exporter adds Docker layers whatever the base.
    run.set_flavor(Flavor::Docker);
    let registry_store = Store::Registry(registry);
    registry_store.put(&run, "run", "base");
    let layers = t.join("layers");
    let app_dir = t.join("workspace");
    write(&app_dir.join("index.txt"), "app source\n", 0o644);
    layers_fixture(
        &layers,
        &format!("{host}/run:base"),
        &format!("{host}/run@{}", run.digest()),
    );
    let export = Export {
        exporter: cnb.join("exporter"),
        layers: layers.clone(),
        app_dir: app_dir.clone(),
        docker_config: t.join("docker-config"),
    };
    export.run(&cnb.join("launcher"), &cnb, &format!("{host}/app:latest"));

    // 4. The app: relaunch's launcher at /cnb/lifecycle/launcher, its SBOM in the launch
    // SBOM layer, and it starts with env files and exec.d applied.
    let app = registry_store.get("app", "latest");
    let (entry, bytes) = read_file(&app, "/cnb/lifecycle/launcher", 64 << 20).unwrap();
    assert_eq!(bytes, ours);
    assert_eq!(entry.mode & 0o7777, 0o755);
    let described = read_descriptor(&bytes).unwrap().expect("self-description");
    assert_eq!(described.name, "relaunch-launcher");
    // The exporter still records its own version as the launcher's (README).
    let build: Value =
        serde_json::from_str(&app.label("io.buildpacks.build.metadata").unwrap()).unwrap();
    let recorded = build["launcher"]["version"].as_str().unwrap_or_default();
    assert!(recorded.starts_with("0.21.17"), "{build}");
    let sbom_dir = format!(
        "{}/sbom/launch/buildpacksio_lifecycle/launcher",
        layers.display()
    );
    let (sbom_entry, sbom) =
        read_file(&app, &format!("{sbom_dir}/launcher.sbom.cdx.json"), 1 << 20).unwrap();
    assert_eq!(sbom, our_sbom);
    let sbom_layer = app.history()[..]
        .iter()
        .filter(|h| h.get("empty_layer").and_then(Value::as_bool) != Some(true))
        .position(|h| h["created_by"] == "Software Bill-of-Materials")
        .expect("a launch SBOM layer");
    assert_eq!(sbom_entry.layer, sbom_layer, "in the launch SBOM layer");
    for other in ["launcher.sbom.spdx.json", "launcher.sbom.syft.json"] {
        let e = read_file(&app, &format!("{sbom_dir}/{other}"), 1 << 20).unwrap_err();
        assert!(e.is_not_found(), "{other}: {e}");
    }

    let app_layout = registry_store.layout_of("app", "latest", t);
    let app_bundle = t.join("app-bundle");
    umoci_unpack(&app_layout, "latest", &app_bundle);
    let run_out = runc_run(&app_bundle, None, &[]);
    assert!(
        run_out.status.success(),
        "app failed: {}{}",
        stdout(&run_out),
        String::from_utf8_lossy(&run_out.stderr)
    );
    assert_eq!(stdout(&run_out).trim(), "hello from env / set by exec.d");

    // 5. Rolling an existing app: one exported with the Go launcher gets relaunch's launcher
    // from the derived image through `relaunch rebase --launcher-image`, and still starts.
    let go_launcher = reference.join("lifecycle-v0.21.17-launcher");
    let no_sboms = t.join("no-sboms");
    fs::create_dir_all(&no_sboms).unwrap();
    export.run(&go_launcher, &no_sboms, &format!("{host}/app-go:latest"));
    let before = registry_store.get("app-go", "latest");
    let (_, go_bytes) = read_file(&before, "/cnb/lifecycle/launcher", 64 << 20).unwrap();
    assert_eq!(go_bytes, fs::read(&go_launcher).unwrap());
    ok(registry_store.relaunch(&[
        "rebase",
        &format!("{host}/app-go:latest"),
        "--launcher-image",
        &store.r("lifecycle", "relaunch"),
    ]));
    let after = registry_store.get("app-go", "latest");
    let (_, rolled) = read_file(&after, "/cnb/lifecycle/launcher", 64 << 20).unwrap();
    assert_eq!(rolled, ours);
    let rolled_layout = registry_store.layout_of("app-go", "latest", t);
    let rolled_bundle = t.join("rolled-bundle");
    umoci_unpack(&rolled_layout, "latest", &rolled_bundle);
    let rolled_out = runc_run(&rolled_bundle, None, &[]);
    assert_eq!(
        stdout(&rolled_out).trim(),
        "hello from env / set by exec.d",
        "{}",
        String::from_utf8_lossy(&rolled_out.stderr)
    );
}

/// The reference exporter (from an extracted lifecycle) on the layers fixture.
struct Export {
    exporter: PathBuf,
    layers: PathBuf,
    app_dir: PathBuf,
    docker_config: PathBuf,
}

impl Export {
    /// Exports `image` packaging `launcher` and the launcher SBOMs in `launcher_sbom`.
    fn run(&self, launcher: &Path, launcher_sbom: &Path, image: &str) {
        fs::create_dir_all(&self.docker_config).unwrap();
        let path = |p: &Path| p.to_str().unwrap().to_string();
        let layers = &self.layers;
        let out = Command::new(&self.exporter)
            .args(["-layers", &path(layers), "-app", &path(&self.app_dir)])
            .args(["-group", &path(&layers.join("group.toml"))])
            .args(["-analyzed", &path(&layers.join("analyzed.toml"))])
            .args([
                "-launcher",
                &path(launcher),
                "-launcher-sbom",
                &path(launcher_sbom),
            ])
            .args([
                "-process-type",
                "web",
                "-uid",
                "0",
                "-gid",
                "0",
                "-log-level",
                "debug",
            ])
            .arg(image)
            .env("CNB_PLATFORM_API", "0.15")
            .env("CNB_NO_COLOR", "true")
            .env("DOCKER_CONFIG", &self.docker_config)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "exporter failed: {}{}",
            stdout(&out),
            String::from_utf8_lossy(&out.stderr)
        );
    }
}

/// Name → (symlink target or sha256 of the contents, mode) of a directory's entries, without
/// whiteout markers.
fn tree_of(dir: &Path) -> std::collections::BTreeMap<String, (String, u32)> {
    fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap())
        .filter(|e| !e.file_name().to_string_lossy().starts_with(".wh."))
        .map(|e| {
            let meta = fs::symlink_metadata(e.path()).unwrap();
            let what = if meta.file_type().is_symlink() {
                fs::read_link(e.path()).unwrap().display().to_string()
            } else {
                relaunch_oci::Digest::of(&fs::read(e.path()).unwrap()).to_string()
            };
            let name = e.file_name().to_string_lossy().into_owned();
            (name, (what, meta.permissions().mode() & 0o7777))
        })
        .collect()
}

/// A copy of our launcher with its ELF machine set to aarch64 (never run: only matched).
fn arm64_copy(launcher: &Path, dir: &Path) -> PathBuf {
    let bytes = arm64_build(&fs::read(launcher).unwrap());
    let path = dir.join("launcher-arm64");
    write(&path, "", 0o755);
    fs::write(&path, bytes).unwrap();
    let sbom = |p: &Path| PathBuf::from(format!("{}.cdx.json", p.display()));
    fs::copy(sbom(launcher), sbom(&path)).unwrap();
    path
}

#[test]
fn every_platform_of_an_index_gets_the_launcher_of_its_machine() {
    let launcher = launcher_path();
    let tmp = tempfile::tempdir().unwrap();
    let arm = arm64_copy(&launcher, tmp.path());
    let layouts = Store::Layout(tmp.path().to_path_buf());
    let src = tmp.path().join("src");
    layouts.put_index(
        &[
            small_lifecycle_image("amd64", &PLATFORM_APIS),
            small_lifecycle_image("arm64", &PLATFORM_APIS),
        ],
        "src",
        "multi",
    );
    let dst = tmp.path().join("dst");
    let out = ok(relaunch(&[
        "lifecycle-image",
        &format!("oci:{}:multi", src.display()),
        "--launcher",
        arm.to_str().unwrap(),
        "--launcher",
        launcher.to_str().unwrap(),
        "--tag",
        &format!("oci:{}:multi", dst.display()),
    ]));
    assert!(
        out.contains("linux/amd64: /cnb/lifecycle/launcher is relaunch-launcher"),
        "{out}"
    );
    let raw = skopeo_inspect(&format!("oci:{}:multi", dst.display()), &["--raw"]);
    assert_eq!(raw["manifests"].as_array().unwrap().len(), 2);
    let repo = relaunch_oci::Repo::open(
        &relaunch_oci::ImageRef::parse(&format!("oci:{}:multi", dst.display())).unwrap(),
        &Default::default(),
    )
    .unwrap();
    for (platform, want) in [("linux/amd64", &launcher), ("linux/arm64", &arm)] {
        let image = repo
            .load_image(Some(&relaunch_oci::Platform::parse(platform).unwrap()))
            .unwrap();
        let (_, bytes) = read_file(&image, "/cnb/lifecycle/launcher", 64 << 20).unwrap();
        assert!(
            bytes == fs::read(want).unwrap(),
            "{platform} has its own launcher"
        );
        assert_eq!(image.platform().to_string(), platform);
    }
    // One platform of an index, as a single image.
    let single = tmp.path().join("single");
    ok(relaunch(&[
        "lifecycle-image",
        &format!("oci:{}:multi", src.display()),
        "--platform",
        "linux/arm64",
        "--launcher",
        arm.to_str().unwrap(),
        "--tag",
        &format!("oci:{}:arm64", single.display()),
    ]));
    let inspected = skopeo_inspect(&format!("oci:{}:arm64", single.display()), &[]);
    assert_eq!(inspected["Architecture"], "arm64");

    // Several platforms of a bigger index, as an index of just those.
    let three = tmp.path().join("three");
    layouts.put_index(
        &[
            small_lifecycle_image("amd64", &PLATFORM_APIS),
            small_lifecycle_image("ppc64le", &PLATFORM_APIS),
            small_lifecycle_image("arm64", &PLATFORM_APIS),
        ],
        "three",
        "multi",
    );
    let three_ref = format!("oci:{}:multi", three.display());
    let both = [
        "--launcher",
        launcher.to_str().unwrap(),
        "--launcher",
        arm.to_str().unwrap(),
    ];
    let tag = format!("oci:{}:two", three.display());
    let head = ["lifecycle-image", three_ref.as_str(), "--tag", tag.as_str()];
    let e = fails(relaunch(&[&head[..], &both[..]].concat()), 1);
    assert!(
        e.contains("(linux/ppc64le) is linux/ppc64le but no --launcher is for ppc64le"),
        "{e}"
    );
    let only = ["--platform", "linux/amd64", "--platform", "linux/arm64"];
    ok(relaunch(&[&head[..], &both[..], &only[..]].concat()));
    let raw = skopeo_inspect(&tag, &["--raw"]);
    let archs: Vec<&str> = raw["manifests"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["platform"]["architecture"].as_str().unwrap())
        .collect();
    assert_eq!(archs, ["amd64", "arm64"]);

    // An image can be the launcher source too: here each platform of the derived index.
    let again = tmp.path().join("again");
    layouts.put_index(
        &[
            small_lifecycle_image("arm64", &PLATFORM_APIS),
            small_lifecycle_image("amd64", &PLATFORM_APIS),
        ],
        "again",
        "multi",
    );
    ok(relaunch(&[
        "lifecycle-image",
        &format!("oci:{}:multi", again.display()),
        "--launcher",
        &format!("oci:{}:multi", dst.display()),
        "--tag",
        &format!("oci:{}:derived", again.display()),
    ]));
}

/// Runs `relaunch lifecycle-image SRC --launcher L --tag oci:OUT:t` expecting exit 1 with
/// one `ERROR:` line containing `want`, and checks that nothing was written.
fn refused(src: &str, launchers: &[&Path], out: &Path, want: &str) {
    let mut args = vec!["lifecycle-image".to_string(), src.to_string()];
    for l in launchers {
        args.extend(["--launcher".into(), l.display().to_string()]);
    }
    args.extend(["--tag".into(), format!("oci:{}:t", out.display())]);
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let stderr = fails(relaunch(&args), 1);
    let lines: Vec<&str> = stderr.lines().collect();
    assert_eq!(lines.len(), 1, "one line: {stderr}");
    assert!(
        lines[0].starts_with("ERROR: ") && lines[0].contains(want),
        "{stderr}"
    );
    assert!(!out.exists(), "nothing written for: {want}");
}

#[test]
fn bad_input_is_one_line_and_writes_nothing() {
    let launcher = launcher_path();
    let tmp = tempfile::tempdir().unwrap();
    let t = tmp.path();
    let out = t.join("out");
    let put = |name: &str, image: &Image| {
        Store::Layout(t.to_path_buf()).put(image, name, "1");
        format!("oci:{}:1", t.join(name).display())
    };
    let good = put("good", &small_lifecycle_image("amd64", &PLATFORM_APIS));

    let mut no_apis = small_lifecycle_image("amd64", &PLATFORM_APIS);
    relaunch_oci::mutate::set_labels(&mut no_apis, [("io.buildpacks.lifecycle.apis", None)])
        .unwrap();
    refused(
        &put("no-apis", &no_apis),
        &[&launcher],
        &out,
        "has no label io.buildpacks.lifecycle.apis",
    );

    let mut no_launcher = small_lifecycle_image("amd64", &PLATFORM_APIS);
    let wh = relaunch_oci::layer::LayerBuilder::new()
        .entry(relaunch_oci::layer::Entry::file(
            "/cnb/lifecycle/.wh.launcher",
            0o644,
            Vec::new(),
        ))
        .build()
        .unwrap();
    relaunch_oci::mutate::append_layers(&mut no_launcher, vec![(wh, None)]).unwrap();
    refused(
        &put("no-launcher", &no_launcher),
        &[&launcher],
        &out,
        "has no /cnb/lifecycle/launcher",
    );

    let newer = small_lifecycle_image("amd64", &["0.15", "0.16"]);
    refused(
        &put("newer", &newer),
        &[&launcher],
        &out,
        "does not support Platform API 0.16, which",
    );

    let arm = arm64_copy(&launcher, t);
    refused(
        &good,
        &[&arm],
        &out,
        "is linux/amd64 but no --launcher is for amd64 (given: arm64)",
    );

    let src = t.join("index");
    Store::Layout(t.to_path_buf()).put_index(
        &[
            small_lifecycle_image("amd64", &PLATFORM_APIS),
            small_lifecycle_image("arm64", &PLATFORM_APIS),
        ],
        "index",
        "1",
    );
    refused(
        &format!("oci:{}:1", src.display()),
        &[&launcher],
        &out,
        "(linux/arm64) is linux/arm64 but no --launcher is for arm64 (given: amd64)",
    );

    // A dynamically linked host program (an ELF without a self-description).
    let dynamic = ["/usr/bin/env", "/bin/ls", "/bin/sh"]
        .iter()
        .map(Path::new)
        .find(|p| {
            fs::read(p)
                .is_ok_and(|b| relaunch_lifecycle::elf::elf_facts(&b).is_ok_and(|f| f.dynamic))
        })
        .expect("a dynamically linked program on the host");
    refused(&good, &[dynamic], &out, "dynamically linked");
    let script = t.join("script");
    write(&script, "#!/bin/sh\n", 0o755);
    refused(&good, &[&script], &out, "is not an ELF executable");
    refused(
        &good,
        &[&launcher, &launcher],
        &out,
        "two launchers are for amd64",
    );
}

/// Deriving in a registry reads the manifest, the config and the launcher's layer only, and
/// writes the new layer, config and manifest only (figures printed for the README).
#[test]
fn deriving_in_a_registry_moves_only_the_launchers_layer() {
    use relaunch_lifecycle::descriptor::LauncherBinary;
    use relaunch_lifecycle::lifecycle_image::{derive, Replacement};
    use relaunch_oci::remote::{ClientConfig, RegistryClient, RegistryTransport};
    use std::sync::Arc;

    let launcher = launcher_path();
    let registry = Registry::start(Auth::Anonymous);
    let host = registry.host();
    // A base layer big enough to notice if it were downloaded.
    let mut source = small_lifecycle_image("amd64", &PLATFORM_APIS);
    let noise: Vec<u8> = (0..4_000_000u32)
        .map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8)
        .collect();
    let base = relaunch_oci::layer::LayerBuilder::new()
        .entry(relaunch_oci::layer::Entry::file(
            "/usr/lib/blob",
            0o644,
            noise,
        ))
        .build()
        .unwrap();
    let mut layers = source.layers().to_vec();
    layers[0] = base;
    source.set_layers(layers).unwrap();
    let store = Store::Registry(registry);
    store.put(&source, "lifecycle", "src");

    let client = Arc::new(RegistryClient::new(ClientConfig {
        insecure_registries: vec![host.clone()],
        ..ClientConfig::default()
    }));
    let transport: Arc<dyn relaunch_oci::Transport> =
        Arc::new(RegistryTransport::new(client.clone(), &host, "lifecycle"));
    let loaded =
        match relaunch_oci::read::load(&transport, &relaunch_oci::ManifestRef::Tag("src".into()))
            .unwrap()
        {
            relaunch_oci::Artifact::Image(i) => i,
            relaunch_oci::Artifact::Index(_) => unreachable!("an image was written"),
        };
    let sbom = PathBuf::from(format!("{}.cdx.json", launcher.display()));
    let replacement = Replacement::new(
        LauncherBinary::from_file(&launcher).unwrap(),
        Some((sbom.display().to_string(), fs::read(&sbom).unwrap())),
    )
    .unwrap();
    let derived = derive(loaded, "src", &replacement).unwrap();
    relaunch_oci::write_image(
        &derived.image,
        transport.as_ref(),
        &["relaunch".into()],
        &NoProgress,
    )
    .unwrap();

    let c = client.counters();
    let layers = source.layers();
    let (base, lifecycle) = (&layers[0].descriptor, &layers[1].descriptor);
    let new = &derived.image.layers()[2].descriptor;
    assert!(
        !c.downloaded.contains_key(&base.digest),
        "base layer downloaded: {c:?}"
    );
    assert_eq!(c.downloaded.get(&lifecycle.digest), Some(&lifecycle.size));
    let uploaded: Vec<_> = c.uploaded.keys().collect();
    assert_eq!(
        uploaded.len(),
        2,
        "the new layer and the config only: {uploaded:?}"
    );
    assert!(c.uploaded.contains_key(&new.digest));
    eprintln!(
        "derive in a registry: {} requests; downloaded {} bytes (image {} bytes of layers); uploaded {} bytes",
        c.total_requests(),
        c.bytes_downloaded(),
        base.size + lifecycle.size,
        c.bytes_uploaded()
    );
    skopeo_inspect(&format!("docker://{host}/lifecycle:relaunch"), &[]);
}
