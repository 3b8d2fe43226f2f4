#!/bin/bash
# Faults on a real systemd + udev + NetworkManager + podman system (issue 6, scenario 4), then
# start/stop cycles (scenario 6): WI_PODMAN_CYCLES (10) with podman boxes, then WI_CYCLES (100)
# with the built-in netns box (under TCG a podman cycle costs ~4.5 s, a netns one ~1.5 s). After each fault the invariant holds: active with the phy in its
# box, or home with the unit inactive/failed — never lost, never in the host with routes, no
# leaked containers. The unplug comes last (the radio is gone afterwards).
set -u
. /share/fullsys-lib.sh
S1=${STA[0]} P1=${PHY[0]}
U1=$(unit "$S1")
CYCLES=${WI_CYCLES:-100}

systemctl start podman.socket
fake_uplink
take_baseline
mounts0=$(mounts_of_ours)
check "enable $S1 --now" wifi-isolate enable "$S1" --now
invariant "$S1" "isolated"
mounts_active=$(mounts_of_ours)

# Each fault is its own story: the unit's start rate limit (5 starts in 60 s, a crash loop's
# brake) is reset between them, as an admin would after looking.
fresh() { systemctl reset-failed "$U1"; }
box_id() { podman inspect -f '{{.Id}}' "wifi-isolate-$1" 2>/dev/null; }
restarts() { prop "$S1" NRestarts; }
main_pid() { prop "$S1" MainPID; }
# back_again OLD_BOX: the unit recovered on its own into a new box.
back_again() { active_isolated "$S1" && [ "$(box_id "$S1")" != "$1" ]; }
answers() { "$PROBE" call "/run/wifi-isolate/$S1.sock" "${1:-wifi_status}"; }

# --- the box killed from outside ---------------------------------------------------------------
old=$(box_id "$S1")
t0=$(ms)
podman kill "wifi-isolate-$S1" >/dev/null
check "podman kill: the service recovers into a new box" wait_for 90 back_again "$old"
echo "FAULT podman kill: isolated again after $(($(ms) - t0)) ms (restarts: $(restarts))"
trace "podman kill → restarted"
invariant "$S1" "after podman kill"
check "after podman kill: MCP answers" answers

fresh
# --- the agent killed --------------------------------------------------------------------------
old=$(box_id "$S1")
pkill -KILL -x wifi-isolate-ag
check "agent SIGKILL: the service recovers into a new box" wait_for 90 back_again "$old"
trace "agent killed → restarted"
invariant "$S1" "after the agent was killed"

fresh
# --- wpa_supplicant in the box killed: the agent restarts it, the service stays up --------------
old=$(box_id "$S1") pid=$(main_pid)
hostns=$(readlink /proc/1/ns/net)
for p in $(pgrep -x wpa_supplicant); do
  [ "$(readlink "/proc/$p/ns/net")" != "$hostns" ] && kill -KILL "$p"
done
sleep 3
check "wpa_supplicant killed: same box, same daemon" test "$(box_id "$S1")/$(main_pid)" = "$old/$pid"
check "wpa_supplicant killed: a scan works again" wait_for 30 answers wifi_scan
invariant "$S1" "after wpa_supplicant was killed"

fresh
# --- the daemon SIGKILLed: the restart cleans up what it left and isolates afresh ---------------
old=$(box_id "$S1")
systemctl kill --kill-who=main -s KILL "$U1"
check "daemon SIGKILL: restarted into a new box" wait_for 90 back_again "$old"
trace "daemon SIGKILL → restarted"
invariant "$S1" "after the daemon was killed"
check "after the daemon was killed: MCP answers" answers

fresh
# --- NetworkManager restarted mid-isolation -----------------------------------------------------
pid=$(main_pid)
systemctl restart NetworkManager
sleep 5
check "NM restart: same daemon, still active" test "$(main_pid)/$(prop "$S1" ActiveState)" = "$pid/active"
check "NM restart: NM does not see $S1" bash -c "! nmcli -t -f DEVICE device | grep -qx $S1"
invariant "$S1" "after NetworkManager restarted"

fresh
# --- the podman service restarted ---------------------------------------------------------------
pid=$(main_pid) old=$(box_id "$S1")
systemctl restart podman.service 2>/dev/null || systemctl restart podman.socket
sleep 3
check "podman restart: same daemon, same box" test "$(main_pid)/$(box_id "$S1")" = "$pid/$old"
check "podman restart: MCP answers" answers
invariant "$S1" "after podman restarted"

fresh
# --- a second instance for the same phy ---------------------------------------------------------
pid=$(main_pid)
systemctl start "wifi-isolate@$P1.service" 2>/dev/null
sleep 4
journalctl -b -u "wifi-isolate@$P1.service" --no-pager -o cat | tail -3
check "second instance ($P1) refused: not active" bash -c "! systemctl is-active --quiet wifi-isolate@$P1.service"
check "second instance said who holds it" bash -c "journalctl -b -u wifi-isolate@$P1.service -o cat | grep -q 'isolated by instance $S1'"
systemctl stop "wifi-isolate@$P1.service" "wifi-isolate@$P1.socket" 2>/dev/null
systemctl reset-failed "wifi-isolate@$P1.service" 2>/dev/null
check "the first instance untouched" test "$(main_pid)/$(prop "$S1" ActiveState)" = "$pid/active"
invariant "$S1" "after a second instance tried"

fresh
# --- start/stop cycles: podman, then the built-in netns box ----------------------------------
fds() { ls /proc/1/fd | wc -l; }
cycles() {   # cycles N LABEL
  local n=$1 label=$2 failed=0 t0; t0=$(ms)
  for i in $(seq "$n"); do
    fresh
    systemctl stop --quiet "$U1" && in_host "$S1" && systemctl start "$U1" && active_isolated "$S1" ||
      { failed=$((failed + 1)); echo "cycle $i failed"; systemctl status --no-pager "$U1" | tail -5; }
  done
  echo "CYCLES: $n stop/start cycles ($label) in $(($(ms) - t0)) ms"
  check "$n stop/start cycles ($label) all succeeded" test "$failed" = 0
}
fd0=$(fds)
cycles "${WI_PODMAN_CYCLES:-10}" podman
leftovers="$(containers "$S1") container(s), $(ip netns list | grep -Evc '^(uplink|ap-)') netns, $(mounts_of_ours) mounts"
check "after the podman cycles: $leftovers (want 1, 0, $mounts_active as after the first start)" \
  test "$leftovers" = "1 container(s), 0 netns, $mounts_active mounts"
mkdir -p /etc/wifi-isolate/instance.d
printf '[engine]\nkind = "netns"\n' >"/etc/wifi-isolate/instance.d/$S1.toml"
systemctl stop --quiet "$U1"
check "stopped: no container, no netns box state, no agent left" \
  test "$(containers "$S1")/$(ls -A /run/wifi-isolate/.netns 2>/dev/null | wc -l)/$(pgrep -c wifi-isolate-ag)" = "0/0/0"
mounts_home=$(mounts_of_ours)
systemctl start "$U1"
check "netns box: active" active_isolated "$S1"
# Under the unit (Delegate=) the netns box has a cgroup of its own with the engine's limits, the
# agent in it, the daemon beside it in supervisor/ (cgroup v2: processes only in leaves).
unit_cg=$(systemctl show -P ControlGroup "$U1")
box_agent=$(sed -n 's/.*"pid":\([0-9]*\).*/\1/p' "/run/wifi-isolate/.netns/$S1.json" || true)
box_cg="$(cat "/sys/fs/cgroup$unit_cg/box/memory.max" 2>&1 || true)/$(cat "/sys/fs/cgroup$unit_cg/box/pids.max" 2>&1 || true)"
echo "netns box cgroup: $unit_cg/box memory.max/pids.max = $box_cg; agent $box_agent in $(sed -n 's/^0:://p' "/proc/$box_agent/cgroup")"
check "netns box: its own cgroup with limits ($box_cg), the agent in it, the daemon in supervisor/" \
  test "$(sed -n 's/^0:://p' "/proc/$box_agent/cgroup")|$(sed -n 's/^0:://p' "/proc/$(systemctl show -P MainPID "$U1")/cgroup")|$box_cg" = \
       "$unit_cg/box|$unit_cg/supervisor|$((256 * 1024 * 1024))/128"
cycles "$CYCLES" netns
systemctl stop --quiet "$U1"
check "after the netns cycles, stopped: no netns box state, no agent, no extra mounts" \
  test "$(ls -A /run/wifi-isolate/.netns 2>/dev/null | wc -l)/$(pgrep -c wifi-isolate-ag)/$(mounts_of_ours)" = "0/0/$mounts_home"
fd1=$(fds)
check "after the cycles: systemd's fds did not grow ($fd0 → $fd1)" test "$fd1" -le $((fd0 + 5))
fresh
systemctl start "$U1"
invariant "$S1" "after the cycles"

# --- unplug: the radio deleted while in the box ---------------------------------------------------
p=$(box_pid "$S1")
check "unplug $P1 (HWSIM_CMD_DEL_RADIO in the box)" "$PROBE" del-radio "/proc/$p/ns/net" "$P1"
check "unplug: the unit stops cleanly (exit 0, no restart)" wait_for 30 bash -c "[ \"\$(systemctl show -p ActiveState --value $U1)\" = inactive ]"
check "unplug: no container left" test "$(containers "$S1")" = 0
check "unplug: host routes/addresses unchanged" same_host
trace "radio unplugged"
check "no mounts of ours left" test "$(mounts_of_ours)" = "$mounts0"
dump_on_fail
finish
