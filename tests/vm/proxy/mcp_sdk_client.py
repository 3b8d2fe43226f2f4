"""The official MCP Python SDK (from PyPI) drives `wifi-isolate connect IFACE` over stdio.

Run inside the hwsim VM against a live `wifi-isolate run IFACE`. Prints one tally line per check
(tests/src/tally.rs: `ok   NAME` / `FAIL NAME — detail`) and
`N passed, N failed`; exit status 1 if any failed.
"""
import asyncio
import sys

from mcp import ClientSession, StdioServerParameters
from mcp.client.stdio import stdio_client


async def main(iface: str) -> int:
    passed = failed = 0

    def check(name: str, ok: bool, detail: object = "") -> None:
        nonlocal passed, failed
        if ok:
            passed += 1
            print(f"ok   python-sdk: {name}", flush=True)
        else:
            failed += 1
            print(f"FAIL python-sdk: {name} — {detail}", flush=True)

    params = StdioServerParameters(command="wifi-isolate", args=["connect", iface])
    async with stdio_client(params) as (read, write):
        async with ClientSession(read, write) as session:
            init = await session.initialize()
            check("initialize", init.serverInfo.name == "wifi-isolate-agent", init.serverInfo)
            tools = await session.list_tools()
            names = {t.name for t in tools.tools}
            check("list tools", {"wifi_scan", "wifi_connect", "wifi_status"} <= names, names)
            status = await session.call_tool("wifi_status", {})
            check(
                "call wifi_status",
                not status.isError and (status.structuredContent or {}).get("interface") == iface,
                status,
            )
            bad = await session.call_tool("wifi_connect", {"ssid": "x" * 33})
            check("bad input is a tool error", bad.isError, bad)
    print(f"{passed} passed, {failed} failed", flush=True)
    return 0 if failed == 0 else 1


if __name__ == "__main__":
    sys.exit(asyncio.run(main(sys.argv[1])))
