#!/bin/sh
# proxy-cpu.sh — what the proxy itself costs, with no agent and no radio: one stand-in upstream,
# loaded directly, through wifi-isolate's proxy and through systemd-socket-proxyd, at 1 and 64
# clients (one connection per request, like rmcp's Unix-socket client). Prints a Markdown table
# with each proxy's CPU time per request, read from /proc. POSIX sh: runs on the host
# (tests/bench/proxy.sh, natively) and inside the hwsim VM (busybox, under TCG).
#
# Usage: proxy-cpu.sh PROXY_CPU_BIN SOCKET_ACTIVATE SOCKET_PROXYD [SECONDS]
set -u
B=$1 ACT=$2 PROXYD=$3 S=${4:-5}
D=$(mktemp -d)
tick=$(getconf CLK_TCK 2>/dev/null || echo 100)
cpu() { awk '{print $14+$15}' "/proc/$1/stat"; }
"$B" upstream "$D/up.sock" & UP=$!
sleep 0.5
WIFI_ISOLATE_LOG=warn "$B" proxy "$D/ours.sock" "$D/up.sock" & OURS=$!
"$ACT" -l "$D/l4.sock" "$PROXYD" "$D/up.sock" 2>/dev/null & L4=$!
sleep 0.5
# socket-proxyd starts on the first connection (same pid: socket-activate execs it).
"$B" load "$D/l4.sock" 1 0.2 >/dev/null
echo "| path | clients | requests | p50 ms | p99 ms | proxy CPU µs/request |"
echo "|---|---|---|---|---|---|"
for c in 1 64; do
  for name in direct ours l4; do
    case $name in
      direct) sock=$D/up.sock pid=$UP label="direct to the upstream" ;;
      ours) sock=$D/ours.sock pid=$OURS label="through wifi-isolate's proxy" ;;
      l4) sock=$D/l4.sock pid=$L4 label="through systemd-socket-proxyd" ;;
    esac
    c0=$(cpu $pid)
    out=$("$B" load "$sock" $c "$S") || out="0 0 0"
    c1=$(cpu $pid)
    set -- $out
    n=$1
    if [ "$name" = direct ]; then per="—"; else per=$(( (c1 - c0) * 1000000 / tick / (n > 0 ? n : 1) )); fi
    echo "| $label | $c | $n | $2 | $3 | $per |"
  done
done
kill $UP $OURS $L4 2>/dev/null
wait 2>/dev/null
rm -rf "$D"
