//! Packs files into a one-layer OCI image with the engine (no Docker, no base image) and
//! writes it to a layout or a registry — how scripts/package-relaunch-image.sh makes the
//! image the fleet Job runs. Reproducible: sorted entries, normalised times.
//!
//! Usage: pack <dest> <src>:<path>[:<mode>]... [--entrypoint <path>] [--label k=v]...
//!            [--user uid[:gid]] [--insecure-registry host]
//!   dest: oci:<dir>[:<tag>] or [host[:port]/]repo[:tag]

use std::process::ExitCode;

use relaunch_oci::layer::{Entry, LayerBuilder, NORMALIZED_TIME};
use relaunch_oci::mutate::{self, History};
use relaunch_oci::v1::Flavor;
use relaunch_oci::{
    write_image, Image, ImageRef, ManifestRef, NoProgress, Session, TransportOptions,
};

fn main() -> ExitCode {
    match run(std::env::args().skip(1).collect()) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("ERROR: {e}");
            ExitCode::FAILURE
        }
    }
}

fn run(args: Vec<String>) -> Result<(), String> {
    let mut dest = None;
    let mut files: Vec<(String, String, u32)> = Vec::new();
    let (mut entrypoint, mut user) = (None, None);
    let mut labels: Vec<(String, String)> = Vec::new();
    let mut options = TransportOptions::default();
    let mut args = args.into_iter();
    while let Some(arg) = args.next() {
        let mut value = |flag: &str| args.next().ok_or(format!("{flag} needs a value"));
        match arg.as_str() {
            "--entrypoint" => entrypoint = Some(value("--entrypoint")?),
            "--user" => user = Some(value("--user")?),
            "--insecure-registry" => options
                .insecure_registries
                .push(value("--insecure-registry")?),
            "--label" => {
                let kv = value("--label")?;
                let (k, v) = kv
                    .split_once('=')
                    .ok_or(format!("--label {kv}: expected k=v"))?;
                labels.push((k.into(), v.into()));
            }
            _ if dest.is_none() => dest = Some(arg),
            _ => {
                let mut parts = arg.splitn(3, ':');
                let (Some(src), Some(path)) = (parts.next(), parts.next()) else {
                    return Err(format!("{arg}: expected <src>:<path>[:<mode>]"));
                };
                let mode = match parts.next() {
                    Some(m) => {
                        u32::from_str_radix(m, 8).map_err(|e| format!("{arg}: mode: {e}"))?
                    }
                    None => 0o644,
                };
                files.push((src.into(), path.into(), mode));
            }
        }
    }
    let dest = dest.ok_or("usage: pack <dest> <src>:<path>[:<mode>]...")?;
    if files.is_empty() {
        return Err("nothing to pack".into());
    }
    files.sort_by(|a, b| a.1.cmp(&b.1));
    let mut layer = LayerBuilder::new();
    for (src, path, mode) in &files {
        layer = layer.entry(Entry::file_from(path.as_str(), *mode, src.as_str()));
    }
    let layer = layer.build().map_err(|e| e.to_string())?;
    let mut config = serde_json::json!({
        "os": "linux",
        "architecture": host_architecture(),
        "config": {"Env": ["PATH=/usr/local/bin:/usr/bin:/bin"]},
    });
    if let Some(user) = &user {
        config["config"]["User"] = user.as_str().into();
    }
    let mut image = Image::new(Flavor::Oci, config).map_err(|e| e.to_string())?;
    let history = History::created_by(format!("pack {} file(s)", files.len()), NORMALIZED_TIME);
    let edit = || -> relaunch_oci::Result<()> {
        mutate::append_layers(&mut image, vec![(layer, Some(history))])?;
        mutate::set_entrypoint(&mut image, entrypoint.map(|e| vec![e]))?;
        mutate::set_labels(
            &mut image,
            labels.iter().map(|(k, v)| (k.as_str(), Some(v.as_str()))),
        )?;
        mutate::set_created(&mut image, NORMALIZED_TIME)
    };
    edit().map_err(|e| e.to_string())?;
    let target = ImageRef::parse(&dest).map_err(|e| e.to_string())?;
    let repo = Session::new(options)
        .create(&target)
        .map_err(|e| format!("{dest}: {e}"))?;
    let ManifestRef::Tag(tag) = &repo.reference else {
        return Err(format!("{dest}: give a tag, not a digest"));
    };
    let report = write_image(
        &image,
        repo.transport.as_ref(),
        std::slice::from_ref(tag),
        &NoProgress,
    )
    .map_err(|e| format!("writing {dest}: {e}"))?;
    let digest = report.digest.map(|d| d.to_string()).unwrap_or_default();
    println!("{dest}@{digest}");
    Ok(())
}

fn host_architecture() -> &'static str {
    match std::env::consts::ARCH {
        "x86_64" => "amd64",
        "aarch64" => "arm64",
        other => other,
    }
}
