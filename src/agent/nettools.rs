//! Network tests run from inside the box: ping, DNS, and what a connectivity check's answer means.
//!
//! The box's netns holds only `lo` and the WiFi interface, so everything here leaves through the
//! WiFi; there is no other route to take.

use std::net::{IpAddr, SocketAddr, SocketAddrV6};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use serde::Serialize;

use hickory_resolver::TokioResolver;
use hickory_resolver::config::{NameServerConfig, ResolverConfig, ResolverOpts};
use hickory_resolver::net::runtime::TokioRuntimeProvider;

/// Result of `network_ping`.
#[derive(Debug, Serialize, schemars::JsonSchema)]
pub struct PingReport {
    /// The address pinged.
    pub target: String,
    /// Its family: ipv4 or ipv6.
    pub family: String,
    /// Echo requests sent.
    pub sent: u32,
    /// Echo replies received.
    pub received: u32,
    /// Round-trip times of the replies, in milliseconds.
    pub rtt_ms: Vec<f64>,
    /// Average round-trip time, if any reply came.
    pub avg_ms: Option<f64>,
}

/// Result of `network_http_get`.
#[derive(Debug, Serialize, schemars::JsonSchema)]
pub struct HttpReport {
    /// The URL fetched.
    pub url: String,
    /// The address connected to.
    pub remote: String,
    /// HTTP status code.
    pub status: u16,
    /// Selected response headers (name, value).
    pub headers: Vec<(String, String)>,
    /// The body, as lossy UTF-8, cut at the size limit.
    pub body: String,
    /// Whether the body was cut.
    pub truncated: bool,
    /// Time to the full response in milliseconds.
    pub elapsed_ms: f64,
}

/// Resolves names through the WiFi's DNS servers (from the DHCP lease).
pub struct Dns {
    servers: Vec<IpAddr>,
    stacks: Option<crate::agent::net::stacks::Stacks>,
}

impl Dns {
    /// Use these servers; when empty, fall back to the box's `resolv.conf`.
    pub fn new(servers: Vec<IpAddr>, resolv_conf: &std::path::Path) -> Self {
        let servers = if servers.is_empty() {
            std::fs::read_to_string(resolv_conf)
                .unwrap_or_default()
                .lines()
                .filter_map(|l| l.strip_prefix("nameserver"))
                .filter_map(|s| s.trim().parse().ok())
                .collect()
        } else {
            servers
        };
        Self {
            servers,
            stacks: None,
        }
    }

    /// Also know which address families the box has (the network tools check a family against
    /// it before sending anything; see [`crate::agent::net::stacks`]).
    pub fn with_stacks(mut self, stacks: crate::agent::net::stacks::Stacks) -> Self {
        self.stacks = Some(stacks);
        self
    }

    /// The box's address families, when known.
    pub fn stacks(&self) -> Option<crate::agent::net::stacks::Stacks> {
        self.stacks
    }

    /// The servers this resolver asks.
    pub fn servers(&self) -> &[IpAddr] {
        &self.servers
    }

    /// Look a name up (A and AAAA); IP literals are returned as they are.
    pub async fn lookup(&self, name: &str) -> anyhow::Result<Vec<IpAddr>> {
        if let Ok(ip) = name.parse::<IpAddr>() {
            return Ok(vec![ip]);
        }
        if self.servers.is_empty() {
            bail!("no DNS server known: connect to a network first (DHCP provides the servers)");
        }
        let config = ResolverConfig::from_name_servers(
            self.servers
                .iter()
                .map(|ip| NameServerConfig::udp_and_tcp(*ip))
                .collect(),
        );
        let mut opts = ResolverOpts::default();
        opts.timeout = Duration::from_secs(2);
        opts.attempts = 2;
        opts.cache_size = 0;
        // The WiFi's DNS only: no /etc/hosts (the box's /etc is a short allow-list of the host's).
        opts.use_hosts_file = hickory_resolver::config::ResolveHosts::Never;
        let resolver: TokioResolver =
            TokioResolver::builder_with_config(config, TokioRuntimeProvider::default())
                .with_options(opts)
                .build()
                .context("building the DNS resolver")?;
        let fq = if name.ends_with('.') {
            name.to_string()
        } else {
            format!("{name}.")
        };
        let found = resolver
            .lookup_ip(fq.as_str())
            .await
            .with_context(|| format!("DNS lookup of {name} failed"))?;
        Ok(found.iter().collect())
    }
}

fn icmp_checksum(data: &[u8]) -> u16 {
    let mut sum = 0u32;
    for chunk in data.chunks(2) {
        let word = u16::from_be_bytes([chunk[0], *chunk.get(1).unwrap_or(&0)]);
        sum += word as u32;
    }
    while sum >> 16 != 0 {
        sum = (sum & 0xffff) + (sum >> 16);
    }
    !(sum as u16)
}

/// Build an ICMP echo request.
fn echo_request(id: u16, seq: u16) -> Vec<u8> {
    let mut pkt = vec![8u8, 0, 0, 0];
    pkt.extend_from_slice(&id.to_be_bytes());
    pkt.extend_from_slice(&seq.to_be_bytes());
    pkt.extend_from_slice(b"wifi-isolate-agent ping payload!");
    let c = icmp_checksum(&pkt);
    pkt[2..4].copy_from_slice(&c.to_be_bytes());
    pkt
}

/// Build an ICMPv6 echo request (the kernel fills in the checksum on ICMPv6 raw sockets).
fn echo_request_v6(id: u16, seq: u16) -> Vec<u8> {
    let mut pkt = vec![128u8, 0, 0, 0];
    pkt.extend_from_slice(&id.to_be_bytes());
    pkt.extend_from_slice(&seq.to_be_bytes());
    pkt.extend_from_slice(b"wifi-isolate-agent ping payload!");
    pkt
}

/// Is `icmp` (an ICMPv6 message: raw ICMPv6 sockets deliver no IPv6 header) an echo reply for
/// (id, seq)?
fn is_echo_reply_v6(icmp: &[u8], id: u16, seq: u16) -> bool {
    icmp.len() >= 8
        && icmp[0] == 129
        && u16::from_be_bytes([icmp[4], icmp[5]]) == id
        && u16::from_be_bytes([icmp[6], icmp[7]]) == seq
}

/// The address to use for `host`'s lookup result: IPv4 first, else IPv6.
pub fn pick_address(addrs: &[IpAddr]) -> Option<IpAddr> {
    addrs
        .iter()
        .find(|a| a.is_ipv4())
        .or_else(|| addrs.first())
        .copied()
}

/// Is `buf` (IPv4 header + ICMP) an echo reply from `from` for (id, seq)?
fn is_echo_reply(buf: &[u8], id: u16, seq: u16) -> bool {
    if buf.len() < 20 {
        return false;
    }
    let ihl = ((buf[0] & 0x0f) as usize) * 4;
    let icmp = match buf.get(ihl..) {
        Some(i) if i.len() >= 8 => i,
        _ => return false,
    };
    icmp[0] == 0
        && u16::from_be_bytes([icmp[4], icmp[5]]) == id
        && u16::from_be_bytes([icmp[6], icmp[7]]) == seq
}

/// Send `count` ICMP (IPv4) or ICMPv6 echo requests to `target`, one per 200 ms. `scope_id`
/// (the WiFi interface's index) is used for an IPv6 link-local target.
pub async fn ping(
    target: IpAddr,
    scope_id: u32,
    count: u32,
    timeout: Duration,
) -> anyhow::Result<PingReport> {
    tokio::task::spawn_blocking(move || ping_blocking(target, scope_id, count, timeout)).await?
}

fn ping_blocking(
    target: IpAddr,
    scope_id: u32,
    count: u32,
    timeout: Duration,
) -> anyhow::Result<PingReport> {
    use socket2::{Domain, Protocol, Socket, Type};
    let sock = match target {
        IpAddr::V4(_) => Socket::new(Domain::IPV4, Type::RAW, Some(Protocol::ICMPV4)),
        IpAddr::V6(_) => Socket::new(Domain::IPV6, Type::RAW, Some(Protocol::ICMPV6)),
    }
    .context("opening a raw ICMP socket (the box needs CAP_NET_RAW)")?;
    let id = (std::process::id() & 0xffff) as u16;
    let dest = match target {
        IpAddr::V6(v6) if v6.is_unicast_link_local() => {
            SocketAddr::V6(SocketAddrV6::new(v6, 0, 0, scope_id))
        }
        ip => SocketAddr::new(ip, 0),
    }
    .into();
    let mut rtts = Vec::new();
    for seq in 1..=count as u16 {
        let started = Instant::now();
        let request = match target {
            IpAddr::V4(_) => echo_request(id, seq),
            IpAddr::V6(_) => echo_request_v6(id, seq),
        };
        if let Err(e) = sock.send_to(&request, &dest) {
            bail!("cannot send to {target}: {e} (is there a route? connect first)");
        }
        loop {
            let left = timeout.saturating_sub(started.elapsed());
            if left.is_zero() {
                break;
            }
            sock.set_read_timeout(Some(left))?;
            let mut buf = [std::mem::MaybeUninit::<u8>::uninit(); 1500];
            match sock.recv_from(&mut buf) {
                Ok((n, from)) => {
                    // SAFETY: recv_from initialised the first n bytes.
                    let data: Vec<u8> = buf[..n]
                        .iter()
                        .map(|b| unsafe { b.assume_init() })
                        .collect();
                    let from_ip = from.as_socket().map(|a| a.ip());
                    let reply = match target {
                        IpAddr::V4(_) => is_echo_reply(&data, id, seq),
                        IpAddr::V6(_) => is_echo_reply_v6(&data, id, seq),
                    };
                    if from_ip == Some(target) && reply {
                        rtts.push(started.elapsed().as_secs_f64() * 1000.0);
                        break;
                    }
                }
                Err(e)
                    if matches!(
                        e.kind(),
                        std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                    ) =>
                {
                    break;
                }
                Err(e) => return Err(e.into()),
            }
        }
        if (seq as u32) < count {
            std::thread::sleep(Duration::from_millis(200));
        }
    }
    let avg = (!rtts.is_empty()).then(|| rtts.iter().sum::<f64>() / rtts.len() as f64);
    Ok(PingReport {
        target: target.to_string(),
        family: crate::agent::net::target::family_of(target).into(),
        sent: count,
        received: rtts.len() as u32,
        rtt_ms: rtts,
        avg_ms: avg,
    })
}

/// What a connectivity check URL's answer means.
#[derive(Debug, Serialize, schemars::JsonSchema, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum Connectivity {
    /// The check URL answered 204: full access.
    Full,
    /// A redirect or a page instead of 204: a captive portal is in the way.
    Captive,
    /// No answer.
    None,
}

/// Classify a connectivity-check answer (`generate_204` style).
pub fn classify(status: Option<u16>, body_len: usize) -> Connectivity {
    match status {
        Some(204) => Connectivity::Full,
        Some(200) if body_len == 0 => Connectivity::Full,
        Some(_) => Connectivity::Captive,
        None => Connectivity::None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn v6_reply_matching_and_address_choice() {
        let mut reply = echo_request_v6(0x1234, 7);
        assert!(
            !is_echo_reply_v6(&reply, 0x1234, 7),
            "a request is no reply"
        );
        reply[0] = 129;
        assert!(is_echo_reply_v6(&reply, 0x1234, 7));
        assert!(!is_echo_reply_v6(&reply, 0x1234, 8));
        assert!(!is_echo_reply_v6(&reply[..6], 0x1234, 7));
        let v4: IpAddr = "10.0.1.1".parse().unwrap();
        let v6: IpAddr = "fd00:10:1::1".parse().unwrap();
        assert_eq!(pick_address(&[v6, v4]), Some(v4), "IPv4 first");
        assert_eq!(pick_address(&[v6]), Some(v6), "else IPv6");
        assert_eq!(pick_address(&[]), None);
    }

    /// Real echo over raw sockets, both families, on loopback (needs CAP_NET_RAW: root).
    #[tokio::test]
    async fn ping_answers_over_ipv4_and_ipv6() {
        for target in ["127.0.0.1", "::1"] {
            let r = ping(target.parse().unwrap(), 1, 2, Duration::from_secs(2))
                .await
                .unwrap_or_else(|e| panic!("ping {target}: {e:#}"));
            assert_eq!((r.sent, r.received), (2, 2), "{target}: {r:?}");
        }
    }

    #[test]
    fn checksum_and_reply_matching() {
        let pkt = echo_request(0x1234, 7);
        assert_eq!(
            icmp_checksum(&pkt),
            0,
            "a packet with its checksum sums to zero"
        );
        let mut reply = vec![0x45u8; 20];
        let mut icmp = pkt.clone();
        icmp[0] = 0;
        reply.extend_from_slice(&icmp);
        assert!(is_echo_reply(&reply, 0x1234, 7));
        assert!(!is_echo_reply(&reply, 0x1234, 8));
        assert!(!is_echo_reply(&reply[..22], 0x1234, 7));
        assert!(!is_echo_reply(&[], 1, 1));
    }

    #[test]
    fn connectivity_classes() {
        assert_eq!(classify(Some(204), 0), Connectivity::Full);
        assert_eq!(classify(Some(302), 0), Connectivity::Captive);
        assert_eq!(classify(Some(200), 120), Connectivity::Captive);
        assert_eq!(classify(None, 0), Connectivity::None);
    }
}
