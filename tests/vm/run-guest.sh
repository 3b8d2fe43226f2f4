# Guest script for the daemon's hwsim suite (run by tests/hwsim/run-vm.sh, busybox sh, env sourced).
# Runs tests/vm/run_probe.rs (`hwsim-run-probe`), which drives the real `wifi-isolate run IFACE
# --engine netns` daemon (from /usr/local/bin, the agent next to it) on the two station radios:
# readiness over a test NOTIFY_SOCKET, MCP through the agent socket, SIGTERM release, the box
# killed, the daemon killed and restarted, an unplugged radio, refusals. The daemons' logs land in
# /share/logs/daemon-*.log.
set -eu
echo "stations: $STATIONS ($STATION_PHYS); AP wpa2: $AP_WPA2_SSID $AP_WPA2_SUBNET"
rc=0
hwsim-run-probe || rc=$?
# Nothing may stay behind whatever the probe saw.
for s in "$AP_WPA2_PSK"; do
  if grep -qF "$s" /share/logs/daemon-*.log 2>/dev/null; then
    echo "FAIL a secret reached a daemon/agent log"; rc=1
  fi
done
[ $rc = 0 ] && echo "ok   no secret in the daemon/agent logs"
exit $rc
