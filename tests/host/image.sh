#!/usr/bin/env bash
# image.sh — build the agent image OFFLINE (no registry) and import it into podman or docker.
#
#   tests/host/image.sh ENGINE TAG AGENT_BINARY [PROBE_BINARY]
#
#   ENGINE        podman | docker
#   TAG           image name to create, e.g. localhost/wifi-isolate-agent:test
#   AGENT_BINARY  becomes /usr/bin/wifi-isolate-agent (the ENTRYPOINT); a script works too
#   PROBE_BINARY  (optional) becomes /usr/bin/wifi-isolate-hostile-probe and the ENTRYPOINT instead:
#                 the hostile-agent probe (tests/src/bin/hostile-probe.rs), which runs its attacks and
#                 then execs /usr/bin/wifi-isolate-agent with the same arguments
#
# Environment:
#   ENGINE_CMD    the engine's CLI with its global options, e.g.
#                 "podman --root /tmp/x/root --runroot /tmp/x/runroot" or "docker -H unix:///tmp/d.sock"
#                 (default: ENGINE itself)
#
# The rootfs is made from this host's files: the agent, wpa_supplicant, busybox-static (sh, udhcpc…),
# the shared libraries `ldd` lists, a minimal /etc. It is tarred once per set of inputs (a hash of
# every input file and of this script) under <repo>/.cache/engine-image/, and the image carries that
# hash as a label, so a second run with the same inputs does nothing (≈ 50 ms).
#
# Needs: busybox-static, wpasupplicant, the engine (podman | docker.io), coreutils, tar.
set -euo pipefail

die() { echo "image.sh: $*" >&2; exit 1; }

[ $# -eq 3 ] || [ $# -eq 4 ] || die "usage: image.sh podman|docker TAG AGENT_BINARY [PROBE_BINARY]"
engine=$1 tag=$2 agent=$3 probe=${4:-}
case "$engine" in podman | docker) ;; *) die "engine must be podman or docker, not '$engine'" ;; esac
read -r -a cli <<<"${ENGINE_CMD:-$engine}"
command -v "${cli[0]}" >/dev/null || die "'${cli[0]}' not found (apt-get install $([ "$engine" = podman ] && echo podman || echo docker.io))"
[ -f "$agent" ] || die "agent binary '$agent' does not exist"
[ -z "$probe" ] || [ -f "$probe" ] || die "probe binary '$probe' does not exist (cargo build -p wifi-isolate-tests --bin hostile-probe)"
entrypoint=/usr/bin/wifi-isolate-agent
[ -z "$probe" ] || entrypoint=/usr/bin/wifi-isolate-hostile-probe

busybox=/bin/busybox
"$busybox" --list >/dev/null 2>&1 || die "busybox missing (apt-get install busybox-static)"
ldd "$busybox" >/dev/null 2>&1 && die "$busybox is not static (apt-get install busybox-static)"
wpa=$(command -v wpa_supplicant || true)
[ -n "$wpa" ] || wpa=/usr/sbin/wpa_supplicant
[ -x "$wpa" ] || die "wpa_supplicant missing (apt-get install wpasupplicant)"
# hostapd for wifi_ap_start (the Dockerfile's image has it too)
hostapd=$(command -v hostapd || true)
[ -n "$hostapd" ] || hostapd=/usr/sbin/hostapd
[ -x "$hostapd" ] || die "hostapd missing (apt-get install hostapd)"

repo=$(cd "$(dirname "$0")/../.." && pwd)
cache=$repo/.cache/engine-image
mkdir -p "$cache"

# Shared libraries of the dynamic binaries (ldd fails on static binaries and scripts: none then).
libs() { ldd "$1" 2>/dev/null | awk '/=> \//{print $3} /^\t\/[^ ]+ \(/{print $1}' || true; }
mapfile -t liblist < <({ libs "$agent"; libs "$wpa"; libs "$hostapd"; [ -z "$probe" ] || libs "$probe"; } | sort -u)
# Rust binaries unwind through libgcc_s even when ldd does not list it.
gcc_s=/lib/x86_64-linux-gnu/libgcc_s.so.1
if [ -f "$gcc_s" ] && ! printf '%s\n' "${liblist[@]}" | grep -qx "$gcc_s"; then liblist+=("$gcc_s"); fi

# The inputs' hash: this script, the binaries, the libraries (contents and where they go).
hash=$({
  sha256sum "$0" "$agent" "$wpa" "$hostapd" "$busybox" ${probe:+"$probe"} "${liblist[@]}" | awk '{print $1}'
  echo "$entrypoint"
  printf '%s\n' "${liblist[@]}"
} | sha256sum | cut -c1-32)

label=io.wifi-isolate.image-inputs
have=$("${cli[@]}" image inspect --format "{{ index .Config.Labels \"$label\" }}" "$tag" 2>/dev/null || true)
if [ "$have" = "$hash" ]; then
  echo "image.sh: $tag is up to date ($hash)"
  exit 0
fi

tarball=$cache/rootfs-$hash.tar
if [ ! -f "$tarball" ]; then
  work=$(mktemp -d "$cache/rootfs.XXXXXX")
  trap 'rm -rf "$work"' EXIT
  root=$work/rootfs
  # Debian's merged /usr layout, so /lib/… and /usr/lib/… paths from ldd both resolve.
  mkdir -p "$root"/usr/{bin,sbin,lib/x86_64-linux-gnu,lib64} "$root"/{etc,run,tmp,proc,sys,dev,root,var}
  ln -s usr/bin "$root/bin"
  ln -s usr/sbin "$root/sbin"
  ln -s usr/lib "$root/lib"
  ln -s usr/lib64 "$root/lib64"
  ln -s ../run "$root/var/run"
  chmod 1777 "$root/tmp"
  install -m 0755 "$agent" "$root/usr/bin/wifi-isolate-agent"
  [ -z "$probe" ] || install -m 0755 "$probe" "$root/usr/bin/wifi-isolate-hostile-probe"
  install -m 0755 "$wpa" "$root/usr/sbin/wpa_supplicant"
  install -m 0755 "$hostapd" "$root/usr/sbin/hostapd"
  install -m 0755 "$busybox" "$root/usr/bin/busybox"
  # busybox applets (sh, udhcpc, ip, sleep…) as symlinks, never over a real binary.
  for applet in $("$busybox" --list); do
    [ -e "$root/usr/bin/$applet" ] || [ -e "$root/usr/sbin/$applet" ] || ln -s busybox "$root/usr/bin/$applet"
  done
  for lib in "${liblist[@]}"; do
    dir=$(readlink -f "$(dirname "$lib")")
    install -D -m 0755 "$lib" "$root$dir/$(basename "$lib")" # install dereferences symlinks
  done
  printf 'root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/nonexistent:/bin/false\n' >"$root/etc/passwd"
  printf 'root:x:0:\nnogroup:x:65534:\n' >"$root/etc/group"
  printf '127.0.0.1 localhost\n::1 localhost\n' >"$root/etc/hosts"
  : >"$root/etc/resolv.conf"
  echo wifi-isolate >"$root/etc/hostname"
  tar --numeric-owner --owner=0 --group=0 -C "$root" -cf "$tarball.part" .
  mv "$tarball.part" "$tarball"
  # Keep the cache small: only the newest few rootfs tarballs.
  find "$cache" -maxdepth 1 -name 'rootfs-*.tar' -printf '%T@ %p\n' | sort -rn | tail -n +6 | cut -d' ' -f2- | xargs -r rm -f
fi

if ! out=$("${cli[@]}" import \
  --change "ENTRYPOINT [\"$entrypoint\"]" \
  --change 'CMD []' \
  --change 'ENV PATH=/usr/sbin:/usr/bin:/sbin:/bin' \
  --change "LABEL $label=$hash" \
  --change "LABEL io.wifi-isolate.image=$([ -z "$probe" ] && echo agent || echo hostile-probe)" \
  "$tarball" "$tag" 2>&1); then
  echo "$out" >&2
  die "$engine import failed"
fi
echo "image.sh: imported $tag ($hash)"
