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
#   4. cargo test --workspace (the packages test beside the rest, in the background): unit
#      tests beside the code (src/), host integration tests
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
pkg_pid=
trap 'kill $release_pid $lab_pid $pkg_pid 2>/dev/null || true' EXIT
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

log "cargo test --no-run (every test binary)"
cargo test --locked --workspace --all-targets --no-run

# The packages test (the .deb: lintian, a clean-chroot install; the .rpm) waits for the release
# build above and then is mostly dpkg, lintian and mmdebstrap: it runs beside the other tests,
# at the lowest priority, instead of before them all (~7-10 min on 2 cores). The VM suites boot
# the initramfs labs first; the full-system ones need the same .deb and wait for the release
# build too (cargo's lock).
pkg_bin=$(cargo test --locked -p wifi-isolate-tests --test packages --no-run 2>&1 |
  sed -n 's/^ *Executable .*(\(.*\))$/\1/p' | tail -n 1)
[ -x "$pkg_bin" ] || { echo "run-all.sh: no packages test binary (got '$pkg_bin')" >&2; exit 1; }
# (cargo runs an integration test in its package's directory)
( cd tests && exec nice -n 19 ionice -c 3 "../$pkg_bin" --test-threads=2 ) > target/packages-test.log 2>&1 &
pkg_pid=$!
PKG_TESTS=(deb_has_every_file_is_lintian_clean_and_installs_into_a_clean_bookworm rpm_has_every_file_and_the_scriptlets)
log "in the background: the packages test's ${PKG_TESTS[*]} (target/packages-test.log, printed at the end)"

log "cargo test (unit, host integration, every VM suite one test per named check)"
rc=0
skip=()
for t in "${PKG_TESTS[@]}"; do skip+=(--skip "$t"); done
cargo test --locked --workspace --all-targets --no-fail-fast -- --test-threads="${WI_TEST_THREADS:-2}" "${skip[@]}" || rc=$?

log "the packages test (run in the background)"
pkg_rc=0
wait "$pkg_pid" || pkg_rc=$?
cat target/packages-test.log
[ "$pkg_rc" = 0 ] || { echo "run-all.sh: the packages test failed (rc $pkg_rc)" >&2; rc=1; }

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
