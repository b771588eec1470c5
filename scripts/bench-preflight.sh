#!/usr/bin/env bash
# Fleet pre-flight throughput (crates/relaunch/examples/preflight_bench.rs): N apps of mixed
# Platform APIs on a loopback registry, `relaunch check --from-file` timed as a separate
# process. Budget: >= 200 apps/s end to end. Usage: scripts/bench-preflight.sh [APPS] (400)
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/deps.sh
ensure_debian_packages
target_dir="${CARGO_TARGET_DIR:-$PWD/target}"
scripts/build-launcher.sh >/dev/null
cargo build --quiet --locked --release -p relaunch
cargo run --quiet --locked --release -p relaunch --example preflight_bench -- \
  --relaunch "$target_dir/release/relaunch" --launcher dist/launcher --apps "${1:-400}"
