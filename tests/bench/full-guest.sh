#!/bin/bash
# Guest script of the full-system benchmark (tests/bench/full.sh): the installed .deb on Debian
# with systemd, NetworkManager and podman, hwsim radios, one WPA2 AP, two stations.
# After one untimed warm-up round, WI_BENCH_N rounds; each round runs every flow once, so ours and
# its references are measured side by side and their ratios are taken within the round (paired).
# Cells are median [lo, hi]: a distribution-free interval of the median from order statistics
# (coverage printed; ≥ 90 % once N ≥ 5); a target is met only when the interval's far end is
# inside it. Writes /share/bench-full.md and /share/bench-raw.txt (every sample, with its round).
# Not a test: it fails only when a measurement cannot be made.
#   1 isolate     systemctl start (Type=notify → READY) podman / netns  vs  the seed's manual flow,
#                 and the fixed references: bare `podman run --network none` of the same image,
#                 a bare netns spawn of the agent (unshare --net + iw phy set netns + it answers)
#   2 release     systemctl stop → phy home (10 ms poll)                vs  podman rm -f + netns death
#   3 connect     wifi_connect WPA2 over the endpoint                    vs  bare wpa_supplicant + udhcpc
#   4 cold        first MCP answer on the idle socket (service stopped)  vs  systemctl start + the
#                 same first answer; the journal's milestones of both, per round
#   5 footprint   RSS of daemon and agent, idle and under 4 clients; image and .deb size
set -u
. /share/fullsys-lib.sh
N=${WI_BENCH_N:-8}
S1=${STA[0]} S2=${STA[1]} P1=${PHY[0]} P2=${PHY[1]}
U=$(unit "$S1")
SOCK=/run/wifi-isolate/$S1.sock
IMAGE=localhost/wifi-isolate-agent:latest
BENCH=${BENCH:-/share/bin/fullsys-bench}
AGENT=${AGENT:-/usr/bin/wifi-isolate-agent}
OUT=/share/bench-full.md
RAW=/share/bench-raw.txt
D=/tmp/bench
rm -rf "$D"; mkdir -p "$D"; : >"$RAW"
ERRORS=0
ROUND=0
err() { ERRORS=$((ERRORS + 1)); echo "ERROR $*"; }

# Clock without forks: microseconds since the epoch (bash 5's EPOCHREALTIME).
now_us() { NOW=${EPOCHREALTIME/./}; }
# A sleep without a fork (read with a timeout on a pipe nobody writes).
exec {SNOOZE_FD}<> <(:)
snooze() { read -rt "$1" -u "$SNOOZE_FD" || true; }
# sample NAME VALUE: one measurement of round ROUND ("ROUND VALUE" lines in $D/NAME).
sample() { echo "$ROUND $2" >>"$D/$1"; echo "$1 $ROUND $2" >>"$RAW"; echo "  $1 = $2"; }
# pair A B OP NAME: the per-round A/B ("ratio") or A−B ("diff") of the rounds both have, as NAME.
pair() {
  [ -s "$D/$1" ] && [ -s "$D/$2" ] || return 0
  join <(sort -k1,1 "$D/$1") <(sort -k1,1 "$D/$2") |
    awk -v op="$3" '{ if (op == "ratio") { if ($3 > 0) printf "%s %.4f\n", $1, $2 / $3 } else printf "%s %g\n", $1, $2 - $3 }' >"$D/$4"
}
# stat NAME: "median|lo|hi|n|coverage" — the median of the samples and its distribution-free
# interval [x(k), x(n+1-k)] for the largest k whose coverage 1 − 2·P(Bin(n, ½) ≤ k−1) is ≥ 90 %
# (k = 1, min–max, below n = 5: its coverage is then printed as it is, < 90 %).
stat() {
  [ -s "$D/$1" ] || { echo "||||"; return; }
  awk '{print $2}' "$D/$1" | sort -g | awk '{a[NR]=$1} END {
    n = NR; m = (n % 2) ? a[(n + 1) / 2] : (a[n / 2] + a[n / 2 + 1]) / 2
    k = 1; cov = 1 - 2 * cdf(n, 0)
    for (j = 2; 2 * j <= n + 1; j++) { c = 1 - 2 * cdf(n, j - 1); if (c >= 0.90) { k = j; cov = c } else break }
    printf "%g|%g|%g|%d|%.1f", m, a[k], a[n + 1 - k], n, 100 * cov }
    function cdf(n, j,   i, c, s) { c = 1; s = 0; for (i = 0; i <= j; i++) { s += c; c = c * (n - i) / (i + 1) } return s / 2 ^ n }'
}
med() { local s; s=$(stat "$1"); echo "${s%%|*}"; }
hi_of() { local m lo hi n c; IFS='|' read -r m lo hi n c <<<"$(stat "$1")"; echo "$hi"; }
lo_of() { local m lo hi n c; IFS='|' read -r m lo hi n c <<<"$(stat "$1")"; echo "$lo"; }
# cell NAME [FMT]: "median [lo, hi]" for a table (FMT: printf format of each number, %g).
cell() {
  local m lo hi n c f=${2:-%g}; IFS='|' read -r m lo hi n c <<<"$(stat "$1")"
  [ -z "$n" ] && { echo "n/a"; return; }
  [ "$n" = 1 ] && { printf "$f (n = 1)" "$m"; return; }
  printf "$f [$f, $f]" "$m" "$lo" "$hi"
}
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { if (a == "" || b == "" || b == 0) print "n/a"; else printf "%.2f×", a / b }'; }
xcell() { cell "$1" '%.2f×'; }
# verdict NAME TARGET: met when the interval's far end is ≤ TARGET, missed when its near end is
# above it, else not shown either way.
verdict() {
  local m lo hi n c; IFS='|' read -r m lo hi n c <<<"$(stat "$1")"
  [ -z "$n" ] && { echo "n/a"; return; }
  awk -v lo="$lo" -v hi="$hi" -v t="$2" -v n="$n" 'BEGIN {
    if (n < 2) print "(n = 1: not judged)"; else if (hi <= t) print "**met**"; else if (lo > t) print "**missed**"; else print "not shown (interval spans the target)" }'
}
coverage() { local m lo hi n c; IFS='|' read -r m lo hi n c <<<"$(stat "$1")"; echo "${c:-n/a}"; }
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
# milestones T0_US ANSWERED_US: the ms after T0 of the unit's start-up milestones in the journal
# (systemd's "Starting", the daemon's "starting", "box started", "phy moved into the box", the
# READY line "agent ready", systemd's "Started") and of ANSWERED_US, space-separated ("-" if absent).
milestones() {
  local t0=$1 ans=$2
  journalctl --no-pager -o short-unix --since "@$((t0 / 1000000))" -u "$U" 2>/dev/null |
    awk -v t0="$t0" -v ans="$ans" '
      $1 ~ /^[0-9]+\.[0-9]+$/ { d = ($1 * 1000000 - t0) / 1000; if (d < 0) next
        if (!("sys" in m) && / systemd\[1\]: Starting /) m["sys"] = d
        else if (!("start" in m) && /: starting$/) m["start"] = d
        else if (!("box" in m) && /box started/) m["box"] = d
        else if (!("moved" in m) && /phy moved into the box/) m["moved"] = d
        else if (!("ready" in m) && /agent ready/) m["ready"] = d
        else if (!("up" in m) && / systemd\[1\]: Started /) m["up"] = d }
      END { n = split("sys start box moved ready up", k, " ")
        for (i = 1; i <= n; i++) printf "%s ", (k[i] in m) ? sprintf("%d", m[k[i]]) : "-"
        printf "%d\n", (ans - t0) / 1000 }'
}
MILESTONES="sys start box moved ready up answer"
settle() { snooze 2; }

echo "== setup (N=$N)"
systemctl start podman.socket
podman images >/dev/null 2>&1   # the first podman call is slow under TCG; not part of any number
systemctl start "wifi-isolate@$S1.socket"
echo "stations: $S1 ($P1) for the isolation, $S2 ($P2) for the bare reference"

# ---- 1+2+4. isolate and release, ours (with the first answer after READY) ------------------------
ours_cycle() {   # ours_cycle ENGINE TIMED
  local eng=$1 timed=$2 t0 t1 t2 home out
  systemctl reset-failed "$U" 2>/dev/null
  now_us; t0=$NOW
  if ! systemctl start "$U"; then err "systemctl start $U ($eng)"; return 1; fi
  now_us; t1=$NOW
  # The same first MCP answer the cold activation waits for, on the freshly started box: its own
  # ms (from its connect; the client's exec is not counted) added to the start's gives the
  # direct path's "start → first answer", the cold row's like for like.
  out=$("$BENCH" first-answer "$SOCK") || err "$eng: no first answer after start"
  active_isolated "$S1" || err "$eng: not isolated after start"
  if [ "$timed" = 1 ]; then
    sample "isolate_$eng" $(((t1 - t0) / 1000))
    local own=${out#*ms=}; own=${own%% *}
    sample "direct_answer_$eng" $(((t1 - t0) / 1000 + own))
    local ans=${out#*answered_us=} t0c=${out#*t0_us=}; t0c=${t0c%% *}
    echo "$ROUND $t0 $((t1 + ans - t0c))" >>"$D/at_direct_$eng"
    declare -g "JS_$eng=$t0"
  fi
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
    declare -g "JT_$eng=$t0"
  fi
  settle
}

# ---- 4. cold activation: the first answer on the idle socket --------------------------------------
cold_once() {   # cold_once ENGINE TIMED
  local eng=$1 out
  systemctl reset-failed "$U" 2>/dev/null
  systemctl is-active --quiet "wifi-isolate@$S1.socket" || systemctl start "wifi-isolate@$S1.socket"
  # The previous round's `systemctl stop` held the adapter (a held instance answers 503 to a
  # client instead of isolating): the state of a socket that was never stopped by a user, as after
  # boot, is "no hold".
  rm -f "/run/wifi-isolate/hold/$S1"
  if out=$("$BENCH" first-answer "$SOCK"); then
    if [ "$2" = 1 ]; then
      local ms=${out#*ms=} t0=${out#*t0_us=} ans=${out#*answered_us=}
      ms=${ms%% *} t0=${t0%% *}
      sample "cold_$eng" "$ms"
      echo "$ROUND $t0 $ans" >>"$D/at_cold_$eng"
      declare -g "JC_$eng=$t0"
    fi
  else
    err "cold start ($eng) gave no answer"
  fi
  active_isolated "$S1" || err "cold ($eng): not isolated after the answer"
  systemctl stop "$U"
  wait_for 10 in_host "$S1" || err "cold ($eng): $S1 not home"
  settle
}

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

# ---- 1. the fixed references --------------------------------------------------------------------
# A bare `podman run -d --network none` of the same image (its entrypoint, the agent, with the
# arguments our engine gives it): until podman returns, i.e. the container's process runs.
ref_podman_cycle() {   # ref_podman_cycle TIMED
  local t0 t1
  podman rm -f wi-refp >/dev/null 2>&1
  now_us; t0=$NOW
  if ! podman run -d --name wi-refp --network none "${SEED_OPTS[@]}" "$IMAGE" \
      --listen unix:/tmp/mcp.sock --interface "$S1" --runtime-dir /tmp/wi >/dev/null; then
    err "ref: podman run --network none"; return 1
  fi
  now_us; t1=$NOW
  [ "$1" = 1 ] && sample ref_podman_run $(((t1 - t0) / 1000))
  podman rm -f wi-refp >/dev/null 2>&1
}
# A bare netns spawn of the agent: `unshare --net` + the agent (as root, no sandbox, no systemd,
# no NetworkManager), `iw phy … set netns` into it, until its socket answers the daemon's own
# readiness request (5 ms poll by fullsys-bench, started before the spawn). Steps: spawn → the
# new netns exists; the bare `iw phy set netns`; moved → the agent answers.
ref_netns_cycle() {   # ref_netns_cycle TIMED
  local t0 ta tb wp ap ms dir=/run/wi-refns
  rm -rf "$dir"; mkdir -p "$dir"
  wait_for 10 nm_lists "$S1" && nmcli device set "$S1" managed no
  now_us; t0=$NOW
  "$BENCH" wait "$dir/mcp.sock" "$t0" 30 >"$D/refns.out" 2>&1 &
  wp=$!
  unshare --net "$AGENT" --listen "unix:$dir/mcp.sock" --interface "$S1" --runtime-dir "$dir/rt" \
    >"$D/refns-agent.log" 2>&1 &
  ap=$!
  local end=$((t0 + 10000000))
  while [ /proc/$ap/ns/net -ef /proc/$$/ns/net ]; do now_us; [ "$NOW" -lt "$end" ] || break; snooze 0.002; done
  now_us; ta=$NOW
  iw phy "$P1" set netns "$ap" || err "ref: iw phy set netns (bare netns)"
  now_us; tb=$NOW
  if wait "$wp"; then
    ms=$(cat "$D/refns.out")
    if [ "$1" = 1 ]; then
      sample ref_netns $ms
      sample ref_netns_spawn $(((ta - t0) / 1000))
      sample ref_iw_move $(((tb - ta) / 1000))
      sample ref_netns_agent $((ms - (tb - t0) / 1000))
    fi
  else
    err "ref: the bare agent never answered: $(tail -3 "$D/refns-agent.log")"
  fi
  # Home: the phy out explicitly, then the agent and its wpa_supplicant.
  nsenter -t "$ap" -n iw phy "$P1" set netns 1 2>/dev/null
  pkill -TERM -P "$ap" 2>/dev/null; kill -TERM "$ap" 2>/dev/null; wait "$ap" 2>/dev/null
  wait_for 10 in_host "$S1" || err "ref: $S1 not home after the bare netns spawn"
  settle
}

# ---- the rounds -----------------------------------------------------------------------------------
# Every flow once per round, the warm-up round (0) untimed; pairs are taken within a round.
SEED_OPTS=()
one_round() {   # one_round TIMED
  local t=$1
  echo "== round $ROUND: ours, podman engine";  set_engine podman; ours_cycle podman "$t"
  echo "== round $ROUND: the seed's flow";      seed_cycle "$t"
  echo "== round $ROUND: bare podman run";      ref_podman_cycle "$t"
  echo "== round $ROUND: ours, netns engine";   set_engine netns; ours_cycle netns "$t"
  echo "== round $ROUND: bare netns spawn";     ref_netns_cycle "$t"
  echo "== round $ROUND: cold, podman engine";  set_engine podman; cold_once podman "$t"
  echo "== round $ROUND: cold, netns engine";   set_engine netns; cold_once netns "$t"
}
ROUND=0; one_round 0
for ROUND in $(seq "$N"); do one_round 1; done
podman rm -f wi-seed wi-refp >/dev/null 2>&1
# The last round's journals (the start-up tables; the cold activation's), and every round's
# milestones (read now: journald writes asynchronously).
for eng in podman netns; do
  js=JS_$eng jt=JT_$eng jc=JC_$eng
  [ -n "${!js:-}" ] && journal_since "${!js}" -u "$U" -u podman.service | head -40 >"$D/journal_start_$eng"
  [ -n "${!jt:-}" ] && journal_since "${!jt}" -u "$U" -u podman.service | head -30 >"$D/journal_stop_$eng"
  [ -n "${!jc:-}" ] && journal_since "${!jc}" -u "$U" -u "wifi-isolate@$S1.socket" -u podman.service | head -40 >"$D/journal_cold_$eng"
  for mode in direct cold; do
    [ -s "$D/at_${mode}_$eng" ] || continue
    while read -r r t0 ans; do echo "$r $(milestones "$t0" "$ans")"; done <"$D/at_${mode}_$eng" >"$D/ms_${mode}_$eng"
  done
done
# Paired series: ours over the seed, ours over the bare references, cold over direct.
for eng in podman netns; do
  pair "isolate_$eng" isolate_seed ratio "x_seed_$eng"
  pair "cold_$eng" "direct_answer_$eng" diff "d_cold_$eng"
  pair "cold_$eng" "direct_answer_$eng" ratio "x_cold_$eng"
  pair "release_home_$eng" release_home_seed ratio "x_release_$eng"
done
pair isolate_podman ref_podman_run diff d_podman_ref
pair isolate_podman ref_podman_run ratio x_podman_ref
pair isolate_netns ref_netns diff d_netns_ref
pair isolate_netns ref_netns ratio x_netns_ref
pair isolate_podman isolate_netns diff d_podman_netns
# Milestones as samples (per round), and cold − direct per milestone.
for mode in direct cold; do
  for eng in podman netns; do
    [ -s "$D/ms_${mode}_$eng" ] || continue
    i=2
    for m in $MILESTONES; do
      awk -v c="$i" '$c != "-" {print $1, $c}' "$D/ms_${mode}_$eng" >"$D/m_${mode}_${eng}_$m"
      i=$((i + 1))
    done
  done
done
for eng in podman netns; do
  prev=""
  for m in $MILESTONES; do
    for mode in direct cold; do
      if [ -n "$prev" ]; then pair "m_${mode}_${eng}_$m" "m_${mode}_${eng}_$prev" diff "s_${mode}_${eng}_$m"
      else cp "$D/m_${mode}_${eng}_$m" "$D/s_${mode}_${eng}_$m" 2>/dev/null; fi
    done
    pair "s_cold_${eng}_$m" "s_direct_${eng}_$m" diff "sd_${eng}_$m"
    prev=$m
  done
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
seed_names=$(sort -u "$D/seed_names" 2>/dev/null | paste -sd, -)
ms_row() {   # ms_row ENGINE MODE LABEL: a milestone row, ms after T0 (median [interval])
  local eng=$1 mode=$2 m row="| $3 |"
  for m in $MILESTONES; do row="$row $(cell "m_${mode}_${eng}_$m") |"; done
  echo "$row"
}
{
  echo "Guest: $(nproc) vCPUs (QEMU/TCG), $(awk '/MemTotal/ {printf "%d MB", $2/1024}' /proc/meminfo), kernel $(uname -r), $(podman --version), $(systemctl --version | head -1), wpa_supplicant $(wpa_supplicant -v 2>/dev/null | sed -n 's/^wpa_supplicant v//p')."
  echo
  echo "N = $N rounds after one untimed warm-up round; each round runs every flow once (ours, the seed, the bare references, cold activation), so ratios and differences are taken within a round and then summarised. Cells: median [lo, hi] in ms — lo/hi are order statistics forming a distribution-free interval of the median with coverage $(coverage isolate_seed) % at this N (≥ 90 % from N = 5; below that it is min–max). A target is **met** only when the interval's far end is inside it."
  echo
  echo "### 1. Isolate: \`systemctl start\` → READY vs the seed's manual flow and the bare references"
  echo
  echo "| flow | ms | ours / seed (paired) | target ≤ 0.50× |"
  echo "|---|---|---|---|"
  echo "| \`systemctl start wifi-isolate@$S1\`, podman engine | $(cell isolate_podman) | $(xcell x_seed_podman) | $(verdict x_seed_podman 0.5) |"
  echo "| \`systemctl start wifi-isolate@$S1\`, netns engine | $(cell isolate_netns) | $(xcell x_seed_netns) | $(verdict x_seed_netns 0.5) |"
  echo "| seed: \`podman run -d\` (bridge, \`-p 8080:8080\`${SEED_OPTS[*]:+, ${SEED_OPTS[*]}}) + inspect + \`iw phy set netns\` + agent answers + \`ip route del default\` | $(cell isolate_seed) | 1.00× | |"
  echo
  echo "Seed flow by step: podman run $(cell seed_step_run), inspect $(cell seed_step_inspect), iw phy set netns $(cell seed_step_move), until the agent answers $(cell seed_step_health), route del $(cell seed_step_route). Not counted: \`nmcli device set $S1 managed no\` before it, $(cell seed_nmcli) (ours does the same over D-Bus inside its time)."
  echo
  echo "**Fixed references** (same rounds; they do not carry the seed's bridge, port mapping and Go CLI start):"
  echo
  echo "| reference | ms | ours − reference, ms (paired) | ours / reference (paired) |"
  echo "|---|---|---|---|"
  echo "| bare \`podman run -d --network none\` of the same image, until podman returns (its process runs) — vs ours, podman engine | $(cell ref_podman_run) | $(cell d_podman_ref) | $(xcell x_podman_ref) |"
  echo "| bare netns spawn: \`unshare --net\` + the agent, \`iw phy set netns\` into it, until its socket answers — vs ours, netns engine | $(cell ref_netns) | $(cell d_netns_ref) | $(xcell x_netns_ref) |"
  echo "| … of it: spawn → netns exists | $(cell ref_netns_spawn) | | |"
  echo "| … of it: the bare \`iw phy $P1 set netns PID\` | $(cell ref_iw_move) | | |"
  echo "| … of it: moved → the agent answers (it finds the interface, starts wpa_supplicant, listens) | $(cell ref_netns_agent) | | |"
  echo
  echo "Podman engine − netns engine, paired: $(cell d_podman_netns) ms."
  echo
  echo "### 2. Release: \`systemctl stop\` → the interface back in the host under its name"
  echo
  echo "| flow | phy home, ms | command returned, ms | ours / seed (phy home, paired) | target ≤ 500 ms |"
  echo "|---|---|---|---|---|"
  echo "| \`systemctl stop\`, podman engine | $(cell release_home_podman) | $(cell release_stop_podman) | $(xcell x_release_podman) | $(verdict release_home_podman 500) |"
  echo "| \`systemctl stop\`, netns engine | $(cell release_home_netns) | $(cell release_stop_netns) | $(xcell x_release_netns) | $(verdict release_home_netns 500) |"
  echo "| seed: \`podman rm -f\`, phy back by netns death | $(cell release_home_seed) | $(cell release_stop_seed) | 1.00× | (came back as: ${seed_names:-n/a}) |"
  echo
  echo "### 3. Connect: WPA2 association + 4-way handshake + DHCP lease"
  echo
  echo "| flow | ms | vs bare (medians) | target ≤ 1.10× |"
  echo "|---|---|---|---|"
  for eng in podman netns; do
    f=$(med "connect_first_$eng")
    echo "| first \`wifi_connect\` in a fresh $eng box (wpa_supplicant just started; like for like) | $(cell "connect_first_$eng") | $(ratio "$f" "$(med connect_ref)") | (n = 1: against the bare interval $(cell connect_ref)) |"
  done
  echo "| repeated \`wifi_connect\` through our endpoint, podman box (wall time of the call) | $(cell connect_wall_podman) | $(ratio "$(med connect_wall_podman)" "$(med connect_ref)") | (not like for like) |"
  echo "| … the tool's own \`elapsed_ms\`, podman box | $(cell connect_tool_podman) | | |"
  echo "| repeated \`wifi_connect\` through our endpoint, netns box (wall time of the call) | $(cell connect_wall_netns) | $(ratio "$(med connect_wall_netns)" "$(med connect_ref)") | (not like for like) |"
  echo "| … the tool's own \`elapsed_ms\`, netns box | $(cell connect_tool_netns) | | |"
  echo "| bare: \`wpa_supplicant -B\` start → lease by \`busybox udhcpc\` (same options), scratch netns, second station | $(cell connect_ref) | 1.00× | |"
  echo
  echo "Bare reference, start → associated (operstate up): $(cell connect_ref_assoc). Ours keeps wpa_supplicant running between calls (each round: \`wifi_connect\`, then \`wifi_disconnect\`, 1 s pause); the bare flow starts it each round."
  echo
  echo "### 4. Cold activation: first MCP answer on the idle socket vs a direct start + the same answer"
  echo
  echo "Cold: service stopped, socket listening; \`fullsys-bench first-answer\` (a hand-written HTTP \`initialize\`) from its connect to the result. Direct: \`systemctl start\` → READY, then the same request on the fresh box (its own connect → result added; the client's exec not counted)."
  echo
  echo "| engine | cold, ms | direct start + first answer, ms | cold − direct, ms (paired) | target ≤ +50 ms |"
  echo "|---|---|---|---|---|"
  for eng in podman netns; do
    echo "| $eng | $(cell "cold_$eng") | $(cell "direct_answer_$eng") | $(cell "d_cold_$eng") | $(verdict "d_cold_$eng" 50) |"
  done
  echo
  echo "Milestones (journal, ms after the client's connect / after \`systemctl start\`): systemd's \"Starting\", the daemon's \"starting\", \"box started\", \"phy moved into the box\", the READY line (\"agent ready\"), systemd's \"Started\", the answer."
  echo
  echo "| flow | Starting | starting | box started | phy moved | agent ready | Started | answer |"
  echo "|---|---|---|---|---|---|---|---|"
  for eng in podman netns; do
    ms_row "$eng" cold "cold, $eng"
    ms_row "$eng" direct "direct, $eng"
    row="| step cold − direct (paired), $eng |"
    for m in $MILESTONES; do row="$row $(cell "sd_${eng}_$m") |"; done
    echo "$row"
  done
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
  echo "### Where the time goes (journal of the last timed round, ms after the command / the client's connect)"
  for eng in podman netns; do
    for what in start stop cold; do
      echo
      case $what in
        start) echo "\`systemctl start\`, $eng engine:" ;;
        stop) echo "\`systemctl stop\`, $eng engine:" ;;
        cold) echo "Cold activation, $eng engine:" ;;
      esac
      echo
      echo "| t | entry |"
      echo "|---|---|"
      cat "$D/journal_${what}_$eng" 2>/dev/null
    done
  done
  [ "$ERRORS" -eq 0 ] || { echo; echo "**$ERRORS measurement errors: see logs/test.log.**"; }
} >"$OUT"
cat "$OUT"
# Every sample and journal excerpt behind the report, for reading after the VM is gone.
mkdir -p /share/logs && cp -r "$D" /share/logs/bench-data
[ "$ERRORS" -eq 0 ]
