//! wifi-isolate: hand a WiFi adapter, whole, to an isolated box and let MCP clients drive it.
//!
//! Two binaries share this library: `wifi-isolate` (`src/main.rs`: the host CLI and the `run`
//! daemon) and `wifi-isolate-agent` (`src/bin/wifi-isolate-agent.rs`: the MCP server in the box).
//! Both only parse their command line and dispatch here.
//!
//! # Layout
//!
//! - [`validate`] — argument validation shared by every tool and the host: SSID, passphrase,
//!   SAE/EAP credentials, BSSID, certificate paths, host names, country codes, interface names.
//! - [`wpa`] — the wpa_supplicant control protocol: a native client (commands + `ATTACH` events),
//!   reply parsers and a command encoder that makes injection impossible:
//!   - [`wpa::proto`] — commands and network fields, the only place that builds command text;
//!   - [`wpa::escape`] — wpa_supplicant's `printf_encode` escaping and quoted-or-hex values;
//!   - [`wpa::parse`] — pure parsers for `STATUS`, `BSS`, `LIST_NETWORKS`, `SIGNAL_POLL`;
//!   - [`wpa::event`] — the `<N>CTRL-EVENT-…` messages of an attached monitor;
//!   - [`wpa::ctrl`] — the control-socket clients (request/reply and `ATTACH`), on tokio.
//! - [`agent`] — `wifi-isolate-agent`, the MCP server that runs inside the box:
//!   - [`agent::iface`] — find the wireless interface in the netns, wait for it, bring it up;
//!     add/delete the extra interfaces of its phy (monitor, concurrent AP; leftovers deleted on
//!     start); the phy's interface combinations (station + AP at once?).
//!   - [`agent::supervisor`] — run and restart `wpa_supplicant` with a config in the runtime dir.
//!   - [`agent::dhcp`] — a real DHCP client (busybox `udhcpc`) and its hook; routes stay in the
//!     box.
//!   - [`agent::netcfg`] — addresses, routes and links in the box's own netns (rtnetlink).
//!   - [`agent::ap`] — access-point mode: hostapd, udhcpd and a one-name DNS answer in the box,
//!     exclusive with the station or concurrent on a second interface.
//!   - [`agent::capture`] — packet capture on the WiFi interface (`AF_PACKET`), pcap + summary.
//!   - [`agent::nettools`] — ping, DNS, HTTP and captive-portal checks, out through the WiFi only.
//!   - [`agent::certs`] — EAP certificates and keys: paths only from the certificates directory,
//!     PEM uploads in a box-private directory.
//!   - [`agent::events`] — the recent-events ring `wifi_debug_logs` returns, secrets scrubbed.
//!   - [`agent::tools`] — the MCP tools: their schemas and structured results (`schema`), the
//!     security mode → wpa_supplicant network block translation (`translate`), and the router
//!     with the tool-call audit (`router`).
//!   - [`agent::server`] — streamable HTTP on a Unix socket (Origin validation on) and stdio.
//! - [`host`] — OS capabilities of the `run` daemon:
//!   - [`host::agent_socket`] — the one way the host reaches a box's agent socket: checked before
//!     use (a socket owned by and listened on by the box's uid), never followed.
//!   - [`host::config`] — the settings: TOML drop-ins from `/usr/lib`, `/run` and `/etc`.
//!   - [`host::daemon`] — `run` as a state machine with inverse steps: `lifecycle` (the whole
//!     lifecycle, `Daemon::run`, and the release that walks the inverses) and `layout` (the
//!     runtime layout: sockets, box dirs, locks, hold and state files).
//!   - [`host::engine`] — where the box runs: [`host::engine::api`] (Podman/Docker through the
//!     Engine API), [`host::engine::netns`] (the built-in runtime), [`host::engine::sandbox`]
//!     (its bubblewrap + seccomp + cgroup sandbox) and `pidfd` (processes by pidfd, never a
//!     recycled PID).
//!   - [`host::files`] — files written whole or not at all.
//!   - [`host::proxy`] — the host's MCP endpoint: socket-activated listeners proxied into the box
//!     (hyper), Origin and bearer-token checks, tool-call audit: [`host::proxy::limits`]
//!     (deadlines, connection caps, the body budget, refusal counters), `listen` (systemd's
//!     listeners or our own, loopback only, the bearer token), `serve` (accept loops and
//!     connection tasks).
//!   - [`host::nm`] — NetworkManager over D-Bus: whether NM manages an interface, at runtime.
//!   - [`host::rfkill`] — rfkill of one wiphy: read the switches, lift a soft block.
//!   - [`host::udev`] — the persistent opt-in: one local udev rule per enabled adapter.
//!   - [`host::wiphy`] — wiphy moves: the model and the `Wiphys` trait, the nl80211 client
//!     (`nl80211`) and a recording fake (`fake`, in unit tests or with `--features fakes`, like
//!     `host::nm`'s).
//! - [`commands`] — one file per `wifi-isolate` subcommand:
//!   - [`commands::run`] — `run IFACE`, the service's main process;
//!   - [`commands::status`] — `status [IFACE] [--json]`, what each instance isolated;
//!   - [`commands::doctor`] — `doctor`, everything isolation needs and how to fix what is missing;
//!   - [`commands::enable`] — `enable|disable IFACE [--now]`, the persistent opt-in;
//!   - [`commands::connect`] — `connect IFACE`, a stdio ⇄ socket bridge for stdio-only clients;
//!   - [`commands::network`] — `network add|list|show|remove`, the saved networks (secrets from
//!     a no-echo prompt or stdin, never argv).
//! - [`unix_socket`] — the one way we bind a Unix socket of our own (stale file replaced, mode).
//! - [`elicit`] — URL-mode elicitation: the box links to a one-time loopback page the host
//!   serves, where a person types a WiFi passphrase; it reaches the box as a one-time profile.
//! - [`networks`] — saved networks: root-only profiles on the host, validated into the typed
//!   values of [`validate`], and the box's copy (for the box's root alone) that
//!   `wifi_connect {network}` reads.
//! - [`logging`] — tracing to journald, falling back to stderr; the `MESSAGE_ID`s admins grep;
//!   libraries that log whole requests (secrets) capped at `info`.
#![deny(missing_docs)]

pub mod agent;
pub mod commands;
pub mod elicit;
pub mod host;
pub mod logging;
pub mod networks;
pub mod unix_socket;
pub mod validate;
pub mod wpa;
