#!/usr/bin/env bash
# Demo: builds the static launcher and launches the sample app's `web` process the way
# an app image does, through a symlink named `web` (ENTRYPOINT /cnb/process/web).
set -euo pipefail
cd "$(dirname "$0")/.."

echo "==> building dist/launcher"
scripts/build-launcher.sh

image=$(mktemp -d)
trap 'rm -rf "$image"' EXIT
cp -R examples/sample-app/. "$image/"
chmod +x "$image"/layers/examples_hello/runtime/bin/* "$image"/layers/examples_hello/runtime/exec.d/*
mkdir -p "$image/cnb/lifecycle" "$image/cnb/process"
cp dist/launcher "$image/cnb/lifecycle/launcher"
ln -s ../lifecycle/launcher "$image/cnb/process/web"
ln -s ../lifecycle/launcher "$image/cnb/process/worker"
# Colour the launcher's ERROR/Warning prefixes only on a terminal.
no_color=true
[ -t 1 ] && no_color=false

run() {
  echo
  echo "\$ $*"
  local code=0
  env -i PATH="/cnb/process:/cnb/lifecycle:/usr/local/bin:/usr/bin:/bin" \
    CNB_PLATFORM_API=0.15 CNB_LAYERS_DIR="$image/layers" CNB_APP_DIR="$image/workspace" \
    CNB_NO_COLOR="$no_color" ${EXTRA_ENV:-} "$@" || code=$?
  echo "(exit code $code)"
}

echo
echo "==> sample image in $image"
echo "    layers/config/metadata.toml declares: $(grep -c '^\[\[processes\]\]' "$image/layers/config/metadata.toml") processes (web, worker)"
echo "    launch layer examples_hello/runtime: bin/, env/, env.launch/, env.launch/web/, exec.d/"

echo
echo "==> 1. the web process, as 'docker run <image>' would start it"
run "$image/cnb/process/web"

echo
echo "==> 2. user args replace the default args (Buildpack API 0.12)"
run "$image/cnb/process/web" 127.0.0.1:9090

echo
echo "==> 3. a direct user command: no process type, so no env.launch/web (PORT unset)"
run "$image/cnb/lifecycle/launcher" -- hello-server --one-off

echo
echo "==> 4. the worker process (working-dir jobs/, exec-env production)"
run "$image/cnb/process/worker"
echo "    ... and with CNB_EXEC_ENV=test it is not eligible (Platform API 0.15):"
EXTRA_ENV="CNB_EXEC_ENV=test" run "$image/cnb/process/worker"

echo
echo "==> 5. the launcher itself without a command: the reference's error and exit code"
run "$image/cnb/lifecycle/launcher"
