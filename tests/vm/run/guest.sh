# Guest script for the daemon's hwsim suite (run by tests/vm/lab/boot-initramfs.sh, busybox sh, env sourced).
# Runs tests/src/bin/hwsim-run-probe.rs (`hwsim-run-probe`), which drives the real `wifi-isolate run IFACE
# --engine netns` daemon (from /usr/local/bin, the agent next to it) on the two station radios:
# readiness over a test NOTIFY_SOCKET, MCP through the agent socket, SIGTERM release, the box
# killed, the daemon killed and restarted, an unplugged radio, refusals, the interface deleted
# inside the box (it must come home re-created under its name). Then the hostile-agent
# phase, tests/src/bin/hwsim-hostile-host.rs (`hwsim-hostile-host`): the same daemon with the hostile probe
# (tests/src/bin/hostile-probe.rs) as its agent, the host checked from outside. The daemons' logs land
# in /share/logs/daemon-*.log.
set -eu
echo "stations: $STATIONS ($STATION_PHYS); AP wpa2: $AP_WPA2_SSID $AP_WPA2_SUBNET"
rc=0
# First host::wiphy and host::rfkill on their own (wiphy.sh, tests/src/bin/wiphy-probe.rs) while
# both radios are there (the daemon probe unplugs one), then the stations as a fresh boot has
# them: down, no address.
sh /share/wiphy.sh || rc=1
for s in $STATIONS; do
  /usr/bin/ip link set "$s" down 2>/dev/null || true
  /usr/bin/ip addr flush dev "$s" 2>/dev/null || true
done
hwsim-run-probe || rc=$?
# Nothing may stay behind whatever the probe saw.
if grep -qF "$AP_WPA2_PSK" /share/logs/daemon-*.log 2>/dev/null; then
  echo "FAIL no secret in the daemon/agent logs"; rc=1
else
  echo "ok   no secret in the daemon/agent logs"
fi
# exec, not a child: a box that breaks out and kill(-1)s would take this shell, and with it the
# result, down; hwsim-hostile-host makes itself unkillable by such a box. It exits non-zero if
# PRIOR_RC is.
PRIOR_RC=$rc exec hwsim-hostile-host
