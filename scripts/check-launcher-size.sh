#!/usr/bin/env bash
# Fails when dist/launcher exceeds its size budget (640 KB = 640,000 bytes).
set -euo pipefail
cd "$(dirname "$0")/.."
limit=640000
bin=dist/launcher
if [ ! -f "$bin" ]; then
  echo "check-launcher-size: $bin is missing; run scripts/build-launcher.sh first" >&2
  exit 1
fi
size=$(stat -c %s "$bin")
if [ "$size" -gt "$limit" ]; then
  echo "check-launcher-size: FAIL: $bin is $size bytes, over the budget of $limit bytes (640 KB)" >&2
  exit 1
fi
echo "check-launcher-size: OK: $bin is $size bytes (budget $limit bytes, 640 KB)"
