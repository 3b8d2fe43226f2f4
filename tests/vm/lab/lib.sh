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
