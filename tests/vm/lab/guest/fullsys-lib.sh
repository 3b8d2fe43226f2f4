# fullsys-lib.sh — sourced by the full-system guest scripts (bash, root, cwd /share, the lab env
# exported: STATIONS, STATION_PHYS, AP_*). The product is the installed .deb; podman is the engine.
# Every check prints the one tally's line (tests/src/tally.rs): `ok   NAME` or `FAIL NAME — detail`;
# `finish` exits 1 if any failed.

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
check() { local name=$1; shift; if "$@" >/tmp/check.out 2>&1; then ok "$name"; else bad "$name — $(tail -c 600 /tmp/check.out)"; fi; }
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

# hostile_podman IFACE: the hostile probe (tests/src/bin/hostile-probe.rs) as the podman box's
# entrypoint (image localhost/wifi-isolate-hostile:latest, build-image.sh --probe), started by the
# real daemon on IFACE's real radio. The probe attacks the host from inside, writes its
# report into the box dir and execs the real agent; the host is checked on its own side, the report
# is copied to /share/hostile-report.json (tests/vm/story/ and tests/vm/faults/ re-checks it). Leaves IFACE stopped,
# disabled and home. Needs the lib's baseline (take_baseline) and the MCP probe.
hostile_podman() {
  local S=$1 canary canary_hex canary_atime canary_pid vital0 links0 t0 box rep nonce
  local HOSTILE_IMAGE=localhost/wifi-isolate-hostile:latest
  check "hostile: the probe image is in podman's storage" podman image exists "$HOSTILE_IMAGE"
  mkdir -p /etc/wifi-isolate/instance.d
  printf '[engine]\nkind = "podman"\nimage = "%s"\n' "$HOSTILE_IMAGE" >"/etc/wifi-isolate/instance.d/$S.toml"
  # The host before: a root-only canary file whose atime any read would move (the root is mounted
  # noatime: strictatime for this phase), a canary root process, the system daemons, links.
  check "hostile: / remounted strictatime (reads move atime)" mount -o remount,strictatime /
  canary=$(head -c 48 /dev/urandom | base64 -w0)   # never read back from the file before the atime check
  canary_hex=$(printf %s "$canary" | head -c 16 | od -An -tx1 | tr -d ' \n')
  (umask 077 && printf '%s\n' "$canary" >/root/wi-canary)
  touch -a -d '3 days ago' /root/wi-canary
  canary_atime=$(stat -c %X /root/wi-canary)
  sleep 100000 </dev/null >/dev/null 2>&1 &
  canary_pid=$!
  vital() { for u in systemd-journald systemd-udevd NetworkManager dbus; do printf '%s=%s ' "$u" "$(systemctl show -p MainPID --value "$u")"; done; }
  vital0=$(vital)
  links() { ip -o link | awk -F': ' '{print $2}' | cut -d@ -f1 | sort | paste -sd' ' -; }
  wihost_anywhere() { { ip -o link; for n in $(ip netns list | cut -d' ' -f1); do ip -n "$n" -o link; done; } | grep wihost; }
  links0=$(links)
  t0=$(ms)
  check "hostile: enable $S --now (the daemon reaches READY through the probe)" wifi-isolate enable "$S" --now
  echo "HOSTILE: READY $(($(ms) - t0)) ms after enable --now (probe included)"
  echo "STATUS=$(prop "$S" StatusText)"
  box=/run/wifi-isolate/box/$S
  [ -d "$box" ] || box=/run/wifi-isolate/$S
  rep=$box/hostile-report.json
  check "hostile: the report is complete" grep -q '"complete": true' "$rep"
  cp "$rep" /share/hostile-report.json 2>/dev/null
  podman logs "wifi-isolate-$S" 2>&1 | grep 'hostile-probe:' | tail -3
  check "hostile report: nothing escaped" grep -q '"escaped": \[\]' "$rep"
  check "hostile report: all_refused" grep -q '"all_refused": true' "$rep"
  check "hostile report: positive controls ok (veth, raw ICMP, AF_PACKET, nl80211)" grep -q '"positive_ok": true' "$rep"
  check "hostile report: the wiphy arrived, its moves were tried" bash -c '! grep -q "skipped: no wiphy" "$0"' "$rep"
  check "hostile report: uid 0 is the host's root (rootful box)" grep -q '"uid_map": "0 0 4294967295"' "$rep"
  nonce=$(sed -n 's/.*"nonce": "\([0-9a-f]*\)".*/\1/p' "$rep" | head -1)
  check "hostile report: a nonce" test -n "$nonce"
  # The host, on its own side.
  check "host: the canary process is alive" kill -0 "$canary_pid"
  check "host: journald, udevd, NetworkManager, dbus: same pids ($vital0)" test "$(vital)" = "$vital0"
  check "host: the daemon is active" test "$(prop "$S" ActiveState)" = active
  check "host: the canary file was not read (atime)" test "$(stat -c %X /root/wi-canary)" = "$canary_atime"
  check "host: the canary file is unchanged" test "$(cat /root/wi-canary)" = "$canary"
  check "host: the canary's bytes are not in the report" bash -c '! grep -qi "$0" "$1"' "$canary_hex" "$rep"
  check "host: no new link in the host netns (only $S gone, into the box)" test "$(links)" = "$(tr ' ' '\n' <<<"$links0" | grep -vx "$S" | paste -sd' ' -)"
  no_wihost() { ! wihost_anywhere; }
  check "host: no wihost link in any netns" no_wihost
  check "host: addresses and routes (IPv4, IPv6) unchanged" same_host
  check "host: no wi-hostile-$nonce file" test -z "$(find / /etc /usr /var/tmp /root /run /tmp -maxdepth 2 -xdev -name "wi-hostile-$nonce*" 2>/dev/null)"
  check "hostile: active, the phy in the box, not in the host" active_isolated "$S"
  check "hostile: MCP through the daemon's socket (wifi_status)" "$PROBE" call "/run/wifi-isolate/$S.sock" wifi_status
  check "hostile: MCP through the daemon's socket (wifi_scan)" "$PROBE" call "/run/wifi-isolate/$S.sock" wifi_scan
  trace "hostile probe ran, agent serving" "$S"
  t0=$(ms)
  systemctl stop "$(unit "$S")"
  echo "HOSTILE: stopped in $(($(ms) - t0)) ms"
  check "hostile: after release the phy is home" wait_for 10 in_host "$S"
  check "hostile: no container left" test "$(containers "$S")" = 0
  check "hostile: the canary process is still alive" kill -0 "$canary_pid"
  check "hostile: host routes/addresses unchanged after release" same_host
  check "hostile: no new link after release" test "$(links)" = "$links0"
  kill "$canary_pid"
  rm -f "/etc/wifi-isolate/instance.d/$S.toml" /root/wi-canary
  mount -o remount,noatime /
  check "hostile: disable $S" wifi-isolate disable "$S"
}
