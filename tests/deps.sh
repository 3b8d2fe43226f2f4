#!/usr/bin/env bash
# deps.sh — the one installer of the Debian packages the builds and tests drive for real.
#
#   tests/deps.sh [SUITE...]     SUITE: host packaging hwsim fullsys bench (default: all of them)
#
# Idempotent and quick: asks dpkg only, and runs `apt-get update` only when something is missing.
# The Rust toolchain (>= rust-version in Cargo.toml) is not installed here: bookworm's rustc is
# too old for edition 2024, the builds use the cargo on PATH.
set -euo pipefail

pkgs() {
  case "$1" in
    # host integration tests (tests/host/): wpa_supplicant on a veth, dbus-daemon for the
    # NetworkManager client, systemd tools, both container engines, the netns engine's sandbox
    host) echo wpasupplicant iproute2 dbus systemd podman runc uidmap docker.io bubblewrap openssl ;;
    # the .deb (debhelper compat 13, man pages, lintian), the .rpm (rpmbuild is in `rpm`), and a
    # clean bookworm root to install the .deb into (tests/host/packages.rs)
    packaging) echo debhelper dpkg-dev fakeroot help2man lintian rpm mmdebstrap debian-archive-keyring ;;
    # the initramfs lab (tests/vm/lab/boot-initramfs.sh): QEMU (TCG), busybox guest userland,
    # initramfs packing and module dependencies, the kernel unpacked to a PVH vmlinux, the WiFi
    # stack copied into the guest, throwaway EAP certificates, regulatory.db for --country
    hwsim) echo qemu-system-x86 busybox-static cpio kmod xz-utils hostapd wpasupplicant iw \
                dnsmasq-base iproute2 bubblewrap openssl wireless-regdb python3-venv ;;
    # the full-system image (tests/vm/lab/build-image.sh, boot-image.sh): the rootfs and its
    # ext4, the tiny initrd, podman to import the agent image into the guest's storage
    fullsys) echo mmdebstrap e2fsprogs util-linux tar podman wpasupplicant $(pkgs hwsim) $(pkgs packaging) ;;
    # benchmarks (tests/bench/): the netns start-up helper is C
    bench) echo gcc $(pkgs fullsys) ;;
    *) echo "deps.sh: unknown suite '$1' (host packaging hwsim fullsys bench)" >&2; return 1 ;;
  esac
}

[ $# -gt 0 ] || set -- host packaging hwsim fullsys bench
want=()
for s in "$@"; do
  list=$(pkgs "$s") || exit 2
  # shellcheck disable=SC2206
  want+=($list)
done
missing=()
for p in $(printf '%s\n' "${want[@]}" | sort -u); do
  dpkg-query -W -f='${db:Status-Status}' "$p" 2>/dev/null | grep -qx installed || missing+=("$p")
done
[ ${#missing[@]} -eq 0 ] && exit 0
[ "$(id -u)" = 0 ] || { echo "deps.sh: missing ${missing[*]}; run as root to install them" >&2; exit 1; }
echo "deps.sh ($*): installing ${missing[*]}" >&2
export DEBIAN_FRONTEND=noninteractive
apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null 2>&1 ||
  { apt-get update -qq && apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null; }
