# Shared helpers for the hwsim lab scripts (sourced, not executed).
# shellcheck shell=bash

HWSIM_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
REPO_ROOT="$(cd "$HWSIM_DIR/../.." && pwd)"
# Everything downloaded or generated is cached here (gitignored /.cache).
WI_CACHE="${WI_CACHE:-$REPO_ROOT/.cache/hwsim}"

log() { printf '[hwsim %s] %s\n' "$(date +%H:%M:%S)" "$*" >&2; }
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
