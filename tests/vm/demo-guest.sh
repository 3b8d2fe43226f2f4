# Guest script of the demo (tests/demo.sh): one simulated station, one WPA2 access point.
# Give the "host" (the VM's root netns) a wired uplink with a default route, like a laptop on
# Ethernet, so the trace shows that isolation leaves it alone.
set -eu
modprobe dummy 2>/dev/null || true
if [ -e /sys/class/net/dummy0 ]; then
  $HWSIM_IP link set dummy0 name eth0
  $HWSIM_IP link set eth0 up
  $HWSIM_IP addr add 192.168.50.2/24 dev eth0
  $HWSIM_IP route add default via 192.168.50.1 dev eth0
fi
hwsim-demo "${STATIONS%% *}"
