#!/usr/bin/env bash
# deps.sh — install the Debian packages the packaging builds and tests/packages.rs use. Idempotent
# and quick when everything is present; runs `apt-get update` only when something is missing.
# The Rust toolchain (>= rust-version in Cargo.toml) is not installed here: bookworm's rustc is
# too old for edition 2024, the builds use the cargo on PATH.
set -euo pipefail
PKGS=(
  # the .deb: debhelper (compat 13, dh_installsysusers/tmpfiles), man pages, the checks
  debhelper dpkg-dev fakeroot help2man lintian
  # the .rpm, built on this Debian machine (rpmbuild is in `rpm`)
  rpm
  # tests/packages.rs: a clean bookworm root to install the .deb into
  mmdebstrap debian-archive-keyring
)
missing=()
for p in "${PKGS[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  echo "packaging/deps.sh: installing ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi
