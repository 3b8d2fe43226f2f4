#!/usr/bin/env bash
# build-rootfs.sh — the cached base root filesystem of the full-system VM (bookworm, systemd,
# NetworkManager, podman, the WiFi stack). Prints the tarball path.
#
# Cached as $WI_FULLSYS_CACHE/rootfs-KEY.tar, KEY = hash of this script (which holds the package
# list and every customisation): one mmdebstrap per CI cache, later calls cost nothing.
# Called by build-image.sh; run it alone to warm the cache.
set -euo pipefail
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

PKGS=(
  systemd systemd-sysv udev dbus libpam-systemd
  network-manager
  podman runc crun conmon containernetworking-plugins uidmap catatonit
  hostapd wpasupplicant iw iproute2 dnsmasq-base wireless-regdb
  busybox kmod iputils-ping procps psmisc
  bubblewrap
)
KEY="$( { cat "${BASH_SOURCE[0]}"; } | sha256sum | cut -c1-16)"
OUT="$WI_FULLSYS_CACHE/rootfs-$KEY.tar"
if [ -e "$OUT" ]; then echo "$OUT"; exit 0; fi

command -v mmdebstrap >/dev/null || die "mmdebstrap missing (tests/deps.sh fullsys)"
mkdir -p "$WI_FULLSYS_CACHE"
t0=$(now_ms)
MIRROR=()
[ -r /etc/apt/sources.list.d/debian.sources ] && MIRROR=(/etc/apt/sources.list.d/debian.sources)
[ -r /etc/apt/sources.list ] && grep -q '^deb ' /etc/apt/sources.list && MIRROR+=(/etc/apt/sources.list)
log "mmdebstrap bookworm (${#PKGS[@]} packages) -> $OUT"
# Units that cost boot time and do nothing useful in a throwaway VM.
MASK="apt-daily.timer apt-daily-upgrade.timer man-db.timer e2scrub_all.timer e2scrub_reap.service
 fstrim.timer dpkg-db-backup.timer systemd-timesyncd.service getty@tty1.service serial-getty@ttyS0.service
 console-getty.service getty.target ModemManager.service systemd-networkd-wait-online.service
 NetworkManager-wait-online.service podman-auto-update.timer podman-restart.service podman-clean-transient.service
 systemd-journal-flush.service systemd-random-seed.service hostapd.service wpa_supplicant@.service
 remote-fs.target systemd-pstore.service"
rm -f "$OUT.part"
mmdebstrap --variant=apt --mode=root --format=tar \
  --aptopt='APT::Install-Recommends "false"' \
  --dpkgopt='path-exclude=/usr/share/man/*' --dpkgopt='path-exclude=/usr/share/doc/*' \
  --dpkgopt='path-include=/usr/share/doc/*/copyright' \
  --dpkgopt='path-exclude=/usr/share/locale/*' --dpkgopt='path-exclude=/usr/share/info/*' \
  --include="$(IFS=,; echo "${PKGS[*]}")" \
  --customize-hook='for u in '"$(echo $MASK)"'; do ln -sf /dev/null "$1/etc/systemd/system/$u"; done' \
  --customize-hook='echo fullsys > "$1/etc/hostname"; printf "127.0.0.1 localhost fullsys\n::1 localhost\n" > "$1/etc/hosts"' \
  --customize-hook='passwd -R "$1" -d root >/dev/null' \
  --customize-hook='printf "[Journal]\nStorage=volatile\nRateLimitBurst=0\n" > "$1/etc/systemd/journald.conf.d/fullsys.conf" || { mkdir -p "$1/etc/systemd/journald.conf.d"; printf "[Journal]\nStorage=volatile\nRateLimitBurst=0\n" > "$1/etc/systemd/journald.conf.d/fullsys.conf"; }' \
  --customize-hook='rm -f "$1/etc/machine-id"; : > "$1/etc/machine-id"' \
  bookworm "$OUT.part" "${MIRROR[@]}" >&2
mv "$OUT.part" "$OUT"
find "$WI_FULLSYS_CACHE" -maxdepth 1 -name 'rootfs-*.tar' ! -name "rootfs-$KEY.tar" -delete
log "rootfs built in $(secs_since "$t0") s ($(du -h "$OUT" | cut -f1))"
echo "$OUT"
