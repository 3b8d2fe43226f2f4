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

# --- booting and reporting (both boots) ---------------------------------------------------------
# lab_workdir NAME: a scratch dir $WORK, removed on exit with the VM and the log tail killed.
lab_workdir() {
  WORK="$(mktemp -d "${TMPDIR:-/tmp}/$1.XXXXXX")"
  QPID="" TAILPID=""
  trap lab_cleanup EXIT
}
# shellcheck disable=SC2317  # (called by the trap)
lab_cleanup() {
  [ -n "$TAILPID" ] && kill "$TAILPID" 2>/dev/null || true
  [ -n "$QPID" ] && kill -9 "$QPID" 2>/dev/null || true
  rm -rf "$WORK"
}
# lab_qemu QUIET TIMEOUT QEMU_ARGS...: run QEMU (killed after TIMEOUT s; its temporary files in
# $WORK) with the serial console in $CONSOLE; streams the console and the test log unless QUIET
# is 1. Sets qrc to QEMU's exit status.
lab_qemu() {
  local quiet=$1 timeout=$2; shift 2
  TMPDIR="$WORK" timeout -k 5 "$timeout" qemu-system-x86_64 "$@" -serial "file:$CONSOLE" \
    </dev/null >"$WORK/qemu.out" 2>&1 &
  QPID=$!
  if [ "$quiet" = 0 ]; then
    touch "$SHARE/logs/test.log"
    tail -n +1 -F -s 0.2 --pid="$QPID" "$CONSOLE" "$SHARE/logs/test.log" 2>/dev/null &
    TAILPID=$!
  fi
  qrc=0; wait "$QPID" || qrc=$?
  QPID=""
  if [ -n "$TAILPID" ]; then sleep 0.3; kill "$TAILPID" 2>/dev/null || true; wait "$TAILPID" 2>/dev/null || true; TAILPID=""; fi
}
# lab_report NAME MARKER TIMEOUT: exit 0 if the console has "MARKER-RESULT: PASS"; else say why
# (timeout, no result line, the guest's rc), the guest's own error lines, the console and test
# log tails and the log files, and exit 1.
lab_report() {
  local name=$1 marker=$2 timeout=$3 result
  result="$(grep -a -m1 -o "$marker-RESULT: .*" "$CONSOLE" | tr -d '\r' || true)"
  if [ "$result" = "$marker-RESULT: PASS" ]; then echo "$name: PASS"; exit 0; fi
  if [ "$qrc" = 124 ] || [ "$qrc" = 137 ]; then echo "$name: TIMEOUT after ${timeout} s (qemu killed)"
  elif [ -z "$result" ]; then echo "$name: VM ended without a result line (qemu rc=$qrc)"; sed 's/^/qemu: /' "$WORK/qemu.out"
  else echo "$name: ${result#"$marker"-RESULT: }"; fi
  grep -a -e "$marker-SETUP-FAILED" -e "$marker-GUEST-TIMEOUT" -e "^$marker:" "$CONSOLE" | tr -d '\r' || true
  echo "---- console tail ----"; tail -n 25 "$CONSOLE" | tr -d '\r'
  if [ -s "$SHARE/logs/test.log" ]; then echo "---- test.log tail ----"; tail -n 40 "$SHARE/logs/test.log"; fi
  [ -e "$SHARE/logs/journal.log" ] && echo "---- journal: $SHARE/logs/journal.log ----"
  echo "---- logs ----"; ls -1 "$SHARE"/logs/* 2>/dev/null
  exit 1
}
