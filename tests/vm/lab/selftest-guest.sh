# Guest half of selftest.sh (busybox sh, sourced by the lab's init; the env file is exported).
# Smoke test of the LAB with stock tools only: wpa_supplicant + busybox udhcpc in a fresh netns "box".
set -eu
# our wpa_supplicant debug log lives in tmpfs (9p writes are slow) and is copied out at the end
trap 'cp /tmp/wpa_supplicant.log "$HWSIM_LOGS/selftest-wpa_supplicant.log" 2>/dev/null' EXIT

T0=$(cut -d' ' -f1 /proc/uptime)
step() { echo "== $* [$(cut -d' ' -f1 /proc/uptime)s]"; }
fail() { echo "SELFTEST FAIL: $*"; exit 1; }
box() { ip netns exec box "$@"; }                 # ip is iproute2 here (prelude)
# (the control socket is a file: wpa_cli needs no netns switch)
cli() { wpa_cli -p /run/wpa_supplicant -i "$STA" "$@"; }
cs() { local u; read -r u _ < /proc/uptime; echo "${u%.*}${u#*.}"; }   # uptime in 1/100 s
# wait_for SECS CMD...: run CMD every 0.1 s until it succeeds or SECS have passed
wait_for() {
  local end=$(( $(cs) + $1 * 100 )); shift
  until "$@"; do [ "$(cs)" -lt $end ] || return 1; sleep 0.1; done
}

set -- $STATIONS; STA=$1; STA2=$2
set -- $STATION_PHYS; PHY=$1

step "second station $STA2 is in the root netns, down, without addresses"
ip -o link show "$STA2" | grep -q 'state DOWN' || fail "$STA2 not down"
[ -z "$(ip -o addr show dev "$STA2")" ] || fail "$STA2 has addresses"

step "move $PHY ($STA) into netns box"
ip netns add box
iw phy "$PHY" set netns name box
box ip link show "$STA" >/dev/null || fail "$STA not in box"
ip link show "$STA" >/dev/null 2>&1 && fail "$STA still in the root netns"
box ip link set lo up
mkdir -p /etc/netns/box && : > /etc/netns/box/resolv.conf   # box's own /etc/resolv.conf

cat > /tmp/wpa.conf <<EOC
ctrl_interface=/run/wpa_supplicant
EOC
box wpa_supplicant -B -i "$STA" -c /tmp/wpa.conf -t -d -f /tmp/wpa_supplicant.log
wait_for 10 cli ping >/dev/null || fail "wpa_supplicant not answering"

# udhcpc hook: configure the lease in the box (busybox sh; absolute iproute2 path)
cat > /tmp/udhcpc.sh <<'EOC'
#!/bin/sh
case "$1" in
  deconfig) /usr/bin/ip addr flush dev "$interface" ;;
  bound|renew)
    /usr/bin/ip addr flush dev "$interface"
    /usr/bin/ip addr add "$ip/$mask" dev "$interface"
    for r in $router; do /usr/bin/ip route replace default via "$r" dev "$interface"; break; done
    : > /etc/resolv.conf; for d in $dns; do echo "nameserver $d" >> /etc/resolv.conf; done ;;
esac
EOC
chmod +x /tmp/udhcpc.sh

step "scan"
want_flags() {  # want_flags NAME FLAGS: the AP's BSSID is in $res with exactly FLAGS
  eval "b=\$AP_$1_BSSID"
  echo "$res" | grep -q "^$b	.*	$2	"
}
scan_ok() {
  res=$(cli scan_results)
  want_flags OPEN '\[ESS\]' && want_flags WPA2 '\[WPA2-PSK-CCMP\]\[ESS\]' &&
  want_flags SAE '\[WPA2-SAE-CCMP\]\[ESS\]' && want_flags WPA2B '\[WPA2-PSK-CCMP\]\[ESS\]' &&
  want_flags EAP '\[WPA2-EAP-CCMP\]\[ESS\]'
}
# (The hidden AP is left out: it answers no wildcard probe, so a scan lists it only when a beacon
# happens to fall into the channel's dwell time. It must just never show its SSID.)
# up to 3 scans, results polled every 0.2 s
for n in 1 2 3 0; do
  [ $n -gt 0 ] || { cli scan_results; fail "scan: not all APs seen with the right flags"; }
  cli scan >/dev/null
  wait_for 8 scan_ok && break
done
cli scan_results
# SSIDs as wpa_cli prints them (printf-escaped: " becomes \")
for s in lab-open lab-wpa2 lab-sae lab-eap 'Lab \\"quoted\\" 2'; do
  cli scan_results | grep -q "	$s\$" || fail "SSID $s not in scan results"
done
cli scan_results | grep -q lab-hidden && fail "hidden SSID was broadcast"

# connect_once SECS NETWORK-SETTINGS... : fresh network, wait for COMPLETED
connect_once() {
  local secs=$1 id; shift
  cli disconnect >/dev/null; cli remove_network all >/dev/null
  box ip addr flush dev "$STA"
  id=$(cli add_network | tail -n1)
  while [ $# -gt 1 ]; do
    [ "$(cli set_network "$id" "$1" "$2")" = OK ] || fail "set_network $1"
    shift 2
  done
  cli select_network "$id" >/dev/null
  wait_for "$secs" sh -c "wpa_cli -p /run/wpa_supplicant -i $STA status | grep -q '^wpa_state=COMPLETED'" ||
    { cli status; return 1; }
}
# connect: connect_once, and once more if that failed. Under heavy host load a starved guest can
# miss hostapd's 100 ms first EAPOL-Key timeout and wedge a handshake; say so loudly, go on.
connect() {
  connect_once "$@" && return 0
  echo "RETRY: first attempt failed (host overloaded?); trying once more"
  connect_once "$@"
}
status_is() { cli status | grep -q "^$1\$"; }
dhcp() {  # lease + ping the gateway
  box udhcpc -i "$STA" -s /tmp/udhcpc.sh -n -q -f -t 5 -T 1 >/tmp/udhcpc.log 2>&1 || { cat /tmp/udhcpc.log; fail "no DHCP lease"; }
  box ip -4 addr show dev "$STA" | grep -q "inet 10\.0\.$1\.1[0-9][0-9]/24" || fail "wrong lease: $(box ip -4 addr show dev "$STA")"
  box ping -c1 -W2 "10.0.$1.1" >/dev/null || fail "ping 10.0.$1.1"
}
http_status() {  # http_status HOST PATH -> first response line
  printf 'GET %s HTTP/1.0\r\nHost: %s\r\n\r\n' "$2" "$1" | box nc -w 3 "$1" 80 | head -n1 | tr -d '\r'
}

step "connect wpa2 (WPA2-PSK)"
connect 20 ssid "\"$AP_WPA2_SSID\"" psk "\"$AP_WPA2_PSK\"" || fail "wpa2 association"
status_is "bssid=$AP_WPA2_BSSID" || fail "wrong BSSID"
step "DHCP on wpa2"
dhcp 2
box ip route | grep -q "^default via $AP_WPA2_IP dev $STA" || fail "no default route via $AP_WPA2_IP"
step "DNS + HTTP on wpa2"
box nslookup www.example.test "$AP_WPA2_IP" | grep -q "$AP_WPA2_IP" || fail "DNS www.example.test"
box nslookup ap.test | grep -q "$AP_WPA2_IP" || fail "DNS ap.test via resolv.conf"
[ "$(http_status "$AP_WPA2_IP" /generate_204)" = "HTTP/1.1 204 No Content" ] || fail "generate_204 on wpa2"
box wget -q -O - http://www.example.test/ | grep -q "hwsim lab AP wpa2" || fail "index page via DNS name"

step "wrong password against wpa2"
connect_once 1 ssid "\"$AP_WPA2_SSID\"" psk '"not the password"' && fail "associated with a wrong password"
wait_for 20 sh -c "wpa_cli -p /run/wpa_supplicant -i $STA list_networks | grep -q TEMP-DISABLED" ||
  fail "wrong password did not lead to TEMP-DISABLED"
grep -q 'reason=WRONG_KEY' /tmp/wpa_supplicant.log || fail "no WRONG_KEY event"

step "connect sae (WPA3-SAE)"
connect 20 ssid "\"$AP_SAE_SSID\"" key_mgmt SAE ieee80211w 2 sae_password "\"$AP_SAE_PSK\"" || fail "sae association"
dhcp 3

step "connect hidden (scan_ssid=1)"
connect 20 ssid "\"$AP_HIDDEN_SSID\"" scan_ssid 1 psk "\"$AP_HIDDEN_PSK\"" || fail "hidden association"
dhcp 4

step "connect wpa2b (quoted SSID, by hex)"
connect 20 ssid "$AP_WPA2B_SSID_HEX" psk "\"$AP_WPA2B_PSK\"" || fail "wpa2b association"
status_is "freq=$AP_WPA2B_FREQ" || fail "wpa2b frequency"
dhcp 5

step "connect eap (PEAP/MSCHAPv2)"
connect 30 ssid "\"$AP_EAP_SSID\"" key_mgmt WPA-EAP eap PEAP identity "\"$AP_EAP_PEAP_IDENTITY\"" \
  password "\"$AP_EAP_PEAP_PASSWORD\"" ca_cert "\"$AP_EAP_CA_CERT\"" phase2 '"auth=MSCHAPV2"' \
  domain_suffix_match "\"$AP_EAP_SERVER_NAME\"" || fail "eap PEAP"
dhcp 6
step "connect eap (TTLS/MSCHAPv2)"
connect 30 ssid "\"$AP_EAP_SSID\"" key_mgmt WPA-EAP eap TTLS identity "\"$AP_EAP_TTLS_IDENTITY\"" \
  password "\"$AP_EAP_TTLS_PASSWORD\"" ca_cert "\"$AP_EAP_CA_CERT\"" phase2 '"auth=MSCHAPV2"' || fail "eap TTLS"
step "connect eap (EAP-TLS)"
connect 30 ssid "\"$AP_EAP_SSID\"" key_mgmt WPA-EAP eap TLS identity "\"$AP_EAP_TLS_IDENTITY\"" \
  ca_cert "\"$AP_EAP_CA_CERT\"" client_cert "\"$AP_EAP_CLIENT_CERT\"" private_key "\"$AP_EAP_CLIENT_KEY\"" ||
  fail "eap TLS"

step "connect open (captive portal)"
connect 20 ssid "\"$AP_OPEN_SSID\"" key_mgmt NONE || fail "open association"
dhcp 1
[ "$(http_status "$AP_OPEN_IP" /generate_204)" = "HTTP/1.1 302 Found" ] || fail "portal: generate_204 is not a 302"
printf 'GET /generate_204 HTTP/1.0\r\n\r\n' | box nc -w 3 "$AP_OPEN_IP" 80 | grep -q "^Location: http://$AP_OPEN_IP/portal" ||
  fail "portal: wrong Location"

cli terminate >/dev/null || true
step "SELFTEST PASS (lab checks took $(awk -v a="$T0" -v b="$(cut -d' ' -f1 /proc/uptime)" 'BEGIN{print b-a}') s)"
