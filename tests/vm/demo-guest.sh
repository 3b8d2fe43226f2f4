# Guest script of the demo (tests/demo.sh): one simulated station, one WPA2 access point.
set -eu
hwsim-demo "${STATIONS%% *}"
