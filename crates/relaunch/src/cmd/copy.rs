//! `relaunch copy <src> <dst>`: byte-preserving copy of an image or a whole index.

use std::process::ExitCode;

use anyhow::{bail, Context};
use relaunch_oci::{
    read::load_image_by_descriptor, write_image, write_index, Artifact, ImageRef, ManifestRef,
    Platform, Repo, WriteReport,
};
use serde_json::json;

use super::{BarProgress, Global};

#[derive(clap::Args, Debug)]
pub struct Args {
    /// Source: oci:<dir>[:<tag>|@<digest>] or [host[:port]/]repo[:tag|@digest]
    pub src: ImageRef,
    /// Destination, same forms (a layout is created if missing; no tag means latest).
    pub dst: ImageRef,
    /// Copy only this platform (os/arch[/variant]) out of an index.
    #[arg(long)]
    pub platform: Option<String>,
    /// Print the result as JSON.
    #[arg(long)]
    pub json: bool,
}

pub fn run(global: &Global, args: Args) -> anyhow::Result<ExitCode> {
    let opts = global.transport_options();
    let src = Repo::open(&args.src, &opts).with_context(|| format!("opening {}", args.src))?;
    let dst = Repo::create(&args.dst, &opts).with_context(|| format!("opening {}", args.dst))?;
    let tags: Vec<String> = match &dst.reference {
        ManifestRef::Tag(t) => vec![t.clone()],
        ManifestRef::Digest(_) => Vec::new(),
    };
    let platform = args.platform.as_deref().map(Platform::parse).transpose()?;
    let progress = BarProgress::for_stderr();
    let target = dst.transport.as_ref();
    let report: WriteReport = match (
        src.load()
            .with_context(|| format!("reading {}", args.src))?,
        platform,
    ) {
        (Artifact::Image(img), _) => write_image(&img, target, &tags, &progress)?,
        (Artifact::Index(idx), Some(p)) => {
            let desc = idx.select(&p, &args.src.to_string())?;
            let img = load_image_by_descriptor(&src.transport, desc)?;
            write_image(&img, target, &tags, &progress)?
        }
        (Artifact::Index(idx), None) => {
            let children = idx
                .load_children(&src.transport)
                .with_context(|| format!("reading the manifests of index {}", idx.raw.digest()))?;
            write_index(&idx, &children, target, &tags, &progress)?
        }
    };
    progress.finish();
    let digest = report.digest.clone().context("nothing was written")?;
    if let ManifestRef::Digest(want) = &dst.reference {
        if *want != digest {
            bail!("destination names digest {want} but the copied manifest is {digest}");
        }
    }
    if args.json {
        let out = json!({
            "digest": digest.to_string(),
            "manifestSize": report.manifest_size,
            "blobs": {"skipped": report.skipped, "mounted": report.mounted, "uploaded": report.uploaded},
        });
        outln!("{out:#}");
    } else {
        outln!("{digest}");
        eprintln!(
            "copied {} to {} (blobs: {} uploaded, {} mounted, {} already present)",
            args.src, args.dst, report.uploaded, report.mounted, report.skipped
        );
    }
    Ok(ExitCode::SUCCESS)
}
