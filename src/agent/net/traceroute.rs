//! `network_traceroute`: UDP probes with rising TTL (hop limit), the ICMP answers read from the
//! socket's error queue (`IP_RECVERR` / `IPV6_RECVERR`: no raw socket needed). A "time exceeded"
//! names a hop; "port unreachable" from the target means it was reached. Bounded hops, probes
//! and wait.

use std::net::{IpAddr, SocketAddr, UdpSocket};
use std::os::fd::AsRawFd;
use std::time::{Duration, Instant};

use serde::Serialize;

use super::target::family_of;
use crate::agent::failure::{Code, Failure};

/// The most hops a caller may ask for.
pub const MAX_HOPS: u8 = 64;
/// The first destination port (traceroute's classic base).
const BASE_PORT: u16 = 33434;

/// One hop.
#[derive(Debug, Clone, Serialize, schemars::JsonSchema)]
pub struct Hop {
    /// The TTL (hop limit) of its probes.
    pub ttl: u8,
    /// Who answered (the first answer's address), if anyone.
    pub address: Option<String>,
    /// Each probe's round trip, ms (null: no answer in time).
    pub rtt_ms: Vec<Option<f64>>,
    /// The answer: `time_exceeded`, `reached` (port unreachable from the target), another
    /// `unreachable` (host / net / prohibited), or `none`.
    pub answer: String,
}

/// Result of `network_traceroute`.
#[derive(Debug, Clone, Serialize, schemars::JsonSchema)]
pub struct TraceReport {
    /// The target address.
    pub target: String,
    /// `ipv4` / `ipv6`.
    pub family: String,
    /// `udp` (probes to ports 33434 and up).
    pub protocol: String,
    /// The hops, from TTL 1.
    pub hops: Vec<Hop>,
    /// Whether the target answered.
    pub reached: bool,
    /// The last hop that answered (the target, when reached).
    pub last_hop: Option<String>,
    /// The whole trace, ms.
    pub elapsed_ms: f64,
}

/// What one probe got back.
#[derive(Debug, Clone, PartialEq)]
enum Answer {
    TimeExceeded(IpAddr, f64),
    Unreachable(IpAddr, f64, u8, u8),
    None,
}

fn setsockopt_int(fd: i32, level: i32, name: i32, v: i32) -> std::io::Result<()> {
    // SAFETY: a valid fd and a pointer to a live int of the size given.
    let rc = unsafe {
        libc::setsockopt(
            fd,
            level,
            name,
            (&v as *const i32).cast(),
            std::mem::size_of::<i32>() as libc::socklen_t,
        )
    };
    if rc == 0 {
        Ok(())
    } else {
        Err(std::io::Error::last_os_error())
    }
}

/// The offender address of an extended error (`SO_EE_OFFENDER`: the sockaddr after it).
fn offender(data: &[u8]) -> Option<IpAddr> {
    let ee = std::mem::size_of::<libc::sock_extended_err>();
    let sa = data.get(ee..)?;
    let family = u16::from_ne_bytes([*sa.first()?, *sa.get(1)?]) as i32;
    match family {
        libc::AF_INET => {
            let o: [u8; 4] = sa.get(4..8)?.try_into().ok()?;
            Some(IpAddr::from(o))
        }
        libc::AF_INET6 => {
            let o: [u8; 16] = sa.get(8..24)?.try_into().ok()?;
            Some(IpAddr::from(o))
        }
        _ => None,
    }
}

fn probe(
    target: IpAddr,
    scope: u32,
    ttl: u8,
    port: u16,
    wait: Duration,
) -> std::io::Result<Answer> {
    let bind: SocketAddr = if target.is_ipv4() {
        "0.0.0.0:0".parse().unwrap()
    } else {
        "[::]:0".parse().unwrap()
    };
    let sock = UdpSocket::bind(bind)?;
    let fd = sock.as_raw_fd();
    if target.is_ipv4() {
        sock.set_ttl(ttl as u32)?;
        setsockopt_int(fd, libc::SOL_IP, libc::IP_RECVERR, 1)?;
    } else {
        setsockopt_int(fd, libc::SOL_IPV6, libc::IPV6_UNICAST_HOPS, ttl as i32)?;
        setsockopt_int(fd, libc::SOL_IPV6, libc::IPV6_RECVERR, 1)?;
    }
    let dest = match target {
        IpAddr::V6(v6) if v6.is_unicast_link_local() => {
            SocketAddr::V6(std::net::SocketAddrV6::new(v6, port, 0, scope))
        }
        ip => SocketAddr::new(ip, port),
    };
    sock.connect(dest)?;
    let sent = Instant::now();
    sock.send(b"wifi-isolate-agent traceroute probe")?;
    loop {
        let left = wait.saturating_sub(sent.elapsed());
        if left.is_zero() {
            return Ok(Answer::None);
        }
        let mut pfd = libc::pollfd {
            fd,
            events: 0,
            revents: 0,
        };
        // SAFETY: one valid pollfd.
        let n = unsafe { libc::poll(&mut pfd, 1, left.as_millis().max(1) as i32) };
        if n < 0 {
            let e = std::io::Error::last_os_error();
            if e.kind() == std::io::ErrorKind::Interrupted {
                continue;
            }
            return Err(e);
        }
        if n == 0 {
            return Ok(Answer::None);
        }
        let rtt = sent.elapsed().as_secs_f64() * 1000.0;
        let mut buf = [0u8; 512];
        let mut ctrl = [0u64; 64];
        let mut iov = libc::iovec {
            iov_base: buf.as_mut_ptr().cast(),
            iov_len: buf.len(),
        };
        // SAFETY: zeroed msghdr, then pointed at live buffers.
        let mut msg: libc::msghdr = unsafe { std::mem::zeroed() };
        msg.msg_iov = &mut iov;
        msg.msg_iovlen = 1;
        msg.msg_control = ctrl.as_mut_ptr().cast();
        msg.msg_controllen = std::mem::size_of_val(&ctrl) as _;
        // SAFETY: fd valid, msg points at live buffers.
        let got = unsafe { libc::recvmsg(fd, &mut msg, libc::MSG_ERRQUEUE | libc::MSG_DONTWAIT) };
        if got < 0 {
            let e = std::io::Error::last_os_error();
            if e.kind() == std::io::ErrorKind::WouldBlock {
                // Readable data (not an error): ignore it and wait on.
                let _ = sock.set_nonblocking(true);
                let _ = sock.recv(&mut buf);
                continue;
            }
            return Err(e);
        }
        // SAFETY: walking the control messages recvmsg filled in.
        let mut c = unsafe { libc::CMSG_FIRSTHDR(&msg) };
        while !c.is_null() {
            let (level, kind) = unsafe { ((*c).cmsg_level, (*c).cmsg_type) };
            if (level == libc::SOL_IP && kind == libc::IP_RECVERR)
                || (level == libc::SOL_IPV6 && kind == libc::IPV6_RECVERR)
            {
                let len = unsafe { (*c).cmsg_len as usize } - unsafe { libc::CMSG_LEN(0) as usize };
                let data = unsafe { std::slice::from_raw_parts(libc::CMSG_DATA(c), len) };
                if data.len() >= std::mem::size_of::<libc::sock_extended_err>() {
                    // SAFETY: the kernel put a sock_extended_err at the start.
                    let ee: libc::sock_extended_err =
                        unsafe { std::ptr::read_unaligned(data.as_ptr().cast()) };
                    let from = offender(data).unwrap_or(target);
                    let v6 = ee.ee_origin == 3; // SO_EE_ORIGIN_ICMP6
                    let exceeded = if v6 {
                        ee.ee_type == 3
                    } else {
                        ee.ee_type == 11
                    };
                    if ee.ee_origin == libc::SO_EE_ORIGIN_ICMP || v6 {
                        return Ok(if exceeded {
                            Answer::TimeExceeded(from, rtt)
                        } else {
                            Answer::Unreachable(from, rtt, ee.ee_type, ee.ee_code)
                        });
                    }
                }
            }
            c = unsafe { libc::CMSG_NXTHDR(&msg, c) };
        }
    }
}

fn is_port_unreachable(v6: bool, t: u8, code: u8) -> bool {
    if v6 {
        t == 1 && code == 4
    } else {
        t == 3 && code == 3
    }
}

/// Trace to `target`: `probes` per hop, up to `max_hops`, each waiting `wait`; `hop(ttl)` after
/// each hop.
pub async fn trace(
    target: IpAddr,
    scope: u32,
    max_hops: u8,
    probes: u8,
    wait: Duration,
    hop: impl Fn(u8) + Send + 'static,
) -> Result<TraceReport, Failure> {
    tokio::task::spawn_blocking(move || {
        let started = Instant::now();
        let mut hops = Vec::new();
        let mut reached = false;
        let mut seq = 0u16;
        for ttl in 1..=max_hops {
            let mut h = Hop {
                ttl,
                address: None,
                rtt_ms: vec![],
                answer: "none".into(),
            };
            for _ in 0..probes {
                let port = BASE_PORT.wrapping_add(seq);
                seq = seq.wrapping_add(1);
                let a = probe(target, scope, ttl, port, wait).map_err(|e| {
                    Failure::new(
                        Code::Unreachable,
                        format!("probe to {target} (ttl {ttl}): {e}"),
                    )
                })?;
                match a {
                    Answer::TimeExceeded(from, rtt) => {
                        h.address.get_or_insert(from.to_string());
                        h.rtt_ms.push(Some((rtt * 1000.0).round() / 1000.0));
                        h.answer = "time_exceeded".into();
                    }
                    Answer::Unreachable(from, rtt, t, code) => {
                        h.address.get_or_insert(from.to_string());
                        h.rtt_ms.push(Some((rtt * 1000.0).round() / 1000.0));
                        if is_port_unreachable(target.is_ipv6(), t, code) && from == target {
                            h.answer = "reached".into();
                            reached = true;
                        } else {
                            h.answer = format!("unreachable (type {t}, code {code})");
                        }
                    }
                    Answer::None => h.rtt_ms.push(None),
                }
            }
            let stop = h.answer != "none" && h.answer != "time_exceeded";
            hops.push(h);
            hop(ttl);
            if stop {
                break;
            }
        }
        let last_hop = hops.iter().rev().find_map(|h| h.address.clone());
        Ok(TraceReport {
            target: target.to_string(),
            family: family_of(target).into(),
            protocol: "udp".into(),
            hops,
            reached,
            last_hop,
            elapsed_ms: super::ms_since(started),
        })
    })
    .await
    .map_err(|e| Failure::new(Code::Failed, format!("traceroute task: {e}")))?
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Loopback is one hop: the first probe's port is closed, so the target answers "port
    /// unreachable" at TTL 1, both families.
    #[tokio::test]
    async fn loopback_is_reached_at_the_first_hop() {
        for t in ["127.0.0.1", "::1"] {
            let r = trace(t.parse().unwrap(), 0, 5, 2, Duration::from_secs(1), |_| {})
                .await
                .unwrap();
            assert!(r.reached, "{t}: {r:?}");
            assert_eq!(r.hops.len(), 1, "{r:?}");
            assert_eq!(r.hops[0].answer, "reached");
            assert_eq!(r.last_hop.as_deref(), Some(t));
            assert!(r.hops[0].rtt_ms.iter().all(|x| x.is_some()));
        }
    }

    #[test]
    fn port_unreachable_by_family() {
        assert!(is_port_unreachable(false, 3, 3));
        assert!(!is_port_unreachable(false, 3, 1));
        assert!(is_port_unreachable(true, 1, 4));
    }
}
