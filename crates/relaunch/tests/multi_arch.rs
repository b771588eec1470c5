//! Image indexes through `run-image add-launcher`, `decouple`, `check` and `recouple`: every
//! platform is edited with the run image and launcher of its own architecture and written
//! back as one new index (checked with skopeo `--raw` / `--override-arch` and umoci); a
//! launcher built for another architecture, or a run image without the app's platform, is
//! refused and nothing is written.

mod support;

use std::path::Path;

use relaunch_lifecycle::app::lifecycle_metadata;
use relaunch_lifecycle::decouple::binary_layer;
use relaunch_lifecycle::descriptor::LauncherBinary;
use relaunch_lifecycle::metadata::LauncherMode;
use relaunch_lifecycle::rebase::STACK_ID_LABEL;
use relaunch_oci::layer::{Entry, LayerBuilder, NORMALIZED_TIME};
use relaunch_oci::mutate::{self, History};
use relaunch_oci::v1::Flavor;
use relaunch_oci::Image;
use relaunch_testkit::{skopeo_copy, skopeo_inspect, umoci_unpack, Auth, Registry};
use serde_json::{json, Value};
use support::{arm64_build, base_run_image, export_built, fails, launcher_path, ok, Store};

#[test]
fn indexes_on_an_oci_layout() {
    let scratch = tempfile::tempdir().unwrap();
    every_platform(
        &Store::Layout(scratch.path().join("images")),
        scratch.path(),
    );
}

#[test]
fn indexes_on_a_registry_with_token_auth() {
    let scratch = tempfile::tempdir().unwrap();
    every_platform(
        &Store::Registry(Registry::start(Auth::Token)),
        scratch.path(),
    );
}

fn as_arm64(image: &Image) -> Image {
    let mut image = image.clone();
    image
        .edit_config(|c| {
            c.insert("architecture".into(), "arm64".into());
            c.insert("variant".into(), "v8".into());
            Ok(())
        })
        .unwrap();
    image
}

/// A lifecycle-style image holding `launcher` at /cnb/lifecycle/launcher.
fn lifecycle_image(launcher: &[u8], arch: &str) -> Image {
    let layer = LayerBuilder::new()
        .entry(Entry::dir("/cnb", 0o755))
        .entry(Entry::dir("/cnb/lifecycle", 0o755))
        .entry(Entry::file(
            "/cnb/lifecycle/launcher",
            0o755,
            launcher.to_vec(),
        ))
        .build()
        .unwrap();
    let mut image = Image::new(
        Flavor::Oci,
        json!({"os": "linux", "architecture": arch, "config": {}}),
    )
    .unwrap();
    let history = History::created_by("lifecycle", NORMALIZED_TIME);
    mutate::append_layers(&mut image, vec![(layer, Some(history))]).unwrap();
    image
}

fn platform_images(store: &Store, repo: &str, tag: &str) -> Vec<(String, Image)> {
    store
        .get_all(repo, tag)
        .images()
        .into_iter()
        .map(|(p, i)| (p.to_string(), i.clone()))
        .collect()
}

/// `skopeo inspect --raw`: the index's platforms, in order.
fn raw_platforms(store: &Store, repo: &str, tag: &str) -> Vec<String> {
    let args = store.skopeo_args();
    let mut args: Vec<&str> = args.iter().map(String::as_str).collect();
    args.push("--raw");
    let raw = skopeo_inspect(&store.skopeo(repo, tag), &args);
    assert_eq!(raw["mediaType"], "application/vnd.oci.image.index.v1+json");
    raw["manifests"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| {
            let p = &m["platform"];
            let mut s = format!(
                "{}/{}",
                p["os"].as_str().unwrap(),
                p["architecture"].as_str().unwrap()
            );
            if let Some(v) = p["variant"].as_str() {
                s += &format!("/{v}");
            }
            s
        })
        .collect()
}

/// `skopeo inspect --override-arch ARCH`: the labels of that platform's image.
fn labels_for(store: &Store, repo: &str, tag: &str, arch: &str) -> Value {
    let args = store.skopeo_args();
    let mut args: Vec<&str> = args.iter().map(String::as_str).collect();
    args.extend(["--override-os", "linux", "--override-arch", arch]);
    let inspected = skopeo_inspect(&store.skopeo(repo, tag), &args);
    assert_eq!(inspected["Architecture"], arch);
    inspected["Labels"].clone()
}

/// Unpacks one platform with umoci (via a single-image layout made by skopeo) and returns
/// where `/cnb/lifecycle/launcher` points.
fn launcher_link(store: &Store, repo: &str, tag: &str, arch: &str, scratch: &Path) -> String {
    let layout = scratch.join(format!("single-{repo}-{tag}-{arch}"));
    let args = store.skopeo_args();
    let mut args: Vec<&str> = args.iter().map(String::as_str).collect();
    args.extend(["--override-os", "linux", "--override-arch", arch]);
    skopeo_copy(
        &store.skopeo(repo, tag),
        &format!("oci:{}:{arch}", layout.display()),
        &args,
    );
    let bundle = scratch.join(format!("bundle-{repo}-{tag}-{arch}"));
    umoci_unpack(&layout, arch, &bundle);
    let link = std::fs::read_link(bundle.join("rootfs/cnb/lifecycle/launcher")).unwrap();
    link.to_string_lossy().into_owned()
}

fn every_platform(store: &Store, scratch: &Path) {
    let amd64_launcher = std::fs::read(launcher_path()).unwrap();
    let arm64_launcher = arm64_build(&amd64_launcher);
    // Apps at Platform API < 0.12 are rebased by stack id, so the run image has one.
    let mut base = base_run_image(store, scratch);
    mutate::set_labels(
        &mut base,
        [(STACK_ID_LABEL, Some("io.buildpacks.stacks.relaunch"))],
    )
    .unwrap();
    store.put_index(&[base.clone(), as_arm64(&base)], "run", "multi");
    store.put_index(
        &[
            lifecycle_image(&amd64_launcher, "amd64"),
            lifecycle_image(&arm64_launcher, "arm64"),
        ],
        "lifecycle",
        "multi",
    );

    // One amd64 launcher file for an index with arm64: refused, nothing written.
    let err = fails(
        store.add_launcher(
            &store.r("run", "multi"),
            launcher_path().to_str().unwrap(),
            &store.r("run", "v1"),
            &[],
        ),
        1,
    );
    assert!(
        err.contains("is built for amd64, but the run image is linux/arm64/v8"),
        "{err}"
    );
    assert!(!store.exists("run", "v1"));

    // A multi-arch lifecycle image: each platform gets its own launcher.
    ok(store.add_launcher(
        &store.r("run", "multi"),
        &store.r("lifecycle", "multi"),
        &store.r("run", "v1"),
        &[],
    ));
    assert_eq!(
        raw_platforms(store, "run", "v1"),
        ["linux/amd64", "linux/arm64/v8"]
    );
    for arch in ["amd64", "arm64"] {
        let labels = labels_for(store, "run", "v1", arch);
        assert_eq!(
            labels["io.buildpacks.run.launcher.path"],
            "/usr/local/bin/launcher"
        );
    }
    let run_v1 = platform_images(store, "run", "v1");
    assert_eq!(run_v1.len(), 2);
    assert_ne!(
        run_v1[0].1.layers().last().unwrap().diff_id,
        run_v1[1].1.layers().last().unwrap().diff_id,
        "each platform carries its own launcher build"
    );

    // The app, exported per platform onto run:v1 (runImage.reference = the index digest).
    let run_index = store.get_all("run", "v1").digest();
    let amd64 = LauncherBinary::from_bytes("amd64".into(), amd64_launcher.clone(), 0o755).unwrap();
    let arm64 = LauncherBinary::from_bytes("arm64".into(), arm64_launcher.clone(), 0o755).unwrap();
    let mut apps = Vec::new();
    for ((_, run), launcher) in run_v1.iter().zip([&amd64, &arm64]) {
        let mut app = export_built(store, run, "v1", launcher);
        // runImage.reference names the run index, as an exporter given the index does;
        // runImage.image the tag the platform will rebase onto (checked from Platform 0.12).
        let (mut md, _) = lifecycle_metadata(&app).unwrap();
        md.run_image.reference = store.digest_ref("run", &run_index);
        md.run_image.image = Some(store.r("run", "v2"));
        let label = md.to_label();
        mutate::set_labels(
            &mut app,
            [("io.buildpacks.lifecycle.metadata", Some(label.as_str()))],
        )
        .unwrap();
        apps.push(app);
    }
    store.put_index(&apps, "app", "multi");

    // check: one report per platform.
    let report: Value = serde_json::from_str(&ok(store.relaunch(&[
        "check",
        &store.r("app", "multi"),
        "--json",
    ])))
    .unwrap();
    assert_eq!(report["compatible"], true, "{report:#}");
    let platforms: Vec<&str> = report["platforms"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["platform"].as_str().unwrap())
        .collect();
    assert_eq!(platforms, ["linux/amd64", "linux/arm64/v8"]);

    // decouple: both platforms, one new index.
    ok(store.decouple(&store.r("app", "multi"), &store.r("app", "dec"), &[]));
    assert_eq!(
        raw_platforms(store, "app", "dec"),
        ["linux/amd64", "linux/arm64/v8"]
    );
    for arch in ["amd64", "arm64"] {
        let labels = labels_for(store, "app", "dec", arch);
        let md: Value =
            serde_json::from_str(labels["io.buildpacks.lifecycle.metadata"].as_str().unwrap())
                .unwrap();
        assert_eq!(md["launcher"]["type"], "symlink", "{arch}");
        assert_eq!(
            launcher_link(store, "app", "dec", arch, scratch),
            "/usr/local/bin/launcher"
        );
    }
    let again = ok(store.decouple(&store.r("app", "dec"), &store.r("app", "dec2"), &[]));
    assert!(again.contains("unchanged; tagged"), "{again}");
    assert_eq!(
        store.get_all("app", "dec2").digest(),
        store.get_all("app", "dec").digest(),
        "the same index, tagged again"
    );

    // recouple with the lifecycle index: each platform gets back its own launcher layer.
    ok(store.recouple(
        &store.r("app", "dec"),
        &store.r("lifecycle", "multi"),
        &store.r("app", "rec"),
    ));
    let rec = platform_images(store, "app", "rec");
    for ((platform, image), bytes) in rec.iter().zip([&amd64_launcher, &arm64_launcher]) {
        let (md, index) = lifecycle_metadata(image).unwrap();
        assert_eq!(md.launcher.mode(), LauncherMode::Binary, "{platform}");
        assert_eq!(
            image.layers()[index].diff_id,
            binary_layer(bytes).unwrap().diff_id,
            "{platform}"
        );
    }
    let built: Vec<_> = apps.iter().map(Image::diff_ids).collect();
    let back: Vec<_> = rec.iter().map(|(_, i)| i.diff_ids()).collect();
    assert_eq!(back, built, "recouple restores every platform's layers");

    // A single-platform run image cannot serve the arm64 half of the app.
    store.put(&run_v1[0].1, "run", "single");
    let err = fails(
        store.decouple(
            &store.r("app", "multi"),
            &store.r("app", "bad"),
            &["--run-image", &store.r("run", "single")],
        ),
        1,
    );
    assert!(
        err.contains("(linux/arm64/v8)") && err.contains("it is a single linux/amd64 image"),
        "{err}"
    );
    assert!(!store.exists("app", "bad"));

    // rebase: refused while run:v2 is a single amd64 image, nothing written ...
    let rebase = |app: &str| {
        store.relaunch(&[
            "rebase",
            &store.r("app", app),
            "--run-image",
            &store.r("run", "v2"),
            "--json",
        ])
    };
    let before = store.get_all("app", "multi").digest();
    store.put(&run_v1[0].1, "run", "v2");
    let err = fails(
        store.relaunch(&[
            "rebase",
            &store.r("app", "multi"),
            "--run-image",
            &store.r("run", "v2"),
        ]),
        1,
    );
    assert!(
        err.contains("has no image for the app's platform linux/arm64/v8"),
        "{err}"
    );
    assert_eq!(
        store.get_all("app", "multi").digest(),
        before,
        "nothing written"
    );
    // ... as is an index run image without the app's arm64.
    store.put_index(&[run_v1[0].1.clone()], "run", "amd64-index");
    let err = fails(
        store.relaunch(&[
            "rebase",
            &store.r("app", "multi"),
            "--run-image",
            &store.r("run", "amd64-index"),
            "--force",
        ]),
        1,
    );
    assert!(
        err.contains("amd64-index has no image for the app's platform linux/arm64/v8"),
        "{err}"
    );
    assert_eq!(store.get_all("app", "multi").digest(), before);

    // ... then each platform onto the same platform of the new run index.
    let patched = with_patch_layer(&base);
    store.put_index(&[patched.clone(), as_arm64(&patched)], "run", "multi2");
    ok(store.add_launcher(
        &store.r("run", "multi2"),
        &store.r("lifecycle", "multi"),
        &store.r("run", "v2"),
        &[],
    ));
    let run_v2 = platform_images(store, "run", "v2");
    let out: Value = serde_json::from_str(&ok(rebase("multi"))).unwrap();
    assert_eq!(out["status"], "rebased", "{out:#}");
    assert_eq!(
        raw_platforms(store, "app", "multi"),
        ["linux/amd64", "linux/arm64/v8"]
    );
    let rebased = platform_images(store, "app", "multi");
    for ((platform, app), (_, run)) in rebased.iter().zip(&run_v2) {
        let n = run.layers().len();
        assert_eq!(app.diff_ids()[..n], run.diff_ids()[..], "{platform}");
        let (md, _) = lifecycle_metadata(app).unwrap();
        assert!(
            md.run_image.reference.ends_with(&run.digest().to_string()),
            "{platform}: runImage.reference names that platform's run image"
        );
    }
    let again: Value = serde_json::from_str(&ok(rebase("multi"))).unwrap();
    assert_eq!(again["status"], "unchanged", "{again:#}");

    // A single-platform app on an index run image: its platform is picked.
    store.put(&apps[1], "app", "arm64-only");
    let out: Value = serde_json::from_str(&ok(rebase("arm64-only"))).unwrap();
    assert_eq!(out["status"], "rebased", "{out:#}");
    let app = store.get("app", "arm64-only");
    assert_eq!(app.platform().architecture, "arm64");
    let n = run_v2[1].1.layers().len();
    assert_eq!(app.diff_ids()[..n], run_v2[1].1.diff_ids()[..]);
}

/// `image` with one more base layer (a patched run image).
fn with_patch_layer(image: &Image) -> Image {
    let mut image = image.clone();
    let layer = LayerBuilder::new()
        .entry(Entry::file("/etc/patch-level", 0o644, "2\n"))
        .build()
        .unwrap();
    let history = History::created_by("patch", NORMALIZED_TIME);
    mutate::append_layers(&mut image, vec![(layer, Some(history))]).unwrap();
    image
}
