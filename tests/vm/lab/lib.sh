# Shared helpers of the VM lab scripts (sourced, not executed): both boot modes (the initramfs
# lab, boot-initramfs.sh, and the full-system image, boot-image.sh), the kernel and image builders.
# shellcheck shell=bash

LAB_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
REPO_ROOT="$(cd "$LAB_DIR/../../.." && pwd)"
# Everything downloaded or generated is cached here (gitignored /.cache): the kernel and the
# initramfs lab's pieces, and the full system's rootfs tarballs and per-.deb images.
WI_CACHE="${WI_CACHE:-$REPO_ROOT/.cache/hwsim}"
WI_FULLSYS_CACHE="${WI_FULLSYS_CACHE:-$REPO_ROOT/.cache/fullsys}"

log() { printf '[lab %s] %s\n' "$(date +%H:%M:%S)" "$*" >&2; }
die() { log "ERROR: $*"; exit 1; }

# Run a command as root (sudo when we are not root and sudo exists).
as_root() {
  if [ "$(id -u)" -eq 0 ]; then "$@"
  elif command -v sudo >/dev/null; then sudo "$@"
  else die "need root for: $*"; fi
}

# Monotonic-enough milliseconds for timing reports.
now_ms() { date +%s%3N; }
# secs_since START_MS -> "1.23"
secs_since() { local d=$(( $(now_ms) - $1 )); printf '%d.%02d' $((d / 1000)) $(((d % 1000) / 10)); }

# set -e exits silently; say where it happened.
trap 'log "ERROR: command failed (exit $?) at ${BASH_SOURCE[0]:-$0}:$LINENO: $BASH_COMMAND"' ERR

# --- the one initramfs builder's pieces (boot-initramfs.sh's lab, boot-image.sh's tiny initrd) ---
# stage_modules ROOT KDIR KVER MODULE...: MODULEs and their dependencies from the kernel tree at
# KDIR into ROOT/lib/modules/KVER, with a fresh modules.dep for busybox modprobe.
stage_modules() {
  local root=$1 kdir=$2 kver=$3; shift 3
  local kmods="$kdir/root/lib/modules/$kver" mroot="$root/lib/modules/$kver"
  mkdir -p "$mroot"
  cp "$kmods"/modules.builtin* "$kmods"/modules.order "$mroot/"
  for m in "$@"; do
    modprobe -d "$kdir/root" -S "$kver" --show-depends "$m" | awk '$1 == "insmod" {print $2}'
  done | sort -u | while read -r ko; do
    rel="${ko#"$kmods"/}"; mkdir -p "$mroot/$(dirname "$rel")"; cp "$ko" "$mroot/$rel"
  done
  depmod -b "$root" "$kver"
}
# busybox_applets BUSYBOX DIR [SKIP_DIR...]: a symlink to busybox in DIR for every applet, except
# where DIR or a SKIP_DIR already has a real tool of that name (iproute2's ip, ...).
busybox_applets() {
  local bb=$1 dir=$2; shift 2
  for a in $("$bb" --list); do
    local have=0
    for d in "$dir" "$@"; do [ -e "$d/$a" ] && have=1; done
    [ $have = 1 ] || ln -s busybox "$dir/$a"
  done
}
# pack_cpio DIR OUT: DIR as a newc archive, root-owned and sorted (the same input, the same bytes).
pack_cpio() { (cd "$1" && find . -mindepth 1 | LC_ALL=C sort | cpio -o -H newc -R 0:0 --quiet) > "$2"; }
