#!/usr/bin/env bash
# demo.sh — the main job on simulated radios, on any Debian 12 machine (as root).
#
# Installs what it needs (apt), builds wifi-isolate and its .deb, builds a Debian VM image with
# systemd, udev, NetworkManager, podman and that .deb installed the way a user installs it, boots
# it under QEMU with mac80211_hwsim radios and real access points, and walks through:
# `wifi-isolate enable wlanX --now` → an MCP client scans and connects → the host's routes and
# NetworkManager never noticed → stop/disable bring the card home — printing a route trace.
# First run: ~10 min (release build, Debian rootfs download); later runs ~1-2 min.
set -euo pipefail
cd "$(dirname "$0")/.."
if [ "$(id -u)" != 0 ]; then
  echo "demo.sh: needs root (chroot, QEMU): sudo bash tests/demo.sh" >&2
  exit 1
fi
echo "==> installing packages (apt) if missing"
tests/deps.sh fullsys
if ! command -v cargo >/dev/null; then
  echo "demo.sh: needs a Rust toolchain (cargo); see https://rustup.rs" >&2
  exit 1
fi
echo "==> building wifi-isolate and its .deb (release build; a few minutes the first time)"
cargo build --quiet -p wifi-isolate-tests --bin fullsys-probe
deb=$(bash packaging/build-deb.sh --out target/fullsys/deb --no-lintian | tail -n1)
echo "==> building the VM image (Debian + systemd + NetworkManager + podman + $(basename "$deb"))"
img=$(bash tests/vm/lab/build-image.sh --deb "$deb" | tail -n1)
share=target/fullsys/demo
rm -rf "$share"; mkdir -p "$share/bin" "$share/logs"
cp tests/vm/lab/guest/fullsys-lib.sh "$share/"
cp target/debug/fullsys-probe "$share/bin/"
echo "==> booting it (QEMU/TCG with simulated radios; about a minute)"
touch "$share/logs/test.log"
tail -n +1 -F "$share/logs/test.log" 2>/dev/null &
tailer=$!
rc=0
bash tests/vm/lab/boot-image.sh --image "$img" --share "$share" --script tests/vm/demo/guest.sh \
  --aps wpa2,sae --stations 1 --timeout 400 --quiet > "$share/runner.log" 2>&1 || rc=$?
sleep 1; kill "$tailer" 2>/dev/null || true
if [ $rc != 0 ]; then
  tail -20 "$share/runner.log"
  echo "demo.sh: the demo failed; logs in $share/logs (journal.log, console.log)" >&2
  exit 1
fi
