//! `relaunch lifecycle-image`: a lifecycle image (or index) whose `/cnb/lifecycle/launcher`
//! is relaunch's launcher, for `pack build --lifecycle-image`, builders and kpack.

use std::io::Read;
use std::path::Path;
use std::process::ExitCode;

use anyhow::{bail, Context};
use relaunch_lifecycle::contract::{APP_LAUNCHER_PATH, PATH_LABEL};
use relaunch_lifecycle::descriptor::{LauncherBinary, LAUNCHER_SIZE_LIMIT};
use relaunch_lifecycle::lifecycle_image::{
    check_distinct, derive, derive_children, launcher_for, Derived, Replacement, SBOM_FILES,
    SBOM_LIMIT,
};
use relaunch_oci::layer::read::read_file;
use relaunch_oci::{
    write_image, write_index, Artifact, Child, Digest, Image, ImageRef, IndexManifest, ManifestRef,
    Platform, Repo,
};
use serde_json::json;
use tracing::warn;

use super::images::is_file_argument;
use super::{BarProgress, Global};

#[derive(clap::Args, Debug)]
pub struct Args {
    /// Lifecycle image or index: oci:<dir>[:<tag>] or [host[:port]/]repo[:tag|@digest]
    pub lifecycle_image: String,
    /// The launcher: a static ELF file with a .cnb_launcher self-description (its CycloneDX
    /// SBOM is read from <FILE>.cdx.json when present), or an image holding one (each
    /// platform of an index). Repeat for each architecture of a multi-arch lifecycle index.
    #[arg(long, value_name = "FILE|IMAGE", required = true)]
    pub launcher: Vec<String>,
    /// Derive only this platform (os/arch[/variant]) of a lifecycle index. Once: the output
    /// is that platform's image; repeated: an index of just those platforms.
    #[arg(long)]
    pub platform: Vec<String>,
    /// Output image reference.
    #[arg(long, value_name = "IMAGE")]
    pub tag: ImageRef,
    /// Print the result as JSON.
    #[arg(long)]
    pub json: bool,
}

pub fn run(global: &Global, args: Args) -> anyhow::Result<ExitCode> {
    let mut launchers = Vec::new();
    for given in &args.launcher {
        launchers.extend(replacements(global, given)?);
    }
    check_distinct(&launchers)?;

    let name = &args.lifecycle_image;
    let opts = global.transport_options();
    let src = ImageRef::parse(name)
        .map_err(anyhow::Error::from)
        .and_then(|r| Ok(Repo::open(&r, &opts)?))
        .with_context(|| format!("opening {name}"))?;
    let platforms = args
        .platform
        .iter()
        .map(|p| Platform::parse(p))
        .collect::<Result<Vec<_>, _>>()?;
    let artifact = match (
        src.load().with_context(|| format!("reading {name}"))?,
        &platforms[..],
    ) {
        (index @ Artifact::Index(_), [one]) => Artifact::Image(src.image_of(index, Some(one))?),
        (Artifact::Index(idx), [_, _, ..]) => {
            Artifact::Index(only_platforms(&idx, &platforms, name)?)
        }
        (artifact, _) => artifact,
    };
    // Everything is derived (and checked) before anything is written.
    let (derived, index) = match artifact {
        Artifact::Image(image) => {
            let launcher = launcher_for(&image, name, &launchers)?;
            (vec![derive(image, name, launcher)?], None)
        }
        Artifact::Index(idx) => {
            let children = idx
                .load_children(&src.transport)
                .with_context(|| format!("reading the manifests of index {name}"))?;
            let pairs = derive_children(children, name, &launchers)?;
            let children: Vec<Child> = pairs.iter().map(|(c, _)| c.clone()).collect();
            let out = idx.with_children(&children)?;
            (
                pairs.into_iter().filter_map(|(_, d)| d).collect(),
                Some((out, children)),
            )
        }
    };

    let used = |l: &&Replacement| {
        derived
            .iter()
            .any(|d| d.record.digest == Digest::of(&l.binary.bytes))
    };
    for l in launchers.iter().filter(used).filter(|l| l.sbom.is_none()) {
        warn!(
            "launcher '{}' has no CycloneDX SBOM: the derived image removes the launcher SBOM files instead of replacing them",
            l.binary.origin
        );
    }

    let repo = Repo::create(&args.tag, &opts).with_context(|| format!("opening {}", args.tag))?;
    let tags = match &repo.reference {
        ManifestRef::Tag(t) => vec![t.clone()],
        ManifestRef::Digest(_) => bail!("--tag {} names a digest; give a tag", args.tag),
    };
    let progress = BarProgress::for_stderr();
    let target = repo.transport.as_ref();
    let report = match &index {
        Some((idx, children)) => write_index(idx, children, target, &tags, &progress),
        None => write_image(&derived[0].image, target, &tags, &progress),
    }
    .with_context(|| format!("writing {}", args.tag))?;
    progress.finish();
    let digest = report.digest.context("nothing was written")?;

    if args.json {
        let platforms: Vec<_> = derived.iter().map(platform_json).collect();
        let out =
            json!({"digest": digest.to_string(), "index": index.is_some(), "platforms": platforms});
        println!("{out:#}");
        return Ok(ExitCode::SUCCESS);
    }
    for d in &derived {
        let r = &d.record;
        let what = match (d.unchanged, &d.replaced) {
            (true, _) => "already carried it".to_string(),
            (false, Some(old)) => format!("replaced layer {old} by {}", r.layer),
            (false, None) => format!("added layer {}", r.layer),
        };
        println!(
            "{}: {APP_LAUNCHER_PATH} is {} {}; SBOM written: {}; removed: {}; {what}",
            d.image.platform(),
            r.name,
            r.version,
            list(&r.sbom),
            list(&r.removed),
        );
    }
    println!("wrote {} ({digest})", args.tag);
    Ok(ExitCode::SUCCESS)
}

/// `idx` reduced to the manifests of `wanted` platforms, each of which must be there.
fn only_platforms(
    idx: &IndexManifest,
    wanted: &[Platform],
    name: &str,
) -> anyhow::Result<IndexManifest> {
    for w in wanted {
        idx.select(w, name)?;
    }
    let mut index = idx.index.clone();
    index.manifests.retain(|d| {
        d.platform
            .as_ref()
            .is_some_and(|p| wanted.iter().any(|w| w.matches(p)))
    });
    let mut out = IndexManifest::new(index);
    out.raw.media_type = idx.raw.media_type.clone();
    Ok(out)
}

fn list(items: &[String]) -> String {
    if items.is_empty() {
        "none".into()
    } else {
        items.join(", ")
    }
}

fn platform_json(d: &Derived) -> serde_json::Value {
    json!({
        "platform": d.image.platform().to_string(),
        "digest": d.image.digest().to_string(),
        "launcher": d.record,
        "replaced": d.replaced.as_ref().map(ToString::to_string),
        "unchanged": d.unchanged,
    })
}

/// The launchers `given` names: a file (and `<file>.cdx.json`), or every Linux platform of
/// an image holding a launcher.
fn replacements(global: &Global, given: &str) -> anyhow::Result<Vec<Replacement>> {
    if is_file_argument(given) {
        let binary = LauncherBinary::from_file(Path::new(given))?;
        let sbom_path = format!("{given}.cdx.json");
        let sbom = match std::fs::File::open(&sbom_path) {
            Ok(file) => {
                let mut bytes = Vec::new();
                file.take(SBOM_LIMIT + 1)
                    .read_to_end(&mut bytes)
                    .with_context(|| format!("reading {sbom_path}"))?;
                if bytes.len() as u64 > SBOM_LIMIT {
                    bail!("SBOM {sbom_path} is over {SBOM_LIMIT} bytes");
                }
                Some((sbom_path, bytes))
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => None,
            Err(e) => return Err(e).with_context(|| format!("opening {sbom_path}")),
        };
        return Ok(vec![Replacement::new(binary, sbom)?]);
    }
    let repo = ImageRef::parse(given)
        .map_err(anyhow::Error::from)
        .and_then(|r| Ok(Repo::open(&r, &global.transport_options())?))
        .with_context(|| format!("opening launcher image {given}"))?;
    let images: Vec<Image> = match repo.load().with_context(|| format!("reading {given}"))? {
        Artifact::Image(image) => vec![image],
        Artifact::Index(idx) => idx
            .load_children(&repo.transport)
            .with_context(|| format!("reading the manifests of index {given}"))?
            .into_iter()
            .filter_map(|c| match c {
                Child::Image(i) if i.platform().os == "linux" => Some(i),
                _ => None,
            })
            .collect(),
    };
    images
        .iter()
        .map(|image| from_image(given, image))
        .collect()
}

/// The launcher of a run image (at its advertised path) or of a lifecycle image, with the
/// CycloneDX SBOM a lifecycle image keeps beside it.
fn from_image(given: &str, image: &Image) -> anyhow::Result<Replacement> {
    let path = image
        .label(PATH_LABEL)
        .unwrap_or_else(|| APP_LAUNCHER_PATH.to_string());
    let origin = format!("{given} ({}):{path}", image.platform());
    let (entry, bytes) = read_file(image, &path, LAUNCHER_SIZE_LIMIT)
        .with_context(|| format!("image {given} has no usable {path}"))?;
    let binary = LauncherBinary::from_bytes(origin.clone(), bytes, entry.mode)?;
    let sbom = if path == APP_LAUNCHER_PATH {
        match read_file(image, SBOM_FILES[0], SBOM_LIMIT) {
            Ok((_, bytes)) => Some((format!("{given}:{}", SBOM_FILES[0]), bytes)),
            Err(e) if e.is_not_found() => None,
            Err(e) => return Err(e).with_context(|| format!("reading {given}:{}", SBOM_FILES[0])),
        }
    } else {
        None
    };
    Ok(Replacement::new(binary, sbom)?)
}
