//! Building the exporter's layers: directory layers the way the reference's `DirLayer`
//! writes them (parent directories first, with their own owner and mode; the tree with the
//! build's uid/gid), built concurrently, each reused from the previous image when its
//! diffID is already there (no compression, no upload).

use std::os::unix::fs::MetadataExt;
use std::path::Path;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Mutex;

use relaunch_oci::layer::{Entry, LayerBuilder};
use relaunch_oci::{Digest, Image, Layer};
use tracing::{debug, info};

use super::cache::DiffIdCache;
use super::Dirs;
use crate::error::{Error, Result};

/// How a layer of the app image comes about.
#[derive(Debug)]
pub enum Source {
    /// Entries to write (reused instead when the previous image has the same diffID).
    Build(LayerBuilder),
    /// Already built (the symlink launcher layer `decouple` shares).
    Ready(Box<Layer>),
    /// Restored metadata only (`<layer>.toml` without its directory): the previous image's
    /// layer with this diffID.
    Previous(Digest),
}

/// One layer to add, named as the reference logs it (`example/bp:web`,
/// `buildpacksio/lifecycle:launcher`, `slice-1`).
#[derive(Debug)]
pub struct Job {
    pub id: String,
    pub created_by: String,
    pub source: Source,
}

/// A finished layer and whether it came from the previous image.
#[derive(Debug, Clone)]
pub struct Done {
    pub id: String,
    pub created_by: String,
    pub layer: Layer,
    pub reused: bool,
}

/// `dir` (a path inside the image) and everything below it, preceded by its parent
/// directories (except `/`): parents keep their owner, the tree gets `uid:gid` (reference
/// §3.4 item 7).
pub fn dir_layer(dirs: &Dirs, dir: &Path, uid: u64, gid: u64) -> Result<LayerBuilder> {
    let name = dir
        .to_str()
        .ok_or_else(|| relaunch_oci::Error::invalid(dir.display().to_string(), "not UTF-8"))?;
    let mut builder = LayerBuilder::new();
    let mut parents: Vec<&Path> = dir.ancestors().skip(1).collect();
    parents.reverse();
    for parent in parents.into_iter().filter(|p| *p != Path::new("/")) {
        let on_disk = dirs.on_disk(parent);
        let meta = std::fs::metadata(&on_disk)
            .map_err(|e| relaunch_oci::Error::io(format!("reading {}", on_disk.display()), e))?;
        let path = parent.to_str().unwrap_or_default();
        builder = builder
            .entry(Entry::dir(path, meta.mode()).owned_by(meta.uid().into(), meta.gid().into()));
    }
    let tree = LayerBuilder::new().dir_tree(&dirs.on_disk(dir), name)?;
    Ok(tree
        .entries()
        .iter()
        .cloned()
        .fold(builder, |b, e| b.entry(e.owned_by(uid, gid))))
}

/// Builds (or reuses) every job, a few at a time, keeping their order. The first failure
/// stops the rest and is returned.
pub fn build_all(
    jobs: Vec<Job>,
    previous: Option<&Image>,
    cache: &DiffIdCache,
) -> Result<Vec<Done>> {
    let workers = std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(2)
        .min(jobs.len())
        .max(1);
    let next = AtomicUsize::new(0);
    let failed = AtomicBool::new(false);
    let results: Vec<Mutex<Option<Result<Done>>>> = jobs.iter().map(|_| Mutex::new(None)).collect();
    std::thread::scope(|s| {
        for _ in 0..workers {
            s.spawn(|| loop {
                let i = next.fetch_add(1, Ordering::SeqCst);
                if i >= jobs.len() || failed.load(Ordering::SeqCst) {
                    break;
                }
                let r = build_one(&jobs[i], previous, cache);
                if r.is_err() {
                    failed.store(true, Ordering::SeqCst);
                }
                *results[i].lock().unwrap_or_else(|p| p.into_inner()) = Some(r);
            });
        }
    });
    let mut done = Vec::with_capacity(jobs.len());
    for r in results {
        match r.into_inner().unwrap_or_else(|p| p.into_inner()) {
            Some(r) => done.push(r?),
            // Not started because an earlier job failed; that failure is returned below.
            None => continue,
        }
    }
    if done.len() != jobs.len() {
        return Err(Error::Export("a layer build stopped early".into()));
    }
    log(&done);
    Ok(done)
}

/// The reference's lines: one per layer, app layers summed up (`Reused 1/2 app layer(s)`).
fn log(done: &[Done]) {
    let app = |d: &&Done| d.id.starts_with(APP_LAYER_PREFIX);
    for d in done.iter().filter(|d| !app(d)) {
        let verb = if d.reused { "Reusing" } else { "Adding" };
        info!("{verb} layer '{}'", d.id);
        debug!("Layer '{}' SHA: {}", d.id, d.layer.diff_id);
    }
    let slices: Vec<&Done> = done.iter().filter(app).collect();
    for d in &slices {
        debug!("Layer '{}' SHA: {}", d.id, d.layer.diff_id);
    }
    let reused = slices.iter().filter(|d| d.reused).count();
    if reused > 0 {
        info!("Reused {reused}/{} app layer(s)", slices.len());
    }
    if reused < slices.len() {
        info!(
            "Added {}/{} app layer(s)",
            slices.len() - reused,
            slices.len()
        );
    }
}

/// App layers are `slice-1` … `slice-<n>`.
pub const APP_LAYER_PREFIX: &str = "slice-";

fn from_previous(previous: Option<&Image>, diff_id: &Digest) -> Option<Layer> {
    previous?
        .layers()
        .iter()
        .find(|l| &l.diff_id == diff_id)
        .cloned()
}

fn build_one(job: &Job, previous: Option<&Image>, cache: &DiffIdCache) -> Result<Done> {
    let done = |layer, reused| Done {
        id: job.id.clone(),
        created_by: job.created_by.clone(),
        layer,
        reused,
    };
    match &job.source {
        Source::Previous(diff_id) => from_previous(previous, diff_id)
            .map(|l| done(l, true))
            .ok_or_else(|| {
                Error::Export(format!(
                    "failed to reuse layer '{}': the previous image has no layer {diff_id}",
                    job.id
                ))
            }),
        Source::Ready(layer) => Ok(match from_previous(previous, &layer.diff_id) {
            Some(l) => done(l, true),
            None => done((**layer).clone(), false),
        }),
        Source::Build(builder) => {
            let key = cache.key(builder);
            let built = |layer: Layer| {
                if let Some(k) = &key {
                    cache.put(k.clone(), &layer.diff_id);
                }
                done(layer, false)
            };
            if previous.is_some_and(|p| !p.layers().is_empty()) {
                // Unchanged since the last export (same stat fingerprint): no read at all.
                let cached = key.as_deref().and_then(|k| cache.get(k));
                if let Some(layer) = cached.and_then(|d| from_previous(previous, &d)) {
                    return Ok(done(layer, true));
                }
                // Hashing the tar costs a fraction of compressing it: check for reuse first.
                let diff_id = builder.diff_id()?;
                if let Some(layer) = from_previous(previous, &diff_id) {
                    if let Some(k) = &key {
                        cache.put(k.clone(), &diff_id);
                    }
                    return Ok(done(layer, true));
                }
            }
            Ok(built(builder.build()?))
        }
    }
}
