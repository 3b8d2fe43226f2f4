//! The MCP tools: argument schemas, validation, structured results and the audit log.
//!
//! Arguments are validated here, before anything reaches wpa_supplicant; a bad argument becomes a
//! tool error (`isError: true`) that says what is wrong, and nothing is applied.
//!
//! The rooms:
//! - `schema` — what a client sees: the tools' argument types (their JSON schemas) and
//!   structured results;
//! - `translate` — arguments to a wpa_supplicant network block: the security mode (or EAP
//!   method) becomes `key_mgmt`, `psk`/`sae_password`, `ieee80211w`, `eap`, `phase2`…
//!   ([`psk_spec`], [`eap_spec`]), validated, with nothing sent;
//! - `elicit` — `wifi_connect` to a network that needs a secret it was not given: the one-time
//!   profile the host's page left, the URL-elicitation request, or the `network add` error;
//! - `progress` — MCP progress notifications of one call, in order, flushed before its result;
//! - `capture` — `wifi_capture`, `wifi_capture_start` / `wifi_capture_stop`: bounds and
//!   results of a packet capture on the WiFi interface, a router of their own;
//! - `radio` — the radio's own tools beyond joining (`wifi_link`), and `auto` picking OWE;
//! - `router` — [`WifiTools`], the MCP server: one handler per tool, progress notifications
//!   and the tool-call audit record;
//! - `net` — the network tester's tools (`network_http_request`, `network_http_get`,
//!   `network_port_check`, `network_dns_lookup`, `network_throughput`, `network_traceroute`): their arguments, bounds and results, a router
//!   of their own added to `router`'s;
//! - `ap` — `wifi_ap_start`, `wifi_ap_clients`, `wifi_ap_stop`: the box's radio as an access
//!   point ([`crate::agent::ap`]), a router of their own;
//! - `passpoint` — `wifi_anqp` (an AP's ANQP answers, parsed) and `wifi_connect_passpoint`
//!   (join a Hotspot 2.0 network by realm credential): a router of their own;
//! - `captive` — `network_check_captive` (the portal's redirect chain and forms) and
//!   `network_captive_login` (submit one, check again): a router of their own.

mod ap;
mod captive;
mod capture;
mod elicit;
mod net;
mod passpoint;
mod progress;
mod radio;
mod router;
mod schema;
mod translate;

pub use elicit::URL_ELICITATION_REQUIRED;
pub use net::{
    DnsLookupArgs, DnsLookupReport, HttpRequestArgs, PortCheckArgs, PortCheckReport,
    ThroughputArgs, TracerouteArgs,
};
pub use router::{PeerCred, ResponseStream, WifiTools};
pub use schema::*;
pub use translate::{eap_spec, inline_eap_secrets, profile_spec, psk_spec};

/// A validation error as the tool-error text a client reads.
fn err(e: impl std::fmt::Display) -> String {
    e.to_string()
}
