#!/usr/bin/env bash
# run-all.sh — set up a fresh Debian 12 machine and run every test of wifi-isolate.
#
# What it does, in order:
#   1. apt-get installs what the tests drive for real (QEMU + hwsim lab parts, wpa_supplicant,
#      hostapd, dbus, podman, systemd tools) — quick when already installed;
#   2. cargo fmt --check and cargo clippy -D warnings;
#   3. cargo test --workspace: unit tests beside the code (src/), host integration tests
#      (tests/host/: real wpa_supplicant, dbus-daemon, podman, dockerd, netns; the packages: .deb +
#      lintian + a clean-chroot install, .rpm) and every VM suite (tests/vm/*/lab.toml: real kernel
#      radios under QEMU, in a busybox initramfs lab or a full Debian system with systemd, udev,
#      NetworkManager, podman and the .deb installed), each VM check a test of its own name.
# tests/README.md maps every feature to its proof.
# Needs root (namespaces, engines, VM). Exit status is non-zero if anything failed.
set -euo pipefail
cd "$(dirname "$0")/.."

log() { printf '\n==> %s\n' "$*"; }

if [ "$(id -u)" != 0 ]; then
  echo "run-all.sh: the tests need root (network namespaces, container engines, QEMU)" >&2
  exit 1
fi

log "system packages"
tests/deps.sh

export CARGO_TERM_COLOR=never
log "cargo fmt --check"
cargo fmt --all -- --check

log "cargo clippy"
cargo clippy --workspace --all-targets --locked -- -D warnings

log "cargo build (the product, and the probes the VM suites run inside the guest)"
cargo build --locked --workspace --bins

log "cargo test (unit, host integration, every VM suite one test per named check)"
cargo test --locked --workspace --all-targets --no-fail-fast -- --test-threads="${WI_TEST_THREADS:-2}"
