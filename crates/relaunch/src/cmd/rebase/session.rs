//! Rebasing one image end to end — read the app and its new run image, run
//! [`relaunch_lifecycle::rebase::rebase`], write the result to every requested name — with
//! what a run over many images shares: one registry client (connections, tokens,
//! counters), the run images read so far, and the launcher layer of `--launcher-image`.

use std::collections::HashMap;
use std::fmt;
use std::sync::{Arc, Mutex};

use relaunch_lifecycle::apis::Api;
use relaunch_lifecycle::check::CompatReport;
use relaunch_lifecycle::metadata::{LifecycleMetadata, LIFECYCLE_METADATA_LABEL};
use relaunch_lifecycle::rebase::{rebase, LauncherSwap, NewBase, RebaseError, RebaseOptions};
use relaunch_oci::remote::{ClientConfig, Counters, RegistryClient, RegistryTransport};
use relaunch_oci::{
    Artifact, BlobSource, Digest, Image, ImageOrIndex, ImageRef, Location, ManifestRef, NoProgress,
    Platform, Repo, Transport, TransportOptions,
};
use serde_json::json;

/// What every image of a run is rebased with.
#[derive(Debug, Clone)]
pub struct Settings {
    pub platform_api: Api,
    pub force: bool,
    pub decouple: bool,
    pub launcher_must_match: Vec<Digest>,
}

/// One image to rebase.
#[derive(Debug, Clone, Default)]
pub struct Job {
    /// Where the result goes (and, without `previous`, the image rebased).
    pub image: String,
    /// More names for the same manifest (the reference's extra positional arguments).
    pub extra_tags: Vec<String>,
    /// The image to rebase when it is not `image` (the reference's `-previous-image`).
    pub previous: Option<String>,
    /// The run image; default: resolved from the app's `runImage` metadata.
    pub run_image: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Status {
    Rebased,
    /// Already on this run image and launcher: nothing pushed (extra names still written).
    Unchanged,
    /// A safety check said no; nothing written.
    Refused,
    /// Something broke (unreadable image, registry error); nothing written or, if the
    /// failure was in the final tag writes, some names may already point at the result.
    Failed,
}

impl Status {
    pub fn as_str(self) -> &'static str {
        match self {
            Status::Rebased => "rebased",
            Status::Unchanged => "unchanged",
            Status::Refused => "refused",
            Status::Failed => "failed",
        }
    }
}

/// Why an image was not rebased, in the reference rebaser's words and exit codes.
#[derive(Debug)]
pub enum Failure {
    /// The image to rebase could not be read (exit 72).
    AppImage(String),
    /// No `-run-image` and no run image in the app's metadata (exit 72).
    NoRunImage,
    /// The run image could not be read (exit 1).
    RunImage(String),
    /// The run image has no image for a platform of the app (exit 1, as an unreadable
    /// run image; reported as a refusal: nothing is wrong with either image alone).
    NoPlatform { run_image: String, platform: String },
    /// A check on one platform of an index app (exit 72).
    Platform(String, RebaseError),
    /// Checks or the rebase itself (exit 72).
    Rebase(RebaseError),
    /// Writing the result (exit 72).
    Write(String),
}

impl Failure {
    pub fn exit_code(&self) -> u8 {
        match self {
            Failure::RunImage(_) | Failure::NoPlatform { .. } => 1,
            _ => 72,
        }
    }
}

/// Assembling the new index (the engine's errors past reading and checking).
impl From<relaunch_oci::Error> for Failure {
    fn from(e: relaunch_oci::Error) -> Failure {
        Failure::Write(e.to_string())
    }
}

impl fmt::Display for Failure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Failure::AppImage(e) => write!(f, "failed to set app image: failed to access image to rebase: {e}"),
            Failure::NoRunImage => f.write_str("failed to set app image: failed to parse arguments: -run-image is required when there is no run image metadata available"),
            Failure::RunImage(e) => write!(f, "failed to access run image: {e}"),
            Failure::NoPlatform { run_image, platform } => write!(f, "failed to access run image: {run_image} has no image for the app's platform {platform}"),
            Failure::Platform(platform, e) => write!(f, "failed to rebase: {platform}: {e}"),
            Failure::Rebase(e) => write!(f, "failed to rebase: {e}"),
            Failure::Write(e) => write!(f, "failed to rebase: saving image: {e}"),
        }
    }
}

/// What happened to one image.
#[derive(Debug)]
pub struct Outcome {
    /// The job's `image`.
    pub reference: String,
    pub status: Status,
    pub failure: Option<Failure>,
    /// Manifest digest of the image read, and of the image now under `reference`.
    pub old_digest: Option<Digest>,
    pub new_digest: Option<Digest>,
    pub manifest_size: u64,
    /// Every name written (`image` first, then the extra tags).
    pub tags: Vec<String>,
    /// The run image rebased onto (name as given or resolved).
    pub run_image: Option<String>,
    /// `launcher.sha` before and after.
    pub launcher: Option<(String, String)>,
    /// Checks `force` overrode.
    pub warnings: Vec<String>,
    /// The app's APIs against the launcher that will run it, when that was checked.
    pub launcher_check: Option<CompatReport>,
}

impl Outcome {
    fn new(job: &Job) -> Outcome {
        Outcome {
            reference: job.image.clone(),
            status: Status::Failed,
            failure: None,
            old_digest: None,
            new_digest: None,
            manifest_size: 0,
            tags: Vec::new(),
            run_image: None,
            launcher: None,
            warnings: Vec::new(),
            launcher_check: None,
        }
    }

    fn failed(mut self, failure: Failure) -> Outcome {
        self.status = match &failure {
            Failure::Rebase(e) | Failure::Platform(_, e) if e.is_refusal() => Status::Refused,
            Failure::NoPlatform { .. } => Status::Refused,
            _ => Status::Failed,
        };
        self.failure = Some(failure);
        self
    }

    /// One JSON object: reference, status, digests, reason.
    pub fn to_json(&self) -> serde_json::Value {
        json!({
            "reference": self.reference,
            "status": self.status.as_str(),
            "old-digest": self.old_digest.as_ref().map(ToString::to_string),
            "new-digest": self.new_digest.as_ref().map(ToString::to_string),
            "run-image": self.run_image,
            "launcher-sha": self.launcher.as_ref().map(|(_, new)| new),
            "previous-launcher-sha": self.launcher.as_ref().map(|(old, _)| old),
            "tags": self.tags,
            "warnings": self.warnings,
            "launcher-check": self.launcher_check,
            "reason": self.failure.as_ref().map(ToString::to_string),
        })
    }
}

/// A run image as read once per session.
struct RunImage {
    image: Image,
    /// `runImage.reference`: a digest reference naming exactly this image.
    reference: String,
}

/// Shared by every image of a run; `Sync`, so a fleet runner can use it from many threads.
pub struct Session {
    options: TransportOptions,
    client: Arc<RegistryClient>,
    settings: Settings,
    launcher: Option<LauncherSwap>,
    /// The first repository the launcher layer went to: later writes mount it from there.
    launcher_home: Mutex<Option<Arc<dyn Transport>>>,
    run_images: Mutex<HashMap<String, Arc<RunImage>>>,
}

impl Session {
    pub fn new(
        options: TransportOptions,
        settings: Settings,
        launcher: Option<LauncherSwap>,
    ) -> anyhow::Result<Session> {
        let client = Arc::new(RegistryClient::new(ClientConfig::from_options(&options)?));
        Ok(Session {
            options,
            client,
            settings,
            launcher,
            launcher_home: Mutex::new(None),
            run_images: Mutex::new(HashMap::new()),
        })
    }

    /// Traffic so far (all images of the session).
    pub fn counters(&self) -> Counters {
        self.client.counters()
    }

    /// The repository `r` names, through the shared client.
    fn open(&self, r: &ImageRef, create: bool) -> relaunch_oci::Result<Repo> {
        match r {
            ImageRef::Registry(reg) => Ok(Repo {
                transport: Arc::new(RegistryTransport::new(
                    self.client.clone(),
                    &reg.registry,
                    &reg.repository,
                )),
                reference: reg.manifest_ref(),
            }),
            _ if create => Repo::create(r, &self.options),
            _ => Repo::open(r, &self.options),
        }
    }

    /// The image or index `name` names (every platform of an index).
    fn load(&self, name: &str) -> Result<(Repo, ImageOrIndex), String> {
        let opened = || -> relaunch_oci::Result<(Repo, ImageOrIndex)> {
            let repo = self.open(&ImageRef::parse(name)?, false)?;
            let loaded = ImageOrIndex::load(&repo)?;
            Ok((repo, loaded))
        };
        opened().map_err(|e| format!("{name}: {e}"))
    }

    /// The run image `name` for `platform`: chosen from an index (refused when the index
    /// has none). A single image is taken as it is for a single-image app (the rebase's
    /// checks compare it with the app, as the reference does) and must be of `platform`
    /// for a platform of an index app (`of_index`). Read once per session.
    fn run_image(
        &self,
        name: &str,
        platform: &Platform,
        of_index: bool,
    ) -> Result<Arc<RunImage>, Failure> {
        let key = format!("{name} {platform} {of_index}");
        if let Some(run) = lock(&self.run_images).get(&key) {
            return Ok(run.clone());
        }
        let opened = || -> relaunch_oci::Result<(Repo, Artifact)> {
            let repo = self.open(&ImageRef::parse(name)?, false)?;
            let artifact = repo.load()?;
            Ok((repo, artifact))
        };
        let (repo, artifact) = opened().map_err(|e| Failure::RunImage(format!("{name}: {e}")))?;
        let missing = || Failure::NoPlatform {
            run_image: name.to_string(),
            platform: platform.to_string(),
        };
        let image = match &artifact {
            Artifact::Index(index) if index.select(platform, name).is_err() => {
                return Err(missing())
            }
            Artifact::Image(image) => {
                let have = image.platform();
                if of_index && !have.architecture.is_empty() && !platform.matches(&have) {
                    return Err(missing());
                }
                image.clone()
            }
            Artifact::Index(_) => repo
                .image_of(artifact.clone(), Some(platform))
                .map_err(|e| Failure::RunImage(format!("{name}: {e}")))?,
        };
        let reference = identifier(name, &repo, &image.digest());
        let run = Arc::new(RunImage { image, reference });
        lock(&self.run_images).insert(key, run.clone());
        Ok(run)
    }

    /// Rebases one image — every platform of an index onto the run image's same
    /// platform. Never panics on bad input; writes nothing unless every check passed (on
    /// every platform), and then blobs first, manifests, the index, names last of all.
    pub fn rebase(&self, job: &Job) -> Outcome {
        let mut out = Outcome::new(job);
        let source = job.previous.as_deref().unwrap_or(&job.image);
        let (app_repo, app) = match self.load(source) {
            Ok(loaded) => loaded,
            Err(e) => return out.failed(Failure::AppImage(e)),
        };
        out.old_digest = Some(app.digest());
        let multi = app.is_index();
        let mut unchanged = true;
        // Once uploaded, the launcher layer is read (mounted) from where it went.
        let swap = self.launcher.clone().map(|mut swap| {
            if let Some(home) = lock(&self.launcher_home).clone() {
                swap.layer.source = BlobSource::Stored(home);
            }
            swap
        });
        let rebased = app.try_map(|platform, image| -> Result<(Image, ()), Failure> {
            let in_platform = |f: Failure| match (multi, f) {
                (true, Failure::Rebase(e)) => Failure::Platform(platform.to_string(), e),
                (_, f) => f,
            };
            let (run_name, run) = self
                .new_base(job, &image, platform, multi)
                .map_err(in_platform)?;
            if out.run_image.is_none() {
                out.run_image = run_name.clone();
            }
            let base = run
                .as_ref()
                .zip(run_name.as_deref())
                .map(|(r, name)| NewBase {
                    image: &r.image,
                    name,
                    reference: &r.reference,
                });
            let opts = RebaseOptions {
                platform_api: self.settings.platform_api,
                force: self.settings.force,
                decouple: self.settings.decouple,
                launcher: swap.as_ref(),
                launcher_must_match: &self.settings.launcher_must_match,
            };
            let rebased =
                rebase(image, base, &opts).map_err(|e| in_platform(Failure::Rebase(e)))?;
            let on = if multi {
                format!("{platform}: ")
            } else {
                String::new()
            };
            out.warnings
                .extend(rebased.warnings.iter().map(|w| format!("{on}{w}")));
            out.launcher
                .get_or_insert((rebased.previous_launcher.clone(), rebased.launcher.clone()));
            if out.launcher_check.is_none() {
                out.launcher_check = rebased.launcher_check.clone();
            }
            unchanged &= rebased.unchanged;
            Ok((rebased.image, ()))
        });
        let rebased = match rebased {
            Ok((rebased, _)) => rebased,
            Err(failure) => return out.failed(failure),
        };
        let names: Vec<String> = std::iter::once(job.image.clone())
            .chain(job.extra_tags.iter().cloned())
            .collect();
        // Unchanged and read from where it goes: that name needs no write.
        let skip_first = unchanged && job.previous.is_none();
        match self.write(&rebased, &app_repo, &names, skip_first) {
            Ok(size) => out.manifest_size = size,
            // The tag write may have reached the registry with its answer lost: then the
            // image is rebased, and the outcome must say so (a fleet report relies on it).
            Err(_) if names.len() == 1 && self.names(&names[0], &rebased.digest()) => {
                out.manifest_size = rebased.raw_manifest().bytes.len() as u64;
            }
            Err(e) => return out.failed(Failure::Write(e)),
        }
        out.status = if unchanged {
            Status::Unchanged
        } else {
            Status::Rebased
        };
        out.new_digest = Some(rebased.digest());
        out.tags = names;
        out
    }

    /// The run image (name and image for `platform`) one platform image is rebased onto:
    /// the job's, else the one its metadata names; none with only a launcher swap.
    /// `of_index`: the app is an index (see [`Session::run_image`]).
    fn new_base(
        &self,
        job: &Job,
        app: &Image,
        platform: &Platform,
        of_index: bool,
    ) -> Result<(Option<String>, Option<Arc<RunImage>>), Failure> {
        // `--launcher-image` without a run image swaps the launcher only.
        let run_name = match &job.run_image {
            Some(name) => Some(name.clone()),
            None if self.launcher.is_some() => None,
            None => self.recorded_run_image(app, &job.image, platform, of_index)?,
        };
        match &run_name {
            Some(name) => Ok((
                run_name.clone(),
                Some(self.run_image(name, platform, of_index)?),
            )),
            None if self.launcher.is_some() => Ok((None, None)),
            None => Err(Failure::NoRunImage),
        }
    }

    /// Whether `name` (a tag) now names `digest`; false when that cannot be read.
    fn names(&self, name: &str, digest: &Digest) -> bool {
        let read = || -> relaunch_oci::Result<Digest> {
            let repo = self.open(&ImageRef::parse(name)?, false)?;
            Ok(repo.transport.get_manifest(&repo.reference)?.digest())
        };
        read().is_ok_and(|d| &d == digest)
    }

    /// The run image the app's metadata names: `runImage.image` (Platform >= 0.12), else
    /// `stack.runImage.image`, preferring the image or a mirror on the app's registry that
    /// is readable, else the first readable one (the reference's mirror choice).
    fn recorded_run_image(
        &self,
        app: &Image,
        target: &str,
        platform: &Platform,
        of_index: bool,
    ) -> Result<Option<String>, Failure> {
        let md = LifecycleMetadata::parse_label(app.label(LIFECYCLE_METADATA_LABEL).as_deref())
            .map_err(|e| Failure::Rebase(e.into()))?;
        let stack = md.rest.get("stack").and_then(|s| s.get("runImage"));
        let from_stack = |key: &str| stack.and_then(|s| s.get(key)).cloned();
        let use_run_image = self.settings.platform_api >= Api::new(0, 12)
            && md.run_image.image.as_deref().is_some_and(|i| !i.is_empty());
        let mut candidates: Vec<String> = if use_run_image {
            let mut c: Vec<String> = md.run_image.image.iter().cloned().collect();
            c.extend(md.run_image.mirrors.iter().flatten().cloned());
            c
        } else {
            let mut c: Vec<String> = from_stack("image")
                .and_then(|v| v.as_str().map(String::from))
                .into_iter()
                .collect();
            if let Some(serde_json::Value::Array(m)) = from_stack("mirrors") {
                c.extend(m.iter().filter_map(|v| v.as_str().map(String::from)));
            }
            c
        };
        candidates.retain(|c| !c.is_empty());
        if candidates.is_empty() {
            return Ok(None);
        }
        let registry = |name: &str| match ImageRef::parse(name) {
            Ok(ImageRef::Registry(r)) => Some(r.registry),
            _ => None,
        };
        let home = registry(target);
        candidates.sort_by_key(|c| registry(c) != home);
        for name in &candidates {
            if self.run_image(name, platform, of_index).is_ok() {
                return Ok(Some(name.clone()));
            }
        }
        Err(Failure::RunImage(format!(
            "failed to find accessible run image among {}",
            candidates.join(", ")
        )))
    }

    /// Writes `image` to every name, one write per repository (blobs, manifest, then its
    /// tags). Returns the manifest size.
    fn write(
        &self,
        image: &ImageOrIndex,
        source: &Repo,
        names: &[String],
        skip_first: bool,
    ) -> Result<u64, String> {
        let mut targets: Vec<(Arc<dyn Transport>, Vec<String>)> = Vec::new();
        for (i, name) in names.iter().enumerate() {
            let r = ImageRef::parse(name).map_err(|e| e.to_string())?;
            let repo = self.open(&r, true).map_err(|e| format!("{name}: {e}"))?;
            let tag = match &repo.reference {
                ManifestRef::Tag(t) => t.clone(),
                ManifestRef::Digest(_) => return Err(format!("{name} names a digest; give a tag")),
            };
            if i == 0 && skip_first {
                continue;
            }
            // The app's own repository keeps its transport: it knows which blobs are there.
            let location = repo.transport.location();
            let transport = if location == source.transport.location() {
                source.transport.clone()
            } else {
                repo.transport
            };
            match targets.iter_mut().find(|(t, _)| t.location() == location) {
                Some((_, tags)) => tags.push(tag),
                None => targets.push((transport, vec![tag])),
            }
        }
        let size = image.raw_manifest().bytes.len() as u64;
        for (transport, tags) in &targets {
            image
                .write(transport.as_ref(), tags, &NoProgress)
                .map_err(|e| format!("{}: {e}", describe(&transport.location(), tags)))?;
        }
        let carries_launcher = self.launcher.as_ref().is_some_and(|swap| {
            let d = &swap.layer.descriptor.digest;
            image
                .images()
                .iter()
                .any(|(_, i)| i.layers().iter().any(|l| &l.descriptor.digest == d))
        });
        if let (true, Some((first, _))) = (carries_launcher, targets.first()) {
            lock(&self.launcher_home).get_or_insert_with(|| first.clone());
        }
        Ok(size)
    }
}

fn describe(location: &Location, tags: &[String]) -> String {
    format!("{location}:{}", tags.join(","))
}

/// `runImage.reference` for an image read as `name`: `<registry>/<repository>@<digest>`
/// (go-containerregistry's form) or `oci:<dir>@<digest>` for a layout.
fn identifier(name: &str, repo: &Repo, digest: &Digest) -> String {
    match (ImageRef::parse(name), repo.transport.location()) {
        (Ok(ImageRef::Registry(r)), _) => {
            let registry = if r.registry == "docker.io" {
                "index.docker.io"
            } else {
                r.registry.as_str()
            };
            format!("{registry}/{}@{digest}", r.repository)
        }
        (_, Location::Layout { dir }) => format!("oci:{}@{digest}", dir.display()),
        (_, location) => format!("{location}@{digest}"),
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use super::*;
    use relaunch_lifecycle::apis::Api;
    use relaunch_lifecycle::descriptor::LauncherBinary;
    use relaunch_lifecycle::fixtures::{
        export_app, sample_app, with_launcher_version, RunImageRef,
    };
    use relaunch_lifecycle::launcher::{resolve, Overrides};
    use relaunch_oci::layer::{Entry, LayerBuilder};
    use relaunch_oci::remote::CredentialSource;
    use relaunch_oci::write_image;
    use relaunch_testkit::{Auth, Registry};

    /// One session swapping the launcher of apps in two repositories uploads the new
    /// launcher layer once and mounts it into the second.
    #[test]
    fn the_launcher_layer_is_uploaded_once_and_mounted_elsewhere() {
        let registry = Registry::start(Auth::Token);
        let host = registry.host();
        let launcher = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../dist/launcher");
        let launcher = std::env::var_os("RELAUNCH_STATIC_LAUNCHER")
            .map(std::path::PathBuf::from)
            .unwrap_or(launcher);
        let binary = LauncherBinary::from_file(&launcher)
            .expect("dist/launcher (scripts/build-launcher.sh)");
        let mut run = Image::new(
            relaunch_oci::v1::Flavor::Oci,
            serde_json::json!({"os": "linux", "architecture": "amd64", "config": {}}),
        )
        .unwrap();
        let layer = LayerBuilder::new()
            .entry(Entry::file("/etc/os", 0o644, "os"))
            .build()
            .unwrap();
        mutate_append(&mut run, layer);
        let run_ref = RunImageRef {
            image: "run".into(),
            reference: "run".into(),
        };
        let old = with_launcher_version(&binary.bytes, "0.0.1").unwrap();
        let app = export_app(&run, &run_ref, &sample_app(Api::new(0, 10)), &old, "0.0.1").unwrap();
        let config = ClientConfig {
            insecure_registries: vec![host.clone()],
            credentials: CredentialSource::DockerConfigDir(registry.docker_config_dir()),
            ..ClientConfig::default()
        };
        let pusher = Arc::new(RegistryClient::new(config));
        for repo in ["team-a/app", "team-b/app"] {
            let t = RegistryTransport::new(pusher.clone(), &host, repo);
            write_image(&app, &t, &["v1".into()], &NoProgress).unwrap();
        }

        std::env::set_var("DOCKER_CONFIG", registry.docker_config_dir());
        let swap =
            LauncherSwap::new(resolve(binary, None, &Overrides::default()).unwrap()).unwrap();
        let digest = swap.layer.descriptor.digest.clone();
        let settings = Settings {
            platform_api: Api::new(0, 15),
            force: false,
            decouple: false,
            launcher_must_match: Vec::new(),
        };
        let options = TransportOptions {
            insecure_registries: vec![host.clone()],
            ..TransportOptions::default()
        };
        let session = Session::new(options, settings, Some(swap)).unwrap();
        for repo in ["team-a/app", "team-b/app"] {
            let out = session.rebase(&Job {
                image: format!("{host}/{repo}:v1"),
                ..Job::default()
            });
            assert_eq!(out.status, Status::Rebased, "{repo}: {:?}", out.failure);
        }
        let c = session.counters();
        let size = c.uploaded.get(&digest).copied().unwrap_or(0);
        assert!(size > 0, "uploaded to the first repository: {c:?}");
        assert_eq!(
            c.mounts, 1,
            "mounted into the second, not uploaded again: {c:?}"
        );
    }

    /// Reference: "report.toml / checking the image manifest / image doesn't have a
    /// manifest / doesn't set the manifest size in the report.toml".
    #[test]
    fn report_toml_image_doesnt_have_a_manifest_doesnt_set_the_manifest_size() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("report.toml");
        let mut out = Outcome::new(&Job {
            image: "reg.example/app:v1".into(),
            ..Job::default()
        });
        out.tags = vec![
            "reg.example/app:v1".into(),
            "reg.example/app:\"odd\"".into(),
        ];
        super::super::write_report(&path, &out).unwrap();
        let text = std::fs::read_to_string(&path).unwrap();
        let report: toml::Value = toml::from_str(&text).unwrap();
        assert!(report["image"].get("manifest-size").is_none(), "{text}");
        assert_eq!(
            report["image"]["tags"][1].as_str(),
            Some("reg.example/app:\"odd\"")
        );
        out.manifest_size = 12345;
        super::super::write_report(&path, &out).unwrap();
        let report: toml::Value = toml::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
        assert_eq!(report["image"]["manifest-size"].as_integer(), Some(12345));
    }

    fn mutate_append(image: &mut Image, layer: relaunch_oci::Layer) {
        relaunch_oci::mutate::append_layers(image, vec![(layer, None)]).unwrap();
    }
}
