# Guest script of the proxy benchmark (tests/bench/proxy.sh): real agent, real radio; then the
# proxies alone in front of a stand-in upstream, under this VM's TCG.
set -eu
hwsim-bench-proxy "${STATIONS%% *}" "${BENCH_CALLS1:-400}" "${BENCH_CALLS_EACH:-30}" "${BENCH_ROUNDS:-5}" > /share/bench-proxy.md
cat /share/bench-proxy.md
sh /share/proxy-cpu.sh proxy-cpu systemd-socket-activate systemd-socket-proxyd "${BENCH_SECONDS:-5}" > /share/proxy-cpu.md
cat /share/proxy-cpu.md
