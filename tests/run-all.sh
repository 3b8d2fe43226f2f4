#!/usr/bin/env bash
# run-all.sh — set up a fresh Debian 12 machine and run every test of wifi-isolate.
#
# What it does, in order:
#   1. starts the release build (the .deb's binaries) in the background at the lowest priority,
#      then apt-get installs what the tests drive for real (QEMU + hwsim lab parts,
#      wpa_supplicant, hostapd, dbus, podman, systemd tools) — quick when already installed;
#   2. starts, in the background too, the hwsim kernel, the full system's rootfs and the lab's
#      SAE-PK hostapd + wpa_supplicant (target/prep-*.log); the tests that need them wait;
#   3. cargo fmt --check and cargo clippy -D warnings;
#   4. cargo test --workspace: unit tests beside the code (src/), host integration tests
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

export CARGO_TERM_COLOR=never
mkdir -p target

# In the background, at the lowest CPU and I/O priority, what the later tests need and nothing
# before them does: the release build of the .deb's and the .rpm's binaries (the packages test,
# the full-system suites), the hwsim kernel and the full system's base rootfs (downloads). They
# soak up what the foreground leaves idle — apt's downloads, clippy's and the debug build's serial
# stretches, the host tests' waits — instead of running alone later. Whoever needs one first
# waits for it: cargo's lock on target/release, a flock on each cache. The release build is the
# same invocation as packaging/debian/rules (see there why without CFLAGS and SOURCE_DATE_EPOCH),
# so the .deb's own `cargo build --release` finds everything built. It needs only the toolchain
# (and its C compiler, for ring), so it starts before the packages; the other two need apt.
( until command -v cc >/dev/null; do sleep 2; done
  exec env -u CFLAGS -u CPPFLAGS -u CXXFLAGS -u LDFLAGS -u SOURCE_DATE_EPOCH \
    nice -n 19 ionice -c 3 cargo build --release --locked --bins ) > target/prep-release.log 2>&1 &
release_pid=$!
lab_pid=
trap 'kill $release_pid $lab_pid 2>/dev/null || true' EXIT
log "in the background: cargo build --release (target/prep-release.log)"

log "system packages"
tests/deps.sh

( set -e
  nice -n 19 ionice -c 3 tests/vm/lab/kernel.sh
  cache=${WI_FULLSYS_CACHE:-.cache/fullsys}
  mkdir -p "$cache"
  nice -n 19 ionice -c 3 flock "$cache/rootfs.lock" tests/vm/lab/build-rootfs.sh
  nice -n 19 ionice -c 3 tests/vm/lab/saepk-build.sh
) > target/prep-lab.log 2>&1 &
lab_pid=$!
log "in the background: the hwsim kernel, the full system's rootfs, the SAE-PK hostapd and wpa_supplicant (target/prep-lab.log)"

log "cargo fmt --check"
cargo fmt --all -- --check

log "cargo clippy"
cargo clippy --workspace --all-targets --locked -- -D warnings

log "cargo build (the product, and the probes the VM suites run inside the guest)"
cargo build --locked --workspace --bins

log "cargo test (unit, host integration, every VM suite one test per named check)"
rc=0
cargo test --locked --workspace --all-targets --no-fail-fast -- --test-threads="${WI_TEST_THREADS:-2}" || rc=$?

# The tests waited for what they needed; a background job that failed failed them too, with its
# error here.
for job in release:"$release_pid" lab:"$lab_pid"; do
  if ! wait "${job#*:}"; then
    echo "run-all.sh: the background ${job%%:*} preparation failed; the end of target/prep-${job%%:*}.log:" >&2
    tail -n 20 "target/prep-${job%%:*}.log" >&2
    rc=1
  fi
done
exit "$rc"
