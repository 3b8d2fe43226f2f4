//! What a captured frame is, and the summary a model reads: per protocol a count and the first
//! and last time, the EAPOL messages (the 4-way handshake's 1/4..4/4 from the key-information
//! bits, the group-key handshake, EAP), the DHCP exchange, the DNS queries.
//!
//! Every frame was read off the air: hostile. Each parser reads through `get`, which returns
//! `None` past the end, walks a bounded number of headers, labels and options, and never
//! panics (the unit tests feed every truncation of real frames and random bytes).

use std::collections::BTreeMap;
use std::net::Ipv4Addr;

use schemars::JsonSchema;
use serde::Serialize;

/// At most this many entries in each of the summary's lists (`eapol`, `dhcp`, `dns_queries`);
/// `lists_truncated` says when more were seen.
pub const LIST_CAP: usize = 64;

/// The protocol of a frame, as the summary and the filters name it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Proto {
    /// 802.1X (EtherType 0x888e): EAPOL-Key, EAP, start, logoff.
    Eapol,
    /// ARP.
    Arp,
    /// DHCP (UDP 67/68).
    Dhcp,
    /// DHCPv6 (UDP 546/547).
    Dhcpv6,
    /// DNS (UDP or TCP port 53).
    Dns,
    /// mDNS (UDP 5353).
    Mdns,
    /// ICMP or ICMPv6 (neighbour discovery and router adverts included).
    Icmp,
    /// Other TCP.
    Tcp,
    /// Other UDP.
    Udp,
    /// Other IPv4 (or a later fragment).
    Ipv4,
    /// Other IPv6.
    Ipv6,
    /// Anything else (another EtherType, or a frame too short to say).
    Other,
}

impl Proto {
    /// The name in the summary.
    pub fn name(self) -> &'static str {
        match self {
            Proto::Eapol => "eapol",
            Proto::Arp => "arp",
            Proto::Dhcp => "dhcp",
            Proto::Dhcpv6 => "dhcpv6",
            Proto::Dns => "dns",
            Proto::Mdns => "mdns",
            Proto::Icmp => "icmp",
            Proto::Tcp => "tcp",
            Proto::Udp => "udp",
            Proto::Ipv4 => "ipv4",
            Proto::Ipv6 => "ipv6",
            Proto::Other => "other",
        }
    }
}

/// What one frame is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Decoded {
    /// Its protocol.
    pub proto: Proto,
    /// TCP source and destination ports, for a TCP segment (DNS over TCP included).
    pub tcp_ports: Option<(u16, u16)>,
    /// What the summary lists of it.
    pub detail: Detail,
}

/// The part of a frame the summary lists.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Detail {
    /// Nothing beyond the count.
    None,
    /// An EAPOL message: `1/4` … `4/4`, `group 1/2`, `eap request (identity)`, `start`, ….
    Eapol(String),
    /// A DHCP message.
    Dhcp {
        /// DISCOVER, OFFER, REQUEST, ACK, NAK, DECLINE, RELEASE, INFORM (or `type N`).
        kind: String,
        /// Transaction id.
        xid: u32,
        /// `yiaddr`, when not 0.0.0.0.
        your_ip: Option<Ipv4Addr>,
    },
    /// A DNS message.
    Dns {
        /// A response (QR set).
        response: bool,
        /// The first question's name (escaped: printable ASCII only).
        name: Option<String>,
        /// The first question's type (A, AAAA, … or `TYPE N`).
        qtype: Option<String>,
        /// The response code of a response.
        rcode: u8,
    },
}

fn get(b: &[u8], from: usize, len: usize) -> Option<&[u8]> {
    b.get(from..from.checked_add(len)?)
}

fn u16_at(b: &[u8], at: usize) -> Option<u16> {
    get(b, at, 2).map(|s| u16::from_be_bytes([s[0], s[1]]))
}

fn u32_at(b: &[u8], at: usize) -> Option<u32> {
    get(b, at, 4).map(|s| u32::from_be_bytes([s[0], s[1], s[2], s[3]]))
}

fn plain(proto: Proto) -> Decoded {
    Decoded {
        proto,
        tcp_ports: None,
        detail: Detail::None,
    }
}

/// What an Ethernet frame is (one 802.1Q tag is looked through).
pub fn decode(frame: &[u8]) -> Decoded {
    let Some(mut ethertype) = u16_at(frame, 12) else {
        return plain(Proto::Other);
    };
    let mut at = 14;
    if ethertype == 0x8100 {
        let Some(inner) = u16_at(frame, 16) else {
            return plain(Proto::Other);
        };
        ethertype = inner;
        at = 18;
    }
    let payload = &frame[at.min(frame.len())..];
    match ethertype {
        0x888e => Decoded {
            proto: Proto::Eapol,
            tcp_ports: None,
            detail: eapol(payload).map_or(Detail::None, Detail::Eapol),
        },
        0x0806 => plain(Proto::Arp),
        0x0800 => ipv4(payload),
        0x86dd => ipv6(payload),
        _ => plain(Proto::Other),
    }
}

/// The EAPOL message's name.
fn eapol(p: &[u8]) -> Option<String> {
    let kind = *p.get(1)?;
    let body_len = u16_at(p, 2)? as usize;
    let body = &p[4..p.len().min(4 + body_len)];
    match kind {
        0 => {
            let code = *body.first()?;
            let name = match code {
                1 => "request",
                2 => "response",
                3 => return Some("eap success".into()),
                4 => return Some("eap failure".into()),
                _ => return Some(format!("eap code {code}")),
            };
            let method = match body.get(4) {
                Some(1) => "identity".to_string(),
                Some(3) => "nak".into(),
                Some(13) => "tls".into(),
                Some(21) => "ttls".into(),
                Some(25) => "peap".into(),
                Some(26) => "mschapv2".into(),
                Some(t) => format!("type {t}"),
                None => "no type".into(),
            };
            Some(format!("eap {name} ({method})"))
        }
        1 => Some("start".into()),
        2 => Some("logoff".into()),
        3 => Some(key_message(body).unwrap_or_else(|| "key (truncated)".into())),
        t => Some(format!("type {t}")),
    }
}

/// Which handshake message an EAPOL-Key frame is, from its key-information bits (IEEE
/// 802.11-2020 12.7.2): pairwise with Ack and no MIC is 1/4, Ack and MIC 3/4; without Ack, MIC
/// set: 2/4 when it carries key data (the station's RSN element), 4/4 when not. Group-key
/// frames (pairwise bit clear) are `group 1/2` (Ack) and `group 2/2`.
fn key_message(body: &[u8]) -> Option<String> {
    let info = u16_at(body, 1)?;
    let pairwise = info & (1 << 3) != 0;
    let ack = info & (1 << 7) != 0;
    let mic = info & (1 << 8) != 0;
    let secure = info & (1 << 9) != 0;
    let request = info & (1 << 11) != 0;
    if request {
        return Some("key request".into());
    }
    if !pairwise {
        return Some(if ack { "group 1/2" } else { "group 2/2" }.into());
    }
    Some(
        match (ack, mic) {
            (true, false) => "1/4",
            (true, true) => "3/4",
            (false, true) => match key_data_len(body) {
                Some(0) => "4/4",
                Some(_) => "2/4",
                None if secure => "4/4",
                None => "2/4",
            },
            (false, false) => "key (no ack, no mic)",
        }
        .into(),
    )
}

/// The key data length of an EAPOL-Key body: the fields before the MIC are 77 bytes; the MIC is
/// 16 bytes for most AKMs, 24 for the 192-bit suite, 0 for FILS — the one whose key data length
/// accounts for the rest of the body is taken.
fn key_data_len(body: &[u8]) -> Option<usize> {
    [16usize, 24, 32, 0].into_iter().find_map(|mic| {
        let n = u16_at(body, 77 + mic)? as usize;
        (77 + mic + 2 + n == body.len()).then_some(n)
    })
}

fn ipv4(p: &[u8]) -> Decoded {
    let Some(&vihl) = p.first() else {
        return plain(Proto::Ipv4);
    };
    let ihl = (vihl & 0x0f) as usize * 4;
    if vihl >> 4 != 4 || ihl < 20 {
        return plain(Proto::Ipv4);
    }
    let (Some(total), Some(frag), Some(&proto)) = (u16_at(p, 2), u16_at(p, 6), p.get(9)) else {
        return plain(Proto::Ipv4);
    };
    let end = (total as usize).clamp(ihl, p.len().max(ihl));
    let l4 = p.get(ihl..end.min(p.len())).unwrap_or(&[]);
    if frag & 0x1fff != 0 {
        return plain(Proto::Ipv4);
    }
    transport(proto, l4, Proto::Ipv4)
}

fn ipv6(p: &[u8]) -> Decoded {
    let Some(mut next) = p.get(6).copied() else {
        return plain(Proto::Ipv6);
    };
    let mut at = 40;
    // hop-by-hop (MLD reports carry one), routing, destination options, fragment: at most 8
    for _ in 0..8 {
        match next {
            0 | 43 | 60 => {
                let (Some(&n), Some(&len)) = (p.get(at), p.get(at + 1)) else {
                    return plain(Proto::Ipv6);
                };
                next = n;
                at += (len as usize + 1) * 8;
            }
            44 => {
                let (Some(&n), Some(off)) = (p.get(at), u16_at(p, at + 2)) else {
                    return plain(Proto::Ipv6);
                };
                if off >> 3 != 0 {
                    return plain(Proto::Ipv6);
                }
                next = n;
                at += 8;
            }
            _ => break,
        }
    }
    let l4 = p.get(at..).unwrap_or(&[]);
    transport(next, l4, Proto::Ipv6)
}

fn transport(proto: u8, l4: &[u8], ip: Proto) -> Decoded {
    match proto {
        1 | 58 => plain(Proto::Icmp),
        17 => {
            let (Some(src), Some(dst)) = (u16_at(l4, 0), u16_at(l4, 2)) else {
                return plain(Proto::Udp);
            };
            let data = l4.get(8..).unwrap_or(&[]);
            let is = |port| src == port || dst == port;
            if is(53) {
                dns(data)
            } else if (src == 67 || src == 68) && (dst == 67 || dst == 68) {
                dhcp(data)
            } else if is(546) || is(547) {
                plain(Proto::Dhcpv6)
            } else if is(5353) {
                plain(Proto::Mdns)
            } else {
                plain(Proto::Udp)
            }
        }
        6 => {
            let (Some(src), Some(dst)) = (u16_at(l4, 0), u16_at(l4, 2)) else {
                return plain(Proto::Tcp);
            };
            let mut d = plain(Proto::Tcp);
            if src == 53 || dst == 53 {
                let off = l4.get(12).map_or(20, |b| (b >> 4) as usize * 4);
                // DNS over TCP: a 2-byte length, then the message (only a segment that starts
                // one says what it is)
                d = match l4.get(off + 2..) {
                    Some(msg) if !msg.is_empty() => dns(msg),
                    _ => plain(Proto::Dns),
                };
            }
            d.tcp_ports = Some((src, dst));
            d
        }
        _ => plain(ip),
    }
}

fn dhcp(b: &[u8]) -> Decoded {
    let mut d = plain(Proto::Dhcp);
    let (Some(xid), Some(yi)) = (u32_at(b, 4), u32_at(b, 16)) else {
        return d;
    };
    if u32_at(b, 236) != Some(0x6382_5363) {
        return d;
    }
    let mut at = 240;
    let mut kind = None;
    // options: code, length, value; at most 255 of them
    for _ in 0..255 {
        match b.get(at) {
            None | Some(255) => break,
            Some(0) => at += 1,
            Some(&code) => {
                let Some(&len) = b.get(at + 1) else { break };
                if code == 53 {
                    kind = get(b, at + 2, 1).map(|v| v[0]);
                    break;
                }
                at += 2 + len as usize;
            }
        }
    }
    let Some(kind) = kind else { return d };
    let name = match kind {
        1 => "DISCOVER".to_string(),
        2 => "OFFER".into(),
        3 => "REQUEST".into(),
        4 => "DECLINE".into(),
        5 => "ACK".into(),
        6 => "NAK".into(),
        7 => "RELEASE".into(),
        8 => "INFORM".into(),
        k => format!("type {k}"),
    };
    let yi = Ipv4Addr::from(yi);
    d.detail = Detail::Dhcp {
        kind: name,
        xid,
        your_ip: (!yi.is_unspecified()).then_some(yi),
    };
    d
}

/// A DNS name at `at` in `msg`, escaped (printable ASCII but `.` and `\` as is, others `\xNN`):
/// at most 255 bytes of labels and 16 compression pointers.
fn dns_name(msg: &[u8], mut at: usize) -> Option<(String, usize)> {
    let mut out = String::new();
    let mut raw_len = 0usize;
    let mut after = None;
    let mut jumps = 0;
    loop {
        let len = *msg.get(at)? as usize;
        match len {
            0 => {
                let end = after.unwrap_or(at + 1);
                if out.is_empty() {
                    out.push('.');
                }
                return Some((out, end));
            }
            l if l & 0xc0 == 0xc0 => {
                jumps += 1;
                if jumps > 16 {
                    return None;
                }
                let ptr = (u16_at(msg, at)? & 0x3fff) as usize;
                after.get_or_insert(at + 2);
                at = ptr;
            }
            l if l & 0xc0 != 0 => return None,
            l => {
                raw_len += l + 1;
                if raw_len > 255 {
                    return None;
                }
                let label = get(msg, at + 1, l)?;
                if !out.is_empty() {
                    out.push('.');
                }
                for &c in label {
                    if c.is_ascii_graphic() && c != b'.' && c != b'\\' {
                        out.push(c as char);
                    } else {
                        out.push_str(&format!("\\x{c:02x}"));
                    }
                }
                at += 1 + l;
            }
        }
    }
}

fn qtype_name(t: u16) -> String {
    match t {
        1 => "A".into(),
        2 => "NS".into(),
        5 => "CNAME".into(),
        6 => "SOA".into(),
        12 => "PTR".into(),
        15 => "MX".into(),
        16 => "TXT".into(),
        28 => "AAAA".into(),
        33 => "SRV".into(),
        65 => "HTTPS".into(),
        255 => "ANY".into(),
        t => format!("TYPE{t}"),
    }
}

fn dns(msg: &[u8]) -> Decoded {
    let mut d = plain(Proto::Dns);
    let (Some(flags), Some(qd)) = (u16_at(msg, 2), u16_at(msg, 4)) else {
        return d;
    };
    let (name, qtype) = match (qd > 0).then(|| dns_name(msg, 12)).flatten() {
        Some((n, end)) => (Some(n), u16_at(msg, end).map(qtype_name)),
        None => (None, None),
    };
    d.detail = Detail::Dns {
        response: flags & 0x8000 != 0,
        name,
        qtype,
        rcode: (flags & 0x0f) as u8,
    };
    d
}

/// One protocol's count in the summary.
#[derive(Debug, Clone, PartialEq, Serialize, JsonSchema)]
pub struct ProtoCount {
    /// eapol, arp, dhcp, dhcpv6, dns, mdns, icmp, tcp, udp, ipv4, ipv6, other.
    pub protocol: String,
    /// Frames captured.
    pub count: u32,
    /// When the first was seen, ms after the capture started.
    pub first_ms: u64,
    /// When the last was seen, ms after the capture started.
    pub last_ms: u64,
}

/// One EAPOL frame.
#[derive(Debug, Clone, PartialEq, Serialize, JsonSchema)]
pub struct EapolEvent {
    /// ms after the capture started.
    pub time_ms: u64,
    /// `in` (from the network) or `out` (sent by the box).
    pub direction: String,
    /// `1/4` … `4/4` (the 4-way handshake), `group 1/2`, `group 2/2`, `key request`,
    /// `eap request (identity)`, `eap response (peap)`, `eap success`, `start`, ….
    pub message: String,
}

/// One DHCP message.
#[derive(Debug, Clone, PartialEq, Serialize, JsonSchema)]
pub struct DhcpEvent {
    /// ms after the capture started.
    pub time_ms: u64,
    /// `in` or `out`.
    pub direction: String,
    /// DISCOVER, OFFER, REQUEST, ACK, NAK, DECLINE, RELEASE, INFORM.
    pub message: String,
    /// Transaction id, hex.
    pub xid: String,
    /// The address offered or acknowledged (yiaddr), when there is one.
    pub your_ip: Option<String>,
}

/// A name the box asked DNS about.
#[derive(Debug, Clone, PartialEq, Serialize, JsonSchema)]
pub struct DnsQuery {
    /// The name (non-printable bytes as `\xNN`).
    pub name: String,
    /// Query types asked (A, AAAA, …).
    pub types: Vec<String>,
    /// How many queries for it.
    pub queries: u32,
    /// Responses seen for it.
    pub responses: u32,
    /// Response codes other than NOERROR (3 = NXDOMAIN, 2 = SERVFAIL).
    pub error_rcodes: Vec<u8>,
    /// ms after the capture started, of the first query.
    pub first_ms: u64,
}

/// What the capture saw, for a model to read.
#[derive(Debug, Clone, Default, PartialEq, Serialize, JsonSchema)]
pub struct Summary {
    /// Per protocol, in the order of the protocol list.
    pub protocols: Vec<ProtoCount>,
    /// The EAPOL frames, in order (at most 64).
    pub eapol: Vec<EapolEvent>,
    /// Which messages of the 4-way handshake were seen (`1/4` … `4/4`, each once here).
    pub handshake_messages: Vec<String>,
    /// All four messages of the 4-way handshake were seen.
    pub handshake_complete: bool,
    /// The DHCP messages, in order (at most 64).
    pub dhcp: Vec<DhcpEvent>,
    /// The DHCP exchange as a line: `DISCOVER OFFER REQUEST ACK`.
    pub dhcp_exchange: String,
    /// The names asked of DNS, in order of the first query (at most 64).
    pub dns_queries: Vec<DnsQuery>,
    /// A list above stopped at 64 entries.
    pub lists_truncated: bool,
}

/// Builds a [`Summary`] frame by frame.
#[derive(Debug, Default)]
pub struct Summarizer {
    counts: BTreeMap<Proto, ProtoCount>,
    s: Summary,
}

impl Summarizer {
    /// Account for one captured frame, seen `time_ms` after the start, sent by the box when
    /// `outgoing`.
    pub fn add(&mut self, time_ms: u64, outgoing: bool, d: &Decoded) {
        let c = self.counts.entry(d.proto).or_insert_with(|| ProtoCount {
            protocol: d.proto.name().into(),
            count: 0,
            first_ms: time_ms,
            last_ms: time_ms,
        });
        c.count += 1;
        c.last_ms = time_ms;
        let direction = if outgoing { "out" } else { "in" }.to_string();
        let s = &mut self.s;
        match &d.detail {
            Detail::None => {}
            Detail::Eapol(m) => {
                if matches!(m.as_str(), "1/4" | "2/4" | "3/4" | "4/4")
                    && !s.handshake_messages.contains(m)
                {
                    s.handshake_messages.push(m.clone());
                    s.handshake_messages.sort();
                }
                if s.eapol.len() < LIST_CAP {
                    s.eapol.push(EapolEvent {
                        time_ms,
                        direction,
                        message: m.clone(),
                    });
                } else {
                    s.lists_truncated = true;
                }
            }
            Detail::Dhcp { kind, xid, your_ip } => {
                if s.dhcp.len() < LIST_CAP {
                    s.dhcp.push(DhcpEvent {
                        time_ms,
                        direction,
                        message: kind.clone(),
                        xid: format!("{xid:08x}"),
                        your_ip: your_ip.map(|ip| ip.to_string()),
                    });
                } else {
                    s.lists_truncated = true;
                }
            }
            Detail::Dns {
                response,
                name: Some(name),
                qtype,
                rcode,
            } => {
                let known = s.dns_queries.iter().position(|q| &q.name == name);
                let i = match known {
                    Some(i) => i,
                    None if s.dns_queries.len() < LIST_CAP => {
                        s.dns_queries.push(DnsQuery {
                            name: name.clone(),
                            types: vec![],
                            queries: 0,
                            responses: 0,
                            error_rcodes: vec![],
                            first_ms: time_ms,
                        });
                        s.dns_queries.len() - 1
                    }
                    None => {
                        s.lists_truncated = true;
                        return;
                    }
                };
                let q = &mut s.dns_queries[i];
                if *response {
                    q.responses += 1;
                    if *rcode != 0 && !q.error_rcodes.contains(rcode) {
                        q.error_rcodes.push(*rcode);
                    }
                } else {
                    q.queries += 1;
                    if let Some(t) = qtype
                        && !q.types.contains(t)
                        && q.types.len() < 8
                    {
                        q.types.push(t.clone());
                    }
                }
            }
            Detail::Dns { name: None, .. } => {}
        }
    }

    /// The summary.
    pub fn finish(mut self) -> Summary {
        self.s.protocols = self.counts.into_values().collect();
        self.s.handshake_complete = self.s.handshake_messages.len() == 4;
        self.s.dhcp_exchange = self
            .s
            .dhcp
            .iter()
            .map(|d| d.message.as_str())
            .collect::<Vec<_>>()
            .join(" ");
        self.s
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    fn eth(ethertype: u16, payload: &[u8]) -> Vec<u8> {
        let mut f = vec![0x02, 0, 0, 0, 0, 1, 0x02, 0, 0, 0, 0, 2];
        f.extend_from_slice(&ethertype.to_be_bytes());
        f.extend_from_slice(payload);
        f
    }

    /// An EAPOL-Key frame with key information `info` and `key_data` bytes of key data (16-byte
    /// MIC), as a WPA2-PSK handshake sends them.
    pub(crate) fn eapol_key(info: u16, key_data: usize) -> Vec<u8> {
        let mut body = vec![2u8];
        body.extend_from_slice(&info.to_be_bytes());
        body.extend_from_slice(&16u16.to_be_bytes());
        body.extend_from_slice(&[0u8; 8 + 32 + 16 + 8 + 8 + 16]);
        body.extend_from_slice(&(key_data as u16).to_be_bytes());
        body.extend(std::iter::repeat_n(0xdd, key_data));
        let mut p = vec![2u8, 3];
        p.extend_from_slice(&(body.len() as u16).to_be_bytes());
        p.extend_from_slice(&body);
        eth(0x888e, &p)
    }

    /// The four messages of a WPA2 4-way handshake (key info of hostapd / wpa_supplicant).
    pub(crate) fn handshake() -> [Vec<u8>; 4] {
        [
            eapol_key(0x008a, 0),  // pairwise, ack, HMAC-SHA1/AES
            eapol_key(0x010a, 22), // pairwise, mic; the RSN element
            eapol_key(0x13ca, 56), // pairwise, install, ack, mic, secure, encrypted data
            eapol_key(0x030a, 0),  // pairwise, mic, secure
        ]
    }

    fn ip4_udp(src: u16, dst: u16, data: &[u8]) -> Vec<u8> {
        let mut ip = vec![0x45, 0];
        ip.extend_from_slice(&((20 + 8 + data.len()) as u16).to_be_bytes());
        ip.extend_from_slice(&[0, 0, 0, 0, 64, 17, 0, 0, 10, 0, 0, 1, 10, 0, 0, 2]);
        ip.extend_from_slice(&src.to_be_bytes());
        ip.extend_from_slice(&dst.to_be_bytes());
        ip.extend_from_slice(&((8 + data.len()) as u16).to_be_bytes());
        ip.extend_from_slice(&[0, 0]);
        ip.extend_from_slice(data);
        eth(0x0800, &ip)
    }

    pub(crate) fn dhcp_msg(kind: u8, yiaddr: [u8; 4]) -> Vec<u8> {
        let mut b = vec![if kind == 2 || kind == 5 { 2 } else { 1 }, 1, 6, 0];
        b.extend_from_slice(&0x1234_5678u32.to_be_bytes());
        b.extend_from_slice(&[0u8; 8]);
        b.extend_from_slice(&yiaddr);
        b.extend_from_slice(&[0u8; 8 + 16 + 64 + 128]);
        b.extend_from_slice(&0x6382_5363u32.to_be_bytes());
        b.extend_from_slice(&[61, 7, 1, 2, 0, 0, 0, 0, 3, 53, 1, kind, 255]);
        let (s, d) = if kind == 2 || kind == 5 {
            (67, 68)
        } else {
            (68, 67)
        };
        ip4_udp(s, d, &b)
    }

    pub(crate) fn dns_query(name: &str, response: bool) -> Vec<u8> {
        let flags: u16 = if response { 0x8183 } else { 0x0100 };
        let mut m = vec![0x12, 0x34];
        m.extend_from_slice(&flags.to_be_bytes());
        m.extend_from_slice(&[0, 1, 0, 0, 0, 0, 0, 0]);
        for l in name.split('.') {
            m.push(l.len() as u8);
            m.extend_from_slice(l.as_bytes());
        }
        m.extend_from_slice(&[0, 0, 1, 0, 1]);
        if response {
            ip4_udp(53, 40000, &m)
        } else {
            ip4_udp(40000, 53, &m)
        }
    }

    #[test]
    fn the_four_way_handshake_is_named_from_the_key_information_bits() {
        let names: Vec<_> = handshake()
            .iter()
            .map(|f| match decode(f).detail {
                Detail::Eapol(m) => m,
                d => panic!("{d:?}"),
            })
            .collect();
        assert_eq!(names, ["1/4", "2/4", "3/4", "4/4"]);
        assert_eq!(
            decode(&eapol_key(0x0382, 40)).detail,
            Detail::Eapol("group 1/2".into())
        );
        assert_eq!(
            decode(&eapol_key(0x0302, 0)).detail,
            Detail::Eapol("group 2/2".into())
        );
        // a rekey's 2/4 has the secure bit set and key data: still 2/4
        assert_eq!(
            decode(&eapol_key(0x030a, 22)).detail,
            Detail::Eapol("2/4".into())
        );
    }

    #[test]
    fn eap_frames_are_named() {
        let f = eth(0x888e, &[1, 0, 0, 5, 1, 7, 0, 5, 1]);
        assert_eq!(
            decode(&f).detail,
            Detail::Eapol("eap request (identity)".into())
        );
        let f = eth(0x888e, &[1, 0, 0, 4, 3, 7, 0, 4]);
        assert_eq!(decode(&f).detail, Detail::Eapol("eap success".into()));
        assert_eq!(
            decode(&eth(0x888e, &[1, 1, 0, 0])).detail,
            Detail::Eapol("start".into())
        );
    }

    #[test]
    fn dhcp_and_dns_are_read() {
        let d = decode(&dhcp_msg(2, [10, 0, 0, 9]));
        assert_eq!(d.proto, Proto::Dhcp);
        assert_eq!(
            d.detail,
            Detail::Dhcp {
                kind: "OFFER".into(),
                xid: 0x1234_5678,
                your_ip: Some(Ipv4Addr::new(10, 0, 0, 9))
            }
        );
        let d = decode(&dns_query("ap.test", false));
        assert_eq!(d.proto, Proto::Dns);
        assert_eq!(
            d.detail,
            Detail::Dns {
                response: false,
                name: Some("ap.test".into()),
                qtype: Some("A".into()),
                rcode: 0
            }
        );
        let d = decode(&dns_query("x\u{1}.test", true));
        assert!(
            matches!(&d.detail, Detail::Dns { response: true, name: Some(n), rcode: 3, .. } if n == "x\\x01.test"),
            "{d:?}"
        );
    }

    #[test]
    fn the_summary_lists_the_exchange() {
        let mut s = Summarizer::default();
        for (i, f) in handshake().iter().enumerate() {
            s.add(i as u64, i % 2 == 1, &decode(f));
        }
        for (i, k) in [1u8, 2, 3, 5].into_iter().enumerate() {
            s.add(
                10 + i as u64,
                k % 2 == 1,
                &decode(&dhcp_msg(k, [10, 0, 0, 9])),
            );
        }
        s.add(20, true, &decode(&dns_query("ap.test", false)));
        s.add(21, false, &decode(&dns_query("ap.test", true)));
        let s = s.finish();
        assert!(s.handshake_complete);
        assert_eq!(s.handshake_messages, ["1/4", "2/4", "3/4", "4/4"]);
        assert_eq!(s.eapol[1].direction, "out");
        assert_eq!(s.dhcp_exchange, "DISCOVER OFFER REQUEST ACK");
        assert_eq!(s.dhcp[3].your_ip.as_deref(), Some("10.0.0.9"));
        assert_eq!(s.dns_queries.len(), 1);
        assert_eq!(s.dns_queries[0].queries, 1);
        assert_eq!(s.dns_queries[0].responses, 1);
        assert_eq!(s.dns_queries[0].error_rcodes, [3]);
        let eapol = s.protocols.iter().find(|p| p.protocol == "eapol").unwrap();
        assert_eq!((eapol.count, eapol.first_ms, eapol.last_ms), (4, 0, 3));
    }

    #[test]
    fn lists_stop_at_their_cap() {
        let mut s = Summarizer::default();
        for i in 0..(LIST_CAP as u64 + 10) {
            s.add(i, false, &decode(&dhcp_msg(1, [0; 4])));
            s.add(i, false, &decode(&dns_query(&format!("n{i}.test"), false)));
        }
        let s = s.finish();
        assert_eq!(s.dhcp.len(), LIST_CAP);
        assert_eq!(s.dns_queries.len(), LIST_CAP);
        assert!(s.lists_truncated);
        assert_eq!(s.protocols[0].count, LIST_CAP as u32 + 10);
    }

    #[test]
    fn dns_compression_loops_and_overlong_names_are_refused() {
        // a pointer to itself
        let mut m = vec![0u8; 12];
        m[5] = 1;
        m.extend_from_slice(&[0xc0, 12, 0, 1, 0, 1]);
        assert!(matches!(dns(&m).detail, Detail::Dns { name: None, .. }));
        // 300 bytes of labels
        let mut m = vec![0u8; 12];
        m[5] = 1;
        for _ in 0..10 {
            m.push(30);
            m.extend_from_slice(&[b'a'; 30]);
        }
        m.push(0);
        assert!(matches!(dns(&m).detail, Detail::Dns { name: None, .. }));
    }

    /// Every truncation of every kind of frame, and random bytes behind every EtherType: no
    /// panic, always an answer.
    #[test]
    fn truncated_and_garbage_frames_never_panic() {
        let mut frames: Vec<Vec<u8>> = handshake().to_vec();
        frames.push(dhcp_msg(5, [10, 0, 0, 9]));
        frames.push(dns_query("a.b.c.test", false));
        frames.push(eth(0x888e, &[1, 0, 0, 5, 1, 7, 0, 5, 1]));
        for f in &frames {
            for n in 0..=f.len() {
                let _ = decode(&f[..n]);
            }
        }
        let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
        let mut next = || {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x
        };
        for round in 0..20_000 {
            let len = (next() % 400) as usize;
            let mut f: Vec<u8> = (0..len).map(|_| next() as u8).collect();
            if f.len() >= 14 {
                let et = [0x888eu16, 0x0800, 0x86dd, 0x0806, 0x8100][round % 5];
                f[12..14].copy_from_slice(&et.to_be_bytes());
                if f.len() > 14 && et == 0x0800 {
                    f[14] = 0x45;
                }
                if f.len() > 24 && et == 0x0800 {
                    f[23] = [6u8, 17][round % 2];
                }
            }
            // and the same bytes straight into each parser
            let _ = (
                dns(&f),
                dhcp(&f),
                eapol(&f),
                key_message(&f),
                ipv4(&f),
                ipv6(&f),
            );
            let d = decode(&f);
            let mut s = Summarizer::default();
            s.add(0, false, &d);
            let _ = s.finish();
        }
    }
}
