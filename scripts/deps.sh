# Sourced by the scripts: installs what a fresh Debian machine lacks. Idempotent.
DEBIAN_PACKAGES=(docker-registry skopeo umoci runc busybox-static bash-static apache2-utils openssl zstd time chromium strace)

ensure_debian_packages() {
  local missing=()
  for p in "${DEBIAN_PACKAGES[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
  done
  if [ ${#missing[@]} -gt 0 ]; then
    local sudo=""; [ "$(id -u)" -eq 0 ] || sudo="sudo"
    $sudo apt-get update
    DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y "${missing[@]}"
  fi
}

ensure_rust_tools() {
  rustup target list --installed | grep -q x86_64-unknown-linux-musl \
    || rustup target add x86_64-unknown-linux-musl
  command -v cargo-nextest >/dev/null || cargo install --locked cargo-nextest
  command -v cargo-auditable >/dev/null || cargo install --locked cargo-auditable
  command -v cargo-cyclonedx >/dev/null || cargo install --locked cargo-cyclonedx
}

ensure_test_deps() {
  ensure_debian_packages
  ensure_rust_tools
}
