#!/usr/bin/env bash
# Export benchmark (issue 8 budgets): a layers directory of 20 launch layers with
# EXPORT_BENCH_MB (default 1024) of mixed content — half incompressible, half text — exported
# by `relaunch export` into an OCI layout, against the same directories run through
# `tar -c | gzip -6 | sha256sum` one after another, in the same run on the same machine.
# Then a re-export with nothing changed (previous image = the first export).
# Prints both ratios; budgets: first ≤ 0.70 × baseline, re-export ≤ 5 % of the first.
# Each command is a separate process, timed as a user's shell would see it. The inputs and
# the output layout are deleted afterwards (the disk is shared) unless EXPORT_BENCH_KEEP=1.
set -euo pipefail
cd "$(dirname "$0")/.."

mb="${EXPORT_BENCH_MB:-1024}"
layers_n=20
work="${EXPORT_BENCH_DIR:-$PWD/target/bench-export}"
target_dir="${CARGO_TARGET_DIR:-$PWD/target}"
relaunch="$target_dir/release/relaunch"
cargo build --release --locked -p relaunch >&2

now() { date +%s.%N; }
elapsed() { echo "$(now) - $1" | bc; }

# Inputs, generated once per size (kept with EXPORT_BENCH_KEEP=1: generation is not what is
# measured).
in="$work/in-${mb}mb"
out="$work/out"
cleanup() { [ "${EXPORT_BENCH_KEEP:-}" = 1 ] || rm -rf "$in" "$out"; }
trap cleanup EXIT
if [ ! -f "$in/.complete" ]; then
  rm -rf "$in"
  mkdir -p "$in/layers/config" "$in/workspace"
  per_layer=$(( mb * 1024 * 1024 / layers_n ))
  group=""
  for i in $(seq -w 1 "$layers_n"); do
    bp="bench_bp$i"
    d="$in/layers/$bp/data"
    mkdir -p "$d/text" "$d/bin"
    printf '[types]\nlaunch = true\n' > "$in/layers/$bp/data.toml"
    group+=$'[[group]]\nid = "bench/bp'"$i"$'"\nversion = "1.0.0"\napi = "0.10"\n'
    # Half incompressible (random), half compressible (text), in 8 files each.
    for f in 1 2 3 4 5 6 7 8; do
      head -c $(( per_layer / 16 )) /dev/urandom > "$d/bin/blob$f"
      # (seq stops on SIGPIPE once head has enough: not an error here)
      { seq -f "line %.0f of a log-like text file that compresses well, layer $i.$f" 1 10000000 \
        || true; } | head -c $(( per_layer / 16 )) > "$d/text/file$f.txt"
    done
  done
  printf '%s' "$group" > "$in/layers/group.toml"
  printf '[[processes]]\ntype = "web"\ncommand = ["/bin/true"]\ndirect = true\nbuildpack-id = "bench/bp01"\n' \
    > "$in/layers/config/metadata.toml"
  echo "bench app" > "$in/workspace/README"
  printf 'launcher-bytes' > "$in/launcher"
  # An empty run image in its own layout.
  umoci init --layout "$in/run" >/dev/null
  umoci new --image "$in/run:latest" >/dev/null
  touch "$in/.complete"
fi
run_digest=$(python3 -c 'import json,sys;print(json.load(open(sys.argv[1]))["manifests"][0]["digest"])' "$in/run/index.json")
printf '[run-image]\nreference = "oci:%s@%s"\n' "$in/run" "$run_digest" > "$in/layers/analyzed.toml"

# Warm the page cache for both contenders alike.
cat "$in"/layers/*/data/*/* > /dev/null

export CNB_PLATFORM_API=0.12
rm -rf "$out" "$in/layers/.relaunch"
export_once() {
  "$relaunch" export -layers "$in/layers" -app "$in/workspace" -launcher "$in/launcher" \
    -run "$in/none.toml" -log-level warn "oci:$out:app" > /dev/null
}

t=$(now)
for d in "$in"/layers/bench_bp*/data; do
  tar -c -C "$d" . | gzip -6 | sha256sum > /dev/null
done
baseline=$(elapsed "$t")

t=$(now); export_once; first=$(elapsed "$t")

printf '[previous-image]\nreference = "oci:%s:app"\n[run-image]\nreference = "oci:%s@%s"\n' \
  "$out" "$in/run" "$run_digest" > "$in/layers/analyzed.toml"
sleep 4 # past the diffID cache's racy window for files written just now
t=$(now); export_once; second=$(elapsed "$t")
# A re-export whose cache is cold (e.g. a fresh build container): hashes every layer.
rm -rf "$in/layers/.relaunch"
t=$(now); export_once; cold=$(elapsed "$t")

ratio=$(echo "scale=3; $first / $baseline" | bc)
reratio=$(echo "scale=4; $second / $first" | bc)
coldratio=$(echo "scale=3; $cold / $first" | bc)
printf '\nexport benchmark: %d layers, %d MB mixed content, %s CPUs (%s)\n' \
  "$layers_n" "$mb" "$(nproc)" "$(uname -m)"
printf '  tar -c | gzip -6 | sha256sum, sequential: %6.2f s\n' "$baseline"
printf '  relaunch export, first (OCI layout):       %6.2f s   ratio %s (budget <= 0.70)\n' "$first" "$ratio"
printf '  relaunch export, nothing changed:          %6.2f s   ratio %s of first (budget <= 0.05)\n' "$second" "$reratio"
printf '  same, diffID cache cold (hash every layer): %6.2f s   ratio %s of first (no budget)\n' "$cold" "$coldratio"
ok=1
(( $(echo "$ratio <= 0.70" | bc) )) || { echo "  OVER BUDGET: first export"; ok=0; }
(( $(echo "$reratio <= 0.05" | bc) )) || { echo "  OVER BUDGET: re-export"; ok=0; }
[ "$ok" = 1 ] && echo "  within budget"
