#!/usr/bin/env bash
# Install the host packages the hwsim lab needs (Debian/Ubuntu, apt-get).
# Idempotent and quick: when everything is installed it only asks dpkg.
set -euo pipefail
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

PKGS=(
  qemu-system-x86   # the VM (TCG)
  busybox-static    # guest userland
  cpio kmod         # initramfs packing, depmod/modprobe --show-depends
  xz-utils          # unpack the kernel image to a PVH-bootable vmlinux
  hostapd wpasupplicant iw dnsmasq-base iproute2   # copied into the guest
  bubblewrap        # the netns engine's sandbox, copied into the guest
  openssl           # throwaway EAP CA/server/client certificates
  wireless-regdb    # regulatory.db for the guest (--country)
)

missing=()
for p in "${PKGS[@]}"; do
  st="$(dpkg-query -W -f='${db:Status-Status}' "$p" 2>/dev/null || true)"
  [ "$st" = installed ] || missing+=("$p")
done
[ ${#missing[@]} -eq 0 ] && exit 0

log "installing: ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
# Try without refreshing the lists first; update only if that fails.
as_root apt-get install -y --no-install-recommends "${missing[@]}" ||
  { as_root apt-get update && as_root apt-get install -y --no-install-recommends "${missing[@]}"; }
