# Shared helpers for the full-system VM scripts (sourced, not executed).
# shellcheck shell=bash
# Reuses the hwsim lab's helpers (as_root, now_ms, secs_since, WI_CACHE for the kernel).
. "$(cd "$(dirname "${BASH_SOURCE[0]}")/../hwsim" && pwd)/lib.sh"
FULLSYS_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
# Rootfs tarballs and per-.deb images (gitignored /.cache).
WI_FULLSYS_CACHE="${WI_FULLSYS_CACHE:-$REPO_ROOT/.cache/fullsys}"
log() { printf '[fullsys %s] %s\n' "$(date +%H:%M:%S)" "$*" >&2; }
die() { log "ERROR: $*"; exit 1; }
trap 'log "ERROR: command failed (exit $?) at ${BASH_SOURCE[0]:-$0}:$LINENO: $BASH_COMMAND"' ERR
