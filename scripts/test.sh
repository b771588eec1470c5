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

step "tests"
export RELAUNCH_STATIC_LAUNCHER="$PWD/dist/launcher"
cargo nextest run --workspace --locked --no-fail-fast

step "registry request/byte budgets (deterministic counts, not timings)"
scripts/bench-registry.sh
