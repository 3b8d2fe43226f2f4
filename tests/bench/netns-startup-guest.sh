# Guest script of the netns start-up benchmark (tests/bench/netns-startup.sh; run by
# tests/vm/lab/boot-initramfs.sh, busybox sh, the lab env exported). Two builds of the daemon, each with its
# own agent next to it (the daemon runs the `wifi-isolate-agent` beside its own executable):
# /share/variants/old/{wifi-isolate,wifi-isolate-agent} and /share/variants/new/… are copied to
# /opt/old and /opt/new (RAM: the root is a tmpfs; not /tmp or /run, which the box mounts over).
# Round by round, alternating which goes first, `nsbench-round` starts `run STATION --engine
# netns` by hand with its own NOTIFY_SOCKET, times start → READY=1, SIGTERM → the interface back
# in /sys/class/net under its name, and → the daemon's exit. One untimed warm-up each first.
# Writes /share/rounds.txt: "variant round order key=value…" (ms); the daemon logs of the last
# round go to /share/logs/. /share/bench.conf: N, SETTLE_MS, PAUSE_MS.
set -eu
. /share/bench.conf
iface=${STATIONS%% *}
for v in old new; do
  mkdir -p "/opt/$v"
  cp "/share/variants/$v/wifi-isolate" "/share/variants/$v/wifi-isolate-agent" "/opt/$v/"
  chmod 0755 "/opt/$v/wifi-isolate" "/opt/$v/wifi-isolate-agent"
done
out=/run/nsbench/rounds.txt
mkdir -p /run/nsbench
: > "$out"
echo "station $iface; N=$N settle=${SETTLE_MS} ms pause=${PAUSE_MS} ms; $(nproc) vCPUs; $(uname -r)"
echo "old: $(cat /share/variants/old/label)"
echo "new: $(cat /share/variants/new/label)"
fails=0
one() {  # one VARIANT ROUND ORDER
  log="/run/nsbench/daemon-$1.log"
  if line=$(nsbench-round "/opt/$1/wifi-isolate" "$iface" "$log" "$SETTLE_MS"); then :; else
    fails=$((fails + 1)); echo "FAILED round: $1 $2: $line"; tail -n 20 "$log"
  fi
  echo "$1 $2 $3 $line" | tee -a "$out"
  usleep $((PAUSE_MS * 1000))
}
one old 0 1; one new 0 2   # warm-up (reported as round 0, not counted)
i=1
while [ $i -le "$N" ]; do
  if [ $((i % 2)) = 1 ]; then one old $i 1; one new $i 2; else one new $i 1; one old $i 2; fi
  i=$((i + 1))
done
cp "$out" /share/rounds.txt
cp /run/nsbench/daemon-*.log /share/logs/
echo "failed rounds: $fails"
[ "$fails" = 0 ]
