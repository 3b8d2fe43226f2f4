#!/usr/bin/env bash
# build-image.sh — the full-system VM's disk image for one wifi-isolate .deb.
#
#   build-image.sh --deb PATH [--probe BIN] [--out IMG]   prints the image path as its last stdout line
#
# = the cached bookworm rootfs (build-rootfs.sh) + the .deb installed the way a user would
# (`apt-get install ./x.deb` in a chroot: maintainer scripts run, no network) + the hwsim kernel's
# module tree (tests/vm/lab/kernel.sh) + the agent image in podman's storage
# (localhost/wifi-isolate-agent:latest, built offline by tests/host/image.sh from the .deb's
# agent) + the guest test plumbing (wi-lab.service, wi-test.service), packed with mkfs.ext4 -d into
# a sparse raw image. Cached as $WI_FULLSYS_CACHE/images/IMAGE-KEY.img, KEY = hash of the .deb and
# of every input: booting it again costs nothing (boot-image.sh never writes to it: -snapshot).
# --probe BIN: also the hostile-agent image localhost/wifi-isolate-hostile:latest (the same agent,
# with BIN = the hostile-probe binary as the entrypoint, which execs the agent).
# --out IMG: also copy (sparse) the image there.
set -euo pipefail
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

DEB="" OUT="" PROBE=""
while [ $# -gt 0 ]; do
  case "$1" in
    --deb) DEB="$2"; shift 2 ;;
    --out) OUT="$2"; shift 2 ;;
    --probe) PROBE="$2"; shift 2 ;;
    -h|--help) sed -n '2,15p' "$0"; exit 0 ;;
    *) die "unknown argument: $1 (build-image.sh --deb PATH [--probe BIN] [--out IMG])" ;;
  esac
done
[ -n "$DEB" ] || die "--deb PATH is required"
[ -f "$DEB" ] || die "no such .deb: $DEB"
DEB="$(readlink -f "$DEB")"
if [ -n "$PROBE" ]; then
  [ -f "$PROBE" ] || die "no such probe binary: $PROBE (cargo build -p wifi-isolate-tests --bin hostile-probe)"
  PROBE="$(readlink -f "$PROBE")"
fi
[ "$(id -u)" -eq 0 ] || die "needs root (chroot, mkfs of a root-owned tree)"
for c in mmdebstrap mkfs.ext4 podman depmod dpkg-deb unshare; do
  command -v "$c" >/dev/null || die "$c missing: run tests/deps.sh fullsys"
done
T0=$(now_ms)

# (under the lock run-all.sh prefetches it with: one mmdebstrap at a time)
mkdir -p "$WI_FULLSYS_CACHE"
ROOTFS_TAR="$(flock "$WI_FULLSYS_CACHE/rootfs.lock" "$LAB_DIR/build-rootfs.sh")"
KDIR="$("$LAB_DIR/kernel.sh")"
KVER="$(basename "$KDIR")"
KMODS="$KDIR/root/lib/modules/$KVER"
AGENT_TAG=localhost/wifi-isolate-agent:latest   # src/host/config.rs: the engine's default image
HOSTILE_TAG=localhost/wifi-isolate-hostile:latest

BUILD_VERSION=1
GUEST=("$LAB_DIR/guest/wi-lab" "$LAB_DIR/guest/wi-test" "$LAB_DIR/guest/wi-lab.service"
       "$LAB_DIR/guest/wi-test.service" "$LAB_DIR/guest/lab-setup.sh" "$LAB_DIR/guest/http.sh")
KEY="$( { echo "v$BUILD_VERSION $KVER $(basename "$ROOTFS_TAR")"
          sha256sum "$DEB" "$0" "${GUEST[@]}" "$REPO_ROOT/tests/host/image.sh" /bin/busybox ${PROBE:+"$PROBE"} \
            "$(command -v wpa_supplicant || echo /usr/sbin/wpa_supplicant)" | awk '{print $1}'
        } | sha256sum | cut -c1-16)"
IMGDIR="$WI_FULLSYS_CACHE/images"
IMG="$IMGDIR/image-$KEY.img"
emit() {
  if [ -n "$OUT" ]; then cp --sparse=always "$IMG" "$OUT"; echo "$(readlink -f "$OUT")"; else echo "$IMG"; fi
}
mkdir -p "$IMGDIR"
# One build per image at a time (two test processes may ask for the same one): the second waits
# and then finds it cached.
exec 9>"$IMG.lock"
flock 9
if [ -e "$IMG" ]; then log "cached image $IMG"; emit; exit 0; fi

# the tree lives in RAM when there is room (unpacking, mkfs and clean-up of ~500 MB on disk cost
# ~30 s on a loaded CI host)
TMPBASE="$IMGDIR"
[ "$(df -Pm /dev/shm 2>/dev/null | awk 'NR == 2 {print $4}')" -gt 3000 ] 2>/dev/null && TMPBASE=/dev/shm
WORK="$(mktemp -d "$TMPBASE/fullsys-build.XXXXXX")"
trap 'rm -rf "$WORK"' EXIT
R="$WORK/root"
mkdir -p "$R"
t=$(now_ms)
tar -C "$R" --numeric-owner -xpf "$ROOTFS_TAR"
log "rootfs unpacked in $(secs_since "$t") s"

# --- the .deb, as a user installs it: apt-get install ./x.deb (dependencies must be in the rootfs)
t=$(now_ms)
cp "$DEB" "$R/tmp/$(basename "$DEB")"
printf '#!/bin/sh\nexit 101\n' > "$R/usr/sbin/policy-rc.d"; chmod 0755 "$R/usr/sbin/policy-rc.d"
if ! unshare --mount --pid --fork --mount-proc="$R/proc" sh -ec '
    R=$1; shift
    mount --rbind /dev "$R/dev"; mount -t sysfs sysfs "$R/sys"
    mount -t tmpfs tmpfs "$R/run"; mkdir -p "$R/run/lock"
    exec chroot "$R" env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin DEBIAN_FRONTEND=noninteractive \
      apt-get install -y -q --no-install-recommends \
        -o Dpkg::Options::=--force-confnew "/tmp/$1"' sh "$R" "$(basename "$DEB")" \
    > "$WORK/deb-install.log" 2>&1; then
  cat "$WORK/deb-install.log" >&2
  die "installing $(basename "$DEB") in the image failed (a dependency missing from build-rootfs.sh PKGS?)"
fi
rm -f "$R/usr/sbin/policy-rc.d" "$R/tmp/$(basename "$DEB")"
[ -x "$R/usr/bin/wifi-isolate" ] || die "the .deb did not install /usr/bin/wifi-isolate"
[ -x "$R/usr/bin/wifi-isolate-agent" ] || die "the .deb did not install /usr/bin/wifi-isolate-agent"
log ".deb installed in $(secs_since "$t") s"

# --- kernel modules (the hwsim kernel's tree, minus what a VM never loads) -------------------
t=$(now_ms)
mkdir -p "$R/lib/modules"
# A whitelist: no module for hardware the VM does not have, so udev's coldplug loads nothing in vain.
(cd "$KDIR/root/lib/modules" && tar -cf - \
    --exclude="$KVER/kernel/drivers/net/ethernet" --exclude="$KVER/kernel/drivers/net/usb" \
    --exclude="$KVER/kernel/drivers/net/wireless" --exclude="$KVER/kernel/drivers/net/wwan" \
    --exclude="$KVER/kernel/drivers/net/can" --exclude="$KVER/kernel/drivers/net/ieee802154" \
    --exclude="$KVER/kernel/drivers/net/hyperv" --exclude="$KVER/kernel/net/bluetooth" \
    --exclude="$KVER/kernel/fs/nfs*" --exclude="$KVER/kernel/fs/ocfs2" --exclude="$KVER/kernel/fs/xfs" \
    --exclude="$KVER/kernel/fs/btrfs" --exclude="$KVER/kernel/fs/ceph" --exclude="$KVER/kernel/fs/smb" \
    "$KVER"/modules.order "$KVER"/modules.builtin* \
    "$KVER"/kernel/{net,crypto,lib,fs,arch,block,mm} \
    "$KVER"/kernel/drivers/{net,virtio,block/virtio_blk.ko,char/hw_random} \
  ) | tar -C "$R/lib/modules" -xf -
# (tar's --exclude also drops named members: mac80211_hwsim separately)
(cd "$KDIR/root/lib/modules" && tar -cf - "$KVER/kernel/drivers/net/wireless/mac80211_hwsim.ko") | tar -C "$R/lib/modules" -xf -
[ -e "$R/lib/modules/$KVER/kernel/drivers/net/wireless/mac80211_hwsim.ko" ] || die "mac80211_hwsim.ko not copied"
depmod -b "$R" "$KVER"
log "modules copied in $(secs_since "$t") s"

# --- the agent image in podman's storage -----------------------------------------------------
# tests/host/image.sh imports it with the host's podman straight into the image's storage
# (overlay driver, the guest's default); the libpod database it leaves behind names host paths,
# so it goes (the guest's podman makes a fresh one).
t=$(now_ms)
RUNROOT="$(mktemp -d /tmp/fsrr.XXXXXX)"   # podman: runroot path < 50 characters
trap 'rm -rf "$WORK" "$RUNROOT"' EXIT
ENGINE_CMD="podman --root $R/var/lib/containers/storage --runroot $RUNROOT --storage-driver overlay --cgroup-manager cgroupfs --events-backend none" \
  "$REPO_ROOT/tests/host/image.sh" podman "$AGENT_TAG" "$R/usr/bin/wifi-isolate-agent" >&2
podman --root "$R/var/lib/containers/storage" --runroot "$RUNROOT" --storage-driver overlay \
  --cgroup-manager cgroupfs --events-backend none image exists "$AGENT_TAG" || die "agent image not in the storage"
if [ -n "$PROBE" ]; then
  ENGINE_CMD="podman --root $R/var/lib/containers/storage --runroot $RUNROOT --storage-driver overlay --cgroup-manager cgroupfs --events-backend none" \
    "$REPO_ROOT/tests/host/image.sh" podman "$HOSTILE_TAG" "$R/usr/bin/wifi-isolate-agent" "$PROBE" >&2
  podman --root "$R/var/lib/containers/storage" --runroot "$RUNROOT" --storage-driver overlay \
    --cgroup-manager cgroupfs --events-backend none image exists "$HOSTILE_TAG" || die "hostile image not in the storage"
fi
umount "$R/var/lib/containers/storage/overlay" 2>/dev/null || true
rm -rf "$R/var/lib/containers/storage/libpod" "$R/var/lib/containers/storage/defaultNetworkBackend" \
  "$R/var/lib/containers/storage/db.sql"
log "agent image $AGENT_TAG${PROBE:+ and $HOSTILE_TAG} imported in $(secs_since "$t") s"

# --- guest plumbing --------------------------------------------------------------------------
install -D -m 0755 "$LAB_DIR/guest/wi-lab" "$R/usr/lib/wi-fullsys/wi-lab"
install -D -m 0755 "$LAB_DIR/guest/wi-test" "$R/usr/lib/wi-fullsys/wi-test"
install -D -m 0644 "$LAB_DIR/guest/lab-setup.sh" "$R/usr/lib/hwsim/lab-setup.sh"
install -D -m 0755 "$LAB_DIR/guest/http.sh" "$R/usr/lib/hwsim/http.sh"
install -D -m 0644 "$LAB_DIR/guest/wi-lab.service" "$R/etc/systemd/system/wi-lab.service"
install -D -m 0644 "$LAB_DIR/guest/wi-test.service" "$R/etc/systemd/system/wi-test.service"
mkdir -p "$R/etc/systemd/system/sysinit.target.wants" "$R/etc/systemd/system/multi-user.target.wants"
ln -sf ../wi-lab.service "$R/etc/systemd/system/sysinit.target.wants/wi-lab.service"
ln -sf ../wi-test.service "$R/etc/systemd/system/multi-user.target.wants/wi-test.service"
# boot trimming on top of build-rootfs.sh's masks: podman's API service, auto-update and restart
# units start with default.target (the API stays socket-activated through podman.socket)
rm -f "$R"/etc/systemd/system/default.target.wants/podman*.service
ln -sf /dev/null "$R/etc/systemd/system/podman-auto-update.service"
printf 'net.ipv6.conf.all.accept_ra=0\nnet.ipv6.conf.default.accept_ra=0\nnet.ipv6.conf.all.accept_dad=0\nnet.ipv6.conf.default.accept_dad=0\n' \
  > "$R/etc/sysctl.d/90-fullsys.conf"
: > "$R/etc/fstab"
mkdir -p "$R/share"

# --- pack ------------------------------------------------------------------------------------
t=$(now_ms)
used_mb=$(du -sm "$R" | cut -f1)
size_mb=$(( used_mb * 13 / 10 + 1024 ))   # room for containers, journal, test files
rm -f "$IMG.part"
truncate -s "${size_mb}M" "$IMG.part"
mkfs.ext4 -q -F -L fullsys -d "$R" -E lazy_itable_init=1,lazy_journal_init=1 -O ^has_journal,^metadata_csum \
  "$IMG.part" >&2
mv "$IMG.part" "$IMG"
log "mkfs.ext4 -d: ${used_mb} MB of files into a ${size_mb} MB sparse image in $(secs_since "$t") s"
# keep the newest 3 images
find "$IMGDIR" -maxdepth 1 -name 'image-*.img' -printf '%T@ %p\n' | sort -rn | tail -n +4 | cut -d' ' -f2- | xargs -r rm -f
log "image $IMG built in $(secs_since "$T0") s"
emit
