#!/usr/bin/env bash
# Smoke test of the hwsim lab itself (stock wpa_supplicant + busybox udhcpc, no project code).
#   selftest.sh [boot-initramfs.sh options, e.g. --quiet --timeout 120]
# Share dir: $WI_SELFTEST_SHARE (default $WI_CACHE/selftest).
set -euo pipefail
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
share="${WI_SELFTEST_SHARE:-$WI_CACHE/selftest}"
exec "$LAB_DIR/boot-initramfs.sh" --aps open,wpa2,sae,hidden,wpa2b,eap --stations 2 \
  --share "$share" --script "$LAB_DIR/selftest-guest.sh" "$@"
