# fullsys-lib.sh — sourced by the full-system guest scripts (bash, root, cwd /share, the lab env
# exported: STATIONS, STATION_PHYS, AP_*). The product is the installed .deb; podman is the engine.
# Every check prints `ok   NAME` or `FAIL NAME: detail`; `finish` exits 1 if any failed.

[ -r /share/extra.env ] && . /share/extra.env
PASSED=0
FAILED=0
TOOL_CALL_ID=8c5e4ab0f2a94f1b9a0d2f5d6c31b7e1   # msgid::TOOL_CALL in src/logging.rs
PROBE=${PROBE:-/share/bin/fullsys-probe}
read -r -a STA <<<"$STATIONS"
read -r -a PHY <<<"$STATION_PHYS"

ok() { PASSED=$((PASSED + 1)); echo "ok   $*"; }
bad() { FAILED=$((FAILED + 1)); echo "FAIL $*"; }
# check NAME CMD...: ok if CMD succeeds.
check() { local name=$1; shift; if "$@" >/tmp/check.out 2>&1; then ok "$name"; else bad "$name: $(tail -c 600 /tmp/check.out)"; fi; }
finish() { echo "$PASSED passed, $FAILED failed"; [ "$FAILED" -eq 0 ]; }
ms() { date +%s%3N; }

# The VM root netns's routes and addresses without the counters that change on their own.
host_view() {
  { ip -4 route show table all; ip -6 route show table all; ip -4 -o addr; ip -6 -o addr; } |
    sed -E 's/ (valid_lft|preferred_lft|expires) [^ ]+//g; s/\\ +/ /g' | sort
}
same_host() { [ "$(host_view)" = "$BASELINE" ] || { diff <(echo "$BASELINE") <(host_view); return 1; }; }
take_baseline() { BASELINE=$(host_view); }

# The "host" gets a wired uplink with a default route, like a laptop on Ethernet, so the checks
# and the trace show that isolating and using the WiFi leave it alone. Its peer lives in a netns
# of its own; NetworkManager is told to keep off eth0 and IPv6 is off on it, so nothing but the
# test changes it.
fake_uplink() {
  ip netns add uplink
  ip link add eth0 type veth peer name eth0-peer netns uplink
  sysctl -qw net.ipv6.conf.eth0.disable_ipv6=1
  wait_for 10 nmcli device show eth0 && nmcli device set eth0 managed no
  ip link set eth0 up
  ip -n uplink link set eth0-peer up
  ip addr add 192.168.50.2/24 dev eth0
  ip route add default via 192.168.50.1 dev eth0
  sleep 1
}

unit() { echo "wifi-isolate@$1.service"; }
prop() { systemctl show -p "$2" --value "$(unit "$1")"; }
in_host() { [ -e "/sys/class/net/$1" ]; }
box_pid() {   # a process in the box: the container's, else the netns box's (from the state file)
  local p; p=$(podman inspect -f '{{.State.Pid}}' "wifi-isolate-$1" 2>/dev/null) || true
  if [ -z "$p" ] || [ "$p" = 0 ]; then
    p=$(sed -n 's/.*"box_pid": *\([0-9]*\).*/\1/p' "/run/wifi-isolate/state/$1.json" 2>/dev/null)
  fi
  [ -n "$p" ] && [ "$p" != 0 ] && echo "$p"
}
containers() { podman ps -a --filter "name=^wifi-isolate-$1\$" -q | wc -l; }
routes46() {     # IPv4 then IPv6 main-table routes, one line, without loopback's ::1
  { ip -4 route; ip -6 route | grep -v '^::1 dev lo'; } 2>/dev/null | paste -sd ';' -
}
box_routes() {   # the box's IPv4 and IPv6 routes, "(none)", or "(no box)"
  local p r; p=$(box_pid "$1") || { echo "(no box)"; return; }
  r=$(nsenter -t "$p" -n sh -c "$(declare -f routes46); routes46")
  echo "${r:-(none)}"
}
nm_state() { nmcli -g GENERAL.STATE device show "$1" 2>/dev/null | head -1; }
nm_lists() { nmcli -t -f DEVICE device | grep -qx "$1"; }
phy_in_box() { local p; p=$(box_pid "$1") && [ -n "$p" ] && nsenter -t "$p" -n iw dev 2>/dev/null | grep -q Interface; }
mounts_of_ours() { grep -c 'wifi-isolate' /proc/self/mountinfo || true; }

# A row of the route trace: host vs box routes (IPv4 and IPv6) at each event.
trace() {
  local host box
  host=$(routes46); box=$(box_routes "${2:-${STA[0]}}")
  printf 'TRACE | %-40s | host: %-60s | box: %s\n' "$1" "${host:-(none)}" "$box" | tee -a /tmp/trace
}

# wait_for SECS CMD...: poll CMD every 0.1 s.
wait_for() {
  local end=$(($(ms) + $1 * 1000)); shift
  until "$@" >/dev/null 2>&1; do [ "$(ms)" -lt "$end" ] || return 1; sleep 0.1; done
}
active_isolated() {   # the unit is READY and its box holds the phy
  [ "$(prop "$1" ActiveState)" = active ] && ! in_host "$1" && phy_in_box "$1"
}
# The invariant after any event: either active with the phy in its box, or home with the unit
# inactive/failed — never lost, never in the host with routes, no leaked containers.
invariant() {
  local i=$1 what=$2 st
  st=$(prop "$i" ActiveState)
  if [ "$st" = active ]; then
    check "$what: active, phy in the box, not in the host" active_isolated "$i"
    if grep -q 'in podman:' <<<"$(prop "$i" StatusText)"; then
      check "$what: exactly one container" test "$(containers "$i")" = 1
    else
      check "$what: a netns box, no container" test "$(containers "$i")" = 0
    fi
  else
    check "$what: $st, phy home" in_host "$i"
    check "$what: no container left" test "$(containers "$i")" = 0
  fi
  check "$what: host routes/addresses unchanged" same_host
}

dump_on_fail() {
  [ "$FAILED" -eq 0 ] && return 0
  for s in "${STA[@]}"; do systemctl status --no-pager "$(unit "$s")" 2>&1 | tail -20; done
  podman ps -a 2>&1 | tail -5
}
