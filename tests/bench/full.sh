#!/usr/bin/env bash
# full.sh — the full-system benchmark: the release .deb installed in the full-system VM (Debian,
# systemd, udev, NetworkManager, podman; hwsim radios, a WPA2 AP, two stations). WI_BENCH_N rounds
# (default 8) after a warm-up round, each round running every flow once, so ours and its
# references are paired in time: isolate (systemctl start → READY, podman and netns engines, vs
# the seed's manual podman flow and the fixed references — a bare `podman run --network none`, a
# bare netns spawn of the agent with a bare `iw phy set netns`), release (stop → phy home, vs
# podman rm -f), cold activation (vs a direct start + the same first answer), then connect
# (wifi_connect vs bare wpa_supplicant + udhcpc) and footprint. Cells are median [interval of the
# median] (order statistics; coverage printed). Then, unless WI_BENCH_PROXY=0, the proxy
# benchmark (tests/bench/proxy.sh, the initramfs VM). Writes target/bench/full.md and prints it.
# Not part of the pass/fail tests.
#
# Every VM run and release build holds /tmp/wi-vm.lock (one TCG VM at a time on 2 cores).
set -euo pipefail
cd "$(dirname "$0")/../.."
REPO=$(pwd)
N=${WI_BENCH_N:-8}
LOCK=/tmp/wi-vm.lock
t_start=$(date +%s)
log() { printf 'full.sh: %s\n' "$*" >&2; }

[ "$(id -u)" = 0 ] || { log "needs root (the VM harness)"; exit 1; }
bash tests/deps.sh fullsys >&2

log "release build (.deb) and the benchmark clients"
deb=$(flock "$LOCK" bash packaging/build-deb.sh --out target/bench/deb --no-lintian | tail -n1)
[ -f "$deb" ] || { log "packaging/build-deb.sh gave no .deb"; exit 1; }
flock "$LOCK" cargo build --release -p wifi-isolate-tests --bin fullsys-probe --bin fullsys-bench >&2
img=$(bash tests/vm/lab/build-image.sh --deb "$deb" | tail -n1)
[ -f "$img" ] || { log "tests/vm/lab/build-image.sh gave no image"; exit 1; }

share=target/bench/full-vm
rm -rf "$share"; mkdir -p "$share/bin"
cp tests/vm/lab/guest/fullsys-lib.sh "$share/"
cp target/release/fullsys-probe target/release/fullsys-bench "$share/bin/"
printf 'WI_BENCH_N=%s\nDEB_BYTES=%s\n' "$N" "$(stat -c %s "$deb")" >"$share/extra.env"

log "booting the full-system VM (N=$N)"
t_vm=$(date +%s)
rc=0
flock "$LOCK" bash tests/vm/lab/boot-image.sh --image "$img" --share "$share" \
  --script tests/bench/full-guest.sh --aps wpa2 --stations 2 \
  --timeout $((600 + N * 120)) --quiet >&2 || rc=$?
vm_secs=$(($(date +%s) - t_vm))
mkdir -p target/bench
if [ ! -s "$share/bench-full.md" ]; then
  log "the guest wrote no report (rc $rc); logs: $share/logs"
  tail -40 "$share/logs/test.log" >&2 || true
  exit 1
fi
{
  echo "## Full-system VM ($(date '+%Y-%m-%d %H:%M'), host: $(nproc) cores, $(uname -r), load $(cut -d' ' -f1-3 /proc/loadavg))"
  echo
  cat "$share/bench-full.md"
} >target/bench/full.md
[ "$rc" = 0 ] || log "the guest reported measurement errors (rc $rc): see $share/logs/test.log"

if [ "${WI_BENCH_PROXY:-1}" != 0 ]; then
  log "proxy benchmark (initramfs VM)"
  if bash tests/bench/proxy.sh >&2; then   # it takes the lock itself
    { echo; echo "## MCP endpoint: proxy overhead (initramfs VM, tests/bench/proxy.sh)"; echo; cat target/bench/proxy.md; } >>target/bench/full.md
  else
    log "proxy benchmark failed"; rc=1
  fi
fi
{
  echo
  echo "full.sh: total $(($(date +%s) - t_start)) s (full-system VM $vm_secs s)."
} >>target/bench/full.md
cat target/bench/full.md
exit "$rc"
