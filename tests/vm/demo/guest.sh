#!/bin/bash
# The demo (README command 1, tests/demo.sh) inside the full-system VM: a Debian with systemd,
# udev, NetworkManager, podman and the wifi-isolate .deb installed; two simulated access points.
# isolate → scan → connect → the host never noticed → release, with a route trace.
set -u
. /share/fullsys-lib.sh
S1=${STA[0]}
say() { printf '\n\033[1m== %s\033[0m\n' "$*"; }
show() { sed 's/^/   /'; }
mcp() { "$PROBE" call "/run/wifi-isolate/$S1.sock" "$@"; }

systemctl start podman.socket
fake_uplink
take_baseline
say "The host: a wired uplink (eth0, default route) and a WiFi adapter ($S1) NetworkManager manages"
ip -4 route | show
nmcli -t -f DEVICE,TYPE,STATE device | grep -v '^lo' | show
trace "before"

say "wifi-isolate enable $S1 --now   (udev rule + socket unit; podman box; phy moved in)"
wifi-isolate enable "$S1" --now 2>&1 | show
systemctl status --no-pager "$(unit "$S1")" | sed -n '1,4p' | show
echo "   $S1 in the host: $(in_host "$S1" && echo yes || echo 'no — it lives in the box now')"
trace "isolated (enable --now)"

say "An MCP client on /run/wifi-isolate/$S1.sock scans"
mcp wifi_scan | grep -o '"ssid":"[^"]*"' | sort -u | show

say "... and connects to $AP_WPA2_SSID (WPA2; the passphrase never reaches a log)"
mcp wifi_connect "{\"ssid\":\"$AP_WPA2_SSID\",\"password\":\"$AP_WPA2_PSK\"}" | show
trace "connected (DHCP lease in the box)"
mcp network_ping "{\"host\":\"$AP_WPA2_IP\",\"count\":2}" | show
mcp network_dns_lookup '{"name":"ap.test"}' | show

say "The host never noticed: routes and addresses, before vs now"
if same_host; then echo "   identical"; else echo "   CHANGED"; fi
ip -4 route | show

say "systemctl stop: the card comes home under its name; enabled, so NetworkManager stays off it"
t0=$(ms); systemctl stop --quiet "$(unit "$S1")" &
wait_for 10 in_host "$S1"; echo "   $S1 back in the host after $(($(ms) - t0)) ms"
wait; echo "   systemctl stop returned after $(($(ms) - t0)) ms (box removed, NetworkManager told)"
trace "released (systemctl stop)"
say "wifi-isolate disable $S1 --now: back to NetworkManager"
wifi-isolate disable "$S1" --now 2>&1 | show
sleep 2
nmcli -t -f DEVICE,TYPE,STATE device | grep -v '^lo' | show
trace "disabled"

say "Route trace (host vs box at each event)"
cut -c9- /tmp/trace
same_host
