//! wifi-isolate: hand a WiFi adapter, whole, to an isolated box and let MCP clients drive it.
//!
//! # Layout
//!
//! - [`validate`] — argument validation shared by every tool: SSID, passphrase, BSSID, hostnames.
//! - [`wpa`] — the wpa_supplicant control protocol: a native client (commands + `ATTACH` events),
//!   reply parsers and a command encoder that makes injection impossible.
//! - [`agent`] — `wifi-isolate-agent`, the MCP server that runs inside the box:
//!   - [`agent::iface`] — find the wireless interface in the netns, wait for it, bring it up.
//!   - [`agent::supervisor`] — run and restart `wpa_supplicant` with a config in the runtime dir.
//!   - [`agent::dhcp`] — a real DHCP client (busybox `udhcpc`) and its hook, routes stay in the box.
//!   - [`agent::nettools`] — ping, DNS, HTTP and captive-portal checks, out through the WiFi only.
//!   - [`agent::tools`] — the MCP tools, their schemas and structured results.
//!   - [`agent::server`] — streamable HTTP on a Unix socket (Origin validation on) and stdio.
//! - [`host`] — OS capabilities of the `run` daemon: wiphy moves (nl80211), NetworkManager, rfkill.
//! - [`commands`] — one file per `wifi-isolate` subcommand: `run`, `status`, `doctor`.
//! - [`proxy`] — the host's MCP endpoint: socket-activated listeners proxied into the box (hyper),
//!   Origin and bearer-token checks, connection cap, tool-call audit.
//! - [`logging`] — tracing to journald, falling back to stderr; redaction helpers.
#![deny(missing_docs)]

pub mod agent;
pub mod commands;
pub mod host;
pub mod logging;
pub mod proxy;
pub mod validate;
pub mod wpa;
