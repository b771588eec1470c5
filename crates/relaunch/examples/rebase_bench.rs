//! Rebase benchmark: what one `relaunch rebase` costs on the wire, measured as a user's
//! process sees it (the relaunch binary spawned per image, `--json` reporting its client's
//! counters), against a real registry in anonymous and token mode, with every new blob
//! already in the registry. Budget per image: <= 8 registry requests, 0 layer bytes down
//! (the `--launcher-image` swap may read the app's small config layer for its buildpack
//! APIs; a symlink-mode app's build metadata records them, so its rebase reads no layer).
//!
//! 1. rebase a binary-mode app onto a patched run image (one changed layer, in the run
//!    image's repository), the run image resolved from the app's `runImage` metadata;
//! 2. the same for a symlink-mode app, whose launcher is validated against the new run
//!    image with the APIs recorded in its `io.buildpacks.build.metadata` (no layer read);
//! 3. `--launcher-image` swap of a binary-mode app whose repository already holds the new
//!    launcher layer (e.g. the second app of a repository swapped in one run).
//!
//! Run: `scripts/bench-registry.sh` (exits non-zero when a budget is exceeded).
//! Usage: rebase_bench <relaunch binary> <launcher binary>

mod support;

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;

use relaunch_lifecycle::apis::Api;
use relaunch_lifecycle::decouple::decouple;
use relaunch_lifecycle::descriptor::LauncherBinary;
use relaunch_lifecycle::fixtures::{export_app, sample_app, with_launcher_version, RunImageRef};
use relaunch_lifecycle::launcher::{resolve, Overrides};
use relaunch_oci::remote::{ClientConfig, CredentialSource, RegistryClient, RegistryTransport};
use relaunch_oci::{write_image, Digest, Image, NoProgress};
use relaunch_testkit::{Auth, Registry};
use serde_json::Value;
use support::run_image;

const REQUEST_BUDGET: u64 = 8;

fn main() {
    let args: Vec<PathBuf> = std::env::args_os().skip(1).map(PathBuf::from).collect();
    let [relaunch, launcher] = &args[..] else {
        eprintln!("usage: rebase_bench <relaunch binary> <launcher binary>");
        std::process::exit(2);
    };
    let mut ok = true;
    for auth in [Auth::Anonymous, Auth::Token] {
        let registry = Registry::start(auth);
        ok &= bench(&registry, auth, relaunch, launcher);
    }
    if !ok {
        eprintln!("rebase benchmark: a budget was exceeded");
        std::process::exit(1);
    }
}

fn put(registry: &Registry, image: &Image, repo: &str, tag: &str) {
    let config = ClientConfig {
        insecure_registries: vec![registry.host()],
        credentials: CredentialSource::DockerConfigDir(registry.docker_config_dir()),
        ..ClientConfig::default()
    };
    let client = Arc::new(RegistryClient::new(config));
    let transport = RegistryTransport::new(client, &registry.host(), repo);
    write_image(image, &transport, &[tag.to_string()], &NoProgress).expect("push");
}

fn bench(registry: &Registry, auth: Auth, relaunch: &Path, launcher_path: &Path) -> bool {
    let host = registry.host();
    let binary = LauncherBinary::from_file(launcher_path).expect("launcher");
    let launcher = resolve(binary.clone(), None, &Overrides::default()).expect("launcher APIs");
    let v1 = run_image("os 1.0\n", &launcher);
    let v2 = run_image("os 1.1\n", &launcher);
    put(registry, &v1, "bench/run", "current");
    let run_ref = RunImageRef {
        image: format!("{host}/bench/run:current"),
        reference: format!("{host}/bench/run@{}", v1.digest()),
    };
    // Built with an older launcher build, so the swap has something to replace.
    let old_launcher = with_launcher_version(&binary.bytes, "0.0.1").unwrap();
    let built = export_app(
        &v1,
        &run_ref,
        &sample_app(Api::new(0, 10)),
        &old_launcher,
        "0.0.1",
    )
    .expect("export");
    let advertised = relaunch_lifecycle::contract::AdvertisedLauncher::from_labels(
        &relaunch_lifecycle::app::string_labels(&v1),
    )
    .unwrap()
    .unwrap();
    let symlinked = decouple(built.clone(), &advertised, None, false)
        .unwrap()
        .image;
    put(registry, &built, "bench/app", "binary");
    put(registry, &symlinked, "bench/app", "symlink");
    put(registry, &built, "bench/swap", "first");
    put(registry, &built, "bench/swap", "second");
    // The new run image under the tag the apps record (blobs now in the registry).
    put(registry, &v2, "bench/run", "current");
    // An earlier swap in the same repository left the new launcher layer there.
    let spawn = |args: &[&str]| -> Value {
        let out = Command::new(relaunch)
            .args(args)
            .args(["--json", "--insecure-registry", &host])
            .env("DOCKER_CONFIG", registry.docker_config_dir())
            .output()
            .expect("spawn relaunch");
        assert!(
            out.status.success(),
            "relaunch {args:?}: {}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        serde_json::from_slice(&out.stdout).expect("JSON outcome")
    };
    let launcher_arg = launcher_path.to_str().unwrap();
    spawn(&[
        "rebase",
        &format!("{host}/bench/swap:first"),
        "--launcher-image",
        launcher_arg,
    ]);

    // Layer digests of everything involved: a byte of these downloaded is a layer byte.
    let layers: BTreeSet<Digest> = [&v1, &v2, &built, &symlinked]
        .iter()
        .flat_map(|i| i.layers().iter().map(|l| l.descriptor.digest.clone()))
        .collect();
    let config_layer = |app: &Image| {
        let (md, _) = relaunch_lifecycle::app::lifecycle_metadata(app).unwrap();
        app.layers()
            .iter()
            .find(|l| l.diff_id.as_str() == md.config.sha)
            .unwrap()
            .descriptor
            .digest
            .clone()
    };
    let scenarios: [(&str, Vec<String>, Option<Digest>); 3] = [
        (
            "rebase, binary-mode app",
            vec!["rebase".into(), format!("{host}/bench/app:binary")],
            None,
        ),
        (
            "rebase, symlink-mode app (launcher validated)",
            vec!["rebase".into(), format!("{host}/bench/app:symlink")],
            None,
        ),
        (
            "launcher swap (--launcher-image), layer already in the repository",
            vec![
                "rebase".into(),
                format!("{host}/bench/swap:second"),
                "--launcher-image".into(),
                launcher_arg.into(),
            ],
            Some(config_layer(&built)),
        ),
    ];
    let mut within_all = true;
    for (name, args, allowed) in scenarios {
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        let out = spawn(&args);
        assert_eq!(out["status"], "rebased", "{name}: {out:#}");
        let r = &out["registry"];
        let requests = r["requests"].as_u64().unwrap();
        let downloaded = r["downloaded"].as_object().unwrap();
        let mut layer_bytes = 0;
        let mut config_layer_bytes = 0;
        for (digest, bytes) in downloaded {
            let d = Digest::parse(digest).unwrap();
            let n = bytes.as_u64().unwrap();
            if allowed.as_ref() == Some(&d) {
                config_layer_bytes += n;
            } else if layers.contains(&d) {
                layer_bytes += n;
            }
        }
        let budget = REQUEST_BUDGET;
        let within = requests <= budget && layer_bytes == 0;
        within_all &= within;
        println!(
            "[{auth:?}] {name}: {}",
            if within {
                "within budget"
            } else {
                "OVER BUDGET"
            }
        );
        println!(
            "    per image: {requests} registry requests ({}; budget <= {budget}, auth challenges excluded: {}), layer bytes down {layer_bytes} (budget 0), config-layer bytes down {config_layer_bytes}, all bytes down {} / up {}",
            by_method(r),
            r["auth-challenges"],
            r["bytes-down"],
            r["bytes-up"],
        );
    }
    within_all
}

fn by_method(r: &Value) -> String {
    r["by-method"]
        .as_object()
        .map(|m| {
            m.iter()
                .map(|(k, v)| format!("{k} {v}"))
                .collect::<Vec<_>>()
                .join(", ")
        })
        .unwrap_or_default()
}
