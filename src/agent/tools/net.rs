//! The network tester's tools ([`crate::agent::net`]): `network_http_request`, its simple form
//! `network_http_get`, `network_port_check` and `network_dns_lookup` — their arguments (JSON
//! schemas), bounds and results. A router of their own, added to [`WifiTools`]'s.

use std::collections::BTreeMap;
use std::net::{IpAddr, SocketAddr};
use std::time::{Duration, Instant};

use rmcp::handler::server::wrapper::Parameters;
use rmcp::{Json, Peer, RoleServer, tool, tool_router};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::progress::Progress;
use super::router::WifiTools;
use super::schema::HttpGetArgs;
use crate::agent::failure::{Code, Failure};
use crate::agent::net::dns::{self, DnsType, Lookup, Outcome};
use crate::agent::net::http::{self, HttpResponse};
use crate::agent::net::ports::{self, PortResult, PortState};
use crate::agent::net::target::{self, Family};
use crate::agent::net::throughput::{self, ThroughputReport};
use crate::agent::net::tls::TlsOptions;
use crate::agent::net::traceroute::{self, TraceReport};
use crate::agent::nettools::HttpReport;

/// Seconds within 1..=max, or the default; a clear `invalid_argument` otherwise.
fn secs(v: Option<u64>, default: u64, max: u64, what: &str) -> Result<Duration, Failure> {
    match v {
        None => Ok(Duration::from_secs(default)),
        Some(s) if (1..=max).contains(&s) => Ok(Duration::from_secs(s)),
        Some(s) => Err(Failure::invalid(format!("{what} must be 1-{max}, got {s}"))),
    }
}

/// Run `f` within `limit`, or fail with the code `timeout`.
async fn within<T>(
    limit: Duration,
    what: &str,
    f: impl std::future::Future<Output = Result<T, Failure>>,
) -> Result<T, Failure> {
    tokio::time::timeout(limit, f).await.unwrap_or_else(|_| {
        Err(Failure::new(
            Code::Timeout,
            format!(
                "{what}: no complete answer within {} s (timeout_secs)",
                limit.as_secs()
            ),
        ))
    })
}

/// `network_http_request` arguments.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct HttpRequestArgs {
    /// An http:// or https:// URL (no other scheme; an IPv6 literal in brackets).
    pub url: String,
    /// GET (default), HEAD, POST, PUT, DELETE, PATCH or OPTIONS.
    pub method: Option<String>,
    /// Extra request headers, name → value (at most 32; Host, Content-Length, Connection and
    /// Transfer-Encoding are the tool's own).
    pub headers: Option<BTreeMap<String, String>>,
    /// Request body as text (at most 65536 bytes).
    pub body: Option<String>,
    /// Return at most this many body bytes (default 4096, max 262144).
    pub max_body_bytes: Option<u64>,
    /// Follow redirects (default true); the chain is reported either way.
    pub follow_redirects: Option<bool>,
    /// At most this many redirects (default 5, max 10).
    pub max_redirects: Option<u32>,
    /// Also trust this CA (PEM text, one or more certificates) for https.
    pub ca_pem: Option<String>,
    /// Complete the TLS handshake whatever the certificate (default false); the result says
    /// `insecure: true` and whether the chain would have verified.
    pub insecure: Option<bool>,
    /// Address family: auto (default: IPv4 when the box has an IPv4 address and the name an A
    /// record, else IPv6), ipv4 or ipv6; the result's `family` says which was used. ipv6 on a
    /// network that gave the box no IPv6 address fails with family_unavailable, nothing sent.
    pub family: Option<Family>,
    /// Send the cookies earlier responses on this WiFi set, and keep new ones (default true).
    /// The jar is cleared on disconnect.
    pub cookies: Option<bool>,
    /// Give up after this many seconds, redirects included (default 15, max 120).
    pub timeout_secs: Option<u64>,
}

/// One `host:port` to check.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct PortTargetArg {
    /// IP address or host name.
    pub host: String,
    /// TCP port, 1-65535.
    pub port: u64,
}

/// `network_port_check` arguments.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct PortCheckArgs {
    /// The targets (1-32), checked at once.
    pub targets: Vec<PortTargetArg>,
    /// After connecting, try a TLS handshake (default false).
    pub tls: Option<bool>,
    /// For tls: also trust this CA (PEM text).
    pub ca_pem: Option<String>,
    /// For tls: complete the handshake whatever the certificate (default false).
    pub insecure: Option<bool>,
    /// Address family: auto (default: IPv4 when the box has an IPv4 address and the name an A
    /// record, else IPv6), ipv4 or ipv6; the result's `family` says which was used. ipv6 on a
    /// network that gave the box no IPv6 address fails with family_unavailable, nothing sent.
    pub family: Option<Family>,
    /// Each connect (and handshake) waits this long, ms (default 3000, 100-30000); no answer in
    /// that time is `filtered`.
    pub connect_timeout_ms: Option<u64>,
}

/// Result of `network_port_check`.
#[derive(Debug, Serialize, JsonSchema)]
pub struct PortCheckReport {
    /// One per target, in the order given.
    pub results: Vec<PortResult>,
    /// How many were open.
    pub open: usize,
    /// How many were closed.
    pub closed: usize,
    /// How many were filtered.
    pub filtered: usize,
    /// The whole check, ms.
    pub elapsed_ms: f64,
}

/// `network_dns_lookup` arguments.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct DnsLookupArgs {
    /// The name to look up (for PTR also an IP address).
    pub name: String,
    /// A, AAAA, CNAME, MX, TXT, NS, SRV or PTR; default: A and AAAA.
    #[serde(rename = "type")]
    pub record_type: Option<DnsType>,
    /// Ask this DNS server (an IP address, optionally `IP:port` / `[IPv6]:port`) instead of the
    /// lease's.
    pub server: Option<String>,
    /// Each try waits this long, ms (default 2000, 100-10000).
    pub try_timeout_ms: Option<u64>,
    /// Tries per server (default 2, 1-5).
    pub attempts: Option<u32>,
}

/// Result of `network_dns_lookup`.
#[derive(Debug, Serialize, JsonSchema)]
pub struct DnsLookupReport {
    /// The name asked.
    pub name: String,
    /// The outcome: `answer` when any question got records, else the first question's.
    pub outcome: Outcome,
    /// The addresses among the answers (A / AAAA).
    pub addresses: Vec<String>,
    /// The servers that could be asked, in order.
    pub servers: Vec<String>,
    /// One per question (A and AAAA by default).
    pub lookups: Vec<Lookup>,
    /// The whole lookup, ms.
    pub elapsed_ms: f64,
}

/// `network_throughput` arguments.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ThroughputArgs {
    /// An http:// or https:// URL to download from (a large file, or an endless stream).
    pub url: String,
    /// Download for at most this many seconds (default 5, 1-60).
    pub seconds: Option<u64>,
    /// Stop after this many body bytes (default 104857600, at most 1073741824).
    pub max_bytes: Option<u64>,
    /// A gap between body data longer than this is a stall, ms (default 500, 50-10000).
    pub stall_ms: Option<u64>,
    /// For https: also trust this CA (PEM text).
    pub ca_pem: Option<String>,
    /// For https: complete the handshake whatever the certificate (default false).
    pub insecure: Option<bool>,
    /// Address family: auto (default: IPv4 when the box has an IPv4 address and the name an A
    /// record, else IPv6), ipv4 or ipv6; the result's `family` says which was used. ipv6 on a
    /// network that gave the box no IPv6 address fails with family_unavailable, nothing sent.
    pub family: Option<Family>,
}

/// `network_traceroute` arguments.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct TracerouteArgs {
    /// IP address or host name (resolved through the WiFi's DNS).
    pub host: String,
    /// At most this many hops (default 16, 1-64).
    pub max_hops: Option<u32>,
    /// Probes per hop (default 3, 1-5).
    pub probes: Option<u32>,
    /// Each probe waits this long for an answer, ms (default 1000, 100-5000).
    pub wait_ms: Option<u64>,
    /// Address family: auto (default: IPv4 when the box has an IPv4 address and the name an A
    /// record, else IPv6), ipv4 or ipv6; the result's `family` says which was used. ipv6 on a
    /// network that gave the box no IPv6 address fails with family_unavailable, nothing sent.
    pub family: Option<Family>,
    /// Give up after this many seconds (default 60, max 300).
    pub timeout_secs: Option<u64>,
}

/// Validate `network_throughput`'s arguments (nothing is sent).
pub fn download_of(a: ThroughputArgs) -> Result<throughput::Download, Failure> {
    let url = target::web_url(&a.url)?;
    let duration = secs(a.seconds, 5, throughput::MAX_SECONDS, "seconds")?;
    let max_bytes = a.max_bytes.unwrap_or(100 << 20);
    if max_bytes == 0 || max_bytes > throughput::MAX_BYTES {
        return Err(Failure::invalid(format!(
            "max_bytes must be 1-{}, got {max_bytes}",
            throughput::MAX_BYTES
        )));
    }
    let stall = a.stall_ms.unwrap_or(500);
    if !(50..=10_000).contains(&stall) {
        return Err(Failure::invalid(format!(
            "stall_ms must be 50-10000, got {stall}"
        )));
    }
    Ok(throughput::Download {
        url,
        duration,
        max_bytes,
        stall: Duration::from_millis(stall),
        tls: tls_options(a.ca_pem, a.insecure)?,
        family: a.family.unwrap_or_default(),
    })
}

fn tls_options(ca_pem: Option<String>, insecure: Option<bool>) -> Result<TlsOptions, Failure> {
    if let Some(p) = &ca_pem {
        crate::agent::net::tls::parse_ca_pem(p)?;
    }
    Ok(TlsOptions {
        ca_pem,
        insecure: insecure.unwrap_or(false),
    })
}

/// Validate `network_http_request`'s arguments into a request (nothing is sent).
pub fn http_request_of(a: HttpRequestArgs) -> Result<(http::Request, Duration), Failure> {
    let url = target::web_url(&a.url)?;
    let method = http::method(a.method.as_deref().unwrap_or("GET"))?;
    let headers = http::headers(&a.headers.unwrap_or_default())?;
    if a.body
        .as_ref()
        .is_some_and(|b| b.len() > http::MAX_REQUEST_BODY)
    {
        return Err(Failure::invalid(format!(
            "body is larger than {} bytes",
            http::MAX_REQUEST_BODY
        )));
    }
    let max_body = a.max_body_bytes.unwrap_or(4096);
    if max_body > http::MAX_BODY_EXCERPT as u64 {
        return Err(Failure::invalid(format!(
            "max_body_bytes must be at most {}, got {max_body}",
            http::MAX_BODY_EXCERPT
        )));
    }
    let max_redirects = a.max_redirects.unwrap_or(5);
    if max_redirects > http::MAX_REDIRECTS {
        return Err(Failure::invalid(format!(
            "max_redirects must be at most {}, got {max_redirects}",
            http::MAX_REDIRECTS
        )));
    }
    let timeout = secs(a.timeout_secs, 15, 120, "timeout_secs")?;
    Ok((
        http::Request {
            url,
            method,
            headers,
            body: a.body.map(bytes::Bytes::from),
            max_body: max_body as usize,
            follow_redirects: a.follow_redirects.unwrap_or(true),
            max_redirects,
            tls: tls_options(a.ca_pem, a.insecure)?,
            family: a.family.unwrap_or_default(),
            cookies: a.cookies.unwrap_or(true),
            connect_timeout: timeout,
        },
        timeout,
    ))
}

/// A DNS server argument: `IP`, `IP:port` or `[IPv6]:port`.
pub fn dns_server(s: &str) -> Result<SocketAddr, Failure> {
    if let Ok(ip) = s
        .trim_start_matches('[')
        .trim_end_matches(']')
        .parse::<IpAddr>()
    {
        return Ok(SocketAddr::new(ip, 53));
    }
    let sa: SocketAddr = s.parse().map_err(|_| {
        Failure::invalid(format!(
            "server must be an IP address (optionally IP:port), got {s:?}"
        ))
    })?;
    if sa.port() == 0 {
        return Err(Failure::invalid(
            "port 0 is not a port: a port must be 1-65535",
        ));
    }
    Ok(sa)
}

#[tool_router(router = net_router, vis = "pub(super)")]
impl WifiTools {
    #[tool(
        description = "HTTP or HTTPS request through the WiFi. method, headers, a text body; \
                       redirects followed (or not) with the chain reported; cookies kept for \
                       this WiFi (cleared on disconnect). https verifies against the box's CA \
                       store plus ca_pem (a CA as PEM text); insecure: true looks anyway and says \
                       so. Returns status, headers, a bounded body excerpt (text or base64), the \
                       timing breakdown (dns, connect, tls, first byte, total ms), the peer \
                       address, and for TLS the version, cipher and certificate chain (subject, \
                       issuer, SANs, validity, days left). Untrusted certificates fail with code \
                       tls_untrusted.",
        annotations(title = "HTTP(S) request", open_world_hint = true)
    )]
    async fn network_http_request(
        &self,
        Parameters(a): Parameters<HttpRequestArgs>,
        meta: rmcp::model::RequestMetaObject,
        peer: Peer<RoleServer>,
    ) -> Result<Json<HttpResponse>, Failure> {
        let (req, limit) = http_request_of(a)?;
        let progress = Progress::new(peer, &meta);
        progress.send(0, 1, format!("{} {}", req.method, req.url));
        let dns = self.agent.dns().await;
        let r = within(limit, "network_http_request", http::request(&dns, &req)).await;
        progress.send(1, 1, "done".into());
        progress.flush().await;
        Ok(Json(r?))
    }

    #[tool(
        description = "HTTP GET an http:// or https:// URL through the WiFi (the simple form of \
                       network_http_request: no redirects followed, the box's CA store). Returns \
                       status, a few headers (location, content-type, server) and the start of \
                       the body.",
        annotations(title = "HTTP GET", read_only_hint = true, open_world_hint = true)
    )]
    async fn network_http_get(
        &self,
        Parameters(a): Parameters<HttpGetArgs>,
    ) -> Result<Json<HttpReport>, Failure> {
        let max = a.max_bytes.unwrap_or(4096);
        if max > 65536 {
            return Err(Failure::invalid("max_bytes must be at most 65536"));
        }
        let (mut req, limit) = http_request_of(HttpRequestArgs {
            url: a.url,
            method: None,
            headers: None,
            body: None,
            max_body_bytes: Some(max as u64),
            follow_redirects: Some(false),
            max_redirects: None,
            ca_pem: None,
            insecure: None,
            family: None,
            cookies: Some(false),
            timeout_secs: a.timeout_secs.or(Some(10)),
        })?;
        req.cookies = false;
        let dns = self.agent.dns().await;
        let r = within(limit, "network_http_get", http::request(&dns, &req)).await?;
        Ok(Json(HttpReport {
            url: r.url,
            remote: r.peer,
            status: r.status,
            headers: r
                .headers
                .into_iter()
                .filter(|(k, _)| {
                    matches!(
                        k.as_str(),
                        "location" | "content-type" | "content-length" | "server" | "cache-control"
                    )
                })
                .collect(),
            body: r.body,
            truncated: r.truncated,
            elapsed_ms: r.timing.total_ms,
        }))
    }

    #[tool(
        description = "TCP port check through the WiFi: connect to each host:port (1-32, at \
                       once) and report open, closed (refused), filtered (no answer: a firewall \
                       drop), unreachable or dns_failed, with connect times; tls: true also \
                       tries a TLS handshake (version, cipher, certificate chain).",
        annotations(title = "Port check", read_only_hint = true, open_world_hint = true)
    )]
    async fn network_port_check(
        &self,
        Parameters(a): Parameters<PortCheckArgs>,
        meta: rmcp::model::RequestMetaObject,
        peer: Peer<RoleServer>,
    ) -> Result<Json<PortCheckReport>, Failure> {
        if a.targets.is_empty() || a.targets.len() > ports::MAX_TARGETS {
            return Err(Failure::invalid(format!(
                "targets must list 1-{} host/port pairs, got {}",
                ports::MAX_TARGETS,
                a.targets.len()
            )));
        }
        let targets = a
            .targets
            .iter()
            .map(|t| {
                crate::validate::host(&t.host).map_err(Failure::invalid)?;
                Ok(ports::Target {
                    host: t
                        .host
                        .trim_start_matches('[')
                        .trim_end_matches(']')
                        .to_string(),
                    port: target::port(t.port)?,
                })
            })
            .collect::<Result<Vec<_>, Failure>>()?;
        let ms = a.connect_timeout_ms.unwrap_or(3000);
        if !(100..=30_000).contains(&ms) {
            return Err(Failure::invalid(format!(
                "connect_timeout_ms must be 100-30000, got {ms}"
            )));
        }
        let tls = if a.tls.unwrap_or(false) {
            Some(tls_options(a.ca_pem, a.insecure)?)
        } else {
            if a.ca_pem.is_some() || a.insecure.is_some() {
                return Err(Failure::invalid("ca_pem and insecure go with tls: true"));
            }
            None
        };
        let started = Instant::now();
        let progress = Progress::new(peer, &meta);
        let total = targets.len();
        let dns = self.agent.dns().await;
        let family = a.family.unwrap_or_default();
        // The family against the box's, and each literal against the family, before anything
        // is sent: one clear failure rather than a table of them.
        for t in &targets {
            crate::agent::net::conn::check_family(&dns, &t.host, family)?;
        }
        let results = ports::check(
            &dns,
            &targets,
            family,
            Duration::from_millis(ms),
            tls.as_ref(),
            |n| progress.send(n, total, format!("{n} of {total} checked")),
        )
        .await;
        progress.flush().await;
        let count = |s: PortState| results.iter().filter(|r| r.state == s).count();
        Ok(Json(PortCheckReport {
            open: count(PortState::Open),
            closed: count(PortState::Closed),
            filtered: count(PortState::Filtered),
            results,
            elapsed_ms: crate::agent::net::ms_since(started),
        }))
    }

    #[tool(
        description = "Throughput through the WiFi: download from an http:// or https:// URL for \
                       a bounded time (seconds) and byte count; returns goodput (Mbit/s), time \
                       to first byte, per-second samples, stalls (gaps longer than stall_ms) \
                       and why it stopped (end, time, bytes). Reports progress each second.",
        annotations(title = "Throughput", read_only_hint = true, open_world_hint = true)
    )]
    async fn network_throughput(
        &self,
        Parameters(a): Parameters<ThroughputArgs>,
        meta: rmcp::model::RequestMetaObject,
        peer: Peer<RoleServer>,
    ) -> Result<Json<ThroughputReport>, Failure> {
        let d = download_of(a)?;
        let total = d.duration.as_secs() as usize;
        let progress = Progress::new(peer, &meta);
        let dns = self.agent.dns().await;
        // Setup (DNS, connect, TLS, headers) gets its own bound on top of the download's.
        let r = within(
            d.duration + Duration::from_secs(15),
            "network_throughput",
            throughput::download(&dns, &d, |sec, bytes| {
                progress.send(sec as usize, total, format!("{sec} s: {bytes} bytes"))
            }),
        )
        .await;
        progress.flush().await;
        Ok(Json(r?))
    }

    #[tool(
        description = "Traceroute through the WiFi: UDP probes with rising TTL (IPv4) or hop \
                       limit (IPv6) to host; each hop's address and round-trip times, whether \
                       the target was reached (it answers port unreachable) and the last hop \
                       that answered. Bounded: max_hops <= 64, probes <= 5, wait_ms <= 5000. \
                       Reports progress per hop.",
        annotations(title = "Traceroute", read_only_hint = true, open_world_hint = true)
    )]
    async fn network_traceroute(
        &self,
        Parameters(a): Parameters<TracerouteArgs>,
        meta: rmcp::model::RequestMetaObject,
        peer: Peer<RoleServer>,
    ) -> Result<Json<TraceReport>, Failure> {
        let max_hops = a.max_hops.unwrap_or(16);
        if !(1..=traceroute::MAX_HOPS as u32).contains(&max_hops) {
            return Err(Failure::invalid(format!(
                "max_hops must be 1-{}, got {max_hops}",
                traceroute::MAX_HOPS
            )));
        }
        let probes = a.probes.unwrap_or(3);
        if !(1..=5).contains(&probes) {
            return Err(Failure::invalid(format!(
                "probes must be 1-5, got {probes}"
            )));
        }
        let wait = a.wait_ms.unwrap_or(1000);
        if !(100..=5000).contains(&wait) {
            return Err(Failure::invalid(format!(
                "wait_ms must be 100-5000, got {wait}"
            )));
        }
        let limit = secs(a.timeout_secs, 60, 300, "timeout_secs")?;
        crate::validate::host(&a.host).map_err(Failure::invalid)?;
        let host = a
            .host
            .trim_start_matches('[')
            .trim_end_matches(']')
            .to_string();
        let dns = self.agent.dns().await;
        let (ip, _) =
            crate::agent::net::conn::resolve(&dns, &host, a.family.unwrap_or_default()).await?;
        let scope = self
            .agent
            .net()
            .index(self.agent.iface())
            .await
            .ok()
            .flatten()
            .unwrap_or(0);
        let progress = std::sync::Arc::new(Progress::new(peer, &meta));
        let p = progress.clone();
        let total = max_hops as usize;
        let r = within(
            limit,
            "network_traceroute",
            traceroute::trace(
                ip,
                scope,
                max_hops as u8,
                probes as u8,
                Duration::from_millis(wait),
                move |ttl| p.send(ttl as usize, total, format!("hop {ttl}")),
            ),
        )
        .await;
        if let Ok(p) = std::sync::Arc::try_unwrap(progress) {
            p.flush().await;
        }
        Ok(Json(r?))
    }

    #[tool(
        description = "DNS lookup through the WiFi: type A, AAAA, CNAME, MX, TXT, NS, SRV or PTR \
                       (default A and AAAA), asked of the lease's DNS servers or a given server, \
                       without cache or search list. Returns the records with their TTLs, the \
                       server that answered, the response code and the time taken; outcome tells \
                       answer, no_data, nxdomain, servfail, refused, timeout and no_response apart.",
        annotations(title = "DNS lookup", read_only_hint = true, open_world_hint = true)
    )]
    async fn network_dns_lookup(
        &self,
        Parameters(a): Parameters<DnsLookupArgs>,
    ) -> Result<Json<DnsLookupReport>, Failure> {
        let types = match a.record_type {
            Some(t) => vec![t],
            None => vec![DnsType::A, DnsType::Aaaa],
        };
        let names = types
            .iter()
            .map(|t| dns::question_name(&a.name, *t))
            .collect::<Result<Vec<_>, _>>()?;
        let per_try = a.try_timeout_ms.unwrap_or(2000);
        if !(100..=10_000).contains(&per_try) {
            return Err(Failure::invalid(format!(
                "try_timeout_ms must be 100-10000, got {per_try}"
            )));
        }
        let attempts = a.attempts.unwrap_or(2);
        if !(1..=5).contains(&attempts) {
            return Err(Failure::invalid(format!(
                "attempts must be 1-5, got {attempts}"
            )));
        }
        let dns = self.agent.dns().await;
        let servers: Vec<SocketAddr> = match &a.server {
            Some(s) => {
                let server = dns_server(s)?;
                if let Some(stacks) = dns.stacks() {
                    stacks.allows(server.ip())?;
                }
                vec![server]
            }
            None => dns
                .servers()
                .iter()
                .map(|ip| SocketAddr::new(*ip, 53))
                .collect(),
        };
        let started = Instant::now();
        let mut lookups = Vec::new();
        for (t, name) in types.iter().zip(&names) {
            lookups.push(
                dns::lookup(&servers, name, *t, Duration::from_millis(per_try), attempts).await?,
            );
        }
        let outcome = if lookups.iter().any(|l| l.outcome == Outcome::Answer) {
            Outcome::Answer
        } else {
            lookups[0].outcome
        };
        Ok(Json(DnsLookupReport {
            name: a.name,
            outcome,
            addresses: lookups
                .iter()
                .flat_map(|l| l.answers.iter())
                .filter(|r| r.rtype == "A" || r.rtype == "AAAA")
                .map(|r| r.data.clone())
                .collect(),
            servers: servers.iter().map(|s| s.to_string()).collect(),
            lookups,
            elapsed_ms: crate::agent::net::ms_since(started),
        }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(url: &str) -> HttpRequestArgs {
        serde_json::from_value(serde_json::json!({ "url": url })).unwrap()
    }

    #[test]
    fn http_request_arguments_refused_with_a_clear_text() {
        for (a, why) in [
            (
                serde_json::json!({"url": "file:///etc/shadow"}),
                "unsupported URL scheme file",
            ),
            (
                serde_json::json!({"url": "/run/wifi-isolate/mcp.sock"}),
                "is a path",
            ),
            (serde_json::json!({"url": "http://x:0/"}), "1-65535"),
            (serde_json::json!({"url": "http://x:70000/"}), "1-65535"),
            (
                serde_json::json!({"url": "http://x/", "method": "TRACE"}),
                "method",
            ),
            (
                serde_json::json!({"url": "http://x/", "headers": {"Host": "y"}}),
                "set by the tool",
            ),
            (
                serde_json::json!({"url": "http://x/", "headers": {"X-A": "a\r\nb"}}),
                "CR, LF",
            ),
            (
                serde_json::json!({"url": "http://x/", "body": "a".repeat(70_000)}),
                "body is larger",
            ),
            (
                serde_json::json!({"url": "http://x/", "max_body_bytes": 10_000_000}),
                "max_body_bytes",
            ),
            (
                serde_json::json!({"url": "http://x/", "max_redirects": 300}),
                "max_redirects",
            ),
            (
                serde_json::json!({"url": "http://x/", "ca_pem": "nope"}),
                "ca_pem",
            ),
            (
                serde_json::json!({"url": "http://x/", "timeout_secs": 0}),
                "timeout_secs",
            ),
        ] {
            let a: HttpRequestArgs = serde_json::from_value(a.clone()).unwrap();
            let e = http_request_of(a).expect_err(why);
            assert_eq!(e.code, Code::InvalidArgument, "{why}");
            assert!(e.text.contains(why), "{why}: {}", e.text);
        }
        let (r, t) = http_request_of(args("https://ap.test/")).unwrap();
        assert_eq!(
            (r.method.as_str(), r.follow_redirects, r.max_body, t),
            ("GET", true, 4096, Duration::from_secs(15))
        );
    }

    #[test]
    fn throughput_arguments() {
        let d = |v: serde_json::Value| download_of(serde_json::from_value(v).unwrap());
        let ok = d(serde_json::json!({"url": "http://ap.test/big"})).unwrap();
        assert_eq!(
            (ok.duration, ok.max_bytes),
            (Duration::from_secs(5), 100 << 20)
        );
        for (v, why) in [
            (
                serde_json::json!({"url": "file:///dev/zero"}),
                "unsupported URL scheme",
            ),
            (
                serde_json::json!({"url": "http://x/", "seconds": 0}),
                "seconds",
            ),
            (
                serde_json::json!({"url": "http://x/", "seconds": 3600}),
                "seconds",
            ),
            (
                serde_json::json!({"url": "http://x/", "max_bytes": 0}),
                "max_bytes",
            ),
            (
                serde_json::json!({"url": "http://x/", "max_bytes": 1u64 << 40}),
                "max_bytes",
            ),
            (
                serde_json::json!({"url": "http://x/", "stall_ms": 1}),
                "stall_ms",
            ),
        ] {
            let e = d(v).expect_err(why);
            assert!(
                e.code == Code::InvalidArgument && e.text.contains(why),
                "{why}: {e}"
            );
        }
    }

    #[test]
    fn every_net_tool_has_an_output_schema() {
        let tools = WifiTools::net_router().list_all();
        assert_eq!(
            tools.len(),
            6,
            "{:?}",
            tools.iter().map(|t| &t.name).collect::<Vec<_>>()
        );
        for t in tools {
            assert!(t.output_schema.is_some(), "{} has no outputSchema", t.name);
        }
    }

    #[test]
    fn dns_servers() {
        assert_eq!(dns_server("10.0.2.1").unwrap().to_string(), "10.0.2.1:53");
        assert_eq!(dns_server("10.0.2.1:5353").unwrap().port(), 5353);
        assert_eq!(dns_server("[fd00::1]:53").unwrap().port(), 53);
        assert_eq!(dns_server("fd00::1").unwrap().port(), 53);
        assert!(dns_server("ns.example").is_err());
        assert!(dns_server("10.0.2.1:0").is_err());
    }
}
