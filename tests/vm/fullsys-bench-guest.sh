#!/bin/bash
# Guest script of the full-system benchmark (tests/bench/full.sh): the installed .deb on Debian
# with systemd, NetworkManager and podman, hwsim radios, one WPA2 AP, two stations.
# Each measurement runs WI_BENCH_N times (after one untimed warm-up) against its reference in the
# same boot; writes /share/bench-full.md (Markdown tables: median, min–max, ratios) and
# /share/bench-raw.txt (every sample). Not a test: it fails only when a measurement cannot be made.
#   1 isolate     systemctl start (Type=notify → READY) podman / netns  vs  the seed's manual flow
#   2 release     systemctl stop → phy home (10 ms poll)                vs  podman rm -f + netns death
#   3 connect     wifi_connect WPA2 over the endpoint                    vs  bare wpa_supplicant + udhcpc
#   4 cold        first MCP answer on the idle socket (service stopped), podman / netns
#   5 footprint   RSS of daemon and agent, idle and under 4 clients; image and .deb size
set -u
. /share/fullsys-lib.sh
N=${WI_BENCH_N:-5}
S1=${STA[0]} S2=${STA[1]} P1=${PHY[0]} P2=${PHY[1]}
U=$(unit "$S1")
SOCK=/run/wifi-isolate/$S1.sock
IMAGE=localhost/wifi-isolate-agent:latest
BENCH=${BENCH:-/share/bin/fullsys-bench}
OUT=/share/bench-full.md
RAW=/share/bench-raw.txt
D=/tmp/bench
rm -rf "$D"; mkdir -p "$D"; : >"$RAW"
ERRORS=0
err() { ERRORS=$((ERRORS + 1)); echo "ERROR $*"; }

# Clock without forks: microseconds since the epoch (bash 5's EPOCHREALTIME).
now_us() { NOW=${EPOCHREALTIME/./}; }
# A sleep without a fork (read with a timeout on a pipe nobody writes).
exec {SNOOZE_FD}<> <(:)
snooze() { read -rt "$1" -u "$SNOOZE_FD" || true; }
# sample NAME VALUE: one measurement.
sample() { echo "$2" >>"$D/$1"; echo "$1 $2" >>"$RAW"; echo "  $1 = $2"; }
# stat NAME: "median|min|max|n" of the samples (empty when none).
stat() {
  [ -s "$D/$1" ] || { echo "|||0"; return; }
  sort -n "$D/$1" | awk '{a[NR]=$1} END {m = (NR % 2) ? a[(NR + 1) / 2] : (a[NR / 2] + a[NR / 2 + 1]) / 2;
    printf "%g|%g|%g|%d", m, a[1], a[NR], NR}'
}
med() { local s; s=$(stat "$1"); echo "${s%%|*}"; }
# cell NAME: "median (min–max)" for a table.
cell() {
  local s m lo hi n; s=$(stat "$1"); IFS='|' read -r m lo hi n <<<"$s"
  [ "$n" = 0 ] && { echo "n/a"; return; }
  echo "$m ($lo–$hi)"
}
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { if (a == "" || b == "" || b == 0) print "n/a"; else printf "%.2f×", a / b }'; }
meets() { awk -v v="$1" -v t="$2" 'BEGIN { if (v == "") print "n/a"; else print (v <= t) ? "**met**" : "**missed**" }'; }
rss_kb() { local k v _; while read -r k v _; do [ "$k" = VmRSS: ] && { echo "$v"; return; }; done <"/proc/$1/status" 2>/dev/null; echo 0; }
agent_pid() {   # the agent of S1's box (podman: the container's init; netns: the daemon's child)
  sed -n 's/.*"box_pid": *\([0-9]*\).*/\1/p' "/run/wifi-isolate/state/$S1.json" 2>/dev/null
}
set_engine() { mkdir -p /etc/wifi-isolate/instance.d; printf '[engine]\nkind = "%s"\n' "$1" >"/etc/wifi-isolate/instance.d/$S1.toml"; }
# The phy's current interface in the root netns (by /sys/class/net/*/phy80211/name), or "".
iface_of_phy() {
  local f n; for f in /sys/class/net/*/phy80211/name; do
    [ -r "$f" ] && read -r n <"$f" && [ "$n" = "$1" ] && { f=${f#/sys/class/net/}; echo "${f%%/*}"; return; }
  done
}
# journal lines of UNITS since epoch-µs T0, as "+ms  message" relative to T0.
journal_since() {
  local t0=$1; shift
  journalctl --no-pager -o short-unix --since "@$((t0 / 1000000))" "$@" 2>/dev/null |
    awk -v t0="$t0" '$1 ~ /^[0-9]+\.[0-9]+$/ { ts = $1; sub(/^[^ ]+ [^ ]+ /, ""); d = (ts * 1000000 - t0) / 1000;
      if (d >= 0) printf "| +%d ms | %s |\n", d, $0 }'
}
settle() { snooze 2; }

echo "== setup (N=$N)"
systemctl start podman.socket
podman images >/dev/null 2>&1   # the first podman call is slow under TCG; not part of any number
systemctl start "wifi-isolate@$S1.socket"
echo "stations: $S1 ($P1) for the isolation, $S2 ($P2) for the bare reference"

# ---- 1+2. isolate and release, ours ----------------------------------------------------------
ours_cycle() {   # ours_cycle ENGINE TIMED
  local eng=$1 timed=$2 t0 t1 t2 home
  systemctl reset-failed "$U" 2>/dev/null
  now_us; t0=$NOW
  if ! systemctl start "$U"; then err "systemctl start $U ($eng)"; return 1; fi
  now_us; t1=$NOW
  active_isolated "$S1" || err "$eng: not isolated after start"
  [ "$timed" = 1 ] && sample "isolate_$eng" $(((t1 - t0) / 1000))
  [ "$timed" = 1 ] && JOURNAL_START_T0=$t0
  snooze 1
  now_us; t0=$NOW
  systemctl stop "$U" &
  local sp=$! end=$((t0 + 10000000))
  while [ ! -e "/sys/class/net/$S1" ]; do now_us; [ "$NOW" -lt "$end" ] || break; snooze 0.01; done
  now_us; home=$NOW
  wait "$sp"
  now_us; t2=$NOW
  if [ ! -e "/sys/class/net/$S1" ]; then err "$eng: $S1 not home 10 s after stop"; return 1; fi
  if [ "$timed" = 1 ]; then
    sample "release_home_$eng" $(((home - t0) / 1000))
    sample "release_stop_$eng" $(((t2 - t0) / 1000))
    JOURNAL_STOP_T0=$t0
  fi
  settle
}
for eng in podman netns; do
  echo "== isolate/release: ours, $eng engine"
  set_engine "$eng"
  ours_cycle "$eng" 0
  for _ in $(seq "$N"); do ours_cycle "$eng" 1; done
  journal_since "$JOURNAL_START_T0" -u "$U" -u podman.service | head -40 >"$D/journal_start_$eng"
  journal_since "$JOURNAL_STOP_T0" -u "$U" -u podman.service | head -30 >"$D/journal_stop_$eng"
done

# ---- 1+2. isolate and release, the seed's way ------------------------------------------------
# The seed: a container on podman's default bridge with a published port, NET_ADMIN+NET_RAW, the
# same agent image with a bind-mounted socket dir; inspect the PID, move the phy with iw, wait for
# the agent to answer, delete the bridge's default route inside the container.
seed_cycle() {   # seed_cycle TIMED
  local timed=$1 t0 ta tb tc td t1 pid home name
  podman rm -f wi-seed >/dev/null 2>&1
  rm -rf /run/wi-seed; mkdir -p /run/wi-seed
  wait_for 10 nm_lists "$S1"
  now_us; t0=$NOW
  nmcli device set "$S1" managed no || err "nmcli managed no"
  now_us; ta=$NOW
  [ "$timed" = 1 ] && sample seed_nmcli $(((ta - t0) / 1000))
  t0=$ta
  if ! podman run -d --name wi-seed --cap-add NET_ADMIN,NET_RAW -p 8080:8080 "${SEED_OPTS[@]}" \
      -v /run/wi-seed:/run/wifi-isolate "$IMAGE" --listen unix:/run/wifi-isolate/mcp.sock >/dev/null; then
    if [ "$timed" = 0 ] && [ ${#SEED_OPTS[@]} = 0 ]; then
      echo "  podman run failed: retrying with the explicit ulimits our engine sets"
      SEED_OPTS=(--ulimit nofile=1024:1024 --ulimit nproc=1024:1024)
      seed_cycle 0; return
    fi
    err "seed: podman run"; return 1
  fi
  now_us; ta=$NOW
  pid=$(podman inspect -f '{{.State.Pid}}' wi-seed)
  now_us; tb=$NOW
  iw phy "$P1" set netns "$pid" || { err "seed: iw phy set netns"; return 1; }
  now_us; tc=$NOW
  local end=$((tc + 60000000))
  until [ -S /run/wi-seed/mcp.sock ] && "$PROBE" first-reply /run/wi-seed/mcp.sock >/dev/null 2>&1; do
    now_us; [ "$NOW" -lt "$end" ] || { err "seed: agent never answered"; return 1; }
    snooze 0.05
  done
  now_us; td=$NOW
  nsenter -t "$pid" -n ip route del default || err "seed: route del default"
  now_us; t1=$NOW
  if [ "$timed" = 1 ]; then
    sample isolate_seed $(((t1 - t0) / 1000))
    sample seed_step_run $(((ta - t0) / 1000))
    sample seed_step_inspect $(((tb - ta) / 1000))
    sample seed_step_move $(((tc - tb) / 1000))
    sample seed_step_health $(((td - tc) / 1000))
    sample seed_step_route $(((t1 - td) / 1000))
  fi
  snooze 1
  now_us; t0=$NOW
  podman rm -f wi-seed >/dev/null &
  local rp=$! end=$((t0 + 120000000))
  name=""
  until name=$(iface_of_phy "$P1"); [ -n "$name" ]; do now_us; [ "$NOW" -lt "$end" ] || break; snooze 0.01; done
  now_us; home=$NOW
  wait "$rp"
  now_us; t1=$NOW
  [ -n "$name" ] || { err "seed: $P1 not home 120 s after podman rm -f"; return 1; }
  if [ "$timed" = 1 ]; then
    sample release_home_seed $(((home - t0) / 1000))
    sample release_stop_seed $(((t1 - t0) / 1000))
    echo "$name" >>"$D/seed_names"
  fi
  [ "$name" = "$S1" ] || { echo "  $P1 came back as $name: renaming to $S1"; ip link set "$name" down; ip link set "$name" name "$S1"; }
  settle
}
SEED_OPTS=()
echo "== isolate/release: the seed's flow"
seed_cycle 0
for _ in $(seq "$N"); do seed_cycle 1; done
podman rm -f wi-seed >/dev/null 2>&1

# ---- 4. cold activation -----------------------------------------------------------------------
cold_once() {   # cold_once ENGINE TIMED
  local ms
  systemctl reset-failed "$U" 2>/dev/null
  systemctl is-active --quiet "wifi-isolate@$S1.socket" || systemctl start "wifi-isolate@$S1.socket"
  if ms=$("$PROBE" first-reply "$SOCK"); then
    [ "$2" = 1 ] && sample "cold_$1" "$ms"
  else
    err "cold start ($1) gave no answer"
  fi
  systemctl stop "$U"
  wait_for 10 in_host "$S1" || err "cold ($1): $S1 not home"
  settle
}
for eng in podman netns; do
  echo "== cold activation, $eng engine"
  set_engine "$eng"
  cold_once "$eng" 0
  for _ in $(seq "$N"); do cold_once "$eng" 1; done
done

# ---- 3 + 5. connect, footprint (service running) ------------------------------------------------
for eng in podman netns; do
  echo "== connect + footprint, $eng engine"
  set_engine "$eng"
  systemctl reset-failed "$U" 2>/dev/null
  systemctl start "$U" || { err "start for connect ($eng)"; continue; }
  snooze 3
  dpid=$(prop "$S1" MainPID) apid=$(agent_pid)
  echo "  daemon pid $dpid ($(cat "/proc/$dpid/comm" 2>/dev/null)), agent pid $apid ($(cat "/proc/$apid/comm" 2>/dev/null))"
  sample "rss_idle_daemon_$eng" "$(rss_kb "$dpid")"
  sample "rss_idle_agent_$eng" "$(rss_kb "$apid")"
  wpid=$(pgrep -P "$apid" -x wpa_supplicant | head -1)
  [ -n "$wpid" ] && sample "rss_idle_wpa_$eng" "$(rss_kb "$wpid")"
  "$BENCH" load "$SOCK" 4 6 >"$D/load_$eng.out" 2>&1 &
  lp=$! maxd=0 maxa=0
  while kill -0 "$lp" 2>/dev/null; do
    r=$(rss_kb "$dpid"); [ "$r" -gt "$maxd" ] && maxd=$r
    r=$(rss_kb "$apid"); [ "$r" -gt "$maxa" ] && maxa=$r
    snooze 0.1
  done
  wait "$lp"
  cat "$D/load_$eng.out"
  sample "rss_load_daemon_$eng" "$maxd"
  sample "rss_load_agent_$eng" "$maxa"
  "$BENCH" connect "$SOCK" "$AP_WPA2_SSID" "$AP_WPA2_PSK" "$((N + 1))" >"$D/connect_$eng.out" 2>&1 ||
    err "wifi_connect through our endpoint ($eng): $(tail -3 "$D/connect_$eng.out")"
  cat "$D/connect_$eng.out"
  # the first round, in a fresh box (wpa_supplicant just started, a scan needed), is the one
  # comparable with the bare cold start; the later ones reuse the running supplicant's scan
  grep '^CONNECT' "$D/connect_$eng.out" | head -n 1 | while read -r _ w _; do sample "connect_first_$eng" "${w#wall_ms=}"; done
  grep '^CONNECT' "$D/connect_$eng.out" | tail -n +2 | while read -r _ w e _; do
    sample "connect_wall_$eng" "${w#wall_ms=}"; sample "connect_tool_$eng" "${e#elapsed_ms=}"
  done
  systemctl stop "$U"
  wait_for 10 in_host "$S1" || err "$S1 not home after the connect run"
  settle
done

# ---- 3. connect, the bare reference: wpa_supplicant + the same udhcpc, by hand, in a scratch netns
echo "== connect: bare wpa_supplicant + udhcpc in a scratch netns ($S2, $P2)"
wait_for 10 nm_lists "$S2"
nmcli device set "$S2" managed no
ip netns add wi-ref
iw phy "$P2" set netns name wi-ref
cat >/tmp/ref-wpa.conf <<EOF
ctrl_interface=/run/wi-ref-wpa
update_config=0
ap_scan=1
network={
	ssid="$AP_WPA2_SSID"
	psk="$AP_WPA2_PSK"
	key_mgmt=WPA-PSK
}
EOF
# One round inside the netns: wpa_supplicant start → associated (operstate up, 10 ms poll) →
# udhcpc (the agent's options: -t 10 -T 1 -A 3) until the lease → prints the ms.
cat >/tmp/ref-once.sh <<'EOF'
IF=$1
exec {fd}<> <(:)
t0=${EPOCHREALTIME/./}
wpa_supplicant -B -D nl80211 -i "$IF" -c /tmp/ref-wpa.conf -P /run/wi-ref-wpa.pid >/dev/null || exit 1
end=$((t0 + 30000000))
until read -r s <"/sys/class/net/$IF/operstate" && [ "$s" = up ]; do
  [ "${EPOCHREALTIME/./}" -lt "$end" ] || exit 2
  read -rt 0.01 -u "$fd"
done
t1=${EPOCHREALTIME/./}
busybox udhcpc -f -q -n -i "$IF" -t 10 -T 1 -A 3 -s /bin/true >/dev/null 2>&1 || exit 3
t2=${EPOCHREALTIME/./}
echo "$(((t2 - t0) / 1000)) $(((t1 - t0) / 1000))"
kill "$(cat /run/wi-ref-wpa.pid)"
while [ -e /run/wi-ref-wpa.pid ] && kill -0 "$(cat /run/wi-ref-wpa.pid)" 2>/dev/null; do read -rt 0.02 -u "$fd"; done
ip link set "$IF" down
EOF
for i in $(seq 0 "$N"); do
  if out=$(ip netns exec wi-ref bash /tmp/ref-once.sh "$S2"); then
    echo "  ref round $i: total/assoc ms = $out"
    if [ "$i" -gt 0 ]; then sample connect_ref "${out% *}"; sample connect_ref_assoc "${out#* }"; fi
  else
    err "reference connect round $i failed (rc $?)"
  fi
  snooze 1
done
ip netns exec wi-ref iw phy "$P2" set netns 1
ip netns del wi-ref

# ---- sizes ---------------------------------------------------------------------------------------
img_bytes=$(podman image inspect -f '{{.Size}}' "$IMAGE" 2>/dev/null)
deb_bytes=${DEB_BYTES:-}
mb() { awk -v b="$1" 'BEGIN { if (b == "") print "n/a"; else printf "%.1f MB", b / 1e6 }'; }
kbmb() { awk -v k="$(med "$1")" 'BEGIN { if (k == "") print "n/a"; else printf "%.1f", k / 1024 }'; }

# ---- the report ----------------------------------------------------------------------------------
iso_p=$(med isolate_podman) iso_n=$(med isolate_netns) iso_s=$(med isolate_seed)
rel_p=$(med release_home_podman) rel_n=$(med release_home_netns) rel_s=$(med release_home_seed)
con_p=$(med connect_wall_podman) con_n=$(med connect_wall_netns) con_r=$(med connect_ref)
seed_names=$(sort -u "$D/seed_names" 2>/dev/null | paste -sd, -)
{
  echo "Guest: $(nproc) vCPUs (QEMU/TCG), $(awk '/MemTotal/ {printf "%d MB", $2/1024}' /proc/meminfo), kernel $(uname -r), $(podman --version), $(systemctl --version | head -1), wpa_supplicant $(wpa_supplicant -v 2>/dev/null | sed -n 's/^wpa_supplicant v//p'). N = $N rounds per row after one untimed warm-up; cells are median (min–max) in ms."
  echo
  echo "### 1. Isolate: \`systemctl start\` → READY vs the seed's manual flow"
  echo
  echo "| flow | ms | ours / seed | target ≤ 0.50× |"
  echo "|---|---|---|---|"
  echo "| \`systemctl start wifi-isolate@$S1\`, podman engine | $(cell isolate_podman) | $(ratio "$iso_p" "$iso_s") | $(meets "$(awk -v a="$iso_p" -v b="$iso_s" 'BEGIN{ if (b > 0) print a / b }')" 0.5) |"
  echo "| \`systemctl start wifi-isolate@$S1\`, netns engine | $(cell isolate_netns) | $(ratio "$iso_n" "$iso_s") | $(meets "$(awk -v a="$iso_n" -v b="$iso_s" 'BEGIN{ if (b > 0) print a / b }')" 0.5) |"
  echo "| seed: \`podman run -d\` (bridge, \`-p 8080:8080\`${SEED_OPTS[*]:+, ${SEED_OPTS[*]}}) + inspect + \`iw phy set netns\` + agent answers + \`ip route del default\` | $(cell isolate_seed) | 1.00× | |"
  echo
  echo "Seed flow by step: podman run $(cell seed_step_run), inspect $(cell seed_step_inspect), iw phy set netns $(cell seed_step_move), until the agent answers $(cell seed_step_health), route del $(cell seed_step_route). Not counted: \`nmcli device set $S1 managed no\` before it, $(cell seed_nmcli) (ours does the same over D-Bus inside its time)."
  echo
  echo "### 2. Release: \`systemctl stop\` → the interface back in the host under its name"
  echo
  echo "| flow | phy home, ms | command returned, ms | target ≤ 500 ms |"
  echo "|---|---|---|---|"
  echo "| \`systemctl stop\`, podman engine | $(cell release_home_podman) | $(cell release_stop_podman) | $(meets "$rel_p" 500) |"
  echo "| \`systemctl stop\`, netns engine | $(cell release_home_netns) | $(cell release_stop_netns) | $(meets "$rel_n" 500) |"
  echo "| seed: \`podman rm -f\`, phy back by netns death | $(cell release_home_seed) | $(cell release_stop_seed) | (came back as: ${seed_names:-n/a}) |"
  echo
  echo "Ours vs seed (phy home): podman $(ratio "$rel_p" "$rel_s"), netns $(ratio "$rel_n" "$rel_s")."
  echo
  echo "### 3. Connect: WPA2 association + 4-way handshake + DHCP lease"
  echo
  echo "| flow | ms | vs bare | target ≤ 1.10× |"
  echo "|---|---|---|---|"
  for eng in podman netns; do
    f=$(med "connect_first_$eng")
    echo "| first \`wifi_connect\` in a fresh $eng box (wpa_supplicant just started; like for like), n = 1 | $(cell "connect_first_$eng") | $(ratio "$f" "$con_r") | $(meets "$(awk -v a="$f" -v b="$con_r" 'BEGIN{ if (b > 0) print a / b }')" 1.1) |"
  done
  echo "| repeated \`wifi_connect\` through our endpoint, podman box (wall time of the call) | $(cell connect_wall_podman) | $(ratio "$con_p" "$con_r") | (not like for like) |"
  echo "| … the tool's own \`elapsed_ms\`, podman box | $(cell connect_tool_podman) | $(ratio "$(med connect_tool_podman)" "$con_r") | |"
  echo "| repeated \`wifi_connect\` through our endpoint, netns box (wall time of the call) | $(cell connect_wall_netns) | $(ratio "$con_n" "$con_r") | (not like for like) |"
  echo "| … the tool's own \`elapsed_ms\`, netns box | $(cell connect_tool_netns) | $(ratio "$(med connect_tool_netns)" "$con_r") | |"
  echo "| bare: \`wpa_supplicant -B\` start → lease by \`busybox udhcpc\` (same options), scratch netns, second station | $(cell connect_ref) | 1.00× | |"
  echo
  echo "Bare reference, start → associated (operstate up): $(cell connect_ref_assoc). Ours keeps wpa_supplicant running between calls (each round: \`wifi_connect\`, then \`wifi_disconnect\`, 1 s pause); the bare flow starts it each round."
  echo
  echo "### 4. Cold activation: first MCP answer on the idle socket (service stopped, socket listening)"
  echo
  echo "| engine | ms (connect → first answer, \`fullsys-probe first-reply\`) |"
  echo "|---|---|"
  echo "| podman | $(cell cold_podman) |"
  echo "| netns | $(cell cold_netns) |"
  echo
  echo "### 5. Footprint"
  echo
  echo "| process | RSS idle, MB | RSS max under 4 clients calling \`wifi_status\` for 6 s, MB |"
  echo "|---|---|---|"
  echo "| daemon (\`wifi-isolate run\`, MainPID), podman engine | $(kbmb rss_idle_daemon_podman) | $(kbmb rss_load_daemon_podman) |"
  echo "| agent (container init), podman engine | $(kbmb rss_idle_agent_podman) | $(kbmb rss_load_agent_podman) |"
  echo "| daemon, netns engine | $(kbmb rss_idle_daemon_netns) | $(kbmb rss_load_daemon_netns) |"
  echo "| agent (daemon's child), netns engine | $(kbmb rss_idle_agent_netns) | $(kbmb rss_load_agent_netns) |"
  echo "| wpa_supplicant in the box (idle; podman / netns) | $(kbmb rss_idle_wpa_podman) / $(kbmb rss_idle_wpa_netns) | |"
  echo
  for eng in podman netns; do
    echo "Load, $eng: \`$(sed -n 's/^LOAD //p' "$D/load_$eng.out")\`"
    echo
  done
  echo "Agent image \`$IMAGE\`: $(mb "$img_bytes") (podman image inspect .Size). The .deb: $(mb "$deb_bytes")."
  echo
  echo "### Where the time goes (journal of the last timed round, ms after the command)"
  for eng in podman netns; do
    echo
    echo "\`systemctl start\`, $eng engine:"
    echo
    echo "| t | entry |"
    echo "|---|---|"
    cat "$D/journal_start_$eng"
    echo
    echo "\`systemctl stop\`, $eng engine:"
    echo
    echo "| t | entry |"
    echo "|---|---|"
    cat "$D/journal_stop_$eng"
  done
  [ "$ERRORS" -eq 0 ] || { echo; echo "**$ERRORS measurement errors: see logs/test.log.**"; }
} >"$OUT"
cat "$OUT"
[ "$ERRORS" -eq 0 ]
