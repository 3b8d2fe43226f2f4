#!/usr/bin/env bash
# proxy.sh — benchmark the MCP endpoint inside the hwsim VM: direct to the agent socket vs
# through wifi-isolate's proxy vs through systemd-socket-proxyd, same run, same radio. Then the
# proxies' own CPU cost per request in front of a stand-in upstream (tests/bench/proxy-cpu.sh),
# in the same VM (TCG) and natively on this machine.
# Writes target/bench/proxy.md (Markdown tables with ratios). Not part of the pass/fail tests.
# The release build and the VM hold /tmp/wi-vm.lock (one TCG VM at a time on 2 cores).
set -euo pipefail
cd "$(dirname "$0")/../.."
tests/deps.sh hwsim
flock /tmp/wi-vm.lock cargo build --release --bins && flock /tmp/wi-vm.lock cargo build --release -p wifi-isolate-tests --bin hwsim-bench-proxy --bin proxy-cpu
share=target/bench/proxy-vm
rm -rf "$share"; mkdir -p "$share"
cp tests/bench/proxy-cpu.sh "$share/"
flock /tmp/wi-vm.lock bash tests/vm/lab/boot-initramfs.sh --aps wpa2 --stations 1 --share "$share" \
  --script tests/bench/proxy-guest.sh --mem 1024 --timeout 600 --quiet \
  --bin target/release/wifi-isolate --bin target/release/wifi-isolate-agent \
  --bin target/release/hwsim-bench-proxy --bin target/release/proxy-cpu \
  --bin /usr/bin/systemd-socket-activate --bin /lib/systemd/systemd-socket-proxyd
native=$(flock /tmp/wi-vm.lock sh tests/bench/proxy-cpu.sh target/release/proxy-cpu \
  /usr/bin/systemd-socket-activate /lib/systemd/systemd-socket-proxyd 5)
mkdir -p target/bench
{
  cat "$share/bench-proxy.md"
  printf '\nThe proxies alone, in front of a stand-in upstream (tests/bench/proxy-cpu.sh), same VM (TCG):\n\n'
  cat "$share/proxy-cpu.md"
  printf '\nThe same, natively on this machine (%s cores):\n\n%s\n' "$(nproc)" "$native"
  # What socket-proxyd itself said (warnings and errors: connection limit, failed connects…).
  log=$share/logs/socket-proxyd.log
  if [ -s "$log" ]; then
    printf '\nsystemd-socket-proxyd stderr, real-agent runs (count × message):\n\n```\n'
    sed -E 's/[0-9]+/N/g' "$log" | sort | uniq -c | sort -rn | head -10
    printf '```\n'
  else
    printf '\nsystemd-socket-proxyd wrote nothing to stderr (no warnings, no errors) in the real-agent runs.\n'
  fi
} > target/bench/proxy.md
cat target/bench/proxy.md
