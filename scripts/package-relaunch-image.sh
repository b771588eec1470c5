#!/usr/bin/env bash
# Packages relaunch as a small OCI image for running fleet rebases in a cluster
# (docs/fleet-rebase.md): one layer holding the static dist/relaunch at
# /usr/local/bin/relaunch, entrypoint relaunch, non-root user 65532. Written with
# relaunch's own engine (crates/oci/examples/pack.rs) to an OCI layout or a registry.
#
#   scripts/package-relaunch-image.sh oci:dist/relaunch-image:0.1.0
#   scripts/package-relaunch-image.sh registry.example.com/platform/relaunch:0.1.0
#
# Builds dist/relaunch first (scripts/build-relaunch.sh) when it is missing. Registry
# credentials come from $DOCKER_CONFIG/config.json; pass --insecure-registry HOST after
# the destination for a plain-HTTP registry.
set -euo pipefail
cd "$(dirname "$0")/.."

dest="${1:?usage: package-relaunch-image.sh <oci:dir:tag | registry/repo:tag> [--insecure-registry host]}"
shift
[[ -x dist/relaunch ]] || scripts/build-relaunch.sh
version="$(dist/relaunch --version | awk '{print $2}')"
cargo run --quiet --locked -p relaunch-oci --example pack -- "$dest" \
  dist/relaunch:/usr/local/bin/relaunch:0755 \
  --entrypoint /usr/local/bin/relaunch \
  --user 65532:65532 \
  --label "org.opencontainers.image.title=relaunch" \
  --label "org.opencontainers.image.version=$version" \
  --label "org.opencontainers.image.description=CNB launcher decoupling and fleet rebase" \
  "$@"
