#!/usr/bin/env bash
# Registry benchmark (crates/oci/examples/registry_bench.rs): starts real registries via the
# testkit and prints the requests and layer bytes of (1) replacing a mid-stack layer whose
# replacement is already in the repository and (2) copying an image between repositories.
# Exits non-zero when a budget is exceeded.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/deps.sh
ensure_debian_packages
cargo run --quiet --locked -p relaunch-oci --example registry_bench
