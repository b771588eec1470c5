#!/usr/bin/env bash
# Builds the static launcher (dist/launcher) with embedded dependency info
# (cargo-auditable) and writes its CycloneDX SBOM (dist/launcher.cdx.json).
set -euo pipefail
cd "$(dirname "$0")/.."

if ! command -v cargo-auditable >/dev/null || ! command -v cargo-cyclonedx >/dev/null \
  || ! rustup target list --installed 2>/dev/null | grep -q '^x86_64-unknown-linux-musl$'; then
  source scripts/deps.sh
  ensure_rust_tools
fi

target_dir="${CARGO_TARGET_DIR:-$PWD/target}"
mkdir -p dist
if rustup target list --installed | grep -q '^x86_64-unknown-linux-musl$'; then
  target=x86_64-unknown-linux-musl
  cargo auditable build --locked --release --target "$target" -p launcher
else
  # Fallback: glibc, statically linked.
  target=x86_64-unknown-linux-gnu
  echo "musl target unavailable; building a static glibc launcher" >&2
  RUSTFLAGS="${RUSTFLAGS:-} -C target-feature=+crt-static" \
    cargo auditable build --locked --release --target "$target" -p launcher
fi
built="$target_dir/$target/release/launcher"
# Copy then rename, so concurrent builds never expose a half-written dist/launcher.
tmp="dist/.launcher.$$"
cp "$built" "$tmp"
mv "$tmp" dist/launcher

# cargo-cyclonedx writes one file next to every workspace member's manifest; keep the
# launcher's (moved into dist/) and remove the others.
sbom_name="launcher-sbom-$$"
cargo cyclonedx --manifest-path crates/launcher/Cargo.toml --format json \
  --target "$target" --no-build-deps --spec-version 1.5 \
  --override-filename "$sbom_name" -q
mv "crates/launcher/$sbom_name.json" dist/launcher.cdx.json
rm -f crates/*/"$sbom_name.json"

if file dist/launcher 2>/dev/null | grep -q 'dynamically linked'; then
  echo "dist/launcher is dynamically linked" >&2
  exit 1
fi
echo "built dist/launcher ($(stat -c %s dist/launcher) bytes) and dist/launcher.cdx.json"
