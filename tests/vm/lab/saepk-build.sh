#!/usr/bin/env bash
# saepk-build.sh — hostapd and wpa_supplicant with SAE-PK, for the lab's saepk / saepkrogue
# access points and the agent suite's SAE-PK checks.
#
#   saepk-build.sh     -> prints the directory holding `hostapd` and `wpa_supplicant`, e.g.
#                         $WI_CACHE/saepk/2.10-12+deb12u3
#
# Debian 12 builds neither hostapd nor wpa_supplicant with CONFIG_SAE_PK (hostapd takes
# `sae_password=PW|pk=M:KEY` as a plain password; wpa_supplicant accepts `sae_pk=1` and ignores
# it: `GET_CAPABILITY sae` says `H2E`, not `H2E PK`). So this builds Debian's own source, of the
# installed hostapd's version, with Debian's own build configs plus CONFIG_SAE_PK=y: the source
# package `wpa` (.dsc, .orig.tar.xz, .debian.tar.xz) from deb.debian.org's pool over HTTPS,
# unpacked by dpkg-source (which checks the tarballs against the .dsc's checksums). hostapd:
# debian/config/hostapd/linux as is. wpa_supplicant: debian/config/wpasupplicant/linux without
# what needs libraries the lab's guest lacks (D-Bus, PC/SC, readline) or what the lab never uses
# (P2P, its AP mode, mesh, DPP, WPS, MACsec, FST, TDLS, the rare EAP methods), to keep the build
# short. make -j2, ~1.5 min on 2 cores once; cached by version, reruns only print the path. Needs
# the hwsim build packages of tests/deps.sh (curl dpkg-dev gcc make pkg-config libssl-dev
# libnl-3-dev libnl-genl-3-dev libnl-route-3-dev).
set -euo pipefail
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

VERSION="$(dpkg-query -W -f='${Version}' hostapd 2>/dev/null)" || die "hostapd is not installed (tests/deps.sh hwsim)"
V="${VERSION#*:}"                       # no epoch in the pool's file names
UPSTREAM="${V%-*}"
OUT="$WI_CACHE/saepk/$V"
if [ -x "$OUT/hostapd" ] && [ -x "$OUT/wpa_supplicant" ]; then echo "$OUT"; exit 0; fi
# One build at a time (run-all.sh starts it in the background while a lab may ask): the second
# waits and finds it built.
mkdir -p "$WI_CACHE/saepk"
exec 7>"$WI_CACHE/saepk/.lock"
flock 7
if [ -x "$OUT/hostapd" ] && [ -x "$OUT/wpa_supplicant" ]; then echo "$OUT"; exit 0; fi

T0=$(now_ms)
# A point release's version is in the main archive's pool, a security update's in the security
# archive's (both on deb.debian.org): the first that has the .dsc.
POOLS=(https://deb.debian.org/debian/pool/main/w/wpa https://deb.debian.org/debian-security/pool/updates/main/w/wpa)
work="$(mktemp -d "$WI_CACHE/saepk/.build.XXXXXX")"
trap 'rm -rf "$work"' EXIT
log "building hostapd and wpa_supplicant $V with CONFIG_SAE_PK=y (Debian's source package wpa)"
(
  cd "$work"
  dsc="wpa_$V.dsc"
  POOL=
  for p in "${POOLS[@]}"; do
    if curl -fsS --retry 3 -o "$dsc" "$p/$dsc"; then POOL=$p; break; fi
  done
  [ -n "$POOL" ] ||
    die "cannot download $dsc from ${POOLS[*]} (is the installed hostapd $VERSION still in Debian's pools?)"
  # the .dsc names the tarballs (the orig may be .gz or .xz): take them from its Files section
  for f in $(awk '/^Files:/ {f = 1; next} /^[^ ]/ {f = 0} f && NF == 3 {print $3}' "$dsc"); do
    curl -fsS --retry 3 -o "$f" "$POOL/$f" || die "cannot download $POOL/$f"
  done
  # dpkg-source verifies the tarballs against the .dsc's checksums (its OpenPGP signature only
  # when a Debian developer keyring is installed: it warns and goes on without one)
  dpkg-source -x "$dsc" src >/dev/null 2>dpkg-source.err ||
    { cat dpkg-source.err >&2; die "dpkg-source -x $dsc failed"; }
  cd src/hostapd
  cp ../debian/config/hostapd/linux .config
  echo CONFIG_SAE_PK=y >> .config
  make -j2 -s hostapd >"$work/make-hostapd.log" 2>&1 ||
    { tail -n 30 "$work/make-hostapd.log" >&2; die "make hostapd failed"; }
  cd ../wpa_supplicant
  cp ../debian/config/wpasupplicant/linux .config
  for k in CTRL_IFACE_DBUS_NEW CTRL_IFACE_DBUS_INTRO SMARTCARD PCSC READLINE \
           AP ACS P2P WIFI_DISPLAY MESH DPP DPP2 WPS WPS_ER WPS_NFC WPS_REG_DISABLE_OPEN \
           MACSEC DRIVER_MACSEC_LINUX FST TDLS EAP_FAST EAP_SIM EAP_AKA EAP_AKA_PRIME EAP_SAKE \
           EAP_GPSK EAP_GPSK_SHA256 EAP_TNC EAP_IKEV2 EAP_EKE EAP_PAX EAP_PSK EAP_PWD EAP_LEAP \
           EAP_OTP; do
    sed -i "s/^CONFIG_$k=y/#&/" .config
  done
  echo CONFIG_SAE_PK=y >> .config
  make -j2 -s wpa_supplicant >"$work/make-wpa_supplicant.log" 2>&1 ||
    { tail -n 30 "$work/make-wpa_supplicant.log" >&2; die "make wpa_supplicant failed"; }
  cd ..
  strip hostapd/hostapd wpa_supplicant/wpa_supplicant
  # (hostapd -v exits 1)
  case "$(hostapd/hostapd -v 2>&1 || true)" in *"hostapd v$UPSTREAM"*) ;; *) die "the built hostapd does not report v$UPSTREAM" ;; esac
  mkdir -p "$OUT.tmp"
  cp hostapd/hostapd wpa_supplicant/wpa_supplicant "$OUT.tmp/"
  rm -rf "$OUT"; mv "$OUT.tmp" "$OUT"
)
log "SAE-PK hostapd + wpa_supplicant $V built in $(secs_since "$T0") s"
# older versions' builds are of no use
find "$WI_CACHE/saepk" -mindepth 1 -maxdepth 1 -type d ! -name "$V" ! -name '.build.*' -exec rm -rf {} +
echo "$OUT"
