#!/usr/bin/env bash
# deps.sh — install the Debian packages the test suites drive for real. Idempotent and quick when
# everything is present; runs `apt-get update` only when something is missing.
set -euo pipefail
PKGS=(
  # the hwsim lab (QEMU + a stock kernel's mac80211_hwsim) and the WiFi stack under test
  qemu-system-x86 busybox-static cpio kmod iw hostapd wpasupplicant dnsmasq-base iproute2 openssl
  # D-Bus for the NetworkManager client tests; systemd tools (systemd-socket-activate, analyze)
  dbus systemd
  # container engines for the Engine backend tests
  podman runc uidmap docker.io
  # the netns engine's sandbox
  bubblewrap
)
missing=()
for p in "${PKGS[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  echo "deps.sh: installing ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi
"$(dirname "$0")/../packaging/deps.sh"
"$(dirname "$0")/fullsys/deps.sh"
