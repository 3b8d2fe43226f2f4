# Guest script for the MCP endpoint's hwsim suite: socket activation, cold start, Origin/token
# rules, SSE streaming, concurrency and the stdio bridge, all against the real agent on a radio.
set -eu
hwsim-proxy-probe "${STATIONS%% *}"

# The official MCP Python SDK through the stdio bridge. The host's Python and the test venv are
# 9p-mounted read-only at the same paths (tests/vm/proxy/ prepares them and /share/py.env).
. /share/py.env
mkdir -p "$PYBASE" "$PYVENV"
mount -t 9p -o trans=virtio,version=9p2000.L,ro pybase "$PYBASE"
mount -t 9p -o trans=virtio,version=9p2000.L,ro pyvenv "$PYVENV"
STA="${STATIONS%% *}"
wifi-isolate run "$STA" --engine netns 2> /run/hwsim/logs/daemon-python.err &
D=$!
rc=0
"$PYVENV/bin/python" /share/mcp_sdk_client.py "$STA" || rc=1
kill -TERM $D; wait $D || rc=1
exit $rc
