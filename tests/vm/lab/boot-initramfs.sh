#!/usr/bin/env bash
# boot-initramfs.sh — boot a throwaway QEMU VM with mac80211_hwsim radios, access points and a test script.
# See --help and tests/vm/lab/README.md.
set -euo pipefail
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

usage() {
  cat <<'USAGE'
Usage: boot-initramfs.sh [--aps LIST] [--stations N] --share DIR --script GUEST_SCRIPT
                 [--bin FILE]... [--timeout SECS] [--mem MB] [--country CC] [--quiet]

Boots a stock Debian kernel under QEMU (TCG) with mac80211_hwsim radios: one access point per
entry in LIST (each in its own netns "ap-NAME" with hostapd, dnsmasq and an HTTP server) and N
station radios left down and unconfigured in the root netns. Then runs GUEST_SCRIPT with busybox
/bin/sh in the guest (cwd /share, the env file sourced and exported) and powers off.

  --aps LIST       comma list of: open wpa2 sae hidden wpa2b eap eap3 eap192 owe owetrans
                   owehid saeh2e hs20 mixed roam1 roam2 saepk saepkrogue  (order = AP
                   index K, subnet 10.0.K.0/24; default: no AP)
  --stations N     number of station radios (default 1)
  --share DIR      host directory shared as /share (9p). The runner (re)creates DIR/logs, DIR/.hwsim,
                   DIR/eap (eap only) and writes DIR/env; other files are left alone.
  --script FILE    guest test script (copied to DIR/.hwsim/guest-script, run by busybox sh)
  --bin FILE       extra binary for the guest (repeatable): installed in /usr/local/bin in the
                   initramfs, its shared libraries (ldd) + libgcc_s.so.1 included
  --timeout SECS   kill the VM after SECS (default 240); the guest stops the test itself 10 s
                   earlier (rc=124) so that the logs are still collected
  --mem MB         guest memory (default 512)
  --country CC     regulatory domain set at boot (default CN: few passive channels, no 6 GHz, so a
                   full scan takes ~1-2 s instead of 4-14 s; 5 GHz ch 36 usable). 00 = world.
  --quiet          do not stream the console / test log while running
  --prepare-only   only prepare the share (configs, env.static, run.conf, EAP files) and exit 0:
                   the full-system VM (tests/vm/lab/boot-image.sh) boots the same lab this way

Exit 0 only if the guest printed "HWSIM-RESULT: PASS". Logs: DIR/logs/{console,test,dmesg,
hostapd-NAME,dnsmasq-NAME,http-NAME}.log. Environment: WI_CACHE (cache dir, default <repo>/.cache/hwsim),
WI_KERNEL_PKG (pin the kernel package), WI_ACCEL (tcg|kvm, default tcg), WI_QEMU_EXTRA (more
QEMU arguments, word-split).
USAGE
}

# --- arguments ----------------------------------------------------------------------------
APS_ARG="" NSTATIONS=1 SHARE="" SCRIPT="" TIMEOUT=240 MEM=512 QUIET=0 BINS=() COUNTRY=CN PREPARE_ONLY=0
while [ $# -gt 0 ]; do
  case "$1" in
    --aps) APS_ARG="$2"; shift 2 ;;
    --stations) NSTATIONS="$2"; shift 2 ;;
    --share) SHARE="$2"; shift 2 ;;
    --script) SCRIPT="$2"; shift 2 ;;
    --bin) BINS+=("$2"); shift 2 ;;
    --timeout) TIMEOUT="$2"; shift 2 ;;
    --mem) MEM="$2"; shift 2 ;;
    --country) COUNTRY="$2"; shift 2 ;;
    --quiet) QUIET=1; shift ;;
    --prepare-only) PREPARE_ONLY=1; shift ;;
    -h|--help) usage; exit 0 ;;
    *) usage >&2; die "unknown argument: $1" ;;
  esac
done
{ [ -n "$SHARE" ] && [ -n "$SCRIPT" ]; } || { usage >&2; die "--share and --script are required"; }
[ -f "$SCRIPT" ] || die "no such script: $SCRIPT"
[[ "$NSTATIONS" =~ ^[0-9]+$ ]] || die "--stations must be a number"
[[ "$TIMEOUT" =~ ^[0-9]+$ ]] || die "--timeout must be a number"
[[ "$COUNTRY" =~ ^[0-9A-Z]{2}$ ]] || die "--country must be two capitals (or 00)"
for b in "${BINS[@]}"; do [ -f "$b" ] || die "no such --bin file: $b"; done
APS="${APS_ARG//,/ }"
seen=" "
for a in $APS; do
  case "$a" in open|wpa2|sae|hidden|wpa2b|eap|eap3|eap192|owe|owetrans|owehid|saeh2e|mixed|roam1|roam2|hs20|saepk|saepkrogue) ;;
    *) die "unknown AP '$a' (open wpa2 sae hidden wpa2b eap eap3 eap192 owe owetrans owehid saeh2e mixed roam1 roam2 hs20 saepk saepkrogue)";; esac
  [[ "$seen" != *" $a "* ]] || die "AP '$a' listed twice"; seen+="$a "
done
[ $(( $(wc -w <<<"$APS") + NSTATIONS )) -ge 1 ] || die "nothing to simulate"

T_START=$(now_ms)
"$REPO_ROOT/tests/deps.sh" hwsim
KDIR="$("$LAB_DIR/kernel.sh")"
KVER="$(basename "$KDIR")"
KMODS="$KDIR/root/lib/modules/$KVER"

# --- the access points (single source of truth for names, SSIDs, secrets, channels) -----------
#   name    ssid            security  channel  psk
#   open    lab-open        open      1        -        (captive portal: /generate_204 -> 302)
#   wpa2    lab-wpa2        wpa2-psk  6        correct horse 1
#   sae     lab-sae         sae       1        correct horse 2   (WPA3-Personal, PMF required)
#   hidden  lab-hidden      wpa2-psk  6        correct horse 3   (ignore_broadcast_ssid=1)
#   wpa2b   Lab "quoted" 2  wpa2-psk  36 (5 GHz) correct horse 4
#   eap     lab-eap         wpa2-eap  1        -        (PEAP/TTLS-MSCHAPv2, EAP-TLS)
#   eap3    lab-eap3        wpa3-eap  6        -        (WPA3-Enterprise: EAP-SHA256, PMF required)
#   eap192  lab-eap192      wpa3-eap-192 11    -        (WPA3-Enterprise 192-bit: Suite B,
#                                                        GCMP-256, BIP-GMAC-256, P-384 EAP-TLS)
#   owe     lab-owe         owe       11       -        (Enhanced Open, PMF required)
#   owetrans lab-owetrans   open      6        -        (OWE transition: names owehid)
#   owehid  lab-owehid      owe       6        -        (hidden OWE half of owetrans; list both)
#   saeh2e  lab-sae-h2e     sae       11       correct horse 5   (sae_pwe=1: hash-to-element only)
#   mixed   lab-mixed       wpa2/wpa3 11       correct horse 6   (WPA-PSK + SAE, ieee80211w=2)
#   roam1   lab-roam        wpa2-psk  1        correct horse 7   (two APs of one SSID: roaming;
#   roam2   lab-roam        wpa2-psk  11       correct horse 7    WPA-PSK + FT-PSK, one mobility
#                                                                  domain; each its own subnet)
#   hs20    lab-hs20        wpa2-eap  11       -        (Hotspot 2.0 / Passpoint: interworking,
#                                                        ANQP realm lab.test TTLS/MSCHAPv2
#                                                        or TLS,
#                                                        PMF optional; the eap AP's PKI)
#   saepk   lab-sae-pk      sae-pk    1        7hda-6lh3-3x5h   (WPA3-SAE with SAE-PK: the password
#                                                        is the AP key's fingerprint, Sec=3;
#                                                        H2E, PMF required; saepk-build.sh)
#   saepkrogue lab-sae-pk   sae-pk    6        7hda-6lh3-3x5h   (an evil twin of saepk: same SSID,
#                                                        password, modifier and public key, but
#                                                        it signs with another private key, so
#                                                        SAE-PK stations must refuse it)
ap_def() {  # ap_def NAME -> sets SSID SEC CHAN PSK (HWMODE g, or a for 5 GHz)
  PSK="" HWMODE=g
  case "$1" in
    open)   SSID="lab-open";       SEC=open;     CHAN=1 ;;
    wpa2)   SSID="lab-wpa2";       SEC=wpa2-psk; CHAN=6;  PSK="correct horse 1" ;;
    sae)    SSID="lab-sae";        SEC=sae;      CHAN=1;  PSK="correct horse 2" ;;
    hidden) SSID="lab-hidden";     SEC=wpa2-psk; CHAN=6;  PSK="correct horse 3" ;;
    wpa2b)  SSID='Lab "quoted" 2'; SEC=wpa2-psk; CHAN=36; PSK="correct horse 4" HWMODE=a ;;
    eap)    SSID="lab-eap";        SEC=wpa2-eap; CHAN=1 ;;
    eap3)   SSID="lab-eap3";       SEC=wpa3-eap; CHAN=6 ;;
    eap192) SSID="lab-eap192";     SEC=wpa3-eap-192; CHAN=11 ;;
    owe)    SSID="lab-owe";        SEC=owe;      CHAN=11 ;;
    owetrans) SSID="lab-owetrans"; SEC=owe-transition; CHAN=6 ;;
    owehid) SSID="lab-owehid";     SEC=owe;      CHAN=6 ;;
    saeh2e) SSID="lab-sae-h2e";    SEC=sae-h2e;  CHAN=11; PSK="correct horse 5" ;;
    mixed)  SSID="lab-mixed";      SEC=wpa2-psk/wpa3-sae; CHAN=11; PSK="correct horse 6" ;;
    roam1)  SSID="lab-roam";       SEC=wpa2-psk-ft; CHAN=1;  PSK="correct horse 7" ;;
    roam2)  SSID="lab-roam";       SEC=wpa2-psk-ft; CHAN=11; PSK="correct horse 7" ;;
    hs20)   SSID="lab-hs20";       SEC=wpa2-eap; CHAN=11 ;;
    saepk)  SSID="lab-sae-pk";     SEC=sae-pk;   CHAN=1;  PSK="$SAE_PK_PW" ;;
    saepkrogue) SSID="lab-sae-pk"; SEC=sae-pk;   CHAN=6;  PSK="$SAE_PK_PW" ;;
  esac
  # the world regulatory domain forbids starting an AP on 5 GHz: stay on 2.4 GHz there
  if [ "$HWMODE" = a ] && [ "$COUNTRY" = 00 ]; then CHAN=11 HWMODE=g; fi
  return 0
}
EAP_PEAP_ID=lab-peap  EAP_PEAP_PW="peap secret 1"
EAP_TTLS_ID=lab-ttls  EAP_TTLS_PW="ttls secret 1"
EAP_TLS_ID=lab-tls    EAP_SERVER_NAME=radius.lab.test
# Passpoint (hs20): the realm credential, and what the AP answers over ANQP
HS20_REALM=lab.test   HS20_USER=user@lab.test  HS20_PW="passpoint secret 1"
HS20_DOMAIN=hs.lab.test  HS20_VENUE="Lab Venue"  HS20_OPERATOR="Lab Operator"  HS20_OI=506f9a

# SAE-PK (saepk, saepkrogue): generated once for SSID lab-sae-pk with hostap's sae_pk_gen (a P-256
# key, Sec=3): the password, the modifier M and the AP's private key (base64 DER). The rogue
# signs with SAE_PK_ROGUE_KEY instead (hostapd's `pk=M:KEY:SIGNKEY`, a CONFIG_TESTING_OPTIONS
# form Debian's build config has): it holds the password and shows the real public key, but
# cannot make the real key's signature. Throwaway lab keys: never used anywhere else.
SAE_PK_PW="7hda-6lh3-3x5h"
SAE_PK_M="d31a39f5cd82359293fd3e8d16af4f3a"
SAE_PK_KEY="MHcCAQEEIJaBvKQhcupDKdM2aPAbPttmnQuQEu7g61KRWaPAPtyFoAoGCCqGSM49AwEHoUQDQgAETx6juN6d6UuqQSEP32A67WQUOhlB+cXTh8A3QBH46zNBbSx+S9m0csoo8HfU/PtsRQ/0tDNz1siGdtLb212QgA=="
SAE_PK_ROGUE_KEY="MHcCAQEEIIQqT1f/SdBTB3nMmXt5rW6eMe5NfHkZnfoHdlg5mPtwoAoGCCqGSM49AwEHoUQDQgAEtVMZ2euFqdd0WgbXiUdnvJjxVNQXuNgb6WJBqWlHeb4QWwGvVGQwhhVk3oyVHGPmu4UyFG8hnrXusuPbv827Pw=="

shq() { printf "'%s'" "${1//\'/\'\\\'\'}"; }            # shell single-quote
hexof() { printf '%s' "$1" | od -An -tx1 | tr -d ' \n'; }

# hostapd config for AP NAME (the guest prepends interface=)
hostapd_conf() {
  ap_def "$1"
  cat <<EOC
driver=nl80211
ctrl_interface=/run/hostapd
ssid2=$(hexof "$SSID")
hw_mode=$HWMODE
channel=$CHAN
ieee80211n=1
wmm_enabled=1
auth_algs=1
EOC
  case "$SEC" in
    wpa2-psk) printf 'wpa=2\nwpa_key_mgmt=WPA-PSK\nrsn_pairwise=CCMP\nwpa_passphrase=%s\n' "$PSK" ;;
    # FT over the air between separate hostapds: one mobility domain, each AP derives the
    # FT keys from the PSK itself (ft_psk_generate_local), so no R0KH/R1KH exchange is needed.
    wpa2-psk-ft) printf 'wpa=2\nwpa_key_mgmt=WPA-PSK FT-PSK\nrsn_pairwise=CCMP\nwpa_passphrase=%s\nmobility_domain=a1b2\nft_over_ds=0\nft_psk_generate_local=1\nnas_identifier=%s.lab.test\n' "$PSK" "$1" ;;
    sae)      printf 'wpa=2\nwpa_key_mgmt=SAE\nrsn_pairwise=CCMP\nieee80211w=2\nsae_password=%s\n' "$PSK" ;;
    sae-h2e)  printf 'wpa=2\nwpa_key_mgmt=SAE\nrsn_pairwise=CCMP\nieee80211w=2\nsae_pwe=1\nsae_password=%s\n' "$PSK" ;;
    # SAE-PK needs hash-to-element: sae_pwe=2 offers both (SAE-PK stations use H2E)
    sae-pk)   printf 'wpa=2\nwpa_key_mgmt=SAE\nrsn_pairwise=CCMP\nieee80211w=2\nsae_pwe=2\nsae_password=%s|pk=%s:%s%s\n' \
                "$PSK" "$SAE_PK_M" "$SAE_PK_KEY" "$([ "$1" = saepkrogue ] && echo ":$SAE_PK_ROGUE_KEY")" ;;
    wpa2-psk/wpa3-sae)
              printf 'wpa=2\nwpa_key_mgmt=WPA-PSK SAE\nrsn_pairwise=CCMP\nieee80211w=2\nwpa_passphrase=%s\nsae_password=%s\n' "$PSK" "$PSK" ;;
    owe)      printf 'wpa=2\nwpa_key_mgmt=OWE\nrsn_pairwise=CCMP\nieee80211w=2\n' ;;
    owe-transition) ;;
    wpa2-eap|wpa3-eap) cat <<EOC
wpa=2
wpa_key_mgmt=$([ "$SEC" = wpa3-eap ] && echo WPA-EAP-SHA256 || echo WPA-EAP)
rsn_pairwise=CCMP
ieee8021x=1
eap_server=1
eap_user_file=/share/.hwsim/eap/eap_users
ca_cert=/share/.hwsim/eap/ca.pem
server_cert=/share/.hwsim/eap/server.pem
private_key=/share/.hwsim/eap/server.key
EOC
      [ "$SEC" = wpa3-eap ] && echo "ieee80211w=2"
    ;;
    # Suite B 192-bit: the AKM, GCMP-256 pairwise and group, BIP-GMAC-256, PMF required, and
    # EAP-TLS on the P-384 chain with the Suite B 192 TLS ciphers only.
    wpa3-eap-192) cat <<EOC
wpa=2
wpa_key_mgmt=WPA-EAP-SUITE-B-192
rsn_pairwise=GCMP-256
group_cipher=GCMP-256
group_mgmt_cipher=BIP-GMAC-256
ieee80211w=2
ieee8021x=1
eap_server=1
eap_user_file=/share/.hwsim/eap/eap_users
openssl_ciphers=SUITEB192
ca_cert=/share/.hwsim/eap/ec-ca.pem
server_cert=/share/.hwsim/eap/ec-server.pem
private_key=/share/.hwsim/eap/ec-server.key
EOC
    ;;
  esac
  [ "$1" = hidden ] && echo "ignore_broadcast_ssid=1"
  # Scan detail (issue 16): MIXED offers HE, BSS load, 802.11k neighbor reports, 802.11v BSS
  # transition and the Country element (the lab's own regulatory domain, so nothing changes);
  # roam2 advertises WPS (configured, a device name).
  if [ "$1" = mixed ]; then
    printf 'ieee80211ax=1\nbss_load_update_period=1\nchan_util_avg_period=2\nrrm_neighbor_report=1\nbss_transition=1\n'
    [ "$COUNTRY" = 00 ] || printf 'country_code=%s\nieee80211d=1\n' "$COUNTRY"
  fi
  [ "$1" = roam2 ] && printf 'eap_server=1\nwps_state=2\ndevice_name=Lab roam 2\n'
  # Hotspot 2.0 / Passpoint (issue 16): 802.11u interworking (chargeable public network with
  # internet), PMF optional, and the ANQP answers: venue, domain names, roaming consortium,
  # the NAI realm with EAP-TTLS (21) and non-EAP inner MSCHAPv2 ([2:4]) by username/password
  # ([5:7]) or EAP-TLS (13) by certificate ([5:6]), the HS 2.0 operator name and WAN metrics.
  if [ "$1" = hs20 ]; then
    cat <<EOC
ieee80211w=1
interworking=1
access_network_type=2
internet=1
venue_group=2
venue_type=8
venue_name=eng:$HS20_VENUE
roaming_consortium=$HS20_OI
domain_name=$HS20_DOMAIN,$HS20_REALM
nai_realm=0,$HS20_REALM,21[2:4][5:7],13[5:6]
anqp_domain_id=4660
hs20=1
disable_dgaf=1
hs20_oper_friendly_name=eng:$HS20_OPERATOR
hs20_wan_metrics=01:8000:1000:80:240:3000
EOC
  fi
  # The roam pair accepts 802.11v BSS transition management (the agent suite sends a request).
  case "$1" in roam1|roam2) printf 'bss_transition=1\n' ;; esac
  # The OWE transition pair names each other; @BSSID:NAME@ is filled in by the guest
  # (tests/vm/lab/guest/lab-setup.sh) once the radios exist.
  [ "$1" = owetrans ] && printf 'owe_transition_ssid="lab-owehid"\nowe_transition_bssid=@BSSID:owehid@\n'
  [ "$1" = owehid ] && printf 'ignore_broadcast_ssid=1\nowe_transition_ssid="lab-owetrans"\nowe_transition_bssid=@BSSID:owetrans@\n'
  return 0
}

# Throwaway EAP PKI, generated once into the cache.
make_eap_pki() {
  local d="$WI_CACHE/eap"
  [ -e "$d/.complete" ] && [ -e "$d/ec-client.pem" ] && return 0
  log "generating throwaway EAP CA, server and client certificates"
  rm -rf "$d"; mkdir -p "$d"
  (
    cd "$d"
    openssl req -x509 -newkey rsa:2048 -nodes -keyout ca.key -out ca.pem -days 3650 \
      -subj "/CN=hwsim lab CA" -addext "basicConstraints=critical,CA:TRUE" \
      -addext "keyUsage=critical,keyCertSign,cRLSign" 2>/dev/null
    for who in server client; do
      if [ $who = server ]; then cn=$EAP_SERVER_NAME eku=serverAuth san="DNS:$EAP_SERVER_NAME"
      else cn=$EAP_TLS_ID eku=clientAuth san="email:$EAP_TLS_ID@lab.test"; fi
      openssl req -newkey rsa:2048 -nodes -keyout $who.key -out $who.csr -subj "/CN=$cn" 2>/dev/null
      printf 'basicConstraints=CA:FALSE\nkeyUsage=critical,digitalSignature,keyEncipherment\nextendedKeyUsage=%s\nsubjectAltName=%s\n' \
        "$eku" "$san" > $who.ext
      openssl x509 -req -in $who.csr -CA ca.pem -CAkey ca.key -CAcreateserial -days 3650 \
        -extfile $who.ext -out $who.pem 2>/dev/null
    done
    # The same names on a P-384 / ECDSA-SHA384 chain, for the 192-bit (Suite B) AP.
    openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:secp384r1 -sha384 -nodes \
      -keyout ec-ca.key -out ec-ca.pem -days 3650 -subj "/CN=hwsim lab EC CA" \
      -addext "basicConstraints=critical,CA:TRUE" -addext "keyUsage=critical,keyCertSign,cRLSign" 2>/dev/null
    for who in server client; do
      if [ $who = server ]; then cn=$EAP_SERVER_NAME eku=serverAuth san="DNS:$EAP_SERVER_NAME"
      else cn=$EAP_TLS_ID eku=clientAuth san="email:$EAP_TLS_ID@lab.test"; fi
      openssl req -newkey ec -pkeyopt ec_paramgen_curve:secp384r1 -nodes -keyout ec-$who.key \
        -out $who.csr -subj "/CN=$cn" 2>/dev/null
      printf 'basicConstraints=CA:FALSE\nkeyUsage=critical,digitalSignature\nextendedKeyUsage=%s\nsubjectAltName=%s\n' \
        "$eku" "$san" > $who.ext
      openssl x509 -req -sha384 -in $who.csr -CA ec-ca.pem -CAkey ec-ca.key -CAcreateserial \
        -days 3650 -extfile $who.ext -out ec-$who.pem 2>/dev/null
    done
    rm -f ./*.csr ./*.ext ./*.srl
  )
  touch "$d/.complete"
}

# --- prepare the share ----------------------------------------------------------------------
T_BUILD=$(now_ms)
mkdir -p "$SHARE"
SHARE="$(cd "$SHARE" && pwd)"
rm -rf "$SHARE/logs" "$SHARE/.hwsim" "$SHARE/env"
mkdir -p "$SHARE/logs" "$SHARE/.hwsim"
cp "$SCRIPT" "$SHARE/.hwsim/guest-script"
{
  echo "APS='$APS'"
  echo "NSTATIONS=$NSTATIONS"
  echo "COUNTRY=$COUNTRY"
  echo "TIMEOUT=$TIMEOUT"
} > "$SHARE/.hwsim/run.conf"

{
  echo "AP_NAMES=$(shq "$APS")"
  echo "HWSIM_IP=/usr/bin/ip"
  echo "HWSIM_LOGS=/share/logs"
  echo "HWSIM_RUN_LOGS=/run/hwsim/logs"
  echo "HWSIM_COUNTRY=$COUNTRY"
  k=0
  for a in $APS; do
    k=$((k + 1)); ap_def "$a"; N="${a^^}"
    hostapd_conf "$a" > "$SHARE/.hwsim/hostapd-$a.conf"
    echo "AP_${N}_SSID=$(shq "$SSID")"
    echo "AP_${N}_SSID_HEX=$(hexof "$SSID")"
    echo "AP_${N}_SECURITY=$SEC"
    [ -n "$PSK" ] && echo "AP_${N}_PSK=$(shq "$PSK")"
    echo "AP_${N}_CHANNEL=$CHAN"
    if [ "$HWMODE" = a ]; then echo "AP_${N}_FREQ=$((5000 + 5 * CHAN))"; else echo "AP_${N}_FREQ=$((2407 + 5 * CHAN))"; fi
    echo "AP_${N}_IP=10.0.$k.1"
    echo "AP_${N}_SUBNET=10.0.$k.0/24"
    echo "AP_${N}_HIDDEN=$({ [ "$a" = hidden ] || [ "$a" = owehid ]; } && echo 1 || echo 0)"
    echo "AP_${N}_PORTAL=$([ "$a" = open ] && echo 1 || echo 0)"
  done
} > "$SHARE/.hwsim/env.static"

# The SAE-PK APs run a hostapd built with SAE-PK (Debian's has none), from the share: both lab
# flavours (this initramfs and the full-system image) have its libraries, Debian's hostapd's.
# The same build's wpa_supplicant goes along (/share/.hwsim/wpa_supplicant-saepk): Debian's has
# no SAE-PK either; a suite runs it where it proves SAE-PK (tests/vm/agent/guest.sh).
if [[ " $APS " == *" saepk "* || " $APS " == *" saepkrogue "* ]]; then
  SAEPK_DIR="$("$LAB_DIR/saepk-build.sh")"
  cp "$SAEPK_DIR/hostapd" "$SHARE/.hwsim/hostapd-saepk"
  cp "$SAEPK_DIR/wpa_supplicant" "$SHARE/.hwsim/wpa_supplicant-saepk"
fi

if [[ " $APS " == *" eap"* || " $APS " == *" hs20 "* ]]; then
  make_eap_pki
  mkdir -p "$SHARE/.hwsim/eap" "$SHARE/eap"
  cp "$WI_CACHE/eap/"{ca.pem,server.pem,server.key,ec-ca.pem,ec-server.pem,ec-server.key} "$SHARE/.hwsim/eap/"
  cp "$WI_CACHE/eap/"{ca.pem,client.pem,client.key,ec-ca.pem,ec-client.pem,ec-client.key} "$SHARE/eap/"
  # hostapd eap_user file: phase 1 (outer) then phase 2 (inner, [2]) entries
  cat > "$SHARE/.hwsim/eap/eap_users" <<EOU
"$EAP_PEAP_ID"	PEAP
"$EAP_TTLS_ID"	TTLS
"$EAP_TLS_ID"	TLS
*	PEAP,TTLS,TLS
"$EAP_PEAP_ID"	MSCHAPV2	"$EAP_PEAP_PW"	[2]
"$EAP_TTLS_ID"	TTLS-MSCHAPV2	"$EAP_TTLS_PW"	[2]
"$HS20_USER"	TTLS-MSCHAPV2	"$HS20_PW"	[2]
EOU
  cat >> "$SHARE/.hwsim/env.static" <<EOE
AP_EAP_PEAP_IDENTITY=$EAP_PEAP_ID
AP_EAP_PEAP_PASSWORD=$(shq "$EAP_PEAP_PW")
AP_EAP_TTLS_IDENTITY=$EAP_TTLS_ID
AP_EAP_TTLS_PASSWORD=$(shq "$EAP_TTLS_PW")
AP_EAP_TLS_IDENTITY=$EAP_TLS_ID
AP_EAP_CA_CERT=/share/eap/ca.pem
AP_EAP_CLIENT_CERT=/share/eap/client.pem
AP_EAP_CLIENT_KEY=/share/eap/client.key
AP_EAP_EC_CA_CERT=/share/eap/ec-ca.pem
AP_EAP_EC_CLIENT_CERT=/share/eap/ec-client.pem
AP_EAP_EC_CLIENT_KEY=/share/eap/ec-client.key
AP_EAP_SERVER_NAME=$EAP_SERVER_NAME
AP_HS20_REALM=$HS20_REALM
AP_HS20_USER=$HS20_USER
AP_HS20_PASSWORD=$(shq "$HS20_PW")
AP_HS20_DOMAIN=$HS20_DOMAIN
AP_HS20_VENUE=$(shq "$HS20_VENUE")
AP_HS20_OPERATOR=$(shq "$HS20_OPERATOR")
AP_HS20_OI=$HS20_OI
EOE
fi

[ "$PREPARE_ONLY" = 0 ] || exit 0

# --- initramfs ----------------------------------------------------------------------------
# Base image (cached): busybox + wireless tools + libraries + modules + guest init.
TOOLS=(/usr/bin/busybox /usr/sbin/hostapd /usr/sbin/hostapd_cli /usr/sbin/wpa_supplicant
       /usr/sbin/wpa_cli /usr/sbin/iw /usr/bin/ip /usr/sbin/dnsmasq
       /usr/bin/bwrap    # bubblewrap: the daemon's netns box runs in it
       /usr/sbin/nft     # nftables: the agent suite firewalls a port in an AP's netns
       /usr/sbin/tc      # and limits an AP's bandwidth (tbf) for the throughput check
       /usr/bin/tcpdump) # reads the agent's packet captures (wifi_capture's pcap)
for i in "${!TOOLS[@]}"; do
  t="${TOOLS[$i]}"; [ -e "$t" ] || t="/${t#/usr/}"   # non-usrmerged hosts
  [ -e "$t" ] || die "missing host tool ${TOOLS[$i]} (deps.sh should have installed it)"
  TOOLS[i]="$(readlink -f "$t")"
done
MODULES=(mac80211_hwsim virtio_pci 9pnet_virtio 9p virtio_rng ccm gcm ctr cmac ghash_generic veth dummy nf_tables sch_tbf)

# (awk reads to the end: an early exit would SIGPIPE ldconfig, and pipefail + set -e end the script)
LIBGCC="$(ldconfig -p | awk '/libgcc_s\.so\.1 .*x86-64/ && !f {print $NF; f = 1}')"
[ -n "$LIBGCC" ] || LIBGCC=/lib/x86_64-linux-gnu/libgcc_s.so.1
OSSL_MODS="$(dirname "$(readlink -f "$LIBGCC")")/ossl-modules"
# regulatory database (wireless-regdb), the upstream-signed copy if both are there: the kernel
# checks the signature against its built-in keys
REGDB=()
for f in regulatory.db regulatory.db.p7s; do
  src=/lib/firmware/$f-upstream; [ -e "$src" ] || src=/lib/firmware/$f
  [ -e "$src" ] && REGDB+=("$src")
done
[ ${#REGDB[@]} -eq 2 ] || [ "$COUNTRY" = 00 ] || die "no /lib/firmware/regulatory.db (wireless-regdb): use --country 00"

libs_of() {  # shared libraries an ELF needs (absolute paths), nothing for static ones
  ldd "$1" 2>/dev/null | awk '$2 == "=>" && $3 ~ /^\// {print $3} $1 ~ /^\// {print $1}' || true
}
# put host file SRC at the same absolute path inside the staging dir (following symlinks)
stage_file() { local dst="$1$2"; mkdir -p "$(dirname "$dst")"; cp -L "$2" "$dst"; }

BUILD_VERSION=1
GUEST_FILES=("$LAB_DIR/guest/init" "$LAB_DIR/guest/http.sh" "$LAB_DIR/guest/prelude.sh"
             "$LAB_DIR/guest/lab-setup.sh")
key="$( { echo "v$BUILD_VERSION $KVER ${MODULES[*]}"
          stat -L -c '%n %s %Y' "${TOOLS[@]}" "$LIBGCC" "${REGDB[@]}" "${GUEST_FILES[@]}" "$LAB_DIR/boot-initramfs.sh"
          for t in "${TOOLS[@]}"; do libs_of "$t"; done | sort -u | xargs -r stat -L -c '%n %s %Y'
        } | sha256sum | cut -c1-16)"
IRD="$WI_CACHE/initramfs"
BASE="$IRD/base-$key.cpio"
if [ ! -e "$BASE" ]; then
  log "building base initramfs ($key)"
  mkdir -p "$IRD"
  st="$(mktemp -d "$IRD/.stage.XXXXXX")"
  trap 'rm -rf "$st"' EXIT
  # usr-merged layout
  mkdir -p "$st"/{usr/bin,usr/sbin,usr/lib,usr/lib64,usr/local/bin,usr/lib/hwsim,proc,sys,dev,run,tmp,share,root,etc,var/lib/misc}
  ln -s usr/bin "$st/bin"; ln -s usr/sbin "$st/sbin"; ln -s usr/lib "$st/lib"; ln -s usr/lib64 "$st/lib64"
  ln -s ../run "$st/var/run"
  for t in "${TOOLS[@]}"; do
    stage_file "$st" "$t"
    for l in $(libs_of "$t"); do stage_file "$st" "$l"; done
  done
  stage_file "$st" "$LIBGCC"
  [ -d "$OSSL_MODS" ] && { mkdir -p "$st$OSSL_MODS"; cp -L "$OSSL_MODS"/*.so "$st$OSSL_MODS/"; }
  mkdir -p "$st/usr/lib/firmware"
  for f in "${REGDB[@]}"; do b="$(basename "$f")"; cp -L "$f" "$st/usr/lib/firmware/${b%-upstream}"; done
  # busybox applets as symlinks in /usr/bin, except where a real tool is shipped (ip!)
  busybox_applets /usr/bin/busybox "$st/usr/bin" "$st/usr/sbin"
  # kernel modules + their dependencies, with a fresh modules.dep for busybox modprobe
  stage_modules "$st" "$KDIR" "$KVER" "${MODULES[@]}"
  # guest init, http handler, minimal /etc
  cp "$LAB_DIR/guest/init" "$st/init"
  cp "$LAB_DIR/guest/http.sh" "$LAB_DIR/guest/prelude.sh" "$LAB_DIR/guest/lab-setup.sh" "$st/usr/lib/hwsim/"
  chmod 0755 "$st/init" "$st/usr/lib/hwsim/http.sh"
  printf 'root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/nonexistent:/bin/false\n' > "$st/etc/passwd"
  printf 'root:x:0:\nnogroup:x:65534:\n' > "$st/etc/group"
  printf '127.0.0.1 localhost\n::1 localhost\n' > "$st/etc/hosts"
  printf 'passwd: files\ngroup: files\nhosts: files dns\n' > "$st/etc/nsswitch.conf"
  : > "$st/etc/resolv.conf"
  pack_cpio "$st" "$BASE.tmp"
  mv "$BASE.tmp" "$BASE"
  rm -rf "$st"; trap - EXIT
  find "$IRD" -maxdepth 1 -name 'base-*.cpio' ! -name "base-$key.cpio" -delete
fi

# Per-run extra archive: --bin files (+ their libraries) in /usr/local/bin. Appended to the base.
lab_workdir hwsim-run
INITRD="$BASE"
if [ ${#BINS[@]} -gt 0 ]; then
  ex="$WORK/extra"; mkdir -p "$ex/usr/local/bin"
  for b in "${BINS[@]}"; do
    cp -L "$b" "$ex/usr/local/bin/"; chmod 0755 "$ex/usr/local/bin/$(basename "$b")"
    for l in $(libs_of "$b"); do
      stage_file "$ex" "$l"
    done
  done
  # the base's /lib is a symlink to usr/lib: keep extra files under usr/ so the symlink survives
  for d in lib lib64 bin sbin; do
    if [ -d "$ex/$d" ] && [ ! -L "$ex/$d" ]; then mkdir -p "$ex/usr/$d"; cp -a "$ex/$d/." "$ex/usr/$d/"; rm -rf "${ex:?}/$d"; fi
  done
  pack_cpio "$ex" "$WORK/extra.cpio"
  cat "$BASE" "$WORK/extra.cpio" > "$WORK/initrd.cpio"
  INITRD="$WORK/initrd.cpio"
fi
BUILD_S="$(secs_since "$T_BUILD")"

# --- boot -----------------------------------------------------------------------------------
ACCEL="${WI_ACCEL:-tcg}"
CPU=max; [ "$ACCEL" = kvm ] && CPU=host
CONSOLE="$SHARE/logs/console.log"
KERNEL="$KDIR/vmlinuz"; [ -e "$KDIR/vmlinux" ] && KERNEL="$KDIR/vmlinux"   # PVH direct boot
: > "$CONSOLE"
T_BOOT=$(now_ms)
log "booting $KVER (accel $ACCEL, ${MEM} MB, APs: ${APS:-none}, stations: $NSTATIONS; build ${BUILD_S} s)"
lab_qemu "$QUIET" "$TIMEOUT" \
  -accel "$ACCEL" -cpu "$CPU" -smp 2 -m "$MEM" ${WI_QEMU_EXTRA:-} \
  -nodefaults -display none -no-reboot -monitor none \
  -kernel "$KERNEL" -initrd "$INITRD" \
  -append "console=ttyS0 panic=-1 quiet loglevel=4 mitigations=off rdinit=/init" \
  -virtfs "local,path=$SHARE,mount_tag=share,security_model=none" \
  -device virtio-rng-pci
BOOT_S="$(secs_since "$T_BOOT")"

ready="$(grep -a -m1 -o 'HWSIM-READY uptime=[0-9.]*' "$CONSOLE" | cut -d= -f2 || true)"
echo "hwsim: timing: build ${BUILD_S} s, boot to lab ready ${ready:-?} s (guest uptime), VM ${BOOT_S} s, total $(secs_since "$T_START") s (kernel $KVER)"
lab_report hwsim HWSIM "$TIMEOUT"
