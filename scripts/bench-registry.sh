#!/usr/bin/env bash
# Registry benchmark (crates/oci/examples/registry_bench.rs): starts real registries via the
# testkit and prints the requests and layer bytes of (1) replacing a mid-stack layer whose
# replacement is already in the repository and (2) copying an image between repositories.
# Exits non-zero when a budget is exceeded.
# `scripts/bench-registry.sh push [ROUNDS]` instead times a 1 GiB push of an OCI layout by
# the release `relaunch` binary against skopeo (crates/oci/examples/push_bench.rs): time,
# peak RSS and registry requests of each, budgets relative to skopeo in the same run.
# Measured (5-layer, 7 MiB image; anonymous and token modes alike, 401 challenges excluded):
#   replace a mid-stack layer: 6 requests (GET 2, HEAD 1, POST 1, PUT 2), 0 layer bytes
#   copy between repositories: 9 requests (GET 2, POST 6 = 5 layer + 1 config mounts,
#   PUT 1), 0 layer bytes; before mounts were tried first it was 16 (HEAD+POST per blob).
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/deps.sh
ensure_debian_packages
if [ "${1:-}" = push ]; then
  cargo build --quiet --locked --release -p relaunch
  exec cargo run --quiet --locked --release -p relaunch-oci --example push_bench -- \
    target/release/relaunch "${2:-3}"
fi
cargo run --quiet --locked -p relaunch-oci --example registry_bench
# Per-image cost of `relaunch rebase` (crates/relaunch/examples/rebase_bench.rs), measured
# from the spawned process's own counters. Measured (2-layer run images, new blobs in the
# registry; anonymous and token alike, 401 challenges excluded):
#   rebase, binary-mode app: 8 requests (GET 4, POST 2, PUT 2), 0 layer bytes down
#   rebase, symlink-mode app, launcher validated: 8 (GET 4, POST 2, PUT 2), 0 layer bytes:
#     its build metadata records the buildpack APIs (9 with the config-layer read before)
#   launcher swap, layer already in the repository: 7 (GET 3, HEAD 1, POST 1, PUT 2)
if [ -x dist/launcher ]; then launcher=dist/launcher; else scripts/build-launcher.sh; launcher=dist/launcher; fi
cargo build --quiet --locked -p relaunch
cargo run --quiet --locked -p relaunch --example rebase_bench -- \
  "${CARGO_TARGET_DIR:-target}/debug/relaunch" "$launcher"
