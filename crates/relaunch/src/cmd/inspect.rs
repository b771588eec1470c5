//! `relaunch inspect <image> [--json]`: manifest, config, layers, labels, history and the
//! CNB launcher facts (which layer is the launcher layer, where it sits over the run image).

use std::process::ExitCode;

use anyhow::Context;
use relaunch_oci::{Artifact, Image, ImageRef, Platform, Repo};
use serde_json::{json, Value};

use super::Global;

pub const LIFECYCLE_METADATA_LABEL: &str = "io.buildpacks.lifecycle.metadata";

#[derive(clap::Args, Debug)]
pub struct Args {
    /// oci:<dir>[:<tag>|@<digest>] or [host[:port]/]repo[:tag|@digest]
    pub image: ImageRef,
    /// For an index: inspect this platform's image (os/arch[/variant]).
    #[arg(long)]
    pub platform: Option<String>,
    /// Print JSON instead of text.
    #[arg(long)]
    pub json: bool,
}

pub fn run(global: &Global, args: Args) -> anyhow::Result<ExitCode> {
    let repo = Repo::open(&args.image, &global.transport_options())
        .with_context(|| format!("opening {}", args.image))?;
    let artifact = repo
        .load()
        .with_context(|| format!("reading {}", args.image))?;
    let report = match (&args.platform, artifact) {
        (None, Artifact::Index(idx)) => json!({
            "reference": args.image.to_string(),
            "digest": idx.raw.digest().to_string(),
            "mediaType": idx.raw.media_type,
            "manifests": idx.index.manifests.iter().map(|d| json!({
                "digest": d.digest.to_string(),
                "mediaType": d.media_type,
                "size": d.size,
                "platform": d.platform.as_ref().map(Platform::to_string),
            })).collect::<Vec<_>>(),
        }),
        (Some(p), artifact) => {
            let img = repo.image_of(artifact, Some(&Platform::parse(p)?))?;
            image_report(global, &args.image, &img)
        }
        (None, Artifact::Image(img)) => image_report(global, &args.image, &img),
    };
    if args.json {
        outln!("{report:#}");
    } else {
        print_text(&report);
    }
    Ok(ExitCode::SUCCESS)
}

fn image_report(global: &Global, reference: &ImageRef, img: &Image) -> Value {
    let manifest = img.manifest();
    let history = img.history();
    let positions = relaunch_oci::mutate::history_positions(img).ok().flatten();
    let layers: Vec<Value> = img
        .layers()
        .iter()
        .enumerate()
        .map(|(i, l)| {
            let created_by = positions
                .as_ref()
                .and_then(|p| history[p[i]].get("created_by"))
                .cloned()
                .unwrap_or(Value::Null);
            json!({
                "index": i,
                "digest": l.descriptor.digest.to_string(),
                "diffID": l.diff_id.to_string(),
                "size": l.descriptor.size,
                "mediaType": l.descriptor.media_type,
                "createdBy": created_by,
            })
        })
        .collect();
    json!({
        "reference": reference.to_string(),
        "digest": img.digest().to_string(),
        "mediaType": img.raw_manifest().media_type,
        "config": {"digest": manifest.config.digest.to_string(), "size": manifest.config.size},
        "platform": img.platform().to_string(),
        "created": img.config().get("created").cloned().unwrap_or(Value::Null),
        "annotations": img.annotations(),
        "layers": layers,
        "labels": img.labels(),
        "history": history,
        "cnb": cnb_facts(global, img),
    })
}

/// Launcher layer position from `launcher.sha`, run-image top from `runImage.topLayer`.
fn cnb_facts(global: &Global, img: &Image) -> Value {
    let Some(raw) = img.label(LIFECYCLE_METADATA_LABEL) else {
        return Value::Null;
    };
    let meta: Value = match serde_json::from_str(&raw) {
        Ok(v) => v,
        Err(e) => return json!({"error": format!("{LIFECYCLE_METADATA_LABEL} is not JSON: {e}")}),
    };
    let position = |ptr: &str| -> (Value, Value) {
        let sha = meta
            .pointer(ptr)
            .and_then(Value::as_str)
            .filter(|s| !s.is_empty());
        let pos = sha.and_then(|s| img.layers().iter().position(|l| l.diff_id.as_str() == s));
        (json!(sha), json!(pos))
    };
    let (launcher_sha, launcher_pos) = position("/launcher/sha");
    let (top_sha, top_pos) = position("/runImage/topLayer");
    let above = match (launcher_pos.as_u64(), top_pos.as_u64()) {
        (Some(l), Some(t)) => json!(l > t),
        _ => Value::Null,
    };
    json!({
        "launcher": {
            "sha": launcher_sha,
            "layerIndex": launcher_pos,
            "type": meta.pointer("/launcher/type"),
            "target": meta.pointer("/launcher/target"),
            "aboveRunImage": above,
        },
        "runImage": {
            "topLayer": top_sha,
            "topLayerIndex": top_pos,
            "reference": meta.pointer("/runImage/reference"),
            "image": meta.pointer("/runImage/image"),
        },
        "layerCount": img.layers().len(),
        "runs": super::images::launcher_that_runs(global, img),
    })
}

fn print_text(r: &Value) {
    let s = |v: &Value| match v {
        Value::String(s) => s.clone(),
        Value::Null => "-".into(),
        other => other.to_string(),
    };
    outln!("Reference:  {}", s(&r["reference"]));
    outln!("Digest:     {}", s(&r["digest"]));
    outln!("Media type: {}", s(&r["mediaType"]));
    if let Some(manifests) = r["manifests"].as_array() {
        outln!("Manifests:");
        for m in manifests {
            outln!(
                "  {}  {}  {} bytes",
                s(&m["platform"]),
                s(&m["digest"]),
                s(&m["size"])
            );
        }
        return;
    }
    outln!(
        "Config:     {} ({} bytes)",
        s(&r["config"]["digest"]),
        s(&r["config"]["size"])
    );
    outln!("Platform:   {}", s(&r["platform"]));
    outln!("Created:    {}", s(&r["created"]));
    outln!("Layers:");
    for l in r["layers"].as_array().into_iter().flatten() {
        outln!(
            "  {:>3}  diffID {}  blob {}  {} bytes  {}",
            s(&l["index"]),
            s(&l["diffID"]),
            s(&l["digest"]),
            s(&l["size"]),
            s(&l["createdBy"])
        );
    }
    if let Some(labels) = r["labels"].as_object().filter(|l| !l.is_empty()) {
        outln!("Labels:");
        for (k, v) in labels {
            outln!("  {k}={}", s(v));
        }
    }
    if let Some(ann) = r["annotations"].as_object().filter(|a| !a.is_empty()) {
        outln!("Annotations:");
        for (k, v) in ann {
            outln!("  {k}={}", s(v));
        }
    }
    let cnb = &r["cnb"];
    if !cnb.is_null() {
        outln!("CNB launcher:");
        outln!("  launcher.sha:       {}", s(&cnb["launcher"]["sha"]));
        outln!(
            "  launcher layer:     {} of {}",
            s(&cnb["launcher"]["layerIndex"]),
            s(&cnb["layerCount"])
        );
        outln!(
            "  runImage.topLayer:  {} (layer {})",
            s(&cnb["runImage"]["topLayer"]),
            s(&cnb["runImage"]["topLayerIndex"])
        );
        outln!(
            "  above run image:    {}",
            s(&cnb["launcher"]["aboveRunImage"])
        );
        if !cnb["launcher"]["type"].is_null() {
            outln!(
                "  launcher.type:      {} → {}",
                s(&cnb["launcher"]["type"]),
                s(&cnb["launcher"]["target"])
            );
        }
        let runs = &cnb["runs"];
        let apis = |v: &Value| match v.as_array() {
            Some(list) => list.iter().map(s).collect::<Vec<_>>().join(","),
            None => s(v),
        };
        if !runs.is_null() {
            outln!(
                "  launcher that runs: {} version {} (Platform APIs {}; Buildpack APIs {})",
                s(&runs["path"]),
                s(&runs["version"]),
                apis(&runs["platform-apis"]),
                apis(&runs["buildpack-apis"])
            );
            outln!("    from: {}", s(&runs["source"]));
            outln!("    SBOM: {}", s(&runs["sbom"]));
        }
    }
}
