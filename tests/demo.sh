#!/usr/bin/env bash
# demo.sh — the main job on simulated radios, on any Debian 12 machine (as root):
# installs what it needs, builds wifi-isolate, boots a VM with mac80211_hwsim radios and a real
# WPA2 access point, isolates a radio with `wifi-isolate run`, scans and connects over MCP,
# shows the host never noticed (route trace), and releases it.
set -euo pipefail
cd "$(dirname "$0")/.."
if [ "$(id -u)" != 0 ]; then
  echo "demo.sh: needs root (namespaces, QEMU): sudo bash tests/demo.sh" >&2
  exit 1
fi
echo "==> installing packages (apt) if missing"
tests/deps.sh
if ! command -v cargo >/dev/null; then
  echo "demo.sh: needs a Rust toolchain (cargo); see https://rustup.rs" >&2
  exit 1
fi
echo "==> building wifi-isolate"
cargo build --quiet --bins --example hwsim-demo
share=target/hwsim/demo
rm -rf "$share"; mkdir -p "$share"
echo "==> booting the lab VM (QEMU + mac80211_hwsim; about 20-40 s)"
bash tests/hwsim/run-vm.sh --aps wpa2 --stations 1 --share "$share" --mem 1024 --timeout 300 \
  --script tests/vm/demo-guest.sh --quiet \
  --bin target/debug/wifi-isolate --bin target/debug/wifi-isolate-agent \
  --bin target/debug/examples/hwsim-demo > "$share/runner.log" 2>&1 || {
  cat "$share/logs/test.log" 2>/dev/null || true
  tail -20 "$share/runner.log"
  echo "demo.sh: the demo failed; logs in $share/logs" >&2
  exit 1
}
cat "$share/logs/test.log"
