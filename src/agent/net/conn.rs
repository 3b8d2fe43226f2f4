//! Name resolution and TCP connect, with timings, through the WiFi's DNS (the lease's servers)
//! and the box's only route. Failures carry the stable codes callers branch on.

use std::net::{IpAddr, SocketAddr};
use std::time::{Duration, Instant};

use tokio::net::TcpStream;

use super::ms_since;
use super::target::Family;
use crate::agent::failure::{Code, Failure};
use crate::agent::nettools::Dns;

/// Resolve `host` (a name or an IP literal) and pick one address of `family`; returns the
/// address and the time the lookup took (0 for a literal). When `dns` knows the box's families
/// ([`Dns::with_stacks`]), a family the network did not give the box fails first, with
/// `family_unavailable` and no query sent, and `auto` picks what the box can use.
pub async fn resolve(dns: &Dns, host: &str, family: Family) -> Result<(IpAddr, f64), Failure> {
    check_family(dns, host, family)?;
    let stacks = dns.stacks();
    let started = Instant::now();
    let addrs = dns
        .lookup(host)
        .await
        .map_err(|e| Failure::new(Code::DnsFailed, format!("{e:#}")))?;
    let ms = if host.parse::<IpAddr>().is_ok() {
        0.0
    } else {
        ms_since(started)
    };
    let picked = match stacks {
        Some(s) => s.pick(family, &addrs),
        None => family.pick(&addrs),
    };
    let ip = picked.ok_or_else(|| {
        Failure::new(
            Code::DnsFailed,
            format!("{host} has no {family:?} address (found {addrs:?})").to_lowercase(),
        )
    })?;
    if let Some(Err(f)) = stacks.map(|s| s.allows(ip)) {
        // (a literal was checked before the lookup: this is a name with IPv6 addresses only)
        return Err(Failure::new(
            f.code,
            format!(
                "{host} has IPv6 addresses only ({ip}), but this network gave the box no IPv6 \
                 address (no router advertisement with a prefix); not connected"
            ),
        ));
    }
    Ok((ip, ms))
}

/// What [`resolve`] checks before it sends anything: `family` against the box's families (when
/// `dns` knows them), and an IP literal against `family` (an IPv4 address with family ipv6 is an
/// `invalid_argument`; an IPv6 address without IPv6 in the box `family_unavailable`).
pub fn check_family(dns: &Dns, host: &str, family: Family) -> Result<(), Failure> {
    if let Some(s) = dns.stacks() {
        s.require(family)?;
    }
    if let Ok(ip) = host.parse::<IpAddr>() {
        let fits = match family {
            Family::Auto => true,
            Family::Ipv4 => ip.is_ipv4(),
            Family::Ipv6 => ip.is_ipv6(),
        };
        if !fits {
            return Err(Failure::invalid(format!(
                "{host} is an {} address, but family {} was asked for",
                if ip.is_ipv4() { "IPv4" } else { "IPv6" },
                if ip.is_ipv4() { "ipv6" } else { "ipv4" },
            )));
        }
        if let Some(s) = dns.stacks() {
            s.allows(ip)?;
        }
    }
    Ok(())
}

/// How a TCP connect ended when it did not connect.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refusal {
    /// RST: nothing listens there.
    Closed,
    /// No answer within the time: dropped on the way (a firewall), or a host that is not there.
    Filtered,
    /// ICMP unreachable, or no route.
    Unreachable,
}

impl Refusal {
    /// The stable code of this outcome as a tool failure.
    pub fn code(self) -> Code {
        match self {
            Refusal::Closed => Code::ConnectionRefused,
            Refusal::Filtered => Code::Timeout,
            Refusal::Unreachable => Code::Unreachable,
        }
    }
}

/// Classify a connect error; `None`: some other error (the text says).
pub fn classify(e: &std::io::Error) -> Option<Refusal> {
    use std::io::ErrorKind::*;
    match e.kind() {
        ConnectionRefused => Some(Refusal::Closed),
        TimedOut => Some(Refusal::Filtered),
        HostUnreachable | NetworkUnreachable | AddrNotAvailable => Some(Refusal::Unreachable),
        _ => None,
    }
}

/// TCP connect to `addr` within `limit`; the stream and the time taken.
pub async fn connect(
    addr: SocketAddr,
    limit: Duration,
) -> Result<(TcpStream, f64), (Option<Refusal>, String, f64)> {
    let started = Instant::now();
    match tokio::time::timeout(limit, TcpStream::connect(addr)).await {
        Ok(Ok(s)) => {
            let _ = s.set_nodelay(true);
            Ok((s, ms_since(started)))
        }
        Ok(Err(e)) => Err((
            classify(&e),
            format!("connecting to {addr}: {e}"),
            ms_since(started),
        )),
        Err(_) => Err((
            Some(Refusal::Filtered),
            format!(
                "connecting to {addr}: no answer within {} ms",
                limit.as_millis()
            ),
            ms_since(started),
        )),
    }
}

/// [`connect`] as a tool failure.
pub async fn connect_or_fail(
    addr: SocketAddr,
    limit: Duration,
) -> Result<(TcpStream, f64), Failure> {
    connect(addr, limit).await.map_err(|(why, text, _)| {
        let (code, hint) = match why {
            Some(Refusal::Closed) => (
                Code::ConnectionRefused,
                " (connection refused: nothing listens there)",
            ),
            Some(Refusal::Filtered) => (Code::Timeout, " (filtered: no answer)"),
            Some(Refusal::Unreachable) => (
                Code::Unreachable,
                " (unreachable: no route, or connect to a network first)",
            ),
            None => (Code::Failed, ""),
        };
        Failure::new(code, format!("{text}{hint}"))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn open_and_closed_on_loopback() {
        let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = l.local_addr().unwrap();
        let (_s, ms) = connect(addr, Duration::from_secs(2)).await.unwrap();
        assert!(ms >= 0.0);
        drop(l);
        let e = connect_or_fail(addr, Duration::from_secs(2))
            .await
            .unwrap_err();
        assert_eq!(e.code, Code::ConnectionRefused, "{e}");
    }

    #[tokio::test]
    async fn resolve_checks_the_family_against_the_box() {
        use crate::agent::net::stacks::Stacks;
        let v4only = Dns::new(vec![], std::path::Path::new("/nonexistent")).with_stacks(Stacks {
            ipv4: true,
            ipv6: false,
        });
        // A name with family ipv6: refused before any lookup (there is no DNS server either,
        // so a lookup would fail with dns_failed instead).
        let e = resolve(&v4only, "ap.test", Family::Ipv6).await.unwrap_err();
        assert_eq!(e.code, Code::FamilyUnavailable, "{e}");
        let e = resolve(&v4only, "fd00:77::1", Family::Auto)
            .await
            .unwrap_err();
        assert_eq!(e.code, Code::FamilyUnavailable, "{e}");
        assert_eq!(
            resolve(&v4only, "10.0.2.1", Family::Auto).await.unwrap().0,
            "10.0.2.1".parse::<IpAddr>().unwrap()
        );
        let e = resolve(&v4only, "10.0.2.1", Family::Ipv6)
            .await
            .unwrap_err();
        assert_eq!(e.code, Code::FamilyUnavailable, "{e}");
        let dual = Dns::new(vec![], std::path::Path::new("/nonexistent")).with_stacks(Stacks {
            ipv4: true,
            ipv6: true,
        });
        let e = resolve(&dual, "10.0.2.1", Family::Ipv6).await.unwrap_err();
        assert!(
            e.code == Code::InvalidArgument && e.text.contains("IPv4 address"),
            "{e}"
        );
        let (ip, ms) = resolve(&dual, "fd00:77::1", Family::Ipv6).await.unwrap();
        assert_eq!((ip.to_string().as_str(), ms), ("fd00:77::1", 0.0));
    }

    #[test]
    fn refusal_codes() {
        let e = std::io::Error::from(std::io::ErrorKind::HostUnreachable);
        assert_eq!(classify(&e), Some(Refusal::Unreachable));
        assert_eq!(Refusal::Filtered.code(), Code::Timeout);
        assert_eq!(classify(&std::io::Error::other("x")), None);
    }
}
