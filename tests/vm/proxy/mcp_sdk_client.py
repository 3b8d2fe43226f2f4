"""The official MCP Python SDK (`mcp` 2.x, from PyPI) against `wifi-isolate run IFACE`.

Run inside the hwsim VM against a live `wifi-isolate run IFACE` (its socket SOCK). Three clients:

- `python-sdk: …` — the handshake era (`mode="legacy"`) through `wifi-isolate connect IFACE`;
- `clients: python-sdk auto via socket: …` — `mode="auto"` (it probes `server/discover` and
  adopts 2026-07-28 when the server answers) over streamable HTTP on the daemon's Unix socket
  (the proxy);
- `clients: python-sdk auto via connect: …` — the same through the stdio bridge.

Each does a wifi_scan that must see the lab's access point (AP_WPA2_SSID) on the real radio.
Prints one tally line per check (tests/src/tally.rs: `ok   NAME` / `FAIL NAME — detail`) and
`N passed, N failed`; exit status 1 if any failed.
"""
import asyncio
import os
import sys
import traceback
from importlib.metadata import version

import httpx2
from mcp import StdioServerParameters
from mcp.client import Client
from mcp.client.streamable_http import streamable_http_client

MODERN = "2026-07-28"


async def main(iface: str, sock: str) -> int:
    passed = failed = 0
    ssid = os.environ["AP_WPA2_SSID"]

    def check(name: str, ok: bool, detail: object = "") -> None:
        nonlocal passed, failed
        if ok:
            passed += 1
            print(f"ok   {name}", flush=True)
        else:
            failed += 1
            print(f"FAIL {name} — {detail}", flush=True)

    sdk = version("mcp")
    check("clients: python-sdk is the 2.x line", sdk.startswith("2."), sdk)
    bridge = StdioServerParameters(command="wifi-isolate", args=["connect", iface])

    # The handshake era through the stdio bridge (what the 1.x SDK and most stdio clients do).
    try:
        async with Client(bridge, mode="legacy") as client:
            info = client.server_info
            check(
                "python-sdk: initialize",
                info is not None and info.name == "wifi-isolate-agent",
                info,
            )
            tools = await client.list_tools()
            names = {t.name for t in tools.tools}
            check("python-sdk: list tools", {"wifi_scan", "wifi_connect", "wifi_status"} <= names, names)
            status = await client.call_tool("wifi_status", {})
            check(
                "python-sdk: call wifi_status",
                not status.is_error and (status.structured_content or {}).get("interface") == iface,
                status,
            )
            bad = await client.call_tool("wifi_connect", {"ssid": "x" * 33})
            check("python-sdk: bad input is a tool error", bad.is_error, bad)
    except Exception:  # noqa: BLE001 — a failure to connect is a failed check, with its trace
        check("python-sdk: initialize", False, traceback.format_exc())

    async def auto(path: str, target: object) -> None:
        prefix = f"clients: python-sdk auto via {path}"
        try:
            async with Client(target, mode="auto") as client:
                check(f"{prefix}: negotiated {MODERN}", client.protocol_version == MODERN, client.protocol_version)
                tools = await client.list_tools()
                names = {t.name for t in tools.tools}
                check(f"{prefix}: tools/list", {"wifi_scan", "wifi_connect", "wifi_status"} <= names, names)
                scan = await client.call_tool("wifi_scan", {})
                seen = [n.get("ssid") for n in (scan.structured_content or {}).get("networks", [])]
                check(f"{prefix}: wifi_scan sees the lab's AP on the radio", not scan.is_error and ssid in seen, scan)
                status = await client.call_tool("wifi_status", {})
                check(
                    f"{prefix}: wifi_status names the station",
                    not status.is_error and (status.structured_content or {}).get("interface") == iface,
                    status,
                )
        except Exception:  # noqa: BLE001
            check(f"{prefix}: negotiated {MODERN}", False, traceback.format_exc())

    # Streamable HTTP on the daemon's Unix socket (httpx2 speaks to it through `uds`).
    http = httpx2.AsyncClient(transport=httpx2.AsyncHTTPTransport(uds=sock), timeout=120)
    async with http:
        await auto("socket", streamable_http_client("http://localhost/mcp", http_client=http))
    await auto("connect", bridge)

    print(f"{passed} passed, {failed} failed", flush=True)
    return 0 if failed == 0 else 1


if __name__ == "__main__":
    sys.exit(asyncio.run(main(sys.argv[1], sys.argv[2])))
