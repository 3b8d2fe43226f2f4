# Guest script for the MCP endpoint's hwsim suite: socket activation, cold start, Origin/token
# rules, SSE streaming, concurrency and the stdio bridge, all against the real agent on a radio;
# then the MCP clients of 2026 (`clients: …`), each through the socket and through
# `wifi-isolate connect`: the official Python SDK 2.x (legacy and auto), MCP Inspector's CLI in
# its default era, and a raw 2026-07-28 exchange (tests/src/bin/hwsim-clients-probe.rs).
set -eu
hwsim-proxy-probe "${STATIONS%% *}"

# The host's Python and the test venv, MCP Inspector and its Node are 9p-mounted read-only at
# the same paths (the `python-sdk` and `inspector` preparations write /share/py.env and
# /share/node.env).
. /share/py.env
. /share/node.env
export INSPECTOR_NODE INSPECTOR_CLI INSPECTOR_LIBS
mkdir -p "$PYBASE" "$PYVENV" "$INSPECTOR_DIR"
mount -t 9p -o trans=virtio,version=9p2000.L,ro pybase "$PYBASE"
mount -t 9p -o trans=virtio,version=9p2000.L,ro pyvenv "$PYVENV"
mount -t 9p -o trans=virtio,version=9p2000.L,ro inspector "$INSPECTOR_DIR"
STA="${STATIONS%% *}"
wifi-isolate run "$STA" --engine netns 2> /run/hwsim/logs/daemon-clients.err &
D=$!
rc=0
"$PYVENV/bin/python" /share/mcp_sdk_client.py "$STA" "/run/wifi-isolate/$STA.sock" || rc=1
hwsim-clients-probe "$STA" || rc=1
kill -TERM $D; wait $D || rc=1
exit $rc
