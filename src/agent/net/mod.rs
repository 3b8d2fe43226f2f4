//! The network tester's toolbox: HTTP(S) requests, TLS facts, DNS records and TCP port checks,
//! run from inside the box — so through the WiFi and nothing else (the box's netns holds only
//! `lo` and the WiFi interface; no host resolver, no proxy environment is consulted).
//!
//! # Layout
//! - [`target`] — what a caller may name: `http`/`https` URLs (never `file:` or a Unix path),
//!   `host:port` targets, the address family; validated before anything is sent
//! - [`stacks`] — which families the network gave the box (an IPv4 lease, a global IPv6
//!   address): `family: "ipv6"` without IPv6 fails before anything is sent; what `auto` picks
//! - [`conn`] — name resolution and TCP connect with timings; failures as stable codes
//!   (`dns_failed`, `connection_refused`, `unreachable`, `timeout`)
//! - [`tls`] — rustls client configurations (the box's CA store, a caller's CA as PEM, an
//!   explicit `insecure`), the handshake's facts and the certificate chain summary
//! - [`http`] — `network_http_request`: method, headers, bounded body, redirects (the chain
//!   reported), cookies kept per agent and cleared on disconnect, the timing breakdown
//! - [`ports`] — `network_port_check`: open / closed / filtered / unreachable, optional TLS
//! - [`traceroute`] — `network_traceroute`: UDP probes with rising TTL, answers from the
//!   socket's error queue
//! - [`throughput`] — `network_throughput`: a bounded download, goodput, first byte, stalls
//! - [`portal`] — a captive portal's page as data (html5ever): forms, fields, submit buttons,
//!   the scripts that make a browser necessary; one form filled and encoded as a browser would
//! - [`captive`] — `network_check_captive` (the redirect chain and the portal's page) and
//!   `network_captive_login` (submit a form with the session's cookies, then check again)
//! - [`dns`] — `network_dns_lookup`: A, AAAA, CNAME, MX, TXT, NS, SRV, PTR; NXDOMAIN, SERVFAIL
//!   and timeout told apart
//!
//! Everything a peer sends is untrusted: bodies, headers and certificate fields are cut to
//! bounds and reported as data, never interpreted beyond what each tool needs.

pub mod captive;
pub mod conn;
pub mod dns;
pub mod http;
pub mod portal;
pub mod ports;
pub mod stacks;
pub mod target;
pub mod throughput;
pub mod tls;
pub mod traceroute;

/// Milliseconds since `t`, as a float (the tools report timings in ms).
pub(crate) fn ms_since(t: std::time::Instant) -> f64 {
    (t.elapsed().as_secs_f64() * 1000.0 * 1000.0).round() / 1000.0
}
