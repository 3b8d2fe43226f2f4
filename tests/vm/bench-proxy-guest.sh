# Guest script of the proxy benchmark (tests/bench/proxy.sh): real agent, real radio.
set -eu
hwsim-bench-proxy "${STATIONS%% *}" "${BENCH_SECONDS:-5}" > /share/bench-proxy.md
cat /share/bench-proxy.md
