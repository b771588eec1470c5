#!/usr/bin/env bash
# Times `relaunch lifecycle-image` on the reference v0.21.17 lifecycle (../shared/reference/),
# laid out like upstream's image (a base layer, then /cnb/lifecycle in one layer), against
# `skopeo copy` of the same image between OCI layouts (the floor: moving the image at all).
# Each command runs as its own process; medians of N runs (default 5) are printed.
# Usage: scripts/bench-lifecycle-image.sh [N]   (needs target/release/relaunch, dist/launcher)
set -euo pipefail
cd "$(dirname "$0")/.."
runs="${1:-5}"
ref="${RELAUNCH_REFERENCE_DIR:-../shared/reference}"
relaunch="${RELAUNCH_BIN:-target/release/relaunch}"
for f in "$ref/lifecycle-v0.21.17" "$ref/lifecycle-v0.21.17-launcher" "$relaunch" dist/launcher; do
  [[ -e "$f" ]] || { echo "missing $f (cargo build --release -p relaunch; scripts/build-launcher.sh)" >&2; exit 1; }
done
work="$(mktemp -d)"
trap '[[ -n "${KEEP_WORK:-}" ]] || rm -rf "$work"' EXIT

# The source image, built with umoci: base layer, then the lifecycle layer, upstream's labels.
mkdir -p "$work/base/etc" "$work/lc/cnb/lifecycle"
echo 'root:x:0:0:root:/root:/sbin/nologin' > "$work/base/etc/passwd"
cp "$ref/lifecycle-v0.21.17" "$work/lc/cnb/lifecycle/lifecycle"
cp "$ref/lifecycle-v0.21.17-launcher" "$work/lc/cnb/lifecycle/launcher"
for p in analyzer builder creator detector exporter extender rebaser restorer; do
  ln -s lifecycle "$work/lc/cnb/lifecycle/$p"
done
for s in cdx spdx syft; do
  echo '{"fixture":"Go launcher SBOM"}' > "$work/lc/cnb/lifecycle/launcher.sbom.$s.json"
done
apis='{"buildpack":{"deprecated":[],"supported":["0.7","0.8","0.9","0.10","0.11","0.12"]},"platform":{"deprecated":[],"supported":["0.7","0.8","0.9","0.10","0.11","0.12","0.13","0.14","0.15"]}}'
umoci init --layout "$work/src" >/dev/null
umoci new --image "$work/src:lc" >/dev/null
umoci insert --image "$work/src:lc" "$work/base" / >/dev/null
umoci insert --image "$work/src:lc" "$work/lc" / >/dev/null
umoci config --image "$work/src:lc" --os linux --architecture amd64 \
  --config.label "io.buildpacks.lifecycle.apis=$apis" \
  --config.label "io.buildpacks.lifecycle.version=0.21.17" >/dev/null

median() { sort -n | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }
# "wall_ms cpu_ms" of one command (CPU = user + sys: the machine may be shared and busy).
measure() {
  /usr/bin/time -f '%e %U %S' -o "$work/time" "$@" >/dev/null 2>&1
  awk '{printf "%d %d\n", $1 * 1000, ($2 + $3) * 1000}' "$work/time"
}
derive=() copy=()
for i in $(seq "$runs"); do
  rm -rf "$work/out" "$work/copy"
  derive+=("$(measure "$relaunch" lifecycle-image "oci:$work/src:lc" --launcher dist/launcher --tag "oci:$work/out:lc")")
  copy+=("$(measure skopeo --insecure-policy copy "oci:$work/src:lc" "oci:$work/copy:lc")")
done
col() { printf '%s\n' "${@:2}" | awk -v c="$1" '{print $c}' | median; }
dw=$(col 1 "${derive[@]}") dc=$(col 2 "${derive[@]}") cw=$(col 1 "${copy[@]}") cc=$(col 2 "${copy[@]}")
lc_bytes=$(stat -c %s "$work/lc/cnb/lifecycle/lifecycle")
echo "relaunch lifecycle-image: median ${dw} ms wall, ${dc} ms CPU"
echo "skopeo copy (same image): median ${cw} ms wall, ${cc} ms CPU"
echo "ratio: $(awk "BEGIN {printf \"%.2f\", $dw/$cw}") wall (lifecycle binary ${lc_bytes} bytes, ${runs} runs; load: $(cut -d' ' -f1 /proc/loadavg))"
