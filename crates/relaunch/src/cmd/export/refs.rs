//! Image names as the reference exporter resolves them: `-layout` paths and the registries
//! go-containerregistry reaches over plain HTTP.

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

/// go-containerregistry's `Registry.Scheme`: loopback and RFC 1918 hosts get plain HTTP
/// without being named insecure, so the reference reaches them that way; so do we.
pub(super) fn plain_http_by_default(host: &str) -> bool {
    let h = host.rsplit_once(':').map_or(host, |(h, p)| {
        if p.chars().all(|c| c.is_ascii_digit()) {
            h
        } else {
            host
        }
    });
    if h == "localhost" || h == "[::1]" || h == "::1" {
        return true;
    }
    match h.parse::<std::net::Ipv4Addr>() {
        Ok(ip) => ip.is_loopback() || ip.is_private(),
        Err(_) => false,
    }
}
