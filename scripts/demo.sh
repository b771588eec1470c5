#!/usr/bin/env bash
# The main job (README): build the static launcher, launch the sample app through it,
# then run the whole decoupling story on local OCI layouts with `relaunch demo`.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/deps.sh
ensure_test_deps
scripts/demo-launcher.sh
cargo build --release --locked -p relaunch
./target/release/relaunch demo --dir "${DEMO_DIR:-target/demo}" --launcher dist/launcher
