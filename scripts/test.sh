#!/usr/bin/env bash
# The one test command (README, .ci/run): installs what a fresh machine lacks, then
# lint, build, every test suite and the launcher size budget.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/deps.sh
ensure_test_deps

step() { printf '\n==> %s\n' "$*"; }

step "format and lints"
cargo fmt --all -- --check
cargo clippy --workspace --all-targets --locked -- -D warnings

step "static launcher (dist/launcher) + SBOM"
scripts/build-launcher.sh
scripts/check-launcher-size.sh

step "stand-in delegate for the meta-launcher tests (static example build)"
cargo build --locked --release --target x86_64-unknown-linux-musl -p launcher --example standin_delegate
export RELAUNCH_STANDIN_DELEGATE="${CARGO_TARGET_DIR:-$PWD/target}/x86_64-unknown-linux-musl/release/examples/standin_delegate"

step "tests"
export RELAUNCH_STATIC_LAUNCHER="$PWD/dist/launcher"
cargo nextest run --workspace --locked --no-fail-fast

step "registry request/byte budgets (deterministic counts, not timings)"
scripts/bench-registry.sh
