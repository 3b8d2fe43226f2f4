# The agent image: wifi-isolate-agent + wpa_supplicant + busybox (its udhcpc is the DHCP client).
# The daemon runs it with NetworkMode=none, only NET_ADMIN + NET_RAW, a read-only rootfs,
# no-new-privileges, and the instance dir bind-mounted at /run/wifi-isolate.
#
#   podman build -t localhost/wifi-isolate-agent:latest .
#
# Without a registry, tests/support/image.sh builds the same contents from the host's files and
# imports them (podman import / docker import).

FROM docker.io/library/rust:1-bookworm AS build
WORKDIR /src
COPY . .
RUN cargo build --release --locked --bin wifi-isolate-agent

FROM docker.io/library/debian:bookworm-slim
RUN apt-get update \
 && apt-get install -y --no-install-recommends wpasupplicant busybox-static \
 && rm -rf /var/lib/apt/lists/*
COPY --from=build /src/target/release/wifi-isolate-agent /usr/bin/wifi-isolate-agent
ENTRYPOINT ["/usr/bin/wifi-isolate-agent"]
CMD ["--listen", "unix:/run/wifi-isolate/mcp.sock", "--runtime-dir", "/run/wifi-isolate-agent"]
