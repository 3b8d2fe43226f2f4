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
/// address and the time the lookup took (0 for a literal).
pub async fn resolve(dns: &Dns, host: &str, family: Family) -> Result<(IpAddr, f64), Failure> {
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
    let ip = family.pick(&addrs).ok_or_else(|| {
        Failure::new(
            Code::DnsFailed,
            format!("{host} has no {family:?} address (found {addrs:?})").to_lowercase(),
        )
    })?;
    Ok((ip, ms))
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

    #[test]
    fn refusal_codes() {
        let e = std::io::Error::from(std::io::ErrorKind::HostUnreachable);
        assert_eq!(classify(&e), Some(Refusal::Unreachable));
        assert_eq!(Refusal::Filtered.code(), Code::Timeout);
        assert_eq!(classify(&std::io::Error::other("x")), None);
    }
}
