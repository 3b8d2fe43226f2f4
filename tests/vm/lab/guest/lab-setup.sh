# lab-setup.sh — the hwsim lab's radios and access points, shared by both VM flavours:
# sourced (POSIX sh: busybox sh in the initramfs lab, dash in the full-system VM) by
# tests/vm/lab/guest/init and tests/vm/lab/guest/wi-lab. Not executable on its own.
#
# Expects: /share mounted with /share/.hwsim/{run.conf values,env.static,hostapd-NAME.conf,eap/};
#   APS NSTATIONS COUNTRY  (from run.conf)
#   H (runtime dir) L (daemon log dir) IP (iproute2 binary), both dirs existing, /run/netns too
#   functions say MSG and setup_fail MSG (must not return)
#   optional: HWSIM_NC (netcat with -ll -e, default nc), HWSIM_HTTP (default /usr/lib/hwsim/http.sh)
# Does: IPv6 RA/DAD off in the root netns, mac80211_hwsim with one radio per AP + NSTATIONS, the
#   regulatory domain, netns ap-NAME per AP with hostapd + dnsmasq + HTTP, waits for every hostapd
#   to be ENABLED, writes /run/hwsim.env and /share/env. Sets STATIONS and STATION_PHYS.
# Changes the positional parameters.

# --- no IPv6 router adverts / DAD in the root netns: set defaults before radios exist --
for c in all default lo; do
  echo 0 > /proc/sys/net/ipv6/conf/$c/accept_ra
  echo 0 > /proc/sys/net/ipv6/conf/$c/accept_dad
done

# --- radios ---------------------------------------------------------------------------------
set -- $APS; NAPS=$#
NRADIOS=$((NAPS + NSTATIONS))
for m in ccm gcm ctr cmac ghash_generic; do modprobe $m 2>/dev/null; done
modprobe mac80211_hwsim radios=$NRADIOS || setup_fail "modprobe mac80211_hwsim radios=$NRADIOS"
# phys in creation order (phy0 phy1 ...), each with its netdev
phys=""
for p in $(ls /sys/class/ieee80211 | sed 's/^phy//' | sort -n); do phys="$phys phy$p"; done
set -- $phys
[ $# -eq "$NRADIOS" ] || setup_fail "expected $NRADIOS radios, found $#: $phys"
iface_of() {   # iface_of PHY -> its netdev in the root netns
  for n in /sys/class/net/*; do
    [ -e "$n/phy80211" ] && [ "$(basename "$(readlink "$n/phy80211")")" = "$1" ] && { basename "$n"; return; }
  done
}
say "$NRADIOS radios: $phys"
# regulatory domain (global): cfg80211 loads /lib/firmware/regulatory.db, asynchronously
if [ "${COUNTRY:-00}" != 00 ]; then
  iw reg set "$COUNTRY" || setup_fail "iw reg set $COUNTRY"
  n=0
  until iw reg get | grep -q "^country $COUNTRY:"; do
    n=$((n + 1)); [ $n -lt 100 ] || setup_fail "regulatory domain $COUNTRY not applied"; sleep 0.05
  done
fi

# --- access points: netns + hostapd + dnsmasq + http ------------------------------------------
# Every AP's BSSID first: a config may name another AP's (@BSSID:NAME@, the OWE transition pair).
: > "$H/bssid.sed"
for name in $APS; do
  ifc=$(iface_of "$1"); shift
  echo "s/@BSSID:$name@/$(cat /sys/class/net/$ifc/address)/g" >> "$H/bssid.sed"
done
set -- $phys
k=0
dyn=""       # dynamic env lines (ifaces, BSSIDs) appended to the env file
for name in $APS; do
  k=$((k + 1))
  phy=$1; shift
  ifc=$(iface_of "$phy")
  [ -n "$ifc" ] || setup_fail "no netdev for $phy"
  ns=ap-$name; gw=10.0.$k.1
  bssid=$(cat /sys/class/net/$ifc/address)
  N=$(echo "$name" | tr a-z A-Z)
  dyn="$dyn
AP_${N}_IFACE=$ifc
AP_${N}_PHY=$phy
AP_${N}_BSSID=$bssid
AP_${N}_NETNS=$ns"
  eval "AP_IFC_$k=$ifc"
  $IP netns add "$ns" || setup_fail "netns add $ns"
  iw phy "$phy" set netns name "$ns" || setup_fail "iw phy $phy set netns name $ns"
  $IP -n "$ns" link set lo up
  $IP -n "$ns" addr add "$gw/24" dev "$ifc" || setup_fail "addr on $ifc in $ns"
  { echo "interface=$ifc"; sed -f "$H/bssid.sed" "/share/.hwsim/hostapd-$name.conf"; } > "$H/hostapd-$name.conf"
  # hostapd in the foreground, backgrounded here: all APs start in parallel. The SAE-PK APs
  # use the SAE-PK build on the share (tests/vm/lab/saepk-build.sh).
  hapd=hostapd
  case "$name" in saepk|saepkrogue) hapd=/share/.hwsim/hostapd-saepk ;; esac
  $IP netns exec "$ns" "$hapd" -t -d -f "$L/hostapd-$name.log" -P "$H/hostapd-$name.pid" \
    "$H/hostapd-$name.conf" </dev/null >/dev/null 2>&1 &
  # $H/hosts-NAME/: hosts files a suite may add later (dnsmasq reads them as they appear, and they
  # win over --address), e.g. an AAAA record for ap.test where a suite gives the AP IPv6.
  mkdir -p "$H/hosts-$name"
  $IP netns exec "$ns" dnsmasq --keep-in-foreground --conf-file=/dev/null --user=root \
    --no-resolv --no-hosts --no-poll --interface="$ifc" --bind-dynamic --hostsdir="$H/hosts-$name" \
    --dhcp-range="10.0.$k.100,10.0.$k.199,255.255.255.0,1h" --dhcp-authoritative --no-ping \
    --dhcp-option=option:router,"$gw" --dhcp-option=option:dns-server,"$gw" \
    --address=/ap.test/"$gw" --address=/www.example.test/"$gw" --local=/test/ \
    --dhcp-leasefile="$H/dnsmasq-$name.leases" --pid-file="$H/dnsmasq-$name.pid" \
    --log-queries --log-dhcp --log-facility="$L/dnsmasq-$name.log" </dev/null >/dev/null 2>&1 &
  portal=0; [ "$name" = open ] && portal=1
  $IP netns exec "$ns" env HWSIM_AP="$name" HWSIM_AP_IP="$gw" HWSIM_PORTAL=$portal \
    HWSIM_HTTP_LOG="$L/http-$name.log" ${HWSIM_NC:-nc} -ll -p 80 -e "${HWSIM_HTTP:-/usr/lib/hwsim/http.sh}" \
    </dev/null >/dev/null 2>&1 &
done

# stations: the rest, left in the root netns, down and unconfigured
STATIONS=""; STATION_PHYS=""
for phy in "$@"; do
  STATION_PHYS="$STATION_PHYS $phy"; STATIONS="$STATIONS $(iface_of "$phy")"
done
STATIONS=${STATIONS# }; STATION_PHYS=${STATION_PHYS# }

# wait until every hostapd reports state=ENABLED (no fixed sleeps)
k=0
for name in $APS; do
  k=$((k + 1)); eval "ifc=\$AP_IFC_$k"; n=0
  until hostapd_cli -p /run/hostapd -i "$ifc" status 2>/dev/null | grep -q '^state=ENABLED'; do
    n=$((n + 1))
    [ $n -lt 600 ] || { tail -n 30 "$L/hostapd-$name.log"; setup_fail "hostapd for $name not ENABLED"; }
    sleep 0.05
  done
done
say "APs enabled"

# --- the env file --------------------------------------------------------------------------
{
  echo "# hwsim lab environment (generated by tests/vm/lab at boot; shell-sourceable)"
  cat /share/.hwsim/env.static
  echo "STATIONS='$STATIONS'"
  echo "STATION_PHYS='$STATION_PHYS'"
  echo "$dyn"
} > /run/hwsim.env
cp /run/hwsim.env /share/env
