# The wiphy probe's part of the run suite (run by guest.sh first, with `sh`; busybox sh, the lab
# env exported; needs two station radios).
# Proves host::wiphy and host::rfkill on real mac80211_hwsim radios: resolve, move into an
# anonymous netns by /proc/PID/ns/net fd, locate, move back with the name restored, name-taken
# return, and the phy coming home when the box dies.
set -e
IP=${HWSIM_IP:-/usr/bin/ip}   # iproute2 (busybox's ip applet has no netns support)
set -- $STATIONS
[ $# -ge 2 ] || { echo "wiphy-probe needs --stations 2 (have: $STATIONS)"; exit 1; }
echo "stations: $STATIONS ($STATION_PHYS)"
wiphy-probe "$1" "$2" 2>&1 | tee /share/logs/wiphy-probe.log
grep -q ' 0 failed$' /share/logs/wiphy-probe.log

# Kernel behaviour behind "bring interfaces down first": move an UP interface with stock iw.
set -- $STATIONS
PHY2=$(cat /sys/class/net/$2/phy80211/name)
$IP link set "$2" up
$IP netns add wp-up
if iw phy "$PHY2" set netns name wp-up; then
  echo "OBSERVED: SET_WIPHY_NETNS of an UP interface succeeds; in the target it is: $($IP -n wp-up -o link show "$2" | grep -o '<[^>]*>')"
else
  echo "OBSERVED: SET_WIPHY_NETNS of an UP interface fails (rc=$?)"
fi
$IP netns del wp-up
i=0; while [ ! -e "/sys/class/net/$2" ] && [ $i -lt 100 ]; do sleep 0.05; i=$((i+1)); done
echo "OBSERVED: after ip netns del, $2 back in the root netns after ~$((i*50)) ms: $($IP -o link show "$2" 2>&1 | grep -o '<[^>]*>')"
