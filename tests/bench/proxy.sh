#!/usr/bin/env bash
# proxy.sh — benchmark the MCP endpoint inside the hwsim VM: direct to the agent socket vs
# through wifi-isolate's proxy vs through systemd-socket-proxyd, same run, same radio.
# Writes target/bench/proxy.md (a Markdown table with ratios). Not part of the pass/fail tests.
# The release build and the VM hold /tmp/wi-vm.lock (one TCG VM at a time on 2 cores).
set -euo pipefail
cd "$(dirname "$0")/../.."
tests/deps.sh
flock /tmp/wi-vm.lock cargo build --release --bins --example hwsim-bench-proxy
share=target/bench/proxy-vm
rm -rf "$share"; mkdir -p "$share"
flock /tmp/wi-vm.lock bash tests/hwsim/run-vm.sh --aps wpa2 --stations 1 --share "$share" \
  --script tests/vm/bench-proxy-guest.sh --mem 1024 --timeout 600 --quiet \
  --bin target/release/wifi-isolate --bin target/release/wifi-isolate-agent \
  --bin target/release/examples/hwsim-bench-proxy \
  --bin /usr/bin/systemd-socket-activate --bin /lib/systemd/systemd-socket-proxyd
mkdir -p target/bench
cp "$share/bench-proxy.md" target/bench/proxy.md
cat target/bench/proxy.md
