#!/usr/bin/env bash
# deps.sh — host packages for the full-system VM harness (Debian, apt-get). Idempotent and quick:
# asks dpkg only, runs `apt-get update` only when something is missing. Also runs the hwsim lab's
# deps.sh (QEMU, busybox-static, hostapd, ... : the kernel and the AP side are that lab's).
set -euo pipefail
PKGS=(
  mmdebstrap e2fsprogs   # the rootfs (mmdebstrap --mode=root) and mkfs.ext4 -d
  qemu-system-x86        # the VM (TCG)
  busybox-static cpio kmod util-linux tar   # the tiny initrd; unshare + chroot for the .deb install
  podman                 # imports the agent image into the guest's storage at build time
  wpasupplicant          # tests/support/image.sh copies it into the agent image
)
missing=()
for p in "${PKGS[@]}"; do
  dpkg-query -W -f='${db:Status-Status}' "$p" 2>/dev/null | grep -qx installed || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  echo "fullsys/deps.sh: installing ${missing[*]}" >&2
  export DEBIAN_FRONTEND=noninteractive
  apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null ||
    { apt-get update -qq && apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null; }
fi
"$(dirname "$0")/../hwsim/deps.sh"
