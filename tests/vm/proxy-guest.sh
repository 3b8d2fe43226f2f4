# Guest script for the MCP endpoint's hwsim suite: socket activation, cold start, Origin/token
# rules, SSE streaming, concurrency and the stdio bridge, all against the real agent on a radio.
set -eu
hwsim-proxy-probe "${STATIONS%% *}"
