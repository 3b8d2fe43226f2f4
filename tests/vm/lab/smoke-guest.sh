#!/bin/bash
# smoke-guest.sh — proves the full-system VM harness (run by tests/vm/story/ and tests/vm/faults/, or by hand:
#   tests/vm/lab/boot-image.sh --image IMG --share DIR --script tests/vm/lab/smoke-guest.sh --aps wpa2 --stations 2)
# systemd up, NetworkManager managing the station radios (and not seeing the APs), the agent image in
# podman, the .deb installed (binary, units, group), and a scan from a station that sees lab-wpa2.
set -u
fails=0
ok() { echo "ok: $*"; }
bad() { echo "FAIL: $*"; fails=$((fails + 1)); }
t0=$(cut -d' ' -f1 /proc/uptime)

state=$(systemctl is-system-running)
case "$state" in
  running) ok "systemd is running" ;;
  degraded) ok "systemd is degraded; failed units:"; systemctl --failed --no-legend --plain ;;
  *) bad "systemd state '$state'"; systemctl --failed --no-legend --plain ;;
esac

systemctl is-active -q NetworkManager && ok "NetworkManager active" || bad "NetworkManager not active"
devs=$(nmcli -t -f DEVICE,TYPE,STATE device)
echo "$devs" | sed 's/^/  nmcli: /'
for s in $STATIONS; do
  line=$(echo "$devs" | grep "^$s:" || true)
  case "$line" in
    "$s:wifi:unmanaged"*) bad "$s is unmanaged by NetworkManager" ;;
    "$s:wifi:"*) ok "NetworkManager manages $s (${line##*:})" ;;
    *) bad "NetworkManager does not list $s as wifi: '$line'" ;;
  esac
done
for a in $AP_NAMES; do
  n=$(echo "$a" | tr a-z A-Z); eval "ifc=\$AP_${n}_IFACE ns=\$AP_${n}_NETNS"
  echo "$devs" | grep -q "^$ifc:" && bad "NetworkManager lists AP interface $ifc" || ok "AP $a ($ifc) is not NetworkManager's"
  ip -n "$ns" link show "$ifc" >/dev/null 2>&1 && ok "AP $a lives in netns $ns" || bad "AP $a not in netns $ns"
done

podman images --format '{{.Repository}}:{{.Tag}}' | grep -qx 'localhost/wifi-isolate-agent:latest' &&
  ok "podman has localhost/wifi-isolate-agent:latest" || { bad "agent image missing"; podman images; }

v=$(wifi-isolate --version 2>&1) && ok "wifi-isolate --version: $v" || bad "wifi-isolate --version: $v"
if [ -e /lib/systemd/system/wifi-isolate@.service ] || [ -e /usr/lib/systemd/system/wifi-isolate@.service ]; then
  ok "wifi-isolate@.service installed"
else bad "wifi-isolate@.service not installed"; fi
getent group wifi-isolate >/dev/null && ok "group wifi-isolate exists" || bad "no group wifi-isolate"

# a scan from the first station: NetworkManager is told to let go of it first
st=${STATIONS%% *}
nmcli device set "$st" managed no || bad "nmcli device set $st managed no"
ip link set "$st" up || bad "ip link set $st up"
found=0
for i in 1 2 3 4 5; do
  if iw dev "$st" scan 2>/tmp/scan.err | grep -q "SSID: $AP_WPA2_SSID\$"; then found=1; break; fi
  echo "  scan $i: not yet ($(head -c 200 /tmp/scan.err))"; sleep 1
done
[ $found = 1 ] && ok "$st sees $AP_WPA2_SSID in a scan" || bad "$st does not see $AP_WPA2_SSID"

echo "smoke checks took $(awk -v t0="$t0" '{printf "%.1f", $1 - t0}' /proc/uptime) s; failures: $fails"
[ $fails -eq 0 ]
