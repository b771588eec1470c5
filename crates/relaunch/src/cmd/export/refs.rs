//! Image names as the reference exporter resolves them: `-layout` paths and registry names
//! as go-containerregistry spells them.

use std::path::Path;

use relaunch_oci::ImageRef;

use super::{fail, Fail, EXIT_INVALID_ARGS};

/// go-containerregistry's name for a registry host (Docker Hub is `index.docker.io`).
pub(super) fn ggcr_registry(registry: &str) -> &str {
    if registry == "docker.io" {
        "index.docker.io"
    } else {
        registry
    }
}

/// Where an image named `name` lives with -layout: `oci:<dir>/<registry>/<repo>/<tag>`
/// (lifecycle's ParseRefToPath), tagged with its tag; `oci:` references pass through.
pub(super) fn layout_ref(layout_dir: &Path, name: &str) -> Result<ImageRef, Fail> {
    let parsed = ImageRef::parse(name).map_err(|e| fail(EXIT_INVALID_ARGS, e))?;
    let ImageRef::Registry(r) = parsed else {
        return Ok(parsed);
    };
    let mut dir = layout_dir
        .join(ggcr_registry(&r.registry))
        .join(&r.repository);
    let tag = r.tag.clone().unwrap_or_else(|| "latest".into());
    dir = match &r.digest {
        Some(d) => dir.join(d.to_string()),
        None => dir.join(&tag),
    };
    Ok(ImageRef::Layout {
        dir,
        tag: r.digest.is_none().then_some(tag),
        digest: r.digest.clone(),
    })
}
