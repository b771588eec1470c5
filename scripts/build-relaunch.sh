#!/usr/bin/env bash
# Builds relaunch itself as a static executable (dist/relaunch): musl, release profile,
# for the fleet image (scripts/package-relaunch-image.sh) and the fleet benchmark.
# Falls back to glibc `+crt-static` without the musl target, as build-launcher.sh does.
set -euo pipefail
cd "$(dirname "$0")/.."

target_dir="${CARGO_TARGET_DIR:-$PWD/target}"
if rustup target list --installed 2>/dev/null | grep -q '^x86_64-unknown-linux-musl$'; then
  target=x86_64-unknown-linux-musl
  # ring's C/asm parts need a C compiler for the target: musl-gcc (Debian musl-tools)
  # when present, else the host cc (ring's C code needs no libc headers beyond the
  # compiler's own).
  export CC_x86_64_unknown_linux_musl="${CC_x86_64_unknown_linux_musl:-$(command -v musl-gcc || command -v cc)}"
  cargo build --locked --release --target "$target" -p relaunch
else
  target=x86_64-unknown-linux-gnu
  echo "musl target unavailable; building a static glibc relaunch" >&2
  RUSTFLAGS="${RUSTFLAGS:-} -C target-feature=+crt-static" \
    cargo build --locked --release --target "$target" -p relaunch
fi
mkdir -p dist
# Copy then rename, so concurrent builds never expose a half-written dist/relaunch.
tmp="dist/.relaunch.$$"
cp "$target_dir/$target/release/relaunch" "$tmp"
mv "$tmp" dist/relaunch
if file dist/relaunch 2>/dev/null | grep -q 'dynamically linked'; then
  echo "dist/relaunch is dynamically linked" >&2
  exit 1
fi
echo "built dist/relaunch ($(stat -c %s dist/relaunch) bytes, $target)"
