#!/usr/bin/env bash
# Fetch and cache a stock Debian kernel + its module tree for the hwsim VM.
#
#   kernel.sh            -> prints the kernel directory, e.g. $WI_CACHE/kernel/6.1.0-56-amd64
#                           containing  vmlinuz, vmlinux (see below) and root/lib/modules/<KVER>/ (depmod'ed)
#
# vmlinux is the uncompressed ELF kernel. The Debian kernel has CONFIG_PVH=y, so QEMU boots it
# directly (PVH entry): no xz decompression under TCG, which saves ~3 s per VM.
#
# The newest linux-image-6.1.0-NN-amd64 known to apt-cache is used (apt-get update if none is known);
# WI_KERNEL_PKG=linux-image-6.1.0-NN-amd64 pins one. Idempotent; fast when cached. If the download fails
# but an older kernel is cached, that one is used (with a warning).
set -euo pipefail
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

KCACHE="$WI_CACHE/kernel"
mkdir -p "$KCACHE"
# One fetch at a time (run-all.sh prefetches it while a test may already ask): the second waits and
# finds it cached.
exec 8>"$KCACHE/.lock"
flock 8

newest_pkg() {
  apt-cache pkgnames linux-image-6.1.0- 2>/dev/null |
    grep -E '^linux-image-6\.1\.0-[0-9]+-amd64$' | sort -t- -k4,4n | tail -n1
}
newest_cached() {
  # shellcheck disable=SC2010,SC2012
  ls -1 "$KCACHE" 2>/dev/null | grep -E '^6\.1\.0-[0-9]+-amd64$' | sort -t- -k4,4n |
    while read -r v; do [ -e "$KCACHE/$v/.complete" ] && echo "$v"; done | tail -n1
}

pkg="${WI_KERNEL_PKG:-$(newest_pkg)}"
if [ -z "$pkg" ]; then
  log "apt-cache knows no linux-image-6.1.0-NN-amd64; running apt-get update"
  as_root apt-get update -qq || true
  pkg="$(newest_pkg)"
fi

if [ -n "$pkg" ]; then
  kver="${pkg#linux-image-}"
  kdir="$KCACHE/$kver"
  if [ ! -e "$kdir/.complete" ]; then
    t0=$(now_ms)
    log "fetching $pkg"
    tmp="$(mktemp -d "$KCACHE/.tmp.XXXXXX")"
    trap 'rm -rf "$tmp"' EXIT
    # apt-get download drops privileges to _apt: let it write into the temp dir.
    chmod 0777 "$tmp"
    if (cd "$tmp" && apt-get download -q "$pkg" >&2); then
      mkdir -p "$tmp/k"
      dpkg-deb -x "$tmp"/*.deb "$tmp/k/root"
      ln -s "root/boot/vmlinuz-$kver" "$tmp/k/vmlinuz"
      # The package ships no modules.dep; build it for this tree.
      depmod -b "$tmp/k/root" "$kver"
      touch "$tmp/k/.complete"
      rm -rf "$kdir"; mv "$tmp/k" "$kdir"
      log "cached $kver in $(secs_since "$t0") s"
    else
      log "WARNING: download of $pkg failed"
    fi
  fi
fi

if [ -z "${kdir:-}" ] || [ ! -e "$kdir/.complete" ]; then
  kdir=
  [ -z "${WI_KERNEL_PKG:-}" ] || die "pinned $WI_KERNEL_PKG is not available"
  v="$(newest_cached)"
  [ -n "$v" ] || die "no kernel available (apt-get download failed and nothing cached)"
  log "WARNING: using cached kernel $v"
  kdir="$KCACHE/$v"
fi

# Uncompressed PVH-bootable vmlinux, extracted once (xz-compressed bzImage payload; xz stops after
# its stream, so no pipe from tail: pipefail would see tail's SIGPIPE).
if [ ! -e "$kdir/vmlinux" ] && [ ! -e "$kdir/.no-vmlinux" ]; then
  kver="$(basename "$kdir")"
  off="$(LC_ALL=C grep -abo $'\xfd7zXZ\x00' "$kdir/vmlinuz" | head -n1 | cut -d: -f1 || true)"
  if grep -q '^CONFIG_PVH=y' "$kdir/root/boot/config-$kver" 2>/dev/null && [ -n "$off" ] &&
     xz -dc --single-stream < <(tail -c +$((off + 1)) "$kdir/vmlinuz") > "$kdir/vmlinux.tmp" 2>/dev/null &&
     [ "$(head -c4 "$kdir/vmlinux.tmp" | od -An -c | tr -d ' ')" = "177ELF" ]; then
    mv "$kdir/vmlinux.tmp" "$kdir/vmlinux"
  else
    log "WARNING: no PVH vmlinux could be extracted; booting the compressed vmlinuz (slower)"
    rm -f "$kdir/vmlinux.tmp"; touch "$kdir/.no-vmlinux"
  fi
fi
echo "$kdir"
