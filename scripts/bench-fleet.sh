#!/usr/bin/env bash
# Fleet rebase benchmark (crates/relaunch/examples/fleet_bench.rs): 500 CNB app images in a
# loopback registry rebased onto a new run image by one `relaunch rebase --from-file`
# process (static release build, dist/relaunch) with --jobs 8 and --jobs 1, and for scale
# one process per image (relaunch, and the reference rebaser when ../shared/reference has
# it). Prints images/s, requests/image, bytes/image; timing is not asserted.
#   scripts/bench-fleet.sh [images] [sample]
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/deps.sh
ensure_debian_packages
[[ -x dist/relaunch ]] || scripts/build-relaunch.sh
[[ -x dist/launcher ]] || scripts/build-launcher.sh
echo "load average before: $(cut -d' ' -f1-3 /proc/loadavg) on $(nproc) cores"
cargo run --quiet --locked --release -p relaunch --example fleet_bench -- \
  dist/relaunch dist/launcher "${1:-500}" "${2:-50}"
echo "load average after: $(cut -d' ' -f1-3 /proc/loadavg)"
