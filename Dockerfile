# The agent image: wifi-isolate-agent + wpa_supplicant + busybox (its udhcpc is the DHCP client).
#
#   podman build -t localhost/wifi-isolate-agent:latest .      (or: docker build -t …)
#
# The daemon runs it as the box of one adapter: NetworkMode=none (only lo, then the WiFi phy it
# moves in), CapDrop=ALL + CapAdd=NET_ADMIN,NET_RAW,NET_BIND_SERVICE (the agent's only needs:
# addresses/routes, raw sockets for DHCP and ping, and ports 53/67 for the access point's DNS
# and DHCP — wifi_ap_start runs hostapd and busybox udhcpd), a read-only rootfs, no-new-privileges, memory/pids limits, and
# the instance dir bind-mounted at /run/wifi-isolate (the MCP socket). The agent is PID 1 and
# handles SIGTERM itself; it runs as root *inside* the box because NET_ADMIN/NET_RAW must be in
# its effective set, and those two capabilities are all root has there.
#
# Without a registry (tests, CI), tests/host/image.sh builds the same contents from the host's
# files and imports them (podman import / docker import).

FROM docker.io/library/rust:1-bookworm AS build
WORKDIR /src
COPY . .
RUN cargo build --release --locked --bin wifi-isolate-agent

FROM docker.io/library/debian:bookworm-slim
RUN apt-get update \
 && apt-get install -y --no-install-recommends wpasupplicant hostapd busybox-static \
 && rm -rf /var/lib/apt/lists/* /usr/share/doc /usr/share/man /usr/share/locale
COPY --from=build /src/target/release/wifi-isolate-agent /usr/bin/wifi-isolate-agent
LABEL org.opencontainers.image.title="wifi-isolate-agent" \
      org.opencontainers.image.description="MCP server driving one WiFi adapter inside its box" \
      io.wifi-isolate.capabilities="NET_ADMIN NET_RAW NET_BIND_SERVICE"
STOPSIGNAL SIGTERM
ENTRYPOINT ["/usr/bin/wifi-isolate-agent"]
CMD ["--listen", "unix:/run/wifi-isolate/mcp.sock", "--runtime-dir", "/run/wifi-isolate-agent"]
