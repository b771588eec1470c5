#!/usr/bin/env bash
# Launcher budgets: size, start-up medians/ratios against /bin/true and a static exec
# floor, peak RSS. Usage: scripts/bench-launcher.sh [ROUNDS]  (default 300, minimum 200)
set -euo pipefail
cd "$(dirname "$0")/.."
rounds="${1:-300}"
target_dir="${CARGO_TARGET_DIR:-$PWD/target}"

scripts/build-launcher.sh >/dev/null
# The floor: same target, profile and build tool as dist/launcher; never shipped.
# rss_probe: a small static parent, so its address space does not inflate ru_maxrss.
cargo auditable build --locked --release --target x86_64-unknown-linux-musl -p launcher \
  --example exec_floor --example rss_probe
examples="$target_dir/x86_64-unknown-linux-musl/release/examples"
cargo run --locked --release -p launcher --example bench_startup -- \
  --launcher dist/launcher --floor "$examples/exec_floor" --rss-probe "$examples/rss_probe" \
  --rounds "$rounds"
