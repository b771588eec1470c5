//! `relaunch demo [--dir D] [--launcher FILE]`: the launcher-decoupling story on OCI
//! layouts in a local directory, step by step, no registry needed.

use std::os::unix::fs::PermissionsExt;
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{bail, Context};
use relaunch_lifecycle::apis::{Api, ApiList};
use relaunch_lifecycle::app::{app_apis, lifecycle_metadata};
use relaunch_lifecycle::check::check;
use relaunch_lifecycle::contract::{AdvertisedLauncher, DEFAULT_PATH};
use relaunch_lifecycle::decouple::{decouple, BaseImage};
use relaunch_lifecycle::descriptor::LauncherBinary;
use relaunch_lifecycle::fixtures::{
    bumped_version, export_app, run_image_from_rootfs, sample_app, with_launcher_version,
    RunImageRef,
};
use relaunch_lifecycle::launcher::{resolve, Overrides, ResolvedLauncher};
use relaunch_lifecycle::rebase::{LauncherSwap, LATEST_PLATFORM_API, STACK_ID_LABEL};
use relaunch_lifecycle::stamp::stamp_run_image;
use relaunch_oci::{mutate, Image, ImageRef};
use relaunch_sandbox::{
    busybox_rootfs, containers_unavailable, run_bundle, umoci_unpack, RunOptions,
};

use super::images::{layout_digest_ref, write};
use super::rebase::session::{Job, Outcome, Session, Settings};
use super::Global;

/// The sample app is built at Platform API 0.10, so a run image advertising only 0.12+
/// must be refused.
const APP_PLATFORM_API: Api = Api::new(0, 10);

#[derive(clap::Args, Debug)]
pub struct Args {
    /// Directory for the OCI layouts, root filesystem and container bundles.
    #[arg(long, default_value = "target/demo")]
    pub dir: PathBuf,
    /// Launcher binary to stamp into the run images.
    #[arg(long, default_value = "dist/launcher")]
    pub launcher: PathBuf,
}

struct Demo<'a> {
    global: &'a Global,
    dir: PathBuf,
    step: usize,
}

impl Demo<'_> {
    fn step(&mut self, what: &str) {
        self.step += 1;
        outln!("\n==> {}. {what}", self.step);
    }

    fn layout(&self, name: &str) -> PathBuf {
        self.dir.join(name)
    }

    fn save(&self, image: &Image, name: &str, tag: &str) -> anyhow::Result<String> {
        let dir = self.layout(name);
        let reference = ImageRef::layout(&dir, Some(tag));
        let digest = write(self.global, image, &reference)?;
        outln!("    wrote oci:{}:{tag} ({digest})", dir.display());
        Ok(layout_digest_ref(&dir, &digest))
    }

    /// `oci:<dir>:<tag>` for a layout of the demo.
    fn oci(&self, name: &str, tag: &str) -> String {
        format!("oci:{}:{tag}", self.layout(name).display())
    }

    fn run_container(&self, name: &str, tag: &str) -> anyhow::Result<()> {
        if let Some(why) = containers_unavailable() {
            outln!("    (not running the container: {why})");
            return Ok(());
        }
        let bundle = self.dir.join(format!("bundle-{tag}"));
        // umoci refuses to unpack into an existing bundle (a previous demo run).
        let _ = std::fs::remove_dir_all(&bundle);
        umoci_unpack(&self.layout(name), tag, &bundle)?;
        let id = format!("relaunch-demo-{}-{tag}", std::process::id());
        let out = run_bundle(&bundle, &id, RunOptions::default())?;
        let output = format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        if !out.status.success() {
            bail!("the container exited with {}: {output}", out.status);
        }
        outln!("    container output:");
        for line in output.lines() {
            outln!("      | {line}");
        }
        Ok(())
    }
}

pub fn run(global: &Global, args: Args) -> anyhow::Result<ExitCode> {
    if !args.launcher.is_file() {
        bail!(
            "launcher {} not found: build it with scripts/build-launcher.sh or pass --launcher",
            args.launcher.display()
        );
    }
    std::fs::create_dir_all(&args.dir)
        .with_context(|| format!("creating {}", args.dir.display()))?;
    let mut demo = Demo {
        global,
        dir: std::fs::canonicalize(&args.dir)?,
        step: 0,
    };

    demo.step("Run image: a root filesystem of busybox-static and bash-static");
    let rootfs = demo.dir.join("rootfs");
    busybox_rootfs(&rootfs)?;
    let mut base = run_image_from_rootfs(&rootfs)?;
    // The app is built at Platform API 0.10, which rebasers check by stack id.
    mutate::set_labels(
        &mut base,
        [(STACK_ID_LABEL, Some("io.buildpacks.stacks.relaunch-demo"))],
    )?;
    demo.save(&base, "run", "base")?;

    demo.step("Stamp the run image with the launcher (relaunch run-image add-launcher)");
    let v1 = resolve(
        LauncherBinary::from_file(&args.launcher)?,
        None,
        &Overrides::default(),
    )?;
    let (run_v1, advertised_v1) = stamp(&demo, &base, &v1, "v1")?;

    // Platforms point a tag at the current run image; the app records that name.
    demo.save(&run_v1, "run", "current")?;

    demo.step(&format!("Export an app image as the lifecycle would (Platform API {APP_PLATFORM_API}, binary launcher layer)"));
    let run_ref = RunImageRef {
        image: demo.oci("run", "current"),
        reference: layout_digest_ref(&demo.layout("run"), &run_v1.digest()),
    };
    let built = export_app(
        &run_v1,
        &run_ref,
        &sample_app(APP_PLATFORM_API),
        &v1.binary.bytes,
        &v1.version,
    )?;
    describe_launcher(&built)?;
    demo.save(&built, "app", "built")?;

    demo.step("Check: will the app start with the run image's launcher? (relaunch check)");
    let (md, _) = lifecycle_metadata(&built)?;
    let report = check(&app_apis(&built, &md)?, &advertised_v1);
    for line in report.to_string().lines() {
        outln!("    {line}");
    }

    demo.step("Decouple: replace the launcher binary layer by a symlink into the run image (relaunch decouple)");
    let base_v1 = BaseImage {
        name: run_ref.image.clone(),
        digest: run_v1.digest(),
    };
    let decoupled = decouple(built.clone(), &advertised_v1, Some(&base_v1), false)?;
    outln!(
        "    launcher.sha {} -> {} (same position, {} layers before and after)",
        decoupled.previous.sha,
        decoupled.layer,
        decoupled.image.layers().len()
    );
    describe_launcher(&decoupled.image)?;
    demo.save(&decoupled.image, "app", "decoupled")?;
    let again = decouple(
        decoupled.image.clone(),
        &advertised_v1,
        Some(&base_v1),
        false,
    )?;
    outln!(
        "    decoupling again changes nothing: unchanged = {}",
        again.unchanged
    );

    demo.step("Run the decoupled app: /cnb/process/web -> /cnb/lifecycle/launcher -> the run image's launcher");
    demo.run_container("app", "decoupled")?;

    demo.step("A new launcher build ships in a new run image");
    let v2_version = bumped_version(&v1.version);
    let v2_path = demo.dir.join("launcher-v2");
    std::fs::write(
        &v2_path,
        with_launcher_version(&v1.binary.bytes, &v2_version)?,
    )?;
    std::fs::set_permissions(&v2_path, std::fs::Permissions::from_mode(0o755))?;
    let v2 = resolve(
        LauncherBinary::from_file(&v2_path)?,
        None,
        &Overrides::default(),
    )?;
    let (run_v2, _) = stamp(&demo, &base, &v2, "v2")?;

    demo.save(&run_v2, "run", "current")?;

    demo.step("Rebase the decoupled app onto the new run image (relaunch rebase: the reference rebaser's checks, then the new launcher's APIs against the app's)");
    let session = Session::new(global.transport_options(), settings(), None)?;
    let outcome = session.rebase(&Job {
        image: demo.oci("app", "rebased"),
        previous: Some(demo.oci("app", "decoupled")),
        ..Default::default()
    });
    print_outcome(&outcome)?;
    if let Some(check) = &outcome.launcher_check {
        outln!(
            "    launcher validated: {} {} supports the app's Platform API {} and its buildpacks",
            check.launcher.path,
            check.launcher.version,
            check.app.platform
        );
    }
    outln!("    the app's own layers are untouched; only the run-image layers changed");
    demo.run_container("app", "rebased")?;

    demo.step("Refusal: a run image whose launcher only supports Platform API 0.12+");
    let narrow = Overrides {
        platform_apis: Some(ApiList::new(
            v1.platform_apis
                .iter()
                .copied()
                .filter(|a| *a >= Api::new(0, 12)),
        )),
        ..Default::default()
    };
    let v3 = resolve(v1.binary.clone(), None, &narrow)?;
    let (_, advertised_v3) = stamp(&demo, &base, &v3, "p012")?;
    match decouple(built, &advertised_v3, None, false) {
        Ok(_) => bail!("decoupling onto a Platform 0.12+ launcher was not refused"),
        Err(e) => outln!("    refused, nothing written: {e}"),
    }

    demo.step("Launcher swap: the built (binary-mode) app gets the new launcher in place (relaunch rebase --launcher-image)");
    let session = Session::new(
        global.transport_options(),
        settings(),
        Some(LauncherSwap::new(v2.clone())?),
    )?;
    let outcome = session.rebase(&Job {
        image: demo.oci("app", "swapped"),
        previous: Some(demo.oci("app", "built")),
        ..Default::default()
    });
    print_outcome(&outcome)?;
    demo.run_container("app", "swapped")?;

    outln!("\nDone. Layouts are in {}", demo.dir.display());
    Ok(ExitCode::SUCCESS)
}

fn settings() -> Settings {
    Settings {
        platform_api: LATEST_PLATFORM_API,
        force: false,
        decouple: false,
        launcher_must_match: Vec::new(),
    }
}

fn print_outcome(outcome: &Outcome) -> anyhow::Result<()> {
    if let Some(failure) = &outcome.failure {
        bail!("{failure}");
    }
    let digest = |d: &Option<relaunch_oci::Digest>| d.as_ref().map(ToString::to_string);
    outln!(
        "    {}: {} onto {}: {} -> {}",
        outcome.status.as_str(),
        outcome.reference,
        outcome.run_image.as_deref().unwrap_or("the same run image"),
        digest(&outcome.old_digest).unwrap_or_default(),
        digest(&outcome.new_digest).unwrap_or_default()
    );
    if let Some((old, new)) = outcome.launcher.as_ref().filter(|(a, b)| a != b) {
        outln!("    launcher layer (launcher.sha) {old} -> {new}, same position and history");
    }
    Ok(())
}

fn stamp(
    demo: &Demo,
    base: &Image,
    launcher: &ResolvedLauncher,
    tag: &str,
) -> anyhow::Result<(Image, AdvertisedLauncher)> {
    let stamped = stamp_run_image(base.clone(), launcher, DEFAULT_PATH)?;
    let a = &stamped.advertised;
    outln!(
        "    launcher {} at {}: Platform APIs {}, Buildpack APIs {}",
        a.version,
        a.path,
        a.platform_apis,
        a.buildpack_apis
    );
    demo.save(&stamped.image, "run", tag)?;
    Ok((stamped.image, stamped.advertised))
}

fn describe_launcher(app: &Image) -> anyhow::Result<()> {
    let (md, index) = lifecycle_metadata(app)?;
    let mode = md.launcher.mode();
    let target = md.launcher.target.as_deref().unwrap_or("-");
    outln!(
        "    launcher layer {index} of {}: type {mode}, target {target}, sha {}",
        app.layers().len(),
        md.launcher.sha
    );
    Ok(())
}
