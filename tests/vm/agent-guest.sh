# Guest script for the agent's hwsim suite (run by tests/hwsim/run-vm.sh, busybox sh, env sourced).
# Moves one station radio into a fresh netns "box", runs wifi-isolate-agent there, and drives it
# with the real MCP client (tests/vm/agent_client.rs): first over the agent's Unix socket, then
# over stdio. Finally checks that no secret reached the agent's own logs.
set -eu
IP=${HWSIM_IP:-/usr/bin/ip}
STA=${STATIONS%% *}
PHY=${STATION_PHYS%% *}
LOGS=/share/logs
export WIFI_ISOLATE_LOG=debug

$IP netns add box
mkdir -p /etc/netns/box /run/box
echo "# box resolv.conf" > /etc/netns/box/resolv.conf
iw phy "$PHY" set netns name box
echo "moved $PHY ($STA) into netns box"
$IP netns exec box $IP link set lo up

# IPv6 behind the WPA2 AP: router advertisements (dnsmasq, RA only) for a ULA prefix, with a
# default route, so the kernel autoconfigures the box's WiFi interface (accept_ra=1 in a fresh
# netns); the agent reports it and flushes it on disconnect.
export AP_WPA2_IPV6=fd00:77::1
$IP -n "$AP_WPA2_NETNS" addr add "$AP_WPA2_IPV6/64" dev "$AP_WPA2_IFACE" nodad
$IP -n "$AP_WPA2_NETNS" -6 route add default via fd00:77::fe dev "$AP_WPA2_IFACE" onlink
$IP netns exec "$AP_WPA2_NETNS" dnsmasq --keep-in-foreground --conf-file=/dev/null --user=root \
  --port=0 --no-resolv --no-hosts --interface="$AP_WPA2_IFACE" --bind-dynamic --enable-ra \
  --dhcp-range="::,constructor:$AP_WPA2_IFACE,ra-only,64,1h" --ra-param="$AP_WPA2_IFACE,10,600" \
  --pid-file=/run/dnsmasq-ra.pid --log-facility=$LOGS/dnsmasq-ra.log </dev/null >/dev/null 2>&1 &

# EAP certificate paths are accepted only from the box's certificates directory (the agent's
# default, /etc/wifi-isolate/certs, where the host mounts the per-instance dir read-only):
# the lab's certs are copied there. PEM text goes to the agent's private upload dir.
export AP_EAP_CERTS_DIR=/etc/wifi-isolate/certs
export AGENT_UPLOAD_DIR=/run/box-agent/certs
export AGENT_SHARED_DIR=/run/box
mkdir -p "$AP_EAP_CERTS_DIR"
cp "$AP_EAP_CA_CERT" "$AP_EAP_CERTS_DIR/ca.pem"
cp "$AP_EAP_CLIENT_CERT" "$AP_EAP_CERTS_DIR/client.pem"
cp "$AP_EAP_CLIENT_KEY" "$AP_EAP_CERTS_DIR/client.key"

$IP netns exec box wifi-isolate-agent --listen unix:/run/box/mcp.sock \
  --runtime-dir /run/box-agent > $LOGS/agent.log 2>&1 &
AGENT=$!
i=0
while [ ! -S /run/box/mcp.sock ]; do
  i=$((i+1)); [ $i -lt 200 ] || { echo "agent socket never appeared"; cat $LOGS/agent.log; exit 1; }
  sleep 0.05
done
rc=0
hwsim-agent-client unix /run/box/mcp.sock || rc=1
kill -TERM $AGENT; wait $AGENT || true
[ ! -e /run/box/mcp.sock ] || { echo "FAIL agent left its socket behind"; rc=1; }
[ ! -e "$AGENT_UPLOAD_DIR" ] || { echo "FAIL agent left its PEM uploads behind: $(ls -A "$AGENT_UPLOAD_DIR")"; rc=1; }
$IP netns exec box $IP -4 addr show dev "$STA" | grep -q inet && { echo "FAIL address left after agent exit"; rc=1; }
$IP netns exec box $IP -6 addr show dev "$STA" scope global | grep -q inet6 && { echo "FAIL global IPv6 address left after agent exit"; rc=1; }
$IP netns exec box $IP -6 route show dev "$STA" | grep -v '^fe80::/64' | grep -q . && { echo "FAIL IPv6 route left after agent exit: $($IP netns exec box $IP -6 route show dev "$STA")"; rc=1; }

hwsim-agent-client stdio -- $IP netns exec box wifi-isolate-agent --stdio \
  --runtime-dir /run/box-agent2 2>> $LOGS/agent-stdio.log || rc=1

for s in "$AP_WPA2_PSK" "$AP_SAE_PSK" "$AP_HIDDEN_PSK" "$AP_WPA2B_PSK" "$AP_EAP_PEAP_PASSWORD" "$AP_EAP_TTLS_PASSWORD"; do
  if grep -qF "$s" $LOGS/agent.log $LOGS/agent-stdio.log; then
    echo "FAIL a secret reached the agent's log"; rc=1
  fi
done
[ $rc = 0 ] && echo "ok   no secret in the agent's logs"
exit $rc
