#!/usr/bin/env bash
# boot-image.sh — boot the full-system VM (systemd, udev, NetworkManager, podman, the installed .deb)
# with the hwsim lab's radios and access points, run a test script in it, report PASS/FAIL.
# See --help and tests/vm/lab/README-image.md.
set -euo pipefail
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

usage() {
  cat <<'USAGE'
Usage: boot-image.sh --image IMG --share DIR --script GUEST_SCRIPT [--aps LIST] [--stations N]
                 [--timeout SECS] [--mem MB] [--country CC] [--quiet]

Boots IMG (from build-image.sh; never modified: the VM writes to a throwaway snapshot) under QEMU
TCG, 2 vCPUs, no NIC, the 9p share at /share. Before NetworkManager starts, wi-lab.service creates
the hwsim radios: one AP per entry of LIST in its own netns "ap-NAME" (hostapd + dnsmasq + HTTP,
the same profiles and /share/env contract as tests/vm/lab/boot-initramfs.sh) and N station radios left in
the root netns for NetworkManager to manage. When start-up is over, wi-test.service runs
GUEST_SCRIPT as root (cwd /share, env exported; with its #! interpreter, else sh), collects the logs
into DIR/logs and powers off.

  --image IMG      disk image from tests/vm/lab/build-image.sh
  --share DIR      host directory shared as /share (DIR/logs, DIR/.hwsim, DIR/env are recreated)
  --script FILE    guest test script; its exit code decides FULLSYS-RESULT: PASS / FAIL rc=N
  --aps LIST       comma list of: open wpa2 sae hidden wpa2b eap eap3 eap192 owe owetrans owehid saeh2e mixed roam1 roam2 hs20 saepk
                   saepkrogue (default: none)
  --stations N     station radios (default 1)
  --timeout SECS   kill the VM after SECS (default 300); the guest stops the test 10 s earlier
                   (rc=124) so the logs still come back
  --mem MB         guest memory (default 1024)
  --country CC     regulatory domain (default CN)
  --quiet          do not stream the console / test log

Exit 0 only if the guest printed "FULLSYS-RESULT: PASS". Logs in DIR/logs: console.log, test.log,
journal.log (journalctl -b -o short-monotonic), dmesg.log, hostapd-/dnsmasq-/http-NAME.log.
Environment: WI_FULLSYS_CACHE, WI_CACHE (kernel), WI_QEMU_EXTRA (more QEMU arguments).
USAGE
}

IMAGE="" SHARE="" SCRIPT="" APS="" NST=1 TIMEOUT=300 MEM=1024 COUNTRY=CN QUIET=0
while [ $# -gt 0 ]; do
  case "$1" in
    --image) IMAGE="$2"; shift 2 ;;
    --share) SHARE="$2"; shift 2 ;;
    --script) SCRIPT="$2"; shift 2 ;;
    --aps) APS="$2"; shift 2 ;;
    --stations) NST="$2"; shift 2 ;;
    --timeout) TIMEOUT="$2"; shift 2 ;;
    --mem) MEM="$2"; shift 2 ;;
    --country) COUNTRY="$2"; shift 2 ;;
    --quiet) QUIET=1; shift ;;
    -h|--help) usage; exit 0 ;;
    *) usage >&2; die "unknown argument: $1" ;;
  esac
done
{ [ -n "$IMAGE" ] && [ -n "$SHARE" ] && [ -n "$SCRIPT" ]; } || { usage >&2; die "--image, --share and --script are required"; }
[ -f "$IMAGE" ] || die "no such image: $IMAGE (tests/vm/lab/build-image.sh --deb X.deb)"
command -v qemu-system-x86_64 >/dev/null || die "qemu-system-x86_64 missing: run tests/deps.sh fullsys"
[ -x /bin/busybox ] && ! ldd /bin/busybox >/dev/null 2>&1 || die "busybox-static missing: run tests/deps.sh fullsys"
T_START=$(now_ms)

# The share: AP configs, env.static, run.conf, EAP files — the initramfs lab's own code.
"$LAB_DIR/boot-initramfs.sh" --prepare-only --aps "$APS" --stations "$NST" --share "$SHARE" \
  --script "$SCRIPT" --timeout "$TIMEOUT" --country "$COUNTRY"
SHARE="$(cd "$SHARE" && pwd)"
KDIR="$("$LAB_DIR/kernel.sh")"
KVER="$(basename "$KDIR")"
KMODS="$KDIR/root/lib/modules/$KVER"
KERNEL="$KDIR/vmlinuz"; [ -e "$KDIR/vmlinux" ] && KERNEL="$KDIR/vmlinux"   # PVH direct boot

# --- the tiny initrd (busybox-static + root/9p modules), cached per kernel + init script ---
MODS=(virtio_pci virtio_blk crc32c_generic ext4 9pnet_virtio 9p)
IKEY="$( { echo "$KVER ${MODS[*]}"; sha256sum "$LAB_DIR/guest/initrd-init" /bin/busybox; } | sha256sum | cut -c1-16)"
INITRD="$WI_FULLSYS_CACHE/initrd-$IKEY.cpio"
if [ ! -e "$INITRD" ]; then
  mkdir -p "$WI_FULLSYS_CACHE"
  st="$(mktemp -d "$WI_FULLSYS_CACHE/.initrd.XXXXXX")"
  mkdir -p "$st"/{bin,proc,sys,dev,newroot,lib/modules/"$KVER"}
  cp /bin/busybox "$st/bin/busybox"
  busybox_applets /bin/busybox "$st/bin"
  cp "$LAB_DIR/guest/initrd-init" "$st/init"; chmod 0755 "$st/init"
  stage_modules "$st" "$KDIR" "$KVER" "${MODS[@]}"
  pack_cpio "$st" "$INITRD.tmp"
  mv "$INITRD.tmp" "$INITRD"; rm -rf "$st"
  find "$WI_FULLSYS_CACHE" -maxdepth 1 -name 'initrd-*.cpio' ! -name "initrd-$IKEY.cpio" -delete
fi

# --- boot ---------------------------------------------------------------------------------
lab_workdir fullsys-run
CONSOLE="$SHARE/logs/console.log"
: > "$CONSOLE"; : > "$SHARE/logs/test.log"
T_BOOT=$(now_ms)
log "booting $(basename "$IMAGE") ($KVER, TCG, ${MEM} MB, APs: ${APS:-none}, stations: $NST; prep $(secs_since "$T_START") s)"
# snapshot=on: the guest's writes go to a temporary file, the image stays pristine for the next boot
lab_qemu "$QUIET" "$TIMEOUT" \
  -accel tcg -cpu max -smp 2 -m "$MEM" ${WI_QEMU_EXTRA:-} \
  -nodefaults -display none -no-reboot -monitor none \
  -kernel "$KERNEL" -initrd "$INITRD" \
  -append "console=ttyS0 panic=-1 quiet loglevel=4 mitigations=off rdinit=/init systemd.show_status=auto" \
  -drive "file=$IMAGE,format=raw,if=virtio,snapshot=on,cache=unsafe,discard=unmap" \
  -virtfs "local,path=$SHARE,mount_tag=share,security_model=none" \
  -device virtio-rng-pci
VM_S="$(secs_since "$T_BOOT")"

up_of() { grep -a -m1 -o "$1 uptime=[0-9.]*" "$CONSOLE" | cut -d= -f2 || true; }
lab="$(up_of FULLSYS-LAB-READY)"; ready="$(up_of FULLSYS-READY)"
echo "fullsys: timing: lab ready ${lab:-?} s, test start ${ready:-?} s (guest uptime), VM ${VM_S} s, total $(secs_since "$T_START") s"
lab_report fullsys FULLSYS "$TIMEOUT"
