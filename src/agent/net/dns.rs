//! `network_dns_lookup`: one question (A, AAAA, CNAME, MX, TXT, NS, SRV, PTR) asked of the lease's
//! DNS servers or a chosen one, over UDP (TCP when the answer is truncated), no cache and no
//! search list — so the answer, its TTLs, the server that gave it and the time it took are what
//! the network said. NXDOMAIN, SERVFAIL, REFUSED, an empty answer and no answer at all are
//! different outcomes.

use std::net::{IpAddr, SocketAddr};
use std::time::{Duration, Instant};

use hickory_proto::op::{Message, MessageType, Query, ResponseCode};
use hickory_proto::rr::{Name, RecordType};
use serde::{Deserialize, Serialize};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use super::ms_since;
use crate::agent::failure::{Code, Failure};

/// Record types a caller may ask for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "UPPERCASE")]
pub enum DnsType {
    /// IPv4 address.
    A,
    /// IPv6 address.
    Aaaa,
    /// Canonical name.
    Cname,
    /// Mail exchanger.
    Mx,
    /// Text.
    Txt,
    /// Name server.
    Ns,
    /// Service locator (`_service._proto.name`).
    Srv,
    /// Reverse pointer (give an IP address or an `in-addr.arpa`/`ip6.arpa` name).
    Ptr,
}

impl DnsType {
    fn record_type(self) -> RecordType {
        match self {
            DnsType::A => RecordType::A,
            DnsType::Aaaa => RecordType::AAAA,
            DnsType::Cname => RecordType::CNAME,
            DnsType::Mx => RecordType::MX,
            DnsType::Txt => RecordType::TXT,
            DnsType::Ns => RecordType::NS,
            DnsType::Srv => RecordType::SRV,
            DnsType::Ptr => RecordType::PTR,
        }
    }
}

/// How a lookup ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, schemars::JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum Outcome {
    /// NOERROR with records of the type asked for (or a CNAME chain to them).
    Answer,
    /// NOERROR and no record of that type (the name exists).
    NoData,
    /// NXDOMAIN: the name does not exist.
    Nxdomain,
    /// SERVFAIL: the server could not answer.
    Servfail,
    /// REFUSED: the server will not answer this client.
    Refused,
    /// Another response code (see `rcode`).
    OtherRcode,
    /// No server answered in time.
    Timeout,
    /// No server answered, and not for lack of time: refused (ICMP port unreachable) or no route.
    NoResponse,
}

/// One resource record.
#[derive(Debug, Clone, Serialize, schemars::JsonSchema)]
pub struct Answer {
    /// Owner name.
    pub name: String,
    /// Record type (`A`, `MX`, …).
    #[serde(rename = "type")]
    pub rtype: String,
    /// Time to live, seconds.
    pub ttl: u32,
    /// The record data in zone-file form (`10 mail.lab.test.`, an address, a quoted text).
    pub data: String,
}

/// One question's answer.
#[derive(Debug, Clone, Serialize, schemars::JsonSchema)]
pub struct Lookup {
    /// The name asked (fully qualified; a reverse name for PTR of an address).
    pub query: String,
    /// The type asked.
    #[serde(rename = "type")]
    pub rtype: String,
    /// How it ended.
    pub outcome: Outcome,
    /// The response code (`NOERROR`, `NXDOMAIN`, `SERVFAIL`, …), when a server answered.
    pub rcode: Option<String>,
    /// The server (address:port) that answered.
    pub server: Option<String>,
    /// Answer section.
    pub answers: Vec<Answer>,
    /// Authority section (the SOA of an NXDOMAIN or empty answer).
    pub authority: Vec<Answer>,
    /// The answer was authoritative (AA).
    pub authoritative: bool,
    /// The UDP answer was truncated and TCP was used.
    pub via_tcp: bool,
    /// Time from the first question to the answer, ms.
    pub elapsed_ms: f64,
    /// Per-server notes: timeouts, errors.
    pub notes: Vec<String>,
}

fn reverse_name(ip: IpAddr) -> String {
    match ip {
        IpAddr::V4(v4) => {
            let o = v4.octets();
            format!("{}.{}.{}.{}.in-addr.arpa.", o[3], o[2], o[1], o[0])
        }
        IpAddr::V6(v6) => {
            let mut s = String::new();
            for b in v6.octets().iter().rev() {
                s.push_str(&format!("{:x}.{:x}.", b & 0xf, b >> 4));
            }
            s + "ip6.arpa."
        }
    }
}

/// The question name for `name` and `t`: an IP address becomes its reverse name for PTR.
pub fn question_name(name: &str, t: DnsType) -> Result<Name, Failure> {
    let unbracketed = name.trim_start_matches('[').trim_end_matches(']');
    let text = match unbracketed.parse::<IpAddr>() {
        Ok(ip) if t == DnsType::Ptr => reverse_name(ip),
        Ok(_) => {
            return Err(Failure::invalid(format!(
                "{name} is an address: look up a name, or use type PTR"
            )));
        }
        Err(_) => {
            // Service labels (`_sip._tcp`, `_dmarc`) are DNS names, though not host names.
            crate::validate::host(&name.replace('_', "x")).map_err(Failure::invalid)?;
            if name.ends_with('.') {
                name.to_string()
            } else {
                format!("{name}.")
            }
        }
    };
    Name::from_ascii(&text)
        .map_err(|e| Failure::invalid(format!("{name:?} is not a DNS name: {e}")))
}

/// The mnemonic of a response code, as dig prints it.
fn rcode_name(rc: ResponseCode) -> String {
    match rc {
        ResponseCode::NoError => "NOERROR".into(),
        ResponseCode::FormErr => "FORMERR".into(),
        ResponseCode::ServFail => "SERVFAIL".into(),
        ResponseCode::NXDomain => "NXDOMAIN".into(),
        ResponseCode::NotImp => "NOTIMP".into(),
        ResponseCode::Refused => "REFUSED".into(),
        other => format!("RCODE{}", u16::from(other)),
    }
}

fn records(rs: &[hickory_proto::rr::Record]) -> Vec<Answer> {
    rs.iter()
        .take(64)
        .map(|r| Answer {
            name: r.name.to_string(),
            rtype: r.record_type().to_string(),
            ttl: r.ttl,
            data: r.data.to_string().chars().take(1024).collect(),
        })
        .collect()
}

async fn ask_udp(
    server: SocketAddr,
    q: &[u8],
    id: u16,
    limit: Duration,
) -> Result<Message, String> {
    let bind: SocketAddr = if server.is_ipv4() {
        "0.0.0.0:0".parse().unwrap()
    } else {
        "[::]:0".parse().unwrap()
    };
    let sock = tokio::net::UdpSocket::bind(bind)
        .await
        .map_err(|e| e.to_string())?;
    sock.connect(server)
        .await
        .map_err(|e| format!("{server}: {e}"))?;
    sock.send(q).await.map_err(|e| format!("{server}: {e}"))?;
    let deadline = tokio::time::Instant::now() + limit;
    let mut buf = vec![0u8; 4096];
    loop {
        let n = match tokio::time::timeout_at(deadline, sock.recv(&mut buf)).await {
            Err(_) => {
                return Err(format!(
                    "{server}: no answer within {} ms",
                    limit.as_millis()
                ));
            }
            Ok(Err(e)) => return Err(format!("{server}: {e}")),
            Ok(Ok(n)) => n,
        };
        if let Ok(m) = Message::from_vec(&buf[..n])
            && m.metadata.id == id
            && m.metadata.message_type == MessageType::Response
        {
            return Ok(m);
        }
    }
}

async fn ask_tcp(server: SocketAddr, q: &[u8], limit: Duration) -> Result<Message, String> {
    let f = async {
        let mut s = tokio::net::TcpStream::connect(server)
            .await
            .map_err(|e| format!("{server} (tcp): {e}"))?;
        let mut framed = (q.len() as u16).to_be_bytes().to_vec();
        framed.extend_from_slice(q);
        s.write_all(&framed).await.map_err(|e| e.to_string())?;
        let n = s.read_u16().await.map_err(|e| e.to_string())? as usize;
        let mut buf = vec![0u8; n];
        s.read_exact(&mut buf).await.map_err(|e| e.to_string())?;
        Message::from_vec(&buf).map_err(|e| format!("{server} (tcp): {e}"))
    };
    tokio::time::timeout(limit, f).await.unwrap_or_else(|_| {
        Err(format!(
            "{server} (tcp): no answer within {} ms",
            limit.as_millis()
        ))
    })
}

/// Ask `servers` in turn (each `attempts` times, `per_try` each) about `name`/`t`; the first
/// server that answers at all gives the result.
pub async fn lookup(
    servers: &[SocketAddr],
    name: &Name,
    t: DnsType,
    per_try: Duration,
    attempts: u32,
) -> Result<Lookup, Failure> {
    if servers.is_empty() {
        return Err(Failure::new(
            Code::DnsFailed,
            "no DNS server known: connect to a network first (DHCP provides the servers), or give server",
        ));
    }
    let started = Instant::now();
    let mut msg = Message::query();
    msg.metadata.recursion_desired = true;
    msg.add_query(Query::query(name.clone(), t.record_type()));
    let id = msg.metadata.id;
    let wire = msg
        .to_vec()
        .map_err(|e| Failure::new(Code::Failed, format!("encoding the question: {e}")))?;
    let mut notes = Vec::new();
    for &server in servers {
        for _ in 0..attempts.max(1) {
            let mut via_tcp = false;
            let got = match ask_udp(server, &wire, id, per_try).await {
                Ok(m) if m.metadata.truncation => {
                    via_tcp = true;
                    ask_tcp(server, &wire, per_try).await
                }
                other => other,
            };
            let m = match got {
                Ok(m) => m,
                Err(e) => {
                    notes.push(e);
                    continue;
                }
            };
            let rcode = m.metadata.response_code;
            let answers = records(&m.answers);
            let outcome = match rcode {
                ResponseCode::NoError
                    if m.answers.iter().any(|r| r.record_type() == t.record_type()) =>
                {
                    Outcome::Answer
                }
                ResponseCode::NoError if !answers.is_empty() && t == DnsType::Cname => {
                    Outcome::Answer
                }
                ResponseCode::NoError => Outcome::NoData,
                ResponseCode::NXDomain => Outcome::Nxdomain,
                ResponseCode::ServFail => Outcome::Servfail,
                ResponseCode::Refused => Outcome::Refused,
                _ => Outcome::OtherRcode,
            };
            return Ok(Lookup {
                query: name.to_string(),
                rtype: t.record_type().to_string(),
                outcome,
                rcode: Some(rcode_name(rcode)),
                server: Some(server.to_string()),
                answers,
                authority: records(&m.authorities),
                authoritative: m.metadata.authoritative,
                via_tcp,
                elapsed_ms: ms_since(started),
                notes,
            });
        }
    }
    let timed_out = notes.iter().any(|n| n.contains("no answer within"));
    Ok(Lookup {
        query: name.to_string(),
        rtype: t.record_type().to_string(),
        outcome: if timed_out {
            Outcome::Timeout
        } else {
            Outcome::NoResponse
        },
        rcode: None,
        server: None,
        answers: vec![],
        authority: vec![],
        authoritative: false,
        via_tcp: false,
        elapsed_ms: ms_since(started),
        notes,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use hickory_proto::rr::rdata::{A, MX};
    use hickory_proto::rr::{RData, Record};

    #[test]
    fn question_names() {
        assert_eq!(
            question_name("ap.test", DnsType::A).unwrap().to_string(),
            "ap.test."
        );
        assert_eq!(
            question_name("10.0.2.1", DnsType::Ptr).unwrap().to_string(),
            "1.2.0.10.in-addr.arpa."
        );
        assert!(
            question_name("::1", DnsType::Ptr)
                .unwrap()
                .to_string()
                .ends_with(".ip6.arpa.")
        );
        assert!(
            question_name("10.0.2.1", DnsType::A)
                .unwrap_err()
                .text
                .contains("PTR")
        );
        assert_eq!(
            question_name("bad name", DnsType::A).unwrap_err().code,
            Code::InvalidArgument
        );
    }

    /// A DNS server on loopback that answers MX for one name, NXDOMAIN for `nx.`, SERVFAIL for
    /// `sf.` and nothing for `slow.`.
    async fn server() -> SocketAddr {
        let sock = tokio::net::UdpSocket::bind("127.0.0.1:0").await.unwrap();
        let addr = sock.local_addr().unwrap();
        tokio::spawn(async move {
            let mut buf = vec![0u8; 1500];
            loop {
                let (n, from) = sock.recv_from(&mut buf).await.unwrap();
                let q = Message::from_vec(&buf[..n]).unwrap();
                let qname = q.queries[0].name().to_string();
                let mut r = Message::response(q.metadata.id, q.metadata.op_code);
                r.add_query(q.queries[0].clone());
                match qname.as_str() {
                    "slow.test." => continue,
                    "nx.test." => r.metadata.response_code = ResponseCode::NXDomain,
                    "sf.test." => r.metadata.response_code = ResponseCode::ServFail,
                    _ => {
                        r.add_answer(Record::from_rdata(
                            q.queries[0].name().clone(),
                            300,
                            RData::MX(MX::new(10, Name::from_ascii("mail.test.").unwrap())),
                        ));
                        r.add_answer(Record::from_rdata(
                            Name::from_ascii("mail.test.").unwrap(),
                            60,
                            RData::A(A::new(10, 0, 2, 25)),
                        ));
                    }
                }
                sock.send_to(&r.to_vec().unwrap(), from).await.unwrap();
            }
        });
        addr
    }

    #[tokio::test]
    async fn answers_nxdomain_servfail_and_timeout_are_told_apart() {
        let s = server().await;
        let ask = |n: &str| {
            let n = question_name(n, DnsType::Mx).unwrap();
            async move {
                lookup(&[s], &n, DnsType::Mx, Duration::from_millis(300), 1)
                    .await
                    .unwrap()
            }
        };
        let ok = ask("mx.test").await;
        assert_eq!(ok.outcome, Outcome::Answer, "{ok:?}");
        assert_eq!(ok.answers[0].data, "10 mail.test.");
        assert_eq!(ok.answers[0].ttl, 300);
        assert_eq!(ok.server.as_deref(), Some(s.to_string().as_str()));
        assert_eq!(ask("nx.test").await.outcome, Outcome::Nxdomain);
        let sf = ask("sf.test").await;
        assert_eq!(
            (sf.outcome, sf.rcode.as_deref()),
            (Outcome::Servfail, Some("SERVFAIL"))
        );
        let slow = ask("slow.test").await;
        assert_eq!(slow.outcome, Outcome::Timeout, "{slow:?}");
        assert_eq!(slow.notes.len(), 1);
        let gone = tokio::net::UdpSocket::bind("127.0.0.1:0").await.unwrap();
        let closed = gone.local_addr().unwrap();
        drop(gone);
        let n = question_name("x.test", DnsType::A).unwrap();
        let r = lookup(&[closed], &n, DnsType::A, Duration::from_millis(300), 1)
            .await
            .unwrap();
        assert_eq!(r.outcome, Outcome::NoResponse, "{r:?}");
    }
}
